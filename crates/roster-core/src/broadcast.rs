//! `BroadcastQueue`: updates waiting to be piggybacked, and how often each is sent.
//!
//! One entry per member: a newer update about a member replaces the older one, which is never sent again. Each
//! packet takes refutations of a suspicion and leaves first, because they race timers running elsewhere (after
//! a partition heals, hundreds of fresher updates would otherwise hold one back for seconds), then the rest of
//! the urgent news (suspicions, failures), then routine news; within each, the least-sent
//! updates first, as many as fit, so fresh news goes out before old news is repeated, and among equally sent
//! updates the oldest, so that under more news than packets can carry none waits forever. An update retires
//! after `limit` sends (SWIM's λ·log N, computed by the caller from the current cluster size, so news about a
//! joiner is sized by the cluster it enters). Updates are kept encoded, and the queue is kept in sending order
//! (a send moves an update one step back), so filling a packet is a copy of its first items however many wait:
//! during a cold start hundreds do, on every member.
//!
//! Failure notices remember whom they were sent to, for the `sent` line of the event log.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::codec;
use crate::member::{Identity, Member, State};
use crate::message::{Message, Update};

#[derive(Debug)]
struct Queued {
    subject: Subject,
    bytes: Vec<u8>,
    /// Receivers so far, for failure notices only.
    receivers: Option<Vec<Arc<Identity>>>,
}

/// What queued news is about.
#[derive(Debug)]
enum Subject {
    /// An update about the member.
    Update(Member),
    /// A conflict notice about the claimant; queued apart from updates about it.
    Conflict(Member),
    /// A user event or a query: news about no member, never replaced.
    Event,
}

impl Queued {
    /// The member an update is about, for an update.
    fn update(&self) -> Option<&Member> {
        match &self.subject {
            Subject::Update(member) => Some(member),
            _ => None,
        }
    }

    /// The first wire version that can carry it.
    fn since_version(&self) -> u8 {
        match self.subject {
            Subject::Update(_) => 1,
            Subject::Conflict(_) => 2,
            Subject::Event => 3,
        }
    }
}

/// How queued news is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Sent up to the normal limit, least-sent first.
    Routine,
    /// A member a list did not hold before (a join): after urgent news and before routine news in a packet,
    /// and sent up to the higher limit, the sends past the normal limit only in packets that go out anyway
    /// (see [`BroadcastQueue::owes_gossip`]). A list that misses it lacks the member until a full sync
    /// happens to bring it, half a minute or more later; at the normal limit a join reached every list but one
    /// or two now and then.
    Newcomer,
    /// News whose loss leaves a list wrong (a suspicion, a failure, a leave, a refutation): sent up to the
    /// higher limit.
    Urgent,
    /// Urgent news that races timers running elsewhere, first in every packet until it retires: a refutation
    /// of a suspicion (against the suspicion timers), and a leave (against the probes of lists that have not
    /// heard it, which would fail the member; nobody can repeat a goodbye once its member is gone).
    Racing,
}

/// A queued item's place in the sending order: higher priority first, then the least sent, then the oldest.
/// The queue is kept in this order, so filling a packet reads it from the front instead of sorting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    priority: Reverse<Priority>,
    transmits: u32,
    /// Insertion order: among equally sent items of one priority the oldest goes first.
    id: u64,
}

/// A failure notice that will not be sent again, and everyone it reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredFailure {
    /// The failed member, as announced.
    pub member: Member,
    /// Every member the notice went to.
    pub to: Vec<Arc<Identity>>,
}

/// The queue.
#[derive(Debug, Default)]
pub struct BroadcastQueue {
    order: BTreeMap<Rank, Queued>,
    /// Where the queued update about each member sits in `order`.
    updates: HashMap<Box<str>, Rank>,
    /// How many queued items have each encoded length: a packet with less room than the shortest is full.
    lengths: BTreeMap<usize, usize>,
    next_id: u64,
}

