//! Snapshots read forwards and backwards, against files as each format wrote them (`tests/fixtures`): this
//! build reads what older builds wrote, reads what a newer build adds to the format, keeps aside (under the
//! version's name, not as corrupt) a newer format it cannot read, and writes only the fields older builds know.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use roster_agent::snapshot::{Capture, Loaded, Snapshot, SnapshotMember};
use roster_core::{Identity, Member, Meta, State};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(text: &str) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("snapshot"), text).expect("write");
    let loaded = Snapshot::load(dir.path()).expect("load");
    (dir, loaded)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("addr")
}

#[test]
fn this_build_reads_what_the_first_format_wrote() {
    let (_dir, loaded) = load(&fixture("snapshot-v1.json"));
    let Loaded::Found(snapshot) = loaded else {
        panic!("a version 1 snapshot was not read: {loaded:?}")
    };
    assert_eq!((snapshot.name.as_str(), snapshot.incarnation), ("m1", 4));
    assert_eq!(snapshot.rejoin_addrs(), vec![addr("127.0.0.1:7947")]);
}

#[test]
fn this_build_reads_a_newer_format_that_added_fields_and_states() {
    let (dir, loaded) = load(&fixture("snapshot-v2-additions.json"));
    let Loaded::Found(snapshot) = loaded else {
        panic!("a newer snapshot with added fields was set aside: {loaded:?}")
    };
    assert_eq!((snapshot.name.as_str(), snapshot.incarnation), ("m1", 4));
    // A state this build does not know is still a member to try rejoining through.
    assert_eq!(
        snapshot.rejoin_addrs(),
        vec![addr("127.0.0.1:7947"), addr("127.0.0.1:7949")]
    );
    assert!(dir.path().join("snapshot").exists(), "the file was moved");
}

#[test]
fn a_newer_format_this_build_cannot_read_is_kept_for_that_build_not_called_corrupt() {
    let text = fixture("snapshot-v3-reshaped.json");
    let (dir, loaded) = load(&text);
    let Loaded::Newer {
        version, moved_to, ..
    } = loaded
    else {
        panic!("expected a newer format: {loaded:?}")
    };
    assert_eq!(version, 3);
    assert_eq!(moved_to, dir.path().join("snapshot.v3"));
    assert_eq!(std::fs::read_to_string(&moved_to).expect("kept"), text);
    assert!(!dir.path().join("snapshot.corrupt").exists());
}

#[test]
fn this_build_writes_only_the_fields_older_builds_know() {
    // Builds before this one refused unknown fields: what this one writes must be what they wrote.
    let keys = |value: &serde_json::Value| -> BTreeSet<String> {
        value.as_object().expect("object").keys().cloned().collect()
    };
    let old: serde_json::Value =
        serde_json::from_str(&fixture("snapshot-v1.json")).expect("fixture");
    let member = |name: &str, port: u16, joined: u64| {
        let id = Identity::new(
            name,
            addr(&format!("127.0.0.1:{port}")),
            joined,
            Meta::default(),
        )
        .expect("identity");
        Member::new(Arc::new(id), 0, State::Alive)
    };
    let local = member("m1", 7946, 1_764_000_000_000);
    let others = [local.clone(), member("m2", 7947, 1_764_000_000_100)];
    let dir = tempfile::tempdir().expect("temp dir");
    Capture::of(&local, others.iter())
        .store(dir.path())
        .expect("store");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("snapshot")).expect("read"))
            .expect("json");
    assert_eq!(keys(&written), keys(&old));
    assert_eq!(keys(&written["members"][0]), keys(&old["members"][0]));
    assert_eq!(written["version"], old["version"]);
}

#[test]
fn what_the_driver_streams_is_the_first_format_byte_for_byte_and_loads_back() {
    // The driver writes a `Capture` (the list's shared identities, streamed to the file) rather than a
    // `Snapshot`: the text must be what the first format's builds wrote, so that they and this build read it.
    let member = |name: &str, addr_text: &str, joined: u64, incarnation: u32, state: State| {
        let id = Identity::new(name, addr(addr_text), joined, Meta::default()).expect("identity");
        Member::new(Arc::new(id), incarnation, state)
    };
    let local = member("m1", "127.0.0.1:7946", 1_764_000_000_000, 4, State::Alive);
    let list = [
        member("m2", "127.0.0.1:7947", 1_764_000_000_100, 0, State::Alive),
        local.clone(),
        member("m3", "[::1]:7948", 1_764_000_000_200, 2, State::Left),
    ];
    let capture = Capture::of(&local, list.iter());
    assert_eq!(capture.len(), 2, "the local member is not among the others");
    let dir = tempfile::tempdir().expect("temp dir");
    capture.store(dir.path()).expect("store");
    let written = std::fs::read_to_string(dir.path().join("snapshot")).expect("read");
    assert_eq!(written.trim_end(), fixture("snapshot-v1.json").trim_end());
    assert!(
        !dir.path().join("snapshot.tmp").exists(),
        "the temporary file is left"
    );
    let Loaded::Found(loaded) = Snapshot::load(dir.path()).expect("load") else {
        panic!("the streamed snapshot did not load")
    };
    let row = |name: &str, addr_text: &str, joined_at_ms: u64, incarnation: u32, state: &str| {
        SnapshotMember {
            name: name.to_owned(),
            addr: addr(addr_text),
            joined_at_ms,
            incarnation,
            state: state.to_owned(),
        }
    };
    let expected = Snapshot {
        version: 1,
        name: "m1".to_owned(),
        incarnation: 4,
        joined_at_ms: 1_764_000_000_000,
        members: vec![
            row("m2", "127.0.0.1:7947", 1_764_000_000_100, 0, "alive"),
            row("m3", "[::1]:7948", 1_764_000_000_200, 2, "left"),
        ],
    };
    assert_eq!(loaded, expected);
}
