//! The spread as text for a terminal: a summary, the timeline corrected for causality, the tree of who told whom, and
//! what the clocks allow.

use std::fmt::Write as _;

use roster_core::Time;
use roster_eventlog::{Kind, rfc3339};

use super::spread::{Hop, Skew, Spread};

/// `HH:MM:SS.mmm` (UTC) of a stamp.
pub fn clock(ms: u64) -> String {
    let full = rfc3339(Time::from_unix_ms(ms));
    full.get(11..23).map_or(full.clone(), str::to_owned)
}

/// `+1.234 s` after the start.
pub fn since(spread: &Spread, ms: u64) -> String {
    format!(
        "+{:.3} s",
        ms.saturating_sub(spread.start_ms()) as f64 / 1000.0
    )
}

/// How a hop learned it, in words.
pub fn how(hop: &Hop) -> String {
    let via = hop.via.as_deref().unwrap_or("?");
    let own = |via: &str| match via {
        "probe" => "its own probe went unanswered".to_owned(),
        "indirect-probe" => "its own probe and ping-reqs went unanswered".to_owned(),
        "self" => "the member's own word".to_owned(),
        "force-leave" => "an operator forced it out (force-leave)".to_owned(),
        "suspicion-timeout" => "its suspicion timed out".to_owned(),
        told @ ("gossip" | "sync") => format!("told ({told}), by a member its log does not name"),
        other => format!("first-hand ({other})"),
    };
    let change = match &hop.from {
        Some(from) => format!("from {from} ({via})"),
        None => own(via),
    };
    let Some(s) = &hop.suspected else {
        return change;
    };
    let suspicion = match &s.from {
        Some(from) => format!(
            "suspected on {from}'s word ({})",
            s.via.as_deref().unwrap_or("?")
        ),
        None => own(s.via.as_deref().unwrap_or("?")),
    };
    match &hop.from {
        Some(from) => format!("{suspicion}; then told it failed by {from} ({via})"),
        None => format!("{suspicion}; then {}", own(via)),
    }
}

/// What the change is, in a few words: `m4 failed (127.0.0.1:7946, joined 2026-...)`.
pub fn headline(spread: &Spread) -> String {
    let mut line = format!(
        "{} {} ({}, joined {}",
        spread.member,
        spread.kind,
        spread.addr,
        rfc3339(Time::from_unix_ms(spread.joined_at_ms))
    );
    if let Some(inc) = spread.incarnation {
        let _ = write!(line, ", incarnation {inc}");
    }
    line.push(')');
    line
}

/// A first-hand list: when it found out, and how (by its own clock).
fn detected(hop: &Hop) -> String {
    match &hop.suspected {
        Some(s) => format!(
            "{}, suspected at {} and marked {} at {} ({})",
            hop.node,
            clock(s.time_ms),
            "failed",
            clock(hop.time_ms),
            how(hop)
        ),
        None => format!("{} at {} ({})", hop.node, clock(hop.time_ms), how(hop)),
    }
}

