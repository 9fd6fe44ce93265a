//! Queries: sending one and collecting its answers, and hearing, passing on and answering those of others.
//! See `query` for what travels and its bounds.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::{Node, Sender};
use crate::event::Event;
use crate::member::State;
use crate::message::Message;
use crate::query::{
    self, MAX_ANSWERABLE, MAX_OPEN_QUERIES, MAX_QUERY_TIMEOUT, Query, QueryAnswer, QueryFilter,
    QueryId,
};
use crate::time::Time;
use crate::user_event::{self, EventError, Verdict};

/// A query this node sent, awaiting answers until its deadline.
#[derive(Debug)]
pub(super) struct OpenQuery {
    id: QueryId,
    ltime: u64,
    deadline: Time,
    /// Members that matched the filter and were alive when it was sent.
    expected: Vec<Arc<str>>,
    answered: Vec<Arc<str>>,
}

/// A query heard from a member, that this node may answer once before its deadline.
#[derive(Debug)]
pub(super) struct Answerable {
    id: QueryId,
    ltime: u64,
    deadline: Time,
    answered: bool,
    origin_addr: std::net::SocketAddr,
}

/// What [`Node::send_query`] started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryStarted {
    /// The query, as its answers and its end are reported.
    pub id: QueryId,
    /// When it stops taking answers ([`Event::QueryDone`] is reported then).
    pub deadline: Time,
    /// Members that matched its filter and were alive when it was sent: those expected to answer.
    pub expected: Vec<Arc<str>>,
}

/// The queries of a node: those it sent, and those it may answer.
#[derive(Debug, Default)]
pub(super) struct Queries {
    open: Vec<OpenQuery>,
    answerable: VecDeque<Answerable>,
}

impl Queries {
    /// When the next open query reaches its deadline.
    pub(super) fn next_deadline(&self) -> Option<Time> {
        self.open.iter().map(|q| q.deadline).min()
    }
}

impl<R: Rng> Node<R> {
    /// Sends a query to the members `filter` matches (this one included), each of which may answer once
    /// within `timeout`. Answers are reported as [`Event::QueryAnswer`], and the end as [`Event::QueryDone`].
    /// Refused when the query is over its bounds ([`query::MAX_QUERY_BYTES`], [`MAX_QUERY_TIMEOUT`]), when
    /// [`MAX_OPEN_QUERIES`] are already open, or while this node takes no part.
    pub fn send_query(
        &mut self,
        now: Time,
        name: &str,
        payload: &[u8],
        filter: QueryFilter,
        timeout: Duration,
    ) -> Result<QueryStarted, EventError> {
        self.start(now);
        user_event::check_name(name)?;
        query::check_query(name, payload, &filter)?;
        if timeout.is_zero() || timeout > MAX_QUERY_TIMEOUT {
            return Err(EventError::BadTimeout {
                timeout,
                max: MAX_QUERY_TIMEOUT,
            });
        }
        if !self.participating() {
            return Err(EventError::NotParticipating);
        }
        if self.queries.open.len() >= MAX_OPEN_QUERIES {
            return Err(EventError::TooManyQueries {
                open: self.queries.open.len(),
            });
        }
        let query = Query {
            id: self.rng.random(),
            ltime: 0,
            origin: Arc::clone(&self.name),
            origin_addr: self.list.local().identity.addr(),
            timeout,
            filter,
            name: Arc::from(name),
            payload: Arc::from(payload),
        };
        let query = Query {
            ltime: self.queries_heard.send(query.key()),
            ..query
        };
        let id = QueryId {
            origin: Arc::clone(&self.name),
            id: query.id,
        };
        let expected: Vec<Arc<str>> = self
            .list
            .iter()
            .filter(|m| m.state == State::Alive && query.filter.matches(&m.identity))
            .map(|m| Arc::from(m.name()))
            .collect();
        let deadline = now + timeout;
        self.queries.open.push(OpenQuery {
            id: id.clone(),
            ltime: query.ltime,
            deadline,
            expected: expected.clone(),
            answered: Vec::new(),
        });
        self.offer_query(now, &query);
        self.pass_on(&Message::Query(query));
        self.next_gossip = self.next_gossip.min(now);
        Ok(QueryStarted {
            id,
            deadline,
            expected,
        })
    }

