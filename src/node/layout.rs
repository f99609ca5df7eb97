//! The node's attachment layout: interfaces and their blocks, as an immutable snapshot.
//!
//! Attachments change rarely (the warm-pool planner adds or removes a prefix every few seconds at
//! most) while pods are assigned all the time. So the layout is rebuilt whole on every change and
//! shared as an `Arc`; each index shard keeps its own copy, swapped while every shard is locked.
//! A pod assignment then reads the layout under the one shard lock it needs anyway, and no
//! node-wide lock sits on the hot path.

use super::block::{Block, BlockKind};
use super::{AddressMode, IpFamily, NodeConfig, Timestamp};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// What an interface is, beyond its addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InterfaceFlags {
    /// The instance's primary interface (device 0 as a rule): never freed by the planner.
    pub primary: bool,
    /// A trunk interface (security groups for pods): serves no pods, never freed by the planner.
    pub trunk: bool,
    /// An EFA interface: serves no pods, never freed by the planner.
    pub efa: bool,
}

/// An interface to attach to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// The cloud's id, e.g. `eni-0123`.
    pub id: String,
    /// The device number (attachment index); interfaces are tried in this order.
    pub device_number: u32,
    /// The interface's primary address: takes one slot and is never given to a pod.
    pub primary_address: IpAddr,
    /// Primary / trunk / EFA.
    pub flags: InterfaceFlags,
}

#[derive(Debug, Clone)]
pub(crate) struct Interface {
    pub(crate) id: Arc<str>,
    pub(crate) device_number: u32,
    pub(crate) primary_address: IpAddr,
    pub(crate) flags: InterfaceFlags,
    pub(crate) attached_at: Timestamp,
    /// Sorted by CIDR.
    pub(crate) blocks: Vec<Arc<Block>>,
}

impl Interface {
    pub(crate) fn serves_pods(&self, config: &NodeConfig) -> bool {
        !(self.flags.trunk
            || self.flags.efa
            || (config.custom_networking && (self.flags.primary || self.device_number == 0)))
    }
}

/// Whether a block of this kind and family serves pods under `config`.
pub(crate) fn serving_kind(config: &NodeConfig, block: &Block) -> bool {
    let kind = match config.mode {
        AddressMode::Prefix => BlockKind::Prefix,
        AddressMode::Secondary => BlockKind::Secondary,
    };
    let family_ok = match config.family {
        IpFamily::V4 => block.cidr.addr().is_ipv4(),
        IpFamily::V6 => block.cidr.addr().is_ipv6(),
    };
    block.kind == kind && family_ok
}

#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// Sorted by device number.
    pub(crate) interfaces: Vec<Interface>,
    /// The blocks that serve pods, grouped by interface in device order.
    serving: Vec<Arc<Block>>,
    /// End index in `serving` of each interface's group.
    group_ends: Vec<usize>,
}

impl Layout {
    pub(crate) fn new(mut interfaces: Vec<Interface>, config: &NodeConfig) -> Self {
        interfaces.sort_by_key(|i| i.device_number);
        let mut serving = Vec::new();
        let mut group_ends = Vec::new();
        for iface in &interfaces {
            if !iface.serves_pods(config) {
                continue;
            }
            let before = serving.len();
            serving.extend(
                iface
                    .blocks
                    .iter()
                    .filter(|b| serving_kind(config, b))
                    .cloned(),
            );
            if serving.len() > before {
                group_ends.push(serving.len());
            }
        }
        Layout {
            interfaces,
            serving,
            group_ends,
        }
    }

    pub(crate) fn serving(&self) -> &[Arc<Block>] {
        &self.serving
    }

    pub(crate) fn interface(&self, id: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| &*i.id == id)
    }

    /// Every attached block with its interface.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = (&Interface, &Arc<Block>)> {
        self.interfaces
            .iter()
            .flat_map(|i| i.blocks.iter().map(move |b| (i, b)))
    }

    /// The attached block exactly equal to `cidr`.
    pub(crate) fn find_block(&self, cidr: IpNet) -> Option<(&Interface, &Arc<Block>)> {
        self.blocks().find(|(_, b)| b.cidr == cidr)
    }

    /// The attached block handing out `address`, and its offset there.
    pub(crate) fn locate(&self, address: IpAddr) -> Option<(&Arc<Block>, u32)> {
        self.blocks()
            .find_map(|(_, b)| b.offset_of(address).map(|o| (b, o)))
    }

    /// The attached block (of any kind) or primary address overlapping `cidr`.
    pub(crate) fn overlapping(&self, cidr: IpNet) -> Option<(IpNet, &Interface)> {
        for iface in &self.interfaces {
            let primary = IpNet::from(iface.primary_address);
            if overlaps(primary, cidr) {
                return Some((primary, iface));
            }
            if let Some(b) = iface.blocks.iter().find(|b| overlaps(b.cidr, cidr)) {
                return Some((b.cidr, iface));
            }
        }
        None
    }

    /// Claims an address by the packing rule: interfaces by device number; within one, the
    /// most-assigned block that still has a free address (ties: lowest CIDR); within the block,
    /// the lowest address that is neither assigned nor cooling.
    pub(crate) fn claim(&self, now: u64, cooldown: u64) -> Option<(&Arc<Block>, u32)> {
        let mut start = 0;
        for &end in &self.group_ends {
            let group = &self.serving[start..end];
            start = end;
            if let Some(hit) = claim_in_group(group, now, cooldown) {
                return Some(hit);
            }
        }
        None
    }
}

/// Tries the blocks of one interface, most assigned first. The counts are read once: a block
/// that fills up meanwhile just fails its claim and the next one is tried.
fn claim_in_group(group: &[Arc<Block>], now: u64, cooldown: u64) -> Option<(&Arc<Block>, u32)> {
    if let [only] = group {
        return only.claim(now, cooldown).map(|o| (only, o));
    }
    let mut order: Vec<(u32, usize)> = Vec::new();
    let mut small = [(0u32, 0usize); 16];
    let counts: &mut [(u32, usize)] = if group.len() <= small.len() {
        &mut small[..group.len()]
    } else {
        order.resize(group.len(), (0, 0));
        &mut order
    };
    for (i, b) in group.iter().enumerate() {
        let assigned = b.assigned();
        // Full blocks sort last and are skipped below.
        let key = if assigned >= b.capacity() {
            u32::MAX
        } else {
            b.capacity() - assigned
        };
        counts[i] = (key, i);
    }
    // Fewest free first == most assigned first for equal capacities; ties keep CIDR order.
    counts.sort_unstable();
    for &(key, i) in counts.iter() {
        if key == u32::MAX {
            break;
        }
        if let Some(o) = group[i].claim(now, cooldown) {
            return Some((&group[i], o));
        }
    }
    None
}

fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
