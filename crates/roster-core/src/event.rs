//! What a node reports to its driver: every change to its list, every failure notice it passes on, conflicts,
//! and the outcome of each probe. The agent writes these to its event log; the simulator
//! measures detection and dissemination from them.

use std::sync::Arc;
use std::time::Duration;

use crate::member::{Identity, Member};
use crate::query::QueryId;
use crate::time::Time;

/// How a node came to know what an event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// The node's own direct probe.
    Probe,
    /// The node's own probe, after its ping-req helpers failed too.
    IndirectProbe,
    /// A suspicion that nobody refuted in time.
    SuspicionTimeout,
    /// An update piggybacked on a protocol message or sent in a gossip round.
    Gossip,
    /// A full-state sync (a join or anti-entropy).
    Sync,
    /// The node itself: its own join, leave, refutation or metadata change.
    Local,
    /// An operator forced a failed member out (see [`crate::Node::force_leave`]).
    ForceLeave,
}

impl Via {
    /// The word used in the event log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Via::Probe => "probe",
            Via::IndirectProbe => "indirect-probe",
            Via::SuspicionTimeout => "suspicion-timeout",
            Via::Gossip => "gossip",
            Via::Sync => "sync",
            Via::Local => "self",
            Via::ForceLeave => "force-leave",
        }
    }
}

/// The kind of change to a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A member entered the list, or a new instance (newer `joined_at`) replaced an old one.
    Join,
    /// A member left on purpose.
    Leave,
    /// A member is suspected.
    Suspect,
    /// A suspected or failed member is alive again (it refuted, or proved a newer incarnation).
    Alive,
    /// A member is declared failed.
    Failed,
    /// An alive member changed its address or metadata.
    Updated,
}

impl ChangeKind {
    /// The word used in the event log.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Join => "join",
            ChangeKind::Leave => "leave",
            ChangeKind::Suspect => "suspect",
            ChangeKind::Alive => "alive",
            ChangeKind::Failed => "failed",
            ChangeKind::Updated => "update",
        }
    }
}

/// One change to the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What kind of change it was.
    pub kind: ChangeKind,
    /// The entry as it now stands.
    pub member: Member,
    /// The entry before the change, if the member was known.
    pub previous: Option<Member>,
    /// How this list learned it.
    pub via: Via,
    /// The member that told us, for news heard from others.
    pub from: Option<Arc<Identity>>,
}

/// How a probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The target acked the direct ping; the round trip it took.
    Acked {
        /// The round trip.
        rtt: Duration,
    },
    /// The target answered only through a ping-req helper.
    AckedIndirectly,
    /// Only the fallback probe over a stream got through: the target is alive but its UDP is not reaching us.
    AckedOverStream,
    /// Nobody got an answer: the target is now suspected.
    Failed,
}

/// Something the driver should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The list changed.
    Changed(Change),
    /// A failure notice finished its retransmissions; `to` names every member it was passed to.
    FailureSent {
        /// The failed member, as announced.
        member: Member,
        /// Every member the notice went to.
        to: Vec<Arc<Identity>>,
    },
    /// Two live processes claim one name: `holder` keeps it; `claimant` was refused it and waits on standby
    /// (see [`crate::Node::is_standby`]). Every list reports each conflict once.
    Conflict {
        /// The instance that keeps the name.
        holder: Member,
        /// The instance refused it.
        claimant: Member,
    },
    /// A probe finished.
    Probed {
        /// The member probed.
        target: Arc<Identity>,
        /// How it ended.
        outcome: ProbeOutcome,
    },
    /// The join completed: a seed answered with its list.
    Joined {
        /// The seed that answered.
        through: Arc<Identity>,
    },
    /// No seed answered within the join timeout; the node keeps waiting for others to find it.
    JoinFailed {
        /// Seeds asked, counting retries.
        attempts: u32,
    },
    /// The leave is done and the driver may stop: the goodbye went out as often as any news does
    /// (`announced`), or `leave_timeout` passed first.
    Left {
        /// Whether the goodbye went out in full before the timeout.
        announced: bool,
    },
    /// A user event, reported once per node (this node's own included).
    User {
        /// What the event is called.
        name: Arc<str>,
        /// What it carries.
        payload: Arc<[u8]>,
        /// Its time on the origin's event clock.
        ltime: u64,
        /// The member that sent it.
        from: Arc<str>,
    },
    /// A query whose filter this node matches (this node's own included): answer it with
    /// [`crate::Node::answer_query`] before `deadline`, or not at all.
    Query {
        /// Which query.
        query: QueryId,
        /// Its time on the origin's query clock.
        ltime: u64,
        /// What the query is called.
        name: Arc<str>,
        /// What it carries.
        payload: Arc<[u8]>,
        /// The last moment an answer is taken.
        deadline: Time,
    },
    /// An answer to one of this node's queries, once per member.
    QueryAnswer {
        /// Which query.
        query: QueryId,
        /// The member that answered.
        from: Arc<str>,
        /// Its answer.
        payload: Arc<[u8]>,
    },
    /// One of this node's queries reached its deadline.
    QueryDone {
        /// Which query.
        query: QueryId,
        /// Members that answered.
        answered: Vec<Arc<str>>,
        /// Members that matched its filter and were alive when it was sent, and did not answer.
        missing: Vec<Arc<str>>,
    },
}
