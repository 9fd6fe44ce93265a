//! The web dashboard in a real browser: headless Chromium, driven over WebDriver (chromedriver), watches a
//! crash turn a member `failed` live, with no reload. Chromium and chromedriver come from Debian's packages,
//! installed here with apt-get when the test runs as root and they are missing; otherwise the test says why
//! it is skipped in one line. Screenshots are left in the target directory as artefacts.

mod harness;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use harness::{Agent, Scratch, free_port, holds, members, wait_until};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// Flags that keep Chromium on this machine: without the background-networking ones it calls out to hosts
/// it cannot reach, and keeps trying.
const CHROMIUM_FLAGS: &[&str] = &[
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

#[test]
fn the_dashboard_shows_three_alive_members_then_a_crash_as_failed_without_a_reload() {
    let (chromium, chromedriver) = match browser() {
        Ok(found) => found,
        Err(reason) => {
            eprintln!("skipping the browser test: {reason}");
            return;
        }
    };
    let scratch = Scratch::new("dashboard");
    let b1 = Agent::start(&scratch, "b1", &[]);
    let _b2 = Agent::start(&scratch, "b2", &[b1.port]);
    let mut b3 = Agent::start(&scratch, "b3", &[b1.port]);
    wait_until(Duration::from_secs(15), || {
        holds(
            members(b1.http).is_ok_and(|l| l.iter().filter(|m| m["state"] == "alive").count() == 3),
        )
    })
    .expect("b1 does not list 3 alive members within 15 s");

    let driver = ChromeDriver::start(&chromedriver, scratch.path());
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": CHROMIUM_FLAGS.iter().map(|f| f.to_string())
                .chain([format!("--user-data-dir={}", scratch.path().join("chromium").display())])
                .collect::<Vec<_>>(),
        },
    });
    let artefacts = artefact_dir();
    let url = format!("http://127.0.0.1:{}/", b1.http);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut builder = ClientBuilder::new(HttpConnector::new());
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are an object")
        };
        builder.capabilities(capabilities);
        let client = tokio::time::timeout(Duration::from_secs(30), builder.connect(&driver.url()))
            .await
            .expect("no WebDriver session within 30 s")
            .expect("WebDriver session");
        let outcome = tokio::time::timeout(
            Duration::from_secs(90),
            watch_the_crash(&client, &url, &mut b3, &artefacts),
        )
        .await;
        let _ = client.close().await;
        outcome.expect("the browser test did not finish within 90 s");
    });
    eprintln!("screenshots in {}", artefacts.display());
}

async fn watch_the_crash(client: &Client, url: &str, b3: &mut Agent, artefacts: &Path) {
    client.goto(url).await.expect("open the dashboard");
    let alive = wait_for(
        client,
        Duration::from_secs(15),
        "3 alive members",
        |c| async move { count(&c, "#members tr[data-state='alive']").await == 3 },
    )
    .await;
    assert!(
        alive,
        "the dashboard did not show 3 alive members within 15 s"
    );
    assert_eq!(count(client, "#members tbody tr").await, 3, "member rows");

    // A reload would wipe this; finding it afterwards proves the page updated in place.
    client
        .execute("window.__sameDocument = 'yes'; return true;", vec![])
        .await
        .expect("mark the page");
    let killed = Instant::now();
    b3.kill();
    let failed =
        wait_for(
            client,
            Duration::from_secs(20),
            "b3 failed",
            |c| async move {
                count(&c, "#members tr[data-member='b3'][data-state='failed']").await == 1
            },
        )
        .await;
    assert!(
        failed,
        "the dashboard did not show b3 failed within 20 s of its kill -9"
    );
    eprintln!(
        "the dashboard showed b3 failed {:?} after the kill",
        killed.elapsed()
    );
    let same = client
        .execute("return window.__sameDocument || 'reloaded';", vec![])
        .await
        .expect("read the mark");
    assert_eq!(same, json!("yes"), "the page was reloaded");
    assert!(
        count(client, "#events li[data-event='failed'][data-member='b3']").await >= 1,
        "the event timeline has no `failed` line for b3"
    );
    assert_eq!(count(client, "#members tr[data-state='alive']").await, 2);

    // Let the row's change highlight fade before the picture.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(artefacts.join("dashboard.png"), png).expect("write dashboard.png");

    // A phone: the table turns into cards and nothing is wider than the screen.
    client.set_window_size(390, 844).await.expect("phone size");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .expect("measure the page");
    assert!(
        overflow.as_f64().is_some_and(|px| px <= 0.0),
        "on a 390 px wide screen the page is {overflow} px too wide"
    );
    let png = client.screenshot().await.expect("phone screenshot");
    std::fs::write(artefacts.join("dashboard-phone.png"), png).expect("write dashboard-phone.png");
}

/// Polls `done` every 200 ms for at most `within`.
async fn wait_for<F, Fut>(client: &Client, within: Duration, _what: &str, done: F) -> bool
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

async fn count(client: &Client, css: &str) -> usize {
    client
        .find_all(Locator::Css(css))
        .await
        .map(|found| found.len())
        .unwrap_or(0)
}

/// The target directory (the parent of Cargo's per-test scratch directory), where artefacts are kept.
fn artefact_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// Chromium and chromedriver: found on the PATH, or installed from Debian's packages when running as root.
fn browser() -> Result<(PathBuf, PathBuf), String> {
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
struct ChromeDriver {
    port: u16,
    child: Child,
}

impl ChromeDriver {
    fn start(binary: &Path, scratch: &Path) -> ChromeDriver {
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

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
