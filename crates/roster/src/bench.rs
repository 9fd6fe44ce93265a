//! `roster bench`: what a member costs, measured on real agent processes on this machine.
//!
//! `roster bench cluster` starts N agents of this very binary on loopback, waits until every list holds N
//! members alive, measures a quiet steady state from the agents' own counters and `/proc`, then kills some at
//! once and reads the survivors' event logs for detection and dissemination. With `--cold-starts K` it only
//! starts, converges and stops the cluster K times. Every wait is bounded, and every process and file it made
//! is gone when it returns, however it ends.

mod cluster;
mod observe;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use roster_agent::SelfInfo;
use roster_core::mix::SplitMix64;

use crate::BadInput;
use crate::config::parse_duration;
use crate::members::Format;
use cluster::{Cluster, Options, check_interrupted, sleep};
use observe::{Counters, Memory, now_ms};
use report::{
    ClusterReport, ColdStarts, Conditions, Convergence, Crash, Quiet, Rates, Spread, Victim,
};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Start N agents on loopback; measure convergence, the quiet cost per member, and crash detection.
    Cluster(ClusterArgs),
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Agents to start
    #[arg(long, default_value_t = 16)]
    pub nodes: usize,
    /// Length of the quiet window measured (e.g. 30s, 500ms, 2m)
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub quiet: Duration,
    /// Wait after convergence before the quiet window, so join news has finished spreading
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Agents killed at once (kill -9) after the quiet window; 0 skips the crash
    #[arg(long, default_value_t = 3)]
    pub kill: usize,
    /// Agents the others join through
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Encrypt all traffic with a fresh shared keyring
    #[arg(long)]
    pub keyring: bool,
    /// Seed for choosing the agents to kill [default: from the clock]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only measure cold starts: start, converge and stop the cluster this many times
    #[arg(long, value_name = "K")]
    pub cold_starts: Option<usize>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Log level of the agents (their stderr goes to the scratch directory)
    #[arg(long, default_value = "warn")]
    pub agent_log_level: String,
    /// Run this program as every agent instead of this roster binary, with the same flags and read the same
    /// way, to compare another membership implementation under the same workload (see bench/memberlist)
    #[arg(long, value_name = "PATH")]
    pub agent_program: Option<PathBuf>,
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Cluster(args) => cluster(&args),
    }
}

fn cluster(args: &ClusterArgs) -> anyhow::Result<()> {
    if !(5..=2048).contains(&args.nodes) {
        return Err(BadInput(format!(
            "--nodes {} is out of range: the deadlines hold from 5 members, and one machine holds about 2048",
            args.nodes
        ))
        .into());
    }
    if args.kill + 2 > args.nodes {
        return Err(BadInput(format!(
            "--kill {} leaves fewer than 2 of {} agents to observe it",
            args.kill, args.nodes
        ))
        .into());
    }
    if args.quiet < Duration::from_secs(1) {
        return Err(BadInput("--quiet must be at least 1s (one protocol period)".into()).into());
    }
    if args.keyring && args.agent_program.is_some() {
        return Err(BadInput(
            "--keyring is roster's own encryption; it cannot be combined with --agent-program"
                .into(),
        )
        .into());
    }
    let program = match &args.agent_program {
        Some(path) if !path.is_file() => {
            return Err(
                BadInput(format!("--agent-program {}: no such file", path.display())).into(),
            );
        }
        Some(path) => path.clone(),
        None => std::env::current_exe().context("cannot find this program's own binary")?,
    };
    crate::interrupt::catch_signals()?;
    let seed = args.seed.unwrap_or_else(|| now_ms() % 100_000);
    let options = Options {
        program,
        other_program: args.agent_program.clone(),
        seeds: args.seeds,
        keyring: args.keyring,
        log_level: args.agent_log_level.clone(),
        ready_timeout: Duration::from_secs(10),
    };
    let load_start = observe::load_average();
    let out = match args.cold_starts {
        Some(runs) => {
            let report = cold_starts(args, &options, seed, runs.clamp(1, 100), load_start)?;
            match args.format {
                Format::Json => serde_json::to_string(&report)?,
                Format::Table => report.table(),
            }
        }
        None => {
            let report = full_run(args, &options, seed, load_start)?;
            match args.format {
                Format::Json => serde_json::to_string(&report)?,
                Format::Table => report.table(),
            }
        }
    };
    println!("{out}");
    Ok(())
}

