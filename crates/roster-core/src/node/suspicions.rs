//! Suspicions: starting, confirming and expiring the timers that turn a suspect member into a failed one.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::Node;
use crate::broadcast::Priority;
use crate::event::Via;
use crate::member::{Member, State};
use crate::message::Update;
use crate::probe::ProbeKind;
use crate::suspicion::{Bounds, Suspicion};
use crate::time::Time;

impl<R: Rng> Node<R> {
    pub(super) fn start_suspicion(
        &mut self,
        now: Time,
        current: &Member,
        previous: Option<&Member>,
        accuser: Option<Arc<str>>,
    ) {
        let already = previous.is_some_and(|p| {
            p.state == State::Suspect
                && p.identity.same_instance(&current.identity)
                && p.incarnation == current.incarnation
        });
        if already {
            return;
        }
        let timers = self.config.timers(self.list.active_count());
        // Confirmations can only come from alive members other than this node and the accuser.
        let expected = self
            .config
            .suspicion_confirmations
            .min(self.list.count(State::Alive).saturating_sub(2));
        let witnessed = accuser.as_deref() == Some(&*self.name);
        let replaced_look = self.suspicions.start(Suspicion::new(
            Arc::clone(&current.identity),
            current.incarnation,
            accuser,
            witnessed,
            now,
            Bounds {
                min: timers.suspicion_min,
                max: timers.suspicion_max,
                second_hand: self.config.disseminate_deadline,
            },
            expected,
        ));
        self.call_off_look(replaced_look);
        self.stats.suspicions += 1;
    }

    /// Ends the suspicion of the member named `name`, if one runs.
    pub(super) fn end_suspicion(&mut self, name: &str) {
        let look = self.suspicions.end(name);
        self.call_off_look(look);
    }

    /// Stops last look `seq` of a suspicion that has ended: nothing it finds can change the verdict, and its
    /// helpers and stream would be traffic for nothing.
    fn call_off_look(&mut self, seq: Option<u32>) {
        if let Some(seq) = seq {
            self.exchanges.take_probe(seq);
        }
    }

    /// Another member suspects a member this node already suspects: count it, and pass the confirmation on.
    pub(super) fn confirm_suspicion(&mut self, claim: &Member, accuser: Option<Arc<str>>) {
        let Some(accuser) = accuser else { return };
        let Some(suspicion) = self.suspicions.of_mut(&claim.identity, claim.incarnation) else {
            return;
        };
        if *accuser == *self.name {
            suspicion.witness();
        }
        if suspicion.confirm(&accuser) {
            self.enqueue(
                Update {
                    member: claim.clone(),
                    accuser: Some(accuser),
                },
                Priority::Urgent,
            );
        }
    }

    /// Whether this node's own probes of more distinct members than may crash at once have failed in a row:
    /// then the trouble is far more likely here (its packets are not getting out) than at all of them.
    pub(super) fn isolated(&self) -> bool {
        self.recent_failures.len() > self.config.max_simultaneous_failures as usize
    }

    /// The driver calls in at least once a probe interval while this process runs, so a `silence` longer
    /// than `suspicion_min` means it was stopped or starved (a paused container, a stopped process, a
    /// suspended VM). Its suspicions ran out meanwhile without it hearing their refutations, and what waited in
    /// its socket is handled next, oldest first: a verdict sent before a refutation would end a suspicion that
    /// the refutation behind it answers. It takes the silence as isolation and starts over as a node that can
    /// talk again does, and for `suspicion_min` takes no verdict from elsewhere as the end of a suspicion.
    pub(super) fn resume_after(&mut self, now: Time, silence: Duration) {
        // Cheap tests first: this runs at every input.
        if silence <= self.config.probe_interval || self.suspicions.is_empty() {
            return;
        }
        let min = self.config.timers(self.list.active_count()).suspicion_min;
        if silence <= min {
            return;
        }
        self.catching_up_until = now + min;
        self.rejoin_conversation(now);
    }

