//! `roster event` and `roster query`: a user event or a query sent through a running agent's HTTP API, as the
//! operator (with the agent's token, like `roster leave`).

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use serde_json::json;

use crate::BadInput;
use crate::client::{self, HttpArgs};

/// `roster event NAME [PAYLOAD]`
#[derive(Debug, Args)]
pub struct EventArgs {
    /// The event's name
    pub name: String,
    /// What it carries (name and payload: 512 bytes at most)
    #[arg(default_value = "")]
    pub payload: String,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// `roster query NAME [PAYLOAD] [--node NAME] [--tag KEY=VALUE] [--timeout 5s]`
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The query's name
    pub name: String,
    /// What it carries (name, payload and filter: 512 bytes at most)
    #[arg(default_value = "")]
    pub payload: String,
    /// Ask only this member; repeat for more
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Ask only members whose metadata holds KEY=VALUE; repeat for more (all must hold)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<String>,
    /// How long answers are awaited
    #[arg(long, default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
    #[command(flatten)]
    pub http: HttpArgs,
}

fn parse_tag(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(text.to_owned()),
        _ => Err(format!("{text:?} is not a tag like role=db")),
    }
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 5s: {e}"))
}

/// Sends the event; prints its time on the event clock.
pub fn event(args: &EventArgs) -> anyhow::Result<()> {
    let body = json!({ "name": args.name, "payload": args.payload }).to_string();
    let reply = client::act_json(&args.http, "/v1/event", &body, Duration::from_secs(10))?;
    println!(
        "event {} sent at event time {}",
        args.name,
        reply["ltime"].as_u64().unwrap_or_default()
    );
    Ok(())
}

/// Sends the query and prints its NDJSON stream as it arrives: the query, each answer, then who answered and
/// who did not. Fails (exit 1) when a member that was expected did not answer.
pub fn query(args: &QueryArgs) -> anyhow::Result<()> {
    let token = client::token(&args.http)?;
    let timeout_ms = u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX);
    let body = json!({
        "name": args.name,
        "payload": args.payload,
        "nodes": args.nodes,
        "tags": args.tags,
        "timeout_ms": timeout_ms,
    })
    .to_string();
    let mut response = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(2)))
        // The stream ends at the query's deadline; this bound only guards against an agent that died.
        .timeout_global(Some(args.timeout + Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(&client::url(&args.http, "/v1/query"))
        .header("content-type", "application/json")
        .header("authorization", &format!("Bearer {token}"))
        .send(&body)
        .map_err(|e| client::unreachable(&args.http, e))?;
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let reason = client::error_of(&text);
        return Err(if status == 400 {
            BadInput(reason).into()
        } else {
            anyhow!(
                "the agent at {} answered HTTP {status}: {reason}",
                args.http.http
            )
        });
    }
    let reader = BufReader::new(response.into_body().into_reader());
    let mut out = std::io::stdout().lock();
    let mut missing = 0;
    for line in reader.lines() {
        let line = line.context("the answer stream broke")?;
        writeln!(out, "{line}")?;
        out.flush()?;
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
            && let Some(done) = value.get("done")
        {
            missing = done["missing"].as_array().map_or(0, Vec::len);
        }
    }
    if missing > 0 {
        return Err(anyhow!("{missing} expected members did not answer"));
    }
    Ok(())
}
