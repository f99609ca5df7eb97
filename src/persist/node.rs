//! The node checkpoint: interfaces, blocks, pods, quarantine, cooldowns, settings, timers.

use super::{envelope, PersistError};
use crate::node::{
    AddressMode, BlockKind, Clock, InterfaceFlags, InterfaceSpec, IpFamily, Node, NodeConfig,
    NodeError, PodInfo, PodKey, PodMetadata, PodRequest, Timestamp,
};
use crate::{limits::InstanceLimits, planner::WarmSettings};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const KIND: &str = "node";

/// A node's complete state, as written to disk. See `docs/checkpoint.md` for the format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCheckpoint {
    /// When it was taken (the node's clock).
    pub written_at: Timestamp,
    /// The instance limits the node ran with (kept whole, so a restore does not depend on the
    /// table of a later build).
    pub limits: InstanceLimits,
    /// The node's configuration.
    pub config: ConfigRecord,
    /// The warm-pool settings it was written under, if the writer gave them.
    pub settings: Option<WarmSettings>,
    /// Interfaces by device number, with what is attached to them.
    pub interfaces: Vec<InterfaceRecord>,
    /// Pod allocations, by address.
    pub pods: Vec<PodEntry>,
    /// Pods whose address lies in no attached block (see [`Node::quarantined`]).
    pub quarantined: Vec<PodEntry>,
    /// Addresses cooling down after a release.
    pub cooling: Vec<CoolingEntry>,
    /// The planner's shrink timer.
    pub last_shrink: Option<Timestamp>,
    /// The planner's out-of-space back-off.
    pub last_insufficient_space: Option<Timestamp>,
}

/// [`NodeConfig`] as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRecord {
    /// Prefix or secondary-IP mode.
    pub mode: AddressMode,
    /// IPv4 or IPv6 pods.
    pub family: IpFamily,
    /// The cooldown in milliseconds.
    pub cooldown_ms: u64,
    /// Custom networking.
    pub custom_networking: bool,
    /// The `MAX_ENI` limit.
    pub max_eni: Option<u32>,
    /// Addresses of a /80 that pods may get.
    pub ipv6_prefix_capacity: u32,
}

/// One interface and what is attached to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceRecord {
    /// The cloud's id.
    pub id: String,
    /// The device number.
    pub device_number: u32,
    /// The primary address.
    pub primary_address: IpAddr,
    /// Primary / trunk / EFA.
    pub flags: InterfaceFlags,
    /// When it was attached.
    pub attached_at: Timestamp,
    /// Delegated prefixes (/28 or /80).
    pub prefixes: Vec<IpNet>,
    /// Secondary addresses.
    pub secondary_addresses: Vec<IpAddr>,
}

/// One pod allocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodEntry {
    /// The CNI network name.
    pub network_name: String,
    /// The container id.
    pub container_id: String,
    /// The interface name in the container.
    pub if_name: String,
    /// The pod's address.
    pub address: IpAddr,
    /// Namespace, pod name, interface count.
    pub metadata: PodMetadata,
    /// When it was assigned.
    pub assigned_at: Timestamp,
}

impl PodEntry {
    /// The key.
    pub fn key(&self) -> PodKey {
        PodKey::new(&self.network_name, &self.container_id, &self.if_name)
    }

    fn from_info(p: &PodInfo) -> Self {
        PodEntry {
            network_name: p.key.network_name().to_owned(),
            container_id: p.key.container_id().to_owned(),
            if_name: p.key.if_name().to_owned(),
            address: p.address,
            metadata: p.metadata.clone(),
            assigned_at: p.assigned_at,
        }
    }
}

/// An address cooling down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoolingEntry {
    /// The address.
    pub address: IpAddr,
    /// When it was released (its cooldown ends `cooldown_ms` later).
    pub released_at: Timestamp,
}

