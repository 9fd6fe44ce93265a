//! Scenarios for `Node::force_leave`: a failed member an operator forces out is `left` in every list, is no
//! longer tried for reconnects, and is reaped on the left timeout; the claim is refused for a member that may
//! still answer; and a member forced out while it was only cut off comes back by refuting the claim.

mod support;

use std::time::Duration;

use roster_core::{ChangeKind, Config, ForceLeaveError, ForceLeft, State, Via};
use support::Net;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A left timeout short enough for a test to outlast, and a failed one it never reaches.
fn config() -> Config {
    Config {
        left_reap_timeout: secs(30.0),
        failed_reap_timeout: secs(3600.0),
        ..Config::default()
    }
}

fn cluster(seed: u64, n: usize) -> Net {
    let mut net = Net::new(seed, config());
    net.start(0, &[]);
    for i in 1..n {
        net.run_for(secs(0.1));
        net.start(i, &[0]);
    }
    net.run_for(secs(5.0));
    assert!(net.converged(), "seed {seed}: not converged");
    net
}

/// Runs until every other live node holds `of` in `state`, or `within` passes; returns how long it took.
fn until_everywhere(net: &mut Net, of: usize, state: State, within: Duration) -> Option<Duration> {
    let start = net.now;
    while net.now < start + within {
        let live: Vec<usize> = net.live().filter(|&i| i != of).collect();
        if live.iter().all(|&i| net.state(i, of) == Some(state)) {
            return Some(net.now - start);
        }
        net.run_for(secs(0.1));
    }
    None
}

#[test]
fn a_forced_out_member_is_left_in_every_list_within_the_deadline_and_reaped_on_the_left_timeout() {
    for seed in 0..3 {
        let mut net = cluster(seed, 8);
        net.crash(5);
        until_everywhere(&mut net, 5, State::Failed, secs(20.0))
            .unwrap_or_else(|| panic!("seed {seed}: the crash was not failed everywhere"));
        // While it is failed, the others try it now and then, in case it was only cut off.
        let tried = net.streams_opened_to[5];
        net.run_for(secs(30.0));
        assert!(
            net.streams_opened_to[5] > tried,
            "seed {seed}: nobody tried to reconnect to the failed m5"
        );
        let now = net.clock_of(0);
        assert_eq!(
            net.node_mut(0).force_leave(now, "m5"),
            Ok(ForceLeft::Marked)
        );
        net.drain(0);
        assert_eq!(net.state(0, 5), Some(State::Left), "seed {seed}");
        let took = until_everywhere(&mut net, 5, State::Left, secs(15.0)).unwrap_or_else(|| {
            panic!("seed {seed}: the force-leave was not everywhere within 15 s")
        });
        assert!(took <= secs(15.0), "seed {seed}: {took:?}");
        // The forcing node logs it as its own doing; every other list as news.
        let forced = net
            .log
            .iter()
            .filter(|l| {
                matches!(&l.event, roster_core::Event::Changed(c)
                    if c.kind == ChangeKind::Leave && c.member.name() == "m5" && c.via == Via::ForceLeave)
            })
            .count();
        assert_eq!(forced, 1, "seed {seed}");
        assert_eq!(net.events_about(ChangeKind::Leave, "m5"), 7, "seed {seed}");
        // Once it has left, nobody tries it again; and it is reaped on the left timeout (30 s here), long
        // before the failed one (an hour).
        let tried = net.streams_opened_to[5];
        net.run_for(secs(45.0));
        assert_eq!(
            net.streams_opened_to[5], tried,
            "seed {seed}: a list still tried to reconnect to m5 after it was forced out"
        );
        for i in net.live().collect::<Vec<_>>() {
            assert_eq!(net.state(i, 5), None, "seed {seed}: {}", net.name(i));
        }
        let now = net.clock_of(0);
        assert_eq!(
            net.node_mut(0).force_leave(now, "m5"),
            Err(ForceLeaveError::Unknown { name: "m5".into() })
        );
    }
}

#[test]
fn a_force_leave_is_refused_for_a_member_that_may_still_answer() {
    let mut net = cluster(7, 4);
    let now = net.clock_of(0);
    let node = net.node_mut(0);
    let alive = node.force_leave(now, "m2").expect_err("alive");
    assert_eq!(
        alive,
        ForceLeaveError::NotFailed {
            name: "m2".into(),
            state: State::Alive
        }
    );
    assert_eq!(
        alive.to_string(),
        "m2 is alive, not failed: only a failed member can be forced to leave"
    );
    assert_eq!(
        node.force_leave(now, "nobody")
            .expect_err("unknown")
            .to_string(),
        "no member named \"nobody\" is in the list"
    );
    assert!(matches!(
        node.force_leave(now, "m0"),
        Err(ForceLeaveError::Local { .. })
    ));
    net.drain(0);
    net.run_for(secs(5.0));
    assert!(net.converged(), "a refused force-leave changed a list");
}

#[test]
fn a_member_forced_out_while_only_cut_off_refutes_and_is_alive_again_after_the_heal() {
    // Healed while the lists still hold it as left, and after they reaped it (the left timeout is 30 s).
    for (seed, cut_off_after) in [(11, 5.0), (12, 45.0)] {
        let mut net = cluster(seed, 6);
        for other in 0..6 {
            if other != 3 {
                net.block(3, other);
            }
        }
        until_everywhere(&mut net, 3, State::Failed, secs(20.0))
            .unwrap_or_else(|| panic!("seed {seed}: m3 was not failed on the near side"));
        let now = net.clock_of(0);
        assert_eq!(
            net.node_mut(0).force_leave(now, "m3"),
            Ok(ForceLeft::Marked)
        );
        net.drain(0);
        net.run_for(secs(cut_off_after));
        net.heal();
        // Nobody reconnects to a member that left; its own probes bring it back, refuting the claim.
        let back = until_everywhere(&mut net, 3, State::Alive, secs(15.0));
        assert!(
            back.is_some(),
            "seed {seed}: m3 was not alive everywhere within 15 s of the heal"
        );
        assert!(
            net.node(0).member("m3").expect("held").incarnation > 0,
            "seed {seed}: m3 came back without refuting"
        );
    }
}
