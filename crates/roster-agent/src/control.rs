//! Who may act on the agent over HTTP. Reading (the list, health, metrics, the dashboard's page) is open to
//! whoever reaches the listener; acting (leave, key rotation, and any request that is not a GET or HEAD) needs
//! the operator's token, a JSON body, and no foreign `Origin`.
//!
//! The token is random, made afresh at every start and written to `<data-dir>/http-token` readable by the
//! agent's user alone (mode 0600), so only that user (or root) can act: the CLI reads the file, the dashboard
//! is given the token once by its operator. A web page on another origin can neither read the token nor send
//! a request that passes: a JSON body or an `Authorization` header needs a CORS preflight that this agent
//! never grants, and its `Origin` gives it away. A request whose `Host` is a DNS name other than `localhost` is
//! refused outright, so a page cannot rebind its own name to 127.0.0.1 and read the API as same-origin.
//!
//! `protect` is the one middleware every request passes; routes that act without being a write (listing the
//! keyring's secrets) are wrapped in `require_operator` too.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;

use crate::driver::Shared;
use crate::replace_file::{Readers, replace_file};

/// The token file's name in the data directory.
pub const TOKEN_FILE: &str = "http-token";

/// The operator's token for acting requests.
#[derive(Clone)]
pub struct OperatorToken {
    token: Arc<str>,
    /// Where it was written, if the agent has a data directory.
    path: Option<PathBuf>,
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorToken")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl OperatorToken {
    /// A fresh random token, written to `<dir>/http-token` (mode 0600) when `dir` is given.
    pub fn create(dir: Option<&Path>) -> io::Result<OperatorToken> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        let token: Arc<str> = BASE64URL.encode(bytes).into();
        let path = match dir {
            Some(dir) => {
                // Absolute, so that the CLI finds it from wherever it runs.
                let path = std::fs::canonicalize(dir)?.join(TOKEN_FILE);
                replace_file(&path, Readers::Owner, |out| writeln!(out, "{token}"))?;
                Some(path)
            }
            None => None,
        };
        Ok(OperatorToken { token, path })
    }

    /// The token itself, for a program that embeds the agent.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// Where the token was written.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Compares in time that does not depend on where the first difference is.
    fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.token.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    ForeignHost(String),
    ForeignOrigin(String),
    NotJson,
    NoToken,
    WrongToken,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::ForeignHost(_) | Refusal::ForeignOrigin(_) | Refusal::WrongToken => {
                StatusCode::FORBIDDEN
            }
            Refusal::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::NoToken => StatusCode::UNAUTHORIZED,
        }
    }

    fn message(&self, token: &OperatorToken) -> String {
        let file = token.path().map_or_else(
            || "the agent's token".to_owned(),
            |p| format!("the token in {}", p.display()),
        );
        match self {
            Refusal::ForeignHost(host) => format!(
                "Host {host:?} refused: address the agent by IP or as localhost (a DNS name could be a page \
                 rebinding its own name to this address)"
            ),
            Refusal::ForeignOrigin(origin) => {
                format!("a request from the web page at {origin} may not act on this agent")
            }
            Refusal::NotJson => {
                "a request that acts needs Content-Type: application/json".to_owned()
            }
            Refusal::NoToken => format!(
                "this request acts on the agent: send {file} as `Authorization: Bearer TOKEN`"
            ),
            Refusal::WrongToken => format!("wrong token: the agent's token is {file}"),
        }
    }
}

/// Whether a `Host` header names this machine by address or as `localhost`.
fn host_allowed(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1]:7070
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<IpAddr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The checks every request passes: a `Host` that is an address or `localhost`.
pub(crate) fn check_host(headers: &HeaderMap) -> Result<(), Refusal> {
    match header_str(headers, header::HOST) {
        Some(host) if !host_allowed(host) => Err(Refusal::ForeignHost(host.to_owned())),
        _ => Ok(()),
    }
}

