//! The wire under load: a burst of 100,000 junk datagrams at about 30,000 per second, sent to one agent of
//! three on loopback, is drained by the agent (each counted in its metrics) rather than thrown away by the
//! kernel (`RcvbufErrors` in /proc/net/snmp), and no live member is suspected meanwhile. The burst is bounded
//! in count and in time and goes to 127.0.0.1 only.

mod harness;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use harness::{Agent, Scratch, holds, http, members, metric, wait_until};
use rand::{Rng, SeedableRng};

const DATAGRAMS: u64 = 100_000;
const PER_SECOND: u64 = 30_000;

/// The kernel's count of UDP datagrams dropped for want of receive-buffer room, machine-wide.
fn rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let names: Vec<&str> = udp.next()?.split_whitespace().collect();
    let values: Vec<&str> = udp.next()?.split_whitespace().collect();
    let at = names.iter().position(|n| *n == "RcvbufErrors")?;
    values.get(at)?.parse().ok()
}

fn received_udp(agent: &Agent) -> u64 {
    let (_, page) = http(agent.http, "GET", "/metrics", &[], "");
    metric(&page, "roster_received_packets_total{transport=\"udp\"}").unwrap_or(0.0) as u64
}

#[test]
fn a_junk_flood_is_drained_and_counted_by_the_agent_while_no_member_is_suspected() {
    let scratch = Scratch::new("flood");
    let f1 = Agent::start(&scratch, "f1", &[]);
    let f2 = Agent::start(&scratch, "f2", &[f1.port]);
    let f3 = Agent::start(&scratch, "f3", &[f1.port]);
    wait_until(Duration::from_secs(10), || {
        holds(
            members(f1.http).is_ok_and(|l| l.iter().filter(|m| m["state"] == "alive").count() == 3),
        )
    })
    .expect("three members did not converge");
    let (_, page) = http(f1.http, "GET", "/metrics", &[], "");
    let buffer = metric(&page, "roster_udp_receive_buffer_bytes").unwrap_or(0.0);

    let kernel_before = rcvbuf_errors();
    let agent_before = received_udp(&f1);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(16);
    let started = Instant::now();
    // Paced in slices of 1 ms, each sending what is due by then.
    let mut sent = 0u64;
    while sent < DATAGRAMS && started.elapsed() < Duration::from_secs(30) {
        let due = (started.elapsed().as_secs_f64() * PER_SECOND as f64) as u64;
        while sent < due.min(DATAGRAMS) {
            let len = rng.random_range(1..1400);
            let junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if socket.send_to(&junk, ("127.0.0.1", f1.port)).is_ok() {
                sent += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    // Let the agent finish what is queued.
    let counted = wait_until(Duration::from_secs(10), || {
        let n = received_udp(&f1) - agent_before;
        holds(n >= sent).map(|()| n)
    });
    let agent_counted = received_udp(&f1) - agent_before;
    let kernel_dropped = match (kernel_before, rcvbuf_errors()) {
        (Some(before), Some(after)) => after - before,
        _ => 0,
    };
    eprintln!(
        "{sent} junk datagrams in {took:?} ({:.0}/s): the agent counted {agent_counted}, the kernel dropped \
         {kernel_dropped} (RcvbufErrors, machine-wide); receive buffer granted {buffer} bytes",
        sent as f64 / took.as_secs_f64()
    );
    assert_eq!(sent, DATAGRAMS, "the burst did not go out within 30 s");
    assert!(
        counted.is_some(),
        "the agent counted {agent_counted} of {sent} datagrams; the kernel dropped {kernel_dropped}"
    );
    for agent in [&f1, &f2, &f3] {
        let accused: Vec<_> = agent
            .events()
            .into_iter()
            .filter(|e| e["event"] == "suspect" || e["event"] == "failed")
            .collect();
        assert!(
            accused.is_empty(),
            "{} suspected a live member under the flood: {accused:?}",
            agent.name
        );
    }
}
