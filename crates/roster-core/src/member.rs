//! Member identity, state and the precedence rule between two claims about one member.
//!
//! A member is one process instance: its name, the address it is reached at, and `joined_at`, the wall-clock
//! millisecond at which it joined. That triple never changes for an instance, so it lives in an immutable
//! [`Identity`] behind an `Arc` that every list holding the member shares; what changes (incarnation and state)
//! sits beside it in [`Member`]. This is what lets the simulator keep 10,000 full lists in memory.
//!
//! This module owns the precedence rule (which of two claims about a member wins) and nothing else: it never looks at time or the network.

use std::cmp::Ordering;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// Longest member name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 128;
/// Most metadata a member may carry: the sum over entries of key and value lengths.
pub const MAX_META_BYTES: usize = 500;
/// Most metadata entries a member may carry.
pub const MAX_META_ENTRIES: usize = 31;
/// The metadata entry in which a member's record says the newest wire version it speaks. It travels among
/// the other entries so that a build that knows nothing of it passes it on unchanged; this build lifts it out
/// into [`Identity::wire_version`]. The room it takes is kept out of the bounds above, so that a record stays
/// within the bounds the version before checks (512 bytes, 32 entries).
pub const WIRE_VERSION_KEY: &str = "roster.wire";

/// What a member says about itself or another says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Answers probes (as far as the list knows).
    Alive,
    /// Missed a probe and its ping-reqs; failed unless it refutes before the suspicion times out.
    Suspect,
    /// Declared crashed. Not probed any more, but retried now and then so a healed partition merges.
    Failed,
    /// Left on purpose. Never probed, never retried.
    Left,
}

impl State {
    /// Rank at equal `joined_at` and incarnation: left > failed > suspect > alive. Left outranks failed so that a
    /// member that said goodbye is never shown as crashed, whatever order the news arrives in.
    pub const fn rank(self) -> u8 {
        match self {
            State::Alive => 0,
            State::Suspect => 1,
            State::Failed => 2,
            State::Left => 3,
        }
    }

    /// The lowercase word used in events, JSON and tables.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Failed => "failed",
            State::Left => "left",
        }
    }

    /// Whether the member is still taking part: probed, gossiped to, counted in the cluster size.
    pub const fn is_active(self) -> bool {
        matches!(self, State::Alive | State::Suspect)
    }

    pub(crate) const fn from_code(code: u8) -> Option<State> {
        match code {
            0 => Some(State::Alive),
            1 => Some(State::Suspect),
            2 => Some(State::Failed),
            3 => Some(State::Left),
            _ => None,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Small key/value metadata, sorted by key, bounded by [`MAX_META_BYTES`] and [`MAX_META_ENTRIES`].
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Meta(Vec<(Box<str>, Box<str>)>);

impl Meta {
    /// Builds metadata from pairs; keys must be unique and the whole must fit the bounds.
    pub fn new<K: Into<Box<str>>, V: Into<Box<str>>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Meta, IdentityError> {
        let mut entries: Vec<(Box<str>, Box<str>)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        entries.sort();
        if entries.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(IdentityError::DuplicateMetaKey);
        }
        if let Some((key, _)) = entries.iter().find(|(k, _)| k.starts_with("roster.")) {
            return Err(IdentityError::ReservedMetaKey {
                key: key.to_string(),
            });
        }
        let meta = Meta(entries);
        meta.check()?;
        Ok(meta)
    }

    pub(crate) fn from_sorted_unchecked(entries: Vec<(Box<str>, Box<str>)>) -> Meta {
        Meta(entries)
    }

    /// The entries, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sum of key and value lengths, the figure [`MAX_META_BYTES`] bounds.
    pub fn byte_len(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    fn check(&self) -> Result<(), IdentityError> {
        if self.0.len() > MAX_META_ENTRIES {
            return Err(IdentityError::TooManyMetaEntries {
                entries: self.0.len(),
            });
        }
        let bytes = self.byte_len();
        if bytes > MAX_META_BYTES {
            return Err(IdentityError::MetaTooLarge { bytes });
        }
        Ok(())
    }
}

/// Why an identity or its metadata was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// An empty name.
    #[error("member name is empty")]
    EmptyName,
    #[error("member name is {len} bytes long; the limit is {MAX_NAME_LEN}")]
    /// A name over the length limit.
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A name with a control character in it.
    #[error("member name contains a control character")]
    NameHasControlCharacter,
    #[error("metadata is {bytes} bytes of keys and values; the limit is {MAX_META_BYTES}")]
    /// Metadata over the size limit.
    MetaTooLarge {
        /// Bytes of keys and values.
        bytes: usize,
    },
    #[error("metadata has {entries} entries; the limit is {MAX_META_ENTRIES}")]
    /// Metadata with too many entries.
    TooManyMetaEntries {
        /// How many it has.
        entries: usize,
    },
    /// Metadata with a key twice.
    #[error("metadata has the same key twice")]
    DuplicateMetaKey,
    #[error("metadata key {key:?} is reserved: keys starting with \"roster.\" are Roster's own")]
    /// A user's key in Roster's own `roster.` namespace.
    ReservedMetaKey {
        /// The key.
        key: String,
    },
}

/// One process instance: what never changes while it lives.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    name: Box<str>,
    /// `membership::name_hash(name)`, which every list asks for at every lookup, insert and digest update.
    name_hash: u64,
    addr: SocketAddr,
    joined_at_ms: u64,
    meta: Meta,
    /// The newest wire version the member speaks (see `codec`).
    wire_version: u8,
}

