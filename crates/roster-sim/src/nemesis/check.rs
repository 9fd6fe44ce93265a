//! The nemesis's invariants, checked on a run of a plan: what the protocol promises, judged against what
//! the engine knows to be true.
//!
//! - **crash detected**: a crash is failed in at least one list within the detection deadline;
//! - **crash everywhere**: and in every live list within the dissemination deadline;
//! - **news everywhere**: every join, rejoin and leave is in every live list within the dissemination deadline;
//! - **conflict everywhere**: a cloned machine claiming a live member's name is refused, and every live list
//!   records the conflict within the dissemination deadline (the holder keeps the name: the settling
//!   invariant then finds the clone in no list);
//! - **no false failure**: no live member is failed, outside a partition or a pause longer than
//!   `suspicion_min` (the engine's truth counts those apart);
//! - **left never failed**: a member that left is never shown failed by a list that could hear its goodbye;
//! - **lists settle**: once the faults stop, every list equals the truth within `SETTLE_BOUND`;
//! - **bounded**: no part of any node (queue, timers, pools, tombstones) outgrows its list.
//!
//! Deadlines are promised for a connected network and clocks within the configured skew: a crash or a
//! change whose deadline window overlaps a partition, or a reboot's clock before NTP set it right, is
//! checked by the settling invariant instead; an observer that was paused in the window is not waited for.

use std::time::Duration;

use roster_core::{Footprint, Time};
use serde::Serialize;

use crate::engine::Sim;
use crate::fault::Fault;
use crate::metrics::Want;
use crate::nemesis::plan::Plan;

/// How long after the last fault every list must equal the truth. A healed partition waits for a
/// reconnect (one interval, jittered up to 15 s), and the news then spreads like any other (15 s).
pub const SETTLE_BOUND: Duration = Duration::from_secs(45);

/// One broken promise.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    pub invariant: &'static str,
    /// Seconds since the start of the run.
    pub at_s: f64,
    /// The member concerned (its slot), and the list in which the promise broke, if one.
    pub member: usize,
    pub observer: Option<usize>,
    pub detail: String,
}

/// What one invariant measured over a run (or many).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Figure {
    /// Promises checked.
    pub checked: u64,
    /// Promises broken.
    pub violations: u64,
    /// Promises not checked, because their window overlapped a partition or a wrong clock (the settling
    /// invariant covers them).
    pub excused: u64,
    /// The largest time measured, where the invariant is a deadline.
    pub max_s: Option<f64>,
}

impl Figure {
    fn time(&mut self, seconds: f64) {
        self.max_s = Some(self.max_s.map_or(seconds, |m: f64| m.max(seconds)));
    }

    pub fn merge(&mut self, other: &Figure) {
        self.checked += other.checked;
        self.violations += other.violations;
        self.excused += other.excused;
        if let Some(s) = other.max_s {
            self.time(s);
        }
    }
}

/// The figures of every invariant.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    pub crash_detected: Figure,
    pub crash_everywhere: Figure,
    pub news_everywhere: Figure,
    pub conflict_everywhere: Figure,
    pub no_false_failure: Figure,
    pub left_never_failed: Figure,
    pub lists_settle: Figure,
    pub bounded: Figure,
    /// The most any node held, part by part.
    #[serde(serialize_with = "footprint_fields")]
    pub largest_footprint: Footprint,
}

impl Figures {
    pub fn merge(&mut self, other: &Figures) {
        self.crash_detected.merge(&other.crash_detected);
        self.crash_everywhere.merge(&other.crash_everywhere);
        self.news_everywhere.merge(&other.news_everywhere);
        self.conflict_everywhere.merge(&other.conflict_everywhere);
        self.no_false_failure.merge(&other.no_false_failure);
        self.left_never_failed.merge(&other.left_never_failed);
        self.lists_settle.merge(&other.lists_settle);
        self.bounded.merge(&other.bounded);
        self.largest_footprint = largest(self.largest_footprint, other.largest_footprint);
    }
}

fn footprint_fields<S: serde::Serializer>(f: &Footprint, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(9))?;
    for (part, held) in [
        ("members", f.members),
        ("broadcasts", f.broadcasts),
        ("suspicions", f.suspicions),
        ("probes", f.probes),
        ("last_looks", f.last_looks),
        ("relays", f.relays),
        ("reconnect_pool", f.reconnect_pool),
        ("reaps", f.reaps),
        ("graves", f.graves),
    ] {
        map.serialize_entry(part, &held)?;
    }
    map.end()
}

fn largest(a: Footprint, b: Footprint) -> Footprint {
    Footprint {
        members: a.members.max(b.members),
        broadcasts: a.broadcasts.max(b.broadcasts),
        suspicions: a.suspicions.max(b.suspicions),
        probes: a.probes.max(b.probes),
        last_looks: a.last_looks.max(b.last_looks),
        relays: a.relays.max(b.relays),
        reconnect_pool: a.reconnect_pool.max(b.reconnect_pool),
        reaps: a.reaps.max(b.reaps),
        graves: a.graves.max(b.graves),
    }
}

