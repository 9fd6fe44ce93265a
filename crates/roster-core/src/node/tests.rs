//! Unit tests of the node as a whole.

use rand::SeedableRng;

use super::*;
use crate::broadcast::Priority;
use crate::codec;
use crate::event::ProbeOutcome;
use crate::message::Message;
use crate::probe::{Probe, ProbeKind};

const EPOCH: Time = Time::SIM_EPOCH;

fn identity(i: usize) -> Arc<Identity> {
    let addr = SocketAddr::from(([10, 0, 0, i as u8 + 1], 7946));
    Arc::new(Identity::new(format!("m{i}"), addr, 1, Meta::default()).unwrap())
}

/// Node m0 in a converged cluster of `n`.
fn converged(n: usize) -> Node {
    let mut node = Node::new(
        Config::default(),
        (*identity(0)).clone(),
        SmallRng::seed_from_u64(1),
    )
    .unwrap();
    node.adopt_members(
        EPOCH,
        (1..n).map(|i| Member::new(identity(i), 0, State::Alive)),
    );
    node
}

/// Member `i`, alive in this list, as the sender of a claim.
fn sender(i: usize) -> Sender {
    Sender {
        name: format!("m{i}").into(),
        addr: identity(i).addr(),
        identity: Some(identity(i)),
        alive: true,
        reply_budget: usize::MAX,
        probing: false,
    }
}

/// The updates in everything the node has queued to send.
fn sent_updates(node: &mut Node) -> Vec<Update> {
    let mut updates = Vec::new();
    while let Some(t) = node.poll_transmit() {
        let packet = codec::decode_packet(&t.bytes).unwrap();
        updates.extend(packet.messages.into_iter().filter_map(|m| match m {
            Message::Update(u) => Some(u),
            _ => None,
        }));
    }
    updates
}

/// `node`'s own probe of member `target` failed at `now`, and so did its probes of four others: it is isolated.
fn isolate_after_failing_to_probe(node: &mut Node, now: Time, target: usize) {
    let probe = Probe {
        seq: 1,
        target: identity(target),
        started: now,
        direct_deadline: now,
        deadline: now,
        helpers: Some(0),
        sweep_after: None,
        sweep_at: None,
        nacks: 0,
        kind: ProbeKind::Round,
    };
    node.probe_failed(now, probe);
    node.recent_failures = (1..5).map(identity).collect();
}

#[test]
fn back_from_isolation_a_node_repeats_only_its_own_accusations_as_its_own() {
    let mut node = converged(8);
    let now = EPOCH + Duration::from_secs(5);
    // A full sync from m1 says m5 failed: here that is a second-hand suspicion, nobody's own probe.
    let push = Message::SyncPush {
        members: vec![Member::new(identity(5), 0, State::Failed)],
    };
    let bytes = codec::encode_packet("m1", &[push]);
    node.handle_stream(now, identity(1).addr(), &bytes).unwrap();
    assert_eq!(node.member("m5").unwrap().state, State::Suspect);
    isolate_after_failing_to_probe(&mut node, now, 6);
    sent_updates(&mut node);
    node.rejoin_conversation(now + Duration::from_secs(1));
    let updates = sent_updates(&mut node);
    let accusers_of = |name: &str| -> Vec<Option<&str>> {
        updates
            .iter()
            .filter(|u| u.member.name() == name && u.member.state == State::Suspect)
            .map(|u| u.accuser.as_deref())
            .collect()
    };
    assert!(
        !accusers_of("m6").is_empty() && accusers_of("m6").iter().all(|a| *a == Some("m0")),
        "{:?}",
        accusers_of("m6")
    );
    assert!(
        accusers_of("m5").iter().all(|a| a.is_none()),
        "m0 never probed m5, yet says it accuses it: {:?}",
        accusers_of("m5")
    );
}

