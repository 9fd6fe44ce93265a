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

use crate::awareness::Awareness;
use crate::broadcast::BroadcastQueue;
use crate::config::{Config, ConfigError};
use crate::coordinate::{Coordinate, Coordinates};
use crate::event::{Change, ChangeKind, Event, Via};
use crate::graves::Graves;
use crate::member::{Identity, IdentityError, Member, Meta, State};
use crate::membership::{Applied, Membership};
use crate::message::Update;
use crate::probe::{Exchanges, RttEstimator};
use crate::round_clock::RoundClock;
use crate::schedule::Schedule;
use crate::suspicion::Suspicions;
use crate::time::Time;
use crate::user_event::Recent;
mod claims;
mod dissemination;
mod force_leave;
mod input;
mod join;
mod leave;
mod outbox;
mod own_entry;
mod probing;
mod queries;
mod reaping;
mod reconnects;
mod suspicions;
#[cfg(test)]
mod tests;
mod timers;
mod user_events;

pub use force_leave::{ForceLeaveError, ForceLeft};
use join::JoinAttempt;
pub use join::backoff;
use leave::Leave;
pub use outbox::{Transmit, Transport};
use queries::Queries;
pub use queries::QueryStarted;
use reaping::Reaps;
use reconnects::Reconnects;

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
    /// Probes started by sweeps: in a cluster no larger than the ring span, every other member probed at once
    /// after a probe went unanswered.
    pub sweeps: u64,
    /// Last looks: pings of a suspect this node had not seen fail itself, before declaring it failed.
    pub last_looks: u64,
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
    /// Probes of the round in flight.
    pub probes: usize,
    /// Last looks at suspects in flight: at most one per suspicion.
    pub last_looks: usize,
    /// Pings sent for other members' ping-reqs, awaiting an ack.
    pub relays: usize,
    /// Failed members to try now and then.
    pub reconnect_pool: usize,
    /// Reaps scheduled.
    pub reaps: usize,
    /// Reaped members remembered.
    pub graves: usize,
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
    /// Whether the packet pings this node: a prober that still accuses it is told it refuted (see
    /// `apply_to_self`).
    probing: bool,
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
    coordinates: Coordinates,
    exchanges: Exchanges,
    suspicions: Suspicions,
    broadcasts: BroadcastQueue,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    gossip_cursor: usize,
    /// Quick syncs still due after a join.
    catch_up_syncs: usize,
    /// A member back from failed here, to sync with at the next sync, which comes early (see `anti_entropy`).
    sync_with_returned: Option<Arc<Identity>>,
    /// Set while merging a seed's answer to this node's join that holds more than a packet carries: the members
    /// new in it are taken in without being passed on (see `apply`). A small answer is passed on as news: it
    /// costs a few packets, and while the cluster is small that redundancy is what gets every join into every
    /// list quickly (one member's few sends along the ring reach only part of it).
    quiet_merge: bool,
    /// Distinct members whose probes failed since this node's last successful probe.
    recent_failures: Vec<Arc<Identity>>,
    /// When this node may next probe every other member at once (see `sweep`).
    next_sweep: Time,
    /// When a ping of this node last arrived.
    pinged_at: Time,
    /// When a member last entered or left the ring here: until the change has spread, other lists may place
    /// this node's prober elsewhere.
    ring_changed_at: Time,
    started: bool,
    /// When the driver last called in (with anything: a timer, a packet, a command).
    last_input: Time,
    /// Until when this node, back from a silence, takes no other list's verdict as the end of a suspicion of
    /// its own (see `resume_after`).
    catching_up_until: Time,
    next_gossip: Time,
    next_sync: Time,
    reconnects: Reconnects,
    reaps: Reaps,
    graves: Graves,
    /// News for the sender of the input being handled: what this node knows that the sender's claims show it
    /// does not (a member it holds as failed that left). Sent back at the end of the input.
    corrections: Vec<Update>,
    join: Option<JoinAttempt>,
    /// The leave, once one started.
    leave: Option<Leave>,
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
    /// When this node may next ask a member that pinged it, unknown here, for its list (see `handle_packet`).
    next_stranger_sync: Time,
    /// How far the wall clock is ahead of `now` (behind when negative), in microseconds, as the driver last
    /// said (see [`Node::handle_wall_clock`]).
    wall_offset_us: i64,
    /// The event clock and the user events heard lately.
    user_events: Recent,
    /// The query clock and the queries heard lately.
    queries_heard: Recent,
    /// Queries sent and awaiting answers, and queries heard that this node may answer.
    queries: Queries,
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
            coordinates: Coordinates::new(&name, config.max_members),
            list: Membership::new(local.clone()),
            name,
            suspicions: Suspicions::default(),
            broadcasts: BroadcastQueue::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            exchanges: Exchanges::after_seq(rng.random()),
            gossip_cursor: rng.random::<u32>() as usize,
            catch_up_syncs: 0,
            sync_with_returned: None,
            quiet_merge: false,
            recent_failures: Vec::new(),
            next_sweep: Time::ZERO,
            pinged_at: Time::ZERO,
            ring_changed_at: Time::ZERO,
            started: false,
            last_input: Time::ZERO,
            catching_up_until: Time::ZERO,
            next_gossip: Time::ZERO,
            next_sync: Time::ZERO,
            reconnects: Reconnects::default(),
            reaps: Reaps::default(),
            graves: Graves::new(config.failed_reap_timeout),
            corrections: Vec::new(),
            join: None,
            leave: None,
            standby: false,
            conflicts: VecDeque::new(),
            name_taken: false,
            returned: VecDeque::new(),
            next_conflict_notice: Time::ZERO,
            next_stranger_sync: Time::ZERO,
            wall_offset_us: 0,
            user_events: Recent::default(),
            queries_heard: Recent::default(),
            queries: Queries::default(),
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

    /// The configuration in force.
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

    /// This node's network coordinate: where it sits in the space whose distances estimate round trips. It
    /// starts at the origin with the largest error, and moves with every ack that answers this node's own ping
    /// of a member that sends its coordinate (wire version 4).
    pub fn coordinate(&self) -> &Coordinate {
        self.coordinates.own()
    }

    /// The network coordinate member `name` last sent this node, if it sent one and has not been reaped since.
    /// `node.coordinate().distance_to(c)` estimates the round trip to it.
    pub fn coordinate_of(&self, name: &str) -> Option<&Coordinate> {
        self.coordinates.of(name)
    }

    /// Every member coordinate this node holds, in name order (at most `max_members` of them).
    pub fn coordinates(&self) -> impl Iterator<Item = (&str, &Coordinate)> {
        self.coordinates.peers()
    }

    /// How many round trips have moved this node's coordinate.
    pub fn coordinate_updates(&self) -> u64 {
        self.coordinates.updates()
    }

    /// Running totals, for metrics.
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
        let (probes, last_looks) = self.exchanges.probes_by_kind();
        Footprint {
            members: self.list.len(),
            broadcasts: self.broadcasts.len(),
            suspicions: self.suspicions.len(),
            probes,
            last_looks,
            relays: self.exchanges.relay_count(),
            reconnect_pool: self.reconnects.len(),
            reaps: self.reaps.len(),
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
        !self.leaving() && !self.standby
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
        self.publish_local(local, ChangeKind::Updated, None);
        Ok(())
    }

    /// The next thing to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing to report.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Sets the timers on the first input, when `now` is first known.
    fn start(&mut self, now: Time) {
        let silence = now.saturating_since(self.last_input);
        self.last_input = now;
        if self.started {
            self.resume_after(now, silence);
            return;
        }
        self.started = true;
        self.schedule.start(now);
        self.next_gossip = now;
        self.next_sync = now + self.jittered(self.config.sync_interval_for(1));
        let first_reconnect = now + self.jittered(self.config.reconnect_interval);
        self.reconnects.schedule(first_reconnect);
    }

    /// A duration drawn uniformly from [d/2, 3d/2), so that members' periodic work does not run in lockstep.
    fn jittered(&mut self, d: Duration) -> Duration {
        d.mul_f64(0.5 + self.rng.random::<f64>())
    }

    fn next_seq(&mut self) -> u32 {
        self.exchanges.next_seq()
    }

    /// This node as the source of a claim it makes itself (a failed probe, a suspicion that timed out).
    fn as_sender(&self) -> Sender {
        Sender {
            name: Arc::clone(&self.name),
            addr: self.list.local().identity.addr(),
            identity: None,
            alive: true,
            reply_budget: usize::MAX,
            probing: false,
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
            probing: false,
        })
    }
}
