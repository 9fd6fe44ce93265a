//! The event log: one JSON object per line in `<data-dir>/events.jsonl`, for every change to the
//! list, every failure notice passed on, and every name conflict.
//!
//! This module owns the line format and the file. Each line goes out in one `write` on an unbuffered file, so a
//! `kill -9` loses nothing already reported (the kernel holds it even if the process dies). When the file would
//! grow past its bound it is renamed to `events.jsonl.1` (older ones shift up, the oldest is dropped) and a new
//! one is started: nothing already written is ever truncated in place.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use roster_core::{Event, Member, Time};
use serde::Serialize;

/// Formats a time as RFC 3339 in UTC with milliseconds, as the log and the HTTP API show it.
pub fn rfc3339(time: Time) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(time.unix_ms());
    humantime::format_rfc3339_millis(at).to_string()
}

/// Reads a time as [`rfc3339`] writes it (`2026-11-24T21:14:31.123Z`) back into Unix milliseconds, for
/// programs that replay event logs; `None` for any other shape or an impossible date.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let at = humantime::parse_rfc3339(text).ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

/// One line of the log, as a library user receives it from [`crate::Agent::events`].
#[derive(Clone, Debug)]
pub struct AgentEvent {
    /// When the agent saw it.
    pub time: Time,
    /// What the core reported.
    pub event: Event,
    line: Arc<str>,
}

impl AgentEvent {
    /// The JSON line, as written to the log and sent on `GET /v1/events` (without the newline).
    pub fn json(&self) -> &str {
        &self.line
    }

