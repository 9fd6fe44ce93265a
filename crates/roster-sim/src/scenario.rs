//! Named scenarios: each builds its worlds from a few parameters, runs them, and judges the result.
//!
//! - `crash`: N members, K crash at once after a warm-up; detection and dissemination against the deadlines.
//! - `spec`: the deadlines' matrix, N in {5, 50, 500, 5000} x loss {0, 5 %}, round trips 20-200 ms, 3 crashes.
//! - `lifeguard`: slow and frozen members under 10 % loss, plus 3 crashes: no live member may be failed.
//! - `partition`: the cluster splits in two, each side fails the other, the split heals: time to merge.
//! - `joins`: a cluster grows from one member by a stream of joins: time until every list has everyone.
//! - `coldstart`: three seeds, then every other member within two seconds, each joining through the seeds (a
//!   fleet started together): time until every list has everyone.
//! - `churn`: leaves and restarts with a new `joined_at`: time until every list shows each.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use roster_core::Config;

use crate::churn;
use crate::engine::{Clocks, Sim, World};
use crate::fault::{Fault, Scheduled};
use crate::network::{Latency, Network, Partition};
use crate::report::{RunOutcome, Setup, Summary, Targets};

/// The knobs every scenario shares; what a scenario does not use it ignores.
#[derive(Clone, Debug)]
pub struct Params {
    pub nodes: usize,
    pub crash: usize,
    pub loss: f64,
    pub latency: Latency,
    pub duration: Duration,
    pub runs: usize,
    pub seed: u64,
    pub targets: Targets,
    /// The protocol configuration every node runs.
    pub config: Config,
    /// How far each machine's clock may be off, either way.
    pub clock_skew: Duration,
    /// How fast or slow each machine's clock may run, in parts per million.
    pub clock_drift_ppm: u32,
    /// Joins, leaves and restarts while the scenario runs.
    pub churn: Churn,
    /// Packets each machine can send per second, if limited.
    pub packet_budget: Option<f64>,
    /// When the crash scenarios crash their members (within the following second).
    pub crash_at: Duration,
    /// When a running member sends a user event, followed to every live list.
    pub user_event_at: Option<Duration>,
    /// When a running member changes its tags, followed to every live list.
    pub tag_change_at: Option<Duration>,
}

/// A rate of membership changes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Churn {
    #[default]
    None,
    /// Changes per second, cluster-wide.
    PerSecond(f64),
    /// This fraction of the members per minute.
    ShareOfMembersPerMinute(f64),
}

impl Churn {
    /// Changes per second in a cluster of `members`.
    pub fn per_second(self, members: usize) -> f64 {
        match self {
            Churn::None => 0.0,
            Churn::PerSecond(rate) => rate,
            Churn::ShareOfMembersPerMinute(share) => share * members as f64 / 60.0,
        }
    }
}

impl Default for Params {
    fn default() -> Self {
        Params {
            nodes: 50,
            crash: 3,
            loss: 0.0,
            latency: Latency::Uniform {
                min: Duration::from_millis(20),
                max: Duration::from_millis(200),
            },
            duration: Duration::from_secs(40),
            runs: 1,
            seed: 1,
            targets: Targets::default(),
            config: Config::default(),
            clock_skew: Duration::ZERO,
            clock_drift_ppm: 0,
            churn: Churn::None,
            packet_budget: None,
            crash_at: Duration::from_secs(5),
            user_event_at: None,
            tag_change_at: None,
        }
    }
}

/// One configuration of a scenario: everything needed to build each of its runs.
#[derive(Clone, Debug)]
pub struct Cell {
    pub label: String,
    pub params: Params,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Crash,
    Lifeguard,
    Partition,
    Joins,
    ColdStart,
    Churn,
}

/// The names `--scenario` accepts.
pub const SCENARIOS: &[&str] = &[
    "crash",
    "spec",
    "lifeguard",
    "partition",
    "joins",
    "coldstart",
    "churn",
];

