//! The whole state of a fleet subnet read at one revision: its configuration, every chunk
//! with its `mod_revision`, and every node registration with its lease. What `verify` checks
//! and what a reclaimer frees from.

use crate::chunk::Chunk;
use crate::config::FleetConfig;
use crate::error::FleetError;
use crate::etcd::Etcd;
use crate::keyspace::Keyspace;
use crate::subnet::read_config;
use etcd_client::GetOptions;
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};

/// The chunks and registrations at one revision.
pub(crate) struct Snapshot {
    pub config: FleetConfig,
    /// The revision read.
    pub revision: i64,
    /// Every chunk written so far, with its `mod_revision`.
    pub chunks: BTreeMap<u64, (Chunk, i64)>,
    /// Every registered node's lease.
    pub leases: HashMap<String, i64>,
}

/// Reads the fleet subnet `cidr` at one revision, checking every chunk as it is parsed.
///
/// # Errors
/// [`FleetError::Corrupt`] naming the first chunk that cannot be read, or etcd's.
pub(crate) async fn read(
    etcd: &Etcd,
    keys: &Keyspace,
    cidr: IpNet,
) -> Result<Snapshot, FleetError> {
    let mut client = etcd.client();
    let chunks = etcd
        .call(client.get(keys.chunks(cidr), Some(GetOptions::new().with_prefix())))
        .await?;
    let revision = chunks.header().map_or(0, |h| h.revision());
    // The configuration at the same revision (its reservations may change).
    let (config, _) = read_config(etcd, keys, cidr, Some(revision)).await?;
    let nodes = etcd
        .call(client.get(
            keys.nodes(),
            Some(GetOptions::new().with_prefix().with_revision(revision)),
        ))
        .await?;
    let leases = nodes
        .kvs()
        .iter()
        .filter_map(|kv| Some((keys.node_name(kv.key())?.to_string(), kv.lease())))
        .collect();
    let mut read = BTreeMap::new();
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
        read.insert(index, (chunk, kv.mod_revision()));
    }
    Ok(Snapshot {
        config,
        revision,
        chunks: read,
        leases,
    })
}
