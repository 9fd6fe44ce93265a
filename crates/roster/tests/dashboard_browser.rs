//! The web dashboard in a real browser: headless Chromium, driven over WebDriver (chromedriver), watches a tag
//! changed live and a crash turn up in the members' rows, with no reload. Chromium and chromedriver come from
//! Debian's packages, installed here with apt-get when the test runs as root and they are missing; otherwise
//! the test says why it is skipped in one line. Screenshots are left in the target directory as artefacts.

mod browser;
mod harness;

use std::path::Path;
use std::time::{Duration, Instant};

use browser::{ChromeDriver, artefact_dir, count, wait_for};
use fantoccini::Client;
use harness::{Agent, Scratch, holds, members, roster, wait_until};
use serde_json::json;

#[test]
fn the_dashboard_shows_three_alive_members_then_a_crash_as_failed_without_a_reload() {
    let (chromium, chromedriver) = match browser::browser() {
        Ok(found) => found,
        Err(reason) => {
            eprintln!("skipping the browser test: {reason}");
            return;
        }
    };
    let scratch = Scratch::new("dashboard");
    let b1 = Agent::start(&scratch, "b1", &[]);
    let b2 = Agent::start_with(&scratch, "b2", &[b1.port], &["--tag", "role=web"]);
    let mut b3 = Agent::start(&scratch, "b3", &[b1.port]);
    wait_until(Duration::from_secs(15), || {
        holds(
            members(b1.http).is_ok_and(|l| l.iter().filter(|m| m["state"] == "alive").count() == 3),
        )
    })
    .expect("b1 does not list 3 alive members within 15 s");

    let driver = ChromeDriver::start(&chromedriver, scratch.path());
    let artefacts = artefact_dir();
    let url = format!("http://127.0.0.1:{}/", b1.http);
    let shots = artefacts.as_path();
    browser::drive(&chromium, &driver, scratch.path(), |client| async move {
        watch_the_crash(&client, &url, &b2, &mut b3, shots).await;
    });
    eprintln!("screenshots in {}", artefacts.display());
}

/// The tags in `member`'s row, as the page shows them.
async fn tags_of(client: &Client, member: &str) -> String {
    let script = format!(
        "const row = document.querySelector(\"#members tr[data-member='{member}']\"); \
         return row ? [...row.querySelectorAll('.tag')].map((t) => t.textContent).join(' ') : '';"
    );
    client
        .execute(&script, vec![])
        .await
        .expect("read the tags")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn watch_the_crash(client: &Client, url: &str, b2: &Agent, b3: &mut Agent, artefacts: &Path) {
    client.goto(url).await.expect("open the dashboard");
    let alive = wait_for(client, Duration::from_secs(15), |c| async move {
        count(&c, "#members tr[data-state='alive']").await == 3
    })
    .await;
    assert!(
        alive,
        "the dashboard did not show 3 alive members within 15 s"
    );
    assert_eq!(count(client, "#members tbody tr").await, 3, "member rows");
    assert_eq!(
        tags_of(client, "b2").await,
        "role=web",
        "b2's configured tag is in its row"
    );
    // A tag changed live shows up without a reload too.
    let out = roster(&[
        "tags",
        "set",
        "zone=a",
        "--http",
        &format!("127.0.0.1:{}", b2.http),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = wait_for(client, Duration::from_secs(15), |c| async move {
        tags_of(&c, "b2").await == "role=web zone=a"
    })
    .await;
    assert!(shown, "the dashboard did not show b2's new tag within 15 s");

    // A reload would wipe this; finding it afterwards proves the page updated in place.
    client
        .execute("window.__sameDocument = 'yes'; return true;", vec![])
        .await
        .expect("mark the page");
    let killed = Instant::now();
    b3.kill();
    let failed = wait_for(client, Duration::from_secs(20), |c| async move {
        count(&c, "#members tr[data-member='b3'][data-state='failed']").await == 1
    })
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
