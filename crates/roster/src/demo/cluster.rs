//! The demo's agents: `roster agent` child processes of this very binary on loopback (started through
//! `roster_harness`), each with its own ports and data directory under one temporary directory. This
//! module owns their lifetime: whatever way the demo ends (success, a missed deadline, Ctrl-C, a panic),
//! dropping the [`Cluster`] kills every child, reaps it and removes the directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, anyhow};
use roster_agent::MemberInfo;
use roster_harness::{AgentProcess, Launch, PortPicker, loopback};

/// One agent of the demo, running or not.
#[derive(Debug)]
pub struct Agent {
    pub name: String,
    pub port: u16,
    pub http: u16,
    pub data_dir: PathBuf,
    process: Option<AgentProcess>,
}

impl Agent {
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    pub fn http_addr(&self) -> SocketAddr {
        loopback(self.http)
    }

    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(AgentProcess::pid)
    }

    pub fn events_path(&self) -> PathBuf {
        self.data_dir.join("events.jsonl")
    }

    /// `kill -9`: the process gets no chance to say goodbye, which is the point of the demo.
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Whether the process has exited by itself (after a leave); reaps it if so.
    pub fn has_exited(&mut self) -> bool {
        if self.process.as_mut().is_some_and(AgentProcess::is_running) {
            return false;
        }
        self.process = None;
        true
    }
}

/// Every agent of the demo and the directory they live in.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    pub agents: Vec<Agent>,
    exe: PathBuf,
    http: ureq::Agent,
    ports: PortPicker,
}

impl Cluster {
    /// Makes the temporary directory; no agent runs yet.
    pub fn new() -> anyhow::Result<Cluster> {
        let exe = std::env::current_exe().context("cannot find this program's own path")?;
        let dir = std::env::temp_dir().join(format!("roster-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let http = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_millis(500)))
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .new_agent();
        Ok(Cluster {
            dir,
            agents: Vec::new(),
            exe,
            http,
            ports: PortPicker::new(),
        })
    }

    /// Adds and starts agent `name`, joining through `join` (none for the first one). A port taken between
    /// picking it and the child binding it is a race with other programs: pick again, a few times.
    pub fn add(&mut self, name: &str, join: Option<SocketAddr>) -> anyhow::Result<usize> {
        let mut last = None;
        for _ in 0..3 {
            let mut agent = Agent {
                name: name.to_owned(),
                port: self.ports.free_port().map_err(|e| anyhow!(e))?,
                http: self.ports.free_port().map_err(|e| anyhow!(e))?,
                data_dir: self.dir.join(name),
                process: None,
            };
            match spawn(&self.exe, &mut agent, join) {
                Ok(()) => {
                    self.agents.push(agent);
                    return Ok(self.agents.len() - 1);
                }
                Err(e) => {
                    agent.kill();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("{name} did not start")))
    }

    /// Starts agent `index` again on its ports and data directory, with no `--join`: it finds the cluster
    /// from its snapshot alone.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        spawn(&self.exe, &mut self.agents[index], None)
    }

    /// The list agent `agent` holds, from its HTTP API.
    pub fn members(&self, agent: &Agent) -> anyhow::Result<Vec<MemberInfo>> {
        members(&self.http, agent)
    }

    /// Asks `agent` to leave over its HTTP API. Runs on a thread of its own so that the screen keeps moving
    /// while the agent announces its leave; the process exiting is what the demo waits for.
    pub fn leave(&self, agent: &Agent) {
        let url = format!("http://{}/v1/leave", agent.http_addr());
        // The agent's token, as `roster leave` reads it: acting on an agent needs it.
        let token = std::fs::read_to_string(agent.data_dir.join(roster_agent::control::TOKEN_FILE))
            .unwrap_or_default();
        std::thread::spawn(move || {
            let http = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(15)))
                .build()
                .new_agent();
            let _ = http
                .post(&url)
                .header("content-type", "application/json")
                .header("authorization", &format!("Bearer {}", token.trim()))
                .send("{}");
        });
    }

    /// Stops every agent still running and removes the directory; safe to call twice.
    pub fn shutdown(&mut self) -> (usize, bool) {
        let mut stopped = 0;
        for agent in &mut self.agents {
            if agent.is_running() {
                agent.kill();
                stopped += 1;
            }
        }
        let removed = !self.dir.exists() || std::fs::remove_dir_all(&self.dir).is_ok();
        (stopped, removed)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts `agent`'s process and waits (bounded) until it serves its HTTP API.
fn spawn(exe: &Path, agent: &mut Agent, join: Option<SocketAddr>) -> anyhow::Result<()> {
    let mut launch = Launch::new(
        &agent.name,
        agent.addr(),
        agent.http_addr(),
        &agent.data_dir,
    )
    .own_process_group();
    launch.log_level = "warn".into();
    launch.join.extend(join);
    let mut process = launch.spawn(Command::new(exe)).map_err(|e| anyhow!(e))?;
    process
        .wait_ready(Duration::from_secs(10), || Ok(()))
        .map_err(|e| anyhow!(e))?;
    agent.process = Some(process);
    Ok(())
}

fn members(http: &ureq::Agent, agent: &Agent) -> anyhow::Result<Vec<MemberInfo>> {
    let body = http
        .get(&format!("http://{}/v1/members", agent.http_addr()))
        .call()?
        .body_mut()
        .read_to_string()?;
    Ok(serde_json::from_str(&body)?)
}
