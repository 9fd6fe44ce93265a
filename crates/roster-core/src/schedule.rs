//! Which member to probe next, and when.
//!
//! With [`ProbeSchedule::Ring`] every member orders the active members by a hash of each name and probes, in
//! round `r` of the round clock, the member `1 + r mod S` places after itself, where `S` is the ring span (or
//! the number of other members, if fewer). When views agree this is a permutation: every member is probed
//! exactly once per round, by a prober that moves one step back along the ring each round, so a crashed member
//! is probed by someone live within `max_simultaneous_failures` rounds. Because the offset does not depend on
//! the cluster size, lists that disagree on a member (a join still spreading) disturb only the probes of the
//! few members just past it. Rounds follow the round clock the members agree on (see `round_clock`), not each
//! machine's wall clock. Each probe of a target happens at the same phase of the round, derived from the
//! target's name: consecutive probes of one member are exactly one period apart, while probes of different
//! members (and so detections) are spread over the period instead of landing in lockstep. The same rule tells
//! each member who is due to probe it in each round, and when, and the node checks that the ping came.
//!
//! [`ProbeSchedule::Shuffled`] is SWIM's: round-robin over a private shuffled list, new members inserted at
//! random positions, one probe per period at a random phase of this node's own.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::config::{Config, ProbeSchedule};
use crate::member::{Identity, Member};
use crate::membership::Membership;
use crate::time::Time;

#[derive(Clone, Debug)]
pub struct Schedule {
    kind: ProbeSchedule,
    period: Duration,
    /// Ring: how many members after itself a member probes in turn.
    span: usize,
    /// How far the round clock, which numbers the rounds, is ahead of the node's `now`, in microseconds.
    round_offset_us: i64,
    /// Ring: the round whose probe is due next.
    next_round: u64,
    /// Ring: the round whose ping of this node is checked for next.
    watch_round: u64,
    /// How long after its time a prober's ping may arrive: the worst round trip, for the one-way delay and
    /// round clocks not quite in step.
    ping_late: Duration,
    /// Shuffled: when the next probe is due, and the list and cursor.
    next_at: Time,
    order: Vec<Arc<Identity>>,
    cursor: usize,
    /// Ring: the last answer of `next_time`. A node asks for its next deadline after every input, and in a
    /// large list the ring lookup behind the answer costs a few cache misses; it only changes with the round
    /// or the ring.
    ring_due: Cell<Option<RingDue>>,
    /// Ring: this node's own name hash, which places its phase in every round. Asked for after every input
    /// (`prober_check_time`), and the name never changes, so it is read from the list once rather than through
    /// the own entry and its identity, two cache misses in a large list, each time.
    own_hash: Cell<Option<u64>>,
}

#[derive(Clone, Copy, Debug)]
struct RingDue {
    round: u64,
    ring_version: u64,
    at: Option<Time>,
}

impl Schedule {
    pub fn new(config: &Config, rng: &mut impl Rng) -> Schedule {
        let period = config.probe_interval;
        Schedule {
            kind: config.probe_schedule,
            period,
            span: config.ring_span.max(1),
            round_offset_us: 0,
            next_round: 0,
            watch_round: 0,
            ping_late: config.max_rtt,
            // Until `start`, this holds the node's random phase within the period (shuffled schedule).
            next_at: Time::ZERO + period.mul_f64(rng.random::<f64>()),
            order: Vec::new(),
            cursor: 0,
            ring_due: Cell::new(None),
            own_hash: Cell::new(None),
        }
    }

    /// Anchors the schedule at the node's first `now`.
    pub fn start(&mut self, now: Time) {
        self.next_round = self.round_at(now);
        self.watch_round = self.next_round + 1;
        self.next_at = now + self.next_at.since_epoch();
    }

    /// Ring: when to check that the member due to probe this node in the watched round has pinged it. The
    /// ring makes every member's prober of each round known to it, so its silence is news.
    pub fn prober_check_time(&self, list: &Membership) -> Option<Time> {
        let others = list.active_count().saturating_sub(1);
        if self.kind != ProbeSchedule::Ring || others == 0 {
            return None;
        }
        Some(self.ring_time_of(self.watch_round, self.own_hash(list)) + self.ping_late)
    }

