//! What the engine knows and the nodes do not: which instances really run. Each event a node reports is judged
//! against it (a live member marked failed is a false positive; a crash marked failed is news spreading), and
//! the lists are compared with it to tell when a cluster has converged.

use std::time::Duration;

use roster_core::{ChangeKind, Event, Time, Via};

use crate::engine::{Sim, Status, name_of};
use crate::metrics::{Mistake, Want};
use crate::network::index_of;

/// A failure mark within this long after a partition separated the two nodes is the partition's doing.
const PARTITION_GRACE: Duration = Duration::from_secs(15);

impl Sim {
    /// Classifies one event against the truth the engine holds and counts it.
    pub(crate) fn observe(&mut self, observer: usize, event: &Event) {
        let about = match event {
            Event::Changed(c) => index_of(c.member.identity.addr()),
            Event::Probed { target, .. } => index_of(target.addr()),
            Event::FailureSent { member, .. } => index_of(member.identity.addr()),
            Event::Conflict { claimant, .. } => index_of(claimant.identity.addr()),
            Event::Joined { .. }
            | Event::JoinFailed { .. }
            | Event::Left { .. }
            | Event::User { .. }
            | Event::Query { .. }
            | Event::QueryAnswer { .. }
            | Event::QueryDone { .. } => None,
        };
        if let Event::User { from, ltime, .. } = event {
            self.user_event_heard(observer, from, *ltime);
        }
        if let Event::Changed(change) = event {
            self.tag_change_heard(observer, &change.member);
        }
        let traced = self.traced.contains(&observer)
            || self.traced_members.contains(&observer)
            || about.is_some_and(|j| self.traced_members.contains(&j));
        self.log_event(observer, event);
        if traced {
            self.trace
                .push((self.since_start(), observer, event.clone()));
        }
        if let Event::Conflict { claimant, .. } = event
            && let Some(subject) = about.filter(|&j| j < self.slots.len())
        {
            let joined = claimant.identity.joined_at_ms();
            self.metrics
                .heard(self.now, observer, subject, joined, Want::Conflict);
        }
        let Event::Changed(change) = event else {
            return;
        };
        let Some(subject) = about.filter(|&j| j < self.slots.len()) else {
            return;
        };
        if self.slots[observer].status == Status::Standby && observer != subject {
            // A process on standby is not a member: what its list says of others is nobody's view.
            return;
        }
        let joined_at_ms = change.member.identity.joined_at_ms();
        if observer == subject
            && change.via == Via::Local
            && joined_at_ms != self.slots[subject].identity.joined_at_ms()
        {
            // The node took a newer `joined_at` to outrank a former instance of itself.
            let old = self.slots[subject].identity.joined_at_ms();
            self.slots[subject].identity = std::sync::Arc::clone(&change.member.identity);
            self.metrics.reidentified(subject, old, joined_at_ms);
            return;
        }
        let slot = &self.slots[subject];
        let current = slot.identity.joined_at_ms() == joined_at_ms;
        // A list that first hears of a member as failed (from a full sync, or from gossip that reached a joiner
        // before its seed's list did) takes the sender's view; it declares nothing. (The settling invariant
        // checks that the view comes right.)
        let learned = change.previous.is_none();
        match change.kind {
            ChangeKind::Failed if learned => {}
            ChangeKind::Failed => {
                let mistake = || Mistake {
                    at_s: (self.now - Time::SIM_EPOCH).as_secs_f64(),
                    observer: name_of(observer),
                    member: change.member.name().to_string(),
                    via: change.via.as_str(),
                    slots: (observer, subject),
                };
                if current && matches!(slot.status, Status::Leaving | Status::Left) {
                    // An observer the partition kept from hearing the goodbye fails the member like any other
                    // it cannot reach; once the partition heals it must learn of the leave.
                    let since = slot.left_at.map_or(Duration::ZERO, |t| {
                        (t - Time::SIM_EPOCH).saturating_sub(PARTITION_GRACE)
                    });
                    if self
                        .world
                        .network
                        .was_cut(observer, subject, since, self.since_start())
                    {
                        self.metrics.partition_failed += 1;
                    } else {
                        let m = mistake();
                        self.metrics.left_marked_failed.push(m);
                    }
                } else if current && slot.status == Status::Running {
                    let since = self.since_start().saturating_sub(PARTITION_GRACE);
                    let long_freeze = slot.freeze_length >= self.suspicion_min
                        && slot.frozen_until + PARTITION_GRACE > self.now;
                    if self
                        .world
                        .network
                        .was_cut(observer, subject, since, self.since_start())
                    {
                        self.metrics.partition_failed += 1;
                    } else if long_freeze {
                        self.metrics.frozen_failed += 1;
                    } else {
                        let m = mistake();
                        self.metrics.false_positives.push(m);
                    }
                }
                self.metrics
                    .heard(self.now, observer, subject, joined_at_ms, Want::Failed);
            }
            ChangeKind::Suspect => {
                if current && slot.status == Status::Running {
                    self.metrics.live_suspected += 1;
                }
                self.metrics.suspected(self.now, subject, joined_at_ms);
            }
            ChangeKind::Leave => {
                self.metrics
                    .heard(self.now, observer, subject, joined_at_ms, Want::Left)
            }
            ChangeKind::Join | ChangeKind::Alive | ChangeKind::Updated => {
                if change.member.state.is_active() {
                    for older in self.older_holders_of_name(subject, joined_at_ms) {
                        self.metrics.moot_for(observer, older, joined_at_ms);
                    }
                    self.metrics
                        .heard(self.now, observer, subject, joined_at_ms, Want::Alive);
                }
            }
        }
    }

