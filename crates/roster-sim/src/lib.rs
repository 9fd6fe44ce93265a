//! `roster-sim`: a deterministic discrete-event simulator that runs thousands of real `roster-core` nodes through
//! a modelled network, injects faults, and measures what Roster promises: a crashed member failed in one list
//! within the detection deadline and in every live list within the dissemination deadline.
//!
//! The nodes run the very protocol code the agent runs, real codec included: the bytes a node hands to
//! `poll_transmit` are the bytes another node's `handle_packet` or `handle_stream` gets.
//!
//! ```
//! use std::time::Duration;
//! use roster_sim::{Fault, Scheduled, Sim, World};
//!
//! let mut world = World::new(8, 42);
//! world.duration = Duration::from_secs(30);
//! world.faults.push(Scheduled::new(Duration::from_secs(5), Fault::Crash(vec![3])));
//! let mut sim = Sim::new(world)?;
//! sim.run();
//! let crash = &sim.metrics.rumours[0];
//! assert!(crash.complete.is_some(), "every live list marks the crashed member failed");
//! # Ok::<(), anyhow::Error>(())
//! ```

mod budget;
pub mod churn;
pub mod cli;
mod clock;
pub mod coordinates;
pub mod engine;
pub mod fault;
pub mod huge_pages;
mod logs;
pub mod metrics;
pub mod nemesis;
pub mod network;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod tag_changes;
pub mod trace;
mod truth;
pub mod user_events;

pub use clock::NodeClock;
pub use engine::{Clocks, Sim, World, name_of};
pub use fault::{Fault, Scheduled};
pub use network::{DirectedLoss, Latency, Network, Partition};

/// Durations as seconds in JSON (`1.5`), the way the simulator's reports write them.
pub(crate) mod serde_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}
