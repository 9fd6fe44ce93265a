//! Leaving: the goodbye, and when it has been heard.
//!
//! A leave ends once enough members have *answered* a ping that carried the goodbye, not once it was sent some
//! number of times: sends can all be lost (to loss, to a partition that cuts off the members they went to, or
//! to the leaving machine's own full transmit queue, which drops what it cannot send while the protocol counts
//! it as sent), and then every list would fail the member instead. Each member that answered holds the goodbye
//! and spreads it like any news. While it waits, the leaving node's gossip rounds go on, as pings that ask for an
//! answer, until the answers are in or the leave's deadline passes.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;

use super::Node;
use crate::event::{ChangeKind, Event};
use crate::member::{Identity, Member, State};
use crate::message::Update;
use crate::time::Time;

/// Members that must answer a goodbye before a leave ends (fewer if fewer are left): one could crash before it
/// passes the news on.
const GOODBYE_WITNESSES: usize = 3;

/// Goodbye pings remembered while waiting for their answers: far more than a leave's deadline of gossip rounds
/// sends.
const GOODBYE_PINGS_REMEMBERED: usize = 256;

/// A leave in progress.
#[derive(Clone, Debug)]
pub(super) struct Leave {
    /// When the leave stops waiting for answers; `None` once [`Event::Left`] was reported.
    deadline: Option<Time>,
    /// Sequence numbers of the goodbye pings sent.
    pings: Vec<u32>,
    /// Members that answered one.
    heard_by: Vec<Arc<str>>,
    /// The goodbye went to the seeds of a join nobody had answered yet: the leave waits for one to answer.
    told_seeds: bool,
}

impl Leave {
    fn new(deadline: Time) -> Leave {
        Leave {
            deadline: Some(deadline),
            pings: Vec::new(),
            heard_by: Vec::new(),
            told_seeds: false,
        }
    }

    /// When the leave stops waiting, if it still does.
    pub(super) fn deadline(&self) -> Option<Time> {
        self.deadline
    }

    /// Whether `witnesses` members have answered a goodbye.
    pub(super) fn heard_by(&self, witnesses: usize) -> bool {
        self.heard_by.len() >= witnesses
    }
}

impl<R: Rng> Node<R> {
    /// Leaves: marks itself left, tells the others, stops probing.
    pub fn leave(&mut self, now: Time) {
        self.start(now);
        if self.leave.is_some() {
            return;
        }
        self.leave = Some(Leave::new(now + self.config.leave_timeout));
        let seeds = self
            .join
            .take()
            .filter(|join| !join.standby)
            .map(|join| join.seeds)
            .unwrap_or_default();
        self.exchanges.clear_probes();
        let current = self.list.local();
        let local = Member {
            incarnation: current.incarnation.saturating_add(1),
            state: State::Left,
            ..current.clone()
        };
        self.publish_local(local, ChangeKind::Leave, None);
        self.next_gossip = now;
        if self.list.active_count() == 0 && !seeds.is_empty() {
            self.tell_seeds_goodbye(&seeds);
        }
    }

    /// A node that leaves before any seed answered its join knows nobody to tell, yet the seeds may already have
    /// spread its join. The goodbye goes to them in a sync: each that answers holds it, and its list names the
    /// members the goodbye pings then go to.
    fn tell_seeds_goodbye(&mut self, seeds: &[SocketAddr]) {
        self.send_seeds(seeds, false);
        if let Some(leave) = &mut self.leave {
            leave.told_seeds = true;
        }
    }

    /// Whether this node is leaving (or has left).
    pub(super) fn leaving(&self) -> bool {
        self.leave.is_some()
    }

    /// Whether enough members have answered this node's goodbye that the driver may stop.
    pub fn leave_announced(&self) -> bool {
        let Some(leave) = &self.leave else {
            return false;
        };
        // The node itself left the ring when it left, so every active member is someone who could answer.
        let others = self.list.active_count();
        if others == 0 && leave.told_seeds {
            return false;
        }
        leave.heard_by(GOODBYE_WITNESSES.min(others))
    }

    /// Sends the goodbye to `to` in a ping, so that its answer says the goodbye arrived.
    pub(super) fn say_goodbye(&mut self, now: Time, to: Arc<Identity>) {
        let seq = self.next_seq();
        if let Some(leave) = &mut self.leave {
            if leave.pings.len() == GOODBYE_PINGS_REMEMBERED {
                leave.pings.remove(0);
            }
            leave.pings.push(seq);
        }
        let goodbye = Update {
            member: self.list.local().clone(),
            accuser: None,
        };
        let ping = self.ping_for(now, &to, seq);
        self.send(to.addr(), Some(to), &[ping], Some(&goodbye));
    }

    /// Whether ack `seq` from `from` answers a goodbye; if it does, `from` has the news.
    pub(super) fn goodbye_answered(&mut self, seq: u32, from: &Arc<str>) -> bool {
        let Some(leave) = &mut self.leave else {
            return false;
        };
        if !leave.pings.contains(&seq) {
            return false;
        }
        if !leave.heard_by.contains(from) {
            leave.heard_by.push(Arc::clone(from));
        }
        true
    }

    /// Whether the leave still waits for answers to its goodbye.
    pub(super) fn awaiting_goodbye_answers(&self) -> bool {
        self.leave.as_ref().is_some_and(|l| l.deadline.is_some())
    }

    /// Reports the end of a leave once its goodbye was answered, or its deadline passed.
    pub(super) fn finish_leave(&mut self, now: Time) {
        let announced = self.leave_announced();
        let Some(leave) = &mut self.leave else {
            return;
        };
        let Some(deadline) = leave.deadline else {
            return;
        };
        if announced || now >= deadline {
            leave.deadline = None;
            self.events.push_back(Event::Left { announced });
        }
    }
}
