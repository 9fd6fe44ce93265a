//! Turning finished runs into figures: per-run outcomes, their summary over many runs (the JSON object of
//! `roster sim`), the verdict (the promise, and the stretch targets beside it), and the text table.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::Sim;
use crate::metrics::{Mistake, Want};

/// The deadlines Roster promises, and the tighter stretch targets under them, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Targets {
    /// Stretch target: the p99 of crash to the first list that marks it failed.
    pub detection_p99_s: f64,
    /// Promise: every crash failed in at least one list within this.
    pub detection_max_s: f64,
    /// Stretch target: the p99 of crash to every live list.
    pub dissemination_p99_s: f64,
    /// Promise: every crash failed in every live list within this.
    pub dissemination_max_s: f64,
    /// Stretch target: datagrams per member per probe period in a quiet cluster without loss (one ping and
    /// one ack, and little else).
    pub quiet_packets_per_member_period: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            detection_p99_s: 5.0,
            detection_max_s: 10.0,
            dissemination_p99_s: 8.0,
            dissemination_max_s: 15.0,
            quiet_packets_per_member_period: 2.1,
        }
    }
}

/// p50, p99 and max of a sample, in seconds (`null` in JSON when there is no sample).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Quantiles {
    /// Nearest-rank quantiles: the p99 of 100 samples is the 99th smallest, never an interpolation.
    pub fn of(samples: &[f64]) -> Quantiles {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| -> Option<f64> {
            if sorted.is_empty() {
                return None;
            }
            let k = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            Some(round3(sorted[k - 1]))
        };
        Quantiles {
            p50: rank(0.50),
            p99: rank(0.99),
            max: sorted.last().copied().map(round3),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct RunOutcome {
    /// Crash to the first suspicion of it: the time to the first probe plus the probe window.
    pub first_suspect: Vec<f64>,
    pub detection: Vec<f64>,
    pub dissemination: Vec<f64>,
    pub undetected: usize,
    /// Detected, but some live list never marked it failed before the run ended.
    pub incomplete: usize,
    pub leave_spread: Vec<f64>,
    pub join_spread: Vec<f64>,
    /// Leaves and joins whose news never reached every live list.
    pub news_incomplete: usize,
    pub false_positives: Vec<Mistake>,
    pub left_marked_failed: Vec<Mistake>,
    pub partition_failed: u64,
    pub frozen_failed: u64,
    pub live_suspected: u64,
    pub msgs: u64,
    pub bytes: u64,
    pub member_seconds: f64,
    pub max_packet_bytes: usize,
    pub max_stream_bytes: usize,
    pub decode_errors: u64,
    pub quiet_packets_per_member_period: Option<f64>,
    /// Per watch: what it waited for and how long after it opened every list agreed (None: never).
    pub convergence: Vec<(&'static str, Option<f64>)>,
    /// When each observer of the first crash marked it failed, and how many observers there were.
    pub spread: Option<(Vec<f64>, usize)>,
    pub steps: u64,
    /// How each user event sent in the run spread.
    pub user_events: Vec<crate::user_events::Spread>,
    /// How each tag change made in the run spread.
    pub tag_changes: Vec<crate::user_events::Spread>,
}

impl RunOutcome {
    pub fn of(sim: &Sim) -> RunOutcome {
        let m = &sim.metrics;
        let mut out = RunOutcome {
            false_positives: m.false_positives.clone(),
            left_marked_failed: m.left_marked_failed.clone(),
            partition_failed: m.partition_failed,
            frozen_failed: m.frozen_failed,
            live_suspected: m.live_suspected,
            msgs: m.msgs,
            bytes: m.bytes,
            member_seconds: m.member_seconds,
            max_packet_bytes: m.max_packet_bytes,
            max_stream_bytes: m.max_stream_bytes,
            decode_errors: m.decode_errors,
            steps: sim.steps,
            user_events: sim.user_event_spreads(),
            tag_changes: sim.tag_change_spreads(),
            ..RunOutcome::default()
        };
        let period = sim.world().config.probe_interval.as_secs_f64();
        out.quiet_packets_per_member_period = m
            .quiet
            .filter(|&(_, member_seconds)| member_seconds > 0.0)
            .map(|(packets, member_seconds)| packets as f64 / (member_seconds / period));
        for r in m.rumours.iter().filter(|r| !r.superseded) {
            let secs = |t: Option<roster_core::Time>| t.map(|t| (t - r.start).as_secs_f64());
            match r.want {
                Want::Failed => {
                    if out.spread.is_none() {
                        let times = r.spread().iter().map(|d| d.as_secs_f64()).collect();
                        out.spread = Some((times, r.observers));
                    }
                    match (secs(r.first), secs(r.complete)) {
                        (None, _) if r.observers > 0 => out.undetected += 1,
                        (None, _) => {}
                        (Some(first), complete) => {
                            out.first_suspect.extend(secs(r.first_suspect));
                            out.detection.push(first);
                            match complete {
                                Some(all) => out.dissemination.push(all),
                                None => out.incomplete += 1,
                            }
                        }
                    }
                }
                Want::Conflict => {}
                Want::Left | Want::Alive => match secs(r.complete) {
                    Some(all) if r.want == Want::Left => out.leave_spread.push(all),
                    Some(all) => out.join_spread.push(all),
                    None => out.news_incomplete += 1,
                },
            }
        }
        out.convergence = m
            .watches
            .iter()
            .map(|w| (w.label, w.done.map(|d| (d - w.start).as_secs_f64())))
            .collect();
        out
    }
}

/// Time for every list to agree after something, over runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Convergence {
    pub after: &'static str,
    pub samples: usize,
    pub never: usize,
    pub seconds: Quantiles,
}

/// One verdict: the promise (the deadlines, zero false positives, nothing undetected), which decides whether a
/// run passes, and the stretch targets, which are reported and never fail it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// Every part of the promise held.
    pub promise_met: bool,
    /// How the promise was broken, one line each (empty when it held).
    pub promise_broken: Vec<String>,
    /// The stretch targets measured, met or missed.
    pub stretch_targets: Vec<StretchTarget>,
}

impl Verdict {
    /// The stretch targets missed, as lines like `detection p99 6.28 s > 5 s`.
    pub fn stretch_missed(&self) -> Vec<String> {
        self.stretch_targets
            .iter()
            .filter(|t| !t.met)
            .map(StretchTarget::describe)
            .collect()
    }
}

/// A target tighter than the promise: how far a run is from it is worth knowing, but missing it breaks no
/// promise and so does not fail the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StretchTarget {
    pub name: &'static str,
    /// The most the measured figure may be.
    pub target: f64,
    pub measured: f64,
    /// `s` for a time; empty for a count, whose name says what it counts.
    pub unit: &'static str,
    pub met: bool,
}

