//! Network coordinates: members learn where they sit from their own probes, carry their coordinates on pings
//! and acks in wire version 4, and never send them to a member of an older version.

mod support;

use std::time::Duration;

use roster_core::codec::{self, COORDINATE_LEN};
use roster_core::message::Message;
use roster_core::{Config, Coordinate};
use support::Net;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn build_of_version(version: u8) -> Config {
    Config {
        wire_version: version,
        ..Config::default()
    }
}

fn cluster(n: usize, net: &mut Net, config: impl Fn(usize) -> Config) {
    net.start_configured(0, &[], config(0));
    for i in 1..n {
        net.run_for(secs(0.1));
        net.start_configured(i, &[0], config(i));
    }
}

#[test]
fn every_member_estimates_a_uniform_round_trip_within_a_fifth() {
    let n = 5;
    let mut net = Net::new(7, Config::default());
    net.latency = Duration::from_millis(15);
    cluster(n, &mut net, |_| Config::default());
    net.run_for(secs(60.0));
    let truth = 0.030;
    for i in 0..n {
        let node = net.node(i);
        assert!(node.coordinate_updates() > 20, "m{i} learned too little");
        for j in (0..n).filter(|&j| j != i) {
            let theirs = node
                .coordinate_of(net.name(j))
                .unwrap_or_else(|| panic!("m{i} holds no coordinate for m{j}"));
            let estimate = node.coordinate().distance_to(theirs).as_secs_f64();
            let error = (estimate - truth).abs() / truth;
            assert!(
                error < 0.2,
                "m{i} estimates m{j} at {estimate:.4} s, the round trip is {truth} s (error {error:.2})"
            );
        }
    }
}

#[test]
fn a_member_of_an_older_version_is_never_sent_a_coordinate_and_still_decodes_everything() {
    let n = 4;
    let mut net = Net::new(11, Config::default());
    net.record_wire = true;
    cluster(n, &mut net, |i| {
        build_of_version(if i == 3 { 3 } else { codec::VERSION })
    });
    net.run_for(secs(20.0));
    assert!(net.converged(), "the mixed cluster did not form");
    let undecodable: u64 = net.live().map(|i| net.node(i).stats().undecodable).sum();
    assert_eq!(undecodable, 0, "a packet did not decode");

    let old = Net::addr(3);
    let to_old = net.wire.iter().filter(|(_, to, _)| *to == old);
    for (_, _, bytes) in to_old {
        let packet = codec::decode_packet(bytes).expect("sent packets decode");
        assert!(
            packet.version <= 3,
            "m3 was sent version {}",
            packet.version
        );
    }
    // The old member learns nothing and holds nothing; the others know each other but not it.
    assert_eq!(net.node(3).coordinate(), &Coordinate::ORIGIN);
    assert_eq!(net.node(3).coordinates().count(), 0);
    for i in 0..3 {
        assert!(net.node(i).coordinate_of("m3").is_none());
        assert_ne!(net.node(i).coordinate(), &Coordinate::ORIGIN);
    }
}

#[test]
fn coordinates_ride_behind_pings_and_acks_only() {
    let mut net = Net::new(3, Config::default());
    net.record_wire = true;
    cluster(3, &mut net, |_| Config::default());
    net.run_for(secs(10.0));
    let mut carried = 0;
    for (_, _, bytes) in &net.wire {
        let Ok(packet) = codec::decode_packet(bytes) else {
            continue; // stream frames
        };
        let at = packet
            .messages
            .iter()
            .position(|m| matches!(m, Message::Coordinate(_)));
        if let Some(at) = at {
            carried += 1;
            assert!(
                packet.messages[..at]
                    .iter()
                    .any(|m| matches!(m, Message::Ping { .. } | Message::Ack { .. })),
                "a coordinate rode without a ping or an ack before it: {:?}",
                packet.messages
            );
        }
    }
    assert!(carried > 10, "only {carried} packets carried a coordinate");
}

#[test]
fn a_ping_and_an_ack_each_grow_by_one_coordinate() {
    let ping = Message::Ping {
        seq: 300,
        target: "m2".into(),
        round_clock: Some(1_000_000),
    };
    let ack = Message::Ack {
        seq: 300,
        round_clock: Some(1_000_000),
    };
    let coordinate = Message::Coordinate(Coordinate::ORIGIN);
    for message in [ping, ack] {
        let before = codec::encode_packet("m1", std::slice::from_ref(&message)).len();
        let after = codec::encode_packet("m1", &[message, coordinate.clone()]).len();
        assert_eq!(after - before, COORDINATE_LEN);
        assert_eq!(COORDINATE_LEN, 45);
    }
}

#[test]
fn a_coordinate_is_refused_in_version_3_and_when_not_finite() {
    let bytes = codec::encode_packet_at(
        3,
        "m1",
        &[
            Message::Ack {
                seq: 1,
                round_clock: None,
            },
            Message::Coordinate(Coordinate::ORIGIN),
        ],
    );
    let packet = codec::decode_packet(&bytes).unwrap();
    assert_eq!(
        packet.messages.len(),
        1,
        "version 3 leaves the coordinate out"
    );

    let mut buf = Vec::new();
    codec::encode_header(&mut buf, 3, "m1");
    codec::encode_message(&mut buf, &Message::Coordinate(Coordinate::ORIGIN));
    assert_eq!(
        codec::decode_packet(&buf),
        Err(codec::DecodeError::UnknownMessage(16))
    );

    let mut buf = Vec::new();
    codec::encode_header(&mut buf, codec::VERSION, "m1");
    codec::encode_message(&mut buf, &Message::Coordinate(Coordinate::ORIGIN));
    let height = buf.len() - 4;
    buf[height..].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(matches!(
        codec::decode_packet(&buf),
        Err(codec::DecodeError::InvalidCoordinate(_))
    ));
}
