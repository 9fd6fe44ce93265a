//! `Node`: the local protocol instance. It ties the list, the probe schedule, suspicion, local health and the
//! broadcast queue together behind a sans-I/O interface: inputs carry `now`, outputs are polled.
//!
//! The node never reads a clock or a socket and draws every random choice from the RNG its driver seeded, so
//! the same inputs give the same outputs, byte for byte.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use crate::awareness::Awareness;
use crate::broadcast::{BroadcastQueue, Priority, RetiredFailure};
use crate::codec::{self, DecodeError};
use crate::config::{Config, ConfigError};
use crate::event::{Change, ChangeKind, Event, ProbeOutcome, Via};
use crate::graves::Graves;
use crate::member::{Identity, IdentityError, Member, Meta, State};
use crate::membership::{Applied, Membership};
use crate::message::{Message, Update};
use crate::probe::{Probe, Relay, RttEstimator, Schedule};
use crate::round_clock::RoundClock;
use crate::suspicion::{Bounds, Suspicion};
use crate::time::Time;

/// Reconnect attempts each failed member gets per reconnect interval, from the whole cluster: enough that a
/// healed partition is found within an interval or so, few enough that a member every list holds as failed is
/// not flooded with full syncs when it comes back.
const RECONNECTS_PER_FAILED_MEMBER: f64 = 3.0;

/// A full list goes out in frames of at most about this many bytes: far under what a driver accepts in one
/// frame (16 MiB in the agent), whatever the size of the cluster and its metadata.
pub const MAX_SYNC_CHUNK_BYTES: usize = 1 << 20;

/// How far the wall clock must move against `now` before the probe rounds follow it.
const WALL_CLOCK_MOVE_US: u64 = 1_000;

/// Conflicts remembered, so that each claimant is reported and passed on once.
const CONFLICTS_REMEMBERED: usize = 64;

/// Delays of the quick syncs after a join: the first once news of the join itself has spread, the last well
/// within the 15 s in which every change must be everywhere.
const CATCH_UP_SYNCS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// How a transmit must travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One datagram (UDP in the agent). May be lost.
    Udp,
    /// A reliable stream (a TCP connection in the agent): open a connection to `to`, write the bytes, read the
    /// reply until the peer closes, and hand a non-empty reply to [`Node::handle_stream`] as coming from `to`.
    Stream,
}

/// Bytes the driver must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// Running totals, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Probes started.
    pub probes: u64,
    /// Probes that ended with no answer.
    pub probe_failures: u64,
    /// Suspicions this node started or heard of.
    pub suspicions: u64,
    /// Times this node refuted a suspicion about itself.
    pub refutations: u64,
    /// Packets that did not decode.
    pub undecodable: u64,
    /// Messages that decoded but were not for this node: a ping for another name, a packet claiming this
    /// node's own name, a full list sent as a datagram.
    pub misdirected: u64,
}

/// How much a node holds, by part: what must stay bounded however long it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Entries of the list, the node's own included.
    pub members: usize,
    /// Updates waiting to be piggybacked.
    pub broadcasts: usize,
    /// Suspicion timers running.
    pub suspicions: usize,
    /// Probes in flight.
    pub probes: usize,
    /// Pings sent for other members' ping-reqs, awaiting an ack.
    pub relays: usize,
    /// Failed members to try now and then.
    pub reconnect_pool: usize,
    /// Reaps scheduled.
    pub reaps: usize,
    /// Reaped members remembered.
    pub graves: usize,
}

#[derive(Debug)]
struct JoinAttempt {
    seeds: Vec<SocketAddr>,
    started: Time,
    next_retry: Time,
    interval: Duration,
    attempts: u32,
    /// Asking from standby: never gives up, at a steady interval.
    standby: bool,
}

/// A reap due at `at` for the member instance at `incarnation`, if it is still in the same state then.
#[derive(Debug)]
struct Reap {
    at: Time,
    identity: Arc<Identity>,
    incarnation: u32,
}

/// Who sent the packet being handled.
#[derive(Clone, Debug)]
struct Sender {
    name: Arc<str>,
    addr: SocketAddr,
    /// The sender's entry in this list, if it has one (and was looked up: see `handle_packet`).
    identity: Option<Arc<Identity>>,
    /// Whether this list held the sender as alive when its packet arrived: only then are its verdicts on
    /// other members taken at their word (see `apply`).
    alive: bool,
    /// Most bytes a reply to this sender may take. A datagram's name and source address can be forged, so a
    /// datagram from anyone but a member this list holds at that very address gets no reply larger than
    /// itself: the node is never an amplifier aimed at whoever the address belongs to.
    reply_budget: usize,
}

/// The local protocol instance.
#[derive(Debug)]
pub struct Node<R = SmallRng> {
    config: Config,
    rng: R,
    name: Arc<str>,
    list: Membership,
    awareness: Awareness,
    rtt: RttEstimator,
    schedule: Schedule,
    /// The clock the schedule numbers rounds by, agreed with the members this node probes.
    round_clock: RoundClock,
    probes: Vec<Probe>,
    relays: Vec<Relay>,
    suspicions: Vec<Suspicion>,
    broadcasts: BroadcastQueue,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    next_seq: u32,
    gossip_cursor: usize,
    /// Quick syncs still due after a join.
    catch_up_syncs: usize,
    /// Distinct members whose probes failed since this node's last successful probe.
    recent_failures: Vec<Arc<Identity>>,
    started: bool,
    next_gossip: Time,
    next_sync: Time,
    next_reconnect: Time,
    failed_pool: Vec<Arc<Identity>>,
    reap_failed: VecDeque<Reap>,
    reap_left: VecDeque<Reap>,
    graves: Graves,
    /// News for the sender of the input being handled: what this node knows that the sender's claims show it
    /// does not (a member it holds as failed that left). Sent back at the end of the input.
    corrections: Vec<Update>,
    join: Option<JoinAttempt>,
    leaving: bool,
    /// Another live process holds this node's name: it takes no part, and keeps asking to join until the name
    /// is free (see `apply_to_self`).
    standby: bool,
    /// Claimants of a name recently reported in a conflict, so that each is reported (and passed on) once.
    conflicts: VecDeque<Arc<Identity>>,
    /// Set while handling an input that showed this node's name held by another live process.
    name_taken: bool,
    /// Members this list held as suspect or failed that proved alive, and until when their verdicts on others
    /// are not taken at their word: verdicts they formed while cut off are still in their queues.
    returned: VecDeque<(Arc<str>, Time)>,
    /// When this node may next tell a prober at an unexpected address what its list holds for that name.
    next_conflict_notice: Time,
    /// How far the wall clock is ahead of `now` (behind when negative), in microseconds, as the driver last
    /// said (see [`Node::handle_wall_clock`]).
    wall_offset_us: i64,
}

impl<R: Rng> Node<R> {
    /// A node for `identity` that knows nobody yet. Refuses a configuration that cannot meet its deadlines at
    /// `config.max_members`.
    pub fn new(config: Config, identity: Identity, mut rng: R) -> Result<Self, ConfigError> {
        config.validate(config.max_members)?;
        let name: Arc<str> = Arc::from(identity.name());
        let identity = identity.with_wire_version(config.wire_version);
        let local = Member::new(Arc::new(identity), 0, State::Alive);
        let schedule = Schedule::new(&config, &mut rng);
        let mut node = Node {
            awareness: Awareness::new(config.awareness_max),
            rtt: RttEstimator::default(),
            schedule,
            round_clock: RoundClock::default(),
            list: Membership::new(local.clone()),
            name,
            probes: Vec::new(),
            relays: Vec::new(),
            suspicions: Vec::new(),
            broadcasts: BroadcastQueue::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            next_seq: rng.random(),
            gossip_cursor: rng.random::<u32>() as usize,
            catch_up_syncs: 0,
            recent_failures: Vec::new(),
            started: false,
            next_gossip: Time::ZERO,
            next_sync: Time::ZERO,
            next_reconnect: Time::ZERO,
            failed_pool: Vec::new(),
            reap_failed: VecDeque::new(),
            reap_left: VecDeque::new(),
            graves: Graves::new(config.failed_reap_timeout),
            corrections: Vec::new(),
            join: None,
            leaving: false,
            standby: false,
            conflicts: VecDeque::new(),
            name_taken: false,
            returned: VecDeque::new(),
            next_conflict_notice: Time::ZERO,
            wall_offset_us: 0,
            config,
            rng,
        };
        node.events.push_back(Event::Changed(Change {
            kind: ChangeKind::Join,
            member: local,
            previous: None,
            via: Via::Local,
            from: None,
        }));
        Ok(node)
    }

    /// Starts at incarnation `incarnation` (a restart from a snapshot passes the old incarnation plus one).
    pub fn with_incarnation(mut self, incarnation: u32) -> Self {
        let local = Member {
            incarnation,
            ..self.list.local().clone()
        };
        self.list.set_local(local);
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node's own entry.
    pub fn local(&self) -> &Member {
        self.list.local()
    }

    /// Every member of the list, the local node first.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &Member> {
        self.list.iter()
    }