/// What a run found.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    pub violations: Vec<Violation>,
    pub figures: Figures,
}

/// Spans of a plan in which deadlines are not promised, and the pauses of each node.
struct Excuses {
    /// Partitions and reboots' wrong clocks, as seconds since the start.
    no_deadlines: Vec<(f64, f64)>,
    /// Per node: when it was frozen.
    frozen: Vec<(usize, f64, f64)>,
}

impl Excuses {
    fn of(plan: &Plan) -> Excuses {
        let mut no_deadlines: Vec<(f64, f64)> = plan
            .network
            .partitions
            .iter()
            .map(|p| (p.start.as_secs_f64(), p.heal.as_secs_f64()))
            .collect();
        let mut frozen = Vec::new();
        let config = plan.config();
        for (k, f) in plan.faults.iter().enumerate() {
            let at = f.at.as_secs_f64();
            match &f.fault {
                Fault::Freeze { nodes, duration } => {
                    for &n in nodes {
                        frozen.push((n, at, at + duration.as_secs_f64()));
                    }
                }
                Fault::Restart {
                    nodes,
                    clock_offset_ms: Some(offset),
                    ..
                } if offset.unsigned_abs() as u128 * 1000
                    > config.max_clock_skew.as_micros() / 2 =>
                {
                    // Wrong until a later step of the same clock, or the end of the run.
                    let set_right = plan.faults[k + 1..]
                        .iter()
                        .find(
                            |g| matches!(&g.fault, Fault::StepClock { nodes: n, .. } if n == nodes),
                        )
                        .map_or(f64::INFINITY, |g| g.at.as_secs_f64());
                    no_deadlines.push((at, set_right));
                }
                _ => {}
            }
        }
        Excuses {
            no_deadlines,
            frozen,
        }
    }

    fn deadlines_hold(&self, from: f64, to: f64) -> bool {
        self.no_deadlines.iter().all(|&(a, b)| to <= a || from >= b)
    }

    fn paused(&self, node: usize, from: f64, to: f64) -> bool {
        self.frozen
            .iter()
            .any(|&(n, a, b)| n == node && a < to && b > from)
    }
}

/// Runs `plan` to its end, checking every invariant; `trace` names a member whose every event to record.
pub fn run(plan: &Plan, trace: Option<usize>) -> anyhow::Result<(Findings, Sim)> {
    let config = plan.config();
    let detect = config.detect_deadline.as_secs_f64();
    let spread = config.disseminate_deadline.as_secs_f64();
    let mut sim = Sim::new(plan.world())?;
    if let Some(member) = trace {
        sim.trace_member(member);
    }
    let mut findings = Findings::default();
    let last_fault = plan
        .faults
        .iter()
        .map(|f| match &f.fault {
            Fault::Freeze { duration, .. } | Fault::Slow { duration, .. } => f.at + *duration,
            _ => f.at,
        })
        .chain(plan.network.partitions.iter().map(|p| p.heal))
        .max()
        .unwrap_or_default();
    let mut settled_at: Option<Duration> = None;
    let mut t = Duration::ZERO;
    while t < plan.duration {
        t = (t + Duration::from_secs(1)).min(plan.duration);
        sim.run_until(t);
        if t.as_secs() % 10 == 0 {
            check_bounded(&sim, t, &mut findings);
        }
        if t >= last_fault && settled_at.is_none() && sim.first_difference_from_truth().is_none() {
            settled_at = Some(t);
        }
    }
    let settle = &mut findings.figures.lists_settle;
    settle.checked += 1;
    match settled_at {
        Some(at) if at - last_fault <= SETTLE_BOUND => settle.time((at - last_fault).as_secs_f64()),
        other => {
            settle.violations += 1;
            let (observer, member, detail) = sim.first_difference_from_truth().unwrap_or((
                usize::MAX,
                usize::MAX,
                "settled late".into(),
            ));
            findings.violations.push(Violation {
                invariant: "lists settle",
                at_s: (last_fault + SETTLE_BOUND).as_secs_f64(),
                member,
                observer: Some(observer).filter(|&o| o != usize::MAX),
                detail: match other {
                    Some(at) => format!(
                        "every list equalled the truth only {:.1} s after the last fault, over {:?}",
                        (at - last_fault).as_secs_f64(),
                        SETTLE_BOUND
                    ),
                    None => format!("at the end of the run a list {detail}"),
                },
            });
        }
    }
    check_rumours(&sim, &Excuses::of(plan), detect, spread, &mut findings);
    check_mistakes(&sim, &mut findings);
    Ok((findings, sim))
}

