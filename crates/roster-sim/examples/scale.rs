//! The simulator's speed and memory benchmark: a converged cluster of N members (default 10,000) run for T
//! simulated minutes (default 10), with 3 crashes at minute 1 so the run also shows detection at that size.
//!
//! ```text
//! cargo run --profile sim -p roster-sim --example scale -- [nodes] [minutes] [seed]
//! ```
//!
//! Reports wall time (build, run and both), simulated member-periods per second, peak RSS (VmHWM) and bytes per
//! list entry: the RSS growth over the process's start divided by N^2 entries. It runs itself again with the C
//! library's transparent huge pages asked for (`roster_sim::huge_pages`) unless `GLIBC_TUNABLES` already
//! chooses: `GLIBC_TUNABLES=glibc.malloc.hugetlb=0` runs it with 4 KiB pages.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use roster_sim::report::{RunOutcome, Setup, Summary};
use roster_sim::{Fault, Scheduled, Sim, World};

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> anyhow::Result<ExitCode> {
    if let Some(code) = roster_sim::huge_pages::rerun_with_huge_pages() {
        return Ok(code);
    }
    let mut args = std::env::args().skip(1);
    let nodes: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let minutes: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10.0);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let base_kib = status_kib("VmRSS:").unwrap_or(0);

    let mut world = World::new(nodes, seed);
    world.duration = Duration::from_secs_f64(minutes * 60.0);
    let crashed: Vec<usize> = (0..3.min(nodes - 1))
        .map(|k| (k * 7919 + 13) % nodes)
        .collect();
    world.faults.push(Scheduled::new(
        Duration::from_secs(60).min(world.duration / 2),
        Fault::Crash(crashed),
    ));
    let probe_interval = world.config.probe_interval.as_secs_f64();

    let started = Instant::now();
    let mut sim = Sim::new(world.clone())?;
    let build = started.elapsed();
    let built_kib = status_kib("VmRSS:").unwrap_or(0);
    eprintln!(
        "built {nodes} converged nodes in {:.1}s, RSS {} MiB",
        build.as_secs_f64(),
        built_kib / 1024
    );

    let run_started = Instant::now();
    let mut at = Duration::ZERO;
    while at < world.duration {
        at = (at + Duration::from_secs(30)).min(world.duration);
        sim.run_until(at);
        let m = &sim.metrics;
        eprintln!(
            "  {:>5.0} simulated s, {:>6.1} s wall: {} datagrams, {} stream messages ({} bytes)",
            at.as_secs_f64(),
            run_started.elapsed().as_secs_f64(),
            m.udp_packets,
            m.stream_msgs,
            m.stream_bytes
        );
    }
    let run = run_started.elapsed();
    let peak_kib = status_kib("VmHWM:").unwrap_or(0);

    let outcome = RunOutcome::of(&sim);
    let member_periods = outcome.member_seconds / probe_interval;
    let entries = (nodes * nodes) as f64;
    let setup = Setup {
        label: format!("scale n={nodes}"),
        nodes,
        crashed: 3,
        seed,
        loss: 0.0,
        rtt_ms: [20.0, 200.0],
        duration_s: world.duration.as_secs_f64(),
        probe_interval_s: probe_interval,
        clock_skew_s: 0.0,
        clock_drift_ppm: 0,
        churn_per_s: 0.0,
        packet_budget: None,
    };
    let summary = Summary::new(&setup, &[outcome], (build + run).as_secs_f64());
    println!("nodes                     {nodes}");
    println!(
        "simulated                 {:.0} s",
        world.duration.as_secs_f64()
    );
    println!("wall: build               {:.1} s", build.as_secs_f64());
    println!("wall: run                 {:.1} s", run.as_secs_f64());
    println!(
        "wall: total               {:.1} s",
        (build + run).as_secs_f64()
    );
    println!("member-periods            {member_periods:.0}");
    println!(
        "member-periods per second {:.0} (run only)",
        member_periods / run.as_secs_f64()
    );
    println!(
        "node steps per second     {:.0}",
        sim.steps as f64 / run.as_secs_f64()
    );
    println!(
        "peak RSS                  {:.2} GiB",
        peak_kib as f64 / (1024.0 * 1024.0)
    );
    println!(
        "bytes per list entry      {:.1}",
        (built_kib.saturating_sub(base_kib) * 1024) as f64 / entries
    );
    println!("msgs per member per s     {:.2}", summary.msgs_per_member_s);
    println!(
        "bytes per member per s    {:.0}",
        summary.bytes_per_member_s
    );
    println!(
        "max packet                {} bytes",
        summary.max_packet_bytes
    );
    for r in sim.metrics.rumours.iter() {
        println!(
            "crash of {}: {} of {} live lists mark it failed",
            roster_sim::name_of(r.subject),
            r.spread().len(),
            r.observers
        );
    }
    println!(
        "detection / dissemination p50 {:?} / {:?} max {:?} / {:?} s; false positives {}",
        summary.detection_s.p50,
        summary.dissemination_s.p50,
        summary.detection_s.max,
        summary.dissemination_s.max,
        summary.false_positives
    );
    Ok(ExitCode::SUCCESS)
}
