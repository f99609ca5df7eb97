//! Durable replacement of a file: write a temporary file in the same directory, fsync it,
//! rename it over the target, fsync the directory. A crash at any point leaves either the old
//! file or the new one, never a mix; a failure leaves the old file as it was.

use super::PersistError;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Test hook (feature `testing`): how many coming writes fail at their worst moment: just before
/// the rename (the new file is complete on disk, the old one not yet replaced), or, for
/// [`Generations`](super::Generations), just before the sync (the new generation written over
/// the older one, not yet durable).
#[cfg(feature = "testing")]
pub(crate) static FAIL_WRITES: AtomicU64 = AtomicU64::new(0);

#[cfg(feature = "testing")]
pub(crate) fn injected_failure() -> bool {
    FAIL_WRITES
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[cfg(not(feature = "testing"))]
pub(crate) fn injected_failure() -> bool {
    false
}

pub(crate) fn io(path: &Path, operation: &'static str, e: std::io::Error) -> PersistError {
    PersistError::Io {
        source_name: path.display().to_string(),
        operation,
        source: e,
    }
}

/// The directory holding `path`, where the temporary file goes and which is synced after the
/// rename: a bare file name's parent is the empty path, which cannot be opened, so it is `.`.
pub(crate) fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes` durably (see the module docs).
///
/// # Errors
/// [`PersistError::Io`] naming the step that failed; the temporary file is removed and `path`
/// is untouched.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let dir = directory_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io(&tmp, "create temporary file", e))?;
        f.write_all(bytes).map_err(|e| io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| io(&tmp, "fsync", e))?;
        drop(f);
        if injected_failure() {
            return Err(io(
                path,
                "rename",
                std::io::Error::other("injected failure"),
            ));
        }
        fs::rename(&tmp, path).map_err(|e| io(path, "rename", e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, "fsync directory", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a whole file.
///
/// # Errors
/// [`PersistError::Io`].
pub fn read_file(path: &Path) -> Result<Vec<u8>, PersistError> {
    fs::read(path).map_err(|e| io(path, "read", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(directory_of(Path::new("node.json")), Path::new("."));
        assert_eq!(directory_of(Path::new("./node.json")), Path::new("."));
        assert_eq!(
            directory_of(Path::new("/var/lib/node.json")),
            Path::new("/var/lib")
        );
        assert_eq!(
            directory_of(Path::new("state/node.json")),
            Path::new("state")
        );
    }
}