    /// The local node's name hash (the same for every instance under its name).
    fn own_hash(&self, list: &Membership) -> u64 {
        if let Some(hash) = self.own_hash.get() {
            return hash;
        }
        let hash = list.local().identity.name_hash();
        self.own_hash.set(Some(hash));
        hash
    }

    /// The watched round was checked at `now`: moves on to the next round not yet checked, and returns since
    /// when a ping counts as the checked round's (half a period before it was due), and who was due to send it.
    pub fn prober_checked<'a>(
        &mut self,
        now: Time,
        list: &'a Membership,
    ) -> (Time, Option<&'a Member>) {
        let round = self.watch_round;
        let due = self.ring_time_of(round, self.own_hash(list));
        self.watch_round = (round + 1).max(self.round_at(now));
        let len = list.active_count();
        let prober = len
            .checked_sub(1)
            .filter(|&others| others > 0)
            .and_then(|others| list.ring_successor(len - ring_offset(round, others, self.span)));
        (due - self.period / 2, prober)
    }

    /// The target and time of the next probe, as the list stands now.
    pub fn next<'a>(&'a self, list: &'a Membership) -> Option<(Time, &'a Member)> {
        match self.kind {
            ProbeSchedule::Ring => {
                let target = self.ring_target(list, self.next_round)?;
                Some((self.ring_time(self.next_round, target), target))
            }
            ProbeSchedule::Shuffled => {
                let target = self.order[self.cursor.min(self.order.len())..]
                    .iter()
                    .find_map(|id| live_entry(list, id))
                    .or_else(|| {
                        (list.active_count() > 1)
                            .then(|| list.ring_successor(1))
                            .flatten()
                    })?;
                Some((self.next_at, target))
            }
        }
    }

    /// When the next probe is due: `next` without the target, cached for the ring schedule.
    pub fn next_time(&self, list: &Membership) -> Option<Time> {
        if self.kind != ProbeSchedule::Ring {
            return self.next(list).map(|(at, _)| at);
        }
        let (round, ring_version) = (self.next_round, list.ring_version());
        if let Some(due) = self.ring_due.get()
            && due.round == round
            && due.ring_version == ring_version
        {
            return due.at;
        }
        let at = self.next(list).map(|(at, _)| at);
        self.ring_due.set(Some(RingDue {
            round,
            ring_version,
            at,
        }));
        at
    }

    /// Ring: the members due to probe `target` in the `rounds` rounds after the one that contains `since`, as
    /// this list orders the ring (every list orders it alike when views agree). Empty for the shuffled schedule,
    /// whose probers nobody can predict.
    pub fn next_probers<'a>(
        &self,
        list: &'a Membership,
        target: &Identity,
        since: Time,
        rounds: usize,
    ) -> Vec<&'a Member> {
        let len = list.active_count();
        let (Some(at), ProbeSchedule::Ring) = (list.ring_position(target), self.kind) else {
            return Vec::new();
        };
        if len < 3 {
            return Vec::new();
        }
        let round = self.round_at(since);
        (1..=rounds as u64)
            .filter_map(|ahead| {
                list.ring_member(at + len - ring_offset(round + ahead, len - 1, self.span))
            })
            .filter(|m| !m.identity.same_instance(target) && m.name() != list.local().name())
            .collect()
    }

    /// Moves past the probe that `next` returned, or past rounds that were missed while this node was not
    /// running (a frozen process probes once on resume, not once per missed round).
    pub fn advance(&mut self, now: Time, list: &Membership, rng: &mut impl Rng) {
        match self.kind {
            ProbeSchedule::Ring => {
                self.next_round = (self.next_round + 1).max(self.round_at(now));
            }
            ProbeSchedule::Shuffled => {
                let position = self.order[self.cursor.min(self.order.len())..]
                    .iter()
                    .position(|id| live_entry(list, id).is_some());
                match position {
                    Some(p) => self.cursor += p + 1,
                    None => self.cursor = self.order.len(),
                }
                if self.cursor >= self.order.len() {
                    self.reshuffle(list, rng);
                }
                self.next_at = (self.next_at + self.period).max(now);
            }
        }
    }

    /// The round clock (see `round_clock`) now reads `offset_us` ahead of `now`: the rounds follow it. A small
    /// change keeps the round in progress; a larger one jumps to the round the round clock is in, so a member
    /// probes at most once more or once less around it.
    pub fn set_round_offset(&mut self, now: Time, offset_us: i64) {
        self.round_offset_us = offset_us;
        self.ring_due.set(None);
        let round = self.round_at(now);
        if round > self.next_round || round + 1 < self.next_round {
            self.next_round = round;
            self.watch_round = round + 1;
        }
    }

    /// The ring round that the round clock is in at `now`.
    fn round_at(&self, now: Time) -> u64 {
        let wall = now.as_micros().saturating_add_signed(self.round_offset_us);
        wall / (self.period.as_micros() as u64).max(1)
    }

    /// A member became active: SWIM inserts it at a random position of the shuffled list.
    pub fn on_member_active(&mut self, identity: &Arc<Identity>, rng: &mut impl Rng) {
        if self.kind == ProbeSchedule::Shuffled {
            let at = rng.random_range(self.cursor.min(self.order.len())..=self.order.len());
            self.order.insert(at, Arc::clone(identity));
        }
    }

    fn reshuffle(&mut self, list: &Membership, rng: &mut impl Rng) {
        self.order.clear();
        self.order.extend(
            list.iter()
                .skip(1)
                .filter(|m| m.state.is_active())
                .map(|m| Arc::clone(&m.identity)),
        );
        self.order.shuffle(rng);
        self.cursor = 0;
    }

    fn ring_target<'a>(&self, list: &'a Membership, round: u64) -> Option<&'a Member> {
        let others = list.active_count().checked_sub(1).filter(|&n| n > 0)?;
        list.ring_successor(ring_offset(round, others, self.span))
    }

    /// When, on the node's own clock, `round` reaches `target`'s phase of it.
    fn ring_time(&self, round: u64, target: &Member) -> Time {
        self.ring_time_of(round, target.identity.name_hash())
    }

    /// `ring_time` for the member whose name hash is `name_hash`.
    fn ring_time_of(&self, round: u64, name_hash: u64) -> Time {
        let period = self.period.as_micros() as u64;
        let phase = ((name_hash & 0xffff_ffff) * period) >> 32;
        let wall = round.saturating_mul(period).saturating_add(phase);
        Time::from_unix_micros(wall.saturating_add_signed(self.round_offset_us.saturating_neg()))
    }
}

