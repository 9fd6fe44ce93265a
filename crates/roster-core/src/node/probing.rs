//! Probing: the probe each round, the ack or the helpers, relaying ping-reqs for others, and the verdict when a
//! probe fails; the check that each round's prober pinged this node, and a small cluster's sweep.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

use super::{Node, Sender};
use crate::config::ProbeSchedule;
use crate::event::{Event, ProbeOutcome, Via};
use crate::member::{Identity, Member, State};
use crate::message::{Message, Update};
use crate::probe::{Probe, ProbeKind, Relay};
use crate::time::Time;

impl<R: Rng> Node<R> {
    pub(super) fn probe_if_due(&mut self, now: Time) {
        if self
            .schedule
            .next_time(&self.list)
            .is_none_or(|at| at > now)
        {
            return;
        }
        let Some((_, target)) = self.schedule.next(&self.list) else {
            return;
        };
        let target = target.clone();
        self.schedule.advance(now, &self.list, &mut self.rng);
        self.probe_member(now, target, ProbeKind::Round);
    }

    /// Probes `target` now. The buddy system: a suspect hears of its suspicion from whoever probes it, and can
    /// refute at once.
    fn probe_member(&mut self, now: Time, target: Member, kind: ProbeKind) {
        let seq = self.next_seq();
        let buddy = (target.state == State::Suspect).then(|| Update {
            member: target.clone(),
            accuser: Some(Arc::clone(&self.name)),
        });
        self.start_probe(now, target.identity, seq, buddy.as_ref(), kind);
        self.stats.probes += 1;
    }

    /// Pings `target` as probe `seq`, with `news` riding along, and arms the probe's timers: helpers are asked
    /// once the direct ping times out, and the probe fails at the end of its window. Returns when it fails.
    pub(super) fn start_probe(
        &mut self,
        now: Time,
        target: Arc<Identity>,
        seq: u32,
        news: Option<&Update>,
        kind: ProbeKind,
    ) -> Time {
        let ping = self.ping_for(now, &target, seq);
        self.send(target.addr(), Some(Arc::clone(&target)), &[ping], news);
        let base = self.rtt.timeout(&self.config);
        let timeout = self
            .awareness
            .scale(base, self.config.probe_timeout_ceiling());
        // Ping-req needs a helper's own timeout plus a round trip on each leg; on a fast network the verdict
        // comes well before the period ends, which is time a suspicion can use.
        let window = (timeout + base * 2 + self.config.max_rtt).min(self.config.probe_interval);
        self.exchanges.start_probe(Probe {
            seq,
            target,
            started: now,
            direct_deadline: now + timeout,
            deadline: now + window,
            helpers: None,
            // A live target answers the second ping within a worst round trip; a silent prober's silence was
            // already one unanswered ping.
            sweep_after: match kind {
                _ if !self.sweeps() => None,
                ProbeKind::Round => Some(self.config.max_rtt),
                ProbeKind::SilentProber => Some(Duration::ZERO),
                ProbeKind::LastLook => None,
            },
            sweep_at: None,
            nacks: 0,
            kind,
        });
        now + window
    }

    /// The ack to a ping from `sender`: with this node's round clock to a member that reads it.
    pub(super) fn ack_for(&self, now: Time, sender: &Sender, seq: u32) -> Message {
        let reads = self.version_for(sender.identity.as_deref()) >= 2;
        Message::Ack {
            seq,
            round_clock: reads.then(|| self.round_clock.stamp(now)),
        }
    }

    /// A ping of `target`: with this node's round clock to a member that reads it.
    pub(super) fn ping_for(&self, now: Time, target: &Identity, seq: u32) -> Message {
        let reads = self.version_for(Some(target)) >= 2;
        Message::Ping {
            seq,
            target: Arc::from(target.name()),
            round_clock: reads.then(|| self.round_clock.stamp(now)),
        }
    }

