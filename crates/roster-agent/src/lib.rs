//! `roster-agent`: the Roster membership protocol on real machines.
//!
//! [`Agent`] drives a [`roster_core::Node`] over a UDP socket and a TCP listener (joins, full-state syncs, the
//! fallback probe), writes the event log and the snapshot in its data directory, and serves an HTTP API with
//! Prometheus metrics. It runs on whatever tokio runtime it is started on; a current-thread runtime is plenty.
//!
//! ```
//! use roster_agent::{Agent, AgentConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), roster_agent::AgentError> {
//! // Port 0: the operating system picks a free port for UDP and TCP alike.
//! let mut config = AgentConfig::new("m1", "127.0.0.1:0".parse().expect("address"));
//! config.http = None;
//! let mut agent = Agent::start(config).await?;
//! let mut events = agent.events();
//!
//! let members = agent.members();
//! assert_eq!(members[0].name, "m1");
//! assert_eq!(members[0].state, "alive");
//!
//! // The agent's own join is the first line of its event log.
//! let first = events.next().await.expect("an event");
//! assert!(first.json().contains(r#""event":"join","member":"m1""#));
//!
//! agent.leave().await?;
//! // The leave is the last line; then the stream ends.
//! let mut last = None;
//! while let Some(event) = events.next().await {
//!     last = Some(event);
//! }
//! assert!(last.expect("the leave").json().contains(r#""event":"leave","member":"m1""#));
//! # Ok(())
//! # }
//! ```

pub mod clock;
pub mod control;
mod dashboard;
pub mod diagnose;
mod driver;
pub mod eventlog;
mod fleet;
mod handlers;
pub mod health;
mod http;
pub mod keyring;
pub mod keys;
pub mod metrics;
mod process;
mod seeds;
pub mod snapshot;
mod streams;
pub mod transport;
mod user_events;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use roster_core::{Config, ConfigError, Identity, IdentityError, Member, Meta, Node, Time};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::clock::Clock;
pub use crate::control::OperatorToken;
use crate::driver::{Command, CoreState, DriverSetup, Shared};
use crate::eventlog::EventLog;
pub use crate::eventlog::{AgentEvent, rfc3339};
pub use crate::handlers::{EventHandler, HandlerFilter};
pub use crate::health::Health;
use crate::keyring::Keyring;
use crate::metrics::Metrics;
use crate::seeds::Seeds;
pub use crate::seeds::{DEFAULT_PORT, SeedResolver};
use crate::snapshot::{Loaded, Snapshot};
use crate::transport::{Sockets, Wire};
pub use crate::user_events::{QueryStream, QueryUpdate};

/// How to run an agent. [`AgentConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The member name; unique among live members.
    pub name: String,
    /// Where the UDP socket and the TCP listener bind.
    pub bind: SocketAddr,
    /// The address others reach this member at, if not `bind` (behind NAT, or when binding 0.0.0.0).
    pub advertise: Option<SocketAddr>,
    /// Members to join through: `IP`, `IP:port`, `host` or `host:port` (the port defaults to
    /// [`DEFAULT_PORT`]); any one that answers is enough.
    pub join: Vec<String>,
    /// Keep trying to join, with backoff and jitter, rather than give up after the join timeout.
    pub retry_join: bool,
    /// How the host names in `join` are resolved: the system's resolver by default.
    pub resolver: SeedResolver,
    /// Where the event log and the snapshot live. `None` keeps nothing on disk.
    pub data_dir: Option<PathBuf>,
    /// Where the HTTP API listens. `None` serves no API.
    pub http: Option<SocketAddr>,
    /// A listener of its own for `/metrics` alone (for a scraper on the network), if wanted.
    pub metrics_http: Option<SocketAddr>,
    /// The event log is rotated when it would grow past this.
    pub event_log_max_bytes: u64,
    /// Rotated event logs kept beside the current one.
    pub event_log_keep: usize,
    /// Stream connections open at once, each way.
    pub max_connections: usize,
    /// The keyring file: when set, every datagram and stream frame is encrypted and authenticated, and key
    /// rotations are saved back to it.
    pub keyring: Option<PathBuf>,
    /// This member's metadata.
    pub meta: Meta,
    /// The protocol's configuration.
    pub protocol: Config,
    /// Programs run on membership changes, user events and queries (see [`EventHandler`]).
    pub event_handlers: Vec<EventHandler>,
    /// An event handler still running after this long is killed (a query's, at the query's deadline).
    pub event_handler_timeout: Duration,
}

impl AgentConfig {
    /// Defaults for an agent named `name` bound to `bind`: HTTP on 127.0.0.1:7070, no data directory.
    pub fn new(name: impl Into<String>, bind: SocketAddr) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            bind,
            advertise: None,
            join: Vec::new(),
            retry_join: false,
            resolver: SeedResolver::default(),
            data_dir: None,
            http: Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_HTTP_PORT))),
            metrics_http: None,
            event_log_max_bytes: 64 << 20,
            event_log_keep: 3,
            max_connections: 64,
            keyring: None,
            meta: Meta::default(),
            protocol: Config::default(),
            event_handlers: Vec::new(),
            event_handler_timeout: Duration::from_secs(30),
        }
    }
}

