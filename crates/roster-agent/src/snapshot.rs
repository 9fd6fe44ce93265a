//! The snapshot: `<data-dir>/snapshot`, the members this agent knew and its own incarnation, so
//! that a restarted agent can rejoin without `--join` and at a higher incarnation than any claim about its
//! previous instance.
//!
//! Writes are atomic (a temporary file, fsync, rename, fsync of the directory): a crash leaves the old snapshot
//! or the new one, never half of one. The text is streamed into the temporary file through a small buffer, never
//! held whole: at 1,000 members it is 0.8 MB, more than the rest of an agent's heap, and a heap that grew for
//! it would keep the pages. What the driver copies out of the list for a write is a [`Capture`], the members'
//! shared identities (16 bytes a member), not copies of their names. A snapshot that does not parse is moved
//! aside, never overwritten, so an operator can still look at it.
//!
//! Snapshots are read forwards and backwards, so that an upgrade or a downgrade one release at a time keeps
//! the rejoin: a field a release adds has a default (an older snapshot lacks it), fields this build does not
//! know are ignored (a newer build wrote them), and a newer format version is read for the fields this build
//! needs. Only a snapshot whose needed fields are missing or malformed is set aside; one from a newer format
//! that cannot be read is set aside under its version's name (`snapshot.v3`), not as corrupt.
//! `tests/fixtures/` holds snapshots as each format wrote them, and a test reads every one.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use roster_core::{Member, State};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};

use crate::replace_file::{Readers, replace_file};

const FILE_NAME: &str = "snapshot";
/// The format this build writes. Additions with a default keep the version; a change an older build would
/// misread raises it. Builds before this one refused unknown fields, so this build writes exactly their
/// fields: a downgrade to them keeps its snapshot too (a test checks the fields written).
pub const FORMAT_VERSION: u32 = 1;

/// What the agent keeps across restarts, as read back ([`Capture`] writes it).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Snapshot {
    /// The format it was written in ([`FORMAT_VERSION`] for this build).
    pub version: u32,
    /// The name of the agent that wrote it.
    pub name: String,
    /// Its incarnation when written.
    pub incarnation: u32,
    /// Its `joined_at`, for the operator's benefit.
    pub joined_at_ms: u64,
    /// Every other member it knew.
    pub members: Vec<SnapshotMember>,
}

/// One known member.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SnapshotMember {
    /// Its name.
    pub name: String,
    /// Where it was reached.
    pub addr: SocketAddr,
    /// When its instance joined (Unix milliseconds).
    pub joined_at_ms: u64,
    /// Its incarnation.
    pub incarnation: u32,
    /// `alive`, `suspect`, `failed` or `left`.
    pub state: String,
}

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    /// No snapshot: a first start.
    Missing,
    /// A snapshot this build reads.
    Found(Snapshot),
    /// The file did not parse; it was renamed to `moved_to`.
    Corrupt {
        /// Why it did not parse.
        reason: String,
        /// Where it is now.
        moved_to: PathBuf,
    },
    /// A newer format this build cannot read; it was renamed to `moved_to` for that newer build.
    Newer {
        /// Its format version.
        version: u32,
        /// What this build could not read.
        reason: String,
        /// Where it is now.
        moved_to: PathBuf,
    },
}

impl Snapshot {
    /// Addresses worth trying to rejoin through: every member not known to have left.
    pub fn rejoin_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self
            .members
            .iter()
            .filter(|m| m.state != State::Left.as_str())
            .map(|m| m.addr)
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        addrs
    }

    /// Reads `<dir>/snapshot`. Fails only when the file exists but cannot be read or moved aside.
    pub fn load(dir: &Path) -> io::Result<Loaded> {
        let path = dir.join(FILE_NAME);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(e) => return Err(e),
        };
        match serde_json::from_slice::<Snapshot>(&bytes) {
            Ok(snapshot) if snapshot.version >= 1 => Ok(Loaded::Found(snapshot)),
            Ok(snapshot) => {
                let reason = format!("unknown snapshot version {}", snapshot.version);
                let moved_to = free_name(dir, "snapshot.corrupt");
                fs::rename(&path, &moved_to)?;
                Ok(Loaded::Corrupt { reason, moved_to })
            }
            Err(e) => {
                // A newer format that moved a field this build needs: keep it for the build that wrote it.
                let version = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("version")?.as_u64())
                    .and_then(|v| u32::try_from(v).ok())
                    .filter(|v| *v > FORMAT_VERSION);
                let (stem, reason) = match version {
                    Some(v) => (format!("snapshot.v{v}"), e.to_string()),
                    None => ("snapshot.corrupt".to_owned(), e.to_string()),
                };
                let moved_to = free_name(dir, &stem);
                fs::rename(&path, &moved_to)?;
                Ok(match version {
                    Some(version) => Loaded::Newer {
                        version,
                        reason,
                        moved_to,
                    },
                    None => Loaded::Corrupt { reason, moved_to },
                })
            }
        }
    }
}

/// A snapshot as the driver takes it: the local member and the others, sharing the list's identities, written
/// in the snapshot's format (the fields and order [`Snapshot`] reads) without copying their names.
#[derive(Clone, Debug)]
pub struct Capture {
    local: Member,
    members: Vec<Member>,
}

