//! Injected time: the node never reads the system clock directly, so tests control cooldowns and
//! planner timers exactly and nothing sleeps.

use crate::sync::{AtomicU64, Ordering};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall-clock instant in nanoseconds since the Unix epoch.
///
/// Wall clock, not a monotonic one, because cooldowns and allocation times are written to
/// checkpoints and must mean the same thing after a restart.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_unix_nanos(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_nanos(d)))
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// Nanoseconds of a duration, saturating (a duration of 584 years or more is "forever").
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A source of time for a [`Node`](crate::Node): [`SystemClock`] in production, a
/// [`ManualClock`] in tests and simulations.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(duration_nanos(d))
    }
}

/// A clock that moves only when told to; shareable (`Arc<ManualClock>`) between a test and the
/// nodes it drives.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicU64::new(start.0))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(duration_nanos(d), Ordering::SeqCst);
    }

    /// Sets the clock to `t` (backwards too: wall clocks do that).
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_unix_nanos(5));
        assert_eq!(c.now().as_unix_nanos(), 5);
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now().as_unix_nanos(), 1_000_000_005);
        assert_eq!(
            c.now().saturating_since(Timestamp::EPOCH),
            Duration::from_nanos(1_000_000_005)
        );
        assert_eq!(Timestamp::EPOCH.saturating_since(c.now()), Duration::ZERO);
        assert_eq!(c.now().to_string(), "1.000000005");
        assert!(SystemClock.now() > Timestamp::from_unix_nanos(1_700_000_000_000_000_000));
    }
}