/// The one-paragraph summary: first detector, last to hear, how many lists.
pub fn summary(spread: &Spread) -> Vec<String> {
    let mut lines = Vec::new();
    let heard = spread.hops.len();
    let lists = heard + spread.unheard.len();
    let detector = spread.first_detector().map(|h| h.node.as_str());
    if let Some(suspect) = spread
        .first_suspect
        .as_ref()
        .filter(|s| Some(s.0.as_str()) != detector)
    {
        lines.push(format!(
            "first suspected by {} at {} (its clock)",
            suspect.0,
            clock(suspect.1)
        ));
    }
    let detectors: Vec<&Hop> = spread.hops.iter().filter(|h| h.first_hand()).collect();
    // A failure or a suspicion is detected; a join or a leave starts with the member itself.
    let first = if matches!(spread.kind, Kind::Failed | Kind::Suspect) {
        "first detector"
    } else {
        "first to know"
    };
    match detectors.as_slice() {
        [] => lines.push("no list learned it first-hand in these logs".to_owned()),
        [only] => lines.push(format!("{first}: {}", detected(only))),
        [earliest, rest @ ..] => {
            lines.push(format!("{first}: {}", detected(earliest)));
            lines.push(format!(
                "also first-hand: {} (independent detections; they compare only by their own clocks)",
                rest.iter()
                    .map(|h| format!("{} {}", h.node, since(spread, h.causal_ms)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if let Some(last) = spread.last_to_hear() {
        lines.push(format!(
            "last to hear: {} at {} ({}), {} hop{} from a detector",
            last.node,
            since(spread, last.causal_ms),
            how(last),
            last.depth,
            if last.depth == 1 { "" } else { "s" }
        ));
    }
    lines.push(format!(
        "reached {heard} of {lists} lists in these logs{}",
        if spread.unheard.is_empty() {
            String::new()
        } else {
            format!("; never logged it: {}", spread.unheard.join(", "))
        }
    ));
    if !spread.missing_logs.is_empty() {
        lines.push(format!(
            "told by members whose logs are not here: {}",
            spread.missing_logs.join(", ")
        ));
    }
    lines
}

/// Why the times are not one clock's, and what the lines prove about the clocks.
pub fn clock_notes(spread: &Spread) -> Vec<String> {
    let mut lines = vec![
        "clocks: each line is stamped by its own machine's clock, and clocks differ. Times here are corrected for \
         causality: a list cannot learn news before the member that told it, so a line stamped earlier than its \
         sender's (marked !) shows a clock behind, and that list's times are moved later by the gap."
            .to_owned(),
    ];
    let flagged: Vec<&Hop> = spread
        .hops
        .iter()
        .filter(|h| h.before_sender_ms.is_some())
        .collect();
    if flagged.is_empty() {
        lines.push("no line in this spread is stamped before its sender's.".to_owned());
    } else {
        lines.push(format!(
            "{} line{} stamped before the sender's: those clocks are behind their sender's by at least the gap.",
            flagged.len(),
            if flagged.len() == 1 { " is" } else { "s are" }
        ));
    }
    if spread.skew.is_empty() {
        lines.push(
            "skew: no pair of lines in these logs proves two clocks apart (it does not prove them together)."
                .to_owned(),
        );
    } else {
        lines.push(format!(
            "skew, from every sender-receiver pair in these logs ({} pair{} of clocks proven apart):",
            spread.skew.len(),
            if spread.skew.len() == 1 { "" } else { "s" }
        ));
        for s in spread.skew.iter().take(5) {
            lines.push(format!("  {}", describe_skew(s)));
        }
        if spread.skew.len() > 5 {
            lines.push(format!("  ... and {} more", spread.skew.len() - 5));
        }
    }
    lines
}

/// `m3's clock is at least 78 ms behind m2's (at most 95 ms; 12 lines)`.
pub fn describe_skew(s: &Skew) -> String {
    // Say it the way round that reads as a positive gap.
    let (ahead, behind, lo, hi) = match (s.at_least_ms, s.at_most_ms) {
        (Some(lo), hi) if lo > 0 => (&s.a, &s.b, lo, hi),
        (lo, Some(hi)) => (&s.b, &s.a, -hi, lo.map(|l| -l)),
        (lo, None) => (&s.a, &s.b, lo.unwrap_or(0), None),
    };
    let most = hi.map_or(String::new(), |h| format!(", at most {h} ms"));
    format!(
        "{behind}'s clock is at least {lo} ms behind {ahead}'s{most} ({} line{})",
        s.evidence,
        if s.evidence == 1 { "" } else { "s" }
    )
}

/// The whole text report.
pub fn render(spread: &Spread) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "trace of {}", headline(spread));
    for line in summary(spread) {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "timeline (own stamps by each machine's clock; + is time since the first, corrected for causality)"
    );
    let width = spread.hops.iter().map(|h| h.node.len()).max().unwrap_or(4);
    for hop in &spread.hops {
        let mark = match hop.before_sender_ms {
            Some(gap) => format!("  ! clock behind its sender's by {gap} ms or more"),
            None => String::new(),
        };
        let mut told = if hop.told.is_empty() {
            String::new()
        } else {
            format!(", told {}", hop.told.len())
        };
        if let Some(s) = &hop.suspected {
            told.push_str(&format!("; suspected at {}", since(spread, s.causal_ms)));
        }
        let _ = writeln!(
            out,
            "  {:>9}  {}{}  {:<width$}  {}{told}{mark}",
            since(spread, hop.causal_ms),
            clock(hop.time_ms),
            if hop.before_sender_ms.is_some() {
                "!"
            } else {
                " "
            },
            hop.node,
            how(hop),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "who told whom{}",
        if spread.hops.iter().any(|h| h.suspected.is_some()) {
            " (times: when the news first reached each list, as a suspicion)"
        } else {
            ""
        }
    );
    for root in spread.children(None) {
        tree(spread, root, "", true, true, &mut out);
    }
    let _ = writeln!(out);
    for line in clock_notes(spread) {
        let _ = writeln!(out, "{line}");
    }
    if !spread.others.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "other {} changes of {} in these logs:",
            spread.kind, spread.member
        );
        for o in &spread.others {
            let _ = writeln!(
                out,
                "  --joined-at {}{} ({} list{})",
                rfc3339(Time::from_unix_ms(o.joined_at_ms)),
                o.incarnation
                    .map_or(String::new(), |i| format!(" --incarnation {i}")),
                o.lists,
                if o.lists == 1 { "" } else { "s" }
            );
        }
    }
    out
}

fn tree(spread: &Spread, at: usize, prefix: &str, last: bool, root: bool, out: &mut String) {
    let hop = &spread.hops[at];
    let (branch, below) = if root {
        ("", "")
    } else if last {
        ("└─ ", "   ")
    } else {
        ("├─ ", "│  ")
    };
    let note = match (hop.told_by(), hop.parent) {
        (None, _) => format!(" ({})", how(hop)),
        (Some(from), None) => format!(" (from {from}, whose log is not here)"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "  {prefix}{branch}{} {}{note}",
        hop.node,
        since(spread, hop.arrival_ms())
    );
    let children: Vec<usize> = spread.children(Some(at)).collect();
    let inner = format!("{prefix}{below}");
    for (i, child) in children.iter().enumerate() {
        tree(spread, *child, &inner, i + 1 == children.len(), false, out);
    }
}
