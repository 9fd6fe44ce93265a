//! How fast this agent may send user events: a token bucket, so that a burst goes out at once and a flood is
//! refused with the time to wait. Every member remembers the events of the last 256 ticks of the cluster's event
//! clock and drops older ones as too old, so a sender that outpaces the gossip would make its own events miss
//! members; and each event takes room in the piggyback queue that membership news shares.

use std::time::Duration;

use roster_core::Time;

/// Events sent at once before the rate applies.
pub const EVENT_BURST: u32 = 32;
/// Events per second, sustained.
pub const EVENTS_PER_SECOND: u32 = 8;

/// The bucket: tokens left, and when they were counted.
#[derive(Debug)]
pub(crate) struct EventRate {
    tokens: f64,
    counted_at: Option<Time>,
}

impl Default for EventRate {
    fn default() -> EventRate {
        EventRate {
            tokens: f64::from(EVENT_BURST),
            counted_at: None,
        }
    }
}

impl EventRate {
    /// Takes a token for an event sent at `now`, or says how long until one is free.
    pub(crate) fn take(&mut self, now: Time) -> Result<(), Duration> {
        if let Some(then) = self.counted_at {
            let refill = now.saturating_since(then).as_secs_f64() * f64::from(EVENTS_PER_SECOND);
            self.tokens = (self.tokens + refill).min(f64::from(EVENT_BURST));
        }
        self.counted_at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / f64::from(EVENTS_PER_SECOND);
        // Whole milliseconds, rounded up, so that waiting that long is enough.
        Err(Duration::from_millis((wait * 1000.0).ceil() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_out_then_the_rate_holds_and_says_how_long_to_wait() {
        let mut rate = EventRate::default();
        let start = Time::from_unix_ms(1_000_000);
        for _ in 0..EVENT_BURST {
            assert_eq!(rate.take(start), Ok(()));
        }
        assert_eq!(rate.take(start), Err(Duration::from_millis(125)));
        let later = start + Duration::from_millis(130);
        assert_eq!(rate.take(later), Ok(()));
        assert!(rate.take(later).is_err());
        // A quiet spell fills the bucket again, but no fuller than the burst.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..EVENT_BURST {
            assert_eq!(rate.take(much_later), Ok(()));
        }
        assert!(rate.take(much_later).is_err());
    }
}
