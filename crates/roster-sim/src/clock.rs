//! Each simulated machine's clocks, as the agent sees them.
//!
//! The engine keeps one true time. A machine's wall clock is off from it by an offset (drawn per machine, or
//! set by a fault: a reboot before NTP synchronised), runs at its own rate (drift, in parts per million), and
//! may be stepped (NTP correcting it). The protocol's `now` is what the agent gives the core: the wall clock
//! read once when the process started, advanced by the machine's monotonic clock (which drifts with the wall
//! clock but never steps). So a step moves the wall clock away from `now`; the engine tells the node, as the
//! agent does, with `Node::handle_wall_clock`.
//!
//! Conversions round so that a timer never fires early: the true time the engine picks for a node's wake-up
//! is the first microsecond at which the node's `now` has reached it.

use std::time::Duration;

use roster_core::Time;

const MILLION: i128 = 1_000_000;

/// One process's clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeClock {
    /// True time at which the process started.
    started: Time,
    /// Its `now` at that moment: the wall clock then.
    anchor: Time,
    /// How fast its clocks run against true time, in parts per million (positive: fast).
    drift_ppm: i32,
    /// Wall clock minus `now`, changed by steps.
    stepped_us: i64,
}

impl NodeClock {
    /// A process started at true time `started` on a machine whose wall clock is `offset_us` ahead of true time
    /// (behind if negative) and runs `drift_ppm` fast.
    pub fn new(started: Time, offset_us: i64, drift_ppm: i32) -> NodeClock {
        NodeClock {
            started,
            anchor: shift(started, offset_us),
            drift_ppm,
            stepped_us: 0,
        }
    }

    /// A clock that agrees with true time.
    pub fn exact(started: Time) -> NodeClock {
        NodeClock::new(started, 0, 0)
    }

    /// True time at which the process started.
    pub fn started(&self) -> Time {
        self.started
    }

    /// The protocol's `now` at true time `t`.
    pub fn now_at(&self, t: Time) -> Time {
        let elapsed = i128::from(t.as_micros().saturating_sub(self.started.as_micros()));
        let drifted = elapsed + elapsed * i128::from(self.drift_ppm) / MILLION;
        Time::from_unix_micros(
            u64::try_from(i128::from(self.anchor.as_micros()) + drifted).unwrap_or(u64::MAX),
        )
    }

    /// The first true time at which the protocol's `now` reads `now` or later.
    pub fn true_time_of(&self, now: Time) -> Time {
        let ahead = i128::from(now.as_micros()) - i128::from(self.anchor.as_micros());
        if ahead <= 0 {
            return self.started;
        }
        let rate = MILLION + i128::from(self.drift_ppm);
        let mut elapsed = (ahead * MILLION + rate - 1) / rate;
        // `now_at` rounds its drift term down: the estimate can be a microsecond off either way.
        let at = |elapsed: i128| {
            Time::from_unix_micros(
                u64::try_from(i128::from(self.started.as_micros()) + elapsed).unwrap_or(u64::MAX),
            )
        };
        while self.now_at(at(elapsed)) < now {
            elapsed += 1;
        }
        while elapsed > 0 && self.now_at(at(elapsed - 1)) >= now {
            elapsed -= 1;
        }
        at(elapsed)
    }

    /// What the machine's wall clock reads at true time `t`.
    pub fn wall_at(&self, t: Time) -> Time {
        shift(self.now_at(t), self.stepped_us)
    }

    /// The wall clock is stepped by `by_us` (NTP correcting it); `now` does not move.
    pub fn step(&mut self, by_us: i64) {
        self.stepped_us = self.stepped_us.saturating_add(by_us);
    }

    /// How far the wall clock is from true time at `t` (positive: ahead).
    pub fn error_at(&self, t: Time) -> Duration {
        let wall = self.wall_at(t);
        if wall >= t { wall - t } else { t - wall }
    }
}

fn shift(t: Time, micros: i64) -> Time {
    Time::from_unix_micros(t.as_micros().saturating_add_signed(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Time = Time::from_unix_ms(1_764_000_000_000);

    #[test]
    fn a_wake_up_never_comes_before_the_node_time_it_was_asked_for() {
        for drift in [-100, -7, 0, 13, 100] {
            let clock = NodeClock::new(T0, -2_500_000, drift);
            for step in 0..2000u64 {
                let deadline = Time::from_unix_micros(clock.anchor.as_micros() + step * 7919);
                let at = clock.true_time_of(deadline);
                assert!(clock.now_at(at) >= deadline, "drift {drift}, step {step}");
                if at > T0 {
                    let before = Time::from_unix_micros(at.as_micros() - 1);
                    assert!(
                        clock.now_at(before) < deadline,
                        "drift {drift}: not the first moment"
                    );
                }
            }
        }
    }

    #[test]
    fn a_step_moves_the_wall_clock_and_not_now() {
        let mut clock = NodeClock::new(T0, -120_000_000, 0);
        let t = T0 + Duration::from_secs(30);
        let now = clock.now_at(t);
        assert_eq!(clock.error_at(t), Duration::from_secs(120));
        clock.step(120_000_000);
        assert_eq!(clock.now_at(t), now);
        assert_eq!(clock.wall_at(t), t);
        assert_eq!(clock.error_at(t), Duration::ZERO);
    }
}
