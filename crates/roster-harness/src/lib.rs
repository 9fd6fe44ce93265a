//! `roster agent` processes run by another program: the demo (`roster demo`), the benchmark
//! (`roster bench cluster`), the integration tests and the fault suite all start, watch and stop their agents
//! through this crate, so the four cannot drift apart.
//!
//! It owns an agent process's command line and environment ([`Launch`]), its lifetime ([`AgentProcess`]: killed
//! and reaped on drop), the wait for its HTTP API to answer ([`AgentProcess::wait_ready`], always bounded), its
//! stderr file, and the loopback ports agents are given ([`free_port`]). What each caller builds around the
//! agents (a story, a measurement, network namespaces) stays with the caller.
//!
//! A crate of its own because its users sit on both sides of the agent: the `roster` binary and its tests, and
//! the fault suite, which runs the binary and needs nothing of the agent's library. It uses only the standard
//! library, and talks HTTP only to the address it is given.

mod ports;

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use ports::{PortPicker, free_port, loopback};

/// What one agent is started with. The flags are `roster agent`'s; [`Launch::arg`] adds any other.
#[derive(Clone, Debug)]
pub struct Launch {
    pub name: String,
    pub bind: SocketAddr,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    pub log_level: String,
    pub join: Vec<SocketAddr>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    own_process_group: bool,
}

impl Launch {
    /// Agent `name` on `bind`, its HTTP API on `http`, its data directory `data_dir`; logging at `info`.
    pub fn new(name: &str, bind: SocketAddr, http: SocketAddr, data_dir: &Path) -> Launch {
        Launch {
            name: name.to_owned(),
            bind,
            http,
            data_dir: data_dir.to_owned(),
            log_level: "info".to_owned(),
            join: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            own_process_group: false,
        }
    }

    /// Another flag (or flag value) for `roster agent`.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Launch {
        self.args.push(arg.into());
        self
    }

    /// An environment variable for the agent (every other `ROSTER_*` variable and `RUST_LOG` is removed).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts the agent in a process group of its own, so that Ctrl-C at the terminal reaches only the
    /// program that runs it, which then stops every agent itself, instead of every agent starting a graceful
    /// leave at once.
    pub fn own_process_group(mut self) -> Launch {
        self.own_process_group = true;
        self
    }

    /// The file the agent's stderr (and stdout) goes to.
    pub fn stderr_path(&self) -> PathBuf {
        stderr_path(&self.data_dir)
    }

    /// `base` (the `roster` binary, or a command that runs it, such as `ip netns exec NS roster`) with the
    /// agent's arguments and environment, stdin closed.
    pub fn command(&self, mut base: Command) -> Command {
        base.args(["agent", "--name", &self.name])
            .args(["--bind", &self.bind.to_string()])
            .args(["--http", &self.http.to_string()])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--log-level", &self.log_level]);
        for seed in &self.join {
            base.args(["--join", &seed.to_string()]);
        }
        base.args(&self.args);
        // The agents run on what their caller says: the caller's own ROSTER_* settings (a config file, a
        // keyring) and RUST_LOG are for its own agent, not these.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ROSTER_") || key == "RUST_LOG" {
                base.env_remove(key);
            }
        }
        base.envs(self.env.iter().map(|(k, v)| (k, v)));
        #[cfg(unix)]
        if self.own_process_group {
            std::os::unix::process::CommandExt::process_group(&mut base, 0);
        }
        base.stdin(Stdio::null());
        base
    }

    /// Starts the agent from `base` (see [`Launch::command`]), creating its data directory; stdout and stderr
    /// are appended to [`Launch::stderr_path`].
    pub fn spawn(&self, base: Command) -> Result<AgentProcess, String> {
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", self.data_dir.display()))?;
        let path = self.stderr_path();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let out = log.try_clone().map_err(|e| e.to_string())?;
        let child = self
            .command(base)
            .stdout(out)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the agent {}: {e}", self.name))?;
        Ok(AgentProcess {
            name: self.name.clone(),
            http: self.http,
            stderr: path,
            child: Some(child),
        })
    }
}

