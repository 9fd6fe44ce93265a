//! Starting an agent: checking the configuration, opening the data directory (event log, snapshot, saved tags),
//! binding the sockets and the HTTP listeners, choosing this instance's identity, and spawning the driver.
//! Everything that can be refused is checked before anything binds or is written.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use roster_core::{Identity, Node};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::agent::Agent;
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::control::OperatorToken;
use crate::driver::{self, CoreState, DriverSetup, Shared};
use crate::error::AgentError;
use crate::eventlog::EventLog;
use crate::handlers::HandlerTiming;
use crate::keyring::Keyring;
use crate::metrics::Metrics;
use crate::seeds::{self, Seeds};
use crate::snapshot::{Loaded, Snapshot};
use crate::subscription::LogPlace;
use crate::tags::SavedTags;
use crate::transport::{self, Sockets, Wire};
use crate::{fleet, http};

/// Lines kept for the readers of the event stream; a reader further behind is told it lagged.
const EVENTS_BUFFERED: usize = 256;

impl Agent {
    /// Binds the sockets, opens the data directory, loads the snapshot, and starts the protocol, joining
    /// through `config.join` and the members the snapshot knew. Returns once the agent is serving; the join
    /// goes on in the background (follow [`Agent::subscribe`], or [`Agent::stopped`] for a failed join).
    pub async fn start(config: AgentConfig) -> Result<Agent, AgentError> {
        let clock = Clock::start();
        let (seed_addrs, seed_names) = seeds::parse(&config.join)?;
        let protocol = config.protocol.clone();
        // The same check as `Node::new`, made here so that a configuration that cannot meet its deadlines is
        // refused before anything binds or is written.
        let timers = protocol
            .validate(protocol.max_members)
            .map_err(AgentError::InvalidConfig)?;
        // The keyring is read before anything binds or is written, so a bad one stops the agent with its reason.
        let wire = match &config.keyring {
            Some(path) => Wire::encrypted(
                Keyring::load(path).map_err(|e| AgentError::Keyring(e.to_string()))?,
                Some(path.clone()),
            ),
            None => Wire::default(),
        };

        let data = match &config.data_dir {
            Some(dir) => Some(open_data_dir(dir, &config)?),
            None => None,
        };

        let sockets = Sockets::bind(config.bind)
            .await
            .map_err(|error| AgentError::Bind {
                addr: config.bind,
                error,
            })?;
        let bound = sockets.udp.local_addr().map_err(|error| AgentError::Bind {
            addr: config.bind,
            error,
        })?;
        tracing::info!(
            requested = transport::UDP_RECEIVE_BUFFER,
            granted = sockets.udp_receive_buffer,
            "UDP receive buffer (the kernel caps it at twice net.core.rmem_max)"
        );
        let advertise = match config.advertise {
            Some(addr) => addr,
            None if bound.ip().is_unspecified() => {
                let (ip, how) = seeds::automatic_advertise(bound, &seed_addrs);
                let addr = SocketAddr::new(ip, bound.port());
                tracing::info!(advertise = %addr, chosen_by = how, "advertise address chosen automatically (give --advertise to choose it yourself)");
                addr
            }
            None => bound,
        };

        let mut seeds = Seeds {
            addrs: seed_addrs,
            names: seed_names,
            required: !config.join.is_empty(),
            retry: config.retry_join,
            resolver: config.resolver.clone(),
            own: advertise,
        };
        let (log, snapshot) = match data {
            Some((log, snapshot)) => (Some(log), snapshot),
            None => (None, None),
        };
        let previous = match snapshot {
            Some(snapshot) if snapshot.name == config.name => Some(snapshot),
            Some(snapshot) => {
                tracing::warn!(
                    snapshot_name = %snapshot.name,
                    "the snapshot in the data directory belongs to another member; not using it"
                );
                None
            }
            None => None,
        };
        // A new instance must outrank the one before it everywhere, even when this machine's clock is behind
        // the old instance's joined_at (a reboot before the clock was synchronised).
        let wall_ms = clock.started_at().unix_ms();
        let joined_at_ms =
            Identity::joined_at_after(wall_ms, previous.as_ref().map(|s| s.joined_at_ms));
        if joined_at_ms > wall_ms {
            tracing::warn!(
                behind_ms = joined_at_ms - wall_ms,
                "this machine's clock is behind the instance before this one: joined_at raised just past it (is the clock synchronised?)"
            );
        }
        let tags = match &config.data_dir {
            Some(dir) => SavedTags::at_start(SavedTags::load(dir), &config.tags),
            None => config.tags.clone(),
        };
        let identity = Identity::new(config.name.as_str(), advertise, joined_at_ms, tags).map_err(
            |error| AgentError::InvalidName {
                name: config.name.clone(),
                error,
            },
        )?;
        let node = Node::new(protocol, identity, SmallRng::from_os_rng())
            .map_err(AgentError::InvalidConfig)?;
        if let Some(snapshot) = &previous {
            tracing::info!(
                previous_joined_at_ms = snapshot.joined_at_ms,
                members = snapshot.members.len(),
                format_version = snapshot.version,
                "restarting from the snapshot"
            );
            seeds.addrs.extend(snapshot.rejoin_addrs());
        }

        let http_listener = match config.http {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|error| AgentError::HttpBind { addr, error })?,
            ),
            None => None,
        };
        let http_addr = http_listener.as_ref().and_then(|l| l.local_addr().ok());
        let metrics_listener = match config.metrics_http {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|error| AgentError::HttpBind { addr, error })?,
            ),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let token = OperatorToken::create(config.data_dir.as_deref()).map_err(|error| {
            AgentError::DataDir {
                path: config.data_dir.clone().unwrap_or_default(),
                error,
            }
        })?;

        let (commands_tx, commands) = mpsc::channel(16);
        let (stopped_tx, stopped) = watch::channel(false);
        let (events, _) = broadcast::channel(EVENTS_BUFFERED);
        let log_place = config.data_dir.clone().map(|dir| LogPlace {
            dir,
            keep: config.event_log_keep,
            local: config.name.clone(),
            joined_at_ms,
        });
        let shared = Arc::new(Shared {
            state: Mutex::new(CoreState {
                node,
                rtt: Default::default(),
            }),
            metrics: Metrics::new(),
            events,
            last_line: Mutex::default(),
            log_place,
            commands: commands_tx,
            clock,
            stopped,
            wire,
            token,
            joined: Default::default(),
            leaving: Default::default(),
            seeds_given: if config.join.is_empty() {
                "no --join given".to_owned()
            } else {
                config.join.join(", ")
            },
            diagnostics: Default::default(),
            fleet: fleet::Fleet::new(config.data_dir.clone()),
        });
        shared
            .metrics
            .udp_receive_buffer(sockets.udp_receive_buffer);

        let http =
            http_listener.map(|listener| serve(&shared, listener, http::router(shared.clone())));
        let metrics_http = metrics_listener
            .map(|listener| serve(&shared, listener, http::metrics_router(shared.clone())));

        tracing::info!(name = %config.name, addr = %advertise, bind = %bound, http = ?http_addr, metrics = ?metrics_addr, version = env!("CARGO_PKG_VERSION"), "agent started");
        if let (Some(http), Some(path)) = (http_addr, shared.token.path()) {
            tracing::info!(
                dashboard = %format!("http://{http}/"),
                token_file = %path.display(),
                "acting through the API or the dashboard needs the token in token_file (open the dashboard as URL#token=TOKEN)"
            );
        }
        tracing::info!(
            probe_interval = ?config.protocol.probe_interval,
            detect_deadline = ?config.protocol.detect_deadline,
            disseminate_deadline = ?config.protocol.disseminate_deadline,
            max_rtt = ?config.protocol.max_rtt,
            suspicion_min = ?timers.suspicion_min,
            suspicion_max = ?timers.suspicion_max,
            "protocol timing"
        );
        let setup = DriverSetup {
            shared: shared.clone(),
            udp: sockets.udp,
            tcp: sockets.tcp,
            commands,
            stopped: stopped_tx,
            log,
            data_dir: config.data_dir.clone(),
            seeds,
            max_connections: config.max_connections,
            event_handlers: (
                config.event_handlers.clone(),
                HandlerTiming {
                    timeout: config.event_handler_timeout,
                    coalesce: config.event_handler_coalesce,
                },
            ),
            configured_tags: config.tags.clone(),
        };
        let driver = tokio::spawn(driver::run(setup));
        Ok(Agent {
            shared,
            driver: Some(driver),
            http,
            metrics_http,
            addr: advertise,
            http_addr,
            metrics_addr,
        })
    }
}

