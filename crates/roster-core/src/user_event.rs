//! User events: a name and a payload an operator or a program sends to every member, carried by gossip.
//!
//! Events are ordered by a Lamport clock: each node keeps one, sending an event advances it, and hearing one
//! moves it past the event's time. A node remembers the events of the last [`EVENT_BUFFER`] clock ticks by
//! (time, name, payload) and drops any it hears again; an event older than that window is dropped as too old
//! (it could no longer be told from a repeat). A node that joins takes its seed's clock, and drops events from
//! before it: it does not replay what the cluster sent before it arrived.

use std::sync::Arc;

use crate::member::MAX_NAME_LEN;
use crate::mix::splitmix64;

/// Most bytes an event's name and payload may take together: with the header and the origin's name, an event
/// fits a datagram with room for probes and other news beside it.
pub const MAX_EVENT_BYTES: usize = 512;

/// Clock ticks of events remembered: an event this much older than the local clock is dropped as too old.
pub const EVENT_BUFFER: u64 = 256;

/// How far ahead of the local clock an event's time may be: a cluster sends nowhere near this many events
/// while two members are apart, so a time further ahead is garbage (or forged), and taking it would leave the
/// clock so far ahead that every real event after it looked too old.
pub const MAX_CLOCK_JUMP: u64 = 1 << 32;

/// Distinct events remembered at one clock time (sent at once by different members); more at that time are
/// dropped, so the memory for repeats stays bounded whatever arrives.
pub const EVENTS_PER_TIME: usize = 64;

/// Why an event (or a query, or an answer) was refused before it was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Name and payload over the limit.
    #[error("{what} is {len} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An empty name, or one with control characters.
    #[error(
        "invalid event name {0:?}: it must be 1 to {MAX_NAME_LEN} bytes with no control characters"
    )]
    InvalidName(String),
    /// The node already has as many queries open as it may.
    #[error(
        "{open} queries are already open, the most a node may have at once; wait for one to finish"
    )]
    TooManyQueries {
        /// Queries open.
        open: usize,
    },
    /// A query timeout of zero, or over the longest allowed.
    #[error("query timeout {timeout:?} is out of range (more than zero, at most {max:?})")]
    BadTimeout {
        /// The timeout asked for.
        timeout: std::time::Duration,
        /// The longest allowed.
        max: std::time::Duration,
    },
    /// An answer to a query this node does not hold open for answers (unknown, or past its timeout).
    #[error("no query {0} is awaiting an answer here (unknown, or past its timeout)")]
    NoSuchQuery(String),
    /// A second answer to one query.
    #[error("query {0} was already answered")]
    AlreadyAnswered(String),
    /// The node left, or waits on standby, and so takes no part in gossip.
    #[error(
        "this node is not taking part in the cluster (it left, or its name is held by another process)"
    )]
    NotParticipating,
}

/// A user event as it travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEvent {
    /// The origin's event clock when it sent the event.
    pub ltime: u64,
    /// What the event is called.
    pub name: Arc<str>,
    /// What it carries.
    pub payload: Arc<[u8]>,
    /// The member that sent it.
    pub origin: Arc<str>,
}

/// Checks an event or query name: the rules of a member name (length, no control characters).
pub fn check_name(name: &str) -> Result<(), EventError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(EventError::InvalidName(name.to_string()));
    }
    Ok(())
}

/// Checks that an event fits [`MAX_EVENT_BYTES`].
pub fn check_size(name: &str, payload: &[u8]) -> Result<(), EventError> {
    EventError::check_len(
        "event name and payload",
        name.len() + payload.len(),
        MAX_EVENT_BYTES,
    )
}

impl EventError {
    /// `Ok` when `len` is within `max`, else [`EventError::TooLarge`] naming `what`.
    pub(crate) fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), EventError> {
        if len > max {
            return Err(EventError::TooLarge { what, len, max });
        }
        Ok(())
    }
}

