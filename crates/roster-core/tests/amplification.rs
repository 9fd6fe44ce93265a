//! No unauthenticated datagram makes a node send more bytes than it received, and a ping-req makes it ping only
//! a member it knows, at the address it knows: without a keyring, anyone can forge a packet's sender name and
//! its source address, and the node must not become an amplifier aimed at whoever that address belongs to.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use roster_core::codec::encode_packet;
use roster_core::message::{Message, Update};
use roster_core::{Config, Identity, Member, Meta, Node, State, Time, Transmit, Transport};

const NOW: Time = Time::from_unix_ms(1_764_000_000_000);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn member(name: &str, port: u16) -> Member {
    let identity =
        Identity::new(name, addr(port), NOW.unix_ms() - 1000, Meta::default()).expect("identity");
    Member::new(Arc::new(identity), 0, State::Alive)
}

/// A node `m1` that knows `m2` (port 2) and has heard of 30 members through it, so that its broadcast queue
/// could fill any packet to the MTU.
fn busy_node() -> Node {
    let identity = Identity::new("m1", addr(1), NOW.unix_ms(), Meta::default()).expect("identity");
    let mut node =
        Node::new(Config::default(), identity, SmallRng::seed_from_u64(3)).expect("node");
    node.adopt_members(NOW, [member("m2", 2)]);
    let news: Vec<Message> = (0..30)
        .map(|i| {
            Message::Update(Update {
                member: member(&format!("news-{i:02}"), 100 + i),
                accuser: None,
            })
        })
        .collect();
    for chunk in news.chunks(10) {
        node.handle_packet(NOW, addr(2), &encode_packet("m2", chunk))
            .expect("news decodes");
    }
    drain(&mut node);
    node
}

fn drain(node: &mut Node) -> Vec<Transmit> {
    std::iter::from_fn(|| node.poll_transmit()).collect()
}

fn udp_bytes(transmits: &[Transmit]) -> usize {
    transmits
        .iter()
        .filter(|t| t.transport == Transport::Udp)
        .map(|t| t.bytes.len())
        .sum()
}

#[test]
fn a_known_member_still_gets_its_ack_filled_with_news() {
    let mut node = busy_node();
    let ping = encode_packet(
        "m2",
        &[Message::Ping {
            seq: 7,
            target: "m1".into(),
            round_clock: None,
        }],
    );
    node.handle_packet(NOW, addr(2), &ping).expect("decodes");
    let sent = drain(&mut node);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].bytes.len() > ping.len() * 4,
        "the ack to a member it knows carried no news: {} bytes",
        sent[0].bytes.len()
    );
}

#[test]
fn a_ping_from_a_stranger_gets_no_more_bytes_than_it_sent() {
    let mut node = busy_node();
    // A stranger's name, and a known member's name from another address (a forged source).
    for (name, from) in [("x", addr(9999)), ("m2", addr(9999))] {
        let ping = encode_packet(
            name,
            &[Message::Ping {
                seq: 7,
                target: "m1".into(),
                round_clock: None,
            }],
        );
        node.handle_packet(NOW, from, &ping).expect("decodes");
        let sent = drain(&mut node);
        assert!(
            udp_bytes(&sent) <= ping.len(),
            "a {}-byte ping from {name} at {from} made the node send {} bytes to {:?}",
            ping.len(),
            udp_bytes(&sent),
            sent.iter().map(|t| t.to).collect::<Vec<_>>()
        );
        assert!(
            sent.iter().any(|t| t.to == from),
            "the ack itself is still sent"
        );
    }
}

#[test]
fn a_ping_req_pings_only_a_member_it_knows_at_the_address_it_knows() {
    let mut node = busy_node();
    let victim = addr(4444);
    for (target, at) in [("nobody", victim), ("m2", victim), ("news-00", victim)] {
        let request = encode_packet(
            "m2",
            &[Message::PingReq {
                seq: 9,
                target: target.into(),
                addr: at,
            }],
        );
        node.handle_packet(NOW, addr(2), &request).expect("decodes");
        let sent = drain(&mut node);
        assert!(
            sent.iter().all(|t| t.to != victim),
            "a ping-req for {target} at {at} made the node send to it"
        );
    }
    // The same request for a known member at its own address is relayed.
    let request = encode_packet(
        "m2",
        &[Message::PingReq {
            seq: 9,
            target: "news-00".into(),
            addr: addr(100),
        }],
    );
    node.handle_packet(NOW, addr(2), &request).expect("decodes");
    assert!(
        drain(&mut node).iter().any(|t| t.to == addr(100)),
        "a genuine ping-req was not relayed"
    );
}