    /// Another member's round clock read `stamp` about `trip / 2` ago: moves this node's round clock
    /// towards it once enough samples are in.
    pub(super) fn sample_round_clock(&mut self, now: Time, stamp: u32, trip: Duration) {
        if let Some(adjust) = self
            .round_clock
            .sample(now, stamp, trip, self.config.probe_interval)
        {
            self.schedule.set_round_offset(now, adjust);
        }
    }

    pub(super) fn on_ack(
        &mut self,
        now: Time,
        seq: u32,
        sender: &Sender,
        over_stream: bool,
        round_clock: Option<u32>,
    ) {
        if let Some(relay) = self.exchanges.take_relay(seq) {
            self.send(
                relay.requester,
                None,
                &[Message::Ack {
                    seq: relay.requester_seq,
                    round_clock: None,
                }],
                None,
            );
            return;
        }
        if self.goodbye_answered(seq, &sender.name) {
            return;
        }
        let Some(probe) = self.exchanges.take_probe(seq) else {
            return;
        };
        if probe.is_last_look() {
            self.answer_last_look(now, seq, probe.target.name());
            return;
        }
        let outcome = if over_stream {
            ProbeOutcome::AckedOverStream
        } else if *sender.name == *probe.target.name() {
            let rtt = now.saturating_since(probe.started);
            self.rtt.sample(rtt);
            self.coordinates.measured(&sender.name, rtt);
            if let Some(stamp) = round_clock {
                self.sample_round_clock(now, stamp, rtt);
            }
            ProbeOutcome::Acked { rtt }
        } else {
            ProbeOutcome::AckedIndirectly
        };
        self.awareness.apply(-1);
        if self.isolated() {
            self.rejoin_conversation(now);
        }
        self.recent_failures.clear();
        self.events.push_back(Event::Probed {
            target: probe.target,
            outcome,
        });
    }

    pub(super) fn advance_probes(&mut self, now: Time) {
        let mut at = 0;
        while at < self.exchanges.probe_count() {
            let probe = self.exchanges.probe_at(at);
            if probe.helpers.is_none() && now >= probe.direct_deadline {
                self.ask_helpers(now, at);
                at += 1;
            } else if probe.sweep_at.is_some_and(|sweep_at| now >= sweep_at) {
                probe.sweep_at = None;
                self.sweep(now);
                at += 1;
            } else if probe.helpers.is_some() && now >= probe.deadline {
                let probe = self.exchanges.take_probe_at(at);
                // An unanswered last look is the suspicion's to end, at this same deadline.
                if !probe.is_last_look() {
                    self.probe_failed(now, probe);
                }
            } else {
                at += 1;
            }
        }
    }

    /// The direct ping went unanswered: ask `k` helpers to try, ping once more, and try over a stream.
    pub(super) fn ask_helpers(&mut self, now: Time, at: usize) {
        let probe = self.exchanges.probe_at(at);
        let (seq, target) = (probe.seq, Arc::clone(&probe.target));
        probe.sweep_at = probe.sweep_after.map(|after| now + after);
        let helpers = self.random_members(self.config.indirect_checks, Some(target.name()), true);
        self.exchanges.probe_at(at).helpers = Some(helpers.len());
        let request = Message::PingReq {
            seq,
            target: Arc::from(target.name()),
            addr: target.addr(),
        };
        for helper in helpers {
            self.send(
                helper.addr(),
                Some(Arc::clone(&helper)),
                std::slice::from_ref(&request),
                None,
            );
        }
        // A second direct ping under the same sequence number: a lost ping or ack is far more often the reason
        // than a dead member, and every live member suspected by mistake costs a suspicion and a refutation in
        // every list of the cluster.
        let ping = self.ping_for(now, &target, seq);
        self.send(target.addr(), Some(Arc::clone(&target)), &[ping], None);
        if self.config.stream_fallback {
            self.send_stream(
                target.addr(),
                Some(Arc::clone(&target)),
                Message::Ping {
                    seq,
                    target: Arc::from(target.name()),
                    round_clock: None,
                },
            );
        }
    }

