//! Import of the VPC CNI's `vpc-cni-ipam/1` file (`/var/run/aws-node/ipam.json`), so a live node
//! can move to pdipam.

use super::node::check_unique;
use super::PersistError;
use crate::node::{Node, NodeError, PodInfo, PodKey, PodMetadata, PodRequest, Timestamp};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// The version string ipamd writes.
pub const VPC_CNI_VERSION: &str = "vpc-cni-ipam/1";

#[derive(Deserialize)]
struct IpamFile {
    version: String,
    #[serde(default)]
    allocations: Vec<IpamAllocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IpamAllocation {
    #[serde(default)]
    network_name: String,
    #[serde(rename = "containerID")]
    container_id: String,
    #[serde(default)]
    if_name: String,
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
    #[serde(default)]
    allocation_timestamp: u64,
    #[serde(default)]
    metadata: IpamMetadata,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IpamMetadata {
    #[serde(default)]
    k8s_pod_namespace: String,
    #[serde(default)]
    k8s_pod_name: String,
    #[serde(default)]
    interfaces_count: u32,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Allocations now held by the node.
    pub imported: usize,
    /// Allocations whose address lies in no attached block: quarantined in the node (ipamd
    /// drops them silently; pdipam keeps their addresses from other pods until the caller
    /// decides).
    pub quarantined: Vec<PodInfo>,
}

/// One allocation of a `vpc-cni-ipam/1` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcCniEntry {
    /// The pod's key (network name, container id, interface name).
    pub key: PodKey,
    /// Its address (`ipv4` or `ipv6`).
    pub address: IpAddr,
    /// Namespace, pod name and interface count, as ipamd recorded them.
    pub metadata: PodMetadata,
    /// `allocationTimestamp`.
    pub allocated_at: Timestamp,
}

/// Reads the allocations of a `vpc-cni-ipam/1` file, in the file's order, without changing
/// anything: what [`import_vpc_cni`] would import, and what `pdipam inspect` shows.
///
/// # Errors
/// [`PersistError::Parse`] (not JSON, an entry without exactly one of `ipv4`/`ipv6`),
/// [`PersistError::UnknownVersion`], [`PersistError::DuplicateAddress`] or
/// [`PersistError::DuplicateKey`] naming both entries.
pub fn read_vpc_cni(bytes: &[u8], source: &str) -> Result<Vec<VpcCniEntry>, PersistError> {
    let parse = |message: String| PersistError::Parse {
        source_name: source.into(),
        message,
    };
    let file: IpamFile = serde_json::from_slice(bytes).map_err(|e| parse(e.to_string()))?;
    if file.version != VPC_CNI_VERSION {
        return Err(PersistError::UnknownVersion {
            source_name: source.into(),
            found: file.version,
            expected: VPC_CNI_VERSION.into(),
        });
    }
    let mut entries = Vec::with_capacity(file.allocations.len());
    for (n, a) in file.allocations.into_iter().enumerate() {
        let address = match (a.ipv4, a.ipv6) {
            (Some(x), None) | (None, Some(x)) => x,
            _ => {
                return Err(parse(format!(
                    "allocation {n} needs exactly one of ipv4 and ipv6"
                )))
            }
        };
        entries.push(VpcCniEntry {
            key: PodKey::new(&a.network_name, &a.container_id, &a.if_name),
            address,
            metadata: PodMetadata {
                namespace: a.metadata.k8s_pod_namespace,
                pod_name: a.metadata.k8s_pod_name,
                // Entries from before multi-NIC pods have no count (0): one interface, as
                // ipamd reports them on release.
                interfaces_count: a.metadata.interfaces_count.max(1),
            },
            allocated_at: Timestamp::from_unix_nanos(a.allocation_timestamp),
        });
    }
    check_unique(source, entries.iter().map(|e| (e.key.clone(), e.address)))?;
    Ok(entries)
}

/// Imports the allocations of a `vpc-cni-ipam/1` file into `node`, which must already hold the
/// instance's interfaces and prefixes (or secondary addresses). All or nothing: on error the
/// node is as before. Entries the node holds already (the same key at the same address, assigned
/// or quarantined) count as done, so importing the same file again changes nothing.
///
/// # Errors
/// Those of [`read_vpc_cni`], and [`PersistError::Node`] for an entry the node refuses (an
/// address another pod holds).
pub fn import_vpc_cni(
    bytes: &[u8],
    source: &str,
    node: &Node,
) -> Result<ImportReport, PersistError> {
    let entries = read_vpc_cni(bytes, source)?;
    let mut report = ImportReport::default();
    // Entries an earlier import parked already: like a pod imported before, nothing to do (and
    // nothing to undo if this import fails).
    let parked_before: HashSet<(PodKey, IpAddr)> = node
        .quarantined()
        .into_iter()
        .map(|q| (q.key, q.address))
        .collect();
    let mut done: Vec<PodKey> = Vec::new();
    let mut parked: Vec<PodKey> = Vec::new();
    let undo = |done: &[PodKey], parked: &[PodKey]| {
        for k in done {
            node.forget(k);
        }
        for k in parked {
            let _ = node.release_quarantined(k);
        }
    };
    for VpcCniEntry {
        key,
        address,
        metadata,
        allocated_at: at,
    } in entries
    {
        let request = PodRequest {
            key: key.clone(),
            metadata: metadata.clone(),
        };
        let result = match node.assign_address(request, address, at) {
            Ok(a) if !a.existing => {
                done.push(key.clone());
                report.imported += 1;
                Ok(())
            }
            // Imported before (the same key at the same address): nothing to do.
            Ok(_) => Ok(()),
            Err(NodeError::NotAttached { .. })
                if parked_before.contains(&(key.clone(), address)) =>
            {
                Ok(())
            }
            Err(NodeError::NotAttached { .. }) => {
                let info = PodInfo {
                    key: key.clone(),
                    address,
                    block: IpNet::from(address),
                    interface_id: Arc::from(""),
                    metadata,
                    assigned_at: at,
                };
                node.quarantine(info.clone()).map(|()| {
                    parked.push(key.clone());
                    report.quarantined.push(info);
                })
            }
            Err(e) => Err(e),
        };
        if let Err(error) = result {
            undo(&done, &parked);
            return Err(PersistError::Node {
                source_name: source.into(),
                entry: format!("allocation {key} at {address}"),
                error,
            });
        }
    }
    Ok(report)
}
