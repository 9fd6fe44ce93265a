//! Everything one member went through in a nemesis plan, as every list reported it: for reading a
//! violation the nemesis shrank.
//!
//! ```text
//! cargo run --profile sim -p roster-sim --example nemesis_trace -- PLAN.json MEMBER
//! ```
//! MEMBER is a slot index (the `N` of `mN`). Prints every event about the member, and every event it reported.

use roster_sim::nemesis::{check, read_plan};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() == 2, "usage: nemesis_trace PLAN.json MEMBER");
    let plan = read_plan(std::path::Path::new(&args[0]))?;
    let member: usize = args[1].parse()?;
    let (findings, sim) = check::run(&plan, Some(member))?;
    let name = sim.identity(member).name().to_string();
    for (at, node, event) in &sim.trace {
        let text =
            roster_sim::trace::line(*at, &roster_sim::name_of(*node), event, &name).or_else(|| {
                (*node == member).then(|| {
                    format!(
                        "{:>9.3}s {:>7}: {event:?}",
                        at.as_secs_f64(),
                        roster_sim::name_of(*node)
                    )
                })
            });
        if let Some(text) = text {
            println!("{text}");
        }
    }
    for v in &findings.violations {
        println!("VIOLATION {} at {:.3}s: {}", v.invariant, v.at_s, v.detail);
    }
    Ok(())
}
