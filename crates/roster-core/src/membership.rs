//! `Membership`: the list of members and how claims about them merge.
//!
//! The list holds one entry per name, the local node's own at index 0. A claim replaces an entry only if it
//! takes precedence (see `member`), so applying a set of claims in any order gives the same list. Beside the
//! entries the list keeps what the protocol asks of it often: every entry in ring order (by name hash), which
//! is at once the name index and the ring of active members (the probe schedule of `probe`), counts per
//! state, and a digest that two members compare to see whether a full sync is needed.
//!
//! Memory matters here: the simulator holds 10,000 lists of 10,000 members. An entry is an `Arc<Identity>`
//! shared by every list that knows the instance, an incarnation and a state (16 bytes), plus 4 bytes of ring
//! order. Names are found by searching the ring order: the hashes are uniform, so an interpolation search
//! lands within a few places of the name in one or two probes, and no hash table is kept beside it.

use std::cmp::Ordering;
use std::sync::Arc;

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

/// The ring half of a name hash: the ring sorts by it, ties broken by name.
fn ring_hash(name_hash: u64) -> u32 {
    (name_hash >> 32) as u32
}

/// Where an identity sorts on the ring: the high half of its name hash, ties broken by name.
fn ring_key_of(id: &Identity) -> (u32, &str) {
    (ring_hash(id.name_hash()), id.name())
}

/// Interpolation steps before a search falls back to bisection: with uniform hashes each step narrows the
/// candidates from n to about sqrt(n), so a search of 10,000 names ends in three or four places looked at
/// (where three steps and a bisection of the rest looked at eight, each a cache miss in a large list); the
/// bound keeps a skewed list (many equal hashes) within a few places of a binary search's cost.
const INTERPOLATION_STEPS: usize = 8;
/// Below this many candidates a bisection is as quick as another interpolation.
const BISECT_BELOW: usize = 4;

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
    /// Every entry's index, sorted by ring key: the name index, and the ring once the inactive are skipped.
    by_key: Vec<u32>,
    /// The places in `by_key` of entries that are not active (failed or left), ascending: the ring is `by_key`
    /// without them. Few in a healthy cluster, so ring positions cost a search of a short list.
    inactive: Vec<u32>,
    /// The local node's place in `by_key`: asked for at every probe, so kept rather than searched.
    local_at: usize,
    /// Bumped whenever the ring changes, so that answers derived from it can be cached (see `ring_version`).
    ring_version: u64,
    /// The place in `by_key` after the latest insertion, tried first by the next one.
    next_insert: usize,
    counts: [usize; 4],
    digest: u64,
}

impl Membership {
    /// A list that holds only the local node.
    pub fn new(local: Member) -> Membership {
        let mut list = Membership {
            entries: Vec::new(),
            by_key: Vec::new(),
            inactive: Vec::new(),
            local_at: 0,
            ring_version: 0,
            next_insert: 0,
            counts: [0; 4],
            digest: 0,
        };
        list.insert(0, local);
        list
    }

    /// Reserves room for `additional` more members (the simulator starts 10,000 lists at full size).
    pub fn reserve_exact(&mut self, additional: usize) {
        self.entries.reserve_exact(additional);
        self.by_key.reserve_exact(additional);
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
        self.by_key.len() - self.inactive.len()
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
        self.place(name_hash(name), name)
            .ok()
            .map(|at| &self.entries[self.by_key[at] as usize])
    }

    /// The entry at `at` in ring order.
    fn entry_at(&self, at: usize) -> &Member {
        &self.entries[self.by_key[at] as usize]
    }

    fn key_at(&self, at: usize) -> (u32, &str) {
        ring_key_of(&self.entry_at(at).identity)
    }