impl Identity {
    /// A checked identity. `joined_at_ms` is the wall-clock millisecond at which this instance joined.
    pub fn new(
        name: impl Into<Box<str>>,
        addr: SocketAddr,
        joined_at_ms: u64,
        meta: Meta,
    ) -> Result<Identity, IdentityError> {
        let name = name.into();
        check_name(&name)?;
        meta.check()?;
        Ok(Identity {
            name_hash: crate::membership::name_hash(&name),
            name,
            addr,
            joined_at_ms,
            meta,
            wire_version: crate::codec::VERSION,
        })
    }

    /// An identity as a record on the wire gave it: its metadata was bounded by the wire's limits, which leave
    /// room for the wire-version entry of the version before.
    pub(crate) fn from_wire(
        name: &str,
        addr: SocketAddr,
        joined_at_ms: u64,
        meta: Meta,
        wire_version: u8,
    ) -> Result<Identity, IdentityError> {
        check_name(name)?;
        Ok(Identity {
            name_hash: crate::membership::name_hash(name),
            name: name.into(),
            addr,
            joined_at_ms,
            meta,
            wire_version,
        })
    }

    /// The same instance, saying it speaks wire versions up to `version`.
    pub fn with_wire_version(mut self, version: u8) -> Identity {
        self.wire_version = version;
        self
    }

    /// The newest wire version the member speaks.
    pub fn wire_version(&self) -> u8 {
        self.wire_version
    }

    /// The member's name: unique among live members of a cluster.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stable hash of the name that orders the ring (`membership::name_hash`).
    pub fn name_hash(&self) -> u64 {
        self.name_hash
    }

    /// Where the member is reached (its advertised address).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Wall-clock milliseconds since the Unix epoch at which this instance joined.
    pub fn joined_at_ms(&self) -> u64 {
        self.joined_at_ms
    }

    /// The member's metadata.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The same instance with other metadata.
    pub fn with_meta(&self, meta: Meta) -> Result<Identity, IdentityError> {
        meta.check()?;
        Ok(Identity {
            meta,
            ..self.clone()
        })
    }

    /// The `joined_at` of an instance starting when the wall clock reads `wall_ms`, after one that joined at
    /// `previous_ms` (kept in a snapshot, say): the wall clock, or one millisecond past the previous instance
    /// if the clock is behind it (a reboot before the time was synchronised), so that a new instance always
    /// outranks the one it replaces.
    pub fn joined_at_after(wall_ms: u64, previous_ms: Option<u64>) -> u64 {
        previous_ms.map_or(wall_ms, |previous| wall_ms.max(previous.saturating_add(1)))
    }

