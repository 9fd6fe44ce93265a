//! `roster bench cluster` on a small cluster, so the benchmark that docs/performance.md quotes cannot rot: its
//! JSON parses, its figures are sane and bounded, every crash is detected, and it leaves no agent or file
//! behind, also when interrupted.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ROSTER: &str = env!("CARGO_BIN_EXE_roster");

/// Everything a bench run with process id `pid` leaves: its scratch directories and its agents.
fn leftovers(pid: u32) -> (Vec<PathBuf>, Vec<u32>) {
    let prefix = format!("roster-bench-{pid}-");
    let dirs = std::fs::read_dir(std::env::temp_dir())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    let agents = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|p| {
                    std::fs::read(format!("/proc/{p}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(&prefix))
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default();
    (dirs, agents)
}

/// Waits for `child` within `within`, killing it if it overstays; its exit status and stdout.
fn finish(mut child: Child, within: Duration) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            let output = child.wait_with_output().expect("output");
            return (
                output.status,
                String::from_utf8_lossy(&output.stdout).into_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("roster bench did not finish within {within:?}");
}

fn f(v: &Value, path: &[&str]) -> f64 {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{} is not a number in {v}", path.join(".")))
}

#[test]
fn a_small_cluster_benchmark_reports_sane_figures_and_cleans_up() {
    let child = Command::new(ROSTER)
        .args([
            "bench", "cluster", "--nodes", "5", "--quiet", "8s", "--settle", "8s",
        ])
        .args(["--seed", "7", "--format", "json"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn roster bench");
    let pid = child.id();
    let (status, stdout) = finish(child, Duration::from_secs(90));
    assert!(status.success(), "roster bench failed: {status}");
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the report is not one JSON object ({e}): {stdout}"));

    assert_eq!(report["nodes"], 5);
    let converged = f(&report, &["convergence", "from_last_start_ms"]);
    assert!(
        converged <= 15_000.0,
        "5 agents took {converged} ms to converge"
    );
    // SWIM's floor is one ping and one ack per member per period; syncs and stray gossip add a little.
    let packets = f(&report, &["quiet", "per_member_per_s", "packets"]);
    assert!(
        (1.9..=2.5).contains(&packets),
        "{packets} packets per member per second in a quiet cluster of 5"
    );
    // A ping and its ack are about 120 bytes with this member's network coordinate on each.
    let bytes = f(&report, &["quiet", "per_member_per_s", "bytes"]);
    assert!(
        (10.0..=250.0).contains(&bytes),
        "{bytes} payload bytes per member per second"
    );
    let rss = f(&report, &["quiet", "rss_kib", "max"]);
    let anon = f(&report, &["quiet", "anon_kib", "max"]);
    assert!(
        anon > 0.0 && anon <= rss && rss < 64.0 * 1024.0,
        "memory {rss} KiB resident, {anon} KiB private"
    );
    let cpu = f(&report, &["quiet", "cpu_percent_of_core", "max"]);
    assert!((0.0..10.0).contains(&cpu), "{cpu} % of a core");

    let crash = &report["crash"];
    assert_eq!(crash["killed"].as_array().map(Vec::len), Some(3), "{crash}");
    assert_eq!(crash["survivors"], 2, "{crash}");
    assert_eq!(
        crash["all_detected"], true,
        "a crash went undetected: {crash}"
    );
    for victim in crash["victims"].as_array().expect("victims") {
        let detected = f(victim, &["detected_ms"]);
        let everywhere = f(victim, &["disseminated_ms"]);
        assert!(detected <= everywhere && everywhere <= 45_000.0, "{victim}");
    }

    let (dirs, agents) = leftovers(pid);
    assert!(
        dirs.is_empty() && agents.is_empty(),
        "left behind: {dirs:?}, agents {agents:?}"
    );
}

#[test]
fn an_interrupted_benchmark_stops_every_agent_and_removes_its_files() {
    let child = Command::new(ROSTER)
        .args(["bench", "cluster", "--nodes", "5", "--quiet", "60s"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn roster bench");
    let pid = child.id();
    let until = Instant::now() + Duration::from_secs(20);
    while leftovers(pid).1.len() < 5 {
        assert!(Instant::now() < until, "the agents did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let (status, _) = finish(child, Duration::from_secs(10));
    assert!(
        !status.success(),
        "an interrupted run must not look like a result"
    );
    let (dirs, agents) = leftovers(pid);
    assert!(
        dirs.is_empty() && agents.is_empty(),
        "left behind: {dirs:?}, agents {agents:?}"
    );
}

#[test]
fn out_of_range_arguments_are_refused_as_bad_input() {
    let output = Command::new(ROSTER)
        .args(["bench", "cluster", "--nodes", "3"])
        .output()
        .expect("run roster bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--nodes 3"), "{stderr}");
}

#[test]
fn a_ping_and_its_ack_take_under_100_bytes_on_the_wire_for_short_names() {
    use roster_core::codec::encode_packet;
    use roster_core::message::Message;
    // The largest sequence number, as a varint: the worst case for a random starting sequence.
    let seq = u32::MAX;
    let ping = encode_packet(
        "m12",
        &[Message::Ping {
            seq,
            target: "m13".into(),
            round_clock: None,
        }],
    );
    let ack = encode_packet(
        "m13",
        &[Message::Ack {
            seq,
            round_clock: None,
        }],
    );
    // Each datagram also carries an 8-byte UDP and a 20-byte IPv4 header.
    let wire = ping.len() + ack.len() + 2 * (8 + 20);
    eprintln!(
        "ping {} + ack {} payload bytes, {wire} bytes as IPv4 packets",
        ping.len(),
        ack.len()
    );
    assert!(
        wire < 100,
        "a ping and its ack take {wire} bytes on the wire"
    );
}
