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

use crate::harness::{debian_tool, free_port, holds, wait_until};

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

/// Runs `test` in a fresh WebDriver session (see [`session`]) on a runtime of its own, for at most 90 s, and
/// closes the session whatever the outcome.
pub fn drive<F, Fut>(chromium: &Path, driver: &ChromeDriver, scratch: &Path, test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = session(chromium, driver, scratch).await;
        let outcome = tokio::time::timeout(Duration::from_secs(90), test(client.clone())).await;
        let _ = client.close().await;
        outcome.expect("the browser test did not finish within 90 s");
    });
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
    Ok((
        debian_tool("chromium", "chromium")?,
        debian_tool("chromedriver", "chromium-driver")?,
    ))
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