    /// The member due to probe this node in the round just checked should have pinged it by now. If nobody did,
    /// that member may have crashed: probe it at once rather than wait for this node's turn (and, in a cluster
    /// small enough to sweep, if that goes unanswered too, sweep). A crashed member is then looked at twice a
    /// round, by its own prober and by the member it was due to probe.
    pub(super) fn check_prober(&mut self, now: Time) {
        let (since, prober) = self.schedule.prober_checked(now, &self.list);
        let Some(prober) = prober.cloned() else {
            return;
        };
        // Lists that have not yet heard of the ring's last change place this node's prober elsewhere: its
        // silence then says nothing, and probing it would only add traffic to the change's spread.
        let settling = now < self.ring_changed_at + self.config.probe_interval * 2;
        if settling || self.pinged_at >= since || self.exchanges.probing(&prober.identity) {
            return;
        }
        self.probe_member(now, prober, ProbeKind::SilentProber);
    }

    /// Whether the cluster is small enough to sweep: no larger than the ring span, so that every member takes
    /// its turn at probing every other.
    fn sweeps(&self) -> bool {
        self.config.probe_schedule == ProbeSchedule::Ring
            && self.list.active_count().saturating_sub(1) <= self.config.ring_span
    }

    /// A probe went unanswered (both direct pings of a round's probe, or the first of a silent prober's): probe
    /// every other member at once, at most once a period. In a cluster no larger than the ring span, the
    /// crashes the deadlines allow at once are a large share of it: with 3 of 5 down, a crashed member's next
    /// two probers may be down too, and its first live probe comes three periods after the crash. A silence
    /// is the sign to look at everyone now. Without loss, it costs nothing while nobody has crashed.
    fn sweep(&mut self, now: Time) {
        if !self.sweeps() || now < self.next_sweep {
            return;
        }
        self.next_sweep = now + self.config.probe_interval;
        let targets: Vec<Member> = (0..self.list.active_count())
            .filter_map(|at| self.list.ring_member(at))
            .filter(|m| m.name() != &*self.name && !self.exchanges.probing(&m.identity))
            .cloned()
            .collect();
        for target in targets {
            self.probe_member(now, target, ProbeKind::Round);
            self.stats.sweeps += 1;
        }
    }

    pub(super) fn probe_failed(&mut self, now: Time, probe: Probe) {
        self.stats.probe_failures += 1;
        if !self
            .recent_failures
            .iter()
            .any(|f| f.same_instance(&probe.target))
        {
            self.recent_failures.push(Arc::clone(&probe.target));
        }
        // Lifeguard: helpers that did not even nack suggest the trouble is here, not at the target.
        let helpers = probe.helpers.unwrap_or(0);
        let delta = if helpers > 0 {
            helpers.saturating_sub(probe.nacks)
        } else {
            1
        };
        self.awareness
            .apply(i32::try_from(delta).unwrap_or(i32::MAX));
        self.events.push_back(Event::Probed {
            target: Arc::clone(&probe.target),
            outcome: ProbeOutcome::Failed,
        });
        let Some(current) = self.list.get(probe.target.name()).cloned() else {
            return;
        };
        if !current.identity.same_instance(&probe.target) || !current.state.is_active() {
            return;
        }
        let claim = Member {
            state: State::Suspect,
            ..current
        };
        let via = if helpers > 0 {
            Via::IndirectProbe
        } else {
            Via::Probe
        };
        let me = self.as_sender();
        self.apply(
            now,
            claim.clone(),
            Some(Arc::clone(&self.name)),
            via,
            &me,
            false,
        );
        // Tell the suspect directly, so that it can refute before the suspicion runs out.
        let update = Update {
            member: claim,
            accuser: Some(Arc::clone(&self.name)),
        };
        self.send(probe.target.addr(), Some(probe.target), &[], Some(&update));
        for to in self.verdict_recipients(&update.member, probe.started) {
            self.send(to.addr(), Some(to), &[], Some(&update));
        }
    }

