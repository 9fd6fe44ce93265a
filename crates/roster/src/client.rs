//! The subcommands that talk to a running agent over its HTTP API: `members`, `leave`, `monitor`.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use roster_agent::MemberInfo;

/// Where the agent's HTTP API is.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Address of the agent's HTTP API
    #[arg(
        long,
        env = "ROSTER_HTTP",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:7070"
    )]
    pub http: String,
}

#[derive(Debug, Args)]
pub struct MembersArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

fn agent(timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(timeout)
        .build()
        .new_agent()
}

pub(crate) fn url(http: &HttpArgs, path: &str) -> String {
    format!("http://{}{path}", http.http)
}

/// Turns a transport error into the one line an operator needs.
pub(crate) fn unreachable(http: &HttpArgs, e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::StatusCode(code) => anyhow!("the agent at {} answered HTTP {code}", http.http),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            anyhow!(
                "no agent reachable at {} (connection refused): is `roster agent` running there?",
                http.http
            )
        }
        other => anyhow!("no agent reachable at {}: {other}", http.http),
    }
}

fn get(http: &HttpArgs, path: &str) -> anyhow::Result<String> {
    agent(Some(Duration::from_secs(10)))
        .get(&url(http, path))
        .call()
        .map_err(|e| unreachable(http, e))?
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable(http, e))
}

pub fn members(args: &MembersArgs) -> anyhow::Result<()> {
    let body = get(&args.http, "/v1/members")?;
    let members: Vec<MemberInfo> =
        serde_json::from_str(&body).context("the agent's member list did not parse")?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&members)?)?,
        Format::Table => {
            let width = members
                .iter()
                .map(|m| m.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            writeln!(
                out,
                "{:width$}  {:<22}  {:<7}  {:>4}  {:<24}  {:>8}",
                "NAME", "ADDR", "STATE", "INC", "JOINED_AT", "RTT_MS"
            )?;
            for m in &members {
                let rtt = m
                    .rtt_ms
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_else(|| "-".into());
                writeln!(
                    out,
                    "{:width$}  {:<22}  {:<7}  {:>4}  {:<24}  {:>8}",
                    m.name,
                    m.addr.to_string(),
                    m.state,
                    m.incarnation,
                    m.joined_at,
                    rtt
                )?;
            }
        }
    }
    Ok(())
}

pub fn leave(args: &HttpArgs) -> anyhow::Result<()> {
    // The agent answers once the news has gone out or its own leave deadline passed.
    let body = agent(Some(Duration::from_secs(60)))
        .post(&url(args, "/v1/leave"))
        .send_empty()
        .map_err(|e| unreachable(args, e))?
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable(args, e))?;
    let reply: serde_json::Value =
        serde_json::from_str(&body).context("the agent's answer did not parse")?;
    if reply.get("announced").and_then(|v| v.as_bool()) == Some(false) {
        eprintln!("roster: left, but the leave deadline passed before every member may have heard");
    }
    Ok(())
}

pub fn monitor(args: &HttpArgs) -> anyhow::Result<()> {
    let response = agent(None)
        .get(&url(args, "/v1/events"))
        .call()
        .map_err(|e| unreachable(args, e))?;
    let reader = BufReader::new(response.into_body().into_reader());
    let mut out = std::io::stdout().lock();
    for line in reader.lines() {
        let line = line.context("the event stream broke")?;
        // Server-Sent Events: `data:` lines carry the JSON; comments keep the connection alive.
        if let Some(data) = line.strip_prefix("data:") {
            writeln!(out, "{}", data.trim_start())?;
            out.flush()?;
        }
    }
    Ok(())
}