    /// The entry for `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.list.get(name)
    }

    /// Members alive or suspect, the local node included.
    pub fn active_count(&self) -> usize {
        self.list.active_count()
    }

    /// Local health (Lifeguard): 0 is healthy, `awareness_max` is the worst.
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    /// The smoothed round trip of direct probes, once one was measured.
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.rtt.smoothed()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether this node's own probes of more distinct members than may crash at once failed in a row, so
    /// that the trouble is most likely here: its packets are not getting out, or not coming back.
    pub fn is_isolated(&self) -> bool {
        self.isolated()
    }

    /// How far the clock this node numbers its probe rounds by (agreed with its peers) is ahead of `now`.
    pub fn round_clock_offset(&self) -> Duration {
        let now = Time::from_unix_ms(0) + Duration::from_secs(1 << 40);
        self.round_clock.read(now) - now
    }

    /// How far behind `now` the round clock is, when it is (the other half of [`Node::round_clock_offset`]).
    pub fn round_clock_lag(&self) -> Duration {
        let now = Time::from_unix_ms(0) + Duration::from_secs(1 << 40);
        now - self.round_clock.read(now)
    }

    /// How much this node holds, by part.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            members: self.list.len(),
            broadcasts: self.broadcasts.len(),
            suspicions: self.suspicions.len(),
            probes: self.probes.len(),
            relays: self.relays.len(),
            reconnect_pool: self.failed_pool.len(),
            reaps: self.reap_failed.len() + self.reap_left.len(),
            graves: self.graves.len(),
        }
    }

    /// Whether another live process holds this node's name, so that this node takes no part: it waits on
    /// standby, asking to join now and then, and takes the name once it is free.
    pub fn is_standby(&self) -> bool {
        self.standby
    }

    /// The wall clock moved against `now` (NTP stepped or slewed it; `now` itself never steps): it reads `wall`
    /// at `now`. A new instance this node has to become takes its `joined_at` from the wall clock; probe rounds
    /// follow the round clock members agree on among themselves (see `round_clock`), whatever the wall clock
    /// says. A driver whose `now` is the wall clock never needs to call this.
    pub fn handle_wall_clock(&mut self, now: Time, wall: Time) {
        self.start(now);
        let offset = i64::try_from(wall.as_micros())
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(now.as_micros()).unwrap_or(i64::MAX));
        // Reading two clocks one after the other differs by microseconds: only a real move counts.
        if offset.abs_diff(self.wall_offset_us) >= WALL_CLOCK_MOVE_US {
            self.wall_offset_us = offset;
        }
    }

    /// What the wall clock reads at `now`, as far as this node knows.
    fn wall_clock(&self, now: Time) -> Time {
        Time::from_unix_micros(now.as_micros().saturating_add_signed(self.wall_offset_us))
    }

    /// Whether this node takes part in probing, gossip and syncs.
    fn participating(&self) -> bool {
        !self.leaving && !self.standby
    }

    /// Joins through `seeds` (any one is enough), retrying with backoff until one answers or `join_timeout`.
    pub fn join(&mut self, now: Time, seeds: &[SocketAddr]) {
        self.start(now);
        let own = self.list.local().identity.addr();
        let seeds: Vec<SocketAddr> = seeds.iter().copied().filter(|s| *s != own).collect();
        if seeds.is_empty() || !self.participating() {
            return;
        }
        let interval = self.config.join_retry;
        self.join = Some(JoinAttempt {
            seeds,
            started: now,
            next_retry: now,
            interval,
            attempts: 0,
            standby: false,
        });
        self.retry_join(now);
    }

    fn retry_join(&mut self, now: Time) {
        let Some(join) = &mut self.join else { return };
        if !join.standby
            && join.attempts > 0
            && now.saturating_since(join.started) >= self.config.join_timeout
        {
            let attempts = join.attempts;
            self.join = None;
            self.events.push_back(Event::JoinFailed { attempts });
            return;
        }
        join.attempts += 1;
        join.next_retry = now + join.interval;
        if !join.standby {
            join.interval = (join.interval * 2).min(self.config.join_retry_max);
        } else {
            // From standby, ask whoever the list knows to be alive now: the holder may be gone.
            let standby_seeds = join.seeds.len();
            let known: Vec<SocketAddr> = self
                .random_members(3, None, true)
                .iter()
                .map(|id| id.addr())
                .collect();
            if let Some(join) = &mut self.join {
                join.seeds.truncate(standby_seeds.min(3));
                join.seeds.extend(known);
                join.seeds.sort_unstable();
                join.seeds.dedup();
            }
        }
        let Some(join) = &self.join else { return };
        let request = Message::SyncRequest {
            digest: self.list.digest(),
            join: true,
            members: vec![self.list.local().clone()],
        };
        // A seed's wire version is not known before it answers: ask in the oldest one spoken.
        let bytes = codec::encode_packet_at(codec::OLDEST_VERSION, &self.name, &[request]);
        for seed in &join.seeds {
            self.transmits.push_back(Transmit {
                to: *seed,
                transport: Transport::Stream,
                bytes: bytes.clone(),
            });
        }
    }

    /// Adopts `members` as already known, without events or broadcasts: for a driver that starts a cluster in a
    /// converged state.
    pub fn adopt_members(&mut self, now: Time, members: impl IntoIterator<Item = Member>) {
        self.start(now);
        let members = members.into_iter();
        self.list.reserve_exact(members.size_hint().0);
        for member in members {
            if member.name() == &*self.name {
                continue;
            }
            let active = member.state.is_active();
            let applied = self.list.apply(member.clone());
            if !active && let Applied::Changed { .. } = applied {
                let current = self.list.get(member.name()).cloned().expect("just applied");
                self.track_inactive(now, &current);
            }
        }
    }

    /// Leaves: marks itself left, tells the others, stops probing.
    pub fn leave(&mut self, now: Time) {
        self.start(now);
        if self.leaving {
            return;
        }
        self.leaving = true;
        self.join = None;
        self.probes.clear();
        let current = self.list.local();
        let local = Member {
            incarnation: current.incarnation.saturating_add(1),
            state: State::Left,
            ..current.clone()
        };
        self.publish_local(local, ChangeKind::Leave, None);
        self.next_gossip = now;
    }

    /// Whether the news of this node's leave has gone out enough that the driver may stop.
    pub fn leave_announced(&self) -> bool {
        // The node itself left the ring when it left, so every active member is someone to tell.
        let others = self.list.active_count();
        self.leaving
            && (others == 0
                || self
                    .broadcasts
                    .transmits(&self.name)
                    .is_none_or(|sent| sent as usize >= others.min(3)))
    }

    /// Changes this node's metadata and tells the others.
    pub fn set_meta(&mut self, now: Time, meta: Meta) -> Result<(), IdentityError> {
        self.start(now);
        let current = self.list.local();
        let identity = Arc::new(current.identity.with_meta(meta)?);
        let local = match current.incarnation.checked_add(1) {
            Some(incarnation) => Member::new(identity, incarnation, current.state),
            None => {
                let successor = self.successor_instance(now, current.identity.joined_at_ms());
                let identity = successor.identity.with_meta(identity.meta().clone())?;
                Member::new(Arc::new(identity), 0, successor.state)
            }
        };
        self.publish_local(local, ChangeKind::Update, None);
        Ok(())
    }

    /// A datagram arrived from `from`.
    pub fn handle_packet(
        &mut self,
        now: Time,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DecodeError> {
        self.start(now);
        let packet = codec::decode_packet_upto(bytes, self.config.wire_version)
            .inspect_err(|_| self.stats.undecodable += 1)?;
        // Acks and nacks are matched by sequence number; only pings, ping-reqs and news need the sender's entry,
        // and in a large list that lookup is the costliest part of handling an ack.
        let identify = packet
            .messages
            .iter()
            .any(|m| !matches!(m, Message::Ack { .. } | Message::Nack { .. }));
        let Some(sender) = self.sender(now, packet.sender, from, identify, Some(bytes.len()))
        else {
            return Ok(());
        };
        for message in packet.messages {
            match message {
                Message::Ping {
                    seq,
                    target,
                    round_clock,
                } => {
                    if *target == *self.name {
                        if let Some(stamp) = round_clock {
                            // The prober's round clock, one way: half the usual round trip late.
                            let trip = self.rtt.smoothed().unwrap_or(self.config.max_rtt);
                            self.sample_round_clock(now, stamp, trip);
                        }
                        // A prober this list knows at another address is a second live process with a taken
                        // name (or a member behind NAT), and one it holds as failed is back (a long pause, a
                        // partition healed): tell it what the list holds, which settles a conflict at once and
                        // lets a member that is alive after all refute now rather than at the next sync. A
                        // datagram's source can be forged, so for a prober this list does not hold at that address
                        // the record goes over a stream (whose handshake reaches nothing that does not answer), at
                        // most once per probe interval; a member at its own address gets it with the ack.
                        let moved = sender.identity.as_ref().is_some_and(|id| id.addr() != from);
                        let record = match self.list.get(&sender.name) {
                            Some(m) => (moved || m.state == State::Failed).then(|| m.clone()),
                            // Failed and reaped here: the grave is what this list holds of it.
                            None => self
                                .graves
                                .get(&sender.name)
                                .filter(|g| g.state == State::Failed)
                                .map(|g| g.claim()),
                        }
                        .map(|member| Update {
                            member,
                            accuser: None,
                        });
                        let ack = self.ack_for(now, &sender, seq);
                        match record {
                            Some(record) if sender.reply_budget != usize::MAX => {
                                if now >= self.next_conflict_notice {
                                    self.send_stream(
                                        from,
                                        sender.identity.clone(),
                                        Message::Update(record),
                                    );
                                    self.next_conflict_notice = now + self.config.probe_interval;
                                }
                                self.reply(&sender, &[ack], None);
                            }
                            record => self.reply(&sender, &[ack], record.as_ref()),
                        }
                    } else {
                        self.stats.misdirected += 1;
                    }
                }
                Message::Ack { seq, round_clock } => {
                    self.on_ack(now, seq, &sender, false, round_clock)
                }
                Message::Nack { seq } => {
                    if let Some(probe) = self.probes.iter_mut().find(|p| p.seq == seq) {
                        probe.nacks += 1;
                    }
                }
                Message::PingReq { seq, target, addr } => {
                    self.relay(now, &sender, seq, target, addr)
                }
                Message::Update(update) => self.apply(
                    now,
                    update.member,
                    update.accuser,
                    Via::Gossip,
                    &sender,
                    false,
                ),
                Message::Conflict { holder, claimant } => self.note_conflict(holder, claimant),
                Message::SyncRequest { .. }
                | Message::SyncResponse { .. }
                | Message::SyncPush { .. } => {
                    // A whole list belongs on a stream; a datagram claiming to carry one is not ours.
                    self.stats.misdirected += 1;
                }
            }
        }
        for correction in std::mem::take(&mut self.corrections) {
            self.reply(&sender, &[], Some(&correction));
        }
        Ok(())
    }

    /// A stream message arrived from `from`; the returned bytes, if any, go back on the same stream.
    pub fn handle_stream(
        &mut self,
        now: Time,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        self.start(now);
        let packet = codec::decode_packet_upto(bytes, self.config.wire_version)
            .inspect_err(|_| self.stats.undecodable += 1)?;
        // The answer goes back in the version the question came in.
        let version = packet.version;
        if *packet.sender == *self.name {
            // Another process calls itself by this node's name. Asking to join, it is told the name is taken;
            // holding the name, it says so in its answer to this node's own request.
            let other = Sender {
                name: Arc::clone(&self.name),
                addr: from,
                identity: None,
                alive: false,
                reply_budget: usize::MAX,
            };
            for message in &packet.messages {
                if let Message::SyncResponse { members, .. } = message {
                    self.name_taken = false;
                    for claim in members {
                        self.apply(now, claim.clone(), None, Via::Sync, &other, true);
                    }
                }
            }
            let refusal = packet.messages.iter().find_map(|m| match m {
                Message::SyncRequest {
                    join: true,
                    members,
                    ..
                } => self.refused_join(members),
                _ => None,
            });
            return Ok(refusal.map(|holder| {
                let answer = self.refusal(holder);
                codec::encode_packet_at(version, &self.name, &[answer])
            }));
        }
        let Some(mut sender) = self.sender(now, packet.sender, from, true, None) else {
            return Ok(None);
        };
        let mut reply = Vec::new();
        for message in packet.messages {
            match message {
                Message::Ping { seq, target, .. } if *target == *self.name => {
                    reply.push(Message::Ack {
                        seq,
                        round_clock: None,
                    })
                }
                Message::Ack { seq, .. } => self.on_ack(now, seq, &sender, true, None),
                Message::Update(update) => self.apply(
                    now,
                    update.member,
                    update.accuser,
                    Via::Gossip,
                    &sender,
                    false,
                ),
                Message::SyncRequest {
                    digest,
                    join,
                    members,
                } => {
                    if join && let Some(holder) = self.refused_join(&members) {
                        // The joiner learns who holds its name, and whom to ask again; nothing else.
                        let refusal = self.refusal(holder);
                        reply.push(refusal);
                        continue;
                    }
                    self.merge(now, members, &mut sender);
                    // Matching digests mean matching lists: answer with the digest alone.
                    let mut chunks = if join || digest != self.list.digest() {
                        self.list_in_chunks()
                    } else {
                        vec![Vec::new()]
                    };
                    let rest = chunks.split_off(1);
                    reply.push(Message::SyncResponse {
                        digest: self.list.digest(),
                        members: chunks.pop().unwrap_or_default(),
                    });
                    // A list too large for one frame goes on in pushes, each a frame of its own.
                    let to = sender.identity.as_ref().map_or(from, |id| id.addr());
                    for chunk in rest {
                        self.send_stream(
                            to,
                            sender.identity.clone(),
                            Message::SyncPush { members: chunk },
                        );
                    }
                }
                Message::SyncResponse { digest, members } => {
                    let full = !members.is_empty();
                    self.name_taken = false;
                    if self.standby {
                        // What a node on standby held is stale (nobody told it of changes): it takes the
                        // answer's view whole, a few members to ask again or the seed's whole list.
                        self.forget_members();
                    }
                    self.merge(now, members, &mut sender);
                    // A seed answered, and this node's name is not held by another live process there.
                    if self.join.is_some() && !self.name_taken {
                        self.join = None;
                        self.standby = false;
                        let through = sender
                            .identity
                            .clone()
                            .unwrap_or_else(|| self.list.local().identity.clone());
                        self.events.push_back(Event::Joined { through });
                        // News that was still spreading while the seed answered (another member joining at
                        // the same moment, say) may have retired before reaching this node: catch up with a
                        // few quick syncs with other members, cheap when the digests already match.
                        self.catch_up_syncs = CATCH_UP_SYNCS.len();
                        self.next_sync = now + CATCH_UP_SYNCS[0];
                    }
                    if full && digest != self.list.digest() && self.participating() {
                        for chunk in self.list_in_chunks() {
                            self.send_stream(
                                from,
                                sender.identity.clone(),
                                Message::SyncPush { members: chunk },
                            );
                        }
                    }
                }
                Message::SyncPush { members } => self.merge(now, members, &mut sender),
                Message::Conflict { holder, claimant } => self.note_conflict(holder, claimant),
                Message::Ping { .. } | Message::Nack { .. } | Message::PingReq { .. } => {
                    self.stats.misdirected += 1
                }
            }
        }
        reply.extend(self.corrections.drain(..).map(Message::Update));
        Ok((!reply.is_empty()).then(|| codec::encode_packet_at(version, &self.name, &reply)))
    }

    /// The whole list, cut into parts that each fit a stream frame with room to spare.
    fn list_in_chunks(&self) -> Vec<Vec<Member>> {
        let mut chunks = vec![Vec::new()];
        let mut bytes = 0;
        for member in self.list.iter() {
            let len = codec::member_len(member);
            if bytes + len > MAX_SYNC_CHUNK_BYTES && !chunks.last().is_some_and(Vec::is_empty) {
                chunks.push(Vec::new());
                bytes = 0;
            }
            bytes += len;
            chunks
                .last_mut()
                .expect("one chunk at least")
                .push(member.clone());
        }
        chunks
    }

    /// Time has passed; call at or after [`Node::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Time) {
        self.start(now);
        self.expire_suspicions(now);
        self.advance_probes(now);
        self.expire_relays(now);
        if self.participating() {
            self.probe_if_due(now);
            if now >= self.next_sync {
                self.anti_entropy(now);
            }
            if now >= self.next_reconnect {
                self.reconnect(now);
            }
        }
        if !self.broadcasts.is_empty() && now >= self.next_gossip && !self.standby {
            self.gossip(now);
        }
        if self.join.as_ref().is_some_and(|j| now >= j.next_retry) {
            self.retry_join(now);
        }
        self.reap(now);
    }

    /// When the node next needs [`Node::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Time> {
        if !self.started {
            return None;
        }
        let mut next: Option<Time> = None;
        let mut consider = |t: Time| next = Some(next.map_or(t, |n: Time| n.min(t)));
        if self.participating() {
            if let Some(at) = self.schedule.next_time(&self.list) {
                consider(at);
            }
            if !self.list.is_alone() {
                consider(self.next_sync);
            }
            if !self.failed_pool.is_empty() || self.graves.len() > 0 {
                consider(self.next_reconnect);
            }
        }
        self.probes.iter().for_each(|p| consider(p.next_deadline()));
        for relay in &self.relays {
            consider(relay.nack_at.unwrap_or(relay.expires).min(relay.expires));
        }
        self.suspicions.iter().for_each(|s| consider(s.deadline()));
        if !self.broadcasts.is_empty() && !self.standby {
            consider(self.next_gossip);
        }
        if let Some(join) = &self.join {
            consider(join.next_retry);
        }
        if let Some(reap) = self.reap_failed.front() {
            consider(reap.at);
        }
        if let Some(reap) = self.reap_left.front() {
            consider(reap.at);
        }
        next
    }

    /// The next thing to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing to report.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

