//! `Clock`: the agent's source of [`Time`] for the core.
//!
//! The wall clock is read once, at start; after that time advances by the monotonic clock alone. So `now` never
//! goes backwards when NTP steps the wall clock, yet stays close to wall time, which the core relies on to line
//! up probe rounds across machines and to compare against `joined_at`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roster_core::Time;

/// A monotonic clock anchored to the wall clock at creation.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall_at_start: Time,
    instant_at_start: Instant,
}

impl Clock {
    /// Anchors a new clock to the wall clock now.
    pub fn start() -> Clock {
        Clock {
            wall_at_start: Clock::wall(),
            instant_at_start: Instant::now(),
        }
    }

    /// What the wall clock reads now, which may have stepped since the clock started.
    pub fn wall() -> Time {
        // A wall clock before 1970 is a broken host; the epoch itself is as good an anchor as any there.
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Time::from_since_epoch(since_epoch)
    }

    /// The current time.
    pub fn now(&self) -> Time {
        self.wall_at_start + self.instant_at_start.elapsed()
    }

    /// The monotonic instant at which the clock will read `time` (now, if `time` has passed).
    pub fn instant_at(&self, time: Time) -> Instant {
        self.instant_at_start + time.saturating_since(self.wall_at_start)
    }

    /// The wall-clock time at which the clock started: the `joined_at` of this process instance.
    pub fn started_at(&self) -> Time {
        self.wall_at_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_never_goes_backwards_and_maps_to_instants() {
        let clock = Clock::start();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
        let later = a + Duration::from_millis(250);
        let instant = clock.instant_at(later);
        assert!(instant >= clock.instant_at_start + Duration::from_millis(250));
    }
}