/// The HTTP API's default port, on 127.0.0.1.
pub const DEFAULT_HTTP_PORT: u16 = 7070;

/// Why an agent could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    // The cause is part of each message, not a `source`, so that one line says everything once.
    #[error("invalid member name {name:?}: {error}")]
    InvalidName { name: String, error: IdentityError },
    #[error("invalid metadata: {0}")]
    InvalidMeta(IdentityError),
    #[error("invalid protocol configuration: {0}")]
    InvalidConfig(ConfigError),
    #[error("{0}")]
    Keyring(String),
    #[error("invalid join address {addr:?}: {reason}")]
    BadJoinAddress { addr: String, reason: String },
    #[error("data directory {}: {error}", path.display())]
    DataDir { path: PathBuf, error: io::Error },
    #[error("cannot bind {addr} (UDP and TCP): {error}")]
    Bind { addr: SocketAddr, error: io::Error },
    #[error("cannot serve the HTTP API on {addr}: {error}")]
    HttpBind { addr: SocketAddr, error: io::Error },
    #[error("join failed: {reason} ({attempts} attempts)")]
    JoinFailed { attempts: u32, reason: String },
    #[error("the agent has stopped")]
    Stopped,
    #[error("{0}")]
    Event(roster_core::EventError),
}

impl AgentError {
    /// Whether the error is the operator's input (exit code 2) rather than a failure at run time (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            AgentError::InvalidName { .. }
                | AgentError::InvalidMeta(_)
                | AgentError::InvalidConfig(_)
                | AgentError::BadJoinAddress { .. }
                | AgentError::Keyring(_)
                | AgentError::DataDir { .. }
        )
    }
}

/// A member as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct MemberInfo {
    pub name: String,
    pub addr: SocketAddr,
    /// `alive`, `suspect`, `failed` or `left`.
    pub state: String,
    pub incarnation: u32,
    /// RFC 3339, UTC, milliseconds.
    pub joined_at: String,
    pub joined_at_ms: u64,
    pub meta: BTreeMap<String, String>,
    /// The last direct-probe round trip from this agent, in milliseconds, if one was measured.
    pub rtt_ms: Option<f64>,
}

impl MemberInfo {
    fn new(member: &Member, rtt: Option<Duration>) -> MemberInfo {
        let id = &member.identity;
        MemberInfo {
            name: id.name().to_owned(),
            addr: id.addr(),
            state: member.state.as_str().to_owned(),
            incarnation: member.incarnation,
            joined_at: rfc3339(Time::from_unix_ms(id.joined_at_ms())),
            joined_at_ms: id.joined_at_ms(),
            meta: id
                .meta()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            rtt_ms: rtt.map(|d| d.as_secs_f64() * 1000.0),
        }
    }
}

/// This agent, as `GET /v1/self` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct SelfInfo {
    #[serde(flatten)]
    pub member: MemberInfo,
    /// Local health (Lifeguard): 0 is healthy.
    pub health_score: u32,
    /// Members alive or suspect, this one included.
    pub active_members: usize,
    /// The agent's version.
    pub version: String,
    /// The wire version it speaks.
    pub protocol_version: u8,
    /// The file holding the token that acting requests must carry (readable by the agent's user alone).
    pub token_file: Option<PathBuf>,
}

impl SelfInfo {
    fn read(shared: &Shared, state: &CoreState) -> SelfInfo {
        SelfInfo {
            member: state.member_info(state.node.local()),
            health_score: state.node.health_score(),
            active_members: state.node.active_count(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: roster_core::codec::VERSION,
            token_file: shared.token.path().map(PathBuf::from),
        }
    }
}

/// The live stream of event-log lines, from [`Agent::events`].
#[derive(Debug)]
pub struct Events {
    rx: broadcast::Receiver<AgentEvent>,
    stopped: watch::Receiver<bool>,
}

impl Events {
    /// The next event; `None` once the agent has stopped. A reader that falls far behind skips the lines it
    /// missed (they are still in the event log) rather than holding the agent's memory.
    pub async fn next(&mut self) -> Option<AgentEvent> {
        loop {
            // Lines already sent are delivered even after the agent stopped; then the stream ends.
            match self.rx.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(broadcast::error::TryRecvError::Closed) => return None,
                Err(broadcast::error::TryRecvError::Empty) if *self.stopped.borrow() => {
                    return None;
                }
                Err(broadcast::error::TryRecvError::Empty) => {}
            }
            tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(event) => return Some(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                // The driver is gone: hand out what it sent last, one line per call, then end.
                changed = self.stopped.changed() => if changed.is_err() { return self.rx.try_recv().ok() },
            }
        }
    }
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<Result<(), AgentError>>>,
    http: Option<JoinHandle<()>>,
    metrics_http: Option<JoinHandle<()>>,
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
}

