//! Claims: applying what another member says about a third to this list, and what each change sets off.

use std::sync::Arc;

use rand::Rng;

use super::{Node, Sender};
use crate::broadcast::Priority;
use crate::event::{ChangeKind, Via};
use crate::member::{Member, State};
use crate::membership::Applied;
use crate::message::Update;
use crate::time::Time;

impl<R: Rng> Node<R> {
    /// Applies a claim heard `via` some path from `sender`. `from_sync` claims come from a full list: a failure
    /// claim about a member this node holds as active is taken as a suspicion only, so that after a partition
    /// the two sides' verdicts on each other do not stick before their subjects can refute them.
    pub(super) fn apply(
        &mut self,
        now: Time,
        mut claim: Member,
        accuser: Option<Arc<str>>,
        via: Via,
        sender: &Sender,
        from_sync: bool,
    ) {
        if claim.name() == &*self.name {
            self.apply_to_self(now, claim, sender);
            return;
        }
        if self.list.get(claim.name()).is_none() {
            if let Some(grave) = self.graves.holds(&claim) {
                // Old news about a member this list reaped. A peer that holds a member that left as anything
                // but left (it missed the goodbye behind a partition, say) is told so, or it would keep showing
                // it until its own reap, or fail it. A peer that holds as active a member buried here as failed
                // (the member itself, or a list on the far side of a partition that outlasted the reap) is told
                // the verdict too, as a failed entry not yet reaped would be in a sync: it suspects the member,
                // which refutes if it is alive after all. Without that, this list would learn of the member only
                // once the member itself happened to ping it. And a peer that still holds an instance older
                // than the buried one (it was cut off when the member restarted) learns of the newer one, or it
                // would keep the old one that nobody else holds, and so nobody else ever probes.
                let same_instance = grave.identity.same_instance(&claim.identity);
                let left_elsewhere = claim.state != State::Left && grave.state == State::Left;
                let buried_alive = claim.state.is_active() && grave.state == State::Failed;
                let outdated = grave.identity.joined_at_ms() > claim.identity.joined_at_ms();
                if outdated || (same_instance && (left_elsewhere || buried_alive)) {
                    self.corrections.push(Update {
                        member: grave.claim(),
                        accuser: None,
                    });
                }
                return;
            }
            self.graves.remove(claim.name());
        }
        if let Some(held) = self.list.get(claim.name())
            && held.state == State::Left
            && claim.state != State::Left
            && claim.incarnation <= held.incarnation
            && held.identity.same_instance(&claim.identity)
            && *sender.name != *self.name
        {
            // A peer that missed the goodbye (it was paused, or cut off, while the news went round) still holds
            // the member as alive, or suspects it: tell it the member left, or it would fail it.
            self.corrections.push(Update {
                member: held.clone(),
                accuser: None,
            });
        }
        let mut accuser = accuser;
        // A verdict is taken at its word only from a member this list holds as alive, and a failure only of a
        // member this list already suspects. A verdict from a full sync, or from a member this list itself
        // holds as suspect or failed (or that has just come back from either), may be the far side's view of a
        // partition that has just healed; and a failure of a member this list has no doubt about may be too
        // (its sender may not be suspected here yet). Either becomes a second-hand suspicion, which confirms
        // nothing and waits the longest, so that its subject has time to refute it. A real failure is
        // suspected everywhere before anyone declares it, so its notices still land on suspects.
        let held = self
            .list
            .get(claim.name())
            .filter(|m| m.identity.same_instance(&claim.identity))
            .map(|m| m.state);
        let trusted = !from_sync && sender.alive;
        let doubtful = match claim.state {
            State::Failed => !trusted || held == Some(State::Alive),
            State::Suspect => !trusted,
            State::Alive | State::Left => false,
        };
        if doubtful && held.is_some_and(State::is_active) {
            claim.state = State::Suspect;
            accuser = None;
        }
        if claim.state == State::Failed && held == Some(State::Suspect) {
            // No list declares a member failed sooner than `suspicion_min` after it first suspected it, so that
            // a member suspected by mistake has that long everywhere to refute, nor while it catches up after
            // a silence (the verdict may be older than the refutation queued behind it). Another list's
            // verdict still brings this list's own deadline forward to that moment.
            let min = self.config.timers(self.list.active_count()).suspicion_min;
            let catching_up = self.catching_up_until;
            if let Some(s) = self.suspicions.of_mut(&claim.identity, claim.incarnation) {
                let at = (s.started() + min).max(catching_up);
                if now < at {
                    s.hasten(at);
                    return;
                }
            }
        }
        match self.list.apply(claim.clone()) {
            Applied::Unchanged => {
                match claim.state {
                    State::Suspect => self.confirm_suspicion(&claim, accuser),
                    // Another member's verdict on a member already failed here: not this list's alone.
                    State::Failed if *sender.name != *self.name => {
                        self.reconnects.corroborate(&claim.identity)
                    }
                    _ => {}
                }
            }
            Applied::Changed { previous } => {
                let current = self.list.get(claim.name()).cloned().expect("just applied");
                let from = if sender.name == self.name {
                    None
                } else {
                    sender.identity.clone()
                };
                self.after_state_change(now, &current, previous.as_ref());
                if current.state == State::Suspect {
                    self.start_suspicion(now, &current, previous.as_ref(), accuser.clone());
                } else {
                    self.end_suspicion(current.name());
                }
                if previous.as_ref().is_some_and(|p| p.state == State::Alive)
                    && current.state != State::Alive
                {
                    // One fewer member can confirm the suspicions already running.
                    let most = self
                        .config
                        .suspicion_confirmations
                        .min(self.list.count(State::Alive).saturating_sub(2));
                    self.suspicions
                        .iter_mut()
                        .for_each(|s| s.limit_expected(most));
                }
                let accuser = if current.state == State::Suspect {
                    accuser
                } else {
                    None
                };
                let kind = change_kind(previous.as_ref(), &current);
                let priority = news_priority(previous.as_ref(), &current, kind);
                // A seed's answer to this node's join, when it holds more than a packet carries, is the cluster
                // as it stands, not news: each member in it is known wherever the seed's list came from, and
                // whoever first heard of it is still spreading it. The joiner takes them in without passing
                // them on (see `quiet_merge`). Otherwise, in a cold start, every joiner would send its seed's
                // whole list λ log N times, N squared news in all: at 1,000 members the joins took longer to
                // reach every list than the deadline allows (the simulator's `joins` scenario), and agents on
                // one machine drowned in their own gossip. A member first heard of as failed or left in any
                // full list is likewise the sender's old verdict (perhaps from a partition just healed), taken
                // in without being passed on. The sender's own entry is always news (a joiner announcing itself
                // to its seed), and so is what later syncs bring: after a partition heals, that is how each side
                // hears of the other.
                let learned = from_sync
                    && previous.is_none()
                    && *claim.name() != *sender.name
                    && (!current.state.is_active() || self.quiet_merge);
                if !learned {
                    self.enqueue(
                        Update {
                            member: current.clone(),
                            accuser,
                        },
                        priority,
                    );
                }
                if let Some(kind) = kind {
                    self.push_change(kind, current, previous, via, from);
                }
            }
        }
    }