impl StretchTarget {
    fn new(name: &'static str, target: f64, measured: f64, unit: &'static str) -> StretchTarget {
        StretchTarget {
            name,
            target,
            measured,
            unit,
            met: measured <= target,
        }
    }

    /// `detection p99 6.28 s > 5 s`.
    pub fn describe(&self) -> String {
        let sign = if self.met { "<=" } else { ">" };
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        format!(
            "{} {:.2}{unit} {sign} {}{unit}",
            self.name, self.measured, self.target
        )
    }
}

/// The summary of one configuration over all its runs: the JSON object `roster sim` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub label: String,
    pub nodes: usize,
    pub crashed: usize,
    pub runs: usize,
    pub seed: u64,
    pub loss: f64,
    pub rtt_ms: [f64; 2],
    pub duration_s: f64,
    /// Each machine's clock was off by up to this, either way.
    pub clock_skew_s: f64,
    pub clock_drift_ppm: u32,
    /// Joins, leaves and restarts per second, cluster-wide.
    pub churn_per_s: f64,
    /// Packets each machine could send per second, if limited.
    pub packet_budget: Option<f64>,
    pub first_suspect_s: Quantiles,
    pub detection_s: Quantiles,
    pub dissemination_s: Quantiles,
    pub samples: usize,
    pub false_positives: usize,
    pub undetected: usize,
    pub incomplete: usize,
    pub left_marked_failed: usize,
    pub partition_failed: u64,
    pub frozen_failed: u64,
    pub live_suspected: u64,
    pub leave_s: Quantiles,
    pub join_s: Quantiles,
    pub news_incomplete: usize,
    pub convergence: Vec<Convergence>,
    pub msgs_per_member_s: f64,
    pub bytes_per_member_s: f64,
    pub quiet_packets_per_member_period: Option<f64>,
    pub max_packet_bytes: usize,
    pub max_stream_bytes: usize,
    pub decode_errors: u64,
    pub member_periods: f64,
    pub mistakes: Vec<Mistake>,
    /// User events sent (`--user-event-at`), from the send to the last live member that delivered each.
    pub user_events: usize,
    pub user_event_everywhere_s: Quantiles,
    /// User events some live member never delivered, and deliveries past the first (both must be zero).
    pub user_event_missed: usize,
    pub user_event_repeats: u64,
    /// Tag changes made (`--tag-change-at`), from the change to the last live list that held it.
    pub tag_changes: usize,
    pub tag_change_everywhere_s: Quantiles,
    /// Tag changes some live list never held (must be zero).
    pub tag_change_missed: usize,
    pub verdict: Verdict,
    #[serde(skip)]
    pub spread: Option<(Vec<f64>, usize)>,
    #[serde(skip)]
    pub detection_samples: Vec<f64>,
    #[serde(skip)]
    pub dissemination_samples: Vec<f64>,
    pub wall_s: f64,
}