impl BroadcastQueue {
    /// Queues `update`, replacing any queued update about the same member. Returns the replaced update if it
    /// was a failure notice already sent to someone.
    pub fn push(&mut self, update: &Update, priority: Priority) -> Option<RetiredFailure> {
        let retired = self
            .updates
            .get(update.member.name())
            .copied()
            .and_then(|rank| retire(self.remove(rank)));
        let mut bytes = Vec::with_capacity(32);
        codec::encode_update(&mut bytes, update);
        let receivers = (update.member.state == State::Failed).then(Vec::new);
        self.insert(
            priority,
            Queued {
                subject: Subject::Update(update.member.clone()),
                bytes,
                receivers,
            },
        );
        retired
    }

    /// Queues the notice that `claimant` was refused a name `holder` keeps, replacing an older notice about
    /// the same name. Only members that speak wire version 2 get it.
    pub fn push_conflict(&mut self, holder: &Member, claimant: &Member) {
        let older: Vec<Rank> = self
            .order
            .iter()
            .filter(
                |(_, q)| matches!(&q.subject, Subject::Conflict(m) if m.name() == claimant.name()),
            )
            .map(|(rank, _)| *rank)
            .collect();
        for rank in older {
            self.remove(rank);
        }
        let mut bytes = Vec::with_capacity(64);
        codec::encode_message(
            &mut bytes,
            &Message::Conflict {
                holder: holder.clone(),
                claimant: claimant.clone(),
            },
        );
        self.insert(
            Priority::Urgent,
            Queued {
                subject: Subject::Conflict(claimant.clone()),
                bytes,
                receivers: None,
            },
        );
    }

    /// Queues a user event or a query, already encoded as one message; only members that speak wire version
    /// 3 get it. Routine news: it is sent as often as any update.
    pub fn push_event(&mut self, bytes: Vec<u8>) {
        self.insert(
            Priority::Routine,
            Queued {
                subject: Subject::Event,
                bytes,
                receivers: None,
            },
        );
    }

    /// Drops every queued update about a member other than `keep`: news a node heard while it took no part
    /// (on standby) is stale by the time it does.
    pub fn forget_updates_except(&mut self, keep: &str) {
        let stale: Vec<Rank> = self
            .order
            .iter()
            .filter(|(_, q)| q.update().is_some_and(|m| m.name() != keep))
            .map(|(rank, _)| *rank)
            .collect();
        for rank in stale {
            self.remove(rank);
        }
    }

    /// Number of queued updates.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether anything queued is owed a gossip packet of its own: all but news of a newcomer sent
    /// `limit` times already, whose further sends ride only in packets that go out anyway. Otherwise, in a
    /// cold start, every join would keep every member gossiping twice as long.
    pub fn owes_gossip(&self, limit: u32) -> bool {
        let tier = |priority: Priority, transmits: u32| Rank {
            priority: Reverse(priority),
            transmits,
            id: 0,
        };
        self.order
            .keys()
            .next()
            .is_some_and(|first| first.priority.0 > Priority::Newcomer)
            || [Priority::Newcomer, Priority::Routine]
                .into_iter()
                .any(|priority| {
                    self.order
                        .range(tier(priority, 0)..tier(priority, limit))
                        .next()
                        .is_some()
                })
    }

    /// How urgently the queued update about `name` goes out, if one is queued.
    #[cfg(test)]
    pub(crate) fn priority_of(&self, name: &str) -> Option<Priority> {
        self.updates.get(name).map(|rank| rank.priority.0)
    }

    /// How many times the queued update about `name` has been sent, if one is queued.
    #[cfg(test)]
    pub fn transmits(&self, name: &str) -> Option<u32> {
        self.updates.get(name).map(|rank| rank.transmits)
    }

