//! The trace on hand-written logs: who is the detector, who told whom, what the clocks allow.

use roster_eventlog::{Kind, Record};

use super::spread::{Query, Spread, TraceError};
use super::{Format, render};

const JOINED: u64 = 1_795_986_130_004;

fn line(node: &str, kind: Kind, time_ms: u64, via: &str, from: Option<&str>) -> Record {
    Record {
        time_ms,
        node: node.to_owned(),
        kind,
        member: "m4".to_owned(),
        addr: "10.0.0.4:7946".to_owned(),
        joined_at_ms: JOINED,
        incarnation: 2,
        tags: Default::default(),
        via: Some(via.to_owned()),
        from: from.map(str::to_owned),
        to: Vec::new(),
        holder_addr: None,
        holder_joined_at_ms: None,
        user: None,
    }
}

fn failure_of_m4() -> Query {
    Query {
        member: "m4".to_owned(),
        ..Query::default()
    }
}

fn hop<'a>(spread: &'a Spread, node: &str) -> &'a super::spread::Hop {
    spread
        .hops
        .iter()
        .find(|h| h.node == node)
        .unwrap_or_else(|| panic!("no hop for {node}"))
}

fn parent<'a>(spread: &'a Spread, node: &str) -> Option<&'a str> {
    hop(spread, node)
        .parent
        .map(|p| spread.hops[p].node.as_str())
}

