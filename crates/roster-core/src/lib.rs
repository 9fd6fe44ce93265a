//! `roster-core`: the Roster membership protocol (SWIM with Lifeguard) as a deterministic state machine.
//!
//! The core never touches a socket, a clock, a thread or a global random number generator. A driver (the agent,
//! or the simulator) feeds it packets and the current time, and drains what it wants sent and what it has to
//! report. The same seed and the same inputs give the same outputs, byte for byte.
//!
//! ```
//! use std::time::Duration;
//! use rand::{SeedableRng, rngs::SmallRng};
//! use roster_core::{Config, Identity, Meta, Node, Time};
//!
//! let now = Time::from_unix_ms(1_764_000_000_000);
//! let identity = Identity::new("m1", "127.0.0.1:7946".parse()?, now.unix_ms(), Meta::default())?;
//! let mut node = Node::new(Config::default(), identity, SmallRng::seed_from_u64(7))?;
//! node.join(now, &["127.0.0.1:7947".parse()?]);
//! while let Some(transmit) = node.poll_transmit() {
//!     // send transmit.bytes to transmit.to over transmit.transport
//!     assert_eq!(transmit.to.port(), 7947);
//! }
//! while let Some(event) = node.poll_event() {
//!     // log it
//!     let _ = event;
//! }
//! let wake_at = node.poll_timeout().expect("a joining node always has a timer");
//! assert!(wake_at <= now + Duration::from_secs(1));
//! node.handle_timeout(wake_at);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod awareness;
// The broadcast queue is the driver's business only in a benchmark.
#[cfg(feature = "internals")]
pub mod broadcast;
#[cfg(not(feature = "internals"))]
mod broadcast;
pub mod codec;
mod config;
mod event;
mod graves;
mod member;
mod membership;
pub mod message;
pub mod mix;
mod node;
mod probe;
pub mod query;
mod round_clock;
mod schedule;
mod suspicion;
mod time;
pub mod user_event;

pub use codec::DecodeError;
pub use config::{Config, ConfigError, ProbeSchedule, Timers};
pub use event::{Change, ChangeKind, Event, ProbeOutcome, Via};
pub use member::{
    Identity, IdentityError, MAX_META_BYTES, MAX_META_ENTRIES, MAX_NAME_LEN, Member, Meta, State,
};
pub use membership::name_hash;
pub use node::{
    Footprint, ForceLeaveError, ForceLeft, MAX_SYNC_CHUNK_BYTES, Node, QueryStarted, Stats,
    Transmit, Transport, backoff,
};
pub use query::{QueryFilter, QueryId};
pub use time::Time;
pub use user_event::EventError;
