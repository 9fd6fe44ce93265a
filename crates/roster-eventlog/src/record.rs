//! Reading a line back: a [`Record`], with times as Unix milliseconds and the kind of line as a type.

use std::collections::BTreeMap;
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
    /// A user event arrived; the line's member is its origin.
    User,
    /// A query this node matches arrived; the line's member is its origin.
    Query,
}

impl Kind {
    /// Every kind, in the order the log's documentation lists them.
    pub const ALL: [Kind; 10] = [
        Kind::Join,
        Kind::Leave,
        Kind::Suspect,
        Kind::Alive,
        Kind::Failed,
        Kind::Update,
        Kind::Sent,
        Kind::Conflict,
        Kind::User,
        Kind::Query,
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
            Kind::User => "user",
            Kind::Query => "query",
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
        "unknown event {0:?} (known: join, leave, suspect, alive, failed, update, sent, conflict, user, query)"
    )]
    UnknownEvent(String),
    /// A field the kind of line needs is absent.
    #[error("a {kind} line needs a {field} field")]
    Missing {
        /// The field.
        field: &'static str,
        /// The kind of line.
        kind: Kind,
    },
    /// A `payload_hex` that is not hex.
    #[error("payload_hex {0:?} is not hex")]
    Hex(String),
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
    /// The member's address, as `ip:port` (empty on a user event or query line).
    pub addr: String,
    /// The member instance's start (Unix milliseconds): with the name, it tells instances apart (0 on a user
    /// event or query line).
    pub joined_at_ms: u64,
    /// The member's incarnation in the change (0 on a user event or query line).
    pub incarnation: u32,
    /// For a change to the list: the member's tags (its metadata); empty when it has none.
    pub tags: BTreeMap<String, String>,
    /// How the node learned it (`probe`, `indirect-probe`, `suspicion-timeout`, `gossip`, `sync`, `self`).
    pub via: Option<String>,
    /// The member that passed the news on, for gossip and sync.
    pub from: Option<String>,
    /// For a `sent` line: the members told.
    pub to: Vec<String>,
    /// For a conflict: the address of the process that keeps the name.
    pub holder_addr: Option<String>,
    /// For a conflict: when the process that keeps the name joined (Unix milliseconds).
    pub holder_joined_at_ms: Option<u64>,
    /// For a user event or a query: what it carried.
    pub user: Option<UserFields>,
}

/// What a user event or query line carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFields {
    /// The event's or query's name.
    pub name: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Its time on its origin's clock.
    pub ltime: u64,
    /// For a query: the id its origin drew.
    pub query_id: Option<u32>,
}

#[derive(Deserialize)]
struct Raw {
    time: String,
    node: String,
    event: String,
    member: String,
    #[serde(default)]
    addr: Option<String>,
    #[serde(default)]
    joined_at: Option<String>,
    #[serde(default)]
    incarnation: Option<u32>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    via: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    holder_addr: Option<String>,
    #[serde(default)]
    holder_joined_at: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    payload_hex: Option<String>,
    #[serde(default)]
    ltime: Option<u64>,
    #[serde(default)]
    query_id: Option<u32>,
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
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
        let kind: Kind = raw.event.parse()?;
        let missing = |field: &'static str| ParseError::Missing { field, kind };
        let (addr, joined_at_ms, incarnation, user) = if matches!(kind, Kind::User | Kind::Query) {
            let payload = match (raw.payload, raw.payload_hex) {
                (Some(text), _) => text.into_bytes(),
                (None, Some(hex)) => unhex(&hex).ok_or(ParseError::Hex(hex))?,
                (None, None) => return Err(missing("payload")),
            };
            let user = UserFields {
                name: raw.name.ok_or_else(|| missing("name"))?,
                payload,
                ltime: raw.ltime.ok_or_else(|| missing("ltime"))?,
                query_id: raw.query_id,
            };
            (String::new(), 0, 0, Some(user))
        } else {
            let joined_at = raw.joined_at.ok_or_else(|| missing("joined_at"))?;
            (
                raw.addr.ok_or_else(|| missing("addr"))?,
                time("joined_at", &joined_at)?,
                raw.incarnation.ok_or_else(|| missing("incarnation"))?,
                None,
            )
        };
        Ok(Record {
            time_ms: time("time", &raw.time)?,
            joined_at_ms,
            kind,
            node: raw.node,
            member: raw.member,
            addr,
            incarnation,
            tags: raw.tags,
            via: raw.via,
            from: raw.from,
            to: raw.to,
            holder_addr: raw.holder_addr,
            holder_joined_at_ms: raw
                .holder_joined_at
                .as_deref()
                .map(|t| time("holder_joined_at", t))
                .transpose()?,
            user,
        })
    }

    /// Whether the node learned the change by itself (its own probe, its own suspicion timing out, or the
    /// member's own word about itself, an operator's force-leave) rather than being told.
    pub fn is_first_hand(&self) -> bool {
        self.from.is_none()
            && matches!(
                self.via.as_deref(),
                Some("probe" | "indirect-probe" | "suspicion-timeout" | "self" | "force-leave")
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
