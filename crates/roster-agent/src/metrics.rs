//! Prometheus metrics for `GET /metrics`.
//!
//! The names are a contract with operators' dashboards (issue 5): keep them stable. Counters that the agent
//! sees happen (packets, bytes, drops it makes itself) are counted as they happen; the core's running totals
//! ([`roster_core::Stats`]) and the list's shape are read when a scrape comes in.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use roster_core::{State, Stats};

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

/// Why the agent dropped a packet or a connection before the core saw it, or the core refused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// The core could not decode it.
    Decode,
    /// A stream frame over the size bound.
    FrameTooLarge,
    /// Too many connections open at once.
    ConnectionLimit,
    /// A stream that stalled past its deadline, or broke.
    StreamError,
    /// The wire layer refused it: unauthentic, sealed with an unknown key, a replay, or malformed.
    Wire(&'static str),
    /// A send the operating system refused.
    SendError,
}

impl Drop {
    fn label(self) -> Label {
        [(
            "reason",
            match self {
                Drop::Decode => "decode",
                Drop::FrameTooLarge => "frame_too_large",
                Drop::ConnectionLimit => "connection_limit",
                Drop::StreamError => "stream_error",
                Drop::Wire(reason) => reason,
                Drop::SendError => "send_error",
            },
        )]
    }
}

/// The agent's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    members: Family<[(&'static str, &'static str); 1], Gauge>,
    probes: Counter,
    probe_failures: Counter,
    suspicions: Counter,
    refutations: Counter,
    packets_sent: Family<Label, Counter>,
    packets_received: Family<Label, Counter>,
    bytes_sent: Family<Label, Counter>,
    bytes_received: Family<Label, Counter>,
    dropped: Family<Label, Counter>,
    health_score: Gauge,
    probe_rtt: Histogram,
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
            suspicions: Counter::default(),
            refutations: Counter::default(),
            packets_sent: Family::default(),
            packets_received: Family::default(),
            bytes_sent: Family::default(),
            bytes_received: Family::default(),
            dropped: Family::default(),
            health_score: Gauge::default(),
            // 0.5 ms to about 4 s: loopback to a congested WAN.
            probe_rtt: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            last: Mutex::new(Stats::default()),
            registry: Registry::default(),
        };
        // prometheus-client appends `_total` to counters.
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
            "roster_suspicions",
            "Suspicions started or heard of",
            m.suspicions.clone(),
        );
        registry.register(
            "roster_refutations",
            "Suspicions about this node that it refuted",
            m.refutations.clone(),
        );
        registry.register(
            "roster_packets_sent",
            "Datagrams and stream frames sent",
            m.packets_sent.clone(),
        );
        registry.register(
            "roster_packets_received",
            "Datagrams and stream frames received",
            m.packets_received.clone(),
        );
        registry.register(
            "roster_bytes_sent",
            "Payload bytes sent",
            m.bytes_sent.clone(),
        );
        registry.register(
            "roster_bytes_received",
            "Payload bytes received",
            m.bytes_received.clone(),
        );
        registry.register(
            "roster_dropped_packets",
            "Packets and frames dropped, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "roster_health_score",
            "Local health (Lifeguard): 0 is healthy",
            m.health_score.clone(),
        );
        registry.register(
            "roster_probe_rtt_seconds",
            "Round trip of acked direct probes",
            m.probe_rtt.clone(),
        );
        // Both UDP and TCP series exist from the start, so rates work before the first stream exchange.
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

    pub fn dropped(&self, reason: Drop) {
        self.dropped.get_or_create(&reason.label()).inc();
    }

    pub fn probe_rtt(&self, rtt: std::time::Duration) {
        self.probe_rtt.observe(rtt.as_secs_f64());
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
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_promised_name_is_exposed() {
        let metrics = Metrics::new();
        metrics.sent(Transport::Udp, 20);
        metrics.probe_rtt(std::time::Duration::from_millis(1));
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
            "roster_members{state=\"alive\"} 2",
            "roster_members{state=\"failed\"} 1",
            "roster_probes_total 3",
            "roster_probe_failures_total 0",
            "roster_suspicions_total 0",
            "roster_refutations_total 0",
            "roster_packets_sent_total{transport=\"udp\"} 1",
            "roster_packets_received_total{transport=\"tcp\"} 0",
            "roster_bytes_sent_total{transport=\"udp\"} 20",
            "roster_bytes_received_total{transport=\"udp\"} 0",
            "roster_dropped_packets_total{reason=\"misdirected\"} 1",
            "roster_health_score 2",
            "roster_probe_rtt_seconds_count 1",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        // A second scrape with the same totals adds nothing.
        let again = metrics.render(&stats, 0, std::iter::empty());
        assert!(again.contains("roster_probes_total 3"), "{again}");
    }
}
