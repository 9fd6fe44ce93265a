//! A cluster upgraded one machine at a time stays one cluster: a node speaks its wire version and the one
//! before, each member in the newest version both speak.

mod support;

use std::time::Duration;

use roster_core::{ChangeKind, Config, State, codec};
use support::Net;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn older_build() -> Config {
    Config {
        wire_version: codec::OLDEST_VERSION,
        ..Config::default()
    }
}

fn undecodable(net: &Net) -> u64 {
    net.live().map(|i| net.node(i).stats().undecodable).sum()
}

#[test]
fn a_cluster_upgraded_one_machine_at_a_time_stays_one_cluster() {
    let n = 6;
    let mut net = Net::new(41, Config::default());
    net.loss = 0.02;
    net.start_configured(0, &[], older_build());
    for i in 1..n {
        net.run_for(secs(0.2));
        net.start_configured(i, &[0], older_build());
    }
    net.run_for(secs(5.0));
    assert!(net.converged(), "the old cluster did not form");
    for i in 0..n {
        // Each machine in turn: stopped, upgraded, started again from where it was.
        net.crash(i);
        net.run_for(secs(1.0));
        net.start(i, &[(i + 1) % n]);
        let upgraded = net.now;
        while !net.converged() {
            assert!(
                net.now - upgraded < secs(15.0),
                "machine {i} upgraded: the cluster did not come back together within 15 s"
            );
            net.run_for(secs(0.25));
        }
        net.run_for(secs(5.0));
        assert!(net.converged(), "machine {i} upgraded: the cluster split");
        assert_eq!(
            undecodable(&net),
            0,
            "machine {i} upgraded: a packet did not decode"
        );
    }
    for i in 0..n {
        for j in 0..n {
            assert_eq!(net.state(i, j), Some(State::Alive));
            assert_eq!(
                net.node(i)
                    .member(net.name(j))
                    .unwrap()
                    .identity
                    .wire_version(),
                codec::VERSION
            );
        }
    }
    // A crash is still detected everywhere, in the new version.
    net.crash(3);
    net.run_for(secs(15.0));
    for i in [0, 1, 2, 4, 5] {
        assert_eq!(net.state(i, 3), Some(State::Failed));
    }
    assert!(net.events_about(ChangeKind::Failed, "m3") >= 5);
}

#[test]
fn old_and_new_builds_side_by_side_detect_a_crash_and_refuse_a_clone() {
    let mut net = Net::new(42, Config::default());
    net.start(0, &[]);
    for i in 1..6 {
        net.run_for(secs(0.2));
        if i % 2 == 0 {
            net.start(i, &[0]);
        } else {
            net.start_configured(i, &[0], older_build());
        }
    }
    net.run_for(secs(5.0));
    assert!(net.converged());
    net.start_clone(6, "m2", None, &[0]);
    net.run_for(secs(5.0));
    assert!(net.node(6).is_standby());
    net.crash(4);
    net.run_for(secs(15.0));
    for i in [0, 1, 2, 3, 5] {
        assert_eq!(net.state(i, 4), Some(State::Failed), "{}", net.name(i));
    }
    assert_eq!(
        undecodable(&net),
        0,
        "an old build got a packet it cannot read"
    );
}