    /// Where the name with this hash is in `by_key` (`Ok`), or where it would go (`Err`).
    fn place(&self, hash: u64, name: &str) -> Result<usize, usize> {
        let target = (ring_hash(hash), name);
        let wanted = u64::from(target.0);
        // Every place below `lo` sorts before the target and every place from `hi` on after it; `lo_hash` is at
        // most the target's hash and `hi_hash` above it, the bounds the hashes in between spread across.
        let (mut lo, mut hi) = (0, self.by_key.len());
        let (mut lo_hash, mut hi_hash) = (0u64, 1u64 << 32);
        for _ in 0..INTERPOLATION_STEPS {
            if hi - lo < BISECT_BELOW {
                break;
            }
            let ahead = (wanted - lo_hash) * (hi - lo) as u64 / (hi_hash - lo_hash);
            let guess = (lo + ahead as usize).min(hi - 1);
            let key = self.key_at(guess);
            match key.cmp(&target) {
                Ordering::Less => {
                    lo = guess + 1;
                    lo_hash = u64::from(key.0);
                }
                Ordering::Greater => {
                    hi = guess;
                    hi_hash = u64::from(key.0) + 1;
                }
                Ordering::Equal => return Ok(guess),
            }
        }
        self.by_key[lo..hi]
            .binary_search_by(|&i| ring_key_of(&self.entries[i as usize].identity).cmp(&target))
            .map(|at| lo + at)
            .map_err(|at| lo + at)
    }

    /// Merges a claim: it replaces the entry for its name if it takes precedence. A claim about a known instance
    /// reuses the list's `Arc<Identity>` so that lists share identities instead of copying them.
    pub fn apply(&mut self, mut claim: Member) -> Applied {
        match self.place_of(&claim.identity) {
            Err(at) => {
                self.insert(at, claim);
                Applied::Changed { previous: None }
            }
            Ok(at) => {
                let i = self.by_key[at] as usize;
                let current = &self.entries[i];
                if !claim.supersedes(current) {
                    return Applied::Unchanged;
                }
                if *claim.identity == *current.identity {
                    claim.identity = Arc::clone(&current.identity);
                }
                let previous = self.replace(at, claim);
                Applied::Changed {
                    previous: Some(previous),
                }
            }
        }
    }

    /// Sets the local node's own entry, whatever precedence says (a refutation, a leave, new metadata).
    pub fn set_local(&mut self, member: Member) -> Member {
        debug_assert_eq!(member.name(), self.entries[0].name());
        self.replace(self.local_at, member)
    }

    /// Forgets `name` (reaping). The local node is never removed.
    pub fn remove(&mut self, name: &str) -> Option<Member> {
        let at = self
            .place(name_hash(name), name)
            .ok()
            .filter(|&at| at != self.local_at)?;
        let i = self.by_key[at] as usize;
        let removed = self.entries[i].clone();
        self.account(&removed, -1);
        if removed.state.is_active() {
            self.ring_version += 1;
        } else {
            let gap = self
                .inactive_index(at)
                .expect("an inactive entry is listed");
            self.inactive.remove(gap);
        }
        self.by_key.remove(at);
        self.shift_places_after(at, -1);
        // `swap_remove` moves the last entry into slot `i`: repoint its place in the ring order.
        let last = self.entries.len() - 1;
        if i != last {
            let moved = &self.entries[last].identity;
            let moved_at = self
                .place(moved.name_hash(), moved.name())
                .expect("every entry is in the ring order");
            self.by_key[moved_at] = i as u32;
        }
        self.entries.swap_remove(i);
        Some(removed)
    }

    /// Adds a member that is not in the list at `at`, its place in the ring order.
    fn insert(&mut self, at: usize, member: Member) {
        let i = self.entries.len() as u32;
        self.account(&member, 1);
        let active = member.state.is_active();
        self.entries.push(member);
        self.by_key.insert(at, i);
        self.next_insert = at + 1;
        if i == 0 {
            self.local_at = at;
        } else {
            self.shift_places_after(at, 1);
        }
        if active {
            self.ring_version += 1;
        } else {
            self.mark_inactive(at);
        }
    }

