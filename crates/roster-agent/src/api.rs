//! The HTTP API's JSON bodies for the list and this agent (`GET /v1/members`, `GET /v1/self`), public so that a
//! client such as the `roster` command reads them with the same types the agent writes them with. A program
//! that embeds the agent reads [`Member`](crate::Member) instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use roster_core::Time;
use serde::{Deserialize, Serialize};

use crate::driver::{CoreState, Shared};
use crate::member::Member;

/// A member as `GET /v1/members` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Its name.
    pub name: String,
    /// Where it is reached.
    pub addr: SocketAddr,
    /// `alive`, `suspect`, `failed` or `left`.
    pub state: String,
    /// Its incarnation.
    pub incarnation: u32,
    /// When this instance joined: RFC 3339, UTC, milliseconds.
    pub joined_at: String,
    /// The same, in milliseconds since the Unix epoch.
    pub joined_at_ms: u64,
    /// Its tags (its metadata); read as `meta` too, the field's name in earlier versions.
    #[serde(alias = "meta")]
    pub tags: BTreeMap<String, String>,
    /// The last direct-probe round trip from this agent, in milliseconds, if one was measured.
    pub rtt_ms: Option<f64>,
}

impl From<&Member> for MemberInfo {
    fn from(member: &Member) -> MemberInfo {
        let joined_at_ms = member.joined_at_ms();
        MemberInfo {
            name: member.name.clone(),
            addr: member.addr,
            state: member.state.as_str().to_owned(),
            incarnation: member.incarnation,
            joined_at: roster_eventlog::rfc3339(Time::from_unix_ms(joined_at_ms)),
            joined_at_ms,
            tags: member.tags.clone(),
            rtt_ms: member.rtt.map(|d| d.as_secs_f64() * 1000.0),
        }
    }
}

/// This agent, as `GET /v1/self` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelfInfo {
    /// This member, as the list holds it.
    #[serde(flatten)]
    pub member: MemberInfo,
    /// Local health (Lifeguard): 0 is healthy.
    pub health_score: u32,
    /// Members alive or suspect, this one included.
    pub active_members: usize,
    /// The agent's version.
    pub version: String,
    /// The wire version it speaks.
    pub protocol_version: u8,
    /// The file holding the token that acting requests must carry (readable by the agent's user alone).
    pub token_file: Option<PathBuf>,
}

impl SelfInfo {
    pub(crate) fn read(shared: &Shared, state: &CoreState) -> SelfInfo {
        SelfInfo {
            member: MemberInfo::from(&state.member(state.node.local())),
            health_score: state.node.health_score(),
            active_members: state.node.active_count(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: roster_core::codec::VERSION,
            token_file: shared.token.path().map(PathBuf::from),
        }
    }
}