impl<R: Rng> Node<R> {
    /// Sets the timers on the first input, when `now` is first known.
    fn start(&mut self, now: Time) {
        if self.started {
            return;
        }
        self.started = true;
        self.schedule.start(now);
        self.next_gossip = now;
        self.next_sync = now + self.jittered(self.config.sync_interval_for(1));
        self.next_reconnect = now + self.jittered(self.config.reconnect_interval);
    }

    /// A duration drawn uniformly from [d/2, 3d/2), so that members' periodic work does not run in lockstep.
    fn jittered(&mut self, d: Duration) -> Duration {
        d.mul_f64(0.5 + self.rng.random::<f64>())
    }

    fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    /// This node as the source of a claim it makes itself (a failed probe, a suspicion that timed out).
    fn as_sender(&self) -> Sender {
        Sender {
            name: Arc::clone(&self.name),
            addr: self.list.local().identity.addr(),
            identity: None,
            alive: true,
            reply_budget: usize::MAX,
        }
    }

    /// Identifies a packet's sender; `None` for a packet that claims to come from this node's own name.
    /// `received` is the size of a datagram, `None` for a stream (whose peer address a handshake proved).
    fn sender(
        &mut self,
        now: Time,
        name: Arc<str>,
        addr: SocketAddr,
        identify: bool,
        received: Option<usize>,
    ) -> Option<Sender> {
        if *name == *self.name {
            self.stats.misdirected += 1;
            return None;
        }
        while self
            .returned
            .front()
            .is_some_and(|(_, until)| *until <= now)
        {
            self.returned.pop_front();
        }
        let entry = identify.then(|| self.list.get(&name)).flatten();
        let alive = entry.is_some_and(|m| m.state == State::Alive)
            && !self.returned.iter().any(|(n, _)| *n == name);
        let identity = entry.map(|m| Arc::clone(&m.identity));
        let known_here = identity.as_ref().is_some_and(|id| id.addr() == addr);
        let reply_budget = match received {
            Some(len) if !known_here => len,
            _ => usize::MAX,
        };
        Some(Sender {
            name,
            addr,
            identity,
            alive,
            reply_budget,
        })
    }

