//! Scenarios: several nodes driven through an in-memory network with a fake clock.

mod support;

use std::time::Duration;

use roster_core::{ChangeKind, Config, Event, State, Time, Via};
use support::Net;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Five nodes joined through node 0, converged; the seed also shifts the moment the scenario continues, so
/// that faults hit different phases of the probe rounds.
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

/// Five converged nodes with nodes 1, 2 and 3 crashed at once; the moment of the crash, and how long the event
/// log was then.
fn three_of_five_crashed(seed: u64) -> (Net, Time, usize) {
    let mut net = five(seed);
    assert!(
        net.converged(),
        "seed {seed}: not converged before the crash"
    );
    let crashed_at = net.now;
    let from = net.log.len();
    for i in [1, 2, 3] {
        net.crash(i);
    }
    (net, crashed_at, from)
}

#[test]
fn five_nodes_join_through_one_seed_and_converge() {
    let mut net = Net::new(1, Config::default());
    net.start(0, &[]);
    for i in 1..5 {
        net.start(i, &[0]);
    }
    let started = net.now;
    while !net.converged() {
        assert!(net.now - started < secs(5.0), "not converged after 5 s");
        net.run_for(secs(0.05));
    }
    let took = net.now - started;
    assert!(took < secs(2.0), "converged after {took:?}");
    for i in 0..5 {
        assert_eq!(net.node(i).members().len(), 5);
        assert!(net.log.iter().any(|l| l.node == net.name(i)
            && matches!(l.event, Event::Changed(ref c) if c.kind == ChangeKind::Join)));
    }
}

#[test]
fn three_crashes_are_failed_everywhere_within_deadline() {
    for seed in 0..20 {
        let (mut net, crashed_at, _) = three_of_five_crashed(seed);
        net.run_for(secs(20.0));
        let survivors = [0, 4];
        for i in [1, 2, 3] {
            let name = net.name(i).to_string();
            let (first, last) = net.first_and_last(ChangeKind::Failed, &name, &survivors);
            let first =
                first.unwrap_or_else(|| panic!("seed {seed}: {name} never detected")) - crashed_at;
            let last = last.unwrap_or_else(|| panic!("seed {seed}: {name} not failed everywhere"))
                - crashed_at;
            assert!(
                first <= secs(10.0),
                "seed {seed}: {name} first failed after {first:?} (deadline 10 s)"
            );
            assert!(
                last <= secs(15.0),
                "seed {seed}: {name} failed everywhere after {last:?} (deadline 15 s)"
            );
            for &s in &survivors {
                assert_eq!(
                    net.state(s, i),
                    Some(State::Failed),
                    "seed {seed}: {} holds {name}",
                    net.name(s)
                );
            }
        }
        for i in survivors {
            for j in survivors {
                assert_eq!(
                    net.state(i, j),
                    Some(State::Alive),
                    "seed {seed}: a survivor was marked down"
                );
            }
        }
    }
}

#[test]
fn a_suspected_member_that_is_alive_refutes_and_is_never_failed() {
    let mut refuted = 0;
    for seed in 0..10 {
        let mut net = five(seed);
        // Cut node 2's inbound datagrams long enough for probes of it to fail, then restore them.
        for other in [0, 1, 3, 4] {
            net.block_one_way(other, 2);
        }
        net.run_for(secs(2.5));
        net.heal();
        net.run_for(secs(15.0));
        let name = net.name(2).to_string();
        assert_eq!(
            net.events_about(ChangeKind::Failed, &name),
            0,
            "seed {seed}: a live member was marked failed"
        );
        for i in 0..5 {
            assert_eq!(net.state(i, 2), Some(State::Alive), "seed {seed}");
        }
        refuted += net.node(2).stats().refutations;
    }
    assert!(refuted > 0, "no run produced a suspicion to refute");
}

