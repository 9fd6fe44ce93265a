//! [`Subscription`]: the typed events of one agent, as they happen, for as long as the reader keeps up. A reader
//! that falls behind is never skipped silently: it is told how many lines of the event log it missed
//! ([`RecvError::Lagged`]), and, when the agent keeps an event log, can read them back from it
//! ([`Subscription::replay`]).
//!
//! The agent keeps a bounded backlog for its readers rather than holding memory for one that stopped reading;
//! every event a subscription hands out is also a line of the log, in the same order, which is what makes the
//! missed ones findable: they are the lines that follow the last one the reader got.

use std::path::PathBuf;
use std::sync::Arc;

use roster_eventlog::{LOG_FILE, Record};
use tokio::sync::{broadcast, watch};

use crate::clock::Clock;
use crate::event::Event;
use crate::eventlog::LoggedEvent;

/// Why [`Subscription::recv`] returned no event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The reader fell behind and missed events; [`Subscription::replay`] reads them back from the event log.
    #[error("{0}")]
    Lagged(Lagged),
    /// The agent has stopped, and every event it sent has been received.
    #[error("the agent has stopped")]
    Closed,
}

/// How far a reader fell behind: the lines of the event log it missed, and where they start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fell behind and missed {missed} lines of the event log")]
pub struct Lagged {
    missed: u64,
    /// The last line the reader had before the gap; `None` when the gap starts at this run's first line.
    after: Option<Arc<str>>,
}

impl Lagged {
    /// How many lines of the event log the reader missed. Most are events; a notice that a failure was passed
    /// on to others is a line too, but no event, so [`Subscription::replay`] may return fewer events.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

/// Why missed events could not be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The agent keeps no event log: it was started without a data directory.
    #[error(
        "the agent keeps no event log (no data directory), so missed events cannot be read back"
    )]
    NoEventLog,
    /// The log could not be read.
    #[error("{0}")]
    Read(#[from] roster_eventlog::ReadError),
    /// The line before the gap is no longer in the log: rotated away, or the log was removed.
    #[error("the missed events are no longer in the event log (rotated away?)")]
    Gone,
    /// Fewer lines follow the gap than were missed: some were not written (see the agent's log for why).
    #[error("the event log holds {found} of the {missed} lines missed")]
    Incomplete {
        /// Lines found after the gap.
        found: u64,
        /// Lines missed.
        missed: u64,
    },
    /// A line that does not make an event.
    #[error("a line of the event log does not make an event: {0}")]
    Line(String),
    /// The task reading the log did not finish (the runtime is shutting down).
    #[error("reading the event log was cut short: {0}")]
    Interrupted(String),
}

/// Where this run's lines are in the log: the log's directory, how many rotated files it keeps, and the run's
/// first line (this instance's own join).
#[derive(Clone, Debug)]
pub(crate) struct LogPlace {
    pub dir: PathBuf,
    pub keep: usize,
    pub local: String,
    pub joined_at_ms: u64,
}

impl LogPlace {
    /// Whether `record` is this run's first line.
    fn starts_run(&self, record: &Record) -> bool {
        record.kind == roster_eventlog::Kind::Join
            && record.node == self.local
            && record.member == self.local
            && record.joined_at_ms == self.joined_at_ms
            && record.via.as_deref() == Some("self")
    }

    /// The records of the log, oldest first.
    fn read(&self) -> Result<Vec<Record>, ReplayError> {
        let mut records = Vec::new();
        let rotated = (1..=self.keep)
            .rev()
            .map(|n| self.dir.join(format!("{LOG_FILE}.{n}")));
        for file in rotated.chain([self.dir.join(LOG_FILE)]) {
            if file.is_file() {
                records.extend(roster_eventlog::read_file(&file)?);
            }
        }
        Ok(records)
    }

