//! Full-state syncs at any size: a list too large for one frame still reaches a joiner, in frames of a
//! bounded size.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use roster_core::{Config, Identity, Member, Meta, Node, State, Time, Transport};

/// What the agent accepts in one stream frame.
const AGENT_MAX_FRAME: usize = 16 << 20;

#[test]
fn a_joiner_gets_a_list_far_larger_than_one_frame_in_frames_that_fit() {
    let now = Time::from_unix_ms(1_764_000_000_000);
    let addr = |i: usize| SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 7946));
    // Metadata near the limit makes each member about 540 bytes: 5,000 of them are 2.7 MB, and 36,000 (19 MB)
    // would be past what the agent reads in one frame. The frames stay small whatever the size.
    let meta = Meta::new([("role", "x".repeat(490))]).unwrap();
    let members: Vec<Member> = (1..5_000)
        .map(|i| {
            let id = Identity::new(format!("member-{i}"), addr(i), 1, meta.clone()).unwrap();
            Member::new(Arc::new(id), 0, State::Alive)
        })
        .collect();
    let seed_id = Identity::new("member-0", addr(0), 1, meta.clone()).unwrap();
    let mut seed = Node::new(Config::default(), seed_id, SmallRng::seed_from_u64(1)).unwrap();
    seed.adopt_members(now, members);
    let joiner_id = Identity::new("joiner", addr(50_000), 2, Meta::default()).unwrap();
    let mut joiner = Node::new(Config::default(), joiner_id, SmallRng::seed_from_u64(2)).unwrap();
    joiner.join(now, &[addr(0)]);
    let request = joiner.poll_transmit().expect("a join request");
    let reply = seed
        .handle_stream(now, addr(50_000), &request.bytes)
        .unwrap()
        .expect("an answer");
    let mut frames = vec![reply];
    while let Some(t) = seed.poll_transmit() {
        if t.transport == Transport::Stream && t.to == addr(50_000) {
            frames.push(t.bytes);
        }
    }
    assert!(frames.len() > 1, "the list went out in one frame");
    let largest = frames.iter().map(Vec::len).max().unwrap();
    assert!(largest <= AGENT_MAX_FRAME / 8, "a frame of {largest} bytes");
    let later = now + Duration::from_millis(10);
    for frame in &frames {
        joiner.handle_stream(later, addr(0), frame).unwrap();
    }
    assert_eq!(joiner.members().len(), 5_000 + 1);
}
