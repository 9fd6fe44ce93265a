//! The modelled network: how long a datagram or a stream message takes between two nodes, whether a datagram is
//! lost, and which links a partition cuts.
//!
//! Owns no clock and no queue: the engine asks it, with the current time and the engine's RNG, what happens to
//! one message. Every random draw comes from that one RNG, so a seed gives one history. Addresses are only
//! labels: nothing here touches a socket.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;
use roster_core::mix::finalize;
use serde::{Deserialize, Serialize};

/// The port every simulated node listens on; the address tells the nodes apart.
pub const PORT: u16 = 7946;

/// The address of node `index`: 10.a.b.c, so that 16 million nodes fit and the index comes back by arithmetic
/// (no map whose iteration order could leak into the history).
pub fn addr_of(index: usize) -> SocketAddr {
    let i = u32::try_from(index).expect("the simulator addresses at most 2^24 nodes");
    assert!(i < 1 << 24, "the simulator addresses at most 2^24 nodes");
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 | i), PORT))
}

/// The node index behind a simulated address, if it is one.
pub fn index_of(addr: SocketAddr) -> Option<usize> {
    match addr {
        SocketAddr::V4(v4) if v4.port() == PORT && v4.ip().octets()[0] == 10 => {
            Some((u32::from(*v4.ip()) & 0x00ff_ffff) as usize)
        }
        _ => None,
    }
}

/// How long a message takes one way.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Latency {
    /// Every round trip takes exactly this.
    Constant(#[serde(with = "crate::serde_secs")] Duration),
    /// Each message's round-trip equivalent is drawn uniformly from the range, so no round trip exceeds `max`.
    Uniform {
        #[serde(with = "crate::serde_secs")]
        min: Duration,
        #[serde(with = "crate::serde_secs")]
        max: Duration,
    },
    /// Each link has a base round trip drawn once from the range (from a hash of the pair, so 10^8 links cost
    /// no memory), and each message's one-way delay is half of it times a Pareto factor (shape 3, at least 1, capped at
    /// 10): one message in eight takes over twice its link's base, one in 125 over five times. The tail that
    /// breaks fixed timeouts.
    LongTail {
        #[serde(with = "crate::serde_secs")]
        min: Duration,
        #[serde(with = "crate::serde_secs")]
        max: Duration,
    },
}

impl Latency {
    /// The largest round trip a message normally sees (the long tail can exceed it).
    pub fn max_rtt(&self) -> Duration {
        match *self {
            Latency::Constant(rtt) => rtt,
            Latency::Uniform { max, .. } | Latency::LongTail { max, .. } => max,
        }
    }

    /// The mean round trip between `from` and `to`: what a member measuring that link many times would
    /// average, and so what a network coordinate should estimate.
    pub fn mean_rtt(&self, from: usize, to: usize, seed: u64) -> Duration {
        match *self {
            Latency::Constant(rtt) => rtt,
            Latency::Uniform { min, max } => (min + max) / 2,
            // The mean of the capped Pareto factor: 1 + (1 - 1/10^2) / 2.
            Latency::LongTail { min, max } => link_base(min, max, from, to, seed).mul_f64(1.495),
        }
    }

    fn one_way(&self, from: usize, to: usize, seed: u64, rng: &mut SmallRng) -> Duration {
        match *self {
            Latency::Constant(rtt) => rtt / 2,
            Latency::Uniform { min, max } => uniform(min, max, rng) / 2,
            Latency::LongTail { min, max } => {
                let base = link_base(min, max, from, to, seed);
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                let factor = u.powf(-1.0 / 3.0).min(10.0);
                (base / 2).mul_f64(factor)
            }
        }
    }
}

/// A link's base round trip, the same both ways, drawn once from the range by a hash of the pair.
fn link_base(min: Duration, max: Duration, from: usize, to: usize, seed: u64) -> Duration {
    let (a, b) = if from < to { (from, to) } else { (to, from) };
    let unit =
        (finalize(seed ^ finalize((a as u64) << 32 | b as u64)) >> 11) as f64 / (1u64 << 53) as f64;
    min + (max.saturating_sub(min)).mul_f64(unit)
}

fn uniform(min: Duration, max: Duration, rng: &mut SmallRng) -> Duration {
    if max <= min {
        return min;
    }
    Duration::from_micros(rng.random_range(min.as_micros() as u64..=max.as_micros() as u64))
}

/// Extra loss on datagrams from one set of nodes to another, for a while: the one-way loss of a broken NIC or
/// an asymmetric firewall.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectedLoss {
    pub from: Vec<usize>,
    pub to: Vec<usize>,
    pub loss: f64,
    #[serde(with = "crate::serde_secs")]
    pub start: Duration,
    #[serde(with = "crate::serde_secs")]
    pub end: Duration,
}

