//! The discrete-event engine: a clock, one queue of timed happenings, the nodes, and the loop that feeds each
//! node its packets and timers and routes what it sends through the modelled network.
//!
//! Determinism is by construction: one `SmallRng` seeded from the run's seed makes every random choice of the
//! network and the faults, each node gets its own RNG derived from the same seed, the queue orders by (time,
//! sequence number), and nodes are found by index, never by iterating a hash map. Timers are armed lazily: a
//! node's wake-up is pushed whenever `poll_timeout` changes and stale entries are skipped when they surface.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use roster_core::mix::splitmix64;
use roster_core::name_hash;
use roster_core::{Config, Event, Identity, Member, Meta, Node, State, Time};

use crate::budget::Budget;
use crate::clock::NodeClock;
use crate::fault::Scheduled;
use crate::metrics::{Metrics, Want};
use crate::network::{Fate, Network, addr_of, index_of};

/// The simulated clock starts here: a realistic epoch, since probe rounds align to `now`.
/// Stream exchanges longer than this are cut: a sync is request, response and at most a push.
const MAX_STREAM_LEGS: u8 = 6;

/// What a run is: the world at the start and what will happen to it.
#[derive(Clone, Debug)]
pub struct World {
    /// Node slots; addresses and names come from the index.
    pub nodes: usize,
    /// Nodes `0..initial` start running with every one of them in every list; the rest wait for a `Join`.
    pub initial: usize,
    pub seed: u64,
    pub config: Config,
    pub network: Network,
    pub faults: Vec<Scheduled>,
    pub duration: Duration,
    /// How often the engine checks, while a partition heal or a join waits for it, whether every list agrees.
    pub converge_check: Duration,
    /// Seeds given to a joining node.
    pub join_seeds: usize,
    /// Whether joining nodes are given the first `join_seeds` nodes as seeds, as a fleet started from one
    /// configuration is, rather than running nodes drawn at random.
    pub fixed_seeds: bool,
    /// How the machines' clocks disagree.
    pub clocks: Clocks,
    /// Whether a join makes the engine wait for every list to agree (a check that costs N^2 lookups every
    /// `converge_check`: churn turns it off).
    pub watch_joins: bool,
    /// Moments at which a running member sends a user event, followed to every list.
    pub user_events: Vec<Duration>,
    /// Moments at which a running member changes its tags, followed to every list.
    pub tag_changes: Vec<Duration>,
}

/// How far each machine's wall clock is from true time, and how fast it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Clocks {
    /// Each machine's clock is off by an amount drawn uniformly within plus or minus this.
    pub skew: Duration,
    /// Each machine's clock runs fast or slow by up to this many parts per million.
    pub drift_ppm: u32,
}

impl World {
    pub fn new(nodes: usize, seed: u64) -> World {
        World {
            nodes,
            initial: nodes,
            seed,
            config: Config::default(),
            network: Network::default(),
            faults: Vec::new(),
            duration: Duration::from_secs(60),
            converge_check: Duration::from_millis(250),
            join_seeds: 2,
            fixed_seeds: false,
            clocks: Clocks::default(),
            watch_joins: true,
            user_events: Vec::new(),
            tag_changes: Vec::new(),
        }
    }
}

/// The name of node `index`.
pub fn name_of(index: usize) -> String {
    format!("m{index}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Absent,
    Running,
    /// Running, but stepped aside from a name another live process holds: in nobody's list.
    Standby,
    Leaving,
    Left,
    Crashed,
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) node: Option<Node<SmallRng>>,
    pub(crate) identity: Arc<Identity>,
    /// The clocks of the process running in the slot (or the last one).
    pub(crate) clock: NodeClock,
    /// For a cloned machine: the slot whose name it took.
    pub(crate) clone_of: Option<usize>,
    /// The machine's packet budget, when the network sets one.
    pub(crate) budget: Budget,
    pub(crate) status: Status,
    pub(crate) generation: u64,
    pub(crate) frozen_until: Time,
    pub(crate) freeze_length: Duration,
    pub(crate) slow_until: Time,
    pub(crate) max_lag: Duration,
    /// When the instance started to leave, if it did.
    pub(crate) left_at: Option<Time>,
    /// The seeds the instance joined through: it joins through them again when a join fails, as an agent run
    /// with `--retry-join` does (the way a fleet is deployed), rather than stay a cluster of one.
    pub(crate) seeds: Vec<std::net::SocketAddr>,
    /// The wake-up the node asked for, and the token of the queue entry that carries it.
    pub(crate) armed_for: Option<Time>,
    pub(crate) token: u64,
}

