//! `Node`: the local protocol instance, tying the list, the probe schedule, suspicion, awareness and the
//! broadcast queue together behind a sans-I/O interface.

use std::net::SocketAddr;

use rand::Rng;
use rand::rngs::SmallRng;

use crate::config::{Config, ConfigError};
use crate::event::Event;
use crate::member::{Identity, IdentityError, Member, Meta};
use crate::codec::DecodeError;
use crate::time::Time;

/// How a transmit must travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One datagram (UDP in the agent). May be lost.
    Udp,
    /// A reliable stream (a TCP connection in the agent): open a connection to `to`, write the bytes, read the
    /// reply until the peer closes, and hand a non-empty reply to [`Node::handle_stream`] as coming from `to`.
    Stream,
}

/// Bytes the driver must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// Running totals, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Probes started.
    pub probes: u64,
    /// Probes that ended with the target suspected.
    pub probe_failures: u64,
    /// Suspicions this node started or heard of.
    pub suspicions: u64,
    /// Times this node refuted a suspicion about itself.
    pub refutations: u64,
    /// Packets and messages that did not decode or were not for this node.
    pub dropped: u64,
}

/// The local protocol instance.
#[derive(Debug)]
pub struct Node<R = SmallRng> {
    rng: R,
    config: Config,
    _identity: Identity,
}

impl<R: Rng> Node<R> {
    /// A node for `identity` that knows nobody yet. Refuses a configuration that cannot meet its deadlines.
    pub fn new(config: Config, identity: Identity, rng: R) -> Result<Self, ConfigError> {
        let _ = (config, identity, rng);
        todo!()
    }

    /// Starts at incarnation `incarnation` (a restart from a snapshot passes the old incarnation plus one).
    pub fn with_incarnation(self, incarnation: u32) -> Self {
        let _ = incarnation;
        todo!()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node's own entry.
    pub fn local(&self) -> &Member {
        todo!()
    }

    /// Every member of the list, the local node first.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &Member> {
        std::iter::empty::<&Member>().collect::<Vec<_>>().into_iter()
    }

    /// The entry for `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        let _ = name;
        todo!()
    }

    /// Members alive or suspect, the local node included.
    pub fn active_count(&self) -> usize {
        todo!()
    }

    /// Local health (Lifeguard): 0 is healthy, `awareness_max` is the worst.
    pub fn health_score(&self) -> u32 {
        todo!()
    }

    pub fn stats(&self) -> &Stats {
        todo!()
    }

    /// Whether this node lost a name conflict and stopped taking part.
    pub fn is_shadowed(&self) -> bool {
        todo!()
    }

    /// Joins through `seeds` (any one is enough), retrying with backoff until one answers or `join_timeout`.
    pub fn join(&mut self, now: Time, seeds: &[SocketAddr]) {
        let _ = (now, seeds, &mut self.rng);
        todo!()
    }

    /// Adopts `members` as already known, without events or broadcasts: for a driver that starts a cluster in a
    /// converged state.
    pub fn adopt_members(&mut self, now: Time, members: impl IntoIterator<Item = Member>) {
        let _ = (now, members.into_iter());
        todo!()
    }

    /// Leaves: marks itself left, tells the others, stops probing.
    pub fn leave(&mut self, now: Time) {
        let _ = now;
        todo!()
    }

    /// Whether the news of this node's leave has gone out enough that the driver may stop.
    pub fn leave_announced(&self) -> bool {
        todo!()
    }

    /// Changes this node's metadata and tells the others.
    pub fn set_meta(&mut self, now: Time, meta: Meta) -> Result<(), IdentityError> {
        let _ = (now, meta);
        todo!()
    }

    /// A datagram arrived from `from`.
    pub fn handle_packet(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) -> Result<(), DecodeError> {
        let _ = (now, from, bytes);
        todo!()
    }

    /// A stream message arrived from `from`; the returned bytes, if any, go back on the same stream.
    pub fn handle_stream(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
        let _ = (now, from, bytes);
        todo!()
    }

    /// Time has passed; call at or after [`Node::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Time) {
        let _ = now;
        todo!()
    }

    /// When the node next needs [`Node::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Time> {
        todo!()
    }

    /// The next thing to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        todo!()
    }

    /// The next thing to report.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }
}
