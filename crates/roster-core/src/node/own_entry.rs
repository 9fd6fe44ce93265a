//! This node's own entry: refuting suspicions of itself, becoming a new instance, and name conflicts.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;

use super::{CONFLICTS_REMEMBERED, JoinAttempt, Node, Sender};
use crate::broadcast::Priority;
use crate::event::{ChangeKind, Event, Via};
use crate::member::{Identity, Member, State};
use crate::membership::Membership;
use crate::message::{Message, Update};
use crate::time::Time;

impl<R: Rng> Node<R> {
    /// A claim about this node's own name.
    pub(super) fn apply_to_self(&mut self, now: Time, claim: Member, sender: &Sender) {
        let local = self.list.local().clone();
        let (ours, theirs) = (&local.identity, &claim.identity);
        if ours.same_instance(theirs) && ours.addr() == theirs.addr() {
            if self.leaving() || self.standby {
                return;
            }
            // Anything but "alive" at our incarnation or above must be refuted; so must an alive claim at an
            // incarnation above ours (news of this instance that this node no longer remembers), or it would
            // stick.
            let refute = if claim.state == State::Alive {
                claim.incarnation > local.incarnation
            } else {
                claim.incarnation >= local.incarnation
            };
            if refute {
                self.refute(now, claim.incarnation, sender);
            } else if sender.probing
                && claim.state != State::Alive
                && claim.incarnation < local.incarnation
            {
                // A prober that still accuses this node of an incarnation it already refuted never heard the
                // refutation (it was cut off, or held this node failed, while the refutation spread, and the
                // refutation is spent): tell it. Only a prober: old accusations still travel in gossip for a
                // while after every refutation, and answering each would multiply the traffic.
                self.corrections.push(Update {
                    member: local,
                    accuser: None,
                });
            }
            return;
        }
        // Another instance of this name. One whose entry is failed or left is gone, and so is one at this very
        // address (no other live process can hold it): a former instance of this member. If the lists rank it
        // above this one, the clock that gave this instance its `joined_at` is behind the old one's (a reboot
        // before the time was synchronised); this instance takes a `joined_at` above it, or it would stay hidden
        // behind its own past.
        let former = !claim.state.is_active() || theirs.addr() == ours.addr();
        if former {
            if theirs.joined_at_ms() >= ours.joined_at_ms() && !self.leaving() {
                self.reidentify(now, theirs.joined_at_ms(), sender);
            }
            return;
        }
        // Another live process claims this name from another address: a cloned machine, or a restart at a new
        // address while the old instance still looks alive. A node still joining yields (the name was taken
        // when it came), and so does one the lists rank below the other (a newer `joined_at`, or the same one
        // from a higher address); the other holds the name.
        let yields = self.join.is_some()
            || self.standby
            || (theirs.joined_at_ms(), theirs.addr()) > (ours.joined_at_ms(), ours.addr());
        if yields {
            self.name_taken = true;
            self.step_aside(now, claim);
            return;
        }
        if theirs.joined_at_ms() == ours.joined_at_ms() && claim.incarnation >= local.incarnation {
            // A copy of this very process: outrank it on every list.
            self.refute(now, claim.incarnation, sender);
        }
        let holder = self.list.local().clone();
        self.note_conflict(holder, claim);
    }

    /// Forgets every member but this node, the bookkeeping about them, and the news about them still queued.
    pub(super) fn forget_members(&mut self) {
        self.list = Membership::new(self.list.local().clone());
        self.broadcasts.forget_updates_except(&self.name);
        self.suspicions.clear();
        self.reconnects.clear();
        self.reaps.clear();
    }

    /// Another live process holds this node's name: stop taking part, say so, and ask to join now and then
    /// until the name is free (its holder left or failed), from standby.
    pub(super) fn step_aside(&mut self, now: Time, holder: Member) {
        if self.standby {
            return;
        }
        self.standby = true;
        self.exchanges.clear_probes();
        self.suspicions.clear();
        let claimant = self.list.local().clone();
        self.note_conflict(holder.clone(), claimant);
        let mut seeds: Vec<SocketAddr> = self.join.take().map(|j| j.seeds).unwrap_or_default();
        seeds.extend(
            self.random_members(3, None, true)
                .iter()
                .map(|id| id.addr()),
        );
        seeds.push(holder.identity.addr());
        seeds.sort_unstable();
        seeds.dedup();
        let interval = self.config.join_retry_max;
        self.join = Some(JoinAttempt {
            seeds,
            started: now,
            next_retry: now + interval,
            interval,
            attempts: 0,
            standby: true,
        });
    }

