//! The nemesis: runs whose world and faults are drawn at random from everything the protocol promises to
//! survive (see `plan`), each checked against the protocol's invariants as it goes (see `check`).
//!
//! A broken invariant is reported with the run's seed, a one-line command that replays it, the trace of the
//! member concerned, and the smallest schedule that still breaks it (see `shrink`), written as a plan file that
//! `roster sim --replay` runs again.

pub mod check;
pub mod plan;
pub mod render;
mod shrink;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::nemesis::check::{Figures, Findings, Violation};
use crate::nemesis::plan::Plan;
use crate::scenario::run_seed;

/// How a nemesis is run.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub runs: usize,
    /// Every run at this size; drawn per run from 5 to 5,000 when `None`.
    pub nodes: Option<usize>,
    pub threads: usize,
    /// Violations to shrink and trace (each costs many runs).
    pub explain: usize,
    /// Where shrunk plans are written.
    pub plans_dir: PathBuf,
    /// How to replay one run: the command line, with `{seed}` and `{nodes}` to fill in.
    pub replay_command: String,
}

/// One broken invariant, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct Reported {
    pub run_seed: u64,
    pub nodes: usize,
    pub invariant: &'static str,
    pub at_s: f64,
    pub member: String,
    pub observer: Option<String>,
    pub detail: String,
    /// The command that replays the run.
    pub replay: String,
    /// The smallest schedule found that still breaks the invariant, if the violation was shrunk.
    pub shrunk: Option<Shrunk>,
    /// What every list reported about the member concerned, in the replayed run.
    pub trace: Vec<String>,
}

/// A shrunk schedule.
#[derive(Clone, Debug, Serialize)]
pub struct Shrunk {
    pub faults: usize,
    pub of_faults: usize,
    pub partitions: usize,
    pub plan_file: String,
    pub replay: String,
    pub schedule: Vec<String>,
}

/// Sizes of the runs.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Sizes {
    pub min: usize,
    pub p50: usize,
    pub max: usize,
}

/// What a nemesis found: the JSON object `roster sim --scenario nemesis` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub seed: u64,
    pub runs: usize,
    /// No invariant was violated: the promise held.
    pub promise_met: bool,
    pub sizes: Sizes,
    pub simulated_s: f64,
    /// Every broken invariant (empty when all held), the first few explained.
    pub invariant_violations: Vec<Reported>,
    /// Per invariant: promises checked, broken, excused, and the worst time measured.
    pub invariants: Figures,
    /// Faults drawn, by kind, over all runs.
    pub faults: BTreeMap<&'static str, usize>,
    pub partitions: usize,
    pub wall_s: f64,
}

struct RunResult {
    plan: Plan,
    findings: Findings,
}

/// One finished run, as `progress` is told of it: enough to tell, if a long campaign is stopped, which runs
/// held, which did not, and how long each took.
#[derive(Clone, Debug, Serialize)]
pub struct Finished<'a> {
    /// The run's place in the campaign, from 0.
    pub run: usize,
    pub seed: u64,
    pub nodes: usize,
    pub simulated_s: f64,
    pub wall_s: f64,
    /// The invariants broken, one line each (not shrunk; the seed replays them).
    pub violations: Vec<String>,
    pub invariants: &'a Figures,
}

/// Runs the nemesis; `progress` is told of every finished run.
pub fn run(options: &Options, progress: &(dyn Fn(&Finished) + Sync)) -> anyhow::Result<Report> {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, RunResult)>> = Mutex::new(Vec::new());
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= options.runs {
                        return;
                    }
                    let plan = Plan::draw(run_seed(options.seed, k), options.nodes);
                    let run_started = Instant::now();
                    match check::run(&plan, None) {
                        Ok((findings, _)) => {
                            progress(&Finished {
                                run: k,
                                seed: plan.seed,
                                nodes: plan.initial,
                                simulated_s: plan.duration.as_secs_f64(),
                                wall_s: run_started.elapsed().as_secs_f64(),
                                violations: findings
                                    .violations
                                    .iter()
                                    .map(|v| {
                                        format!("{} at {:.1} s: {}", v.invariant, v.at_s, v.detail)
                                    })
                                    .collect(),
                                invariants: &findings.figures,
                            });
                            let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                            results.push((k, RunResult { plan, findings }));
                        }
                        Err(e) => {
                            *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(k, _)| *k);
    let mut figures = Figures::default();
    let mut faults: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut sizes: Vec<usize> = Vec::new();
    let mut partitions = 0;
    let mut simulated_s = 0.0;
    let mut reported = Vec::new();
    for (_, result) in &results {
        figures.merge(&result.findings.figures);
        sizes.push(result.plan.initial);
        partitions += result.plan.network.partitions.len();
        simulated_s += result.plan.duration.as_secs_f64();
        for f in &result.plan.faults {
            *faults.entry(f.fault.kind()).or_default() += 1;
        }
        for v in &result.findings.violations {
            let explain = reported.len() < options.explain;
            reported.push(report(options, &result.plan, v, explain)?);
        }
    }
    sizes.sort_unstable();
    Ok(Report {
        scenario: "nemesis",
        seed: options.seed,
        runs: results.len(),
        promise_met: reported.is_empty(),
        sizes: Sizes {
            min: sizes.first().copied().unwrap_or(0),
            p50: sizes.get(sizes.len() / 2).copied().unwrap_or(0),
            max: sizes.last().copied().unwrap_or(0),
        },
        simulated_s: simulated_s.round(),
        invariant_violations: reported,
        invariants: figures,
        faults,
        partitions,
        wall_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    })
}