    /// Bookkeeping that follows a member's new state, whether from news or adopted at start.
    pub(super) fn after_state_change(
        &mut self,
        now: Time,
        current: &Member,
        previous: Option<&Member>,
    ) {
        self.track_inactive(now, current);
        let same = previous.filter(|p| p.identity.same_instance(&current.identity));
        if current.state == State::Alive
            && same.is_some_and(|p| p.state != State::Alive)
            && self.returned.len() < self.list.len()
        {
            let until = now + self.config.disseminate_deadline;
            self.returned.push_back((Arc::from(current.name()), until));
        }
        if current.state == State::Alive
            && same.is_some_and(|p| p.state == State::Failed)
            && self.sync_with_returned.is_none()
        {
            // A member failed here is back: most likely a partition healed, and the two sides' lists differ in
            // more than this member (goodbyes, joins, failures each side heard alone). A sync with it, soon,
            // brings both sides' news across rather than waiting for a random sync to cross the old divide.
            self.sync_with_returned = Some(Arc::clone(&current.identity));
            self.next_sync = self
                .next_sync
                .min(now + self.jittered(self.config.probe_interval));
        }
        let was_active = previous
            .is_some_and(|p| p.state.is_active() && p.identity.same_instance(&current.identity));
        if current.state.is_active() && !was_active {
            self.schedule
                .on_member_active(&current.identity, &mut self.rng);
        }
        if current.state.is_active() != was_active {
            self.ring_changed_at = now;
        }
    }

