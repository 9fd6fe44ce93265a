//! The HTTP API (127.0.0.1 by default): the list, this node, health, leave, force-leave, tags, the live event
//! stream, the fleet view's data, and metrics.
//!
//! Routes come in two groups: [`reading`] routes, open to whoever reaches the listener, and [`acting`] routes,
//! which only the operator may call (see `control`). Every request passes [`control::protect`] as well, which
//! refuses foreign hosts and any request that is not a GET or HEAD without the operator's credentials, so a
//! route added to either group cannot be acted on from a web page by mistake.
//!
//! Handlers only read the core's list under its lock, or ask the driver to act; they never call into the
//! protocol themselves.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use roster_core::ForceLeft;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};

use crate::api::{MemberInfo, SelfInfo};
use crate::control;
use crate::driver::{Command, Shared};
use crate::keys::{self, KeyOp, KeyStepError};
use crate::metrics::AgentMetrics;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(reading())
        .merge(crate::dashboard::router())
        .merge(acting(shared.clone()))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            control::protect,
        ))
        .with_state(shared)
}

/// The listener of its own for `/metrics` alone, for a scraper on the network.
pub(crate) fn metrics_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(shared)
}

/// What anyone who reaches the listener may read.
fn reading() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/members", get(members))
        .route("/v1/self", get(local))
        .route("/v1/health", get(crate::health::endpoint))
        .route("/v1/events", get(events))
        .route("/v1/fleet", get(crate::fleet::fleet))
        .route("/v1/fleet/history", get(crate::fleet::history))
        .route(
            "/v1/members/{name}/history",
            get(crate::fleet::member_history),
        )
        .route("/metrics", get(metrics))
}

/// What only the operator may do (or see: the keyring's keys).
fn acting(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/leave", post(leave))
        .route("/v1/force-leave", post(force_leave))
        .route("/v1/keys", get(list_keys))
        .route("/v1/keys/install", post(install_key))
        .route("/v1/keys/use", post(use_key))
        .route("/v1/keys/remove", post(remove_key))
        .merge(crate::user_events::routes())
        .merge(crate::tags::routes())
        .route_layer(middleware::from_fn_with_state(
            shared,
            control::require_operator,
        ))
}

async fn members(State(shared): State<Arc<Shared>>) -> Json<Vec<MemberInfo>> {
    let state = shared.lock();
    Json(
        state
            .node
            .members()
            .map(|m| MemberInfo::from(&state.member(m)))
            .collect(),
    )
}

async fn local(State(shared): State<Arc<Shared>>) -> Json<SelfInfo> {
    Json(SelfInfo::read(&shared, &shared.lock()))
}

#[derive(Serialize)]
struct LeaveReply {
    left: bool,
    /// Whether the news had gone out before the leave deadline.
    announced: bool,
}

async fn leave(State(shared): State<Arc<Shared>>) -> Response {
    let (tx, rx) = oneshot::channel();
    if shared.commands.send(Command::Leave(tx)).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "agent is stopping").into_response();
    }
    // The driver answers within its own leave deadline; this bound only guards against a driver that died.
    match tokio::time::timeout(Duration::from_secs(60), rx).await {
        Ok(Ok(announced)) => Json(LeaveReply {
            left: true,
            announced,
        })
        .into_response(),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "agent stopped before it finished leaving",
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceLeaveBody {
    name: String,
}

#[derive(Serialize)]
struct ForceLeaveReply {
    name: String,
    /// `left`, or `already-left` when it had left before.
    outcome: &'static str,
}

async fn force_leave(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<ForceLeaveBody>,
) -> Response {
    let (tx, rx) = oneshot::channel();
    let name = body.name;
    if shared
        .commands
        .send(Command::ForceLeave(name.clone(), tx))
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "agent is stopping").into_response();
    }
    match rx.await {
        Ok(Ok(forced)) => Json(ForceLeaveReply {
            name,
            outcome: match forced {
                ForceLeft::Marked => "left",
                ForceLeft::AlreadyLeft => "already-left",
            },
        })
        .into_response(),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "agent is stopping").into_response(),
    }
}

async fn events(
    State(shared): State<Arc<Shared>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = shared.events.subscribe();
    let stopped = shared.stopped.clone();
    let stream = stream::unfold((rx, stopped), |(mut rx, mut stopped)| async move {
        loop {
            if *stopped.borrow() {
                return None;
            }
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(event) => {
                        let sse = SseEvent::default().data(&*event.line);
                        return Some((Ok(sse), (rx, stopped)));
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        // A slow reader misses lines rather than growing the agent's memory; it is told how many.
                        let sse = SseEvent::default().event("lagged").data(missed.to_string());
                        return Some((Ok(sse), (rx, stopped)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                changed = stopped.changed() => if changed.is_err() { return None },
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let body = AgentMetrics::new(&shared).render();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct KeyBody {
    key: String,
}

async fn list_keys(State(shared): State<Arc<Shared>>) -> Response {
    rotate(&shared, KeyOp::List).await
}

async fn install_key(State(shared): State<Arc<Shared>>, Json(body): Json<KeyBody>) -> Response {
    rotate(&shared, KeyOp::Install { key: body.key }).await
}

async fn use_key(State(shared): State<Arc<Shared>>, Json(body): Json<KeyBody>) -> Response {
    rotate(&shared, KeyOp::Use { key: body.key }).await
}

async fn remove_key(State(shared): State<Arc<Shared>>, Json(body): Json<KeyBody>) -> Response {
    rotate(&shared, KeyOp::Remove { key: body.key }).await
}

/// Runs a rotation step across the cluster. A step this agent refuses (removing the primary, a malformed key,
/// no encryption) changes nothing anywhere and is a 400 with the reason.
async fn rotate(shared: &Arc<Shared>, op: KeyOp) -> Response {
    match keys::rotate(shared, op).await {
        Ok(report) => Json(report).into_response(),
        Err(e @ (KeyStepError::NotEncrypted | KeyStepError::Refused(_))) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}
