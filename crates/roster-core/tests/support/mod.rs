//! A small in-memory network with a fake clock, for driving several `Node`s through scenarios.
//!
//! Deliveries are ordered by (time, sequence number), the RNGs are seeded, and nothing reads a real clock: a
//! scenario gives the same history every run.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use roster_core::{ChangeKind, Config, Event, Identity, Meta, Node, State, Time, Transport};

#[derive(Debug)]
enum Payload {
    Datagram,
    Stream,
    StreamReply,
}

#[derive(Debug)]
struct Delivery {
    to: SocketAddr,
    from: SocketAddr,
    bytes: Vec<u8>,
    payload: Payload,
}

/// A logged event: when, at which node (by name), what.
#[derive(Clone, Debug)]
pub struct Logged {
    pub at: Time,
    pub node: String,
    /// The node's index: two processes may share a name.
    pub index: usize,
    pub event: Event,
}

pub struct Net {
    pub now: Time,
    pub nodes: Vec<Option<Node>>,
    names: Vec<String>,
    addrs: Vec<SocketAddr>,
    /// Per node: how far its clock is ahead of the network's (negative: behind), in microseconds.
    clock_offsets: Vec<i64>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<(Time, u64)>>,
    pending: HashMap<u64, Delivery>,
    seq: u64,
    rng: SmallRng,
    pub latency: Duration,
    pub loss: f64,
    /// Pairs (from, to) whose traffic is dropped.
    pub blocked: BTreeSet<(usize, usize)>,
    pub log: Vec<Logged>,
    pub config: Config,
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub wire: Vec<(Time, SocketAddr, Vec<u8>)>,
    pub record_wire: bool,
    /// Per node: stream exchanges other nodes opened to it, whether or not they got through.
    pub streams_opened_to: Vec<u64>,
}

impl Net {
    pub fn new(seed: u64, config: Config) -> Net {
        Net {
            now: Time::SIM_EPOCH,
            nodes: Vec::new(),
            names: Vec::new(),
            addrs: Vec::new(),
            clock_offsets: Vec::new(),
            by_addr: HashMap::new(),
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            seq: 0,
            rng: SmallRng::seed_from_u64(seed),
            latency: Duration::from_millis(2),
            loss: 0.0,
            blocked: BTreeSet::new(),
            log: Vec::new(),
            config,
            sent_bytes: 0,
            sent_packets: 0,
            wire: Vec::new(),
            record_wire: false,
            streams_opened_to: Vec::new(),
        }
    }

