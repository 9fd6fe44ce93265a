//! `roster sim` without the `roster` binary: the same flags, the same output.
//!
//! ```text
//! cargo run --profile sim -p roster-sim --example sim -- --scenario spec --plot docs/plots
//! ```

use std::process::ExitCode;

use clap::Parser;
use roster_sim::cli::{SimArgs, run};

#[derive(Debug, Parser)]
#[command(
    name = "roster-sim",
    about = "Simulate a Roster cluster and measure it against the deadlines"
)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

fn main() -> ExitCode {
    // Large worlds run faster on huge pages (see `roster_sim::huge_pages`).
    if let Some(code) = roster_sim::huge_pages::rerun_with_huge_pages() {
        return code;
    }
    match run(Cli::parse().sim) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
