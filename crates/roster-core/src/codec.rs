//! The wire format: versioned, compact, total.
//!
//! ```text
//! packet  = version:u8  sender:str  message+     (version 1 to 3; 2 adds the conflict notice, 3 user events,
//!                                                queries, their answers and the event clocks of a sync)
//! message = tag:u8 body                      (bodies are self-delimiting; a packet's messages run to its end)
//! str     = len:varint bytes                 (UTF-8, length bounded before anything is read)
//! addr    = family:u8 (4|6)  ip:4|16 bytes  port:u16 big-endian
//! member  = name:str addr joined_at_ms:varint incarnation:varint state:u8 meta
//! meta    = count:varint (key:str value:str)*   (keys sorted and unique)
//! bytes   = len:varint bytes                 (a payload, length bounded like a str)
//! event   = ltime:varint name:str payload:bytes origin:str
//! query   = id:varint ltime:varint origin:str addr timeout_ms:varint
//!           names:varint str*  tags:varint (key:str value:str)*  name:str payload:bytes
//! answer  = id:varint ltime:varint payload:bytes
//! clocks  = event:varint query:varint
//! ```
//!
//! A build that does not know version 3 refuses its packets whole (an unsupported version), and a node sends
//! version 3 only to members whose records say they speak it, so the new messages never reach a build that
//! would choke on them.
//!
//! Integers are LEB128 varints, so a quiet cluster's ping is about 15 bytes and its ack about 10. Decoding never
//! panics and never allocates more than the input could hold: every length and count is checked against its
//! bound and against the bytes left before a buffer is reserved.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::member::{
    self, Identity, IdentityError, MAX_NAME_LEN, Member, Meta, State, WIRE_VERSION_KEY,
};
use crate::message::{Message, Packet, Update};
use crate::query::{
    MAX_ANSWER_BYTES, MAX_FILTER_ENTRIES, MAX_QUERY_BYTES, MAX_QUERY_TIMEOUT, Query, QueryAnswer,
    QueryFilter,
};
use crate::user_event::{self, EventError, MAX_EVENT_BYTES, UserEvent};

/// The newest wire version this build speaks.
pub const VERSION: u8 = 3;
/// The oldest wire version this build still speaks, so that a cluster upgraded one machine at a time stays one
/// cluster: version 1, since versions 2 and 3 only add messages and fields, which are left out for a member
/// that does not speak them. A node sends each member the newest version both speak (members say which in
/// their metadata, the `roster.wire` entry), and the oldest to an address it does not know yet.
pub const OLDEST_VERSION: u8 = 1;
/// Most members one sync message may carry.
pub const MAX_SYNC_MEMBERS: usize = 200_000;
/// Most metadata bytes and entries a record may carry on the wire: a member's own, and the entry that says its
/// wire version (the bounds every version checks).
const WIRE_META_BYTES: usize = 512;
const WIRE_META_ENTRIES: usize = 32;
/// The fewest bytes one encoded member can take; bounds a member count by the bytes left.
const MIN_MEMBER_LEN: usize = 1 + 1 + 7 + 1 + 1 + 1 + 1;
/// Bit of the state byte of an update that says an accuser name follows.
const HAS_ACCUSER: u8 = 0x80;

const TAG_PING: u8 = 1;
const TAG_ACK: u8 = 2;
const TAG_NACK: u8 = 3;
const TAG_PING_REQ: u8 = 4;
const TAG_UPDATE: u8 = 5;
const TAG_SYNC_REQUEST: u8 = 6;
const TAG_SYNC_RESPONSE: u8 = 7;
const TAG_SYNC_PUSH: u8 = 8;
/// Since version 2.
const TAG_CONFLICT: u8 = 9;
const TAG_ACK_AT: u8 = 10;
const TAG_PING_AT: u8 = 11;
/// Since version 3.
const TAG_USER_EVENT: u8 = 12;
const TAG_QUERY: u8 = 13;
const TAG_QUERY_ANSWER: u8 = 14;
const TAG_CLOCKS: u8 = 15;

