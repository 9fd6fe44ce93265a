//! Bad input gives one line that names the problem and exit code 2 (1 for failures at run time), and never
//! destroys what is on disk.

mod harness;

use std::time::Duration;

use harness::{Agent, Scratch, free_port, holds, roster, wait_until};

fn one_line_error(args: &[&str], code: i32, needle: &str) {
    let out = roster(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "roster {args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "roster {args:?} printed more than one line: {stderr}"
    );
    assert!(
        stderr.starts_with("roster: ") && stderr.contains(needle),
        "roster {args:?}: {stderr}"
    );
}

/// A flag error: exit code 2, the problem on the first line, and clap's hint (`hint`) kept below it.
fn flag_error(args: &[&str], needle: &str, hint: &str) {
    let out = roster(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "roster {args:?}: {stderr}");
    let first = stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with("roster: ") && first.contains(needle),
        "roster {args:?}: the first line does not name {needle:?}: {stderr}"
    );
    assert!(
        stderr.contains(hint),
        "roster {args:?}: clap's hint {hint:?} is lost: {stderr}"
    );
}

#[test]
fn unknown_flags_and_bad_addresses_exit_2_with_clap_hints_kept() {
    flag_error(
        &["agent", "--bind", "127.0.0.1:1", "--frobnicate"],
        "--frobnicate",
        "Usage:",
    );
    flag_error(
        &["agent", "--bind", "127.0.0.1:1", "--joni", "127.0.0.1:2"],
        "--joni",
        "similar argument",
    );
    flag_error(&["agent", "--bind"], "--bind", "a value is required");
    flag_error(
        &["agent", "--bind", "300.1.2.3:7946"],
        "300.1.2.3:7946",
        "--help",
    );
    flag_error(
        &["agent", "--bind", "127.0.0.1:0", "--http", "localhost"],
        "--http",
        "http://IP:PORT",
    );
    flag_error(
        &["agent", "--bind", "127.0.0.1:0", "--log-level", "verbose"],
        "verbose",
        "trace, debug, info, warn, error, off",
    );
    flag_error(
        &[
            "agent",
            "--bind",
            "127.0.0.1:0",
            "--log-level",
            "roster_agent=loud",
        ],
        "loud",
        "TARGET=LEVEL",
    );
    flag_error(&["members", "--format", "yaml"], "yaml", "possible values");
    flag_error(
        &["members", "--http", "https://127.0.0.1:7070"],
        "https",
        "plain http",
    );
    one_line_error(
        &["agent", "--bind", "127.0.0.1:0", "--join", "bad host"],
        2,
        "bad host",
    );
}

#[test]
fn a_bad_log_level_in_the_config_file_exits_2_with_its_line() {
    let scratch = Scratch::new("badlevel");
    let config = scratch.path().join("roster.toml");
    std::fs::write(&config, "name = \"c1\"\nlog_level = \"verbose\"\n").expect("write config");
    let config = config.to_string_lossy().into_owned();
    one_line_error(&["agent", "--config", &config], 2, "line 2");
}

#[test]
fn an_invalid_config_file_or_unusable_data_dir_exits_2() {
    let scratch = Scratch::new("badfiles");
    let config = scratch.path().join("roster.toml");
    std::fs::write(&config, "name = \"c1\"\nbind = 7946\n").expect("write config");
    let config = config.to_string_lossy().into_owned();
    one_line_error(&["agent", "--config", &config], 2, "line 2");

    let not_a_dir = scratch.path().join("file");
    std::fs::write(&not_a_dir, "x").expect("write file");
    let data_dir = not_a_dir.join("data").to_string_lossy().into_owned();
    let bind = format!("127.0.0.1:{}", free_port());
    one_line_error(
        &["agent", "--bind", &bind, "--data-dir", &data_dir],
        2,
        "data directory",
    );
}

#[test]
fn protocol_timing_that_cannot_meet_its_deadlines_exits_2_before_anything_is_written() {
    let scratch = Scratch::new("badtiming");
    let data_dir = scratch.path().join("t1");
    let data = data_dir.to_string_lossy().into_owned();
    let config = scratch.path().join("roster.toml");
    std::fs::write(&config, "probe_interval = \"5s\"\n").expect("write config");
    let config = config.to_string_lossy().into_owned();
    let (bind, http) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    for (timing, needle) in [
        (
            ["--probe-interval", "5s"],
            "leave 0ns of the 10s detection deadline for a suspicion",
        ),
        (["--config", &config], "shorten probe_interval"),
        (
            ["--max-rtt", "600ms"],
            "max_rtt (600ms) must be under half the probe interval (1s)",
        ),
        (
            ["--disseminate-deadline", "11s"],
            "over the 11s dissemination deadline",
        ),
        (["--probe-interval", "0s"], "greater than zero"),
        (["--detect-deadline", "soon"], "--detect-deadline"),
    ] {
        let mut args = vec![
            "agent",
            "--name",
            "t1",
            "--bind",
            &bind,
            "--http",
            &http,
            "--data-dir",
            &data,
        ];
        args.extend(timing);
        // A value clap refuses also gets its pointer to --help on the lines below.
        flag_error(&args, needle, "");
        assert!(
            !data_dir.exists(),
            "roster {args:?} wrote its data directory"
        );
    }
}

#[test]
fn a_port_in_use_or_an_agent_not_running_exits_1() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let bind = taken.local_addr().expect("addr").to_string();
    let http = format!("127.0.0.1:{}", free_port());
    one_line_error(
        &["agent", "--name", "p1", "--bind", &bind, "--http", &http],
        1,
        &bind,
    );
    let http = format!("127.0.0.1:{}", free_port());
    one_line_error(&["members", "--http", &http], 1, "no agent reachable");
    one_line_error(&["leave", "--http", &http], 1, "no agent reachable");
}

#[test]
fn a_corrupt_snapshot_is_moved_aside_and_the_agent_starts() {
    let scratch = Scratch::new("corrupt");
    let dir = scratch.path().join("d1");
    std::fs::create_dir_all(&dir).expect("data dir");
    std::fs::write(
        dir.join("snapshot"),
        "{\"version\": 1, \"name\": \"d1\", trunc",
    )
    .expect("write snapshot");
    std::fs::write(dir.join("events.jsonl"), "{\"earlier\":true}\n").expect("write log");

    let agent = Agent::start(&scratch, "d1", &[]);
    let moved = std::fs::read_to_string(dir.join("snapshot.corrupt"))
        .expect("the corrupt snapshot was moved aside");
    assert!(
        moved.ends_with("trunc"),
        "moved-aside snapshot changed: {moved}"
    );
    assert!(
        agent.stderr().contains("corrupt"),
        "no warning: {}",
        agent.stderr()
    );
    wait_until(Duration::from_secs(10), || {
        holds(dir.join("snapshot").exists())
    })
    .expect("no new snapshot");
    let log = std::fs::read_to_string(dir.join("events.jsonl")).expect("log");
    assert!(
        log.starts_with("{\"earlier\":true}\n"),
        "the event log lost its earlier lines: {log}"
    );
}
