//! How one crash spreads: the fraction of live lists that mark it failed, second by second, and who was last.
//! Replays run 0 of `sim --nodes N --loss L --seed S` (the default `crash` scenario).
//!
//! ```text
//! cargo run --profile sim -p roster-sim --example spread -- [nodes] [loss] [seed]
//! ```

use std::time::Duration;

use roster_core::name_hash;
use roster_sim::Sim;
use roster_sim::scenario::{Params, cells};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let loss: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0.0);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    // The same world as run 0 of `sim --nodes N --loss L --seed S`, so a run seen there can be replayed here.
    let params = Params {
        nodes,
        loss,
        seed,
        runs: 1,
        ..Params::default()
    };
    let world = cells("crash", &params, None, None)?.remove(0).world(0);
    let mut sim = Sim::new(world)?;
    sim.run();
    for r in &sim.metrics.rumours {
        let spread = r.spread();
        println!(
            "{} ({} observers): first {:?}, every list {:?}",
            roster_sim::name_of(r.subject),
            r.observers,
            r.first.map(|t| t - r.start),
            r.complete.map(|t| t - r.start)
        );
        let mut line = String::new();
        for s in 1..=40 {
            let known = spread
                .iter()
                .filter(|d| **d <= Duration::from_secs(s))
                .count();
            line.push_str(&format!(
                " {s}s:{:.3}",
                known as f64 / r.observers.max(1) as f64
            ));
        }
        println!("{line}");
        // Where the stragglers sit on the ring (the hash order every list shares) says whether gossip targets
        // cover the ring evenly.
        let mut ring: Vec<usize> = (0..nodes).collect();
        ring.sort_by_cached_key(|&i| {
            let name = roster_sim::name_of(i);
            ((name_hash(&name) >> 32) as u32, name)
        });
        let mut position = vec![0; nodes];
        for (at, &i) in ring.iter().enumerate() {
            position[i] = at;
        }
        let mut late: Vec<(Duration, usize)> = (0..nodes)
            .filter_map(|i| r.heard_at(i).map(|t| (t - r.start, i)))
            .collect();
        late.sort();
        let tail: Vec<String> = late
            .iter()
            .rev()
            .take(8)
            .map(|(d, i)| {
                format!(
                    "{}@ring{} {:.1}s",
                    roster_sim::name_of(*i),
                    position[*i],
                    d.as_secs_f64()
                )
            })
            .collect();
        println!("  last to hear: {}", tail.join(", "));
    }
    Ok(())
}
