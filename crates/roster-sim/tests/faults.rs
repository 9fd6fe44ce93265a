//! Each fault does what it says, and the engine is deterministic. Small clusters, simulated time: fast in debug.

use std::time::Duration;

use roster_core::State;
use roster_sim::report::RunOutcome;
use roster_sim::scenario::{Params, cells};
use roster_sim::{DirectedLoss, Fault, Network, Partition, Scheduled, Sim, World, name_of};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn world(nodes: usize, seed: u64, duration: f64, faults: Vec<Scheduled>) -> World {
    let mut world = World::new(nodes, seed);
    world.duration = secs(duration);
    world.faults = faults;
    world
}

fn run(world: World) -> Sim {
    let mut sim = Sim::new(world).expect("a valid world");
    sim.run();
    sim
}

fn state_in(sim: &Sim, observer: usize, subject: usize) -> Option<(State, u64)> {
    let name = name_of(subject);
    sim.node(observer)?
        .member(&name)
        .map(|m| (m.state, m.identity.joined_at_ms()))
}

#[test]
fn same_seed_gives_the_same_json_apart_from_wall_time() {
    let params = Params {
        nodes: 12,
        loss: 0.05,
        runs: 2,
        seed: 77,
        ..Params::default()
    };
    let json = |params: &Params| {
        let cell = cells("lifeguard", params, None, None)
            .expect("known scenario")
            .remove(0);
        let mut summary = cell.run(&mut |_| {}).expect("runs");
        summary.wall_s = 0.0;
        serde_json::to_string(&summary).expect("serializes")
    };
    let first = json(&params);
    assert_eq!(first, json(&params), "seed 77 replayed differently");
    assert_ne!(
        first,
        json(&Params { seed: 78, ..params }),
        "another seed should give another history"
    );
}

#[test]
fn three_simultaneous_crashes_are_failed_everywhere_within_the_deadlines() {
    let sim = run(world(
        20,
        3,
        30.0,
        vec![Scheduled::new(secs(5.3), Fault::Crash(vec![2, 7, 11]))],
    ));
    let outcome = RunOutcome::of(&sim);
    assert_eq!(
        outcome.detection.len(),
        3,
        "seed 3: every crash detected: {outcome:?}"
    );
    assert!(
        outcome.detection.iter().all(|&d| d <= 10.0),
        "seed 3: detection {:?} over 10 s",
        outcome.detection
    );
    assert!(
        outcome.dissemination.iter().all(|&d| d <= 15.0),
        "seed 3: dissemination {:?} over 15 s",
        outcome.dissemination
    );
    assert!(
        outcome.false_positives.is_empty(),
        "seed 3: {:?}",
        outcome.false_positives
    );
    for observer in (0..20).filter(|i| ![2, 7, 11].contains(i)) {
        for crashed in [2, 7, 11] {
            assert_eq!(
                state_in(&sim, observer, crashed).map(|s| s.0),
                Some(State::Failed)
            );
        }
    }
}

#[test]
fn a_frozen_node_handles_nothing_until_it_thaws_then_catches_up() {
    let mut sim = Sim::new(world(
        10,
        5,
        30.0,
        vec![Scheduled::new(
            secs(5.0),
            Fault::Freeze {
                nodes: vec![4],
                duration: secs(1.5),
            },
        )],
    ))
    .expect("a valid world");
    sim.run_until(secs(5.1));
    let probes_at_freeze = sim.node(4).expect("running").stats().probes;
    sim.run_until(secs(6.45));
    assert_eq!(
        sim.node(4).expect("running").stats().probes,
        probes_at_freeze,
        "seed 5: a frozen node probed"
    );
    sim.run_until(secs(30.0));
    assert!(
        sim.node(4).expect("running").stats().probes > probes_at_freeze,
        "seed 5: the node never resumed"
    );
    assert!(
        sim.deferred > 0,
        "seed 5: nothing was held back by the freeze"
    );
    assert!(
        sim.metrics.false_positives.is_empty(),
        "seed 5: {:?}",
        sim.metrics.false_positives
    );
    assert!(
        sim.converged(),
        "seed 5: lists disagree after a short freeze"
    );
}

#[test]
fn a_long_freeze_is_failed_and_the_node_comes_back_alive_after_it() {
    let mut sim = Sim::new(world(
        10,
        6,
        60.0,
        vec![Scheduled::new(
            secs(5.0),
            Fault::Freeze {
                nodes: vec![4],
                duration: secs(20.0),
            },
        )],
    ))
    .expect("a valid world");
    sim.run_until(secs(24.0));
    assert_eq!(
        state_in(&sim, 0, 4).map(|s| s.0),
        Some(State::Failed),
        "seed 6: frozen for 19 s yet not failed"
    );
    assert!(sim.metrics.frozen_failed > 0 && sim.metrics.false_positives.is_empty());
    sim.run_until(secs(60.0));
    assert!(
        sim.converged(),
        "seed 6: the thawed node is not alive in every list"
    );
}