/// A split of the cluster (times are since the start of the run): nodes on different sides cannot reach each other, by datagram or stream, from `start`
/// until `heal`. Nodes not named are on side 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    pub sides: Vec<Vec<usize>>,
    #[serde(with = "crate::serde_secs")]
    pub start: Duration,
    #[serde(with = "crate::serde_secs")]
    pub heal: Duration,
}

impl Partition {
    fn side_of(&self, node: usize) -> usize {
        self.sides
            .iter()
            .position(|side| side.binary_search(&node).is_ok())
            .map_or(0, |s| s + 1)
    }

    fn cuts(&self, a: usize, b: usize) -> bool {
        self.side_of(a) != self.side_of(b)
    }
}

/// The network every message crosses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub latency: Latency,
    /// Probability that a datagram is lost, on every link, each way. TCP segments are lost at the same rate,
    /// and retransmitted as TCP does.
    pub loss: f64,
    pub directed_loss: Vec<DirectedLoss>,
    pub partitions: Vec<Partition>,
    /// Packets each machine can send per second (see `budget`); `None` for no limit.
    pub packet_budget: Option<f64>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency: Latency::Uniform {
                min: Duration::from_millis(20),
                max: Duration::from_millis(200),
            },
            loss: 0.0,
            directed_loss: Vec::new(),
            partitions: Vec::new(),
            packet_budget: None,
        }
    }
}

/// What becomes of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Arrives after this long.
    Arrives(Duration),
    /// Lost on the way (datagrams only).
    Lost,
    /// The link is cut by a partition.
    Cut,
}

impl Network {
    /// Sorts the node sets so that membership tests are binary searches.
    pub fn normalize(&mut self) {
        for partition in &mut self.partitions {
            for side in &mut partition.sides {
                side.sort_unstable();
                side.dedup();
            }
        }
        for directed in &mut self.directed_loss {
            directed.from.sort_unstable();
            directed.to.sort_unstable();
        }
    }

    /// Whether a partition separates `a` and `b` at `at`.
    pub fn is_cut(&self, a: usize, b: usize, at: Duration) -> bool {
        self.partitions
            .iter()
            .any(|p| p.start <= at && at < p.heal && p.cuts(a, b))
    }

    /// Whether a partition separated `a` and `b` at any time in `[since, at]`.
    pub fn was_cut(&self, a: usize, b: usize, since: Duration, at: Duration) -> bool {
        self.partitions
            .iter()
            .any(|p| p.start <= at && since < p.heal && p.cuts(a, b))
    }

    /// The fate of a datagram sent from `from` to `to` at `at`.
    pub fn datagram(
        &self,
        from: usize,
        to: usize,
        at: Duration,
        seed: u64,
        rng: &mut SmallRng,
    ) -> Fate {
        if self.is_cut(from, to, at) {
            return Fate::Cut;
        }
        if self.loss > 0.0 && rng.random_bool(self.loss.min(1.0)) {
            return Fate::Lost;
        }
        for directed in &self.directed_loss {
            if directed.start <= at
                && at < directed.end
                && directed.from.binary_search(&from).is_ok()
                && directed.to.binary_search(&to).is_ok()
                && rng.random_bool(directed.loss.clamp(0.0, 1.0))
            {
                return Fate::Lost;
            }
        }
        Fate::Arrives(self.latency.one_way(from, to, seed, rng))
    }

    /// The fate of a stream message of `bytes`. A stream crosses the same lossy links as datagrams, and TCP
    /// makes it reliable at a cost in time: opening one costs a handshake (a round trip more than a reply),
    /// and a lost SYN or SYN-ACK is sent again after 1 s, then 2 s; a lost data segment costs a round trip when
    /// later segments let the receiver ask for it again (fast retransmit), and a retransmission timeout (1 s)
    /// when it was among the last three. A connection that cannot be opened within `CONNECT_TIMEOUT`, or an
    /// exchange that takes longer than `STREAM_TIMEOUT`, fails, as the agent's do. A partition cuts it.
    #[allow(clippy::too_many_arguments)]
    pub fn stream(
        &self,
        from: usize,
        to: usize,
        at: Duration,
        opens: bool,
        bytes: usize,
        seed: u64,
        rng: &mut SmallRng,
    ) -> Fate {
        if self.is_cut(from, to, at) {
            return Fate::Cut;
        }
        let one_way = self.latency.one_way(from, to, seed, rng);
        let mut took = if opens { one_way * 3 } else { one_way };
        if self.loss <= 0.0 {
            return Fate::Arrives(took);
        }
        let lost = |rng: &mut SmallRng| rng.random_bool(self.loss.min(1.0));
        if opens {
            for _handshake_leg in 0..2 {
                let mut timeout = TCP_INITIAL_RTO;
                while lost(rng) {
                    took += timeout;
                    timeout *= 2;
                    if took > CONNECT_TIMEOUT {
                        return Fate::Lost;
                    }
                }
            }
        }
        let segments = bytes.div_ceil(TCP_SEGMENT_BYTES).max(1);
        for segment in 0..segments {
            if lost(rng) {
                took += if segment + 3 >= segments {
                    TCP_INITIAL_RTO
                } else {
                    one_way * 2
                };
            }
        }
        if took > STREAM_TIMEOUT {
            Fate::Lost
        } else {
            Fate::Arrives(took)
        }
    }
}

