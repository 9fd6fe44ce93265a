//! Scenarios about what lists forget: members that left or failed are reaped after a while, and what a list
//! has reaped must not come back from a peer that has not reaped it yet, even after a partition that outlasted
//! every reap timeout.

mod support;

use std::time::Duration;

use roster_core::{ChangeKind, Config, State};
use support::Net;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Reap timeouts short enough for a test to outlast them.
fn short_reaps() -> Config {
    Config {
        left_reap_timeout: secs(30.0),
        failed_reap_timeout: secs(90.0),
        ..Config::default()
    }
}

fn cluster(seed: u64, n: usize, config: Config) -> Net {
    let mut net = Net::new(seed, config);
    net.start(0, &[]);
    for i in 1..n {
        net.run_for(secs(0.1));
        net.start(i, &[0]);
    }
    net.run_for(secs(5.0));
    assert!(net.converged(), "seed {seed}: not converged");
    net
}

#[test]
fn a_member_that_left_during_a_partition_longer_than_its_reap_timeout_is_never_failed_after_the_heal()
 {
    for seed in 0..3 {
        let mut net = cluster(seed, 8, short_reaps());
        for a in 0..4 {
            for b in 4..8 {
                net.block(a, b);
            }
        }
        // Node 6 leaves on the far side, well after the near side has failed everyone there.
        net.run_for(secs(20.0));
        net.leave(6);
        net.run_for(secs(2.0));
        net.crash(6);
        // The far side forgets node 6 after 30 s; the near side still holds it failed when the split heals.
        net.run_for(secs(45.0));
        for b in [4, 5, 7] {
            assert_eq!(
                net.state(b, 6),
                None,
                "seed {seed}: {} has not reaped m6",
                net.name(b)
            );
        }
        for a in 0..4 {
            assert_eq!(net.state(a, 6), Some(State::Failed), "seed {seed}");
        }
        let failed_before = net.events_about(ChangeKind::Failed, "m6");
        net.heal();
        net.run_for(secs(40.0));
        assert!(
            net.converged(),
            "seed {seed}: not merged 40 s after the heal"
        );
        for i in net.live().collect::<Vec<_>>() {
            let state = net.state(i, 6);
            assert!(
                matches!(state, None | Some(State::Left)),
                "seed {seed}: {} holds m6 {state:?} after the heal",
                net.name(i)
            );
        }
        assert_eq!(
            net.events_about(ChangeKind::Failed, "m6"),
            failed_before,
            "seed {seed}: a list marked m6 failed after the heal"
        );
    }
}

#[test]
fn a_reaped_tombstone_does_not_come_back_from_a_member_that_still_holds_it() {
    let mut net = cluster(4, 5, short_reaps());
    net.leave(3);
    net.run_for(secs(2.0));
    net.crash(3);
    // What a member that heard of the leave later would still carry.
    let left = net.node(1).member("m3").cloned().unwrap();
    assert_eq!(left.state, State::Left);
    net.run_for(secs(35.0));
    assert_eq!(net.state(0, 3), None, "m0 should have reaped m3 by now");
    let bytes = roster_core::codec::encode_packet(
        "m1",
        &[roster_core::message::Message::SyncPush {
            members: vec![left],
        }],
    );
    let now = net.clock_of(0);
    net.node_mut(0)
        .handle_stream(now, Net::addr(1), &bytes)
        .unwrap();
    assert_eq!(net.state(0, 3), None, "the reaped tombstone came back");
}

#[test]
fn a_member_back_from_a_long_absence_is_not_flooded_with_reconnects() {
    let n = 60;
    let mut net = cluster(5, n, Config::default());
    for other in 1..n {
        net.block(0, other);
    }
    net.run_for(secs(30.0));
    assert_eq!(net.state(1, 0), Some(State::Failed));
    let before = net.streams_opened_to[0];
    net.run_for(secs(60.0));
    let per_second = (net.streams_opened_to[0] - before) as f64 / 60.0;
    assert!(
        per_second <= 1.0,
        "m0 received {per_second:.1} stream exchanges per second while everyone held it failed"
    );
    net.heal();
    let healed = net.now;
    while !net.converged() {
        assert!(
            net.now - healed < secs(30.0),
            "not merged 30 s after the heal"
        );
        net.run_for(secs(0.5));
    }
}

#[test]
fn the_two_sides_of_a_partition_longer_than_the_failed_reap_timeout_still_merge() {
    for seed in 0..8 {
        let mut net = cluster(seed, 8, short_reaps());
        for a in 0..4 {
            for b in 4..8 {
                net.block(a, b);
            }
        }
        // Long enough for each side to fail the other and reap it (90 s after the failure).
        net.run_for(secs(120.0));
        assert_eq!(net.state(0, 5), None, "seed {seed}: m0 still holds m5");
        net.heal();
        let healed = net.now;
        while !net.converged() {
            assert!(
                net.now - healed < secs(45.0),
                "seed {seed}: still split 45 s after the heal"
            );
            net.run_for(secs(0.5));
        }
    }
}

#[test]
fn after_a_short_partition_heals_no_side_fails_its_own_live_members() {
    for (seed, split) in [(0, 8.0), (1, 8.0), (2, 5.5), (3, 5.5), (4, 6.5), (5, 6.0)] {
        let n = 24;
        let mut net = cluster(seed, n, Config::default());
        // Round trips of 160 ms: a refutation takes a while to come back.
        net.latency = Duration::from_millis(80);
        let minority = |i: usize| i < 5;
        for a in (0..n).filter(|&i| minority(i)) {
            for b in (0..n).filter(|&i| !minority(i)) {
                net.block(a, b);
            }
        }
        // Each side fails the other, or is about to when the split heals: those verdicts must not come home.
        net.run_for(secs(split));
        net.heal();
        let healed = net.now;
        net.run_for(secs(30.0));
        let wrong: Vec<String> = net
            .log
            .iter()
            .filter(|l| l.at >= healed)
            .filter_map(|l| match &l.event {
                roster_core::Event::Changed(c) if c.kind == ChangeKind::Failed => {
                    let subject: usize = c.member.name()["m".len()..].parse().ok()?;
                    (minority(subject) == minority(l.index)).then(|| {
                        format!(
                            "{} failed {} {:?} after the heal via {} from {:?}",
                            l.node,
                            c.member.name(),
                            l.at - healed,
                            c.via.as_str(),
                            c.from.as_ref().map(|f| f.name().to_string())
                        )
                    })
                }
                _ => None,
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "seed {seed}, split {split} s: {} own-side failures: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(4)]
        );
        assert!(
            net.converged(),
            "seed {seed}: not merged 30 s after the heal"
        );
    }
}
