//! Event logs for a simulated run: every node's `events.jsonl`, in the agent's line format and stamped by the
//! node's own (possibly skewed) wall clock, so `roster trace` reads a simulated run as it reads a real one.
//!
//! Lines are kept in memory while the run goes and written out once at the end, one data directory per node
//! (`DIR/<name>/events.jsonl`), as a local cluster lays them out.

use std::path::Path;

use anyhow::Context;
use roster_core::Event;
use roster_eventlog::{EventLog, LOG_FILE};

use crate::engine::Sim;

/// The lines each node slot has logged.
#[derive(Debug, Default)]
pub(crate) struct Logs {
    lines: Vec<Vec<String>>,
}

impl Sim {
    /// Keeps every node's event-log lines from now on, for [`Sim::write_event_logs`].
    pub fn record_event_logs(&mut self) {
        self.logs.get_or_insert_with(Logs::default);
    }

    pub(crate) fn log_event(&mut self, node: usize, event: &Event) {
        if self.logs.is_none() {
            return;
        }
        let time = self.wall_clock(node);
        let Some(line) = roster_eventlog::encode(self.slots[node].identity.name(), time, event)
        else {
            return;
        };
        let logs = self.logs.as_mut().expect("checked above");
        if logs.lines.len() <= node {
            logs.lines.resize_with(node + 1, Vec::new);
        }
        logs.lines[node].push(line);
    }

    /// Writes the lines kept since [`Sim::record_event_logs`] into `dir/<name>/events.jsonl`, one directory
    /// per node that logged anything. Returns how many files it wrote.
    pub fn write_event_logs(&self, dir: &Path) -> anyhow::Result<usize> {
        let Some(logs) = &self.logs else {
            anyhow::bail!("event logs were not recorded for this run");
        };
        let mut written = 0;
        for (node, lines) in logs.lines.iter().enumerate() {
            if lines.is_empty() {
                continue;
            }
            let data_dir = dir.join(self.slots[node].identity.name());
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("create {}", data_dir.display()))?;
            let path = data_dir.join(LOG_FILE);
            // A fresh file: a second run into the same directory replaces the first one's logs.
            let _ = std::fs::remove_file(&path);
            let mut log = EventLog::open(&path, u64::MAX, 0)
                .with_context(|| format!("open {}", path.display()))?;
            for line in lines {
                log.append(line)
                    .with_context(|| format!("write {}", path.display()))?;
            }
            written += 1;
        }
        Ok(written)
    }
}
