//! Join seeds: the `--join` addresses, checked when the agent starts, and host names resolved off the protocol
//! loop, again on every retry until the join completes.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use crate::AgentError;
use crate::driver::Inbound;

/// Where to join through.
#[derive(Debug)]
pub(crate) struct Seeds {
    /// Resolved addresses to hand the core at once.
    pub addrs: Vec<SocketAddr>,
    /// Host names to resolve, retried until `join_timeout`.
    pub names: Vec<String>,
    /// Whether the operator asked for a join (`--join`): then failing to join is fatal. A rejoin from the
    /// snapshot alone is not: this may be the first member of a cluster to come back.
    pub required: bool,
    /// The addresses as the operator gave them.
    pub given: Vec<String>,
    /// Never join through ourselves.
    pub own: SocketAddr,
}

/// Splits join addresses into literal socket addresses and `host:port` names to resolve.
pub(crate) fn parse(join: &[String]) -> Result<(Vec<SocketAddr>, Vec<String>), AgentError> {
    let mut addrs = Vec::new();
    let mut names = Vec::new();
    for seed in join {
        if let Ok(addr) = seed.parse::<SocketAddr>() {
            addrs.push(addr);
            continue;
        }
        let bad = |reason: &str| AgentError::BadJoinAddress {
            addr: seed.clone(),
            reason: reason.into(),
        };
        let (host, port) = seed
            .rsplit_once(':')
            .ok_or_else(|| bad("expected IP:port or host:port"))?;
        if host.is_empty() || host.contains(':') || host.chars().any(char::is_whitespace) {
            return Err(bad("expected IP:port or host:port"));
        }
        port.parse::<u16>()
            .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
        names.push(seed.clone());
    }
    Ok((addrs, names))
}

/// Resolves `names` (with `addrs`, the literal seeds already handed to the core), retrying with backoff:
/// a name that does not resolve yet (DNS down, a fleet not up), or resolves to more members later, still gets
/// the node in, so a DNS name can front the cluster. The core restarts its join with each larger seed set.
pub(crate) fn resolve(
    names: Vec<String>,
    own: SocketAddr,
    addrs: Vec<SocketAddr>,
    tx: mpsc::Sender<Inbound>,
    mut joined: watch::Receiver<bool>,
    config: roster_core::Config,
) {
    tokio::spawn(async move {
        let deadline = Instant::now() + config.join_timeout;
        let mut wait = config.join_retry;
        let mut known: BTreeSet<SocketAddr> = addrs.into_iter().collect();
        let mut resolved_any = false;
        loop {
            let mut grew = false;
            for name in &names {
                match tokio::net::lookup_host(name.as_str()).await {
                    Ok(found) => {
                        for addr in found.filter(|a| *a != own) {
                            resolved_any = true;
                            grew |= known.insert(addr);
                        }
                    }
                    Err(e) => tracing::warn!(seed = %name, error = %e, "seed did not resolve"),
                }
            }
            if grew
                && tx
                    .send(Inbound::Seeds(known.iter().copied().collect()))
                    .await
                    .is_err()
            {
                return;
            }
            if Instant::now() + wait > deadline {
                if !resolved_any && known.is_empty() {
                    let _ = tx.send(Inbound::SeedsUnresolved).await;
                }
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = joined.wait_for(|j| *j) => return,
            }
            wait = (wait * 2).min(config.join_retry_max);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_addresses_are_checked_before_anything_starts() {
        let (addrs, names) = parse(&[
            "127.0.0.1:7946".into(),
            "[::1]:7".into(),
            "seed.example:7946".into(),
        ])
        .expect("valid");
        assert_eq!(addrs.len(), 2);
        assert_eq!(names, vec!["seed.example:7946".to_string()]);
        for bad in ["127.0.0.1", "host:port", ":7946", "::1:7946", "a b:1"] {
            let err = parse(&[bad.into()]).expect_err(bad);
            assert!(err.is_bad_input(), "{bad}: {err}");
        }
    }
}
