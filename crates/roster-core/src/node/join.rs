//! Joining: asking seeds for the list until one answers, with backoff, or giving up.

use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;

use super::{Node, Transmit, Transport};
use crate::codec::{self};
use crate::event::Event;
use crate::message::Message;
use crate::time::Time;

/// The pause before attempt `n` (from 0) of anything that retries: `first` doubling up to `max`, with up to a
/// quarter of jitter either way so that a fleet started together does not retry in lockstep. The core's joins
/// retry by it, and so does a driver that resolves seed names or joins again after the core gave up.
pub fn backoff(first: Duration, max: Duration, n: u32, rng: &mut impl Rng) -> Duration {
    let base = first
        .saturating_mul(2u32.saturating_pow(n.min(16)))
        .min(max);
    base.mul_f64(rng.random_range(0.75..1.25))
}

#[derive(Debug)]
pub(super) struct JoinAttempt {
    pub(super) seeds: Vec<SocketAddr>,
    pub(super) started: Time,
    pub(super) next_retry: Time,
    pub(super) interval: Duration,
    pub(super) attempts: u32,
    /// Asking from standby: never gives up, at a steady interval.
    pub(super) standby: bool,
}

impl<R: Rng> Node<R> {
    /// Joins through `seeds` (any one is enough), retrying with backoff until one answers or `join_timeout`.
    /// This node's own address is not a seed. Returns whether a join started: not when no seed is left, or
    /// the node is leaving or on standby.
    pub fn join(&mut self, now: Time, seeds: &[SocketAddr]) -> bool {
        self.start(now);
        let own = self.list.local().identity.addr();
        let mut seeds: Vec<SocketAddr> = seeds.iter().copied().filter(|s| *s != own).collect();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.is_empty() || !self.participating() {
            return false;
        }
        let interval = self.config.join_retry;
        self.join = Some(JoinAttempt {
            seeds,
            started: now,
            next_retry: now,
            interval,
            attempts: 0,
            standby: false,
        });
        self.retry_join(now);
        true
    }

    pub(super) fn retry_join(&mut self, now: Time) {
        let Some(join) = &mut self.join else { return };
        if !join.standby
            && join.attempts > 0
            && now.saturating_since(join.started) >= self.config.join_timeout
        {
            let attempts = join.attempts;
            self.join = None;
            self.events.push_back(Event::JoinFailed { attempts });
            return;
        }
        join.attempts += 1;
        if !join.standby {
            let attempt = join.attempts - 1;
            let wait = backoff(
                self.config.join_retry,
                self.config.join_retry_max,
                attempt,
                &mut self.rng,
            );
            if let Some(join) = &mut self.join {
                join.next_retry = now + wait;
            }
        } else {
            join.next_retry = now + join.interval;
            // From standby, ask whoever the list knows to be alive now: the holder may be gone.
            let standby_seeds = join.seeds.len();
            let known: Vec<SocketAddr> = self
                .random_members(3, None, true)
                .iter()
                .map(|id| id.addr())
                .collect();
            if let Some(join) = &mut self.join {
                join.seeds.truncate(standby_seeds.min(3));
                join.seeds.extend(known);
                join.seeds.sort_unstable();
                join.seeds.dedup();
            }
        }
        let Some(seeds) = self.join.as_ref().map(|join| join.seeds.clone()) else {
            return;
        };
        self.send_seeds(&seeds, true);
    }

    /// Sends this node's own entry to each of `seeds` in a sync request (a join's when `join`), over a stream.
    pub(super) fn send_seeds(&mut self, seeds: &[SocketAddr], join: bool) {
        let request = Message::SyncRequest {
            digest: self.list.digest(),
            join,
            members: vec![self.list.local().clone()],
        };
        // A seed's wire version is not known before it answers: ask in the oldest one spoken.
        let bytes = codec::encode_packet_at(codec::OLDEST_VERSION, &self.name, &[request]);
        for seed in seeds {
            self.transmits.push_back(Transmit {
                to: *seed,
                transport: Transport::Stream,
                bytes: bytes.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling_with_jitter() {
        let mut rng = SmallRng::seed_from_u64(1);
        let (first, max) = (Duration::from_millis(500), Duration::from_secs(4));
        for n in 0..10 {
            let base = (first * 2u32.pow(n.min(16))).min(max);
            let d = backoff(first, max, n, &mut rng);
            assert!(
                d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25),
                "{n}: {d:?}"
            );
        }
    }
}
