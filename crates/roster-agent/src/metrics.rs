//! Prometheus metrics for `GET /metrics`, in the OpenMetrics text format.
//!
//! The names are a contract with operators' dashboards: keep them stable (docs/operations.md lists them).
//! They follow Prometheus' conventions: the unit last (`roster_sent_bytes_total`), a `# UNIT` line for each
//! metric that has one, counters ending in `_total`. Counters that the agent sees happen (packets, bytes,
//! drops it makes itself) are counted as they happen; the core's running totals ([`roster_core::Stats`]),
//! the list's shape and the process's own figures are read when a scrape comes in.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use roster_core::{State, Stats};

use crate::diagnose::Mismatch;
use crate::driver::Shared;

type Label = [(&'static str, &'static str); 1];

/// Which way bytes moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn label(self) -> Label {
        [(
            "transport",
            if self == Transport::Udp { "udp" } else { "tcp" },
        )]
    }
}

/// Why the agent dropped a packet before the core saw it, or the core refused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketDrop {
    /// The core could not decode it.
    Decode,
    /// The wire layer refused it: unauthentic, a replay, or malformed.
    Wire(&'static str),
    /// The sender is set up differently: another key, encryption on one side only, another wire version.
    Mismatch(Mismatch),
    /// A send the operating system refused.
    SendError,
}

impl PacketDrop {
    fn label(self) -> Label {
        [(
            "reason",
            match self {
                PacketDrop::Decode => "decode",
                PacketDrop::Wire(reason) => reason,
                PacketDrop::Mismatch(m) => m.reason(),
                PacketDrop::SendError => "send_error",
            },
        )]
    }
}

/// Every packet drop reason, so that each series exists (at 0) from the first scrape.
const PACKET_DROPS: [&str; 12] = [
    "decode",
    "misdirected",
    "empty",
    "malformed",
    "unauthentic",
    "replayed",
    "unknown_key",
    "not_encrypted",
    "encrypted",
    "version",
    "send_error",
    "frame_too_large",
];

/// Why the agent dropped a stream connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionDrop {
    /// Too many connections open at once.
    Limit,
    /// A stream that stalled past its deadline, or broke.
    Stream,
    /// A frame over the size bound.
    FrameTooLarge,
}

impl ConnectionDrop {
    const ALL: [ConnectionDrop; 3] = [
        ConnectionDrop::Limit,
        ConnectionDrop::Stream,
        ConnectionDrop::FrameTooLarge,
    ];

    fn label(self) -> Label {
        [(
            "reason",
            match self {
                ConnectionDrop::Limit => "connection_limit",
                ConnectionDrop::Stream => "stream_error",
                ConnectionDrop::FrameTooLarge => "frame_too_large",
            },
        )]
    }
}

