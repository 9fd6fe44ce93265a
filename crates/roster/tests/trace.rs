//! `roster trace` on real logs: a local cluster of agents on loopback loses one to `kill -9`, and the trace
//! of its failure, read from the agents' data directories, names a detector whose own log shows it found the
//! crash, and a path of who told whom that reaches every other list. And on a simulated run with skewed
//! clocks: `roster sim --events-dir` writes the same logs, the same seed writes the same bytes, and the trace
//! catches lines whose clocks are behind their senders'.

mod harness;

use std::time::Duration;

use harness::{Agent, ROSTER, Scratch, holds, members, roster, state_of, wait_until};
use serde_json::Value;

fn trace_json(args: &[&str]) -> Value {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = roster(&all);
    assert!(
        out.status.success(),
        "roster {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Every hop's chain of senders ends at a list that learned it first-hand (or whose sender has no log).
fn roots_of(trace: &Value) -> Vec<String> {
    let hops = trace["hops"].as_array().expect("hops");
    hops.iter()
        .map(|h| {
            let mut at = h;
            for _ in 0..hops.len() {
                match at["parent"].as_u64() {
                    Some(p) => at = &hops[p as usize],
                    None => break,
                }
            }
            at["node"].as_str().expect("node").to_owned()
        })
        .collect()
}

#[test]
fn a_crash_in_a_local_cluster_is_traced_from_its_detector_to_every_list() {
    let scratch = Scratch::new("trace-cluster");
    let t1 = Agent::start(&scratch, "t1", &[]);
    let mut others = vec![
        Agent::start(&scratch, "t2", &[t1.port]),
        Agent::start(&scratch, "t3", &[t1.port]),
        Agent::start(&scratch, "t4", &[t1.port]),
    ];
    wait_until(Duration::from_secs(15), || {
        holds(
            members(t1.http).is_ok_and(|l| l.iter().filter(|m| m["state"] == "alive").count() == 4),
        )
    })
    .expect("t1 does not list 4 alive members within 15 s");
    let mut t4 = others.pop().expect("t4");
    t4.kill();
    let live = [&t1, &others[0], &others[1]];
    wait_until(Duration::from_secs(20), || {
        holds(live.iter().all(|a| {
            members(a.http).is_ok_and(|l| state_of(&l, "t4").as_deref() == Some("failed"))
        }))
    })
    .expect("not every live list marks t4 failed within 20 s of its kill -9");

    let dir = scratch.path().to_str().expect("utf-8 path");
    let trace = trace_json(&["t4", dir]);
    assert_eq!(trace["member"], "t4");
    assert_eq!(trace["kind"], "failed");
    let hops = trace["hops"].as_array().expect("hops");
    let mut heard: Vec<&str> = hops.iter().filter_map(|h| h["node"].as_str()).collect();
    heard.sort_unstable();
    assert_eq!(heard, ["t1", "t2", "t3"], "every live list, once");
    assert_eq!(trace["unheard"], serde_json::json!([]));

    // The tree's roots found the crash themselves: each has a first-hand suspicion in its own log.
    for root in roots_of(&trace) {
        let log =
            std::fs::read_to_string(scratch.path().join(&root).join("events.jsonl")).expect("log");
        let found_it = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| {
                l["member"] == "t4"
                    && (l["event"] == "suspect" || l["event"] == "failed")
                    && l.get("from").is_none()
                    && matches!(l["via"].as_str(), Some("probe" | "indirect-probe"))
            });
        assert!(
            found_it,
            "{root} is a root of the trace, but its log shows no probe of t4 that failed:\n{log}"
        );
    }
    // A sender is always a list that knew before (on a single machine the clocks agree to the millisecond).
    // What a list passes on is mostly the suspicion: each list then fails the member when its own timer
    // runs out, which may be before its sender's, so the news compared is the first that arrived.
    let arrival = |h: &Value| {
        let failed = h["causal_ms"].as_u64().expect("causal_ms");
        h["suspected"]["causal_ms"]
            .as_u64()
            .map_or(failed, |s| s.min(failed))
    };
    for h in hops {
        if let Some(p) = h["parent"].as_u64() {
            let sender = &hops[p as usize];
            assert!(
                arrival(sender) <= arrival(h) + 1,
                "{h} before its sender {sender}"
            );
        }
    }

    // The text and the picture of the same spread.
    let out = roster(&["trace", "t4", dir]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "trace of t4 failed",
        "first detector: ",
        "last to hear: ",
        "reached 3 of 3 lists",
        "who told whom",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    let svg = scratch.path().join("t4.svg");
    let out = roster(&[
        "trace",
        "t4",
        "--format",
        "svg",
        "-o",
        svg.to_str().expect("utf-8"),
        dir,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let picture = std::fs::read_to_string(&svg).expect("svg written");
    assert!(picture.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(
        picture.matches("r=\"5.5\"").count(),
        3,
        "one dot per list:\n{picture}"
    );
    eprintln!("{text}");
}

#[test]
fn a_simulated_crash_with_skewed_clocks_is_traced_from_the_logs_the_simulator_writes() {
    let scratch = Scratch::new("trace-sim");
    let run = |dir: &std::path::Path| {
        let out = std::process::Command::new(ROSTER)
            .args(["sim", "--nodes", "24", "--crash", "1", "--duration", "20s"])
            .args(["--clock-skew", "400ms", "--seed", "5", "--events-dir"])
            .arg(dir)
            .output()
            .expect("run roster sim");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let (a, b) = (scratch.path().join("a"), scratch.path().join("b"));
    let note = run(&a);
    run(&b);
    for node in 0..24 {
        let name = format!("m{node}/events.jsonl");
        assert_eq!(
            std::fs::read(a.join(&name)).ok(),
            std::fs::read(b.join(&name)).ok(),
            "the same seed wrote a different {name}"
        );
    }
    // The simulator names the member it crashed in the command it suggests.
    let member = note
        .split("roster trace ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no trace command in: {note}"))
        .to_owned();
    let trace = trace_json(&[&member, a.to_str().expect("utf-8")]);
    let hops = trace["hops"].as_array().expect("hops");
    assert_eq!(hops.len(), 23, "every list but the crashed member's");
    let roots = roots_of(&trace);
    let detector = trace["hops"][0]["node"].as_str().expect("first hop");
    assert!(
        roots.iter().any(|r| r == detector),
        "{detector} is not a root: {roots:?}"
    );
    // Clocks up to 800 ms apart and gossip within 200 ms: some receivers log before their senders.
    let flagged = hops
        .iter()
        .filter(|h| h["before_sender_ms"].is_u64())
        .count();
    let skew = trace["skew"].as_array().expect("skew");
    assert!(flagged > 0 && !skew.is_empty(), "no skew found in {trace}");
    for s in skew {
        let (lo, hi) = (s["at_least_ms"].as_i64(), s["at_most_ms"].as_i64());
        assert!(lo.is_some() || hi.is_some(), "{s}");
        if let (Some(lo), Some(hi)) = (lo, hi) {
            assert!(lo <= hi, "contradictory bounds {s}");
        }
        // No bound may claim more than the clocks can be apart.
        assert!(lo.unwrap_or(0) <= 800 && hi.unwrap_or(0) >= -800, "{s}");
    }
    eprintln!(
        "{member}: {flagged} lines stamped before their sender's; {} pairs of clocks proven apart",
        skew.len()
    );
}

#[test]
fn the_trace_page_documents_every_flag_and_its_pictures_exist() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(repo.join("docs/trace.md")).expect("docs/trace.md");
    let out = roster(&["trace", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && *w != "--help" && *w != "--version")
        .map(|w| w.trim_end_matches(','))
        .collect();
    assert!(flags.len() >= 5, "{help}");
    for flag in flags {
        assert!(doc.contains(flag), "docs/trace.md does not mention {flag}");
    }
    for picture in [
        "docs/trace-sim.svg",
        "docs/trace-demo.svg",
        "docs/fleet-dashboard.png",
    ] {
        assert!(repo.join(picture).is_file(), "{picture} is missing");
    }
    assert!(doc.contains("(trace-sim.svg)") && doc.contains("(trace-demo.svg)"));
}
