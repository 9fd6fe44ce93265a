//! The machine under the suite: whether it can run at all (root, `ip`, `nft`, `iptables-nft`, `faketime`),
//! installing those tools when it can, and running them with a time bound.
//!
//! Nothing here touches a network; it only decides whether the suite may run and runs the commands the other
//! modules compose.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Why the suite cannot run here, if it cannot. Checked once per process; installs missing tools on the way.
pub fn skip_reason() -> Option<&'static str> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON.get_or_init(check_and_install).as_deref()
}

fn is_root() -> bool {
    // The effective uid of this process, read from procfs to stay free of `unsafe` libc calls.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// Finds an executable on PATH, or in the sbin directories that a non-login root shell may lack.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| PathBuf::from(dir).join(tool))
        .find(|p| p.is_file())
}

const TOOLS: [(&str, &str); 4] = [
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("iptables-nft", "iptables"),
    // Gives an agent another machine's clock: libfaketime, preloaded (see `cluster`).
    ("faketime", "faketime"),
];

/// The libfaketime library the `faketime` package installs, wherever the architecture puts it.
pub fn libfaketime() -> Result<PathBuf, String> {
    let lib = Path::new("/usr/lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lib)
        .map_err(|e| format!("{}: {e}", lib.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    dirs.push(lib.to_owned());
    dirs.into_iter()
        .map(|dir| dir.join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file())
        .ok_or_else(|| "libfaketime.so.1 not found (Debian package faketime)".to_owned())
}

fn missing_packages() -> Vec<&'static str> {
    TOOLS
        .iter()
        .filter(|(tool, _)| which(tool).is_none())
        .map(|(_, package)| *package)
        .collect()
}

fn check_and_install() -> Option<String> {
    if !is_root() {
        return Some("not root: network namespaces and nftables need root".to_owned());
    }
    let missing = missing_packages();
    if missing.is_empty() {
        return None;
    }
    if which("apt-get").is_none() {
        return Some(format!(
            "{} missing and no apt-get to install them",
            missing.join(", ")
        ));
    }
    let install = |packages: &[&str]| {
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend_from_slice(packages);
        run_with_env(
            "apt-get",
            &args,
            &[("DEBIAN_FRONTEND", "noninteractive")],
            None,
            Duration::from_secs(300),
        )
    };
    if install(&missing).is_err() {
        // The package lists may be absent on a fresh machine; refresh them only when the plain install failed.
        let _ = run_with_env(
            "apt-get",
            &["update", "-q"],
            &[],
            None,
            Duration::from_secs(300),
        );
        let _ = install(&missing);
    }
    let still = missing_packages();
    if still.is_empty() {
        None
    } else {
        Some(format!(
            "{} missing and could not be installed",
            still.join(", ")
        ))
    }
}

/// A command that failed, with what it printed.
#[derive(Debug)]
pub struct CmdError(pub String);

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CmdError {}

/// Runs `program args`, feeding `stdin`, and returns its stdout; fails on a non-zero exit or after `timeout`.
pub fn run_with_env(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<String, CmdError> {
    let shown = format!("{program} {}", args.join(" "));
    let path = which(program).ok_or_else(|| CmdError(format!("{program}: not installed")))?;
    let mut child = Command::new(path)
        .args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CmdError(format!("{shown}: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| CmdError(format!("{shown}: stdin: {e}")))?;
    }
    // Readers on threads, so a chatty command cannot block on a full pipe while we wait for it.
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CmdError(format!("{shown}: timed out after {timeout:?}")));
            }
            Err(e) => return Err(CmdError(format!("{shown}: {e}"))),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        Err(CmdError(format!("{shown}: {status}: {}", stderr.trim())))
    }
}

/// Runs a short system command (`ip`, `nft`, `iptables-nft`) with a 20 s bound.
pub fn run(program: &str, args: &[&str]) -> Result<String, CmdError> {
    run_with_env(program, args, &[], None, Duration::from_secs(20))
}

/// Like [`run`], with `stdin` fed to the command (an `nft -f -` script).
pub fn run_stdin(program: &str, args: &[&str], stdin: &str) -> Result<String, CmdError> {
    run_with_env(program, args, &[], Some(stdin), Duration::from_secs(20))
}

/// Whether a process with this id exists.
pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
