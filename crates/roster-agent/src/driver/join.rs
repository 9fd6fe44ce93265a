//! Joining: the first join, the seed names as they resolve (a cluster of one when they name only this agent),
//! joins again after a failure with `--retry-join`, and readiness once the agent is first a working member.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use roster_core::Time;

use super::{Driver, config_of};
use crate::AgentError;
use crate::seeds::{self, Resolved, Seeds};

impl Driver {
    pub(super) fn start_join(&mut self, seeds: Seeds) {
        let own = seeds.own;
        let mut addrs: Vec<SocketAddr> = seeds.addrs.into_iter().filter(|a| *a != own).collect();
        addrs.sort_unstable();
        addrs.dedup();
        self.seed_addrs = addrs.clone();
        if !addrs.is_empty() {
            let now = self.shared.clock.now();
            tracing::info!(seeds = ?addrs, "joining");
            self.shared.lock().node.join(now, &addrs);
        } else if seeds.names.is_empty() {
            // Nothing to join through: this node is a cluster of one until others find it.
            self.shared.joined.store(true, Ordering::Release);
        }
        if seeds.names.is_empty() {
            return;
        }
        seeds::resolve(
            seeds.names,
            seeds.resolver,
            own,
            seeds.retry,
            self.inbound_tx.clone(),
            self.settled.subscribe(),
            config_of(&self.shared),
        );
    }

    /// Joins again through every seed known, after a failed join.
    pub(super) fn rejoin(&mut self) {
        self.rejoin_at = None;
        if self.seed_addrs.is_empty() {
            return;
        }
        let now = self.shared.clock.now();
        tracing::info!(seeds = ?self.seed_addrs, attempt = self.join_failures + 1, "joining again");
        self.shared.lock().node.join(now, &self.seed_addrs);
    }

    /// Seed names resolved: join through what is new while this node is alone, or start a cluster of one.
    pub(super) fn on_seeds(&mut self, now: Time, resolved: Resolved) {
        let mut addrs = self.seed_addrs.clone();
        addrs.extend(resolved.others);
        addrs.sort_unstable();
        addrs.dedup();
        let grew = addrs.len() > self.seed_addrs.len();
        self.seed_addrs = addrs;
        let alone = self.shared.lock().node.active_count() <= 1;
        if grew && alone {
            tracing::info!(seeds = ?self.seed_addrs, "joining");
            self.rejoin_at = None;
            self.shared.lock().node.join(now, &self.seed_addrs);
        } else if resolved.only_self
            && self.seed_addrs.is_empty()
            && !self.shared.joined.swap(true, Ordering::AcqRel)
        {
            // The first member: the name that fronts the cluster names nobody else yet.
            tracing::info!(
                seeds = %self.shared.seeds_given,
                "the seeds resolve only to this agent: starting a new cluster; joining others as they appear"
            );
        }
    }

    /// No seed name resolved within the join timeout.
    pub(super) fn on_seeds_unresolved(&mut self) -> Result<(), AgentError> {
        if self.join_required && !self.retry_join {
            return Err(AgentError::JoinFailed {
                attempts: 0,
                reason: format!("no address of {} resolved", self.shared.seeds_given),
            });
        }
        tracing::warn!("no seed address resolved; waiting for others to find this node");
        Ok(())
    }

    /// The core gave up a join: retry later with `--retry-join`, stop if the operator asked for a join, or go on
    /// alone (a restart from the snapshot may be the first member back).
    pub(super) fn on_join_failed(&mut self, attempts: u32) -> Result<(), AgentError> {
        let timeout = self.shared.lock().node.config().join_timeout;
        if self.retry_join {
            let config = config_of(&self.shared);
            let wait = roster_core::backoff(
                config.join_retry,
                config.join_retry_max * 8,
                self.join_failures,
                &mut self.rng,
            );
            self.join_failures = self.join_failures.saturating_add(1);
            tracing::warn!(
                seeds = %self.shared.seeds_given,
                attempts,
                retry_in = ?wait,
                "no seed answered within {timeout:?}; retrying (--retry-join)"
            );
            self.rejoin_at = Some(Instant::now() + wait);
            return Ok(());
        }
        if self.join_required {
            return Err(AgentError::JoinFailed {
                attempts,
                reason: format!(
                    "none of {} answered within {timeout:?} (--retry-join keeps trying)",
                    self.shared.seeds_given,
                ),
            });
        }
        // Joined in the sense that matters: this node is a cluster of its own until others find it.
        self.shared.joined.store(true, Ordering::Release);
        tracing::warn!(
            attempts,
            "no member from the snapshot answered; waiting for others to find this node"
        );
        Ok(())
    }

    /// Stops resolving seed names once this node is in a cluster bigger than itself, and tells systemd (if it
    /// runs the agent) once the agent is first a working member.
    pub(super) fn note_readiness(&mut self) {
        if *self.settled.borrow() && self.ready_notified {
            return;
        }
        let (ok, active) = {
            let state = self.shared.lock();
            (
                crate::health::Health::read(&self.shared, &state).is_ok(),
                state.node.active_count(),
            )
        };
        if active > 1 && self.shared.joined.load(Ordering::Acquire) {
            self.settled.send_replace(true);
        }
        if ok && !self.ready_notified {
            self.ready_notified = true;
            let status = format!("STATUS=member of a cluster of {active}");
            if let Err(e) = sd_notify::notify(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Custom(&status),
            ]) {
                tracing::warn!(error = %e, "could not tell systemd the agent is ready");
            }
        }
    }
}
