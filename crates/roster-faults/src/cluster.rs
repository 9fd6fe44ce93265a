//! A cluster under test: one real `roster agent` per host of a [`Network`], each started under
//! `ip netns exec` with its own data dir and event log, and the faults applied to it.
//!
//! Owns the agents' processes (started and reaped through `roster_harness`, as the demo, the benchmark and
//! the CLI tests run theirs; `kill -9`, SIGSTOP/SIGCONT, restart on the same data dir) and the run directory that holds their data dirs and stderr. Dropping a cluster kills every agent and helper and removes
//! the network; the run directory is kept only when the test is failing, so its logs can be read.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use roster_harness::{AgentProcess, Launch};

use crate::fault::{self, Fault, Latency};
use crate::network::{Network, command_in};
use crate::observe::{self, Event, MemberView};
use crate::report;
use crate::system::{libfaketime, pid_alive, run_with_env};

/// The UDP and TCP port of the protocol on every host.
pub const PROTOCOL_PORT: u16 = 7946;
/// The port of each agent's HTTP API, bound on its host's address so the root leg can read it.
pub const HTTP_PORT: u16 = 7070;

/// The programs the suite runs.
#[derive(Clone, Debug)]
pub struct Bins {
    pub roster: PathBuf,
    pub nfq_delay: PathBuf,
    pub udp_probe: PathBuf,
}

impl Bins {
    /// Takes this crate's helpers from the test's `CARGO_BIN_EXE_*` paths and the `roster` binary from
    /// `ROSTER_BIN`, or else builds it (a no-op when it is fresh) into the same target directory.
    pub fn locate(nfq_delay: &str, udp_probe: &str) -> Result<Bins, String> {
        let nfq_delay = PathBuf::from(nfq_delay);
        let udp_probe = PathBuf::from(udp_probe);
        let roster = match std::env::var_os("ROSTER_BIN") {
            Some(path) => PathBuf::from(path),
            None => build_roster(&nfq_delay)?,
        };
        if !roster.is_file() {
            return Err(format!("no roster binary at {}", roster.display()));
        }
        Ok(Bins {
            roster,
            nfq_delay,
            udp_probe,
        })
    }
}

/// Builds `roster` with the profile and target directory this test binary came from, so the suite always runs
/// the agent of the tree under test.
fn build_roster(sibling: &Path) -> Result<PathBuf, String> {
    let profile_dir = sibling.parent().ok_or("helper binary has no directory")?;
    let target_dir = profile_dir
        .parent()
        .ok_or("profile directory has no parent")?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = manifest.to_string_lossy().into_owned();
    let mut args = vec![
        "build",
        "--quiet",
        "--manifest-path",
        manifest.as_str(),
        "-p",
        "roster",
        "--bin",
        "roster",
    ];
    if release {
        args.push("--release");
    }
    let target = target_dir.to_string_lossy().into_owned();
    let built = run_with_env(
        &cargo,
        &args,
        &[("CARGO_TARGET_DIR", target.as_str())],
        None,
        Duration::from_secs(900),
    );
    let bin = profile_dir.join("roster");
    match built {
        Ok(_) => Ok(bin),
        // A tree that does not build fails its own tests; here an earlier build still says something.
        Err(e) if bin.is_file() => {
            let first = e.0.lines().next().unwrap_or_default().to_owned();
            report::note(&format!(
                "building roster failed, running the previous build {}: {first}",
                bin.display()
            ));
            Ok(bin)
        }
        Err(e) => Err(format!("building roster (or set ROSTER_BIN): {e}")),
    }
}

fn runs_root() -> PathBuf {
    std::env::temp_dir().join("roster-faults")
}