    /// Who should hear this node's own failed probe of `suspect` directly rather than by gossip. Confirmations
    /// are what shrink a suspicion timer, and gossip takes log N rounds to carry them to the members that run
    /// one; so the accusers this node knows get its verdict straight away. A first accuser has none yet: it
    /// tells the members due to probe the suspect in the next rounds, whose own verdicts then come straight
    /// back to it.
    pub(super) fn verdict_recipients(
        &self,
        suspect: &Member,
        probe_started: Time,
    ) -> Vec<Arc<Identity>> {
        let others: Vec<Arc<Identity>> = self
            .suspicions
            .of(&suspect.identity, suspect.incarnation)
            .into_iter()
            .flat_map(|s| s.accusers())
            .filter(|name| ***name != *self.name)
            .filter_map(|name| self.list.get(name))
            .filter(|m| m.state.is_active())
            .map(|m| Arc::clone(&m.identity))
            .collect();
        if !others.is_empty() {
            return others;
        }
        self.schedule
            .next_probers(
                &self.list,
                &suspect.identity,
                probe_started,
                self.config.suspicion_confirmations,
            )
            .into_iter()
            .map(|m| Arc::clone(&m.identity))
            .collect()
    }

    pub(super) fn relay(
        &mut self,
        now: Time,
        sender: &Sender,
        seq: u32,
        target: Arc<str>,
        addr: SocketAddr,
    ) {
        if *target == *self.name {
            let ack = self.ack_for(now, sender, seq);
            self.reply(sender, &[ack], None);
            return;
        }
        // Only a member this list holds at the address it sends from may have a ping relayed, and only to a
        // member this list holds at the address named: otherwise a forged ping-req would aim this node's pings
        // at any address.
        if sender.reply_budget != usize::MAX {
            self.stats.misdirected += 1;
            return;
        }
        let receiver = self
            .list
            .get(&target)
            .map(|m| Arc::clone(&m.identity))
            .filter(|id| id.addr() == addr);
        if receiver.is_none() || self.exchanges.relays_full(self.config.max_pending_relays) {
            self.reply(sender, &[Message::Nack { seq }], None);
            return;
        }
        let own_seq = self.next_seq();
        self.send(
            addr,
            receiver,
            &[Message::Ping {
                seq: own_seq,
                target,
                round_clock: None,
            }],
            None,
        );
        let timeout = self.rtt.timeout(&self.config);
        self.exchanges.start_relay(Relay {
            seq: own_seq,
            requester: sender.addr,
            requester_seq: seq,
            nack_at: Some(now + timeout),
            expires: now + self.config.probe_interval,
        });
    }

    pub(super) fn expire_relays(&mut self, now: Time) {
        for (requester, seq) in self.exchanges.expire_relays(now) {
            self.send(requester, None, &[Message::Nack { seq }], None);
        }
    }

    /// Up to `k` random active members other than this node and `exclude`, alive ones only if `alive_only`.
    pub(super) fn random_members(
        &mut self,
        k: usize,
        exclude: Option<&str>,
        alive_only: bool,
    ) -> Vec<Arc<Identity>> {
        let eligible = |m: &Member| {
            m.name() != &*self.name
                && Some(m.name()) != exclude
                && (!alive_only || m.state == State::Alive)
        };
        let len = self.list.active_count();
        let mut chosen: Vec<Arc<Identity>> = Vec::with_capacity(k);
        if len <= 4 * k + 8 {
            let mut all: Vec<Arc<Identity>> = (0..len)
                .filter_map(|at| self.list.ring_member(at))
                .filter(|m| eligible(m))
                .map(|m| Arc::clone(&m.identity))
                .collect();
            all.shuffle(&mut self.rng);
            all.truncate(k);
            return all;
        }
        for _ in 0..8 * k {
            if chosen.len() == k {
                break;
            }
            let at = self.rng.random_range(0..len);
            let Some(member) = self.list.ring_member(at) else {
                break;
            };
            if eligible(member) && !chosen.iter().any(|c| c.name() == member.name()) {
                chosen.push(Arc::clone(&member.identity));
            }
        }
        chosen
    }
}
