//! `rosterd`, the agent alone, is `roster agent`: the same flags, variables and configuration, the same
//! agent on the wire, the same exit codes; and the other commands given to it reach the `roster` beside it.

mod harness;

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Duration;

use harness::{Agent, ROSTERD, Scratch, free_port, joins_before_exiting, roster};

fn rosterd(args: &[&str]) -> Output {
    Command::new(ROSTERD)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ROSTER_CONFIG")
        .output()
        .expect("run rosterd")
}

/// The `--flags` and `[env: VARIABLES]` a help text names.
fn flags_and_variables(help: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(help)
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=' || c == ']')
        .filter(|w| (w.starts_with("--") && w.len() > 2) || w.starts_with("ROSTER_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn rosterd_takes_every_flag_and_variable_of_roster_agent() {
    let agent = flags_and_variables(&roster(&["agent", "--help"]).stdout);
    let daemon = flags_and_variables(&rosterd(&["--help"]).stdout);
    assert!(
        agent.len() > 30,
        "too few flags read from the help: {agent:?}"
    );
    assert!(agent.contains("--probe-interval") && agent.contains("ROSTER_JOIN"));
    // --version is the binary's own (roster has it on every command).
    let missing: Vec<_> = agent.difference(&daemon).collect();
    let extra: Vec<_> = daemon
        .difference(&agent)
        .filter(|w| *w != "--version")
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "rosterd lacks {missing:?}, has more {extra:?}"
    );
}

#[test]
fn rosterd_resolves_the_same_configuration_as_roster_agent_with_or_without_the_word_agent() {
    let flags = [
        "--name",
        "d1",
        "--bind",
        "127.0.0.1:7946",
        "--probe-interval",
        "750ms",
        "--tag",
        "role=web",
        "--print-config",
    ];
    let expected = roster(&[&["agent"][..], &flags[..]].concat());
    assert!(expected.status.success());
    let plain = rosterd(&flags);
    let worded = rosterd(&[&["agent"][..], &flags[..]].concat());
    for out in [&plain, &worded] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&expected.stdout)
        );
    }
    assert!(String::from_utf8_lossy(&plain.stdout).contains("probe_interval = \"750ms\""));
}

#[test]
fn rosterd_refuses_bad_input_with_exit_code_2_on_one_line() {
    for args in [
        &["--bogus"][..],
        &[
            "--name",
            "d1",
            "--bind",
            "127.0.0.1:1",
            "--probe-interval",
            "soon",
        ][..],
        &["--name", "d1", "--print-config"][..],
    ] {
        let out = rosterd(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("rosterd: "), "{args:?}: {stderr}");
    }
}

#[test]
fn a_rosterd_agent_joins_a_roster_agent_and_another_command_reaches_roster() {
    let scratch = Scratch::new("rosterd-join");
    let seed = Agent::start(&scratch, "seed", &[]);
    let (port, http) = (free_port(), free_port());
    let mut child = Command::new(ROSTERD)
        .args(["agent", "--name", "d1"])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--join", &format!("127.0.0.1:{}", seed.port)])
        .arg("--data-dir")
        .arg(scratch.path().join("d1"))
        .env_remove("RUST_LOG")
        .spawn()
        .expect("start rosterd");
    let joined = joins_before_exiting(&mut child, seed.http, "d1", Duration::from_secs(10));
    // `rosterd members` is the `roster members` beside it, answered by the rosterd agent itself.
    let listed = rosterd(&["members", "--http", &format!("127.0.0.1:{http}")]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(joined, "the rosterd agent did not join within 10 s");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && text.contains("d1") && text.contains("seed"),
        "rosterd members: {text} {}",
        String::from_utf8_lossy(&listed.stderr)
    );
}
