//! The fleet view's data: the whole list in one compact answer (`GET /v1/fleet`), the counts by state over
//! the last minutes with the agent's own CPU and memory beside them (`GET /v1/fleet/history`), and one member's
//! story in this agent's event log with its recent round trips (`GET /v1/members/{name}/history`).
//!
//! [`Fleet`] owns what the list itself does not keep: the history of counts, sampled about once a second by the
//! driver through a [`Sampler`], and a short ring of round trips per member, fed by the driver. Both are
//! bounded: [`HISTORY_SAMPLES`] samples, [`RTT_SAMPLES`] round trips per member, and the rings of members gone
//! from the list are dropped once a minute.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster_core::{Member, State as MemberState};
use roster_eventlog::{LOG_FILE, Record};
use serde::Serialize;

use crate::api::MemberInfo;
use crate::clock::Clock;
use crate::driver::Shared;
use crate::health::Health;

/// Samples of the counts kept: ten minutes at one a second.
pub const HISTORY_SAMPLES: usize = 600;
/// Round trips kept per member.
pub const RTT_SAMPLES: usize = 16;
/// Lines of a member's history sent at most (the newest).
const HISTORY_LINES: usize = 500;
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// One second of the fleet as this agent saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    pub t_ms: u64,
    pub alive: u32,
    pub suspect: u32,
    pub failed: u32,
    pub left: u32,
    /// The agent's CPU use since the previous sample, in percent of one core.
    pub cpu_pct: Option<f32>,
    pub rss_bytes: Option<u64>,
}

/// The last few round trips to one member, in microseconds, oldest first once read.
#[derive(Clone, Copy, Debug, Default)]
struct Rtts {
    micros: [u32; RTT_SAMPLES],
    len: u8,
    next: u8,
}

impl Rtts {
    fn push(&mut self, rtt: Duration) {
        self.micros[self.next as usize] = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
        self.next = ((self.next as usize + 1) % RTT_SAMPLES) as u8;
        self.len = (self.len as usize + 1).min(RTT_SAMPLES) as u8;
    }

    fn ms(&self) -> Vec<f64> {
        let start = (self.next as usize + RTT_SAMPLES - self.len as usize) % RTT_SAMPLES;
        (0..self.len as usize)
            .map(|i| f64::from(self.micros[(start + i) % RTT_SAMPLES]) / 1000.0)
            .collect()
    }
}

#[derive(Debug, Default)]
struct Inner {
    samples: VecDeque<Sample>,
    rtts: HashMap<Box<str>, Rtts>,
    /// CPU seconds at the previous sample, and when.
    cpu_last: Option<(u64, f64)>,
}

/// What the fleet view keeps beyond the list.
#[derive(Debug, Default)]
pub(crate) struct Fleet {
    inner: Mutex<Inner>,
    /// The data directory whose event log a member's history comes from.
    data_dir: Option<PathBuf>,
}