#[test]
fn a_failure_is_traced_back_through_the_suspicions_to_the_probe_that_found_it() {
    let logs = vec![
        line("m1", Kind::Suspect, 1_000, "probe", None),
        line("m2", Kind::Suspect, 1_100, "gossip", Some("m1")),
        line("m3", Kind::Suspect, 1_250, "gossip", Some("m2")),
        line("m1", Kind::Failed, 5_000, "suspicion-timeout", None),
        // m3 hears of the failure from m1 before its own suspicion runs out.
        line("m3", Kind::Failed, 5_020, "gossip", Some("m1")),
        line("m2", Kind::Failed, 5_100, "suspicion-timeout", None),
        // A list that logged something else, but never the failure.
        line("m5", Kind::Join, 10, "sync", Some("m1")),
    ];
    let spread = Spread::of(&logs, &failure_of_m4()).expect("a spread");
    assert_eq!(
        spread.kind,
        Kind::Failed,
        "the default change is the failure"
    );
    let detector = spread.first_detector().expect("a detector");
    assert_eq!(detector.node, "m1");
    assert!(detector.first_hand());
    assert_eq!(
        parent(&spread, "m2"),
        Some("m1"),
        "m2 was told the suspicion"
    );
    // m3 heard of the failure from m1 before its own timer ran out, but the news first reached it as m2's
    // suspicion: the tree follows that.
    assert_eq!(
        parent(&spread, "m3"),
        Some("m2"),
        "m3 was told the suspicion first"
    );
    assert_eq!(hop(&spread, "m3").from.as_deref(), Some("m1"));
    assert_eq!(
        hop(&spread, "m2")
            .suspected
            .as_ref()
            .and_then(|s| s.from.as_deref()),
        Some("m1")
    );
    assert_eq!(spread.last_to_hear().map(|h| h.node.as_str()), Some("m2"));
    assert_eq!(spread.unheard, ["m5"]);
    assert_eq!(spread.first_suspect, Some(("m1".to_owned(), 1_000)));
    assert!(spread.hops.iter().all(|h| h.before_sender_ms.is_none()));
    assert!(spread.skew.is_empty(), "{:?}", spread.skew);
    // A millisecond before the sender is within the stamps' resolution: no proof of skew.
    let mut close = logs.clone();
    close.push(line("m6", Kind::Failed, 4_999, "gossip", Some("m1")));
    let spread_close = Spread::of(&close, &failure_of_m4()).expect("a spread");
    assert!(spread_close.skew.is_empty(), "{:?}", spread_close.skew);
    assert_eq!(hop(&spread_close, "m6").before_sender_ms, None);

    let text = render(&spread, Format::Text).expect("text");
    for needle in [
        "trace of m4 failed (10.0.0.4:7946, joined 2026-11-29T21:02:10.004Z)",
        "first detector: m1",
        "its own probe went unanswered; then its suspicion timed out",
        "last to hear: m2 at +4.100 s",
        "reached 3 of 4 lists in these logs; never logged it: m5",
        "  m1 +0.000 s (its own probe went unanswered; then its suspicion timed out)",
        "  └─ m2 +0.100 s",
        "     └─ m3 +0.250 s",
        "suspected on m2's word (gossip); then told it failed by m1 (gossip)",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
}

#[test]
fn a_line_stamped_before_its_sender_is_flagged_and_its_clock_corrected_down_the_tree() {
    let logs = vec![
        line("m1", Kind::Failed, 10_000, "suspicion-timeout", None),
        // m2's clock is behind: it logs hearing from m1 100 ms before m1's own line.
        line("m2", Kind::Failed, 9_900, "gossip", Some("m1")),
        // m3 heard from m2; by raw stamps it is after m2, but not after m2 corrected.
        line("m3", Kind::Failed, 9_950, "gossip", Some("m2")),
    ];
    let spread = Spread::of(&logs, &failure_of_m4()).expect("a spread");
    let order: Vec<&str> = spread.hops.iter().map(|h| h.node.as_str()).collect();
    assert_eq!(order, ["m1", "m2", "m3"], "senders before receivers");
    assert_eq!(hop(&spread, "m2").before_sender_ms, Some(100));
    assert_eq!(hop(&spread, "m2").causal_ms, 10_000);
    assert_eq!(hop(&spread, "m3").before_sender_ms, Some(50));
    assert_eq!(hop(&spread, "m3").causal_ms, 10_000);
    assert_eq!(hop(&spread, "m3").depth, 2);
    let m1_m2 = spread
        .skew
        .iter()
        .find(|s| (s.a.as_str(), s.b.as_str()) == ("m1", "m2"))
        .expect("m1 and m2 proven apart");
    // Less the millisecond the stamps may have been truncated by.
    assert_eq!(m1_m2.at_least_ms, Some(99), "m1's clock ahead of m2's");
    let text = render(&spread, Format::Text).expect("text");
    assert!(
        text.contains("m2's clock is at least 99 ms behind m1's (1 line)"),
        "{text}"
    );
    assert!(
        text.contains("! clock behind its sender's by 100 ms or more"),
        "{text}"
    );
}

#[test]
fn skew_is_bounded_from_both_sides_by_news_going_both_ways() {
    let mut logs = vec![
        line("m1", Kind::Failed, 10_000, "suspicion-timeout", None),
        line("m2", Kind::Failed, 9_900, "gossip", Some("m1")),
    ];
    // Another change travelling the other way: m2 told m1, and m1 logged it 250 ms later by its clock.
    for (node, t, from) in [("m2", 20_000, None), ("m1", 20_250, Some("m2"))] {
        let mut r = line(node, Kind::Join, t, "sync", from);
        r.member = "m7".to_owned();
        logs.push(r);
    }
    let spread = Spread::of(&logs, &failure_of_m4()).expect("a spread");
    let s = &spread.skew[0];
    assert_eq!(
        (s.a.as_str(), s.b.as_str(), s.at_least_ms, s.at_most_ms),
        ("m1", "m2", Some(99), Some(251))
    );
    assert_eq!(s.evidence, 2);
}

#[test]
fn a_sender_whose_log_is_missing_is_named() {
    let logs = vec![
        line("m1", Kind::Failed, 10_000, "gossip", Some("m9")),
        line("m2", Kind::Failed, 10_200, "gossip", Some("m1")),
    ];
    let spread = Spread::of(&logs, &failure_of_m4()).expect("a spread");
    assert_eq!(spread.missing_logs, ["m9"]);
    assert!(spread.first_detector().is_none());
    let text = render(&spread, Format::Text).expect("text");
    assert!(
        text.contains("m1 +0.000 s (from m9, whose log is not here)"),
        "{text}"
    );
    assert!(
        text.contains("no list learned it first-hand in these logs"),
        "{text}"
    );
}

#[test]
fn nothing_to_trace_says_what_the_logs_hold() {
    let logs = vec![
        line("m1", Kind::Join, 10, "sync", Some("m2")),
        line("m1", Kind::Suspect, 20, "probe", None),
    ];
    let no_member = Spread::of(
        &logs,
        &Query {
            member: "m8".to_owned(),
            ..Query::default()
        },
    )
    .expect_err("no such member");
    assert_eq!(
        no_member.to_string(),
        "no line in these logs (2 lines from 1 lists) is about m8; they name: m4"
    );
    let no_change = Spread::of(
        &logs,
        &Query {
            kind: Some(Kind::Leave),
            ..failure_of_m4()
        },
    )
    .expect_err("no leave");
    assert_eq!(
        no_change.to_string(),
        "m4 has no leave line in these logs; its lines are: join (1), suspect (1)"
    );
    let sent = Spread::of(
        &logs,
        &Query {
            kind: Some(Kind::Sent),
            ..failure_of_m4()
        },
    );
    assert!(matches!(sent, Err(TraceError::NotAChange)));
    assert!(matches!(
        Spread::of(&[], &failure_of_m4()),
        Err(TraceError::Empty)
    ));
}

#[test]
fn the_pictures_are_self_contained_and_escape_names() {
    let mut logs = vec![
        line("m1", Kind::Failed, 10_000, "suspicion-timeout", None),
        line("<b>m2</b>", Kind::Failed, 10_300, "gossip", Some("m1")),
    ];
    logs[1].node = "<b>m2</b>".to_owned();
    let spread = Spread::of(&logs, &failure_of_m4()).expect("a spread");
    let svg = render(&spread, Format::Svg).expect("svg");
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg:.80}"
    );
    assert!(
        svg.contains("&lt;b&gt;m2&lt;/b&gt;") && !svg.contains("<b>"),
        "unescaped name"
    );
    assert_eq!(
        svg.matches("marker-end=\"url(#arrow)\"").count(),
        1,
        "one arrow"
    );
    let html = render(&spread, Format::Html).expect("html");
    let outside: Vec<&str> = html
        .lines()
        .filter(|l| {
            (l.contains("http:") || l.contains("https:")) && !l.contains("www.w3.org/2000/svg")
        })
        .collect();
    assert!(
        outside.is_empty(),
        "the page refers outside itself: {outside:?}"
    );
    assert!(!html.contains("<script"), "no script in the page");
    let json: serde_json::Value =
        serde_json::from_str(&render(&spread, Format::Json).expect("json")).expect("JSON");
    assert_eq!(json["hops"][1]["from"], "m1");
    assert_eq!(json["kind"], "failed");
}

#[test]
fn several_instances_are_told_apart_and_offered() {
    let mut later = line("m1", Kind::Failed, 90_000, "suspicion-timeout", None);
    later.joined_at_ms = JOINED + 50_000;
    let logs = vec![
        line("m1", Kind::Failed, 10_000, "suspicion-timeout", None),
        later.clone(),
    ];
    let spread = Spread::of(&logs, &failure_of_m4()).expect("a spread");
    assert_eq!(spread.joined_at_ms, JOINED, "the earliest by default");
    assert_eq!(spread.others.len(), 1);
    let text = render(&spread, Format::Text).expect("text");
    assert!(
        text.contains("--joined-at 2026-11-29T21:03:00.004Z (1 list)"),
        "{text}"
    );
    let picked = Spread::of(
        &logs,
        &Query {
            joined_at_ms: Some(later.joined_at_ms),
            ..failure_of_m4()
        },
    )
    .expect("the later one");
    assert_eq!(picked.hops[0].time_ms, 90_000);
}