    /// Updates the places kept of entries after `at` in ring order, which an insertion (`delta` 1) or a removal
    /// (`delta` -1) at `at` moved.
    fn shift_places_after(&mut self, at: usize, delta: isize) {
        let first = match delta {
            1 => at,
            _ => at + 1,
        };
        if self.local_at >= first {
            self.local_at = self.local_at.wrapping_add_signed(delta);
        }
        let from = self.inactive.partition_point(|&p| (p as usize) < first);
        for p in &mut self.inactive[from..] {
            *p = (*p as usize).wrapping_add_signed(delta) as u32;
        }
    }

    fn inactive_index(&self, at: usize) -> Result<usize, usize> {
        self.inactive.binary_search(&(at as u32))
    }

    fn mark_inactive(&mut self, at: usize) {
        if let Err(gap) = self.inactive_index(at) {
            self.inactive.insert(gap, at as u32);
        }
    }

    fn replace(&mut self, at: usize, member: Member) -> Member {
        let i = self.by_key[at] as usize;
        let was_active = self.entries[i].state.is_active();
        let is_active = member.state.is_active();
        let previous = std::mem::replace(&mut self.entries[i], member);
        self.account(&previous, -1);
        let current = self.entries[i].clone();
        self.account(&current, 1);
        match (was_active, is_active) {
            (false, true) => {
                if let Ok(gap) = self.inactive_index(at) {
                    self.inactive.remove(gap);
                }
                self.ring_version += 1;
            }
            (true, false) => {
                self.mark_inactive(at);
                self.ring_version += 1;
            }
            _ => {}
        }
        previous
    }

    fn account(&mut self, member: &Member, delta: isize) {
        let slot = &mut self.counts[member.state.rank() as usize];
        *slot = slot.wrapping_add_signed(delta);
        self.digest ^= entry_digest(member);
    }

    /// `place` for an identity. Members adopted in ring order (a converged start) go right after the previous
    /// insertion: two comparisons instead of a search.
    fn place_of(&self, id: &Identity) -> Result<usize, usize> {
        let at = self.next_insert.min(self.by_key.len());
        let key = ring_key_of(id);
        let after_previous = at == 0 || self.key_at(at - 1) < key;
        let before_next = at == self.by_key.len() || key < self.key_at(at);
        if after_previous && before_next {
            Err(at)
        } else {
            self.place(id.name_hash(), id.name())
        }
    }

    /// The ring position (among active members) of the active entry at `at` in ring order.
    fn ring_rank(&self, at: usize) -> usize {
        at - self.inactive.partition_point(|&p| (p as usize) < at)
    }

