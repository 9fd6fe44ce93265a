//! The suite's own output: one summary line per scenario and short notes, written straight to stderr so they
//! show even when the test harness captures a passing test's output.

use std::io::Write;
use std::time::Duration;

/// Prints `roster-faults: <line>` past libtest's capture.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "roster-faults: {line}");
}

/// Prints a scenario's summary line: `roster-faults: SUMMARY <scenario>: <figures>`.
pub fn summary(scenario: &str, figures: &str) {
    note(&format!("SUMMARY {scenario}: {figures}"));
}

/// `1.234s`: seconds with milliseconds, the unit of every figure the suite prints.
pub fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// Like [`secs`], for a figure that may be missing.
pub fn secs_opt(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".to_owned(), secs)
}