/// Why bytes did not decode. A packet that fails to decode changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("packet is empty")]
    Empty,
    /// The bytes stop inside the named field.
    #[error("packet ends in the middle of {0}")]
    Truncated(&'static str),
    /// A wire version this build does not speak.
    #[error("unsupported protocol version {0} (this build speaks {OLDEST_VERSION} to {VERSION})")]
    UnsupportedVersion(u8),
    /// A message tag this build does not know.
    #[error("unknown message tag {0}")]
    UnknownMessage(u8),
    /// A header and nothing after it.
    #[error("packet carries no message")]
    NoMessage,
    /// A variable-length integer that runs on too long, in the named field.
    #[error("malformed varint in {0}")]
    BadVarint(&'static str),
    #[error("{what} is {len}, over the bound of {max}")]
    /// A length or count over what the protocol allows.
    TooLarge {
        /// The field.
        what: &'static str,
        /// Its length or count.
        len: u64,
        /// The most allowed.
        max: u64,
    },
    /// A text field (named) that is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A member whose name or metadata breaks the rules.
    #[error("invalid member: {0}")]
    InvalidIdentity(#[from] IdentityError),
    /// A state byte that is no state.
    #[error("invalid member state {0}")]
    InvalidState(u8),
    /// An address that is neither IPv4 nor IPv6.
    #[error("invalid address family {0}")]
    InvalidAddressFamily(u8),
    /// Metadata out of order: every encoder sorts it, so this is not Roster's.
    #[error("metadata keys are not sorted and unique")]
    UnsortedMeta,
    /// A user event or query that breaks the rules (a bad name, over its size).
    #[error("invalid event: {0}")]
    InvalidEvent(#[from] EventError),
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

/// Starts a packet from `sender`, in wire version `version`.
pub fn encode_header(buf: &mut Vec<u8>, version: u8, sender: &str) {
    buf.push(version);
    put_str(buf, sender);
}

/// Appends one message. A message the packet's version does not have (a conflict notice in version 1) must
/// not be given: see [`Message::since_version`].
pub fn encode_message(buf: &mut Vec<u8>, message: &Message) {
    match message {
        Message::Ping {
            seq,
            target,
            round_clock,
        } => {
            buf.push(if round_clock.is_some() {
                TAG_PING_AT
            } else {
                TAG_PING
            });
            put_varint(buf, u64::from(*seq));
            put_str(buf, target);
            if let Some(clock) = round_clock {
                put_varint(buf, u64::from(*clock));
            }
        }
        Message::Ack { seq, round_clock } => {
            buf.push(if round_clock.is_some() {
                TAG_ACK_AT
            } else {
                TAG_ACK
            });
            put_varint(buf, u64::from(*seq));
            if let Some(clock) = round_clock {
                put_varint(buf, u64::from(*clock));
            }
        }
        Message::Nack { seq } => {
            buf.push(TAG_NACK);
            put_varint(buf, u64::from(*seq));
        }
        Message::PingReq { seq, target, addr } => {
            buf.push(TAG_PING_REQ);
            put_varint(buf, u64::from(*seq));
            put_str(buf, target);
            put_addr(buf, *addr);
        }
        Message::Update(update) => encode_update(buf, update),
        Message::SyncRequest {
            digest,
            join,
            members,
        } => {
            buf.push(TAG_SYNC_REQUEST);
            buf.extend_from_slice(&digest.to_le_bytes());
            buf.push(u8::from(*join));
            put_members(buf, members);
        }
        Message::SyncResponse { digest, members } => {
            buf.push(TAG_SYNC_RESPONSE);
            buf.extend_from_slice(&digest.to_le_bytes());
            put_members(buf, members);
        }
        Message::SyncPush { members } => {
            buf.push(TAG_SYNC_PUSH);
            put_members(buf, members);
        }
        Message::Conflict { holder, claimant } => {
            buf.push(TAG_CONFLICT);
            put_member(buf, holder, None);
            put_member(buf, claimant, None);
        }
        Message::UserEvent(event) => {
            buf.push(TAG_USER_EVENT);
            put_varint(buf, event.ltime);
            put_str(buf, &event.name);
            put_bytes(buf, &event.payload);
            put_str(buf, &event.origin);
        }
        Message::Query(query) => {
            buf.push(TAG_QUERY);
            put_varint(buf, u64::from(query.id));
            put_varint(buf, query.ltime);
            put_str(buf, &query.origin);
            put_addr(buf, query.origin_addr);
            put_varint(
                buf,
                u64::try_from(query.timeout.as_millis()).unwrap_or(u64::MAX),
            );
            put_varint(buf, query.filter.nodes.len() as u64);
            for node in &query.filter.nodes {
                put_str(buf, node);
            }
            put_varint(buf, query.filter.tags.len() as u64);
            for (key, value) in &query.filter.tags {
                put_str(buf, key);
                put_str(buf, value);
            }
            put_str(buf, &query.name);
            put_bytes(buf, &query.payload);
        }
        Message::QueryAnswer(answer) => {
            buf.push(TAG_QUERY_ANSWER);
            put_varint(buf, u64::from(answer.id));
            put_varint(buf, answer.ltime);
            put_bytes(buf, &answer.payload);
        }
        Message::Clocks { event, query } => {
            buf.push(TAG_CLOCKS);
            put_varint(buf, *event);
            put_varint(buf, *query);
        }
    }
}

/// Appends an update message (the broadcast queue keeps updates encoded this way).
pub fn encode_update(buf: &mut Vec<u8>, update: &Update) {
    buf.push(TAG_UPDATE);
    put_member(buf, &update.member, update.accuser.as_deref());
}

/// Encodes a whole packet in the newest version.
pub fn encode_packet(sender: &str, messages: &[Message]) -> Vec<u8> {
    encode_packet_at(VERSION, sender, messages)
}

/// Encodes a whole packet in wire version `version`, leaving out the messages that version does not have.
pub fn encode_packet_at(version: u8, sender: &str, messages: &[Message]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    encode_header(&mut buf, version, sender);
    for message in messages.iter().filter(|m| m.since_version() <= version) {
        encode_message(&mut buf, message);
    }
    buf
}

/// The encoded length of a member in a full list, for cutting a list into frames of a bounded size.
pub fn member_len(member: &Member) -> usize {
    let mut buf = Vec::with_capacity(64);
    put_member(&mut buf, member, None);
    buf.len()
}

fn put_members(buf: &mut Vec<u8>, members: &[Member]) {
    put_varint(buf, members.len() as u64);
    for member in members {
        put_member(buf, member, None);
    }
}

fn put_member(buf: &mut Vec<u8>, member: &Member, accuser: Option<&str>) {
    let id = &member.identity;
    put_str(buf, id.name());
    put_addr(buf, id.addr());
    put_varint(buf, id.joined_at_ms());
    put_varint(buf, u64::from(member.incarnation));
    let flag = if accuser.is_some() { HAS_ACCUSER } else { 0 };
    buf.push(member.state.rank() | flag);
    if let Some(accuser) = accuser {
        put_str(buf, accuser);
    }
    let meta = id.meta();
    // The wire version rides among the entries, in key order, for a member that speaks more than the oldest.
    let version = (id.wire_version() > OLDEST_VERSION).then(|| id.wire_version().to_string());
    put_varint(buf, (meta.len() + usize::from(version.is_some())) as u64);
    let mut version = version.as_deref();
    for (key, value) in meta.iter() {
        if let Some(v) = version.filter(|_| WIRE_VERSION_KEY < key) {
            put_str(buf, WIRE_VERSION_KEY);
            put_str(buf, v);
            version = None;
        }
        put_str(buf, key);
        put_str(buf, value);
    }
    if let Some(v) = version {
        put_str(buf, WIRE_VERSION_KEY);
        put_str(buf, v);
    }
}

fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn put_addr(buf: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            buf.push(4);
            buf.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            buf.push(6);
            buf.extend_from_slice(&ip.octets());
        }
    }
    buf.extend_from_slice(&addr.port().to_be_bytes());
}

/// The encoded length of an update, without encoding it twice.
pub fn update_len(update: &Update) -> usize {
    let mut buf = Vec::with_capacity(64);
    encode_update(&mut buf, update);
    buf.len()
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

/// Decodes a packet of any version this build speaks. Total: any input gives a packet or a typed error.
pub fn decode_packet(bytes: &[u8]) -> Result<Packet, DecodeError> {
    decode_packet_upto(bytes, VERSION)
}

/// Decodes a packet of a version from [`OLDEST_VERSION`] to `newest`: what a build whose newest version is
/// `newest` accepts.
pub fn decode_packet_upto(bytes: &[u8], newest: u8) -> Result<Packet, DecodeError> {
    let version = *bytes.first().ok_or(DecodeError::Empty)?;
    if !(OLDEST_VERSION..=newest.min(VERSION)).contains(&version) {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let mut r = Reader {
        bytes: &bytes[1..],
        version,
    };
    let sender = r.name("sender")?;
    let mut messages = Vec::new();
    while !r.bytes.is_empty() {
        messages.push(r.message()?);
    }
    if messages.is_empty() {
        return Err(DecodeError::NoMessage);
    }
    Ok(Packet {
        version,
        sender,
        messages,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    version: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::BadVarint(what));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint(what))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let value = self.varint(what)?;
        u32::try_from(value).map_err(|_| DecodeError::TooLarge {
            what,
            len: value,
            max: u64::from(u32::MAX),
        })
    }

    fn str(&mut self, what: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let len = self.varint(what)?;
        if len > max as u64 {
            return Err(DecodeError::TooLarge {
                what,
                len,
                max: max as u64,
            });
        }
        let bytes = self.take(len as usize, what)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8(what))
    }

    fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.varint(what)?;
        if len > max as u64 {
            return Err(DecodeError::TooLarge {
                what,
                len,
                max: max as u64,
            });
        }
        self.take(len as usize, what)
    }

    /// A count of at most `max` entries, each at least `min_len` bytes, checked against the bytes left.
    fn count(
        &mut self,
        what: &'static str,
        max: usize,
        min_len: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.varint(what)?;
        let max = max.min(self.bytes.len() / min_len) as u64;
        if count > max {
            return Err(DecodeError::TooLarge {
                what,
                len: count,
                max,
            });
        }
        Ok(count as usize)
    }

    fn event_name(&mut self, what: &'static str) -> Result<Arc<str>, DecodeError> {
        let name = self.str(what, MAX_NAME_LEN)?;
        user_event::check_name(name)?;
        Ok(Arc::from(name))
    }

    fn user_event(&mut self) -> Result<UserEvent, DecodeError> {
        let ltime = self.varint("event time")?;
        let name = self.event_name("event name")?;
        let payload = self.bytes("event payload", MAX_EVENT_BYTES)?;
        user_event::check_size(&name, payload)?;
        Ok(UserEvent {
            ltime,
            name,
            payload: Arc::from(payload),
            origin: self.name("event origin")?,
        })
    }

    fn query(&mut self) -> Result<Query, DecodeError> {
        let id = self.u32("query id")?;
        let ltime = self.varint("query time")?;
        let origin = self.name("query origin")?;
        let origin_addr = self.addr()?;
        let timeout_ms = self.varint("query timeout")?;
        let max_ms = MAX_QUERY_TIMEOUT.as_millis() as u64;
        if timeout_ms > max_ms {
            return Err(DecodeError::TooLarge {
                what: "query timeout",
                len: timeout_ms,
                max: max_ms,
            });
        }
        let mut filter = QueryFilter::default();
        for _ in 0..self.count("query filter names", MAX_FILTER_ENTRIES, 1)? {
            filter.nodes.push(self.name("query filter name")?);
        }
        for _ in 0..self.count("query filter tags", MAX_FILTER_ENTRIES, 2)? {
            let key = self.str("query filter tag", MAX_QUERY_BYTES)?;
            let value = self.str("query filter tag", MAX_QUERY_BYTES)?;
            filter.tags.push((Arc::from(key), Arc::from(value)));
        }
        let name = self.event_name("query name")?;
        let payload = self.bytes("query payload", MAX_QUERY_BYTES)?;
        crate::query::check_query(&name, payload, &filter)?;
        Ok(Query {
            id,
            ltime,
            origin,
            origin_addr,
            timeout: std::time::Duration::from_millis(timeout_ms),
            filter,
            name,
            payload: Arc::from(payload),
        })
    }

    fn name(&mut self, what: &'static str) -> Result<Arc<str>, DecodeError> {
        let name = self.str(what, MAX_NAME_LEN)?;
        member::check_name(name)?;
        Ok(Arc::from(name))
    }

    fn addr(&mut self) -> Result<SocketAddr, DecodeError> {
        let ip = match self.u8("address")? {
            4 => {
                let o: [u8; 4] = self.take(4, "address")?.try_into().expect("took 4 bytes");
                IpAddr::V4(Ipv4Addr::from(o))
            }
            6 => {
                let o: [u8; 16] = self.take(16, "address")?.try_into().expect("took 16 bytes");
                IpAddr::V6(Ipv6Addr::from(o))
            }
            family => return Err(DecodeError::InvalidAddressFamily(family)),
        };
        let port = self.take(2, "port")?;
        Ok(SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])))
    }

    fn digest(&mut self) -> Result<u64, DecodeError> {
        let bytes: [u8; 8] = self.take(8, "digest")?.try_into().expect("took 8 bytes");
        Ok(u64::from_le_bytes(bytes))
    }

    fn member(&mut self, allow_accuser: bool) -> Result<(Member, Option<Arc<str>>), DecodeError> {
        let name = self.str("member name", MAX_NAME_LEN)?;
        let addr = self.addr()?;
        let joined_at_ms = self.varint("joined_at")?;
        let incarnation = self.u32("incarnation")?;
        let state_byte = self.u8("state")?;
        let has_accuser = state_byte & HAS_ACCUSER != 0;
        let state = State::from_code(state_byte & !HAS_ACCUSER)
            .filter(|_| allow_accuser || !has_accuser)
            .ok_or(DecodeError::InvalidState(state_byte))?;
        let accuser = if has_accuser {
            Some(self.name("accuser")?)
        } else {
            None
        };
        let count = self.varint("metadata count")?;
        if count > WIRE_META_ENTRIES as u64 {
            return Err(DecodeError::TooLarge {
                what: "metadata count",
                len: count,
                max: WIRE_META_ENTRIES as u64,
            });
        }
        let mut entries: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(count as usize);
        let mut meta_bytes = 0;
        let mut wire_version = OLDEST_VERSION;
        let mut last_key: Option<&str> = None;
        for _ in 0..count {
            let key = self.str("metadata key", WIRE_META_BYTES)?;
            let value = self.str("metadata value", WIRE_META_BYTES)?;
            meta_bytes += key.len() + value.len();
            if meta_bytes > WIRE_META_BYTES {
                return Err(DecodeError::TooLarge {
                    what: "metadata",
                    len: meta_bytes as u64,
                    max: WIRE_META_BYTES as u64,
                });
            }
            if last_key.is_some_and(|last| last >= key) {
                return Err(DecodeError::UnsortedMeta);
            }
            last_key = Some(key);
            if key == WIRE_VERSION_KEY {
                // A version this build does not know yet still means "at least the newest I speak".
                wire_version = value.parse::<u8>().unwrap_or(VERSION).max(OLDEST_VERSION);
            } else {
                entries.push((key.into(), value.into()));
            }
        }
        let identity = Identity::from_wire(
            name,
            addr,
            joined_at_ms,
            Meta::from_sorted_unchecked(entries),
            wire_version,
        )?;
        Ok((Member::new(Arc::new(identity), incarnation, state), accuser))
    }

    fn members(&mut self) -> Result<Vec<Member>, DecodeError> {
        let count = self.varint("member count")?;
        let max = MAX_SYNC_MEMBERS.min(self.bytes.len() / MIN_MEMBER_LEN) as u64;
        if count > max {
            return Err(DecodeError::TooLarge {
                what: "member count",
                len: count,
                max,
            });
        }
        (0..count)
            .map(|_| self.member(false).map(|(m, _)| m))
            .collect()
    }

    fn message(&mut self) -> Result<Message, DecodeError> {
        let tag = self.u8("message tag")?;
        Ok(match tag {
            TAG_PING => Message::Ping {
                seq: self.u32("sequence number")?,
                target: self.name("ping target")?,
                round_clock: None,
            },
            TAG_PING_AT if self.version >= 2 => Message::Ping {
                seq: self.u32("sequence number")?,
                target: self.name("ping target")?,
                round_clock: Some(self.u32("round clock")?),
            },
            TAG_ACK => Message::Ack {
                seq: self.u32("sequence number")?,
                round_clock: None,
            },
            TAG_NACK => Message::Nack {
                seq: self.u32("sequence number")?,
            },
            TAG_PING_REQ => Message::PingReq {
                seq: self.u32("sequence number")?,
                target: self.name("ping-req target")?,
                addr: self.addr()?,
            },
            TAG_UPDATE => {
                let (member, accuser) = self.member(true)?;
                Message::Update(Update { member, accuser })
            }
            TAG_SYNC_REQUEST => {
                let digest = self.digest()?;
                let join = match self.u8("join flag")? {
                    0 => false,
                    1 => true,
                    other => return Err(DecodeError::InvalidState(other)),
                };
                Message::SyncRequest {
                    digest,
                    join,
                    members: self.members()?,
                }
            }
            TAG_SYNC_RESPONSE => Message::SyncResponse {
                digest: self.digest()?,
                members: self.members()?,
            },
            TAG_SYNC_PUSH => Message::SyncPush {
                members: self.members()?,
            },
            TAG_ACK_AT if self.version >= 2 => Message::Ack {
                seq: self.u32("sequence number")?,
                round_clock: Some(self.u32("round clock")?),
            },
            TAG_CONFLICT if self.version >= 2 => Message::Conflict {
                holder: self.member(false)?.0,
                claimant: self.member(false)?.0,
            },
            TAG_USER_EVENT if self.version >= 3 => Message::UserEvent(self.user_event()?),
            TAG_QUERY if self.version >= 3 => Message::Query(self.query()?),
            TAG_QUERY_ANSWER if self.version >= 3 => Message::QueryAnswer(QueryAnswer {
                id: self.u32("query id")?,
                ltime: self.varint("query time")?,
                payload: Arc::from(self.bytes("query answer", MAX_ANSWER_BYTES)?),
            }),
            TAG_CLOCKS if self.version >= 3 => Message::Clocks {
                event: self.varint("event clock")?,
                query: self.varint("query clock")?,
            },
            other => return Err(DecodeError::UnknownMessage(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(name: &str, port: u16, inc: u32, state: State, meta: Meta) -> Member {
        let addr = SocketAddr::from(([10, 0, 0, 1], port));
        Member::new(
            Arc::new(Identity::new(name, addr, 1_764_000_000_000, meta).unwrap()),
            inc,
            state,
        )
    }

    #[test]
    fn a_quiet_ping_and_ack_are_tiny() {
        let ping = encode_packet(
            "m1",
            &[Message::Ping {
                seq: 300,
                target: "m2".into(),
                round_clock: Some(1_234_567_890),
            }],
        );
        let ack = encode_packet(
            "m2",
            &[Message::Ack {
                seq: 300,
                round_clock: Some(1_234_567_890),
            }],
        );
        assert!(
            ping.len() + ack.len() <= 34,
            "ping {} + ack {} bytes",
            ping.len(),
            ack.len()
        );
    }

    #[test]
    fn decode_rejects_bad_headers() {
        assert_eq!(decode_packet(&[]), Err(DecodeError::Empty));
        assert_eq!(
            decode_packet(&[9, 1, b'a']),
            Err(DecodeError::UnsupportedVersion(9))
        );
        assert_eq!(
            decode_packet(&[VERSION, 1, b'a']),
            Err(DecodeError::NoMessage)
        );
        assert_eq!(
            decode_packet(&[0, 1, b'a']),
            Err(DecodeError::UnsupportedVersion(0))
        );
        assert_eq!(
            decode_packet(&[VERSION, 1, b'a', 99]),
            Err(DecodeError::UnknownMessage(99))
        );
    }

    #[test]
    fn a_huge_member_count_is_refused_before_allocating() {
        let mut buf = Vec::new();
        encode_header(&mut buf, VERSION, "a");
        buf.push(TAG_SYNC_PUSH);
        put_varint(&mut buf, u64::MAX >> 1);
        assert!(matches!(
            decode_packet(&buf),
            Err(DecodeError::TooLarge {
                what: "member count",
                ..
            })
        ));
    }

    #[test]
    fn overlong_varints_are_refused() {
        let mut buf = Vec::new();
        encode_header(&mut buf, VERSION, "a");
        buf.push(TAG_ACK);
        buf.extend_from_slice(&[0xff; 11]);
        assert_eq!(
            decode_packet(&buf),
            Err(DecodeError::BadVarint("sequence number"))
        );
    }

    fn arb_state() -> impl Strategy<Value = State> {
        prop_oneof![
            Just(State::Alive),
            Just(State::Suspect),
            Just(State::Failed),
            Just(State::Left)
        ]
    }

    fn arb_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        ]
    }

    fn arb_name() -> impl Strategy<Value = String> {
        "[a-z0-9.-]{1,20}|[\\p{L}]{1,8}"
    }

    prop_compose! {
        fn arb_member()(name in arb_name(), addr in arb_addr(), joined in any::<u64>(), inc in any::<u32>(),
                        state in arb_state(), meta in proptest::collection::btree_map("[a-z]{1,8}", "[ -~]{0,16}", 0..4))
                        -> Member {
            let meta = Meta::new(meta).unwrap();
            let id = Identity::new(name, addr, joined, meta).unwrap();
            let id = if joined % 2 == 0 { id } else { id.with_wire_version(OLDEST_VERSION) };
            Member::new(Arc::new(id), inc, state)
        }
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<u32>(), arb_name(), proptest::option::of(any::<u32>())).prop_map(
                |(seq, t, round_clock)| Message::Ping {
                    seq,
                    target: t.into(),
                    round_clock
                }
            ),
            (any::<u32>(), proptest::option::of(any::<u32>()))
                .prop_map(|(seq, round_clock)| Message::Ack { seq, round_clock }),
            any::<u32>().prop_map(|seq| Message::Nack { seq }),
            (any::<u32>(), arb_name(), arb_addr()).prop_map(|(seq, t, addr)| Message::PingReq {
                seq,
                target: t.into(),
                addr
            }),
            (arb_member(), proptest::option::of(arb_name())).prop_map(|(member, accuser)| {
                Message::Update(Update {
                    member,
                    accuser: accuser.map(Into::into),
                })
            }),
            (
                any::<u64>(),
                any::<bool>(),
                proptest::collection::vec(arb_member(), 0..5)
            )
                .prop_map(|(digest, join, members)| Message::SyncRequest {
                    digest,
                    join,
                    members
                }),
            (any::<u64>(), proptest::collection::vec(arb_member(), 0..5))
                .prop_map(|(digest, members)| Message::SyncResponse { digest, members }),
            proptest::collection::vec(arb_member(), 0..5)
                .prop_map(|members| Message::SyncPush { members }),
            (arb_member(), arb_member())
                .prop_map(|(holder, claimant)| Message::Conflict { holder, claimant }),
            (
                any::<u64>(),
                arb_name(),
                proptest::collection::vec(any::<u8>(), 0..64),
                arb_name()
            )
                .prop_map(|(ltime, name, payload, origin)| Message::UserEvent(
                    UserEvent {
                        ltime,
                        name: name.into(),
                        payload: payload.into(),
                        origin: origin.into(),
                    }
                )),
            arb_query().prop_map(Message::Query),
            (
                any::<u32>(),
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(id, ltime, payload)| Message::QueryAnswer(QueryAnswer {
                    id,
                    ltime,
                    payload: payload.into(),
                })),
            (any::<u64>(), any::<u64>())
                .prop_map(|(event, query)| Message::Clocks { event, query }),
        ]
    }

    prop_compose! {
        fn arb_query()(id in any::<u32>(), ltime in any::<u64>(), origin in arb_name(), addr in arb_addr(),
                       timeout_ms in 0..=MAX_QUERY_TIMEOUT.as_millis() as u64,
                       nodes in proptest::collection::vec(arb_name(), 0..3),
                       tags in proptest::collection::vec(("[a-z]{1,8}", "[ -~]{0,8}"), 0..3),
                       name in arb_name(), payload in proptest::collection::vec(any::<u8>(), 0..64)) -> Query {
            Query {
                id,
                ltime,
                origin: origin.into(),
                origin_addr: addr,
                timeout: std::time::Duration::from_millis(timeout_ms),
                filter: QueryFilter {
                    nodes: nodes.into_iter().map(Into::into).collect(),
                    tags: tags.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
                },
                name: name.into(),
                payload: payload.into(),
            }
        }
    }

    prop_compose! {
        fn arb_packet()(sender in arb_name(), messages in proptest::collection::vec(arb_message(), 1..6)) -> Packet {
            Packet { version: VERSION, sender: sender.into(), messages }
        }
    }

    proptest! {
        #[test]
        fn packets_round_trip(packet in arb_packet()) {
            let bytes = encode_packet(&packet.sender, &packet.messages);
            prop_assert_eq!(decode_packet(&bytes).unwrap(), packet);
        }

        #[test]
        fn every_truncation_is_a_typed_error(packet in arb_packet()) {
            let bytes = encode_packet(&packet.sender, &packet.messages);
            // A truncation at a message boundary is itself a valid, shorter packet; any other cut must fail.
            for len in 0..bytes.len() {
                if let Ok(shorter) = decode_packet(&bytes[..len]) {
                    prop_assert!(shorter.messages.len() < packet.messages.len());
                    prop_assert_eq!(&shorter.messages[..], &packet.messages[..shorter.messages.len()]);
                }
            }
        }

        #[test]
        fn corrupted_packets_never_panic(packet in arb_packet(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = encode_packet(&packet.sender, &packet.messages);
            for (at, value) in flips {
                let i = at % bytes.len();
                bytes[i] = value;
            }
            let _ = decode_packet(&bytes);
        }

        #[test]
        fn the_version_before_is_spoken_without_what_it_lacks(packet in arb_packet()) {
            let old: Vec<Message> = packet
                .messages
                .iter()
                .filter(|m| m.since_version() <= OLDEST_VERSION)
                .cloned()
                .collect();
            let bytes = encode_packet_at(OLDEST_VERSION, &packet.sender, &packet.messages);
            match decode_packet_upto(&bytes, OLDEST_VERSION) {
                Ok(decoded) => {
                    prop_assert_eq!(decoded.version, OLDEST_VERSION);
                    prop_assert_eq!(decoded.messages, old);
                }
                Err(DecodeError::NoMessage) => prop_assert!(old.is_empty()),
                Err(e) => prop_assert!(false, "{}", e),
            }
            // A build of the version before refuses the newest, as it always did.
            let new = encode_packet(&packet.sender, &packet.messages);
            prop_assert_eq!(
                decode_packet_upto(&new, OLDEST_VERSION),
                Err(DecodeError::UnsupportedVersion(VERSION))
            );
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_packet(&bytes);
        }
    }

    #[test]
    fn events_are_refused_in_a_version_that_lacks_them_and_past_their_size() {
        let event = Message::UserEvent(UserEvent {
            ltime: 7,
            name: "deploy".into(),
            payload: Arc::from(&b"v1.2"[..]),
            origin: "m1".into(),
        });
        let mut buf = Vec::new();
        encode_header(&mut buf, 2, "m1");
        encode_message(&mut buf, &event);
        assert_eq!(
            decode_packet(&buf),
            Err(DecodeError::UnknownMessage(TAG_USER_EVENT))
        );
        // Encoded for version 2, the event is left out; the same packet in version 3 carries it.
        assert_eq!(
            encode_packet_at(2, "m1", std::slice::from_ref(&event)).len(),
            4
        );
        let bytes = encode_packet("m1", std::slice::from_ref(&event));
        assert_eq!(decode_packet(&bytes).unwrap().messages, vec![event]);
        assert_eq!(
            decode_packet_upto(&bytes, 2),
            Err(DecodeError::UnsupportedVersion(3))
        );
        let oversized = Message::UserEvent(UserEvent {
            ltime: 7,
            name: "deploy".into(),
            payload: Arc::from(vec![b'x'; MAX_EVENT_BYTES].as_slice()),
            origin: "m1".into(),
        });
        let bytes = encode_packet("m1", &[oversized]);
        assert!(matches!(
            decode_packet(&bytes),
            Err(DecodeError::InvalidEvent(EventError::TooLarge {
                len: 518,
                ..
            }))
        ));
    }

    #[test]
    fn updates_carry_metadata_and_accusers() {
        let meta = Meta::new([("dc", "eu-1"), ("role", "db")]).unwrap();
        let update = Update {
            member: member("m3", 7946, 4, State::Suspect, meta),
            accuser: Some("m1".into()),
        };
        let bytes = encode_packet("m1", &[Message::Update(update.clone())]);
        assert_eq!(
            decode_packet(&bytes).unwrap().messages,
            vec![Message::Update(update.clone())]
        );
        assert_eq!(
            update_len(&update),
            bytes.len() - 4,
            "the header of sender m1 is 4 bytes"
        );
    }
}
