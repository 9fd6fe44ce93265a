//! The event log: one JSON object per line in `<data-dir>/events.jsonl`, for every change to the
//! list, every failure notice passed on, and every name conflict.
//!
//! The line format and the rotating file belong to `roster-eventlog`, which the simulator and `roster trace`
//! share; this module turns what the driver reports into [`AgentEvent`]s, the lines a library user and
//! `GET /v1/events` receive.

use std::sync::Arc;

use roster_core::{Event, Time};
pub use roster_eventlog::{EventLog, parse_rfc3339_ms, rfc3339};

/// One line of the log, as a library user receives it from [`crate::Agent::events`].
#[derive(Clone, Debug)]
pub struct AgentEvent {
    /// When the agent saw it.
    pub time: Time,
    /// What the core reported.
    pub event: Event,
    line: Arc<str>,
}

impl AgentEvent {
    /// The JSON line, as written to the log and sent on `GET /v1/events` (without the newline).
    pub fn json(&self) -> &str {
        &self.line
    }

    /// The log line for `event`, if the log records that kind of event (probe outcomes and join progress are
    /// not list changes, so they are not logged).
    pub fn from_event(local: &str, time: Time, event: Event) -> Option<AgentEvent> {
        let line = roster_eventlog::encode(local, time, &event)?;
        Some(AgentEvent {
            time,
            event,
            line: line.into(),
        })
    }
}
