//! Running an agent as an operator would: readiness for systemd, SIGHUP, JSON logs, the advertise address
//! chosen when bound to all interfaces, the default port, and a log line and a metric of its own for each way a
//! neighbour can be set up wrong (another key, encryption on one side only, another wire version, UDP blocked).

mod harness;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{
    Agent, ROSTER, Scratch, free_port, holds, http, members, metric, roster, wait_until,
};
use roster_agent::keyring::{Keyring, Purpose, SecretKey};
use roster_core::codec::{decode_packet, encode_packet};
use roster_core::message::Message;
use roster_core::{Identity, Member, Meta, State};

/// A `roster agent` started with arguments and environment of the test's choosing, killed on drop.
struct Proc {
    child: Child,
    stderr: PathBuf,
}

impl Proc {
    fn start(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        std::fs::create_dir_all(dir).expect("dir");
        let stderr = dir.join(format!("{name}.stderr"));
        let child = Command::new(ROSTER)
            .args(["agent", "--name", name])
            .arg("--data-dir")
            .arg(dir.join(name))
            .args(args)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr"))
            .spawn()
            .expect("spawn roster agent");
        Proc { child, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn logged(&self, within: Duration, needle: &str) -> bool {
        wait_until(within, || holds(self.stderr().contains(needle))).is_some()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn metrics_of(http_port: u16) -> String {
    http(http_port, "GET", "/metrics", &[], "").1
}

#[test]
fn systemd_hears_ready_only_once_the_agent_has_joined() {
    let scratch = Scratch::new("notify");
    let listen = |name: &str| {
        let path = scratch.path().join(name);
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        (path, socket)
    };
    let ready = |socket: &UnixDatagram, within: Duration| {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 1024];
        while Instant::now() < deadline {
            if let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if text.lines().any(|l| l == "READY=1") {
                    return Some(text);
                }
            }
        }
        None
    };

    // A first member, alone by design: ready at once.
    let (path, socket) = listen("alone.sock");
    let http_alone = free_port();
    let _alone = Proc::start(
        scratch.path(),
        "alone",
        &[
            "--bind",
            &format!("127.0.0.1:{}", free_port()),
            "--http",
            &format!("127.0.0.1:{http_alone}"),
        ],
        &[("NOTIFY_SOCKET", path.to_str().expect("utf-8"))],
    );
    let said = ready(&socket, Duration::from_secs(10)).expect("no READY=1 from a cluster of one");
    assert!(said.contains("STATUS="), "{said}");

    // A member whose seed does not answer: not ready, and its health says why.
    let (path, socket) = listen("joining.sock");
    let http = free_port();
    let _joining = Proc::start(
        scratch.path(),
        "joining",
        &[
            "--bind",
            &format!("127.0.0.1:{}", free_port()),
            "--http",
            &format!("127.0.0.1:{http}"),
            "--join",
            &format!("127.0.0.1:{}", free_port()),
            "--retry-join",
        ],
        &[("NOTIFY_SOCKET", path.to_str().expect("utf-8"))],
    );
    assert_eq!(
        ready(&socket, Duration::from_secs(3)),
        None,
        "READY=1 before joining"
    );
    let out = roster(&["health", "--http", &format!("127.0.0.1:{http}")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("joining"), "{stderr}");
    let (status, body) = harness::http(http, "GET", "/v1/health", &[], "");
    assert_eq!(status, 503, "{body}");
}

#[test]
fn sighup_reloads_the_log_level_and_the_tags_and_the_others_see_the_tags() {
    let scratch = Scratch::new("sighup");
    let seed = Agent::start(&scratch, "h1", &[]);
    let config = scratch.path().join("h2.toml");
    // `[meta]`, the table's name before tags, still reads as the tags.
    std::fs::write(&config, "log_level = \"info\"\n[meta]\nrole = \"web\"\n").expect("write");
    let (http, port) = (free_port(), free_port());
    let agent = Proc::start(
        scratch.path(),
        "h2",
        &[
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--http",
            &format!("127.0.0.1:{http}"),
            "--join",
            &format!("127.0.0.1:{}", seed.port),
            "--config",
            config.to_str().expect("utf-8"),
        ],
        &[],
    );
    let role_at_seed = |role: &str| {
        members(seed.http).is_ok_and(|l| {
            l.iter()
                .any(|m| m["name"] == "h2" && m["tags"]["role"] == role)
        })
    };
    wait_until(Duration::from_secs(10), || holds(role_at_seed("web")))
        .expect("h2 did not join with role=web");
    std::fs::write(&config, "log_level = \"debug\"\n[tags]\nrole = \"db\"\n").expect("write");
    let status = Command::new("kill")
        .args(["-HUP", &agent.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    assert!(
        agent.logged(
            Duration::from_secs(5),
            "SIGHUP: settings reloaded changed=log level debug, tags"
        ),
        "{}",
        agent.stderr()
    );
    wait_until(Duration::from_secs(10), || holds(role_at_seed("db")))
        .expect("the seed did not see the new tags within 10 s");
    // Something only the debug level shows: a datagram that does not decode.
    UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .send_to(b"\x01junk", ("127.0.0.1", port))
        .expect("send");
    assert!(
        agent.logged(Duration::from_secs(5), "datagram did not decode"),
        "the debug level did not take: {}",
        agent.stderr()
    );
    assert!(members(http).is_ok(), "the agent stopped on SIGHUP");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let scratch = Scratch::new("jsonlog");
    let agent = Proc::start(
        scratch.path(),
        "j1",
        &[
            "--bind",
            &format!("127.0.0.1:{}", free_port()),
            "--http",
            &format!("127.0.0.1:{}", free_port()),
            "--log-format",
            "json",
        ],
        &[],
    );
    assert!(agent.logged(Duration::from_secs(10), "agent started"));
    for line in agent.stderr().lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        assert!(
            value["level"].is_string() && value["message"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn bound_to_all_interfaces_the_agent_advertises_its_route_to_the_seed_and_seeds_default_to_7946() {
    let scratch = Scratch::new("advertise");
    // A seed on 127.0.0.X:7946, X from the process id, so concurrent runs do not meet.
    let seed_ip = format!(
        "127.0.{}.{}",
        100 + std::process::id() % 100,
        2 + std::process::id() % 250
    );
    let seed_http = free_port();
    if UdpSocket::bind(format!("{seed_ip}:7946")).is_err() {
        eprintln!("skipping: {seed_ip}:7946 is taken");
        return;
    }
    let _seed = Proc::start(
        scratch.path(),
        "a1",
        &[
            "--bind",
            &format!("{seed_ip}:7946"),
            "--http",
            &format!("127.0.0.1:{seed_http}"),
        ],
        &[],
    );
    wait_until(Duration::from_secs(10), || {
        holds(members(seed_http).is_ok())
    })
    .expect("the seed did not start");
    let port = free_port();
    let joiner = Proc::start(
        scratch.path(),
        "a2",
        &[
            "--bind",
            &format!("0.0.0.0:{port}"),
            "--http",
            &format!("127.0.0.1:{}", free_port()),
            "--join",
            &seed_ip,
        ],
        &[],
    );
    let listed = wait_until(Duration::from_secs(10), || {
        members(seed_http).ok().and_then(|l| {
            l.iter()
                .find(|m| m["name"] == "a2")
                .and_then(|m| m["addr"].as_str().map(str::to_owned))
        })
    });
    assert_eq!(
        listed.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str()),
        "{}",
        joiner.stderr()
    );
    assert!(
        joiner
            .stderr()
            .contains("advertise address chosen automatically")
    );
}

#[test]
fn each_way_a_neighbour_is_set_up_wrong_has_its_own_log_line_and_metric() {
    let scratch = Scratch::new("mismatch");
    let key = SecretKey::generate();
    let keyring = scratch.path().join("keyring");
    std::fs::write(&keyring, format!("{}\n", key.to_base64())).expect("keyring");
    let (plain_port, plain_http) = (free_port(), free_port());
    let (sealed_port, sealed_http) = (free_port(), free_port());
    let plain = Proc::start(
        scratch.path(),
        "plain",
        &[
            "--bind",
            &format!("127.0.0.1:{plain_port}"),
            "--http",
            &format!("127.0.0.1:{plain_http}"),
        ],
        &[],
    );
    let sealed = Proc::start(
        scratch.path(),
        "sealed",
        &[
            "--bind",
            &format!("127.0.0.1:{sealed_port}"),
            "--http",
            &format!("127.0.0.1:{sealed_http}"),
            "--keyring",
            keyring.to_str().expect("utf-8"),
        ],
        &[],
    );
    for port in [plain_http, sealed_http] {
        wait_until(Duration::from_secs(10), || holds(members(port).is_ok()))
            .expect("agents did not start");
    }
    let ping = encode_packet(
        "x",
        &[Message::Ping {
            seq: 1,
            target: "plain".into(),
            round_clock: None,
        }],
    );
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let send = |bytes: &[u8], port: u16| {
        socket.send_to(bytes, ("127.0.0.1", port)).expect("send");
    };
    let mut other_version = ping.clone();
    other_version[0] = 99;
    send(&other_version, plain_port);
    send(
        &Keyring::new(key.clone()).seal(Purpose::Datagram, &ping),
        plain_port,
    );
    send(&ping, sealed_port);
    send(
        &Keyring::new(SecretKey::generate()).seal(Purpose::Datagram, &ping),
        sealed_port,
    );
    for (agent, http, reason, line) in [
        (&plain, plain_http, "version", "version mismatch"),
        (
            &plain,
            plain_http,
            "encrypted",
            "but this agent has no keyring",
        ),
        (
            &sealed,
            sealed_http,
            "not_encrypted",
            "unencrypted packets, but this agent encrypts",
        ),
        (
            &sealed,
            sealed_http,
            "unknown_key",
            "a key this agent does not have",
        ),
    ] {
        assert!(
            agent.logged(Duration::from_secs(5), line),
            "no {line:?} line: {}",
            agent.stderr()
        );
        let series = format!("roster_dropped_packets_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&metrics_of(http), &series), Some(1.0), "{series}");
    }
}

/// A member whose UDP is blocked: it joins over TCP and answers the TCP fallback probe, and nothing else.
struct UdpBlockedMember {
    addr: SocketAddr,
    _udp: UdpSocket,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl UdpBlockedMember {
    fn start(join: u16) -> UdpBlockedMember {
        use std::io::{Read, Write};
        let (tcp, udp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().expect("addr")) {
                break (tcp, udp);
            }
        };
        let addr = tcp.local_addr().expect("addr");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let me = Member::new(
            Arc::new(Identity::new("ghost", addr, now_ms, Meta::default()).expect("identity")),
            0,
            State::Alive,
        );
        let frame = |bytes: Vec<u8>| {
            let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
            out.extend(bytes);
            out
        };
        let join_request = encode_packet(
            "ghost",
            &[Message::SyncRequest {
                digest: 0,
                join: true,
                members: vec![me],
            }],
        );
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", join)).expect("connect");
        stream.write_all(&frame(join_request)).expect("join");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        tcp.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || {
            let started = Instant::now();
            while !stopping.load(std::sync::atomic::Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(30)
            {
                let Ok((mut conn, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut len = [0u8; 4];
                if conn.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut bytes = vec![0u8; u32::from_be_bytes(len) as usize];
                if conn.read_exact(&mut bytes).is_err() {
                    continue;
                }
                let Ok(packet) = decode_packet(&bytes) else {
                    continue;
                };
                for message in packet.messages {
                    if let Message::Ping { seq, .. } = message {
                        let ack = encode_packet(
                            "ghost",
                            &[Message::Ack {
                                seq,
                                round_clock: None,
                            }],
                        );
                        let _ = conn.write_all(&frame(ack));
                    }
                }
            }
        });
        UdpBlockedMember {
            addr,
            _udp: udp,
            stop,
        }
    }
}

impl Drop for UdpBlockedMember {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_member_reached_only_by_the_tcp_fallback_is_reported_as_udp_blocked() {
    let scratch = Scratch::new("udpblocked");
    let agent = Agent::start(&scratch, "u1", &[]);
    let ghost = UdpBlockedMember::start(agent.port);
    let line = wait_until(Duration::from_secs(15), || {
        agent
            .stderr()
            .lines()
            .find(|l| l.contains("UDP blocked"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no `UDP blocked` line: {}", agent.stderr()));
    assert!(line.contains(&ghost.addr.to_string()), "{line}");
    let counted = metric(
        &metrics_of(agent.http),
        "roster_probes_acked_over_tcp_total",
    );
    assert!(counted.is_some_and(|n| n >= 1.0), "{counted:?}");
}
