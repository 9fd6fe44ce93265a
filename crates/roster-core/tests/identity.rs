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
        assert!(!net.node(2).is_standby(), "seed {seed}: m2 stepped aside");
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
        assert!(!net.node(2).is_standby(), "seed {seed}: m2 stepped aside");
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

/// The conflicts node `at` reported: (holder address, claimant address).
fn conflicts_at(net: &Net, at: usize) -> Vec<(std::net::SocketAddr, std::net::SocketAddr)> {
    net.log
        .iter()
        .filter(|l| l.index == at)
        .filter_map(|l| match &l.event {
            Event::Conflict { holder, claimant } => {
                Some((holder.identity.addr(), claimant.identity.addr()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_cloned_machine_is_refused_the_name_every_list_logs_it_and_it_takes_over_when_the_name_is_free()
{
    for (seed, same_joined_at) in [(21, false), (22, true), (23, false)] {
        let mut net = five(seed);
        let original = Net::addr(1);
        let joined = net.node(1).local().identity.joined_at_ms();
        // A copy of m1's machine comes up at another address, keeps the host name, and joins.
        net.start_clone(
            5,
            "m1",
            same_joined_at.then_some(joined),
            &[(seed % 5) as usize],
        );
        net.run_for(secs(15.0));
        let context = format!("seed {seed}, same joined_at: {same_joined_at}");
        assert!(net.node(5).is_standby(), "{context}: the copy took part");
        assert!(
            !net.node(1).is_standby(),
            "{context}: the original stepped aside"
        );
        for i in 0..5 {
            let entry = net.node(i).member("m1").unwrap();
            assert_eq!(
                (entry.identity.addr(), entry.state),
                (original, State::Alive),
                "{context}: in {}'s list",
                net.name(i)
            );
            assert_eq!(
                conflicts_at(&net, i),
                vec![(original, Net::addr(5))],
                "{context}: {} logs the conflict once",
                net.name(i)
            );
        }
        // The original crashes: once it is failed, the copy takes the name.
        net.crash(1);
        net.run_for(secs(30.0));
        assert!(
            !net.node(5).is_standby(),
            "{context}: the copy stayed on standby"
        );
        for i in [0, 2, 3, 4] {
            let entry = net.node(i).member("m1").unwrap();
            assert_eq!(
                (entry.identity.addr(), entry.state),
                (Net::addr(5), State::Alive),
                "{context}: in {}'s list",
                net.name(i)
            );
        }
    }
}

#[test]
fn two_processes_of_one_instance_in_the_lists_settle_without_an_endless_refutation() {
    let mut net = five(31);
    let joined = net.node(2).local().identity.joined_at_ms();
    // A copy of m2's running process (a restored VM snapshot) gets into the lists through a member that
    // holds m2 as failed, so nothing refuses it there.
    net.start_clone(5, "m2", Some(joined), &[]);
    let claim = net.node(5).local().clone();
    let bytes = roster_core::codec::encode_packet(
        "m2",
        &[roster_core::message::Message::Update(
            roster_core::message::Update {
                member: roster_core::Member::new(claim.identity.clone(), 7, State::Alive),
                accuser: None,
            },
        )],
    );
    let now = net.clock_of(0);
    net.node_mut(0)
        .handle_packet(now, Net::addr(5), &bytes)
        .unwrap();
    net.run_for(secs(30.0));
    let standby: Vec<bool> = [2, 5].iter().map(|&i| net.node(i).is_standby()).collect();
    assert_eq!(
        standby.iter().filter(|&&s| s).count(),
        1,
        "exactly one of the two steps aside: {standby:?}"
    );
    let incarnation = net.node(0).member("m2").unwrap().incarnation;
    assert!(
        incarnation < 20,
        "the two kept refuting each other: incarnation {incarnation}"
    );
    let kept = net.node(0).member("m2").unwrap().identity.addr();
    for i in [0, 1, 3, 4] {
        assert_eq!(
            net.node(i).member("m2").unwrap().identity.addr(),
            kept,
            "{}",
            net.name(i)
        );
    }
}
