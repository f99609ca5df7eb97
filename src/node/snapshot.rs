//! A point-in-time picture of a node, for the planner, diagnostics and checkpoints.

use super::{AddressMode, BlockKind, InterfaceFlags, IpFamily, PodKey, PodMetadata, Timestamp};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// One attached block as of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSnapshot {
    /// The prefix, or the secondary address as a /32 or /128.
    pub cidr: IpNet,
    /// Prefix or secondary address.
    pub kind: BlockKind,
    /// Whether it serves pods under the node's mode and family (and its interface does).
    pub serving: bool,
    /// Addresses pods may get from it.
    pub capacity: u32,
    /// Assigned addresses.
    pub assigned: u32,
    /// Addresses still cooling down, with when each becomes free.
    pub cooling: Vec<(IpAddr, Timestamp)>,
}

impl BlockSnapshot {
    /// Addresses a pod could get now.
    pub fn available(&self) -> u32 {
        self.capacity - self.assigned - self.cooling.len() as u32
    }

    /// Neither assigned nor cooling addresses: the block may be given back.
    pub fn is_empty(&self) -> bool {
        self.assigned == 0 && self.cooling.is_empty()
    }
}

/// One interface as of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSnapshot {
    /// The cloud's id.
    pub id: String,
    /// The device number.
    pub device_number: u32,
    /// The primary address.
    pub primary_address: IpAddr,
    /// Primary / trunk / EFA.
    pub flags: InterfaceFlags,
    /// When it was attached (by the node's clock).
    pub attached_at: Timestamp,
    /// Whether its blocks may serve pods (not trunk, not EFA, not the primary interface under
    /// custom networking).
    pub serves_pods: bool,
    /// Its blocks, sorted by CIDR.
    pub blocks: Vec<BlockSnapshot>,
}

impl InterfaceSnapshot {
    /// Slots taken in `family` (the primary address included when it is of that family).
    pub fn slots_used(&self, family: IpFamily) -> u32 {
        let is = |a: IpAddr| match family {
            IpFamily::V4 => a.is_ipv4(),
            IpFamily::V6 => a.is_ipv6(),
        };
        u32::from(is(self.primary_address))
            + self.blocks.iter().filter(|b| is(b.cidr.addr())).count() as u32
    }

    /// Serving blocks.
    pub fn serving(&self) -> impl DoubleEndedIterator<Item = &BlockSnapshot> {
        self.blocks.iter().filter(|b| b.serving)
    }

    /// Assigned addresses in all its blocks.
    pub fn assigned(&self) -> u32 {
        self.blocks.iter().map(|b| b.assigned).sum()
    }

    /// Cooling addresses in all its blocks.
    pub fn cooling(&self) -> u32 {
        self.blocks.iter().map(|b| b.cooling.len() as u32).sum()
    }
}

/// A node as of one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSnapshot {
    /// When it was taken.
    pub taken_at: Timestamp,
    /// The mode pods are served in.
    pub mode: AddressMode,
    /// Why `mode` is secondary-IP although prefix mode was asked for
    /// ([`Node::prefix_fallback`](crate::Node::prefix_fallback)).
    pub prefix_fallback: Option<crate::limits::PrefixFallback>,
    /// The family pods are served in.
    pub family: IpFamily,
    /// Interfaces by device number.
    pub interfaces: Vec<InterfaceSnapshot>,
    /// Interfaces the node may have (instance limit, or `max_eni`).
    pub interface_limit: u32,
    /// Custom networking: the primary interface serves no pods.
    pub custom_networking: bool,
    /// The last time the planner's shrink was carried out.
    pub last_shrink: Option<Timestamp>,
    /// The last time the cloud answered a growth request with an out-of-space error.
    pub last_insufficient_space: Option<Timestamp>,
}

impl NodeSnapshot {
    fn serving(&self) -> impl Iterator<Item = &BlockSnapshot> {
        self.interfaces.iter().flat_map(|i| i.serving())
    }

    /// `T`: pod addresses attached in serving blocks.
    pub fn total(&self) -> u32 {
        self.serving().map(|b| b.capacity).sum()
    }

    /// `A`: assigned addresses in serving blocks.
    pub fn assigned(&self) -> u32 {
        self.serving().map(|b| b.assigned).sum()
    }

    /// Cooling addresses in serving blocks.
    pub fn cooling(&self) -> u32 {
        self.serving().map(|b| b.cooling.len() as u32).sum()
    }

    /// `av = T - A - cooling`: what a pod could get now.
    pub fn available(&self) -> u32 {
        self.total() - self.assigned() - self.cooling()
    }

    /// Serving blocks holding neither assigned nor cooling addresses.
    pub fn empty_blocks(&self) -> u32 {
        self.serving().filter(|b| b.is_empty()).count() as u32
    }
}

/// What a node holds in each kind of block, as ipamd counts its total addresses and prefixes:
/// every attached block of the node's family, serving pods or not (after a change of mode, the
/// blocks of the old kind still count until they are given back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Prefixes attached (/28 or /80).
    pub prefixes: u32,
    /// Pod addresses in those prefixes.
    pub prefix_addresses: u32,
    /// Secondary addresses attached (one pod address each).
    pub secondary_addresses: u32,
}

impl Capacity {
    /// Pod addresses in both kinds.
    pub fn addresses(&self) -> u32 {
        self.prefix_addresses + self.secondary_addresses
    }
}

impl NodeSnapshot {
    /// The node's capacity in both kinds of block ([`Capacity`]).
    pub fn capacity(&self) -> Capacity {
        let mut c = Capacity::default();
        let of_family = |b: &&BlockSnapshot| match self.family {
            IpFamily::V4 => b.cidr.addr().is_ipv4(),
            IpFamily::V6 => b.cidr.addr().is_ipv6(),
        };
        for b in self
            .interfaces
            .iter()
            .flat_map(|i| &i.blocks)
            .filter(of_family)
        {
            match b.kind {
                BlockKind::Prefix => {
                    c.prefixes += 1;
                    c.prefix_addresses += b.capacity;
                }
                BlockKind::Secondary => c.secondary_addresses += b.capacity,
            }
        }
        c
    }
}

/// One pod allocation, as listed by [`Node::pods`](crate::Node::pods).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// The key.
    pub key: PodKey,
    /// The pod's address.
    pub address: IpAddr,
    /// The block it came from.
    pub block: IpNet,
    /// The interface holding that block.
    pub interface_id: Arc<str>,
    /// The metadata given at assignment.
    pub metadata: PodMetadata,
    /// When it was assigned.
    pub assigned_at: Timestamp,
}
