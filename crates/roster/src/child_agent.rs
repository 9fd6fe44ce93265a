//! `roster agent` run as a child process of this very binary on loopback. Both `roster demo` and
//! `roster bench` run their agents this way; starting them, picking their ports, reading their stderr and
//! killing them lives here once, so the two cannot drift apart.

use std::collections::HashSet;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

/// What one child agent is started with.
pub struct Launch<'a> {
    pub name: &'a str,
    pub port: u16,
    pub http: u16,
    pub data_dir: &'a Path,
    pub log_level: &'a str,
    pub join: &'a [SocketAddr],
    pub keyring: Option<&'a Path>,
}

impl Launch<'_> {
    /// Starts the agent from `exe` (this program), its stderr going to `stderr`, normally the file at
    /// [`stderr_path`].
    pub fn spawn(&self, exe: &Path, stderr: File) -> std::io::Result<Child> {
        let mut cmd = Command::new(exe);
        cmd.args(["agent", "--name", self.name])
            .args(["--bind", &loopback(self.port).to_string()])
            .args(["--http", &loopback(self.http).to_string()])
            .arg("--data-dir")
            .arg(self.data_dir)
            .args(["--log-level", self.log_level]);
        for seed in self.join {
            cmd.args(["--join", &seed.to_string()]);
        }
        if let Some(keyring) = self.keyring {
            cmd.arg("--keyring").arg(keyring);
        }
        // The agents must run on what their caller says: the operator's own ROSTER_* settings (a config file,
        // a keyring) are for their agents, not these.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ROSTER_") {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // A group of its own: Ctrl-C at the terminal reaches only the demo or the benchmark, which then stops
        // every agent itself, instead of every agent starting a graceful leave at once.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.spawn()
    }
}

/// `port` on 127.0.0.1.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The file a child agent with data directory `data_dir` writes its stderr to.
pub fn stderr_path(data_dir: &Path) -> PathBuf {
    data_dir.with_extension("stderr")
}

/// The last lines the agent with data directory `data_dir` wrote to stderr, to explain why it stopped.
pub fn stderr_tail(data_dir: &Path) -> String {
    let text = std::fs::read_to_string(stderr_path(data_dir)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// `kill -9`, and reap the process; leaves `None` behind.
pub fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Hands out ports free for both UDP and TCP on 127.0.0.1, never the same one twice: the kernel may offer a
/// just-released port again.
#[derive(Debug)]
pub struct PortPicker {
    taken: HashSet<u16>,
    rng: u64,
}

impl PortPicker {
    pub fn new() -> PortPicker {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        PortPicker {
            taken: HashSet::new(),
            rng: (u64::from(std::process::id()) << 32) ^ now_ms,
        }
    }

    /// A port free right now, taken below the kernel's ephemeral range where there is room: a port the
    /// kernel hands to some other process's socket between this check and the agent's bind would stop the
    /// agent, and the kernel only hands out ephemeral ports.
    pub fn free_port(&mut self) -> anyhow::Result<u16> {
        let below = ephemeral_start().filter(|&start| start > 12_000);
        for _ in 0..2000 {
            let port = match below {
                Some(start) => {
                    // splitmix64: spread out, and different across runs and processes.
                    self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = self.rng;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    10_000 + ((z ^ (z >> 31)) % u64::from(start - 10_000)) as u16
                }
                None => UdpSocket::bind("127.0.0.1:0")
                    .and_then(|s| s.local_addr())
                    .context("cannot bind a UDP port")?
                    .port(),
            };
            if self.taken.contains(&port) {
                continue;
            }
            let free = UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("127.0.0.1", port)).is_ok();
            if free {
                self.taken.insert(port);
                return Ok(port);
            }
        }
        bail!("found no free loopback port in 2000 tries")
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