impl Fleet {
    pub fn new(data_dir: Option<PathBuf>) -> Fleet {
        Fleet {
            inner: Mutex::default(),
            data_dir,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a direct-probe round trip to `member`.
    pub fn rtt(&self, member: &str, rtt: Duration) {
        let mut inner = self.lock();
        match inner.rtts.get_mut(member) {
            Some(ring) => ring.push(rtt),
            None => {
                let mut ring = Rtts::default();
                ring.push(rtt);
                inner.rtts.insert(member.into(), ring);
            }
        }
    }

    fn rtts_of(&self, member: &str) -> Vec<f64> {
        self.lock()
            .rtts
            .get(member)
            .map(Rtts::ms)
            .unwrap_or_default()
    }

    fn record(&self, mut sample: Sample, cpu_s: Option<f64>, listed: impl Fn(&str) -> bool) {
        let mut inner = self.lock();
        if let (Some(cpu), Some((t_last, cpu_last))) = (cpu_s, inner.cpu_last) {
            let wall = sample.t_ms.saturating_sub(t_last) as f64 / 1000.0;
            if wall > 0.0 {
                sample.cpu_pct = Some((((cpu - cpu_last) / wall) * 100.0).max(0.0) as f32);
            }
        }
        if let Some(cpu) = cpu_s {
            inner.cpu_last = Some((sample.t_ms, cpu));
        }
        if inner.samples.len() == HISTORY_SAMPLES {
            inner.samples.pop_front();
        }
        inner.samples.push_back(sample);
        inner.rtts.retain(|name, _| listed(name));
    }

    fn samples(&self) -> Vec<Sample> {
        self.lock().samples.iter().copied().collect()
    }
}

/// Counts the list once a second into the history, until the agent stops.
/// When the driver takes the next sample of the counts, and how many samples until the next pruning of the
/// round trips. The driver samples on a wake it has anyway (its probe round comes every period), so the history
/// costs no wake of its own: on a machine of a thousand agents a wake is most of what a quiet agent spends.
#[derive(Debug)]
pub(crate) struct Sampler {
    due: Instant,
    prune_in: u32,
}

impl Sampler {
    pub fn new(now: Instant) -> Sampler {
        Sampler {
            due: now,
            prune_in: 60,
        }
    }

    /// The latest the driver must wake to take the sample that is due, should nothing else wake it first.
    pub fn wake_by(&self) -> Instant {
        self.due + SAMPLE_EVERY
    }

    /// Takes a sample if one is due at `now`.
    pub fn sample_if_due(&mut self, shared: &Shared, now: Instant) {
        if now < self.due {
            return;
        }
        self.due = now + SAMPLE_EVERY;
        let usage = crate::process::usage();
        let mut sample = Sample {
            t_ms: Clock::wall().unix_ms(),
            rss_bytes: usage.map(|u| u.rss_bytes),
            ..Sample::default()
        };
        let state = shared.lock();
        for m in state.node.members() {
            match m.state {
                MemberState::Alive => sample.alive += 1,
                MemberState::Suspect => sample.suspect += 1,
                MemberState::Failed => sample.failed += 1,
                MemberState::Left => sample.left += 1,
            }
        }
        // Round trips of members gone from the list are pruned once a minute, looked up in the list under its
        // lock (the driver records round trips under it too, so the order is the same) rather than through a
        // copy of every name: at 1,000 members that copy was a 60 KiB burst of the heap each minute.
        self.prune_in -= 1;
        let prune = self.prune_in == 0;
        if prune {
            self.prune_in = 60;
        }
        shared.fleet.record(sample, usage.map(|u| u.cpu_s), |name| {
            !prune || state.node.member(name).is_some()
        });
    }
}

/// A member as one row of `/v1/fleet`: `[name, addr, state, incarnation, joined_at_ms, rtt_ms, meta]`.
#[derive(Serialize)]
struct Row(
    String,
    String,
    &'static str,
    u32,
    u64,
    Option<f64>,
    BTreeMap<String, String>,
);

impl Row {
    fn of(member: &Member, rtt: Option<Duration>) -> Row {
        let id = &member.identity;
        Row(
            id.name().to_owned(),
            id.addr().to_string(),
            member.state.as_str(),
            member.incarnation,
            id.joined_at_ms(),
            rtt.map(|d| (d.as_secs_f64() * 1e6).round() / 1000.0),
            id.meta()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

#[derive(Serialize)]
struct FleetReply {
    /// This agent's name.
    local: String,
    now_ms: u64,
    columns: [&'static str; 7],
    rows: Vec<Row>,
    counts: BTreeMap<&'static str, u32>,
    health: Health,
    health_score: u32,
    health_max: u32,
    stats: StatsReply,
    version: &'static str,
    process: Option<crate::process::Sample>,
}

#[derive(Serialize)]
struct StatsReply {
    probes: u64,
    probe_failures: u64,
    suspicions: u64,
    refutations: u64,
    undecodable: u64,
    misdirected: u64,
}

/// `GET /v1/fleet`: every member as a compact row, the counts, and the agent's own health.
pub(crate) async fn fleet(State(shared): State<Arc<Shared>>) -> Response {
    let process = crate::process::sample();
    let reply = {
        let state = shared.lock();
        let rows: Vec<Row> = state
            .node
            .members()
            .map(|m| Row::of(m, state.rtt.get(m.name()).copied()))
            .collect();
        let mut counts: BTreeMap<&'static str, u32> = ["alive", "suspect", "failed", "left"]
            .map(|s| (s, 0))
            .into();
        for row in &rows {
            *counts.entry(row.2).or_default() += 1;
        }
        let stats = state.node.stats();
        FleetReply {
            local: state.node.local().name().to_owned(),
            now_ms: Clock::wall().unix_ms(),
            columns: [
                "name",
                "addr",
                "state",
                "incarnation",
                "joined_at_ms",
                "rtt_ms",
                "meta",
            ],
            rows,
            counts,
            health: Health::read(&shared, &state),
            health_score: state.node.health_score(),
            health_max: state.node.config().awareness_max,
            stats: StatsReply {
                probes: stats.probes,
                probe_failures: stats.probe_failures,
                suspicions: stats.suspicions,
                refutations: stats.refutations,
                undecodable: stats.undecodable,
                misdirected: stats.misdirected,
            },
            version: env!("CARGO_PKG_VERSION"),
            process,
        }
    };
    Json(reply).into_response()
}

#[derive(Serialize)]
struct HistoryReply {
    interval_ms: u64,
    samples: Vec<Sample>,
}

/// `GET /v1/fleet/history`: the counts by state, once a second, for the last minutes.
pub(crate) async fn history(State(shared): State<Arc<Shared>>) -> Response {
    Json(HistoryReply {
        interval_ms: SAMPLE_EVERY.as_millis() as u64,
        samples: shared.fleet.samples(),
    })
    .into_response()
}

#[derive(Serialize)]
struct MemberHistory {
    member: String,
    /// The member as the list holds it now, if it does.
    now: Option<MemberInfo>,
    /// The last direct-probe round trips from this agent, oldest first.
    rtt_ms: Vec<f64>,
    /// The lines of this agent's event log about the member, oldest first (the newest [`HISTORY_LINES`]).
    events: Vec<serde_json::Value>,
    /// Lines about the member left out because there were more.
    omitted: usize,
    /// Why there are no lines, when the agent keeps no log.
    note: Option<String>,
}

/// `GET /v1/members/{name}/history`: one member in this agent's event log, and its round trips.
pub(crate) async fn member_history(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    let now = {
        let state = shared.lock();
        state
            .node
            .member(&name)
            .map(|m| MemberInfo::from(&state.member(m)))
    };
    let rtt_ms = shared.fleet.rtts_of(&name);
    let Some(dir) = shared.fleet.data_dir.clone() else {
        if now.is_none() {
            return not_found(&name);
        }
        return Json(MemberHistory {
            member: name,
            now,
            rtt_ms,
            events: Vec::new(),
            omitted: 0,
            note: Some(
                "this agent runs without a data directory, so it keeps no event log".to_owned(),
            ),
        })
        .into_response();
    };
    let wanted = name.clone();
    // The log may be megabytes: read it off the runtime's threads.
    let read = tokio::task::spawn_blocking(move || lines_about(&dir, &wanted)).await;
    let (events, omitted) = match read {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": e })),
            )
                .into_response();
        }
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "the log reader stopped").into_response();
        }
    };
    if now.is_none() && events.is_empty() {
        return not_found(&name);
    }
    Json(MemberHistory {
        member: name,
        now,
        rtt_ms,
        events,
        omitted,
        note: None,
    })
    .into_response()
}

fn not_found(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({
            "error": format!("{name:?} is neither in this agent's list nor in its event log")
        })),
    )
        .into_response()
}