#[test]
fn a_leave_shows_as_left_everywhere_and_never_failed() {
    let mut net = five(7);
    let left_at = net.now;
    net.node_mut(3).leave(left_at);
    while !net.node(3).leave_announced() {
        assert!(net.now - left_at < secs(2.0), "leave never announced");
        net.run_for(secs(0.05));
    }
    net.crash(3);
    net.run_for(secs(20.0));
    let name = net.name(3).to_string();
    for i in [0, 1, 2, 4] {
        assert_eq!(
            net.state(i, 3),
            Some(State::Left),
            "{} holds {name}",
            net.name(i)
        );
    }
    assert_eq!(net.events_about(ChangeKind::Failed, &name), 0);
    assert_eq!(net.events_about(ChangeKind::Suspect, &name), 0);
}

#[test]
fn a_restarted_member_replaces_its_failed_entry() {
    let mut net = five(3);
    net.crash(2);
    net.run_for(secs(16.0));
    for i in [0, 1, 3, 4] {
        assert_eq!(net.state(i, 2), Some(State::Failed));
    }
    let old_joined = net.node(0).member("m2").unwrap().identity.joined_at_ms();
    net.start(2, &[4]);
    net.run_for(secs(5.0));
    for i in 0..5 {
        let entry = net.node(i).member("m2").unwrap();
        assert_eq!(entry.state, State::Alive, "{}", net.name(i));
        assert!(entry.identity.joined_at_ms() > old_joined);
    }
}

#[test]
fn a_split_in_two_halves_heals_into_one_list() {
    let mut net = Net::new(11, Config::default());
    net.start(0, &[]);
    for i in 1..8 {
        net.start(i, &[0]);
    }
    net.run_for(secs(3.0));
    assert!(net.converged());
    for a in 0..4 {
        for b in 4..8 {
            net.block(a, b);
        }
    }
    net.run_for(secs(20.0));
    for a in 0..4 {
        for b in 4..8 {
            assert_eq!(
                net.state(a, b),
                Some(State::Failed),
                "{} should hold {} failed",
                net.name(a),
                net.name(b)
            );
        }
    }
    net.heal();
    let healed = net.now;
    while !net.converged() {
        assert!(
            net.now - healed < secs(60.0),
            "still split 60 s after the heal"
        );
        net.run_for(secs(0.5));
    }
    let took = net.now - healed;
    assert!(took <= secs(30.0), "merged {took:?} after the heal");
}

#[test]
fn same_seed_same_inputs_give_the_same_bytes() {
    let run = |seed| {
        let mut net = Net::new(seed, Config::default());
        net.record_wire = true;
        net.loss = 0.05;
        net.start(0, &[]);
        for i in 1..6 {
            net.start(i, &[0]);
        }
        net.run_for(secs(5.0));
        net.crash(2);
        net.run_for(secs(15.0));
        net.wire
    };
    let (a, b) = (run(5), run(5));
    assert!(!a.is_empty());
    assert!(a == b, "two runs with one seed diverged");
    assert!(run(6) != a, "the seed should matter");
}

#[test]
fn garbage_never_changes_the_list() {
    use rand::{Rng, SeedableRng};
    let mut net = five(2);
    let before: Vec<_> = net.node(0).members().cloned().collect();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
    let now = net.now;
    let from = support::Net::addr(77);
    for len in 0..2000usize {
        let bytes: Vec<u8> = (0..len % 300).map(|_| rng.random()).collect();
        let node = net.node_mut(0);
        let _ = node.handle_packet(now, from, &bytes);
        let _ = node.handle_stream(now, from, &bytes);
    }
    let after: Vec<_> = net.node(0).members().cloned().collect();
    assert_eq!(before, after);
}

#[test]
fn a_config_that_cannot_meet_its_deadlines_is_refused() {
    use rand::SeedableRng;
    let identity = roster_core::Identity::new("m0", Net::addr(0), 1, Default::default()).unwrap();
    let config = Config {
        probe_interval: secs(3.0),
        ..Config::default()
    };
    let err = roster_core::Node::new(config, identity, rand::rngs::SmallRng::seed_from_u64(1))
        .unwrap_err();
    assert!(err.to_string().contains("deadlines cannot hold"), "{err}");
}

