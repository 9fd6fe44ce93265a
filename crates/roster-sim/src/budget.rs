//! A machine's packet budget: how many packets it can put on the wire per second, as a token bucket.
//!
//! A datagram sent with no token left is dropped, as a full transmit queue drops it; a stream message waits for
//! the tokens it needs, as TCP's send buffer does. A budget of a few times a quiet member's traffic is never
//! reached in steady state, only in the bursts that matter: a partition healing, a wave of joins, churn in a
//! large cluster.

use std::time::Duration;

use roster_core::Time;

/// The full size of a segment a stream message is cut into, for counting its packets.
const SEGMENT_BYTES: usize = 1448;

/// One machine's bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Budget {
    tokens: f64,
    refilled_at: Time,
}

impl Budget {
    /// A full bucket at `now`.
    pub fn full(now: Time, per_second: f64) -> Budget {
        Budget {
            tokens: per_second,
            refilled_at: now,
        }
    }

    fn refill(&mut self, now: Time, per_second: f64) {
        let elapsed = now.saturating_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(per_second);
        self.refilled_at = now;
    }

    /// Takes a token for a datagram; `false` if there was none (the datagram is dropped).
    pub fn send_datagram(&mut self, now: Time, per_second: f64) -> bool {
        self.refill(now, per_second);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes the tokens a stream message of `bytes` needs; returns how long it waits for those it lacks.
    pub fn send_stream(&mut self, now: Time, per_second: f64, bytes: usize) -> Duration {
        self.refill(now, per_second);
        let needed = bytes.div_ceil(SEGMENT_BYTES).max(1) as f64;
        self.tokens -= needed;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_budget_is_dropped_and_the_budget_refills() {
        let t0 = Time::from_unix_ms(1_000);
        let mut budget = Budget::full(t0, 10.0);
        let sent = (0..25).filter(|_| budget.send_datagram(t0, 10.0)).count();
        assert_eq!(sent, 10);
        let later = t0 + Duration::from_millis(500);
        let sent = (0..25)
            .filter(|_| budget.send_datagram(later, 10.0))
            .count();
        assert_eq!(sent, 5);
    }

    #[test]
    fn a_large_stream_message_waits_for_its_tokens() {
        let t0 = Time::from_unix_ms(1_000);
        let mut budget = Budget::full(t0, 100.0);
        assert_eq!(budget.send_stream(t0, 100.0, 50 * 1448), Duration::ZERO);
        let wait = budget.send_stream(t0, 100.0, 100 * 1448);
        assert_eq!(wait, Duration::from_millis(500));
        assert!(
            !budget.send_datagram(t0, 100.0),
            "the stream took every token"
        );
    }
}
