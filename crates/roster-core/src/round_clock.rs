//! `RoundClock`: the clock the ring schedule numbers its rounds by, agreed among members.
//!
//! The ring's bound on the time to a crashed member's first probe holds when every member is in the same
//! round: each member probes the one a round's offset after it. Members' own clocks disagree (by up to
//! seconds in a fleet, by minutes right after a reboot before the time was synchronised), and a prober whose
//! clock is off probes early or late by as much. So rounds follow a clock of their own: the node's `now`
//! plus an adjustment that every member moves towards its peers'. Each ping and each ack of a direct ping
//! (wire version 2) carries the sender's round clock; the receiver compares it with its own, less half the
//! round trip (measured for an ack, the usual one for a ping), so that each member hears both the members it
//! probes and those that probe it, and after a few such samples moves its adjustment by their median (all of it when it is over a quarter of a
//! probe period, so that a member far off falls in step at once; half of it when it is smaller, so that
//! the round trips' noise settles instead of making everyone chase it). The median keeps one wild clock from
//! pulling anyone. Members end up within a few milliseconds of each other (the round trips' asymmetry),
//! whatever their wall clocks say.
//!
//! Only the low 32 bits of microseconds travel (71 minutes): a difference is read as the nearest one, which
//! is right for any clock within half an hour of its peers.

use std::time::Duration;

use crate::time::Time;

/// Samples taken before each move.
const SAMPLES_PER_MOVE: usize = 3;
/// Differences smaller than this are the round trips' noise, not worth a move.
const SETTLED: Duration = Duration::from_millis(2);

/// A node's round clock.
#[derive(Clone, Debug, Default)]
pub(crate) struct RoundClock {
    adjust_us: i64,
    samples: Vec<i64>,
}

impl RoundClock {
    /// The round clock at `now`.
    pub fn read(&self, now: Time) -> Time {
        Time::from_unix_micros(now.as_micros().saturating_add_signed(self.adjust_us))
    }

    /// What goes in an ack: the low bits of the round clock at `now`.
    pub fn stamp(&self, now: Time) -> u32 {
        self.read(now).as_micros() as u32
    }

    /// A peer's round clock read `stamp` when it answered a ping that took `rtt` there and back; returns
    /// the new adjustment when this sample completes a move.
    pub fn sample(
        &mut self,
        now: Time,
        stamp: u32,
        rtt: Duration,
        period: Duration,
    ) -> Option<i64> {
        let own = self.read(now).as_micros() as u32;
        let half_trip = (rtt.as_micros() / 2) as u32;
        let difference = i64::from(stamp.wrapping_add(half_trip).wrapping_sub(own) as i32);
        self.samples.push(difference);
        if self.samples.len() < SAMPLES_PER_MOVE {
            return None;
        }
        self.samples.sort_unstable();
        let median = self.samples[self.samples.len() / 2];
        self.samples.clear();
        if median.unsigned_abs() < SETTLED.as_micros() as u64 {
            return None;
        }
        let step = if median.unsigned_abs() > period.as_micros() as u64 / 4 {
            median
        } else {
            median / 2
        };
        self.adjust_us = self.adjust_us.saturating_add(step);
        Some(self.adjust_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(1);

    /// Round clocks of members whose own clocks are `offsets_ms` off, after each has sampled its peers (in a
    /// ring: each its successors) `rounds` times; returns the largest disagreement left, in microseconds.
    fn spread_after(offsets_ms: &[i64], rounds: usize) -> i64 {
        let t0 = Time::SIM_EPOCH;
        let now = |i: usize, t: Time| {
            Time::from_unix_micros((t.as_micros() as i64 + offsets_ms[i] * 1000) as u64)
        };
        let mut clocks: Vec<RoundClock> =
            offsets_ms.iter().map(|_| RoundClock::default()).collect();
        let n = offsets_ms.len();
        let rtt = Duration::from_millis(40);
        for round in 0..rounds {
            let t = t0 + PERIOD * round as u32;
            for i in 0..n {
                let j = (i + 1 + round % (n - 1)) % n;
                let stamp = clocks[j].stamp(now(j, t + rtt / 2));
                let at = now(i, t + rtt);
                clocks[i].sample(at, stamp, rtt, PERIOD);
            }
        }
        let t = t0 + PERIOD * rounds as u32;
        let read: Vec<i64> = (0..n)
            .map(|i| clocks[i].read(now(i, t)).as_micros() as i64)
            .collect();
        read.iter().max().unwrap() - read.iter().min().unwrap()
    }

    #[test]
    fn clocks_seconds_apart_agree_on_rounds_within_milliseconds() {
        let offsets: Vec<i64> = (0..9).map(|k| -1500 + 375 * k).collect();
        assert_eq!(spread_after(&offsets, 0), 3_000_000);
        let spread = spread_after(&offsets, 60);
        assert!(spread < 20_000, "still {spread} us apart");
    }

    #[test]
    fn a_member_two_minutes_behind_falls_in_step_and_pulls_nobody() {
        let mut offsets = vec![0i64; 12];
        offsets[5] = -120_000;
        let spread = spread_after(&offsets, 60);
        assert!(spread < 20_000, "still {spread} us apart");
    }
}