#[test]
fn a_slow_node_answers_late_but_is_not_failed() {
    let sim = run(world(
        10,
        7,
        40.0,
        vec![Scheduled::new(
            secs(2.0),
            Fault::Slow {
                nodes: vec![3],
                duration: secs(30.0),
                max_lag: Duration::from_millis(300),
            },
        )],
    ));
    // In 30 s the node has at least 30 probes to start, 30 acks to read and 30 pings to answer: every one of
    // them is late.
    assert!(
        sim.deferred >= 90,
        "seed 7: only {} wake-ups and messages were held back",
        sim.deferred
    );
    assert!(
        sim.node(3).expect("running").stats().probes > 30,
        "seed 7: the slow node stopped probing"
    );
    assert!(
        sim.metrics.false_positives.is_empty(),
        "seed 7: {:?}",
        sim.metrics.false_positives
    );
    assert!(sim.converged());
}

#[test]
fn a_leave_is_left_in_every_list_and_never_failed() {
    let sim = run(world(
        12,
        8,
        30.0,
        vec![Scheduled::new(secs(5.0), Fault::Leave(vec![5, 6]))],
    ));
    let outcome = RunOutcome::of(&sim);
    assert_eq!(outcome.leave_spread.len(), 2, "seed 8: {outcome:?}");
    assert!(
        outcome.leave_spread.iter().all(|&t| t <= 15.0),
        "seed 8: {:?}",
        outcome.leave_spread
    );
    assert!(
        outcome.left_marked_failed.is_empty(),
        "seed 8: {:?}",
        outcome.left_marked_failed
    );
    assert!(
        sim.node(5).is_none(),
        "seed 8: a node that left is still running"
    );
    assert_eq!(state_in(&sim, 0, 5).map(|s| s.0), Some(State::Left));
}

#[test]
fn a_restart_with_a_new_joined_at_replaces_the_old_instance_everywhere() {
    let sim = run(world(
        12,
        9,
        40.0,
        vec![
            Scheduled::new(secs(5.0), Fault::Crash(vec![3])),
            Scheduled::new(secs(15.0), Fault::restart(vec![3])),
        ],
    ));
    let new = sim.identity(3).joined_at_ms();
    assert!(
        new > roster_core::Time::SIM_EPOCH.unix_ms(),
        "seed 9: joined_at did not move"
    );
    for observer in (0..12).filter(|&i| i != 3) {
        assert_eq!(
            state_in(&sim, observer, 3),
            Some((State::Alive, new)),
            "seed 9: in {observer}'s list"
        );
    }
    let outcome = RunOutcome::of(&sim);
    assert!(
        outcome.join_spread.iter().all(|&t| t <= 15.0),
        "seed 9: {:?}",
        outcome.join_spread
    );
    assert!(sim.converged());
}

#[test]
fn a_reboot_whose_clock_is_two_minutes_behind_replaces_the_old_instance_with_or_without_its_data() {
    for keep_data in [false, true] {
        for (seed, restart_at) in [(11, 7.0), (12, 25.0)] {
            // Restarted 2 s after the crash (before anyone noticed), or 20 s after (failed everywhere), on a
            // machine whose clock is two minutes behind until NTP steps it right 30 s later.
            let sim = run(world(
                12,
                seed,
                70.0,
                vec![
                    Scheduled::new(secs(5.0), Fault::Crash(vec![3])),
                    Scheduled::new(
                        secs(restart_at),
                        Fault::Restart {
                            nodes: vec![3],
                            clock_offset_ms: Some(-120_000),
                            keep_data,
                        },
                    ),
                    Scheduled::new(
                        secs(restart_at + 30.0),
                        Fault::StepClock {
                            nodes: vec![3],
                            by_ms: 120_000,
                        },
                    ),
                ],
            ));
            let context = format!("seed {seed}, data kept: {keep_data}");
            let current = sim.identity(3).joined_at_ms();
            assert!(
                current > roster_core::Time::SIM_EPOCH.unix_ms(),
                "{context}"
            );
            for observer in (0..12).filter(|&i| i != 3) {
                assert_eq!(
                    state_in(&sim, observer, 3),
                    Some((State::Alive, current)),
                    "{context}: in {observer}'s list"
                );
            }
            let outcome = RunOutcome::of(&sim);
            assert_eq!(outcome.news_incomplete, 0, "{context}");
            assert!(
                outcome.join_spread.iter().all(|&t| t <= 15.0),
                "{context}: {:?}",
                outcome.join_spread
            );
            assert!(outcome.false_positives.is_empty(), "{context}");
            assert!(sim.converged(), "{context}");
        }
    }
}

