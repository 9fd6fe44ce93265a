//! Tags, the member's metadata, changed live: the change itself (set some, delete some, or replace them all),
//! the file in the data directory that keeps them across a restart, and the acting route `POST /v1/tags`.
//!
//! At a restart the tags saved in `<data-dir>/tags.json` win over the configured ones, unless the configuration
//! changed since they were saved: an operator who edits the configured tags means them, and one who changed
//! tags live and restarted with the same configuration means to keep the change.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use roster_core::{IdentityError, Meta};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::driver::{Command, Shared};
use crate::replace_file::{Readers, replace_file};

/// The file that keeps the tags across a restart.
pub(crate) const TAGS_FILE: &str = "tags.json";

/// A change to this member's tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TagChange {
    /// Set these (adding or replacing), then delete those.
    Update {
        set: Vec<(String, String)>,
        delete: Vec<String>,
    },
    /// Replace every tag, as a new configuration does: these become the configured tags too.
    Replace(Meta),
}

impl TagChange {
    /// The tags after the change to `current`, checked against the bounds.
    pub(crate) fn apply(&self, current: &Meta) -> Result<Meta, IdentityError> {
        match self {
            TagChange::Replace(tags) => Ok(tags.clone()),
            TagChange::Update { set, delete } => {
                let mut tags: BTreeMap<&str, &str> = current.iter().collect();
                for (key, value) in set {
                    tags.insert(key, value);
                }
                for key in delete {
                    tags.remove(key.as_str());
                }
                Meta::new(tags)
            }
        }
    }
}

/// What `<data-dir>/tags.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedTags {
    /// The tags in force when saved.
    pub tags: BTreeMap<String, String>,
    /// The configured tags they were changed from.
    pub configured: BTreeMap<String, String>,
}

fn map(meta: &Meta) -> BTreeMap<String, String> {
    meta.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl SavedTags {
    pub(crate) fn new(tags: &Meta, configured: &Meta) -> SavedTags {
        SavedTags {
            tags: map(tags),
            configured: map(configured),
        }
    }

    /// Reads `<dir>/tags.json`; `None` when there is none, or it cannot be read (logged: the configured tags
    /// are used then).
    pub(crate) fn load(dir: &Path) -> Option<SavedTags> {
        let path = dir.join(TAGS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the saved tags; using the configured ones");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(saved) => Some(saved),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the saved tags do not parse; using the configured ones");
                None
            }
        }
    }

    /// Replaces `<dir>/tags.json` (through a temporary file, so a crash leaves the old file or the new one).
    pub(crate) fn store(&self, dir: &Path) -> io::Result<()> {
        replace_file(&dir.join(TAGS_FILE), Readers::Umask, |out| {
            serde_json::to_writer_pretty(out, self).map_err(io::Error::from)
        })
    }

    /// The tags to start with, given the configured ones: the saved tags if the configuration is what it was
    /// when they were saved, else the configuration.
    pub(crate) fn at_start(saved: Option<SavedTags>, configured: &Meta) -> Meta {
        let Some(saved) = saved else {
            return configured.clone();
        };
        if saved.configured != map(configured) {
            if saved.tags != map(configured) {
                tracing::info!(
                    "the configured tags changed since tags were last changed live; using the configured ones"
                );
            }
            return configured.clone();
        }
        match Meta::new(saved.tags) {
            Ok(tags) => tags,
            Err(e) => {
                tracing::warn!(error = %e, "the saved tags are out of bounds; using the configured ones");
                configured.clone()
            }
        }
    }
}

/// Asks the driver to change the tags; the tags in force afterwards.
pub(crate) async fn change(
    shared: &Shared,
    change: TagChange,
) -> Option<Result<Meta, IdentityError>> {
    let (tx, rx) = oneshot::channel();
    shared.commands.send(Command::Tags(change, tx)).await.ok()?;
    rx.await.ok()
}

/// The route, acting: only the operator may change tags.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1/tags", post(change_tags))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    /// Tags to add or replace.
    #[serde(default)]
    set: BTreeMap<String, String>,
    /// Keys to delete.
    #[serde(default)]
    delete: Vec<String>,
}

#[derive(Serialize)]
struct TagsReply {
    tags: BTreeMap<String, String>,
}

async fn change_tags(State(shared): State<Arc<Shared>>, Json(body): Json<TagsBody>) -> Response {
    if body.set.keys().any(String::is_empty) {
        return bad_request("a tag's key is empty".to_owned());
    }
    let update = TagChange::Update {
        set: body.set.into_iter().collect(),
        delete: body.delete,
    };
    match change(&shared, update).await {
        Some(Ok(tags)) => Json(TagsReply { tags: map(&tags) }).into_response(),
        Some(Err(e)) => bad_request(format!("invalid tags: {e}")),
        None => (StatusCode::SERVICE_UNAVAILABLE, "agent is stopping").into_response(),
    }
}

fn bad_request(error: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": error })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Meta {
        Meta::new(pairs.iter().copied()).expect("tags")
    }

    #[test]
    fn an_update_sets_then_deletes_and_is_checked_against_the_bounds() {
        let current = meta(&[("role", "web"), ("zone", "a")]);
        let update = TagChange::Update {
            set: vec![("zone".into(), "b".into()), ("rack".into(), "7".into())],
            delete: vec!["role".into(), "absent".into()],
        };
        assert_eq!(
            update.apply(&current),
            Ok(meta(&[("rack", "7"), ("zone", "b")]))
        );
        let big = TagChange::Update {
            set: vec![("blob".into(), "x".repeat(600))],
            delete: Vec::new(),
        };
        let e = big.apply(&current).expect_err("too big");
        assert_eq!(
            e.to_string(),
            "metadata is 616 bytes of keys and values; the limit is 500"
        );
    }

    #[test]
    fn saved_tags_win_at_a_restart_unless_the_configuration_changed_since() {
        let configured = meta(&[("role", "web")]);
        let live = meta(&[("role", "web"), ("deploy", "v2")]);
        let saved = SavedTags::new(&live, &configured);
        assert_eq!(SavedTags::at_start(Some(saved.clone()), &configured), live);
        let edited = meta(&[("role", "db")]);
        assert_eq!(SavedTags::at_start(Some(saved), &edited), edited);
        assert_eq!(SavedTags::at_start(None, &configured), configured);

        let dir = tempfile::tempdir().expect("temp dir");
        SavedTags::new(&live, &configured)
            .store(dir.path())
            .expect("stored");
        assert_eq!(
            SavedTags::load(dir.path()),
            Some(SavedTags::new(&live, &configured))
        );
    }
}
