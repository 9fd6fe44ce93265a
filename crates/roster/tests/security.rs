//! Encryption, key rotation and hostile input against real `roster agent` processes on loopback.

mod harness;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{Agent, Scratch, holds, members, roster, state_of, wait_until};
use rand::{Rng, SeedableRng};
use roster_agent::keyring::{Keyring, Purpose, SecretKey};

/// A keyring file holding `keys`, the first the primary, in its own file per agent (each agent saves its own
/// rotations).
fn keyring_file(dir: &Path, name: &str, keys: &[&SecretKey]) -> PathBuf {
    let path = dir.join(format!("{name}.keyring"));
    let text: String = keys
        .iter()
        .map(|k| format!("{}\n", k.to_base64()))
        .collect();
    std::fs::write(&path, text).expect("write keyring");
    path
}

fn start(scratch: &Scratch, name: &str, join: &[u16], keys: &[&SecretKey]) -> Agent {
    let file = keyring_file(scratch.path(), name, keys);
    Agent::start_with(
        scratch,
        name,
        join,
        &["--keyring", file.to_str().expect("utf-8 path")],
    )
}

fn alive_names(agent: &Agent) -> Vec<String> {
    let mut names: Vec<String> = members(agent.http)
        .unwrap_or_default()
        .iter()
        .filter(|m| m["state"] == "alive")
        .filter_map(|m| m["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

fn metrics(agent: &Agent) -> String {
    http_get(agent.http, "/metrics")
}

/// A minimal HTTP GET, so the test needs no client library.
fn http_get(port: u16, path: &str) -> String {
    use std::io::Read;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

fn never_suspected(agents: &[&Agent], name: &str) -> bool {
    agents.iter().all(|a| {
        a.events()
            .iter()
            .all(|e| !(e["member"] == name && (e["event"] == "suspect" || e["event"] == "failed")))
    })
}

#[test]
fn an_agent_with_another_key_cannot_join_and_learns_nothing() {
    let scratch = Scratch::new("otherkey");
    let (ours, theirs) = (SecretKey::generate(), SecretKey::generate());
    let a1 = start(&scratch, "k1", &[], &[&ours]);
    let a2 = start(&scratch, "k2", &[a1.port], &[&ours]);
    wait_until(Duration::from_secs(10), || {
        holds(alive_names(&a1) == ["k1", "k2"] && alive_names(&a2) == ["k1", "k2"])
    })
    .expect("the two members with the key did not converge");
    let stranger = start(&scratch, "x", &[a1.port, a2.port], &[&theirs]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        alive_names(&stranger),
        ["x"],
        "the stranger learned members"
    );
    assert_eq!(alive_names(&a1), ["k1", "k2"]);
    assert_eq!(alive_names(&a2), ["k1", "k2"]);
    let text = metrics(&a1);
    let unknown_key = harness::metric(
        &text,
        "roster_dropped_packets_total{reason=\"unknown_key\"}",
    );
    assert!(
        unknown_key.is_some_and(|n| n > 0.0),
        "no unknown-key drops counted:\n{text}"
    );
    assert!(
        a1.stderr().contains("key mismatch"),
        "no key mismatch line: {}",
        a1.stderr()
    );
}

#[test]
fn a_cluster_rotates_its_key_with_every_member_staying_alive() {
    let scratch = Scratch::new("rotate");
    let old = SecretKey::generate();
    let a1 = start(&scratch, "r1", &[], &[&old]);
    let a2 = start(&scratch, "r2", &[a1.port], &[&old]);
    let a3 = start(&scratch, "r3", &[a2.port], &[&old]);
    let all = ["r1", "r2", "r3"];
    wait_until(Duration::from_secs(10), || {
        holds([&a1, &a2, &a3].iter().all(|a| alive_names(a) == all))
    })
    .expect("three members did not converge");

    let out = roster(&["keys", "generate"]);
    assert!(out.status.success());
    let new = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    let http = format!("127.0.0.1:{}", a1.http);
    for step in ["install", "use"] {
        let out = roster(&["keys", step, &new, "--http", &http]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("3/3 members acknowledged"),
            "{step}: {said} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    // The old primary is no longer primary anywhere; removing the new one, the primary, is refused.
    let out = roster(&["keys", "remove", &new, "--http", &http]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "removing the primary must be refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("primary"));
    let out = roster(&["keys", "remove", &old.to_base64(), "--http", &http]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3/3 members acknowledged"));

    std::thread::sleep(Duration::from_secs(3));
    for agent in [&a1, &a2, &a3] {
        assert_eq!(
            alive_names(agent),
            all,
            "{} lost a member during the rotation",
            agent.name
        );
        let saved = Keyring::load(&scratch.path().join(format!("{}.keyring", agent.name)))
            .expect("saved keyring");
        let keys: Vec<String> = saved.list().into_iter().map(|k| k.key).collect();
        assert_eq!(
            keys,
            std::slice::from_ref(&new),
            "{} keyring file after the rotation",
            agent.name
        );
    }
    for name in all {
        assert!(
            never_suspected(&[&a1, &a2, &a3], name),
            "{name} was suspected during the rotation"
        );
    }
    let out = roster(&["keys", "list", "--http", &http]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(new.as_str()) && listed.contains("installed on 3, primary on 3"),
        "{listed}"
    );

    // Only the new key gets a newcomer in now.
    let newcomer = start(
        &scratch,
        "r4",
        &[a3.port],
        &[&SecretKey::parse(&new).expect("key")],
    );
    wait_until(Duration::from_secs(10), || {
        holds(alive_names(&newcomer).len() == 4)
    })
    .expect("a member with the new key could not join");
    let stale = start(&scratch, "r5", &[a3.port], &[&old]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        alive_names(&stale),
        ["r5"],
        "a member with the removed key got in"
    );
}

#[test]
fn junk_packets_leave_an_agent_running_its_list_unchanged_and_its_memory_flat() {
    let scratch = Scratch::new("junk");
    let key = SecretKey::generate();
    let a1 = start(&scratch, "j1", &[], &[&key]);
    let a2 = start(&scratch, "j2", &[a1.port], &[&key]);
    wait_until(Duration::from_secs(10), || {
        holds(alive_names(&a1) == ["j1", "j2"])
    })
    .expect("no convergence");
    let before_list = members(a1.http).expect("members");
    let pid = a1.pid().expect("running");
    let rss_before = rss_kib(pid);

    // 100,000 packets: random bytes of random lengths, and authentic packets cut short or with a flipped bit.
    let keyring = Keyring::new(key.clone());
    let ping = roster_core::codec::encode_packet(
        "j2",
        &[roster_core::message::Message::Ping {
            seq: 1,
            target: "j1".into(),
            round_clock: None,
        }],
    );
    let authentic = keyring.seal(Purpose::Datagram, &ping);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(42);
    let started = Instant::now();
    for i in 0..100_000u32 {
        let packet: Vec<u8> = match i % 3 {
            0 => (0..rng.random_range(0..1400))
                .map(|_| rng.random())
                .collect(),
            1 => authentic[..rng.random_range(0..authentic.len())].to_vec(),
            _ => {
                let mut p = authentic.clone();
                let at = rng.random_range(0..p.len());
                p[at] ^= 1 << rng.random_range(0..8);
                p
            }
        };
        let _ = socket.send_to(&packet, ("127.0.0.1", a1.port));
        if i % 500 == 499 {
            // Paced so the test measures the agent, not the loopback buffer's overflow.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let sent_in = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = rss_kib(pid);
    eprintln!(
        "100000 junk packets in {sent_in:?}: RSS {rss_before} KiB before, {rss_after} KiB after"
    );
    assert!(
        a1.pid().is_some() && members(a1.http).is_ok(),
        "the agent stopped answering"
    );
    let after_list = members(a1.http).expect("members");
    let summary = |l: &[serde_json::Value]| -> Vec<(String, String, u64)> {
        l.iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or("").to_owned(),
                    m["state"].as_str().unwrap_or("").to_owned(),
                    m["incarnation"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    assert_eq!(
        summary(&before_list),
        summary(&after_list),
        "the list changed"
    );
    assert!(
        never_suspected(&[&a1, &a2], "j1") && never_suspected(&[&a1, &a2], "j2"),
        "a member was suspected under the flood"
    );
    assert!(
        rss_after < rss_before + 2048,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let text = metrics(&a1);
    let unauthentic = harness::metric(
        &text,
        "roster_dropped_packets_total{reason=\"unauthentic\"}",
    );
    assert!(unauthentic.is_some_and(|n| n > 0.0), "{text}");
    assert_eq!(state_of(&after_list, "j2").as_deref(), Some("alive"));
}

#[test]
fn stream_peers_that_send_nothing_or_never_stop_do_not_hold_the_agent() {
    let scratch = Scratch::new("slowloris");
    let key = SecretKey::generate();
    let a1 = start(&scratch, "s1", &[], &[&key]);
    let a2 = start(&scratch, "s2", &[a1.port], &[&key]);
    wait_until(Duration::from_secs(10), || {
        holds(alive_names(&a1) == ["s1", "s2"])
    })
    .expect("no convergence");
    let opened = Instant::now();
    // One connection that announces a huge frame and trickles it, then more idle connections than the agent
    // takes at once.
    let mut trickler = TcpStream::connect(("127.0.0.1", a1.port)).expect("connect");
    trickler
        .write_all(&(15u32 << 20).to_be_bytes())
        .expect("header");
    std::thread::sleep(Duration::from_millis(200));
    let idle: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", a1.port)).ok())
        .collect();
    let mut closed_after = None;
    while opened.elapsed() < Duration::from_secs(14) {
        if trickler.write_all(&[0u8; 64]).is_err() && closed_after.is_none() {
            closed_after = Some(opened.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(idle);
    let closed_after = closed_after.expect("the agent never closed a stream that never ends");
    eprintln!("endless stream closed by the agent after {closed_after:?}");
    assert!(
        closed_after > Duration::from_secs(5) && closed_after < Duration::from_secs(13),
        "the stream should be cut at the agent's 10 s exchange deadline, not before, not much after"
    );
    assert!(
        never_suspected(&[&a1, &a2], "s1"),
        "the agent stopped answering probes while its streams were held"
    );
    // Once the held connections are gone, a newcomer joins through it.
    let a3 = start(&scratch, "s3", &[a1.port], &[&key]);
    wait_until(Duration::from_secs(15), || {
        holds(alive_names(&a3).len() == 3)
    })
    .expect("no join through the agent after the flood");
}

#[test]
fn a_bad_keyring_file_is_refused_at_start_with_one_line() {
    let scratch = Scratch::new("badkeyring");
    let dir = scratch.path();
    let missing = dir.join("missing.keyring");
    let short = dir.join("short.keyring");
    std::fs::write(&short, "AAAA\n").expect("write");
    let garbage = dir.join("garbage.keyring");
    std::fs::write(&garbage, "this is not base64!\n").expect("write");
    let unreadable = dir.join("unreadable.keyring");
    std::fs::create_dir_all(&unreadable).expect("a directory is not a readable file");
    let data = dir.join("data");
    for (file, expect) in [
        (&missing, "does not exist"),
        (&short, "3 bytes long"),
        (&garbage, "not valid base64"),
        (&unreadable, "cannot read keyring file"),
    ] {
        let port = harness::free_port();
        let out = roster(&[
            "agent",
            "--name",
            "k",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--http",
            &format!("127.0.0.1:{}", harness::free_port()),
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--keyring",
            file.to_str().expect("utf-8"),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        assert!(stderr.contains(expect), "{}: {stderr}", file.display());
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{}: {stderr}",
            file.display()
        );
    }
}