    /// The place in ring order of the active member at ring position `rank`.
    fn ring_place(&self, rank: usize) -> usize {
        // `inactive[k] - k` counts the active entries before the k-th inactive one, and never decreases: the
        // inactive entries before the wanted one are those it counts at most `rank` for.
        let (mut lo, mut hi) = (0, self.inactive.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.inactive[mid] as usize - mid <= rank {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        rank + lo
    }

    /// The local node's ring position, while it is active.
    fn local_rank(&self) -> Option<usize> {
        self.local()
            .state
            .is_active()
            .then(|| self.ring_rank(self.local_at))
    }

    /// The active member `offset` places after the local node on the ring (wrapping), if there is one.
    pub fn ring_successor(&self, offset: usize) -> Option<&Member> {
        let len = self.active_count();
        if len < 2 {
            return None;
        }
        let me = self.local_rank()?;
        Some(self.entry_at(self.ring_place((me + offset % len) % len)))
    }

    /// The ring position of an active member.
    pub fn ring_position(&self, id: &Identity) -> Option<usize> {
        let at = self.place(id.name_hash(), id.name()).ok()?;
        self.entry_at(at)
            .state
            .is_active()
            .then(|| self.ring_rank(at))
    }

    /// The active member at ring position `at` (modulo the ring's length).
    pub fn ring_member(&self, at: usize) -> Option<&Member> {
        let len = self.active_count();
        (len > 0).then(|| self.entry_at(self.ring_place(at % len)))
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

    #[test]
    fn a_large_list_finds_every_name_and_orders_its_ring() {
        use rand::{SeedableRng, seq::SliceRandom};
        let mut names: Vec<String> = (0..3000).map(|i| format!("node-{i}")).collect();
        names.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(7));
        let mut list = Membership::new(member("me", 1, 0, State::Alive));
        for name in &names {
            list.apply(member(name, 1, 0, State::Alive));
        }
        for (k, name) in names.iter().enumerate() {
            if k % 7 == 0 {
                list.apply(member(name, 1, 0, State::Failed));
            }
            if k % 11 == 0 {
                assert!(list.remove(name).is_some(), "{name}");
            }
        }
        let mut active = vec![((name_hash("me") >> 32) as u32, "me".to_string())];
        for (k, name) in names.iter().enumerate() {
            let held = list.get(name);
            assert_eq!(held.is_some(), k % 11 != 0, "{name}");
            if let Some(held) = held {
                assert_eq!(held.state == State::Failed, k % 7 == 0, "{name}");
                if k % 7 != 0 {
                    active.push(((name_hash(name) >> 32) as u32, name.clone()));
                }
            }
        }
        active.sort();
        assert_eq!(list.active_count(), active.len());
        for (rank, (_, name)) in active.iter().enumerate() {
            assert_eq!(list.ring_member(rank).unwrap().name(), name);
            let id = &list.get(name).unwrap().identity;
            assert_eq!(list.ring_position(id), Some(rank), "{name}");
        }
        let me = active.iter().position(|(_, n)| n == "me").unwrap();
        let next = &active[(me + 1) % active.len()].1;
        assert_eq!(list.ring_successor(1).unwrap().name(), next);
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

    /// An operation on a list: a claim, or reaping a name.
    #[derive(Clone, Debug)]
    enum Op {
        Apply(Member),
        Remove(usize),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => arb_claim().prop_map(Op::Apply),
            1 => (0..6usize).prop_map(Op::Remove),
        ]
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

        #[test]
        fn lookups_and_the_ring_follow_claims_and_removals(
            ops in proptest::collection::vec(arb_op(), 0..60),
            offset in 0..8usize,
        ) {
            let mut list = Membership::new(member("me", 1, 0, State::Alive));
            let mut model: std::collections::BTreeMap<String, Member> = Default::default();
            model.insert("me".into(), list.local().clone());
            for op in ops {
                match op {
                    Op::Apply(claim) => {
                        let stronger = model.get(claim.name()).is_none_or(|m| claim.supersedes(m));
                        let changed = matches!(list.apply(claim.clone()), Applied::Changed { .. });
                        prop_assert_eq!(changed, stronger);
                        if stronger {
                            model.insert(claim.name().to_string(), claim);
                        }
                    }
                    Op::Remove(name) => {
                        let name = format!("m{name}");
                        prop_assert_eq!(list.remove(&name).is_some(), model.remove(&name).is_some());
                    }
                }
            }
            prop_assert_eq!(list.len(), model.len());
            for (name, held) in &model {
                prop_assert_eq!(list.get(name), Some(held));
            }
            prop_assert_eq!(list.get("nobody"), None);
            let mut active: Vec<_> = model
                .values()
                .filter(|m| m.state.is_active())
                .map(|m| ((name_hash(m.name()) >> 32) as u32, m.name().to_string()))
                .collect();
            active.sort();
            prop_assert_eq!(list.active_count(), active.len());
            for (rank, (_, name)) in active.iter().enumerate() {
                prop_assert_eq!(list.ring_member(rank).unwrap().name(), name.as_str());
                let id = &list.get(name).unwrap().identity;
                prop_assert_eq!(list.ring_position(id), Some(rank));
            }
            if let Some(me) = active.iter().position(|(_, name)| name == "me")
                && active.len() > 1
            {
                let expected = &active[(me + offset) % active.len()].1;
                prop_assert_eq!(list.ring_successor(offset).unwrap().name(), expected.as_str());
            }
        }
    }
}
