//! The figures the scenarios assert: detection and dissemination times per crashed member (from the event
//! logs), false accusations (failed or suspect lines about members that were alive), and the time until every
//! list agrees on an expected state (from `GET /v1/members`, polled).
//!
//! Every wait here is bounded by its caller's deadline and polls at a fixed pace.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cluster::Cluster;
use crate::observe::Event;

/// Unix milliseconds of a system time.
pub fn unix_ms(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())).unwrap_or(u64::MAX)
}

/// What a list must show about one member.
#[derive(Clone, Debug)]
pub struct Expect {
    pub name: String,
    /// `alive`, `suspect`, `failed` or `left`.
    pub state: &'static str,
    /// The instance must have joined at or after this time (a rejoin), if set.
    pub joined_at_least_ms: Option<u64>,
}

impl Expect {
    pub fn alive(name: impl Into<String>) -> Expect {
        Expect {
            name: name.into(),
            state: "alive",
            joined_at_least_ms: None,
        }
    }

    pub fn failed(name: impl Into<String>) -> Expect {
        Expect {
            name: name.into(),
            state: "failed",
            joined_at_least_ms: None,
        }
    }
}

/// What the list of `observer` gets wrong against `expect`, or `None` when it shows all of it.
pub fn list_mismatch(cluster: &Cluster, observer: usize, expect: &[Expect]) -> Option<String> {
    let members = match cluster.members(observer) {
        Ok(m) => m,
        Err(e) => return Some(format!("h{observer}: {e}")),
    };
    let wrong: Vec<String> = expect
        .iter()
        .filter_map(|e| match members.iter().find(|m| m.name == e.name) {
            None => Some(format!("{} missing", e.name)),
            Some(m) if m.state != e.state => Some(format!("{} {}", e.name, m.state)),
            Some(m)
                if e.joined_at_least_ms
                    .is_some_and(|min| m.joined_at_ms().is_none_or(|j| j < min)) =>
            {
                Some(format!("{} old instance joined {}", e.name, m.joined_at))
            }
            Some(_) => None,
        })
        .collect();
    if wrong.is_empty() {
        None
    } else {
        Some(format!("h{observer} sees {}", wrong.join(", ")))
    }
}

/// Polls every 100 ms until each of `observers` lists `expect`; returns the time taken from `since`, or the
/// last mismatch when `bound` (counted from `since`) runs out.
pub fn wait_lists(
    cluster: &Cluster,
    observers: &[usize],
    expect: &[Expect],
    since: SystemTime,
    bound: Duration,
) -> Result<Duration, String> {
    poll_lists(cluster, observers, expect, since, bound, |_| {
        Duration::from_millis(100)
    })
}

/// Polls until `observers` list `expect`, pausing `pause(polls so far)` between polls.
fn poll_lists(
    cluster: &Cluster,
    observers: &[usize],
    expect: &[Expect],
    since: SystemTime,
    bound: Duration,
    pause: impl Fn(u32) -> Duration,
) -> Result<Duration, String> {
    let mut polls = 0;
    loop {
        let elapsed = since.elapsed().unwrap_or_default();
        let mismatch = observers
            .iter()
            .find_map(|&o| list_mismatch(cluster, o, expect));
        match mismatch {
            None => return Ok(elapsed),
            Some(m) if elapsed >= bound => return Err(format!("after {elapsed:?}: {m}")),
            Some(_) => std::thread::sleep(pause(polls)),
        }
        polls += 1;
    }
}

/// How long the startup barrier may take for `hosts` agents started together: 30 s, and 250 ms more per
/// host, since a cold start's joins reach every list in time that grows with the cluster (and a hundred
/// agents share the machine's cores).
pub fn converge_bound(hosts: usize) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(250) * u32::try_from(hosts).unwrap_or(u32::MAX)
}