#[test]
fn nodes_started_later_join_through_a_seed() {
    let mut w = world(
        10,
        10,
        30.0,
        vec![Scheduled::new(secs(1.0), Fault::Join((5..10).collect()))],
    );
    w.initial = 5;
    let sim = run(w);
    assert!(sim.converged(), "seed 10: joiners not in every list");
    let outcome = RunOutcome::of(&sim);
    assert_eq!(outcome.convergence.len(), 1);
    assert!(
        outcome.convergence[0].1.is_some_and(|t| t <= 15.0),
        "seed 10: {:?}",
        outcome.convergence
    );
}

#[test]
fn a_partition_fails_the_other_side_and_merges_after_the_heal() {
    let mut w = world(12, 11, 80.0, Vec::new());
    w.network.partitions.push(Partition {
        sides: vec![(0..6).collect()],
        start: secs(5.0),
        heal: secs(30.0),
    });
    let mut sim = Sim::new(w).expect("a valid world");
    sim.run_until(secs(29.0));
    assert_eq!(
        state_in(&sim, 0, 9).map(|s| s.0),
        Some(State::Failed),
        "seed 11: the cut did not fail the far side"
    );
    assert!(sim.metrics.partition_failed > 0);
    sim.run_until(secs(80.0));
    let outcome = RunOutcome::of(&sim);
    assert!(
        outcome.false_positives.is_empty(),
        "seed 11: {:?}",
        outcome.false_positives
    );
    assert_eq!(outcome.convergence.len(), 1);
    assert!(
        outcome.convergence[0].1.is_some_and(|t| t <= 25.0),
        "seed 11: merge {:?}",
        outcome.convergence
    );
}

#[test]
fn one_way_loss_cuts_one_direction_and_the_stream_fallback_keeps_the_node_alive() {
    let mut w = world(10, 12, 40.0, Vec::new());
    w.network = Network {
        directed_loss: vec![DirectedLoss {
            from: vec![0],
            to: (1..10).collect(),
            loss: 1.0,
            start: secs(2.0),
            end: secs(30.0),
        }],
        ..Network::default()
    };
    let sim = run(w);
    assert!(
        sim.metrics.lost > 50,
        "seed 12: only {} datagrams lost",
        sim.metrics.lost
    );
    assert!(
        sim.metrics.false_positives.is_empty(),
        "seed 12: {:?}",
        sim.metrics.false_positives
    );
}

#[test]
fn the_small_spec_scenario_meets_the_deadlines() {
    for nodes in [5, 50] {
        let base = Params {
            runs: 3,
            seed: 4,
            ..Params::default()
        };
        for cell in cells("spec", &base, Some(nodes), None).expect("known scenario") {
            let summary = cell.run(&mut |_| {}).expect("runs");
            assert!(
                summary.samples >= 6,
                "{}: {} samples",
                cell.label,
                summary.samples
            );
            // The p99 targets are stretch targets, tighter than the deadlines and missed at small N (see
            // docs/timing.md); the promise itself must hold.
            assert!(
                summary.verdict.promise_met,
                "{} seed 4: {:?}",
                cell.label, summary.verdict.promise_broken
            );
        }
    }
}

#[test]
fn a_partition_of_a_third_keeps_each_lists_last_looks_within_what_may_crash_at_once() {
    // Every list on the larger side hears of fifty suspects at once, and most it never probed itself: each
    // wants a last look before its verdict. Taken all at once they would be a burst of probes, helpers and
    // streams per list that grows with the size of the cut.
    let mut w = world(150, 5, 60.0, Vec::new());
    w.network.partitions.push(Partition {
        sides: vec![(100..150).collect()],
        start: secs(10.0),
        heal: secs(40.0),
    });
    let allowed = w.config.last_looks_at_once();
    let mut sim = Sim::new(w).expect("a valid world");
    let mut most = 0;
    for tenth in 100..400 {
        sim.run_until(secs(f64::from(tenth) / 10.0));
        for i in sim.running_nodes() {
            most = most.max(sim.footprint(i).map_or(0, |f| f.last_looks));
        }
    }
    assert!(
        most <= allowed,
        "seed 5: a list had {most} last looks in flight at once, over {allowed}"
    );
    assert_eq!(
        state_in(&sim, 0, 120).map(|s| s.0),
        Some(State::Failed),
        "seed 5: the cut did not fail the far side"
    );
    sim.run_until(secs(60.0));
    let outcome = RunOutcome::of(&sim);
    assert!(
        outcome.false_positives.is_empty(),
        "seed 5: {:?}",
        outcome.false_positives
    );
}
