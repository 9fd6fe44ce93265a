//! The test network: hosts h1..hN, each a network namespace with one veth on a bridge that lives in a namespace
//! of its own, on a private /24 in 10.213.0.0/16, plus the root namespace's leg on that bridge.
//!
//! This module owns containment and cleanup. A network is usable only after `ip route get` proved that its
//! addresses resolve to the root leg (a connected route, so nothing for the subnet can leave by the default
//! route) and that no host namespace has a default route. Every name carries `rf<pid>x<n>`, so parallel runs
//! never collide and leftovers of a dead run are recognised and swept at the next start; a network is torn down
//! on drop (so also when a test panics) and on SIGINT/SIGTERM/SIGHUP.

use std::net::Ipv4Addr;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::system::{CmdError, pid_alive, run};

/// A /24 inside 10.213.0.0/16: hosts are .1 to .N, the root namespace's leg is .254.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    third_octet: u8,
}

impl Subnet {
    /// The address of host `index` (1-based).
    pub fn host(self, index: usize) -> Ipv4Addr {
        let last = u8::try_from(index)
            .ok()
            .filter(|i| (1..=250).contains(i))
            .expect("host index within 1..=250");
        Ipv4Addr::new(10, 213, self.third_octet, last)
    }

    /// The root namespace's address on the bridge.
    pub fn root_leg(self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.third_octet, 254)
    }

    /// Whether `ip` is in this subnet: the only addresses the harness ever sends to.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        ip.octets()[..3] == [10, 213, self.third_octet]
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "10.213.{}.0/24", self.third_octet)
    }
}

/// One test host: a namespace with `eth0` on the bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// 1-based, as in `h1`.
    pub index: usize,
    /// `h<index>`: also the agent's member name.
    pub name: String,
    /// The namespace, for `ip netns exec`.
    pub netns: String,
    pub ip: Ipv4Addr,
}

/// The namespaces, veths and bridge of one test. Dropping it removes them all, with any process inside.
#[derive(Debug)]
pub struct Network {
    /// `rf<pid>x<n>`: the prefix of every name this network created.
    pub id: String,
    pub bridge_netns: String,
    /// The root namespace's veth on the bridge.
    pub root_leg: String,
    pub subnet: Subnet,
    pub hosts: Vec<Host>,
    torn_down: bool,
}

const PREFIX: &str = "rf";

fn own_pid() -> u32 {
    std::process::id()
}

/// The pid in a name made by [`Network::create`] (`rf<pid>x<n>...`), if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || !rest[digits.len()..].starts_with('x') {
        return None;
    }
    digits.parse().ok()
}