impl Capture {
    /// A capture of `local` and the members it knows (itself left out).
    pub fn of<'a>(local: &Member, members: impl Iterator<Item = &'a Member>) -> Capture {
        Capture {
            local: local.clone(),
            members: members
                .filter(|m| m.name() != local.name())
                .cloned()
                .collect(),
        }
    }

    /// How many members besides the local one it holds.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it holds no member besides the local one.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Replaces `<dir>/snapshot` atomically.
    pub fn store(&self, dir: &Path) -> io::Result<()> {
        store(dir, self)
    }
}

impl Serialize for Capture {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Snapshot", 5)?;
        s.serialize_field("version", &FORMAT_VERSION)?;
        s.serialize_field("name", self.local.name())?;
        s.serialize_field("incarnation", &self.local.incarnation)?;
        s.serialize_field("joined_at_ms", &self.local.identity.joined_at_ms())?;
        s.serialize_field("members", &Members(&self.members))?;
        s.end()
    }
}

struct Members<'a>(&'a [Member]);

impl Serialize for Members<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for m in self.0 {
            seq.serialize_element(&Row(m))?;
        }
        seq.end()
    }
}

/// One member as [`SnapshotMember`] writes it.
struct Row<'a>(&'a Member);

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut s = serializer.serialize_struct("SnapshotMember", 5)?;
        s.serialize_field("name", m.name())?;
        s.serialize_field("addr", &m.identity.addr())?;
        s.serialize_field("joined_at_ms", &m.identity.joined_at_ms())?;
        s.serialize_field("incarnation", &m.incarnation)?;
        s.serialize_field("state", m.state.as_str())?;
        s.end()
    }
}

/// Replaces `<dir>/snapshot` with `snapshot`.
fn store(dir: &Path, snapshot: &impl Serialize) -> io::Result<()> {
    replace_file(&dir.join(FILE_NAME), Readers::Umask, |out| {
        serde_json::to_writer_pretty(out, snapshot).map_err(io::Error::from)
    })
}

/// `<dir>/<stem>`, or `<dir>/<stem>.N` for the first N not yet taken, so that nothing moved aside is lost.
fn free_name(dir: &Path, stem: &str) -> PathBuf {
    let first = dir.join(stem);
    if !first.exists() {
        return first;
    }
    (1u32..)
        .map(|n| dir.join(format!("{stem}.{n}")))
        .find(|p| !p.exists())
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            version: FORMAT_VERSION,
            name: "m1".into(),
            incarnation: 4,
            joined_at_ms: 1,
            members: vec![
                SnapshotMember {
                    name: "m2".into(),
                    addr: "127.0.0.1:2".parse().expect("addr"),
                    joined_at_ms: 2,
                    incarnation: 0,
                    state: "failed".into(),
                },
                SnapshotMember {
                    name: "m3".into(),
                    addr: "[::1]:3".parse().expect("addr"),
                    joined_at_ms: 3,
                    incarnation: 1,
                    state: "left".into(),
                },
            ],
        }
    }

    /// The list `sample` is a snapshot of.
    fn sample_list() -> (Member, Vec<Member>) {
        let member = |name: &str, addr: &str, joined: u64, incarnation: u32, state: State| {
            let addr = addr.parse().expect("addr");
            let id = roster_core::Identity::new(name, addr, joined, roster_core::Meta::default())
                .expect("identity");
            Member::new(std::sync::Arc::new(id), incarnation, state)
        };
        let local = member("m1", "127.0.0.1:1", 1, 4, State::Alive);
        let others = vec![
            member("m2", "127.0.0.1:2", 2, 0, State::Failed),
            member("m3", "[::1]:3", 3, 1, State::Left),
        ];
        (local, others)
    }

    #[test]
    fn a_stored_snapshot_loads_back_and_rejoins_through_members_that_did_not_leave() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (local, others) = sample_list();
        Capture::of(&local, others.iter())
            .store(dir.path())
            .expect("store");
        let Loaded::Found(loaded) = Snapshot::load(dir.path()).expect("load") else {
            panic!("not found")
        };
        assert_eq!(loaded, sample());
        assert_eq!(
            loaded.rejoin_addrs(),
            vec!["127.0.0.1:2".parse::<SocketAddr>().expect("addr")]
        );
        assert!(!dir.path().join("snapshot.tmp").exists());
    }

    #[test]
    fn a_corrupt_snapshot_is_moved_aside_twice_without_loss() {
        let dir = tempfile::tempdir().expect("temp dir");
        for garbage in ["{not json", "[]"] {
            fs::write(dir.path().join(FILE_NAME), garbage).expect("write");
            assert!(matches!(
                Snapshot::load(dir.path()).expect("load"),
                Loaded::Corrupt { .. }
            ));
        }
        assert_eq!(
            fs::read_to_string(dir.path().join("snapshot.corrupt")).expect("first"),
            "{not json"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("snapshot.corrupt.1")).expect("second"),
            "[]"
        );
        assert!(matches!(
            Snapshot::load(dir.path()).expect("load"),
            Loaded::Missing
        ));
    }
}
