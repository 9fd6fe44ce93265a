//! How to run an agent: [`AgentConfig`], with the defaults an embedding program wants (no HTTP listener, nothing
//! on disk) and the fields the `roster agent` command fills from its flags, variables and file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use roster_core::{Config, Meta};

use crate::handlers::EventHandler;
use crate::seeds::SeedResolver;

/// The HTTP API's port when it is asked for without one (`roster agent` listens on 127.0.0.1 there).
pub const DEFAULT_HTTP_PORT: u16 = 7070;

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
    /// [`DEFAULT_PORT`](crate::DEFAULT_PORT)); any one that answers is enough.
    pub join: Vec<String>,
    /// Keep trying to join, with backoff and jitter, rather than give up after the join timeout.
    pub retry_join: bool,
    /// How the host names in `join` are resolved: the system's resolver by default.
    pub resolver: SeedResolver,
    /// Where the event log, the snapshot and the tags live. `None` keeps nothing on disk (and a
    /// [`Subscription`](crate::Subscription) cannot replay what it missed).
    pub data_dir: Option<PathBuf>,
    /// Where the HTTP API (the dashboard, the JSON routes, metrics) listens. `None`, the default, serves no API:
    /// an embedding program has the [`Agent`](crate::Agent) itself.
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
    /// This member's tags (its metadata), as configured. With a data directory, tags changed live survive a
    /// restart unless these changed since (see [`Agent::set_tags`](crate::Agent::set_tags)).
    pub tags: Meta,
    /// The protocol's configuration.
    pub protocol: Config,
    /// Programs run on membership changes, user events and queries (see [`EventHandler`]).
    pub event_handlers: Vec<EventHandler>,
    /// An event handler still running after this long is killed (a query's, at the query's deadline).
    pub event_handler_timeout: Duration,
    /// When not zero, membership changes of one kind, and user events of one name, that come within this long
    /// of the first run each handler once (with every member changed, or the latest event) at its end. Zero,
    /// the default, runs handlers on every event as it comes.
    pub event_handler_coalesce: Duration,
}

impl AgentConfig {
    /// Defaults for an agent named `name` bound to `bind`: no HTTP API, no data directory, no tags, the
    /// protocol's default timing.
    pub fn new(name: impl Into<String>, bind: SocketAddr) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            bind,
            advertise: None,
            join: Vec::new(),
            retry_join: false,
            resolver: SeedResolver::default(),
            data_dir: None,
            http: None,
            metrics_http: None,
            event_log_max_bytes: 64 << 20,
            event_log_keep: 3,
            max_connections: 64,
            keyring: None,
            tags: Meta::default(),
            protocol: Config::default(),
            event_handlers: Vec::new(),
            event_handler_timeout: Duration::from_secs(30),
            event_handler_coalesce: Duration::ZERO,
        }
    }
}