    /// Sends `messages` back to the sender of the packet being handled, within its reply budget: news fills
    /// only what the budget leaves, `priority` goes only if it fits, and a reply that cannot fit is not sent.
    fn reply(&mut self, sender: &Sender, messages: &[Message], priority: Option<&Update>) {
        self.send_within(
            sender.addr,
            sender.identity.clone(),
            messages,
            priority,
            sender.reply_budget,
        );
    }

    /// Sends `messages` to `to` in one datagram, with `priority` next and queued updates filling the rest.
    fn send(
        &mut self,
        to: SocketAddr,
        receiver: Option<Arc<Identity>>,
        messages: &[Message],
        priority: Option<&Update>,
    ) {
        self.send_within(to, receiver, messages, priority, usize::MAX);
    }

    /// [`Node::send`] in at most `budget` bytes (and the MTU).
    fn send_within(
        &mut self,
        to: SocketAddr,
        receiver: Option<Arc<Identity>>,
        messages: &[Message],
        priority: Option<&Update>,
        budget: usize,
    ) {
        let version = self.version_for(receiver.as_deref());
        let mut buf = Vec::with_capacity(64);
        codec::encode_header(&mut buf, version, &self.name);
        let header = buf.len();
        for message in messages.iter().filter(|m| m.since_version() <= version) {
            codec::encode_message(&mut buf, message);
        }
        if buf.len() > budget {
            return;
        }
        let mut priority = priority;
        if let Some(update) = priority {
            let before = buf.len();
            codec::encode_update(&mut buf, update);
            if buf.len() > budget {
                if messages.is_empty() {
                    // The update was all there was to say.
                    return;
                }
                buf.truncate(before);
                priority = None;
            }
        }
        let members = self.list.active_count();
        let limits = (
            self.config.retransmit_limit(members, false),
            self.config.retransmit_limit(members, true),
        );
        let mut retired = Vec::new();
        let skip = priority.map(|u| u.member.name());
        self.broadcasts.fill(
            &mut buf,
            self.config.mtu.min(budget),
            limits,
            receiver.as_ref(),
            version,
            skip,
            &mut retired,
        );
        self.report_retired(retired);
        if buf.len() == header {
            // Nothing this receiver's version can read.
            return;
        }
        self.transmits.push_back(Transmit {
            to,
            transport: Transport::Udp,
            bytes: buf,
        });
    }

    /// The wire version to speak to `receiver`: the newest both speak, or the oldest to someone unknown.
    fn version_for(&self, receiver: Option<&Identity>) -> u8 {
        receiver
            .map_or(codec::OLDEST_VERSION, Identity::wire_version)
            .clamp(codec::OLDEST_VERSION, self.config.wire_version)
    }

    fn send_stream(&mut self, to: SocketAddr, receiver: Option<Arc<Identity>>, message: Message) {
        let version = self.version_for(receiver.as_deref());
        let bytes = codec::encode_packet_at(version, &self.name, &[message]);
        self.transmits.push_back(Transmit {
            to,
            transport: Transport::Stream,
            bytes,
        });
    }

    fn report_retired(&mut self, retired: Vec<RetiredFailure>) {
        for RetiredFailure { member, to } in retired {
            self.events.push_back(Event::FailureSent { member, to });
        }
    }

    /// Queues news to gossip.
    fn enqueue(&mut self, update: Update, priority: Priority) {
        if let Some(retired) = self.broadcasts.push(&update, priority) {
            self.report_retired(vec![retired]);
        }
    }

    fn push_change(
        &mut self,
        kind: ChangeKind,
        member: Member,
        previous: Option<Member>,
        via: Via,
        from: Option<Arc<Identity>>,
    ) {
        self.events.push_back(Event::Changed(Change {
            kind,
            member,
            previous,
            via,
            from,
        }));
    }

    // -----------------------------------------------------------------------------------------------------------
    // Probing

    fn probe_if_due(&mut self, now: Time) {
        if self
            .schedule
            .next_time(&self.list)
            .is_none_or(|at| at > now)
        {
            return;
        }
        let Some((_, target)) = self.schedule.next(&self.list) else {
            return;
        };
        let target = target.clone();
        self.schedule.advance(now, &self.list, &mut self.rng);
        let seq = self.next_seq();
        // The buddy system: a suspect hears of its suspicion from whoever probes it, and can refute at once.
        let buddy = (target.state == State::Suspect).then(|| Update {
            member: target.clone(),
            accuser: Some(Arc::clone(&self.name)),
        });
        let ping = self.ping_for(now, &target.identity, seq);
        self.send(
            target.identity.addr(),
            Some(Arc::clone(&target.identity)),
            &[ping],
            buddy.as_ref(),
        );
        let base = self.rtt.timeout(&self.config);
        let timeout = self
            .awareness
            .scale(base, self.config.probe_timeout_ceiling());
        // Ping-req needs a helper's own timeout plus a round trip on each leg; on a fast network the verdict
        // comes well before the period ends, which is time a suspicion can use.
        let window = (timeout + base * 2 + self.config.max_rtt).min(self.config.probe_interval);
        self.probes.push(Probe {
            seq,
            target: target.identity,
            started: now,
            direct_deadline: now + timeout,
            deadline: now + window,
            helpers: None,
            nacks: 0,
        });
        self.stats.probes += 1;
    }

    /// The ack to a ping from `sender`: with this node's round clock to a member that reads it.
    fn ack_for(&self, now: Time, sender: &Sender, seq: u32) -> Message {
        let reads = self.version_for(sender.identity.as_deref()) >= 2;
        Message::Ack {
            seq,
            round_clock: reads.then(|| self.round_clock.stamp(now)),
        }
    }

    /// A ping of `target`: with this node's round clock to a member that reads it.
    fn ping_for(&self, now: Time, target: &Identity, seq: u32) -> Message {
        let reads = self.version_for(Some(target)) >= 2;
        Message::Ping {
            seq,
            target: Arc::from(target.name()),
            round_clock: reads.then(|| self.round_clock.stamp(now)),
        }
    }

    /// Another member's round clock read `stamp` about `trip / 2` ago: moves this node's round clock
    /// towards it once enough samples are in.
    fn sample_round_clock(&mut self, now: Time, stamp: u32, trip: Duration) {
        if let Some(adjust) = self
            .round_clock
            .sample(now, stamp, trip, self.config.probe_interval)
        {
            self.schedule.set_round_offset(now, adjust);
        }
    }

