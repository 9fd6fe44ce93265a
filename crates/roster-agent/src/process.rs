//! The process metrics Prometheus users expect of every exporter (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, ...), read from /proc at each scrape. On systems without /proc the
//! series exist and stay at zero.

use std::sync::Mutex;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::metrics::SecondsCounter;

#[derive(Debug, Default)]
pub(crate) struct ProcessMetrics {
    cpu: SecondsCounter,
    /// CPU seconds at the last scrape, to turn the running total into counter increments.
    cpu_last: Mutex<f64>,
    resident: Gauge,
    virtual_memory: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge,
}

impl ProcessMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "process_cpu",
            "User and system CPU time spent",
            Unit::Seconds,
            self.cpu.clone(),
        );
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory size",
            Unit::Bytes,
            self.resident.clone(),
        );
        registry.register_with_unit(
            "process_virtual_memory",
            "Virtual memory size",
            Unit::Bytes,
            self.virtual_memory.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors",
            self.open_fds.clone(),
        );
        registry.register(
            "process_max_fds",
            "The limit on open file descriptors",
            self.max_fds.clone(),
        );
        registry.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            self.start_time.clone(),
        );
    }

    #[cfg(target_os = "linux")]
    pub fn update(&self) {
        use procfs::process::{LimitValue, Process};
        let Ok(me) = Process::myself() else { return };
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second().max(1) as f64;
            let cpu = (stat.utime + stat.stime) as f64 / ticks;
            let mut last = self.cpu_last.lock().unwrap_or_else(|e| e.into_inner());
            if cpu > *last {
                self.cpu.inc_by(cpu - *last);
                *last = cpu;
            }
            self.resident
                .set(to_i64(stat.rss.saturating_mul(procfs::page_size())));
            self.virtual_memory.set(to_i64(stat.vsize));
            if let Ok(boot) = procfs::boot_time_secs() {
                self.start_time
                    .set(to_i64(boot + stat.starttime / ticks as u64));
            }
        }
        if let Ok(count) = me.fd_count() {
            self.open_fds.set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        if let Ok(limits) = me.limits() {
            let max = match limits.max_open_files.soft_limit {
                LimitValue::Value(v) => to_i64(v),
                LimitValue::Unlimited => i64::MAX,
            };
            self.max_fds.set(max);
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn update(&self) {}
}

/// What the process uses now, for the fleet view's health panel.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub(crate) struct Sample {
    /// User and system CPU time since the start.
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub open_fds: Option<u64>,
    /// When the process started, in Unix seconds.
    pub started_unix_s: Option<u64>,
}

#[cfg(target_os = "linux")]
pub(crate) fn sample() -> Option<Sample> {
    use procfs::process::Process;
    let me = Process::myself().ok()?;
    let stat = me.stat().ok()?;
    let usage = usage_of(&stat);
    Some(Sample {
        cpu_s: usage.cpu_s,
        rss_bytes: usage.rss_bytes,
        open_fds: me.fd_count().ok().map(|n| n as u64),
        started_unix_s: procfs::boot_time_secs()
            .ok()
            .map(|boot| boot + stat.starttime / procfs::ticks_per_second().max(1)),
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn sample() -> Option<Sample> {
    None
}

/// CPU seconds (user and system) since the start, and resident bytes: what the fleet view samples every second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Usage {
    pub cpu_s: f64,
    pub rss_bytes: u64,
}

#[cfg(target_os = "linux")]
fn usage_of(stat: &procfs::process::Stat) -> Usage {
    let ticks = procfs::ticks_per_second().max(1) as f64;
    Usage {
        cpu_s: (stat.utime + stat.stime) as f64 / ticks,
        rss_bytes: stat.rss.saturating_mul(procfs::page_size()),
    }
}

/// The process's [`Usage`] from one read of `/proc/self/stat`, where [`sample`] reads four files: a thousand
/// agents on one machine each sample every second.
#[cfg(target_os = "linux")]
pub(crate) fn usage() -> Option<Usage> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some(usage_of(&stat))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn usage() -> Option<Usage> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn one_read_of_stat_gives_the_cpu_and_memory_the_full_sample_gives() {
        let full = super::sample().expect("a sample of this process");
        let super::Usage { cpu_s, rss_bytes } = super::usage().expect("this process's stat");
        assert!(
            (cpu_s - full.cpu_s).abs() < 0.1,
            "cpu {cpu_s} s against {} s",
            full.cpu_s
        );
        assert!(
            rss_bytes > 0 && rss_bytes.abs_diff(full.rss_bytes) < 4 << 20,
            "rss {rss_bytes} against {}",
            full.rss_bytes
        );
    }
}