#[derive(Debug)]
pub(crate) enum What {
    Wake {
        node: u32,
        token: u64,
        late: bool,
    },
    Datagram {
        to: u32,
        from: u32,
        late: bool,
        bytes: Vec<u8>,
    },
    Stream {
        to: u32,
        from: u32,
        leg: u8,
        late: bool,
        bytes: Vec<u8>,
    },
    Fault(usize),
    /// The world's `k`-th user event is sent.
    UserEvent(usize),
    /// The world's `k`-th tag change is made.
    TagChange(usize),
    /// A partition heals: start waiting for the lists to agree.
    Heal,
    /// Do the lists agree yet?
    Check,
}

impl What {
    /// The same message, marked as already held back once (a slow node lags each message only once).
    fn held(mut self) -> What {
        if let What::Datagram { late, .. } | What::Stream { late, .. } = &mut self {
            *late = true;
        }
        self
    }
}

#[derive(Debug)]
struct Entry {
    at: Time,
    seq: u64,
    what: What,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: `BinaryHeap` is a max-heap and the earliest entry must surface first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A running simulation.
#[derive(Debug)]
pub struct Sim {
    pub(crate) world: World,
    pub(crate) slots: Vec<Slot>,
    queue: BinaryHeap<Entry>,
    seq: u64,
    pub(crate) now: Time,
    pub(crate) rng: SmallRng,
    /// Draws the clocks of processes started during the run.
    pub(crate) clock_rng: SmallRng,
    pub(crate) running: usize,
    /// A freeze at least this long may rightly end in a failure: nobody can refute for the frozen member.
    pub(crate) suspicion_min: Duration,
    pub metrics: Metrics,
    /// Timer wake-ups and messages held back by a freeze or a slow node.
    pub deferred: u64,
    check_armed: bool,
    pub(crate) traced: Vec<usize>,
    /// Members whose every event, wherever reported, goes into the trace.
    pub(crate) traced_members: Vec<usize>,
    /// Every event the traced nodes reported, and every event about the traced members: when, which node
    /// reported it, and the event. For replaying a failing seed.
    pub trace: Vec<(Duration, usize, Event)>,
    /// Every node's event-log lines, when asked for (`logs`).
    pub(crate) logs: Option<crate::logs::Logs>,
    /// Calls into nodes (timers and messages): the engine's unit of work.
    pub steps: u64,
    spare_transmits: Vec<roster_core::Transmit>,
    spare_events: Vec<Event>,
    /// Slots ever started as a clone: the only names two slots can share.
    pub(crate) clones: Vec<usize>,
}

/// Seeds the generator of the machines' clocks apart from the rest of the run's.
const CLOCK_STREAM: u64 = 0xc10c_c10c;

impl Clocks {
    /// The clocks of a process started at `started` on a machine drawn from this model.
    pub(crate) fn draw(&self, started: Time, rng: &mut SmallRng) -> NodeClock {
        let skew = self.skew.as_micros() as i64;
        let offset = if skew > 0 {
            rng.random_range(-skew..=skew)
        } else {
            0
        };
        let drift = self.drift_ppm as i32;
        let drift = if drift > 0 {
            rng.random_range(-drift..=drift)
        } else {
            0
        };
        NodeClock::new(started, offset, drift)
    }
}

/// The first `world.initial` nodes, each started with every one of them in its list (`None` for the rest).
/// Every node is built from its own index alone (its RNG, its clock, the same members in the same order), so the
/// lists are built on every core at once and come out as they would one after another.
fn converged_nodes(
    world: &World,
    identities: &[Arc<Identity>],
    ring_order: &[&Arc<Identity>],
    clocks: &[NodeClock],
) -> anyhow::Result<Vec<Option<Node<SmallRng>>>> {
    let build = |i: usize| -> anyhow::Result<Option<Node<SmallRng>>> {
        if i >= world.initial {
            return Ok(None);
        }
        let rng = SmallRng::seed_from_u64(splitmix64(world.seed ^ splitmix64(i as u64)));
        let mut node = Node::new(world.config.clone(), (*identities[i]).clone(), rng)
            .context("the core refused the configuration")?;
        // The node skips its own entry; an exact size lets it reserve its list once.
        let everyone = ring_order
            .iter()
            .map(|id| Member::new(Arc::clone(id), 0, State::Alive));
        node.adopt_members(clocks[i].now_at(Time::SIM_EPOCH), everyone);
        Ok(Some(node))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Small worlds (most tests) are built faster than threads start.
    if threads < 2 || world.initial < 256 {
        return (0..world.nodes).map(build).collect();
    }
    let chunk = world.nodes.div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..world.nodes)
            .step_by(chunk)
            .map(|from| {
                let build = &build;
                scope.spawn(move || {
                    (from..(from + chunk).min(world.nodes))
                        .map(build)
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut nodes = Vec::with_capacity(world.nodes);
        for part in parts {
            nodes.extend(part.join().expect("a list builder panicked")?);
        }
        Ok(nodes)
    })
}

impl Sim {
    /// Builds the world: the first `initial` nodes running and converged, each identity built once and shared by
    /// every list through its `Arc`.
    pub fn new(mut world: World) -> anyhow::Result<Sim> {
        anyhow::ensure!(
            world.initial <= world.nodes,
            "more initial nodes than nodes"
        );
        world.network.normalize();
        world
            .config
            .validate(world.nodes.max(5))
            .context("the protocol configuration cannot meet its deadlines")?;
        let identities: Vec<Arc<Identity>> = (0..world.nodes)
            .map(|i| {
                Identity::new(
                    name_of(i),
                    addr_of(i),
                    Time::SIM_EPOCH.unix_ms(),
                    Meta::default(),
                )
                .map(Arc::new)
                .context("simulated identity")
            })
            .collect::<anyhow::Result<_>>()?;
        // Lists keep their ring sorted by (hash, name): adopting members in that order appends to the ring
        // instead of shifting it, which turns an O(N^3) start into O(N^2 log N).
        let mut ring_order: Vec<&Arc<Identity>> = identities[..world.initial].iter().collect();
        ring_order
            .sort_by_cached_key(|id| ((name_hash(id.name()) >> 32) as u32, id.name().to_string()));
        let mut slots = Vec::with_capacity(world.nodes);
        // Clocks draw from their own generator, so that a world whose clocks agree has the history it had
        // before clocks were modelled.
        let mut clock_rng = SmallRng::seed_from_u64(splitmix64(world.seed ^ CLOCK_STREAM));
        let clocks: Vec<NodeClock> = (0..world.nodes)
            .map(|_| world.clocks.draw(Time::SIM_EPOCH, &mut clock_rng))
            .collect();
        let mut nodes = converged_nodes(&world, &identities, &ring_order, &clocks)?.into_iter();
        for (identity, clock) in identities.iter().zip(clocks) {
            let node = nodes.next().flatten();
            slots.push(Slot {
                left_at: None,
                seeds: Vec::new(),
                clock,
                clone_of: None,
                budget: Budget::full(Time::SIM_EPOCH, world.network.packet_budget.unwrap_or(0.0)),
                status: if node.is_some() {
                    Status::Running
                } else {
                    Status::Absent
                },
                node,
                identity: Arc::clone(identity),
                generation: 0,
                frozen_until: Time::ZERO,
                freeze_length: Duration::ZERO,
                slow_until: Time::ZERO,
                max_lag: Duration::ZERO,
                armed_for: None,
                token: 0,
            });
        }
        let mut sim = Sim {
            rng: SmallRng::seed_from_u64(splitmix64(world.seed)),
            clock_rng,
            metrics: Metrics::new(world.nodes, Time::SIM_EPOCH),
            running: 0,
            suspicion_min: world.config.timers(world.nodes).suspicion_min,
            deferred: 0,
            check_armed: false,
            spare_transmits: Vec::new(),
            spare_events: Vec::new(),
            clones: Vec::new(),
            traced: Vec::new(),
            traced_members: Vec::new(),
            trace: Vec::new(),
            logs: None,
            world,
            slots,
            queue: BinaryHeap::new(),
            seq: 0,
            now: Time::SIM_EPOCH,
            steps: 0,
        };
        sim.running = sim
            .slots
            .iter()
            .filter(|s| s.status == Status::Running)
            .count();
        sim.metrics.set_running(Time::SIM_EPOCH, sim.running);
        for i in 0..sim.world.initial {
            sim.settle(i);
        }
        for k in 0..sim.world.user_events.len() {
            sim.push(
                Time::SIM_EPOCH + sim.world.user_events[k],
                What::UserEvent(k),
            );
        }
        for k in 0..sim.world.tag_changes.len() {
            sim.push(
                Time::SIM_EPOCH + sim.world.tag_changes[k],
                What::TagChange(k),
            );
        }
        for index in 0..sim.world.faults.len() {
            let at = Time::SIM_EPOCH + sim.world.faults[index].at;
            sim.push(at, What::Fault(index));
        }
        let heals: Vec<Duration> = sim
            .world
            .network
            .partitions
            .iter()
            .map(|p| p.heal)
            .collect();
        for heal in heals {
            sim.push(Time::SIM_EPOCH + heal, What::Heal);
        }
        Ok(sim)
    }

    /// Records every event `node` reports from now on into [`Sim::trace`].
    pub fn trace_node(&mut self, node: usize) {
        self.traced.push(node);
    }

    /// Records every event about `member`, and every event it reports, from now on into [`Sim::trace`].
    pub fn trace_member(&mut self, member: usize) {
        self.traced_members.push(member);
    }

    /// Whether `index` is running but stepped aside from a name another live process holds.
    pub fn is_standby(&self, index: usize) -> bool {
        self.slots[index].status == Status::Standby
    }

    /// The index of the slot whose name the process at `index` took, if it is a cloned machine.
    pub fn clone_of(&self, index: usize) -> Option<usize> {
        self.slots[index].clone_of
    }

    /// How much the node at `index` holds, if it runs.
    pub fn footprint(&self, index: usize) -> Option<roster_core::Footprint> {
        self.node(index).map(|n| n.footprint())
    }

    /// Slots in the world.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - Time::SIM_EPOCH
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// The node at `index`, if it is running (or leaving).
    pub fn node(&self, index: usize) -> Option<&Node<SmallRng>> {
        self.slots.get(index).and_then(|s| s.node.as_ref())
    }

    /// The identity of the current (or last) instance at `index`.
    pub fn identity(&self, index: usize) -> &Arc<Identity> {
        &self.slots[index].identity
    }

    /// Whether `index` runs and takes part (not crashed, not gone, not leaving).
    pub fn is_running(&self, index: usize) -> bool {
        self.slots[index].status == Status::Running
    }

    /// Runs until `elapsed()` reaches `until` (or the queue empties).
    pub fn run_until(&mut self, until: Duration) {
        let end = Time::SIM_EPOCH + until;
        while let Some(entry) = self.queue.peek() {
            if entry.at > end {
                break;
            }
            let entry = self.queue.pop().expect("peeked");
            self.now = entry.at;
            self.dispatch(entry.what);
        }
        self.now = self.now.max(end);
        self.metrics.set_running(self.now, self.running);
    }

    /// Runs the whole world.
    pub fn run(&mut self) {
        self.run_until(self.world.duration);
    }

    /// Schedules the next convergence check unless one is pending: checks cost O(N^2) lookups.
    pub(crate) fn arm_check(&mut self) {
        if !self.check_armed {
            self.check_armed = true;
            self.push(self.now + self.world.converge_check, What::Check);
        }
    }

    pub(crate) fn push(&mut self, at: Time, what: What) {
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.seq,
            what,
        });
    }

    pub(crate) fn since_start(&self) -> Duration {
        self.now - Time::SIM_EPOCH
    }

    /// What the protocol's `now` reads at node `i` (see `clock`).
    pub(crate) fn node_now(&self, i: usize) -> Time {
        self.slots[i].clock.now_at(self.now)
    }

    /// What the wall clock of node `i`'s machine reads now: the time its event log would carry.
    pub fn wall_clock(&self, i: usize) -> Time {
        self.slots[i].clock.wall_at(self.now)
    }

    fn lag(&mut self, i: usize) -> Option<Duration> {
        let slot = &self.slots[i];
        if self.now < slot.slow_until && !slot.max_lag.is_zero() {
            let max = slot.max_lag.as_micros() as u64;
            Some(Duration::from_micros(self.rng.random_range(0..=max)))
        } else {
            None
        }
    }

    fn dispatch(&mut self, what: What) {
        if let &(What::Datagram { to, late, .. } | What::Stream { to, late, .. }) = &what
            && self.must_wait(to as usize, late)
        {
            return self.defer(to as usize, what.held());
        }
        match what {
            What::Wake { node, token, late } => {
                let i = node as usize;
                if self.slots[i].token != token || self.slots[i].node.is_none() {
                    return;
                }
                let slot = &self.slots[i];
                if self.now < slot.frozen_until {
                    // A process that resumes reads what waited in its socket before its timers fire (the
                    // agent drains datagrams first): the messages held for the thaw are queued at the thaw
                    // itself, so the wake goes a microsecond after them.
                    let after_held = slot.frozen_until + Duration::from_micros(1);
                    self.deferred += 1;
                    self.push(after_held, What::Wake { node, token, late });
                    return;
                }
                if !late && let Some(lag) = self.lag(i) {
                    self.deferred += 1;
                    self.push(
                        self.now + lag,
                        What::Wake {
                            node,
                            token,
                            late: true,
                        },
                    );
                    return;
                }
                self.slots[i].armed_for = None;
                let now = self.node_now(i);
                if let Some(n) = self.slots[i].node.as_mut() {
                    n.handle_timeout(now);
                }
                self.steps += 1;
                self.settle(i);
            }
            What::Datagram {
                to, from, bytes, ..
            } => {
                let i = to as usize;
                let now = self.node_now(i);
                if let Some(n) = self.slots[i].node.as_mut()
                    && n.handle_packet(now, addr_of(from as usize), &bytes)
                        .is_err()
                {
                    self.metrics.decode_errors += 1;
                }
                self.steps += 1;
                self.settle(i);
            }
            What::Stream {
                to,
                from,
                leg,
                bytes,
                ..
            } => {
                let i = to as usize;
                let now = self.node_now(i);
                let reply = match self.slots[i]
                    .node
                    .as_mut()
                    .map(|n| n.handle_stream(now, addr_of(from as usize), &bytes))
                {
                    Some(Ok(reply)) => reply,
                    Some(Err(_)) => {
                        self.metrics.decode_errors += 1;
                        None
                    }
                    None => None,
                };
                self.steps += 1;
                if let Some(reply) = reply.filter(|r| !r.is_empty())
                    && leg + 1 < MAX_STREAM_LEGS
                {
                    self.send_stream(i, from as usize, leg + 1, reply);
                }
                self.settle(i);
            }
            What::Fault(index) => {
                let fault = self.world.faults[index].fault.clone();
                self.metrics.end_quiet(self.now);
                self.apply(fault);
            }
            What::UserEvent(k) => self.send_user_event(k),
            What::TagChange(k) => self.change_tags(k),
            What::Heal => {
                self.metrics.open_watch("heal", self.now);
                self.arm_check();
            }
            What::Check => {
                self.check_armed = false;
                if self.metrics.open_watches() {
                    if self.converged() {
                        self.metrics.close_watches(self.now);
                    } else {
                        self.arm_check();
                    }
                }
            }
        }
    }

    /// Whether a message that arrived for node `i` must wait: the node is frozen, or slow and the message has
    /// not yet been held back.
    fn must_wait(&self, i: usize, late: bool) -> bool {
        let slot = &self.slots[i];
        if slot.node.is_none() {
            return false;
        }
        self.now < slot.frozen_until
            || (!late && self.now < slot.slow_until && !slot.max_lag.is_zero())
    }

    /// Holds a message back until the node thaws, or by a slow node's lag. Messages held for a freeze are
    /// requeued in arrival order, so they are handled in that order.
    fn defer(&mut self, i: usize, what: What) {
        self.deferred += 1;
        let at = if self.now < self.slots[i].frozen_until {
            self.slots[i].frozen_until
        } else {
            self.now + self.lag(i).unwrap_or_default()
        };
        self.push(at, what);
    }

    /// Drains what node `i` has to send and to report, and re-arms its timer.
    pub(crate) fn settle(&mut self, i: usize) {
        // Reused across steps: settling follows every one of millions of steps.
        let mut transmits = std::mem::take(&mut self.spare_transmits);
        let mut events = std::mem::take(&mut self.spare_events);
        let wake = {
            let Some(node) = self.slots[i].node.as_mut() else {
                return;
            };
            while let Some(t) = node.poll_transmit() {
                transmits.push(t);
            }
            while let Some(e) = node.poll_event() {
                events.push(e);
            }
            (node.poll_timeout(), node.is_standby())
        };
        let (mut wake, standby) = wake;
        for t in transmits.drain(..) {
            let Some(to) = index_of(t.to).filter(|&j| j < self.slots.len()) else {
                self.metrics
                    .sent(t.bytes.len(), t.transport == roster_core::Transport::Udp);
                continue;
            };
            match t.transport {
                roster_core::Transport::Udp => self.send_datagram(i, to, t.bytes),
                roster_core::Transport::Stream => self.send_stream(i, to, 0, t.bytes),
            }
        }
        let mut left = false;
        let mut join_failed = false;
        for e in events.drain(..) {
            left |= matches!(e, Event::Left { .. });
            join_failed |= matches!(e, Event::JoinFailed { .. });
            self.observe(i, &e);
        }
        let slot = &mut self.slots[i];
        if join_failed && let Some(node) = slot.node.as_mut() {
            let now = slot.clock.now_at(self.now);
            node.join(now, &slot.seeds);
            // What the new attempt sends goes out at its next wake, with the retry.
            wake = node.poll_timeout();
        }
        self.spare_transmits = transmits;
        self.spare_events = events;
        if left && self.slots[i].status == Status::Leaving {
            // The core says its goodbye is out (or its leave timeout passed): the process exits.
            self.stop(i, Status::Left);
            return;
        }
        match (standby, self.slots[i].status) {
            (true, Status::Running) => {
                self.slots[i].status = Status::Standby;
                self.running -= 1;
                self.metrics.set_running(self.now, self.running);
                // News of the conflict that put it there is still owed to every list.
                self.metrics.stopped(self.now, i, Some(Want::Conflict));
            }
            (false, Status::Standby) => {
                // The name is free again (its holder left or failed), and the node took it.
                self.slots[i].status = Status::Running;
                self.running += 1;
                self.metrics.set_running(self.now, self.running);
            }
            _ => {}
        }
        if let Some(wake) = wake
            && self.slots[i].armed_for != Some(wake)
        {
            let slot = &mut self.slots[i];
            slot.armed_for = Some(wake);
            slot.token += 1;
            let token = slot.token;
            let at = slot.clock.true_time_of(wake);
            self.push(
                at.max(self.now),
                What::Wake {
                    node: i as u32,
                    token,
                    late: false,
                },
            );
        }
    }

    fn send_datagram(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.metrics.sent(bytes.len(), true);
        if let Some(rate) = self.world.network.packet_budget
            && !self.slots[from].budget.send_datagram(self.now, rate)
        {
            self.metrics.over_budget += 1;
            return;
        }
        let at = self.since_start();
        match self
            .world
            .network
            .datagram(from, to, at, self.world.seed, &mut self.rng)
        {
            Fate::Arrives(delay) => self.push(
                self.now + delay,
                What::Datagram {
                    to: to as u32,
                    from: from as u32,
                    late: false,
                    bytes,
                },
            ),
            Fate::Lost => self.metrics.lost += 1,
            Fate::Cut => self.metrics.cut += 1,
        }
    }

    fn send_stream(&mut self, from: usize, to: usize, leg: u8, bytes: Vec<u8>) {
        self.metrics.sent(bytes.len(), false);
        let queued = match self.world.network.packet_budget {
            Some(rate) => self.slots[from]
                .budget
                .send_stream(self.now, rate, bytes.len()),
            None => Duration::ZERO,
        };
        let at = self.since_start();
        match self.world.network.stream(
            from,
            to,
            at,
            leg == 0,
            bytes.len(),
            self.world.seed,
            &mut self.rng,
        ) {
            Fate::Arrives(delay) => self.push(
                self.now + queued + delay,
                What::Stream {
                    to: to as u32,
                    from: from as u32,
                    leg,
                    late: false,
                    bytes,
                },
            ),
            Fate::Lost => self.metrics.streams_failed += 1,
            Fate::Cut => self.metrics.cut += 1,
        }
    }

    /// Nodes running and taking part (neither leaving nor on standby).
    pub fn running_nodes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.slots.len()).filter(|&j| self.slots[j].status == Status::Running)
    }
}
