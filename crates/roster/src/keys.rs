//! `roster keys`: make a key, and rotate the cluster's keys through a running agent.
//!
//! A rotation that loses nothing goes: `install NEW` (every member can open it), `use NEW` (every member seals
//! with it), `remove OLD`. Each step reports how many members acknowledged it; the command fails (exit 1) if
//! any did not, so a script can stop before the next step.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use roster_agent::keyring::SecretKey;
use roster_agent::keys::KeyReport;

use crate::BadInput;
use crate::client::{HttpArgs, act, error_of, token, unreachable, url};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random key (base64), for a keyring file or `roster keys install`.
    Generate,
    /// Install a key on every member, for opening messages.
    Install(KeyArgs),
    /// Make an installed key every member's primary, for sealing messages.
    Use(KeyArgs),
    /// Remove a key from every member (never the primary).
    Remove(KeyArgs),
    /// List the keys installed across the cluster, with how many members hold each.
    List(HttpArgs),
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The key, in base64
    pub key: String,
    #[command(flatten)]
    pub http: HttpArgs,
}

pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    let (verb, path, args) = match command {
        KeysCommand::Generate => {
            println!("{}", SecretKey::generate().to_base64());
            return Ok(());
        }
        KeysCommand::List(http) => return list(&http),
        KeysCommand::Install(args) => ("installed", "/v1/keys/install", args),
        KeysCommand::Use(args) => ("now primary", "/v1/keys/use", args),
        KeysCommand::Remove(args) => ("removed", "/v1/keys/remove", args),
    };
    let key = SecretKey::parse(&args.key).map_err(|e| BadInput(format!("invalid key: {e}")))?;
    let body = serde_json::json!({ "key": key.to_base64() }).to_string();
    let report = call(&args.http, path, Some(body))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "key {} {verb}: {}/{} members acknowledged",
        key.id(),
        report.acked,
        report.members
    )?;
    finish(&report)
}

fn list(http: &HttpArgs) -> anyhow::Result<()> {
    let report = call(http, "/v1/keys", None)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} members, {} answered", report.members, report.acked)?;
    for (key, holders) in &report.keys {
        let primary = report.primary.get(key).copied().unwrap_or(0);
        let id = SecretKey::parse(key)
            .map(|k| k.id().to_string())
            .unwrap_or_else(|_| "?".into());
        writeln!(
            out,
            "{key}  id {id}  installed on {holders}, primary on {primary}"
        )?;
    }
    finish(&report)
}

fn finish(report: &KeyReport) -> anyhow::Result<()> {
    if report.failed.is_empty() {
        return Ok(());
    }
    let detail: Vec<String> = report
        .failed
        .iter()
        .map(|(m, why)| format!("{m}: {why}"))
        .collect();
    bail!(
        "{} members did not acknowledge: {}",
        report.failed.len(),
        detail.join("; ")
    )
}

/// Calls the agent; a 400 carries the reason the step was refused, which becomes the error line. Listing acts
/// too: the answer holds the keys themselves.
fn call(http: &HttpArgs, path: &str, body: Option<String>) -> anyhow::Result<KeyReport> {
    let (status, text) = match body {
        Some(body) => act(http, path, &body, Duration::from_secs(30))?,
        None => {
            let token = token(http)?;
            let mut response = ureq::Agent::config_builder()
                .timeout_connect(Some(Duration::from_secs(2)))
                .timeout_global(Some(Duration::from_secs(30)))
                .http_status_as_error(false)
                .build()
                .new_agent()
                .get(&url(http, path))
                .header("authorization", &format!("Bearer {token}"))
                .call()
                .map_err(|e| unreachable(http, e))?;
            let status = response.status().as_u16();
            let text = response
                .body_mut()
                .read_to_string()
                .map_err(|e| unreachable(http, e))?;
            if status == 401 || status == 403 {
                return Err(anyhow!(
                    "the agent at {} refused: {}",
                    http.http,
                    error_of(&text)
                ));
            }
            (status, text)
        }
    };
    if status == 400 {
        return Err(BadInput(error_of(&text)).into());
    }
    if !(200..300).contains(&status) {
        return Err(anyhow!("the agent at {} answered HTTP {status}", http.http));
    }
    serde_json::from_str(&text).context("the agent's answer did not parse")
}
