//! `rosterd`: the Roster agent alone. The same agent, flags, variables, config file, signals and exit codes as
//! `roster agent`, in a binary without the CLI's other commands (the simulator, the benchmark, the demo, the
//! trace reader, the HTTP client), which an agent never runs.
//!
//! Why a second binary: an agent runs on every machine forever, and most of its resident memory is the
//! binary's own code, because the kernel maps 64 KiB around every page of code an agent touches. That follows
//! the size of the binary, not what the agent runs: docs/performance.md has the figures.
//!
//! `rosterd agent ...` is `rosterd ...`, so that rosterd stands in for `roster agent` wherever that is written
//! (a container's arguments, `roster bench cluster --agent-program`). Any other command (`rosterd members`, as
//! `docker run IMAGE members` gives it when the image's entry point is rosterd) is handed to the `roster`
//! installed beside it, which replaces this process.

mod agent;
mod config;
mod exit;

use std::process::ExitCode;

use clap::Parser;
pub use exit::BadInput;

/// The Roster agent (SWIM + Lifeguard): join the cluster, keep the membership list, serve the HTTP API. The same
/// as `roster agent`; the `roster` command talks to it (members, leave, tags, health, ...).
#[derive(Debug, Parser)]
#[command(name = "rosterd", version)]
struct Cli {
    #[command(flatten)]
    agent: config::AgentArgs,
}

fn main() -> ExitCode {
    let mut args: Vec<_> = std::env::args_os().collect();
    // `rosterd agent --flags` reads as `roster agent --flags`: the agent takes no positional argument, so the
    // word can mean nothing else.
    match args.get(1).and_then(|word| word.to_str()) {
        Some("agent") => {
            args.remove(1);
        }
        Some(word) if !word.starts_with('-') => return hand_to_roster(&args),
        _ => {}
    }
    let cli: Cli = match exit::parse("rosterd", args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    exit::code("rosterd", agent::run(cli.agent))
}

/// Runs `roster` from rosterd's own directory with the same arguments, in place of this process; when there is
/// none, the word is refused as bad input (exit code 2), as clap refuses any unexpected argument.
fn hand_to_roster(args: &[std::ffi::OsString]) -> ExitCode {
    let word = args[1].to_string_lossy();
    let roster = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("roster")))
        .filter(|path| path.is_file());
    let Some(roster) = roster else {
        eprintln!(
            "rosterd: unexpected argument '{word}': rosterd runs the agent only, and no roster command is \
             installed beside it to run `roster {word}`"
        );
        return ExitCode::from(2);
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = std::process::Command::new(&roster).args(&args[1..]).exec();
        eprintln!("rosterd: cannot run {}: {error}", roster.display());
        ExitCode::from(1)
    }
    #[cfg(not(unix))]
    {
        match std::process::Command::new(&roster)
            .args(&args[1..])
            .status()
        {
            Ok(status) => ExitCode::from(
                status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            ),
            Err(error) => {
                eprintln!("rosterd: cannot run {}: {error}", roster.display());
                ExitCode::from(1)
            }
        }
    }
}
