//! Loopback ports for agents: free for both UDP and TCP, and never handed out twice by one process (the kernel
//! may offer a just-released port again while the agent it went to has not bound it yet).

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use roster_core::mix::SplitMix64;

/// `port` on 127.0.0.1.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A port free right now on 127.0.0.1, from one picker shared by the whole process.
///
/// # Panics
/// When no free port turns up in 2000 tries: the machine is out of ports, and nothing can run.
pub fn free_port() -> u16 {
    static PICKER: Mutex<Option<PortPicker>> = Mutex::new(None);
    let mut picker = PICKER.lock().unwrap_or_else(|e| e.into_inner());
    picker
        .get_or_insert_with(PortPicker::new)
        .free_port()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Hands out ports free for both UDP and TCP on 127.0.0.1, never the same one twice.
#[derive(Debug)]
pub struct PortPicker {
    taken: HashSet<u16>,
    rng: SplitMix64,
}

impl Default for PortPicker {
    fn default() -> Self {
        PortPicker::new()
    }
}

impl PortPicker {
    pub fn new() -> PortPicker {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        PortPicker {
            taken: HashSet::new(),
            rng: SplitMix64::new((u64::from(std::process::id()) << 32) ^ now_ms),
        }
    }

    /// A port free right now, taken below the kernel's ephemeral range where there is room: a port the
    /// kernel hands to some other process's socket between this check and the agent's bind would stop the
    /// agent, and the kernel only hands out ephemeral ports.
    pub fn free_port(&mut self) -> Result<u16, String> {
        let below = ephemeral_start().filter(|&start| start > 12_000);
        for _ in 0..2000 {
            let port = match below {
                // Spread out, and different across runs and processes.
                Some(start) => 10_000 + self.rng.below(u64::from(start - 10_000)) as u16,
                None => UdpSocket::bind("127.0.0.1:0")
                    .and_then(|s| s.local_addr())
                    .map_err(|e| format!("cannot bind a UDP port: {e}"))?
                    .port(),
            };
            if self.taken.contains(&port) {
                continue;
            }
            let free = UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("127.0.0.1", port)).is_ok();
            if free {
                self.taken.insert(port);
                return Ok(port);
            }
        }
        Err("found no free loopback port in 2000 tries".into())
    }
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_never_handed_out_twice() {
        let mut picker = PortPicker::new();
        let ports: Vec<u16> = (0..50)
            .map(|_| picker.free_port().expect("a port"))
            .collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(ports.iter().all(|&p| p >= 1024), "{ports:?}");
    }
}