    fn on_ack(
        &mut self,
        now: Time,
        seq: u32,
        sender: &Sender,
        over_stream: bool,
        round_clock: Option<u32>,
    ) {
        if let Some(at) = self.relays.iter().position(|r| r.seq == seq) {
            let relay = self.relays.swap_remove(at);
            self.send(
                relay.requester,
                None,
                &[Message::Ack {
                    seq: relay.requester_seq,
                    round_clock: None,
                }],
                None,
            );
            return;
        }
        let Some(at) = self.probes.iter().position(|p| p.seq == seq) else {
            return;
        };
        let probe = self.probes.swap_remove(at);
        let outcome = if over_stream {
            ProbeOutcome::AckedOverStream
        } else if *sender.name == *probe.target.name() {
            let rtt = now.saturating_since(probe.started);
            self.rtt.sample(rtt);
            if let Some(stamp) = round_clock {
                self.sample_round_clock(now, stamp, rtt);
            }
            ProbeOutcome::Acked { rtt }
        } else {
            ProbeOutcome::AckedIndirectly
        };
        self.awareness.apply(-1);
        if self.isolated() {
            self.rejoin_conversation(now);
        }
        self.recent_failures.clear();
        self.events.push_back(Event::Probed {
            target: probe.target,
            outcome,
        });
    }

    fn advance_probes(&mut self, now: Time) {
        let mut at = 0;
        while at < self.probes.len() {
            let probe = &self.probes[at];
            if probe.helpers.is_none() && now >= probe.direct_deadline {
                self.ask_helpers(at);
                at += 1;
            } else if probe.helpers.is_some() && now >= probe.deadline {
                let probe = self.probes.swap_remove(at);
                self.probe_failed(now, probe);
            } else {
                at += 1;
            }
        }
    }

    /// The direct ping went unanswered: ask `k` helpers to try, and try over a stream ourselves.
    fn ask_helpers(&mut self, at: usize) {
        let (seq, target) = (self.probes[at].seq, Arc::clone(&self.probes[at].target));
        let helpers = self.random_members(self.config.indirect_checks, Some(target.name()), true);
        self.probes[at].helpers = Some(helpers.len());
        let request = Message::PingReq {
            seq,
            target: Arc::from(target.name()),
            addr: target.addr(),
        };
        for helper in helpers {
            self.send(
                helper.addr(),
                Some(Arc::clone(&helper)),
                std::slice::from_ref(&request),
                None,
            );
        }
        if self.config.stream_fallback {
            self.send_stream(
                target.addr(),
                Some(Arc::clone(&target)),
                Message::Ping {
                    seq,
                    target: Arc::from(target.name()),
                    round_clock: None,
                },
            );
        }
    }

    fn probe_failed(&mut self, now: Time, probe: Probe) {
        self.stats.probe_failures += 1;
        if !self
            .recent_failures
            .iter()
            .any(|f| f.same_instance(&probe.target))
        {
            self.recent_failures.push(Arc::clone(&probe.target));
        }
        // Lifeguard: helpers that did not even nack suggest the trouble is here, not at the target.
        let helpers = probe.helpers.unwrap_or(0);
        let delta = if helpers > 0 {
            helpers.saturating_sub(probe.nacks)
        } else {
            1
        };
        self.awareness
            .apply(i32::try_from(delta).unwrap_or(i32::MAX));
        self.events.push_back(Event::Probed {
            target: Arc::clone(&probe.target),
            outcome: ProbeOutcome::Failed,
        });
        let Some(current) = self.list.get(probe.target.name()).cloned() else {
            return;
        };
        if !current.identity.same_instance(&probe.target) || !current.state.is_active() {
            return;
        }
        let claim = Member {
            state: State::Suspect,
            ..current
        };
        let via = if helpers > 0 {
            Via::IndirectProbe
        } else {
            Via::Probe
        };
        let me = self.as_sender();
        self.apply(
            now,
            claim.clone(),
            Some(Arc::clone(&self.name)),
            via,
            &me,
            false,
        );
        // Tell the suspect directly, so that it can refute before the suspicion runs out.
        let update = Update {
            member: claim,
            accuser: Some(Arc::clone(&self.name)),
        };
        self.send(probe.target.addr(), Some(probe.target), &[], Some(&update));
        for to in self.verdict_recipients(&update.member, probe.started) {
            self.send(to.addr(), Some(to), &[], Some(&update));
        }
    }

    /// Who should hear this node's own failed probe of `suspect` directly rather than by gossip. Confirmations
    /// are what shrink a suspicion timer, and gossip takes log N rounds to carry them to the members that run
    /// one; so the accusers this node knows get its verdict straight away. A first accuser has none yet: it
    /// tells the members due to probe the suspect in the next rounds, whose own verdicts then come straight
    /// back to it.
    fn verdict_recipients(&self, suspect: &Member, probe_started: Time) -> Vec<Arc<Identity>> {
        let others: Vec<Arc<Identity>> = self
            .suspicions
            .iter()
            .find(|s| {
                s.member.same_instance(&suspect.identity) && s.incarnation == suspect.incarnation
            })
            .into_iter()
            .flat_map(|s| s.accusers())
            .filter(|name| ***name != *self.name)
            .filter_map(|name| self.list.get(name))
            .filter(|m| m.state.is_active())
            .map(|m| Arc::clone(&m.identity))
            .collect();
        if !others.is_empty() {
            return others;
        }
        self.schedule
            .next_probers(
                &self.list,
                &suspect.identity,
                probe_started,
                self.config.suspicion_confirmations,
            )
            .into_iter()
            .map(|m| Arc::clone(&m.identity))
            .collect()
    }

    fn relay(&mut self, now: Time, sender: &Sender, seq: u32, target: Arc<str>, addr: SocketAddr) {
        if *target == *self.name {
            let ack = self.ack_for(now, sender, seq);
            self.reply(sender, &[ack], None);
            return;
        }
        // Only a member this list holds at the address it sends from may have a ping relayed, and only to a
        // member this list holds at the address named: otherwise a forged ping-req would aim this node's pings
        // at any address.
        if sender.reply_budget != usize::MAX {
            self.stats.misdirected += 1;
            return;
        }
        let receiver = self
            .list
            .get(&target)
            .map(|m| Arc::clone(&m.identity))
            .filter(|id| id.addr() == addr);
        if receiver.is_none() || self.relays.len() >= self.config.max_pending_relays {
            self.reply(sender, &[Message::Nack { seq }], None);
            return;
        }
        let own_seq = self.next_seq();
        self.send(
            addr,
            receiver,
            &[Message::Ping {
                seq: own_seq,
                target,
                round_clock: None,
            }],
            None,
        );
        let timeout = self.rtt.timeout(&self.config);
        self.relays.push(Relay {
            seq: own_seq,
            requester: sender.addr,
            requester_seq: seq,
            nack_at: Some(now + timeout),
            expires: now + self.config.probe_interval,
        });
    }

    fn expire_relays(&mut self, now: Time) {
        let mut nacks = Vec::new();
        self.relays.retain_mut(|relay| {
            if relay.nack_at.is_some_and(|at| now >= at) {
                relay.nack_at = None;
                nacks.push((relay.requester, relay.requester_seq));
            }
            now < relay.expires
        });
        for (requester, seq) in nacks {
            self.send(requester, None, &[Message::Nack { seq }], None);
        }
    }

    /// Up to `k` random active members other than this node and `exclude`, alive ones only if `alive_only`.
    fn random_members(
        &mut self,
        k: usize,
        exclude: Option<&str>,
        alive_only: bool,
    ) -> Vec<Arc<Identity>> {
        let eligible = |m: &Member| {
            m.name() != &*self.name
                && Some(m.name()) != exclude
                && (!alive_only || m.state == State::Alive)
        };
        let len = self.list.active_count();
        let mut chosen: Vec<Arc<Identity>> = Vec::with_capacity(k);
        if len <= 4 * k + 8 {
            let mut all: Vec<Arc<Identity>> = (0..len)
                .filter_map(|at| self.list.ring_member(at))
                .filter(|m| eligible(m))
                .map(|m| Arc::clone(&m.identity))
                .collect();
            all.shuffle(&mut self.rng);
            all.truncate(k);
            return all;
        }
        for _ in 0..8 * k {
            if chosen.len() == k {
                break;
            }
            let at = self.rng.random_range(0..len);
            let Some(member) = self.list.ring_member(at) else {
                break;
            };
            if eligible(member) && !chosen.iter().any(|c| c.name() == member.name()) {
                chosen.push(Arc::clone(&member.identity));
            }
        }
        chosen
    }

    // -----------------------------------------------------------------------------------------------------------
    // Claims, suspicion and refutation

