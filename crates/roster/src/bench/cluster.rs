//! The agents a benchmark runs: child processes of this very binary on loopback (started through
//! `roster_harness`), each with its own ports and data directory under one scratch directory.
//!
//! [`Cluster`] owns every process it starts and the scratch directory: dropping it kills them all (`kill -9`),
//! reaps them and removes the directory, so an error, a panic that unwinds, or a signal (which only raises
//! [`interrupted`]; the waits notice it) all end the same way. Children run in their own process group, so a
//! Ctrl-C at the terminal reaches the benchmark alone and not 256 agents starting graceful leaves at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use roster_harness::{AgentProcess, Launch, PortPicker, loopback};

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
    /// The program every agent runs: this roster binary, or another that takes its flags.
    pub program: PathBuf,
    /// The other program, when it is not this roster binary.
    pub other_program: Option<PathBuf>,
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
    /// Wall-clock time the process was spawned.
    pub started_ms: u64,
    pub log: LogTail,
    process: AgentProcess,
}

impl Agent {
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Sends `kill -9` without waiting, so that several agents die within microseconds of each other.
    pub fn kill_now(&mut self) {
        self.process.kill_now();
    }

    /// `kill -9`, and reap the process.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// The last lines the agent wrote to stderr, for an error message.
    pub fn stderr_tail(&self) -> String {
        self.process.stderr_tail()
    }
}

/// The running agents and their scratch directory.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    pub agents: Vec<Agent>,
    /// Wall-clock time the last agent was spawned.
    pub last_start_ms: u64,
    ports: PortPicker,
}

impl Cluster {
    /// Starts `nodes` agents: the seeds one after another (each waited for), then all the others at once, each
    /// joining through every seed. Returns as soon as the last process is spawned.
    pub fn start(nodes: usize, options: &Options) -> anyhow::Result<Cluster> {
        let exe = options.program.clone();
        let dir =
            std::env::temp_dir().join(format!("roster-bench-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create scratch directory {}", dir.display()))?;
        let mut cluster = Cluster {
            dir,
            agents: Vec::with_capacity(nodes),
            last_start_ms: 0,
            ports: PortPicker::new(),
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
        let mut seed_addrs = Vec::new();
        for index in 0..nodes {
            check_interrupted()?;
            let agent = cluster.spawn(&exe, index, &seed_addrs, keyring.as_deref(), options)?;
            cluster.last_start_ms = agent.started_ms;
            let port = agent.port;
            cluster.agents.push(agent);
            if index < seeds {
                cluster.wait_ready(index, options.ready_timeout)?;
                seed_addrs.push(loopback(port));
            }
        }
        Ok(cluster)
    }

    fn spawn(
        &mut self,
        exe: &Path,
        index: usize,
        join: &[SocketAddr],
        keyring: Option<&Path>,
        options: &Options,
    ) -> anyhow::Result<Agent> {
        let name = format!("m{index}");
        let port = self.ports.free_port().map_err(|e| anyhow!(e))?;
        let http = self.ports.free_port().map_err(|e| anyhow!(e))?;
        let data_dir = self.dir.join(&name);
        let mut launch =
            Launch::new(&name, loopback(port), loopback(http), &data_dir).own_process_group();
        launch.log_level = options.log_level.clone();
        launch.join = join.to_vec();
        if let Some(keyring) = keyring {
            launch = launch.arg("--keyring").arg(keyring);
        }
        let process = launch
            .spawn(Command::new(exe))
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("cannot start agent {name}"))?;
        Ok(Agent {
            log: LogTail::new(data_dir.join("events.jsonl")),
            name,
            port,
            http,
            started_ms: now_ms(),
            process,
        })
    }

    fn wait_ready(&mut self, index: usize, timeout: Duration) -> anyhow::Result<()> {
        let (done, others) = self.agents.split_at_mut(index);
        let (agent, later) = others.split_first_mut().expect("the agent just started");
        agent
            .process
            .wait_ready(timeout, || {
                check_interrupted().map_err(|e| e.to_string())?;
                for other in done.iter_mut().chain(later.iter_mut()) {
                    if let Some(status) = other.process.exit_status() {
                        return Err(format!(
                            "agent {} exited early ({status}): {}",
                            other.name,
                            other.stderr_tail()
                        ));
                    }
                }
                Ok(())
            })
            .map_err(|e| anyhow!(e))
    }

    /// Fails, naming the agent and its last words, if any agent that should run has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for agent in &mut self.agents {
            if let Some(status) = agent.process.exit_status() {
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