#[test]
fn oversized_metadata_is_an_error_and_changes_nothing() {
    let mut net = five(5);
    let now = net.now;
    let big = roster_core::Meta::new([("k", "v".repeat(600))]);
    assert!(big.is_err(), "the bound is checked when metadata is built");
    let before = net.node(1).local().clone();
    let ok = roster_core::Meta::new([("role", "db")]).unwrap();
    net.node_mut(1).set_meta(now, ok).unwrap();
    assert_eq!(net.node(1).local().incarnation, before.incarnation + 1);
    net.run_for(secs(3.0));
    for i in 0..5 {
        assert_eq!(
            net.node(i)
                .member("m1")
                .unwrap()
                .identity
                .meta()
                .get("role"),
            Some("db")
        );
    }
}

#[test]
fn a_quiet_cluster_sends_one_ping_and_one_ack_per_member_per_period() {
    let mut net = Net::new(8, Config::default());
    net.start(0, &[]);
    for i in 1..16 {
        net.start(i, &[0]);
    }
    net.run_for(secs(10.0));
    let (packets, bytes) = (net.sent_packets, net.sent_bytes);
    net.run_for(secs(120.0));
    let per_member_period = (net.sent_packets - packets) as f64 / 16.0 / 120.0;
    let bytes_per_period = (net.sent_bytes - bytes) as f64 / 16.0 / 120.0;
    eprintln!(
        "quiet cluster of 16: {per_member_period:.3} packets and {bytes_per_period:.1} bytes per member per period"
    );
    assert!(
        (2.0..=2.1).contains(&per_member_period),
        "{per_member_period:.3} packets per member per period"
    );
    // A ping and an ack, each with its sender's network coordinate behind it.
    let bound = 60.0 + 2.0 * roster_core::codec::COORDINATE_LEN as f64;
    assert!(
        bytes_per_period < bound,
        "{bytes_per_period:.1} bytes per member per period, over {bound}"
    );
}

#[test]
fn members_joining_at_the_same_moment_through_different_seeds_all_meet_within_the_deadline() {
    let mut worst = Duration::ZERO;
    for seed in 0..30 {
        let mut net = Net::new(seed, Config::default());
        let seeds: [&[usize]; 8] = [&[], &[0], &[1], &[0], &[2], &[3, 1], &[4], &[5, 2]];
        for (i, through) in seeds.iter().enumerate() {
            net.start(i, through);
            net.run_for(secs(0.015));
        }
        let started = net.now;
        while !net.converged() {
            assert!(
                net.now - started < secs(15.0),
                "seed {seed}: not converged within 15 s"
            );
            net.run_for(secs(0.05));
        }
        worst = worst.max(net.now - started);
    }
    assert!(worst < secs(5.0), "slowest convergence {worst:?}");
}

#[test]
fn a_member_that_cannot_send_is_failed_but_accuses_nobody() {
    for seed in 0..40 {
        let mut net = Net::new(seed, Config::default());
        net.start(0, &[]);
        for i in 1..8 {
            net.start(i, &[0]);
        }
        net.run_for(secs(3.0 + seed as f64 * 0.07));
        assert!(net.converged());
        // Node 7 hears everyone but reaches no one, as when its outbound traffic is dropped.
        for other in 0..7 {
            net.block_one_way(7, other);
        }
        net.run_for(secs(20.0));
        for i in 0..7 {
            assert_eq!(
                net.state(i, 7),
                Some(State::Failed),
                "seed {seed}: {} holds m7",
                net.name(i)
            );
        }
        net.heal();
        net.run_for(secs(20.0));
        assert!(
            net.converged(),
            "seed {seed}: not one list again 20 s after the heal"
        );
        for i in 0..7 {
            let name = net.name(i).to_string();
            assert_eq!(
                net.events_about(ChangeKind::Failed, &name),
                0,
                "seed {seed}: {name} was marked failed though only m7 was cut off"
            );
        }
    }
}

