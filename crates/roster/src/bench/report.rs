//! The benchmark's results: one JSON object (the field names are what scripts and docs/performance.md rely on)
//! or a table for a person. Per-member figures are per second, which is per protocol period at the default
//! 1 s probe interval.

use std::fmt::Write;

use serde::Serialize;

/// How busy the machine was: the figures of a loaded machine are not those of an idle one.
#[derive(Debug, Serialize)]
pub struct Conditions {
    pub cpus: usize,
    pub load_average_start: Option<f64>,
    pub load_average_end: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Convergence {
    /// From spawning the first agent to spawning the last.
    pub start_span_ms: u64,
    /// From spawning the last agent until the last list held every member alive.
    pub from_last_start_ms: u64,
    /// The same, for the median agent.
    pub agent_median_ms: u64,
    /// CPU each agent used from its start until every list was whole, in milliseconds.
    pub start_cpu_ms: Spread,
    /// Packets (UDP and TCP) each agent sent from its start until every list was whole.
    pub start_packets: Spread,
    /// Payload bytes each agent sent from its start until every list was whole.
    pub start_bytes: Spread,
}

/// Sent per member per second, averaged over all members.
#[derive(Debug, Default, Serialize)]
pub struct Rates {
    pub packets: f64,
    pub udp_packets: f64,
    pub tcp_packets: f64,
    /// Payload bytes: UDP datagrams and stream frames as handed to the kernel (no IP, UDP or TCP headers).
    pub bytes: f64,
    pub udp_bytes: f64,
    pub tcp_bytes: f64,
}

/// A figure across agents.
#[derive(Debug, Serialize)]
pub struct Spread {
    pub median: f64,
    pub mean: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Spread {
            median: sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
            mean: sorted.iter().sum::<f64>() / sorted.len().max(1) as f64,
            max: sorted.last().copied().unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Quiet {
    pub window_s: f64,
    pub settle_s: f64,
    pub per_member_per_s: Rates,
    /// Packets (UDP and TCP) per second of each member, across members.
    pub packets_per_member_per_s: Spread,
    /// Resident memory, the binary's shared pages included; each agent's largest sample.
    pub rss_kib: Spread,
    /// Private (anonymous) resident memory: what each further agent really adds.
    pub anon_kib: Spread,
    pub cpu_percent_of_core: Spread,
    /// Suspicions started or heard of during the window, summed over agents: 0 in a healthy quiet cluster.
    /// `None` when the agents do not count them.
    pub suspicions: Option<u64>,
    pub probe_failures: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Victim {
    pub name: String,
    /// From the kill to the first list that marked it failed.
    pub detected_ms: Option<u64>,
    /// From the kill to the last survivor's list marking it failed; `None` if some never did.
    pub disseminated_ms: Option<u64>,
    pub lists_marking_failed: usize,
}

/// The detection and dissemination deadlines at the default configuration.
pub const DETECT_DEADLINE_MS: u64 = 10_000;
pub const DISSEMINATE_DEADLINE_MS: u64 = 15_000;

#[derive(Debug, Serialize)]
pub struct Crash {
    pub killed: Vec<String>,
    pub survivors: usize,
    pub victims: Vec<Victim>,
    pub detection_max_ms: Option<u64>,
    pub dissemination_max_ms: Option<u64>,
    pub all_detected: bool,
    pub within_deadlines: bool,
    /// Survivors marked failed after the crash, summed over lists: false positives.
    pub false_failures: usize,
}

impl Crash {
    pub fn new(
        killed: Vec<String>,
        survivors: usize,
        victims: Vec<Victim>,
        false_failures: usize,
    ) -> Crash {
        let all_detected = victims.iter().all(|v| v.disseminated_ms.is_some());
        let detection_max_ms = victims
            .iter()
            .map(|v| v.detected_ms)
            .collect::<Option<Vec<_>>>()
            .and_then(|t| t.into_iter().max());
        let dissemination_max_ms = victims
            .iter()
            .map(|v| v.disseminated_ms)
            .collect::<Option<Vec<_>>>()
            .and_then(|t| t.into_iter().max());
        Crash {
            within_deadlines: all_detected
                && detection_max_ms.is_some_and(|t| t <= DETECT_DEADLINE_MS)
                && dissemination_max_ms.is_some_and(|t| t <= DISSEMINATE_DEADLINE_MS),
            killed,
            survivors,
            victims,
            detection_max_ms,
            dissemination_max_ms,
            all_detected,
            false_failures,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ClusterReport {
    /// The program the agents ran: `roster`, or the one given with `--agent-program`.
    pub agent: String,
    pub nodes: usize,
    pub seed: u64,
    pub keyring: bool,
    pub conditions: Conditions,
    pub convergence: Convergence,
    pub quiet: Quiet,
    pub crash: Option<Crash>,
}

#[derive(Debug, Serialize)]
pub struct ColdStarts {
    /// The program the agents ran.
    pub agent: String,
    pub nodes: usize,
    pub seed: u64,
    /// Convergence of each cold start, from the last agent's start.
    pub runs: Vec<u64>,
    pub median_ms: u64,
    pub max_ms: u64,
    pub conditions: Conditions,
}

/// How the table names the agents' program: nothing for roster's own.
fn program(agent: &str) -> String {
    if agent == "roster" {
        String::new()
    } else {
        format!(" of {agent}")
    }
}

fn ms(t: Option<u64>) -> String {
    t.map_or_else(
        || "never".to_owned(),
        |t| format!("{:.2} s", t as f64 / 1000.0),
    )
}

fn load(c: &Conditions) -> String {
    let f = |l: Option<f64>| l.map_or_else(|| "?".to_owned(), |l| format!("{l:.2}"));
    format!(
        "{} cpus, load average {} at start, {} at end",
        c.cpus,
        f(c.load_average_start),
        f(c.load_average_end)
    )
}

impl ClusterReport {
    pub fn table(&self) -> String {
        let mut s = String::new();
        let q = &self.quiet;
        let r = &q.per_member_per_s;
        let _ = writeln!(
            s,
            "roster bench cluster: {} agents{}{}, seed {}",
            self.nodes,
            program(&self.agent),
            if self.keyring { ", encrypted" } else { "" },
            self.seed
        );
        let _ = writeln!(s, "machine            {}", load(&self.conditions));
        let c = &self.convergence;
        let _ = writeln!(
            s,
            "convergence        {} after the last start (median agent {}; starts spanned {})",
            ms(Some(c.from_last_start_ms)),
            ms(Some(c.agent_median_ms)),
            ms(Some(c.start_span_ms))
        );
        let count = |c: Option<u64>| c.map_or_else(|| "uncounted".to_owned(), |c| c.to_string());
        let _ = writeln!(
            s,
            "start, per agent   {:.1} ms CPU, {:.0} packets, {:.1} KiB sent until then (median; max {:.1} ms, \
             {:.0}, {:.1} KiB)",
            c.start_cpu_ms.median,
            c.start_packets.median,
            c.start_bytes.median / 1024.0,
            c.start_cpu_ms.max,
            c.start_packets.max,
            c.start_bytes.max / 1024.0
        );
        let _ = writeln!(
            s,
            "quiet window       {:.1} s after {:.0} s settling; {} suspicions, {} failed probes",
            q.window_s,
            q.settle_s,
            count(q.suspicions),
            count(q.probe_failures)
        );
        let _ = writeln!(s, "per member per second         total      udp      tcp");
        let _ = writeln!(
            s,
            "  packets sent             {:>8.3} {:>8.3} {:>8.3}   (max member {:.3})",
            r.packets, r.udp_packets, r.tcp_packets, q.packets_per_member_per_s.max
        );
        let _ = writeln!(
            s,
            "  payload bytes sent       {:>8.1} {:>8.1} {:>8.1}",
            r.bytes, r.udp_bytes, r.tcp_bytes
        );
        let _ = writeln!(s, "per agent                    median     mean      max");
        for (label, spread, unit) in [
            ("  resident memory (RSS)", &q.rss_kib, 1024.0),
            ("  private memory (anon)", &q.anon_kib, 1024.0),
        ] {
            let _ = writeln!(
                s,
                "{label:<26} {:>6.2} {:>8.2} {:>8.2} MiB",
                spread.median / unit,
                spread.mean / unit,
                spread.max / unit
            );
        }
        let p = &q.cpu_percent_of_core;
        let _ = writeln!(
            s,
            "  CPU, % of one core     {:>8.3} {:>8.3} {:>8.3}",
            p.median, p.mean, p.max
        );
        if let Some(crash) = &self.crash {
            let _ = writeln!(
                s,
                "crash              killed {} at once (kill -9); {} survivors",
                crash.killed.join(", "),
                crash.survivors
            );
            for v in &crash.victims {
                let _ = writeln!(
                    s,
                    "  {:<8} first list {:>8}   every list {:>8}   ({} lists)",
                    v.name,
                    ms(v.detected_ms),
                    ms(v.disseminated_ms),
                    v.lists_marking_failed
                );
            }
            let _ = writeln!(
                s,
                "  worst    first list {:>8}   every list {:>8}   deadlines 10 s / 15 s: {}{}",
                ms(crash.detection_max_ms),
                ms(crash.dissemination_max_ms),
                if crash.within_deadlines {
                    "met"
                } else {
                    "MISSED"
                },
                if crash.false_failures > 0 {
                    format!("; {} false failures", crash.false_failures)
                } else {
                    String::new()
                }
            );
        }
        s.trim_end().to_owned()
    }
}

impl ColdStarts {
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "roster bench cluster: {} cold starts of {} agents{}",
            self.runs.len(),
            self.nodes,
            program(&self.agent)
        );
        let _ = writeln!(s, "machine            {}", load(&self.conditions));
        let runs: Vec<String> = self.runs.iter().map(|&t| ms(Some(t))).collect();
        let _ = writeln!(
            s,
            "convergence after the last start, each run: {}",
            runs.join(", ")
        );
        let _ = writeln!(
            s,
            "median {}   max {}",
            ms(Some(self.median_ms)),
            ms(Some(self.max_ms))
        );
        s.trim_end().to_owned()
    }
}
