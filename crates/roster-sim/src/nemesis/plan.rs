//! A nemesis plan: one run's world and fault schedule, drawn at random from everything the protocol promises
//! to survive, and written out whole so that a run can be replayed, and shrunk, from the plan alone.
//!
//! Within the promise means: at most `max_simultaneous_failures` members out of action at once (crashed and
//! not yet failed everywhere, or frozen); loss up to 5 %; round trips up to `max_rtt`; clocks within the
//! configured `max_clock_skew` of each other except right after a reboot, until NTP steps them right; no
//! crash measured while a partition is open or a rebooted clock is still wrong. Within that, the plan draws
//! freely: cold or converged starts, churn, freezes short and long, slow members, partitions short and longer
//! than the reap timeouts, reboots with the clock behind (with or without the data directory), clock steps,
//! packet budgets and cloned machines.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use roster_core::Config;
use serde::{Deserialize, Serialize};

use crate::churn;
use crate::engine::{Clocks, World};
use crate::fault::{Fault, Scheduled};
use crate::network::{Latency, Network, Partition};
use crate::serde_secs;

/// How long after the last fault a run goes on, quiet, for every list to come back to the truth.
pub const SETTLE: Duration = Duration::from_secs(60);

/// Reap timeouts short enough for a run to outlast them.
const SHORT_LEFT_REAP: Duration = Duration::from_secs(40);
const SHORT_FAILED_REAP: Duration = Duration::from_secs(100);

/// One run, whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The run's seed: the simulator's randomness, and the plan's.
    pub seed: u64,
    /// Slots: members at the start, and spares for joins and clones.
    pub nodes: usize,
    /// Members running at the start; with `cold_start` only the first runs and the rest join early on.
    pub initial: usize,
    pub cold_start: bool,
    #[serde(with = "serde_secs")]
    pub duration: Duration,
    /// No fault happens after this; the rest of the run is for the lists to settle.
    #[serde(with = "serde_secs")]
    pub faults_end: Duration,
    pub network: Network,
    #[serde(with = "serde_secs")]
    pub clock_skew: Duration,
    pub clock_drift_ppm: u32,
    /// Reap timeouts shortened so that partitions can outlast them.
    pub short_reaps: bool,
    /// Joins, leaves and restarts per second that the schedule holds.
    pub churn_per_s: f64,
    pub faults: Vec<Scheduled>,
}

impl Plan {
    /// The protocol configuration the plan's members run.
    pub fn config(&self) -> Config {
        let mut config = Config::default();
        // Clocks drawn within plus or minus the skew, and stepped by up to half of it: what the fleet is
        // configured for.
        config.max_clock_skew = config.max_clock_skew.max(self.clock_skew * 3);
        if self.short_reaps {
            config.left_reap_timeout = SHORT_LEFT_REAP;
            config.failed_reap_timeout = SHORT_FAILED_REAP;
        }
        config
    }

    /// The world the plan describes.
    pub fn world(&self) -> World {
        let mut world = World::new(self.nodes, self.seed);
        world.initial = if self.cold_start { 1 } else { self.initial };
        world.config = self.config();
        world.network = self.network.clone();
        world.duration = self.duration;
        world.clocks = Clocks {
            skew: self.clock_skew,
            drift_ppm: self.clock_drift_ppm,
        };
        world.faults = self.faults.clone();
        world.watch_joins = false;
        world
    }

    /// Draws the plan of the run with `seed`, at `nodes` members if given, else at a size drawn from 5 to
    /// 5,000 (mostly small: a run costs about its size squared).
    pub fn draw(seed: u64, nodes: Option<usize>) -> Plan {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x4e4d_4553_4953);
        let n = nodes.unwrap_or_else(|| draw_size(&mut rng)).max(5);
        let short_reaps = n <= 50 && rng.random_bool(0.4);
        let duration = Duration::from_secs(match n {
            0..=50 => rng.random_range(150..=300),
            51..=500 => rng.random_range(120..=180),
            _ => rng.random_range(100..=120),
        });
        let faults_end = duration - SETTLE;
        let loss = if rng.random_bool(0.5) {
            0.0
        } else {
            rng.random_range(0.0..=0.05)
        };
        let min_rtt = rng.random_range(1..=60);
        let max_rtt = rng.random_range(min_rtt..=200);
        let network = Network {
            latency: Latency::Uniform {
                min: Duration::from_millis(min_rtt),
                max: Duration::from_millis(max_rtt),
            },
            loss,
            packet_budget: rng
                .random_bool(0.25)
                .then(|| rng.random_range(100.0..400.0f64).round()),
            ..Network::default()
        };
        let clock_skew = Duration::from_millis(rng.random_range(0..=500));
        let clock_drift_ppm = rng.random_range(0..=100);
        let cold_start = rng.random_bool(0.25);
        let churn_per_s = if rng.random_bool(0.5) {
            rng.random_range(0.005..0.10) * n as f64 / 60.0
        } else {
            0.0
        };
        let spares = churn::spare_slots(churn_per_s, duration) + 2;
        let mut plan = Plan {
            seed,
            nodes: n + spares,
            initial: n,
            cold_start,
            duration,
            faults_end,
            network,
            clock_skew,
            clock_drift_ppm,
            short_reaps,
            churn_per_s,
            faults: Vec::new(),
        };
        Episodes::new(&plan).draw(&mut plan, &mut rng);
        let mut world = plan.world();
        let churn_from = if cold_start { 15.0 } else { 3.0 };
        churn::schedule(
            &mut world,
            churn_per_s,
            Duration::from_secs_f64(churn_from),
            faults_end,
            &[],
            &mut rng,
        );
        plan.faults = world.faults;
        plan
    }
}