    /// The other slots whose instance of `subject`'s name is older than `joined_at_ms`: the originals a clone
    /// outranked. Only clones share a name, so only they and the slots they copied are looked at.
    fn older_holders_of_name(&self, subject: usize, joined_at_ms: u64) -> Vec<usize> {
        let name = self.slots[subject].identity.name();
        let mut older: Vec<usize> = self
            .clones
            .iter()
            .flat_map(|&c| [Some(c), self.slots[c].clone_of])
            .flatten()
            .filter(|&s| s != subject)
            .filter(|&s| {
                let id = &self.slots[s].identity;
                id.name() == name && id.joined_at_ms() < joined_at_ms
            })
            .collect();
        older.sort_unstable();
        older.dedup();
        older
    }

    /// The running nodes that must hear news of `subject`'s end: all but those whose list already holds a newer
    /// instance of its name, for whom that end is moot.
    pub(crate) fn observers_of_end(&self, subject: usize) -> Vec<usize> {
        let id = &self.slots[subject].identity;
        self.running_nodes()
            .filter(|&o| {
                !self.slots[o].node.as_ref().is_some_and(|list| {
                    list.member(id.name())
                        .is_some_and(|m| m.identity.joined_at_ms() > id.joined_at_ms())
                })
            })
            .collect()
    }

    /// Whether some running node heard that `j` left: a member whose goodbye reached only members that are gone
    /// (one that left behind a partition, to the one other member there, which then left too) is, to everyone
    /// still running, a member that stopped answering, and failed is all a list can know of it.
    fn leave_still_known(&self, j: usize) -> bool {
        let joined = self.slots[j].identity.joined_at_ms();
        self.metrics
            .heard_leave(j, joined)
            .any(|o| self.slots[o].status == Status::Running)
    }

    /// Whether every running node lists exactly the running instances as active.
    pub fn converged(&self) -> bool {
        let running: Vec<usize> = self.running_nodes().collect();
        let lists = || running.iter().filter_map(|&i| self.slots[i].node.as_ref());
        if lists().any(|n| n.active_count() != running.len()) {
            return false;
        }
        lists().all(|n| {
            running.iter().all(|&j| {
                let id = &self.slots[j].identity;
                n.member(id.name()).is_some_and(|m| {
                    m.state.is_active() && m.identity.joined_at_ms() == id.joined_at_ms()
                })
            })
        })
    }

    /// The first way in which some running node's list differs from the truth, if any: a running instance
    /// missing or not alive, an instance that stopped still active, or a member that left shown as failed.
    pub fn first_difference_from_truth(&self) -> Option<(usize, usize, String)> {
        let running: Vec<usize> = self.running_nodes().collect();
        for &i in &running {
            let Some(list) = self.slots[i].node.as_ref() else {
                continue;
            };
            for &j in &running {
                let id = &self.slots[j].identity;
                match list.member(id.name()) {
                    Some(m)
                        if m.state.is_active()
                            && m.identity.joined_at_ms() == id.joined_at_ms() => {}
                    other => {
                        let held =
                            other.map_or_else(|| "nothing".to_string(), |m| format!("{m:?}"));
                        return Some((i, j, format!("holds {held} for the running {id:?}")));
                    }
                }
            }
            if list.active_count() != running.len() {
                let stale = list.members().filter(|m| m.state.is_active()).find(|m| {
                    index_of(m.identity.addr()).is_none_or(|j| {
                        !running.contains(&j)
                            || self.slots[j].identity.joined_at_ms() != m.identity.joined_at_ms()
                    })
                });
                if let Some(m) = stale {
                    let j = index_of(m.identity.addr()).unwrap_or(usize::MAX);
                    return Some((i, j, format!("holds {m:?} active, which is not running")));
                }
            }
            for (j, slot) in self.slots.iter().enumerate() {
                if slot.status == Status::Left
                    && let Some(m) = list.member(slot.identity.name())
                    && m.state == roster_core::State::Failed
                    && m.identity.same_instance(&slot.identity)
                    && self.leave_still_known(j)
                {
                    return Some((i, j, format!("holds {m:?}, a member that left, as failed")));
                }
            }
        }
        None
    }
}
