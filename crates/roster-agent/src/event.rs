//! The typed events a [`Subscription`](crate::Subscription) hands out: [`Event`], made from what the core
//! reports as it happens, or from the event log's lines when missed events are read back.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use roster_core::{ChangeKind, QueryId};
use roster_eventlog::{Kind, Record};

use crate::clock::Clock;
use crate::member::{Member, State, system_time};

/// Something that happened in the cluster, as this agent saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A member entered the list, or a new instance of it (a restart) replaced the old one.
    Joined(Member),
    /// A member left on purpose (or an operator forced a failed one out).
    Left(Member),
    /// A member is declared failed.
    Failed(Member),
    /// A member is suspected: failed, unless it refutes in time.
    Suspected(Member),
    /// A suspected or failed member is alive again.
    AliveAgain(Member),
    /// An alive member changed its tags or its address.
    Updated(Member),
    /// Two live processes claim one name: `claimant` was refused it and waits on standby; the process at
    /// `holder_addr` keeps it.
    Conflict {
        /// The instance refused the name.
        claimant: Member,
        /// Where the process that keeps the name is.
        holder_addr: SocketAddr,
        /// When the process that keeps the name joined.
        holder_joined_at: SystemTime,
    },
    /// A user event, delivered once (this agent's own included).
    User(UserEvent),
    /// A query this member matches: answer it with [`Agent::answer_query`](crate::Agent::answer_query) before
    /// its deadline, or not at all.
    Query(Query),
}

/// A user event (see [`Agent::send_event`](crate::Agent::send_event)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserEvent {
    /// What it is called.
    pub name: String,
    /// What it carries.
    pub payload: Vec<u8>,
    /// Its time on its origin's event clock.
    pub ltime: u64,
    /// The member that sent it.
    pub from: String,
}

/// A query this member was asked (see [`Agent::query`](crate::Agent::query)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Query {
    /// Which query: the answer names it.
    pub id: QueryId,
    /// What it is called.
    pub name: String,
    /// What it carries.
    pub payload: Vec<u8>,
    /// Its time on its origin's query clock.
    pub ltime: u64,
    /// The last moment an answer is taken; `None` when read back from the event log, which does not keep it.
    pub deadline: Option<Instant>,
}

impl Event {
    /// The member the event is about, for a change to the list or a conflict.
    pub fn member(&self) -> Option<&Member> {
        match self {
            Event::Joined(m)
            | Event::Left(m)
            | Event::Failed(m)
            | Event::Suspected(m)
            | Event::AliveAgain(m)
            | Event::Updated(m) => Some(m),
            Event::Conflict { claimant, .. } => Some(claimant),
            Event::User(_) | Event::Query(_) => None,
        }
    }

    /// The typed event for what the core reported, if it is one a subscription hands out (a failure notice
    /// passed on, a probe's outcome, join progress and query answers are not).
    pub(crate) fn from_core(event: &roster_core::Event, clock: &Clock) -> Option<Event> {
        Some(match event {
            roster_core::Event::Changed(change) => {
                let member = Member::from_core(&change.member, None);
                match change.kind {
                    ChangeKind::Join => Event::Joined(member),
                    ChangeKind::Leave => Event::Left(member),
                    ChangeKind::Suspect => Event::Suspected(member),
                    ChangeKind::Alive => Event::AliveAgain(member),
                    ChangeKind::Failed => Event::Failed(member),
                    ChangeKind::Updated => Event::Updated(member),
                }
            }
            roster_core::Event::Conflict { holder, claimant } => Event::Conflict {
                claimant: Member::from_core(claimant, None),
                holder_addr: holder.identity.addr(),
                holder_joined_at: system_time(holder.identity.joined_at_ms()),
            },
            roster_core::Event::User {
                name,
                payload,
                ltime,
                from,
            } => Event::User(UserEvent {
                name: name.to_string(),
                payload: payload.to_vec(),
                ltime: *ltime,
                from: from.to_string(),
            }),
            roster_core::Event::Query {
                query,
                ltime,
                name,
                payload,
                deadline,
            } => Event::Query(Query {
                id: query.clone(),
                name: name.to_string(),
                payload: payload.to_vec(),
                ltime: *ltime,
                deadline: Some(clock.instant_at(*deadline)),
            }),
            roster_core::Event::FailureSent { .. }
            | roster_core::Event::Probed { .. }
            | roster_core::Event::Joined { .. }
            | roster_core::Event::JoinFailed { .. }
            | roster_core::Event::Left { .. }
            | roster_core::Event::QueryAnswer { .. }
            | roster_core::Event::QueryDone { .. } => return None,
        })
    }

    /// The typed event a log line records, if it is one a subscription hands out (a `sent` line is not).
    pub(crate) fn from_record(record: &Record) -> Result<Option<Event>, String> {
        let member = |state: State| -> Result<Member, String> {
            Ok(Member {
                name: record.member.clone(),
                addr: record
                    .addr
                    .parse()
                    .map_err(|_| format!("address {:?} is not IP:PORT", record.addr))?,
                state,
                incarnation: record.incarnation,
                joined_at: system_time(record.joined_at_ms),
                tags: record.tags.clone(),
                rtt: None,
            })
        };
        let user = || {
            record
                .user
                .as_ref()
                .ok_or_else(|| format!("a {} line without its name and payload", record.kind))
        };
        Ok(Some(match record.kind {
            Kind::Join => Event::Joined(member(State::Alive)?),
            Kind::Leave => Event::Left(member(State::Left)?),
            Kind::Suspect => Event::Suspected(member(State::Suspect)?),
            Kind::Alive => Event::AliveAgain(member(State::Alive)?),
            Kind::Failed => Event::Failed(member(State::Failed)?),
            Kind::Update => Event::Updated(member(State::Alive)?),
            Kind::Conflict => {
                let holder = record.holder_addr.as_deref().unwrap_or_default();
                Event::Conflict {
                    claimant: member(State::Alive)?,
                    holder_addr: holder
                        .parse()
                        .map_err(|_| format!("holder address {holder:?} is not IP:PORT"))?,
                    holder_joined_at: system_time(record.holder_joined_at_ms.unwrap_or(0)),
                }
            }
            Kind::User => {
                let user = user()?;
                Event::User(UserEvent {
                    name: user.name.clone(),
                    payload: user.payload.clone(),
                    ltime: user.ltime,
                    from: record.member.clone(),
                })
            }
            Kind::Query => {
                let user = user()?;
                Event::Query(Query {
                    id: QueryId {
                        origin: record.member.as_str().into(),
                        id: user.query_id.unwrap_or(0),
                    },
                    name: user.name.clone(),
                    payload: user.payload.clone(),
                    ltime: user.ltime,
                    deadline: None,
                })
            }
            Kind::Sent => return Ok(None),
        }))
    }
}
