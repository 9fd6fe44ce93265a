//! The event log: one JSON object per line in `<data-dir>/events.jsonl`, for every change to the list, every
//! failure notice passed on, every name conflict, user event and query.
//!
//! The line format and the rotating file belong to `roster-eventlog`, which the simulator and `roster trace`
//! share; this module pairs each line with the event it records, as the driver hands both to the readers: the
//! line to `GET /v1/events`, the event to a [`Subscription`](crate::Subscription), typed.

use std::sync::Arc;

use roster_core::{Event, Time};
pub(crate) use roster_eventlog::EventLog;

/// One line of the log and the event it records.
#[derive(Clone, Debug)]
pub(crate) struct LoggedEvent {
    /// What the core reported.
    pub event: Event,
    /// The JSON line, as written to the log (without the newline).
    pub line: Arc<str>,
}

impl LoggedEvent {
    /// The log line for `event`, if the log records that kind of event (probe outcomes and join progress are
    /// not list changes, so they are not logged).
    pub fn of(local: &str, time: Time, event: Event) -> Option<LoggedEvent> {
        let line = roster_eventlog::encode(local, time, &event)?;
        Some(LoggedEvent {
            event,
            line: line.into(),
        })
    }
}