/// The file a started agent with data directory `data_dir` writes its stderr to.
pub fn stderr_path(data_dir: &Path) -> PathBuf {
    data_dir.with_extension("stderr")
}

/// A running (or exited) agent process; killed with `kill -9` and reaped on drop.
#[derive(Debug)]
pub struct AgentProcess {
    name: String,
    http: SocketAddr,
    stderr: PathBuf,
    child: Option<Child>,
}

impl AgentProcess {
    /// The process id, until it is killed or seen to exit.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running, as far as this handle knows (it reaps an exited one).
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none() && self.child.is_some()
    }

    /// The exit status if the process has ended on its own; reaps it.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        match self.child.as_mut()?.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            Ok(None) => None,
            // It cannot be waited for: it is gone as far as this handle can tell.
            Err(_) => {
                self.child = None;
                None
            }
        }
    }

    /// Sends `kill -9` without waiting, so that several agents die within microseconds of each other; call
    /// [`AgentProcess::kill`] after to reap.
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

    /// Waits up to `within` for the process to exit by itself; its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            self.child.as_ref()?;
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits up to `timeout` until the agent answers `GET /v1/self`. Fails at once, with the last lines of
    /// its stderr, if the process exits, and whenever `keep_going` fails (a signal to stop).
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut keep_going: impl FnMut() -> Result<(), String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            keep_going()?;
            if http_get(self.http, "/v1/self").is_ok() {
                return Ok(());
            }
            if let Some(status) = self.exit_status() {
                return Err(format!(
                    "{} stopped at start ({status}): {}",
                    self.name,
                    self.stderr_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "{} did not serve its HTTP API within {timeout:?}: {}",
            self.name,
            self.stderr_tail()
        ))
    }

    /// Everything the agent wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The last lines the agent wrote to stderr, on one line, to explain why it stopped.
    pub fn stderr_tail(&self) -> String {
        let text = self.stderr();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET path` on `addr` over HTTP/1.0 (so the body ends at close, unchunked), bounded in time and size: the
/// body of a 200 response, or what went wrong.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    for timeout in [
        stream.set_read_timeout(Some(Duration::from_secs(2))),
        stream.set_write_timeout(Some(Duration::from_secs(2))),
    ] {
        timeout.map_err(|e| e.to_string())?;
    }
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut response = Vec::new();
    // Bounded by the read timeout and by a size cap far above any list an agent serves.
    stream
        .take(8 << 20)
        .read_to_end(&mut response)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let response =
        String::from_utf8(response).map_err(|_| format!("{addr}{path}: response is not UTF-8"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr}{path}: no HTTP header"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{addr}{path}: {status}"));
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_names_every_setting_and_drops_the_callers_roster_variables() {
        let launch = Launch::new("m1", loopback(7946), loopback(7070), Path::new("/tmp/m1"))
            .arg("--retry-join")
            .env("ROSTER_PROBE_INTERVAL", "750ms");
        let launch = Launch {
            join: vec![loopback(7947)],
            ..launch
        };
        let command = launch.command(Command::new("roster"));
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "agent --name m1 --bind 127.0.0.1:7946 --http 127.0.0.1:7070 --data-dir /tmp/m1 \
             --log-level info --join 127.0.0.1:7947 --retry-join"
        );
        let set: Vec<(String, Option<String>)> = command
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert!(set.contains(&("ROSTER_PROBE_INTERVAL".into(), Some("750ms".into()))));
    }

    #[test]
    fn a_process_that_exits_at_start_is_reported_with_its_last_words() {
        let dir = std::env::temp_dir().join(format!("roster-harness-{}", std::process::id()));
        let launch = Launch::new("m1", loopback(1), loopback(free_port()), &dir.join("m1"));
        // `sh -c` ignores the agent's arguments after its script and says something before it exits.
        let mut base = Command::new("sh");
        base.args(["-c", "echo port in use >&2; exit 3", "sh"]);
        let mut process = launch.spawn(base).expect("spawn sh");
        let err = process
            .wait_ready(Duration::from_secs(10), || Ok(()))
            .expect_err("it exits");
        assert!(
            err.contains("stopped at start") && err.contains("port in use"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
