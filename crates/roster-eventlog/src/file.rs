//! The log file. Each line goes out in one `write` on an unbuffered file, so a `kill -9` loses nothing already
//! reported (the kernel holds it even if the process dies). When the file would grow past its bound it is
//! renamed to `events.jsonl.1` (older ones shift up, the oldest is dropped) and a new one is started: nothing
//! already written is ever truncated in place.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An append-only log file with size-based rotation.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl EventLog {
    /// Opens (or creates) `path` for appending. Rotates once the file would pass `max_bytes`, keeping `keep`
    /// rotated files beside it.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(EventLog {
            path: path.to_owned(),
            file,
            size,
            max_bytes: max_bytes.max(1),
            keep,
        })
    }

    /// Appends one line and hands it to the kernel before returning.
    pub fn append(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.file.flush()?;
        self.size += len;
        Ok(())
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            // No history wanted: start over, but by replacing the file rather than truncating it, so a reader
            // that has it open keeps what it had.
            let _ = std::fs::remove_file(&self.path);
        } else {
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_every_line_in_some_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.jsonl");
        let mut log = EventLog::open(&path, 100, 2).expect("open");
        for i in 0..10 {
            log.append(&format!("{{\"line\":{i:040}}}"))
                .expect("append");
        }
        let current = std::fs::read_to_string(&path).expect("current");
        let first = std::fs::read_to_string(dir.path().join("events.jsonl.1")).expect("first");
        assert!(current.len() <= 100 && first.len() <= 100);
        assert!(current.ends_with(&format!("{:040}}}\n", 9)));
        assert!(!dir.path().join("events.jsonl.3").exists());
    }
}
