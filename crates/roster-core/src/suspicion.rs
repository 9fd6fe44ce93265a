//! `Suspicion`: one member's suspicion timer, which shrinks as independent members confirm it (Lifeguard).
//!
//! Every member that hears a suspicion runs its own timer, so a failure is declared by many members at about
//! the same time rather than by one prober whose news may be lost. The timeout starts at `max` and, with `c` of
//! the `k` expected confirmations in, is
//!
//! ```text
//! timeout(c) = max(min, max - (max - min) * ln(c + 1) / ln(k + 1))
//! ```
//!
//! measured from when this member first heard the suspicion. `k` is never more than the members left who could
//! confirm; with nobody left to confirm (`k = 0`) the timeout is `min`, so a small cluster that lost most of its
//! members does not wait for confirmations that cannot come.
//!
//! A member that has not seen the suspect fail itself takes a last look before it declares it failed: one more
//! probe (helpers and stream included, as a lone ping is lost too often under loss), whose ping carries the
//! suspicion. A suspect that is alive answers, and hears of its suspicion if it had not, so its refutation comes
//! back with the ack; the suspicion then waits `min` again. Only an unanswered look ends it. After a partition heals, a member hears the far side's suspicions of members it could reach all along,
//! many at once and with their confirmations in, while the refutations spread behind a flood of news: without
//! the look it would fail them before their answers arrived.
//!
//! A suspicion taken second-hand from a full sync (the far side's stale verdict after a partition heals) waits
//! the dissemination deadline unless a member's own probe confirms it: nobody here has seen the member fail, and
//! after a heal its refutation competes with a flood of news. The wait still ends, so that a list that heard of
//! a real failure only through a sync does not hold the member suspect until its own turn to probe it.

use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;

use crate::member::Identity;
use crate::time::Time;

/// Last looks a suspicion takes at most: an answered look gives the suspect's refutation time to arrive, and a
/// suspect that answers every look and still never refutes is failed after the last.
const MAX_LOOKS: u8 = 3;

/// How long a suspicion runs: from `max` down to `min` as confirmations come in, or `second_hand` while nobody
/// here has confirmed it.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub min: Duration,
    pub max: Duration,
    pub second_hand: Duration,
}

/// A running suspicion.
#[derive(Clone, Debug)]
pub struct Suspicion {
    pub member: Arc<Identity>,
    pub incarnation: u32,
    started: Time,
    min: Duration,
    max: Duration,
    second_hand: Duration,
    expected: usize,
    /// Whether this member's own probe of the suspect failed.
    witnessed: bool,
    /// The sequence number of a last look not yet answered.
    look: Option<u32>,
    /// Last looks taken.
    looks: u8,
    /// Who raised it first-hand (whose own probe failed); `None` for a suspicion taken second-hand from a full
    /// sync, which may be the other side's stale verdict after a partition and so waits `second_hand`.
    first: Option<Arc<str>>,
    /// Independent first-hand accusers after the first.
    confirmers: Vec<Arc<str>>,
    deadline: Time,
    not_before: Time,
    /// Another member declared the suspect failed while this one still waited.
    declared_elsewhere: bool,
}

impl Suspicion {
    /// A suspicion of `member` at `incarnation`, first raised by `accuser` (`None`: second-hand); `witnessed`
    /// when that accuser is this member itself.
    pub fn new(
        member: Arc<Identity>,
        incarnation: u32,
        accuser: Option<Arc<str>>,
        witnessed: bool,
        now: Time,
        Bounds {
            min,
            max,
            second_hand,
        }: Bounds,
        expected: usize,
    ) -> Suspicion {
        let mut suspicion = Suspicion {
            member,
            incarnation,
            started: now,
            min,
            max,
            second_hand,
            expected,
            witnessed,
            look: None,
            looks: 0,
            first: accuser,
            confirmers: Vec::new(),
            deadline: now,
            not_before: now,
            declared_elsewhere: false,
        };
        suspicion.deadline = now + suspicion.timeout();
        suspicion
    }

