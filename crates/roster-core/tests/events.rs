//! User events and queries in a small cluster driven through an in-memory network with a fake clock.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use roster_core::Event;
use roster_core::query::MAX_OPEN_QUERIES;
use roster_core::user_event::MAX_EVENT_BYTES;
use roster_core::{Config, EventError, QueryFilter, QueryId, codec};
use support::Net;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn cluster(n: usize, seed: u64) -> Net {
    let mut net = Net::new(seed, Config::default());
    net.start(0, &[]);
    for i in 1..n {
        net.run_for(secs(0.1));
        net.start(i, &[0]);
    }
    net.run_for(secs(3.0));
    assert!(net.converged(), "the cluster did not form");
    net
}

/// A delivered user event: (name, payload, ltime, from).
type Delivered = (String, Vec<u8>, u64, String);

/// User events delivered, by node.
fn delivered(net: &Net) -> BTreeMap<String, Vec<Delivered>> {
    let mut by_node: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for logged in &net.log {
        if let Event::User {
            name,
            payload,
            ltime,
            from,
        } = &logged.event
        {
            by_node.entry(logged.node.clone()).or_default().push((
                name.to_string(),
                payload.to_vec(),
                *ltime,
                from.to_string(),
            ));
        }
    }
    by_node
}

fn send_event(net: &mut Net, at: usize, name: &str, payload: &[u8]) -> Result<u64, EventError> {
    let now = net.clock_of(at);
    let sent = net.node_mut(at).send_user_event(now, name, payload);
    net.drain(at);
    sent
}

#[test]
fn an_event_reaches_every_member_once_despite_loss() {
    for seed in 0..5 {
        let mut net = cluster(6, seed);
        net.loss = 0.1;
        let sent_at = net.now;
        let ltime = send_event(&mut net, 2, "deploy", b"v1.2").unwrap();
        net.run_for(secs(15.0));
        let delivered = delivered(&net);
        for i in 0..6 {
            let events = &delivered[net.name(i)];
            assert_eq!(
                events,
                &vec![("deploy".into(), b"v1.2".to_vec(), ltime, "m2".into())],
                "seed {seed}: node {i}"
            );
        }
        let last = net
            .log
            .iter()
            .filter(|l| matches!(l.event, Event::User { .. }))
            .map(|l| l.at)
            .max()
            .unwrap();
        assert!(
            last - sent_at < secs(15.0),
            "seed {seed}: took {:?}",
            last - sent_at
        );
    }
}

#[test]
fn events_are_ordered_by_the_clock_and_distinct_events_are_all_delivered() {
    let mut net = cluster(4, 7);
    let first = send_event(&mut net, 1, "restart", b"web").unwrap();
    net.run_for(secs(1.0));
    // m3 heard the first event: its clock has moved past it.
    let second = send_event(&mut net, 3, "restart", b"db").unwrap();
    let third = send_event(&mut net, 3, "restart", b"db").unwrap();
    assert!(first < second && second < third);
    net.run_for(secs(10.0));
    for (node, events) in delivered(&net) {
        let times: Vec<u64> = events.iter().map(|e| e.2).collect();
        let mut sorted = times.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, vec![first, second, third], "{node}");
    }
}

#[test]
fn a_member_that_joins_later_does_not_replay_old_events() {
    use std::sync::Arc;

    use rand::SeedableRng;
    use roster_core::message::Message;
    use roster_core::user_event::UserEvent;
    use roster_core::{Identity, Member, Meta, Node, State, Time};

    let now = Time::SIM_EPOCH;
    let seed_addr = Net::addr(0);
    let me = Identity::new("m9", Net::addr(9), 1, Meta::default()).unwrap();
    let mut node = Node::new(
        Config::default(),
        me,
        rand::rngs::SmallRng::seed_from_u64(1),
    )
    .unwrap();
    node.join(now, &[seed_addr]);
    let seed = Member::new(
        Arc::new(Identity::new("m0", seed_addr, 1, Meta::default()).unwrap()),
        0,
        State::Alive,
    );
    // The seed's answer: its list, and its clocks (it has seen events up to time 9).
    let answer = codec::encode_packet(
        "m0",
        &[
            Message::SyncResponse {
                digest: 1,
                members: vec![seed],
            },
            Message::Clocks {
                event: 10,
                query: 0,
            },
        ],
    );
    node.handle_stream(now, seed_addr, &answer).unwrap();
    assert_eq!(node.event_clock(), 10);
    let event = |ltime| {
        codec::encode_packet(
            "m0",
            &[Message::UserEvent(UserEvent {
                ltime,
                name: "e".into(),
                payload: Arc::from(&b""[..]),
                origin: "m0".into(),
            })],
        )
    };
    for ltime in [9, 10] {
        node.handle_packet(now, seed_addr, &event(ltime)).unwrap();
    }
    let mut times = Vec::new();
    while let Some(e) = node.poll_event() {
        if let Event::User { ltime, .. } = e {
            times.push(ltime);
        }
    }
    assert_eq!(
        times,
        vec![10],
        "the event sent before the join is not replayed"
    );
}

