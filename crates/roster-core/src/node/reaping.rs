//! Reaping: failed and left members leave the list once their timeouts pass, and are remembered as graves.

use std::collections::VecDeque;
use std::sync::Arc;

use rand::Rng;

use super::Node;
use crate::member::{Identity, Member, State};
use crate::membership::Membership;
use crate::time::Time;

/// A reap due at `at` for the member instance at `incarnation`, if it is still in the same state then.
#[derive(Debug)]
struct Reap {
    at: Time,
    identity: Arc<Identity>,
    incarnation: u32,
}

impl Reap {
    /// Whether the member is still as it was when its reap was scheduled.
    fn still_applies(&self, list: &Membership, state: State) -> bool {
        list.get(self.identity.name()).is_some_and(|m| {
            m.state == state
                && m.incarnation == self.incarnation
                && m.identity.same_instance(&self.identity)
        })
    }
}

/// The reaps scheduled, one queue per state. Each queue is in deadline order, as every reap in it has the same
/// timeout.
#[derive(Debug, Default)]
pub(super) struct Reaps {
    failed: VecDeque<Reap>,
    left: VecDeque<Reap>,
}

impl Reaps {
    /// Schedules the reap of `member` (failed or left) `timeout` after `now`.
    pub(super) fn schedule(&mut self, now: Time, member: &Member, timeout: std::time::Duration) {
        let reap = Reap {
            at: now + timeout,
            identity: Arc::clone(&member.identity),
            incarnation: member.incarnation,
        };
        match member.state {
            State::Failed => self.failed.push_back(reap),
            State::Left => self.left.push_back(reap),
            State::Alive | State::Suspect => {}
        }
    }

    /// When the next reap is due.
    pub(super) fn next_deadline(&self) -> Option<Time> {
        let fronts = [self.failed.front(), self.left.front()];
        fronts.into_iter().flatten().map(|r| r.at).min()
    }

    /// Takes the next reap due at `now` that still applies, failed members first, as the instance to remove.
    fn pop_due(&mut self, now: Time, list: &Membership) -> Option<Arc<Identity>> {
        for (queue, state) in [
            (&mut self.failed, State::Failed),
            (&mut self.left, State::Left),
        ] {
            while queue.front().is_some_and(|r| r.at <= now) {
                let reap = queue.pop_front().expect("front exists");
                if reap.still_applies(list, state) {
                    return Some(reap.identity);
                }
            }
        }
        None
    }

    /// Drops the reaps that can no longer happen (their member changed state since) once they outnumber the
    /// members, so that a member that flaps between alive and failed does not grow the queues for a whole
    /// reap timeout.
    pub(super) fn compact(&mut self, list: &Membership) {
        let limit = 2 * list.len() + 16;
        for (queue, state) in [
            (&mut self.failed, State::Failed),
            (&mut self.left, State::Left),
        ] {
            if queue.len() > limit {
                queue.retain(|r| r.still_applies(list, state));
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.failed.clear();
        self.left.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.failed.len() + self.left.len()
    }
}

impl<R: Rng> Node<R> {
    /// Removes the members whose reaps are due and buries them; forgets graves past their time.
    pub(super) fn reap(&mut self, now: Time) {
        while let Some(identity) = self.reaps.pop_due(now, &self.list) {
            if let Some(reaped) = self.list.remove(identity.name()) {
                self.reconnects.forget(&reaped.identity);
                self.graves.bury(now, &reaped);
            }
        }
        self.graves.expire(now);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::member::Meta;

    const START: Time = Time::SIM_EPOCH;

    fn member(i: u8, state: State) -> Member {
        let addr = ([10, 0, 0, i], 7946).into();
        let identity = Identity::new(format!("m{i}"), addr, 1, Meta::default()).unwrap();
        Member::new(Arc::new(identity), 0, state)
    }

    fn list_with(members: &[Member]) -> Membership {
        let mut list = Membership::new(member(0, State::Alive));
        members.iter().for_each(|m| {
            list.apply(m.clone());
        });
        list
    }

    #[test]
    fn a_reap_is_due_after_its_timeout_and_only_while_the_member_is_unchanged() {
        let failed = member(1, State::Failed);
        let left = member(2, State::Left);
        let mut list = list_with(&[failed.clone(), left.clone()]);
        let mut reaps = Reaps::default();
        reaps.schedule(START, &failed, Duration::from_secs(90));
        reaps.schedule(START, &left, Duration::from_secs(30));
        assert_eq!(reaps.next_deadline(), Some(START + Duration::from_secs(30)));
        assert!(reaps.pop_due(START, &list).is_none());

        // m2 came back before its reap: the reap no longer applies.
        list.apply(Member::new(Arc::clone(&left.identity), 1, State::Alive));
        assert!(
            reaps
                .pop_due(START + Duration::from_secs(30), &list)
                .is_none()
        );
        let due = reaps.pop_due(START + Duration::from_secs(90), &list);
        assert_eq!(due.map(|id| id.name().to_owned()), Some("m1".to_owned()));
        assert_eq!(reaps.len(), 0);
        assert_eq!(reaps.next_deadline(), None);
    }

    #[test]
    fn compaction_keeps_only_reaps_that_can_still_happen() {
        let flapping = member(1, State::Failed);
        let mut list = list_with(std::slice::from_ref(&flapping));
        let mut reaps = Reaps::default();
        for incarnation in 0..40 {
            let failed = Member::new(Arc::clone(&flapping.identity), incarnation, State::Failed);
            list.apply(failed.clone());
            reaps.schedule(START, &failed, Duration::from_secs(90));
        }
        assert_eq!(reaps.len(), 40);
        reaps.compact(&list);
        assert_eq!(reaps.len(), 1, "only the latest instance's reap applies");
    }
}
