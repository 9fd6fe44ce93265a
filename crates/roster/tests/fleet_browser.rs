//! The fleet view at 10,000 members: one real agent joins through a seed that answers its join with a list of
//! 10,000 members (a roster-core node in this process, answering on a loopback TCP port), and the agent's
//! fleet API and page are checked against that list. The page is driven in real headless Chromium over
//! WebDriver: first render, search, filters, sorting, scrolling through a virtualised table, a member's
//! detail and the live chart, with the timings printed. Without Chromium (and not root to install it) the
//! browser test says why it is skipped in one line; the API test runs anyway.

mod browser;
mod harness;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use browser::{ChromeDriver, artefact_dir, count, wait_for};
use fantoccini::{Client, Locator};
use harness::{Agent, Scratch, free_port, holds, http, wait_until};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use roster_core::{Config, Identity, Member, Meta, Node, State, Time};
use serde_json::{Value, json};

const FLEET: usize = 10_000;
const ROLES: [&str; 4] = ["cache", "db", "queue", "web"];
const ZONES: [&str; 3] = ["eu-1a", "eu-1b", "us-2a"];

/// Member `i` of the seeded list: its name, loopback address and tags.
fn seeded(i: usize) -> (String, SocketAddr, [(&'static str, &'static str); 2]) {
    let role = ROLES[i % ROLES.len()];
    let addr = SocketAddr::from(([127, 1, (i / 250) as u8, (i % 250 + 1) as u8], 7946));
    (
        format!("{role}-{i:05}"),
        addr,
        [("role", role), ("zone", ZONES[i % ZONES.len()])],
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A seed that holds a list of [`FLEET`] members and answers stream requests (a join, a sync) with it: a
/// roster-core node behind a loopback TCP listener, stopped on drop. Its members are loopback addresses
/// nothing listens on, so the agent's probes of them go unanswered and some turn suspect and failed while the
/// test runs, as members of a real fleet would.
struct Seed {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Whether it answers yet: connections wait in the listener's backlog until it does.
    open: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Seed {
    fn start() -> Seed {
        let port = free_port();
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("seed listener");
        listener.set_nonblocking(true).expect("nonblocking");
        let now = Time::from_unix_ms(now_ms());
        let me = Identity::new(
            "seed",
            ([127, 0, 0, 1], port).into(),
            now.unix_ms(),
            Meta::default(),
        )
        .expect("seed identity");
        let mut node = Node::new(Config::default(), me, SmallRng::seed_from_u64(7)).expect("node");
        let members = (0..FLEET).map(|i| {
            let (name, addr, tags) = seeded(i);
            let meta = Meta::new(tags).expect("tags");
            let id = Identity::new(name, addr, now.unix_ms() - 60_000 + i as u64, meta)
                .expect("identity");
            Member::new(Arc::new(id), (i % 3) as u32, State::Alive)
        });
        node.adopt_members(now, members);
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicBool::new(false));
        let (stopping, opened) = (stop.clone(), open.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: the test stops it on drop, and it stops by itself after ten minutes whatever happens.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stopping.load(Ordering::Relaxed) && Instant::now() < deadline {
                if !opened.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                match listener.accept() {
                    Ok((stream, from)) => answer(&mut node, stream, from),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
                while node.poll_transmit().is_some() {}
                while node.poll_event().is_some() {}
            }
        });
        Seed {
            port,
            stop,
            open,
            thread: Some(thread),
        }
    }

    /// Starts answering, the join already waiting included.
    fn open(&self) {
        self.open.store(true, Ordering::Relaxed);
    }
}

/// One stream exchange, framed as the agent frames it (a 4-byte big-endian length, then the bytes).
fn answer(node: &mut Node<SmallRng>, mut stream: TcpStream, from: SocketAddr) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut len = [0u8; 4];
    if stream.read_exact(&mut len).is_err() {
        return;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > 16 << 20 {
        return;
    }
    let mut request = vec![0u8; len];
    if stream.read_exact(&mut request).is_err() {
        return;
    }
    let now = Time::from_unix_ms(now_ms());
    if let Ok(Some(reply)) = node.handle_stream(now, from, &request) {
        let mut frame = (reply.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&reply);
        let _ = stream.write_all(&frame);
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn get(port: u16, path: &str) -> Value {
    let (status, body) = http(port, "GET", path, &[], "");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body:.200}"))
}

/// One agent that joined through the seed and lists the whole fleet. The seed answers only once the agent
/// serves its API, so that the harness's readiness check reads a list of one, not of ten thousand.
fn fleet_agent(scratch: &Scratch, seed: &Seed) -> Agent {
    let agent = Agent::start(scratch, "ops-1", &[seed.port]);
    seed.open();
    let listed = wait_until(Duration::from_secs(30), || {
        let fleet = get(agent.http, "/v1/fleet");
        let rows = fleet["rows"].as_array().map_or(0, Vec::len);
        holds(rows > FLEET)
    });
    assert!(
        listed.is_some(),
        "the agent did not list the seed's {FLEET} members within 30 s"
    );
    agent
}

/// The two tests each run an agent of ten thousand members; one at a time keeps their timings honest on a
/// small machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_fleet_api_serves_ten_thousand_members_their_history_and_the_counts_over_time() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("fleet-api");
    let seed = Seed::start();
    let agent = fleet_agent(&scratch, &seed);

    let started = Instant::now();
    let fleet = get(agent.http, "/v1/fleet");
    let took = started.elapsed();
    let rows = fleet["rows"].as_array().expect("rows");
    // The seed, this agent and the seeded list.
    assert_eq!(rows.len(), FLEET + 2, "rows");
    assert_eq!(fleet["local"], "ops-1");
    let columns: Vec<&str> = fleet["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        columns,
        [
            "name",
            "addr",
            "state",
            "incarnation",
            "joined_at_ms",
            "rtt_ms",
            "meta"
        ]
    );
    let (name, addr, _) = seeded(4245);
    let row = rows
        .iter()
        .find(|r| r[0] == name.as_str())
        .unwrap_or_else(|| panic!("{name} is not in /v1/fleet"));
    assert_eq!(row[1], addr.to_string());
    assert_eq!(row[6], json!({"role": "db", "zone": "eu-1a"}));
    let total: u64 = ["alive", "suspect", "failed", "left"]
        .iter()
        .map(|s| fleet["counts"][s].as_u64().expect("count"))
        .sum();
    assert_eq!(total as usize, rows.len(), "the counts add up to the rows");
    // Joined; and since the seeded members exist nowhere, its probes go unanswered and it may already call
    // itself isolated.
    assert!(
        fleet["health"]["status"] == "ok" || fleet["health"]["status"] == "isolated",
        "{}",
        fleet["health"]
    );
    assert!(
        fleet["process"]["rss_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{}",
        fleet["process"]
    );

    // The history: one sample a second, each adding up to the list it counted.
    let history = wait_until(Duration::from_secs(10), || {
        let h = get(agent.http, "/v1/fleet/history");
        holds(h["samples"].as_array().is_some_and(|s| s.len() >= 3)).map(|()| h)
    })
    .expect("three samples within 10 s");
    assert_eq!(history["interval_ms"], 1000);
    let last = history["samples"]
        .as_array()
        .and_then(|s| s.last())
        .expect("a sample");
    let counted: u64 = ["alive", "suspect", "failed", "left"]
        .iter()
        .map(|s| last[s].as_u64().expect("count"))
        .sum();
    assert_eq!(counted as usize, FLEET + 2, "{last}");

    // A member's history: the line of the join that brought it, from this agent's own log.
    let member = get(agent.http, &format!("/v1/members/{name}/history"));
    assert_eq!(member["member"], name.as_str());
    assert_eq!(member["now"]["tags"]["role"], "db");
    let events = member["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "join" && e["from"] == "seed"),
        "no join from the seed in {name}'s history: {events:?}"
    );
    // Reading only: anything else is held to the operator's rule, and a page on another host gets nothing.
    let (status, _) = http(
        agent.http,
        "POST",
        "/v1/fleet",
        &[("Content-Type", "application/json")],
        "{}",
    );
    assert_eq!(status, 401, "POST /v1/fleet without the token");
    let (status, _) = http(
        agent.http,
        "GET",
        "/fleet",
        &[("Host", "attacker.example")],
        "",
    );
    assert_ne!(status, 200, "the fleet page served to a foreign host");
    let (status, body) = http(agent.http, "GET", "/v1/members/nobody/history", &[], "");
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("neither in this agent's list nor in its event log"),
        "{body}"
    );
    eprintln!(
        "/v1/fleet with {} rows answered in {took:?} ({} KiB)",
        rows.len(),
        serde_json::to_string(&fleet).map_or(0, |s| s.len() / 1024)
    );
}

#[test]
fn the_fleet_page_renders_ten_thousand_members_and_filters_sorts_and_scrolls_them_fast() {
    let (chromium, chromedriver) = match browser::browser() {
        Ok(found) => found,
        Err(reason) => {
            eprintln!("skipping the browser test: {reason}");
            return;
        }
    };
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("fleet-browser");
    let seed = Seed::start();
    let agent = fleet_agent(&scratch, &seed);
    let driver = ChromeDriver::start(&chromedriver, scratch.path());
    let url = format!("http://127.0.0.1:{}/fleet", agent.http);
    browser::drive(&chromium, &driver, scratch.path(), |client| async move {
        use_the_fleet_page(&client, &url, agent.http).await;
    });
}

async fn page_number(client: &Client, script: &str) -> f64 {
    client
        .execute(script, vec![])
        .await
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN)
}

/// Empties the search box as a person selecting its text and deleting it would (an `input` event).
async fn clear_search(client: &Client) {
    client
        .execute(
            "const s = document.getElementById('search'); s.value = ''; \
             s.dispatchEvent(new Event('input')); return true;",
            vec![],
        )
        .await
        .expect("clear the search");
}

/// Waits until the page shows `rows` rows.
async fn shows(client: &Client, rows: usize, within: Duration) -> bool {
    wait_for(client, within, |c| async move {
        page_number(&c, "return window.__fleet.rows;").await == rows as f64
    })
    .await
}

async fn use_the_fleet_page(client: &Client, url: &str, http_port: u16) {
    let total = FLEET + 2;
    let opened = Instant::now();
    client.goto(url).await.expect("open the fleet page");
    assert!(
        shows(client, total, Duration::from_secs(20)).await,
        "the page did not show {total} rows within 20 s"
    );
    let seen_after = opened.elapsed();
    let first_render_ms = page_number(client, "return window.__fleet.firstRenderMs;").await;
    let dom_rows = count(client, "#rows .row:not([hidden])").await;
    assert!(
        (10..200).contains(&dom_rows),
        "{dom_rows} row elements for {total} members: the table is not virtualised"
    );
    assert!(
        first_render_ms < 5000.0,
        "first render took {first_render_ms} ms"
    );

    // Search by name: one member.
    let (name, addr, _) = seeded(4245);
    let search = client
        .find(Locator::Css("#search"))
        .await
        .expect("search box");
    let typed = Instant::now();
    search.send_keys(&name).await.expect("type a name");
    assert!(
        shows(client, 1, Duration::from_secs(5)).await,
        "searching {name} did not leave one row"
    );
    let search_round_trip = typed.elapsed();
    let filter_ms = page_number(client, "return window.__fleet.lastFilterMs;").await;
    assert_eq!(
        count(
            client,
            &format!("#rows .row[data-member='{name}']:not([hidden])")
        )
        .await,
        1
    );

    // Search by address: the 250 members of one /24 (127.1.16.0), plus nothing else.
    clear_search(client).await;
    let prefix = "127.1.16.";
    search.send_keys(prefix).await.expect("type an address");
    let expected = (0..FLEET)
        .filter(|&i| seeded(i).1.to_string().starts_with(prefix))
        .count();
    assert!(
        shows(client, expected, Duration::from_secs(5)).await,
        "searching {prefix} did not show {expected} rows"
    );
    assert!(addr.to_string().starts_with("127.1.16."), "{addr}");
    clear_search(client).await;
    assert!(shows(client, total, Duration::from_secs(5)).await);

    // Filter by tag, then by state as well.
    let tag = client
        .find(Locator::Css("#tag-filter option[value='role=db']"))
        .await
        .expect("the tag filter offers role=db");
    let tag_started = Instant::now();
    tag.click().await.expect("choose role=db");
    assert!(
        shows(client, FLEET / 4, Duration::from_secs(5)).await,
        "role=db did not show {} rows",
        FLEET / 4
    );
    let tag_round_trip = tag_started.elapsed();
    let tag_ms = page_number(client, "return window.__fleet.lastFilterMs;").await;
    client
        .find(Locator::Css("#state-filter option[value='alive']"))
        .await
        .expect("state option")
        .click()
        .await
        .expect("choose alive");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alive_db = page_number(client, "return window.__fleet.rows;").await;
    assert!(
        alive_db > 0.0 && alive_db <= (FLEET / 4) as f64,
        "{alive_db} alive db rows"
    );
    let wrong = count(client, "#rows .row:not([hidden]):not([data-state='alive'])").await;
    assert_eq!(wrong, 0, "rows that are not alive under the alive filter");
    for (select, value) in [("#state-filter", ""), ("#tag-filter", "")] {
        client
            .find(Locator::Css(&format!("{select} option[value='{value}']")))
            .await
            .expect("the any option")
            .click()
            .await
            .expect("clear the filter");
    }
    assert!(shows(client, total, Duration::from_secs(5)).await);

    // Sort by name, descending: the last name first.
    client
        .find(Locator::Css("#head button[data-key='name']"))
        .await
        .expect("name header")
        .click()
        .await
        .expect("sort by name");
    let sort_ms = page_number(client, "return window.__fleet.lastSortMs;").await;
    let top = client
        .execute(
            "return document.querySelector('#rows .row[data-index=\"0\"]').dataset.member;",
            vec![],
        )
        .await
        .expect("first row");
    let (last_name, _, _) = seeded(FLEET - 1);
    assert_eq!(top, json!(last_name), "descending by name");
    // Sort by round trip: measured members first, ascending.
    client
        .find(Locator::Css("#head button[data-key='rtt']"))
        .await
        .expect("rtt header")
        .click()
        .await
        .expect("sort by rtt");

    // Scroll to the very end: the last row is there, and still only a screenful exists.
    client
        .execute(
            "const v = document.getElementById('viewport'); v.scrollTop = v.scrollHeight; return true;",
            vec![],
        )
        .await
        .expect("scroll");
    let last_index = total - 1;
    let reached = wait_for(client, Duration::from_secs(5), |c| async move {
        count(
            &c,
            &format!("#rows .row[data-index='{last_index}']:not([hidden])"),
        )
        .await
            == 1
    })
    .await;
    assert!(
        reached,
        "scrolling to the end did not show row {last_index}"
    );
    let dom_rows = count(client, "#rows .row:not([hidden])").await;
    assert!(dom_rows < 200, "{dom_rows} row elements after scrolling");
    client
        .execute(
            "document.getElementById('viewport').scrollTop = 0; return true;",
            vec![],
        )
        .await
        .expect("scroll back");

    // A member's detail: its tags and its history in this agent's log.
    search.send_keys(&name).await.expect("type a name");
    assert!(shows(client, 1, Duration::from_secs(5)).await);
    client
        .find(Locator::Css(&format!("#rows .row[data-member='{name}']")))
        .await
        .expect("the row")
        .click()
        .await
        .expect("open the detail");
    let detail = wait_for(client, Duration::from_secs(5), |c| async move {
        count(&c, "#detail-events li[data-event='join']").await >= 1
    })
    .await;
    assert!(detail, "the detail of {name} shows no join in its history");
    let tags = client
        .find(Locator::Css("#detail-tags"))
        .await
        .expect("tags")
        .text()
        .await
        .expect("tags text");
    assert!(
        tags.contains("role") && tags.contains("db") && tags.contains("eu-1a"),
        "{tags}"
    );

    // The live chart has samples and one line per state.
    let charted = wait_for(client, Duration::from_secs(10), |c| async move {
        page_number(
            &c,
            "return Number(document.getElementById('chart').dataset.samples || 0);",
        )
        .await
            >= 3.0
    })
    .await;
    assert!(charted, "the chart has fewer than 3 samples after 10 s");
    assert_eq!(count(client, "#chart polyline").await, 4);
    // The seeded members exist nowhere, so this agent's probes go unanswered and it may rightly call itself
    // isolated (or not yet): the panel must come to say what /v1/fleet says, whichever it is.
    let agrees = wait_for(client, Duration::from_secs(12), |c| async move {
        let shown = match c.find(Locator::Css("#h-status")).await {
            Ok(found) => found.text().await.unwrap_or_default(),
            Err(_) => return false,
        };
        let status = get(http_port, "/v1/fleet")["health"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        shown == status
    })
    .await;
    assert!(
        agrees,
        "the health panel does not come to show the agent's status"
    );

    // The picture for the docs: the whole fleet, with one member's detail open.
    clear_search(client).await;
    // By state, descending: the members in trouble at the top.
    for _ in 0..2 {
        client
            .find(Locator::Css("#head button[data-key='state']"))
            .await
            .expect("state header")
            .click()
            .await
            .expect("sort by state");
    }
    client
        .set_window_size(1280, 1400)
        .await
        .expect("window size");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let png = client.screenshot().await.expect("screenshot");
    let artefacts = artefact_dir();
    std::fs::write(artefacts.join("fleet-dashboard.png"), png).expect("write fleet-dashboard.png");

    let fleet = get(http_port, "/v1/fleet");
    eprintln!(
        "fleet page at {total} members ({} failed, {} suspect by now): first render {first_render_ms:.0} ms \
         after navigation (rows seen by WebDriver after {seen_after:?}); search by name {filter_ms:.1} ms in the \
         page ({search_round_trip:?} typed-to-seen over WebDriver); tag filter {tag_ms:.1} ms \
         ({tag_round_trip:?}); sort {sort_ms:.1} ms; {dom_rows} row elements; screenshot in {}",
        fleet["counts"]["failed"],
        fleet["counts"]["suspect"],
        artefacts.display()
    );
}