#[test]
fn a_ping_req_from_a_stranger_relays_nothing() {
    let mut node = busy_node();
    for (name, from) in [("x", addr(9999)), ("m2", addr(9999))] {
        let request = encode_packet(
            name,
            &[Message::PingReq {
                seq: 9,
                target: "news-00".into(),
                addr: addr(100),
            }],
        );
        node.handle_packet(NOW, from, &request).expect("decodes");
        let sent = drain(&mut node);
        assert!(
            udp_bytes(&sent) <= request.len(),
            "a {}-byte ping-req from {name} at {from} made the node send {} bytes to {:?}",
            request.len(),
            udp_bytes(&sent),
            sent.iter().map(|t| t.to).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_forged_suspicion_is_refuted_without_amplification() {
    let mut node = busy_node();
    let local = node.local().clone();
    let claim = encode_packet(
        "x",
        &[Message::Update(Update {
            member: Member {
                state: State::Suspect,
                ..local
            },
            accuser: Some("x".into()),
        })],
    );
    let before = node.local().incarnation;
    node.handle_packet(NOW, addr(9999), &claim)
        .expect("decodes");
    let sent = drain(&mut node);
    assert!(node.local().incarnation > before, "the node did not refute");
    assert!(
        udp_bytes(&sent) <= claim.len(),
        "a {}-byte forged suspicion made the node send {} bytes to {:?}",
        claim.len(),
        udp_bytes(&sent),
        sent.iter().map(|t| t.to).collect::<Vec<_>>()
    );
}

#[test]
fn a_node_whose_probes_all_fail_reports_itself_isolated() {
    let identity = Identity::new("m1", addr(1), NOW.unix_ms(), Meta::default()).expect("identity");
    let mut node =
        Node::new(Config::default(), identity, SmallRng::seed_from_u64(5)).expect("node");
    node.adopt_members(NOW, (2..10).map(|i| member(&format!("m{i}"), i)));
    assert!(!node.is_isolated());
    // Nothing ever answers: every probe fails, and after more distinct failures than may crash at once the
    // node blames itself.
    let mut now = NOW;
    for _ in 0..2000 {
        let Some(next) = node.poll_timeout() else {
            break;
        };
        now = next;
        node.handle_timeout(now);
        drain(&mut node);
        if node.is_isolated() {
            break;
        }
    }
    assert!(
        node.is_isolated(),
        "still not isolated after {:?}",
        now.saturating_since(NOW)
    );
}

#[test]
fn a_forged_failure_of_a_member_that_left_long_ago_is_corrected_without_amplification() {
    let identity = Identity::new("m1", addr(1), NOW.unix_ms(), Meta::default()).expect("identity");
    let config = Config {
        left_reap_timeout: std::time::Duration::from_secs(60),
        ..Config::default()
    };
    let mut node = Node::new(config, identity, SmallRng::seed_from_u64(3)).expect("node");
    let gone = Member {
        state: State::Left,
        ..member("gone", 50)
    };
    node.adopt_members(NOW, [member("m2", 2), gone.clone()]);
    // Past the reap: the member that left is forgotten, and its grave remembers it left.
    let mut now = NOW;
    while now < NOW + std::time::Duration::from_secs(120) {
        now = node
            .poll_timeout()
            .unwrap_or(now + std::time::Duration::from_secs(1));
        node.handle_timeout(now);
        drain(&mut node);
    }
    assert!(
        node.member("gone").is_none(),
        "the left member was not reaped"
    );
    // News to fill any packet.
    let news: Vec<Message> = (0..10)
        .map(|i| {
            Message::Update(Update {
                member: member(&format!("news-{i:02}"), 100 + i),
                accuser: None,
            })
        })
        .collect();
    node.handle_packet(now, addr(2), &encode_packet("m2", &news))
        .expect("news decodes");
    drain(&mut node);
    let claim = encode_packet(
        "x",
        &[Message::Update(Update {
            member: Member {
                state: State::Failed,
                ..gone
            },
            accuser: None,
        })],
    );
    node.handle_packet(now, addr(9999), &claim)
        .expect("decodes");
    let sent = drain(&mut node);
    assert!(
        udp_bytes(&sent) <= claim.len(),
        "a {}-byte forged failure made the node send {} bytes",
        claim.len(),
        udp_bytes(&sent)
    );
}

#[test]
fn a_ping_in_the_name_of_a_member_failed_and_reaped_gets_its_record_over_a_stream_only() {
    let identity = Identity::new("m1", addr(1), NOW.unix_ms(), Meta::default()).expect("identity");
    let config = Config {
        failed_reap_timeout: std::time::Duration::from_secs(60),
        ..Config::default()
    };
    let mut node = Node::new(config, identity, SmallRng::seed_from_u64(3)).expect("node");
    let gone = Member {
        state: State::Failed,
        ..member("gone", 50)
    };
    node.adopt_members(NOW, [member("m2", 2), gone]);
    let mut now = NOW;
    // Past the reap (60 s), within the grave's life (60 s more).
    while now < NOW + std::time::Duration::from_secs(90) {
        now = node
            .poll_timeout()
            .unwrap_or(now + std::time::Duration::from_secs(1));
        node.handle_timeout(now);
        drain(&mut node);
    }
    assert!(
        node.member("gone").is_none(),
        "the failed member was not reaped"
    );
    let ping = encode_packet(
        "gone",
        &[Message::Ping {
            seq: 3,
            target: "m1".into(),
            round_clock: None,
        }],
    );
    node.handle_packet(now, addr(9999), &ping).expect("decodes");
    let sent = drain(&mut node);
    assert!(
        udp_bytes(&sent) <= ping.len(),
        "a {}-byte ping made the node send {} bytes by UDP",
        ping.len(),
        udp_bytes(&sent)
    );
    assert!(
        sent.iter()
            .any(|t| t.to == addr(9999) && t.transport == Transport::Stream),
        "the returning member is not told it was failed"
    );
}
