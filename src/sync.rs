//! The one place that names the synchronisation primitives.
//!
//! Normal builds use `std` atomics, `portable_atomic::AtomicU128` and `parking_lot` locks. Under
//! `--cfg loom` every primitive the claim protocol relies on is swapped for a loom-modelled one, so
//! the model checker sees each atomic step. The wrappers keep parking_lot's shape (`lock()` returns
//! the guard directly) so the rest of the crate is written once.

#[cfg(not(loom))]
mod imp {
    pub(crate) use parking_lot::{Mutex, MutexGuard, RwLock};
    pub(crate) use portable_atomic::AtomicU128;
    pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
    pub(crate) use std::sync::OnceLock;
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
    // Pages are materialised before any loom thread starts (tiny maps have one page, created
    // eagerly), so the once-cell itself needs no modelling.
    pub(crate) use std::sync::OnceLock;

    /// loom has no 128-bit atomic; a loom mutex around a `u128` gives the same linearisable
    /// load / compare-exchange steps, each of which loom can interleave.
    #[derive(Debug)]
    pub(crate) struct AtomicU128(loom::sync::Mutex<u128>);

    impl AtomicU128 {
        pub(crate) fn new(v: u128) -> Self {
            Self(loom::sync::Mutex::new(v))
        }
        pub(crate) fn load(&self, _: Ordering) -> u128 {
            *self.0.lock().unwrap()
        }
        pub(crate) fn compare_exchange(
            &self,
            current: u128,
            new: u128,
            _: Ordering,
            _: Ordering,
        ) -> Result<u128, u128> {
            let mut g = self.0.lock().unwrap();
            if *g == current {
                *g = new;
                Ok(current)
            } else {
                Err(*g)
            }
        }
    }

    pub(crate) use loom::sync::MutexGuard;

    /// parking_lot-shaped mutex over loom's.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(v: T) -> Self {
            Self(loom::sync::Mutex::new(v))
        }
        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap()
        }
    }

    /// parking_lot-shaped reader-writer lock over loom's.
    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(v: T) -> Self {
            Self(loom::sync::RwLock::new(v))
        }
        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap()
        }
        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap()
        }
    }
}

pub(crate) use imp::*;

/// Back-off between retries of a lock-free loop (loom must be told, or it sees a livelock).
#[inline]
pub(crate) fn spin_wait() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