fn netns_names() -> Vec<String> {
    run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn root_links() -> Vec<String> {
    run("ip", &["-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect()
}

/// SIGKILLs every process in a namespace (agents, latency helpers), so deleting it leaves nothing running.
fn kill_netns_processes(netns: &str) {
    for _ in 0..10 {
        let pids: Vec<i32> = run("ip", &["netns", "pids", netns])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes every namespace and root link whose owner `pred` selects. Returns how many names it removed.
fn remove_owned(pred: impl Fn(u32) -> bool) -> usize {
    let mut removed = 0;
    let doomed: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| owner_pid(n).is_some_and(&pred))
        .collect();
    // Processes first: a namespace whose processes still run is only unmounted, not freed.
    for netns in &doomed {
        kill_netns_processes(netns);
    }
    for netns in &doomed {
        if run("ip", &["netns", "del", netns]).is_ok() {
            removed += 1;
        }
    }
    for link in root_links()
        .into_iter()
        .filter(|l| owner_pid(l).is_some_and(&pred))
    {
        if run("ip", &["link", "del", &link]).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Sweeps what runs of dead processes left behind, once per process, and arms the signal handler that tears
/// down this process's networks when the run is interrupted.
fn prepare_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let me = own_pid();
        let swept = remove_owned(|pid| pid != me && !pid_alive(pid));
        if swept > 0 {
            crate::report::note(&format!(
                "swept {swept} namespaces and links left by dead runs"
            ));
        }
        crate::cluster::sweep_run_dirs();
        let handler = ctrlc::set_handler(move || {
            remove_owned(|pid| pid == me);
            crate::report::note("interrupted: test network torn down");
            std::process::exit(130);
        });
        if let Err(e) = handler {
            crate::report::note(&format!(
                "no interrupt handler ({e}); a stale network is swept at the next run"
            ));
        }
    });
}

/// Picks a /24 that nothing on this machine uses yet.
fn free_subnet(seed: u32) -> Result<Subnet, String> {
    let addresses = run("ip", &["-o", "addr", "show"]).unwrap_or_default();
    for step in 0..250u32 {
        let third = u8::try_from((seed + step) % 250 + 1).expect("below 251");
        let subnet = Subnet { third_octet: third };
        if addresses.contains(&format!("10.213.{third}.")) {
            continue;
        }
        // An unreachable answer or one through a gateway means no local link has this subnet yet.
        match run("ip", &["-o", "route", "get", &subnet.host(1).to_string()]) {
            Err(_) => return Ok(subnet),
            Ok(route) if route.contains(" via ") => return Ok(subnet),
            Ok(_) => continue,
        }
    }
    Err("no free /24 in 10.213.0.0/16".to_owned())
}

/// The kernel's table of IPv4 neighbours (ARP) is one table for every namespace, its limits set in the root
/// namespace: by default 1,024 entries at most, and entries past 512 are collected after 5 s. Each host holds an
/// entry for every other host it talks to, so `hosts` hosts need up to `hosts`² entries. A hundred hosts
/// overflowed the table (`neighbour: arp_cache: neighbor table overflow!` in the kernel log): the hosts started
/// last could reach nobody, and the others suspected each other by the dozen. Raises both limits to what this
/// network needs plus the default's 1,024 for everything else on the machine (the suite's other networks, of
/// ten hosts or fewer, fit in that); never lowers them.
fn make_room_for_neighbours(hosts: usize) -> Result<(), String> {
    const LIMITS: &str = "/proc/sys/net/ipv4/neigh/default";
    let needed = hosts * (hosts + 1) + 1024;
    for limit in ["gc_thresh2", "gc_thresh3"] {
        let path = format!("{LIMITS}/{limit}");
        let now: usize = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {path}: {e}"))?
            .trim()
            .parse()
            .map_err(|e| format!("reading {path}: {e}"))?;
        if now < needed {
            std::fs::write(&path, needed.to_string())
                .map_err(|e| format!("raising {path} from {now} to {needed}: {e}"))?;
        }
    }
    Ok(())
}

impl Network {
    /// Creates `hosts` hosts on a fresh bridge and proves containment, or removes what it made and says why.
    pub fn create(hosts: usize) -> Result<Network, String> {
        assert!((1..=250).contains(&hosts), "1 to 250 hosts");
        prepare_process();
        make_room_for_neighbours(hosts)?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("{PREFIX}{}x{seq}", own_pid());
        let subnet = free_subnet(own_pid().wrapping_mul(7).wrapping_add(seq))?;
        let net = Network {
            bridge_netns: format!("{id}-br"),
            root_leg: id.clone(),
            hosts: (1..=hosts)
                .map(|i| Host {
                    index: i,
                    name: format!("h{i}"),
                    netns: format!("{id}-h{i}"),
                    ip: subnet.host(i),
                })
                .collect(),
            id,
            subnet,
            torn_down: false,
        };
        // On error `net` drops here and removes whatever was made.
        net.build()
            .map_err(|e| format!("building the test network: {e}"))?;
        net.check_containment()?;
        Ok(net)
    }

    fn build(&self) -> Result<(), CmdError> {
        let br = self.bridge_netns.as_str();
        run("ip", &["netns", "add", br])?;
        run("ip", &["-n", br, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", br, "link", "set", "br0", "up"])?;
        for host in &self.hosts {
            let ns = host.netns.as_str();
            let port = format!("v{}", host.index);
            run("ip", &["netns", "add", ns])?;
            // Both ends are born inside their namespaces, so no host name ever appears in the root namespace.
            run(
                "ip",
                &[
                    "link", "add", &port, "netns", br, "type", "veth", "peer", "name", "eth0",
                    "netns", ns,
                ],
            )?;
            run(
                "ip",
                &["-n", br, "link", "set", &port, "master", "br0", "up"],
            )?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
            run(
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{}/24", host.ip),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
        }
        let leg = self.root_leg.as_str();
        run(
            "ip",
            &[
                "link", "add", leg, "type", "veth", "peer", "name", "rport", "netns", br,
            ],
        )?;
        run(
            "ip",
            &["-n", br, "link", "set", "rport", "master", "br0", "up"],
        )?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", self.subnet.root_leg()),
                "dev",
                leg,
            ],
        )?;
        run("ip", &["link", "set", leg, "up"])?;
        Ok(())
    }

    /// Refuses to go on unless every test address resolves to the root leg as a connected route, and no host
    /// namespace has any route off the subnet.
    fn check_containment(&self) -> Result<(), String> {
        let probes = self
            .hosts
            .iter()
            .map(|h| h.ip)
            .chain([self.subnet.host(250)]);
        for ip in probes {
            let route = run("ip", &["-o", "route", "get", &ip.to_string()])
                .map_err(|e| format!("containment: {e}"))?;
            let words: Vec<&str> = route.split_whitespace().collect();
            let dev = words.windows(2).find(|w| w[0] == "dev").map(|w| w[1]);
            if dev != Some(self.root_leg.as_str()) || words.contains(&"via") {
                return Err(format!(
                    "containment check failed: `ip route get {ip}` gave `{}`, not the leg {}; refusing to start agents",
                    route.trim(),
                    self.root_leg
                ));
            }
        }
        for host in &self.hosts {
            let routes = run("ip", &["-n", &host.netns, "route", "show"])
                .map_err(|e| format!("containment: {e}"))?;
            let subnet_route = format!("{} ", self.subnet);
            if routes.lines().any(|r| !r.starts_with(&subnet_route)) {
                return Err(format!(
                    "containment check failed: {} has a route off the subnet: {routes}",
                    host.name
                ));
            }
        }
        Ok(())
    }

    /// The host with 1-based `index`.
    pub fn host(&self, index: usize) -> &Host {
        &self.hosts[index - 1]
    }

    /// Kills every process inside the network and removes its namespaces and links; waits (bounded) until the
    /// root leg is gone so the subnet's route is free again.
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        for host in &self.hosts {
            kill_netns_processes(&host.netns);
        }
        for host in &self.hosts {
            let _ = run("ip", &["netns", "del", &host.netns]);
        }
        let _ = run("ip", &["netns", "del", &self.bridge_netns]);
        let _ = run("ip", &["link", "del", &self.root_leg]);
        let started = Instant::now();
        // Namespace removal frees veths asynchronously.
        while started.elapsed() < Duration::from_secs(5) && root_links().contains(&self.root_leg) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A command that runs `program` inside namespace `netns`. Where util-linux's `setpriv` is present the program
/// also gets SIGKILL when the thread that started it dies, so a harness killed outright leaves no agent running
/// (its namespaces are swept at the next start).
pub fn command_in(netns: &str, program: &std::path::Path) -> Result<std::process::Command, String> {
    let mut command =
        std::process::Command::new(crate::system::which("ip").ok_or("ip: not installed")?);
    command.args(["netns", "exec", netns]);
    if let Some(setpriv) = crate::system::which("setpriv") {
        command.arg(setpriv).args(["--pdeathsig", "KILL"]);
    }
    command.arg(program);
    Ok(command)
}

/// Names of namespaces this process still holds: for tests that check the teardown.
pub fn own_netns() -> Vec<String> {
    netns_names()
        .into_iter()
        .filter(|n| owner_pid(n) == Some(own_pid()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_names_the_harness_made() {
        assert_eq!(owner_pid("rf1234x0-h3"), Some(1234));
        assert_eq!(owner_pid("rf1234x12"), Some(1234));
        assert_eq!(owner_pid("rfx0"), None);
        assert_eq!(owner_pid("rf12-h1"), None);
        assert_eq!(owner_pid("tb"), None);
    }

    #[test]
    fn subnet_contains_only_its_own_addresses() {
        let s = Subnet { third_octet: 7 };
        assert!(s.contains(s.host(1)) && s.contains(s.root_leg()));
        assert!(!s.contains(Ipv4Addr::new(10, 213, 8, 1)));
        assert!(!s.contains(Ipv4Addr::new(10, 0, 7, 1)));
    }
}