    /// The `missed` records that follow `after` (or that start this run).
    fn after(&self, after: Option<&str>, missed: u64) -> Result<Vec<Record>, ReplayError> {
        let records = self.read()?;
        let run = records
            .iter()
            .rposition(|r| self.starts_run(r))
            .ok_or(ReplayError::Gone)?;
        let first = match after {
            None => run,
            Some(line) => {
                let last = Record::parse(line).map_err(|e| ReplayError::Line(e.to_string()))?;
                run + records[run..]
                    .iter()
                    .position(|r| *r == last)
                    .ok_or(ReplayError::Gone)?
                    + 1
            }
        };
        let wanted = usize::try_from(missed).unwrap_or(usize::MAX);
        let found: Vec<Record> = records.into_iter().skip(first).take(wanted).collect();
        if found.len() < wanted {
            return Err(ReplayError::Incomplete {
                found: found.len() as u64,
                missed,
            });
        }
        Ok(found)
    }
}

/// The typed events of one agent, from the moment it was made (see [`Agent::subscribe`](crate::Agent::subscribe)).
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<LoggedEvent>,
    stopped: watch::Receiver<bool>,
    clock: Clock,
    /// The last line this reader got (or the last one sent before it subscribed): a gap starts after it.
    last: Option<Arc<str>>,
    log: Option<LogPlace>,
}

impl Subscription {
    pub(crate) fn new(
        rx: broadcast::Receiver<LoggedEvent>,
        stopped: watch::Receiver<bool>,
        clock: Clock,
        last: Option<Arc<str>>,
        log: Option<LogPlace>,
    ) -> Subscription {
        Subscription {
            rx,
            stopped,
            clock,
            last,
            log,
        }
    }

    /// The next event. [`RecvError::Lagged`] when the reader fell behind (the events after the gap follow);
    /// [`RecvError::Closed`] once the agent has stopped and every event it sent was received.
    pub async fn recv(&mut self) -> Result<Event, RecvError> {
        loop {
            let logged = self.next_line().await?;
            self.last = Some(Arc::clone(&logged.line));
            if let Some(event) = Event::from_core(&logged.event, &self.clock) {
                return Ok(event);
            }
        }
    }

    async fn next_line(&mut self) -> Result<LoggedEvent, RecvError> {
        use broadcast::error::{RecvError as Broadcast, TryRecvError};
        loop {
            // Lines already sent are delivered even after the agent stopped; then the stream ends.
            match self.rx.try_recv() {
                Ok(logged) => return Ok(logged),
                Err(TryRecvError::Lagged(missed)) => return Err(self.lagged(missed)),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) if *self.stopped.borrow() => {
                    return Err(RecvError::Closed);
                }
                Err(TryRecvError::Empty) => {}
            }
            tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(logged) => return Ok(logged),
                    Err(Broadcast::Lagged(missed)) => return Err(self.lagged(missed)),
                    Err(Broadcast::Closed) => return Err(RecvError::Closed),
                },
                // The driver is gone: hand out what it sent last, then end.
                changed = self.stopped.changed() => if changed.is_err() {
                    return self.rx.try_recv().map_err(|_| RecvError::Closed);
                },
            }
        }
    }

    fn lagged(&self, missed: u64) -> RecvError {
        RecvError::Lagged(Lagged {
            missed,
            after: self.last.clone(),
        })
    }

    /// Reads back from the event log the events a reader missed, in order. Needs a data directory; fails when
    /// the lines were rotated away meanwhile.
    pub async fn replay(&self, lagged: &Lagged) -> Result<Vec<Event>, ReplayError> {
        let log = self.log.clone().ok_or(ReplayError::NoEventLog)?;
        let after = lagged.after.clone();
        let missed = lagged.missed;
        let records = tokio::task::spawn_blocking(move || log.after(after.as_deref(), missed))
            .await
            .map_err(|e| ReplayError::Interrupted(e.to_string()))??;
        let mut events = Vec::with_capacity(records.len());
        for record in &records {
            if let Some(event) = Event::from_record(record).map_err(ReplayError::Line)? {
                events.push(event);
            }
        }
        Ok(events)
    }
}
