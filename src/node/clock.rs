//! Injected time: the node never reads the system clock directly, so tests control cooldowns and
//! planner timers exactly and nothing sleeps.

use crate::sync::{AtomicU64, Ordering};
use std::fmt;
use std::time::Duration;

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

    /// How far behind the true time a reading may lag (a coarse clock's tick). A node adds it
    /// to its cooldown, so that an address does not come back early. Zero by default.
    fn resolution(&self) -> Duration {
        Duration::ZERO
    }
}

/// The system's wall clock, read the cheap way.
///
/// On Linux it reads `CLOCK_REALTIME_COARSE`: the kernel's copy of the wall clock as of its last
/// tick, which costs 6.5-7.3 ns here against 34 ns for the precise clock (`SystemTime::now`),
/// and a node reads the clock on every assignment and every release into cooldown. The price is
/// resolution: one tick (1-10 ms, 4 ms on this machine), which [`Clock::resolution`] reports
/// and a node adds to its cooldown (a tick that a busy hypervisor delivers late can still take
/// that delay off a cooldown: milliseconds in 30 s). Elsewhere it is `SystemTime::now`,
/// resolution zero.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[cfg(target_os = "linux")]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        use rustix::time::{clock_gettime, ClockId};
        Timestamp(timespec_nanos(clock_gettime(ClockId::RealtimeCoarse)))
    }

    fn resolution(&self) -> Duration {
        use rustix::time::{clock_getres, ClockId};
        Duration::from_nanos(timespec_nanos(clock_getres(ClockId::RealtimeCoarse)))
    }
}

#[cfg(not(target_os = "linux"))]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        use std::time::{SystemTime, UNIX_EPOCH};
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(duration_nanos(d))
    }
}

/// A kernel time or interval in nanoseconds; a time before 1970 counts as the epoch (as
/// `SystemTime` before it does here).
#[cfg(target_os = "linux")]
fn timespec_nanos(t: rustix::time::Timespec) -> u64 {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
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

    #[test]
    fn a_manual_clock_can_be_set_both_ways() {
        let c = ManualClock::new(Timestamp::from_unix_nanos(5));
        c.set(Timestamp::from_unix_nanos(3_000));
        assert_eq!(c.now(), Timestamp::from_unix_nanos(3_000));
        c.set(Timestamp::from_unix_nanos(7));
        assert_eq!(c.now(), Timestamp::from_unix_nanos(7));
        assert_eq!(c.resolution(), Duration::ZERO);
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock_and_is_never_ahead_of_it() {
        let tick = SystemClock.resolution();
        if cfg!(target_os = "linux") {
            assert!(
                tick > Duration::ZERO && tick <= Duration::from_millis(100),
                "{tick:?}"
            );
        }
        for _ in 0..1000 {
            let before = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            let coarse = Duration::from_nanos(SystemClock.now().as_unix_nanos());
            let after = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            // A reading is the time of the last tick: not after the call, and about a tick
            // before it at most. The slack is generous because a busy virtual machine can
            // deliver a tick late; the point is that this is the wall clock, not how fresh.
            assert!(
                coarse <= after + Duration::from_millis(1),
                "{coarse:?} > {after:?}"
            );
            assert!(
                coarse + tick + Duration::from_millis(250) >= before,
                "{coarse:?} + {tick:?} < {before:?}"
            );
        }
    }
}
