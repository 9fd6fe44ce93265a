//! `Graves`: what a node remembers of the members it reaped.
//!
//! A list forgets a member some time after it failed or left (reaping), but every list reaps at its own time,
//! and a list cut off by a partition may hold the member for much longer. With no memory of what it reaped, a
//! list would take the member back from the first full sync or gossip that still carried it, and a tombstone
//! would travel from list to list for ever; worse, a member that left while a partition lasted longer than the
//! reap timeout would come back from the far side's lists as `failed`. A grave keeps only the rank of the
//! reaped claim (name, `joined_at`, incarnation, state): a claim about a buried member is taken only if it
//! outranks the grave (a newer instance, or a later incarnation of the same one).
//!
//! Graves last as long as a failed member is kept before it is reaped, so that any list that still holds the
//! buried claim reaps it first. They are never gossiped or synced: a grave changes only what its own node
//! accepts, and the answer it gives a peer that still holds a buried member as failed (see `Node`). A failed
//! member's grave keeps its address too: the node still tries it now and then, so that the two sides of a
//! partition that outlasted the failed reap timeout (but not the grave) still find each other.

use std::collections::VecDeque;
use std::time::Duration;

use hashbrown::HashMap;

use std::sync::Arc;

use crate::member::{Identity, Member, State};
use crate::time::Time;

/// A reaped claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grave {
    pub identity: Arc<Identity>,
    pub incarnation: u32,
    pub state: State,
    until: Time,
}

impl Grave {
    fn rank(&self) -> (u64, u32, u8) {
        (
            self.identity.joined_at_ms(),
            self.incarnation,
            self.state.rank(),
        )
    }

    /// The claim that was buried.
    pub fn claim(&self) -> Member {
        Member::new(Arc::clone(&self.identity), self.incarnation, self.state)
    }
}

/// The graves of one node.
#[derive(Debug)]
pub(crate) struct Graves {
    by_name: HashMap<Box<str>, Grave>,
    /// Names in the order their graves expire; a name whose grave was dug again later is skipped when its
    /// older entry comes up.
    expiry: VecDeque<(Time, Box<str>)>,
    lifetime: Duration,
}

impl Graves {
    pub fn new(lifetime: Duration) -> Graves {
        Graves {
            by_name: HashMap::new(),
            expiry: VecDeque::new(),
            lifetime,
        }
    }

    /// Remembers `member`, just reaped at `now`.
    pub fn bury(&mut self, now: Time, member: &Member) {
        let until = now + self.lifetime;
        let name: Box<str> = member.name().into();
        self.by_name.insert(
            name.clone(),
            Grave {
                identity: Arc::clone(&member.identity),
                incarnation: member.incarnation,
                state: member.state,
                until,
            },
        );
        self.expiry.push_back((until, name));
    }

    /// The grave of `name`, if it is buried here.
    pub fn get(&self, name: &str) -> Option<&Grave> {
        self.by_name.get(name)
    }

    /// The grave that `claim` does not outrank, if there is one: the claim is old news about a reaped member.
    pub fn holds(&self, claim: &Member) -> Option<&Grave> {
        let grave = self.by_name.get(claim.name())?;
        let rank = (
            claim.identity.joined_at_ms(),
            claim.incarnation,
            claim.state.rank(),
        );
        (rank <= grave.rank()).then_some(grave)
    }

    /// Forgets the grave of `name` (a newer claim about it was taken).
    pub fn remove(&mut self, name: &str) {
        self.by_name.remove(name);
    }

    /// Forgets the graves that expired by `now`.
    pub fn expire(&mut self, now: Time) {
        while let Some((until, _)) = self.expiry.front() {
            if *until > now {
                break;
            }
            let (until, name) = self.expiry.pop_front().expect("front exists");
            if self.by_name.get(&name).is_some_and(|g| g.until == until) {
                self.by_name.remove(&name);
            }
        }
    }

    /// Graves kept.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// The failed members buried here whose graves still stand: `expiry` holds each name once per burial, and
    /// only the latest counts.
    pub fn failed(&self) -> impl Iterator<Item = &Arc<Identity>> {
        self.expiry.iter().filter_map(|(until, name)| {
            self.by_name
                .get(name)
                .filter(|g| g.until == *until && g.state == State::Failed)
                .map(|g| &g.identity)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(joined: u64, inc: u32, state: State) -> Member {
        let id = Identity::new(
            "m1",
            "10.0.0.1:1".parse().unwrap(),
            joined,
            Default::default(),
        );
        Member::new(Arc::new(id.unwrap()), inc, state)
    }

    #[test]
    fn a_grave_holds_back_old_news_and_lets_newer_news_through_until_it_expires() {
        let mut graves = Graves::new(Duration::from_secs(60));
        graves.bury(Time::ZERO, &claim(5, 2, State::Left));
        assert!(graves.holds(&claim(5, 2, State::Left)).is_some());
        assert!(graves.holds(&claim(5, 1, State::Failed)).is_some());
        assert!(graves.holds(&claim(5, 2, State::Failed)).is_some());
        assert!(
            graves.holds(&claim(5, 3, State::Alive)).is_none(),
            "a later incarnation"
        );
        assert!(
            graves.holds(&claim(6, 0, State::Alive)).is_none(),
            "a newer instance"
        );
        graves.expire(Time::ZERO + Duration::from_secs(59));
        assert_eq!(graves.len(), 1);
        graves.expire(Time::ZERO + Duration::from_secs(60));
        assert_eq!(graves.len(), 0);
    }

    #[test]
    fn a_grave_dug_again_lasts_from_the_second_burial() {
        let mut graves = Graves::new(Duration::from_secs(60));
        graves.bury(Time::ZERO, &claim(5, 2, State::Left));
        graves.bury(
            Time::ZERO + Duration::from_secs(30),
            &claim(7, 0, State::Failed),
        );
        graves.expire(Time::ZERO + Duration::from_secs(61));
        assert_eq!(graves.len(), 1);
        assert!(graves.holds(&claim(7, 0, State::Failed)).is_some());
    }
}
