//! What the agent's handle, the HTTP API and the event handlers ask of the driver: leave, change the tags (and
//! keep them in the data directory), force a failed member out, send and answer user events and queries.

use std::sync::atomic::Ordering;

use roster_core::{ForceLeaveError, ForceLeft, IdentityError, Meta};

use super::{Command, Driver, Leaving};
use crate::tags::{SavedTags, TagChange};

impl Driver {
    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Events(command) => {
                let now = self.shared.clock.now();
                let mut state = self.shared.lock();
                self.open_queries.run(&mut state.node, now, command);
            }
            Command::Tags(change, reply) => {
                let _ = reply.send(self.change_tags(change));
            }
            Command::ForceLeave(name, reply) => {
                let _ = reply.send(self.force_leave(&name));
            }
            Command::Leave(reply) => {
                if let Some(leaving) = &mut self.leaving {
                    leaving.waiters.push(reply);
                    return;
                }
                tracing::info!("leaving");
                self.shared.leaving.store(true, Ordering::Release);
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
                let now = self.shared.clock.now();
                self.shared.lock().node.leave(now);
                self.leaving = Some(Leaving {
                    waiters: vec![reply],
                    done: None,
                });
            }
        }
    }

    /// Applies `change` to the tags in force, tells the others, and saves the result in the data directory.
    fn change_tags(&mut self, change: TagChange) -> Result<Meta, IdentityError> {
        let now = self.shared.clock.now();
        let tags = {
            let mut state = self.shared.lock();
            let tags = change.apply(state.node.local().identity.meta())?;
            state.node.set_meta(now, tags.clone())?;
            tags
        };
        if let TagChange::Replace(configured) = change {
            self.configured_tags = configured;
        }
        if let Some(dir) = &self.data_dir
            && let Err(e) = SavedTags::new(&tags, &self.configured_tags).store(dir)
        {
            tracing::error!(error = %e, "could not save the tags: they are in force, but a restart will not keep them");
        }
        tracing::info!(tags = ?tags, "tags changed");
        Ok(tags)
    }

    fn force_leave(&mut self, name: &str) -> Result<ForceLeft, ForceLeaveError> {
        let now = self.shared.clock.now();
        let result = self.shared.lock().node.force_leave(now, name);
        match &result {
            Ok(ForceLeft::Marked) => tracing::warn!(member = name, "forced out: marked left"),
            Ok(ForceLeft::AlreadyLeft) => {
                tracing::info!(member = name, "force-leave: it had already left")
            }
            Err(e) => tracing::info!(member = name, error = %e, "force-leave refused"),
        }
        result
    }
}
