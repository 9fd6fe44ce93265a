//! Several agents in one test process on loopback, as a program that embeds Roster runs them: the program
//! follows the cluster through typed events and members, changes its tags live, forces a crashed member out,
//! and reads back what a slow reader missed. Every wait is bounded.

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roster_agent::{
    Agent, AgentConfig, AgentError, Event, ForceLeft, Member, Meta, RecvError, ReplayError, State,
    Subscription,
};
use roster_core::Config;
use support::eventually;

/// Timing faster than the default, so a crash is failed within a few seconds rather than ten.
fn fast() -> Config {
    Config {
        probe_interval: Duration::from_millis(400),
        max_rtt: Duration::from_millis(100),
        detect_deadline: Duration::from_secs(4),
        disseminate_deadline: Duration::from_secs(7),
        max_members: 64,
        ..Config::default()
    }
}

fn config(name: &str, seed: Option<SocketAddr>) -> AgentConfig {
    let mut config = AgentConfig::new(name, SocketAddr::from(([127, 0, 0, 1], 0)));
    config.join = seed.map(|s| s.to_string()).into_iter().collect();
    config.protocol = fast();
    config
}

async fn start(name: &str, seed: Option<SocketAddr>) -> Agent {
    Agent::start(config(name, seed)).await.expect("start")
}

fn holds(agent: &Agent, name: &str, state: State) -> bool {
    agent.member(name).is_some_and(|m| m.state == state)
}