/// A Lamport clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LamportClock(u64);

impl LamportClock {
    /// The current time.
    pub fn time(self) -> u64 {
        self.0
    }

    /// A local send: returns the time the sent message carries, and moves past it.
    pub fn tick(&mut self) -> u64 {
        let ltime = self.0;
        self.0 = self.0.saturating_add(1);
        ltime
    }

    /// Hearing a message stamped `ltime`: the clock moves past it.
    pub fn witness(&mut self, ltime: u64) {
        self.0 = self.0.max(ltime.saturating_add(1));
    }

    /// Takes a peer's clock (every message it has seen is stamped before `time`).
    pub fn advance_to(&mut self, time: u64) {
        self.0 = self.0.max(time);
    }
}

/// What a node does with an event or query it hears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New: deliver it and pass it on.
    New,
    /// Heard before.
    Repeat,
    /// Older than the window remembered (or from before this node joined), or one more at a time that
    /// already holds [`EVENTS_PER_TIME`].
    TooOld,
    /// Stamped more than [`MAX_CLOCK_JUMP`] ahead of the local clock: dropped, and the clock left alone.
    TooFarAhead,
}

/// The events (or queries) of the last [`EVENT_BUFFER`] clock ticks, by a hash of what tells them apart.
#[derive(Clone, Debug)]
pub struct Recent {
    clock: LamportClock,
    /// Events stamped before this are from before the node joined, and dropped.
    min_time: u64,
    /// Slot `ltime % EVENT_BUFFER`: the time it holds and the keys seen at that time.
    slots: Vec<(u64, Vec<u64>)>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            clock: LamportClock::default(),
            min_time: 0,
            slots: vec![(0, Vec::new()); EVENT_BUFFER as usize],
        }
    }
}

impl Recent {
    /// The clock.
    pub fn clock(&self) -> LamportClock {
        self.clock
    }

    /// Advances the clock for a local send and remembers the sent message by `key`.
    pub fn send(&mut self, key: u64) -> u64 {
        let ltime = self.clock.tick();
        self.remember(ltime, key);
        ltime
    }

    /// Judges a message stamped `ltime` told apart by `key`, and remembers it if it is new.
    pub fn hear(&mut self, ltime: u64, key: u64) -> Verdict {
        if ltime > self.clock.time().saturating_add(MAX_CLOCK_JUMP) {
            return Verdict::TooFarAhead;
        }
        self.clock.witness(ltime);
        let now = self.clock.time();
        if ltime < self.min_time || (now > EVENT_BUFFER && ltime < now - EVENT_BUFFER) {
            return Verdict::TooOld;
        }
        let (at, keys) = &self.slots[(ltime % EVENT_BUFFER) as usize];
        if *at == ltime && keys.contains(&key) {
            return Verdict::Repeat;
        }
        if *at == ltime && keys.len() >= EVENTS_PER_TIME {
            return Verdict::TooOld;
        }
        self.remember(ltime, key);
        Verdict::New
    }

    /// Takes a peer's clock from a full sync; `joining` also drops everything stamped before it, which the
    /// cluster sent before this node was a member.
    pub fn sync(&mut self, remote: u64, joining: bool) {
        if remote > self.clock.time().saturating_add(MAX_CLOCK_JUMP) {
            return;
        }
        self.clock.advance_to(remote);
        if joining {
            self.min_time = self.min_time.max(remote);
        }
    }

    fn remember(&mut self, ltime: u64, key: u64) {
        let slot = &mut self.slots[(ltime % EVENT_BUFFER) as usize];
        if slot.0 != ltime {
            *slot = (ltime, Vec::new());
        }
        slot.1.push(key);
    }
}

/// A deterministic hash of bytes, for telling events apart.
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = splitmix64(seed ^ bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = splitmix64(h ^ u64::from_le_bytes(word));
    }
    h
}

