//! The web dashboard: `/`, one agent's list with its live events, and `/fleet`, the view for a large cluster
//! (counts over time, a virtualised member table, a member's history, the agent's own health). Each is an HTML
//! page, a stylesheet and a script, with a shared icon and a shared script of helpers, all compiled into the
//! binary with `include_str!`, so an installed agent needs no asset files and the pages fetch nothing from
//! anywhere but this agent.
//!
//! The pages read the public API (`/v1/self`, `/v1/members`, `/v1/events`, `/v1/fleet`, `/v1/fleet/history`,
//! `/v1/members/{name}/history`) and own no state on the server side. Its one action, leave, goes through the same door as the CLI's: a same-origin request with the
//! operator's token, which the operator gives the page (see `control`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::driver::Shared;

const INDEX: &str = include_str!("../assets/dashboard.html");
const STYLE: &str = include_str!("../assets/dashboard.css");
const SCRIPT: &str = include_str!("../assets/dashboard.js");
const ICON: &str = include_str!("../assets/favicon.svg");
const COMMON_SCRIPT: &str = include_str!("../assets/common.js");
const FLEET: &str = include_str!("../assets/fleet.html");
const FLEET_STYLE: &str = include_str!("../assets/fleet.css");
const FLEET_SCRIPT: &str = include_str!("../assets/fleet.js");

/// Only this agent may serve scripts, styles, images and data to the page: a member name that slipped markup
/// past the page's escaping still could not load or send anything elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(index))
        .route(
            "/assets/dashboard.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route(
            "/assets/dashboard.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route("/assets/favicon.svg", get(|| asset("image/svg+xml", ICON)))
        .route(
            "/assets/common.js",
            get(|| asset("text/javascript; charset=utf-8", COMMON_SCRIPT)),
        )
        .route("/fleet", get(|| page(FLEET.to_owned())))
        .route(
            "/assets/fleet.css",
            get(|| asset("text/css; charset=utf-8", FLEET_STYLE)),
        )
        .route(
            "/assets/fleet.js",
            get(|| asset("text/javascript; charset=utf-8", FLEET_SCRIPT)),
        )
}

async fn index(State(shared): State<Arc<Shared>>) -> Response {
    // The health scale is configuration; the page needs its top to draw the meter.
    let health_max = shared.lock().node.config().awareness_max;
    page(INDEX.replace("__HEALTH_MAX__", &health_max.to_string())).await
}

async fn page(page: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // An upgraded agent serves new assets under the same names; revalidating is cheap on localhost.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for needle in ["http://", "https://", "//cdn", "@import"] {
            for (file, text) in [
                ("html", INDEX),
                ("css", STYLE),
                ("js", SCRIPT),
                ("fleet.html", FLEET),
                ("fleet.css", FLEET_STYLE),
                ("fleet.js", FLEET_SCRIPT),
            ] {
                let hits: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains(needle) && !l.contains("www.w3.org/2000/svg"))
                    .collect();
                assert!(
                    hits.is_empty(),
                    "dashboard.{file} refers to {needle}: {hits:?}"
                );
            }
        }
        for asset in [
            "/assets/dashboard.css",
            "/assets/dashboard.js",
            "/assets/favicon.svg",
        ] {
            assert!(INDEX.contains(asset), "the page does not load {asset}");
        }
        for asset in ["/assets/fleet.css", "/assets/fleet.js"] {
            assert!(
                FLEET.contains(asset),
                "the fleet page does not load {asset}"
            );
        }
        assert!(
            INDEX.contains("href=\"/fleet\""),
            "the dashboard does not link the fleet view"
        );
        assert!(INDEX.contains("__HEALTH_MAX__"));
    }
}
