//! Three nodes driven by hand, the way a driver does it: one loop delivers every transmit to its node, feeds
//! each node the time, and prints what they report. m3 stops answering at 10 s; the others fail it.
//!
//! ```text
//! cargo run -p roster-core --example three_nodes
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use roster_core::{ChangeKind, Config, Event, Identity, Meta, Node, Time, Transport};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Time::from_unix_ms(1_764_000_000_000);
    let addr = |i: u16| SocketAddr::from(([127, 0, 0, 1], 7946 + i));
    let mut nodes = Vec::new();
    for i in 0..3u16 {
        let identity = Identity::new(
            format!("m{}", i + 1),
            addr(i),
            start.unix_ms(),
            Meta::default(),
        )?;
        let mut node = Node::new(
            Config::default(),
            identity,
            SmallRng::seed_from_u64(i.into()),
        )?;
        if i > 0 {
            node.join(start, &[addr(0)]);
        }
        nodes.push(node);
    }
    let crash_at = start + Duration::from_secs(10);
    let mut in_flight: VecDeque<(usize, SocketAddr, Transport, Vec<u8>)> = VecDeque::new();
    let mut now = start;
    while now < start + Duration::from_secs(30) {
        let alive = |i: usize| i < 2 || now < crash_at;
        // Deliver what was sent, as if the network were instant; a stream's answer goes straight back.
        while let Some((to, from, transport, bytes)) = in_flight.pop_front() {
            if !alive(to) {
                continue;
            }
            match transport {
                Transport::Udp => {
                    let _ = nodes[to].handle_packet(now, from, &bytes);
                }
                Transport::Stream => {
                    if let Ok(Some(answer)) = nodes[to].handle_stream(now, from, &bytes) {
                        let back = usize::from(from.port() - 7946);
                        in_flight.push_back((back, addr(to as u16), Transport::Stream, answer));
                    }
                }
            }
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            if !alive(i) {
                continue;
            }
            if node.poll_timeout().is_some_and(|at| at <= now) {
                node.handle_timeout(now);
            }
            while let Some(t) = node.poll_transmit() {
                let to = usize::from(t.to.port() - 7946);
                in_flight.push_back((to, addr(i as u16), t.transport, t.bytes));
            }
            while let Some(event) = node.poll_event() {
                if let Event::Changed(change) = event {
                    let at = now.saturating_since(start).as_secs_f64();
                    let kind = change.kind.as_str();
                    println!("{at:6.2}s m{}: {kind} {}", i + 1, change.member.name());
                    if change.kind == ChangeKind::Failed {
                        assert_eq!(change.member.name(), "m3");
                    }
                }
            }
        }
        now = now + Duration::from_millis(10);
    }
    let failed_everywhere = nodes[..2].iter().all(|n| {
        n.member("m3")
            .is_some_and(|m| m.state == roster_core::State::Failed)
    });
    println!("m3 failed in both other lists: {failed_everywhere}");
    Ok(())
}
