//! `roster-agent`: the Roster membership protocol on real machines, as a library.
//!
//! An [`Agent`] is one member of a cluster. It drives a [`roster_core::Node`] over a UDP socket and a TCP
//! listener (joins, full-state syncs, the fallback probe), keeps the event log, the snapshot and its tags in its
//! data directory when it has one, and serves the HTTP API and the dashboard when asked to. It runs on whatever
//! tokio runtime it is started on; a current-thread runtime is plenty.
//!
//! A program that embeds it follows the cluster through typed values: [`Agent::members`] gives [`Member`]s,
//! [`Agent::subscribe`] a [`Subscription`] of [`Event`]s that never skips silently. It changes its tags live
//! ([`Agent::set_tags`]), sends user events and queries and answers them, forces failed members out, rotates
//! keys ([`Agent::keys`]) and reads metrics ([`Agent::metrics`]), with no JSON and no HTTP.
//!
//! ```
//! use roster_agent::{Agent, AgentConfig, Event, State};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), roster_agent::AgentError> {
//! // Port 0: the operating system picks a free port for UDP and TCP alike.
//! let mut config = AgentConfig::new("m1", "127.0.0.1:0".parse().expect("address"));
//! config.tags = roster_agent::Meta::new([("role", "web")]).expect("tags");
//! let mut agent = Agent::start(config).await?;
//! let mut events = agent.subscribe();
//!
//! let members = agent.members();
//! assert_eq!(members[0].name, "m1");
//! assert_eq!(members[0].state, State::Alive);
//! assert_eq!(members[0].tag("role"), Some("web"));
//!
//! // The agent's own join is the first event.
//! match events.recv().await {
//!     Ok(Event::Joined(member)) => assert_eq!(member.name, "m1"),
//!     other => panic!("expected the join, got {other:?}"),
//! }
//!
//! agent.leave().await?;
//! // The leave is the last event; then the subscription is closed.
//! assert!(matches!(events.recv().await, Ok(Event::Left(m)) if m.name == "m1"));
//! assert!(events.recv().await.is_err());
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod agent;
mod api;
mod clock;
mod config;
pub mod control;
mod coordinates;
mod dashboard;
mod diagnose;
mod driver;
mod error;
mod event;
mod event_rate;
mod eventlog;
mod fleet;
mod handlers;
pub mod health;
mod http;
pub mod keyring;
pub mod keys;
mod member;
mod metrics;
mod process;
mod replace_file;
mod seeds;
pub mod snapshot;
mod start;
mod streams;
mod subscription;
mod tags;
mod transport;
mod user_events;

pub use crate::agent::Agent;
pub use crate::api::{MemberInfo, SelfInfo};
pub use crate::config::{AgentConfig, DEFAULT_HTTP_PORT};
pub use crate::control::OperatorToken;
pub use crate::coordinates::{CoordinateInfo, CoordinatesInfo, RttError};
pub use crate::error::AgentError;
pub use crate::event::{Event, Query, UserEvent};
pub use crate::event_rate::{EVENT_BURST, EVENTS_PER_SECOND};
pub use crate::handlers::{EventHandler, HandlerFilter};
pub use crate::health::Health;
pub use crate::keys::Keys;
pub use crate::member::{Member, State};
pub use crate::metrics::AgentMetrics;
pub use crate::seeds::{DEFAULT_PORT, SeedResolver};
pub use crate::subscription::{Lagged, RecvError, ReplayError, Subscription};
pub use crate::user_events::{QueryStream, QueryUpdate};
pub use roster_core::{Coordinate, ForceLeft, Meta, QueryFilter, QueryId};
