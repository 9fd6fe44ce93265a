//! Reconnects: the failed members this list tries again now and then, so that the two sides of a healed
//! partition find each other, and a list that alone holds a live member failed finds out.
//!
//! A member the whole cluster failed would get a full sync from every list at every interval when it came
//! back, so each list tries its failed members with a chance that keeps the attempts each one gets from the
//! whole cluster near a constant. That chance assumes every list holds the member failed. A verdict this list
//! reached alone (its own suspicion ran out, and no other member ever said the member failed) breaks the
//! assumption: it is most likely the verdict of a list cut off from the member for a while, which nobody else
//! shares, and at the cluster-wide chance the list would hold it for hours. Such a verdict is tried at every
//! interval instead, until another member's word corroborates it or the member proves alive. A list cut off
//! alone reaches such a verdict on everyone it knew, and a member that left meanwhile never answers; so a few
//! of them are tried at each interval, not one, or the live ones could wait several intervals behind the gone.

use std::sync::Arc;

use rand::Rng;

use crate::member::{Identity, State};
use crate::membership::Membership;
use crate::time::Time;

/// Reconnect attempts each failed member gets per reconnect interval, from the whole cluster: enough that a
/// healed partition is found within an interval or so, few enough that a member every list holds as failed is
/// not flooded with full syncs when it comes back.
const RECONNECTS_PER_FAILED_MEMBER: f64 = 3.0;

/// Lone verdicts tried at each interval. A try is a digest, so a few cost little, and three finds a live member
/// among the gone within an interval or two in the lists a partition leaves behind.
const LONE_TRIES_PER_INTERVAL: usize = 3;

/// A failed member this list tries now and then.
#[derive(Clone, Debug)]
struct FailedMember {
    identity: Arc<Identity>,
    /// This list failed it on its own, and no other member has said it failed.
    lone: bool,
}

/// The failed members to try, and when to try next.
#[derive(Clone, Debug, Default)]
pub(super) struct Reconnects {
    pool: Vec<FailedMember>,
    next: Time,
}

impl Reconnects {
    /// When the next attempt is due.
    pub(super) fn next(&self) -> Time {
        self.next
    }

    /// Sets when the next attempt is due.
    pub(super) fn schedule(&mut self, at: Time) {
        self.next = at;
    }