fn check_bounded(sim: &Sim, t: Duration, findings: &mut Findings) {
    let max_relays = sim.world().config.max_pending_relays;
    // The round's probes, and in a cluster no larger than the ring span a sweep of every other member.
    let max_probes = 4 + sim.world().config.ring_span;
    let names = sim.slot_count();
    let max_looks = sim.world().config.last_looks_at_once();
    for i in sim.running_nodes().collect::<Vec<_>>() {
        let Some(f) = sim.footprint(i) else { continue };
        findings.figures.largest_footprint = largest(findings.figures.largest_footprint, f);
        let bounded = &mut findings.figures.bounded;
        bounded.checked += 1;
        let limits = [
            ("list", f.members, names),
            ("broadcast queue", f.broadcasts, f.members + 16),
            ("suspicions", f.suspicions, f.members),
            ("probes in flight", f.probes, max_probes),
            ("last looks in flight", f.last_looks, max_looks),
            ("relays", f.relays, max_relays),
            ("reconnect pool", f.reconnect_pool, f.members),
            ("scheduled reaps", f.reaps, 2 * (2 * f.members + 16)),
            ("graves", f.graves, names),
        ];
        for (part, held, limit) in limits {
            if held > limit {
                bounded.violations += 1;
                findings.violations.push(Violation {
                    invariant: "bounded",
                    at_s: t.as_secs_f64(),
                    member: i,
                    observer: None,
                    detail: format!("{part} holds {held}, over its bound of {limit}"),
                });
            }
        }
    }
}

fn check_rumours(sim: &Sim, excuses: &Excuses, detect: f64, spread: f64, findings: &mut Findings) {
    let end = sim.elapsed().as_secs_f64();
    let since = |t: Time| (t - Time::SIM_EPOCH).as_secs_f64();
    for r in sim.metrics.rumours.iter().filter(|r| !r.superseded) {
        let start = since(r.start);
        let window_end = start + spread;
        if window_end > end {
            continue;
        }
        let (figure, invariant) = match r.want {
            Want::Failed => (&mut findings.figures.crash_everywhere, "crash everywhere"),
            Want::Left | Want::Alive => (&mut findings.figures.news_everywhere, "news everywhere"),
            Want::Conflict => (
                &mut findings.figures.conflict_everywhere,
                "conflict everywhere",
            ),
        };
        if !excuses.deadlines_hold(start - spread, window_end) {
            figure.excused += 1;
            if r.want == Want::Failed {
                findings.figures.crash_detected.excused += 1;
            }
            continue;
        }
        figure.checked += 1;
        let mut broken = None;
        for (observer, heard) in r.observations() {
            if excuses.paused(observer, start, window_end) {
                continue;
            }
            match heard {
                Some(at) => {
                    let took = since(at) - start;
                    figure.time(took);
                    if took > spread && broken.is_none() {
                        broken = Some((observer, format!("heard after {took:.2} s")));
                    }
                }
                None if broken.is_none() => {
                    broken = Some((observer, "never heard".to_string()));
                }
                None => {}
            }
        }
        if let Some((observer, how)) = broken {
            figure.violations += 1;
            findings.violations.push(Violation {
                invariant,
                at_s: start,
                member: r.subject,
                observer: Some(observer),
                detail: format!(
                    "{:?} of the instance joined at {}: {how}",
                    r.want, r.joined_at_ms
                ),
            });
        }
        if r.want == Want::Failed {
            let detected = &mut findings.figures.crash_detected;
            detected.checked += 1;
            match r.first {
                Some(first) if since(first) - start <= detect => {
                    detected.time(since(first) - start)
                }
                // No running list held the instance that crashed (they all took a clone's newer one, or
                // every other member was down): there was nothing to detect.
                None if r.observers == 0 => detected.excused += 1,
                first => {
                    detected.violations += 1;
                    findings.violations.push(Violation {
                        invariant: "crash detected",
                        at_s: start,
                        member: r.subject,
                        observer: None,
                        detail: match first {
                            Some(first) => {
                                format!("first failed after {:.2} s", since(first) - start)
                            }
                            None => "no list failed it".into(),
                        },
                    });
                }
            }
        }
    }
}

fn check_mistakes(sim: &Sim, findings: &mut Findings) {
    let m = &sim.metrics;
    let figures = &mut findings.figures;
    figures.no_false_failure.checked += 1;
    figures.left_never_failed.checked += 1;
    for (invariant, mistakes, figure) in [
        (
            "no false failure",
            &m.false_positives,
            &mut figures.no_false_failure,
        ),
        (
            "left never failed",
            &m.left_marked_failed,
            &mut figures.left_never_failed,
        ),
    ] {
        for mistake in mistakes {
            figure.violations += 1;
            findings.violations.push(Violation {
                invariant,
                at_s: mistake.at_s,
                member: mistake.slots.1,
                observer: Some(mistake.slots.0),
                detail: format!(
                    "{} marked {} failed via {}",
                    mistake.observer, mistake.member, mistake.via
                ),
            });
        }
    }
}