    /// The log line for `event`, if the log records that kind of event (probe outcomes and join progress are
    /// not list changes, so they are not logged).
    pub fn from_event(local: &str, time: Time, event: Event) -> Option<AgentEvent> {
        let line = line_for(local, time, &event)?;
        Some(AgentEvent {
            time,
            event,
            line: line.into(),
        })
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    node: &'a str,
    event: &'a str,
    member: &'a str,
    addr: String,
    joined_at: String,
    incarnation: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<Vec<&'a str>>,
    /// For a conflict: the process that keeps the name (the line's member is the one refused it).
    #[serde(skip_serializing_if = "Option::is_none")]
    holder_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder_joined_at: Option<String>,
}

impl<'a> Line<'a> {
    fn about(local: &'a str, time: Time, event: &'a str, member: &'a Member) -> Line<'a> {
        Line {
            time: rfc3339(time),
            node: local,
            event,
            member: member.name(),
            addr: member.identity.addr().to_string(),
            joined_at: rfc3339(Time::from_unix_ms(member.identity.joined_at_ms())),
            incarnation: member.incarnation,
            via: None,
            from: None,
            to: None,
            holder_addr: None,
            holder_joined_at: None,
        }
    }
}

fn line_for(local: &str, time: Time, event: &Event) -> Option<String> {
    let line = match event {
        Event::Changed(change) => Line {
            via: Some(change.via.as_str()),
            from: change.from.as_deref().map(|id| id.name()),
            ..Line::about(local, time, change.kind.as_str(), &change.member)
        },
        Event::FailureSent { member, to } => {
            // The core lists a receiver once per retransmission; the log names each member once.
            let mut names: Vec<&str> = Vec::with_capacity(to.len());
            for id in to {
                if !names.contains(&id.name()) {
                    names.push(id.name());
                }
            }
            Line {
                to: Some(names),
                ..Line::about(local, time, "sent", member)
            }
        }
        Event::Conflict { holder, claimant } => Line {
            holder_addr: Some(holder.identity.addr().to_string()),
            holder_joined_at: Some(rfc3339(Time::from_unix_ms(holder.identity.joined_at_ms()))),
            ..Line::about(local, time, "conflict", claimant)
        },
        Event::Probed { .. } | Event::Joined { .. } | Event::JoinFailed { .. } => return None,
    };
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string(&line).ok()
}

/// The log file, with size-based rotation.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl EventLog {
    /// Opens (or creates) `path` for appending. Rotates once the file would pass `max_bytes`, keeping `keep`
    /// rotated files beside it.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(EventLog {
            path: path.to_owned(),
            file,
            size,
            max_bytes: max_bytes.max(1),
            keep,
        })
    }

    /// Appends one line and hands it to the kernel before returning.
    pub fn append(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.file.flush()?;
        self.size += len;
        Ok(())
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            // No history wanted: start over, but by replacing the file rather than truncating it, so a reader
            // that has it open keeps what it had.
            let _ = std::fs::remove_file(&self.path);
        } else {
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_core::{Change, ChangeKind, Identity, Meta, State, Via};

    #[test]
    fn log_times_read_back_to_the_millisecond() {
        for ms in [0, 951_825_600_500, 1_795_554_871_123] {
            assert_eq!(parse_rfc3339_ms(&rfc3339(Time::from_unix_ms(ms))), Some(ms));
        }
        assert_eq!(
            parse_rfc3339_ms("2026-11-24T21:14:31.123Z"),
            Some(1_795_554_871_123)
        );
        for bad in [
            "2026-11-24 21:14:31Z",
            "2026-02-30T00:00:00.000Z",
            "2026-11-24T21:14:31.12xZ",
            "",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    fn member(name: &str, port: u16, state: State) -> Member {
        let id = Identity::new(
            name,
            ([10, 0, 0, 4], port).into(),
            1_795_986_130_004,
            Meta::default(),
        )
        .expect("valid identity");
        Member::new(Arc::new(id), 3, state)
    }

    #[test]
    fn time_is_rfc3339_utc_with_milliseconds() {
        assert_eq!(
            rfc3339(Time::from_unix_ms(1_795_986_130_004)),
            "2026-11-29T21:02:10.004Z"
        );
        assert_eq!(rfc3339(Time::ZERO), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_failure_heard_by_gossip_names_its_source() {
        let change = Change {
            kind: ChangeKind::Failed,
            member: member("m4", 7946, State::Failed),
            previous: None,
            via: Via::Gossip,
            from: Some(member("m2", 7947, State::Alive).identity),
        };
        let event = AgentEvent::from_event(
            "m1",
            Time::from_unix_ms(1_795_986_871_123),
            Event::Changed(change),
        )
        .expect("changes are logged");
        assert_eq!(
            event.json(),
            r#"{"time":"2026-11-29T21:14:31.123Z","node":"m1","event":"failed","member":"m4","addr":"10.0.0.4:7946","joined_at":"2026-11-29T21:02:10.004Z","incarnation":3,"via":"gossip","from":"m2"}"#
        );
    }

    #[test]
    fn a_sent_line_lists_the_receivers() {
        let (m2, m3) = (
            member("m2", 1, State::Alive).identity,
            member("m3", 2, State::Alive).identity,
        );
        let to = vec![m2.clone(), m3, m2];
        let event = Event::FailureSent {
            member: member("m4", 7946, State::Failed),
            to,
        };
        let line = AgentEvent::from_event("m1", Time::ZERO, event).expect("sent lines are logged");
        assert!(
            line.json().contains(r#""event":"sent","member":"m4""#),
            "{}",
            line.json()
        );
        assert!(
            line.json().ends_with(r#""to":["m2","m3"]}"#),
            "{}",
            line.json()
        );
    }

    #[test]
    fn rotation_keeps_every_line_in_some_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.jsonl");
        let mut log = EventLog::open(&path, 100, 2).expect("open");
        for i in 0..10 {
            log.append(&format!("{{\"line\":{i:040}}}"))
                .expect("append");
        }
        let current = std::fs::read_to_string(&path).expect("current");
        let first = std::fs::read_to_string(dir.path().join("events.jsonl.1")).expect("first");
        assert!(current.len() <= 100 && first.len() <= 100);
        assert!(current.ends_with(&format!("{:040}}}\n", 9)));
        assert!(!dir.path().join("events.jsonl.3").exists());
    }
}
