//! The event log's line format: one JSON object per line in `<data-dir>/events.jsonl`, for every change to a
//! list, every failure notice passed on, and every name conflict.
//!
//! The agent writes it, the simulator writes it for simulated runs, and `roster trace` reads both; this crate
//! is the one definition they share. It owns the line ([`encode`] from a core [`Event`](roster_core::Event),
//! [`Record`] back from text), the file ([`EventLog`], append-only with size-based rotation) and finding the
//! logs of a cluster on disk ([`read_logs`]). It never opens a socket and never reads a clock: times come in.
//!
//! ```
//! use roster_eventlog::{Kind, Record};
//!
//! let line = r#"{"time":"2026-11-29T21:14:31.123Z","node":"m1","event":"failed","member":"m4","addr":"10.0.0.4:7946","joined_at":"2026-11-29T21:02:10.004Z","incarnation":3,"via":"gossip","from":"m2"}"#;
//! let record = Record::parse(line).expect("a log line");
//! assert_eq!(record.kind, Kind::Failed);
//! assert_eq!(record.from.as_deref(), Some("m2"));
//! assert_eq!(record.time_ms, 1_795_986_871_123);
//! ```

#![deny(missing_docs)]

mod file;
mod line;
mod read;
mod record;
mod timestamp;

pub use file::EventLog;
pub use line::encode;
pub use read::{LOG_FILE, ReadError, log_files, read_file, read_logs};
pub use record::{Kind, ParseError, Record, UserFields};
pub use timestamp::{parse_rfc3339_ms, rfc3339};
