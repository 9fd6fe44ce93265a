//! What the benchmark reads from a running agent without changing what it measures: `/proc` (memory, CPU
//! time), the Prometheus counters on `/metrics`, and the event log, read incrementally and replayed.
//!
//! It never talks to the protocol port: the only traffic it adds is a scrape at each end of the quiet window.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use roster_eventlog::parse_rfc3339_ms;
use serde_json::Value;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn http_client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

pub fn get(client: &ureq::Agent, http: u16, path: &str) -> anyhow::Result<String> {
    client
        .get(&format!("http://127.0.0.1:{http}{path}"))
        .call()
        .map_err(|e| anyhow!("GET {path} on port {http}: {e}"))?
        .body_mut()
        .read_to_string()
        .map_err(|e| anyhow!("GET {path} on port {http}: {e}"))
}

/// The protocol counters of one agent at one moment. Another program run as the agent may not count
/// suspicions or failed probes: those are `None` then.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub udp_packets: u64,
    pub tcp_packets: u64,
    pub udp_bytes: u64,
    pub tcp_bytes: u64,
    pub suspicions: Option<u64>,
    pub probe_failures: Option<u64>,
}

impl Counters {
    pub fn parse(text: &str) -> Counters {
        let mut c = Counters::default();
        for line in text.lines() {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            let value = value as u64;
            match key {
                r#"roster_sent_packets_total{transport="udp"}"# => c.udp_packets = value,
                r#"roster_sent_packets_total{transport="tcp"}"# => c.tcp_packets = value,
                r#"roster_sent_bytes_total{transport="udp"}"# => c.udp_bytes = value,
                r#"roster_sent_bytes_total{transport="tcp"}"# => c.tcp_bytes = value,
                "roster_suspicions_total" => c.suspicions = Some(value),
                "roster_probe_failures_total" => c.probe_failures = Some(value),
                _ => {}
            }
        }
        c
    }
}

/// Resident memory of a process, in KiB: all of it, and the private (anonymous) part that excludes the
/// binary's and libraries' pages, which every agent shares.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub anon_kib: u64,
}

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:"),
        anon_kib: field("RssAnon:"),
    })
}

/// CPU time a process's live threads have used (user and system); a thread that ended takes its time along.
/// `/proc/PID/task/*/schedstat` counts nanoseconds; where it is missing, `/proc/PID/stat` counts clock ticks
/// of 10 ms, too coarse for one agent but fine summed over many.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    // Every thread's, not the main thread's alone: another implementation (memberlist's Go runtime) runs its
    // work on other threads, and a roster agent writes its snapshots on a blocking thread.
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        let mut total = 0u64;
        let mut read = false;
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat"))
                && let Some(ns) = text
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            {
                total += ns;
                read = true;
            }
        }
        if read {
            return Ok(Duration::from_nanos(total));
        }
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields are counted after its closing one.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; 12 and 13 of the part after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Duration::from_millis((ticks(11) + ticks(12)) * 10))
}

/// The one-minute load average, to say how busy the machine was.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One event-log line, as far as the benchmark cares.
#[derive(Clone, Debug)]
pub struct LogEvent {
    pub time_ms: u64,
    pub event: String,
    pub member: String,
}

/// Reads an agent's event log as it grows, and replays it into the set of members the agent holds alive.
#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: String,
    alive: HashMap<String, bool>,
    alive_count: usize,
    /// When the agent's list last reached the size it was asked about, if it still holds that many.
    full_since_ms: Option<u64>,
    /// Each member's first `failed` line.
    pub failed_at: HashMap<String, u64>,
}

impl LogTail {
    pub fn new(path: PathBuf) -> LogTail {
        LogTail {
            path,
            offset: 0,
            partial: String::new(),
            alive: HashMap::new(),
            alive_count: 0,
            full_since_ms: None,
            failed_at: HashMap::new(),
        }
    }

    /// Reads the lines appended since the last call and replays them; `nodes` is the size that counts as
    /// converged.
    pub fn poll(&mut self, nodes: usize) -> anyhow::Result<()> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            // Not written yet: the agent is still starting.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("{}", self.path.display())),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        // Only whole lines: the agent may be in the middle of writing the last one.
        let Some(end) = self.partial.rfind('\n') else {
            return Ok(());
        };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            if let Some(event) = parse_line(line) {
                self.apply(&event, nodes);
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: &LogEvent, nodes: usize) {
        let alive = match event.event.as_str() {
            "join" | "alive" | "update" => true,
            "suspect" | "failed" | "leave" => false,
            _ => return,
        };
        if event.event == "failed" {
            self.failed_at
                .entry(event.member.clone())
                .or_insert(event.time_ms);
        }
        let was = self
            .alive
            .insert(event.member.clone(), alive)
            .unwrap_or(false);
        match (was, alive) {
            (false, true) => self.alive_count += 1,
            (true, false) => self.alive_count -= 1,
            _ => {}
        }
        if self.alive_count >= nodes {
            self.full_since_ms.get_or_insert(event.time_ms);
        } else {
            self.full_since_ms = None;
        }
    }

    /// When this agent's list came to hold `nodes` members alive, if it does now.
    pub fn full_since_ms(&self) -> Option<u64> {
        self.full_since_ms
    }
}

fn parse_line(line: &str) -> Option<LogEvent> {
    let value: Value = serde_json::from_str(line).ok()?;
    Some(LogEvent {
        time_ms: parse_rfc3339_ms(value.get("time")?.as_str()?)?,
        event: value.get("event")?.as_str()?.to_owned(),
        member: value.get("member")?.as_str()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaying_a_log_finds_when_the_list_became_full_and_each_failure() {
        let mut tail = LogTail::new(PathBuf::new());
        let line = |t: u64, event: &str, member: &str| LogEvent {
            time_ms: t,
            event: event.into(),
            member: member.into(),
        };
        tail.apply(&line(1, "join", "a"), 3);
        tail.apply(&line(2, "join", "b"), 3);
        assert_eq!(tail.full_since_ms(), None);
        tail.apply(&line(3, "join", "c"), 3);
        assert_eq!(tail.full_since_ms(), Some(3));
        tail.apply(&line(4, "suspect", "c"), 3);
        assert_eq!(tail.full_since_ms(), None);
        tail.apply(&line(5, "alive", "c"), 3);
        assert_eq!(tail.full_since_ms(), Some(5));
        tail.apply(&line(6, "failed", "b"), 3);
        tail.apply(&line(7, "failed", "b"), 3);
        assert_eq!(tail.failed_at.get("b"), Some(&6));
    }
}