    /// Appends queued updates to `buf` while it stays within `mtu` bytes, counting a send for each, and retires
    /// those sent `limit` times (`urgent_limit` for all but routine ones). `skip` names a member whose update the
    /// caller already placed in the packet; `version` is the packet's wire version, which decides whether
    /// conflict notices may go in. Retired failure notices are appended to `retired`.
    #[allow(clippy::too_many_arguments)]
    pub fn fill(
        &mut self,
        buf: &mut Vec<u8>,
        mtu: usize,
        (limit, urgent_limit): (u32, u32),
        receiver: Option<&Arc<Identity>>,
        version: u8,
        skip: Option<&str>,
        retired: &mut Vec<RetiredFailure>,
    ) {
        if self.order.is_empty() || buf.len() >= mtu {
            return;
        }
        // A suspicion or failure notice about the receiver itself goes first: it is the one member that can
        // answer it, and in a flood of news (a partition healing) it would otherwise wait its turn for seconds.
        let about_receiver = receiver.and_then(|receiver| {
            let rank = *self.updates.get(receiver.name())?;
            let member = self.order.get(&rank)?.update()?;
            (matches!(member.state, State::Suspect | State::Failed)
                && member.identity.same_instance(receiver))
            .then_some(rank)
        });
        // Then refutations, other urgent news and routine news, in the queue's order.
        let shortest = self.lengths.keys().next().copied().unwrap_or(0);
        let mut sent = Vec::new();
        // Puts `item` in the packet if it fits and may go; says whether the packet has room for more.
        let mut put = |rank: Rank, item: &mut Queued| {
            let skipped = skip.is_some() && item.update().map(Member::name) == skip;
            if !skipped && version >= item.since_version() && buf.len() + item.bytes.len() <= mtu {
                buf.extend_from_slice(&item.bytes);
                if let (Some(receivers), Some(receiver)) = (&mut item.receivers, receiver)
                    && !receivers.iter().any(|r| r.same_instance(receiver))
                {
                    receivers.push(Arc::clone(receiver));
                }
                sent.push(rank);
            }
            mtu - buf.len() >= shortest
        };
        if let Some(rank) = about_receiver {
            put(rank, self.order.get_mut(&rank).expect("found above"));
        }
        for (rank, item) in &mut self.order {
            if Some(*rank) != about_receiver && !put(*rank, item) {
                break;
            }
        }
        if sent.is_empty() {
            return;
        }
        for rank in sent {
            let item = self.remove(rank);
            let sent_once_more = Rank {
                transmits: rank.transmits + 1,
                ..rank
            };
            self.insert_at(sent_once_more, item);
        }
        // Those sent their limit retire; so do any over a limit that fell with the cluster's size. Within one
        // priority the most sent are last.
        for priority in [
            Priority::Racing,
            Priority::Urgent,
            Priority::Newcomer,
            Priority::Routine,
        ] {
            let limit = if priority > Priority::Routine {
                urgent_limit
            } else {
                limit
            };
            let from = Rank {
                priority: Reverse(priority),
                transmits: limit,
                id: 0,
            };
            let to = Rank {
                priority: Reverse(priority),
                transmits: u32::MAX,
                id: u64::MAX,
            };
            let done: Vec<Rank> = self.order.range(from..=to).map(|(rank, _)| *rank).collect();
            for rank in done {
                if let Some(failure) = retire(self.remove(rank)) {
                    retired.push(failure);
                }
            }
        }
    }

    /// Queues a new item, not yet sent, behind every older one of its priority.
    fn insert(&mut self, priority: Priority, item: Queued) {
        let rank = Rank {
            priority: Reverse(priority),
            transmits: 0,
            id: self.next_id,
        };
        self.next_id += 1;
        self.insert_at(rank, item);
    }

    fn insert_at(&mut self, rank: Rank, item: Queued) {
        if let Some(member) = item.update() {
            self.updates.insert(member.name().into(), rank);
        }
        *self.lengths.entry(item.bytes.len()).or_default() += 1;
        self.order.insert(rank, item);
    }

    fn remove(&mut self, rank: Rank) -> Queued {
        let item = self.order.remove(&rank).expect("a queued rank");
        if let Some(member) = item.update() {
            self.updates.remove(member.name());
        }
        if let Some(count) = self.lengths.get_mut(&item.bytes.len()) {
            *count -= 1;
            if *count == 0 {
                self.lengths.remove(&item.bytes.len());
            }
        }
        item
    }
}