fn draw_size(rng: &mut SmallRng) -> usize {
    let (low, high) = match rng.random_range(0..100) {
        0..=74 => (5.0f64, 50.0f64),
        75..=96 => (51.0, 500.0),
        _ => (501.0, 5000.0),
    };
    (low.ln() + rng.random::<f64>() * (high.ln() - low.ln()))
        .exp()
        .round() as usize
}

/// What the plan knows of a node as it draws the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Running,
    Gone,
    Absent,
}

/// Draws the episodes of a run one after another, keeping the run within the promise.
struct Episodes {
    status: Vec<Known>,
    /// When each member out of action (crashed, frozen) counts against the simultaneous failures until.
    out_of_action: Vec<Duration>,
    /// Spans in which no crash may be measured: partitions, wrong clocks.
    quiet_for_crashes: Vec<(Duration, Duration)>,
    max_failures: usize,
    suspicion_min: Duration,
    /// Slots never started, for clones.
    spare: Vec<usize>,
}

impl Episodes {
    fn new(plan: &Plan) -> Episodes {
        let config = plan.config();
        let mut status = vec![Known::Absent; plan.nodes];
        for s in status.iter_mut().take(plan.initial) {
            *s = Known::Running;
        }
        Episodes {
            status,
            out_of_action: Vec::new(),
            quiet_for_crashes: Vec::new(),
            max_failures: config.max_simultaneous_failures as usize,
            suspicion_min: config.timers(plan.initial).suspicion_min,
            spare: (plan.initial..plan.nodes).rev().take(2).collect(),
        }
    }

    fn running(&self) -> Vec<usize> {
        (0..self.status.len())
            .filter(|&i| self.status[i] == Known::Running)
            .collect()
    }

    fn failures_at(&self, at: Duration) -> usize {
        self.out_of_action
            .iter()
            .filter(|&&until| until > at)
            .count()
    }

    fn crashes_allowed(&self, from: Duration, to: Duration) -> bool {
        self.quiet_for_crashes
            .iter()
            .all(|&(start, end)| to <= start || from >= end)
    }

    fn pick(&self, rng: &mut SmallRng, k: usize) -> Vec<usize> {
        let running = self.running();
        if running.len() <= 4 {
            return Vec::new();
        }
        let k = k.min(running.len() - 3);
        sample(rng, running.len(), k)
            .into_iter()
            .map(|i| running[i])
            .collect()
    }