/// What a configuration was, for the summary.
#[derive(Clone, Debug)]
pub struct Setup {
    pub label: String,
    pub nodes: usize,
    pub crashed: usize,
    pub seed: u64,
    pub loss: f64,
    pub rtt_ms: [f64; 2],
    pub duration_s: f64,
    pub probe_interval_s: f64,
    pub clock_skew_s: f64,
    pub clock_drift_ppm: u32,
    pub churn_per_s: f64,
    pub packet_budget: Option<f64>,
}

impl Summary {
    pub fn new(setup: &Setup, runs: &[RunOutcome], wall_s: f64) -> Summary {
        let all = |f: fn(&RunOutcome) -> &Vec<f64>| {
            runs.iter().flat_map(f).copied().collect::<Vec<f64>>()
        };
        let detection = all(|r| &r.detection);
        let dissemination = all(|r| &r.dissemination);
        let member_seconds: f64 = runs.iter().map(|r| r.member_seconds).sum();
        let per_member_s = |x: u64| {
            if member_seconds > 0.0 {
                round3(x as f64 / member_seconds)
            } else {
                0.0
            }
        };
        let mut labels: Vec<&'static str> = runs
            .iter()
            .flat_map(|r| r.convergence.iter().map(|c| c.0))
            .collect();
        labels.sort_unstable();
        labels.dedup();
        let convergence = labels
            .into_iter()
            .map(|label| {
                let all: Vec<Option<f64>> = runs
                    .iter()
                    .flat_map(|r| r.convergence.iter().filter(|c| c.0 == label).map(|c| c.1))
                    .collect();
                let done: Vec<f64> = all.iter().flatten().copied().collect();
                Convergence {
                    after: label,
                    samples: all.len(),
                    never: all.len() - done.len(),
                    seconds: Quantiles::of(&done),
                }
            })
            .collect();
        let quiet: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.quiet_packets_per_member_period)
            .collect();
        let mistakes: Vec<Mistake> = runs
            .iter()
            .flat_map(|r| r.false_positives.iter().chain(&r.left_marked_failed))
            .take(5)
            .cloned()
            .collect();
        Summary {
            label: setup.label.clone(),
            nodes: setup.nodes,
            crashed: setup.crashed,
            runs: runs.len(),
            seed: setup.seed,
            loss: setup.loss,
            rtt_ms: setup.rtt_ms,
            duration_s: setup.duration_s,
            clock_skew_s: setup.clock_skew_s,
            clock_drift_ppm: setup.clock_drift_ppm,
            churn_per_s: round3(setup.churn_per_s),
            packet_budget: setup.packet_budget,
            first_suspect_s: Quantiles::of(&all(|r| &r.first_suspect)),
            detection_s: Quantiles::of(&detection),
            dissemination_s: Quantiles::of(&dissemination),
            samples: detection.len(),
            false_positives: runs.iter().map(|r| r.false_positives.len()).sum(),
            undetected: runs.iter().map(|r| r.undetected).sum(),
            incomplete: runs.iter().map(|r| r.incomplete).sum(),
            left_marked_failed: runs.iter().map(|r| r.left_marked_failed.len()).sum(),
            partition_failed: runs.iter().map(|r| r.partition_failed).sum(),
            frozen_failed: runs.iter().map(|r| r.frozen_failed).sum(),
            live_suspected: runs.iter().map(|r| r.live_suspected).sum(),
            leave_s: Quantiles::of(&all(|r| &r.leave_spread)),
            join_s: Quantiles::of(&all(|r| &r.join_spread)),
            news_incomplete: runs.iter().map(|r| r.news_incomplete).sum(),
            convergence,
            msgs_per_member_s: per_member_s(runs.iter().map(|r| r.msgs).sum()),
            bytes_per_member_s: per_member_s(runs.iter().map(|r| r.bytes).sum()),
            quiet_packets_per_member_period: (!quiet.is_empty())
                .then(|| round3(quiet.iter().sum::<f64>() / quiet.len() as f64)),
            max_packet_bytes: runs.iter().map(|r| r.max_packet_bytes).max().unwrap_or(0),
            max_stream_bytes: runs.iter().map(|r| r.max_stream_bytes).max().unwrap_or(0),
            decode_errors: runs.iter().map(|r| r.decode_errors).sum(),
            member_periods: (member_seconds / setup.probe_interval_s).round(),
            mistakes,
            user_events: runs.iter().map(|r| r.user_events.len()).sum(),
            user_event_everywhere_s: Quantiles::of(
                &runs
                    .iter()
                    .flat_map(|r| r.user_events.iter().filter_map(|u| u.everywhere_s))
                    .collect::<Vec<f64>>(),
            ),
            user_event_missed: runs
                .iter()
                .flat_map(|r| &r.user_events)
                .filter(|u| u.missed > 0)
                .count(),
            user_event_repeats: runs
                .iter()
                .flat_map(|r| &r.user_events)
                .map(|u| u.repeats)
                .sum(),
            tag_changes: runs.iter().map(|r| r.tag_changes.len()).sum(),
            tag_change_everywhere_s: Quantiles::of(
                &runs
                    .iter()
                    .flat_map(|r| r.tag_changes.iter().filter_map(|t| t.everywhere_s))
                    .collect::<Vec<f64>>(),
            ),
            tag_change_missed: runs
                .iter()
                .flat_map(|r| &r.tag_changes)
                .filter(|t| t.missed > 0)
                .count(),
            verdict: Verdict::default(),
            spread: runs.iter().find_map(|r| r.spread.clone()),
            detection_samples: detection,
            dissemination_samples: dissemination,
            wall_s: round3(wall_s),
        }
    }

    /// Judges the user events sent: each delivered once by every live member within `deadline_s`.
    pub fn judge_user_events(&mut self, deadline_s: f64) {
        if self.user_events == 0 {
            return;
        }
        let missed = self.user_event_missed;
        self.require(
            missed == 0,
            format!("{missed} user events never reached every live member"),
        );
        let repeats = self.user_event_repeats;
        self.require(
            repeats == 0,
            format!("user events delivered {repeats} times more than once"),
        );
        if let Some(max) = self.user_event_everywhere_s.max {
            self.require(
                max <= deadline_s,
                format!("a user event took {max:.2}s > {deadline_s}s to reach every live member"),
            );
        }
    }

    /// Judges the tag changes made: each held by every live list within `deadline_s`.
    pub fn judge_tag_changes(&mut self, deadline_s: f64) {
        if self.tag_changes == 0 {
            return;
        }
        let missed = self.tag_change_missed;
        self.require(
            missed == 0,
            format!("{missed} tag changes never reached every live list"),
        );
        if let Some(max) = self.tag_change_everywhere_s.max {
            self.require(
                max <= deadline_s,
                format!("a tag change took {max:.2}s > {deadline_s}s to reach every live list"),
            );
        }
    }

    /// Judges crash detection: the deadlines and zero mistakes as the promise, the p99s and the quiet cost as
    /// stretch targets.
    pub fn judge_crashes(&mut self, targets: &Targets) {
        let mut broken = Vec::new();
        let mut over = |what: &str, value: Option<f64>, limit: f64| {
            if let Some(v) = value.filter(|&v| v > limit) {
                broken.push(format!("{what} {v:.2}s > {limit}s"));
            }
        };
        over(
            "detection max",
            self.detection_s.max,
            targets.detection_max_s,
        );
        over(
            "dissemination max",
            self.dissemination_s.max,
            targets.dissemination_max_s,
        );
        if self.undetected > 0 {
            broken.push(format!("{} crashes never detected", self.undetected));
        }
        if self.incomplete > 0 {
            broken.push(format!(
                "{} crashes never in every live list",
                self.incomplete
            ));
        }
        for line in broken {
            self.require(false, line);
        }
        self.judge_mistakes();
        for (name, value, target) in [
            (
                "detection p99",
                self.detection_s.p99,
                targets.detection_p99_s,
            ),
            (
                "dissemination p99",
                self.dissemination_s.p99,
                targets.dissemination_p99_s,
            ),
        ] {
            if let Some(measured) = value {
                self.verdict
                    .stretch_targets
                    .push(StretchTarget::new(name, target, measured, "s"));
            }
        }
        // Lost datagrams (to loss or to a packet budget) cost ping-reqs and nacks, and churn costs full syncs:
        // the quiet cost is a target for a cluster with none of them.
        let undisturbed =
            self.loss == 0.0 && self.churn_per_s == 0.0 && self.packet_budget.is_none();
        if let Some(measured) = self.quiet_packets_per_member_period.filter(|_| undisturbed) {
            self.verdict.stretch_targets.push(StretchTarget::new(
                "quiet datagrams per member per period",
                targets.quiet_packets_per_member_period,
                measured,
                "",
            ));
        }
    }

    /// Judges false positives, leaves shown as failures and undecodable packets against zero.
    pub fn judge_mistakes(&mut self) {
        let (false_positives, left_failed, undecodable) = (
            self.false_positives,
            self.left_marked_failed,
            self.decode_errors,
        );
        self.require(
            false_positives == 0,
            format!("{false_positives} false positives"),
        );
        self.require(
            left_failed == 0,
            format!("{left_failed} leaves marked failed"),
        );
        self.require(
            undecodable == 0,
            format!("{undecodable} packets failed to decode"),
        );
    }

    /// Judges joins, rejoins and leaves (churn) against the dissemination deadline, when there were any.
    pub fn judge_news(&mut self, deadline: f64) {
        self.require(
            self.news_incomplete == 0,
            format!(
                "{} joins or leaves never reached every list",
                self.news_incomplete
            ),
        );
        for (what, q) in [("join", self.join_s), ("leave", self.leave_s)] {
            if let Some(max) = q.max {
                self.require(
                    max <= deadline,
                    format!("{what} in every list took {max:.2}s > {deadline}s"),
                );
            }
        }
    }

    /// Records a broken promise unless `ok`.
    pub fn require(&mut self, ok: bool, broken: String) {
        if !ok && !self.verdict.promise_broken.contains(&broken) {
            self.verdict.promise_broken.push(broken);
        }
        self.verdict.promise_met = self.verdict.promise_broken.is_empty();
    }

    /// The verdict as one line: `PASS`, or `FAIL: ...`, and the stretch targets missed.
    pub fn verdict_line(&self) -> String {
        let mut line = if self.verdict.promise_met {
            "PASS".to_string()
        } else {
            format!("FAIL: {}", self.verdict.promise_broken.join("; "))
        };
        let missed = self.verdict.stretch_missed();
        if !missed.is_empty() {
            let _ = write!(line, ", stretch target missed: {}", missed.join("; "));
        }
        line
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

/// The text table: one row per summary.
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>6} {:>5} {:>4} {:>5} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>3} {:>3} {:>6} {:>7} {:>6} | verdict",
        "cell",
        "nodes",
        "loss",
        "runs",
        "crash",
        "det50",
        "det99",
        "detmax",
        "dis50",
        "dis99",
        "dismax",
        "fp",
        "und",
        "msg/s",
        "B/s",
        "maxpkt"
    );
    for s in summaries {
        let verdict = s.verdict_line();
        let _ = writeln!(
            out,
            "{:<22} {:>6} {:>4.0}% {:>4} {:>5} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>3} {:>3} {:>6.2} {:>7.0} {:>6} | {}",
            s.label,
            s.nodes,
            s.loss * 100.0,
            s.runs,
            s.crashed,
            opt(s.detection_s.p50),
            opt(s.detection_s.p99),
            opt(s.detection_s.max),
            opt(s.dissemination_s.p50),
            opt(s.dissemination_s.p99),
            opt(s.dissemination_s.max),
            s.false_positives,
            s.undetected + s.incomplete,
            s.msgs_per_member_s,
            s.bytes_per_member_s,
            s.max_packet_bytes,
            verdict
        );
        let mut extra = Vec::new();
        for c in &s.convergence {
            extra.push(format!(
                "converged after {}: p50 {} max {} s ({} of {} never)",
                c.after,
                opt(c.seconds.p50),
                opt(c.seconds.max),
                c.never,
                c.samples
            ));
        }
        if s.first_suspect_s.max.is_some() {
            extra.push(format!(
                "crash to first suspicion (first probe + window): p50 {} p99 {} max {} s",
                opt(s.first_suspect_s.p50),
                opt(s.first_suspect_s.p99),
                opt(s.first_suspect_s.max)
            ));
        }
        if s.clock_skew_s > 0.0 || s.clock_drift_ppm > 0 {
            extra.push(format!(
                "clocks off by up to {:.3} s either way, drifting up to {} ppm",
                s.clock_skew_s, s.clock_drift_ppm
            ));
        }
        if s.churn_per_s > 0.0 {
            extra.push(format!(
                "churn: {:.3} joins, leaves and restarts per second",
                s.churn_per_s
            ));
        }
        if let Some(budget) = s.packet_budget {
            extra.push(format!("packet budget: {budget:.0} per machine per second"));
        }
        if s.leave_s.max.is_some() {
            extra.push(format!(
                "leave in every list: p50 {} max {} s",
                opt(s.leave_s.p50),
                opt(s.leave_s.max)
            ));
        }
        if s.join_s.max.is_some() {
            extra.push(format!(
                "join in every list: p50 {} max {} s",
                opt(s.join_s.p50),
                opt(s.join_s.max)
            ));
        }
        if let Some(q) = s.quiet_packets_per_member_period {
            extra.push(format!("quiet: {q:.2} packets per member per period"));
        }
        if s.live_suspected > 0 || s.partition_failed > 0 || s.frozen_failed > 0 {
            extra.push(format!(
                "live members suspected {} times; marked failed {} times across a partition, {} times while frozen",
                s.live_suspected, s.partition_failed, s.frozen_failed
            ));
        }
        for m in &s.mistakes {
            extra.push(format!(
                "mistake: {} marked {} failed at {:.3}s via {}",
                m.observer, m.member, m.at_s, m.via
            ));
        }
        for line in extra {
            let _ = writeln!(out, "{:<22}   {line}", "");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let q = Quantiles::of(&samples);
        assert_eq!((q.p50, q.p99, q.max), (Some(50.0), Some(99.0), Some(100.0)));
        assert_eq!(Quantiles::of(&[]).max, None);
        assert_eq!(Quantiles::of(&[3.0]).p99, Some(3.0));
    }

    fn judged(detection: &[f64], dissemination: &[f64]) -> Summary {
        let setup = Setup {
            label: "crash n=5".into(),
            nodes: 5,
            crashed: detection.len(),
            seed: 1,
            loss: 0.0,
            rtt_ms: [20.0, 200.0],
            duration_s: 40.0,
            probe_interval_s: 1.0,
            clock_skew_s: 0.0,
            clock_drift_ppm: 0,
            churn_per_s: 0.0,
            packet_budget: None,
        };
        let run = RunOutcome {
            detection: detection.to_vec(),
            dissemination: dissemination.to_vec(),
            quiet_packets_per_member_period: Some(2.02),
            ..RunOutcome::default()
        };
        let mut summary = Summary::new(&setup, &[run], 0.0);
        summary.judge_crashes(&Targets::default());
        summary
    }

    #[test]
    fn a_missed_stretch_target_is_reported_and_keeps_the_promise() {
        let s = judged(&[3.8, 4.1, 6.3], &[4.2, 4.6, 6.6]);
        assert!(s.verdict.promise_met, "{:?}", s.verdict);
        assert!(s.verdict.promise_broken.is_empty());
        assert_eq!(
            s.verdict.stretch_missed(),
            ["detection p99 6.30 s > 5 s"],
            "{:?}",
            s.verdict.stretch_targets
        );
        let quiet = s
            .verdict
            .stretch_targets
            .iter()
            .find(|t| t.name.starts_with("quiet"))
            .expect("the quiet cost is judged without loss");
        assert!(quiet.met && quiet.measured == 2.02, "{quiet:?}");
        assert_eq!(
            s.verdict_line(),
            "PASS, stretch target missed: detection p99 6.30 s > 5 s"
        );
    }

    #[test]
    fn a_missed_deadline_breaks_the_promise() {
        let s = judged(&[3.8, 10.5], &[4.2, 15.2]);
        assert!(!s.verdict.promise_met);
        assert_eq!(
            s.verdict.promise_broken,
            [
                "detection max 10.50s > 10s",
                "dissemination max 15.20s > 15s"
            ]
        );
        assert!(
            s.verdict_line()
                .starts_with("FAIL: detection max 10.50s > 10s")
        );
        assert!(judged(&[3.8, 4.0], &[4.2, 4.4]).verdict_line() == "PASS");
    }
}
