//! The messages members exchange. Their byte layout lives in `codec`.
//!
//! Every packet names its sender, and carries one or more messages: a probe message (ping, ack, nack, ping-req)
//! usually leads, and updates about members ride behind it (piggybacking). Full-state sync messages travel over
//! a stream, since a whole list does not fit a datagram.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::member::Member;

/// A claim about a member, as it travels. A suspicion names its accuser, so that independent accusers can be
/// counted as confirmations (Lifeguard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub member: Member,
    /// For a suspicion: the member whose probe failed.
    pub accuser: Option<Arc<str>>,
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// "Are you alive?" `target` is the name the sender expects to answer, so that a new process on an old
    /// address does not ack for the old one. `round_clock`: the low 32 bits of the sender's round clock in
    /// microseconds (see `round_clock`), since wire version 2.
    Ping {
        seq: u32,
        target: Arc<str>,
        round_clock: Option<u32>,
    },
    /// "I am": the answer to a ping, or forwarded by a ping-req helper; with the responder's round clock
    /// since wire version 2.
    Ack { seq: u32, round_clock: Option<u32> },
    /// From a ping-req helper: "I asked, and got no answer in time". Proves the helper and the path to it work,
    /// which Lifeguard uses to tell a struggling prober from a dead target.
    Nack { seq: u32 },
    /// "Please ping `target` at `addr` for me and tell me, under `seq`."
    PingReq {
        seq: u32,
        target: Arc<str>,
        addr: SocketAddr,
    },
    /// News about a member.
    Update(Update),
    /// Anti-entropy, a join, or a reconnect: "here is the digest of my list" and, for a join, the joiner itself.
    SyncRequest {
        digest: u64,
        join: bool,
        members: Vec<Member>,
    },
    /// The answer: the responder's digest and, unless the digests matched, its whole list.
    SyncResponse { digest: u64, members: Vec<Member> },
    /// The last leg of a sync: the requester's list, sent when the responder turned out to lack something.
    /// A list too large for one frame also goes on in further pushes after its first part.
    SyncPush { members: Vec<Member> },
    /// Two live processes claim one name: `holder` keeps it, `claimant` was refused and waits on standby.
    /// Passed on like news, so that every list records the conflict. Since wire version 2.
    Conflict { holder: Member, claimant: Member },
}

/// A decoded packet: in which wire version, who sent it and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub version: u8,
    pub sender: Arc<str>,
    pub messages: Vec<Message>,
}

impl Message {
    /// The first wire version that has this message.
    pub fn since_version(&self) -> u8 {
        match self {
            Message::Conflict { .. }
            | Message::Ping {
                round_clock: Some(_),
                ..
            }
            | Message::Ack {
                round_clock: Some(_),
                ..
            } => 2,
            _ => 1,
        }
    }

    /// Whether the message is part of a full-state sync (and so belongs on a stream).
    pub fn is_sync(&self) -> bool {
        matches!(
            self,
            Message::SyncRequest { .. } | Message::SyncResponse { .. } | Message::SyncPush { .. }
        )
    }
}
