//! User events and queries through the library, as an embedding program uses them: events arrive typed on
//! `Agent::subscribe`, and the program answers queries itself with `Agent::answer_query`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roster_agent::{Agent, AgentConfig, Event, QueryFilter, QueryUpdate};

/// An agent on a port of the system's choosing (port 0 picks one free for UDP and TCP alike).
async fn start(name: &str, seed: Option<SocketAddr>) -> Agent {
    let mut config = AgentConfig::new(name, SocketAddr::from(([127, 0, 0, 1], 0)));
    config.join = seed.map(|s| s.to_string()).into_iter().collect();
    Agent::start(config).await.expect("start")
}

#[tokio::test(flavor = "current_thread")]
async fn an_embedding_program_sends_events_and_answers_queries() {
    let first = start("lib-a", None).await;
    let second = start("lib-b", Some(first.addr())).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(first.members().len() == 2 && second.members().len() == 2) {
        assert!(Instant::now() < deadline, "the two agents did not meet");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut events = second.subscribe();
    first.send_event("deploy", b"v2").await.expect("sent");
    let heard = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Ok(Event::User(event)) = events.recv().await {
                return (event.name, event.payload, event.from);
            }
        }
    })
    .await
    .expect("the event reached the second agent");
    assert_eq!(heard, ("deploy".into(), b"v2".to_vec(), "lib-a".into()));

    // The second agent's program answers the query it is asked.
    let mut asked = second.subscribe();
    let mut answers = first
        .query(
            "who",
            b"",
            QueryFilter {
                nodes: vec!["lib-b".into()],
                tags: Vec::new(),
            },
            Duration::from_secs(3),
        )
        .await
        .expect("sent");
    assert_eq!(answers.expected, ["lib-b"]);
    let query = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::Query(query)) = asked.recv().await {
                assert!(query.deadline.is_some(), "a live query has its deadline");
                return query.id;
            }
        }
    })
    .await
    .expect("the query reached the second agent");
    second
        .answer_query(&query, b"here")
        .await
        .expect("answered");
    let again = second.answer_query(&query, b"twice").await;
    assert!(again.is_err(), "a second answer is refused");
    let mut updates = Vec::new();
    while let Some(update) = tokio::time::timeout(Duration::from_secs(10), answers.next())
        .await
        .expect("the query ends at its deadline")
    {
        updates.push(update);
    }
    assert_eq!(
        updates,
        [
            QueryUpdate::Answer {
                from: "lib-b".into(),
                payload: b"here".to_vec()
            },
            QueryUpdate::Done {
                answered: vec!["lib-b".into()],
                missing: Vec::new()
            }
        ]
    );
}
