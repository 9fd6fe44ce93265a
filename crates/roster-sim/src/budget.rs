//! A machine's packet budget: how many packets it can put on the wire per second.
//!
//! Datagrams take tokens from a bucket of one second's worth; a datagram sent with no token left is dropped,
//! as a full transmit queue drops it. Stream messages never take a datagram's place: they queue behind, cut
//! into segments sent at the budget's rate with whatever the datagrams leave. That is how Linux's default
//! queueing discipline (fq_codel) treats the two: a member's datagrams, a few to each of many peers, are sparse
//! flows served ahead of a bulk TCP flow, whose backlog waits in its own queue. A budget of a few times a quiet
//! member's traffic is never reached in steady state, only in the bursts that matter: a partition healing, a
//! wave of joins, churn in a large cluster.

use std::time::Duration;

use roster_core::Time;

/// The full size of a segment a stream message is cut into, for counting its packets.
const SEGMENT_BYTES: usize = 1448;

/// One machine's budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Budget {
    tokens: f64,
    refilled_at: Time,
    /// When the segments of the stream messages queued so far are all on the wire.
    streams_done_at: Time,
}

impl Budget {
    /// A full bucket and no stream queued, at `now`.
    pub fn full(now: Time, per_second: f64) -> Budget {
        Budget {
            tokens: per_second,
            refilled_at: now,
            streams_done_at: now,
        }
    }

    fn refill(&mut self, now: Time, per_second: f64) {
        let elapsed = now.saturating_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(per_second);
        self.refilled_at = now;
    }

    /// Takes a token for a datagram; `false` if there was none (the datagram is dropped). A datagram sent while
    /// streams are queued takes the place of one of their segments.
    pub fn send_datagram(&mut self, now: Time, per_second: f64) -> bool {
        self.refill(now, per_second);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        if self.streams_done_at > now {
            self.streams_done_at = self.streams_done_at + packet_time(per_second);
        }
        true
    }

    /// Queues a stream message of `bytes`; returns how long until its last segment is on the wire.
    pub fn send_stream(&mut self, now: Time, per_second: f64, bytes: usize) -> Duration {
        let segments = bytes.div_ceil(SEGMENT_BYTES).max(1) as u32;
        let start = self.streams_done_at.max(now);
        self.streams_done_at = start + packet_time(per_second) * segments;
        self.streams_done_at.saturating_since(now)
    }
}

/// How long one packet takes at `per_second`.
fn packet_time(per_second: f64) -> Duration {
    Duration::from_secs_f64(1.0 / per_second)
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
    fn a_stream_waits_its_turn_at_the_budgets_rate_and_leaves_datagrams_their_tokens() {
        let t0 = Time::from_unix_ms(1_000);
        let mut budget = Budget::full(t0, 100.0);
        let wait = budget.send_stream(t0, 100.0, 100 * 1448);
        assert_eq!(wait, Duration::from_secs(1));
        let sent = (0..150).filter(|_| budget.send_datagram(t0, 100.0)).count();
        assert_eq!(sent, 100, "the datagrams keep their bucket");
        let next = budget.send_stream(t0, 100.0, 1448);
        assert_eq!(
            next,
            Duration::from_millis(2_010),
            "behind the first stream and the 100 datagrams that went first"
        );
    }
}