    pub fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250 + 1) as u8], 7946))
    }

    /// Adds node `i` (or restarts it) and joins it through `seeds`, its clock agreeing with the network's.
    pub fn start(&mut self, i: usize, seeds: &[usize]) {
        self.start_with_clock(i, seeds, 0.0);
    }

    /// Adds node `i` (or restarts it) with its clock `offset_s` seconds ahead of the network's (behind when
    /// negative), and joins it through `seeds`. Its `joined_at` is what its own clock reads.
    pub fn start_with_clock(&mut self, i: usize, seeds: &[usize], offset_s: f64) {
        self.start_custom(i, seeds, offset_s, |node| node);
    }

    /// Starts node `i` as a second process calling itself `name` (a cloned machine), at its own address; with
    /// `joined_at_ms` it copies a running process's instance too.
    pub fn start_clone(
        &mut self,
        i: usize,
        name: &str,
        joined_at_ms: Option<u64>,
        seeds: &[usize],
    ) {
        self.make_room(i);
        let joined = joined_at_ms.unwrap_or_else(|| self.now.unix_ms());
        let identity = Identity::new(name, self.addrs[i], joined, Meta::default()).unwrap();
        let seed = self.rng.random();
        let mut node =
            Node::new(self.config.clone(), identity, SmallRng::seed_from_u64(seed)).unwrap();
        let seeds: Vec<SocketAddr> = seeds.iter().map(|&s| self.addrs[s]).collect();
        node.join(self.now, &seeds);
        self.names[i] = name.to_string();
        self.nodes[i] = Some(node);
        self.drain(i);
    }

    fn make_room(&mut self, i: usize) {
        while self.nodes.len() <= i {
            self.nodes.push(None);
            self.names.push(format!("m{}", self.names.len()));
            let addr = Net::addr(self.addrs.len());
            self.by_addr.insert(addr, self.addrs.len());
            self.addrs.push(addr);
            self.clock_offsets.push(0);
            self.streams_opened_to.push(0);
        }
    }

    /// Starts node `i` with a configuration of its own (an older build, say), joining through `seeds`.
    pub fn start_configured(&mut self, i: usize, seeds: &[usize], config: Config) {
        let shared = std::mem::replace(&mut self.config, config);
        self.start(i, seeds);
        self.config = shared;
    }

    /// [`Net::start_with_clock`], with `build` applied to the new node before it joins.
    pub fn start_custom(
        &mut self,
        i: usize,
        seeds: &[usize],
        offset_s: f64,
        build: impl FnOnce(Node) -> Node,
    ) {
        self.make_room(i);
        self.clock_offsets[i] = (offset_s * 1e6) as i64;
        let now = self.clock_of(i);
        let identity = Identity::new(
            self.names[i].clone(),
            self.addrs[i],
            now.unix_ms(),
            Meta::default(),
        )
        .unwrap();
        let seed = self.rng.random();
        let mut node =
            build(Node::new(self.config.clone(), identity, SmallRng::seed_from_u64(seed)).unwrap());
        let seeds: Vec<SocketAddr> = seeds.iter().map(|&s| self.addrs[s]).collect();
        node.join(now, &seeds);
        self.nodes[i] = Some(node);
        self.drain(i);
    }

    /// What node `i`'s clock reads now.
    pub fn clock_of(&self, i: usize) -> Time {
        shift(self.now, self.clock_offsets[i])
    }

    /// The network time at which node `i`'s clock reads `t`.
    fn network_time(&self, i: usize, t: Time) -> Time {
        shift(t, -self.clock_offsets[i])
    }

    pub fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Node `i` leaves: it announces it, and its driver stops it once the news is out.
    pub fn leave(&mut self, i: usize) {
        let now = self.clock_of(i);
        self.node_mut(i).leave(now);
        self.drain(i);
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node is running")
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("node is running")
    }

    pub fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_some())
    }

    /// The state node `at` holds for node `of`.
    pub fn state(&self, at: usize, of: usize) -> Option<State> {
        self.node(at).member(&self.names[of]).map(|m| m.state)
    }

    pub fn block(&mut self, a: usize, b: usize) {
        self.blocked.insert((a, b));
        self.blocked.insert((b, a));
    }

    pub fn block_one_way(&mut self, from: usize, to: usize) {
        self.blocked.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    fn schedule(&mut self, at: Time, delivery: Delivery) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, delivery);
    }

    pub fn drain(&mut self, i: usize) {
        let from = self.addrs[i];
        let node = self.nodes[i].as_mut().expect("draining a running node");
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit() {
            out.push(t);
        }
        while let Some(event) = node.poll_event() {
            self.log.push(Logged {
                at: self.now,
                node: self.names[i].clone(),
                index: i,
                event,
            });
        }
        for t in out {
            self.sent_packets += 1;
            self.sent_bytes += t.bytes.len() as u64;
            if self.record_wire {
                self.wire.push((self.now, t.to, t.bytes.clone()));
            }
            let payload = match t.transport {
                Transport::Udp => Payload::Datagram,
                Transport::Stream => Payload::Stream,
            };
            let at = self.now + self.latency;
            self.schedule(
                at,
                Delivery {
                    to: t.to,
                    from,
                    bytes: t.bytes,
                    payload,
                },
            );
        }
    }

    fn passes(&mut self, from: usize, to: usize, payload: &Payload) -> bool {
        if self.blocked.contains(&(from, to)) {
            return false;
        }
        matches!(payload, Payload::Datagram)
            .then(|| self.rng.random::<f64>() >= self.loss)
            .unwrap_or(true)
    }

    /// Runs the network until `until`.
    pub fn run_until(&mut self, until: Time) {
        loop {
            let next_delivery = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = self
                .live()
                .filter_map(|i| {
                    self.node(i)
                        .poll_timeout()
                        .map(|t| (self.network_time(i, t).max(self.now), i))
                })
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                let Reverse((_, seq)) = self.queue.pop().expect("peeked");
                let delivery = self.pending.remove(&seq).expect("scheduled");
                self.deliver(delivery);
            } else if let Some((_, i)) = next_timer {
                let now = self.clock_of(i);
                self.node_mut(i).handle_timeout(now);
                self.drain(i);
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn deliver(&mut self, delivery: Delivery) {
        let Some(&to) = self.by_addr.get(&delivery.to) else {
            return;
        };
        let Some(&from) = self.by_addr.get(&delivery.from) else {
            return;
        };
        if matches!(delivery.payload, Payload::Stream) {
            self.streams_opened_to[to] += 1;
        }
        if self.nodes[to].is_none() || !self.passes(from, to, &delivery.payload) {
            return;
        }
        let now = self.clock_of(to);
        match delivery.payload {
            Payload::Datagram => {
                let _ = self
                    .node_mut(to)
                    .handle_packet(now, delivery.from, &delivery.bytes);
            }
            Payload::StreamReply => {
                let _ = self
                    .node_mut(to)
                    .handle_stream(now, delivery.from, &delivery.bytes);
            }
            Payload::Stream => {
                if let Ok(Some(reply)) =
                    self.node_mut(to)
                        .handle_stream(now, delivery.from, &delivery.bytes)
                {
                    self.sent_packets += 1;
                    self.sent_bytes += reply.len() as u64;
                    let at = self.now + self.latency;
                    let back = Delivery {
                        to: delivery.from,
                        from: delivery.to,
                        bytes: reply,
                        payload: Payload::StreamReply,
                    };
                    // A reply travels back on the same connection: it is lost only if the path is cut.
                    if !self.blocked.contains(&(to, from)) {
                        self.schedule(at, back);
                    }
                }
            }
        }
        self.drain(to);
    }

    /// The first time any node logged `kind` about `name`, and the time by which every node in `at` had.
    pub fn first_and_last(
        &self,
        kind: ChangeKind,
        name: &str,
        at: &[usize],
    ) -> (Option<Time>, Option<Time>) {
        let changes: Vec<(&str, Time)> = self
            .log
            .iter()
            .filter_map(|l| match &l.event {
                Event::Changed(c) if c.kind == kind && c.member.name() == name => {
                    Some((l.node.as_str(), l.at))
                }
                _ => None,
            })
            .collect();
        let first = changes.iter().map(|(_, t)| *t).min();
        let mut last = Some(Time::ZERO);
        for &i in at {
            let seen = changes
                .iter()
                .filter(|(n, _)| *n == self.names[i])
                .map(|(_, t)| *t)
                .min();
            last = match (last, seen) {
                (Some(l), Some(s)) => Some(l.max(s)),
                _ => None,
            };
        }
        (first, last)
    }

    pub fn events_about(&self, kind: ChangeKind, name: &str) -> usize {
        self.log
            .iter()
            .filter(|l| matches!(&l.event, Event::Changed(c) if c.kind == kind && c.member.name() == name))
            .count()
    }

    /// Whether every running node holds every running node as alive.
    pub fn converged(&self) -> bool {
        let live: Vec<usize> = self.live().collect();
        live.iter()
            .all(|&a| live.iter().all(|&b| self.state(a, b) == Some(State::Alive)))
    }
}

fn shift(t: Time, micros: i64) -> Time {
    Time::from_unix_micros(t.as_micros().saturating_add_signed(micros))
}