#[test]
fn a_member_that_flaps_between_failed_and_alive_does_not_grow_the_bookkeeping() {
    let mut node = converged(6);
    let from = sender(1);
    let now = EPOCH + Duration::from_secs(1);
    for round in 0..1000u32 {
        for (inc, state) in [(2 * round, State::Failed), (2 * round + 1, State::Alive)] {
            let claim = Member::new(identity(2), inc, state);
            node.apply(now, claim, None, Via::Gossip, &from, false);
        }
    }
    assert_eq!(node.member("m2").unwrap().state, State::Alive);
    assert!(node.reconnects.len() <= 1, "{}", node.reconnects.len());
    assert!(node.reaps.len() <= 2 * 6 + 16, "{}", node.reaps.len());
}

/// Runs `node`'s timers until `until`, answering nothing; returns the events it reported.
fn run_silently(node: &mut Node, until: Time) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(at) = node.poll_timeout().filter(|&at| at <= until) {
        node.handle_timeout(at);
        while node.poll_transmit().is_some() {}
        events.extend(std::iter::from_fn(|| node.poll_event()));
    }
    events
}

/// Runs `node`'s timers until `until`; every datagram it sends is lost while `lost` says so, and every ping
/// that gets through is answered by the member it names. Returns the events it reported.
fn run_answering(node: &mut Node, until: Time, lost: impl Fn(Time) -> bool) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(at) = node.poll_timeout().filter(|&at| at <= until) {
        node.handle_timeout(at);
        let mut answers = Vec::new();
        while let Some(t) = node.poll_transmit() {
            if lost(at) || t.transport != Transport::Udp {
                continue;
            }
            let packet = codec::decode_packet(&t.bytes).unwrap();
            for message in packet.messages {
                if let Message::Ping { seq, target, .. } = message {
                    let ack = Message::Ack {
                        seq,
                        round_clock: None,
                    };
                    answers.push((t.to, codec::encode_packet(&target, &[ack])));
                }
            }
        }
        for (from, bytes) in answers {
            node.handle_packet(at, from, &bytes).unwrap();
        }
        events.extend(std::iter::from_fn(|| node.poll_event()));
    }
    events
}

fn left_events(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| matches!(e, Event::Left { .. }))
        .collect()
}

#[test]
fn a_leave_ends_once_three_members_answered_the_goodbye() {
    let mut node = converged(40);
    node.leave(EPOCH);
    let events = run_answering(&mut node, EPOCH + Duration::from_secs(1), |_| false);
    let left = left_events(&events);
    assert_eq!(left.len(), 1, "reported once: {left:?}");
    assert!(matches!(left[0], Event::Left { announced: true }));
    assert!(node.leave_announced());
    assert!(
        !node.leave.as_ref().unwrap().heard_by(4),
        "stopped at three answers"
    );
}

#[test]
fn a_leave_whose_goodbyes_are_all_lost_at_first_keeps_saying_goodbye_until_answered() {
    // The machine's transmit queue drops everything for the first 3 s: the protocol hands its goodbye over
    // many times, and nobody hears it.
    let mut node = converged(40);
    node.leave(EPOCH);
    let silent_until = EPOCH + Duration::from_secs(3);
    let events = run_answering(&mut node, silent_until, |at| at <= silent_until);
    assert!(left_events(&events).is_empty(), "{events:?}");
    assert!(!node.leave_announced());
    let timeout = node.config().leave_timeout;
    let events = run_answering(&mut node, EPOCH + timeout, |_| false);
    assert!(
        matches!(left_events(&events)[..], [Event::Left { announced: true }]),
        "{events:?}"
    );
}

#[test]
fn a_leave_that_cannot_get_its_goodbye_out_ends_at_its_timeout() {
    let mut node = converged(40);
    // Standby nodes send no gossip: the goodbye never goes out.
    node.standby = true;
    node.leave(EPOCH);
    let timeout = node.config().leave_timeout;
    assert!(run_silently(&mut node, EPOCH + timeout / 2).is_empty());
    let events = run_silently(&mut node, EPOCH + timeout);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Left { announced: false })),
        "{events:?}"
    );
}

