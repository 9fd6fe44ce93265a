//! Finding and reading logs on disk: one file, a data directory (the current log and its rotated
//! predecessors), or a directory of data directories (a local cluster, a simulated run).

use std::path::{Path, PathBuf};

use crate::record::{ParseError, Record};

/// The log's file name in a data directory.
pub const LOG_FILE: &str = "events.jsonl";

/// How deep [`log_files`] looks below a directory it is given: `DIR/events.jsonl`,
/// `DIR/<node>/events.jsonl`, and one level more for a cluster kept inside a larger directory.
const MAX_DEPTH: usize = 3;

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A line that is not a log line.
    #[error("{}:{line}: {source}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        source: ParseError,
    },
    /// A directory with no log anywhere in it.
    #[error("{}: no {LOG_FILE} in it or in its subdirectories", path.display())]
    NoLogs {
        /// The directory.
        path: PathBuf,
    },
}

/// The log files `path` stands for: the file itself, or every `events.jsonl` (with its rotated
/// `events.jsonl.N`, oldest first) in the directory and its subdirectories, in a stable order.
pub fn log_files(path: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut found = Vec::new();
    collect(path, 0, &mut found)?;
    if found.is_empty() {
        return Err(ReadError::NoLogs {
            path: path.to_owned(),
        });
    }
    Ok(found)
}

fn collect(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let io = |source| ReadError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let current = dir.join(LOG_FILE);
    if current.is_file() {
        // Rotated files hold older lines: `.N` is older than `.N-1`.
        let mut rotated: Vec<(u32, PathBuf)> = entries
            .iter()
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                let n = name
                    .strip_prefix(LOG_FILE)?
                    .strip_prefix('.')?
                    .parse()
                    .ok()?;
                Some((n, p.clone()))
            })
            .collect();
        rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
        found.extend(rotated.into_iter().map(|(_, p)| p));
        found.push(current);
    }
    if depth < MAX_DEPTH {
        for entry in entries.iter().filter(|p| p.is_dir()) {
            collect(entry, depth + 1, found)?;
        }
    }
    Ok(())
}

/// Every line of one file. Blank lines are skipped; a line cut short by a crash in the middle of a write is the
/// only one forgiven, and only as the file's last line.
pub fn read_file(path: &Path) -> Result<Vec<Record>, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut records = Vec::new();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match Record::parse(line) {
            Ok(record) => records.push(record),
            Err(ParseError::Json(_)) if !complete && i + 1 == lines.len() => {}
            Err(source) => {
                return Err(ReadError::Line {
                    path: path.to_owned(),
                    line: i + 1,
                    source,
                });
            }
        }
    }
    Ok(records)
}

/// Every line of every log that `paths` stand for (see [`log_files`]), file after file.
pub fn read_logs(paths: &[PathBuf]) -> Result<Vec<Record>, ReadError> {
    let mut records = Vec::new();
    for path in paths {
        for file in log_files(path)? {
            records.extend(read_file(&file)?);
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"time":"2026-11-29T21:14:31.123Z","node":"m1","event":"failed","member":"m4","addr":"10.0.0.4:7946","joined_at":"2026-11-29T21:02:10.004Z","incarnation":3,"via":"gossip","from":"m2"}"#;

    #[test]
    fn a_cluster_directory_yields_every_log_oldest_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        for node in ["m1", "m2"] {
            std::fs::create_dir(dir.path().join(node)).expect("data dir");
            let line = LINE.replace("\"m1\"", &format!("{node:?}"));
            std::fs::write(dir.path().join(node).join(LOG_FILE), format!("{line}\n")).expect("log");
        }
        std::fs::write(dir.path().join("m1/events.jsonl.1"), format!("{LINE}\n")).expect("old");
        let files = log_files(dir.path()).expect("found");
        let names: Vec<String> = files
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .expect("inside")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            ["m1/events.jsonl.1", "m1/events.jsonl", "m2/events.jsonl"]
        );
        let records = read_logs(&[dir.path().to_owned()]).expect("reads");
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].node, "m2");
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_number() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(LOG_FILE);
        std::fs::write(
            &path,
            format!("{LINE}\n\n{}\n", LINE.replace("failed", "gone")),
        )
        .expect("log");
        let e = read_file(&path).expect_err("bad line");
        assert_eq!(
            e.to_string(),
            format!(
                "{}:3: unknown event \"gone\" (known: join, leave, suspect, alive, failed, update, sent, conflict, user, query)",
                path.display()
            )
        );
        // A write cut short by a crash leaves a partial last line: the lines before it still count.
        std::fs::write(&path, format!("{LINE}\n{}", &LINE[..40])).expect("log");
        assert_eq!(read_file(&path).expect("forgiven").len(), 1);
        let empty = tempfile::tempdir().expect("temp dir");
        let e = log_files(empty.path()).expect_err("no logs");
        assert!(
            e.to_string()
                .ends_with("no events.jsonl in it or in its subdirectories"),
            "{e}"
        );
    }
}
