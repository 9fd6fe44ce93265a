//! User events, queries and event handlers on real `roster agent` processes on loopback.

mod harness;

use std::time::Duration;

use harness::{Agent, Scratch, holds, members, roster, state_of, wait_until};

/// Waits until every agent lists every one of `names` as alive.
fn converged(agents: &[&Agent], names: &[&str]) {
    wait_until(Duration::from_secs(15), || {
        holds(agents.iter().all(|a| {
            members(a.http).is_ok_and(|list| {
                names
                    .iter()
                    .all(|n| state_of(&list, n).as_deref() == Some("alive"))
            })
        }))
    })
    .expect("the agents did not converge within 15 s");
}

fn user_lines(agent: &Agent, name: &str) -> Vec<serde_json::Value> {
    agent
        .events()
        .into_iter()
        .filter(|l| l["event"] == "user" && l["name"] == name)
        .collect()
}

#[test]
fn an_event_reaches_three_agents_once() {
    let scratch = Scratch::new("events-once");
    let a1 = Agent::start(&scratch, "a1", &[]);
    let a2 = Agent::start(&scratch, "a2", &[a1.port]);
    let a3 = Agent::start(&scratch, "a3", &[a2.port]);
    converged(&[&a1, &a2, &a3], &["a1", "a2", "a3"]);
    // `roster monitor` on a3 streams the event as it arrives.
    let mut monitor = std::process::Command::new(harness::ROSTER)
        .args(["monitor", "--http", &a3.api()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn roster monitor");
    let stdout = monitor.stdout.take().expect("piped");
    let (seen_tx, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(r#""event":"user""#) && seen_tx.send(line).is_err() {
                return;
            }
        }
    });
    // The stream starts with what happens after it connects: warm-up events until one shows it is open.
    let open = wait_until(Duration::from_secs(15), || {
        let out = roster(&["event", "--http", &a3.api(), "warm-up"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.recv_timeout(Duration::from_secs(1)).ok()
    });
    assert!(open.is_some(), "roster monitor streamed no user event");
    let out = roster(&["event", "--http", &a2.api(), "deploy", "v1.2"]);
    assert!(
        out.status.success(),
        "roster event failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agents = [&a1, &a2, &a3];
    wait_until(Duration::from_secs(15), || {
        holds(agents.iter().all(|a| !user_lines(a, "deploy").is_empty()))
    })
    .expect("the event did not reach every agent within 15 s");
    let streamed = wait_until(Duration::from_secs(15), || {
        seen.recv_timeout(Duration::from_secs(1))
            .ok()
            .filter(|line| line.contains(r#""name":"deploy""#))
    });
    let _ = monitor.kill();
    let _ = monitor.wait();
    assert!(
        streamed.is_some(),
        "roster monitor did not stream the event"
    );
    // Gossip repeats it for a while; each agent still delivers it once.
    std::thread::sleep(Duration::from_secs(3));
    for agent in agents {
        let lines = user_lines(agent, "deploy");
        assert_eq!(lines.len(), 1, "{}: {lines:?}", agent.name);
        assert_eq!(lines[0]["payload"], "v1.2");
        assert_eq!(lines[0]["member"], "a2", "the line names the origin");
    }
    // Past the size limit: refused, with the limit and the size.
    let big = "x".repeat(600);
    let out = roster(&["event", "--http", &a1.api(), "big", &big]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("603 bytes, over the limit of 512 bytes"),
        "{err}"
    );
}

#[test]
fn a_query_gets_three_answers_from_a_handler_script() {
    let scratch = Scratch::new("events-query");
    let handler = r#"--event-handler=query:whoami=printf 'I am %s' "$ROSTER_SELF_NAME""#;
    let a1 = Agent::start_with(&scratch, "a1", &[], &[handler]);
    let a2 = Agent::start_with(&scratch, "a2", &[a1.port], &[handler]);
    let a3 = Agent::start_with(&scratch, "a3", &[a2.port], &[handler]);
    converged(&[&a1, &a2, &a3], &["a1", "a2", "a3"]);
    let out = roster(&["query", "--http", &a1.api(), "whoami", "--timeout", "3s"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "roster query failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    assert_eq!(
        lines[0]["expected"].as_array().map(Vec::len),
        Some(3),
        "{stdout}"
    );
    let mut answers: Vec<String> = lines
        .iter()
        .filter_map(|l| l["answer"]["payload"].as_str().map(str::to_owned))
        .collect();
    answers.sort();
    assert_eq!(answers, ["I am a1", "I am a2", "I am a3"], "{stdout}");
    let done = &lines.last().expect("a last line")["done"];
    assert_eq!(
        done["answered"].as_array().map(Vec::len),
        Some(3),
        "{stdout}"
    );
    assert_eq!(
        done["missing"].as_array().map(Vec::len),
        Some(0),
        "{stdout}"
    );
    // A filter on a name asks that member alone.
    let out = roster(&[
        "query",
        "--http",
        &a1.api(),
        "whoami",
        "--node",
        "a3",
        "--timeout",
        "2s",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.matches("\"answer\"").count(), 1, "{stdout}");
    assert!(stdout.contains("I am a3"), "{stdout}");
}

#[test]
fn a_handler_runs_on_a_member_failure_with_the_details_in_its_environment() {
    let scratch = Scratch::new("events-handler");
    let env_file = scratch.path().join("failed.env");
    let input_file = scratch.path().join("failed.in");
    let handler = format!(
        "--event-handler=member-failed=env | grep ^ROSTER_ | sort > {}; cat > {}",
        env_file.display(),
        input_file.display()
    );
    let a1 = Agent::start_with(&scratch, "a1", &[], &[&handler]);
    let a2 = Agent::start(&scratch, "a2", &[a1.port]);
    let mut a3 = Agent::start(&scratch, "a3", &[a1.port]);
    converged(&[&a1, &a2, &a3], &["a1", "a2", "a3"]);
    a3.kill();
    let env = wait_until(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&env_file).ok()?;
        text.contains("ROSTER_EVENT=").then_some(text)
    })
    .expect("the member-failed handler did not run within 20 s of the crash");
    assert!(env.contains("ROSTER_EVENT=member-failed\n"), "{env}");
    assert!(env.contains("ROSTER_SELF_NAME=a1\n"), "{env}");
    let input = wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&input_file)
            .ok()
            .filter(|t| !t.is_empty())
    })
    .expect("the handler's input");
    assert!(input.starts_with("a3\t127.0.0.1:"), "{input}");
    assert!(input.contains("\tfailed\t"), "{input}");
}

#[test]
fn a_burst_of_one_event_runs_a_coalescing_handler_once_with_the_latest() {
    let scratch = Scratch::new("events-coalesce");
    let runs = scratch.path().join("deploys");
    let handler = format!(
        "--event-handler=user:deploy=printf '%s %s\\n' \"$ROSTER_USER_LTIME\" \"$(cat)\" >> {}",
        runs.display()
    );
    let a1 = Agent::start_with(
        &scratch,
        "a1",
        &[],
        &[&handler, "--event-handler-coalesce", "1s"],
    );
    for version in ["v1", "v2", "v3"] {
        let out = roster(&["event", "--http", &a1.api(), "deploy", version]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ran = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&runs)
            .ok()
            .filter(|t| !t.is_empty())
    })
    .expect("the coalesced handler did not run within 10 s");
    // Nothing more comes after the period.
    std::thread::sleep(Duration::from_millis(1500));
    let ran = std::fs::read_to_string(&runs).unwrap_or(ran);
    assert_eq!(ran.lines().count(), 1, "one run for the burst: {ran:?}");
    assert!(ran.trim_end().ends_with(" v3"), "the latest event: {ran:?}");
}
