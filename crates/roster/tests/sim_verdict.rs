//! `roster sim`'s exit status follows the promise: 0 when every deadline held and nothing was a false positive
//! or undetected, whatever the stretch targets say (a missed one is printed as such), and 1 when the promise
//! was broken.

mod harness;

use harness::roster;

#[test]
fn a_missed_stretch_target_is_printed_and_the_exit_status_is_0() {
    // Three of five members crashing at once under SWIM's shuffled schedule, which leaves the first probe of a
    // crashed member to chance, misses the 5 s p99 detection target, inside the deadlines.
    let out = roster(&["sim", "--nodes", "5", "--schedule", "shuffled"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("stretch target missed: detection p99"),
        "{text}"
    );
    assert!(text.contains("crash: PASS, the promise held"), "{text}");
}

#[test]
fn a_missed_deadline_is_printed_and_the_exit_status_is_1() {
    // Two packets a second per machine cannot carry the probes: a crash is detected late or never, and live
    // members are failed by mistake.
    let out = roster(&["sim", "--nodes", "5", "--packet-budget", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let cell = text
        .lines()
        .find(|line| line.starts_with("crash n=5"))
        .unwrap_or_else(|| panic!("no row for the cell: {text}"));
    assert!(cell.contains("| FAIL: "), "{text}");
    assert!(
        text.contains("crash: FAIL, the promise was broken"),
        "{text}"
    );
}