/// Runs one plan (from a plan file) and reports what it broke.
pub fn replay(plan: &Plan, options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (findings, _) = check::run(plan, None)?;
    let mut reported = Vec::new();
    for v in &findings.violations {
        let explain = reported.len() < options.explain;
        let mut r = report(options, plan, v, false)?;
        if explain {
            r.trace = trace_of(plan, v.member)?;
        }
        reported.push(r);
    }
    let mut faults: BTreeMap<&'static str, usize> = BTreeMap::new();
    for f in &plan.faults {
        *faults.entry(f.fault.kind()).or_default() += 1;
    }
    Ok(Report {
        scenario: "nemesis",
        seed: plan.seed,
        runs: 1,
        promise_met: reported.is_empty(),
        sizes: Sizes {
            min: plan.initial,
            p50: plan.initial,
            max: plan.initial,
        },
        simulated_s: plan.duration.as_secs_f64(),
        invariant_violations: reported,
        invariants: findings.figures,
        faults,
        partitions: plan.network.partitions.len(),
        wall_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    })
}

fn report(
    options: &Options,
    plan: &Plan,
    v: &Violation,
    explain: bool,
) -> anyhow::Result<Reported> {
    let name = |i: usize| {
        if i < plan.nodes {
            crate::name_of(i)
        } else {
            "-".into()
        }
    };
    let replay = options
        .replay_command
        .replace("{seed}", &plan.seed.to_string())
        .replace("{nodes}", &plan.initial.to_string());
    let mut reported = Reported {
        run_seed: plan.seed,
        nodes: plan.initial,
        invariant: v.invariant,
        at_s: (v.at_s * 1000.0).round() / 1000.0,
        member: name(v.member),
        observer: v.observer.map(name),
        detail: v.detail.clone(),
        replay,
        shrunk: None,
        trace: Vec::new(),
    };
    if explain {
        reported.trace = trace_of(plan, v.member)?;
        let small = shrink::shrink(plan, v.invariant, Duration::from_secs(120));
        let file = write_plan(&options.plans_dir, &small)?;
        reported.shrunk = Some(Shrunk {
            faults: small.faults.len(),
            of_faults: plan.faults.len(),
            partitions: small.network.partitions.len(),
            replay: format!("roster sim --replay {}", file.display()),
            plan_file: file.display().to_string(),
            schedule: small
                .faults
                .iter()
                .map(|f| format!("{:>8.3}s {:?}", f.at.as_secs_f64(), f.fault))
                .chain(small.network.partitions.iter().map(|p| {
                    format!(
                        "{:>8.3}s partition {:?} until {:.3}s",
                        p.start.as_secs_f64(),
                        p.sides,
                        p.heal.as_secs_f64()
                    )
                }))
                .collect(),
        });
    }
    Ok(reported)
}

/// What every list reported about `member`, replaying `plan`.
fn trace_of(plan: &Plan, member: usize) -> anyhow::Result<Vec<String>> {
    if member >= plan.nodes {
        return Ok(Vec::new());
    }
    let (_, sim) = check::run(plan, Some(member))?;
    let name = sim.identity(member).name().to_string();
    let mut lines = crate::trace::lines(&sim.trace, &name, crate::name_of);
    // The whole story of one member can run to thousands of lines at scale; the report keeps its start and
    // its end.
    if lines.len() > 400 {
        let tail = lines.split_off(lines.len() - 200);
        lines.truncate(200);
        lines.push(format!(
            "... {} lines left out ...",
            sim.trace.len().saturating_sub(400)
        ));
        lines.extend(tail);
    }
    Ok(lines)
}

fn write_plan(dir: &Path, plan: &Plan) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("nemesis-{}.json", plan.seed));
    let json = serde_json::to_string_pretty(plan)?;
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Reads a plan file that a nemesis wrote.
pub fn read_plan(path: &Path) -> anyhow::Result<Plan> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a nemesis plan", path.display()))
}