#[test]
fn an_oversized_event_is_refused_with_its_size_and_the_limit() {
    let mut net = cluster(2, 1);
    let err = send_event(&mut net, 0, "big", &vec![0; MAX_EVENT_BYTES]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "event name and payload is 515 bytes, over the limit of 512 bytes"
    );
}

#[test]
fn members_of_a_version_before_events_are_never_sent_them() {
    let mut net = Net::new(5, Config::default());
    let older = Config {
        // Version 3 brought user events.
        wire_version: 2,
        ..Config::default()
    };
    net.start(0, &[]);
    for i in 1..5 {
        net.run_for(secs(0.1));
        if i % 2 == 0 {
            net.start_configured(i, &[0], older.clone());
        } else {
            net.start(i, &[0]);
        }
    }
    net.run_for(secs(3.0));
    send_event(&mut net, 1, "ping", b"").unwrap();
    net.run_for(secs(15.0));
    let delivered = delivered(&net);
    assert_eq!(
        delivered.keys().cloned().collect::<Vec<_>>(),
        vec!["m0", "m1", "m3"]
    );
    let undecodable: u64 = net.live().map(|i| net.node(i).stats().undecodable).sum();
    assert_eq!(undecodable, 0);
    assert!(net.converged());
}

/// Answers every query reported so far that has not been answered, with "<node>:<payload>".
fn answer_all(net: &mut Net, answered: &mut Vec<(usize, QueryId)>) {
    let asked: Vec<(usize, QueryId, Vec<u8>)> = net
        .log
        .iter()
        .filter_map(|l| match &l.event {
            Event::Query { query, payload, .. } => Some((l.index, query.clone(), payload.to_vec())),
            _ => None,
        })
        .collect();
    for (i, query, payload) in asked {
        if answered.contains(&(i, query.clone())) || net.nodes[i].is_none() {
            continue;
        }
        answered.push((i, query.clone()));
        let answer = [net.name(i).as_bytes(), b":", &payload].concat();
        let now = net.clock_of(i);
        net.node_mut(i).answer_query(now, &query, &answer).unwrap();
        assert!(matches!(
            net.node_mut(i).answer_query(now, &query, b"again"),
            Err(EventError::AlreadyAnswered(_))
        ));
        net.drain(i);
    }
}

#[test]
fn a_query_gets_one_answer_from_each_matching_member_and_names_who_did_not_answer() {
    let mut net = cluster(5, 11);
    let filter = QueryFilter {
        nodes: vec!["m0".into(), "m2".into(), "m3".into(), "m4".into()],
        tags: Vec::new(),
    };
    net.crash(4);
    let now = net.clock_of(0);
    let started = net
        .node_mut(0)
        .send_query(now, "uptime", b"?", filter, secs(5.0))
        .unwrap();
    net.drain(0);
    assert_eq!(
        started.expected.len(),
        4,
        "m4 is not yet known to have crashed"
    );
    let mut answered = Vec::new();
    for _ in 0..60 {
        net.run_for(secs(0.1));
        answer_all(&mut net, &mut answered);
    }
    let answers: Vec<(String, Vec<u8>)> = net
        .log
        .iter()
        .filter(|l| l.index == 0)
        .filter_map(|l| match &l.event {
            Event::QueryAnswer { from, payload, .. } => Some((from.to_string(), payload.to_vec())),
            _ => None,
        })
        .collect();
    let mut from: Vec<&str> = answers.iter().map(|a| a.0.as_str()).collect();
    from.sort();
    assert_eq!(from, vec!["m0", "m2", "m3"], "{answers:?}");
    assert!(answers.contains(&("m2".into(), b"m2:?".to_vec())));
    let done: Vec<_> = net
        .log
        .iter()
        .filter_map(|l| match &l.event {
            Event::QueryDone {
                query,
                answered,
                missing,
            } => Some((query.clone(), answered.len(), missing.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, started.id);
    assert_eq!(done[0].1, 3);
    assert_eq!(done[0].2, vec![std::sync::Arc::<str>::from("m4")]);
    // m1 did not match, and was never asked.
    assert!(!answered.iter().any(|(i, _)| *i == 1));
}

#[test]
fn a_node_has_a_bounded_number_of_queries_open() {
    let mut net = cluster(2, 2);
    let now = net.clock_of(0);
    for _ in 0..MAX_OPEN_QUERIES {
        net.node_mut(0)
            .send_query(now, "q", b"", QueryFilter::default(), secs(2.0))
            .unwrap();
    }
    let err = net
        .node_mut(0)
        .send_query(now, "q", b"", QueryFilter::default(), secs(2.0))
        .unwrap_err();
    assert_eq!(
        err,
        EventError::TooManyQueries {
            open: MAX_OPEN_QUERIES
        }
    );
    net.drain(0);
    net.run_for(secs(3.0));
    assert!(
        net.node_mut(0)
            .send_query(now + secs(3.0), "q", b"", QueryFilter::default(), secs(2.0))
            .is_ok(),
        "the queries past their deadline are closed"
    );
}
