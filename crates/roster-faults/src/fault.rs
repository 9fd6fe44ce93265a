//! Network faults between test hosts: partitions (both ways or one way) and random loss as nftables rules in
//! the bridge's namespace, and added latency from `roster-nfq-delay` inside a host's namespace.
//!
//! Rules match on host addresses only, never on the root leg's, so the harness can always read the agents'
//! HTTP API while the hosts cannot reach one another. Drops happen on the bridge, never in a host's own output
//! hook, so a sender sees silent loss, not an error from its socket.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::network::{Network, command_in};
use crate::system::{run, run_stdin};

/// A fault made of bridge rules. Hosts are 1-based indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing passes between the two groups, either way.
    Partition { a: Vec<usize>, b: Vec<usize> },
    /// Nothing passes from `from` to `to`; the other way is untouched.
    OneWay { from: Vec<usize>, to: Vec<usize> },
    /// Each packet a host in `hosts` sends to another host is dropped with probability `percent` / 100.
    Loss { hosts: Vec<usize>, percent: u8 },
}

const TABLE: &str = "rfault";

fn set_of(net: &Network, hosts: &[usize]) -> String {
    let ips: Vec<String> = hosts.iter().map(|&i| net.host(i).ip.to_string()).collect();
    format!("{{ {} }}", ips.join(", "))
}

fn rules(net: &Network, fault: &Fault) -> Vec<String> {
    let all: Vec<usize> = net.hosts.iter().map(|h| h.index).collect();
    match fault {
        Fault::Partition { a, b } => {
            let (a, b) = (set_of(net, a), set_of(net, b));
            vec![
                format!("ip saddr {a} ip daddr {b} counter drop"),
                format!("ip saddr {b} ip daddr {a} counter drop"),
            ]
        }
        Fault::OneWay { from, to } => vec![format!(
            "ip saddr {} ip daddr {} counter drop",
            set_of(net, from),
            set_of(net, to)
        )],
        Fault::Loss { hosts, percent } => {
            assert!(*percent <= 100, "loss is a percentage");
            vec![format!(
                "ip saddr {} ip daddr {} numgen random mod 100 < {percent} counter drop",
                set_of(net, hosts),
                set_of(net, &all)
            )]
        }
    }
}

/// Replaces the bridge's fault rules with exactly `faults`, in one nft transaction.
pub fn apply(net: &Network, faults: &[Fault]) -> Result<(), String> {
    let body: Vec<String> = faults
        .iter()
        .flat_map(|f| rules(net, f))
        .map(|r| format!("    {r}"))
        .collect();
    // `table X` then `delete table X` makes the delete safe when the table does not exist yet.
    let script = format!(
        "table bridge {TABLE}\ndelete table bridge {TABLE}\ntable bridge {TABLE} {{\n  chain forward {{\n    \
         type filter hook forward priority 0; policy accept;\n{}\n  }}\n}}\n",
        body.join("\n")
    );
    nft_in_bridge(net, &script)
}

/// Packets the fault rules in force have dropped so far; a fault that drops nothing proves nothing.
pub fn dropped(net: &Network) -> u64 {
    let netns = net.bridge_netns.as_str();
    let listing = run(
        "ip",
        &[
            "netns", "exec", netns, "nft", "list", "table", "bridge", TABLE,
        ],
    );
    let listing = listing.unwrap_or_default();
    let words: Vec<&str> = listing.split_whitespace().collect();
    words
        .windows(3)
        .filter(|w| w[0] == "counter" && w[1] == "packets")
        .filter_map(|w| w[2].parse::<u64>().ok())
        .sum()
}

/// Removes every bridge fault, in one nft transaction.
pub fn heal(net: &Network) -> Result<(), String> {
    nft_in_bridge(
        net,
        &format!("table bridge {TABLE}\ndelete table bridge {TABLE}\n"),
    )
}

fn nft_in_bridge(net: &Network, script: &str) -> Result<(), String> {
    let netns = net.bridge_netns.as_str();
    run_stdin("ip", &["netns", "exec", netns, "nft", "-f", "-"], script)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Latency on some hosts: one `roster-nfq-delay` per host and the rules that queue its packets to it.
#[derive(Debug)]
pub struct Latency {
    netns: Vec<String>,
    helpers: Vec<Child>,
}

impl Latency {
    /// Delays every packet between a host in `hosts` and any other host by `delay_ms` each way, so a round
    /// trip that involves one of them takes `2 * delay_ms` more. Incoming packets are delayed at each chosen
    /// host; outgoing ones too, except those to another chosen host, which that host delays on arrival (so
    /// no pair is delayed twice). The root leg's traffic (the harness's HTTP reads) is not delayed.
    pub fn add(
        net: &Network,
        hosts: &[usize],
        delay_ms: u64,
        helper: &std::path::Path,
    ) -> Result<Latency, String> {
        let mut latency = Latency {
            netns: Vec::new(),
            helpers: Vec::new(),
        };
        let leg = net.subnet.root_leg().to_string();
        for &i in hosts {
            let host = net.host(i);
            let mut child = command_in(&host.netns, helper)?
                .args([
                    "--queue",
                    "0",
                    "--delay-ms",
                    &delay_ms.to_string(),
                    "--max-seconds",
                    "900",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("starting {} in {}: {e}", helper.display(), host.name))?;
            let stdout = child.stdout.take();
            latency.helpers.push(child);
            latency.netns.push(host.netns.clone());
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                if let Some(out) = stdout {
                    let _ = BufReader::new(out).read_line(&mut line);
                }
                let _ = tx.send(line);
            });
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(line) if line.trim() == "ready" => {}
                other => {
                    return Err(format!(
                        "latency helper in {} did not start: {other:?}",
                        host.name
                    ));
                }
            }
            let ipt = |args: &[&str]| {
                let mut full = vec!["netns", "exec", host.netns.as_str(), "iptables-nft", "-w"];
                full.extend_from_slice(args);
                run("ip", &full).map(drop).map_err(|e| e.to_string())
            };
            let queue = ["-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"];
            ipt(&[&["-A", "INPUT", "-i", "eth0", "!", "-s", &leg][..], &queue].concat())?;
            for &other in hosts.iter().filter(|&&o| o != i) {
                ipt(&[
                    "-A",
                    "OUTPUT",
                    "-o",
                    "eth0",
                    "-d",
                    &net.host(other).ip.to_string(),
                    "-j",
                    "RETURN",
                ])?;
            }
            ipt(&[&["-A", "OUTPUT", "-o", "eth0", "!", "-d", &leg][..], &queue].concat())?;
        }
        Ok(latency)
    }

    /// Removes the rules and stops the helpers.
    pub fn remove(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for netns in self.netns.drain(..) {
            let _ = run("ip", &["netns", "exec", &netns, "iptables-nft", "-w", "-F"]);
        }
        for mut child in self.helpers.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Latency {
    fn drop(&mut self) {
        self.stop();
    }
}
