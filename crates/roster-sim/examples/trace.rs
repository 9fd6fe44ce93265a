//! What one node reported about one member, event by event: for reading a mistake the summary names.
//!
//! ```text
//! cargo run --profile sim -p roster-sim --example trace -- SCENARIO NODES LOSS SEED OBSERVER MEMBER [RUN]
//! cargo run --profile sim -p roster-sim --example trace -- partition 500 0 1 362 215
//! ```
//! Replays run RUN (default 0) of `sim --scenario SCENARIO --nodes NODES --loss LOSS --seed SEED`.

use roster_core::Event;
use roster_sim::Sim;
use roster_sim::scenario::{Params, cells};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 6 || args.len() == 7,
        "usage: trace SCENARIO NODES LOSS SEED OBSERVER MEMBER [RUN]"
    );
    let run: usize = args.get(6).map(|r| r.parse()).transpose()?.unwrap_or(0);
    let params = Params {
        nodes: args[1].parse()?,
        loss: args[2].parse()?,
        seed: args[3].parse()?,
        runs: 1,
        ..Params::default()
    };
    let (observer, member): (usize, usize) = (args[4].parse()?, args[5].parse()?);
    let world = cells(&args[0], &params, Some(params.nodes), Some(params.loss))?
        .remove(0)
        .world(run);
    let mut sim = Sim::new(world)?;
    sim.trace_node(observer);
    sim.trace_node(member);
    sim.run();
    let name = roster_sim::name_of(member);
    for (at, node, event) in &sim.trace {
        let line = match event {
            Event::Changed(c) if c.member.name() == name || *node == member => format!(
                "{} {} inc {} via {} from {:?}",
                c.kind.as_str(),
                c.member.name(),
                c.member.incarnation,
                c.via.as_str(),
                c.from.as_ref().map(|f| f.name().to_string())
            ),
            Event::Probed { target, outcome } if target.name() == name => {
                format!("probed {name}: {outcome:?}")
            }
            _ => continue,
        };
        if *node == member && !line.contains(&name) {
            continue;
        }
        println!(
            "{:>9.3}s {:>6}: {line}",
            at.as_secs_f64(),
            roster_sim::name_of(*node)
        );
    }
    Ok(())
}