/// What a restore gives back.
#[derive(Debug)]
pub struct RestoredNode {
    /// The node, with every allocation of the checkpoint.
    pub node: Node,
    /// The settings the checkpoint was written under, if any.
    pub settings: Option<WarmSettings>,
    /// Allocations whose address lies in no attached block: kept in the node's quarantine
    /// (never given to another pod), reported here for the caller to decide.
    pub quarantined: Vec<PodInfo>,
}

impl Node {
    /// The node's state as a checkpoint (taken with assignments stopped: one consistent state).
    pub fn checkpoint(&self, settings: Option<&WarmSettings>) -> NodeCheckpoint {
        let (snap, pods, quarantined) = self.export();
        // The cooldown the ends were computed with (the clock's resolution included).
        let cooldown = self.effective_cooldown();
        let mut cooling = Vec::new();
        let interfaces = snap
            .interfaces
            .iter()
            .map(|i| {
                let mut prefixes = Vec::new();
                let mut secondary_addresses = Vec::new();
                for b in &i.blocks {
                    match b.kind {
                        BlockKind::Prefix => prefixes.push(b.cidr),
                        BlockKind::Secondary => secondary_addresses.push(b.cidr.addr()),
                    }
                    for &(address, until) in &b.cooling {
                        let at = until.as_unix_nanos().saturating_sub(duration_ns(cooldown));
                        cooling.push(CoolingEntry {
                            address,
                            released_at: Timestamp::from_unix_nanos(at),
                        });
                    }
                }
                InterfaceRecord {
                    id: i.id.clone(),
                    device_number: i.device_number,
                    primary_address: i.primary_address,
                    flags: i.flags,
                    attached_at: i.attached_at,
                    prefixes,
                    secondary_addresses,
                }
            })
            .collect();
        let c = self.config();
        NodeCheckpoint {
            written_at: snap.taken_at,
            limits: InstanceLimits::clone(self.limits()),
            config: ConfigRecord {
                mode: c.mode,
                family: c.family,
                cooldown_ms: u64::try_from(c.cooldown.as_millis()).unwrap_or(u64::MAX),
                custom_networking: c.custom_networking,
                max_eni: c.max_eni,
                ipv6_prefix_capacity: c.ipv6_prefix_capacity,
            },
            settings: settings.cloned(),
            interfaces,
            pods: pods.iter().map(PodEntry::from_info).collect(),
            quarantined: quarantined.iter().map(PodEntry::from_info).collect(),
            cooling,
            last_shrink: snap.last_shrink,
            last_insufficient_space: snap.last_insufficient_space,
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Refuses a set of allocations in which a key or an address appears twice, naming both keys.
pub(crate) fn check_unique(
    source: &str,
    entries: impl IntoIterator<Item = (PodKey, IpAddr)>,
) -> Result<(), PersistError> {
    let mut by_address: HashMap<IpAddr, PodKey> = HashMap::new();
    let mut keys: HashMap<PodKey, ()> = HashMap::new();
    for (key, address) in entries {
        if keys.insert(key.clone(), ()).is_some() {
            return Err(PersistError::DuplicateKey {
                source_name: source.into(),
                key,
            });
        }
        if let Some(first) = by_address.insert(address, key.clone()) {
            return Err(PersistError::DuplicateAddress {
                source_name: source.into(),
                address,
                first,
                second: key,
            });
        }
    }
    Ok(())
}

impl NodeCheckpoint {
    /// The checkpoint as file bytes (the envelope with its checksum).
    pub fn to_bytes(&self) -> Vec<u8> {
        envelope::seal(KIND, self)
    }

    /// Parses and checks file bytes; `source` names them in errors.
    ///
    /// # Errors
    /// [`PersistError::Parse`], [`PersistError::UnknownVersion`], [`PersistError::BadChecksum`],
    /// [`PersistError::WrongKind`].
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self, PersistError> {
        envelope::open(bytes, source, KIND)
    }

    /// Writes the checkpoint durably to `path` (temporary file, fsync, rename, fsync of the
    /// directory). On error the previous file is intact.
    ///
    /// # Errors
    /// [`PersistError::Io`].
    pub fn write(&self, path: &Path) -> Result<(), PersistError> {
        envelope::write(KIND, self, path)
    }

    /// Reads and checks the checkpoint at `path`.
    ///
    /// # Errors
    /// As [`NodeCheckpoint::from_bytes`], and [`PersistError::Io`].
    pub fn read(path: &Path) -> Result<Self, PersistError> {
        envelope::read(path, KIND)
    }

    /// Rebuilds the node on `clock`. No entry is dropped: an allocation whose address lies in
    /// no attached block is quarantined and reported; cooldowns resume with their remaining
    /// time.
    ///
    /// # Errors
    /// [`PersistError::DuplicateAddress`] / [`PersistError::DuplicateKey`] naming both entries;
    /// [`PersistError::Node`] for an entry the node refuses (naming it). Nothing is built then.
    pub fn restore(
        &self,
        source: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<RestoredNode, PersistError> {
        let refused = |entry: String| {
            move |error: NodeError| PersistError::Node {
                source_name: source.into(),
                entry,
                error,
            }
        };
        let c = &self.config;
        let config = NodeConfig {
            mode: c.mode,
            family: c.family,
            cooldown: Duration::from_millis(c.cooldown_ms),
            custom_networking: c.custom_networking,
            max_eni: c.max_eni,
            ipv6_prefix_capacity: c.ipv6_prefix_capacity,
        };
        check_unique(
            source,
            self.pods
                .iter()
                .chain(&self.quarantined)
                .map(|p| (p.key(), p.address)),
        )?;
        let node = Node::with_clock(self.limits.clone(), config, clock);
        for i in &self.interfaces {
            let spec = InterfaceSpec {
                id: i.id.clone(),
                device_number: i.device_number,
                primary_address: i.primary_address,
                flags: i.flags,
            };
            node.attach_interface_at(spec, i.attached_at)
                .map_err(refused(format!("interface {}", i.id)))?;
            for p in &i.prefixes {
                node.attach_prefix(&i.id, *p)
                    .map_err(refused(format!("prefix {p} on {}", i.id)))?;
            }
            for a in &i.secondary_addresses {
                node.attach_secondary(&i.id, *a)
                    .map_err(refused(format!("secondary address {a} on {}", i.id)))?;
            }
        }
        let mut quarantined = Vec::new();
        for p in self.pods.iter().chain(&self.quarantined) {
            let request = PodRequest {
                key: p.key(),
                metadata: p.metadata.clone(),
            };
            match node.assign_address(request, p.address, p.assigned_at) {
                Ok(_) => {}
                Err(NodeError::NotAttached { .. }) => {
                    let info = PodInfo {
                        key: p.key(),
                        address: p.address,
                        block: IpNet::from(p.address),
                        interface_id: Arc::from(""),
                        metadata: p.metadata.clone(),
                        assigned_at: p.assigned_at,
                    };
                    node.quarantine(info.clone()).map_err(refused(format!(
                        "pod {} at {}",
                        p.key(),
                        p.address
                    )))?;
                    quarantined.push(info);
                }
                Err(e) => return Err(refused(format!("pod {} at {}", p.key(), p.address))(e)),
            }
        }
        for c in &self.cooling {
            match node.mark_cooling(c.address, c.released_at) {
                // The block went away since: nothing left to protect.
                Ok(()) | Err(NodeError::NotAttached { .. }) => {}
                Err(e) => return Err(refused(format!("cooling address {}", c.address))(e)),
            }
        }
        if let Some(t) = self.last_shrink {
            node.note_shrink(t);
        }
        if let Some(t) = self.last_insufficient_space {
            node.note_insufficient_space(t);
        }
        node.verify().map_err(|v| PersistError::Parse {
            source_name: source.into(),
            message: v.to_string(),
        })?;
        Ok(RestoredNode {
            node,
            settings: self.settings.clone(),
            quarantined,
        })
    }
}
