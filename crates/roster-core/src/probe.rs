//! The bookkeeping of ping / ping-req exchanges, and the round-trip estimate their timeouts follow.
//!
//! A probe pings its target; if no ack comes within the direct timeout (adapted to measured round trips and
//! stretched by local health), it pings the target once more, asks `k` helpers to ping it (ping-req) and,
//! optionally, pings it over a stream. The probe ends at the end of its window: acked, or failed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::member::Identity;
use crate::time::Time;

/// Smoothed round-trip time, as TCP estimates it (RFC 6298), for the direct ping timeout.
#[derive(Clone, Debug, Default)]
pub struct RttEstimator {
    smoothed: Option<Duration>,
    variation: Duration,
}

impl RttEstimator {
    pub fn sample(&mut self, rtt: Duration) {
        match self.smoothed {
            None => {
                self.smoothed = Some(rtt);
                self.variation = rtt / 2;
            }
            Some(srtt) => {
                let deviation = srtt.abs_diff(rtt);
                self.variation = (self.variation * 3 + deviation) / 4;
                self.smoothed = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// The smoothed round trip, once one was measured.
    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }

    /// The direct ping timeout before local health stretches it: twice the smoothed round trip plus four
    /// deviations, within the configured floor and half the probe interval.
    pub fn timeout(&self, config: &Config) -> Duration {
        match self.smoothed {
            None => config.initial_probe_timeout(),
            Some(srtt) => (srtt * 2 + self.variation * 4)
                .clamp(config.probe_timeout_floor, config.probe_timeout_ceiling()),
        }
    }
}

/// Why a probe was started, which decides what its silence means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// The round's probe, or one of a sweep's.
    Round,
    /// Of the member due to ping this node this round, which did not: that silence already counts as one
    /// unanswered ping.
    SilentProber,
    /// A last look at a suspect (see `suspicion`).
    LastLook,
}

/// A probe in flight.
#[derive(Clone, Debug)]
pub struct Probe {
    pub seq: u32,
    pub target: Arc<Identity>,
    pub started: Time,
    /// When to give up on the direct ping and ask helpers.
    pub direct_deadline: Time,
    /// When the probe fails if nobody answered.
    pub deadline: Time,
    /// Helpers asked; `None` until the direct ping timed out.
    pub helpers: Option<usize>,
    /// How long after the direct timeout a still unanswered probe starts a sweep (in a small cluster, probes of
    /// every other member at once: see `Node::sweep`); `None` for a last look.
    pub sweep_after: Option<Duration>,
    /// When to sweep, once the direct ping timed out; `None` once done.
    pub sweep_at: Option<Time>,
    pub nacks: usize,
    /// Why it was started. A last look at a suspect before declaring it failed (see `suspicion`), unlike the
    /// round's probe: its answer postpones the suspicion, its silence ends it, and neither says anything about
    /// this node's own health.
    pub kind: ProbeKind,
}

impl Probe {
    /// Whether this is a last look at a suspect.
    pub fn is_last_look(&self) -> bool {
        self.kind == ProbeKind::LastLook
    }

    /// The next instant this probe needs attention.
    pub fn next_deadline(&self) -> Time {
        if self.helpers.is_none() {
            self.direct_deadline
        } else {
            self.sweep_at
                .map_or(self.deadline, |at| at.min(self.deadline))
        }
    }
}

/// A ping this node sends on behalf of another member's ping-req.
#[derive(Clone, Debug)]
pub struct Relay {
    /// The sequence number of this node's own ping to the target.
    pub seq: u32,
    pub requester: SocketAddr,
    pub requester_seq: u32,
    /// When to tell the requester that no ack came (a nack); `None` once the nack went out.
    pub nack_at: Option<Time>,
    /// When to stop forwarding a late ack.
    pub expires: Time,
}

/// The exchanges in flight: this node's probes, the pings it relays for other members' ping-reqs, and the
/// sequence numbers that match each answer to its question.
#[derive(Clone, Debug, Default)]
pub struct Exchanges {
    probes: Vec<Probe>,
    relays: Vec<Relay>,
    last_seq: u32,
}

impl Exchanges {
    /// No exchange in flight; the first ping's sequence number follows `seq`.
    pub fn after_seq(seq: u32) -> Exchanges {
        Exchanges {
            last_seq: seq,
            ..Exchanges::default()
        }
    }

    /// A sequence number for a new ping.
    pub fn next_seq(&mut self) -> u32 {
        self.last_seq = self.last_seq.wrapping_add(1);
        self.last_seq
    }

    /// Starts following `probe`.
    pub fn start_probe(&mut self, probe: Probe) {
        self.probes.push(probe);
    }

    /// Stops following the probe whose ping was `seq`, and returns it.
    pub fn take_probe(&mut self, seq: u32) -> Option<Probe> {
        let at = self.probes.iter().position(|p| p.seq == seq)?;
        Some(self.probes.swap_remove(at))
    }

    /// Whether a probe (a last look included) of this instance of `target` is in flight.
    pub fn probing(&self, target: &Identity) -> bool {
        self.probes.iter().any(|p| p.target.same_instance(target))
    }

    /// Counts a helper's nack of the probe whose ping was `seq`.
    pub fn count_nack(&mut self, seq: u32) {
        if let Some(probe) = self.probes.iter_mut().find(|p| p.seq == seq) {
            probe.nacks += 1;
        }
    }

