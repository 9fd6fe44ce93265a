//! The typed view of a member an embedding program reads: [`Member`], with its [`State`] as an enum, times as
//! [`SystemTime`] and [`Duration`], and its tags as a map.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use roster_core::State;

/// A member as this agent's list holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// Its name, unique among live members.
    pub name: String,
    /// Where it is reached.
    pub addr: SocketAddr,
    /// Alive, suspect, failed or left.
    pub state: State,
    /// Its own counter, raised to refute a suspicion or announce a change.
    pub incarnation: u32,
    /// When this instance of it joined, by its own wall clock: a restart is a new instance, with a later time.
    pub joined_at: SystemTime,
    /// Its tags (its metadata).
    pub tags: BTreeMap<String, String>,
    /// The last direct-probe round trip from this agent to it, if one was measured (only in
    /// [`Agent::members`](crate::Agent::members) and [`Agent::member`](crate::Agent::member); `None` in events).
    pub rtt: Option<Duration>,
}

impl Member {
    pub(crate) fn from_core(member: &roster_core::Member, rtt: Option<Duration>) -> Member {
        let id = &member.identity;
        Member {
            name: id.name().to_owned(),
            addr: id.addr(),
            state: member.state,
            incarnation: member.incarnation,
            joined_at: system_time(id.joined_at_ms()),
            tags: id
                .meta()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            rtt,
        }
    }

    /// The value of the tag `key`, if it has one.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// `joined_at` in milliseconds since the Unix epoch, as the wire and the event log carry it.
    pub fn joined_at_ms(&self) -> u64 {
        unix_ms(self.joined_at)
    }
}

/// The time `ms` milliseconds after the Unix epoch.
pub(crate) fn system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
