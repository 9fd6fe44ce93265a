//! User events and queries on the agent's side: the requests the driver carries out on the core, the streams
//! of answers it hands back to whoever asked, and the HTTP routes (`POST /v1/event`, `POST /v1/query`) the
//! CLI uses.
//!
//! A query's answers are streamed as they arrive, as NDJSON: one line naming the query and the members
//! expected to answer, one line per answer, and a last line with who answered and who did not.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use roster_core::{Event, EventError, QueryFilter, QueryId};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Command, Shared};
use crate::event_rate::{EVENT_BURST, EVENTS_PER_SECOND, EventRate};

/// Answers buffered per open query before the slowest reader starts missing them: more than any cluster's
/// answers arrive at once, and bounded.
const ANSWERS_BUFFERED: usize = 1024;

/// What the driver is asked to do about events and queries.
#[derive(Debug)]
pub(crate) enum EventCommand {
    /// Send a user event; answer with its time on the event clock.
    Send {
        name: String,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<u64, SendRefused>>,
    },
    /// Send a query; answer with the stream of its answers.
    Query {
        name: String,
        payload: Vec<u8>,
        filter: QueryFilter,
        timeout: Duration,
        reply: oneshot::Sender<Result<QueryStream, EventError>>,
    },
    /// Answer a query heard from a member (from an event handler, or the embedding program).
    Answer {
        id: QueryId,
        payload: Vec<u8>,
        reply: Option<oneshot::Sender<Result<(), EventError>>>,
    },
}

/// What arrives for a query this agent sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryUpdate {
    /// One member's answer.
    Answer {
        /// The member.
        from: String,
        /// Its answer (in the HTTP API's NDJSON, as text, lossy for bytes that are not UTF-8).
        #[serde(serialize_with = "as_text")]
        payload: Vec<u8>,
    },
    /// The deadline passed: who answered, and which of the members expected did not.
    Done {
        /// Members that answered.
        answered: Vec<String>,
        /// Members that matched and were alive when the query was sent, and did not answer.
        missing: Vec<String>,
    },
}

fn as_text<S: serde::Serializer>(payload: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(payload))
}

/// The answers to a query this agent sent, as they arrive; ends after [`QueryUpdate::Done`].
#[derive(Debug)]
pub struct QueryStream {
    /// The query.
    pub id: QueryId,
    /// Members that matched its filter and were alive when it was sent.
    pub expected: Vec<String>,
    rx: mpsc::Receiver<QueryUpdate>,
}

impl QueryStream {
    /// The next answer, or the end; `None` once the query is done (or the agent stopped).
    pub async fn next(&mut self) -> Option<QueryUpdate> {
        self.rx.recv().await
    }
}

/// Why a user event was not sent.
#[derive(Debug)]
pub(crate) enum SendRefused {
    /// The core refused it: its name, its size, or this member takes no part.
    Event(EventError),
    /// This agent sent too many too fast; a token is free after this long.
    TooFast(Duration),
}

/// The driver's side: which query's answers go to which stream, and how fast events may go out.
#[derive(Debug, Default)]
pub(crate) struct OpenQueries {
    streams: HashMap<QueryId, mpsc::Sender<QueryUpdate>>,
    rate: EventRate,
}

impl OpenQueries {
    /// Carries out `command` on the core (the driver holds its lock).
    pub(crate) fn run(
        &mut self,
        node: &mut roster_core::Node<rand::rngs::SmallRng>,
        now: roster_core::Time,
        command: EventCommand,
    ) {
        match command {
            EventCommand::Send {
                name,
                payload,
                reply,
            } => {
                let sent = match self.rate.take(now) {
                    Ok(()) => node
                        .send_user_event(now, &name, &payload)
                        .map_err(SendRefused::Event),
                    Err(wait) => Err(SendRefused::TooFast(wait)),
                };
                let _ = reply.send(sent);
            }
            EventCommand::Query {
                name,
                payload,
                filter,
                timeout,
                reply,
            } => {
                let started = node.send_query(now, &name, &payload, filter, timeout);
                let _ = reply.send(started.map(|started| {
                    let (tx, rx) = mpsc::channel(ANSWERS_BUFFERED);
                    self.streams.insert(started.id.clone(), tx);
                    QueryStream {
                        id: started.id,
                        expected: started.expected.iter().map(|n| n.to_string()).collect(),
                        rx,
                    }
                }));
            }
            EventCommand::Answer { id, payload, reply } => {
                let answered = node.answer_query(now, &id, &payload);
                match reply {
                    Some(reply) => {
                        let _ = reply.send(answered);
                    }
                    None => {
                        if let Err(e) = answered {
                            tracing::debug!(query = %id, error = %e, "query answer not sent");
                        }
                    }
                }
            }
        }
    }

