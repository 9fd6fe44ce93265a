//! Shrinking a failing plan: taking faults away, one at a time, for as long as the run still breaks the same
//! invariant, so that what is left is the part of the schedule that matters.

use std::time::{Duration, Instant};

use crate::nemesis::check;
use crate::nemesis::plan::Plan;

/// The smallest plan found within `budget` of wall time that still breaks `invariant`.
pub fn shrink(plan: &Plan, invariant: &str, budget: Duration) -> Plan {
    let started = Instant::now();
    let breaks = |p: &Plan| {
        check::run(p, None)
            .map(|(findings, _)| findings.violations.iter().any(|v| v.invariant == invariant))
            .unwrap_or(false)
    };
    let mut best = plan.clone();
    'outer: loop {
        for candidate in smaller(&best) {
            if started.elapsed() > budget {
                break 'outer;
            }
            if breaks(&candidate) {
                best = candidate;
                continue 'outer;
            }
        }
        break;
    }
    best
}

/// Plans with one thing fewer than `plan`: big cuts first (half the faults), then single faults and
/// partitions, then the network's and clocks' imperfections.
fn smaller(plan: &Plan) -> Vec<Plan> {
    let mut out = Vec::new();
    let n = plan.faults.len();
    if n >= 4 {
        for half in [0..n / 2, n / 2..n] {
            let mut p = plan.clone();
            p.faults = plan
                .faults
                .iter()
                .enumerate()
                .filter(|(i, _)| !half.contains(i))
                .map(|(_, f)| f.clone())
                .collect();
            out.push(p);
        }
    }
    for i in (0..n).rev() {
        let mut p = plan.clone();
        p.faults.remove(i);
        out.push(p);
    }
    for i in 0..plan.network.partitions.len() {
        let mut p = plan.clone();
        p.network.partitions.remove(i);
        out.push(p);
    }
    if plan.network.loss > 0.0 {
        let mut p = plan.clone();
        p.network.loss = 0.0;
        out.push(p);
    }
    if plan.network.packet_budget.is_some() {
        let mut p = plan.clone();
        p.network.packet_budget = None;
        out.push(p);
    }
    if plan.clock_skew > Duration::ZERO || plan.clock_drift_ppm > 0 {
        let mut p = plan.clone();
        p.clock_skew = Duration::ZERO;
        p.clock_drift_ppm = 0;
        out.push(p);
    }
    out
}