#[test]
fn a_restart_in_place_of_a_failed_instance_is_urgent_news() {
    let mut node = converged(8);
    let now = EPOCH + Duration::from_secs(1);
    node.adopt_members(now, [Member::new(identity(1), 0, State::Failed)]);
    assert_eq!(node.member("m1").unwrap().state, State::Failed);
    // m2 passes on m1's new instance (joined later, at the same address).
    let restarted = Identity::new("m1", identity(1).addr(), 2, Meta::default()).unwrap();
    let news = Message::Update(Update {
        member: Member::new(Arc::new(restarted), 0, State::Alive),
        accuser: None,
    });
    let bytes = codec::encode_packet("m2", &[news]);
    node.handle_packet(now, identity(2).addr(), &bytes).unwrap();
    assert_eq!(node.member("m1").unwrap().state, State::Alive);
    assert_eq!(
        node.broadcasts.priority_of("m1"),
        Some(Priority::Urgent),
        "sent as often as the failure it clears"
    );
}

#[test]
fn a_probe_whose_ping_went_unanswered_pings_again_before_anyone_is_suspected() {
    let mut node = converged(8);
    let mut events = Vec::new();
    let mut first: Option<(SocketAddr, u32)> = None;
    let mut answered = false;
    while let Some(at) = node
        .poll_timeout()
        .filter(|&at| at <= EPOCH + Duration::from_secs(5))
    {
        node.handle_timeout(at);
        let mut ack = None;
        while let Some(t) = node.poll_transmit() {
            // The stream fallback does not get through either.
            if t.transport != Transport::Udp {
                continue;
            }
            let packet = codec::decode_packet(&t.bytes).unwrap();
            for message in packet.messages {
                let Message::Ping { seq, target, .. } = message else {
                    continue;
                };
                match first {
                    // The probe's first ping, and every ping-req, are lost.
                    None => first = Some((t.to, seq)),
                    Some((to, first_seq)) if to == t.to && first_seq == seq && !answered => {
                        ack = Some((
                            t.to,
                            codec::encode_packet(
                                &target,
                                &[Message::Ack {
                                    seq,
                                    round_clock: None,
                                }],
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some((from, bytes)) = ack {
            answered = true;
            node.handle_packet(at, from, &bytes).unwrap();
        }
        events.extend(std::iter::from_fn(|| node.poll_event()));
        if answered {
            break;
        }
    }
    assert!(answered, "no second ping: {events:?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Probed {
                outcome: ProbeOutcome::Acked { .. },
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::Changed(Change {
                kind: ChangeKind::Suspect,
                ..
            })
        )),
        "{events:?}"
    );
}

/// The sync requests `node` queued, by where they go.
fn sync_requests_to(node: &mut Node) -> Vec<SocketAddr> {
    let mut to = Vec::new();
    while let Some(t) = node.poll_transmit() {
        if t.transport != Transport::Stream {
            continue;
        }
        let packet = codec::decode_packet(&t.bytes).unwrap();
        if packet
            .messages
            .iter()
            .any(|m| matches!(m, Message::SyncRequest { .. }))
        {
            to.push(t.to);
        }
    }
    to
}

#[test]
fn a_ping_from_a_member_this_list_never_heard_of_asks_it_for_its_list_once_a_period() {
    let mut node = converged(8);
    let now = EPOCH + Duration::from_secs(5);
    sync_requests_to(&mut node);
    // m9 joined through another seed, and gossip about it missed this list; now it probes m0.
    let stranger = identity(9).addr();
    let ping = |seq| Message::Ping {
        seq,
        target: Arc::from("m0"),
        round_clock: None,
    };
    node.handle_packet(now, stranger, &codec::encode_packet("m9", &[ping(1)]))
        .unwrap();
    assert_eq!(sync_requests_to(&mut node), vec![stranger]);
    // A second ping within the period asks nothing more; a known prober never does.
    node.handle_packet(
        now + Duration::from_millis(300),
        stranger,
        &codec::encode_packet("m9", &[ping(2)]),
    )
    .unwrap();
    let known = identity(3).addr();
    node.handle_packet(now, known, &codec::encode_packet("m3", &[ping(3)]))
        .unwrap();
    assert!(sync_requests_to(&mut node).is_empty());
}

#[test]
fn a_process_resumed_after_a_long_stop_waits_for_refutations_before_failing_what_it_suspected() {
    let mut node = converged(6);
    node.handle_timeout(EPOCH);
    let suspect = Member::new(identity(2), 0, State::Suspect);
    node.apply(
        EPOCH,
        suspect,
        Some("m1".into()),
        Via::Gossip,
        &sender(1),
        false,
    );
    assert_eq!(node.member("m2").unwrap().state, State::Suspect);

    // The process was stopped for 30 s: the suspicion ran out long ago, and what waited in the socket is
    // handled oldest first, a verdict sent before the suspect refuted ahead of the refutation.
    let resumed = EPOCH + Duration::from_secs(30);
    node.handle_timeout(resumed);
    let min = node.config.timers(node.list.active_count()).suspicion_min;
    assert_eq!(node.member("m2").unwrap().state, State::Suspect);
    assert!(
        node.suspicions.next_deadline() >= Some(resumed + min),
        "the suspicion may end {:?} after the stop, before its subject had suspicion_min to refute",
        node.suspicions
            .next_deadline()
            .map(|d| d.saturating_since(resumed))
    );
    let verdict = Member::new(identity(2), 0, State::Failed);
    node.apply(resumed, verdict, None, Via::Gossip, &sender(3), false);
    assert_eq!(
        node.member("m2").unwrap().state,
        State::Suspect,
        "failed on a verdict older than the refutation behind it"
    );
    let refutation = Member::new(identity(2), 1, State::Alive);
    node.apply(resumed, refutation, None, Via::Gossip, &sender(2), false);
    assert_eq!(node.member("m2").unwrap().state, State::Alive);
}

#[test]
fn a_goodbye_passed_on_goes_ahead_of_a_flood_of_urgent_news() {
    let mut node = converged(250);
    let now = EPOCH + Duration::from_secs(1);
    for i in 10..240 {
        let suspect = Member::new(identity(i), 0, State::Suspect);
        node.enqueue(
            Update {
                member: suspect,
                accuser: Some("m1".into()),
            },
            Priority::Urgent,
        );
    }
    let from = sender(5);
    // m5 said goodbye to this node and is gone: nobody else can repeat it, and every list that has not heard
    // it will probe m5 and fail it.
    let goodbye = Member::new(identity(5), 1, State::Left);
    node.apply(now, goodbye, None, Via::Gossip, &from, false);
    while node.poll_transmit().is_some() {}
    node.gossip(now);
    let first = node.poll_transmit().expect("a gossip packet");
    let packet = codec::decode_packet(&first.bytes).unwrap();
    let carries_goodbye = packet.messages.iter().any(
        |m| matches!(m, Message::Update(u) if u.member.name() == "m5" && u.member.state == State::Left),
    );
    assert!(
        carries_goodbye,
        "the first gossip packet after the goodbye holds {} updates, none of them the goodbye",
        packet.messages.len()
    );
}

#[test]
fn a_join_is_sent_as_often_as_urgent_news_and_a_leave_goes_first() {
    let joiner = Member::new(identity(7), 0, State::Alive);
    assert_eq!(
        claims::news_priority(None, &joiner, Some(ChangeKind::Join)),
        Priority::Newcomer
    );
    let left = Member::new(identity(7), 1, State::Left);
    assert_eq!(
        claims::news_priority(Some(&joiner), &left, Some(ChangeKind::Leave)),
        Priority::Racing
    );
}

#[test]
fn back_from_isolation_a_node_tells_only_the_members_it_accused_itself() {
    let mut node = converged(60);
    let now = EPOCH + Duration::from_secs(5);
    // While cut off with others, m0 heard their suspicions of forty members: their accusers will tell them.
    for i in 10..50 {
        let claim = Member::new(identity(i), 0, State::Suspect);
        node.apply(
            now,
            claim,
            Some("m1".into()),
            Via::Gossip,
            &sender(1),
            false,
        );
    }
    isolate_after_failing_to_probe(&mut node, now, 6);
    while node.poll_transmit().is_some() {}
    node.rejoin_conversation(now + Duration::from_secs(1));
    let told: Vec<SocketAddr> = std::iter::from_fn(|| node.poll_transmit())
        .map(|t| t.to)
        .collect();
    assert_eq!(told, vec![identity(6).addr()]);
}