    /// Answers a query reported in [`Event::Query`], once, before its deadline. The answer goes straight to
    /// the origin in one datagram, so it is bounded by [`query::MAX_ANSWER_BYTES`].
    pub fn answer_query(
        &mut self,
        now: Time,
        id: &QueryId,
        payload: &[u8],
    ) -> Result<(), EventError> {
        self.start(now);
        query::check_answer(payload)?;
        let Some(at) = self
            .queries
            .answerable
            .iter()
            .position(|q| q.id == *id && now <= q.deadline)
        else {
            return Err(EventError::NoSuchQuery(id.to_string()));
        };
        let entry = &mut self.queries.answerable[at];
        if entry.answered {
            return Err(EventError::AlreadyAnswered(id.to_string()));
        }
        entry.answered = true;
        let (ltime, origin_addr) = (entry.ltime, entry.origin_addr);
        let payload: Arc<[u8]> = Arc::from(payload);
        if *id.origin == *self.name {
            let me = Arc::clone(&self.name);
            self.take_answer(id.id, ltime, me, payload);
            return Ok(());
        }
        let receiver = self.list.get(&id.origin).map(|m| Arc::clone(&m.identity));
        let answer = Message::QueryAnswer(QueryAnswer {
            id: id.id,
            ltime,
            payload,
        });
        self.send(origin_addr, receiver, &[answer], None);
        Ok(())
    }

    /// A query arrived in gossip: passed on if it is new, and reported if this node matches it.
    pub(super) fn hear_query(&mut self, now: Time, query: Query) {
        if self.standby || self.queries_heard.hear(query.ltime, query.key()) != Verdict::New {
            return;
        }
        self.offer_query(now, &query);
        self.pass_on(&Message::Query(query));
    }

    /// Reports `query` if this node matches it and may answer: answers go only to a member this list holds
    /// live at the address the query names, so a forged query cannot aim the cluster's answers at anyone.
    fn offer_query(&mut self, now: Time, query: &Query) {
        if !query.filter.matches(&self.list.local().identity) {
            return;
        }
        let origin_known = self
            .list
            .get(&query.origin)
            .is_some_and(|m| m.state.is_active() && m.identity.addr() == query.origin_addr);
        if !origin_known {
            return;
        }
        let id = QueryId {
            origin: Arc::clone(&query.origin),
            id: query.id,
        };
        let deadline = now + query.timeout;
        let answerable = &mut self.queries.answerable;
        while answerable.front().is_some_and(|q| q.deadline < now) {
            answerable.pop_front();
        }
        if answerable.len() >= MAX_ANSWERABLE {
            answerable.pop_front();
        }
        answerable.push_back(Answerable {
            id: id.clone(),
            ltime: query.ltime,
            deadline,
            answered: false,
            origin_addr: query.origin_addr,
        });
        self.events.push_back(Event::Query {
            query: id,
            ltime: query.ltime,
            name: Arc::clone(&query.name),
            payload: Arc::clone(&query.payload),
            deadline,
        });
    }

    /// An answer to one of this node's queries arrived.
    pub(super) fn hear_answer(&mut self, sender: &Sender, answer: QueryAnswer) {
        self.take_answer(
            answer.id,
            answer.ltime,
            Arc::clone(&sender.name),
            answer.payload,
        );
    }

    /// Records an answer from `from`, once per member per query; answers to queries not open are dropped.
    fn take_answer(&mut self, id: u32, ltime: u64, from: Arc<str>, payload: Arc<[u8]>) {
        let Some(open) = self
            .queries
            .open
            .iter_mut()
            .find(|q| q.id.id == id && q.ltime == ltime)
        else {
            return;
        };
        if open.answered.contains(&from) {
            return;
        }
        open.answered.push(Arc::clone(&from));
        let query = open.id.clone();
        self.events.push_back(Event::QueryAnswer {
            query,
            from,
            payload,
        });
    }

    /// Ends the queries past their deadline, reporting who answered and who did not.
    pub(super) fn close_queries(&mut self, now: Time) {
        let mut at = 0;
        while at < self.queries.open.len() {
            if self.queries.open[at].deadline > now {
                at += 1;
                continue;
            }
            let done = self.queries.open.remove(at);
            let missing = done
                .expected
                .into_iter()
                .filter(|name| !done.answered.contains(name))
                .collect();
            self.events.push_back(Event::QueryDone {
                query: done.id,
                answered: done.answered,
                missing,
            });
        }
    }
}