    /// Drops every probe: the node stopped probing.
    pub fn clear_probes(&mut self) {
        self.probes.clear();
    }

    /// How many probes are in flight, at positions `0..probe_count()`.
    pub fn probe_count(&self) -> usize {
        self.probes.len()
    }

    /// The probe at position `at`.
    pub fn probe_at(&mut self, at: usize) -> &mut Probe {
        &mut self.probes[at]
    }

    /// Stops following the probe at position `at`; the last probe takes its place.
    pub fn take_probe_at(&mut self, at: usize) -> Probe {
        self.probes.swap_remove(at)
    }

    /// Probes in flight, last looks apart: `(round probes, last looks)`.
    pub fn probes_by_kind(&self) -> (usize, usize) {
        let looks = self.probes.iter().filter(|p| p.is_last_look()).count();
        (self.probes.len() - looks, looks)
    }

    /// When a probe next needs attention.
    pub fn next_probe_deadline(&self) -> Option<Time> {
        self.probes.iter().map(Probe::next_deadline).min()
    }

    /// Starts following `relay`.
    pub fn start_relay(&mut self, relay: Relay) {
        self.relays.push(relay);
    }

    /// Whether `most` relays are already in flight.
    pub fn relays_full(&self, most: usize) -> bool {
        self.relays.len() >= most
    }

    /// Stops following the relay whose own ping was `seq`, and returns it.
    pub fn take_relay(&mut self, seq: u32) -> Option<Relay> {
        let at = self.relays.iter().position(|r| r.seq == seq)?;
        Some(self.relays.swap_remove(at))
    }

    /// How many relays are in flight.
    pub fn relay_count(&self) -> usize {
        self.relays.len()
    }

    /// Drops the relays expired at `now`, and returns the nacks due by then: `(requester, its sequence number)`.
    pub fn expire_relays(&mut self, now: Time) -> Vec<(SocketAddr, u32)> {
        let mut nacks = Vec::new();
        self.relays.retain_mut(|relay| {
            if relay.nack_at.is_some_and(|at| now >= at) {
                relay.nack_at = None;
                nacks.push((relay.requester, relay.requester_seq));
            }
            now < relay.expires
        });
        nacks
    }

    /// When a relay next needs attention: a nack due, or its end.
    pub fn next_relay_deadline(&self) -> Option<Time> {
        self.relays
            .iter()
            .map(|r| r.nack_at.unwrap_or(r.expires).min(r.expires))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_timeout_follows_round_trips_within_bounds() {
        let config = Config::default();
        let mut rtt = RttEstimator::default();
        assert_eq!(rtt.timeout(&config), Duration::from_millis(400));
        for _ in 0..20 {
            rtt.sample(Duration::from_micros(200));
        }
        assert_eq!(rtt.timeout(&config), config.probe_timeout_floor);
        for _ in 0..20 {
            rtt.sample(Duration::from_millis(180));
        }
        let t = rtt.timeout(&config);
        assert!(
            t > Duration::from_millis(300) && t <= config.probe_interval / 2,
            "{t:?}"
        );
    }

    fn probe(seq: u32, last_look: bool) -> Probe {
        let target = Arc::new(
            Identity::new("m2", "10.0.0.2:1".parse().unwrap(), 1, Default::default()).unwrap(),
        );
        Probe {
            seq,
            target,
            started: Time::ZERO,
            direct_deadline: Time::ZERO + Duration::from_millis(400),
            deadline: Time::ZERO + Duration::from_secs(1),
            helpers: None,
            sweep_after: None,
            sweep_at: None,
            nacks: 0,
            kind: if last_look {
                ProbeKind::LastLook
            } else {
                ProbeKind::Round
            },
        }
    }

    #[test]
    fn an_answer_finds_its_probe_or_relay_by_sequence_number_once() {
        let mut exchanges = Exchanges::after_seq(u32::MAX);
        let (first, second) = (exchanges.next_seq(), exchanges.next_seq());
        assert_eq!((first, second), (0, 1), "sequence numbers wrap");
        exchanges.start_probe(probe(first, false));
        exchanges.start_probe(probe(second, true));
        assert_eq!(exchanges.probes_by_kind(), (1, 1));
        assert_eq!(
            exchanges.next_probe_deadline(),
            Some(Time::ZERO + Duration::from_millis(400))
        );
        exchanges.count_nack(first);
        assert_eq!(exchanges.take_probe(first).map(|p| p.nacks), Some(1));
        assert!(exchanges.take_probe(first).is_none());
        let requester: SocketAddr = "10.0.0.3:1".parse().unwrap();
        exchanges.start_relay(Relay {
            seq: 7,
            requester,
            requester_seq: 70,
            nack_at: Some(Time::ZERO + Duration::from_millis(300)),
            expires: Time::ZERO + Duration::from_secs(1),
        });
        assert!(exchanges.relays_full(1));
        assert_eq!(
            exchanges.next_relay_deadline(),
            Some(Time::ZERO + Duration::from_millis(300))
        );
        assert_eq!(
            exchanges.expire_relays(Time::ZERO + Duration::from_millis(300)),
            vec![(requester, 70)]
        );
        assert_eq!(
            exchanges.next_relay_deadline(),
            Some(Time::ZERO + Duration::from_secs(1)),
            "the nack goes out once; the relay still forwards a late ack"
        );
        assert_eq!(exchanges.take_relay(7).map(|r| r.requester_seq), Some(70));
        assert_eq!(exchanges.relay_count(), 0);
    }
}
