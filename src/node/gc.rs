//! Leak garbage collection: releasing allocations whose pods are gone, safely.
//!
//! A CNI DEL that never arrives leaves an address allocated forever. `collect_leaks` compares the
//! allocations with the live pods the caller observed (from the container runtime or the API
//! server) and releases only what is certainly leaked: absent from the live set, assigned before
//! the live set was observed (a pod created after the observation is simply not in it yet), and
//! missing on several consecutive passes or for longer than a grace period.

use super::{Node, PodKey, Timestamp};
use crate::sync::Mutex;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

/// When a missing allocation counts as leaked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcPolicy {
    /// Consecutive passes an allocation must be missing from the live set (default 3).
    pub passes: u32,
    /// Or: how long since it was first seen missing (default 5 minutes).
    pub grace: Duration,
}

impl Default for GcPolicy {
    fn default() -> Self {
        GcPolicy {
            passes: 3,
            grace: Duration::from_secs(300),
        }
    }
}

/// What one `collect_leaks` pass did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Released (or, in a dry run, to be released), with their addresses; they now cool down.
    pub released: Vec<(PodKey, IpAddr)>,
    /// Missing but not yet leaked: key and consecutive passes missing so far.
    pub suspected: Vec<(PodKey, u32)>,
}

/// Per-node memory of missing allocations.
#[derive(Debug)]
pub(crate) struct GcState {
    missing: Mutex<HashMap<PodKey, (Timestamp, u32)>>,
}

impl Default for GcState {
    fn default() -> Self {
        GcState {
            missing: Mutex::new(HashMap::new()),
        }
    }
}

impl Node {
    /// One garbage-collection pass. `live` holds the keys of the pods that existed at
    /// `observed_at`. An allocation is released only if its key is not live, it was assigned
    /// before `observed_at`, and it has been missing on `policy.passes` consecutive passes or
    /// for at least `policy.grace`. A key that is live again is forgotten. With `dry_run` nothing
    /// changes: the report says what a real pass would release (and the pass is not counted).
    pub fn collect_leaks(
        &self,
        live: &HashSet<PodKey>,
        observed_at: Timestamp,
        policy: &GcPolicy,
        dry_run: bool,
    ) -> GcReport {
        let now = self.clock().now();
        let mut report = GcReport::default();
        let mut missing = self.gc.missing.lock();
        let mut next: HashMap<PodKey, (Timestamp, u32)> = HashMap::new();
        for pod in self.pods() {
            if live.contains(&pod.key) || pod.assigned_at >= observed_at {
                continue;
            }
            let (first, passes) = missing.get(&pod.key).copied().unwrap_or((now, 0));
            let passes = passes + 1;
            let leaked =
                passes >= policy.passes.max(1) || now.saturating_since(first) >= policy.grace;
            if leaked {
                report.released.push((pod.key.clone(), pod.address));
            } else {
                report.suspected.push((pod.key.clone(), passes));
                next.insert(pod.key, (first, passes));
            }
        }
        if dry_run {
            return report;
        }
        // A key whose own DEL released it meanwhile (`UnknownPod`, the only refusal) leaked
        // nothing: it is left out of the report.
        report.released.retain(|(key, _)| self.release(key).is_ok());
        *missing = next;
        report
    }
}
