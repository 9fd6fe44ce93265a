//! The control plane against a real agent: reading is open, acting needs the token the agent keeps in its data
//! directory (mode 0600), a JSON body and no foreign origin; the CLI finds the token by itself.

mod harness;

use std::time::Duration;

use harness::{Agent, Scratch, free_port, http, members, roster, state_of};

fn token_of(agent: &Agent) -> String {
    std::fs::read_to_string(agent.data_dir.join("http-token"))
        .expect("the token file")
        .trim()
        .to_owned()
}

#[test]
fn no_web_page_and_no_request_without_the_token_can_act() {
    let scratch = Scratch::new("control");
    let agent = Agent::start(&scratch, "c1", &[]);
    let token = token_of(&agent);
    let bearer = format!("Bearer {token}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(agent.data_dir.join("http-token"))
            .expect("token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is readable by others");
    }

    // What a web page can send without a preflight, what a stranger sends, and a page rebinding its name.
    for (what, headers, body, status) in [
        (
            "a simple cross-site request",
            vec![
                ("Content-Type", "text/plain"),
                ("Origin", "http://evil.example"),
            ],
            "{}",
            403,
        ),
        (
            "a form post",
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            "a=b",
            415,
        ),
        (
            "no token",
            vec![("Content-Type", "application/json")],
            "{}",
            401,
        ),
        (
            "a wrong token",
            vec![
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer not-the-token"),
            ],
            "{}",
            403,
        ),
        (
            "the token, from a foreign origin",
            vec![
                ("Content-Type", "application/json"),
                ("Authorization", bearer.as_str()),
                ("Origin", "http://evil.example"),
            ],
            "{}",
            403,
        ),
        (
            "the token, as text",
            vec![
                ("Content-Type", "text/plain"),
                ("Authorization", bearer.as_str()),
            ],
            "{}",
            415,
        ),
        (
            "the token, through a rebound name",
            vec![
                ("Host", "evil.example:7070"),
                ("Content-Type", "application/json"),
                ("Authorization", bearer.as_str()),
            ],
            "{}",
            403,
        ),
    ] {
        let (got, body) = http(agent.http, "POST", "/v1/leave", &headers, body);
        assert_eq!(got, status, "{what}: {body}");
        assert!(body.contains("\"error\""), "{what}: {body}");
    }
    // Changing tags and forcing a member out act too.
    for (path, body) in [
        ("/v1/tags", r#"{"set":{"role":"evil"}}"#),
        ("/v1/force-leave", r#"{"name":"c1"}"#),
    ] {
        let json = [("Content-Type", "application/json")];
        let (got, reply) = http(agent.http, "POST", path, &json, body);
        assert_eq!(got, 401, "POST {path} without the token: {reply}");
    }
    // Listing the keyring reveals keys: it acts, whatever its method.
    let (got, _) = http(agent.http, "GET", "/v1/keys", &[], "");
    assert_eq!(got, 401, "GET /v1/keys without the token");
    // Reading stays open.
    for path in ["/v1/members", "/v1/self", "/v1/health", "/metrics", "/"] {
        let (got, body) = http(agent.http, "GET", path, &[], "");
        assert_eq!(got, 200, "GET {path}: {body}");
    }
    let list = members(agent.http).expect("still serving");
    assert_eq!(state_of(&list, "c1").as_deref(), Some("alive"));
    assert_eq!(list[0]["tags"], serde_json::json!({}), "the tags changed");
    assert!(
        agent.events().iter().all(|e| e["event"] != "leave"),
        "the agent left"
    );
}

#[test]
fn the_cli_acts_with_the_token_it_finds_and_takes_the_api_as_a_url() {
    let scratch = Scratch::new("control-cli");
    let mut agent = Agent::start(&scratch, "c2", &[]);
    let url = format!("http://127.0.0.1:{}/", agent.http);
    let out = roster(&["members", "--http", &url, "--detailed"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!("running roster {}", env!("CARGO_PKG_VERSION")))
            && said.contains("TAGS"),
        "{said}"
    );
    let out = roster(&["health", "--http", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A token file the CLI cannot use is an error that names it.
    let wrong = scratch.path().join("wrong-token");
    std::fs::write(&wrong, "nope\n").expect("write");
    let out = roster(&[
        "leave",
        "--http",
        &url,
        "--token-file",
        wrong.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("wrong token"), "{stderr}");

    let out = roster(&["leave", "--http", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        agent
            .wait_exit(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(0),
        "the agent did not leave and exit 0"
    );
}

#[test]
fn metrics_can_be_served_on_a_listener_of_their_own() {
    let scratch = Scratch::new("control-metrics");
    let port = free_port();
    let agent = Agent::start_with(
        &scratch,
        "c3",
        &[],
        &["--metrics-http", &format!("127.0.0.1:{port}")],
    );
    let (status, page) = http(port, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("roster_members{state=\"alive\"} 1"), "{page}");
    for path in ["/v1/members", "/v1/leave"] {
        let (status, _) = http(port, "GET", path, &[], "");
        assert_eq!(status, 404, "the metrics listener serves {path}");
    }
    drop(agent);
}