#[test]
fn the_first_accuser_hears_the_next_probers_verdicts_directly() {
    // Gossip slow and narrow: only direct messages can bring the confirmations that shrink the first accuser's
    // suspicion timer to its minimum.
    let config = Config {
        max_members: 16,
        gossip_fanout: 1,
        gossip_interval: secs(0.6),
        retransmit_mult: 1,
        ..Config::default()
    };
    let suspicion_min = config.timers(16).suspicion_min;
    for seed in 0..6 {
        let mut net = Net::new(seed, config.clone());
        net.start(0, &[]);
        for i in 1..16 {
            net.run_for(secs(0.05));
            net.start(i, &[0]);
        }
        net.run_for(secs(30.0 + seed as f64 * 0.137));
        assert!(
            net.converged(),
            "seed {seed}: not converged before the crash"
        );
        let crashed = 7;
        let name = net.name(crashed).to_string();
        net.crash(crashed);
        let from = net.log.len();
        net.run_for(secs(15.0));
        let change_at = |kind: ChangeKind, node: Option<&str>| {
            net.log[from..].iter().find_map(|l| match &l.event {
                Event::Changed(c)
                    if c.kind == kind
                        && c.member.name() == name
                        && node.is_none_or(|n| n == l.node)
                        && (kind != ChangeKind::Suspect
                            || matches!(c.via, Via::Probe | Via::IndirectProbe)) =>
                {
                    Some((l.node.clone(), l.at))
                }
                _ => None,
            })
        };
        let (accuser, suspected) = change_at(ChangeKind::Suspect, None)
            .unwrap_or_else(|| panic!("seed {seed}: nobody's probe of {name} failed"));
        let (_, failed) = change_at(ChangeKind::Failed, Some(&accuser))
            .unwrap_or_else(|| panic!("seed {seed}: {accuser} never failed {name}"));
        assert!(
            failed - suspected <= suspicion_min + secs(0.3),
            "seed {seed}: {accuser} suspected {name} at {suspected:?} but failed it only {:?} later \
             (suspicion_min {suspicion_min:?}): the confirmations came late",
            failed - suspected
        );
    }
}

#[test]
fn three_crashes_of_five_are_each_suspected_within_two_periods() {
    // With 3 of 5 members down, a crashed member's next two probers on the ring can be down too. The survivors
    // notice the silence (a prober that did not ping, a probe left unanswered) and probe everyone at once,
    // instead of leaving each crashed member to its next live prober, up to three periods away.
    let config = Config::default();
    let bound = config.probe_interval * 2;
    for seed in 0..20 {
        let (mut net, crashed_at, from) = three_of_five_crashed(seed);
        net.run_for(secs(10.0));
        for i in [1, 2, 3] {
            let name = net.name(i).to_string();
            let suspected = net.log[from..]
                .iter()
                .find_map(|l| match &l.event {
                    Event::Changed(c)
                        if c.kind == ChangeKind::Suspect
                            && c.member.name() == name
                            && matches!(c.via, Via::Probe | Via::IndirectProbe) =>
                    {
                        Some(l.at - crashed_at)
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("seed {seed}: nobody's probe of {name} failed"));
            assert!(
                suspected <= bound,
                "seed {seed}: {name} was first suspected {suspected:?} after the crash (bound {bound:?})"
            );
        }
    }
}

#[test]
fn a_quiet_small_cluster_without_loss_never_sweeps() {
    // The sweep that finds crashes together in a small cluster must cost nothing while nobody has crashed:
    // one ping and one ack per member per period.
    for seed in 0..5 {
        let mut net = five(seed);
        let probes: Vec<u64> = (0..5).map(|i| net.node(i).stats().probes).collect();
        net.run_for(secs(60.0));
        for (i, before) in probes.into_iter().enumerate() {
            let stats = net.node(i).stats();
            assert_eq!(stats.sweeps, 0, "seed {seed}: {} swept", net.name(i));
            let probed = stats.probes - before;
            assert!(
                (59..=61).contains(&probed),
                "seed {seed}: {} probed {probed} times in 60 periods",
                net.name(i)
            );
        }
    }
}