    /// This node was isolated and a probe just got through: what it suspected while nobody could hear it never
    /// reached its subjects. It tells the subjects of its own accusations now, directly and by gossip, and gives
    /// every suspicion a whole `suspicion_min` before any can end in a failure. The suspicions it heard from
    /// others cut off with it are theirs to tell, as each of them does on its way back: repeated here too, they
    /// made a burst of one datagram per suspect from every member of the cut (hundreds each, after a cut of a
    /// rack). A subject nobody tells still hears of its suspicion from this list's last look before a failure.
    pub(super) fn rejoin_conversation(&mut self, now: Time) {
        let later = now + self.config.timers(self.list.active_count()).suspicion_min;
        let me = Arc::clone(&self.name);
        let accused: Vec<Update> = self
            .suspicions
            .iter_mut()
            .filter_map(|s| {
                s.postpone(later);
                if !s.accusers().any(|a| *a == me) {
                    return None;
                }
                self.list
                    .get(s.member.name())
                    .filter(|m| m.state == State::Suspect)
                    .map(|m| Update {
                        member: m.clone(),
                        accuser: Some(Arc::clone(&me)),
                    })
            })
            .collect();
        for update in accused {
            self.enqueue(update.clone(), Priority::Urgent);
            let subject = Arc::clone(&update.member.identity);
            self.send(subject.addr(), Some(subject), &[], Some(&update));
        }
    }

    pub(super) fn expire_suspicions(&mut self, now: Time) {
        if self.isolated() {
            // An isolated node declares nobody failed: its verdicts would be wrong, and once its packets flow
            // again they would spread. Its suspicions wait, and get a whole `suspicion_min` after it can talk
            // again for their subjects to refute them.
            let later = now + self.config.timers(self.list.active_count()).suspicion_min;
            self.suspicions.postpone_due(now, later);
            return;
        }
        let room = self.config.last_looks_at_once();
        let mut looks_out = self.suspicions.looks_out();
        loop {
            // Suspicions before `from` wait for a last look while as many are out as may be.
            let mut from = 0;
            while let Some(at) = self.suspicions.first_due_from(now, from) {
                if self.suspicions.at_mut(at).wants_look() {
                    if looks_out < room {
                        self.take_last_look(now, at);
                        looks_out += 1;
                    } else {
                        from = at + 1;
                    }
                    continue;
                }
                if self.conclude_suspicion(now, at) {
                    looks_out -= 1;
                }
            }
            if from == 0 {
                return;
            }
            if looks_out >= room {
                // Every look out ends after `now`: the ones that ended now were just decided.
                if let Some(end) = self.suspicions.first_look_end() {
                    self.suspicions.postpone_due(now, end);
                }
                return;
            }
            // A verdict behind a waiting suspicion made room for it.
        }
    }

    /// Ends the suspicion at `at`, now up, and declares its member failed if the suspicion still stands.
    /// Returns whether a last look of it was out.
    fn conclude_suspicion(&mut self, now: Time, at: usize) -> bool {
        let mut suspicion = self.suspicions.take(at);
        let looked = suspicion.look_failed();
        let Some(current) = self.list.get(suspicion.member.name()).cloned() else {
            return looked;
        };
        let still = current.state == State::Suspect
            && current.identity.same_instance(&suspicion.member)
            && current.incarnation == suspicion.incarnation;
        if still {
            let claim = Member {
                state: State::Failed,
                ..current
            };
            let me = self.as_sender();
            self.apply(now, claim, None, Via::SuspicionTimeout, &me, false);
            if suspicion.alone(&self.name) {
                self.reconnects.mark_lone(&suspicion.member);
            }
        }
        looked
    }

    /// Probes the suspect of the suspicion at `at` once more before declaring it failed (see `suspicion`): a
    /// whole probe, helpers and stream included, because a lone ping is lost often enough under loss to fail a
    /// live member that this node never saw fail itself.
    fn take_last_look(&mut self, now: Time, at: usize) {
        let seq = self.next_seq();
        let target = Arc::clone(&self.suspicions.at_mut(at).member);
        let Some(current) = self.list.get(target.name()).cloned() else {
            // Gone from the list: nothing to look at, and the suspicion ends at its deadline.
            self.suspicions.at_mut(at).start_look(seq, now);
            return;
        };
        // The suspicion rides along, so that a suspect that had not heard of it refutes in its ack.
        let suspicion = Update {
            member: current,
            accuser: self.suspicions.at_mut(at).accusers().next().cloned(),
        };
        let until = self.start_probe(now, target, seq, Some(&suspicion), ProbeKind::LastLook);
        self.suspicions.at_mut(at).start_look(seq, until);
        self.stats.last_looks += 1;
    }

    /// Whether ack `seq` from `from` answers a last look; the suspicion then waits `suspicion_min` more for the
    /// suspect's refutation.
    pub(super) fn answer_last_look(&mut self, now: Time, seq: u32, from: &str) -> bool {
        let wait = self.config.timers(self.list.active_count()).suspicion_min;
        self.suspicions.answer_look(from, seq, now + wait)
    }
}
