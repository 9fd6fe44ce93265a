//! The control plane in a real browser: a page from another origin tries every way a web page has to make the
//! agent leave (a simple cross-site fetch, a JSON fetch, a form post) and the agent stays; then its own
//! dashboard, given the token, makes it leave. Headless Chromium over WebDriver; skipped with a reason where
//! Chromium cannot be had.

mod browser;
mod harness;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use browser::ChromeDriver;
use fantoccini::{Client, Locator};
use harness::{Agent, Scratch, members, state_of};
use serde_json::json;

/// A page that tries to make the agent on `agent_port` leave, every way a page can.
fn hostile_page(agent_port: u16) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>hostile</title>
<form id="form" method="POST" action="http://127.0.0.1:{agent_port}/v1/leave" enctype="text/plain">
<input name='{{"x":"' value='"}}'></form>
<script>
const target = "http://127.0.0.1:{agent_port}";
window.tries = {{}};
(async () => {{
  try {{
    await fetch(target + "/v1/leave", {{ method: "POST", mode: "no-cors", headers: {{ "Content-Type": "text/plain" }}, body: "{{}}" }});
    tries.simple = "sent";
  }} catch (e) {{ tries.simple = "failed"; }}
  try {{
    const r = await fetch(target + "/v1/leave", {{ method: "POST", headers: {{ "Content-Type": "application/json" }}, body: "{{}}" }});
    tries.json = "answered " + r.status;
  }} catch (e) {{ tries.json = "blocked"; }}
  try {{
    const r = await fetch(target + "/v1/self");
    tries.read = "read " + (await r.text()).length;
  }} catch (e) {{ tries.read = "blocked"; }}
  tries.done = true;
}})();
</script>"#
    )
}

/// Serves `page` to every request on a loopback port of its own (another origin than the agent's), for a
/// bounded time.
fn serve(page: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = conn.set_nonblocking(false);
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

#[test]
fn a_page_from_another_origin_cannot_act_but_the_dashboard_with_the_token_can() {
    let (chromium, chromedriver) = match browser::browser() {
        Ok(found) => found,
        Err(reason) => {
            eprintln!("skipping the browser test: {reason}");
            return;
        }
    };
    let scratch = Scratch::new("control-browser");
    let mut agent = Agent::start(&scratch, "w1", &[]);
    let token = std::fs::read_to_string(agent.data_dir.join("http-token"))
        .expect("token file")
        .trim()
        .to_owned();
    // `localhost` and `127.0.0.1` are different origins, and so are two ports.
    let hostile = format!("http://localhost:{}/", serve(hostile_page(agent.http)));
    let dashboard = format!("http://127.0.0.1:{}/#token={token}", agent.http);

    let driver = ChromeDriver::start(&chromedriver, scratch.path());
    browser::drive(&chromium, &driver, scratch.path(), |client| async move {
        try_both(&client, &hostile, &dashboard, &mut agent).await;
    });
}

async fn try_both(client: &Client, hostile: &str, dashboard: &str, agent: &mut Agent) {
    client.goto(hostile).await.expect("open the hostile page");
    let done = browser::wait_for(client, Duration::from_secs(15), |c| async move {
        c.execute("return window.tries && window.tries.done === true;", vec![])
            .await
            .is_ok_and(|v| v == json!(true))
    })
    .await;
    assert!(done, "the hostile page's script did not finish");
    let tries = client
        .execute("return window.tries;", vec![])
        .await
        .expect("read the tries");
    eprintln!("what the hostile page saw: {tries}");
    assert_eq!(
        tries["json"], "blocked",
        "a JSON request from another origin got an answer"
    );
    assert_eq!(tries["read"], "blocked", "another origin read the API");
    // The form posts, and the browser navigates to the agent's refusal.
    client
        .execute(
            "document.getElementById('form').submit(); return true;",
            vec![],
        )
        .await
        .expect("submit the form");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let list = members(agent.http).expect("the agent still serves");
    assert_eq!(
        state_of(&list, "w1").as_deref(),
        Some("alive"),
        "a page from another origin made the agent leave"
    );
    let refused = agent.stderr().matches("HTTP request refused").count();
    assert!(
        refused >= 2,
        "the simple fetch and the form should have reached the agent and been refused: {}",
        agent.stderr()
    );

    // The dashboard, opened with the token, acts.
    client.goto(dashboard).await.expect("open the dashboard");
    let shown = browser::wait_for(client, Duration::from_secs(15), |c| async move {
        browser::count(&c, "#members tr[data-member='w1'][data-state='alive']").await == 1
    })
    .await;
    assert!(shown, "the dashboard did not show the agent");
    let address = client.current_url().await.expect("url");
    assert!(
        address.fragment().is_none_or(|f| !f.contains("token")),
        "the token stayed in the address bar: {address}"
    );
    client
        .find(Locator::Css("#leave"))
        .await
        .expect("the leave button")
        .click()
        .await
        .expect("click leave");
    client.accept_alert().await.expect("confirm the leave");
    let exited = agent.wait_exit(Duration::from_secs(15));
    assert_eq!(
        exited.and_then(|s| s.code()),
        Some(0),
        "the dashboard's leave did not make the agent leave and exit 0"
    );
    assert!(
        agent
            .events()
            .iter()
            .any(|e| e["event"] == "leave" && e["member"] == "w1"),
        "no leave in the event log"
    );
}