    /// Applies a claim heard `via` some path from `sender`. `from_sync` claims come from a full list: a failure
    /// claim about a member this node holds as active is taken as a suspicion only, so that after a partition
    /// the two sides' verdicts on each other do not stick before their subjects can refute them.
    fn apply(
        &mut self,
        now: Time,
        mut claim: Member,
        accuser: Option<Arc<str>>,
        via: Via,
        sender: &Sender,
        from_sync: bool,
    ) {
        if claim.name() == &*self.name {
            self.apply_to_self(now, claim, sender);
            return;
        }
        if self.list.get(claim.name()).is_none() {
            if let Some(grave) = self.graves.holds(&claim) {
                // Old news about a member this list reaped. A peer that still holds as failed a member that
                // left is told so, or it would keep showing it failed until its own reap; and a member that
                // speaks for itself while buried here as failed is told, so that it can refute.
                let same_instance = grave.identity.same_instance(&claim.identity);
                let left_elsewhere = claim.state == State::Failed && grave.state == State::Left;
                let buried_alive = *sender.name == *claim.name() && grave.state == State::Failed;
                if same_instance && (left_elsewhere || buried_alive) {
                    self.corrections.push(Update {
                        member: grave.claim(),
                        accuser: None,
                    });
                }
                return;
            }
            self.graves.remove(claim.name());
        }
        let mut accuser = accuser;
        // A verdict is taken at its word only from a member this list holds as alive, and a failure only of a
        // member this list already suspects. A verdict from a full sync, or from a member this list itself
        // holds as suspect or failed (or that has just come back from either), may be the far side's view of a
        // partition that has just healed; and a failure of a member this list has no doubt about may be too
        // (its sender may not be suspected here yet). Either becomes a second-hand suspicion, which confirms
        // nothing and waits the longest, so that its subject has time to refute it. A real failure is
        // suspected everywhere before anyone declares it, so its notices still land on suspects.
        let held = self
            .list
            .get(claim.name())
            .filter(|m| m.identity.same_instance(&claim.identity))
            .map(|m| m.state);
        let trusted = !from_sync && sender.alive;
        let doubtful = match claim.state {
            State::Failed => !trusted || held == Some(State::Alive),
            State::Suspect => !trusted,
            State::Alive | State::Left => false,
        };
        if doubtful && held.is_some_and(State::is_active) {
            claim.state = State::Suspect;
            accuser = None;
        }
        if claim.state == State::Failed && held == Some(State::Suspect) {
            // No list declares a member failed sooner than `suspicion_min` after it first suspected it, so that
            // a member suspected by mistake has that long everywhere to refute. Another list's verdict still
            // brings this list's own deadline forward to that moment.
            let min = self.config.timers(self.list.active_count()).suspicion_min;
            if let Some(s) = self.suspicions.iter_mut().find(|s| {
                s.member.same_instance(&claim.identity) && s.incarnation == claim.incarnation
            }) && now < s.started() + min
            {
                let at = s.started() + min;
                s.hasten(at);
                return;
            }
        }
        match self.list.apply(claim.clone()) {
            Applied::Unchanged => {
                if claim.state == State::Suspect {
                    self.confirm_suspicion(&claim, accuser);
                }
            }
            Applied::Changed { previous } => {
                let current = self.list.get(claim.name()).cloned().expect("just applied");
                let from = if sender.name == self.name {
                    None
                } else {
                    sender.identity.clone()
                };
                self.after_state_change(now, &current, previous.as_ref());
                if current.state == State::Suspect {
                    self.start_suspicion(now, &current, previous.as_ref(), accuser.clone());
                } else {
                    self.suspicions
                        .retain(|s| s.member.name() != current.name());
                }
                if previous.as_ref().is_some_and(|p| p.state == State::Alive)
                    && current.state != State::Alive
                {
                    // One fewer member can confirm the suspicions already running.
                    let most = self
                        .config
                        .suspicion_confirmations
                        .min(self.list.count(State::Alive).saturating_sub(2));
                    self.suspicions
                        .iter_mut()
                        .for_each(|s| s.limit_expected(most));
                }
                let accuser = if current.state == State::Suspect {
                    accuser
                } else {
                    None
                };
                let kind = change_kind(previous.as_ref(), &current);
                let priority = news_priority(previous.as_ref(), &current, kind);
                // A member this list first hears of from a full sync as failed or left is the sender's old
                // news, not this list's: it takes it in without passing it on (a joiner would otherwise spread
                // a seed's stale verdicts from a partition just healed).
                let learned = from_sync && previous.is_none() && !current.state.is_active();
                if !learned {
                    self.enqueue(
                        Update {
                            member: current.clone(),
                            accuser,
                        },
                        priority,
                    );
                }
                if let Some(kind) = kind {
                    self.push_change(kind, current, previous, via, from);
                }
            }
        }
    }

    /// Bookkeeping that follows a member's new state, whether from news or adopted at start.
    fn after_state_change(&mut self, now: Time, current: &Member, previous: Option<&Member>) {
        self.track_inactive(now, current);
        let same = previous.filter(|p| p.identity.same_instance(&current.identity));
        if current.state == State::Alive
            && same.is_some_and(|p| p.state != State::Alive)
            && self.returned.len() < self.list.len()
        {
            let until = now + self.config.disseminate_deadline;
            self.returned.push_back((Arc::from(current.name()), until));
        }
        let was_active = previous
            .is_some_and(|p| p.state.is_active() && p.identity.same_instance(&current.identity));
        if current.state.is_active() && !was_active {
            self.schedule
                .on_member_active(&current.identity, &mut self.rng);
        }
    }

    fn track_inactive(&mut self, now: Time, current: &Member) {
        let reap = |timeout| Reap {
            at: now + timeout,
            identity: Arc::clone(&current.identity),
            incarnation: current.incarnation,
        };
        match current.state {
            State::Failed => {
                if !self
                    .failed_pool
                    .iter()
                    .any(|id| id.same_instance(&current.identity))
                {
                    self.failed_pool.push(Arc::clone(&current.identity));
                }
                self.reap_failed
                    .push_back(reap(self.config.failed_reap_timeout));
            }
            State::Left => self
                .reap_left
                .push_back(reap(self.config.left_reap_timeout)),
            State::Alive | State::Suspect => {}
        }
        self.compact_reaps();
    }

    fn start_suspicion(
        &mut self,
        now: Time,
        current: &Member,
        previous: Option<&Member>,
        accuser: Option<Arc<str>>,
    ) {
        let already = previous.is_some_and(|p| {
            p.state == State::Suspect
                && p.identity.same_instance(&current.identity)
                && p.incarnation == current.incarnation
        });
        if already {
            return;
        }
        self.suspicions
            .retain(|s| s.member.name() != current.name());
        let timers = self.config.timers(self.list.active_count());
        // Confirmations can only come from alive members other than this node and the accuser.
        let expected = self
            .config
            .suspicion_confirmations
            .min(self.list.count(State::Alive).saturating_sub(2));
        self.suspicions.push(Suspicion::new(
            Arc::clone(&current.identity),
            current.incarnation,
            accuser,
            now,
            Bounds {
                min: timers.suspicion_min,
                max: timers.suspicion_max,
                second_hand: self.config.disseminate_deadline,
            },
            expected,
        ));
        self.stats.suspicions += 1;
    }

    /// Another member suspects a member this node already suspects: count it, and pass the confirmation on.
    fn confirm_suspicion(&mut self, claim: &Member, accuser: Option<Arc<str>>) {
        let Some(accuser) = accuser else { return };
        let Some(suspicion) = self.suspicions.iter_mut().find(|s| {
            s.member.same_instance(&claim.identity) && s.incarnation == claim.incarnation
        }) else {
            return;
        };
        if suspicion.confirm(&accuser) {
            self.enqueue(
                Update {
                    member: claim.clone(),
                    accuser: Some(accuser),
                },
                Priority::Urgent,
            );
        }
    }

    /// Whether this node's own probes of more distinct members than may crash at once have failed in a row:
    /// then the trouble is far more likely here (its packets are not getting out) than at all of them.
    fn isolated(&self) -> bool {
        self.recent_failures.len() > self.config.max_simultaneous_failures as usize
    }

    /// This node was isolated and a probe just got through: what it suspected while nobody could hear it never
    /// reached its subjects. It says so now, to each of them directly and by gossip, and gives them a whole
    /// `suspicion_min` to refute before any of those suspicions can end in a failure.
    fn rejoin_conversation(&mut self, now: Time) {
        let later = now + self.config.timers(self.list.active_count()).suspicion_min;
        let me = Arc::clone(&self.name);
        // Each suspicion goes out as it was raised: this node's own as its own, a second-hand one (taken from a
        // full sync) still second-hand, so that its receivers keep waiting the longest for it.
        let suspects: Vec<Update> = self
            .suspicions
            .iter_mut()
            .filter_map(|s| {
                s.postpone(later);
                let accuser = if s.accusers().any(|a| *a == me) {
                    Some(Arc::clone(&me))
                } else {
                    s.accusers().next().cloned()
                };
                self.list
                    .get(s.member.name())
                    .filter(|m| m.state == State::Suspect)
                    .map(|m| Update {
                        member: m.clone(),
                        accuser,
                    })
            })
            .collect();
        for update in suspects {
            self.enqueue(update.clone(), Priority::Urgent);
            let subject = Arc::clone(&update.member.identity);
            self.send(subject.addr(), Some(subject), &[], Some(&update));
        }
    }