/// The agent's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    members: Family<Label, Gauge>,
    probes: Counter,
    probe_failures: Counter,
    probes_over_tcp: Counter,
    suspicions: Counter,
    refutations: Counter,
    packets_sent: Family<Label, Counter>,
    packets_received: Family<Label, Counter>,
    bytes_sent: Family<Label, Counter>,
    bytes_received: Family<Label, Counter>,
    dropped: Family<Label, Counter>,
    dropped_connections: Family<Label, Counter>,
    health_score: Gauge,
    udp_receive_buffer: Gauge,
    probe_rtt: Histogram,
    process: crate::process::ProcessMetrics,
    /// The core's totals at the last scrape, to turn them into counter increments.
    last: Mutex<Stats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            members: Family::default(),
            probes: Counter::default(),
            probe_failures: Counter::default(),
            probes_over_tcp: Counter::default(),
            suspicions: Counter::default(),
            refutations: Counter::default(),
            packets_sent: Family::default(),
            packets_received: Family::default(),
            bytes_sent: Family::default(),
            bytes_received: Family::default(),
            dropped: Family::default(),
            dropped_connections: Family::default(),
            health_score: Gauge::default(),
            udp_receive_buffer: Gauge::default(),
            // 0.5 ms to about 4 s: loopback to a congested WAN.
            probe_rtt: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            process: crate::process::ProcessMetrics::default(),
            last: Mutex::new(Stats::default()),
            registry: Registry::default(),
        };
        let packets = || Unit::Other("packets".into());
        // prometheus-client appends the unit, then `_total` to counters.
        registry.register(
            "roster_build",
            "The agent's version and the wire version it speaks",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
                ("protocol_version", roster_core::codec::VERSION.to_string()),
            ]),
        );
        registry.register(
            "roster_members",
            "Members in the local list, by state",
            m.members.clone(),
        );
        registry.register("roster_probes", "Probes started", m.probes.clone());
        registry.register(
            "roster_probe_failures",
            "Probes that ended with the target suspected",
            m.probe_failures.clone(),
        );
        registry.register(
            "roster_probes_acked_over_tcp",
            "Probes only the TCP fallback got an answer to: the member's UDP is blocked",
            m.probes_over_tcp.clone(),
        );
        registry.register(
            "roster_suspicions",
            "Suspicions started or heard of",
            m.suspicions.clone(),
        );
        registry.register(
            "roster_refutations",
            "Suspicions about this node that it refuted",
            m.refutations.clone(),
        );
        registry.register_with_unit(
            "roster_sent",
            "Datagrams and stream frames sent",
            packets(),
            m.packets_sent.clone(),
        );
        registry.register_with_unit(
            "roster_received",
            "Datagrams and stream frames received",
            packets(),
            m.packets_received.clone(),
        );
        registry.register_with_unit(
            "roster_sent",
            "Bytes sent, as on the wire (sealed, when encrypting)",
            Unit::Bytes,
            m.bytes_sent.clone(),
        );
        registry.register_with_unit(
            "roster_received",
            "Bytes received, as on the wire",
            Unit::Bytes,
            m.bytes_received.clone(),
        );
        registry.register_with_unit(
            "roster_dropped",
            "Datagrams and frames dropped, by reason",
            packets(),
            m.dropped.clone(),
        );
        registry.register_with_unit(
            "roster_dropped",
            "Stream connections dropped, by reason",
            Unit::Other("connections".into()),
            m.dropped_connections.clone(),
        );
        registry.register(
            "roster_health_score",
            "Local health (Lifeguard): 0 is healthy",
            m.health_score.clone(),
        );
        registry.register_with_unit(
            "roster_udp_receive_buffer",
            "The UDP receive buffer the kernel granted (raise net.core.rmem_max for more)",
            Unit::Bytes,
            m.udp_receive_buffer.clone(),
        );
        registry.register_with_unit(
            "roster_probe_rtt",
            "Round trip of acked direct probes",
            Unit::Seconds,
            m.probe_rtt.clone(),
        );
        m.process.register(&mut registry);
        // Every labelled series exists from the start, so rates and alerts work before the first event.
        for t in [Transport::Udp, Transport::Tcp] {
            for family in [
                &m.packets_sent,
                &m.packets_received,
                &m.bytes_sent,
                &m.bytes_received,
            ] {
                let _ = family.get_or_create(&t.label());
            }
        }
        for reason in PACKET_DROPS {
            let _ = m.dropped.get_or_create(&[("reason", reason)]);
        }
        for reason in ConnectionDrop::ALL {
            let _ = m.dropped_connections.get_or_create(&reason.label());
        }
        for state in [State::Alive, State::Suspect, State::Failed, State::Left] {
            let _ = m.members.get_or_create(&[("state", state.as_str())]);
        }
        Metrics { registry, ..m }
    }

    pub fn sent(&self, transport: Transport, bytes: usize) {
        self.packets_sent.get_or_create(&transport.label()).inc();
        self.bytes_sent
            .get_or_create(&transport.label())
            .inc_by(bytes as u64);
    }

    pub fn received(&self, transport: Transport, bytes: usize) {
        self.packets_received
            .get_or_create(&transport.label())
            .inc();
        self.bytes_received
            .get_or_create(&transport.label())
            .inc_by(bytes as u64);
    }

    pub fn dropped(&self, reason: PacketDrop) {
        self.dropped.get_or_create(&reason.label()).inc();
    }

    /// A frame over the bound: the frame is a dropped packet, and its connection is dropped with it.
    pub fn dropped_connection(&self, reason: ConnectionDrop) {
        if reason == ConnectionDrop::FrameTooLarge {
            self.dropped
                .get_or_create(&[("reason", "frame_too_large")])
                .inc();
        }
        self.dropped_connections
            .get_or_create(&reason.label())
            .inc();
    }

    pub fn probe_rtt(&self, rtt: std::time::Duration) {
        self.probe_rtt.observe(rtt.as_secs_f64());
    }

    pub fn probe_acked_over_tcp(&self) {
        self.probes_over_tcp.inc();
    }

    pub fn udp_receive_buffer(&self, bytes: usize) {
        self.udp_receive_buffer
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Brings the read-at-scrape values up to date and renders the text exposition.
    pub fn render(
        &self,
        stats: &Stats,
        health_score: u32,
        states: impl Iterator<Item = State>,
    ) -> String {
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            self.probes.inc_by(stats.probes.saturating_sub(last.probes));
            self.probe_failures
                .inc_by(stats.probe_failures.saturating_sub(last.probe_failures));
            self.suspicions
                .inc_by(stats.suspicions.saturating_sub(last.suspicions));
            self.refutations
                .inc_by(stats.refutations.saturating_sub(last.refutations));
            // The agent counts undecodable packets itself (as `decode`); the core adds what decoded but was
            // not for this node.
            self.dropped
                .get_or_create(&[("reason", "misdirected")])
                .inc_by(stats.misdirected.saturating_sub(last.misdirected));
            *last = stats.clone();
        }
        self.health_score.set(i64::from(health_score));
        let mut counts = [0i64; 4];
        for state in states {
            counts[usize::from(state.rank())] += 1;
        }
        for state in [State::Alive, State::Suspect, State::Failed, State::Left] {
            self.members
                .get_or_create(&[("state", state.as_str())])
                .set(counts[usize::from(state.rank())]);
        }
        self.process.update();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A counter of seconds, for the process's CPU time.
pub(crate) type SecondsCounter = Counter<f64, AtomicU64>;

/// The metrics of a running agent, for a program that embeds it (see [`crate::Agent::metrics`]): the same
/// OpenMetrics text `GET /metrics` serves, to hand to the program's own exporter, and the protocol's running
/// totals as numbers.
#[derive(Debug)]
pub struct AgentMetrics<'a> {
    shared: &'a Shared,
}

