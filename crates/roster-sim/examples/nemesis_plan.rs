//! The plan a nemesis run draws from a seed, as the JSON `roster sim --replay` reads, without running it: for
//! seeing what world a failing seed drew before spending the run.
//!
//! ```text
//! cargo run --profile sim -p roster-sim --example nemesis_plan -- SEED [NODES]
//! ```

use roster_sim::nemesis::plan::Plan;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        (1..=2).contains(&args.len()),
        "usage: nemesis_plan SEED [NODES]"
    );
    let seed: u64 = args[0].parse()?;
    let nodes = args.get(1).map(|n| n.parse()).transpose()?;
    println!(
        "{}",
        serde_json::to_string_pretty(&Plan::draw(seed, nodes))?
    );
    Ok(())
}
