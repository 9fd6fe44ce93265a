//! Replacing a file whole: what is written goes to a temporary file beside it, is made durable, and is renamed
//! over it, so that a crash or a power cut leaves the old file or the new one, never a mix or an empty file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Who may read the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readers {
    /// Its owner only (mode 0600 on Unix), from the first byte written: keys and tokens.
    Owner,
    /// Whoever the process's umask lets.
    Umask,
}

/// The buffer a write streams through: a snapshot of 1,000 members takes about a hundred writes, with no copy
/// of the whole text.
const WRITE_BUFFER: usize = 8 * 1024;

/// Replaces the file at `path` with what `write` writes, through `<path>.tmp`.
pub(crate) fn replace_file(
    path: &Path,
    readers: Readers,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut tmp_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a path without a file name"))?
        .to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    // A temporary file a crash left behind keeps its mode when opened again: start from a fresh one.
    let _ = fs::remove_file(&tmp);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if readers == Readers::Owner {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&tmp)?;
    let written = (|| {
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        write(&mut out)?;
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // The rename is durable only once the directory entry is; not every platform lets a directory be opened
    // for that, and the file is whole without it.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "old").unwrap();
        replace_file(&path, Readers::Umask, |out| out.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "old").unwrap();
        let failed = replace_file(&path, Readers::Umask, |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("serializing failed"))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_its_owners_only_even_over_a_readable_leftover() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let leftover = dir.path().join("keyring.tmp");
        fs::write(&leftover, "stale").unwrap();
        fs::set_permissions(&leftover, fs::Permissions::from_mode(0o644)).unwrap();
        replace_file(&path, Readers::Owner, |out| out.write_all(b"secret")).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
