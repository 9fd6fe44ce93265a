//! `roster demo` end to end: the scripted story on five real agents meets every deadline and exits 0, and
//! Ctrl-C at any point leaves no agent running and no file behind.

mod harness;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::ROSTER;

/// `roster demo` with its stdout read line by line on a thread; killed on drop if still running.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(ROSTER)
            .arg("demo")
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start roster demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one contains `needle`, for at most `within`.
    fn until(&mut self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Waits for the exit, for at most `within`; the exit code and every line printed.
    fn exit(&mut self, within: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends with the pipe; collect what is left.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        let text = self.seen.join("\n");
        let status =
            status.unwrap_or_else(|| panic!("roster demo did not exit within {within:?}:\n{text}"));
        (status.code(), text)
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // A demo that outlived its test gets SIGINT first, so it still stops its agents.
        if let Ok(None) = self.child.try_wait() {
            self.signal("INT");
            std::thread::sleep(Duration::from_secs(1));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The agents' pids and the demo's directory, from its plain output.
fn started(text: &str) -> (Vec<u32>, PathBuf) {
    let pids = text
        .lines()
        .filter_map(|l| l.split(" pid ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    let dir = text
        .lines()
        .find_map(|l| l.split("agents stopped, ").nth(1))
        .and_then(|rest| rest.rsplit_once(' '))
        .map(|(dir, _)| PathBuf::from(dir))
        .unwrap_or_else(|| panic!("no cleanup line in:\n{text}"));
    (pids, dir)
}

/// Whether `pid` is still one of the demo's agents (a pid may be reused by something else).
fn is_demo_agent(pid: u32, dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(&*dir.to_string_lossy()))
}

#[test]
fn the_demo_with_five_agents_detects_every_crash_within_the_deadlines_and_cleans_up() {
    let began = Instant::now();
    let mut demo = Demo::start(&["--no-tty", "--nodes", "5", "--seed", "1"]);
    let (code, text) = demo.exit(Duration::from_secs(90));
    eprintln!("{text}\n(the demo took {:?})", began.elapsed());
    assert_eq!(code, Some(0), "roster demo failed:\n{text}");
    assert!(
        text.contains("dashboard: http://127.0.0.1:"),
        "no dashboard URL"
    );
    let crashes: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("summary"))
        .filter(|l| l.trim_start().starts_with("crash "))
        .collect();
    assert_eq!(crashes.len(), 3, "three crashes in the summary:\n{text}");
    for line in &crashes {
        assert!(
            line.contains("(<= 10 s) ok")
                && line.contains("(<= 15 s) ok")
                && !line.contains("MISSED"),
            "a crash missed its deadline: {line}"
        );
    }
    for act in ["leave ", "rejoin "] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(act) && l.ends_with(" ok")),
            "no {act}line in the summary:\n{text}"
        );
    }
    assert!(text.contains("result: PASS"), "{text}");
    // It ends by pointing at the trace of its first crash, read from the agents' logs before they went.
    let first_crash = crashes[0]
        .split_whitespace()
        .nth(1)
        .expect("a crashed name");
    assert!(
        text.contains(&format!(
            "how the news of {first_crash}'s crash travelled: roster trace {first_crash} --event failed"
        )),
        "no trace command for {first_crash}:\n{text}"
    );
    assert!(
        text.contains(&format!("  {first_crash} failed (127.0.0.1:"))
            && text.contains("  first detector: "),
        "no trace summary:\n{text}"
    );
    let (pids, dir) = started(&text);
    assert_eq!(pids.len(), 6, "five starts and one restart: {pids:?}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(
        pids.iter().all(|&pid| !is_demo_agent(pid, &dir)),
        "an agent outlived the demo"
    );
}

#[test]
fn ctrl_c_stops_the_demo_with_every_agent_and_file_gone() {
    let mut demo = Demo::start(&["--no-tty", "--nodes", "5", "--seed", "2"]);
    assert!(
        demo.until("converged", Duration::from_secs(30)),
        "the demo did not converge within 30 s:\n{}",
        demo.seen.join("\n")
    );
    demo.signal("INT");
    let (code, text) = demo.exit(Duration::from_secs(10));
    assert_eq!(code, Some(130), "exit code after SIGINT:\n{text}");
    assert!(text.contains("result: INTERRUPTED"), "{text}");
    let (pids, dir) = started(&text);
    assert_eq!(pids.len(), 5, "{text}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(
        pids.iter().all(|&pid| !is_demo_agent(pid, &dir)),
        "an agent outlived the demo"
    );
}
