//! Join seeds: the `--join` addresses, checked when the agent starts (a seed without a port gets
//! [`DEFAULT_PORT`]), host names resolved off the protocol loop, and the advertise address chosen when the
//! agent binds all interfaces and is not told one.
//!
//! Names are resolved again and again with backoff until this node is part of a cluster bigger than itself,
//! so a DNS name can front the cluster (a Kubernetes headless Service): a name that does not resolve yet, or
//! resolves to this agent alone (the first pod), or to more members later, still gets the node in.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Instant;

use rand::SeedableRng;
use tokio::sync::{mpsc, watch};

use crate::AgentError;
use crate::driver::Inbound;

/// The protocol's port when a seed names none.
pub const DEFAULT_PORT: u16 = 7946;

type Lookup = dyn Fn(&str) -> std::io::Result<Vec<SocketAddr>> + Send + Sync;

/// How seed names (`host:port`) become addresses: the system's resolver (DNS, /etc/hosts) unless a program
/// that embeds the agent answers them itself, for a directory of its own or a test that needs a name to
/// change its answer.
#[derive(Clone, Default)]
pub struct SeedResolver(Option<std::sync::Arc<Lookup>>);

impl SeedResolver {
    /// Answers every seed name with `lookup` instead of the system's resolver.
    pub fn custom(
        lookup: impl Fn(&str) -> std::io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> SeedResolver {
        SeedResolver(Some(std::sync::Arc::new(lookup)))
    }

    async fn lookup(&self, name: &str) -> std::io::Result<Vec<SocketAddr>> {
        match &self.0 {
            Some(lookup) => lookup(name),
            None => Ok(tokio::net::lookup_host(name).await?.collect()),
        }
    }
}

impl std::fmt::Debug for SeedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "SeedResolver(custom)"
        } else {
            "SeedResolver(system)"
        })
    }
}

/// Where to join through.
#[derive(Debug)]
pub(crate) struct Seeds {
    /// Resolved addresses to hand the core at once.
    pub addrs: Vec<SocketAddr>,
    /// `host:port` names to resolve.
    pub names: Vec<String>,
    /// Whether the operator asked for a join (`--join`): then failing to join is fatal, unless `retry`. A
    /// rejoin from the snapshot alone is not: this may be the first member of a cluster to come back.
    pub required: bool,
    /// Retry forever rather than give up after the join timeout.
    pub retry: bool,
    /// How names are resolved.
    pub resolver: SeedResolver,
    /// Never join through ourselves.
    pub own: SocketAddr,
}

/// Splits join addresses into socket addresses and `host:port` names to resolve; an address or a name
/// without a port gets [`DEFAULT_PORT`].
pub(crate) fn parse(join: &[String]) -> Result<(Vec<SocketAddr>, Vec<String>), AgentError> {
    let mut addrs = Vec::new();
    let mut names = Vec::new();
    for seed in join {
        let seed = seed.trim();
        if let Ok(addr) = seed.parse::<SocketAddr>() {
            addrs.push(addr);
            continue;
        }
        let bare = seed
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(seed);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            addrs.push(SocketAddr::new(ip, DEFAULT_PORT));
            continue;
        }
        let bad = |reason: &str| AgentError::BadJoinAddress {
            addr: seed.to_owned(),
            reason: reason.into(),
        };
        let (host, port) = match seed.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| bad("the port is not a number from 0 to 65535"))?,
            ),
            None => (seed, DEFAULT_PORT),
        };
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid_host {
            return Err(bad("expected IP, IP:port, host or host:port"));
        }
        names.push(format!("{host}:{port}"));
    }
    Ok((addrs, names))
}