    pub(super) fn track_inactive(&mut self, now: Time, current: &Member) {
        match current.state {
            State::Failed => {
                self.reconnects.track(&current.identity);
                self.reaps
                    .schedule(now, current, self.config.failed_reap_timeout);
            }
            State::Left => self
                .reaps
                .schedule(now, current, self.config.left_reap_timeout),
            State::Alive | State::Suspect => {}
        }
        self.reaps.compact(&self.list);
    }
}

/// How urgently news about a member goes out. Anything but plain "alive" is urgent, and so is an "alive" that
/// clears a failure or brings a new instance in place of an old one: those are the updates whose loss leaves a
/// list wrong. A refutation (the member raised its incarnation to answer a suspicion) and a leave go first,
/// wherever they pass: the one races the suspicion timers running elsewhere, the other the probes of lists
/// that have not heard it, and after a partition heals (or in a cold start) hundreds of fresher updates would
/// otherwise hold either back for seconds.
pub(super) fn news_priority(
    previous: Option<&Member>,
    current: &Member,
    kind: Option<ChangeKind>,
) -> Priority {
    match current.state {
        State::Left => return Priority::Racing,
        State::Suspect | State::Failed => return Priority::Urgent,
        State::Alive => {}
    }
    let same = previous.filter(|p| p.identity.same_instance(&current.identity));
    match same {
        Some(p)
            if p.state.is_active()
                && p.incarnation < current.incarnation
                && kind != Some(ChangeKind::Updated) =>
        {
            Priority::Racing
        }
        _ if kind == Some(ChangeKind::Alive) => Priority::Urgent,
        // A new instance in place of an old one (a restart) clears the old one's failure, or would leave a
        // list holding it: as urgent as the failure was.
        None if previous.is_some() => Priority::Urgent,
        None => Priority::Newcomer,
        _ => Priority::Routine,
    }
}

/// The event a change from `previous` to `current` makes, if any. An incarnation bump of an alive member with
/// nothing else changed is not worth an event.
pub(super) fn change_kind(previous: Option<&Member>, current: &Member) -> Option<ChangeKind> {
    let same = previous.filter(|p| p.identity.same_instance(&current.identity));
    let Some(previous) = same else {
        return Some(match current.state {
            State::Alive | State::Suspect => ChangeKind::Join,
            State::Failed => ChangeKind::Failed,
            State::Left => ChangeKind::Leave,
        });
    };
    match (previous.state, current.state) {
        (State::Alive, State::Alive) => {
            let moved = previous.identity.addr() != current.identity.addr()
                || previous.identity.meta() != current.identity.meta();
            moved.then_some(ChangeKind::Updated)
        }
        (_, State::Alive) => Some(ChangeKind::Alive),
        (State::Suspect, State::Suspect) => None,
        (_, State::Suspect) => Some(ChangeKind::Suspect),
        (State::Failed, State::Failed) => None,
        (_, State::Failed) => Some(ChangeKind::Failed),
        (State::Left, State::Left) => None,
        (_, State::Left) => Some(ChangeKind::Leave),
    }
}