/// The ring schedule's rule: in `round`, every member probes the member this many places after itself, among
/// `others` (> 0) members besides itself, cycling through the nearest `span` of them. The offset depends on the
/// cluster size only in a cluster smaller than the span, so two lists that disagree on who is in the cluster
/// (a join or a failure still spreading) still agree on the offset, and differ only in the few targets just
/// past the member they disagree on.
fn ring_offset(round: u64, others: usize, span: usize) -> usize {
    1 + (round % others.min(span).max(1) as u64) as usize
}

fn live_entry<'a>(list: &'a Membership, id: &Identity) -> Option<&'a Member> {
    list.get(id.name())
        .filter(|m| m.state.is_active() && m.identity.same_instance(id))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::member::State;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    /// `n` schedules, each started at `start` (by its own clock, in a cluster where all agree).
    fn started(config: &Config, n: usize, start: Time, rng: &mut SmallRng) -> Vec<Schedule> {
        let mut schedules: Vec<Schedule> = (0..n).map(|_| Schedule::new(config, rng)).collect();
        schedules.iter_mut().for_each(|s| s.start(start));
        schedules
    }

    fn lists(n: usize) -> Vec<Membership> {
        let ids: Vec<Arc<Identity>> = (0..n)
            .map(|i| {
                let addr = SocketAddr::from(([10, 0, 0, 1], 7000 + i as u16));
                Arc::new(Identity::new(format!("node-{i}"), addr, 1, Default::default()).unwrap())
            })
            .collect();
        (0..n)
            .map(|me| {
                let mut list = Membership::new(Member::new(Arc::clone(&ids[me]), 0, State::Alive));
                for (i, id) in ids.iter().enumerate() {
                    if i != me {
                        list.apply(Member::new(Arc::clone(id), 0, State::Alive));
                    }
                }
                list
            })
            .collect()
    }

    #[test]
    fn when_views_agree_the_ring_probes_every_member_once_per_round() {
        let config = Config::default();
        let mut rng = SmallRng::seed_from_u64(1);
        for n in [2, 5, 16, 101] {
            let lists = lists(n);
            let start = Time::SIM_EPOCH;
            let mut schedules = started(&config, n, start, &mut rng);
            for _round in 0..(2 * n) {
                let mut probed: Vec<&str> = Vec::new();
                for (schedule, list) in schedules.iter().zip(&lists) {
                    let (_, target) = schedule.next(list).unwrap();
                    assert_ne!(target.name(), list.local().name());
                    probed.push(target.name());
                }
                probed.sort_unstable();
                probed.dedup();
                assert_eq!(
                    probed.len(),
                    n,
                    "with {n} members, someone was probed twice in one round"
                );
                for (schedule, list) in schedules.iter_mut().zip(&lists) {
                    schedule.advance(start, list, &mut rng);
                }
            }
        }
    }

    #[test]
    fn each_member_knows_its_prober_of_each_round_and_when_its_ping_is_due() {
        let config = Config::default();
        let mut rng = SmallRng::seed_from_u64(3);
        for n in [2, 5, config.ring_span + 1, config.ring_span + 2, 40] {
            let lists = lists(n);
            let start = Time::SIM_EPOCH;
            let mut schedules = started(&config, n, start, &mut rng);
            for _round in 0..(2 * n) {
                // The first round checked is the one after the start's.
                for (schedule, list) in schedules.iter_mut().zip(&lists) {
                    schedule.advance(start, list, &mut rng);
                }
                let probes: Vec<(Time, String)> = schedules
                    .iter()
                    .zip(&lists)
                    .map(|(s, l)| {
                        let (at, target) = s.next(l).unwrap();
                        (at, target.name().to_string())
                    })
                    .collect();
                for (me, (schedule, list)) in schedules.iter_mut().zip(&lists).enumerate() {
                    let name = list.local().name().to_string();
                    let check = schedule.prober_check_time(list).unwrap();
                    let (since, prober) = schedule.prober_checked(start, list);
                    let prober = prober.unwrap().name().to_string();
                    let p = lists
                        .iter()
                        .position(|l| l.local().name() == prober)
                        .unwrap();
                    assert_eq!(
                        probes[p].1, name,
                        "{n} members: node {me} expects the wrong prober"
                    );
                    assert_eq!(check, probes[p].0 + config.max_rtt, "{n} members");
                    assert!(since < probes[p].0, "{n} members");
                }
            }
        }
    }

    /// How members went unprobed over `rounds` rounds when the lists of `unaware` have not heard of the last
    /// member yet (a join still spreading): the longest run of rounds in which a member every list knows went
    /// unprobed, and how many of them went unprobed for two rounds in a row or more.
    fn unprobed_runs(span: usize, n: usize, unaware: &[usize], rounds: u64) -> (u64, usize) {
        let config = Config {
            ring_span: span,
            ..Config::default()
        };
        let mut lists = lists(n);
        let joiner = lists[n - 1].local().name().to_string();
        for &i in unaware {
            lists[i].remove(&joiner);
        }
        let mut rng = SmallRng::seed_from_u64(5);
        let start = Time::SIM_EPOCH;
        let mut schedules = started(&config, n, start, &mut rng);
        let mut unprobed_for = vec![0u64; n];
        let mut longest = vec![0u64; n];
        for round in 0..rounds {
            let now = start + config.probe_interval * round as u32;
            let mut probed = vec![false; n];
            for (schedule, list) in schedules.iter_mut().zip(&lists) {
                let (_, target) = schedule.next(list).unwrap();
                let index: usize = target.name()["node-".len()..].parse().unwrap();
                probed[index] = true;
                schedule.advance(now + config.probe_interval, list, &mut rng);
            }
            for ((count, was), longest) in unprobed_for.iter_mut().zip(probed).zip(&mut longest) {
                *count = if was { 0 } else { *count + 1 };
                *longest = (*longest).max(*count);
            }
        }
        // The joiner itself is probed only by the lists that know it; what matters is everyone else.
        let known = &longest[..n - 1];
        let worst = known.iter().copied().max().unwrap_or(0);
        (worst, known.iter().filter(|&&l| l >= 2).count())
    }

    #[test]
    fn a_join_still_spreading_leaves_no_member_unprobed_for_long() {
        let n = 60;
        let unaware: Vec<usize> = (0..n - 1).filter(|i| i % 2 == 0).collect();
        let short = unprobed_runs(Config::default().ring_span, n, &unaware, 240);
        // A span as long as the ring is the schedule whose offset depends on the cluster size.
        let whole_ring = unprobed_runs(n, n, &unaware, 240);
        eprintln!(
            "span {} -> {short:?}, whole ring -> {whole_ring:?}",
            Config::default().ring_span
        );
        assert!(
            short.0 <= 2,
            "with the default span a member went {} rounds unprobed",
            short.0
        );
        assert!(short.1 <= 2, "{} members went two rounds unprobed", short.1);
        assert!(
            whole_ring.1 > 10 * short.1.max(1),
            "{whole_ring:?} against {short:?}"
        );
    }

    #[test]
    fn a_member_whose_wall_clock_was_stepped_probes_in_step_with_the_others_again() {
        let config = Config::default();
        let n = 12;
        let lists = lists(n);
        let mut rng = SmallRng::seed_from_u64(6);
        let start = Time::SIM_EPOCH;
        let mut schedules: Vec<Schedule> =
            (0..n).map(|_| Schedule::new(&config, &mut rng)).collect();
        // Node 0 booted with its clock 61.5 s behind; its `now` stays anchored there until told otherwise.
        let behind = Duration::from_millis(61_500);
        let node_now = |i: usize, t: Time| if i == 0 { t - behind } else { t };
        for (i, s) in schedules.iter_mut().enumerate() {
            s.start(node_now(i, start));
        }
        let targets = |schedules: &[Schedule]| {
            let mut probed: Vec<&str> = schedules
                .iter()
                .zip(&lists)
                .map(|(s, l)| s.next(l).unwrap().1.name())
                .collect();
            probed.sort_unstable();
            probed.dedup();
            probed.len()
        };
        assert!(
            targets(&schedules) < n,
            "out of step, two members probe one target"
        );
        // NTP steps the wall clock 61.5 s forward; the node's `now` does not move.
        schedules[0].set_round_offset(node_now(0, start), behind.as_micros() as i64);
        for round in 0..(2 * n as u32) {
            assert_eq!(
                targets(&schedules),
                n,
                "round {round}: someone was probed twice"
            );
            let now = start + config.probe_interval * (round + 1);
            for (i, (s, l)) in schedules.iter_mut().zip(&lists).enumerate() {
                s.advance(node_now(i, now), l, &mut rng);
            }
        }
    }

    #[test]
    fn a_member_is_probed_at_the_same_phase_every_round() {
        let config = Config::default();
        let lists = lists(7);
        let mut rng = SmallRng::seed_from_u64(2);
        let start = Time::SIM_EPOCH;
        let mut schedule = Schedule::new(&config, &mut rng);
        schedule.start(start);
        let mut times_of: std::collections::BTreeMap<String, Vec<Time>> = Default::default();
        for _ in 0..12 {
            let (at, target) = schedule.next(&lists[0]).unwrap();
            times_of
                .entry(target.name().to_string())
                .or_default()
                .push(at);
            schedule.advance(start, &lists[0], &mut rng);
        }
        for times in times_of.values() {
            for pair in times.windows(2) {
                assert_eq!(
                    (pair[1] - pair[0]).as_micros() % config.probe_interval.as_micros(),
                    0
                );
            }
        }
    }

    #[test]
    fn a_resumed_node_probes_once_instead_of_once_per_missed_round() {
        let config = Config::default();
        let lists = lists(5);
        let mut rng = SmallRng::seed_from_u64(3);
        let start = Time::SIM_EPOCH;
        let mut schedule = Schedule::new(&config, &mut rng);
        schedule.start(start);
        let resumed = start + Duration::from_secs(30);
        schedule.advance(resumed, &lists[0], &mut rng);
        let (at, _) = schedule.next(&lists[0]).unwrap();
        assert!(
            at + config.probe_interval > resumed,
            "the schedule should jump to the current round"
        );
    }

    #[test]
    fn the_shuffled_schedule_visits_everyone_once_per_cycle() {
        let config = Config {
            probe_schedule: ProbeSchedule::Shuffled,
            ..Config::default()
        };
        let lists = lists(9);
        let mut rng = SmallRng::seed_from_u64(4);
        let start = Time::SIM_EPOCH;
        let mut schedule = Schedule::new(&config, &mut rng);
        schedule.start(start);
        schedule.advance(start, &lists[0], &mut rng);
        let mut seen: Vec<String> = (0..8)
            .map(|_| {
                let name = schedule.next(&lists[0]).unwrap().1.name().to_string();
                schedule.advance(start, &lists[0], &mut rng);
                name
            })
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 8);
    }

    #[test]
    fn the_predicted_next_probers_are_the_members_that_probe_next() {
        let config = Config::default();
        let n = 11;
        let lists = lists(n);
        let mut rng = SmallRng::seed_from_u64(4);
        let start = Time::SIM_EPOCH;
        let mut schedules = started(&config, n, start, &mut rng);
        let target = Arc::clone(&lists[3].local().identity);
        let predicted: Vec<String> = schedules[0]
            .next_probers(&lists[0], &target, start, 4)
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        let mut actual = Vec::new();
        for round in 0..=4 {
            for (schedule, list) in schedules.iter().zip(&lists) {
                let (_, probed) = schedule.next(list).unwrap();
                if round > 0
                    && probed.identity.same_instance(&target)
                    && list.local().name() != "node-0"
                {
                    actual.push(list.local().name().to_string());
                }
            }
            for (schedule, list) in schedules.iter_mut().zip(&lists) {
                schedule.advance(start, list, &mut rng);
            }
        }
        assert_eq!(predicted, actual);
        assert!(predicted.len() >= 3, "{predicted:?}");
    }

    #[test]
    fn the_cached_due_time_follows_the_ring_and_the_round() {
        let config = Config::default();
        let mut lists = lists(9);
        let mut rng = SmallRng::seed_from_u64(3);
        let start = Time::SIM_EPOCH;
        let mut schedule = Schedule::new(&config, &mut rng);
        schedule.start(start);
        let uncached =
            |schedule: &Schedule, list: &Membership| schedule.next(list).map(|(at, _)| at);
        for step in 0..24 {
            let list = &mut lists[0];
            assert_eq!(
                schedule.next_time(list),
                uncached(&schedule, list),
                "step {step}"
            );
            match step % 3 {
                0 => schedule.advance(start, list, &mut rng),
                1 => {
                    // Whoever is due next leaves the ring: the due time must move with it.
                    let (_, target) = schedule.next(list).unwrap();
                    let failed = Member::new(Arc::clone(&target.identity), 1, State::Failed);
                    list.apply(failed);
                }
                _ => {
                    let addr = SocketAddr::from(([10, 0, 0, 2], 7000 + step as u16));
                    let id = Identity::new(format!("late-{step}"), addr, 1, Default::default());
                    list.apply(Member::new(Arc::new(id.unwrap()), 0, State::Alive));
                }
            }
        }
    }
}
