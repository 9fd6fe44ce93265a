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
use roster_core::{Identity, Meta, Node, Time};

use crate::engine::{LEAVE_POLL, Sim, Status, What, mix, name_of};
use crate::metrics::Want;
use crate::network::addr_of;

/// Something that happens to some nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The nodes stop at once, with no goodbye: their packets in flight still arrive, nothing more is sent.
    Crash(Vec<usize>),
    /// The nodes stop processing for `duration`, then resume: timers that fell due and packets that arrived
    /// meanwhile are handled late, in arrival order (a GC pause, a VM migration, SIGSTOP).
    Freeze {
        nodes: Vec<usize>,
        duration: Duration,
    },
    /// For `duration`, every timer of the nodes fires and every packet to them is handled up to `max_lag`
    /// late (uniformly drawn): an overloaded machine, the case Lifeguard was made for.
    Slow {
        nodes: Vec<usize>,
        duration: Duration,
        max_lag: Duration,
    },
    /// The nodes leave on purpose, and stop once their goodbye has gone out.
    Leave(Vec<usize>),
    /// The nodes (crashed first if still running) start a new instance, with a newer `joined_at`, that joins
    /// through a few running members.
    Restart(Vec<usize>),
    /// Nodes that were never started start and join through a few running members.
    Join(Vec<usize>),
}

impl Fault {
    /// The nodes the fault names.
    pub fn nodes(&self) -> &[usize] {
        match self {
            Fault::Crash(nodes)
            | Fault::Freeze { nodes, .. }
            | Fault::Slow { nodes, .. }
            | Fault::Leave(nodes)
            | Fault::Restart(nodes)
            | Fault::Join(nodes) => nodes,
        }
    }

    /// The word used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash(_) => "crash",
            Fault::Freeze { .. } => "freeze",
            Fault::Slow { .. } => "slow",
            Fault::Leave(_) => "leave",
            Fault::Restart(_) => "restart",
            Fault::Join(_) => "join",
        }
    }
}

/// A fault and when it happens, counted from the start of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheduled {
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
        let slot = &mut self.slots[i];
        slot.node = None;
        slot.status = status;
        slot.armed_for = None;
        if was_running {
            self.running -= 1;
        }
        self.metrics.set_running(self.now, self.running);
        let kept = match status {
            Status::Crashed => Some(Want::Failed),
            Status::Left => Some(Want::Left),
            _ => None,
        };
        self.metrics.stopped(self.now, i, kept);
    }

    pub(crate) fn apply(&mut self, fault: Fault) {
        let now = self.now;
        match fault {
            Fault::Crash(nodes) => {
                let crashed: Vec<usize> = nodes
                    .into_iter()
                    .filter(|&i| matches!(self.slots[i].status, Status::Running))
                    .collect();
                for &i in &crashed {
                    self.stop(i, Status::Crashed);
                }
                // Rumours start after every crash of the batch, so that no crashed node is an observer.
                for &i in &crashed {
                    let observers: Vec<usize> = self.running_nodes().collect();
                    let joined = self.slots[i].identity.joined_at_ms();
                    self.metrics
                        .start_rumour(now, i, joined, Want::Failed, observers.into_iter());
                }
            }
            Fault::Freeze { nodes, duration } => {
                for i in nodes {
                    self.slots[i].frozen_until = now + duration;
                    self.slots[i].freeze_length = duration;
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
                    if let Some(n) = self.slots[i].node.as_mut() {
                        n.leave(now);
                    }
                    self.slots[i].status = Status::Leaving;
                    self.running -= 1;
                    self.metrics.set_running(now, self.running);
                    let observers: Vec<usize> = self.running_nodes().collect();
                    let joined = self.slots[i].identity.joined_at_ms();
                    self.metrics
                        .start_rumour(now, i, joined, Want::Left, observers.into_iter());
                    self.settle(i);
                    self.push(
                        now + LEAVE_POLL,
                        What::LeaveCheck {
                            node: i as u32,
                            since: now,
                        },
                    );
                }
            }
            Fault::Restart(nodes) => {
                for i in nodes {
                    if matches!(self.slots[i].status, Status::Running | Status::Leaving) {
                        self.stop(i, Status::Crashed);
                    }
                    self.start(i);
                }
            }
            Fault::Join(nodes) => {
                for i in nodes {
                    if self.slots[i].status == Status::Absent {
                        self.start(i);
                    }
                }
                self.metrics.open_watch("joins", now);
                self.arm_check();
            }
        }
    }

    /// Starts a new instance at slot `i`, joining through a few running nodes.
    fn start(&mut self, i: usize) {
        let now = self.now;
        let old = Arc::clone(&self.slots[i].identity);
        let joined = now.unix_ms().max(old.joined_at_ms() + 1);
        let identity = Identity::new(name_of(i), addr_of(i), joined, Meta::default())
            .expect("simulated names are valid");
        let generation = self.slots[i].generation + 1;
        let rng =
            SmallRng::seed_from_u64(mix(self.world.seed ^ mix(i as u64) ^ mix(generation << 40)));
        let Ok(mut node) = Node::new(self.world.config.clone(), identity.clone(), rng) else {
            return;
        };
        let running: Vec<usize> = self.running_nodes().collect();
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
        node.join(now, &seeds);
        self.metrics.replaced(i);
        let slot = &mut self.slots[i];
        slot.identity = Arc::new(identity);
        slot.node = Some(node);
        slot.status = Status::Running;
        slot.generation = generation;
        slot.frozen_until = Time::ZERO;
        slot.slow_until = Time::ZERO;
        slot.armed_for = None;
        self.running += 1;
        self.metrics.set_running(now, self.running);
        self.metrics
            .start_rumour(now, i, joined, Want::Alive, running.into_iter());
        self.settle(i);
    }
}
