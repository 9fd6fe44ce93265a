//! A small harness for tests that run real `roster` processes on loopback: agents started and killed through
//! `roster_harness` (as the demo, the benchmark and the fault suite run theirs), the `roster` command itself,
//! and bounded waits.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use roster_harness::{AgentProcess, Launch, loopback};
use serde_json::Value;

pub use roster_harness::free_port;

pub const ROSTER: &str = env!("CARGO_BIN_EXE_roster");
/// The agent alone, as deploy/ ships it.
pub const ROSTERD: &str = env!("CARGO_BIN_EXE_rosterd");

/// A scratch directory removed at the end of the test.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("roster-test-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A `roster agent` child process, killed on drop.
pub struct Agent {
    pub name: String,
    pub port: u16,
    pub http: u16,
    pub data_dir: PathBuf,
    /// More flags for `roster agent`, e.g. `--keyring FILE`.
    pub extra: Vec<String>,
    process: Option<AgentProcess>,
}

impl Agent {
    /// The agent's HTTP API, as `--http` takes it.
    pub fn api(&self) -> String {
        format!("127.0.0.1:{}", self.http)
    }

    /// Starts `name` with its data directory under `scratch`, joining through the agents on `join` ports.
    pub fn start(scratch: &Scratch, name: &str, join: &[u16]) -> Agent {
        Agent::start_with(scratch, name, join, &[])
    }

    /// Like [`Agent::start`], with more flags for `roster agent`.
    pub fn start_with(scratch: &Scratch, name: &str, join: &[u16], extra: &[&str]) -> Agent {
        let (port, http) = (free_port(), free_port());
        let mut agent = Agent {
            name: name.to_owned(),
            port,
            http,
            data_dir: scratch.path().join(name),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            process: None,
        };
        agent.spawn(join);
        agent
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(AgentProcess::pid)
    }

    /// Starts (again) on the same ports and data directory, and waits until it serves its HTTP API.
    pub fn spawn(&mut self, join: &[u16]) {
        assert!(self.process.is_none(), "{} is already running", self.name);
        let mut launch = Launch::new(
            &self.name,
            loopback(self.port),
            loopback(self.http),
            &self.data_dir,
        );
        launch.join = join.iter().map(|&port| loopback(port)).collect();
        for arg in &self.extra {
            launch = launch.arg(arg);
        }
        let mut process = launch
            .spawn(Command::new(ROSTER))
            .unwrap_or_else(|e| panic!("{e}"));
        process
            .wait_ready(Duration::from_secs(10), || Ok(()))
            .unwrap_or_else(|e| panic!("{e}"));
        self.process = Some(process);
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Sends a signal by name (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let pid = self.pid().expect("running");
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit by itself; its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let status = self.process.as_mut()?.wait_exit(within)?;
        self.process = None;
        Some(status)
    }

    pub fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.data_dir.join("events.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}")))
            .collect()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(roster_harness::stderr_path(&self.data_dir)).unwrap_or_default()
    }
}

/// Runs `roster` with `args`, bounded in time.
pub fn roster(args: &[&str]) -> Output {
    let mut child = Command::new(ROSTER)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn roster");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("roster {args:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `roster members --format json` against the agent whose HTTP API is on `http`.
pub fn members(http: u16) -> Result<Vec<Value>, String> {
    let out = roster(&[
        "members",
        "--http",
        &format!("127.0.0.1:{http}"),
        "--format",
        "json",
    ]);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// The state `agent` has for `name`, if it knows it.
pub fn state_of(list: &[Value], name: &str) -> Option<String> {
    list.iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["state"].as_str())
        .map(str::to_owned)
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the agent `child` (started by the test itself) is alive in the list of the agent whose HTTP API is on
/// `seed_http` within `timeout`, under the name `name`; `false` as soon as the child exits.
pub fn joins_before_exiting(
    child: &mut std::process::Child,
    seed_http: u16,
    name: &str,
    timeout: Duration,
) -> bool {
    let joined = wait_until(timeout, || {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(false);
        }
        holds(members(seed_http).is_ok_and(|l| state_of(&l, name).as_deref() == Some("alive")))
            .map(|()| true)
    });
    joined == Some(true)
}

/// Adapts a `bool` condition for [`wait_until`].
pub fn holds(b: bool) -> Option<()> {
    b.then_some(())
}

/// One HTTP/1.1 request to 127.0.0.1:`port`, written by hand so that a test can send exactly the headers a
/// browser or an attacker would: the status and the body (status 0 and the error if nothing listens).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(stream) => stream,
        Err(e) => return (0, e.to_string()),
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample `series` (name and labels exactly as exposed) in a metrics page.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `program` from the PATH, or installed from Debian's `package` with apt-get when the test runs as root
/// (refreshing the package lists only if the install fails without). `Err` says why the test must skip.
pub fn debian_tool(program: &str, package: &str) -> Result<PathBuf, String> {
    let find = || {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    };
    if let Some(found) = find() {
        return Ok(found);
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err(format!(
            "{program} is not installed, and only root may apt-get it (apt-get install {package})"
        ));
    }
    let apt = |args: &[&str]| -> bool {
        let mut child = match Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(_) => return false,
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = child.kill();
        false
    };
    let install = ["install", "-y", "--no-install-recommends", package];
    let installed = apt(&install) || (apt(&["update"]) && apt(&install));
    if !installed {
        return Err(format!("apt-get install {package} failed"));
    }
    find().ok_or_else(|| format!("apt-get installed {package}, yet {program} is not on the PATH"))
}
