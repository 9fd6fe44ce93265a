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

pub mod awareness;
pub mod broadcast;
pub mod codec;
pub mod config;
pub mod event;
mod graves;
pub mod member;
pub mod membership;
pub mod message;
pub mod mix;
pub mod node;
pub mod probe;
mod round_clock;
pub mod suspicion;
pub mod time;

pub use codec::DecodeError;
pub use config::{Config, ConfigError, ProbeSchedule, Timers};
pub use event::{Change, ChangeKind, Event, ProbeOutcome, Via};
pub use member::{Identity, IdentityError, Member, Meta, State};
pub use node::{Footprint, Node, Stats, Transmit, Transport};
pub use time::Time;
