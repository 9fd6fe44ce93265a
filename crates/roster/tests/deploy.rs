//! The files in deploy/ are checked as far as this machine can: the example config is loaded by the real
//! agent, the Kubernetes manifests parse and agree with each other and with the agent's variables, and the
//! systemd unit passes `systemd-analyze verify` (where systemd's tools are installed).

mod harness;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::{Agent, ROSTERD, Scratch, free_port, joins_before_exiting, members, roster};
use serde::Deserialize;
use serde_norway::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The variables `roster agent` reads, from its help.
fn agent_variables() -> BTreeSet<String> {
    let out = roster(&["agent", "--help"]);
    String::from_utf8_lossy(&out.stdout)
        .split("[env: ")
        .skip(1)
        .map(|rest| rest[..rest.find('=').expect("NAME=")].to_owned())
        .collect()
}

/// Every `ROSTER_*` word in `text`.
fn variables_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ROSTER_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_example_config_is_loaded_by_the_real_agent_and_joins() {
    let scratch = Scratch::new("deploy-config");
    let seed = Agent::start(&scratch, "seed", &[]);
    let (port, http) = (free_port(), free_port());
    // The file's addresses are for a real fleet; flags win over the file, so only they are replaced here.
    // The name comes from the file alone: seeing it proves the file was read. The agent is rosterd, as the
    // unit, the image and the DaemonSet run it.
    let mut child = Command::new(ROSTERD)
        .arg("--config")
        .arg(repo("deploy/roster.toml"))
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--advertise", &format!("127.0.0.1:{port}")])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--join", &format!("127.0.0.1:{}", seed.port)])
        .arg("--data-dir")
        .arg(scratch.path().join("web-1"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rosterd");
    let joined = joins_before_exiting(&mut child, seed.http, "web-1", Duration::from_secs(10));
    let own = members(http);
    let _ = child.kill();
    let out = child.wait_with_output().expect("agent output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        joined,
        "the agent with deploy/roster.toml did not join within 10 s: {stderr}"
    );
    assert_eq!(own.expect("its own list")[0]["name"], "web-1");
}

#[test]
fn the_kubernetes_manifests_parse_and_the_join_address_is_the_headless_service() {
    let mut objects = Vec::new();
    for file in [
        "deploy/kubernetes/service.yaml",
        "deploy/kubernetes/daemonset.yaml",
    ] {
        let text = read(file);
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(
                value["apiVersion"].is_string() && value["kind"].is_string(),
                "{file}: {value:?}"
            );
            objects.push(value);
        }
    }
    let find = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in deploy/kubernetes"))
    };
    let service = find("Service");
    let daemonset = find("DaemonSet");
    assert_eq!(
        service["spec"]["clusterIP"], "None",
        "the Service must be headless"
    );
    assert_eq!(service["spec"]["publishNotReadyAddresses"], true);
    let protocols: BTreeSet<&str> = service["spec"]["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter(|p| p["port"] == 7946)
        .filter_map(|p| p["protocol"].as_str())
        .collect();
    assert_eq!(
        protocols,
        BTreeSet::from(["TCP", "UDP"]),
        "the protocol port is UDP and TCP"
    );
    let labels = &daemonset["spec"]["template"]["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_mapping().expect("selector") {
        assert_eq!(
            &labels[key], value,
            "the Service does not select the DaemonSet's pods"
        );
    }
    assert_eq!(
        daemonset["spec"]["selector"]["matchLabels"], *labels,
        "the DaemonSet's selector does not match its template"
    );

    let container = &daemonset["spec"]["template"]["spec"]["containers"][0];
    let env: Vec<(&str, &str)> = container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or(""),
                e["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let join = env
        .iter()
        .find(|(n, _)| *n == "ROSTER_JOIN")
        .expect("ROSTER_JOIN")
        .1;
    let name = service["metadata"]["name"].as_str().expect("service name");
    let namespace = service["metadata"]["namespace"]
        .as_str()
        .expect("namespace");
    assert_eq!(join, format!("{name}.{namespace}.svc.cluster.local:7946"));
    assert_eq!(daemonset["metadata"]["namespace"].as_str(), Some(namespace));
    let real = agent_variables();
    for (var, _) in env.iter().filter(|(n, _)| n.starts_with("ROSTER_")) {
        assert!(
            real.contains(*var),
            "the DaemonSet sets {var}, which roster agent does not read"
        );
    }
}

#[test]
fn the_unit_and_the_dockerfile_use_only_real_settings() {
    let real = agent_variables();
    for file in ["deploy/roster.service", "deploy/Dockerfile"] {
        for var in variables_in(&read(file)) {
            assert!(
                real.contains(&var),
                "{file} sets {var}, which roster agent does not read"
            );
        }
    }
}

#[test]
fn the_systemd_unit_verifies() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipping: systemd-analyze is not installed (Debian package systemd)");
        return;
    };
    assert!(version.status.success());
    // verify insists that ExecStart's binary exists: point it at the one this test built.
    let text = read("deploy/roster.service");
    assert!(
        text.contains("ExecStart=/usr/local/bin/rosterd\n"),
        "the unit does not run the agent alone"
    );
    let scratch = Scratch::new("deploy-unit");
    let unit = scratch.path().join("roster.service");
    std::fs::write(&unit, text.replace("/usr/local/bin/rosterd", ROSTERD)).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );

    // The hardening, scored by systemd itself (0 is locked down, 10 is wide open).
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze security");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(score) = text
        .lines()
        .find_map(|l| l.split("exposure level for roster.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
    else {
        eprintln!("skipping the exposure score: this systemd-analyze cannot score offline");
        return;
    };
    assert!(
        score <= 2.0,
        "systemd rates the unit's exposure {score}, above 2.0:\n{text}"
    );
}

/// `kubernetes-validate` from PyPI in a virtual environment of the test's own (kept in the target directory so
/// that later runs reuse it); `Err` says why the test must skip.
fn kubernetes_validate() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubernetes-validate-venv");
    let tool = venv.join("bin/kubernetes-validate");
    if tool.is_file() {
        return Ok(tool);
    }
    let run = |program: &Path, args: &[&str]| -> Result<(), String> {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "{} {}: {}",
                program.display(),
                args.join(" "),
                err.lines().last().unwrap_or("failed")
            ))
        }
    };
    let venv_args = ["-m", "venv", venv.to_str().ok_or("venv path is not UTF-8")?];
    if run(Path::new("python3"), &venv_args).is_err() {
        // Debian splits the venv module out; as root, install it and try again.
        let _ = std::fs::remove_dir_all(&venv);
        let _ = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "python3-venv"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output();
        run(Path::new("python3"), &venv_args).map_err(|e| {
            format!("no Python virtual environment (Debian package python3-venv): {e}")
        })?;
    }
    run(
        &venv.join("bin/pip"),
        &["install", "--quiet", "kubernetes-validate"],
    )?;
    tool.is_file()
        .then_some(tool)
        .ok_or_else(|| "pip installed kubernetes-validate, yet its command is missing".into())
}

