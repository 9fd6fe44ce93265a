//! What the agents say about themselves: their event logs (`<data-dir>/events.jsonl`) and their
//! `GET /v1/members`, read the way an operator would.
//!
//! Owns the parsing of both and the minimal HTTP/1.0 client. The client connects only to addresses of the
//! test subnet; the caller passes the subnet, and anything outside it is refused before a socket is opened.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;

use serde::Deserialize;

use crate::network::Subnet;

/// One line of an agent's event log (docs/operations.md describes the format); times in unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub time_ms: u64,
    /// The agent that wrote the line.
    pub node: String,
    /// join, leave, suspect, alive, failed, update, conflict or sent.
    pub event: String,
    pub member: String,
    pub joined_at_ms: u64,
    pub incarnation: u32,
    pub via: Option<String>,
    pub from: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    time: String,
    node: String,
    event: String,
    member: String,
    joined_at: String,
    incarnation: u32,
    via: Option<String>,
    from: Option<String>,
}

/// A time of the log or the HTTP API (RFC 3339 in UTC, `2026-11-24T21:14:31.123Z`) in Unix milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let at = humantime::parse_rfc3339(text).ok()?;
    u64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// Reads an agent's event log; lines that do not parse are skipped (a torn last line of a killed agent).
pub fn read_events(data_dir: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(data_dir.join("events.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<RawEvent>(line).ok())
        .filter_map(|raw| {
            Some(Event {
                time_ms: parse_rfc3339_ms(&raw.time)?,
                joined_at_ms: parse_rfc3339_ms(&raw.joined_at)?,
                node: raw.node,
                event: raw.event,
                member: raw.member,
                incarnation: raw.incarnation,
                via: raw.via,
                from: raw.from,
            })
        })
        .collect()
}

/// One entry of `GET /v1/members`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct MemberView {
    pub name: String,
    pub addr: String,
    pub state: String,
    pub incarnation: u32,
    pub joined_at: String,
    /// The observer's last measured round trip to this member, where the agent reports it (not in the
    /// contract, so optional).
    #[serde(default)]
    pub rtt_ms: Option<f64>,
}

impl MemberView {
    pub fn joined_at_ms(&self) -> Option<u64> {
        parse_rfc3339_ms(&self.joined_at)
    }
}

/// `GET path` on `ip:port` (see `roster_harness::http_get`), refused before a socket is opened for any
/// address outside the test subnet.
pub fn http_get(subnet: Subnet, ip: Ipv4Addr, port: u16, path: &str) -> Result<String, String> {
    if !subnet.contains(ip) {
        return Err(format!(
            "refusing to connect to {ip}: outside the test subnet {subnet}"
        ));
    }
    roster_harness::http_get(SocketAddr::V4(SocketAddrV4::new(ip, port)), path)
}

/// The list an agent serves on `GET /v1/members`.
pub fn members(subnet: Subnet, ip: Ipv4Addr, port: u16) -> Result<Vec<MemberView>, String> {
    let body = http_get(subnet, ip, port, "/v1/members")?;
    serde_json::from_str(&body).map_err(|e| format!("{ip}:{port}/v1/members: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_line_from_the_design_parses() {
        let dir =
            std::env::temp_dir().join(format!("roster-faults-observe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let line = r#"{"time":"2026-11-24T21:14:31.123Z","node":"m1","event":"failed","member":"m4","addr":"10.0.0.4:7946","joined_at":"2026-11-24T21:02:10.004Z","incarnation":3,"via":"gossip","from":"m2"}"#;
        std::fs::write(dir.join("events.jsonl"), format!("{line}\n{{\"torn")).expect("write");
        let events = read_events(&dir);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].event.as_str(), events[0].member.as_str()),
            ("failed", "m4")
        );
        assert_eq!(events[0].from.as_deref(), Some("m2"));
    }
}