/// The name of the program the agents ran, for the report: `roster` unless `--agent-program` named another.
fn agent_name(options: &Options) -> String {
    match &options.other_program {
        Some(path) => path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        None => "roster".to_owned(),
    }
}

fn conditions(load_start: Option<f64>) -> Conditions {
    Conditions {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average_start: load_start,
        load_average_end: observe::load_average(),
    }
}

fn full_run(
    args: &ClusterArgs,
    options: &Options,
    seed: u64,
    load_start: Option<f64>,
) -> anyhow::Result<ClusterReport> {
    let first_start = now_ms();
    let mut cluster = Cluster::start(args.nodes, options)?;
    let convergence = converge(&mut cluster, args.nodes, first_start)?;
    let quiet = quiet(&mut cluster, args)?;
    let crash = if args.kill > 0 {
        Some(crash(&mut cluster, args.kill, seed)?)
    } else {
        None
    };
    Ok(ClusterReport {
        agent: agent_name(options),
        nodes: args.nodes,
        seed,
        keyring: args.keyring,
        conditions: conditions(load_start),
        convergence,
        quiet,
        crash,
    })
}

fn cold_starts(
    args: &ClusterArgs,
    options: &Options,
    seed: u64,
    runs: usize,
    load_start: Option<f64>,
) -> anyhow::Result<ColdStarts> {
    let mut converged_ms = Vec::with_capacity(runs);
    for run in 0..runs {
        let first_start = now_ms();
        let mut cluster = Cluster::start(args.nodes, options)?;
        let convergence = converge(&mut cluster, args.nodes, first_start)
            .with_context(|| format!("cold start {}", run + 1))?;
        converged_ms.push(convergence.from_last_start_ms);
        drop(cluster);
        // Let the kernel finish tearing down 2N sockets before the next cluster binds new ones.
        sleep(Duration::from_millis(500))?;
    }
    let mut sorted = converged_ms.clone();
    sorted.sort_unstable();
    Ok(ColdStarts {
        agent: agent_name(options),
        nodes: args.nodes,
        seed,
        runs: converged_ms,
        median_ms: sorted[sorted.len() / 2],
        max_ms: *sorted.last().expect("at least one run"),
        conditions: conditions(load_start),
    })
}

