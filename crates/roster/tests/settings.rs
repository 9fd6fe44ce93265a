//! Settings come from flags, then `ROSTER_*` environment variables, then the config file.

mod harness;

use std::process::{Command, Stdio};
use std::time::Duration;

use harness::{ROSTER, Scratch, free_port, holds, members, wait_until};

#[test]
fn flags_win_over_the_environment_and_the_environment_over_the_file() {
    let scratch = Scratch::new("settings");
    let (file_port, http) = (free_port(), free_port());
    let config = scratch.path().join("roster.toml");
    let data_dir = scratch.path().join("data");
    std::fs::write(
        &config,
        format!(
            "name = \"from-file\"\nbind = \"127.0.0.1:{file_port}\"\nhttp = \"127.0.0.1:1\"\ndata_dir = {:?}\n",
            data_dir.to_string_lossy()
        ),
    )
    .expect("write config");
    let mut child = Command::new(ROSTER)
        .args(["agent", "--http", &format!("127.0.0.1:{http}")])
        .env("ROSTER_CONFIG", &config)
        .env("ROSTER_NAME", "from-env")
        .env("ROSTER_HTTP", "127.0.0.1:2")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let list = wait_until(Duration::from_secs(10), || members(http).ok());
    let _ = child.kill();
    let _ = child.wait();
    let list = list.expect("the agent did not serve HTTP on the port given by flag within 10 s");
    assert_eq!(list[0]["name"], "from-env", "{list:?}");
    assert_eq!(
        list[0]["addr"],
        format!("127.0.0.1:{file_port}"),
        "{list:?}"
    );
    wait_until(Duration::from_secs(5), || {
        holds(data_dir.join("events.jsonl").exists())
    })
    .expect("the data dir from the file was not used");
}

#[test]
fn protocol_timing_follows_the_same_order_and_is_logged_at_start() {
    let scratch = Scratch::new("settings-timing");
    let (port, http) = (free_port(), free_port());
    let config = scratch.path().join("roster.toml");
    std::fs::write(
        &config,
        "probe_interval = \"900ms\"\ndetect_deadline = \"12s\"\nmax_rtt = \"0.25s\"\n",
    )
    .expect("write config");
    let stderr = scratch.path().join("stderr");
    let mut child = Command::new(ROSTER)
        .args(["agent", "--name", "timing"])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .arg("--data-dir")
        .arg(scratch.path().join("data"))
        .args(["--probe-interval", "750ms", "--log-level", "info"])
        .env("ROSTER_CONFIG", &config)
        .env("ROSTER_PROBE_INTERVAL", "800ms")
        .env("ROSTER_DETECT_DEADLINE", "11s")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn");
    let logged = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&stderr).ok().and_then(|text| {
            text.lines()
                .find(|l| l.contains("protocol timing"))
                .map(str::to_owned)
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    let line = logged.expect("no `protocol timing` line within 10 s");
    // The flag over the variable, the variable over the file, the file over the core's default.
    for field in [
        "probe_interval=750ms",
        "detect_deadline=11s",
        "max_rtt=250ms",
        "disseminate_deadline=15s",
    ] {
        assert!(line.contains(field), "{field} not in {line:?}");
    }
}

#[test]
fn the_printed_configuration_is_in_force_and_loads_back_as_itself() {
    let scratch = Scratch::new("print-config");
    let out = harness::roster(&[
        "agent",
        "--name",
        "p1",
        "--bind",
        "127.0.0.1:7946",
        "--probe-interval",
        "750ms",
        "--gossip-fanout",
        "4",
        "--tag",
        "role=web",
        "--print-config",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("UTF-8");
    for line in [
        "name = \"p1\"",
        "probe_interval = \"750ms\"",
        "gossip_fanout = 4",
        "detect_deadline = \"10s\"",
        "role = \"web\"",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line} not in:\n{printed}"
        );
    }
    let file = scratch.path().join("printed.toml");
    std::fs::write(&file, &printed).expect("write");
    let file = file.to_string_lossy().into_owned();
    let again = harness::roster(&["agent", "--config", &file, "--print-config"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout), printed);
}

#[test]
fn a_duration_without_a_unit_is_refused_naming_the_flag() {
    let out = harness::roster(&[
        "agent",
        "--bind",
        "127.0.0.1:7946",
        "--probe-interval",
        "500",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("--probe-interval") && first.contains("time unit needed"),
        "{stderr}"
    );
}
