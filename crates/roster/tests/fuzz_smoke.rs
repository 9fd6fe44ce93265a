//! A short run of every fuzz target (the packet decoder, a node's stream and datagram input, the decryptor),
//! so the targets build and find nothing in a few seconds each. Long runs: `fuzz/run 3600 TARGET`.

use std::process::Command;
use std::time::Instant;

#[test]
fn every_fuzz_target_runs_clean_for_a_few_seconds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let has_cargo_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cargo_fuzz {
        // fuzz/run installs cargo-fuzz from crates.io; without it (offline), say so and stop here.
        let installed = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            eprintln!("skipped: cargo-fuzz is not installed and could not be installed");
            return;
        }
    }
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(root.join("fuzz/run"))
        .arg("8")
        .output()
        .expect("run fuzz/run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "a fuzz target failed:\n{stdout}\n{stderr}"
    );
    let runs = stdout.lines().filter(|l| l.starts_with("Done")).count();
    assert_eq!(
        runs, 3,
        "expected three targets to run:\n{stdout}\n{stderr}"
    );
    eprintln!("fuzz smoke run took {:?}", started.elapsed());
}
