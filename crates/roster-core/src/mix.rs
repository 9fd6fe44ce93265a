//! The seeded 64-bit mixer (splitmix64) that everything in Roster derives repeatable numbers from: the core's
//! name hash and list digest, the simulator's per-node streams and link delays, the demo's and the benchmark's
//! choices of whom to crash.
//!
//! The functions are fixed forever: the ring order and the digest that members compare depend on
//! [`finalize`], and the simulator's figures for a seed depend on [`splitmix64`]. Change them and every
//! snapshot of the simulator's output changes with them.

/// The increment of splitmix64's state: 2^64 divided by the golden ratio, odd, so successive states never
/// repeat within 2^64 steps.
pub const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's output function: spreads every input bit over the whole word, so that near inputs (names one
/// letter apart, consecutive node indices) give unrelated outputs.
pub const fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One step of splitmix64 from the state `z`: a seed derived from `z`, for seeding one stream of a larger run.
pub const fn splitmix64(z: u64) -> u64 {
    finalize(z.wrapping_add(GAMMA))
}

/// A small repeatable generator: the same seed gives the same numbers on every machine. For choices a person
/// may want to replay (`--seed`), not for anything an adversary must not guess.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        finalize(self.state)
    }

    /// A number in `0..n` (`n` must not be zero); the slight bias of the modulo does not matter at the sizes
    /// the callers use.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_steps_as_the_one_shot_function() {
        let mut rng = SplitMix64::new(42);
        assert_eq!(rng.next_u64(), splitmix64(42));
        assert_eq!(rng.next_u64(), splitmix64(42u64.wrapping_add(GAMMA)));
    }

    #[test]
    fn the_reference_values_of_splitmix64_hold() {
        // The first outputs of splitmix64 seeded with 0, as published with the algorithm.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
