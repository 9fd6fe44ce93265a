//! The protocol's behaviour, pinned: `roster sim --format json` for a fixed set of scenarios and seeds, compared
//! with the stored snapshots (tests/snapshots) apart from wall time. A change to the core or the simulator that
//! moves any figure fails here until the snapshot is reviewed and updated on purpose (`cargo insta review`, or
//! `INSTA_UPDATE=always cargo test -p roster-sim --test behaviour`).

use roster_sim::cli::{SimArgs, simulate};
use serde_json::Value;

#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

/// The JSON `roster sim` prints for `line`, without what depends on the machine that ran it.
fn behaviour(line: &str) -> String {
    let args = <Cli as clap::Parser>::parse_from(
        ["sim", "--format", "json"]
            .into_iter()
            .chain(line.split_whitespace()),
    )
    .sim;
    let report = simulate(&args).expect("the simulation runs");
    let mut json: Value = serde_json::from_str(&report.text).expect("one JSON object");
    strip_wall_time(&mut json);
    serde_json::to_string_pretty(&json).expect("serialises")
}

fn strip_wall_time(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !key.starts_with("wall"));
            map.values_mut().for_each(strip_wall_time);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_wall_time),
        _ => {}
    }
}

#[test]
fn a_crash_of_three() {
    insta::assert_snapshot!(behaviour("--nodes 30 --seed 7"));
}

#[test]
fn a_spec_cell_with_loss() {
    insta::assert_snapshot!(behaviour(
        "--scenario spec --nodes 20 --loss 5% --runs 2 --seed 11"
    ));
}

#[test]
fn a_partition_that_heals() {
    insta::assert_snapshot!(behaviour(
        "--scenario partition --nodes 20 --runs 1 --seed 5"
    ));
}

#[test]
fn churn_with_clocks_apart() {
    insta::assert_snapshot!(behaviour(
        "--scenario churn --nodes 20 --runs 1 --seed 9 --clock-skew 1s"
    ));
}

#[test]
fn crashes_under_skew_and_churn() {
    insta::assert_snapshot!(behaviour(
        "--nodes 40 --seed 13 --clock-skew 1s --clock-drift 50 --churn 1%/min --duration 60s"
    ));
}

#[test]
fn a_short_nemesis() {
    insta::assert_snapshot!(behaviour(
        "--scenario nemesis --runs 3 --nodes 10 --seed 21 --threads 1"
    ));
}

#[test]
fn a_user_event_during_crashes_reaches_every_live_member_once() {
    let json: Value = serde_json::from_str(&behaviour(
        "--nodes 200 --loss 5% --seed 3 --user-event-at 5500ms",
    ))
    .expect("JSON");
    assert_eq!(json["user_events"], 1);
    assert_eq!(json["user_event_missed"], 0);
    assert_eq!(json["user_event_repeats"], 0);
    let everywhere = json["user_event_everywhere_s"]["max"]
        .as_f64()
        .expect("the event reached every live member");
    assert!(everywhere <= 15.0, "{everywhere} s");
    assert_eq!(json["promise_met"], true, "{json}");
    assert_eq!(json["undetected"], 0);
}

#[test]
fn a_tag_change_during_crashes_reaches_every_live_list() {
    let json: Value = serde_json::from_str(&behaviour(
        "--nodes 200 --loss 5% --seed 3 --tag-change-at 5500ms",
    ))
    .expect("JSON");
    assert_eq!(json["tag_changes"], 1);
    assert_eq!(json["tag_change_missed"], 0);
    let everywhere = json["tag_change_everywhere_s"]["max"]
        .as_f64()
        .expect("the change reached every live list");
    assert!(everywhere <= 15.0, "{everywhere} s");
    assert_eq!(json["promise_met"], true, "{json}");
    assert_eq!(json["undetected"], 0);
}
