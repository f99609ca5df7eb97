//! Giving back the blocks of nodes that are gone: a [`Reclaimer`] frees an allocation whose
//! node has no registration under the allocation's lease once it has seen it orphaned for a
//! grace period, never before; [`release_node`] is an operator's "this node is dead, free it
//! now".

use crate::chunk::{Chunk, Run};
use crate::error::FleetError;
use crate::etcd::Etcd;
use crate::keyspace::Keyspace;
use crate::snapshot::{read, Snapshot};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use ipnet::IpNet;
use pdipam::{Clock, SystemClock, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// What one reclaim pass did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReclaimReport {
    /// Allocations freed.
    pub freed: Vec<Run>,
    /// Orphans still within their grace period, with the time left.
    pub waiting: Vec<(Run, Duration)>,
}

/// Frees orphaned allocations of one fleet subnet after a grace period. Any member (or the
/// command line) may run one; several at once are safe, since each free is a transaction
/// that compares the chunk's revision and that the node still has no registration under the
/// allocation's lease. The grace is counted from when this reclaimer first saw the allocation
/// orphaned, so a reclaimer that starts late never frees early.
pub struct Reclaimer {
    etcd: Etcd,
    keys: Keyspace,
    cidr: IpNet,
    grace: Duration,
    clock: Arc<dyn Clock>,
    first_seen: HashMap<(IpNet, String, i64), Timestamp>,
}

impl Reclaimer {
    /// A reclaimer on the system clock.
    pub fn new(etcd: &Etcd, keys: &Keyspace, cidr: IpNet, grace: Duration) -> Self {
        Self::with_clock(etcd, keys, cidr, grace, Arc::new(SystemClock))
    }

    /// A reclaimer reading `clock` (a `ManualClock` in tests).
    pub fn with_clock(
        etcd: &Etcd,
        keys: &Keyspace,
        cidr: IpNet,
        grace: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Reclaimer {
            etcd: etcd.clone(),
            keys: keys.clone(),
            cidr,
            grace,
            clock,
            first_seen: HashMap::new(),
        }
    }

    /// One pass: reads the fleet, notes new orphans, and frees those orphaned for longer than
    /// the grace period.
    ///
    /// # Errors
    /// [`FleetError::Corrupt`] naming a key, or etcd's; what was freed before stays freed.
    pub async fn run_once(&mut self) -> Result<ReclaimReport, FleetError> {
        let now = self.clock.now();
        let snap = read(&self.etcd, &self.keys, self.cidr).await?;
        let mut report = ReclaimReport::default();
        let mut orphans_now = HashMap::new();
        let mut due: BTreeMap<u64, Vec<Run>> = BTreeMap::new();
        for (index, (chunk, _)) in &snap.chunks {
            for run in &chunk.runs {
                // A prefix larger than a chunk counts once, from the first chunk it covers.
                if snap.leases.get(&run.node) == Some(&run.lease)
                    || snap.config.chunk_of(run.cidr) != *index
                {
                    continue;
                }
                let id = (run.cidr, run.node.clone(), run.lease);
                let since = *self.first_seen.get(&id).unwrap_or(&now);
                orphans_now.insert(id, since);
                let orphaned = now.saturating_since(since);
                if orphaned >= self.grace {
                    due.entry(*index).or_default().push(run.clone());
                } else {
                    report.waiting.push((run.clone(), self.grace - orphaned));
                }
            }
        }
        // Orphans no longer orphaned (adopted, released) are forgotten.
        self.first_seen = orphans_now;
        for (_, runs) in due {
            report
                .freed
                .extend(free_all(&self.etcd, &self.keys, &snap, &runs).await?);
        }
        for r in &report.freed {
            self.first_seen.remove(&(r.cidr, r.node.clone(), r.lease));
        }
        Ok(report)
    }
}

