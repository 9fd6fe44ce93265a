//! The operator docs agree with the binary: every `roster agent` flag and variable is in
//! docs/configuration.md, and the page names none the binary lacks.

mod harness;

use std::collections::BTreeSet;
use std::path::Path;

use harness::roster;

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

/// The long flags (without `--help`/`--version`) and the variables that `roster <command> --help` lists.
fn flags_of(command: &str) -> (Vec<String>, Vec<String>) {
    let out = roster(&[command, "--help"]);
    assert!(out.status.success(), "roster {command} --help failed");
    let help = String::from_utf8_lossy(&out.stdout);
    let mut flags = Vec::new();
    let mut vars = Vec::new();
    // Clap puts a flag's help on the flag's line, or on the lines below it once the flags grow too wide for
    // that: a `[env: ]` belongs to the flag above it.
    let mut in_flag = false;
    for line in help.lines() {
        if line.trim_start().starts_with('-') {
            let flag = line
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .expect("a flag line names its long flag")
                .trim_end_matches(',')
                .to_owned();
            in_flag = flag != "--help" && flag != "--version";
            if in_flag {
                flags.push(flag);
            }
        }
        if let Some(at) = line.find("[env: ").filter(|_| in_flag) {
            let var = &line[at + 6..];
            vars.push(var[..var.find('=').expect("[env: NAME=]")].to_owned());
        }
    }
    assert!(
        !flags.is_empty(),
        "no flags found in roster {command} --help:\n{help}"
    );
    (flags, vars)
}

#[test]
fn every_agent_flag_variable_and_file_key_is_in_the_configuration_reference() {
    let doc = repo_file("docs/configuration.md");
    let (flags, vars) = flags_of("agent");
    // `--print-config` is an action, not a setting: no variable and no key.
    let actions = ["--print-config"];
    assert_eq!(
        flags.len() - actions.len(),
        vars.len(),
        "every agent setting has a ROSTER_ variable"
    );
    let mut missing = Vec::new();
    for flag in &flags {
        if !doc.contains(&format!("`{flag} ")) && !doc.contains(&format!("`{flag}`")) {
            missing.push(flag.clone());
        }
        let key = flag.trim_start_matches("--").replace('-', "_");
        if flag != "--config"
            && !actions.contains(&flag.as_str())
            && !doc.contains(&format!("`{key}`"))
        {
            missing.push(format!("TOML key {key}"));
        }
    }
    for var in &vars {
        if !doc.contains(&format!("`{var}`")) {
            missing.push(var.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document {missing:?}"
    );

    // And nothing stale: every ROSTER_ variable the page names is real, the agent's or the client commands'.
    let (_, client_vars) = flags_of("leave");
    let known: BTreeSet<&str> = vars
        .iter()
        .chain(&client_vars)
        .map(String::as_str)
        .collect();
    let named: BTreeSet<String> = doc
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ROSTER_"))
        .map(str::to_owned)
        .collect();
    let stale: Vec<&String> = named
        .iter()
        .filter(|v| !known.contains(v.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/configuration.md names variables roster agent does not read: {stale:?}"
    );
}

#[test]
fn the_demo_page_gives_a_command_that_exists() {
    let doc = repo_file("docs/demo.md");
    let (flags, _) = flags_of("demo");
    for flag in flags {
        assert!(doc.contains(&flag), "docs/demo.md does not mention {flag}");
    }
    assert!(doc.contains("roster demo --no-tty --nodes 5"));
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/dashboard.png")
            .is_file()
    );
}
