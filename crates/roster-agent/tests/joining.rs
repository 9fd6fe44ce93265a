//! Joining through a name, on the path the Kubernetes manifests take: the headless Service's name resolves to
//! the first pod alone, which must start a cluster rather than give up, and then to more pods, which join it.
//! The names are answered by a [`SeedResolver`] of the test's own, so the answers can change on cue; everything
//! else (sockets, the join, the health check) is the real agent on loopback.

mod support;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roster_agent::{Agent, AgentConfig, SeedResolver};
use support::eventually;

const SERVICE: &str = "roster.roster.svc.cluster.local";

/// A port free for UDP and TCP on 127.0.0.1.
fn free_addr() -> SocketAddr {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = udp.local_addr().expect("addr");
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// A resolver whose answer for the Service's name the test sets.
fn service(answer: &Arc<Mutex<Option<Vec<SocketAddr>>>>) -> SeedResolver {
    let answer = answer.clone();
    SeedResolver::custom(move |name| {
        assert_eq!(name, format!("{SERVICE}:7946"), "the port defaults to 7946");
        answer
            .lock()
            .expect("answer")
            .clone()
            .ok_or_else(|| std::io::Error::other("no such name yet"))
    })
}

fn pod(name: &str, addr: SocketAddr, resolver: SeedResolver) -> AgentConfig {
    let mut config = AgentConfig::new(name, addr);
    config.join = vec![SERVICE.to_owned()];
    config.retry_join = true;
    config.resolver = resolver;
    config
}

fn alive(agent: &Agent, name: &str) -> bool {
    agent
        .members()
        .iter()
        .any(|m| m.name == name && m.state == roster_agent::State::Alive)
}

#[tokio::test(flavor = "current_thread")]
async fn the_first_pod_starts_a_cluster_of_one_and_the_next_pods_join_it() {
    let (a, b, c) = (free_addr(), free_addr(), free_addr());
    let answer = Arc::new(Mutex::new(Some(vec![a])));
    let first = Agent::start(pod("pod-a", a, service(&answer)))
        .await
        .expect("start pod-a");
    assert!(
        eventually(Duration::from_secs(5), || first.health().is_ok()).await,
        "the first pod, whose seed name resolves to itself alone, is not healthy: {:?}",
        first.health()
    );
    assert_eq!(first.members().len(), 1);

    // The next pods come up: the name now resolves to them too.
    *answer.lock().expect("answer") = Some(vec![a, b, c]);
    let second = Agent::start(pod("pod-b", b, service(&answer)))
        .await
        .expect("start pod-b");
    let third = Agent::start(pod("pod-c", c, service(&answer)))
        .await
        .expect("start pod-c");
    let all = [&first, &second, &third];
    assert!(
        eventually(Duration::from_secs(15), || all.iter().all(|agent| {
            ["pod-a", "pod-b", "pod-c"].iter().all(|n| alive(agent, n))
        }))
        .await,
        "the pods did not form one cluster: {:?}",
        all.map(|a| a
            .members()
            .into_iter()
            .map(|m| (m.name, m.state))
            .collect::<Vec<_>>())
    );
    for agent in all {
        assert!(agent.health().is_ok(), "{:?}", agent.health());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_name_that_does_not_resolve_yet_keeps_the_agent_joining_until_it_does() {
    let (seed_addr, joiner_addr) = (free_addr(), free_addr());
    let config = AgentConfig::new("seed", seed_addr);
    let seed = Agent::start(config).await.expect("start the seed");

    let answer = Arc::new(Mutex::new(None));
    let joiner = Agent::start(pod("joiner", joiner_addr, service(&answer)))
        .await
        .expect("start the joiner");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let health = joiner.health();
    assert_eq!(health.status, "joining", "{health:?}");

    *answer.lock().expect("answer") = Some(vec![seed_addr, joiner_addr]);
    assert!(
        eventually(Duration::from_secs(15), || alive(&seed, "joiner")
            && joiner.health().is_ok())
        .await,
        "the joiner did not join once the name resolved: {:?}",
        joiner.health()
    );
}
