//! The nemesis report as text, for a terminal.

use std::fmt::Write as _;

use crate::nemesis::Report;
use crate::nemesis::check::Figure;

/// Trace lines shown per violation in the text (the JSON has them all).
const TRACE_LINES: usize = 40;

pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "nemesis: {} runs from seed {}, {} to {} members (p50 {}), {:.0} simulated s",
        r.runs, r.seed, r.sizes.min, r.sizes.max, r.sizes.p50, r.simulated_s
    );
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>7} {:>8} {:>9}",
        "invariant", "checked", "broken", "excused", "worst"
    );
    let i = &r.invariants;
    let rows: [(&str, &Figure); 8] = [
        ("crash detected", &i.crash_detected),
        ("crash everywhere", &i.crash_everywhere),
        ("news everywhere", &i.news_everywhere),
        ("conflict everywhere", &i.conflict_everywhere),
        ("no false failure", &i.no_false_failure),
        ("left never failed", &i.left_never_failed),
        ("lists settle", &i.lists_settle),
        ("bounded", &i.bounded),
    ];
    for (name, f) in rows {
        let worst = f.max_s.map_or_else(|| "-".into(), |s| format!("{s:.2} s"));
        let _ = writeln!(
            out,
            "{name:<20} {:>9} {:>7} {:>8} {worst:>9}",
            f.checked, f.violations, f.excused
        );
    }
    let fp = &i.largest_footprint;
    let _ = writeln!(
        out,
        "largest node: {} members, {} queued updates, {} suspicions, {} probes, {} last looks, {} relays, {} to reconnect, \
         {} reaps, {} graves",
        fp.members,
        fp.broadcasts,
        fp.suspicions,
        fp.probes,
        fp.last_looks,
        fp.relays,
        fp.reconnect_pool,
        fp.reaps,
        fp.graves
    );
    let faults: Vec<String> = r
        .faults
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .chain((r.partitions > 0).then(|| format!("{} partition", r.partitions)))
        .collect();
    let _ = writeln!(out, "faults: {}", faults.join(", "));
    for v in &r.invariant_violations {
        let _ = writeln!(
            out,
            "VIOLATION {} at {:.3}s: {}{}: {}",
            v.invariant,
            v.at_s,
            v.member,
            v.observer
                .as_ref()
                .map(|o| format!(", in {o}'s list"))
                .unwrap_or_default(),
            v.detail
        );
        let _ = writeln!(out, "  replay: {}", v.replay);
        if let Some(s) = &v.shrunk {
            let _ = writeln!(
                out,
                "  shrunk to {} of {} faults and {} partitions: {}",
                s.faults, s.of_faults, s.partitions, s.replay
            );
            for line in &s.schedule {
                let _ = writeln!(out, "    {line}");
            }
        }
        if !v.trace.is_empty() {
            let _ = writeln!(out, "  trace of {}:", v.member);
            for line in v.trace.iter().take(TRACE_LINES) {
                let _ = writeln!(out, "    {line}");
            }
            if v.trace.len() > TRACE_LINES {
                let _ = writeln!(
                    out,
                    "    ... {} more in the JSON",
                    v.trace.len() - TRACE_LINES
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "nemesis: {} in {:.1}s wall ({} violations)",
        if r.promise_met {
            "PASS, the promise held"
        } else {
            "FAIL, the promise was broken"
        },
        r.wall_s,
        r.invariant_violations.len()
    );
    out
}
