//! `GET /v1/health`: whether this agent is a working member, for readiness probes and `roster health`.
//!
//! 200 only when the agent has joined (through a seed, or by starting a cluster of its own when nobody else
//! exists yet), is not on standby (another live process holds its name) and is not isolated (its own probes of more members than may crash at once failed in a row, so
//! the fault is most likely its own network). 503 otherwise, with the reason.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::driver::{CoreState, Shared};

/// The answer of `/v1/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, or what keeps the agent from being a working member: `joining`, `standby`, `isolated`, `leaving`.
    pub status: String,
    /// For a person: why, and what to look at.
    pub reason: String,
    /// Members alive or suspect, this one included.
    pub active_members: usize,
}

impl Health {
    /// Whether the agent is a working member (`status` is `ok`).
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    pub(crate) fn read(shared: &Shared, state: &CoreState) -> Health {
        let active_members = state.node.active_count();
        let (status, reason) = if shared.leaving.load(Ordering::Acquire) || *shared.stopped.borrow()
        {
            ("leaving", "the agent is leaving the cluster".to_owned())
        } else if state.node.is_standby() {
            (
                "standby",
                "another live process holds this member's name (a cloned machine?): this agent takes no part \
                 and takes the name once it is free; give it a name of its own with --name"
                    .to_owned(),
            )
        } else if !shared.joined.load(Ordering::Acquire) && active_members <= 1 {
            (
                "joining",
                format!(
                    "no seed has answered yet ({}); see the agent's log for each attempt",
                    shared.seeds_given
                ),
            )
        } else if state.node.is_isolated() {
            (
                "isolated",
                "this agent's probes of several members failed in a row: its own network is the likely fault \
                 (firewall, interface, routes)"
                    .to_owned(),
            )
        } else {
            ("ok", "joined".to_owned())
        };
        Health {
            status: status.to_owned(),
            reason,
            active_members,
        }
    }
}

pub(crate) async fn endpoint(State(shared): State<Arc<Shared>>) -> Response {
    let health = Health::read(&shared, &shared.lock());
    let status = if health.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}