/// The cells of scenario `name`, from the user's parameters (`explicit_nodes` and `explicit_loss` narrow the spec
/// matrix when given).
pub fn cells(
    name: &str,
    base: &Params,
    explicit_nodes: Option<usize>,
    explicit_loss: Option<f64>,
) -> anyhow::Result<Vec<Cell>> {
    let cell = |label: String, params: Params, kind| Cell {
        label,
        params,
        kind,
    };
    Ok(match name {
        "crash" => vec![cell(
            format!("crash n={}", base.nodes),
            base.clone(),
            Kind::Crash,
        )],
        "spec" => {
            let sizes = explicit_nodes.map_or_else(|| vec![5, 50, 500, 5000], |n| vec![n]);
            let losses = explicit_loss.map_or_else(|| vec![0.0, 0.05], |l| vec![l]);
            let mut cells = Vec::new();
            for &nodes in &sizes {
                for &loss in &losses {
                    let params = Params {
                        nodes,
                        loss,
                        crash: base.crash.min(nodes - 1),
                        ..base.clone()
                    };
                    cells.push(cell(
                        format!("spec n={nodes} loss={:.0}%", loss * 100.0),
                        params,
                        Kind::Crash,
                    ));
                }
            }
            cells
        }
        "lifeguard" => {
            let params = Params {
                loss: explicit_loss.unwrap_or(0.10),
                nodes: base.nodes.max(12),
                ..base.clone()
            };
            vec![cell(
                format!("lifeguard n={}", params.nodes),
                params,
                Kind::Lifeguard,
            )]
        }
        "partition" => {
            let params = Params {
                nodes: base.nodes.max(4),
                ..base.clone()
            };
            vec![cell(
                format!("partition n={}", params.nodes),
                params,
                Kind::Partition,
            )]
        }
        "joins" => vec![cell(
            format!("joins n={}", base.nodes),
            base.clone(),
            Kind::Joins,
        )],
        "coldstart" => {
            let params = Params {
                nodes: base.nodes.max(4),
                ..base.clone()
            };
            vec![cell(
                format!("coldstart n={}", params.nodes),
                params,
                Kind::ColdStart,
            )]
        }
        "churn" => {
            let params = Params {
                nodes: base.nodes.max(8),
                ..base.clone()
            };
            vec![cell(
                format!("churn n={}", params.nodes),
                params,
                Kind::Churn,
            )]
        }
        other => anyhow::bail!(
            "unknown scenario {other:?}; known: {}",
            SCENARIOS.join(", ")
        ),
    })
}

/// The seed of run `run` of a cell: runs differ, and a failing run can be replayed alone.
pub fn run_seed(seed: u64, run: usize) -> u64 {
    seed.wrapping_add((run as u64).wrapping_mul(roster_core::mix::GAMMA))
}

/// The members a cold start begins with, which every other member joins through.
const COLD_START_SEEDS: usize = 3;

