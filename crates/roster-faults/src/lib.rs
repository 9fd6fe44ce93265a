//! Roster's fault suite: real `roster agent` processes in Linux network namespaces on a private bridge, hit
//! with real crashes, freezes, partitions, packet loss and latency, and judged by their own event logs and
//! `GET /v1/members`. The scenarios live in `tests/`; docs/faults.md says how to run them.
//!
//! Code map: [`system`] (root, tools, bounded commands), [`network`] (namespaces, bridge, containment,
//! teardown), [`fault`] (nftables faults, NFQUEUE latency), [`cluster`] (the agents), [`observe`] (event logs,
//! HTTP), [`measure`] (the figures), [`report`] (summary lines). This crate never sends a packet outside the
//! test subnet it created or loopback, and never leaves a namespace, link or process behind.

pub mod cluster;
pub mod fault;
pub mod measure;
pub mod network;
pub mod observe;
pub mod report;
pub mod system;

use std::sync::{Mutex, MutexGuard, OnceLock};

pub use cluster::{Bins, Cluster};
pub use fault::Fault;

/// Serialises the scenarios of one test binary: they share two cores with the rest of the machine, and timing
/// figures taken while another cluster runs would be noise, not findings.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A failed scenario poisons the lock; the next one builds its own network and owes it nothing.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The suite's entry check: `None` (after printing one line saying why) when this machine cannot run it, else
/// the binaries to run. Installs `iproute2`, `nftables` and `iptables` when root and they are missing.
pub fn prepare(scenario: &str, nfq_delay: &str, udp_probe: &str) -> Option<Bins> {
    if let Some(reason) = system::skip_reason() {
        report::note(&format!("{scenario}: skipped: {reason}"));
        return None;
    }
    // Once per process: every scenario would otherwise start its own (no-op) cargo build of `roster`.
    static BINS: OnceLock<Result<Bins, String>> = OnceLock::new();
    match BINS.get_or_init(|| Bins::locate(nfq_delay, udp_probe)) {
        Ok(bins) => Some(bins.clone()),
        Err(e) => panic!("{scenario}: {e}"),
    }
}