    /// Records that `claimant` was refused the name `holder` keeps, once per claimant, and passes the news
    /// on: by gossip, or straight to a few members from standby, where this node gossips no more.
    pub(super) fn note_conflict(&mut self, holder: Member, claimant: Member) {
        let known = self
            .conflicts
            .iter()
            .any(|c| c.same_instance(&claimant.identity) && c.addr() == claimant.identity.addr());
        if known {
            return;
        }
        if self.conflicts.len() == CONFLICTS_REMEMBERED {
            self.conflicts.pop_front();
        }
        self.conflicts.push_back(Arc::clone(&claimant.identity));
        self.events.push_back(Event::Conflict {
            holder: holder.clone(),
            claimant: claimant.clone(),
        });
        if self.standby {
            let notice = Message::Conflict { holder, claimant };
            for to in self.random_members(3, None, true) {
                self.send(
                    to.addr(),
                    Some(Arc::clone(&to)),
                    std::slice::from_ref(&notice),
                    None,
                );
            }
        } else {
            self.broadcasts.push_conflict(&holder, &claimant);
        }
    }

    /// A join request whose record claims a name this list holds as active at another address is refused:
    /// the name stays with its holder, which is returned (and the conflict recorded).
    pub(super) fn refused_join(&mut self, records: &[Member]) -> Option<Member> {
        let refused = records.iter().find_map(|claim| {
            let held = self.list.get(claim.name())?;
            let elsewhere = held.state.is_active() && held.identity.addr() != claim.identity.addr();
            elsewhere.then(|| (held.clone(), claim.clone()))
        });
        let (holder, claimant) = refused?;
        self.note_conflict(holder.clone(), claimant);
        Some(holder)
    }

    /// The answer to a refused join: a few live members to ask again later (the holder may be gone by then),
    /// and last the holder of the name.
    pub(super) fn refusal(&mut self, holder: Member) -> Message {
        let mut members: Vec<Member> = self
            .random_members(3, Some(holder.name()), true)
            .into_iter()
            .filter_map(|id| self.list.get(id.name()).cloned())
            .collect();
        if holder.name() != &*self.name {
            members.push(self.list.local().clone());
        }
        members.push(holder);
        Message::SyncResponse {
            digest: self.list.digest(),
            members,
        }
    }

    /// Raises this node's incarnation above `above` to answer a claim that it is not alive, and tells everyone,
    /// the sender of the claim first.
    pub(super) fn refute(&mut self, now: Time, above: u32, sender: &Sender) {
        self.stats.refutations += 1;
        self.awareness.apply(1);
        let local = match above.checked_add(1) {
            Some(incarnation) => Member {
                incarnation,
                state: State::Alive,
                ..self.list.local().clone()
            },
            // No incarnation is left above the claim: only a newer `joined_at` outranks it.
            None => self.successor_instance(now, self.list.local().identity.joined_at_ms()),
        };
        let update = self.publish_local(local, ChangeKind::Alive, sender.identity.clone());
        if sender.name != self.name {
            self.reply(sender, &[], Some(&update));
        }
    }

    /// Becomes a new instance of this member, ranked above the instance that joined at `above_ms`, and tells
    /// everyone, the sender of the claim that made it necessary first.
    pub(super) fn reidentify(&mut self, now: Time, above_ms: u64, sender: &Sender) {
        let local = self.successor_instance(now, above_ms);
        let update = self.publish_local(local, ChangeKind::Join, sender.identity.clone());
        if sender.name != self.name {
            self.reply(sender, &[], Some(&update));
        }
    }

    /// This member as a new instance: same name, address and metadata, incarnation 0, and a `joined_at` that is
    /// this node's wall clock or one millisecond past `above_ms`, whichever is later.
    pub(super) fn successor_instance(&self, now: Time, above_ms: u64) -> Member {
        let current = self.list.local();
        let joined_at_ms = self
            .wall_clock(now)
            .unix_ms()
            .max(above_ms.saturating_add(1));
        let identity = Identity::new(
            current.name(),
            current.identity.addr(),
            joined_at_ms,
            current.identity.meta().clone(),
        )
        .expect("the name and metadata were checked when this node started");
        Member::new(Arc::new(identity), 0, current.state)
    }

    /// Makes `local` this node's own entry, queues it for everyone (a refutation or a leave urgently) and
    /// reports the change; returns the update as queued.
    pub(super) fn publish_local(
        &mut self,
        local: Member,
        kind: ChangeKind,
        from: Option<Arc<Identity>>,
    ) -> Update {
        let previous = self.list.set_local(local.clone());
        let update = Update {
            member: local.clone(),
            accuser: None,
        };
        let priority = match kind {
            // This node answers a suspicion (or a failure) of itself, or outranks a former instance.
            ChangeKind::Alive | ChangeKind::Join | ChangeKind::Leave => Priority::Racing,
            _ => Priority::Routine,
        };
        self.enqueue(update.clone(), priority);
        self.push_change(kind, local, Some(previous), Via::Local, from);
        update
    }
}
