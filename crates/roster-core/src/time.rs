//! `Time`: the instant every input to the core carries.
//!
//! The core never reads a clock. Drivers pass `now` as time since the Unix epoch, advanced monotonically
//! (the agent anchors a monotonic clock to the wall clock once at start; the simulator keeps its own). Because
//! every member's `Time` is close to wall time, probe rounds line up across members without any coordination
//! message (see `probe`), and `joined_at` can be compared with it.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time: microseconds since the Unix epoch, as the driver says.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(u64);

impl Time {
    /// The epoch itself; useful as the origin of a simulated clock.
    pub const ZERO: Time = Time(0);

    /// Where simulated and test clocks start: 2025-11-24 16:00 UTC. A wall time rather than zero, so that
    /// `joined_at` and the round clock see values like those of a real cluster, and fixed, so that runs repeat.
    pub const SIM_EPOCH: Time = Time::from_unix_ms(1_764_000_000_000);

    /// A time `since_epoch` after the Unix epoch.
    pub fn from_since_epoch(since_epoch: Duration) -> Self {
        Time(u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX))
    }

    /// A time `micros` microseconds after the Unix epoch.
    pub const fn from_unix_micros(micros: u64) -> Self {
        Time(micros)
    }

    /// A time `ms` milliseconds after the Unix epoch.
    pub const fn from_unix_ms(ms: u64) -> Self {
        Time(ms.saturating_mul(1000))
    }

    /// Time since the Unix epoch.
    pub fn since_epoch(self) -> Duration {
        Duration::from_micros(self.0)
    }

    /// Whole milliseconds since the Unix epoch (the unit of `joined_at` on the wire).
    pub const fn unix_ms(self) -> u64 {
        self.0 / 1000
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        Time(
            self.0
                .saturating_add(u64::try_from(rhs.as_micros()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, rhs: Duration) -> Time {
        Time(
            self.0
                .saturating_sub(u64::try_from(rhs.as_micros()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, rhs: Time) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Time::from_unix_ms(5);
        assert_eq!(t - Duration::from_secs(1), Time::ZERO);
        assert_eq!(Time::ZERO - t, Duration::ZERO);
        assert_eq!((t + Duration::from_millis(2)).unix_ms(), 7);
    }
}
