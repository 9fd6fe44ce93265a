//! Talking to a running agent over its HTTP API, and the simplest subcommands that do: `leave`, `force-leave`,
//! `monitor`, `health`.
//!
//! Reading needs nothing; acting (`leave`, `force-leave`, `tags`, `keys`, `event`, `query`) sends the agent's
//! token, read from the file the agent names in `/v1/self` (or `--token-file`): only the agent's user, or root,
//! can read it.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use roster_agent::{Health, SelfInfo};

use crate::BadInput;

/// Where the agent's HTTP API is.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Address of the agent's HTTP API: HOST:PORT or http://HOST:PORT
    #[arg(
        long,
        env = "ROSTER_HTTP",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:7070",
        value_parser = parse_api_address
    )]
    pub http: String,
    /// The agent's token file, for commands that act [default: the file the agent names]
    #[arg(long, env = "ROSTER_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `HOST:PORT`, or the same as a URL as a browser shows it (`http://127.0.0.1:7070/`).
fn parse_api_address(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let bare = match trimmed.split_once("://") {
        Some(("http", rest)) => rest.trim_end_matches('/'),
        Some((scheme, _)) => {
            return Err(format!(
                "{text:?}: the agent serves plain http, not {scheme}"
            ));
        }
        None => trimmed,
    };
    match bare.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty() && port.parse::<u16>().is_ok() && !bare.contains('/') =>
        {
            Ok(bare.to_owned())
        }
        _ => Err(format!(
            "{text:?} is not HOST:PORT or http://HOST:PORT (for example 127.0.0.1:7070)"
        )),
    }
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

/// The agent's token, for a request that acts: from `--token-file`, or the file the agent names.
pub(crate) fn token(http: &HttpArgs) -> anyhow::Result<String> {
    let path = match &http.token_file {
        Some(path) => path.clone(),
        None => {
            let body = get(http, "/v1/self")?;
            let local: SelfInfo =
                serde_json::from_str(&body).context("the agent's /v1/self did not parse")?;
            local.token_file.ok_or_else(|| {
                anyhow!(
                    "the agent at {} keeps its token in memory only (no data directory): give --token-file",
                    http.http
                )
            })?
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            ": run this as the agent's user or root"
        } else {
            ""
        };
        BadInput(format!(
            "cannot read the agent's token file {}: {e}{hint}",
            path.display()
        ))
    })?;
    Ok(text.trim().to_owned())
}

/// Sends a request that acts: the token, and a JSON body.
pub(crate) fn act(
    http: &HttpArgs,
    path: &str,
    body: &str,
    timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    let token = token(http)?;
    let mut response = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(&url(http, path))
        .header("content-type", "application/json")
        .header("authorization", &format!("Bearer {token}"))
        .send(body)
        .map_err(|e| unreachable(http, e))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable(http, e))?;
    if status == 401 || status == 403 || status == 415 {
        let reason = error_of(&text);
        return Err(anyhow!("the agent at {} refused: {reason}", http.http));
    }
    Ok((status, text))
}

/// Sends a request that acts and reads its JSON answer. A refusal of the request itself (400) is bad input
/// (exit 2) and names the problem; too many too fast (429) and any other status are failures at run time.
pub(crate) fn act_json(
    http: &HttpArgs,
    path: &str,
    body: &str,
    timeout: Duration,
) -> anyhow::Result<serde_json::Value> {
    let (status, text) = act(http, path, body, timeout)?;
    match status {
        200 => serde_json::from_str(&text).context("the agent's answer did not parse"),
        400 => Err(BadInput(error_of(&text)).into()),
        429 => Err(anyhow!("{}", error_of(&text))),
        _ => Err(anyhow!(
            "the agent at {} answered HTTP {status}: {}",
            http.http,
            error_of(&text)
        )),
    }
}

/// The `error` of a JSON error body, or the body itself.
pub(crate) fn error_of(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.to_owned())
}

pub(crate) fn get(http: &HttpArgs, path: &str) -> anyhow::Result<String> {
    agent(Some(Duration::from_secs(10)))
        .get(&url(http, path))
        .call()
        .map_err(|e| unreachable(http, e))?
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable(http, e))
}

/// `roster health`: exit 0 when the agent is a working member, 1 with the reason when it is not.
pub fn health(args: &HttpArgs) -> anyhow::Result<()> {
    let response = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(&url(args, "/v1/health"))
        .call();
    let mut response = response.map_err(|e| unreachable(args, e))?;
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable(args, e))?;
    let health: Health = serde_json::from_str(&text)
        .with_context(|| format!("the agent's /v1/health did not parse: {text}"))?;
    if health.is_ok() {
        println!("ok: {} active members", health.active_members);
        Ok(())
    } else {
        Err(anyhow!("{}: {}", health.status, health.reason))
    }
}

pub fn leave(args: &HttpArgs) -> anyhow::Result<()> {
    // The agent answers once the news has gone out or its own leave deadline passed.
    let (status, body) = act(args, "/v1/leave", "{}", Duration::from_secs(60))?;
    if status != 200 {
        return Err(anyhow!(
            "the agent at {} answered HTTP {status}: {}",
            args.http,
            error_of(&body)
        ));
    }
    let reply: serde_json::Value =
        serde_json::from_str(&body).context("the agent's answer did not parse")?;
    if reply.get("announced").and_then(|v| v.as_bool()) == Some(false) {
        eprintln!("roster: left, but the leave deadline passed before every member may have heard");
    }
    Ok(())
}

/// `roster force-leave NAME`
#[derive(Debug, Args)]
pub struct ForceLeaveArgs {
    /// The failed member to mark left in every list
    pub name: String,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Has the agent mark a failed member left everywhere; a member alive, suspect or unknown is refused (exit 2).
pub fn force_leave(args: &ForceLeaveArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({ "name": args.name }).to_string();
    let reply = act_json(
        &args.http,
        "/v1/force-leave",
        &body,
        Duration::from_secs(10),
    )?;
    if reply["outcome"] == "already-left" {
        println!("{} had already left", args.name);
    } else {
        println!(
            "{} is marked left; every list will show it within the dissemination deadline",
            args.name
        );
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
