//! A node checkpoint kept as two generations in two files, `<name>` and `<name>.1`, each write
//! replacing the older one in place.
//!
//! A write pays one data sync (`fdatasync`) and nothing else once both files exist: no
//! temporary file, no rename, no directory sync. What makes that safe is that the newest
//! generation is never touched: a write that is cut short (a crash before its sync completes,
//! a failed sync) can only spoil the file holding the older generation, and a reader then takes
//! the newest one that restores, which is the last one acknowledged.
//!
//! Generations are ordered by their `written_at`, which each write makes later than the newest
//! one it replaces (whatever the wall clock did meanwhile). A file is padded with spaces to a
//! multiple of 4 KiB, and keeps its size while the checkpoint fits: the sync then has no file
//! size to record, only the data. Each file is an ordinary checkpoint that
//! [`NodeCheckpoint::read`] and `pdipam inspect` read on its own.
//!
//! The price of one sync: a file damaged after its sync (a failing disk, a hand edit) cannot be
//! told apart from a write cut short, so when the other file restores, it is used. The damaged
//! file is not lost: the next write first moves it aside to `<file>.damaged`, and the read
//! reports it ([`Generations::damaged`]).

use super::durable::{directory_of, injected_failure, io};
use super::{NodeCheckpoint, PersistError};
use crate::node::Timestamp;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Files are padded to a multiple of this, so that most writes do not change their size.
const PAGE: usize = 4096;

/// What one of the two files holds.
#[derive(Debug)]
enum Held {
    /// No such file.
    Absent,
    /// A checkpoint that restores, written at this time.
    Valid(Timestamp),
    /// A file that does not open as a checkpoint.
    Damaged(PersistError),
}

/// The two files of one checkpoint, as read by [`Generations::open`] and kept up to date by
/// [`Generations::write`]. Only one process may write them at a time (the caller's lock).
#[derive(Debug)]
pub struct Generations {
    files: [PathBuf; 2],
    held: [Held; 2],
    /// Each file's size, to keep it when the checkpoint still fits.
    sizes: [u64; 2],
}

impl Generations {
    /// The two files of the checkpoint named `base`: `base` itself and `base.1`.
    pub fn files_of(base: &Path) -> [PathBuf; 2] {
        let mut second = base.as_os_str().to_owned();
        second.push(".1");
        [base.to_path_buf(), PathBuf::from(second)]
    }

