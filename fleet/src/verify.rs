//! A whole-fleet check from one consistent read: every chunk readable and inside its range, no
//! unit held twice, no reserved address held, and the holders whose node has no registration
//! (orphans, which a reclaimer frees after its grace period).

use crate::chunk::{Chunk, Run};
use crate::error::FleetError;
use crate::etcd::Etcd;
use crate::keyspace::Keyspace;
use crate::subnet::{read_config, rebuild};
use etcd_client::GetOptions;
use ipnet::IpNet;
use pdipam::SubnetStats;
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
}

/// Reads every key of the fleet subnet `cidr` at one revision and checks it.
///
/// # Errors
/// [`FleetError::Corrupt`] naming the first key that breaks an invariant (a chunk that cannot be
/// read, an allocation outside its chunk, two that overlap, a reserved address held), or
/// etcd's.
pub async fn verify(etcd: &Etcd, keys: &Keyspace, cidr: IpNet) -> Result<FleetReport, FleetError> {
    let config = read_config(etcd, keys, cidr).await?;
    let mut client = etcd.client();
    let chunks = etcd
        .call(client.get(keys.chunks(cidr), Some(GetOptions::new().with_prefix())))
        .await?;
    let revision = chunks.header().map_or(0, |h| h.revision());
    let nodes = etcd
        .call(client.get(
            keys.nodes(),
            Some(GetOptions::new().with_prefix().with_revision(revision)),
        ))
        .await?;
    let leases: BTreeMap<&str, i64> = nodes
        .kvs()
        .iter()
        .filter_map(|kv| Some((keys.node_name(kv.key())?, kv.lease())))
        .collect();
    let mut runs = Vec::new();
    for kv in chunks.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let index = keys
            .chunk_index(cidr, kv.key())
            .filter(|i| *i < config.chunk_count())
            .ok_or_else(|| FleetError::Corrupt {
                key: key.clone(),
                message: "not a chunk of this subnet".into(),
            })?;
        let chunk = Chunk::from_bytes(kv.value(), config.chunk_cidr(index))
            .map_err(|message| FleetError::Corrupt { key, message })?;
        runs.extend(chunk.runs);
    }
    let subnet = rebuild(&config, runs.iter()).map_err(|(run, e)| FleetError::Corrupt {
        key: keys.chunk(cidr, config.chunk_of(run.cidr)),
        message: format!("{} (held by {}): {e}", run.cidr, run.node),
    })?;
    let mut per_node = BTreeMap::new();
    let mut orphans = Vec::new();
    for r in &runs {
        *per_node.entry(r.node.clone()).or_insert(0) += 1;
        if leases.get(r.node.as_str()) != Some(&r.lease) {
            orphans.push(r.clone());
        }
    }
    Ok(FleetReport {
        revision,
        runs,
        per_node,
        orphans,
        stats: subnet.stats(),
    })
}
