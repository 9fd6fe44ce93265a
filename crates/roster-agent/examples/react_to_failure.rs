//! A program that embeds Roster and reacts to a failure: it runs three members in this one process on
//! loopback, follows the cluster from the first one's typed events, kills the third (dropping an agent stops
//! it at once, as `kill -9` would), and prints the failure when it arrives.
//!
//! ```sh
//! cargo run -p roster-agent --example react_to_failure
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roster_agent::{Agent, AgentConfig, Event, Meta, RecvError};

fn config(name: &str, role: &str, seed: Option<SocketAddr>) -> AgentConfig {
    // Port 0: the system picks a free port. No data directory, no HTTP: nothing outlives the program.
    let mut config = AgentConfig::new(name, SocketAddr::from(([127, 0, 0, 1], 0)));
    config.join = seed.map(|s| s.to_string()).into_iter().collect();
    config.tags = Meta::new([("role", role)]).expect("a small tag");
    config
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let watcher = Agent::start(config("watcher", "monitor", None)).await?;
    let web = Agent::start(config("web-1", "web", Some(watcher.addr()))).await?;
    let db = Agent::start(config("db-1", "db", Some(watcher.addr()))).await?;
    let mut events = watcher.subscribe();

    // Wait (bounded) until the watcher's list holds all three.
    let met = Instant::now();
    while watcher.members().len() < 3 {
        if met.elapsed() > Duration::from_secs(15) {
            return Err("the three members did not meet within 15 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for member in watcher.members() {
        println!(
            "{:8} {:16} {:8} role={}",
            member.name,
            member.addr.to_string(),
            member.state.as_str(),
            member.tag("role").unwrap_or("-")
        );
    }

    println!("killing db-1");
    let killed = Instant::now();
    drop(db);
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(Event::Suspected(member)) => {
                    println!(
                        "{:>6.2} s  suspected {}",
                        killed.elapsed().as_secs_f64(),
                        member.name
                    )
                }
                Ok(Event::Failed(member)) => return Ok(member),
                Ok(_) => {}
                // This program reads every event as it comes; were it slower, it would be told here how many
                // it missed, and could read them back with `events.replay(&lagged)` given a data directory.
                Err(RecvError::Lagged(lagged)) => println!("missed {} events", lagged.missed()),
                Err(RecvError::Closed) => return Err("the watcher stopped"),
            }
        }
    })
    .await;
    match outcome {
        Ok(Ok(member)) => println!(
            "{:>6.2} s  failed {} ({}, role={}, incarnation {})",
            killed.elapsed().as_secs_f64(),
            member.name,
            member.addr,
            member.tag("role").unwrap_or("-"),
            member.incarnation
        ),
        Ok(Err(why)) => return Err(why.into()),
        Err(_) => return Err("no failure within 30 s".into()),
    }
    drop(web);
    Ok(())
}
