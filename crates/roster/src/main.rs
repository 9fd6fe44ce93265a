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
mod exit;
mod interrupt;
mod keys;
mod members;
mod rtt;
mod tags;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
pub use exit::BadInput;

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
    /// Estimate the round trip between two members from their network coordinates (B: the agent asked).
    Rtt(rtt::RttArgs),
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

fn main() -> ExitCode {
    let cli: Cli = match exit::parse("roster", std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(code) => return code,
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
        Command::Rtt(args) => rtt::rtt(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Trace(args) => trace::run(&args),
        Command::Keys(command) => keys::run(command),
        Command::Bench(command) => bench::run(command),
    };
    exit::code("roster", result)
}
