//! Scenarios about who a member is: restarts whose clock is behind the instance they replace, incarnations
//! at their limit, and two processes that claim one name.

mod support;

use std::time::Duration;

use roster_core::{Config, Event, State};
use support::Net;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Five nodes joined through node 0, converged.
fn five(seed: u64) -> Net {
    let mut net = Net::new(seed, Config::default());
    net.start(0, &[]);
    for i in 1..5 {
        net.run_for(secs(0.1));
        net.start(i, &[0]);
    }
    net.run_for(secs(3.0 + (seed % 17) as f64 * 0.0613));
    net
}

/// Asserts that every running node holds `member` alive as the instance that runs now.
fn alive_everywhere(net: &Net, member: usize, context: &str) {
    let current = net.node(member).local().identity.clone();
    for i in net.live().collect::<Vec<_>>() {
        let entry = net.node(i).member(net.name(member)).unwrap_or_else(|| {
            panic!(
                "{context}: {} does not know {}",
                net.name(i),
                net.name(member)
            )
        });
        assert_eq!(
            (entry.state, entry.identity.joined_at_ms()),
            (State::Alive, current.joined_at_ms()),
            "{context}: {} holds {:?}, the running instance is {:?}",
            net.name(i),
            entry,
            current
        );
    }
}

#[test]
fn a_restart_whose_clock_is_a_minute_behind_replaces_its_failed_instance_everywhere() {
    for seed in 0..5 {
        let mut net = five(seed);
        net.crash(2);
        net.run_for(secs(16.0));
        for i in [0, 1, 3, 4] {
            assert_eq!(net.state(i, 2), Some(State::Failed), "seed {seed}");
        }
        let old = net.node(0).member("m2").unwrap().identity.joined_at_ms();
        // A reboot before NTP has synced: the new process's clock is a minute behind the old one's.
        net.start_with_clock(2, &[4], -60.0);
        assert!(net.node(2).local().identity.joined_at_ms() < old);
        net.run_for(secs(15.0));
        assert!(!net.node(2).is_shadowed(), "seed {seed}: m2 stepped aside");
        assert!(
            net.node(2).local().identity.joined_at_ms() > old,
            "seed {seed}"
        );
        alive_everywhere(&net, 2, &format!("seed {seed}"));
    }
}

#[test]
fn a_restart_whose_clock_is_behind_replaces_its_instance_before_the_crash_is_noticed() {
    for seed in 0..5 {
        let mut net = five(seed);
        let old = net.node(0).member("m2").unwrap().identity.joined_at_ms();
        net.crash(2);
        // Restarted by its supervisor two seconds later, long before anyone has failed the old instance, and
        // on the same address: the old process cannot still be running there.
        net.run_for(secs(2.0));
        net.start_with_clock(2, &[4], -60.0);
        net.run_for(secs(15.0));
        assert!(!net.node(2).is_shadowed(), "seed {seed}: m2 stepped aside");
        assert!(
            net.node(2).local().identity.joined_at_ms() > old,
            "seed {seed}"
        );
        alive_everywhere(&net, 2, &format!("seed {seed}"));
        let conflicts = net
            .log
            .iter()
            .filter(|l| matches!(l.event, Event::Conflict { .. }))
            .count();
        assert_eq!(conflicts, 0, "seed {seed}: a restart is not a conflict");
    }
}

#[test]
fn a_member_at_the_last_incarnation_still_refutes_a_suspicion() {
    let mut net = Net::new(3, Config::default());
    net.start(0, &[]);
    net.run_for(secs(0.1));
    // m1 has refuted so often that it stands at the very last incarnation.
    net.start_custom(1, &[0], 0.0, |node| node.with_incarnation(u32::MAX));
    net.run_for(secs(0.1));
    for i in 2..5 {
        net.start(i, &[0]);
        net.run_for(secs(0.1));
    }
    net.run_for(secs(3.0));
    assert_eq!(net.node(0).member("m1").unwrap().incarnation, u32::MAX);
    // Deaf long enough to be suspected, not long enough to be failed.
    for other in [0, 2, 3, 4] {
        net.block_one_way(other, 1);
    }
    net.run_for(secs(2.5));
    net.heal();
    net.run_for(secs(15.0));
    let suspected = net
        .log
        .iter()
        .any(|l| matches!(&l.event, Event::Changed(c) if c.member.name() == "m1" && c.kind == roster_core::ChangeKind::Suspect));
    assert!(suspected, "the scenario should get m1 suspected");
    alive_everywhere(&net, 1, "after the suspicion");
    assert_eq!(
        net.events_about(roster_core::ChangeKind::Failed, "m1"),
        0,
        "m1 was alive all along"
    );
}