/// Serves `router` on `listener` until the agent stops.
fn serve(
    shared: &Arc<Shared>,
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> JoinHandle<()> {
    let mut stopped = shared.stopped.clone();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP listener stopped");
        }
    })
}

/// Creates the data directory if needed, proves it writable, opens the log and loads the snapshot.
fn open_data_dir(
    dir: &std::path::Path,
    config: &AgentConfig,
) -> Result<(EventLog, Option<Snapshot>), AgentError> {
    let err = |error| AgentError::DataDir {
        path: dir.to_owned(),
        error,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let log = EventLog::open(
        &dir.join("events.jsonl"),
        config.event_log_max_bytes,
        config.event_log_keep,
    )
    .map_err(err)?;
    let snapshot = match Snapshot::load(dir).map_err(err)? {
        Loaded::Missing => None,
        Loaded::Found(snapshot) => Some(snapshot),
        Loaded::Newer {
            version,
            reason,
            moved_to,
        } => {
            tracing::warn!(
                version,
                moved_to = %moved_to.display(),
                %reason,
                "the snapshot was written by a newer format this build cannot read; kept it aside for that build and starting without it"
            );
            None
        }
        Loaded::Corrupt { reason, moved_to } => {
            tracing::warn!(
                moved_to = %moved_to.display(),
                %reason,
                "the snapshot was corrupt; moved it aside and starting without it"
            );
            None
        }
    };
    Ok((log, snapshot))
}
