//! How well the members' network coordinates estimate the modelled round trips at the end of a run: the
//! relative error |estimated - mean| / mean over pairs of running members, where the estimate is the distance
//! between the two members' own coordinates and the mean is the network model's for that link.

use roster_core::mix::SplitMix64;

use crate::engine::Sim;

/// Pairs measured at most; past this many, a fixed-seed sample of pairs stands for all of them.
const MAX_PAIRS: usize = 20_000;

/// The relative error of every pair measured (or of the sample), in no particular order.
pub fn relative_errors(sim: &Sim) -> Vec<f64> {
    let world = sim.world();
    let running: Vec<usize> = sim.running_nodes().collect();
    let n = running.len();
    let all_pairs = n * n.saturating_sub(1) / 2;
    let pairs: Vec<(usize, usize)> = if all_pairs <= MAX_PAIRS {
        (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .collect()
    } else {
        let mut rng = SplitMix64::new(world.seed ^ 0x636f_6f72_6473);
        (0..MAX_PAIRS)
            .filter_map(|_| {
                let a = rng.below(n as u64) as usize;
                let b = rng.below(n as u64) as usize;
                (a != b).then_some((a, b))
            })
            .collect()
    };
    pairs
        .into_iter()
        .filter_map(|(a, b)| {
            let (a, b) = (running[a], running[b]);
            let estimate = sim
                .node(a)?
                .coordinate()
                .distance_to(sim.node(b)?.coordinate());
            let mean = world.network.latency.mean_rtt(a, b, world.seed);
            let mean = mean.as_secs_f64();
            (mean > 0.0).then(|| (estimate.as_secs_f64() - mean).abs() / mean)
        })
        .collect()
}