    /// Whether `other` is the same process instance (same name and `joined_at`), whatever it now advertises.
    pub fn same_instance(&self, other: &Identity) -> bool {
        self.joined_at_ms == other.joined_at_ms && self.name == other.name
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.name, self.addr, self.joined_at_ms)
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), IdentityError> {
    if name.is_empty() {
        return Err(IdentityError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(IdentityError::NameTooLong { len: name.len() });
    }
    if name.chars().any(char::is_control) {
        return Err(IdentityError::NameHasControlCharacter);
    }
    Ok(())
}

/// A claim about one member: who it is, at which incarnation, in which state. Every update on the wire and every
/// entry of a list is one of these.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// Which instance of which member.
    pub identity: Arc<Identity>,
    /// The instance's own counter: it raises it to refute a suspicion or announce a change.
    pub incarnation: u32,
    /// What the claim says of it.
    pub state: State,
}

impl Member {
    /// The claim that `identity` is in `state` at `incarnation`.
    pub fn new(identity: Arc<Identity>, incarnation: u32, state: State) -> Member {
        Member {
            identity,
            incarnation,
            state,
        }
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        self.identity.name()
    }

    /// The precedence rule: claims compare by (`joined_at`, incarnation, state rank). Ties between
    /// different claims (equal in all three, yet different address or metadata) are broken by address, then
    /// metadata, so that every member picks the same winner whatever order the claims arrive in.
    pub fn precedence(&self, other: &Member) -> Ordering {
        let (a, b) = (&*self.identity, &*other.identity);
        a.joined_at_ms
            .cmp(&b.joined_at_ms)
            .then(self.incarnation.cmp(&other.incarnation))
            .then(self.state.rank().cmp(&other.state.rank()))
            .then_with(|| a.addr.cmp(&b.addr))
            .then_with(|| a.meta.cmp(&b.meta))
    }

    /// Whether this claim should replace `current` in a list.
    pub fn supersedes(&self, current: &Member) -> bool {
        self.precedence(current) == Ordering::Greater
    }
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} inc {} {}",
            self.identity, self.incarnation, self.state
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(joined: u64, inc: u32, state: State) -> Member {
        let id = Identity::new(
            "m1",
            "127.0.0.1:1".parse().unwrap(),
            joined,
            Meta::default(),
        )
        .unwrap();
        Member::new(Arc::new(id), inc, state)
    }

    #[test]
    fn newer_instance_beats_any_claim_about_the_older_one() {
        assert!(member(2, 0, State::Alive).supersedes(&member(1, 9, State::Left)));
    }

    #[test]
    fn higher_incarnation_refutes_a_suspicion() {
        assert!(member(1, 3, State::Alive).supersedes(&member(1, 2, State::Suspect)));
        assert!(!member(1, 2, State::Alive).supersedes(&member(1, 2, State::Suspect)));
    }

    #[test]
    fn left_outranks_failed_at_equal_incarnation() {
        assert!(member(1, 2, State::Left).supersedes(&member(1, 2, State::Failed)));
        assert!(member(1, 2, State::Failed).supersedes(&member(1, 2, State::Suspect)));
    }

    #[test]
    fn metadata_over_the_bound_is_refused_with_its_size() {
        let big = "x".repeat(MAX_META_BYTES);
        assert_eq!(
            Meta::new([("k", big)]),
            Err(IdentityError::MetaTooLarge {
                bytes: MAX_META_BYTES + 1
            })
        );
        assert_eq!(
            Meta::new([("a", "1"), ("a", "2")]),
            Err(IdentityError::DuplicateMetaKey)
        );
    }

    #[test]
    fn names_are_checked() {
        let addr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            Identity::new("", addr, 0, Meta::default()),
            Err(IdentityError::EmptyName)
        );
        assert_eq!(
            Identity::new("a\nb", addr, 0, Meta::default()),
            Err(IdentityError::NameHasControlCharacter)
        );
    }
}