    /// Failed members held.
    pub(super) fn len(&self) -> usize {
        self.pool.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    /// Starts trying `identity`, now failed in this list.
    pub(super) fn track(&mut self, identity: &Arc<Identity>) {
        if self.position(identity).is_none() {
            self.pool.push(FailedMember {
                identity: Arc::clone(identity),
                lone: false,
            });
        }
    }

    /// This list failed `identity` on its own suspicion, with no other member's verdict to go on.
    pub(super) fn mark_lone(&mut self, identity: &Arc<Identity>) {
        self.track(identity);
        if let Some(at) = self.position(identity) {
            self.pool[at].lone = true;
        }
    }

    /// Another member said `identity` failed: this list's verdict is not its own alone.
    pub(super) fn corroborate(&mut self, identity: &Identity) {
        if let Some(at) = self.position(identity) {
            self.pool[at].lone = false;
        }
    }

    /// Stops trying `identity` (it was reaped).
    pub(super) fn forget(&mut self, identity: &Identity) {
        self.pool.retain(|f| !f.identity.same_instance(identity));
    }

    pub(super) fn clear(&mut self) {
        self.pool.clear();
    }

    /// Picks the members to try at this interval: up to `LONE_TRIES_PER_INTERVAL` lone verdicts whenever there
    /// are any, else at most one failed member or one of the `buried` (failed, then reaped) with the chance that
    /// keeps the cluster's attempts per failed member near a constant, among `active` members.
    pub(super) fn choose<R: Rng>(
        &mut self,
        list: &Membership,
        buried: &[&Arc<Identity>],
        active: usize,
        rng: &mut R,
    ) -> Vec<Arc<Identity>> {
        self.pool.retain(|f| {
            list.get(f.identity.name())
                .is_some_and(|m| m.state == State::Failed && m.identity.same_instance(&f.identity))
        });
        let lone: Vec<&FailedMember> = self.pool.iter().filter(|f| f.lone).collect();
        if !lone.is_empty() {
            let tries = lone.len().min(LONE_TRIES_PER_INTERVAL);
            return rand::seq::index::sample(rng, lone.len(), tries)
                .into_iter()
                .map(|pick| Arc::clone(&lone[pick].identity))
                .collect();
        }
        let candidates = self.pool.len() + buried.len();
        if candidates == 0 {
            return Vec::new();
        }
        let chance = RECONNECTS_PER_FAILED_MEMBER * candidates as f64 / active.max(1) as f64;
        if chance < 1.0 && rng.random::<f64>() >= chance {
            return Vec::new();
        }
        let pick = rng.random_range(0..candidates);
        vec![match self.pool.get(pick) {
            Some(f) => Arc::clone(&f.identity),
            None => Arc::clone(buried[pick - self.pool.len()]),
        }]
    }

    fn position(&self, identity: &Identity) -> Option<usize> {
        self.pool
            .iter()
            .position(|f| f.identity.same_instance(identity))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::member::{Member, Meta};

    fn identity(i: u8) -> Arc<Identity> {
        let addr = ([10, 0, 0, i], 7946).into();
        Arc::new(Identity::new(format!("m{i}"), addr, 1, Meta::default()).unwrap())
    }

    /// A list of `n` members (m0 local) in which `failed` are failed.
    fn list(n: u8, failed: &[u8]) -> Membership {
        let mut list = Membership::new(Member::new(identity(0), 0, State::Alive));
        for i in 1..n {
            let state = if failed.contains(&i) {
                State::Failed
            } else {
                State::Alive
            };
            list.apply(Member::new(identity(i), 0, state));
        }
        list
    }

    /// How many of `intervals` attempts pick a member.
    fn attempts(reconnects: &mut Reconnects, list: &Membership, intervals: usize) -> usize {
        let mut rng = SmallRng::seed_from_u64(7);
        (0..intervals)
            .filter(|_| {
                !reconnects
                    .choose(list, &[], list.active_count(), &mut rng)
                    .is_empty()
            })
            .count()
    }

    #[test]
    fn a_member_the_whole_cluster_failed_is_tried_rarely_by_each_list() {
        let list = list(200, &[5]);
        let mut reconnects = Reconnects::default();
        reconnects.track(&identity(5));
        reconnects.corroborate(&identity(5));
        let tried = attempts(&mut reconnects, &list, 1_000);
        // About 3 attempts per interval from 199 lists: 3 / 199 of the intervals here.
        assert!((5..=30).contains(&tried), "{tried} of 1000 intervals");
    }

    #[test]
    fn a_verdict_this_list_reached_alone_is_tried_every_interval_until_corroborated() {
        let list = list(200, &[5]);
        let mut reconnects = Reconnects::default();
        reconnects.mark_lone(&identity(5));
        assert_eq!(attempts(&mut reconnects, &list, 50), 50);
        reconnects.corroborate(&identity(5));
        assert!(attempts(&mut reconnects, &list, 50) < 5);
    }

    #[test]
    fn a_list_cut_off_alone_tries_several_of_its_lone_verdicts_each_interval() {
        let list = list(6, &[1, 2, 3, 4, 5]);
        let mut reconnects = Reconnects::default();
        for i in 1..=5 {
            reconnects.mark_lone(&identity(i));
        }
        let mut rng = SmallRng::seed_from_u64(7);
        let mut tried = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let picks = reconnects.choose(&list, &[], list.active_count(), &mut rng);
            assert_eq!(picks.len(), LONE_TRIES_PER_INTERVAL);
            tried.extend(picks.iter().map(|p| p.name().to_string()));
        }
        // Three intervals of three tries each reach nearly every member of five; one try each could not.
        assert!(tried.len() >= 4, "tried {tried:?}");
    }

    #[test]
    fn members_no_longer_failed_are_not_tried() {
        let mut reconnects = Reconnects::default();
        reconnects.mark_lone(&identity(5));
        let alive_again = list(10, &[]);
        assert_eq!(attempts(&mut reconnects, &alive_again, 10), 0);
        assert!(reconnects.is_empty());
    }
}
