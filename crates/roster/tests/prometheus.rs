//! A real Prometheus server (Debian's `prometheus`) scrapes three agents, and its query API returns each
//! metric that docs/operations.md documents, for all three. Skipped with a reason where Prometheus cannot be
//! had.

mod harness;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harness::{Agent, Scratch, debian_tool, free_port, holds, http, wait_until};

/// The metric names in the table of docs/operations.md's "Metrics" section.
fn documented() -> Vec<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md"),
    )
    .expect("docs/operations.md");
    let section = doc
        .split("\n## Metrics")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Metrics section");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .map(str::to_owned)
        .collect()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_three_agents_under_the_documented_names() {
    let prometheus = match debian_tool("prometheus", "prometheus") {
        Ok(found) => found,
        Err(reason) => {
            eprintln!("skipping the Prometheus test: {reason}");
            return;
        }
    };
    let names = documented();
    assert!(names.len() >= 15, "too few documented metrics: {names:?}");
    let scratch = Scratch::new("prometheus");
    let p1 = Agent::start(&scratch, "p1", &[]);
    let p2 = Agent::start(&scratch, "p2", &[p1.port]);
    // The third serves its metrics on a listener of its own, as a scraper on the network would reach it.
    let metrics_port = free_port();
    let _p3 = Agent::start_with(
        &scratch,
        "p3",
        &[p1.port],
        &["--metrics-http", &format!("127.0.0.1:{metrics_port}")],
    );
    let targets = format!(
        "'127.0.0.1:{}', '127.0.0.1:{}', '127.0.0.1:{metrics_port}'",
        p1.http, p2.http
    );
    let config = scratch.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: roster\n    static_configs:\n      - targets: [{targets}]\n"
        ),
    )
    .expect("write the config");
    let port = free_port();
    let _server = Server(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                scratch.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(scratch.path().join("prometheus.log")).expect("log"))
            .spawn()
            .expect("start prometheus"),
    );
    // How many agents Prometheus has a series of `name` for (a histogram by its count).
    let instances = |name: &str| -> usize {
        let query = format!("count(count by (instance) ({{__name__=~\"{name}(_count)?\"}}))");
        let path = format!("/api/v1/query?query={}", encode(&query));
        let (status, body) = http(port, "GET", &path, &[], "");
        if status != 200 {
            return 0;
        }
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["data"]["result"][0]["value"][1].as_str()?.parse().ok())
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(30), || {
        holds(instances("roster_members") == 3)
    })
    .unwrap_or_else(|| {
        panic!(
            "Prometheus did not scrape three agents within 30 s: {}",
            std::fs::read_to_string(scratch.path().join("prometheus.log")).unwrap_or_default()
        )
    });
    let missing: Vec<(String, usize)> = names
        .iter()
        .map(|n| (n.clone(), instances(n)))
        .filter(|(_, found)| *found != 3)
        .collect();
    assert!(
        missing.is_empty(),
        "documented metrics Prometheus does not have for all three agents (name, agents): {missing:?}"
    );
}

/// Percent-encodes a query for a URL.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
