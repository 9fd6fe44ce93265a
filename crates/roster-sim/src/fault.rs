//! The fault model: what may happen to nodes during a run, and when.
//!
//! A fault names the nodes it hits by index; the engine carries it out at its time, through the methods here:
//! stopping a node, starting a new instance, and the bookkeeping of who is running that the metrics rely on.
//! Faults on the network (loss, one-way loss, partitions) live in `network`, since they are properties of
//! links, not of nodes.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use roster_core::mix::splitmix64;
use roster_core::{Identity, Meta, Node, Time};
use serde::{Deserialize, Serialize};

use crate::clock::NodeClock;
use crate::engine::{Sim, Status, What, name_of};
use crate::metrics::Want;
use crate::network::addr_of;
use crate::serde_secs;

/// Something that happens to some nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The nodes stop at once, with no goodbye: their packets in flight still arrive, nothing more is sent.
    Crash(Vec<usize>),
    /// The nodes stop processing for `duration`, then resume: timers that fell due and packets that arrived
    /// meanwhile are handled late, in arrival order (a GC pause, a VM migration, SIGSTOP).
    Freeze {
        nodes: Vec<usize>,
        #[serde(with = "serde_secs")]
        duration: Duration,
    },
    /// For `duration`, every timer of the nodes fires and every packet to them is handled up to `max_lag`
    /// late (uniformly drawn): an overloaded machine, the case Lifeguard was made for.
    Slow {
        nodes: Vec<usize>,
        #[serde(with = "serde_secs")]
        duration: Duration,
        #[serde(with = "serde_secs")]
        max_lag: Duration,
    },
    /// The nodes leave on purpose, and stop once their goodbye has gone out.
    Leave(Vec<usize>),
    /// The nodes (crashed first if still running) start a new instance that joins through a few running
    /// members. `clock_offset_ms` is how far the new process's wall clock is off (negative: behind, as after a
    /// reboot before NTP synchronised; `None`: drawn like every machine's). With `keep_data` it restarts from
    /// its data directory, whose snapshot raises its `joined_at` above the old instance's, as the agent does;
    /// without, it is a fresh install that knows nothing of its past.
    Restart {
        nodes: Vec<usize>,
        clock_offset_ms: Option<i64>,
        keep_data: bool,
    },
    /// Nodes that were never started start and join through a few running members.
    Join(Vec<usize>),
    /// The machines' wall clocks are stepped by `by_ms` (NTP correcting them); the protocol's `now` does not
    /// move, and the agent tells the core, as it does.
    StepClock { nodes: Vec<usize>, by_ms: i64 },
    /// Slot `clone`, never started, starts a process with the name of `of` (a cloned machine keeps its host
    /// name, the default member name) at its own address and joins. With `same_joined_at` it is a copy of the
    /// running process (a restored snapshot of a live VM); otherwise a new process.
    Clone {
        of: usize,
        clone: usize,
        same_joined_at: bool,
    },
}

impl Fault {
    /// A restart from the data directory, on a clock drawn like every machine's.
    pub fn restart(nodes: Vec<usize>) -> Fault {
        Fault::Restart {
            nodes,
            clock_offset_ms: None,
            keep_data: true,
        }
    }

    /// The nodes the fault names.
    pub fn nodes(&self) -> Vec<usize> {
        match self {
            Fault::Crash(nodes)
            | Fault::Freeze { nodes, .. }
            | Fault::Slow { nodes, .. }
            | Fault::Leave(nodes)
            | Fault::Restart { nodes, .. }
            | Fault::Join(nodes)
            | Fault::StepClock { nodes, .. } => nodes.clone(),
            Fault::Clone { of, clone, .. } => vec![*of, *clone],
        }
    }

    /// The word used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash(_) => "crash",
            Fault::Freeze { .. } => "freeze",
            Fault::Slow { .. } => "slow",
            Fault::Leave(_) => "leave",
            Fault::Restart { .. } => "restart",
            Fault::Join(_) => "join",
            Fault::StepClock { .. } => "step-clock",
            Fault::Clone { .. } => "clone",
        }
    }
}

/// A fault and when it happens, counted from the start of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    #[serde(with = "serde_secs")]
    pub at: Duration,
    pub fault: Fault,
}

impl Scheduled {
    pub fn new(at: Duration, fault: Fault) -> Scheduled {
        Scheduled { at, fault }
    }
}

impl Sim {
    pub(crate) fn stop(&mut self, i: usize, status: Status) {
        let was_running = self.slots[i].status == Status::Running;
        let was_standby = self.slots[i].status == Status::Standby;
        let slot = &mut self.slots[i];
        slot.node = None;
        slot.status = status;
        slot.armed_for = None;
        if was_running {
            self.running -= 1;
        }
        self.metrics.set_running(self.now, self.running);
        if was_standby {
            return;
        }
        let kept = match status {
            Status::Crashed => Some(Want::Failed),
            Status::Left => Some(Want::Left),
            _ => None,
        };
        self.metrics.stopped(self.now, i, kept);
    }