#[test]
fn the_kubernetes_manifests_pass_the_real_schemas() {
    let tool = match kubernetes_validate() {
        Ok(tool) => tool,
        Err(reason) => {
            eprintln!("skipping the schema check: {reason}");
            return;
        }
    };
    let out = Command::new(&tool)
        .arg(repo("deploy/kubernetes/daemonset.yaml"))
        .arg(repo("deploy/kubernetes/service.yaml"))
        .output()
        .expect("run kubernetes-validate");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate: {said}");
    for resource in ["namespace/roster", "daemonset/roster", "service/roster"] {
        assert!(
            said.contains(&format!("passed for resource {resource}")),
            "{resource} was not validated: {said}"
        );
    }
}

#[test]
fn the_daemonset_is_ready_on_health_retries_its_join_and_declares_its_pod_security_level() {
    let text = read("deploy/kubernetes/daemonset.yaml");
    let objects: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("yaml"))
        .collect();
    let namespace = objects
        .iter()
        .find(|o| o["kind"] == "Namespace")
        .expect("a Namespace");
    // hostNetwork and hostPath are allowed by the privileged level only.
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    let daemonset = objects
        .iter()
        .find(|o| o["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    assert_eq!(daemonset["spec"]["template"]["spec"]["hostNetwork"], true);
    let container = &daemonset["spec"]["template"]["spec"]["containers"][0];
    let probe: Vec<&str> = container["readinessProbe"]["exec"]["command"]
        .as_sequence()
        .expect("an exec readiness probe")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        &probe[1..2],
        ["health"],
        "readiness is not `roster health`: {probe:?}"
    );
    let retry = container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "ROSTER_RETRY_JOIN")
        .map(|e| e["value"].clone());
    assert_eq!(
        retry,
        Some(Value::from("true")),
        "the first pod must not give up joining"
    );
    // And the probe's command answers as the probe expects, against a real agent.
    let scratch = Scratch::new("deploy-health");
    let agent = Agent::start(&scratch, "k1", &[]);
    let out = roster(&["health", "--http", &format!("127.0.0.1:{}", agent.http)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_unit_notifies_readiness_reloads_and_keeps_the_keyring_where_it_can_write() {
    let unit = read("deploy/roster.service");
    let setting = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(setting("Type"), ["notify"]);
    assert!(setting("ExecReload").iter().any(|c| c.contains("-HUP")));
    assert_eq!(
        setting("ProtectSystem"),
        ["strict"],
        "the test below assumes it"
    );
    // Under ProtectSystem=strict the state directory is the one writable place: a keyring anywhere else is
    // changed in memory by a rotation and then cannot be saved.
    let state = format!("/var/lib/{}/", setting("StateDirectory")[0]);
    let config = read("deploy/roster.toml");
    let keyring = config
        .lines()
        .find_map(|l| l.trim_start_matches("# ").strip_prefix("keyring = "))
        .expect("a keyring line in deploy/roster.toml")
        .trim_matches('"');
    assert!(
        keyring.starts_with(&state),
        "the example keyring {keyring} is outside the unit's state directory {state}"
    );
    assert!(
        unit.contains(&format!("{state}keyring")),
        "the unit does not say where the keyring goes"
    );
}
