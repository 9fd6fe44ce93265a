//! Churn: members joining, leaving and restarting at a steady rate while everything else goes on.
//!
//! Churn is drawn when a world is built and written into its fault schedule as plain joins, leaves and
//! restarts, so a run with churn replays like any other and a failing schedule can be shrunk fault by fault.
//! It keeps to nodes that no other fault names, so a crash the run measures is never undone by churn.

use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;

use crate::engine::World;
use crate::fault::{Fault, Scheduled};

/// Slots to keep free for the joins of `per_second` changes over `duration`: a third of the changes are joins,
/// with room for chance.
pub fn spare_slots(per_second: f64, duration: Duration) -> usize {
    (per_second * duration.as_secs_f64() / 3.0 * 1.5).ceil() as usize + 2
}

/// Adds churn at `per_second` changes between `from` and `until` to the world's schedule: joins of slots never
/// started, leaves and restarts of running nodes, a third each, keeping clear of the nodes in `reserved`.
/// Returns how many changes it added.
pub fn schedule(
    world: &mut World,
    per_second: f64,
    from: Duration,
    until: Duration,
    reserved: &[usize],
    rng: &mut SmallRng,
) -> usize {
    if per_second <= 0.0 {
        return 0;
    }
    world.watch_joins = false;
    let named_elsewhere: Vec<usize> = world.faults.iter().flat_map(|f| f.fault.nodes()).collect();
    let free = |i: &usize| !reserved.contains(i) && !named_elsewhere.contains(i);
    let mut running: Vec<usize> = (0..world.initial).filter(free).collect();
    let mut absent: Vec<usize> = (world.initial..world.nodes).filter(free).collect();
    absent.reverse();
    let floor = running.len() / 2;
    let mut at = from;
    let mut added = 0;
    loop {
        let gap: f64 = -(1.0 - rng.random::<f64>()).ln() / per_second;
        at += Duration::from_secs_f64(gap);
        if at >= until {
            break;
        }
        let join = !absent.is_empty() && (running.len() <= floor || rng.random_range(0..3) == 0);
        let fault = if join {
            let node = absent.pop().expect("not empty");
            running.push(node);
            Fault::Join(vec![node])
        } else if running.is_empty() {
            continue;
        } else {
            let node = running[rng.random_range(0..running.len())];
            if rng.random_bool(0.5) {
                running.retain(|&i| i != node);
                Fault::Leave(vec![node])
            } else {
                Fault::restart(vec![node])
            }
        };
        world.faults.push(Scheduled::new(at, fault));
        added += 1;
    }
    world.faults.sort_by_key(|f| f.at);
    added
}