    /// Asks node `i`, frozen now, to leave once it thaws.
    fn leave_at_thaw(&mut self, i: usize) {
        let thaw = self.slots[i].frozen_until;
        let index = self.world.faults.len();
        self.world.faults.push(Scheduled::new(
            thaw - Time::SIM_EPOCH,
            Fault::Leave(vec![i]),
        ));
        self.push(thaw, What::Fault(index));
    }

    pub(crate) fn apply(&mut self, fault: Fault) {
        let now = self.now;
        match fault {
            Fault::Crash(nodes) => {
                let standby: Vec<usize> = nodes
                    .iter()
                    .copied()
                    .filter(|&i| self.slots[i].status == Status::Standby)
                    .collect();
                // A process on standby is in no list: its end is news to nobody.
                for &i in &standby {
                    self.stop(i, Status::Crashed);
                }
                let crashed: Vec<usize> = nodes
                    .into_iter()
                    .filter(|&i| self.slots[i].status == Status::Running)
                    .collect();
                for &i in &crashed {
                    self.stop(i, Status::Crashed);
                }
                // Rumours start after every crash of the batch, so that no crashed node is an observer.
                for &i in &crashed {
                    let observers = self.observers_of_end(i);
                    let joined = self.slots[i].identity.joined_at_ms();
                    self.metrics.start_rumour(
                        now,
                        i,
                        joined,
                        Want::Failed,
                        observers.iter().copied(),
                    );
                    // A member frozen for long may be failed already: those lists have nothing left to hear.
                    let name = self.slots[i].identity.name().to_string();
                    for &o in &observers {
                        let failed = self.slots[o]
                            .node
                            .as_ref()
                            .and_then(|n| n.member(&name))
                            .is_some_and(|m| {
                                m.state == roster_core::State::Failed
                                    && m.identity.joined_at_ms() == joined
                            });
                        if failed {
                            self.metrics.heard(now, o, i, joined, Want::Failed);
                        }
                    }
                }
            }
            Fault::Freeze { nodes, duration } => {
                for i in nodes {
                    let slot = &mut self.slots[i];
                    // A second stop of a stopped process changes nothing until the first one ends: the freeze
                    // lasts until the later of the two, and counts from the first.
                    let (start, until) = if now < slot.frozen_until {
                        let start = slot.frozen_until - slot.freeze_length;
                        (start, slot.frozen_until.max(now + duration))
                    } else {
                        (now, now + duration)
                    };
                    slot.frozen_until = until;
                    slot.freeze_length = until - start;
                }
            }
            Fault::Slow {
                nodes,
                duration,
                max_lag,
            } => {
                for i in nodes {
                    self.slots[i].slow_until = now + duration;
                    self.slots[i].max_lag = max_lag;
                }
            }
            Fault::Leave(nodes) => {
                for i in nodes {
                    if self.slots[i].status != Status::Running {
                        continue;
                    }
                    if now < self.slots[i].frozen_until {
                        // A paused process handles the signal that asks it to leave once it runs again.
                        self.leave_at_thaw(i);
                        continue;
                    }
                    let node_now = self.node_now(i);
                    if let Some(n) = self.slots[i].node.as_mut() {
                        n.leave(node_now);
                    }
                    self.slots[i].status = Status::Leaving;
                    self.slots[i].left_at = Some(now);
                    self.running -= 1;
                    self.metrics.set_running(now, self.running);
                    let observers = self.observers_of_end(i);
                    let joined = self.slots[i].identity.joined_at_ms();
                    self.metrics
                        .start_rumour(now, i, joined, Want::Left, observers.into_iter());
                    self.settle(i);
                }
            }
            Fault::Restart {
                nodes,
                clock_offset_ms,
                keep_data,
            } => {
                for i in nodes {
                    if matches!(
                        self.slots[i].status,
                        Status::Running | Status::Leaving | Status::Standby
                    ) {
                        self.stop(i, Status::Crashed);
                    }
                    let previous = keep_data.then(|| self.slots[i].identity.joined_at_ms());
                    self.start(
                        i,
                        Start::Restart {
                            clock_offset_ms,
                            previous,
                        },
                    );
                }
            }
            Fault::Join(nodes) => {
                for i in nodes {
                    if self.slots[i].status == Status::Absent {
                        self.start(i, Start::Fresh);
                    }
                }
                if self.world.watch_joins {
                    self.metrics.open_watch("joins", now);
                    self.arm_check();
                }
            }
            Fault::StepClock { nodes, by_ms } => {
                for i in nodes {
                    self.slots[i].clock.step(by_ms.saturating_mul(1000));
                    let (now, wall) = (self.node_now(i), self.wall_clock(i));
                    if let Some(n) = self.slots[i].node.as_mut() {
                        n.handle_wall_clock(now, wall);
                        self.settle(i);
                    }
                }
            }
            Fault::Clone {
                of,
                clone,
                same_joined_at,
            } => {
                if self.slots[clone].status == Status::Absent {
                    let joined_at_ms =
                        same_joined_at.then(|| self.slots[of].identity.joined_at_ms());
                    self.start(clone, Start::Clone { of, joined_at_ms });
                }
            }
        }
    }

