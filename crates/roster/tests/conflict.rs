//! Two real processes with one name (a cloned machine keeps its host name, the default member name): the
//! member that holds the name keeps it, the newcomer waits on standby without exiting, every agent logs the
//! conflict once, and the newcomer takes the name when it is free.

mod harness;

use std::time::Duration;

use harness::{Agent, Scratch, holds, members, wait_until};
use serde_json::Value;

/// The address `agent` lists for `name`, and its state.
fn entry(agent: &Agent, name: &str) -> Option<(String, String)> {
    let list = members(agent.http).ok()?;
    let m = list.iter().find(|m| m["name"] == name)?;
    Some((
        m["addr"].as_str()?.to_owned(),
        m["state"].as_str()?.to_owned(),
    ))
}

fn conflicts(agent: &Agent) -> Vec<Value> {
    agent
        .events()
        .into_iter()
        .filter(|e| e["event"] == "conflict")
        .collect()
}

fn health(agent: &Agent) -> Option<String> {
    let (_, body) = harness::http(agent.http, "GET", "/v1/health", &[], "");
    let v: Value = serde_json::from_str(&body).ok()?;
    v["status"].as_str().map(str::to_owned)
}

#[test]
fn a_second_process_with_a_taken_name_waits_on_standby_and_every_agent_logs_the_conflict() {
    let scratch = Scratch::new("conflict");
    let a1 = Agent::start(&scratch, "a1", &[]);
    let mut a2 = Agent::start(&scratch, "a2", &[a1.port]);
    let a3 = Agent::start(&scratch, "a3", &[a1.port]);
    let original = format!("127.0.0.1:{}", a2.port);
    wait_until(Duration::from_secs(10), || {
        holds([&a1, &a2, &a3].iter().all(|a| {
            members(a.http).is_ok_and(|l| l.iter().filter(|m| m["state"] == "alive").count() == 3)
        }))
    })
    .expect("three agents converge");
    // The clone: same name, its own port and data directory, joining through a3.
    let elsewhere = Scratch::new("conflict-clone");
    let mut clone = Agent::start(&elsewhere, "a2", &[a3.port]);
    let copy = format!("127.0.0.1:{}", clone.port);
    let logged = wait_until(Duration::from_secs(15), || {
        holds([&a1, &a2, &a3].iter().all(|a| !conflicts(a).is_empty()))
    });
    assert!(
        logged.is_some(),
        "not every agent logged the conflict within 15 s"
    );
    std::thread::sleep(Duration::from_secs(5));
    for agent in [&a1, &a2, &a3] {
        assert_eq!(
            entry(agent, "a2"),
            Some((original.clone(), "alive".to_owned())),
            "{}'s list",
            agent.name
        );
        let lines = conflicts(agent);
        assert_eq!(lines.len(), 1, "{}: {lines:?}", agent.name);
        assert_eq!(lines[0]["addr"], copy.as_str(), "{}: {lines:?}", agent.name);
        assert_eq!(lines[0]["holder_addr"], original.as_str());
    }
    assert_eq!(health(&clone).as_deref(), Some("standby"));
    assert_eq!(health(&a2).as_deref(), Some("ok"));
    assert!(
        clone.wait_exit(Duration::from_millis(100)).is_none(),
        "the clone exited"
    );
    assert!(
        a2.wait_exit(Duration::from_millis(100)).is_none(),
        "the original exited"
    );
    // The original crashes: once it is failed, the clone takes the name.
    a2.kill();
    let taken = wait_until(Duration::from_secs(30), || {
        holds(
            [&a1, &a3]
                .iter()
                .all(|a| entry(a, "a2") == Some((copy.clone(), "alive".to_owned()))),
        )
    });
    assert!(
        taken.is_some(),
        "the clone did not take the name: {:?}",
        entry(&a1, "a2")
    );
    assert_eq!(health(&clone).as_deref(), Some("ok"));
    clone.kill();
}