/// The checks an acting request passes: its own origin (or none, as from the CLI), a JSON body if it has a
/// method that carries one, and the operator's token.
pub(crate) fn check_operator(
    method: &Method,
    headers: &HeaderMap,
    token: &OperatorToken,
) -> Result<(), Refusal> {
    if let Some(origin) = header_str(headers, header::ORIGIN) {
        let own = header_str(headers, header::HOST).map(|host| format!("http://{host}"));
        if own.as_deref() != Some(origin) {
            return Err(Refusal::ForeignOrigin(origin.to_owned()));
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site != "same-origin" && site != "none")
    {
        let site = header_str(headers, header::HeaderName::from_static("sec-fetch-site"));
        return Err(Refusal::ForeignOrigin(format!(
            "a {} page",
            site.unwrap_or("foreign")
        )));
    }
    if method != Method::GET && method != Method::HEAD {
        let json = header_str(headers, header::CONTENT_TYPE).is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json {
            return Err(Refusal::NotJson);
        }
    }
    let given = header_str(headers, header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(Refusal::NoToken)?;
    if token.matches(given) {
        Ok(())
    } else {
        Err(Refusal::WrongToken)
    }
}

fn refuse(refusal: &Refusal, token: &OperatorToken) -> Response {
    let message = refusal.message(token);
    tracing::warn!(reason = %message, "HTTP request refused");
    (
        refusal.status(),
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// Every request: the host check; and any request that is not a read (GET, HEAD) must be the operator's.
pub(crate) async fn protect(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let token = &shared.token;
    if let Err(refusal) = check_host(request.headers()) {
        return refuse(&refusal, token);
    }
    let method = request.method().clone();
    if method != Method::GET
        && method != Method::HEAD
        && let Err(refusal) = check_operator(&method, request.headers(), token)
    {
        return refuse(&refusal, token);
    }
    next.run(request).await
}

/// A route that acts (or reveals secrets) whatever its method: only the operator's requests reach it.
pub(crate) async fn require_operator(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = check_operator(request.method(), request.headers(), &shared.token) {
        return refuse(&refusal, &shared.token);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn only_the_operator_acts() {
        let token = OperatorToken::create(None).expect("token");
        let bearer = format!("Bearer {}", token.secret());
        let json = "application/json";
        let ok =
            |pairs: &[(&'static str, &str)]| check_operator(&Method::POST, &headers(pairs), &token);
        assert_eq!(
            ok(&[("content-type", json), ("authorization", &bearer)]),
            Ok(())
        );
        assert_eq!(
            ok(&[
                ("host", "127.0.0.1:7070"),
                ("origin", "http://127.0.0.1:7070"),
                ("content-type", "application/json; charset=utf-8"),
                ("authorization", &bearer)
            ]),
            Ok(())
        );
        assert_eq!(
            ok(&[("content-type", "text/plain"), ("authorization", &bearer)]),
            Err(Refusal::NotJson)
        );
        assert_eq!(ok(&[("content-type", json)]), Err(Refusal::NoToken));
        assert_eq!(
            ok(&[("content-type", json), ("authorization", "Bearer nope")]),
            Err(Refusal::WrongToken)
        );
        assert!(matches!(
            ok(&[
                ("host", "127.0.0.1:7070"),
                ("origin", "http://evil.example"),
                ("content-type", json),
                ("authorization", &bearer)
            ]),
            Err(Refusal::ForeignOrigin(_))
        ));
        assert!(matches!(
            ok(&[
                ("sec-fetch-site", "cross-site"),
                ("content-type", json),
                ("authorization", &bearer)
            ]),
            Err(Refusal::ForeignOrigin(_))
        ));
    }

    #[test]
    fn hosts_are_addresses_or_localhost() {
        for host in [
            "127.0.0.1:7070",
            "localhost:7070",
            "LOCALHOST",
            "[::1]:7070",
            "10.0.0.4",
        ] {
            assert!(host_allowed(host), "{host}");
        }
        for host in [
            "evil.example:7070",
            "127.0.0.1.nip.io",
            "[evil]:1",
            "localhost.evil",
        ] {
            assert!(!host_allowed(host), "{host}");
        }
    }

    #[test]
    fn the_token_file_is_the_owners_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let token = OperatorToken::create(Some(dir.path())).expect("token");
        let path = token.path().expect("written");
        let text = std::fs::read_to_string(path).expect("read");
        assert_eq!(text.trim(), token.secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = OperatorToken::create(Some(dir.path())).expect("token");
        assert_ne!(
            again.secret(),
            token.secret(),
            "a fresh token at each start"
        );
    }
}