    /// A few running nodes, drawn at random, for a joiner to join through.
    fn random_seeds(&mut self, running: &[usize]) -> Vec<std::net::SocketAddr> {
        let mut seeds = Vec::new();
        for _ in 0..self.world.join_seeds.min(running.len()) * 4 {
            let seed = addr_of(running[self.rng.random_range(0..running.len())]);
            if !seeds.contains(&seed) {
                seeds.push(seed);
            }
            if seeds.len() == self.world.join_seeds {
                break;
            }
        }
        seeds
    }

    /// Starts a new process at slot `i`, joining through its seeds.
    fn start(&mut self, i: usize, how: Start) {
        let now = self.now;
        let clock = match how {
            Start::Restart {
                clock_offset_ms: Some(offset),
                ..
            } => NodeClock::new(now, offset.saturating_mul(1000), 0),
            _ => self.world.clocks.draw(now, &mut self.clock_rng),
        };
        let wall_ms = clock.wall_at(now).unix_ms();
        let (name, joined, clone_of) = match how {
            Start::Fresh => (name_of(i), wall_ms, None),
            Start::Restart { previous, .. } => (
                name_of(i),
                Identity::joined_at_after(wall_ms, previous),
                None,
            ),
            Start::Clone { of, joined_at_ms } => (
                self.slots[of].identity.name().to_string(),
                joined_at_ms.unwrap_or(wall_ms),
                Some(of),
            ),
        };
        let identity = Identity::new(name, addr_of(i), joined, Meta::default())
            .expect("simulated names are valid");
        let generation = self.slots[i].generation + 1;
        let rng = SmallRng::seed_from_u64(splitmix64(
            self.world.seed ^ splitmix64(i as u64) ^ splitmix64(generation << 40),
        ));
        let Ok(mut node) = Node::new(self.world.config.clone(), identity.clone(), rng) else {
            return;
        };
        let running: Vec<usize> = self.running_nodes().collect();
        let seeds = if self.world.fixed_seeds {
            (0..self.world.join_seeds.min(self.slots.len()))
                .filter(|&s| s != i)
                .map(addr_of)
                .collect()
        } else {
            self.random_seeds(&running)
        };
        node.join(clock.now_at(now), &seeds);
        self.metrics.replaced(i);
        if clone_of.is_some() && !self.clones.contains(&i) {
            self.clones.push(i);
        }
        let slot = &mut self.slots[i];
        slot.seeds = seeds;
        slot.identity = Arc::new(identity);
        slot.node = Some(node);
        slot.clock = clock;
        slot.clone_of = clone_of;
        slot.left_at = None;
        slot.budget =
            crate::budget::Budget::full(now, self.world.network.packet_budget.unwrap_or(0.0));
        slot.status = Status::Running;
        slot.generation = generation;
        slot.frozen_until = Time::ZERO;
        slot.slow_until = Time::ZERO;
        slot.armed_for = None;
        self.running += 1;
        self.metrics.set_running(now, self.running);
        // A clone of a member that is not running (never started, crashed, left) or is paused takes a name that
        // is free, or soon will be: a join. The conflict comes if the original returns, and is its news then.
        let original_running = clone_of.is_some_and(|of| {
            self.slots[of].status == Status::Running && self.slots[of].frozen_until <= now
        });
        let want = if original_running {
            Want::Conflict
        } else {
            Want::Alive
        };
        self.metrics
            .start_rumour(now, i, joined, want, running.into_iter());
        self.settle(i);
    }
}

/// How a process starts in a slot.
#[derive(Clone, Copy, Debug)]
enum Start {
    /// Its first start.
    Fresh,
    /// A new instance after the last one stopped: on a clock off by `clock_offset_ms` (or drawn), and after
    /// the instance that joined at `previous` if its data directory survived.
    Restart {
        clock_offset_ms: Option<i64>,
        previous: Option<u64>,
    },
    /// A copy of the machine of slot `of`, with its `joined_at` if it copies the running process.
    Clone {
        of: usize,
        joined_at_ms: Option<u64>,
    },
}