    /// Hands an answer or the end of a query to its stream; other events are not this module's.
    pub(crate) fn route(&mut self, event: &Event) {
        let (id, update) = match event {
            Event::QueryAnswer {
                query,
                from,
                payload,
            } => (
                query,
                QueryUpdate::Answer {
                    from: from.to_string(),
                    payload: payload.to_vec(),
                },
            ),
            Event::QueryDone {
                query,
                answered,
                missing,
            } => (
                query,
                QueryUpdate::Done {
                    answered: answered.iter().map(|n| n.to_string()).collect(),
                    missing: missing.iter().map(|n| n.to_string()).collect(),
                },
            ),
            _ => return,
        };
        let done = matches!(update, QueryUpdate::Done { .. });
        if let Some(tx) = self.streams.get(id)
            && tx.try_send(update).is_err()
            && !tx.is_closed()
        {
            tracing::warn!(query = %id, "a query's reader fell behind; an answer was dropped");
        }
        if done {
            self.streams.remove(id);
        }
    }
}

/// Sends `command` to the driver and waits for its answer.
pub(crate) async fn ask<T>(
    shared: &Shared,
    command: impl FnOnce(oneshot::Sender<T>) -> EventCommand,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    shared
        .commands
        .send(Command::Events(command(tx)))
        .await
        .ok()?;
    rx.await.ok()
}

/// The routes, all acting: only the operator may send events and queries.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/event", post(send_event))
        .route("/v1/query", post(send_query))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    name: String,
    #[serde(default)]
    payload: String,
}

#[derive(Serialize)]
struct EventReply {
    ltime: u64,
}

fn bad_request(e: &EventError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": e.to_string() })),
    )
        .into_response()
}

/// What a sender that is too fast is told.
pub(crate) fn too_fast(wait: Duration) -> String {
    format!(
        "too many user events: an agent sends at most {EVENTS_PER_SECOND} a second, in bursts of up to \
         {EVENT_BURST}; the next can go in {} ms",
        wait.as_millis()
    )
}

fn stopping() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "agent is stopping").into_response()
}

async fn send_event(State(shared): State<Arc<Shared>>, Json(body): Json<EventBody>) -> Response {
    let sent = ask(&shared, |reply| EventCommand::Send {
        name: body.name,
        payload: body.payload.into_bytes(),
        reply,
    })
    .await;
    match sent {
        Some(Ok(ltime)) => Json(EventReply { ltime }).into_response(),
        Some(Err(SendRefused::Event(e))) => bad_request(&e),
        Some(Err(SendRefused::TooFast(wait))) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())],
            Json(serde_json::json!({ "error": too_fast(wait) })),
        )
            .into_response(),
        None => stopping(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    name: String,
    #[serde(default)]
    payload: String,
    /// Member names the query is for; any when empty.
    #[serde(default)]
    nodes: Vec<String>,
    /// Metadata entries a member must have, as KEY=VALUE.
    #[serde(default)]
    tags: Vec<String>,
    /// How long answers are awaited.
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5_000
}

/// The first line of a query's stream.
#[derive(Serialize)]
struct Started<'a> {
    query: String,
    expected: &'a [String],
}

async fn send_query(State(shared): State<Arc<Shared>>, Json(body): Json<QueryBody>) -> Response {
    let mut filter = QueryFilter {
        nodes: body.nodes.iter().map(|n| Arc::from(n.as_str())).collect(),
        tags: Vec::new(),
    };
    for tag in &body.tags {
        let Some((key, value)) = tag.split_once('=') else {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": format!("tag {tag:?} is not KEY=VALUE") })),
            )
                .into_response();
        };
        filter.tags.push((Arc::from(key), Arc::from(value)));
    }
    let started = ask(&shared, |reply| EventCommand::Query {
        name: body.name,
        payload: body.payload.into_bytes(),
        filter,
        timeout: Duration::from_millis(body.timeout_ms),
        reply,
    })
    .await;
    let stream = match started {
        Some(Ok(stream)) => stream,
        Some(Err(e)) => return bad_request(&e),
        None => return stopping(),
    };
    let first = ndjson(&Started {
        query: stream.id.to_string(),
        expected: &stream.expected,
    });
    let lines =
        futures_util::stream::unfold((Some(first), stream), |(first, mut stream)| async move {
            let line = match first {
                Some(line) => line,
                None => ndjson(&stream.next().await?),
            };
            Some((Ok::<Bytes, Infallible>(line), (None, stream)))
        });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

fn ndjson(value: &impl Serialize) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}