/// The first event `pick` takes, within `within`.
async fn first<T>(
    events: &mut Subscription,
    within: Duration,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> Option<T> {
    bounded(within, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(event) {
                        return Some(found);
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .await
    .flatten()
}

async fn bounded<T>(within: Duration, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(within, f).await.ok()
}

#[tokio::test(flavor = "current_thread")]
async fn a_crash_arrives_as_a_typed_failure_and_a_force_leave_marks_it_left_everywhere() {
    let a = start("emb-a", None).await;
    let b = start("emb-b", Some(a.addr())).await;
    let c = start("emb-c", Some(a.addr())).await;
    assert!(a.http_addr().is_none(), "an embedded agent serves no HTTP");
    let all = ["emb-a", "emb-b", "emb-c"];
    assert!(
        eventually(Duration::from_secs(10), || all.iter().all(|n| {
            [&a, &b, &c]
                .iter()
                .all(|agent| holds(agent, n, State::Alive))
        }))
        .await,
        "the three agents did not meet"
    );
    let mut events = a.subscribe();
    let c_addr = c.addr();
    let crashed = Instant::now();
    drop(c);
    let failed: Member = first(&mut events, Duration::from_secs(15), |e| match e {
        Event::Failed(m) if m.name == "emb-c" => Some(m),
        _ => None,
    })
    .await
    .expect("no typed failure of emb-c within 15 s");
    assert_eq!((failed.state, failed.addr), (State::Failed, c_addr));
    assert!(
        crashed.elapsed() < Duration::from_secs(10),
        "failed after {:?}",
        crashed.elapsed()
    );

    // Refused for a member that may still answer, and for one nobody knows.
    let alive = a.force_leave("emb-b").await.expect_err("alive");
    assert_eq!(
        alive.to_string(),
        "emb-b is alive, not failed: only a failed member can be forced to leave"
    );
    assert!(matches!(
        a.force_leave("nobody").await,
        Err(AgentError::ForceLeave(_))
    ));
    assert!(
        eventually(Duration::from_secs(10), || holds(
            &b,
            "emb-c",
            State::Failed
        ))
        .await,
        "emb-b did not fail emb-c"
    );
    assert_eq!(
        a.force_leave("emb-c").await.expect("forced"),
        ForceLeft::Marked
    );
    let left = first(&mut events, Duration::from_secs(5), |e| match e {
        Event::Left(m) if m.name == "emb-c" => Some(m),
        _ => None,
    })
    .await
    .expect("the force-leave is an event here");
    assert_eq!(left.state, State::Left);
    assert!(
        eventually(Duration::from_secs(15), || holds(&b, "emb-c", State::Left)).await,
        "emb-b does not hold emb-c as left within 15 s"
    );
    assert_eq!(
        a.force_leave("emb-c").await.expect("again"),
        ForceLeft::AlreadyLeft
    );
}

#[tokio::test(flavor = "current_thread")]
async fn tags_changed_live_reach_the_other_lists_and_are_bounded() {
    let mut first_config = config("tag-a", None);
    first_config.tags = Meta::new([("role", "web")]).expect("tags");
    let a = Agent::start(first_config).await.expect("start");
    let b = start("tag-b", Some(a.addr())).await;
    assert!(
        eventually(Duration::from_secs(10), || b
            .member("tag-a")
            .is_some_and(|m| m.tag("role") == Some("web")))
        .await,
        "tag-b does not see tag-a's configured tag"
    );
    let mut events = b.subscribe();
    let changed = Instant::now();
    let tags = a
        .set_tags([("zone", "a"), ("role", "db")])
        .await
        .expect("set");
    assert_eq!(tags.get("role").map(String::as_str), Some("db"));
    let updated = first(&mut events, Duration::from_secs(15), |e| match e {
        Event::Updated(m) if m.name == "tag-a" && m.tag("zone") == Some("a") => Some(m),
        _ => None,
    })
    .await
    .expect("tag-b saw no update of tag-a's tags within 15 s");
    assert_eq!(updated.tag("role"), Some("db"));
    assert!(changed.elapsed() < Duration::from_secs(15));
    let tags = a.delete_tags(["zone"]).await.expect("delete");
    assert!(!tags.contains_key("zone"));
    assert_eq!(a.tags(), tags);

    // Past the bound: refused with the limit and the size, and nothing changes.
    let e = a
        .set_tags([("blob", "x".repeat(600))])
        .await
        .expect_err("too big");
    assert_eq!(
        e.to_string(),
        "invalid tags: metadata is 610 bytes of keys and values; the limit is 500"
    );
    let e = a.set_tags([("roster.x", "1")]).await.expect_err("reserved");
    assert!(e.to_string().contains("reserved"), "{e}");
    assert_eq!(a.tags(), tags);
}

#[tokio::test(flavor = "current_thread")]
async fn a_tag_change_survives_a_restart_unless_the_configured_tags_changed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let configured = Meta::new([("role", "web")]).expect("tags");
    let with = |tags: &Meta| {
        let mut config = config("keep", None);
        config.data_dir = Some(dir.path().to_owned());
        config.tags = tags.clone();
        config
    };
    let mut agent = Agent::start(with(&configured)).await.expect("start");
    agent.set_tags([("deploy", "v2")]).await.expect("set");
    agent.leave().await.expect("leave");

    let mut agent = Agent::start(with(&configured)).await.expect("restart");
    assert_eq!(
        agent.local().tag("deploy"),
        Some("v2"),
        "the live change was lost"
    );
    assert_eq!(agent.local().tag("role"), Some("web"));
    agent.leave().await.expect("leave");

    // The operator edited the configured tags: they win.
    let edited = Meta::new([("role", "db")]).expect("tags");
    let agent = Agent::start(with(&edited)).await.expect("restart");
    assert_eq!(agent.local().tags.len(), 1);
    assert_eq!(agent.local().tag("role"), Some("db"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_reader_that_falls_behind_is_told_how_many_it_missed_and_reads_them_back_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut logged = config("lag", None);
    logged.data_dir = Some(dir.path().to_owned());
    let agent = Agent::start(logged).await.expect("start");
    let mut slow = agent.subscribe();
    let mut keeping_up = agent.subscribe();
    // More events than the agent keeps for its readers: each tag change is one, here at once.
    let sent = 600;
    let mut kept = Vec::new();
    for i in 0..sent {
        agent
            .set_tags([("tick", i.to_string())])
            .await
            .expect("set");
        while let Ok(Ok(event)) = tokio::time::timeout(Duration::ZERO, keeping_up.recv()).await {
            kept.push(event);
        }
    }
    while let Some(Ok(event)) = bounded(Duration::from_millis(200), keeping_up.recv()).await {
        kept.push(event);
    }
    let ticks = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Updated(m) => m.tag("tick").map(str::to_owned),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        ticks(&kept).len(),
        sent,
        "the reader that kept up got them all"
    );

    let lagged = match slow.recv().await {
        Err(RecvError::Lagged(lagged)) => lagged,
        other => panic!("expected to be told of the gap, got {other:?}"),
    };
    assert!(lagged.missed() > 0);
    let mut seen = slow.replay(&lagged).await.expect("read back from the log");
    assert_eq!(
        seen.len() as u64,
        lagged.missed(),
        "every missed line was an event"
    );
    while let Some(Ok(event)) = bounded(Duration::from_millis(200), slow.recv()).await {
        seen.push(event);
    }
    assert_eq!(
        seen, kept,
        "missed and read back, then received: the same events in order"
    );

    // Without an event log there is nothing to read back from.
    let bare = start("bare", None).await;
    let mut slow = bare.subscribe();
    for i in 0..400 {
        bare.set_tags([("tick", i.to_string())]).await.expect("set");
    }
    let Err(RecvError::Lagged(lagged)) = slow.recv().await else {
        panic!("expected a gap");
    };
    assert!(matches!(
        slow.replay(&lagged).await,
        Err(ReplayError::NoEventLog)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn user_events_past_the_send_rate_are_refused_saying_when_the_next_may_go() {
    let agent = start("rate", None).await;
    for i in 0..roster_agent::EVENT_BURST {
        agent
            .send_event("burst", i.to_string().as_bytes())
            .await
            .expect("a burst goes out at once");
    }
    let refused = agent.send_event("burst", b"one too many").await;
    let Err(AgentError::TooManyEvents { retry_after }) = refused else {
        panic!("expected the rate limit, got {refused:?}");
    };
    assert!(retry_after <= Duration::from_millis(125), "{retry_after:?}");
    let message = AgentError::TooManyEvents { retry_after }.to_string();
    assert!(
        message.starts_with(
            "too many user events: an agent sends at most 8 a second, in bursts of up to 32"
        ),
        "{message}"
    );
    tokio::time::sleep(retry_after).await;
    agent
        .send_event("burst", b"after the wait")
        .await
        .expect("sent after waiting as told");
}
