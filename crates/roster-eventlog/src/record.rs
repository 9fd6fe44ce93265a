//! Reading a line back: a [`Record`], with times as Unix milliseconds and the kind of line as a type.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::timestamp::parse_rfc3339_ms;

/// What a line reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The member entered the list (or a newer instance replaced an older one).
    Join,
    /// The member left on purpose.
    Leave,
    /// The member is suspected.
    Suspect,
    /// The member is alive again (a refuted suspicion).
    Alive,
    /// The member is failed.
    Failed,
    /// The member's metadata or incarnation changed.
    Update,
    /// The node passed a failure notice about the member on to the members in `to`.
    Sent,
    /// Two live processes claim the member's name; the line's member is the one refused it.
    Conflict,
}

impl Kind {
    /// Every kind, in the order the log's documentation lists them.
    pub const ALL: [Kind; 8] = [
        Kind::Join,
        Kind::Leave,
        Kind::Suspect,
        Kind::Alive,
        Kind::Failed,
        Kind::Update,
        Kind::Sent,
        Kind::Conflict,
    ];

    /// The word in the log's `event` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Join => "join",
            Kind::Leave => "leave",
            Kind::Suspect => "suspect",
            Kind::Alive => "alive",
            Kind::Failed => "failed",
            Kind::Update => "update",
            Kind::Sent => "sent",
            Kind::Conflict => "conflict",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As the word the log writes.
impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Kind, ParseError> {
        // `left` is what the list calls the state a leave ends in; accept it for the change too.
        let s = if s == "left" { "leave" } else { s };
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseError::UnknownEvent(s.to_owned()))
    }
}

/// Why a line is not a log line.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or a field missing or of the wrong type.
    #[error("not an event-log line: {0}")]
    Json(#[from] serde_json::Error),
    /// A time that is not RFC 3339 UTC with milliseconds.
    #[error("{field} {value:?} is not a time like 2026-11-24T21:14:31.123Z")]
    Time {
        /// The field (`time`, `joined_at`).
        field: &'static str,
        /// What it held.
        value: String,
    },
    /// An `event` this version does not know.
    #[error(
        "unknown event {0:?} (known: join, leave, suspect, alive, failed, update, sent, conflict)"
    )]
    UnknownEvent(String),
}

/// One line of a log, read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When the node's machine saw it, by that machine's wall clock (Unix milliseconds).
    pub time_ms: u64,
    /// The node whose log holds the line.
    pub node: String,
    /// What happened.
    pub kind: Kind,
    /// The member it happened to.
    pub member: String,
    /// The member's address, as `ip:port`.
    pub addr: String,
    /// The member instance's start (Unix milliseconds): with the name, it tells instances apart.
    pub joined_at_ms: u64,
    /// The member's incarnation in the change.
    pub incarnation: u32,
    /// How the node learned it (`probe`, `indirect-probe`, `suspicion-timeout`, `gossip`, `sync`, `self`).
    pub via: Option<String>,
    /// The member that passed the news on, for gossip and sync.
    pub from: Option<String>,
    /// For a `sent` line: the members told.
    pub to: Vec<String>,
    /// For a conflict: the address of the process that keeps the name.
    pub holder_addr: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    time: String,
    node: String,
    event: String,
    member: String,
    addr: String,
    joined_at: String,
    incarnation: u32,
    #[serde(default)]
    via: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    holder_addr: Option<String>,
}

impl Record {
    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Result<Record, ParseError> {
        let raw: Raw = serde_json::from_str(line)?;
        let time = |field: &'static str, value: &str| {
            parse_rfc3339_ms(value).ok_or_else(|| ParseError::Time {
                field,
                value: value.to_owned(),
            })
        };
        Ok(Record {
            time_ms: time("time", &raw.time)?,
            joined_at_ms: time("joined_at", &raw.joined_at)?,
            kind: raw.event.parse()?,
            node: raw.node,
            member: raw.member,
            addr: raw.addr,
            incarnation: raw.incarnation,
            via: raw.via,
            from: raw.from,
            to: raw.to,
            holder_addr: raw.holder_addr,
        })
    }

    /// Whether the node learned the change by itself (its own probe, its own suspicion timing out, or the
    /// member's own word about itself) rather than being told.
    pub fn is_first_hand(&self) -> bool {
        self.from.is_none()
            && matches!(
                self.via.as_deref(),
                Some("probe" | "indirect-probe" | "suspicion-timeout" | "self")
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"time":"2026-11-29T21:14:31.123Z","node":"m1","event":"suspect","member":"m4","addr":"10.0.0.4:7946","joined_at":"2026-11-29T21:02:10.004Z","incarnation":3,"via":"probe"}"#;

    #[test]
    fn a_line_reads_into_typed_fields() {
        let r = Record::parse(LINE).expect("parses");
        assert_eq!(r.kind, Kind::Suspect);
        assert!(r.is_first_hand());
        assert_eq!((r.incarnation, r.to.len()), (3, 0));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let bad_time = LINE.replace("21:14:31.123Z", "25:14:31.123Z");
        let e = Record::parse(&bad_time).expect_err("bad time");
        assert!(
            e.to_string().contains(r#"time "2026-11-29T25:14:31.123Z""#),
            "{e}"
        );
        let bad_event = LINE.replace("suspect", "exploded");
        let e = Record::parse(&bad_event).expect_err("bad event");
        assert!(e.to_string().contains("unknown event \"exploded\""), "{e}");
        let e = Record::parse("{\"time\": 3}").expect_err("not a line");
        assert!(e.to_string().starts_with("not an event-log line"), "{e}");
        assert_eq!("left".parse::<Kind>().expect("alias"), Kind::Leave);
    }
}