    /// When the member is to be declared failed.
    pub fn deadline(&self) -> Time {
        self.deadline
    }

    /// Confirmations in so far (first-hand accusers after the first).
    pub fn confirmations(&self) -> usize {
        self.confirmers.len()
    }

    /// Every first-hand accuser known so far, the first one first.
    pub fn accusers(&self) -> impl Iterator<Item = &Arc<str>> {
        self.first.iter().chain(&self.confirmers)
    }

    /// This member's own probe of the suspect failed.
    pub fn witness(&mut self) {
        self.witnessed = true;
    }

    /// Whether the suspicion, now due, wants a last look first.
    pub fn wants_look(&self) -> bool {
        !self.witnessed && self.look.is_none() && self.looks < MAX_LOOKS
    }

    /// Whether a last look is out and not yet answered.
    pub fn looking(&self) -> bool {
        self.look.is_some()
    }

    /// A last look went out as ping `seq`; it fails unless answered by `until`.
    pub fn start_look(&mut self, seq: u32, until: Time) {
        self.look = Some(seq);
        self.looks += 1;
        self.postpone(until);
    }

    /// The unanswered look that was due: the suspect did not answer this member either.
    pub fn look_failed(&mut self) -> bool {
        let pending = self.look.take().is_some();
        if pending {
            self.witnessed = true;
        }
        pending
    }

    /// Whether ack `seq` answers this suspicion's last look; if it does, the suspicion waits until `until` for
    /// the refutation.
    pub fn look_answered(&mut self, seq: u32, until: Time) -> bool {
        if self.look != Some(seq) {
            return false;
        }
        self.look = None;
        self.postpone(until);
        true
    }

    /// Counts `accuser` if it is new; returns whether it was.
    pub fn confirm(&mut self, accuser: &str) -> bool {
        if self.first.is_none() {
            // The first first-hand accuser of a second-hand suspicion: from now on it runs as first-hand.
            self.first = Some(accuser.into());
        } else {
            let known = self.first.as_deref() == Some(accuser)
                || self.confirmers.iter().any(|a| &**a == accuser);
            if self.confirmations() >= self.expected || known {
                return false;
            }
            self.confirmers.push(accuser.into());
        }
        self.deadline = (self.started + self.timeout()).max(self.not_before);
        true
    }

    /// When this node first suspected the member.
    pub fn started(&self) -> Time {
        self.started
    }

    /// Brings the deadline forward to `until` if it is later (others have declared the member failed), never
    /// before a postponement.
    pub fn hasten(&mut self, until: Time) {
        self.declared_elsewhere = true;
        self.deadline = self.deadline.min(until).max(self.not_before);
    }

    /// Whether `me` raised this suspicion and nobody else ever backed it: no confirmation, and no other
    /// member's verdict. A failure it ends in is this member's word alone.
    pub fn alone(&self, me: &str) -> bool {
        self.first.as_deref() == Some(me) && self.confirmers.is_empty() && !self.declared_elsewhere
    }

    /// Keeps the deadline at `until` or later (the node could not trust its own verdict for a while).
    pub fn postpone(&mut self, until: Time) {
        self.not_before = self.not_before.max(until);
        self.deadline = self.deadline.max(until);
    }

    /// Lowers the confirmations to wait for when fewer members are left to give them (others were suspected
    /// or failed since this suspicion began). The timeout only ever shrinks this way.
    pub fn limit_expected(&mut self, most: usize) {
        if most < self.expected {
            self.expected = most.max(self.confirmations());
            self.deadline = (self.started + self.timeout()).max(self.not_before);
        }
    }

    fn timeout(&self) -> Duration {
        if self.first.is_none() {
            return self.second_hand;
        }
        if self.expected == 0 {
            return self.min;
        }
        let c = self.confirmations() as f64;
        let fraction = (c + 1.0).ln() / (self.expected as f64 + 1.0).ln();
        let span = self.max.saturating_sub(self.min);
        self.max
            .saturating_sub(span.mul_f64(fraction.clamp(0.0, 1.0)))
            .max(self.min)
    }
}