impl UserEvent {
    /// What tells this event apart from another at the same time.
    pub fn key(&self) -> u64 {
        event_key(&self.name, &self.payload)
    }
}

/// What tells an event of `name` and `payload` apart from another at the same time.
pub fn event_key(name: &str, payload: &[u8]) -> u64 {
    hash_bytes(hash_bytes(1, name.as_bytes()), payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_past_what_it_hears() {
        let mut clock = LamportClock::default();
        assert_eq!(clock.tick(), 0);
        assert_eq!(clock.time(), 1);
        clock.witness(10);
        assert_eq!(clock.time(), 11);
        clock.witness(3);
        assert_eq!(clock.time(), 11);
        assert_eq!(clock.tick(), 11);
        clock.advance_to(20);
        assert_eq!(clock.tick(), 20);
    }

    #[test]
    fn repeats_are_dropped_and_distinct_events_at_one_time_are_not() {
        let mut recent = Recent::default();
        let a = event_key("deploy", b"v1");
        let b = event_key("deploy", b"v2");
        assert_eq!(recent.hear(5, a), Verdict::New);
        assert_eq!(recent.hear(5, a), Verdict::Repeat);
        assert_eq!(recent.hear(5, b), Verdict::New);
        assert_eq!(recent.hear(6, a), Verdict::New);
        assert_eq!(recent.clock().time(), 7);
    }

    #[test]
    fn events_older_than_the_window_are_too_old() {
        let mut recent = Recent::default();
        let key = event_key("x", b"");
        assert_eq!(recent.hear(1_000, key), Verdict::New);
        assert_eq!(recent.hear(1_000 - EVENT_BUFFER, key), Verdict::TooOld);
        assert_eq!(recent.hear(1_001 - EVENT_BUFFER + 1, key), Verdict::New);
    }

    #[test]
    fn a_time_far_ahead_is_dropped_and_leaves_the_clock_alone() {
        let mut recent = Recent::default();
        assert_eq!(recent.hear(10, 1), Verdict::New);
        assert_eq!(recent.hear(u64::MAX, 2), Verdict::TooFarAhead);
        recent.sync(u64::MAX, true);
        assert_eq!(recent.clock().time(), 11);
        assert_eq!(recent.hear(11, 3), Verdict::New);
    }

    #[test]
    fn the_events_remembered_at_one_time_are_bounded() {
        let mut recent = Recent::default();
        for key in 0..EVENTS_PER_TIME as u64 {
            assert_eq!(recent.hear(3, key), Verdict::New);
        }
        assert_eq!(recent.hear(3, u64::MAX), Verdict::TooOld);
        assert_eq!(recent.hear(3, 0), Verdict::Repeat);
    }

    #[test]
    fn a_joiner_drops_what_was_sent_before_it_arrived() {
        let mut recent = Recent::default();
        recent.sync(40, true);
        assert_eq!(recent.clock().time(), 40);
        assert_eq!(recent.hear(39, 7), Verdict::TooOld);
        assert_eq!(recent.hear(40, 7), Verdict::New);
        // An anti-entropy sync moves the clock but keeps what is still to come.
        let mut recent = Recent::default();
        recent.sync(40, false);
        assert_eq!(recent.hear(39, 7), Verdict::New);
    }

    #[test]
    fn a_sent_event_is_not_delivered_again_when_it_comes_back() {
        let mut recent = Recent::default();
        let key = event_key("a", b"b");
        let ltime = recent.send(key);
        assert_eq!(recent.hear(ltime, key), Verdict::Repeat);
    }

    #[test]
    fn sizes_are_checked_with_the_limit_named() {
        assert!(check_size("n", &[0; MAX_EVENT_BYTES - 1]).is_ok());
        let err = check_size("nm", &[0; MAX_EVENT_BYTES - 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "event name and payload is 513 bytes, over the limit of 512 bytes"
        );
        assert!(check_name("").is_err());
        assert!(check_name("a\nb").is_err());
    }
}