    fn draw(mut self, plan: &mut Plan, rng: &mut SmallRng) {
        let n = plan.initial;
        let secs = Duration::from_secs_f64;
        if plan.cold_start {
            // The first member runs alone; the others join in a handful of waves over a few seconds.
            let waves = rng.random_range(1..=5);
            let others: Vec<usize> = (1..n).collect();
            let spread = rng.random_range(1.0..8.0);
            for (w, chunk) in others
                .chunks(others.len().div_ceil(waves).max(1))
                .enumerate()
            {
                let at = secs(0.5 + spread * w as f64 / waves as f64);
                plan.faults
                    .push(Scheduled::new(at, Fault::Join(chunk.to_vec())));
            }
        }
        let mut at = secs(if plan.cold_start { 20.0 } else { 5.0 });
        while at < plan.faults_end {
            let room = plan.faults_end - at;
            let kind = rng.random_range(0..100);
            let next_gap = secs(rng.random_range(3.0..25.0));
            match kind {
                // A crash of up to three at once.
                0..=24 => {
                    let window = Duration::from_secs(15);
                    let free = self.max_failures.saturating_sub(self.failures_at(at));
                    if free > 0 && room > window && self.crashes_allowed(at, at + window) {
                        let k = rng.random_range(1..=free);
                        let nodes = self.pick(rng, k);
                        for &i in &nodes {
                            self.status[i] = Known::Gone;
                            self.out_of_action.push(at + window);
                        }
                        if !nodes.is_empty() {
                            plan.faults.push(Scheduled::new(at, Fault::Crash(nodes)));
                        }
                    }
                }
                // A pause: short ones must be survived; long ones may end in a failure, and must be undone.
                25..=39 => {
                    let short = rng.random_bool(0.6);
                    let max_short = self.suspicion_min.as_secs_f64() * 0.75;
                    let duration = if short {
                        secs(rng.random_range(0.2..max_short))
                    } else {
                        secs(rng.random_range(3.0..30.0))
                    };
                    let window = duration + Duration::from_secs(15);
                    let long_ok = short || self.crashes_allowed(at, at + window);
                    if self.failures_at(at) < self.max_failures && room > window && long_ok {
                        if let Some(&node) = self.pick(rng, 1).first() {
                            self.out_of_action.push(at + window);
                            plan.faults.push(Scheduled::new(
                                at,
                                Fault::Freeze {
                                    nodes: vec![node],
                                    duration,
                                },
                            ));
                        }
                    }
                }
                // Slow members: every timer and packet late.
                40..=49 => {
                    let k = rng.random_range(1..=2);
                    let nodes = self.pick(rng, k);
                    let duration = secs(rng.random_range(10.0..60.0)).min(room);
                    if !nodes.is_empty() {
                        plan.faults.push(Scheduled::new(
                            at,
                            Fault::Slow {
                                nodes,
                                duration,
                                max_lag: Duration::from_millis(rng.random_range(20..=200)),
                            },
                        ));
                    }
                }
                // A partition, now and then one that outlasts the reap timeouts.
                50..=61 => {
                    let long = plan.short_reaps && rng.random_bool(0.5);
                    let duration = if long {
                        secs(rng.random_range(60.0..150.0))
                    } else {
                        secs(rng.random_range(5.0..40.0))
                    };
                    let busy = self.failures_at(at) > 0
                        || plan
                            .network
                            .partitions
                            .iter()
                            .any(|p| p.heal + Duration::from_secs(20) > at);
                    if !busy && room > duration + Duration::from_secs(20) {
                        let running = self.running();
                        let side_size = rng.random_range(1..=(running.len() / 2).max(1));
                        let side: Vec<usize> = sample(rng, running.len(), side_size)
                            .into_iter()
                            .map(|i| running[i])
                            .collect();
                        plan.network.partitions.push(Partition {
                            sides: vec![side],
                            start: at,
                            heal: at + duration,
                        });
                        self.quiet_for_crashes.push((
                            at.saturating_sub(Duration::from_secs(15)),
                            at + duration + Duration::from_secs(20),
                        ));
                        at += duration;
                    }
                }
                // A reboot: the machine crashes, comes back on a clock up to three minutes behind (with or
                // without its data directory), and NTP steps the clock right a little later.
                62..=76 => {
                    let down = secs(rng.random_range(0.5..20.0));
                    let synced = secs(rng.random_range(5.0..60.0));
                    let window = down + synced + Duration::from_secs(15);
                    if room > window
                        && self.failures_at(at) < self.max_failures
                        && self.crashes_allowed(at, at + window)
                        && let Some(&node) = self.pick(rng, 1).first()
                    {
                        let behind_ms: i64 = rng.random_range(1_000..=180_000);
                        plan.faults
                            .push(Scheduled::new(at, Fault::Crash(vec![node])));
                        plan.faults.push(Scheduled::new(
                            at + down,
                            Fault::Restart {
                                nodes: vec![node],
                                clock_offset_ms: Some(-behind_ms),
                                keep_data: rng.random_bool(0.5),
                            },
                        ));
                        plan.faults.push(Scheduled::new(
                            at + down + synced,
                            Fault::StepClock {
                                nodes: vec![node],
                                by_ms: behind_ms,
                            },
                        ));
                        self.out_of_action.push(at + down + Duration::from_secs(1));
                        self.quiet_for_crashes
                            .push((at, at + down + synced + Duration::from_secs(15)));
                    }
                }
                // NTP nudges a clock, within what the configuration allows.
                77..=81 => {
                    let half = plan.clock_skew.as_millis() as i64 / 2;
                    if half > 0
                        && let Some(&node) = self.pick(rng, 1).first()
                    {
                        plan.faults.push(Scheduled::new(
                            at,
                            Fault::StepClock {
                                nodes: vec![node],
                                by_ms: rng.random_range(-half..=half),
                            },
                        ));
                    }
                }
                // A member leaves for good.
                82..=91 => {
                    if let Some(&node) = self.pick(rng, 1).first() {
                        self.status[node] = Known::Gone;
                        plan.faults
                            .push(Scheduled::new(at, Fault::Leave(vec![node])));
                    }
                }
                // A machine is cloned: its copy takes the same name from another address.
                _ => {
                    if let (Some(clone), Some(&of)) = (self.spare.pop(), self.pick(rng, 1).first())
                    {
                        self.status[clone] = Known::Running;
                        plan.faults.push(Scheduled::new(
                            at,
                            Fault::Clone {
                                of,
                                clone,
                                same_joined_at: rng.random_bool(0.3),
                            },
                        ));
                    }
                }
            }
            at += next_gap;
        }
        plan.faults.sort_by_key(|f| f.at);
    }
}