/// The address to advertise when bound to all interfaces: the one this machine would send from to reach the
/// first seed (asked of the routing table, nothing is sent), or else the first address of an interface that is
/// up and not loopback, IPv4 first; loopback when that is all there is.
pub(crate) fn automatic_advertise(
    bound: SocketAddr,
    seeds: &[SocketAddr],
) -> (IpAddr, &'static str) {
    let v6 = bound.is_ipv6();
    for seed in seeds.iter().filter(|s| s.is_ipv6() == v6) {
        let local = if v6 { "[::]:0" } else { "0.0.0.0:0" };
        if let Ok(socket) = UdpSocket::bind(local)
            && socket.connect(seed).is_ok()
            && let Ok(addr) = socket.local_addr()
            && !addr.ip().is_unspecified()
        {
            return (addr.ip(), "the route to the first seed");
        }
    }
    let mut candidates: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv6() == v6)
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    candidates.sort_by_key(|ip| !is_private(ip));
    match candidates.first() {
        Some(ip) => (*ip, "the first address of an interface that is up"),
        None if v6 => (
            "::1".parse().expect("an address"),
            "loopback: no other interface",
        ),
        None => (
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "loopback: no other interface",
        ),
    }
}

fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// What one round of resolving found.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Every address found so far that is not this node's own.
    pub others: Vec<SocketAddr>,
    /// Whether the names resolved this round, but only to this node.
    pub only_self: bool,
}

/// Resolves `names` until `settled` turns true: the node is in a cluster bigger than itself. Each round that
/// finds a new address, or finds only this node, is reported to the driver. Without `retry`, gives up after
/// `join_timeout` (reporting [`Inbound::SeedsUnresolved`] if nothing at all resolved).
pub(crate) fn resolve(
    names: Vec<String>,
    resolver: SeedResolver,
    own: SocketAddr,
    retry: bool,
    tx: mpsc::Sender<Inbound>,
    mut settled: watch::Receiver<bool>,
    config: roster_core::Config,
) {
    tokio::spawn(async move {
        let deadline = Instant::now() + config.join_timeout;
        let mut known: BTreeSet<SocketAddr> = BTreeSet::new();
        let mut resolved_any = false;
        let mut round = 0u32;
        let mut rng = rand::rngs::SmallRng::from_os_rng();
        loop {
            let mut grew = false;
            let mut found_self = false;
            for name in &names {
                match resolver.lookup(name).await {
                    Ok(found) => {
                        for addr in found {
                            resolved_any = true;
                            if addr == own {
                                found_self = true;
                            } else {
                                grew |= known.insert(addr);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(seed = %name, error = %e, "seed did not resolve"),
                }
            }
            let only_self = found_self && known.is_empty();
            if (grew || only_self)
                && tx
                    .send(Inbound::Seeds(Resolved {
                        others: known.iter().copied().collect(),
                        only_self,
                    }))
                    .await
                    .is_err()
            {
                return;
            }
            let wait =
                roster_core::backoff(config.join_retry, config.join_retry_max, round, &mut rng);
            round = round.saturating_add(1);
            if !retry && Instant::now() + wait > deadline {
                if !resolved_any {
                    let _ = tx.send(Inbound::SeedsUnresolved).await;
                }
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = settled.wait_for(|s| *s) => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_addresses_are_checked_before_anything_starts_and_get_the_default_port() {
        let (addrs, names) = parse(&[
            "127.0.0.1:7000".into(),
            "[::1]:7".into(),
            "127.0.0.2".into(),
            "::1".into(),
            "seed.example:7000".into(),
            "roster.roster.svc.cluster.local".into(),
        ])
        .expect("valid");
        assert_eq!(
            addrs,
            ["127.0.0.1:7000", "[::1]:7", "127.0.0.2:7946", "[::1]:7946"]
                .map(|a| a.parse::<SocketAddr>().expect("addr"))
        );
        assert_eq!(
            names,
            ["seed.example:7000", "roster.roster.svc.cluster.local:7946"]
        );
        for bad in ["host:port", ":7946", "a b:1", "host:99999", "bad_host", "-"] {
            let err = parse(&[bad.into()]).expect_err(bad);
            assert!(err.is_bad_input(), "{bad}: {err}");
        }
    }

    #[test]
    fn the_route_to_a_loopback_seed_is_loopback() {
        let seed: SocketAddr = "127.0.0.1:7946".parse().expect("addr");
        let (ip, _) = automatic_advertise("0.0.0.0:0".parse().expect("addr"), &[seed]);
        assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
