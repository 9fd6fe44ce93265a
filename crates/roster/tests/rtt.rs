//! `roster rtt` on real `roster agent` processes on loopback: the estimate between two members and from the
//! agent asked, and a clear error for a member the list does not hold.

mod harness;

use std::time::Duration;

use harness::{Agent, Scratch, roster, wait_until};

/// The milliseconds in `estimated A <-> B rtt: 0.123 ms`.
fn millis(line: &str) -> f64 {
    line.trim()
        .strip_suffix(" ms")
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an estimate: {line:?}"))
}

/// What `roster rtt ARGS` prints once it succeeds, polled for up to 30 s while coordinates settle.
fn estimate_within_30s(args: &[&str]) -> Option<String> {
    let args: Vec<&str> = ["rtt"].iter().chain(args).copied().collect();
    wait_until(Duration::from_secs(30), || {
        let out = roster(&args);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

#[test]
fn rtt_estimates_loopback_round_trips_and_names_an_unknown_member() {
    let scratch = Scratch::new("rtt");
    let r1 = Agent::start(&scratch, "r1", &[]);
    let r2 = Agent::start(&scratch, "r2", &[r1.port]);
    let r3 = Agent::start(&scratch, "r3", &[r1.port]);

    // Every member places itself within a few probe rounds; r1 then holds everyone's coordinate.
    let between = estimate_within_30s(&["r2", "r3", "--http", &r1.api()])
        .expect("r1 cannot estimate r2 <-> r3 within 30 s");
    assert!(
        between.starts_with("estimated r2 <-> r3 rtt: "),
        "{between}"
    );
    // Loopback answers in well under a millisecond; the model may be off, but not by tens of milliseconds.
    assert!(millis(&between) < 20.0, "{between}");

    // r1 places itself from the acks to its own probes, which may come after it heard r2's and r3's places.
    let from_agent = estimate_within_30s(&["r2", "--http", &r1.api()])
        .expect("r1 cannot estimate its own round trip to r2 within 30 s");
    assert!(
        from_agent.starts_with("estimated r2 <-> r1 rtt: "),
        "{from_agent}"
    );
    assert!(millis(&from_agent) < 20.0, "{from_agent}");

    let out = roster(&["rtt", "nobody", "--http", &r3.api()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "roster: no member named \"nobody\" is known to this agent"
    );
    drop((r1, r2, r3));
}
