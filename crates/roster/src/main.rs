//! `roster`: the command line. Runs an agent (`roster agent`) and talks to a running one over its HTTP API
//! (`members`, `leave`, `force-leave`, `tags`, `monitor`, ...).
//!
//! Exit codes scripts can trust: 0 success, 2 bad input (unknown flag, bad address, invalid config file,
//! unusable data directory), 1 a failure at run time (port in use, join failed, agent not reachable). Every
//! error's first line on stderr names the problem; only a flag error has more lines, clap's hints (a similar
//! flag, the usage).

mod agent;
mod bench;
mod client;
mod config;
mod demo;
mod events;
mod interrupt;
mod keys;
mod members;
mod tags;
mod trace;

use std::fmt;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Roster: distributed group membership (SWIM + Lifeguard).
#[derive(Debug, Parser)]
#[command(name = "roster", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an agent: join the cluster, keep the membership list, serve the HTTP API.
    Agent(Box<config::AgentArgs>),
    /// List the members a running agent knows, with their tags; filter by state and by tag.
    Members(members::MembersArgs),
    /// Make a running agent leave the cluster gracefully and stop.
    Leave(client::HttpArgs),
    /// Mark a failed member left in every list, so that nobody tries it again and it is forgotten sooner.
    ForceLeave(client::ForceLeaveArgs),
    /// Show or change this member's tags live: list, set KEY=VALUE..., delete KEY...
    #[command(subcommand)]
    Tags(tags::TagsCommand),
    /// Follow a running agent's events as JSON lines.
    Monitor(client::HttpArgs),
    /// Send a user event to every member, through a running agent.
    Event(events::EventArgs),
    /// Ask the members a query and print their answers as JSON lines as they come.
    Query(events::QueryArgs),
    /// Check that a running agent is a working member: exit 0 when it is, 1 with the reason when not.
    Health(client::HttpArgs),
    /// Simulate thousands of members on a modelled network and check the deadlines.
    Sim(Box<roster_sim::cli::SimArgs>),
    /// Run a cluster of agents on this machine through a scripted story of crashes, a leave and a restart.
    Demo(demo::DemoArgs),
    /// Show how one change travelled: who learned it first, who told whom, who heard last, from event logs.
    Trace(trace::TraceArgs),
    /// Generate keys, and rotate the cluster's keys live: install, use, remove, list.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Measure what a member costs on real agent processes on this machine.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// An error in what the operator gave us: exit code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // The first line names the problem; clap's hints follow it (a similar flag, the usage line).
            let rendered = e.render().to_string();
            let message = rendered.trim_end();
            eprintln!(
                "roster: {}",
                message.strip_prefix("error: ").unwrap_or(message)
            );
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        // The simulator's verdict decides the exit code: non-zero when the promise is broken (a deadline
        // missed, a false positive, an invariant violated); a missed stretch target is only reported.
        Command::Sim(args) => {
            return roster_sim::cli::run(*args).unwrap_or_else(|e| {
                eprintln!("roster: {}", format!("{e:#}").replace('\n', " "));
                ExitCode::from(1)
            });
        }
        Command::Agent(args) => agent::run(*args),
        Command::Members(args) => members::members(&args),
        Command::Leave(args) => client::leave(&args),
        Command::ForceLeave(args) => client::force_leave(&args),
        Command::Tags(command) => tags::run(command),
        Command::Monitor(args) => client::monitor(&args),
        Command::Event(args) => events::event(&args),
        Command::Query(args) => events::query(&args),
        Command::Health(args) => client::health(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Trace(args) => trace::run(&args),
        Command::Keys(command) => keys::run(command),
        Command::Bench(command) => bench::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("roster: {line}");
            let bad_input = e.downcast_ref::<BadInput>().is_some()
                || e.downcast_ref::<roster_agent::AgentError>()
                    .is_some_and(|a| a.is_bad_input());
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}
