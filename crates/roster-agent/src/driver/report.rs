//! What the core reports, carried out: each event goes to the event handlers, joins and leaves move the driver
//! along, list changes are logged to stderr, and every event the log records is written to it and then handed to
//! the readers (the subscriptions and `GET /v1/events`), in that order, so a reader that missed it finds it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use roster_core::{ChangeKind, Event};

use super::Driver;
use crate::clock::Clock;
use crate::error::AgentError;
use crate::eventlog::LoggedEvent;

impl Driver {
    pub(super) fn report(&mut self, event: Event) -> Result<(), AgentError> {
        if let Some(handlers) = &self.handlers {
            handlers.dispatch(&event, self.shared.clock.now());
        }
        match &event {
            Event::QueryAnswer { .. } | Event::QueryDone { .. } => {
                self.open_queries.route(&event);
                return Ok(());
            }
            Event::User { name, from, .. } => {
                tracing::info!(name = &**name, from = &**from, "user event");
            }
            Event::Query { query, name, .. } => {
                tracing::info!(name = &**name, query = %query, "query");
            }
            Event::Joined { through } => {
                tracing::info!(through = through.name(), "joined");
                self.shared.joined.store(true, Ordering::Release);
                self.join_failures = 0;
                // The seed's list is the one worth having on disk: an agent killed right after joining should
                // still find its cluster again when restarted.
                self.snapshot_dirty = true;
                self.snapshot_due = Instant::now();
                return Ok(());
            }
            Event::JoinFailed { attempts } => return self.on_join_failed(*attempts),
            Event::Left { announced } => {
                if let Some(leaving) = &mut self.leaving {
                    leaving.done = Some(*announced);
                }
                return Ok(());
            }
            Event::Changed(change) => {
                self.snapshot_changed();
                let level_warn = matches!(change.kind, ChangeKind::Failed | ChangeKind::Suspect);
                if level_warn {
                    tracing::warn!(
                        member = change.member.name(),
                        kind = change.kind.as_str(),
                        via = change.via.as_str(),
                        "list changed"
                    );
                } else {
                    tracing::info!(
                        member = change.member.name(),
                        kind = change.kind.as_str(),
                        via = change.via.as_str(),
                        "list changed"
                    );
                }
            }
            Event::Conflict { holder, claimant } => {
                tracing::error!(
                    member = claimant.name(),
                    holder = %holder.identity.addr(),
                    claimant = %claimant.identity.addr(),
                    "name conflict: two live processes claim this name; the holder keeps it"
                );
            }
            Event::FailureSent { .. } | Event::Probed { .. } => {}
        }
        // A log line carries the wall clock as it reads now, stepped or not: lines from many machines are read
        // side by side.
        if let Some(logged) = LoggedEvent::of(&self.local_name, Clock::wall(), event) {
            // Written before it is sent: a reader that missed it finds it in the log.
            if let Some(log) = &mut self.log
                && let Err(e) = log.append(&logged.line)
            {
                tracing::error!(error = %e, "could not write the event log");
            }
            let mut last = self
                .shared
                .last_line
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *last = Some(Arc::clone(&logged.line));
            // Nobody listening is fine.
            let _ = self.shared.events.send(logged);
        }
        Ok(())
    }
}
