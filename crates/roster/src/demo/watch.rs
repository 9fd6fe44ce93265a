//! What the demo knows about the agents: every line of their event logs, read as it is appended, and the
//! member list each one serves. Timings come from the agents' own log lines (their `time` field), not from
//! when the demo happened to look, so they are what the agents themselves recorded.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use roster_agent::MemberInfo;
use roster_eventlog::parse_rfc3339_ms;
use serde::Deserialize;

use super::cluster::Cluster;

/// One event-log line, the fields the demo uses.
#[derive(Clone, Debug, Deserialize)]
pub struct LogLine {
    pub time: String,
    pub node: String,
    pub event: String,
    #[serde(default)]
    pub member: String,
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(skip)]
    pub time_ms: u64,
}

/// The logs read so far and the latest lists.
#[derive(Debug, Default)]
pub struct Watcher {
    offsets: BTreeMap<String, u64>,
    /// Bytes after the last newline: a line being written when we looked.
    partial: BTreeMap<String, Vec<u8>>,
    pub lines: Vec<LogLine>,
    /// The latest list of every running agent that answered.
    pub lists: BTreeMap<String, Vec<MemberInfo>>,
}

impl Watcher {
    /// Reads what the agents appended to their logs since the last call; returns the new lines.
    pub fn read_logs(&mut self, cluster: &Cluster) -> Vec<LogLine> {
        let mut fresh = Vec::new();
        for agent in &cluster.agents {
            let Ok(mut file) = std::fs::File::open(agent.events_path()) else {
                continue;
            };
            let offset = self.offsets.entry(agent.name.clone()).or_insert(0);
            let mut bytes = Vec::new();
            if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_end(&mut bytes).is_err()
            {
                continue;
            }
            *offset += bytes.len() as u64;
            let partial = self.partial.entry(agent.name.clone()).or_default();
            partial.extend_from_slice(&bytes);
            let Some(end) = partial.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            let complete: Vec<u8> = partial.drain(..=end).collect();
            for raw in complete.split(|b| *b == b'\n') {
                let Ok(mut line) = serde_json::from_slice::<LogLine>(raw) else {
                    continue;
                };
                let Some(ms) = parse_rfc3339_ms(&line.time) else {
                    continue;
                };
                line.time_ms = ms;
                fresh.push(line);
            }
        }
        fresh.sort_by_key(|l| l.time_ms);
        self.lines.extend(fresh.iter().cloned());
        fresh
    }

    /// Asks every running agent for its list.
    pub fn read_lists(&mut self, cluster: &Cluster) {
        self.lists.clear();
        for agent in cluster.agents.iter().filter(|a| a.is_running()) {
            if let Ok(list) = cluster.members(agent) {
                self.lists.insert(agent.name.clone(), list);
            }
        }
    }

    /// When `node` first logged one of `events` about `member` at or after `since_ms`.
    pub fn first(&self, node: &str, member: &str, events: &[&str], since_ms: u64) -> Option<u64> {
        self.lines
            .iter()
            .filter(|l| l.node == node && l.member == member && l.time_ms >= since_ms)
            .find(|l| events.contains(&l.event.as_str()))
            .map(|l| l.time_ms)
    }

    /// The state `node`'s latest list gives `member`, with that instance's `joined_at_ms`.
    pub fn state(&self, node: &str, member: &str) -> Option<(&str, u64)> {
        self.lists
            .get(node)?
            .iter()
            .find(|m| m.name == member)
            .map(|m| (m.state.as_str(), m.joined_at_ms))
    }
}
