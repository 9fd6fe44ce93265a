//! `roster agent`: runs an agent until it leaves (a signal, `roster leave`, or `POST /v1/leave`) or fails.
//!
//! The first SIGINT or SIGTERM starts a graceful leave; a second one exits at once.

use std::str::FromStr;

use anyhow::Context;
use roster_agent::Agent;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use crate::BadInput;
use crate::config::AgentArgs;

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    let filter = settings.log_level.as_deref().unwrap_or("info");
    let targets = Targets::from_str(filter)
        .map_err(|e| BadInput(format!("invalid log level {filter:?}: {e}")))?;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(targets)
        .init();

    // One thread is plenty for a membership agent, and keeps its footprint small.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut agent = Agent::start(settings.agent).await?;
        let mut signals = Signals::new()?;
        tokio::select! {
            result = agent.stopped() => return result.map_err(Into::into),
            () = signals.next() => tracing::info!("signal received: leaving (a second signal exits at once)"),
        }
        tokio::select! {
            result = agent.leave() => result.map_err(Into::into),
            () = signals.next() => {
                tracing::warn!("second signal: exiting without finishing the leave");
                std::process::exit(130);
            }
        }
    })
}

/// SIGINT and SIGTERM as one stream.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    #[cfg(unix)]
    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    #[cfg(not(unix))]
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(not(unix))]
    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