/// Releases a node at once, as an operator who knows it is dead: its registration is deleted
/// and its lease revoked (so it can commit nothing more), then every allocation it holds in
/// the fleet subnet `cidr` is freed. Returns what was freed.
///
/// # Errors
/// [`FleetError::Corrupt`] naming a key, or etcd's; what was freed before stays freed.
pub async fn release_node(
    etcd: &Etcd,
    keys: &Keyspace,
    cidr: IpNet,
    node: &str,
) -> Result<Vec<Run>, FleetError> {
    let mut client = etcd.client();
    let registration = etcd.call(client.get(keys.node(node), None)).await?;
    if let Some(kv) = registration.kvs().first() {
        if kv.lease() != 0 {
            etcd.call(client.lease_revoke(kv.lease())).await.ok();
        }
    }
    etcd.call(client.delete(keys.node(node), None)).await?;
    let snap = read(etcd, keys, cidr).await?;
    let mut freed = Vec::new();
    for (index, (chunk, _)) in &snap.chunks {
        let runs: Vec<Run> = chunk
            .runs
            .iter()
            // A prefix larger than a chunk is freed once, from the first chunk it covers.
            .filter(|r| r.node == node && snap.config.chunk_of(r.cidr) == *index)
            .cloned()
            .collect();
        if !runs.is_empty() {
            freed.extend(free_all(etcd, keys, &snap, &runs).await?);
        }
    }
    Ok(freed)
}

/// Frees `runs` (all in one chunk, or one prefix larger than a chunk, as listed in the first
/// chunk it covers; the same run listed again from the other chunks it covers is skipped).
async fn free_all(
    etcd: &Etcd,
    keys: &Keyspace,
    snap: &Snapshot,
    runs: &[Run],
) -> Result<Vec<Run>, FleetError> {
    let mut freed = Vec::new();
    let mut spanning = Vec::new();
    let mut within: BTreeMap<u64, Vec<Run>> = BTreeMap::new();
    for r in runs {
        if r.cidr.prefix_len() < snap.config.chunk_len {
            if !spanning.contains(r) {
                spanning.push(r.clone());
            }
        } else {
            within
                .entry(snap.config.chunk_of(r.cidr))
                .or_default()
                .push(r.clone());
        }
    }
    for (index, runs) in within {
        freed.extend(free(etcd, keys, snap, &[index], &runs).await?);
    }
    for r in spanning {
        let indices: Vec<u64> = snap
            .config
            .chunks_of(r.cidr)
            .filter(|i| snap.chunks.contains_key(i))
            .collect();
        freed.extend(free(etcd, keys, snap, &indices, std::slice::from_ref(&r)).await?);
    }
    Ok(freed)
}

/// Frees `runs` from the chunks `indices` in one transaction that holds only if every chunk
/// is unchanged since `snap` and no run's node has a registration under the run's lease. A
/// chunk changed meanwhile leaves them for the next pass.
async fn free(
    etcd: &Etcd,
    keys: &Keyspace,
    snap: &Snapshot,
    indices: &[u64],
    runs: &[Run],
) -> Result<Vec<Run>, FleetError> {
    let mut compares = Vec::new();
    let mut puts = Vec::new();
    for index in indices {
        let (chunk, revision) = &snap.chunks[index];
        let key = keys.chunk(snap.config.cidr, *index);
        let kept = Chunk {
            runs: chunk
                .runs
                .iter()
                .filter(|r| !runs.contains(r))
                .cloned()
                .collect(),
        };
        compares.push(Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            *revision,
        ));
        puts.push(TxnOp::put(key, kept.to_bytes(), None));
    }
    for r in runs {
        // An absent registration compares as lease 0, which no run holds.
        compares.push(Compare::lease(
            keys.node(&r.node),
            CompareOp::NotEqual,
            r.lease,
        ));
    }
    let txn = Txn::new().when(compares).and_then(puts);
    let resp = etcd.call(etcd.client().txn(txn)).await?;
    Ok(if resp.succeeded() {
        runs.to_vec()
    } else {
        Vec::new()
    })
}
