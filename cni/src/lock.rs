//! The cross-process lock on a network's state: an exclusive `flock` on a lock file beside the
//! checkpoints. The kernel drops it when the holder exits, killed or not, so a crashed call
//! never blocks the next one. Failing to take it is an error, never ignored.

use crate::error::{code, CniError};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// The held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the exclusive lock on `path` (created if missing), waiting up to `timeout`.
    ///
    /// Waits by polling with a short, growing sleep rather than blocking in `flock`, so the wait
    /// is bounded: a runtime's own timeout should see "try again later", not a hung plugin.
    ///
    /// # Errors
    /// Code 5 if the lock file cannot be opened or locked; code 11 if another call holds the
    /// lock for longer than `timeout`.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Self, CniError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                CniError::new(
                    code::IO_FAILURE,
                    format!("cannot open the lock file {}", path.display()),
                )
                .with_details(e.to_string())
            })?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StateLock { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(CniError::new(
                        code::IO_FAILURE,
                        format!("cannot lock {}", path.display()),
                    )
                    .with_details(e.to_string()))
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CniError::new(
                    code::TRY_AGAIN_LATER,
                    format!("the state lock {} is held by another call", path.display()),
                )
                .with_details(format!("waited {timeout:?}")));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_gives_up_with_try_again_later() {
        let dir = std::env::temp_dir().join(format!("pdipam-cni-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        let held = StateLock::acquire(&path, Duration::from_secs(1)).unwrap();
        // flock locks belong to the open file description: a second open is a second holder.
        let e = StateLock::acquire(&path, Duration::from_millis(30)).unwrap_err();
        assert_eq!(e.code, code::TRY_AGAIN_LATER);
        assert!(e.message.contains("lock"), "{e}");
        drop(held);
        StateLock::acquire(&path, Duration::from_millis(30)).unwrap();
        let e = StateLock::acquire(&dir.join("no/such/dir/lock"), Duration::ZERO).unwrap_err();
        assert_eq!(e.code, code::IO_FAILURE);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
