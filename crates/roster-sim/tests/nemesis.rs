//! The nemesis in the test suite: the plans it shrank for bugs it found (each failed before its fix), and a
//! short run of fresh random plans at small sizes. The long runs are reports (docs/timing.md), not tests.

use std::path::Path;

use roster_sim::nemesis::{self, Options, check};

fn show(violations: &[check::Violation]) -> String {
    violations
        .iter()
        .take(5)
        .map(|v| format!("{} at {:.3}s: {}", v.invariant, v.at_s, v.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn every_plan_the_nemesis_shrank_for_a_bug_now_holds_every_invariant() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nemesis_plans");
    let mut plans: Vec<_> = std::fs::read_dir(&dir)
        .expect("the plans directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    plans.sort();
    assert!(plans.len() >= 10, "{} plans", plans.len());
    for path in plans {
        let plan = nemesis::read_plan(&path).expect("a plan");
        let (findings, _) = check::run(&plan, None).expect("runs");
        assert!(
            findings.violations.is_empty(),
            "{}: {}",
            path.display(),
            show(&findings.violations)
        );
    }
}

#[test]
fn a_short_nemesis_at_small_sizes_finds_no_violation() {
    for (nodes, seed) in [(5, 1), (9, 2), (16, 3), (30, 4)] {
        let options = Options {
            seed,
            runs: 6,
            nodes: Some(nodes),
            threads: 2,
            explain: 1,
            plans_dir: std::env::temp_dir().join("roster-nemesis-test"),
            replay_command: format!(
                "roster sim --scenario nemesis --runs 1 --seed {{seed}} --nodes {nodes}"
            ),
        };
        let report = nemesis::run(&options, &|_| {}).expect("runs");
        let found: Vec<String> = report
            .invariant_violations
            .iter()
            .take(3)
            .map(|v| {
                format!(
                    "{} ({}): {} {:?}: {} [{}]",
                    v.invariant, v.at_s, v.member, v.observer, v.detail, v.replay
                )
            })
            .collect();
        assert!(report.promise_met, "{nodes} members: {found:#?}");
    }
}
