//! Network coordinates: where this node sits in a space whose distances estimate round-trip times, and where
//! the members it has heard from sit.
//!
//! The algorithm is Vivaldi (Dabek et al., SIGCOMM 2004) with the refinements Serf and Consul use: eight
//! Euclidean dimensions plus a height (the access link every path from a member crosses), a confidence
//! (`error`) that weighs each sample by how sure both ends are, a per-member median filter over the last
//! samples, an adjustment term that soaks up what the Euclidean model cannot express, and a weak gravity
//! towards the origin that keeps the whole system from drifting.
//!
//! A node learns from its own probes only: the round trip from a ping's send time to the ack that answers it,
//! paired with the coordinate the target sent on that ack. Acks a ping-req helper relays are never used, as
//! their time includes the helper's legs. Coordinates ride on pings and acks (wire version 4); this module
//! owns the rules for when they are attached and what is learned from them, so the protocol's parts only
//! call it. It never reads a clock or a global random number generator: the one random choice Vivaldi needs
//! (a direction when two members sit on the same point) comes from a generator seeded by the node's name.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::codec;
use crate::message::Message;
use crate::mix::SplitMix64;

/// Dimensions of the Euclidean part of a coordinate (Serf's choice, after Ledlie et al., "Network Coordinates
/// in the Wild": more helps little, fewer loses accuracy).
pub const DIMENSIONS: usize = 8;
/// The first wire version whose pings and acks carry coordinates.
pub const SINCE_VERSION: u8 = 4;
/// The error estimate of a coordinate that has learned nothing yet, and the most it may ever grow to.
const ERROR_MAX: f64 = 1.5;
/// How much one sample may move the error estimate (Vivaldi's c_e).
const ERROR_GAIN: f64 = 0.25;
/// How far one sample may move the coordinate (Vivaldi's c_c).
const MOVE_GAIN: f64 = 0.25;
/// Samples whose average makes the adjustment term.
const ADJUSTMENT_WINDOW: usize = 20;
/// The smallest height, in seconds: every path crosses some access link.
const HEIGHT_MIN: f64 = 10.0e-6;
/// Round trips per member whose median is used, so that one queued packet does not throw the coordinate.
const LATENCY_FILTER: usize = 3;
/// Distance from the origin, in seconds, at which gravity pulls as hard as one second of error pushes.
const GRAVITY_RHO: f64 = 150.0;
/// Round trips beyond this are not network latency but a paused process: they teach nothing.
const MAX_SAMPLE: Duration = Duration::from_secs(10);
/// Below this, in seconds, a distance or a weight counts as zero.
const ZERO: f64 = 1.0e-6;

