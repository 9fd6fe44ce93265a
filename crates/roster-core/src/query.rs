//! Queries: a request gossiped like a user event to the members its filter matches, whose answers come back
//! to the origin directly, one datagram each.
//!
//! A query carries an id, the origin's name and address, a timeout and a filter (member names, metadata
//! entries). Each member that hears it passes it on, and one that matches reports it to its driver, which may
//! answer once before the timeout (counted from when the member heard it). The origin takes one answer per
//! member and, at its own deadline, reports who answered and which of the members that matched when it sent
//! the query did not. The size of queries and answers, and the queries a node may have open at once, are
//! bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::member::Identity;
use crate::user_event::{EventError, hash_bytes};

/// Most bytes a query's name, payload and filter may take together.
pub const MAX_QUERY_BYTES: usize = 512;
/// Most bytes an answer's payload may take: with its header it fits one datagram.
pub const MAX_ANSWER_BYTES: usize = 1024;
/// Queries a node may have open at once; one more is refused until the oldest is done.
pub const MAX_OPEN_QUERIES: usize = 16;
/// Longest timeout a query may ask for.
pub const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Queries heard from others a node keeps answerable at once (the oldest is forgotten first).
pub const MAX_ANSWERABLE: usize = 64;
/// Most names and most metadata entries a filter may hold.
pub const MAX_FILTER_ENTRIES: usize = 16;

/// Names a query: the member that sent it and the id it drew.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId {
    /// The origin's name.
    pub origin: Arc<str>,
    /// The id the origin drew.
    pub id: u32,
}

impl std::fmt::Display for QueryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.origin, self.id)
    }
}

/// Which members a query is for: all of `nodes` (any, when empty) and all of `tags` (metadata entries that must
/// hold exactly these values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryFilter {
    /// Member names; empty for any.
    pub nodes: Vec<Arc<str>>,
    /// Metadata entries (key, value) a member must have.
    pub tags: Vec<(Arc<str>, Arc<str>)>,
}

impl QueryFilter {
    /// Whether `member` matches.
    pub fn matches(&self, member: &Identity) -> bool {
        (self.nodes.is_empty() || self.nodes.iter().any(|n| **n == *member.name()))
            && self
                .tags
                .iter()
                .all(|(key, value)| member.meta().get(key) == Some(&**value))
    }

    /// The bytes the filter's text takes.
    pub fn byte_len(&self) -> usize {
        self.nodes.iter().map(|n| n.len()).sum::<usize>()
            + self
                .tags
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// A query as it travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// Drawn by the origin; with the origin's name, it names the query.
    pub id: u32,
    /// The origin's query clock when it sent the query.
    pub ltime: u64,
    /// The member that asks.
    pub origin: Arc<str>,
    /// Where answers go.
    pub origin_addr: SocketAddr,
    /// How long answers are awaited, from when a member hears the query.
    pub timeout: Duration,
    /// Who is asked.
    pub filter: QueryFilter,
    /// What the query is called.
    pub name: Arc<str>,
    /// What it carries.
    pub payload: Arc<[u8]>,
}

impl Query {
    /// What tells this query apart from another at the same time.
    pub fn key(&self) -> u64 {
        hash_bytes(u64::from(self.id), self.origin.as_bytes())
    }
}

/// An answer, sent straight to the origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryAnswer {
    /// The query's id.
    pub id: u32,
    /// The query's time, which with the id names the query at its origin.
    pub ltime: u64,
    /// The answer.
    pub payload: Arc<[u8]>,
}

/// Checks that a query fits [`MAX_QUERY_BYTES`] and its filter [`MAX_FILTER_ENTRIES`].
pub fn check_query(name: &str, payload: &[u8], filter: &QueryFilter) -> Result<(), EventError> {
    EventError::check_len(
        "query filter's names",
        filter.nodes.len(),
        MAX_FILTER_ENTRIES,
    )?;
    EventError::check_len("query filter's tags", filter.tags.len(), MAX_FILTER_ENTRIES)?;
    EventError::check_len(
        "query name, payload and filter",
        name.len() + payload.len() + filter.byte_len(),
        MAX_QUERY_BYTES,
    )
}

/// Checks that an answer fits [`MAX_ANSWER_BYTES`].
pub fn check_answer(payload: &[u8]) -> Result<(), EventError> {
    EventError::check_len("query answer", payload.len(), MAX_ANSWER_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::Meta;

    fn member(name: &str, meta: &[(&str, &str)]) -> Identity {
        let meta = Meta::new(meta.iter().copied()).unwrap();
        Identity::new(name, "10.0.0.1:7946".parse().unwrap(), 1, meta).unwrap()
    }

    #[test]
    fn a_filter_needs_every_tag_and_one_of_the_names() {
        let db = member("db-1", &[("role", "db"), ("dc", "eu")]);
        let web = member("web-1", &[("role", "web"), ("dc", "eu")]);
        let any = QueryFilter::default();
        assert!(any.matches(&db) && any.matches(&web));
        let role_db = QueryFilter {
            tags: vec![("role".into(), "db".into())],
            ..Default::default()
        };
        assert!(role_db.matches(&db) && !role_db.matches(&web));
        let named = QueryFilter {
            nodes: vec!["web-1".into(), "web-2".into()],
            tags: vec![("dc".into(), "eu".into())],
        };
        assert!(!named.matches(&db) && named.matches(&web));
    }

    #[test]
    fn sizes_are_bounded() {
        let filter = QueryFilter::default();
        assert!(check_query("q", &[0; MAX_QUERY_BYTES - 1], &filter).is_ok());
        assert!(check_query("qq", &[0; MAX_QUERY_BYTES - 1], &filter).is_err());
        let crowded = QueryFilter {
            nodes: (0..=MAX_FILTER_ENTRIES)
                .map(|i| i.to_string().into())
                .collect(),
            ..Default::default()
        };
        assert!(check_query("q", b"", &crowded).is_err());
        assert!(check_answer(&[0; MAX_ANSWER_BYTES]).is_ok());
        assert_eq!(
            check_answer(&[0; MAX_ANSWER_BYTES + 1])
                .unwrap_err()
                .to_string(),
            "query answer is 1025 bytes, over the limit of 1024 bytes"
        );
    }
}