/// The lines of the log in `dir` (rotated files first) about `member`: the newest [`HISTORY_LINES`], and how
/// many older ones were left out.
fn lines_about(
    dir: &std::path::Path,
    member: &str,
) -> Result<(Vec<serde_json::Value>, usize), String> {
    let mut files: Vec<PathBuf> = (1..=16)
        .rev()
        .map(|n| dir.join(format!("{LOG_FILE}.{n}")))
        .filter(|p| p.is_file())
        .collect();
    files.push(dir.join(LOG_FILE));
    let mut found: VecDeque<serde_json::Value> = VecDeque::new();
    let mut omitted = 0;
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        for line in text.lines() {
            // Only whole lines this version understands; a line cut short by a crash is skipped.
            let Ok(record) = Record::parse(line) else {
                continue;
            };
            if record.member != member {
                continue;
            }
            let Ok(value) = serde_json::from_str(line) else {
                continue;
            };
            if found.len() == HISTORY_LINES {
                found.pop_front();
                omitted += 1;
            }
            found.push_back(value);
        }
    }
    Ok((found.into(), omitted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_round_trip_ring_keeps_the_newest_in_order() {
        let mut ring = Rtts::default();
        for ms in 1..=20u64 {
            ring.push(Duration::from_millis(ms));
        }
        let kept = ring.ms();
        assert_eq!(kept.len(), RTT_SAMPLES);
        assert_eq!(kept.first(), Some(&5.0));
        assert_eq!(kept.last(), Some(&20.0));
    }

    #[test]
    fn the_history_is_bounded_and_cpu_is_a_rate() {
        let fleet = Fleet::new(None);
        for i in 0..(HISTORY_SAMPLES as u64 + 10) {
            let sample = Sample {
                t_ms: i * 1000,
                alive: 3,
                ..Sample::default()
            };
            // Half a CPU second per wall second: 50 %.
            fleet.record(sample, Some(i as f64 * 0.5), |_| true);
        }
        let samples = fleet.samples();
        assert_eq!(samples.len(), HISTORY_SAMPLES);
        assert_eq!(samples[0].t_ms, 10_000);
        assert_eq!(samples.last().and_then(|s| s.cpu_pct), Some(50.0));
    }

    #[test]
    fn a_members_history_is_its_lines_across_rotated_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let line = |member: &str, event: &str| {
            format!(
                r#"{{"time":"2026-11-29T21:14:31.123Z","node":"m1","event":"{event}","member":"{member}","addr":"10.0.0.4:7946","joined_at":"2026-11-29T21:02:10.004Z","incarnation":3,"via":"gossip","from":"m2"}}"#
            )
        };
        std::fs::write(
            dir.path().join("events.jsonl.1"),
            format!("{}\n{}\n", line("m4", "join"), line("m5", "join")),
        )
        .expect("old log");
        std::fs::write(
            dir.path().join("events.jsonl"),
            format!("{}\n{{\"cut", line("m4", "failed")),
        )
        .expect("log");
        let (lines, omitted) = lines_about(dir.path(), "m4").expect("reads");
        let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
        assert_eq!((events, omitted), (vec!["join", "failed"], 0));
    }
}
