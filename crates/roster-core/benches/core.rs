//! Micro-benchmarks of the protocol's hot paths: encoding and decoding each message kind, the
//! broadcast queue, and one protocol period of a node that knows 10,000 members, driven with the real codec.
//!
//! `cargo bench -p roster-core` runs them in well under a minute; docs/performance.md keeps the results.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use roster_core::broadcast::{BroadcastQueue, Priority};
use roster_core::codec::{decode_packet, encode_packet};
use roster_core::message::{Message, Update};
use roster_core::{Config, Identity, Member, Meta, Node, State, Time, Transport};

const T0: u64 = 1_764_000_000_000;

fn addr(i: usize) -> SocketAddr {
    let [_, a, b, c] = (i as u32).to_be_bytes();
    SocketAddr::from((Ipv4Addr::new(10, a, b, c), 7946))
}

fn member(i: usize, state: State) -> Member {
    let identity = Identity::new(format!("m{i}"), addr(i), T0 + i as u64, Meta::default())
        .expect("a valid identity");
    Member::new(Arc::new(identity), 3, state)
}

fn update(i: usize, state: State) -> Update {
    Update {
        accuser: (state == State::Suspect).then(|| Arc::from("m2")),
        member: member(i, state),
    }
}

/// One of each message kind, with short names as a real cluster of `mN` has them.
fn messages() -> Vec<(&'static str, Message)> {
    let list: Vec<Member> = (0..64).map(|i| member(i, State::Alive)).collect();
    vec![
        (
            "ping",
            Message::Ping {
                seq: 123_456,
                target: Arc::from("m13"),
                round_clock: None,
            },
        ),
        (
            "ack",
            Message::Ack {
                seq: 123_456,
                round_clock: Some(1_234_567),
            },
        ),
        ("nack", Message::Nack { seq: 123_456 }),
        (
            "ping_req",
            Message::PingReq {
                seq: 123_456,
                target: Arc::from("m13"),
                addr: addr(13),
            },
        ),
        ("update_alive", Message::Update(update(13, State::Alive))),
        (
            "update_suspect",
            Message::Update(update(13, State::Suspect)),
        ),
        (
            "sync_request_64",
            Message::SyncRequest {
                digest: 0x0123_4567_89ab_cdef,
                join: true,
                members: list[..1].to_vec(),
            },
        ),
        (
            "sync_response_64",
            Message::SyncResponse {
                digest: 0x0123_4567_89ab_cdef,
                members: list.clone(),
            },
        ),
        ("sync_push_64", Message::SyncPush { members: list }),
    ]
}

fn codec(c: &mut Criterion) {
    let mut encode = c.benchmark_group("codec/encode");
    for (kind, message) in messages() {
        let batch = [message];
        encode.bench_function(kind, |b| b.iter(|| encode_packet(black_box("m12"), &batch)));
    }
    encode.finish();
    let mut decode = c.benchmark_group("codec/decode");
    for (kind, message) in messages() {
        let bytes = encode_packet("m12", &[message]);
        decode.bench_function(kind, |b| {
            b.iter(|| decode_packet(black_box(&bytes)).expect("decodes"))
        });
    }
    decode.finish();
}

fn broadcast(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast");
    // A push replaces the queued update about the same member: the common case while news spreads.
    let mut queue = BroadcastQueue::default();
    for i in 0..64 {
        queue.push(&update(i, State::Alive), Priority::Routine);
    }
    let news = update(40, State::Suspect);
    group.bench_function("push_replace_in_64", |b| {
        b.iter(|| queue.push(black_box(&news), Priority::Urgent))
    });
    // Filling one 1400-byte packet from 64 queued updates, with limits high enough that none retires.
    let mut queue = BroadcastQueue::default();
    for i in 0..64 {
        queue.push(&update(i, State::Alive), Priority::Routine);
    }
    let mut buf = Vec::with_capacity(1400);
    let mut retired = Vec::new();
    group.bench_function("fill_1400_from_64", |b| {
        b.iter(|| {
            buf.clear();
            queue.fill(
                &mut buf,
                1400,
                (u32::MAX, u32::MAX),
                None,
                roster_core::codec::VERSION,
                None,
                &mut retired,
            );
            black_box(buf.len())
        })
    });
    // The same from a fresh queue each time, so every update is sent and retired as it would be.
    group.bench_function("push_64_then_fill_until_empty", |b| {
        b.iter_batched(
            BroadcastQueue::default,
            |mut queue| {
                for i in 0..64 {
                    queue.push(&update(i, State::Alive), Priority::Routine);
                }
                let mut packets = 0;
                while !queue.is_empty() {
                    buf.clear();
                    queue.fill(
                        &mut buf,
                        1400,
                        (8, 16),
                        None,
                        roster_core::codec::VERSION,
                        None,
                        &mut retired,
                    );
                    packets += 1;
                }
                packets
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A node that knows `n` alive members, at time `now`.
fn big_node(n: usize, now: Time) -> Node {
    let local = Identity::new("m0", addr(0), T0, Meta::default()).expect("identity");
    let mut node =
        Node::new(Config::default(), local, SmallRng::seed_from_u64(7)).expect("a valid config");
    node.adopt_members(now, (1..n).map(|i| member(i, State::Alive)));
    while node.poll_event().is_some() {}
    node
}

/// Drives `node` through one protocol period from `*now`, answering each ping with the target's ack as the
/// real codec encodes it. Returns the datagrams it sent.
fn one_period(node: &mut Node, now: &mut Time) -> usize {
    let end = *now + Duration::from_secs(1);
    let mut sent = 0;
    while let Some(at) = node.poll_timeout().filter(|&at| at <= end) {
        *now = at.max(*now);
        node.handle_timeout(*now);
        while let Some(t) = node.poll_transmit() {
            if t.transport != Transport::Udp {
                continue;
            }
            sent += 1;
            let packet = decode_packet(&t.bytes).expect("the node's own packet decodes");
            for message in packet.messages {
                if let Message::Ping { seq, target, .. } = message {
                    let ack = encode_packet(
                        &target,
                        &[Message::Ack {
                            seq,
                            round_clock: None,
                        }],
                    );
                    node.handle_packet(*now, t.to, &ack)
                        .expect("an ack decodes");
                }
            }
        }
        while node.poll_event().is_some() {}
    }
    *now = end;
    sent
}

fn node(c: &mut Criterion) {
    let mut group = c.benchmark_group("node");
    let mut now = Time::from_unix_ms(T0 + 60_000);
    let mut node = big_node(10_000, now);
    // A period that sent nothing would time an idle loop.
    assert!(
        one_period(&mut node, &mut now) >= 1,
        "a period sends a ping"
    );
    group.bench_function("one_period_10k_members", |b| {
        b.iter(|| one_period(&mut node, &mut now))
    });
    // The other side of a period: a ping from a member, answered with an ack.
    let ping = encode_packet(
        "m5",
        &[Message::Ping {
            seq: 77,
            target: Arc::from("m0"),
            round_clock: None,
        }],
    );
    group.bench_function("answer_ping_10k_members", |b| {
        b.iter(|| {
            node.handle_packet(now, addr(5), black_box(&ping))
                .expect("decodes");
            node.poll_transmit().expect("an ack")
        })
    });
    group.bench_function("adopt_10k_members", |b| b.iter(|| big_node(10_000, now)));
    group.finish();
}

fn quick() -> Criterion {
    // Enough samples for stable medians on a shared machine, few enough that the whole run stays short.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = quick();
    targets = codec, broadcast, node
}
criterion_main!(benches);
