//! `roster agent`: runs an agent until it leaves (a signal, `roster leave`, or `POST /v1/leave`) or fails.
//!
//! The first SIGINT or SIGTERM starts a graceful leave; a second one exits at once. SIGHUP reloads what can
//! change live: the log level and this member's tags, from the config file (flags and variables as at start
//! still win); a change to anything else is logged as needing a restart.

use std::str::FromStr;

use anyhow::Context;
use roster_agent::Agent;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{Registry, reload};

use crate::BadInput;
use crate::config::{AgentArgs, LogFormat, Settings};

type FilterHandle = reload::Handle<Targets, Registry>;

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let settings = args.clone().resolve()?;
    if args.print_config {
        // What cannot run is not printed as if it were in force: the core's own check, as at start.
        settings
            .agent
            .protocol
            .validate(settings.agent.protocol.max_members)
            .map_err(|e| BadInput(format!("invalid protocol configuration: {e}")))?;
        print!("{}", settings.to_toml());
        return Ok(());
    }
    let filter = filter_of(&settings)?;
    let (filter, handle) = reload::Layer::new(filter);
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    match settings.log_format {
        LogFormat::Text => registry.with(stderr).init(),
        LogFormat::Json => registry.with(stderr.json().flatten_event(true)).init(),
    }

    // One thread is plenty for a membership agent, and keeps its footprint small.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let started = settings;
        let mut agent = Agent::start(started.agent.clone()).await?;
        let mut signals = Signals::new()?;
        let mut live = Live {
            log_level: started.log_level.clone(),
            tags: started.agent.tags.clone(),
        };
        loop {
            tokio::select! {
                result = agent.stopped() => return result.map_err(Into::into),
                signal = signals.next() => match signal {
                    Signal::Reload => reload(&args, &started, &mut live, &handle, &agent).await,
                    Signal::Stop => {
                        tracing::info!("signal received: leaving (a second signal exits at once)");
                        break;
                    }
                },
            }
        }
        loop {
            tokio::select! {
                result = agent.leave() => return result.map_err(Into::into),
                signal = signals.next() => if signal == Signal::Stop {
                    tracing::warn!("second signal: exiting without finishing the leave");
                    std::process::exit(130);
                },
            }
        }
    })
}

fn filter_of(settings: &Settings) -> Result<Targets, BadInput> {
    let filter = settings.log_level.as_deref().unwrap_or("info");
    Targets::from_str(filter).map_err(|e| BadInput(format!("invalid log level {filter:?}: {e}")))
}

/// What a reload may change, as it is now.
struct Live {
    log_level: Option<String>,
    tags: roster_core::Meta,
}

/// SIGHUP: reads the settings again and applies what can change live.
async fn reload(
    args: &AgentArgs,
    started: &Settings,
    live: &mut Live,
    handle: &FilterHandle,
    agent: &Agent,
) {
    let fresh = match args.reload() {
        Ok(fresh) => fresh,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: the settings did not load; nothing changed");
            return;
        }
    };
    let mut changed = Vec::new();
    if fresh.log_level != live.log_level {
        match filter_of(&fresh).map(|f| handle.reload(f)) {
            Ok(Ok(())) => {
                changed.push(format!(
                    "log level {}",
                    fresh.log_level.as_deref().unwrap_or("info")
                ));
                live.log_level = fresh.log_level.clone();
            }
            Ok(Err(e)) => tracing::error!(error = %e, "SIGHUP: could not change the log level"),
            Err(e) => tracing::error!(error = %e, "SIGHUP: log level not changed"),
        }
    }
    // Only a change to the configured tags replaces them: tags changed live with `roster tags` stay otherwise.
    if fresh.agent.tags != live.tags {
        match agent.replace_tags(fresh.agent.tags.clone()).await {
            Ok(_) => {
                changed.push("tags".to_owned());
                live.tags = fresh.agent.tags.clone();
            }
            Err(e) => tracing::error!(error = %e, "SIGHUP: tags not changed"),
        }
    }
    let (was, now) = (started.in_force(), fresh.in_force());
    let restart = needs_restart(&was, &now);
    if !restart.is_empty() {
        tracing::warn!(settings = ?restart, "SIGHUP: these settings changed but take effect only at a restart");
    }
    if changed.is_empty() {
        tracing::info!("SIGHUP: settings reloaded; nothing that can change live has changed");
    } else {
        tracing::info!(changed = %changed.join(", "), "SIGHUP: settings reloaded");
    }
}

/// The settings that differ between `old` and `new` and that a running agent cannot change: every key of the
/// configuration in force but the log level and the tags.
fn needs_restart<'a>(old: &'a toml::Table, new: &'a toml::Table) -> Vec<&'a str> {
    let live = ["log_level", "tags"];
    old.keys()
        .chain(new.keys().filter(|k| !old.contains_key(*k)))
        .map(String::as_str)
        .filter(|key| !live.contains(key) && old.get(*key) != new.get(*key))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    /// SIGINT or SIGTERM.
    Stop,
    /// SIGHUP.
    Reload,
}

/// SIGINT, SIGTERM and SIGHUP as one stream.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            hangup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    #[cfg(unix)]
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Stop,
            _ = self.terminate.recv() => Signal::Stop,
            _ = self.hangup.recv() => Signal::Reload,
        }
    }

    #[cfg(not(unix))]
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> Signal {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_every_changed_setting_but_those_that_change_live() {
        let old: toml::Table = toml::from_str(
            "name = \"m1\"\nlog_level = \"info\"\nring_span = 8\n[tags]\nrole = \"web\"\n",
        )
        .expect("toml");
        let new: toml::Table = toml::from_str(
            "name = \"m1\"\nlog_level = \"debug\"\nring_span = 5\nkeyring = \"k\"\n[tags]\nrole = \"db\"\n",
        )
        .expect("toml");
        assert_eq!(needs_restart(&old, &new), ["ring_span", "keyring"]);
        assert!(needs_restart(&old, &old).is_empty());
    }
}