/// Waits until every running agent lists every running agent alive; the startup barrier of each scenario.
/// Polls every 100 ms at first and backs off to one poll a second, so that a hundred agents answering full
/// lists do not slow the start they are waiting for.
pub fn wait_converged(cluster: &Cluster, bound: Duration) -> Result<Duration, String> {
    let running = cluster.running();
    let expect: Vec<Expect> = running
        .iter()
        .map(|&i| Expect::alive(cluster.name(i)))
        .collect();
    poll_lists(
        cluster,
        &running,
        &expect,
        SystemTime::now(),
        bound,
        |polls| Duration::from_millis(100 * (1u64 << polls.min(10))).min(Duration::from_secs(1)),
    )
}

/// How fast one crash was found.
#[derive(Clone, Debug)]
pub struct Detection {
    pub member: String,
    /// From the crash to the first `failed` line about it in any observer's log.
    pub first: Option<Duration>,
    /// From the crash to the last observer's first `failed` line: when every list had it.
    pub every: Option<Duration>,
    /// Observers whose log never marked it failed.
    pub missing: Vec<String>,
}

fn first_at_or_after<'a>(
    events: &'a [Event],
    kind: &str,
    member: &str,
    since_ms: u64,
) -> Option<&'a Event> {
    events
        .iter()
        .find(|e| e.event == kind && e.member == member && e.time_ms >= since_ms)
}

fn since(at_ms: u64, event_ms: u64) -> Duration {
    Duration::from_millis(event_ms.saturating_sub(at_ms))
}

/// Detection figures for each member in `crashed`, crashed at `at`, as the logs of `observers` tell them.
pub fn detections(
    cluster: &Cluster,
    observers: &[usize],
    crashed: &[String],
    at: SystemTime,
) -> Vec<Detection> {
    let at_ms = unix_ms(at);
    let logs: Vec<(String, Vec<Event>)> = observers
        .iter()
        .map(|&o| (cluster.name(o).to_owned(), cluster.events(o)))
        .collect();
    crashed
        .iter()
        .map(|member| {
            let mut times = Vec::new();
            let mut missing = Vec::new();
            for (observer, events) in &logs {
                match first_at_or_after(events, "failed", member, at_ms) {
                    Some(e) => times.push(e.time_ms),
                    None => missing.push(observer.clone()),
                }
            }
            Detection {
                member: member.clone(),
                first: times.iter().min().map(|&t| since(at_ms, t)),
                every: if missing.is_empty() {
                    times.iter().max().map(|&t| since(at_ms, t))
                } else {
                    None
                },
                missing,
            }
        })
        .collect()
}

/// A line in which `observer` declared `member` suspect or failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accusation {
    pub observer: String,
    pub member: String,
    pub event: String,
    pub time_ms: u64,
}

impl std::fmt::Display for Accusation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} marked {} {} at {}",
            self.observer, self.member, self.event, self.time_ms
        )
    }
}

/// Lines of kind `kind` (`failed` or `suspect`) in the logs of `observers`, written in `[from, to)`, about a
/// member other than those in `exempt` (the ones the scenario crashed, froze or cut off).
pub fn accusations(
    cluster: &Cluster,
    observers: &[usize],
    kind: &str,
    exempt: &[String],
    from: SystemTime,
    to: SystemTime,
) -> Vec<Accusation> {
    let (from_ms, to_ms) = (unix_ms(from), unix_ms(to));
    observers
        .iter()
        .flat_map(|&o| cluster.events(o))
        .filter(|e| e.event == kind && e.time_ms >= from_ms && e.time_ms < to_ms)
        .filter(|e| e.member != e.node && !exempt.contains(&e.member))
        .map(|e| Accusation {
            observer: e.node,
            member: e.member,
            event: e.event,
            time_ms: e.time_ms,
        })
        .collect()
}

/// The largest of some optional durations, `None` if any is missing.
pub fn max_all(ds: impl IntoIterator<Item = Option<Duration>>) -> Option<Duration> {
    ds.into_iter()
        .try_fold(Duration::ZERO, |acc, d| d.map(|d| acc.max(d)))
}