/// The suspicion timers a node runs: at most one per member, each for one instance at one incarnation.
///
/// Kept in the order they were started, a stopped timer's place taken by the last (the order timers that are
/// up at once fire in, and suspicions are said again in), with an index by name: after a partition a list can
/// suspect half the cluster, and every claim that reaches it looks its member up here.
#[derive(Clone, Debug, Default)]
pub struct Suspicions {
    running: Vec<Suspicion>,
    /// Where each member's suspicion sits in `running`.
    at: HashMap<Box<str>, usize>,
}

impl Suspicions {
    /// Starts `suspicion`, in place of any other of the same member.
    /// Returns the sequence number of a last look still out for the suspicion it replaces.
    pub fn start(&mut self, suspicion: Suspicion) -> Option<u32> {
        let look = self.end(suspicion.member.name());
        self.at
            .insert(suspicion.member.name().into(), self.running.len());
        self.running.push(suspicion);
        look
    }

    /// Ends the suspicion of the member named `name`, if one runs; the others keep their order. Returns the
    /// sequence number of its last look, if one is still out.
    pub fn end(&mut self, name: &str) -> Option<u32> {
        let at = self.at.remove(name)?;
        let ended = self.running.remove(at);
        for place in self.at.values_mut() {
            if *place > at {
                *place -= 1;
            }
        }
        ended.look
    }

    /// Ends every suspicion.
    pub fn clear(&mut self) {
        self.running.clear();
        self.at.clear();
    }

    /// How many run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// When the earliest suspicion is up.
    pub fn next_deadline(&self) -> Option<Time> {
        self.running.iter().map(Suspicion::deadline).min()
    }

    /// The suspicion of `member` at `incarnation`, if it is the one running.
    pub fn of(&self, member: &Identity, incarnation: u32) -> Option<&Suspicion> {
        let s = &self.running[*self.at.get(member.name())?];
        (s.member.same_instance(member) && s.incarnation == incarnation).then_some(s)
    }

    /// The suspicion of `member` at `incarnation`, to change.
    pub fn of_mut(&mut self, member: &Identity, incarnation: u32) -> Option<&mut Suspicion> {
        let s = &mut self.running[*self.at.get(member.name())?];
        (s.member.same_instance(member) && s.incarnation == incarnation).then_some(s)
    }