/// Why a coordinate was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoordinateError {
    /// A component that is infinite or not a number.
    #[error("coordinate component {0} is not a finite number")]
    NotFinite(&'static str),
    /// A negative height or error estimate.
    #[error("coordinate {0} is negative")]
    Negative(&'static str),
}

/// A point in the coordinate space. The distance between two points estimates the round trip between the
/// members that hold them. Every component is finite, and the height and error are never negative.
#[derive(Clone, Debug, PartialEq)]
pub struct Coordinate {
    vec: [f64; DIMENSIONS],
    error: f64,
    adjustment: f64,
    height: f64,
}

// Every constructor refuses a non-finite component, so equality is reflexive.
impl Eq for Coordinate {}

impl Default for Coordinate {
    fn default() -> Self {
        Coordinate::ORIGIN
    }
}

impl Coordinate {
    /// Where a node starts: the origin, with the largest error.
    pub const ORIGIN: Coordinate = Coordinate {
        vec: [0.0; DIMENSIONS],
        error: ERROR_MAX,
        adjustment: 0.0,
        height: HEIGHT_MIN,
    };

    /// A coordinate from its parts, in seconds: the Euclidean position, the error estimate, the adjustment and
    /// the height. Refuses a component that is not finite and a negative height or error.
    pub fn new(
        vec: [f64; DIMENSIONS],
        error: f64,
        adjustment: f64,
        height: f64,
    ) -> Result<Coordinate, CoordinateError> {
        if vec.iter().any(|x| !x.is_finite()) {
            return Err(CoordinateError::NotFinite("vec"));
        }
        for (name, value) in [
            ("error", error),
            ("adjustment", adjustment),
            ("height", height),
        ] {
            if !value.is_finite() {
                return Err(CoordinateError::NotFinite(name));
            }
        }
        if height < 0.0 {
            return Err(CoordinateError::Negative("height"));
        }
        if error < 0.0 {
            return Err(CoordinateError::Negative("error"));
        }
        Ok(Coordinate {
            vec,
            error,
            adjustment,
            height,
        })
    }

    /// The Euclidean position, in seconds.
    pub fn vec(&self) -> &[f64; DIMENSIONS] {
        &self.vec
    }

    /// How unsure the coordinate is: 1.5 for one that has learned nothing, towards 0 as its estimates prove
    /// right (roughly the relative error of its recent estimates).
    pub fn error(&self) -> f64 {
        self.error
    }

    /// The adjustment, in seconds: half the average amount by which the model's distances fell short of
    /// measured round trips, added to every distance from this point.
    pub fn adjustment(&self) -> f64 {
        self.adjustment
    }

    /// The height, in seconds: the part of every round trip spent on this member's own access link.
    pub fn height(&self) -> f64 {
        self.height
    }

    /// The estimated round trip between the members at `self` and `other`.
    ///
    /// ```
    /// use roster_core::Coordinate;
    ///
    /// let mut a = [0.0; 8];
    /// a[0] = 0.030;
    /// let a = Coordinate::new(a, 0.1, 0.0, 0.005)?;
    /// let b = Coordinate::new([0.0; 8], 0.1, 0.0, 0.005)?;
    /// assert_eq!(a.distance_to(&b).as_millis(), 40);
    /// # Ok::<(), roster_core::CoordinateError>(())
    /// ```
    pub fn distance_to(&self, other: &Coordinate) -> Duration {
        let raw = self.raw_distance_to(other);
        let adjusted = raw + self.adjustment + other.adjustment;
        // A negative adjustment may not make a distance shorter than nothing.
        let seconds = if adjusted > 0.0 { adjusted } else { raw };
        Duration::from_secs_f64(seconds.clamp(0.0, MAX_SAMPLE.as_secs_f64() * 100.0))
    }

    /// The model's distance, without the adjustments.
    fn raw_distance_to(&self, other: &Coordinate) -> f64 {
        magnitude(&difference(&self.vec, &other.vec)) + self.height + other.height
    }

    /// Moves this point by `force` seconds along the direction from `other` (towards it when negative), and
    /// its height with it.
    fn pushed(&self, force: f64, other: &Coordinate, jitter: &mut SplitMix64) -> Coordinate {
        let (unit, apart) = unit_vector_from(&other.vec, &self.vec, jitter);
        let mut moved = self.clone();
        for (x, u) in moved.vec.iter_mut().zip(unit) {
            *x += u * force;
        }
        if apart > ZERO {
            moved.height =
                ((moved.height + other.height) * force / apart + moved.height).max(HEIGHT_MIN);
        }
        moved
    }

    fn is_finite(&self) -> bool {
        self.vec.iter().all(|x| x.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }
}

fn difference(a: &[f64; DIMENSIONS], b: &[f64; DIMENSIONS]) -> [f64; DIMENSIONS] {
    std::array::from_fn(|i| a[i] - b[i])
}

fn magnitude(v: &[f64; DIMENSIONS]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The unit vector pointing from `from` to `to`, and how far apart they are. Two points on top of each other
/// get a random direction (and distance zero), so that members that all start at the origin spread out.
fn unit_vector_from(
    from: &[f64; DIMENSIONS],
    to: &[f64; DIMENSIONS],
    jitter: &mut SplitMix64,
) -> ([f64; DIMENSIONS], f64) {
    let d = difference(to, from);
    let apart = magnitude(&d);
    if apart > ZERO {
        return (d.map(|x| x / apart), apart);
    }
    let random: [f64; DIMENSIONS] =
        std::array::from_fn(|_| (jitter.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5);
    let length = magnitude(&random);
    if length > ZERO {
        return (random.map(|x| x / length), 0.0);
    }
    let mut axis = [0.0; DIMENSIONS];
    axis[0] = 1.0;
    (axis, 0.0)
}

/// A member whose coordinate this node knows, and its own round trips to it.
#[derive(Debug)]
struct Peer {
    coordinate: Coordinate,
    /// When it was first cached, to evict the oldest first.
    stamp: u64,
    /// The last round trips to it, in seconds, oldest first.
    samples: VecDeque<f64>,
}

/// The node's coordinates: its own (and what Vivaldi keeps to update it), and a bounded cache of the
/// members' it has heard, dropped with a member when it is reaped.
#[derive(Debug)]
pub(crate) struct Coordinates {
    own: Coordinate,
    adjustment_samples: [f64; ADJUSTMENT_WINDOW],
    adjustment_next: usize,
    peers: BTreeMap<Arc<str>, Peer>,
    /// Cached names in the order they were first cached, with their stamps; an entry whose stamp no longer
    /// matches was dropped or replaced since.
    order: VecDeque<(Arc<str>, u64)>,
    next_stamp: u64,
    capacity: usize,
    /// The round trip of this node's own probe answered by the packet being handled, waiting for the
    /// coordinate that rides behind the ack.
    measured: Option<(Arc<str>, f64)>,
    jitter: SplitMix64,
    updates: u64,
}

impl Coordinates {
    /// Coordinates for the node named `name` (which seeds its random directions), caching at most `capacity`
    /// members'.
    pub(crate) fn new(name: &str, capacity: usize) -> Coordinates {
        Coordinates {
            own: Coordinate::ORIGIN,
            adjustment_samples: [0.0; ADJUSTMENT_WINDOW],
            adjustment_next: 0,
            peers: BTreeMap::new(),
            order: VecDeque::new(),
            next_stamp: 0,
            capacity: capacity.max(1),
            measured: None,
            jitter: SplitMix64::new(crate::membership::name_hash(name)),
            updates: 0,
        }
    }

    pub(crate) fn own(&self) -> &Coordinate {
        &self.own
    }

    pub(crate) fn of(&self, name: &str) -> Option<&Coordinate> {
        self.peers.get(name).map(|p| &p.coordinate)
    }

    /// The members whose coordinates are cached, in name order.
    pub(crate) fn peers(&self) -> impl Iterator<Item = (&str, &Coordinate)> {
        self.peers.iter().map(|(name, p)| (&**name, &p.coordinate))
    }

    /// How many samples have moved this node's coordinate.
    pub(crate) fn updates(&self) -> u64 {
        self.updates
    }

    /// Appends this node's coordinate to a packet of wire version `version` that leads with `messages`, if
    /// they are a ping or an ack, the receiver reads coordinates, and the packet stays within `budget`.
    pub(crate) fn attach(
        &self,
        buf: &mut Vec<u8>,
        version: u8,
        messages: &[Message],
        budget: usize,
    ) {
        let probing = messages
            .iter()
            .any(|m| matches!(m, Message::Ping { .. } | Message::Ack { .. }));
        if !probing || version < SINCE_VERSION || buf.len() + codec::COORDINATE_LEN > budget {
            return;
        }
        codec::encode_message(buf, &Message::Coordinate(self.own.clone()));
    }

    /// This node's own probe of `name` was answered directly after `rtt`: the coordinate that rides behind
    /// the ack in the same packet is the one to learn from.
    pub(crate) fn measured(&mut self, name: &Arc<str>, rtt: Duration) {
        self.measured = Some((Arc::clone(name), rtt.as_secs_f64()));
    }

    /// `sender` sent its `coordinate`. It is cached if the sender is a member this list holds (`known`) or it
    /// answers this node's own probe; in the latter case it also moves this node's coordinate.
    pub(crate) fn heard(&mut self, sender: &Arc<str>, known: bool, coordinate: Coordinate) {
        let rtt = self
            .measured
            .take_if(|(name, _)| name == sender)
            .map(|(_, rtt)| rtt);
        if rtt.is_none() && !known {
            return;
        }
        let peer = self.cache(sender, coordinate);
        if let Some(rtt) = rtt {
            let filtered = filter(&mut peer.samples, rtt);
            let other = peer.coordinate.clone();
            self.update(&other, filtered);
        }
    }

    /// The packet has been handled: a measured round trip whose ack carried no coordinate teaches nothing.
    pub(crate) fn end_packet(&mut self) {
        self.measured = None;
    }

    /// Drops what is known of a reaped member.
    pub(crate) fn forget(&mut self, name: &str) {
        self.peers.remove(name);
        if self.order.len() > 2 * self.peers.len() + 16 {
            let peers = &self.peers;
            self.order
                .retain(|(name, stamp)| peers.get(name).is_some_and(|p| p.stamp == *stamp));
        }
    }

    /// Caches `coordinate` as `name`'s. A member already cached (nearly every packet) costs one search of the
    /// map: only a full cache asks first whether the name is new, to make room for it.
    fn cache(&mut self, name: &Arc<str>, coordinate: Coordinate) -> &mut Peer {
        if self.peers.len() >= self.capacity && !self.peers.contains_key(name) {
            while self.peers.len() >= self.capacity {
                let Some((oldest, stamp)) = self.order.pop_front() else {
                    break;
                };
                if self.peers.get(&oldest).is_some_and(|p| p.stamp == stamp) {
                    self.peers.remove(&oldest);
                }
            }
        }
        match self.peers.entry(Arc::clone(name)) {
            Entry::Occupied(cached) => {
                let peer = cached.into_mut();
                peer.coordinate = coordinate;
                peer
            }
            Entry::Vacant(new) => {
                let stamp = self.next_stamp;
                self.next_stamp += 1;
                self.order.push_back((Arc::clone(name), stamp));
                new.insert(Peer {
                    coordinate,
                    stamp,
                    samples: VecDeque::with_capacity(LATENCY_FILTER),
                })
            }
        }
    }

    /// One Vivaldi step: a member at `other` is `rtt` seconds away.
    fn update(&mut self, other: &Coordinate, rtt: f64) {
        if !(0.0..=MAX_SAMPLE.as_secs_f64()).contains(&rtt) {
            return;
        }
        let rtt = rtt.max(ZERO);
        let own = &self.own;
        let distance = own.distance_to(other).as_secs_f64();
        let wrongness = (distance - rtt).abs() / rtt;
        // Trust the sample as much as this end is unsure relative to the other.
        let weight = own.error / (own.error + other.error).max(ZERO);
        let error = (ERROR_GAIN * weight * wrongness + own.error * (1.0 - ERROR_GAIN * weight))
            .min(ERROR_MAX);
        let mut moved = own.pushed(
            MOVE_GAIN * weight * (rtt - distance),
            other,
            &mut self.jitter,
        );
        moved.error = error;

        // The adjustment averages what the model misses, over the raw (unadjusted) distance.
        self.adjustment_samples[self.adjustment_next] = rtt - moved.raw_distance_to(other);
        self.adjustment_next = (self.adjustment_next + 1) % ADJUSTMENT_WINDOW;
        moved.adjustment =
            self.adjustment_samples.iter().sum::<f64>() / (2.0 * ADJUSTMENT_WINDOW as f64);

        // Gravity: a pull towards the origin that grows with the square of the distance from it.
        let from_origin = Coordinate::ORIGIN.distance_to(&moved).as_secs_f64();
        let pull = -(from_origin / GRAVITY_RHO).powi(2);
        let moved = moved.pushed(pull, &Coordinate::ORIGIN, &mut self.jitter);

        self.own = if moved.is_finite() {
            moved
        } else {
            // Nothing sane follows from a broken coordinate: start over.
            self.adjustment_samples = [0.0; ADJUSTMENT_WINDOW];
            Coordinate::ORIGIN
        };
        self.updates += 1;
    }
}

/// Adds `rtt` to a member's recent samples and returns their median.
fn filter(samples: &mut VecDeque<f64>, rtt: f64) -> f64 {
    if samples.len() == LATENCY_FILTER {
        samples.pop_front();
    }
    samples.push_back(rtt);
    let mut sorted: Vec<f64> = samples.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(x: f64) -> Coordinate {
        let mut vec = [0.0; DIMENSIONS];
        vec[0] = x;
        Coordinate::new(vec, 0.2, 0.0, HEIGHT_MIN).unwrap()
    }

    fn name(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    /// Members on a line, `spacing` seconds apart one way, each probing the others round-robin with the true
    /// round trip; returns every pair's relative error at the end.
    fn simulate(members: usize, spacing: f64, rounds: usize) -> Vec<f64> {
        let names: Vec<Arc<str>> = (0..members).map(|i| name(&format!("m{i}"))).collect();
        let mut nodes: Vec<Coordinates> = names.iter().map(|n| Coordinates::new(n, 64)).collect();
        let truth = |a: usize, b: usize| 2.0 * spacing * (a as f64 - b as f64).abs() + 0.001;
        for round in 0..rounds {
            for a in 0..members {
                let b = (a + 1 + round % (members - 1)) % members;
                let theirs = nodes[b].own().clone();
                nodes[a].measured(&names[b], Duration::from_secs_f64(truth(a, b)));
                nodes[a].heard(&names[b], true, theirs);
            }
        }
        let mut errors = Vec::new();
        for a in 0..members {
            for b in a + 1..members {
                let estimate = nodes[a].own().distance_to(nodes[b].own()).as_secs_f64();
                errors.push((estimate - truth(a, b)).abs() / truth(a, b));
            }
        }
        errors
    }

    #[test]
    fn the_distance_is_the_euclidean_one_plus_both_heights_and_adjustments() {
        let a = Coordinate::new([0.003; DIMENSIONS], 0.5, 0.002, 0.001).unwrap();
        let b = Coordinate::new([0.0; DIMENSIONS], 0.5, 0.001, 0.004).unwrap();
        let euclid = (8.0f64 * 0.003 * 0.003).sqrt();
        let expected = euclid + 0.001 + 0.004 + 0.002 + 0.001;
        assert!((a.distance_to(&b).as_secs_f64() - expected).abs() < 1e-9);
        assert_eq!(a.distance_to(&b), b.distance_to(&a));
    }

    #[test]
    fn a_negative_adjustment_never_makes_a_distance_negative() {
        let a = Coordinate::new([0.0; DIMENSIONS], 0.5, -1.0, 0.001).unwrap();
        let b = at(0.01);
        assert!(a.distance_to(&b) > Duration::ZERO);
    }

    #[test]
    fn components_that_are_not_finite_or_negative_are_refused() {
        assert_eq!(
            Coordinate::new([f64::NAN; DIMENSIONS], 0.1, 0.0, 0.0),
            Err(CoordinateError::NotFinite("vec"))
        );
        assert_eq!(
            Coordinate::new([0.0; DIMENSIONS], f64::INFINITY, 0.0, 0.0),
            Err(CoordinateError::NotFinite("error"))
        );
        assert_eq!(
            Coordinate::new([0.0; DIMENSIONS], 0.1, 0.0, -0.1),
            Err(CoordinateError::Negative("height"))
        );
    }

    #[test]
    fn two_members_learn_their_round_trip() {
        let errors = simulate(2, 0.025, 200);
        assert!(errors[0] < 0.05, "relative error {}", errors[0]);
    }

    #[test]
    fn members_on_a_line_estimate_every_pair_within_a_tenth() {
        let mut errors = simulate(8, 0.010, 400);
        errors.sort_by(f64::total_cmp);
        let median = errors[errors.len() / 2];
        assert!(median < 0.1, "median relative error {median}");
    }

    #[test]
    fn a_coordinate_only_moves_for_an_ack_to_its_own_probe() {
        let mut node = Coordinates::new("a", 8);
        node.heard(&name("b"), true, at(0.05));
        assert_eq!(node.own(), &Coordinate::ORIGIN, "a ping teaches nothing");
        assert_eq!(node.of("b"), Some(&at(0.05)));

        node.measured(&name("c"), Duration::from_millis(50));
        node.end_packet();
        node.heard(&name("c"), false, at(0.05));
        assert_eq!(
            node.own(),
            &Coordinate::ORIGIN,
            "the ack carried no coordinate"
        );
        assert_eq!(node.of("c"), None, "an unknown sender is not cached");

        node.measured(&name("b"), Duration::from_millis(50));
        node.heard(&name("b"), false, at(0.05));
        assert_ne!(node.own(), &Coordinate::ORIGIN);
        assert_eq!(node.updates(), 1);
    }

    #[test]
    fn round_trips_beyond_the_bound_teach_nothing() {
        let mut node = Coordinates::new("a", 8);
        node.measured(&name("b"), Duration::from_secs(30));
        node.heard(&name("b"), true, at(0.05));
        assert_eq!(node.own(), &Coordinate::ORIGIN);
    }

    #[test]
    fn the_median_of_the_last_three_round_trips_is_used() {
        let mut samples = VecDeque::new();
        assert_eq!(filter(&mut samples, 0.010), 0.010);
        assert_eq!(filter(&mut samples, 0.500), 0.500);
        assert_eq!(filter(&mut samples, 0.012), 0.012);
        assert_eq!(filter(&mut samples, 0.011), 0.012);
        assert_eq!(samples.len(), LATENCY_FILTER);
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_oldest_and_the_reaped() {
        let mut node = Coordinates::new("a", 2);
        for peer in ["b", "c", "d"] {
            node.heard(&name(peer), true, at(0.01));
        }
        assert_eq!(node.peers().count(), 2);
        assert_eq!(node.of("b"), None, "the oldest went first");
        node.forget("c");
        assert_eq!(node.of("c"), None);
        node.heard(&name("e"), true, at(0.01));
        assert_eq!(node.peers().map(|(n, _)| n).collect::<Vec<_>>(), ["d", "e"]);
    }

    #[test]
    fn nodes_that_start_together_spread_apart_the_same_way_every_run() {
        let run = || {
            let mut node = Coordinates::new("a", 8);
            node.measured(&name("b"), Duration::from_millis(20));
            node.heard(&name("b"), true, Coordinate::ORIGIN);
            node.own().clone()
        };
        let first = run();
        assert_ne!(first.vec(), Coordinate::ORIGIN.vec());
        assert_eq!(first, run());
    }
}
