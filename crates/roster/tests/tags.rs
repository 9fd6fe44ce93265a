//! Tags and force-leave on real `roster agent` processes on loopback: `--tag` at start, `roster tags` live,
//! `roster members` filtered by tag and state, a tag change kept across a restart, a clear error past the
//! bound, and `roster force-leave` for a crashed member (refused for a live or unknown one).

mod harness;

use std::time::Duration;

use harness::{Agent, Scratch, holds, members, roster, state_of, wait_until};

/// The tags `name` has in `agent`'s list, as `k=v` pairs sorted by key.
fn tags_in(agent: &Agent, name: &str) -> Option<String> {
    let list = members(agent.http).ok()?;
    let member = list.iter().find(|m| m["name"] == name)?;
    let tags = member["tags"].as_object()?;
    let pairs: Vec<String> = tags
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    Some(pairs.join(","))
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names in `roster members` table output.
fn names(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn tags_are_set_at_start_changed_live_filtered_on_and_kept_across_a_restart() {
    let scratch = Scratch::new("tags");
    let mut t1 = Agent::start_with(&scratch, "t1", &[], &["--tag", "role=web"]);
    let t2 = Agent::start_with(&scratch, "t2", &[t1.port], &["--tag", "role=db"]);
    wait_until(Duration::from_secs(15), || {
        holds(tags_in(&t2, "t1").as_deref() == Some("role=web"))
    })
    .expect("t2 does not see t1's tag within 15 s");

    let said = stdout(&roster(&[
        "tags",
        "set",
        "zone=a",
        "rack=7",
        "--http",
        &t1.api(),
    ]));
    assert_eq!(said, "rack=7\nrole=web\nzone=a\n");
    wait_until(Duration::from_secs(15), || {
        holds(tags_in(&t2, "t1").as_deref() == Some("rack=7,role=web,zone=a"))
    })
    .expect("t2 does not see t1's new tags within 15 s");
    let said = stdout(&roster(&["tags", "delete", "rack", "--http", &t1.api()]));
    assert_eq!(said, "role=web\nzone=a\n");
    assert_eq!(
        stdout(&roster(&["tags", "list", "--http", &t1.api()])),
        "role=web\nzone=a\n"
    );

    // Filters: by tag (all must hold) and by state.
    let web = stdout(&roster(&[
        "members",
        "--http",
        &t2.api(),
        "--tag",
        "role=web",
    ]));
    assert_eq!(names(&web), ["t1"], "{web}");
    assert!(
        web.lines().next().is_some_and(|h| h.ends_with("TAGS")),
        "{web}"
    );
    let none = stdout(&roster(&[
        "members",
        "--http",
        &t2.api(),
        "--tag",
        "role=web",
        "--tag",
        "zone=b",
    ]));
    assert!(names(&none).is_empty(), "{none}");
    let alive = stdout(&roster(&[
        "members",
        "--http",
        &t2.api(),
        "--status",
        "alive",
    ]));
    assert_eq!(names(&alive).len(), 2, "{alive}");
    let failed = stdout(&roster(&[
        "members",
        "--http",
        &t2.api(),
        "--status",
        "failed",
    ]));
    assert!(names(&failed).is_empty(), "{failed}");
    let detailed = stdout(&roster(&["members", "--http", &t2.api(), "--detailed"]));
    assert!(detailed.contains("role=web,zone=a"), "{detailed}");

    // Past the bound: refused, naming the limit and the size, and nothing changes.
    let big = format!("blob={}", "x".repeat(600));
    let out = roster(&["tags", "set", &big, "--http", &t1.api()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("616 bytes") && stderr.contains("the limit is 500"),
        "{stderr}"
    );
    let out = roster(&["tags", "set", "nokey", "--http", &t1.api()]);
    assert_eq!(out.status.code(), Some(2), "a tag without = is refused");

    // A restart with the same configuration keeps the live change.
    t1.kill();
    t1.spawn(&[t2.port]);
    assert_eq!(
        stdout(&roster(&["tags", "list", "--http", &t1.api()])),
        "role=web\nzone=a\n",
        "the tags changed live were lost in the restart"
    );
    wait_until(Duration::from_secs(15), || {
        holds(tags_in(&t2, "t1").as_deref() == Some("role=web,zone=a"))
    })
    .expect("t2 does not see the restarted t1's tags within 15 s");
}

#[test]
fn force_leave_marks_a_crashed_member_left_everywhere_and_refuses_a_live_one() {
    let scratch = Scratch::new("force-leave");
    let f1 = Agent::start(&scratch, "f1", &[]);
    let f2 = Agent::start(&scratch, "f2", &[f1.port]);
    let mut f3 = Agent::start(&scratch, "f3", &[f1.port]);
    wait_until(Duration::from_secs(15), || {
        holds(
            [&f1, &f2].iter().all(|a| {
                members(a.http).is_ok_and(|l| state_of(&l, "f3").as_deref() == Some("alive"))
            }),
        )
    })
    .expect("the three agents did not converge within 15 s");

    let out = roster(&["force-leave", "f2", "--http", &f1.api()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "roster: f2 is alive, not failed: only a failed member can be forced to leave"
    );
    let out = roster(&["force-leave", "nobody", "--http", &f1.api()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no member named \"nobody\""));

    f3.kill();
    wait_until(Duration::from_secs(20), || {
        holds([&f1, &f2].iter().all(|a| {
            members(a.http).is_ok_and(|l| state_of(&l, "f3").as_deref() == Some("failed"))
        }))
    })
    .expect("f3 is not failed everywhere within 20 s of its kill -9");
    let said = stdout(&roster(&["force-leave", "f3", "--http", &f1.api()]));
    assert!(said.starts_with("f3 is marked left"), "{said}");
    wait_until(Duration::from_secs(15), || {
        holds(
            [&f1, &f2].iter().all(|a| {
                members(a.http).is_ok_and(|l| state_of(&l, "f3").as_deref() == Some("left"))
            }),
        )
    })
    .expect("f3 is not left in every list within 15 s of the force-leave");
    let forced = f1
        .events()
        .into_iter()
        .any(|l| l["event"] == "leave" && l["member"] == "f3" && l["via"] == "force-leave");
    assert!(forced, "f1's log has no force-leave line for f3");
    let said = stdout(&roster(&["force-leave", "f3", "--http", &f2.api()]));
    assert_eq!(said, "f3 had already left\n");
}