/// TCP's first retransmission timeout, before it has measured a round trip (RFC 6298).
const TCP_INITIAL_RTO: Duration = Duration::from_secs(1);
/// Payload of one full TCP segment on a 1500-byte link.
const TCP_SEGMENT_BYTES: usize = 1448;
/// How long the agent waits for a stream connection to open, and for a whole exchange.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn addresses_map_back_to_their_index() {
        for i in [0, 1, 255, 256, 9_999, 70_000] {
            assert_eq!(index_of(addr_of(i)), Some(i));
        }
        assert_eq!(index_of("127.0.0.1:7946".parse().unwrap()), None);
    }

    #[test]
    fn a_partition_cuts_only_across_sides_and_only_while_open() {
        let mut net = Network {
            partitions: vec![Partition {
                sides: vec![vec![3, 1]],
                start: secs(5.0),
                heal: secs(10.0),
            }],
            ..Network::default()
        };
        net.normalize();
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(net.datagram(1, 2, secs(6.0), 0, &mut rng), Fate::Cut);
        assert_eq!(
            net.stream(2, 3, secs(6.0), true, 100, 0, &mut rng),
            Fate::Cut
        );
        assert!(matches!(
            net.datagram(1, 3, secs(6.0), 0, &mut rng),
            Fate::Arrives(_)
        ));
        assert!(matches!(
            net.datagram(1, 2, secs(10.0), 0, &mut rng),
            Fate::Arrives(_)
        ));
        assert!(net.was_cut(1, 2, secs(9.0), secs(20.0)));
        assert!(!net.was_cut(1, 2, secs(10.5), secs(20.0)));
    }

    #[test]
    fn one_way_loss_drops_one_direction_only() {
        let net = Network {
            directed_loss: vec![DirectedLoss {
                from: vec![0],
                to: vec![1],
                loss: 1.0,
                start: secs(0.0),
                end: secs(60.0),
            }],
            ..Network::default()
        };
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(net.datagram(0, 1, secs(1.0), 0, &mut rng), Fate::Lost);
        assert!(matches!(
            net.datagram(1, 0, secs(1.0), 0, &mut rng),
            Fate::Arrives(_)
        ));
    }

    #[test]
    fn loss_rate_is_what_was_asked() {
        let net = Network {
            loss: 0.05,
            ..Network::default()
        };
        let mut rng = SmallRng::seed_from_u64(9);
        let lost = (0..100_000)
            .filter(|_| net.datagram(0, 1, secs(0.0), 0, &mut rng) == Fate::Lost)
            .count();
        assert!((4_500..5_500).contains(&lost), "{lost} of 100000 lost");
    }

    #[test]
    fn a_stream_through_loss_arrives_late_or_not_at_all() {
        let net = Network {
            loss: 0.05,
            latency: Latency::Constant(Duration::from_millis(100)),
            ..Network::default()
        };
        let mut rng = SmallRng::seed_from_u64(4);
        let (mut late, mut failed) = (0, 0);
        for _ in 0..10_000 {
            match net.stream(0, 1, secs(1.0), true, 64 * 1448, 0, &mut rng) {
                Fate::Arrives(d) if d > Duration::from_millis(150) => late += 1,
                Fate::Arrives(d) => assert_eq!(d, Duration::from_millis(150)),
                Fate::Lost => failed += 1,
                Fate::Cut => unreachable!("no partition"),
            }
        }
        // A 64-segment message through 5 % loss nearly always loses a segment; a failed open needs two losses.
        assert!(late > 9_000, "{late} of 10000 late");
        assert!((1..100).contains(&failed), "{failed} of 10000 failed");
    }

    #[test]
    fn uniform_latency_stays_within_the_round_trip_range() {
        let latency = Latency::Uniform {
            min: Duration::from_millis(20),
            max: Duration::from_millis(200),
        };
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..1000 {
            let d = latency.one_way(0, 1, 0, &mut rng);
            assert!(
                d >= Duration::from_millis(10) && d <= Duration::from_millis(100),
                "{d:?}"
            );
        }
    }

    #[test]
    fn long_tail_has_a_tail() {
        let latency = Latency::LongTail {
            min: Duration::from_millis(20),
            max: Duration::from_millis(20),
        };
        let mut rng = SmallRng::seed_from_u64(3);
        let slow = (0..10_000)
            .filter(|_| latency.one_way(0, 1, 0, &mut rng) > Duration::from_millis(50))
            .count();
        assert!((50..130).contains(&slow), "{slow} of 10000 over 5x");
    }
}
