//! Chromium and chromedriver for the browser tests: found on the PATH, or installed from Debian's packages
//! when the test runs as root (otherwise the test says why it is skipped, in one line), a WebDriver session
//! on a chromedriver of its own, and where screenshots are kept.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::harness::{free_port, holds, wait_until};

/// Flags that keep Chromium on this machine: without the background-networking ones it calls out to hosts
/// it cannot reach, and keeps trying.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
];

/// A WebDriver session on headless Chromium, with its profile under `scratch`.
pub async fn session(chromium: &Path, driver: &ChromeDriver, scratch: &Path) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": CHROMIUM_FLAGS.iter().map(|f| f.to_string())
                .chain([format!("--user-data-dir={}", scratch.join("chromium").display())])
                .collect::<Vec<_>>(),
        },
    });
    let mut builder = ClientBuilder::new(HttpConnector::new());
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("capabilities are an object")
    };
    builder.capabilities(capabilities);
    tokio::time::timeout(Duration::from_secs(30), builder.connect(&driver.url()))
        .await
        .expect("no WebDriver session within 30 s")
        .expect("WebDriver session")
}

/// Polls `done` every 200 ms for at most `within`.
pub async fn wait_for<F, Fut>(client: &Client, within: Duration, done: F) -> bool
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done(client.clone()).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

pub async fn count(client: &Client, css: &str) -> usize {
    client
        .find_all(Locator::Css(css))
        .await
        .map(|found| found.len())
        .unwrap_or(0)
}

/// The target directory (the parent of Cargo's per-test scratch directory), where artefacts are kept.
pub fn artefact_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// Chromium and chromedriver: found on the PATH, or installed from Debian's packages when running as root.
pub fn browser() -> Result<(PathBuf, PathBuf), String> {
    if let (Some(chromium), Some(driver)) = (which("chromium"), which("chromedriver")) {
        return Ok((chromium, driver));
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("cannot run id: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err(
            "chromium and chromedriver are not installed, and only root may apt-get them \
                    (apt-get install chromium chromium-driver)"
                .into(),
        );
    }
    // The package lists may be stale on a fresh machine: refresh them only if the install fails without.
    if apt(&[
        "install",
        "-y",
        "--no-install-recommends",
        "chromium",
        "chromium-driver",
    ])
    .is_err()
    {
        apt(&["update"])?;
        apt(&[
            "install",
            "-y",
            "--no-install-recommends",
            "chromium",
            "chromium-driver",
        ])?;
    }
    match (which("chromium"), which("chromedriver")) {
        (Some(chromium), Some(driver)) => Ok((chromium, driver)),
        _ => Err(
            "apt-get installed chromium and chromium-driver, yet they are not on the PATH".into(),
        ),
    }
}

fn apt(args: &[&str]) -> Result<(), String> {
    let mut child = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if status.success() {
                return Ok(());
            }
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "apt-get {} failed: {}",
                args.join(" "),
                err.lines().last().unwrap_or("")
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("apt-get {} took over 10 minutes", args.join(" ")));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A chromedriver process on a free loopback port, killed on drop.
pub struct ChromeDriver {
    port: u16,
    child: Child,
}

impl ChromeDriver {
    pub fn start(binary: &Path, scratch: &Path) -> ChromeDriver {
        let port = free_port();
        let log = std::fs::File::create(scratch.join("chromedriver.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start chromedriver");
        let driver = ChromeDriver { port, child };
        wait_until(Duration::from_secs(10), || {
            holds(TcpStream::connect(("127.0.0.1", port)).is_ok())
        })
        .expect("chromedriver did not listen within 10 s");
        driver
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
