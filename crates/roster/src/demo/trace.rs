//! The demo's last word: how the news of its first crash travelled, as `roster trace` tells it, read from the
//! agents' event logs before the demo's directory goes. With `--keep-logs DIR` the logs are copied out first,
//! so the full trace can be run again (and drawn) afterwards.

use std::path::{Path, PathBuf};

use anyhow::Context;
use roster_eventlog::{Kind, LOG_FILE};

use super::cluster::Cluster;
use crate::trace::{self, Query};

/// Copies every agent's event log (and its rotated files) into `dest/<name>/`.
pub fn keep_logs(cluster: &Cluster, dest: &Path) -> anyhow::Result<()> {
    for agent in &cluster.agents {
        let to = dest.join(&agent.name);
        std::fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
        let Ok(entries) = std::fs::read_dir(&agent.data_dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(LOG_FILE) {
                std::fs::copy(entry.path(), to.join(&name))
                    .with_context(|| format!("cannot copy {}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

/// The lines to print about the failure of `member`: the command that shows it in full, and its summary.
pub fn first_crash(cluster: &Cluster, member: &str, kept: Option<&PathBuf>) -> Vec<String> {
    let shown_dir = kept.map_or_else(|| cluster.dir().to_owned(), PathBuf::clone);
    let mut lines = vec![format!(
        "how the news of {member}'s crash travelled: roster trace {member} --event failed {}",
        shown_dir.display()
    )];
    let records = match roster_eventlog::read_logs(&[cluster.dir().to_owned()]) {
        Ok(records) => records,
        Err(e) => {
            lines.push(format!("  (the logs could not be read: {e})"));
            return lines;
        }
    };
    let query = Query {
        member: member.to_owned(),
        kind: Some(Kind::Failed),
        ..Query::default()
    };
    match trace::trace(&records, &query) {
        Ok(spread) => lines.extend(trace::short(&spread).into_iter().map(|l| format!("  {l}"))),
        Err(e) => lines.push(format!("  (nothing to trace: {e:#})")),
    }
    if kept.is_none() {
        lines.push(
            "  (the logs go with the demo's directory; run with --keep-logs DIR to trace and draw it afterwards)"
                .to_owned(),
        );
    }
    lines
}
