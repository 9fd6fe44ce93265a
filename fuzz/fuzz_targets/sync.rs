//! A node fed hostile stream messages (full-state syncs, joins) and datagrams: it never panics, and whatever it
//! accepts leaves its list within the decoder's bounds.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use roster_core::{Config, Identity, Meta, Node, Time};

fuzz_target!(|data: &[u8]| {
    let now = Time::from_unix_ms(1_764_000_000_000);
    let me: SocketAddr = "10.0.0.1:7946".parse().unwrap();
    let identity = Identity::new("fuzz", me, now.unix_ms(), Meta::default()).unwrap();
    let mut node = Node::new(Config::default(), identity, SmallRng::seed_from_u64(0)).unwrap();
    let from: SocketAddr = "10.0.0.2:7946".parse().unwrap();
    // The first byte picks the path; the rest is the message.
    let (path, bytes) = data.split_first().unwrap_or((&0, &[]));
    let _ = if path & 1 == 0 {
        node.handle_stream(now, from, bytes).map(|_| ())
    } else {
        node.handle_packet(now, from, bytes)
    };
    node.handle_timeout(now + std::time::Duration::from_secs(1));
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    assert!(node.members().len() <= roster_core::codec::MAX_SYNC_MEMBERS + 1);
});