    /// Reads both files of the checkpoint named `base` and returns the newest generation that
    /// restores (`None` when neither file exists).
    ///
    /// # Errors
    /// [`PersistError::Io`] when a file exists but cannot be read (nothing is guessed then);
    /// the file's own error when only one file exists and it does not open;
    /// [`PersistError::NoValidGeneration`] when both exist and neither opens;
    /// [`PersistError::ConflictingGenerations`] when both open with the same time but differ.
    pub fn open(base: &Path) -> Result<(Self, Option<NodeCheckpoint>), PersistError> {
        let files = Self::files_of(base);
        let mut held = [Held::Absent, Held::Absent];
        let mut sizes = [0u64; 2];
        let mut bytes: [Option<Vec<u8>>; 2] = [None, None];
        let mut opened: [Option<NodeCheckpoint>; 2] = [None, None];
        for (i, file) in files.iter().enumerate() {
            let b = match fs::read(file) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(file, "read", e)),
            };
            sizes[i] = b.len() as u64;
            match NodeCheckpoint::from_bytes(&b, &file.display().to_string()) {
                Ok(c) => {
                    held[i] = Held::Valid(c.written_at);
                    opened[i] = Some(c);
                }
                Err(e) => held[i] = Held::Damaged(e),
            }
            bytes[i] = Some(b);
        }
        let time = |h: &Held| match h {
            Held::Valid(t) => Some(*t),
            _ => None,
        };
        let newest = match (time(&held[0]), time(&held[1])) {
            (Some(a), Some(b)) if a == b => {
                // Never written so by this module: a copy, or an edit. Equal content is harmless.
                if trimmed(bytes[0].as_deref()) != trimmed(bytes[1].as_deref()) {
                    return Err(PersistError::ConflictingGenerations {
                        source_name: files[0].display().to_string(),
                        other: files[1].display().to_string(),
                        written_at: a,
                    });
                }
                Some(0)
            }
            (Some(a), Some(b)) => Some(if a > b { 0 } else { 1 }),
            (Some(_), None) => Some(0),
            (None, Some(_)) => Some(1),
            (None, None) => {
                let [first, second] = held;
                return match (first, second) {
                    (Held::Damaged(first), Held::Damaged(second)) => {
                        Err(PersistError::NoValidGeneration {
                            source_name: files[0].display().to_string(),
                            first: Box::new(first),
                            second: Box::new(second),
                        })
                    }
                    (Held::Damaged(e), _) | (_, Held::Damaged(e)) => Err(e),
                    // Neither file exists.
                    (first, second) => Ok((
                        Generations {
                            files,
                            held: [first, second],
                            sizes,
                        },
                        None,
                    )),
                };
            }
        };
        let checkpoint = newest.and_then(|i| opened[i].take());
        Ok((Generations { files, held, sizes }, checkpoint))
    }

    /// The file holding the newest generation, if any.
    pub fn newest_file(&self) -> Option<&Path> {
        self.newest().map(|(i, _)| self.files[i].as_path())
    }

    /// A file that exists but does not open, while the other one does: taken for a write cut
    /// short, and moved aside by the next write. The file and why it does not open.
    pub fn damaged(&self) -> Option<(&Path, &PersistError)> {
        self.newest()?;
        self.held
            .iter()
            .zip(&self.files)
            .find_map(|(h, f)| match h {
                Held::Damaged(e) => Some((f.as_path(), e)),
                _ => None,
            })
    }

    fn newest(&self) -> Option<(usize, Timestamp)> {
        let time = |i: usize| match self.held[i] {
            Held::Valid(t) => Some((i, t)),
            _ => None,
        };
        match (time(0), time(1)) {
            (Some(a), Some(b)) => Some(if b.1 > a.1 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// Writes `checkpoint` over the older generation (or the damaged or missing file) and
    /// syncs its data: durable when this returns `Ok`. Its `written_at` is moved past the
    /// newest generation's if the clock says otherwise.
    ///
    /// The first write of each file also syncs the directory (the file's name is new), as does
    /// a write that first moves a damaged file aside.
    ///
    /// # Errors
    /// [`PersistError::Io`] naming the step. The newest generation stays as it was, and the
    /// file being written is spoiled on purpose (its first byte zeroed) so that a reader never
    /// takes an unacknowledged write for the newest; a crash before that leaves either file's
    /// content, which is fine, since the caller reported no success.
    pub fn write(&mut self, checkpoint: &mut NodeCheckpoint) -> Result<(), PersistError> {
        let (target, newest) = match self.newest() {
            Some((i, t)) => (1 - i, Some(t)),
            None => (0, None),
        };
        if let Some(t) = newest {
            if checkpoint.written_at <= t {
                checkpoint.written_at = t.saturating_add(Duration::from_nanos(1));
            }
        }
        let file = self.files[target].clone();
        let mut new_name = matches!(self.held[target], Held::Absent);
        if matches!(self.held[target], Held::Damaged(_)) {
            let aside = Self::damaged_copy(&file);
            fs::rename(&file, &aside).map_err(|e| io(&aside, "move the damaged file aside", e))?;
            self.held[target] = Held::Absent;
            self.sizes[target] = 0;
            new_name = true;
        }
        let bytes = padded(checkpoint.to_bytes(), self.sizes[target]);
        match write_in_place(&file, &bytes, self.sizes[target], new_name) {
            Ok(()) => {
                self.held[target] = Held::Valid(checkpoint.written_at);
                self.sizes[target] = bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                spoil(&file);
                self.held[target] = Held::Damaged(PersistError::Parse {
                    source_name: file.display().to_string(),
                    message: "spoiled after a failed write".into(),
                });
                Err(e)
            }
        }
    }

    /// Where a damaged file is moved before its name is written again.
    pub fn damaged_copy(file: &Path) -> PathBuf {
        let mut name = file.as_os_str().to_owned();
        name.push(".damaged");
        PathBuf::from(name)
    }
}

/// The bytes without the padding, to compare two files' content.
fn trimmed(bytes: Option<&[u8]>) -> Option<&[u8]> {
    bytes.map(|b| b.trim_ascii_end())
}

/// `bytes` padded with spaces (and a final newline) to the file's current size if they fit in
/// it and it is not more than four times what they need; to the next multiple of a page
/// otherwise.
fn padded(mut bytes: Vec<u8>, current: u64) -> Vec<u8> {
    let needed = bytes.len().div_ceil(PAGE) * PAGE;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    let len = if current >= needed && current / 4 <= needed && current % PAGE == 0 {
        current
    } else {
        needed
    };
    if bytes.len() < len {
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        bytes.resize(len - 1, b' ');
        bytes.push(b'\n');
    }
    bytes
}

fn write_in_place(
    file: &Path,
    bytes: &[u8],
    current_len: u64,
    new_name: bool,
) -> Result<(), PersistError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(file)
        .map_err(|e| io(file, "open", e))?;
    f.write_all(bytes).map_err(|e| io(file, "write", e))?;
    if current_len > bytes.len() as u64 {
        f.set_len(bytes.len() as u64)
            .map_err(|e| io(file, "truncate", e))?;
    }
    if injected_failure() {
        return Err(io(
            file,
            "fdatasync",
            std::io::Error::other("injected failure"),
        ));
    }
    f.sync_data().map_err(|e| io(file, "fdatasync", e))?;
    if new_name {
        let dir = directory_of(file);
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, "fsync directory", e))?;
    }
    Ok(())
}

/// Zeroes the first byte of a file whose write failed, so that it no longer opens as a
/// checkpoint. Best effort: if this fails too, the file holds either its old generation or the
/// unacknowledged new one, and a reader takes whichever is newest, which a caller told of the
/// failure must allow for anyway (as for a crash just before the answer).
fn spoil(file: &Path) {
    if let Ok(mut f) = OpenOptions::new().write(true).open(file) {
        let _ = f.write_all(b"\0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_keeps_a_size_that_still_fits_and_is_not_far_too_big() {
        let b = |n: usize| {
            let mut v = vec![b'x'; n - 1];
            v.push(b'\n');
            v
        };
        assert_eq!(padded(b(10), 0).len(), PAGE);
        assert_eq!(padded(b(PAGE), 0).len(), PAGE);
        assert_eq!(padded(b(PAGE + 1), 0).len(), 2 * PAGE);
        // Fits in the current size, which is at most four times what is needed: kept.
        assert_eq!(padded(b(PAGE + 1), 8 * PAGE as u64).len(), 8 * PAGE);
        // Far too big: shrunk to what is needed.
        assert_eq!(padded(b(10), 8 * PAGE as u64).len(), PAGE);
        // Does not fit: grown.
        assert_eq!(padded(b(3 * PAGE), 2 * PAGE as u64).len(), 3 * PAGE);
        let p = padded(b(10), 0);
        assert_eq!(&p[..9], b"xxxxxxxxx");
        assert!(p[9..PAGE - 1].iter().all(|c| *c == b' '));
        assert_eq!(p[PAGE - 1], b'\n');
    }
}
