//! The messages members exchange. Their byte layout lives in `codec`.
//!
//! Every packet names its sender, and carries one or more messages: a probe message (ping, ack, nack, ping-req)
//! usually leads, and updates about members ride behind it (piggybacking). Full-state sync messages travel over
//! a stream, since a whole list does not fit a datagram.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::coordinate::Coordinate;
use crate::member::Member;
use crate::query::{Query, QueryAnswer};
use crate::user_event::UserEvent;

/// A claim about a member, as it travels. A suspicion names its accuser, so that independent accusers can be
/// counted as confirmations (Lifeguard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The claim.
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
        /// Matches the ack to the ping.
        seq: u32,
        /// The name expected to answer.
        target: Arc<str>,
        /// The sender's round clock.
        round_clock: Option<u32>,
    },
    /// "I am": the answer to a ping, or forwarded by a ping-req helper; with the responder's round clock
    /// since wire version 2.
    Ack {
        /// The ping's sequence number.
        seq: u32,
        /// The responder's round clock.
        round_clock: Option<u32>,
    },
    /// From a ping-req helper: "I asked, and got no answer in time". Proves the helper and the path to it work,
    /// which Lifeguard uses to tell a struggling prober from a dead target.
    Nack {
        /// The ping-req's sequence number.
        seq: u32,
    },
    /// "Please ping `target` at `addr` for me and tell me, under `seq`."
    PingReq {
        /// What the helper's answer carries back.
        seq: u32,
        /// The name to ping.
        target: Arc<str>,
        /// Where to ping it.
        addr: SocketAddr,
    },
    /// News about a member.
    Update(Update),
    /// Anti-entropy, a join, or a reconnect: "here is the digest of my list" and, for a join, the joiner itself.
    SyncRequest {
        /// The digest of the requester's list.
        digest: u64,
        /// Whether the requester is joining.
        join: bool,
        /// For a join, the joiner's own entry.
        members: Vec<Member>,
    },
    /// The answer: the responder's digest and, unless the digests matched, its whole list.
    SyncResponse {
        /// The digest of the responder's list.
        digest: u64,
        /// Its list, or its first part; empty when the digests matched.
        members: Vec<Member>,
    },
    /// The last leg of a sync: the requester's list, sent when the responder turned out to lack something.
    /// A list too large for one frame also goes on in further pushes after its first part.
    SyncPush {
        /// The list, or its next part.
        members: Vec<Member>,
    },
    /// Two live processes claim one name: `holder` keeps it, `claimant` was refused and waits on standby.
    /// Passed on like news, so that every list records the conflict. Since wire version 2.
    Conflict {
        /// The instance that keeps the name.
        holder: Member,
        /// The instance refused it.
        claimant: Member,
    },
    /// A user event, passed on like news. Since wire version 3.
    UserEvent(UserEvent),
    /// A query, passed on like news; its answers go straight to its origin. Since wire version 3.
    Query(Query),
    /// An answer to a query this packet's receiver sent. Since wire version 3.
    QueryAnswer(QueryAnswer),
    /// The sender's event and query clocks, beside its list in a full sync, so that a member that joins does not
    /// replay what was sent before it arrived. Since wire version 3.
    Clocks {
        /// The event clock.
        event: u64,
        /// The query clock.
        query: u64,
    },
    /// The sender's network coordinate, behind a ping or an ack, so that the member that measures the round
    /// trip knows where the other end sits. Since wire version 4.
    Coordinate(Coordinate),
}

/// A decoded packet: in which wire version, who sent it and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The wire version it was encoded in.
    pub version: u8,
    /// The sender's name.
    pub sender: Arc<str>,
    /// What it says, in order.
    pub messages: Vec<Message>,
}

impl Message {
    /// The first wire version that has this message.
    pub fn since_version(&self) -> u8 {
        match self {
            Message::Coordinate(_) => crate::coordinate::SINCE_VERSION,
            Message::UserEvent(_)
            | Message::Query(_)
            | Message::QueryAnswer(_)
            | Message::Clocks { .. } => 3,
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
