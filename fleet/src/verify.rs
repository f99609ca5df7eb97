//! A whole-fleet check from one consistent read: every chunk readable and inside its range, no
//! unit held twice, no reserved address held, and the holders whose node has no registration
//! (orphans, which a reclaimer frees after its grace period).

use crate::chunk::Run;
use crate::error::FleetError;
use crate::etcd::Etcd;
use crate::keyspace::Keyspace;
use crate::snapshot::read;
use crate::subnet::rebuild;
use ipnet::IpNet;
use pdipam::{Reservation, SubnetStats};
use std::collections::BTreeMap;

/// What a full read of a fleet subnet found.
#[derive(Debug)]
#[non_exhaustive]
pub struct FleetReport {
    /// The etcd revision the read saw.
    pub revision: i64,
    /// Every allocation, by address.
    pub runs: Vec<Run>,
    /// Allocations per node.
    pub per_node: BTreeMap<String, usize>,
    /// Allocations whose node has no registration, or a registration under another lease.
    pub orphans: Vec<Run>,
    /// The subnet's statistics as rebuilt from the chunks.
    pub stats: SubnetStats,
    /// The subnet's reservations, as configured.
    pub reservations: Vec<Reservation>,
    /// The addresses the subnet's profile reserves (never handed out).
    pub reserved: Vec<std::net::IpAddr>,
}

/// Reads every key of the fleet subnet `cidr` at one revision and checks it.
///
/// # Errors
/// [`FleetError::Corrupt`] naming the first key that breaks an invariant (a chunk that cannot be
/// read, an allocation outside its chunk, two that overlap, a reserved address held), or
/// etcd's.
pub async fn verify(etcd: &Etcd, keys: &Keyspace, cidr: IpNet) -> Result<FleetReport, FleetError> {
    let snap = read(etcd, keys, cidr).await?;
    let config = &snap.config;
    // A prefix larger than a chunk is listed in every chunk it covers: once in the report, and
    // in every one of those chunks, or the state is inconsistent.
    let mut runs: Vec<Run> = Vec::new();
    for (index, (chunk, _)) in &snap.chunks {
        for r in &chunk.runs {
            let first = config.chunk_of(r.cidr);
            if first != *index {
                if !snap
                    .chunks
                    .get(&first)
                    .is_some_and(|(c, _)| c.runs.contains(r))
                {
                    return Err(FleetError::Corrupt {
                        key: keys.chunk(cidr, first),
                        message: format!(
                            "{} (held by {}) covers this chunk but is not listed in it",
                            r.cidr, r.node
                        ),
                    });
                }
                continue;
            }
            if let Some(missing) = config
                .chunks_of(r.cidr)
                .find(|i| !snap.chunks.get(i).is_some_and(|(c, _)| c.runs.contains(r)))
            {
                return Err(FleetError::Corrupt {
                    key: keys.chunk(cidr, missing),
                    message: format!(
                        "{} (held by {}) covers this chunk but is not listed in it",
                        r.cidr, r.node
                    ),
                });
            }
            runs.push(r.clone());
        }
    }
    let subnet = rebuild(&snap.config, runs.iter()).map_err(|(run, e)| FleetError::Corrupt {
        key: keys.chunk(cidr, snap.config.chunk_of(run.cidr)),
        message: format!("{} (held by {}): {e}", run.cidr, run.node),
    })?;
    let mut per_node = BTreeMap::new();
    let mut orphans = Vec::new();
    for r in &runs {
        *per_node.entry(r.node.clone()).or_insert(0) += 1;
        if snap.leases.get(&r.node) != Some(&r.lease) {
            orphans.push(r.clone());
        }
    }
    Ok(FleetReport {
        revision: snap.revision,
        runs,
        per_node,
        orphans,
        stats: subnet.stats(),
        reservations: snap.config.reservations.clone(),
        reserved: subnet
            .allocations()
            .into_iter()
            .filter_map(|h| match h {
                pdipam::Holder::Reserved(a) => Some(a),
                _ => None,
            })
            .collect(),
    })
}
