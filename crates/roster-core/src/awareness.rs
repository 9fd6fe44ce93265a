//! Local health awareness (Lifeguard): a node that misses its own deadlines is more likely slow itself than
//! surrounded by dead members, so it waits longer before accusing anyone.
//!
//! The score rises when a probe fails without the nacks that prove the helpers were reachable, and when the node
//! has to refute a suspicion about itself; it falls with every successful probe. Unlike memberlist, the score
//! stretches only the direct ping timeout, and only up to half the probe period: the probe period itself never
//! grows, so the time until a crashed member is first probed stays bounded and the deadlines hold (see
//! `config`).

use std::time::Duration;

/// The local health score.
#[derive(Clone, Debug)]
pub struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    pub fn new(max: u32) -> Awareness {
        Awareness { score: 0, max }
    }

    /// 0 is healthy; `max` is the worst.
    pub fn score(&self) -> u32 {
        self.score
    }

    /// Moves the score by `delta`, within 0..=max.
    pub fn apply(&mut self, delta: i32) {
        self.score = self.score.saturating_add_signed(delta).min(self.max);
    }

    /// Stretches `timeout` by the score, never beyond `ceiling`.
    pub fn scale(&self, timeout: Duration, ceiling: Duration) -> Duration {
        (timeout * (self.score + 1))
            .min(ceiling)
            .max(timeout.min(ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_bounded_and_stretches_only_up_to_the_ceiling() {
        let mut awareness = Awareness::new(4);
        awareness.apply(-1);
        assert_eq!(awareness.score(), 0);
        awareness.apply(10);
        assert_eq!(awareness.score(), 4);
        let base = Duration::from_millis(100);
        assert_eq!(
            awareness.scale(base, Duration::from_millis(350)),
            Duration::from_millis(350)
        );
        awareness.apply(-3);
        assert_eq!(
            awareness.scale(base, Duration::from_millis(350)),
            Duration::from_millis(200)
        );
    }
}