impl<'a> AgentMetrics<'a> {
    pub(crate) fn new(shared: &'a Shared) -> AgentMetrics<'a> {
        AgentMetrics { shared }
    }

    /// Every metric as OpenMetrics text (names and units in docs/operations.md).
    pub fn render(&self) -> String {
        let state = self.shared.lock();
        self.shared.metrics.render(
            state.node.stats(),
            state.node.health_score(),
            state.node.members().map(|m| m.state),
        )
    }

    /// The protocol's running totals: probes, their failures, suspicions, refutations, packets dropped.
    pub fn protocol(&self) -> Stats {
        self.shared.lock().node.stats().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_promised_name_is_exposed_with_its_unit() {
        let metrics = Metrics::new();
        metrics.sent(Transport::Udp, 20);
        metrics.probe_rtt(std::time::Duration::from_millis(1));
        metrics.dropped_connection(ConnectionDrop::Limit);
        metrics.udp_receive_buffer(425_984);
        let stats = Stats {
            probes: 3,
            misdirected: 1,
            ..Stats::default()
        };
        let text = metrics.render(
            &stats,
            2,
            [State::Alive, State::Alive, State::Failed].into_iter(),
        );
        for name in [
            "roster_build_info{version=\"",
            "roster_members{state=\"alive\"} 2",
            "roster_members{state=\"failed\"} 1",
            "roster_members{state=\"left\"} 0",
            "roster_probes_total 3",
            "roster_probe_failures_total 0",
            "roster_probes_acked_over_tcp_total 0",
            "roster_suspicions_total 0",
            "roster_refutations_total 0",
            "roster_sent_packets_total{transport=\"udp\"} 1",
            "roster_received_packets_total{transport=\"tcp\"} 0",
            "roster_sent_bytes_total{transport=\"udp\"} 20",
            "roster_received_bytes_total{transport=\"udp\"} 0",
            "roster_dropped_packets_total{reason=\"misdirected\"} 1",
            "roster_dropped_packets_total{reason=\"unknown_key\"} 0",
            "roster_dropped_packets_total{reason=\"version\"} 0",
            "roster_dropped_connections_total{reason=\"connection_limit\"} 1",
            "roster_health_score 2",
            "roster_udp_receive_buffer_bytes 425984",
            "roster_probe_rtt_seconds_count 1",
            "# UNIT roster_sent_bytes bytes",
            "# UNIT roster_probe_rtt_seconds seconds",
            "# UNIT roster_dropped_packets packets",
            "# UNIT process_resident_memory_bytes bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        // A second scrape with the same totals adds nothing.
        let again = metrics.render(&stats, 0, std::iter::empty());
        assert!(again.contains("roster_probes_total 3"), "{again}");
    }
}