fn retire(item: Queued) -> Option<RetiredFailure> {
    let to = item.receivers?;
    let Subject::Update(member) = item.subject else {
        return None;
    };
    (!to.is_empty()).then_some(RetiredFailure { member, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, inc: u32, state: State) -> Update {
        let id = Identity::new(
            name,
            "10.0.0.1:7946".parse().unwrap(),
            1,
            Default::default(),
        )
        .unwrap();
        Update {
            member: Member::new(Arc::new(id), inc, state),
            accuser: None,
        }
    }

    /// A queue holding 200 urgent updates (more than a small packet holds), then `last`.
    fn behind_a_flood(last: &Update, priority: Priority) -> BroadcastQueue {
        let mut queue = BroadcastQueue::default();
        for i in 0..200 {
            let news = update(&format!("member-{i}"), 1, State::Alive);
            queue.push(&news, Priority::Urgent);
        }
        queue.push(last, priority);
        queue
    }

    /// Fills one 200-byte packet to `receiver`.
    fn fill_one(queue: &mut BroadcastQueue, receiver: Option<&Arc<Identity>>) {
        queue.fill(
            &mut Vec::new(),
            200,
            (4, 8),
            receiver,
            codec::VERSION,
            None,
            &mut Vec::new(),
        );
    }

    #[test]
    fn news_of_a_newcomer_past_the_normal_limit_rides_along_without_gossip_of_its_own() {
        let mut queue = BroadcastQueue::default();
        queue.push(&update("joiner", 0, State::Alive), Priority::Newcomer);
        for sent in 0..4 {
            assert!(queue.owes_gossip(4), "after {sent} sends");
            fill_one(&mut queue, None);
        }
        assert!(!queue.owes_gossip(4));
        assert_eq!(
            queue.transmits("joiner"),
            Some(4),
            "retired at the normal limit"
        );
        for _ in 4..8 {
            fill_one(&mut queue, None);
        }
        assert_eq!(
            queue.transmits("joiner"),
            None,
            "kept past the higher limit"
        );
        queue.push(&update("crashed", 0, State::Failed), Priority::Urgent);
        assert!(queue.owes_gossip(4));
    }

    #[test]
    fn a_refutation_goes_out_before_older_news() {
        let mut queue = behind_a_flood(&update("refuter", 2, State::Alive), Priority::Racing);
        fill_one(&mut queue, None);
        assert_eq!(queue.transmits("refuter"), Some(1));
        assert_eq!(
            queue.transmits("member-199"),
            Some(0),
            "the packet was full"
        );
    }

    #[test]
    fn a_suspicion_of_the_receiver_goes_first_in_its_packet() {
        let suspect = update("suspect", 0, State::Suspect);
        let mut queue = behind_a_flood(&suspect, Priority::Urgent);
        let other = update("member-7", 1, State::Alive).member.identity;
        fill_one(&mut queue, Some(&other));
        assert_eq!(
            queue.transmits("suspect"),
            Some(0),
            "not news for this receiver"
        );
        fill_one(&mut queue, Some(&suspect.member.identity));
        assert_eq!(queue.transmits("suspect"), Some(1));
    }

    #[test]
    fn a_failure_notice_goes_before_routine_news_that_came_after_it() {
        let mut queue = BroadcastQueue::default();
        queue.push(&update("crashed", 0, State::Failed), Priority::Urgent);
        for i in 0..200 {
            let join = update(&format!("member-{i}"), 0, State::Alive);
            queue.push(&join, Priority::Routine);
        }
        fill_one(&mut queue, None);
        assert_eq!(queue.transmits("crashed"), Some(1));
    }

    #[test]
    fn the_oldest_unsent_news_is_not_starved_by_a_stream_of_newer_news() {
        let mut queue = BroadcastQueue::default();
        queue.push(&update("first", 1, State::Alive), Priority::Routine);
        let mut sent_first_after = None;
        for i in 0..50 {
            queue.push(
                &update(&format!("later-{i}"), 1, State::Alive),
                Priority::Routine,
            );
            // A packet with room for one update, and one new update for every packet sent: more news than room.
            let room = codec::update_len(&update("later-99", 1, State::Alive));
            let mut buf = Vec::new();
            queue.fill(
                &mut buf,
                room,
                (4, 8),
                None,
                codec::VERSION,
                None,
                &mut Vec::new(),
            );
            assert!(buf.len() <= room && !buf.is_empty(), "{}", buf.len());
            if sent_first_after.is_none() && queue.transmits("first") != Some(0) {
                sent_first_after = Some(i);
            }
        }
        assert_eq!(
            sent_first_after,
            Some(0),
            "the oldest news went out only after {sent_first_after:?} packets"
        );
    }

    #[test]
    fn newer_news_about_a_member_replaces_the_old() {
        let mut queue = BroadcastQueue::default();
        queue.push(&update("a", 1, State::Alive), Priority::Routine);
        queue.push(&update("a", 2, State::Suspect), Priority::Urgent);
        assert_eq!(queue.len(), 1);
        let mut buf = Vec::new();
        queue.fill(
            &mut buf,
            1400,
            (3, 6),
            None,
            codec::VERSION,
            None,
            &mut Vec::new(),
        );
        let packet = {
            let mut p = Vec::new();
            codec::encode_header(&mut p, codec::VERSION, "x");
            p.extend_from_slice(&buf);
            codec::decode_packet(&p).unwrap()
        };
        assert_eq!(packet.messages.len(), 1);
    }

    #[test]
    fn forgetting_others_keeps_only_the_news_about_oneself_and_events() {
        let mut queue = BroadcastQueue::default();
        queue.push(&update("me", 1, State::Alive), Priority::Urgent);
        queue.push(&update("a", 0, State::Alive), Priority::Routine);
        queue.push(&update("b", 1, State::Left), Priority::Urgent);
        queue.push_event(vec![0; 8]);
        queue.forget_updates_except("me");
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.transmits("me"), Some(0));
        assert_eq!(queue.transmits("a"), None);
        assert_eq!(queue.transmits("b"), None);
        // The queue's indexes stay whole: news about a forgotten member queues again.
        queue.push(&update("a", 1, State::Alive), Priority::Routine);
        assert_eq!(queue.len(), 3);
    }

    #[test]
    fn updates_retire_after_their_limit_and_failures_report_receivers() {
        let mut queue = BroadcastQueue::default();
        queue.push(&update("a", 1, State::Alive), Priority::Routine);
        queue.push(&update("b", 1, State::Failed), Priority::Urgent);
        let receiver = Arc::new(
            Identity::new("r", "10.0.0.2:1".parse().unwrap(), 1, Default::default()).unwrap(),
        );
        let mut retired = Vec::new();
        for _ in 0..3 {
            queue.fill(
                &mut Vec::new(),
                1400,
                (3, 4),
                Some(&receiver),
                codec::VERSION,
                None,
                &mut retired,
            );
        }
        assert_eq!(queue.len(), 1, "the alive update retired after 3 sends");
        assert!(retired.is_empty());
        queue.fill(
            &mut Vec::new(),
            1400,
            (3, 4),
            Some(&receiver),
            codec::VERSION,
            None,
            &mut retired,
        );
        assert!(queue.is_empty());
        assert_eq!(retired.len(), 1);
        assert_eq!(
            retired[0].to.len(),
            1,
            "one receiver, named once however often it was sent to"
        );
    }

    #[test]
    fn a_packet_never_exceeds_the_mtu_and_least_sent_goes_first() {
        let mut queue = BroadcastQueue::default();
        for i in 0..200 {
            queue.push(
                &update(&format!("member-{i}"), 1, State::Alive),
                Priority::Routine,
            );
        }
        let mut buf = vec![0; 10];
        queue.fill(
            &mut buf,
            1400,
            (5, 5),
            None,
            codec::VERSION,
            None,
            &mut Vec::new(),
        );
        assert!(buf.len() <= 1400 && buf.len() > 1300, "{}", buf.len());
        assert_eq!(
            queue.transmits("member-0"),
            Some(1),
            "the oldest goes first"
        );
        assert_eq!(
            queue.transmits("member-199"),
            Some(0),
            "the newest did not fit"
        );
        queue.fill(
            &mut Vec::new(),
            1400,
            (5, 5),
            None,
            codec::VERSION,
            None,
            &mut Vec::new(),
        );
        assert_eq!(
            queue.transmits("member-0"),
            Some(1),
            "unsent updates go before repeats"
        );
    }
}
