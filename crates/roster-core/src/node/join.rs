//! Joining: asking seeds for the list until one answers, with backoff, or giving up.

use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;

use super::{Node, Transmit, Transport};
use crate::codec::{self};
use crate::event::Event;
use crate::message::Message;
use crate::time::Time;

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
    pub fn join(&mut self, now: Time, seeds: &[SocketAddr]) {
        self.start(now);
        let own = self.list.local().identity.addr();
        let seeds: Vec<SocketAddr> = seeds.iter().copied().filter(|s| *s != own).collect();
        if seeds.is_empty() || !self.participating() {
            return;
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
        join.next_retry = now + join.interval;
        if !join.standby {
            join.interval = (join.interval * 2).min(self.config.join_retry_max);
        } else {
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
        let Some(join) = &self.join else { return };
        let request = Message::SyncRequest {
            digest: self.list.digest(),
            join: true,
            members: vec![self.list.local().clone()],
        };
        // A seed's wire version is not known before it answers: ask in the oldest one spoken.
        let bytes = codec::encode_packet_at(codec::OLDEST_VERSION, &self.name, &[request]);
        for seed in &join.seeds {
            self.transmits.push_back(Transmit {
                to: *seed,
                transport: Transport::Stream,
                bytes: bytes.clone(),
            });
        }
    }
}
