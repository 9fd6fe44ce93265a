//! Writing a line: what the core reported, as the JSON object the log holds.

use std::collections::BTreeMap;

use roster_core::{Event, Member, Time};
use serde::Serialize;

use crate::timestamp::rfc3339;

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    node: &'a str,
    event: &'a str,
    member: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    joined_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incarnation: Option<u32>,
    /// For a change to the list: the member's tags (its metadata), when it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<BTreeMap<&'a str, &'a str>>,
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
    /// For a user event or a query: its name, payload and time on its origin's clock (the line's member is
    /// the origin). A payload that is not UTF-8 is written in hex, as `payload_hex`.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ltime: Option<u64>,
    /// For a query: the id its origin drew.
    #[serde(skip_serializing_if = "Option::is_none")]
    query_id: Option<u32>,
}

impl<'a> Line<'a> {
    fn about(node: &'a str, time: Time, event: &'a str, member: &'a Member) -> Line<'a> {
        Line {
            time: rfc3339(time),
            node,
            event,
            member: member.name(),
            addr: Some(member.identity.addr().to_string()),
            joined_at: Some(rfc3339(Time::from_unix_ms(member.identity.joined_at_ms()))),
            incarnation: Some(member.incarnation),
            ..Line::bare(node, time, event, member.name())
        }
    }

    /// A line about no member instance: a user event or a query, whose `member` is its origin.
    fn bare(node: &'a str, time: Time, event: &'a str, member: &'a str) -> Line<'a> {
        Line {
            time: rfc3339(time),
            node,
            event,
            member,
            addr: None,
            joined_at: None,
            incarnation: None,
            tags: None,
            via: None,
            from: None,
            to: None,
            holder_addr: None,
            holder_joined_at: None,
            name: None,
            payload: None,
            payload_hex: None,
            ltime: None,
            query_id: None,
        }
    }

    fn with_payload(self, name: &'a str, payload: &'a [u8], ltime: u64) -> Line<'a> {
        let text = std::str::from_utf8(payload).ok();
        Line {
            name: Some(name),
            payload: text,
            payload_hex: text.is_none().then(|| hex(payload)),
            ltime: Some(ltime),
            ..self
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The log line (without its newline) for `event`, which the node named `node` reported at `time` by its
/// machine's wall clock; `None` for the kinds the log does not record (probe outcomes and join progress are
/// not list changes, and the end of a leave is the agent's business).
pub fn encode(node: &str, time: Time, event: &Event) -> Option<String> {
    let line = match event {
        Event::Changed(change) => Line {
            tags: Some(
                change
                    .member
                    .identity
                    .meta()
                    .iter()
                    .collect::<BTreeMap<_, _>>(),
            )
            .filter(|tags| !tags.is_empty()),
            via: Some(change.via.as_str()),
            from: change.from.as_deref().map(|id| id.name()),
            ..Line::about(node, time, change.kind.as_str(), &change.member)
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
                ..Line::about(node, time, "sent", member)
            }
        }
        Event::Conflict { holder, claimant } => Line {
            holder_addr: Some(holder.identity.addr().to_string()),
            holder_joined_at: Some(rfc3339(Time::from_unix_ms(holder.identity.joined_at_ms()))),
            ..Line::about(node, time, "conflict", claimant)
        },
        Event::User {
            name,
            payload,
            ltime,
            from,
        } => Line::bare(node, time, "user", from).with_payload(name, payload, *ltime),
        Event::Query {
            query,
            ltime,
            name,
            payload,
            ..
        } => Line {
            query_id: Some(query.id),
            ..Line::bare(node, time, "query", &query.origin).with_payload(name, payload, *ltime)
        },
        // Answers and the end of a query are the business of whoever sent it, not the log.
        Event::Probed { .. }
        | Event::Joined { .. }
        | Event::JoinFailed { .. }
        | Event::Left { .. }
        | Event::QueryAnswer { .. }
        | Event::QueryDone { .. } => return None,
    };
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string(&line).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Kind, Record};
    use roster_core::{Change, ChangeKind, Identity, Meta, State, Via};

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
    fn a_failure_heard_by_gossip_names_its_source() {
        let change = Change {
            kind: ChangeKind::Failed,
            member: member("m4", 7946, State::Failed),
            previous: None,
            via: Via::Gossip,
            from: Some(member("m2", 7947, State::Alive).identity),
        };
        let line = encode(
            "m1",
            Time::from_unix_ms(1_795_986_871_123),
            &Event::Changed(change),
        )
        .expect("changes are logged");
        assert_eq!(
            line,
            r#"{"time":"2026-11-29T21:14:31.123Z","node":"m1","event":"failed","member":"m4","addr":"10.0.0.4:7946","joined_at":"2026-11-29T21:02:10.004Z","incarnation":3,"via":"gossip","from":"m2"}"#
        );
        let back = Record::parse(&line).expect("reads back");
        assert_eq!(
            (back.kind, back.node.as_str(), back.from.as_deref()),
            (Kind::Failed, "m1", Some("m2"))
        );
        assert_eq!(back.joined_at_ms, 1_795_986_130_004);
    }

    #[test]
    fn a_user_event_line_names_its_origin_and_reads_back() {
        let event = Event::User {
            name: "deploy".into(),
            payload: Arc::from(&b"v1.2"[..]),
            ltime: 41,
            from: "m2".into(),
        };
        let line = encode("m1", Time::from_unix_ms(1_795_986_871_123), &event).unwrap();
        assert_eq!(
            line,
            r#"{"time":"2026-11-29T21:14:31.123Z","node":"m1","event":"user","member":"m2","name":"deploy","payload":"v1.2","ltime":41}"#
        );
        let back = Record::parse(&line).expect("reads back");
        assert_eq!((back.kind, back.member.as_str()), (Kind::User, "m2"));
        let user = back.user.expect("the event's fields");
        assert_eq!(
            (user.name.as_str(), user.payload.as_slice(), user.ltime),
            ("deploy", &b"v1.2"[..], 41)
        );
        let binary = Event::User {
            name: "raw".into(),
            payload: Arc::from(&[0xff, 0x00][..]),
            ltime: 1,
            from: "m2".into(),
        };
        let line = encode("m1", Time::ZERO, &binary).unwrap();
        assert!(line.contains(r#""payload_hex":"ff00""#), "{line}");
        assert_eq!(
            Record::parse(&line).unwrap().user.unwrap().payload,
            [0xff, 0x00]
        );
    }

    #[test]
    fn a_change_carries_the_member_s_tags_and_reads_them_back() {
        let id = Identity::new(
            "m4",
            ([10, 0, 0, 4], 7946).into(),
            1_795_986_130_004,
            Meta::new([("zone", "a"), ("role", "web")]).expect("tags"),
        )
        .expect("valid identity");
        let change = Change {
            kind: ChangeKind::Updated,
            member: Member::new(Arc::new(id), 4, State::Alive),
            previous: None,
            via: Via::Gossip,
            from: None,
        };
        let line = encode("m1", Time::ZERO, &Event::Changed(change)).expect("logged");
        assert!(
            line.contains(r#""incarnation":4,"tags":{"role":"web","zone":"a"},"via":"gossip""#),
            "{line}"
        );
        let back = Record::parse(&line).expect("reads back");
        assert_eq!(back.tags.get("role").map(String::as_str), Some("web"));
        assert_eq!(back.tags.len(), 2);
    }

    #[test]
    fn a_sent_line_lists_the_receivers_once() {
        let (m2, m3) = (
            member("m2", 1, State::Alive).identity,
            member("m3", 2, State::Alive).identity,
        );
        let event = Event::FailureSent {
            member: member("m4", 7946, State::Failed),
            to: vec![m2.clone(), m3, m2],
        };
        let line = encode("m1", Time::ZERO, &event).expect("sent lines are logged");
        assert!(line.contains(r#""event":"sent","member":"m4""#), "{line}");
        assert!(line.ends_with(r#""to":["m2","m3"]}"#), "{line}");
        assert_eq!(Record::parse(&line).expect("reads back").to, ["m2", "m3"]);
    }
}