    /// Every suspicion, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Suspicion> {
        self.running.iter_mut()
    }

    /// Moves every suspicion that is up at `now` to `until`.
    pub fn postpone_due(&mut self, now: Time, until: Time) {
        self.running
            .iter_mut()
            .filter(|s| s.deadline() <= now)
            .for_each(|s| s.postpone(until));
    }

    /// The position of the first suspicion from position `from` on that is up at `now`, if any.
    pub fn first_due_from(&self, now: Time, from: usize) -> Option<usize> {
        self.running
            .get(from..)?
            .iter()
            .position(|s| s.deadline() <= now)
            .map(|at| from + at)
    }

    /// Last looks out and not yet answered.
    pub fn looks_out(&self) -> usize {
        self.running.iter().filter(|s| s.looking()).count()
    }

    /// When the first last look still out ends, answered or not.
    pub fn first_look_end(&self) -> Option<Time> {
        self.running
            .iter()
            .filter(|s| s.looking())
            .map(Suspicion::deadline)
            .min()
    }

    /// The suspicion at `at` (from [`Suspicions::first_due_from`]).
    pub fn at_mut(&mut self, at: usize) -> &mut Suspicion {
        &mut self.running[at]
    }

    /// Stops and returns the suspicion at `at`; the last takes its place.
    pub fn take(&mut self, at: usize) -> Suspicion {
        let taken = self.running.swap_remove(at);
        self.at.remove(taken.member.name());
        if let Some(moved) = self.running.get(at) {
            *self
                .at
                .get_mut(moved.member.name())
                .expect("every running suspicion is indexed") = at;
        }
        taken
    }

    /// Whether ack `seq` from the member named `from` answers a last look; that suspicion then waits until
    /// `until`.
    pub fn answer_look(&mut self, from: &str, seq: u32, until: Time) -> bool {
        self.at
            .get(from)
            .is_some_and(|&at| self.running[at].look_answered(seq, until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        min: Duration::from_secs(2),
        max: Duration::from_secs(6),
        second_hand: Duration::from_secs(15),
    };

    fn suspicion(expected: usize) -> Suspicion {
        let id = Arc::new(
            Identity::new("m9", "10.0.0.9:1".parse().unwrap(), 1, Default::default()).unwrap(),
        );
        Suspicion::new(id, 3, Some("m1".into()), true, Time::ZERO, BOUNDS, expected)
    }

    #[test]
    fn confirmations_shrink_the_timeout_down_to_min() {
        let mut s = suspicion(2);
        assert_eq!(s.deadline(), Time::ZERO + Duration::from_secs(6));
        assert!(s.confirm("m2"));
        assert!(!s.confirm("m2"), "the same accuser counts once");
        assert!(!s.confirm("m1"), "the first accuser is not a confirmation");
        let after_one = s.deadline() - Time::ZERO;
        assert!(
            after_one < Duration::from_secs(6) && after_one > Duration::from_secs(2),
            "{after_one:?}"
        );
        assert!(s.confirm("m3"));
        assert_eq!(s.deadline(), Time::ZERO + Duration::from_secs(2));
        assert!(!s.confirm("m4"), "no more than expected");
    }

    #[test]
    fn a_second_hand_suspicion_waits_longest_until_someone_accuses_first_hand() {
        let id = Arc::new(
            Identity::new("m9", "10.0.0.9:1".parse().unwrap(), 1, Default::default()).unwrap(),
        );
        let mut s = Suspicion::new(id, 3, None, true, Time::ZERO, BOUNDS, 0);
        assert_eq!(s.deadline(), Time::ZERO + Duration::from_secs(15));
        s.limit_expected(0);
        assert_eq!(s.deadline(), Time::ZERO + Duration::from_secs(15));
        assert!(s.confirm("m1"));
        assert_eq!(s.deadline(), Time::ZERO + Duration::from_secs(2));
    }

    #[test]
    fn with_nobody_left_to_confirm_the_timeout_is_min() {
        assert_eq!(suspicion(0).deadline(), Time::ZERO + Duration::from_secs(2));
        let mut s = suspicion(2);
        s.limit_expected(0);
        assert_eq!(s.deadline(), Time::ZERO + Duration::from_secs(2));
    }

    #[test]
    fn a_member_that_did_not_see_the_failure_looks_before_it_declares_it() {
        let id = Arc::new(
            Identity::new("m9", "10.0.0.9:1".parse().unwrap(), 1, Default::default()).unwrap(),
        );
        let at = |s: u64| Time::ZERO + Duration::from_secs(s);
        let mut s = Suspicion::new(id, 3, Some("m1".into()), false, Time::ZERO, BOUNDS, 0);
        assert!(s.wants_look());
        s.start_look(7, at(3));
        assert!(!s.wants_look(), "one look at a time");
        assert!(!s.look_answered(8, at(5)), "another ping's ack");
        assert!(s.look_answered(7, at(5)));
        assert_eq!(s.deadline(), at(5), "an answer gives the refutation time");
        s.start_look(9, at(6));
        assert!(s.look_failed(), "unanswered");
        assert!(
            !s.wants_look(),
            "no look after the suspect failed to answer one"
        );
        assert!(!s.look_failed());
    }

    #[test]
    fn a_suspicion_nobody_backed_is_the_accusers_word_alone() {
        let mut own = suspicion(2);
        assert!(own.alone("m1"));
        assert!(!own.alone("m2"), "raised by another member");
        own.hasten(Time::ZERO + Duration::from_secs(2));
        assert!(!own.alone("m1"), "another member declared it failed");
        let mut confirmed = suspicion(2);
        confirmed.confirm("m3");
        assert!(!confirmed.alone("m1"));
    }

    #[test]
    fn looks_are_bounded() {
        let id = Arc::new(
            Identity::new("m9", "10.0.0.9:1".parse().unwrap(), 1, Default::default()).unwrap(),
        );
        let mut s = Suspicion::new(id, 3, Some("m1".into()), false, Time::ZERO, BOUNDS, 0);
        for seq in 0..u32::from(MAX_LOOKS) {
            assert!(s.wants_look());
            s.start_look(seq, Time::ZERO);
            assert!(s.look_answered(seq, Time::ZERO));
        }
        assert!(!s.wants_look());
        let mut witnessed = suspicion(0);
        assert!(!witnessed.wants_look(), "its own probe failed: no look");
        witnessed.witness();
        assert!(!witnessed.wants_look());
    }

    #[test]
    fn a_member_has_one_suspicion_and_the_earliest_deadline_is_the_parts() {
        let mut running = Suspicions::default();
        assert_eq!(running.next_deadline(), None);
        running.start(suspicion(0));
        let mut later = suspicion(4);
        later.incarnation = 4;
        running.start(later);
        assert_eq!(
            running.len(),
            1,
            "a new suspicion replaces the member's old one"
        );
        let id = Arc::clone(&running.at_mut(0).member);
        assert!(running.of(&id, 3).is_none());
        assert!(running.of(&id, 4).is_some());
        assert_eq!(running.next_deadline(), Some(Time::ZERO + BOUNDS.max));
        assert_eq!(running.first_due_from(Time::ZERO + BOUNDS.min, 0), None);
        running.postpone_due(Time::ZERO + BOUNDS.max, Time::ZERO + BOUNDS.second_hand);
        assert_eq!(
            running.next_deadline(),
            Some(Time::ZERO + BOUNDS.second_hand)
        );
        assert_eq!(
            running.first_due_from(Time::ZERO + BOUNDS.second_hand, 0),
            Some(0)
        );
        running.end("m9");
        assert_eq!(running.len(), 0);
    }

    #[test]
    fn suspicions_are_found_by_name_after_others_end_and_fire() {
        let of = |name: &str| {
            let id = Identity::new(name, "10.0.0.9:1".parse().unwrap(), 1, Default::default());
            let id = Arc::new(id.unwrap());
            Suspicion::new(id, 0, Some("m1".into()), true, Time::ZERO, BOUNDS, 0)
        };
        let mut running = Suspicions::default();
        for name in ["a", "b", "c", "d", "e"] {
            running.start(of(name));
        }
        let order = |running: &mut Suspicions| -> Vec<String> {
            running
                .iter_mut()
                .map(|s| s.member.name().to_owned())
                .collect()
        };
        running.end("b");
        assert_eq!(
            order(&mut running),
            ["a", "c", "d", "e"],
            "an end keeps the order"
        );
        let fired = running.take(0);
        assert_eq!(fired.member.name(), "a");
        assert_eq!(
            order(&mut running),
            ["e", "c", "d"],
            "the last takes a fired one's place"
        );
        for name in ["c", "d", "e"] {
            let id = Arc::clone(&of(name).member);
            assert!(
                running.of(&id, 0).is_some(),
                "{name} is found where it now sits"
            );
            assert!(running.of(&id, 1).is_none(), "at its own incarnation only");
        }
        for name in ["a", "b"] {
            assert!(running.of(&of(name).member, 0).is_none(), "{name} ended");
        }
        running.start(of("c"));
        assert_eq!(
            order(&mut running),
            ["e", "d", "c"],
            "a restarted suspicion goes last"
        );
        assert!(
            !running.answer_look("d", 0, Time::ZERO),
            "d has no look to answer"
        );
    }
}
