//! The agents a benchmark runs: child processes of this very binary on loopback, each with its own ports and
//! data directory under one scratch directory.
//!
//! [`Cluster`] owns every process it starts and the scratch directory: dropping it kills them all (`kill -9`),
//! reaps them and removes the directory, so an error, a panic that unwinds, or a signal (which only raises
//! [`interrupted`]; the waits notice it) all end the same way. Children run in their own process group, so a
//! Ctrl-C at the terminal reaches the benchmark alone and not 256 agents starting graceful leaves at once.

use std::collections::HashSet;
use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use super::observe::{LogTail, now_ms};
use crate::interrupt::interrupted;

/// Fails if a signal arrived, so every wait loop ends promptly and the cluster is dropped.
pub fn check_interrupted() -> anyhow::Result<()> {
    if interrupted() {
        bail!("interrupted: stopped every agent and removed the scratch directory");
    }
    Ok(())
}

/// Sleeps `total` in small steps, returning early with an error on a signal.
pub fn sleep(total: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + total;
    loop {
        check_interrupted()?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// How to start the agents.
#[derive(Clone, Debug)]
pub struct Options {
    /// Agents the others join through; they start first and are waited for.
    pub seeds: usize,
    /// Encrypt all traffic with a fresh shared keyring.
    pub keyring: bool,
    /// `--log-level` of every agent.
    pub log_level: String,
    /// How long a seed may take to serve its HTTP API.
    pub ready_timeout: Duration,
}

/// One agent process.
#[derive(Debug)]
pub struct Agent {
    pub name: String,
    pub port: u16,
    pub http: u16,
    pub data_dir: PathBuf,
    /// Wall-clock time the process was spawned.
    pub started_ms: u64,
    pub log: LogTail,
    child: Option<Child>,
}

impl Agent {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `kill -9` without waiting, so that several agents die within microseconds of each other.
    pub fn kill_now(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
        }
    }

    /// `kill -9`, and reap the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The exit status if the process ended on its own.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    fn stderr_path(&self) -> PathBuf {
        self.data_dir.with_extension("stderr")
    }

    /// The last lines the agent wrote to stderr, for an error message.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.stderr_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }
}

/// The running agents and their scratch directory.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    pub agents: Vec<Agent>,
    /// Wall-clock time the last agent was spawned.
    pub last_start_ms: u64,
    taken_ports: HashSet<u16>,
    port_rng: u64,
}

impl Cluster {
    /// Starts `nodes` agents: the seeds one after another (each waited for), then all the others at once, each
    /// joining through every seed. Returns as soon as the last process is spawned.
    pub fn start(nodes: usize, options: &Options) -> anyhow::Result<Cluster> {
        let exe = std::env::current_exe().context("cannot find this program's own binary")?;
        let dir =
            std::env::temp_dir().join(format!("roster-bench-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create scratch directory {}", dir.display()))?;
        let mut cluster = Cluster {
            dir,
            agents: Vec::with_capacity(nodes),
            last_start_ms: 0,
            taken_ports: HashSet::new(),
            port_rng: (u64::from(std::process::id()) << 32) ^ now_ms(),
        };
        let keyring = if options.keyring {
            let path = cluster.dir.join("keyring");
            roster_agent::keyring::Keyring::new(roster_agent::keyring::SecretKey::generate())
                .save(&path)
                .map_err(|e| anyhow!("cannot write the keyring: {e}"))?;
            Some(path)
        } else {
            None
        };
        let seeds = options.seeds.clamp(1, nodes.max(1));
        let mut seed_ports = Vec::new();
        for index in 0..nodes {
            check_interrupted()?;
            let agent = cluster.spawn(&exe, index, &seed_ports, keyring.as_deref(), options)?;
            cluster.last_start_ms = agent.started_ms;
            let (port, http) = (agent.port, agent.http);
            cluster.agents.push(agent);
            if index < seeds {
                cluster.wait_ready(index, http, options.ready_timeout)?;
                seed_ports.push(port);
            }
        }
        Ok(cluster)
    }

    fn spawn(
        &mut self,
        exe: &Path,
        index: usize,
        join: &[u16],
        keyring: Option<&Path>,
        options: &Options,
    ) -> anyhow::Result<Agent> {
        let name = format!("m{index}");
        let (port, http) = (self.free_port()?, self.free_port()?);
        let data_dir = self.dir.join(&name);
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let stderr = File::create(data_dir.with_extension("stderr"))
            .with_context(|| format!("cannot create {name}'s stderr file"))?;
        let mut cmd = Command::new(exe);
        cmd.args(["agent", "--name", &name])
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--http", &format!("127.0.0.1:{http}")])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--log-level", &options.log_level]);
        if let Some(keyring) = keyring {
            cmd.arg("--keyring").arg(keyring);
        }
        for seed in join {
            cmd.args(["--join", &format!("127.0.0.1:{seed}")]);
        }
        // The agents must run on what this command says, not on settings the caller's shell happens to hold.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ROSTER_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .env_remove("RUST_LOG")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start agent {name}"))?;
        Ok(Agent {
            log: LogTail::new(data_dir.join("events.jsonl")),
            name,
            port,
            http,
            data_dir,
            started_ms: now_ms(),
            child: Some(child),
        })
    }

    /// A port free for both UDP and TCP on 127.0.0.1, never handed out twice by this cluster.
    ///
    /// Taken below the kernel's ephemeral range where there is room: a port the kernel hands to some other
    /// process's socket between this check and the agent's bind would stop the agent, and the kernel only
    /// hands out ephemeral ports.
    fn free_port(&mut self) -> anyhow::Result<u16> {
        let below = ephemeral_start().filter(|&start| start > 12_000);
        for _ in 0..2000 {
            let port = match below {
                Some(start) => {
                    // splitmix64: spread out, and different across runs and processes.
                    self.port_rng = self.port_rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = self.port_rng;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    10_000 + ((z ^ (z >> 31)) % u64::from(start - 10_000)) as u16
                }
                None => UdpSocket::bind("127.0.0.1:0")
                    .and_then(|s| s.local_addr())
                    .context("cannot bind a UDP port")?
                    .port(),
            };
            if self.taken_ports.contains(&port) {
                continue;
            }
            let free = UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("127.0.0.1", port)).is_ok();
            if free {
                self.taken_ports.insert(port);
                return Ok(port);
            }
        }
        bail!("found no free loopback port in 2000 tries")
    }

    fn wait_ready(&mut self, index: usize, http: u16, timeout: Duration) -> anyhow::Result<()> {
        let client = super::observe::http_client();
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            check_interrupted()?;
            if client
                .get(&format!("http://127.0.0.1:{http}/v1/self"))
                .call()
                .is_ok()
            {
                return Ok(());
            }
            self.check_alive()?;
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "agent {} did not serve its HTTP API within {timeout:?}: {}",
            self.agents[index].name,
            self.agents[index].stderr_tail()
        )
    }

    /// Fails, naming the agent and its last words, if any agent that should run has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for agent in &mut self.agents {
            if let Some(status) = agent.exited() {
                agent.child = None;
                bail!(
                    "agent {} exited early ({status}): {}",
                    agent.name,
                    agent.stderr_tail()
                );
            }
        }
        Ok(())
    }
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Signal them all first, then reap: a slow reap must not leave the rest running meanwhile.
        for agent in &mut self.agents {
            agent.kill_now();
        }
        for agent in &mut self.agents {
            agent.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
