//! `Membership`: the list of members and how claims about them merge.
//!
//! The list holds one entry per name, the local node's own at index 0. A claim replaces an entry only if it
//! takes precedence (see `member`), so applying a set of claims in any order gives the same list. Beside the
//! entries the list keeps what the protocol asks of it often: a name index, the ring of active members in hash
//! order (the probe schedule of `probe`), counts per state, and a digest that two members compare to see
//! whether a full sync is needed.
//!
//! Memory matters here: the simulator holds 10,000 lists of 10,000 members. An entry is an `Arc<Identity>`
//! shared by every list that knows the instance, an incarnation and a state (16 bytes), plus 4 bytes of index
//! and 8 of ring.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::member::{Identity, Member, State};
use crate::mix::finalize;

/// A stable 64-bit hash of a name (FNV-1a, then a finalizer so that near names spread). Every member computes
/// the same value, which the ring order and the digest depend on; `std`'s hashers promise no such thing.
pub fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.as_bytes() {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    finalize(h)
}

fn entry_digest(member: &Member) -> u64 {
    let id = &member.identity;
    finalize(
        id.name_hash()
            ^ finalize(id.joined_at_ms())
            ^ finalize(u64::from(member.incarnation) << 8 | u64::from(member.state.rank()))
            ^ finalize(addr_bits(id)),
    )
}

fn addr_bits(id: &Identity) -> u64 {
    let ip = match id.addr().ip() {
        std::net::IpAddr::V4(ip) => u64::from(ip.to_bits()),
        std::net::IpAddr::V6(ip) => {
            let bits = ip.to_bits();
            (bits as u64) ^ ((bits >> 64) as u64)
        }
    };
    ip << 16 | u64::from(id.addr().port())
}

/// Where an identity sorts on the ring: the high half of its name hash, ties broken by name.
fn ring_key_of(id: &Identity) -> (u32, &str) {
    ((id.name_hash() >> 32) as u32, id.name())
}

/// The position of an active member on the ring: its name hash, ties broken by name.
#[derive(Clone, Copy, Debug)]
struct RingSlot {
    hash: u32,
    index: u32,
}

/// What applying a claim did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The claim was new to the list, or took precedence over what it held.
    Changed { previous: Option<Member> },
    /// The list already held this claim or a stronger one.
    Unchanged,
}

/// The list of members.
#[derive(Debug)]
pub struct Membership {
    entries: Vec<Member>,
    index: HashTable<u32>,
    ring: Vec<RingSlot>,
    /// The local node's position on the ring while it is active: asked for at every probe, so kept rather
    /// than searched.
    local_ring: Option<usize>,
    /// Bumped whenever the ring changes, so that answers derived from it can be cached (see `ring_version`).
    ring_version: u64,
    /// The ring position after the latest insertion, tried first by the next one.
    ring_next_insert: usize,
    counts: [usize; 4],
    digest: u64,
}

impl Membership {
    /// A list that holds only the local node.
    pub fn new(local: Member) -> Membership {
        let mut list = Membership {
            entries: Vec::new(),
            index: HashTable::new(),
            ring: Vec::new(),
            local_ring: None,
            ring_version: 0,
            ring_next_insert: 0,
            counts: [0; 4],
            digest: 0,
        };
        list.insert(local);
        list
    }

    /// Reserves room for `additional` more members (the simulator starts 10,000 lists at full size).
    pub fn reserve_exact(&mut self, additional: usize) {
        self.entries.reserve_exact(additional);
        self.ring.reserve_exact(additional);
        let entries = &self.entries;
        self.index
            .reserve(additional, |&i| entries[i as usize].identity.name_hash());
    }

    /// The local node's own entry.
    pub fn local(&self) -> &Member {
        &self.entries[0]
    }

