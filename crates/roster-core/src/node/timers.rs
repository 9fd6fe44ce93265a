//! The node's timers: one table of every source of work that waits for a time, so that what
//! [`Node::poll_timeout`] promises and what [`Node::handle_timeout`] does are read from the same place and
//! cannot drift apart. A part of the node that needs waking adds a [`Timer`], its deadline and its handler
//! here, and nowhere else.

use rand::Rng;

use super::Node;
use crate::time::Time;

/// Each source of timed work, in the order `handle_timeout` serves them when several are due at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// A suspicion whose time is up turns into a failure.
    Suspicion,
    /// A probe's direct ping timed out (ask helpers), or its whole window did (suspect the target).
    Probe,
    /// A ping-req relayed for another member is due a nack, or expires.
    Relay,
    /// The next round's probe.
    ProbeRound,
    /// Check that this round's prober pinged this node.
    ProberCheck,
    /// A full-list sync with a random member (anti-entropy).
    Sync,
    /// An attempt to reach a failed member again.
    Reconnect,
    /// A gossip round for queued news.
    Gossip,
    /// The next attempt of a join.
    JoinRetry,
    /// A failed or left member's entry is due to be reaped.
    Reap,
    /// A leave stops waiting for its goodbye to go out.
    LeaveDeadline,
    /// A query this node sent stops taking answers.
    QueryDeadline,
}

impl Timer {
    pub(super) const ALL: [Timer; 12] = [
        Timer::Suspicion,
        Timer::Probe,
        Timer::Relay,
        Timer::ProbeRound,
        Timer::ProberCheck,
        Timer::Sync,
        Timer::Reconnect,
        Timer::Gossip,
        Timer::JoinRetry,
        Timer::Reap,
        Timer::LeaveDeadline,
        Timer::QueryDeadline,
    ];
}

impl<R: Rng> Node<R> {
    /// Time has passed; call at or after [`Node::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Time) {
        self.start(now);
        for timer in Timer::ALL {
            // Each deadline is read after the timers before it ran: their work may have moved it.
            if self.due(timer, now) {
                self.fire(timer, now);
            }
        }
        // Gossip may just have sent the goodbye its last time.
        self.finish_leave(now);
    }

    /// When the node next needs [`Node::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Time> {
        if !self.started {
            return None;
        }
        Timer::ALL
            .into_iter()
            .filter_map(|t| self.deadline(t))
            .min()
    }

    /// When `timer` is next due, if it is armed.
    pub(super) fn deadline(&self, timer: Timer) -> Option<Time> {
        match timer {
            Timer::Suspicion => self.suspicions.next_deadline(),
            Timer::Probe => self.exchanges.next_probe_deadline(),
            Timer::Relay => self.exchanges.next_relay_deadline(),
            Timer::ProbeRound => self
                .participating()
                .then(|| self.schedule.next_time(&self.list))
                .flatten(),
            Timer::ProberCheck => self
                .participating()
                .then(|| self.schedule.prober_check_time(&self.list))
                .flatten(),
            Timer::Sync => {
                (self.participating() && !self.list.is_alone()).then_some(self.next_sync)
            }
            Timer::Reconnect => (self.participating()
                && (!self.reconnects.is_empty() || self.graves.len() > 0))
                .then_some(self.reconnects.next()),
            Timer::Gossip => ((!self.broadcasts.is_empty() || self.awaiting_goodbye_answers())
                && !self.standby)
                .then_some(self.next_gossip),
            Timer::JoinRetry => self.join.as_ref().map(|j| j.next_retry),
            Timer::Reap => self.reaps.next_deadline(),
            Timer::LeaveDeadline => self.leave.as_ref().and_then(|l| l.deadline()),
            Timer::QueryDeadline => self.queries.next_deadline(),
        }
    }

    /// Whether `timer` is due at `now`. Syncs and reconnects also run when they come due while there is
    /// nobody to sync with or reconnect to, at whichever wake comes first, so that their rhythm (and the
    /// jitter drawn for it) does not depend on when the list last held a peer or a failed member.
    fn due(&self, timer: Timer, now: Time) -> bool {
        match timer {
            Timer::Sync => self.participating() && now >= self.next_sync,
            Timer::Reconnect => self.participating() && now >= self.reconnects.next(),
            _ => self.deadline(timer).is_some_and(|at| at <= now),
        }
    }

    /// Does the work `timer` stands for.
    fn fire(&mut self, timer: Timer, now: Time) {
        match timer {
            Timer::Suspicion => self.expire_suspicions(now),
            Timer::Probe => self.advance_probes(now),
            Timer::Relay => self.expire_relays(now),
            Timer::ProbeRound => self.probe_if_due(now),
            Timer::ProberCheck => self.check_prober(now),
            Timer::Sync => self.anti_entropy(now),
            Timer::Reconnect => self.reconnect(now),
            Timer::Gossip => self.gossip(now),
            Timer::JoinRetry => self.retry_join(now),
            Timer::Reap => self.reap(now),
            Timer::LeaveDeadline => {}
            Timer::QueryDeadline => self.close_queries(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::config::Config;
    use crate::member::{Identity, Member, Meta, State};

    const START: Time = Time::SIM_EPOCH;

    fn identity(i: u8) -> Identity {
        let addr: SocketAddr = ([10, 0, 0, i], 7946).into();
        Identity::new(format!("m{i}"), addr, START.unix_ms(), Meta::default()).unwrap()
    }

    fn joining_node() -> Node {
        let mut node =
            Node::new(Config::default(), identity(1), SmallRng::seed_from_u64(3)).unwrap();
        node.join(START, &["10.0.0.2:7946".parse().unwrap()]);
        node
    }

    /// A node that knows two members who never answer: it probes, suspects and fails them.
    fn node_among_the_silent() -> Node {
        let mut node =
            Node::new(Config::default(), identity(1), SmallRng::seed_from_u64(3)).unwrap();
        let others = [2, 3].map(|i| Member::new(std::sync::Arc::new(identity(i)), 0, State::Alive));
        node.adopt_members(START, others);
        node
    }

    #[test]
    fn poll_timeout_is_the_earliest_armed_timer() {
        let node = joining_node();
        let earliest = Timer::ALL
            .into_iter()
            .filter_map(|t| node.deadline(t))
            .min();
        assert_eq!(node.poll_timeout(), earliest);
        assert!(node.deadline(Timer::JoinRetry).is_some());
        assert_eq!(node.deadline(Timer::Suspicion), None);
    }

    #[test]
    fn handling_a_timeout_moves_every_timer_that_was_due_past_now() {
        let mut node = node_among_the_silent();
        let mut fired = 0;
        while let Some(now) = node.poll_timeout() {
            node.handle_timeout(now);
            while node.poll_transmit().is_some() {}
            for timer in Timer::ALL {
                assert!(
                    node.deadline(timer).is_none_or(|at| at > now),
                    "{timer:?} still due at {now:?} after handle_timeout"
                );
            }
            fired += 1;
            if node
                .members()
                .all(|m| m.name() == "m1" || m.state == State::Failed)
                || fired == 1_000
            {
                break;
            }
        }
        assert!(
            node.members()
                .all(|m| m.name() == "m1" || m.state == State::Failed),
            "the silent members are not failed after {fired} timeouts"
        );
    }
}
