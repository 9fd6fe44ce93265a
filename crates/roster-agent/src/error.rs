//! [`AgentError`]: why an agent could not start, stopped, or refused what it was asked.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use roster_core::{ConfigError, EventError, ForceLeaveError, IdentityError};

/// Why an agent could not start, stopped, or refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    // The cause is part of each message, not a `source`, so that one line says everything once.
    /// The member name is empty, too long or has a control character in it.
    #[error("invalid member name {name:?}: {error}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        error: IdentityError,
    },
    /// Tags over their bounds (size, number of entries), with a key twice or in Roster's own namespace.
    #[error("invalid tags: {0}")]
    InvalidTags(IdentityError),
    /// A protocol configuration that cannot meet its deadlines, or is malformed.
    #[error("invalid protocol configuration: {0}")]
    InvalidConfig(ConfigError),
    /// The keyring file could not be read or is malformed.
    #[error("{0}")]
    Keyring(String),
    /// A join address that is not `IP`, `IP:port`, `host` or `host:port`.
    #[error("invalid join address {addr:?}: {reason}")]
    BadJoinAddress {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The data directory could not be created, written or read.
    #[error("data directory {}: {error}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The system's reason.
        error: io::Error,
    },
    /// The protocol's UDP socket or TCP listener could not bind.
    #[error("cannot bind {addr} (UDP and TCP): {error}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        error: io::Error,
    },
    /// The HTTP API (or the metrics listener) could not bind.
    #[error("cannot serve the HTTP API on {addr}: {error}")]
    HttpBind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        error: io::Error,
    },
    /// No seed answered within the join timeout.
    #[error("join failed: {reason} ({attempts} attempts)")]
    JoinFailed {
        /// Seeds asked, counting retries.
        attempts: u32,
        /// For a person: what was tried.
        reason: String,
    },
    /// The agent has stopped (it left, or failed), so it cannot do what was asked.
    #[error("the agent has stopped")]
    Stopped,
    /// A user event or query was refused: its size, its name, or too many open at once.
    #[error("{0}")]
    Event(EventError),
    /// This agent sent user events faster than it may; the next can go after `retry_after`.
    #[error("{}", crate::user_events::too_fast(*retry_after))]
    TooManyEvents {
        /// How long until the next event may go.
        retry_after: std::time::Duration,
    },
    /// A force-leave was refused: the member is alive, suspect, unknown, or this one.
    #[error("{0}")]
    ForceLeave(ForceLeaveError),
}

impl AgentError {
    /// Whether the error is in the agent's configuration (exit code 2 for `roster agent`) rather than a failure
    /// at run time (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            AgentError::InvalidName { .. }
                | AgentError::InvalidTags(_)
                | AgentError::InvalidConfig(_)
                | AgentError::BadJoinAddress { .. }
                | AgentError::Keyring(_)
                | AgentError::DataDir { .. }
        )
    }
}