    /// Every entry, the local node's first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Member> {
        self.entries.iter()
    }

    /// Number of entries, the local node's included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list holds only the local node.
    pub fn is_alone(&self) -> bool {
        self.entries.len() == 1
    }

    /// Entries in `state`, the local node's included.
    pub fn count(&self, state: State) -> usize {
        self.counts[state.rank() as usize]
    }

    /// Members taking part (alive or suspect), the local node included: the cluster size as this node sees it.
    pub fn active_count(&self) -> usize {
        self.ring.len()
    }

    /// Changes whenever a member enters or leaves the ring: equal versions mean the same ring.
    pub fn ring_version(&self) -> u64 {
        self.ring_version
    }

    /// The digest of the whole list: equal digests mean equal lists (with overwhelming probability).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&Member> {
        self.position(name).map(|i| &self.entries[i])
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.position_hashed(name_hash(name), name)
    }

    fn position_hashed(&self, hash: u64, name: &str) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(hash, |&i| entries[i as usize].name() == name)
            .map(|&i| i as usize)
    }

    /// Merges a claim: it replaces the entry for its name if it takes precedence. A claim about a known instance
    /// reuses the list's `Arc<Identity>` so that lists share identities instead of copying them.
    pub fn apply(&mut self, mut claim: Member) -> Applied {
        match self.position_hashed(claim.identity.name_hash(), claim.name()) {
            None => {
                self.insert(claim);
                Applied::Changed { previous: None }
            }
            Some(i) => {
                let current = &self.entries[i];
                if !claim.supersedes(current) {
                    return Applied::Unchanged;
                }
                if *claim.identity == *current.identity {
                    claim.identity = Arc::clone(&current.identity);
                }
                let previous = self.replace(i, claim);
                Applied::Changed {
                    previous: Some(previous),
                }
            }
        }
    }

    /// Sets the local node's own entry, whatever precedence says (a refutation, a leave, new metadata).
    pub fn set_local(&mut self, member: Member) -> Member {
        debug_assert_eq!(member.name(), self.entries[0].name());
        self.replace(0, member)
    }

    /// Forgets `name` (reaping). The local node is never removed.
    pub fn remove(&mut self, name: &str) -> Option<Member> {
        let i = self.position(name).filter(|&i| i != 0)?;
        let removed = self.entries[i].clone();
        self.account(&removed, -1);
        if removed.state.is_active() {
            self.ring_remove(&removed);
        }
        let hash = removed.identity.name_hash();
        let entries = &self.entries;
        if let Ok(slot) = self
            .index
            .find_entry(hash, |&j| entries[j as usize].name() == removed.name())
        {
            slot.remove();
        }
        // `swap_remove` moves the last entry into slot `i`: repoint its index and ring slot first, while the
        // ring's comparisons can still read every entry.
        let last = self.entries.len() - 1;
        if i != last {
            let moved = &self.entries[last].identity;
            let ring_at = if self.entries[last].state.is_active() {
                self.ring_search(moved).ok()
            } else {
                None
            };
            if let Some(slot) = self
                .index
                .find_mut(moved.name_hash(), |&j| j as usize == last)
            {
                *slot = i as u32;
            }
            if let Some(at) = ring_at {
                self.ring[at].index = i as u32;
            }
        }
        self.entries.swap_remove(i);
        Some(removed)
    }

    fn insert(&mut self, member: Member) {
        let i = self.entries.len() as u32;
        let hash = member.identity.name_hash();
        self.account(&member, 1);
        let active = member.state.is_active();
        self.entries.push(member);
        let entries = &self.entries;
        self.index
            .insert_unique(hash, i, |&j| entries[j as usize].identity.name_hash());
        if active {
            self.ring_insert(i as usize);
        }
    }

    fn replace(&mut self, i: usize, member: Member) -> Member {
        let was_active = self.entries[i].state.is_active();
        let is_active = member.state.is_active();
        let previous = std::mem::replace(&mut self.entries[i], member);
        self.account(&previous, -1);
        let current = self.entries[i].clone();
        self.account(&current, 1);
        match (was_active, is_active) {
            (false, true) => self.ring_insert(i),
            (true, false) => self.ring_remove(&previous),
            _ => {}
        }
        previous
    }

    fn account(&mut self, member: &Member, delta: isize) {
        let slot = &mut self.counts[member.state.rank() as usize];
        *slot = slot.wrapping_add_signed(delta);
        self.digest ^= entry_digest(member);
    }

    fn ring_key(&self, slot: RingSlot) -> (u32, &str) {
        (slot.hash, self.entries[slot.index as usize].name())
    }

    fn ring_search(&self, id: &Identity) -> Result<usize, usize> {
        let key = ring_key_of(id);
        self.ring
            .binary_search_by(|slot| self.ring_key(*slot).cmp(&key))
    }

    /// Where `name` goes on the ring. Members adopted in ring order (a converged start) go right after the
    /// previous insertion: two comparisons instead of a search.
    fn ring_insertion_point(&self, id: &Identity) -> usize {
        let at = self.ring_next_insert.min(self.ring.len());
        let key = ring_key_of(id);
        let after_previous = at == 0 || self.ring_key(self.ring[at - 1]) < key;
        let before_next = at == self.ring.len() || key < self.ring_key(self.ring[at]);
        if after_previous && before_next {
            at
        } else {
            self.ring_search(id).unwrap_or_else(|at| at)
        }
    }

    fn ring_insert(&mut self, i: usize) {
        let id = &self.entries[i].identity;
        let at = self.ring_insertion_point(id);
        let slot = RingSlot {
            hash: ring_key_of(id).0,
            index: i as u32,
        };
        self.ring.insert(at, slot);
        self.ring_next_insert = at + 1;
        self.ring_version += 1;
        self.local_ring = match self.local_ring {
            _ if i == 0 => Some(at),
            Some(me) if at <= me => Some(me + 1),
            other => other,
        };
    }

    fn ring_remove(&mut self, member: &Member) {
        if let Ok(at) = self.ring_search(&member.identity) {
            self.ring.remove(at);
            self.ring_version += 1;
            self.local_ring = match self.local_ring {
                Some(me) if me == at => None,
                Some(me) if at < me => Some(me - 1),
                other => other,
            };
        }
    }

    /// The active member `offset` places after the local node on the ring (wrapping), if there is one.
    pub fn ring_successor(&self, offset: usize) -> Option<&Member> {
        let len = self.ring.len();
        if len < 2 {
            return None;
        }
        let me = self.local_ring?;
        debug_assert_eq!(self.ring_search(&self.local().identity).ok(), Some(me));
        let slot = self.ring[(me + offset % len) % len];
        Some(&self.entries[slot.index as usize])
    }

    /// The ring position of an active member.
    pub fn ring_position(&self, id: &Identity) -> Option<usize> {
        self.ring_search(id).ok()
    }

    /// The active member at ring position `at` (modulo the ring's length).
    pub fn ring_member(&self, at: usize) -> Option<&Member> {
        let len = self.ring.len();
        (len > 0).then(|| &self.entries[self.ring[at % len].index as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(name: &str, joined: u64, inc: u32, state: State) -> Member {
        let addr = "10.0.0.1:7946".parse().unwrap();
        Member::new(
            Arc::new(Identity::new(name, addr, joined, Default::default()).unwrap()),
            inc,
            state,
        )
    }

    #[test]
    fn claims_merge_by_precedence_and_share_identities() {
        let mut list = Membership::new(member("me", 1, 0, State::Alive));
        let alive = member("m2", 5, 0, State::Alive);
        assert_eq!(
            list.apply(alive.clone()),
            Applied::Changed { previous: None }
        );
        let suspect = member("m2", 5, 0, State::Suspect);
        assert!(matches!(list.apply(suspect), Applied::Changed { .. }));
        assert!(Arc::ptr_eq(
            &list.get("m2").unwrap().identity,
            &alive.identity
        ));
        assert_eq!(list.apply(alive), Applied::Unchanged);
        assert_eq!(list.active_count(), 2);
        list.apply(member("m2", 5, 0, State::Failed));
        assert_eq!(list.active_count(), 1);
        assert_eq!(list.count(State::Failed), 1);
    }

    #[test]
    fn removing_keeps_index_and_ring_consistent() {
        let mut list = Membership::new(member("me", 1, 0, State::Alive));
        for i in 0..20 {
            list.apply(member(
                &format!("m{i}"),
                1,
                0,
                if i % 3 == 0 {
                    State::Failed
                } else {
                    State::Alive
                },
            ));
        }
        for i in (0..20).step_by(3) {
            assert!(list.remove(&format!("m{i}")).is_some());
        }
        assert!(list.remove("me").is_none());
        assert_eq!(list.len(), 1 + 20 - 7);
        for i in 0..20 {
            assert_eq!(list.get(&format!("m{i}")).is_some(), i % 3 != 0, "m{i}");
        }
        let on_ring: Vec<_> = (0..list.active_count())
            .map(|at| list.ring_member(at).unwrap().name())
            .collect();
        assert_eq!(on_ring.len(), 14);
        for name in &on_ring {
            assert!(list.get(name).unwrap().state.is_active());
        }
    }

    #[test]
    fn the_digest_depends_on_content_not_history() {
        let mut a = Membership::new(member("me", 1, 0, State::Alive));
        let mut b = Membership::new(member("me", 1, 0, State::Alive));
        a.apply(member("x", 1, 0, State::Alive));
        a.apply(member("x", 1, 2, State::Suspect));
        b.apply(member("x", 1, 2, State::Suspect));
        assert_eq!(a.digest(), b.digest());
        b.apply(member("y", 1, 0, State::Alive));
        assert_ne!(a.digest(), b.digest());
        b.remove("y");
        assert_eq!(a.digest(), b.digest());
    }

    fn arb_claim() -> impl Strategy<Value = Member> {
        (0..6usize, 1..4u64, 0..4u32, 0..4u8, 0..2u16).prop_map(
            |(name, joined, inc, state, port)| {
                let addr = std::net::SocketAddr::from(([10, 0, 0, 1], 7000 + port));
                let id =
                    Identity::new(format!("m{name}"), addr, joined, Default::default()).unwrap();
                Member::new(Arc::new(id), inc, State::from_code(state).unwrap())
            },
        )
    }

    proptest! {
        #[test]
        fn any_order_of_the_same_claims_gives_the_same_list(
            claims in proptest::collection::vec(arb_claim(), 0..40),
            seed in any::<u64>(),
        ) {
            use rand::{SeedableRng, seq::SliceRandom};
            let local = member("me", 1, 0, State::Alive);
            let mut forward = Membership::new(local.clone());
            for claim in &claims {
                forward.apply(claim.clone());
            }
            let mut shuffled = claims.clone();
            shuffled.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(seed));
            let mut other = Membership::new(local);
            for claim in shuffled {
                other.apply(claim);
            }
            let mut a: Vec<_> = forward.iter().cloned().collect();
            let mut b: Vec<_> = other.iter().cloned().collect();
            a.sort_by(|x, y| x.name().cmp(y.name()));
            b.sort_by(|x, y| x.name().cmp(y.name()));
            prop_assert_eq!(a, b);
            prop_assert_eq!(forward.digest(), other.digest());
            prop_assert_eq!(forward.active_count(), other.active_count());
            let ring = |list: &Membership| {
                (0..list.active_count())
                    .map(|at| list.ring_member(at).unwrap().name().to_string())
                    .collect::<Vec<_>>()
            };
            let keys: Vec<_> = ring(&forward)
                .into_iter()
                .map(|name| ((name_hash(&name) >> 32) as u32, name))
                .collect();
            prop_assert!(keys.is_sorted(), "ring out of order: {:?}", keys);
            prop_assert_eq!(ring(&forward), ring(&other));
        }
    }
}