    fn expire_suspicions(&mut self, now: Time) {
        if self.isolated() {
            // An isolated node declares nobody failed: its verdicts would be wrong, and once its packets flow
            // again they would spread. Its suspicions wait, and get a whole `suspicion_min` after it can talk
            // again for their subjects to refute them.
            let later = now + self.config.timers(self.list.active_count()).suspicion_min;
            self.suspicions
                .iter_mut()
                .filter(|s| s.deadline() <= now)
                .for_each(|s| s.postpone(later));
            return;
        }
        while let Some(at) = self.suspicions.iter().position(|s| s.deadline() <= now) {
            let suspicion = self.suspicions.swap_remove(at);
            let Some(current) = self.list.get(suspicion.member.name()).cloned() else {
                continue;
            };
            let still = current.state == State::Suspect
                && current.identity.same_instance(&suspicion.member)
                && current.incarnation == suspicion.incarnation;
            if still {
                let claim = Member {
                    state: State::Failed,
                    ..current
                };
                let me = self.as_sender();
                self.apply(now, claim, None, Via::SuspicionTimeout, &me, false);
            }
        }
    }

    /// A claim about this node's own name.
    fn apply_to_self(&mut self, now: Time, claim: Member, sender: &Sender) {
        let local = self.list.local().clone();
        let (ours, theirs) = (&local.identity, &claim.identity);
        if ours.same_instance(theirs) && ours.addr() == theirs.addr() {
            if self.leaving || self.standby {
                return;
            }
            // Anything but "alive" at our incarnation or above must be refuted; so must an alive claim at an
            // incarnation above ours (news of this instance that this node no longer remembers), or it would
            // stick.
            let refute = if claim.state == State::Alive {
                claim.incarnation > local.incarnation
            } else {
                claim.incarnation >= local.incarnation
            };
            if refute {
                self.refute(now, claim.incarnation, sender);
            }
            return;
        }
        // Another instance of this name. One whose entry is failed or left is gone, and so is one at this very
        // address (no other live process can hold it): a former instance of this member. If the lists rank it
        // above this one, the clock that gave this instance its `joined_at` is behind the old one's (a reboot
        // before the time was synchronised); this instance takes a `joined_at` above it, or it would stay hidden
        // behind its own past.
        let former = !claim.state.is_active() || theirs.addr() == ours.addr();
        if former {
            if theirs.joined_at_ms() >= ours.joined_at_ms() && !self.leaving {
                self.reidentify(now, theirs.joined_at_ms(), sender);
            }
            return;
        }
        // Another live process claims this name from another address: a cloned machine, or a restart at a new
        // address while the old instance still looks alive. A node still joining yields (the name was taken
        // when it came), and so does one the lists rank below the other (a newer `joined_at`, or the same one
        // from a higher address); the other holds the name.
        let yields = self.join.is_some()
            || self.standby
            || (theirs.joined_at_ms(), theirs.addr()) > (ours.joined_at_ms(), ours.addr());
        if yields {
            self.name_taken = true;
            self.step_aside(now, claim);
            return;
        }
        if theirs.joined_at_ms() == ours.joined_at_ms() && claim.incarnation >= local.incarnation {
            // A copy of this very process: outrank it on every list.
            self.refute(now, claim.incarnation, sender);
        }
        let holder = self.list.local().clone();
        self.note_conflict(holder, claim);
    }

    /// Forgets every member but this node, and the bookkeeping about them.
    fn forget_members(&mut self) {
        self.list = Membership::new(self.list.local().clone());
        self.suspicions.clear();
        self.failed_pool.clear();
        self.reap_failed.clear();
        self.reap_left.clear();
    }

    /// Another live process holds this node's name: stop taking part, say so, and ask to join now and then
    /// until the name is free (its holder left or failed), from standby.
    fn step_aside(&mut self, now: Time, holder: Member) {
        if self.standby {
            return;
        }
        self.standby = true;
        self.probes.clear();
        self.suspicions.clear();
        let claimant = self.list.local().clone();
        self.note_conflict(holder.clone(), claimant);
        let mut seeds: Vec<SocketAddr> = self.join.take().map(|j| j.seeds).unwrap_or_default();
        seeds.extend(
            self.random_members(3, None, true)
                .iter()
                .map(|id| id.addr()),
        );
        seeds.push(holder.identity.addr());
        seeds.sort_unstable();
        seeds.dedup();
        let interval = self.config.join_retry_max;
        self.join = Some(JoinAttempt {
            seeds,
            started: now,
            next_retry: now + interval,
            interval,
            attempts: 0,
            standby: true,
        });
    }

    /// Records that `claimant` was refused the name `holder` keeps, once per claimant, and passes the news
    /// on: by gossip, or straight to a few members from standby, where this node gossips no more.
    fn note_conflict(&mut self, holder: Member, claimant: Member) {
        let known = self
            .conflicts
            .iter()
            .any(|c| c.same_instance(&claimant.identity) && c.addr() == claimant.identity.addr());
        if known {
            return;
        }
        if self.conflicts.len() == CONFLICTS_REMEMBERED {
            self.conflicts.pop_front();
        }
        self.conflicts.push_back(Arc::clone(&claimant.identity));
        self.events.push_back(Event::Conflict {
            holder: holder.clone(),
            claimant: claimant.clone(),
        });
        if self.standby {
            let notice = Message::Conflict { holder, claimant };
            for to in self.random_members(3, None, true) {
                self.send(
                    to.addr(),
                    Some(Arc::clone(&to)),
                    std::slice::from_ref(&notice),
                    None,
                );
            }
        } else {
            self.broadcasts.push_conflict(&holder, &claimant);
        }
    }

    /// A join request whose record claims a name this list holds as active at another address is refused:
    /// the name stays with its holder, which is returned (and the conflict recorded).
    fn refused_join(&mut self, records: &[Member]) -> Option<Member> {
        let refused = records.iter().find_map(|claim| {
            let held = self.list.get(claim.name())?;
            let elsewhere = held.state.is_active() && held.identity.addr() != claim.identity.addr();
            elsewhere.then(|| (held.clone(), claim.clone()))
        });
        let (holder, claimant) = refused?;
        self.note_conflict(holder.clone(), claimant);
        Some(holder)
    }

    /// The answer to a refused join: a few live members to ask again later (the holder may be gone by then),
    /// and last the holder of the name.
    fn refusal(&mut self, holder: Member) -> Message {
        let mut members: Vec<Member> = self
            .random_members(3, Some(holder.name()), true)
            .into_iter()
            .filter_map(|id| self.list.get(id.name()).cloned())
            .collect();
        if holder.name() != &*self.name {
            members.push(self.list.local().clone());
        }
        members.push(holder);
        Message::SyncResponse {
            digest: self.list.digest(),
            members,
        }
    }

    /// Raises this node's incarnation above `above` to answer a claim that it is not alive, and tells everyone,
    /// the sender of the claim first.
    fn refute(&mut self, now: Time, above: u32, sender: &Sender) {
        self.stats.refutations += 1;
        self.awareness.apply(1);
        let local = match above.checked_add(1) {
            Some(incarnation) => Member {
                incarnation,
                state: State::Alive,
                ..self.list.local().clone()
            },
            // No incarnation is left above the claim: only a newer `joined_at` outranks it.
            None => self.successor_instance(now, self.list.local().identity.joined_at_ms()),
        };
        let update = self.publish_local(local, ChangeKind::Alive, sender.identity.clone());
        if sender.name != self.name {
            self.reply(sender, &[], Some(&update));
        }
    }

    /// Becomes a new instance of this member, ranked above the instance that joined at `above_ms`, and tells
    /// everyone, the sender of the claim that made it necessary first.
    fn reidentify(&mut self, now: Time, above_ms: u64, sender: &Sender) {
        let local = self.successor_instance(now, above_ms);
        let update = self.publish_local(local, ChangeKind::Join, sender.identity.clone());
        if sender.name != self.name {
            self.reply(sender, &[], Some(&update));
        }
    }

    /// This member as a new instance: same name, address and metadata, incarnation 0, and a `joined_at` that is
    /// this node's wall clock or one millisecond past `above_ms`, whichever is later.
    fn successor_instance(&self, now: Time, above_ms: u64) -> Member {
        let current = self.list.local();
        let joined_at_ms = self
            .wall_clock(now)
            .unix_ms()
            .max(above_ms.saturating_add(1));
        let identity = Identity::new(
            current.name(),
            current.identity.addr(),
            joined_at_ms,
            current.identity.meta().clone(),
        )
        .expect("the name and metadata were checked when this node started");
        Member::new(Arc::new(identity), 0, current.state)
    }