impl Agent {
    /// Binds the sockets, opens the data directory, loads the snapshot, and starts the protocol, joining
    /// through `config.join` and the members the snapshot knew. Returns once the agent is serving; the join
    /// goes on in the background (watch [`Agent::events`], or [`Agent::stopped`] for a failed join).
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
        let identity = Identity::new(
            config.name.as_str(),
            advertise,
            joined_at_ms,
            config.meta.clone(),
        )
        .map_err(|error| AgentError::InvalidName {
            name: config.name.clone(),
            error,
        })?;
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
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            state: Mutex::new(CoreState {
                node,
                rtt: Default::default(),
            }),
            metrics: Metrics::new(),
            events,
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
        tokio::spawn(fleet::sample_every_second(shared.clone()));
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
            event_handlers: (config.event_handlers.clone(), config.event_handler_timeout),
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

    /// Where the metrics listener of its own listens, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The token acting HTTP requests must carry, and the file it is in.
    pub fn http_token(&self) -> &OperatorToken {
        &self.shared.token
    }

    /// Whether this agent is a working member, as `GET /v1/health` answers.
    pub fn health(&self) -> Health {
        Health::read(&self.shared, &self.shared.lock())
    }

    /// The address other members reach this one at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the HTTP API listens, if it does.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Every member of the list, this one first.
    pub fn members(&self) -> Vec<MemberInfo> {
        let state = self.shared.lock();
        state.node.members().map(|m| state.member_info(m)).collect()
    }

    /// This member, with its local health.
    pub fn local(&self) -> SelfInfo {
        SelfInfo::read(&self.shared, &self.shared.lock())
    }

    /// The events from now on, as the event log records them.
    pub fn events(&self) -> Events {
        Events {
            rx: self.shared.events.subscribe(),
            stopped: self.shared.stopped.clone(),
        }
    }

    /// Changes this member's metadata live; the other members hear of it like any other change.
    pub async fn set_meta(&self, meta: Meta) -> Result<(), AgentError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::SetMeta(meta, tx))
            .await
            .map_err(|_| AgentError::Stopped)?;
        rx.await
            .map_err(|_| AgentError::Stopped)?
            .map_err(AgentError::InvalidMeta)
    }

    /// Sends a user event to every member (this one included); returns its time on the event clock.
    pub async fn send_event(&self, name: &str, payload: &[u8]) -> Result<u64, AgentError> {
        self.user_event_request(|reply| user_events::EventCommand::Send {
            name: name.to_owned(),
            payload: payload.to_vec(),
            reply,
        })
        .await
    }

    /// Sends a query to the members `filter` matches; their answers arrive on the stream as they come.
    pub async fn query(
        &self,
        name: &str,
        payload: &[u8],
        filter: roster_core::QueryFilter,
        timeout: Duration,
    ) -> Result<QueryStream, AgentError> {
        self.user_event_request(|reply| user_events::EventCommand::Query {
            name: name.to_owned(),
            payload: payload.to_vec(),
            filter,
            timeout,
            reply,
        })
        .await
    }

    /// Answers a query this member was asked (an `Event::Query` from [`Agent::events`]), once.
    pub async fn answer_query(
        &self,
        id: roster_core::QueryId,
        payload: &[u8],
    ) -> Result<(), AgentError> {
        self.user_event_request(|reply| user_events::EventCommand::Answer {
            id,
            payload: payload.to_vec(),
            reply: Some(reply),
        })
        .await
    }

    async fn user_event_request<T>(
        &self,
        command: impl FnOnce(
            oneshot::Sender<Result<T, roster_core::EventError>>,
        ) -> user_events::EventCommand,
    ) -> Result<T, AgentError> {
        user_events::ask(&self.shared, command)
            .await
            .ok_or(AgentError::Stopped)?
            .map_err(AgentError::Event)
    }

    /// Leaves the cluster: announces `left`, waits (bounded) until the news has gone out, and stops.
    pub async fn leave(&mut self) -> Result<(), AgentError> {
        let (tx, rx) = oneshot::channel();
        if self.shared.commands.send(Command::Leave(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.stopped().await
    }

    /// Waits until the agent stops: after a leave (from [`Agent::leave`] or `POST /v1/leave`), or on a fatal
    /// error such as a failed join. Safe to cancel and call again.
    pub async fn stopped(&mut self) -> Result<(), AgentError> {
        let Some(driver) = self.driver.as_mut() else {
            return Ok(());
        };
        let result = driver.await.unwrap_or(Err(AgentError::Stopped));
        self.driver = None;
        if let Some(http) = self.http.take() {
            // Let an in-flight `POST /v1/leave` get its answer out; streams end with the driver.
            let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
        }
        if let Some(metrics) = self.metrics_http.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), metrics).await;
        }
        result
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.abort();
        }
        if let Some(http) = &self.http {
            http.abort();
        }
        if let Some(metrics) = &self.metrics_http {
            metrics.abort();
        }
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
    dir: &PathBuf,
    config: &AgentConfig,
) -> Result<(EventLog, Option<Snapshot>), AgentError> {
    let err = |error| AgentError::DataDir {
        path: dir.clone(),
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