/// Waits until every agent's list holds all `nodes` members alive, and times it from each agent's event log.
fn converge(cluster: &mut Cluster, nodes: usize, first_start: u64) -> anyhow::Result<Convergence> {
    // Generous for a loaded machine, and still bounded: 30 s plus 250 ms per agent.
    let timeout = Duration::from_secs(30) + Duration::from_millis(250) * nodes as u32;
    let until = Instant::now() + timeout;
    let client = observe::http_client();
    loop {
        check_interrupted()?;
        cluster.check_alive()?;
        for agent in &mut cluster.agents {
            agent.log.poll(nodes)?;
        }
        let behind = cluster
            .agents
            .iter()
            .filter(|a| a.log.full_since_ms().is_none())
            .count();
        // The log says so; the API must agree before it counts.
        if behind == 0 && every_list_full(cluster, &client, nodes)? {
            break;
        }
        if Instant::now() >= until {
            bail!(
                "not converged within {timeout:?}: {behind} of {nodes} agents do not yet hold every member alive"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut per_agent: Vec<u64> = cluster
        .agents
        .iter()
        .map(|a| {
            a.log
                .full_since_ms()
                .unwrap_or(0)
                .saturating_sub(cluster.last_start_ms)
        })
        .collect();
    per_agent.sort_unstable();
    let (cpu_ms, packets, bytes) = start_cost(cluster, &client)?;
    Ok(Convergence {
        start_span_ms: cluster.last_start_ms.saturating_sub(first_start),
        from_last_start_ms: *per_agent.last().unwrap_or(&0),
        agent_median_ms: per_agent[per_agent.len() / 2],
        start_cpu_ms: Spread::of(&cpu_ms),
        start_packets: Spread::of(&packets),
        start_bytes: Spread::of(&bytes),
    })
}

/// What each agent spent from its start until every list was whole: CPU (from `/proc`, read first), and
/// packets and payload bytes sent (from its counters).
fn start_cost(
    cluster: &Cluster,
    client: &ureq::Agent,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let mut cpu_ms = Vec::with_capacity(cluster.agents.len());
    for agent in &cluster.agents {
        let pid = agent.pid().context("an agent stopped while starting")?;
        cpu_ms.push(observe::cpu_time(pid)?.as_secs_f64() * 1000.0);
    }
    let (mut packets, mut bytes) = (Vec::new(), Vec::new());
    for agent in &cluster.agents {
        let c = Counters::parse(&observe::get(client, agent.http, "/metrics")?);
        packets.push((c.udp_packets + c.tcp_packets) as f64);
        bytes.push((c.udp_bytes + c.tcp_bytes) as f64);
    }
    Ok((cpu_ms, packets, bytes))
}

/// Whether every agent says it holds `nodes` members active. `/v1/self` carries the count, so the check costs
/// the same small answer per agent at any size (a thousand full lists would be tens of megabytes of JSON).
fn every_list_full(cluster: &Cluster, client: &ureq::Agent, nodes: usize) -> anyhow::Result<bool> {
    for agent in &cluster.agents {
        let body = observe::get(client, agent.http, "/v1/self")?;
        let local: SelfInfo =
            serde_json::from_str(&body).context("an agent's /v1/self did not parse")?;
        if local.active_members != nodes {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One agent at one end of the quiet window.
struct Mark {
    counters: Counters,
    counters_at: Instant,
    cpu: Duration,
    cpu_at: Instant,
}

fn quiet(cluster: &mut Cluster, args: &ClusterArgs) -> anyhow::Result<Quiet> {
    sleep(args.settle)?;
    let client = observe::http_client();
    let pids: Vec<u32> = cluster
        .agents
        .iter()
        .map(|a| a.pid().context("an agent stopped before the quiet window"))
        .collect::<anyhow::Result<_>>()?;
    // The scrape's own CPU stays outside the window: scrape first at the start, read the CPU first at the end.
    let mut start = Vec::with_capacity(pids.len());
    for (agent, &pid) in cluster.agents.iter().zip(&pids) {
        let counters = Counters::parse(&observe::get(&client, agent.http, "/metrics")?);
        let counters_at = Instant::now();
        start.push(Mark {
            counters,
            counters_at,
            cpu: observe::cpu_time(pid)?,
            cpu_at: Instant::now(),
        });
    }
    // Memory is sampled through the window; each agent's largest sample counts.
    let mut memory = vec![Memory::default(); pids.len()];
    let samples = 6;
    for _ in 0..samples {
        sleep(args.quiet / samples)?;
        cluster.check_alive()?;
        for (peak, &pid) in memory.iter_mut().zip(&pids) {
            let m = observe::memory(pid)?;
            peak.rss_kib = peak.rss_kib.max(m.rss_kib);
            peak.anon_kib = peak.anon_kib.max(m.anon_kib);
        }
    }
    let mut end = Vec::with_capacity(pids.len());
    for (agent, &pid) in cluster.agents.iter().zip(&pids) {
        let cpu = observe::cpu_time(pid)?;
        let cpu_at = Instant::now();
        let counters = Counters::parse(&observe::get(&client, agent.http, "/metrics")?);
        end.push(Mark {
            counters,
            counters_at: Instant::now(),
            cpu,
            cpu_at,
        });
    }

    let n = pids.len() as f64;
    let mut rates = Rates::default();
    let mut cpu_percent = Vec::with_capacity(pids.len());
    let mut per_agent_packets = Vec::with_capacity(pids.len());
    let (mut suspicions, mut probe_failures) = (Some(0), Some(0));
    for (s, e) in start.iter().zip(&end) {
        let secs = e.counters_at.duration_since(s.counters_at).as_secs_f64();
        let per_s = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
        let (a, b) = (&s.counters, &e.counters);
        let agent = Rates {
            udp_packets: per_s(a.udp_packets, b.udp_packets),
            tcp_packets: per_s(a.tcp_packets, b.tcp_packets),
            udp_bytes: per_s(a.udp_bytes, b.udp_bytes),
            tcp_bytes: per_s(a.tcp_bytes, b.tcp_bytes),
            ..Rates::default()
        };
        per_agent_packets.push(agent.udp_packets + agent.tcp_packets);
        rates.udp_packets += agent.udp_packets / n;
        rates.tcp_packets += agent.tcp_packets / n;
        rates.udp_bytes += agent.udp_bytes / n;
        rates.tcp_bytes += agent.tcp_bytes / n;
        let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        suspicions = suspicions
            .zip(delta(a.suspicions, b.suspicions))
            .map(|(t, d)| t + d);
        probe_failures = probe_failures
            .zip(delta(a.probe_failures, b.probe_failures))
            .map(|(t, d)| t + d);
        let cpu_secs = e.cpu_at.duration_since(s.cpu_at).as_secs_f64();
        cpu_percent.push(100.0 * e.cpu.saturating_sub(s.cpu).as_secs_f64() / cpu_secs);
    }
    rates.packets = rates.udp_packets + rates.tcp_packets;
    rates.bytes = rates.udp_bytes + rates.tcp_bytes;
    let window = end[0].counters_at.duration_since(start[0].counters_at);
    Ok(Quiet {
        window_s: window.as_secs_f64(),
        settle_s: args.settle.as_secs_f64(),
        per_member_per_s: rates,
        packets_per_member_per_s: Spread::of(&per_agent_packets),
        rss_kib: Spread::of(&memory.iter().map(|m| m.rss_kib as f64).collect::<Vec<_>>()),
        anon_kib: Spread::of(&memory.iter().map(|m| m.anon_kib as f64).collect::<Vec<_>>()),
        cpu_percent_of_core: Spread::of(&cpu_percent),
        suspicions,
        probe_failures,
    })
}

fn crash(cluster: &mut Cluster, kill: usize, seed: u64) -> anyhow::Result<Crash> {
    let nodes = cluster.agents.len();
    let victims = choose(nodes, kill, seed);
    // Catch up on the logs and forget earlier failures, so only what follows this crash counts.
    for agent in &mut cluster.agents {
        agent.log.poll(nodes)?;
        agent.log.failed_at.clear();
    }
    let killed_at = now_ms();
    for &v in &victims {
        cluster.agents[v].kill_now();
    }
    for &v in &victims {
        cluster.agents[v].kill();
    }
    let names: Vec<String> = victims
        .iter()
        .map(|&v| cluster.agents[v].name.clone())
        .collect();
    let survivors: Vec<usize> = (0..nodes).filter(|i| !victims.contains(i)).collect();
    // The dissemination deadline, plus a margin for a loaded machine: long enough to see a miss, bounded.
    let timeout = Duration::from_secs(45);
    let until = Instant::now() + timeout;
    loop {
        check_interrupted()?;
        for &s in &survivors {
            cluster.agents[s].log.poll(nodes)?;
        }
        let done = survivors.iter().all(|&s| {
            names
                .iter()
                .all(|n| cluster.agents[s].log.failed_at.contains_key(n))
        });
        if done || Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut report = Vec::with_capacity(names.len());
    for name in &names {
        let times: Vec<u64> = survivors
            .iter()
            .filter_map(|&s| cluster.agents[s].log.failed_at.get(name).copied())
            .collect();
        let all = times.len() == survivors.len();
        report.push(Victim {
            name: name.clone(),
            detected_ms: times.iter().min().map(|t| t.saturating_sub(killed_at)),
            disseminated_ms: all
                .then(|| times.iter().max().map(|t| t.saturating_sub(killed_at)))
                .flatten(),
            lists_marking_failed: times.len(),
        });
    }
    let false_failures = survivors
        .iter()
        .map(|&s| {
            cluster.agents[s]
                .log
                .failed_at
                .keys()
                .filter(|k| !names.contains(k))
                .count()
        })
        .sum();
    Ok(Crash::new(names, survivors.len(), report, false_failures))
}

/// `kill` distinct agents out of `nodes`, the same for the same seed.
fn choose(nodes: usize, kill: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    let mut chosen = Vec::with_capacity(kill);
    while chosen.len() < kill.min(nodes) {
        let pick = rng.below(nodes as u64) as usize;
        if !chosen.contains(&pick) {
            chosen.push(pick);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn victims_are_distinct_and_repeatable() {
        let a = choose(5, 3, 42);
        assert_eq!(a, choose(5, 3, 42));
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|&v| v < 5));
        assert!(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
    }
}