/// Removes run directories of processes that no longer exist.
pub(crate) fn sweep_run_dirs() {
    let Ok(entries) = std::fs::read_dir(runs_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("rf")
            .and_then(|r| r.split('x').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !pid_alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[derive(Debug)]
struct Agent {
    process: AgentProcess,
    started: SystemTime,
}

/// Agents on a test network.
#[derive(Debug)]
pub struct Cluster {
    pub scenario: String,
    bins: Bins,
    run_dir: PathBuf,
    agents: Vec<Option<Agent>>,
    /// Helper processes (UDP probes) running in the hosts' namespaces.
    helpers: Vec<Child>,
    faults: Vec<Fault>,
    /// Packets dropped by fault rules since replaced or removed (their counters go with them).
    dropped_before: u64,
    latency: Option<Latency>,
    /// Per host: how far its clock is from the machine's, in seconds, if the suite set it.
    clocks: Vec<Option<f64>>,
    // Last, so that it is torn down after the agents are gone.
    pub net: Network,
}

impl Cluster {
    /// A network of `hosts` hosts, contained, with no agent yet.
    pub fn new(scenario: &str, hosts: usize, bins: &Bins) -> Result<Cluster, String> {
        let net = Network::create(hosts)?;
        let run_dir = runs_root().join(format!("{}-{scenario}", net.id));
        std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
        Ok(Cluster {
            scenario: scenario.to_owned(),
            bins: bins.clone(),
            run_dir,
            agents: (0..hosts).map(|_| None).collect(),
            helpers: Vec::new(),
            faults: Vec::new(),
            dropped_before: 0,
            latency: None,
            clocks: vec![None; hosts],
            net,
        })
    }

    /// Host indices, 1-based.
    pub fn all(&self) -> Vec<usize> {
        (1..=self.agents.len()).collect()
    }

    /// The member name of host `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.net.host(i).name
    }

    pub fn names(&self, hosts: &[usize]) -> Vec<String> {
        hosts.iter().map(|&i| self.name(i).to_owned()).collect()
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.run_dir.join(self.name(i))
    }

    fn clock_file(&self, i: usize) -> PathBuf {
        self.run_dir.join(format!("{}.clock", self.name(i)))
    }

    /// Puts host `i` on a clock `offset_s` seconds ahead of the machine's (behind when negative), as another
    /// machine's would be. Before the agent starts it is the clock it starts with; while it runs it is a step
    /// of its wall clock, as NTP makes one (its monotonic clock does not move: libfaketime with a timestamp
    /// file, read on every call, and the monotonic clock left alone).
    pub fn set_clock(&mut self, i: usize, offset_s: f64) -> Result<(), String> {
        let path = self.clock_file(i);
        std::fs::write(&path, format!("{offset_s:+.3}s\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.clocks[i - 1] = Some(offset_s);
        Ok(())
    }

    /// Starts the agent of host `i`. h1 is the first member and joins no one; every other joins through h1
    /// and h2 (any one is enough), so a restarted h1 must find its way back from its snapshot alone.
    pub fn start(&mut self, i: usize) -> Result<(), String> {
        assert!(self.agents[i - 1].is_none(), "h{i} already runs");
        let host = self.net.host(i).clone();
        let ip = std::net::IpAddr::V4(host.ip);
        let mut launch = Launch::new(
            &host.name,
            (ip, PROTOCOL_PORT).into(),
            (ip, HTTP_PORT).into(),
            &self.data_dir(i),
        );
        launch.join = match i {
            1 => vec![],
            2 => vec![1],
            _ => vec![1, 2],
        }
        .into_iter()
        .map(|seed| (std::net::IpAddr::V4(self.net.host(seed).ip), PROTOCOL_PORT).into())
        .collect();
        if self.clocks[i - 1].is_some() {
            launch = launch
                .env("LD_PRELOAD", libfaketime()?)
                .env("FAKETIME_TIMESTAMP_FILE", self.clock_file(i))
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let process = launch.spawn(command_in(&host.netns, &self.bins.roster)?)?;
        self.agents[i - 1] = Some(Agent {
            process,
            started: SystemTime::now(),
        });
        Ok(())
    }

    /// Starts every agent, h1 first.
    pub fn start_all(&mut self) -> Result<(), String> {
        for i in self.all() {
            self.start(i)?;
        }
        Ok(())
    }

    fn pid(&self, i: usize) -> Pid {
        let pid = self.agents[i - 1]
            .as_ref()
            .and_then(|agent| agent.process.pid())
            .unwrap_or_else(|| panic!("h{i} does not run"));
        Pid::from_raw(i32::try_from(pid).expect("pids fit in i32"))
    }

    /// When the running agent of host `i` was started.
    pub fn started_at(&self, i: usize) -> Option<SystemTime> {
        self.agents[i - 1].as_ref().map(|a| a.started)
    }

    /// Hosts whose agent has been started and not killed.
    pub fn running(&self) -> Vec<usize> {
        self.all()
            .into_iter()
            .filter(|&i| self.agents[i - 1].is_some())
            .collect()
    }

    /// Agents that died on their own (not by the harness), with their exit status: a crash is a finding.
    pub fn unexpected_exits(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (n, slot) in self.agents.iter_mut().enumerate() {
            if let Some(status) = slot.as_mut().and_then(|agent| agent.process.exit_status()) {
                out.push(format!("h{} exited: {status}", n + 1));
            }
        }
        out
    }

    /// `kill -9` the agents of `hosts` at once; returns the time just before the first signal.
    pub fn kill(&mut self, hosts: &[usize]) -> SystemTime {
        let pids: Vec<Pid> = hosts.iter().map(|&i| self.pid(i)).collect();
        let at = SystemTime::now();
        for pid in pids {
            let _ = kill(pid, Signal::SIGKILL);
        }
        for &i in hosts {
            if let Some(mut agent) = self.agents[i - 1].take() {
                agent.process.kill();
            }
        }
        at
    }

    /// Freezes the agent of host `i` (SIGSTOP); returns when.
    pub fn freeze(&mut self, i: usize) -> SystemTime {
        let at = SystemTime::now();
        kill(self.pid(i), Signal::SIGSTOP).expect("SIGSTOP to a child we own");
        at
    }

    /// Resumes a frozen agent (SIGCONT); returns when.
    pub fn resume(&mut self, i: usize) -> SystemTime {
        let at = SystemTime::now();
        kill(self.pid(i), Signal::SIGCONT).expect("SIGCONT to a child we own");
        at
    }

    /// Adds a bridge fault to those in force.
    pub fn add_fault(&mut self, fault: Fault) -> Result<SystemTime, String> {
        self.faults.push(fault);
        self.dropped_before += fault::dropped(&self.net);
        fault::apply(&self.net, &self.faults)?;
        Ok(SystemTime::now())
    }

    /// Removes every bridge fault; returns the time just before the rules went, so that nothing the heal
    /// caused is ever counted as happening before it.
    pub fn heal(&mut self) -> Result<SystemTime, String> {
        self.faults.clear();
        self.dropped_before += fault::dropped(&self.net);
        let at = SystemTime::now();
        fault::heal(&self.net)?;
        Ok(at)
    }

    /// Packets the bridge faults of this cluster have dropped in all.
    pub fn dropped_packets(&self) -> u64 {
        self.dropped_before
            + if self.faults.is_empty() {
                0
            } else {
                fault::dropped(&self.net)
            }
    }

    /// Adds `delay_ms` each way to every packet of the hosts in `hosts` (see [`Latency::add`]).
    pub fn add_latency(&mut self, hosts: &[usize], delay_ms: u64) -> Result<(), String> {
        assert!(self.latency.is_none(), "one latency fault at a time");
        self.latency = Some(Latency::add(
            &self.net,
            hosts,
            delay_ms,
            &self.bins.nfq_delay,
        )?);
        Ok(())
    }

    pub fn remove_latency(&mut self) {
        if let Some(latency) = self.latency.take() {
            latency.remove();
        }
    }

    /// `GET /v1/members` of host `i`'s agent.
    pub fn members(&self, i: usize) -> Result<Vec<MemberView>, String> {
        observe::members(self.net.subnet, self.net.host(i).ip, HTTP_PORT)
    }

    /// The round trip from host `i`'s agent to member `name` that its network coordinates estimate, in
    /// milliseconds, as `roster rtt` prints it.
    pub fn estimated_rtt_ms(&self, i: usize, name: &str) -> Result<f64, String> {
        let api = format!("{}:{HTTP_PORT}", self.net.host(i).ip);
        let out = Command::new(&self.bins.roster)
            .args(["rtt", name, "--http", &api])
            .output()
            .map_err(|e| format!("roster rtt: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        // `estimated A <-> B rtt: 12.345 ms`
        text.trim()
            .strip_suffix(" ms")
            .and_then(|t| t.rsplit(' ').next())
            .and_then(|ms| ms.parse().ok())
            .ok_or_else(|| format!("roster rtt printed {text:?}"))
    }

    /// Host `i`'s event log, as written so far, its times put back on the machine's clock for a host whose
    /// clock the suite set (by the offset in force now: a line written before a step is off by the step).
    pub fn events(&self, i: usize) -> Vec<Event> {
        let mut events = observe::read_events(&self.data_dir(i));
        if let Some(offset) = self.clocks[i - 1] {
            let offset_ms = (offset * 1000.0).round() as i64;
            for e in &mut events {
                e.time_ms = e.time_ms.saturating_add_signed(-offset_ms);
            }
        }
        events
    }

    /// Runs a `roster-udp-probe` in host `i`'s namespace and returns what it printed.
    pub fn udp_probe(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let bin = self.bins.udp_probe.to_string_lossy().into_owned();
        let mut full = vec![
            "netns",
            "exec",
            self.net.host(i).netns.as_str(),
            bin.as_str(),
        ];
        full.extend_from_slice(args);
        run_with_env("ip", &full, &[], None, Duration::from_secs(120)).map_err(|e| e.to_string())
    }

    /// Spawns a long-running `roster-udp-probe` in host `i`'s namespace; the cluster kills it on drop.
    pub fn spawn_udp_probe(&mut self, i: usize, args: &[&str]) -> Result<(), String> {
        let child = command_in(&self.net.host(i).netns, &self.bins.udp_probe)?
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        // Owned so that drop reaps it; the network teardown kills it anyway.
        self.helpers.push(child);
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for agent in self.agents.iter_mut().flatten() {
            agent.process.kill_now();
        }
        self.agents.clear();
        for mut child in self.helpers.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_latency();
        self.net.teardown();
        if std::env::var_os("ROSTER_FAULTS_KEEP").is_some() {
            report::note(&format!(
                "{}: agent data dirs and logs kept in {}",
                self.scenario,
                self.run_dir.display()
            ));
        } else if std::thread::panicking() {
            report::note(&format!(
                "{}: failed; agent data dirs and logs kept in {}",
                self.scenario,
                self.run_dir.display()
            ));
        } else {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}