/// Schedules the members `order` to join in at most `batches` batches, in that order, spread evenly over
/// `over_s` seconds from 1 s on.
fn join_in_batches(world: &mut World, order: &[usize], batches: usize, over_s: f64) {
    let batches = batches.min(order.len()).max(1);
    for (b, chunk) in order
        .chunks(order.len().div_ceil(batches).max(1))
        .enumerate()
    {
        let at = secs(1.0 + over_s * b as f64 / batches as f64);
        world
            .faults
            .push(Scheduled::new(at, Fault::Join(chunk.to_vec())));
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

impl Cell {
    /// The world of run `run`.
    pub fn world(&self, run: usize) -> World {
        let p = &self.params;
        let seed = run_seed(p.seed, run);
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
        let mut world = World::new(p.nodes, seed);
        world.config = p.config.clone();
        world.network = Network {
            latency: p.latency,
            loss: p.loss,
            ..Network::default()
        };
        world.duration = p.duration;
        let n = p.nodes;
        let pick =
            |rng: &mut SmallRng, k: usize| -> Vec<usize> { sample(rng, n, k.min(n)).into_vec() };
        match self.kind {
            Kind::Crash => {
                // A random moment within a probe period, so crashes do not line up with probe rounds.
                let at = p.crash_at + secs(rng.random_range(0.0..1.0));
                world.duration = world.duration.max(p.crash_at + Duration::from_secs(35));
                world.faults.push(Scheduled::new(
                    at,
                    Fault::Crash(pick(&mut rng, p.crash.min(n - 1))),
                ));
            }
            Kind::Lifeguard => {
                let mut chosen = pick(&mut rng, 6 + p.crash).into_iter();
                let slow: Vec<usize> = chosen.by_ref().take(3).collect();
                let frozen: Vec<usize> = chosen.by_ref().take(3).collect();
                let crashed: Vec<usize> = chosen.collect();
                world.faults.push(Scheduled::new(
                    secs(2.0),
                    Fault::Slow {
                        nodes: slow,
                        duration: p.duration,
                        max_lag: Duration::from_millis(300),
                    },
                ));
                // Each frozen member stops twice, for 1.5 s: long enough to miss its probes and its acks, short
                // enough that its suspicion must not run out.
                for (k, &node) in frozen.iter().enumerate() {
                    for start in [10.0, 25.0] {
                        let at = secs(start + 3.0 * k as f64 + rng.random_range(0.0..1.0));
                        world.faults.push(Scheduled::new(
                            at,
                            Fault::Freeze {
                                nodes: vec![node],
                                duration: Duration::from_millis(1500),
                            },
                        ));
                    }
                }
                world.faults.push(Scheduled::new(
                    secs(40.0 + rng.random_range(0.0..1.0)),
                    Fault::Crash(crashed),
                ));
                world.duration = p.duration.max(Duration::from_secs(60));
            }
            Kind::Partition => {
                let side: Vec<usize> = pick(&mut rng, n / 2);
                world.network.partitions.push(Partition {
                    sides: vec![side],
                    start: secs(5.0),
                    heal: secs(35.0),
                });
                world.duration = p.duration.max(Duration::from_secs(90));
            }
            Kind::Joins => {
                // One member, then everyone else joins in batches over ten seconds, through running members.
                world.initial = 1;
                let mut order: Vec<usize> = (1..n).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.random_range(0..=i));
                }
                join_in_batches(&mut world, &order, 50, 10.0);
                world.duration = p.duration.max(Duration::from_secs(45));
            }
            Kind::ColdStart => {
                // The seeds run first; everyone else starts within two seconds, in the order of their slots.
                world.initial = COLD_START_SEEDS;
                world.join_seeds = COLD_START_SEEDS;
                world.fixed_seeds = true;
                let joiners: Vec<usize> = (COLD_START_SEEDS..n).collect();
                join_in_batches(&mut world, &joiners, 20, 2.0);
                world.duration = p.duration.max(Duration::from_secs(45));
            }
            Kind::Churn => {
                let chosen = pick(&mut rng, 4);
                world.faults.push(Scheduled::new(
                    secs(5.0),
                    Fault::Leave(chosen[..2].to_vec()),
                ));
                world.faults.push(Scheduled::new(
                    secs(20.0),
                    Fault::Crash(chosen[2..].to_vec()),
                ));
                world.faults.push(Scheduled::new(
                    secs(30.0),
                    Fault::restart(chosen[2..].to_vec()),
                ));
                world.duration = p.duration.max(Duration::from_secs(60));
            }
        }
        world.clocks = Clocks {
            skew: p.clock_skew,
            drift_ppm: p.clock_drift_ppm,
        };
        world.network.packet_budget = p.packet_budget;
        if let Some(at) = p.user_event_at {
            world.user_events.push(at);
            // Room for it to spread, and for the verdict to see it did.
            world.duration = world.duration.max(at + Duration::from_secs(20));
        }
        if let Some(at) = p.tag_change_at {
            world.tag_changes.push(at);
            world.duration = world.duration.max(at + Duration::from_secs(20));
        }
        let churn = p.churn.per_second(p.nodes);
        if churn > 0.0 {
            world.nodes += churn::spare_slots(churn, world.duration);
            // Changes stop early enough for the last of them to reach every list before the run ends.
            let until = world.duration.saturating_sub(Duration::from_secs(20));
            churn::schedule(&mut world, churn, secs(2.0), until, &[], &mut rng);
        }
        world.faults.sort_by_key(|f| f.at);
        world
    }

    fn setup(&self) -> Setup {
        let p = &self.params;
        let (min, max) = match p.latency {
            Latency::Constant(rtt) => (rtt, rtt),
            Latency::Uniform { min, max } | Latency::LongTail { min, max } => (min, max),
        };
        Setup {
            label: self.label.clone(),
            nodes: p.nodes,
            crashed: match self.kind {
                Kind::Crash | Kind::Lifeguard => p.crash.min(p.nodes - 1),
                Kind::Churn => 2,
                _ => 0,
            },
            seed: p.seed,
            loss: p.loss,
            rtt_ms: [min.as_secs_f64() * 1e3, max.as_secs_f64() * 1e3],
            duration_s: self.world(0).duration.as_secs_f64(),
            probe_interval_s: self.world(0).config.probe_interval.as_secs_f64(),
            clock_skew_s: p.clock_skew.as_secs_f64(),
            clock_drift_ppm: p.clock_drift_ppm,
            churn_per_s: p.churn.per_second(p.nodes),
            packet_budget: p.packet_budget,
        }
    }

    /// Runs every run of the cell; `progress` is told each simulated second.
    pub fn run(&self, progress: &mut dyn FnMut(u64)) -> anyhow::Result<Summary> {
        self.run_logged(progress, None)
    }

    /// Like [`Cell::run`], and writes every node's event log of each run into `events_dir`:
    /// `<dir>/<name>/events.jsonl` for a single run, `<dir>/run-<k>/<name>/events.jsonl` for several.
    pub fn run_logged(
        &self,
        progress: &mut dyn FnMut(u64),
        events_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Summary> {
        let started = Instant::now();
        let runs = self.params.runs.max(1);
        let mut outcomes = Vec::with_capacity(self.params.runs);
        for run in 0..runs {
            let world = self.world(run);
            let duration = world.duration;
            let mut sim = Sim::new(world)?;
            if events_dir.is_some() {
                sim.record_event_logs();
            }
            let mut at = Duration::ZERO;
            while at < duration {
                at = (at + Duration::from_secs(1)).min(duration);
                sim.run_until(at);
                progress(1);
            }
            if let Some(dir) = events_dir {
                let dir = if runs == 1 {
                    dir.to_owned()
                } else {
                    dir.join(format!("run-{}", run + 1))
                };
                sim.write_event_logs(&dir)?;
            }
            outcomes.push(RunOutcome::of(&sim));
        }
        let mut summary = Summary::new(&self.setup(), &outcomes, started.elapsed().as_secs_f64());
        self.judge(&mut summary);
        Ok(summary)
    }

    /// Simulated seconds the cell will run, for the progress bar.
    pub fn simulated_seconds(&self) -> u64 {
        self.world(0).duration.as_secs().max(1) * self.params.runs.max(1) as u64
    }

    fn judge(&self, s: &mut Summary) {
        let deadline = self.params.targets.dissemination_max_s;
        s.judge_user_events(self.params.config.disseminate_deadline.as_secs_f64());
        s.judge_tag_changes(self.params.config.disseminate_deadline.as_secs_f64());
        match self.kind {
            Kind::Crash | Kind::Lifeguard => {
                s.judge_crashes(&self.params.targets);
                s.judge_news(deadline);
            }
            Kind::Partition => {
                s.judge_mistakes();
                // Failed members are retried every reconnect interval; a heal must then spread like any news.
                let config = self.world(0).config;
                let limit = config.reconnect_interval.as_secs_f64() + deadline;
                for c in s.convergence.clone() {
                    s.require(
                        c.never == 0,
                        format!("{} of {} heals never merged", c.never, c.samples),
                    );
                    if let Some(max) = c.seconds.max {
                        s.require(
                            max <= limit,
                            format!("merge after heal took {max:.2}s > {limit}s"),
                        );
                    }
                }
                s.require(!s.convergence.is_empty(), "no heal was watched".into());
            }
            Kind::Joins | Kind::ColdStart | Kind::Churn => {
                s.judge_mistakes();
                s.judge_news(deadline);
                for c in s.convergence.clone() {
                    s.require(
                        c.never == 0,
                        format!("{} of {} join waves never converged", c.never, c.samples),
                    );
                    if let Some(max) = c.seconds.max {
                        s.require(
                            max <= deadline,
                            format!("convergence after joins took {max:.2}s > {deadline}s"),
                        );
                    }
                }
            }
        }
    }
}