    /// Makes `local` this node's own entry, queues it for everyone (a refutation or a leave urgently) and
    /// reports the change; returns the update as queued.
    fn publish_local(
        &mut self,
        local: Member,
        kind: ChangeKind,
        from: Option<Arc<Identity>>,
    ) -> Update {
        let previous = self.list.set_local(local.clone());
        let update = Update {
            member: local.clone(),
            accuser: None,
        };
        let priority = match kind {
            // This node answers a suspicion (or a failure) of itself, or outranks a former instance.
            ChangeKind::Alive | ChangeKind::Join => Priority::Refutation,
            ChangeKind::Leave => Priority::Urgent,
            _ => Priority::Routine,
        };
        self.enqueue(update.clone(), priority);
        self.push_change(kind, local, Some(previous), Via::Local, from);
        update
    }

    // -----------------------------------------------------------------------------------------------------------
    // Gossip, sync, reconnect, reaping

    /// Sends pending updates to the next `gossip_fanout` members along the ring. Walking the ring rather than
    /// drawing at random means one node's successive sends of an update reach distinct members, so in a small
    /// cluster a single node's retransmissions already cover everyone.
    fn gossip(&mut self, now: Time) {
        self.next_gossip = now + self.config.gossip_interval;
        let len = self.list.active_count();
        let mut sent = 0;
        for _ in 0..len {
            if sent == self.config.gossip_fanout || self.broadcasts.is_empty() {
                break;
            }
            self.gossip_cursor = self.gossip_cursor.wrapping_add(1);
            let Some(target) = self.list.ring_member(self.gossip_cursor) else {
                break;
            };
            if target.name() == &*self.name {
                continue;
            }
            let target = Arc::clone(&target.identity);
            self.send(target.addr(), Some(target), &[], None);
            sent += 1;
        }
    }

    /// Merges a full list from `sender`.
    fn merge(&mut self, now: Time, members: Vec<Member>, sender: &mut Sender) {
        for member in members {
            self.apply(now, member, None, Via::Sync, sender, true);
            if sender.identity.is_none() {
                sender.identity = self.list.get(&sender.name).map(|m| Arc::clone(&m.identity));
            }
        }
    }

    fn anti_entropy(&mut self, now: Time) {
        let members = self.list.active_count();
        self.next_sync = match self.catch_up_syncs.checked_sub(1) {
            Some(left) if left > 0 => {
                self.catch_up_syncs = left;
                now + CATCH_UP_SYNCS[CATCH_UP_SYNCS.len() - left]
            }
            _ => {
                self.catch_up_syncs = 0;
                now + self.jittered(self.config.sync_interval_for(members))
            }
        };
        if let Some(peer) = self.random_members(1, None, true).pop() {
            self.request_sync(peer);
        }
    }

    /// Opens a sync with `to` by sending the digest of this list; a full exchange follows only if they differ.
    fn request_sync(&mut self, to: Arc<Identity>) {
        let request = Message::SyncRequest {
            digest: self.list.digest(),
            join: false,
            members: Vec::new(),
        };
        self.send_stream(to.addr(), Some(to), request);
    }

    /// Tries one failed member, so that the two sides of a healed partition find each other again.
    fn reconnect(&mut self, now: Time) {
        self.next_reconnect = now + self.jittered(self.config.reconnect_interval);
        let list = &self.list;
        self.failed_pool.retain(|id| {
            list.get(id.name())
                .is_some_and(|m| m.state == State::Failed && m.identity.same_instance(id))
        });
        // Every list that holds a member failed tries it now and then; with one attempt per list per interval, a
        // member the whole cluster failed would get N / interval full syncs when it came back. Each list tries
        // with a chance that keeps the attempts each failed member gets from the whole cluster near a constant.
        // Members whose failed entries were reaped are still tried while their graves stand.
        let buried: Vec<&Arc<Identity>> = self.graves.failed().collect();
        let candidates = self.failed_pool.len() + buried.len();
        if candidates == 0 {
            return;
        }
        let chance = RECONNECTS_PER_FAILED_MEMBER * candidates as f64
            / self.list.active_count().max(1) as f64;
        if chance < 1.0 && self.rng.random::<f64>() >= chance {
            return;
        }
        let pick = self.rng.random_range(0..candidates);
        let target = match self.failed_pool.get(pick) {
            Some(id) => Arc::clone(id),
            None => Arc::clone(buried[pick - self.failed_pool.len()]),
        };
        self.request_sync(target);
    }

    fn reap(&mut self, now: Time) {
        for state in [State::Failed, State::Left] {
            loop {
                let queue = if state == State::Failed {
                    &mut self.reap_failed
                } else {
                    &mut self.reap_left
                };
                let Some(front) = queue.front() else { break };
                if front.at > now {
                    break;
                }
                let reap = queue.pop_front().expect("front exists");
                let unchanged = self.list.get(reap.identity.name()).is_some_and(|m| {
                    m.state == state
                        && m.incarnation == reap.incarnation
                        && m.identity.same_instance(&reap.identity)
                });
                if unchanged && let Some(reaped) = self.list.remove(reap.identity.name()) {
                    self.failed_pool
                        .retain(|id| !id.same_instance(&reaped.identity));
                    self.graves.bury(now, &reaped);
                }
            }
        }
        self.graves.expire(now);
    }

    /// Drops the reaps that can no longer happen (their member changed state since) once they outnumber the
    /// members, so that a member that flaps between alive and failed does not grow the queues for a whole
    /// reap timeout.
    fn compact_reaps(&mut self) {
        let limit = 2 * self.list.len() + 16;
        let list = &self.list;
        for (queue, state) in [
            (&mut self.reap_failed, State::Failed),
            (&mut self.reap_left, State::Left),
        ] {
            if queue.len() > limit {
                queue.retain(|r| {
                    list.get(r.identity.name()).is_some_and(|m| {
                        m.state == state
                            && m.incarnation == r.incarnation
                            && m.identity.same_instance(&r.identity)
                    })
                });
            }
        }
    }
}

/// How urgently news about a member goes out. Anything but plain "alive" is urgent, and so is an "alive" that
/// clears a failure: those are the updates whose loss leaves a list wrong. A refutation (the member raised its
/// incarnation to answer a suspicion) goes first, wherever it passes: it races the suspicion timers running
/// elsewhere, and after a partition heals hundreds of fresher updates would otherwise hold it back for seconds.
fn news_priority(
    previous: Option<&Member>,
    current: &Member,
    kind: Option<ChangeKind>,
) -> Priority {
    if current.state != State::Alive {
        return Priority::Urgent;
    }
    let same = previous.filter(|p| p.identity.same_instance(&current.identity));
    match same {
        Some(p)
            if p.state.is_active()
                && p.incarnation < current.incarnation
                && kind != Some(ChangeKind::Update) =>
        {
            Priority::Refutation
        }
        _ if kind == Some(ChangeKind::Alive) => Priority::Urgent,
        _ => Priority::Routine,
    }
}

/// The event a change from `previous` to `current` makes, if any. An incarnation bump of an alive member with
/// nothing else changed is not worth an event.
fn change_kind(previous: Option<&Member>, current: &Member) -> Option<ChangeKind> {
    let same = previous.filter(|p| p.identity.same_instance(&current.identity));
    let Some(previous) = same else {
        return Some(match current.state {
            State::Alive | State::Suspect => ChangeKind::Join,
            State::Failed => ChangeKind::Failed,
            State::Left => ChangeKind::Leave,
        });
    };
    match (previous.state, current.state) {
        (State::Alive, State::Alive) => {
            let moved = previous.identity.addr() != current.identity.addr()
                || previous.identity.meta() != current.identity.meta();
            moved.then_some(ChangeKind::Update)
        }
        (_, State::Alive) => Some(ChangeKind::Alive),
        (State::Suspect, State::Suspect) => None,
        (_, State::Suspect) => Some(ChangeKind::Suspect),
        (State::Failed, State::Failed) => None,
        (_, State::Failed) => Some(ChangeKind::Failed),
        (State::Left, State::Left) => None,
        (_, State::Left) => Some(ChangeKind::Leave),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    const EPOCH: Time = Time::from_unix_ms(1_764_000_000_000);

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
        // m0's own probe of m6 failed, and so did its probes of four members: it was isolated.
        let probe = Probe {
            seq: 1,
            target: identity(6),
            started: now,
            direct_deadline: now,
            deadline: now,
            helpers: Some(0),
            nacks: 0,
        };
        node.probe_failed(now, probe);
        node.recent_failures = (1..5).map(identity).collect();
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
        let from = Sender {
            name: "m1".into(),
            addr: identity(1).addr(),
            identity: Some(identity(1)),
            alive: true,
            reply_budget: usize::MAX,
        };
        let now = EPOCH + Duration::from_secs(1);
        for round in 0..1000u32 {
            for (inc, state) in [(2 * round, State::Failed), (2 * round + 1, State::Alive)] {
                let claim = Member::new(identity(2), inc, state);
                node.apply(now, claim, None, Via::Gossip, &from, false);
            }
        }
        assert_eq!(node.member("m2").unwrap().state, State::Alive);
        assert!(node.failed_pool.len() <= 1, "{}", node.failed_pool.len());
        assert!(
            node.reap_failed.len() <= 2 * 6 + 16,
            "{}",
            node.reap_failed.len()
        );
    }
}
