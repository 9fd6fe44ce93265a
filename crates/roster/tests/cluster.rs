//! Clusters of real `roster agent` processes on loopback: joining, crash detection within the deadlines (10 s to
//! the first list, 15 s to every live one), the event log, restart from the snapshot, and leave.

mod harness;

use std::time::{Duration, Instant};

use harness::{Agent, Scratch, holds, members, roster, state_of, wait_until};

/// Every agent in `agents` lists every name in `names` as `state`.
fn all_see(agents: &[&Agent], names: &[&str], state: &str) -> bool {
    agents.iter().all(|a| {
        members(a.http).is_ok_and(|list| {
            names
                .iter()
                .all(|n| state_of(&list, n).as_deref() == Some(state))
        })
    })
}

/// Waits until `agent` lists `count` alive members (it got its seed's list).
fn joined(agent: Agent, count: usize) -> Agent {
    wait_until(Duration::from_secs(10), || {
        holds(
            members(agent.http)
                .is_ok_and(|l| l.iter().filter(|m| m["state"] == "alive").count() >= count),
        )
    })
    .unwrap_or_else(|| panic!("{} did not join within 10 s", agent.name));
    agent
}

#[test]
fn six_agents_converge_and_three_crashes_are_failed_everywhere_within_deadline() {
    let scratch = Scratch::new("six");
    // All six start at once, each joining through a different earlier member (no member is special), so joins
    // overlap and some seeds are not listening yet when their joiners first call.
    let a1 = Agent::start(&scratch, "a1", &[]);
    let a2 = Agent::start(&scratch, "a2", &[a1.port]);
    let a3 = Agent::start(&scratch, "a3", &[a2.port]);
    let mut a4 = Agent::start(&scratch, "a4", &[a1.port]);
    let mut a5 = Agent::start(&scratch, "a5", &[a3.port]);
    let mut a6 = Agent::start(&scratch, "a6", &[a4.port, a2.port]);
    let names = ["a1", "a2", "a3", "a4", "a5", "a6"];
    let started = Instant::now();
    wait_until(Duration::from_secs(15), || {
        holds(all_see(&[&a1, &a2, &a3, &a4, &a5, &a6], &names, "alive"))
    })
    .expect("six agents did not converge within 15 s");
    eprintln!("converged {:?} after the last start", started.elapsed());

    // The snapshot follows the list within about a second; a6 must have its cluster on disk to rejoin later.
    let snapshot = a6.data_dir.join("snapshot");
    wait_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&snapshot).ok()?;
        let parsed: serde_json::Value = serde_json::from_str(&text).ok()?;
        holds(parsed["members"].as_array().is_some_and(|m| m.len() == 5))
    })
    .expect("a6's snapshot does not list the five others within 5 s");

    // kill -9 of three at once.
    let crashed = Instant::now();
    a4.kill();
    a5.kill();
    a6.kill();
    let survivors = [&a1, &a2, &a3];
    let dead = ["a4", "a5", "a6"];
    let mut first: Option<Duration> = None;
    let mut every: Option<Duration> = None;
    while every.is_none() && crashed.elapsed() < Duration::from_secs(20) {
        let lists: Vec<_> = survivors
            .iter()
            .map(|a| members(a.http).unwrap_or_default())
            .collect();
        let failed_in =
            |list: &Vec<serde_json::Value>, n: &str| state_of(list, n).as_deref() == Some("failed");
        if first.is_none() && lists.iter().any(|l| dead.iter().any(|n| failed_in(l, n))) {
            first = Some(crashed.elapsed());
        }
        if lists.iter().all(|l| dead.iter().all(|n| failed_in(l, n))) {
            every = Some(crashed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = first.expect("no survivor marked a crashed member failed within 20 s");
    let every = every.expect("not every survivor marked every crashed member failed within 20 s");
    eprintln!("first failed after {first:?}, failed everywhere after {every:?}");
    assert!(
        first <= Duration::from_secs(10),
        "first detection took {first:?}, over the 10 s deadline"
    );
    assert!(
        every <= Duration::from_secs(15),
        "failed everywhere after {every:?}, over the 15 s deadline"
    );

    // Every survivor's log says so, with how it learned it.
    for survivor in survivors {
        let events = survivor.events();
        for name in dead {
            assert!(
                events.iter().any(|e| e["event"] == "failed"
                    && e["member"] == name
                    && e["node"] == *survivor.name),
                "{}'s event log has no failed line for {name}",
                survivor.name
            );
        }
        assert!(events.iter().all(|e| {
            e["time"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.len() == 24)
        }));
    }

    // a6 comes back from its data dir alone, as a new instance that replaces the failed one.
    let old_joined = members(a1.http)
        .expect("a1 members")
        .iter()
        .find(|m| m["name"] == "a6")
        .expect("a6")["joined_at_ms"]
        .as_u64()
        .expect("joined_at_ms");
    a6.spawn(&[]);
    let rejoined = Instant::now();
    wait_until(Duration::from_secs(15), || {
        holds(survivors.iter().all(|a| {
            members(a.http).is_ok_and(|l| {
                l.iter().any(|m| {
                    m["name"] == "a6"
                        && m["state"] == "alive"
                        && m["joined_at_ms"].as_u64() > Some(old_joined)
                })
            })
        }))
    })
    .expect("the restarted a6 did not replace its failed entry everywhere within 15 s");
    eprintln!("a6 rejoined everywhere after {:?}", rejoined.elapsed());
    // A restart is a new instance: it joins later than the one it replaces, and every list logs it.
    let own = members(a6.http).expect("a6 members");
    let me = own
        .iter()
        .find(|m| m["name"] == "a6")
        .expect("a6 lists itself");
    assert!(
        me["joined_at_ms"].as_u64() > Some(old_joined),
        "a6 restarted with joined_at {} not after {old_joined}",
        me["joined_at_ms"]
    );
    let joins_of_a6 = a1
        .events()
        .iter()
        .filter(|e| e["event"] == "join" && e["member"] == "a6")
        .count();
    assert!(
        joins_of_a6 >= 2,
        "a1 logged {joins_of_a6} joins of a6, not the first and the restart"
    );
}

#[test]
fn a_leave_is_left_everywhere_and_a_stopped_agent_says_so() {
    let scratch = Scratch::new("leave");
    let b1 = Agent::start(&scratch, "b1", &[]);
    let b2 = joined(Agent::start(&scratch, "b2", &[b1.port]), 2);
    let mut b3 = joined(Agent::start(&scratch, "b3", &[b2.port]), 3);
    let mut b4 = joined(Agent::start(&scratch, "b4", &[b1.port]), 4);
    let all = ["b1", "b2", "b3", "b4"];
    wait_until(Duration::from_secs(15), || {
        holds(all_see(&[&b1, &b2, &b3, &b4], &all, "alive"))
    })
    .expect("four agents did not converge within 15 s");

    let http = format!("127.0.0.1:{}", b4.http);
    let out = roster(&["leave", "--http", &http]);
    assert!(
        out.status.success(),
        "roster leave failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = b4
        .wait_exit(Duration::from_secs(10))
        .expect("b4 did not exit within 10 s of leaving");
    assert!(status.success(), "b4 exited with {status}");

    wait_until(Duration::from_secs(15), || {
        holds(all_see(&[&b1, &b2, &b3], &["b4"], "left"))
    })
    .expect("b4 is not `left` in every list within 15 s");
    for agent in [&b1, &b2, &b3] {
        let events = agent.events();
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "leave" && e["member"] == "b4"),
            "{} logged no leave",
            agent.name
        );
        assert!(
            !events
                .iter()
                .any(|e| e["event"] == "failed" && e["member"] == "b4"),
            "{} says b4 failed",
            agent.name
        );
    }

    // SIGTERM is a graceful leave too.
    b3.signal("TERM");
    let status = b3
        .wait_exit(Duration::from_secs(10))
        .expect("b3 did not exit within 10 s of SIGTERM");
    assert!(status.success(), "b3 exited with {status} after SIGTERM");
    wait_until(Duration::from_secs(15), || {
        holds(all_see(&[&b1, &b2], &["b3", "b4"], "left"))
    })
    .expect("b3 is not `left` in every list within 15 s of its SIGTERM");

    let out = roster(&["members", "--http", &http]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "members on a stopped agent: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(
        stderr.contains("no agent reachable") && stderr.contains(&http),
        "{stderr}"
    );
}
