//! The agents a benchmark runs: child processes of this very binary on loopback (started by
//! [`crate::child_agent`]), each with its own ports and data directory under one scratch directory.
//!
//! [`Cluster`] owns every process it starts and the scratch directory: dropping it kills them all (`kill -9`),
//! reaps them and removes the directory, so an error, a panic that unwinds, or a signal (which only raises
//! [`interrupted`]; the waits notice it) all end the same way. Children run in their own process group, so a
//! Ctrl-C at the terminal reaches the benchmark alone and not 256 agents starting graceful leaves at once.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use super::observe::{LogTail, now_ms};
use crate::child_agent::{self, Launch, PortPicker};
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
        child_agent::kill(&mut self.child);
    }

    /// The exit status if the process ended on its own.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// The last lines the agent wrote to stderr, for an error message.
    pub fn stderr_tail(&self) -> String {
        child_agent::stderr_tail(&self.data_dir)
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
        let exe = std::env::current_exe().context("cannot find this program's own binary")?;
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
            let (port, http) = (agent.port, agent.http);
            cluster.agents.push(agent);
            if index < seeds {
                cluster.wait_ready(index, http, options.ready_timeout)?;
                seed_addrs.push(child_agent::loopback(port));
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
        let (port, http) = (self.ports.free_port()?, self.ports.free_port()?);
        let data_dir = self.dir.join(&name);
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let stderr = File::create(child_agent::stderr_path(&data_dir))
            .with_context(|| format!("cannot create {name}'s stderr file"))?;
        let child = Launch {
            name: &name,
            port,
            http,
            data_dir: &data_dir,
            log_level: &options.log_level,
            join,
            keyring,
        }
        .spawn(exe, stderr)
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
