//! The node's attachment layout: interfaces and their blocks, as an immutable snapshot.
//!
//! Attachments change rarely (the warm-pool planner adds or removes a prefix every few seconds at
//! most) while pods are assigned all the time. So the layout is rebuilt whole on every change and
//! shared as an `Arc`; each index shard keeps its own copy, swapped while every shard is locked.
//! A pod assignment then reads the layout under the one shard lock it needs anyway, and no
//! node-wide lock sits on the hot path.

use super::block::{Block, BlockKind, Peeked};
use super::{AddressMode, IpFamily, NodeConfig, Timestamp};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// What an interface is, beyond its addresses.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct InterfaceFlags {
    /// The instance's primary interface (device 0 as a rule): never freed by the planner.
    pub primary: bool,
    /// A trunk interface (security groups for pods): serves no pods, never freed by the planner.
    pub trunk: bool,
    /// An EFA interface: serves no pods, never freed by the planner.
    pub efa: bool,
    /// Excluded from pod addresses: keeps its blocks, serves no pod, is never freed by the
    /// planner and counts nothing toward the warm pool, but takes one of the instance's
    /// interfaces. For an interface ipamd marks `IsExcludedForPodIPs`, and for one tagged
    /// `node.k8s.amazonaws.com/no_manage` (attach it with this flag, so that it counts against
    /// the room for new interfaces as ipamd counts it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub excluded: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl InterfaceFlags {
    /// The instance's primary interface, and nothing else.
    pub const PRIMARY: InterfaceFlags = InterfaceFlags {
        primary: true,
        trunk: false,
        efa: false,
        excluded: false,
    };
}

/// An interface to attach to a node: [`InterfaceSpec::new`], then [`flags`](Self::flags) for a
/// primary, trunk or EFA interface.
///
/// ```
/// use pdipam::{InterfaceFlags, InterfaceSpec};
///
/// let primary = InterfaceSpec::new("eni-0", 0, "10.0.0.5".parse()?).flags(InterfaceFlags::PRIMARY);
/// assert!(primary.flags.primary);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

impl InterfaceSpec {
    /// An interface with no flags (neither primary, trunk nor EFA).
    pub fn new(id: impl Into<String>, device_number: u32, primary_address: IpAddr) -> Self {
        InterfaceSpec {
            id: id.into(),
            device_number,
            primary_address,
            flags: InterfaceFlags::default(),
        }
    }

    /// Sets [`flags`](Self::flags).
    pub fn flags(mut self, flags: InterfaceFlags) -> Self {
        self.flags = flags;
        self
    }
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
            || self.flags.excluded
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

/// A block that serves pods, and its index in [`Layout::all`].
#[derive(Debug)]
struct Serving {
    block: Arc<Block>,
    index: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// Sorted by device number.
    pub(crate) interfaces: Vec<Interface>,
    /// Every block, interfaces in device order, each interface's blocks by CIDR. Pod records
    /// name their block by its index here (an index, not an `Arc`, so that assigning and
    /// releasing touch no shared reference count); a new layout comes with a remapping.
    all: Vec<Arc<Block>>,
    /// The blocks that serve pods, grouped by interface in device order, each with its index in
    /// `all`. The block itself sits here too, not only its index: the packing search passes
    /// every serving block on each assignment, and this spares it an index and a bounds check
    /// per block.
    serving: Vec<Serving>,
    /// End index in `serving` of each interface's group.
    group_ends: Vec<usize>,
    /// The mode it was laid out under: read on the assignment path, which holds a shard lock
    /// and so must not take the admin lock where the node keeps the mode.
    pub(crate) mode: AddressMode,
}

impl Layout {
    pub(crate) fn new(mut interfaces: Vec<Interface>, config: &NodeConfig) -> Self {
        interfaces.sort_by_key(|i| i.device_number);
        let mut all = Vec::new();
        let mut serving = Vec::new();
        let mut group_ends = Vec::new();
        for iface in &interfaces {
            let before = serving.len();
            for b in &iface.blocks {
                if iface.serves_pods(config) && serving_kind(config, b) {
                    serving.push(Serving {
                        block: b.clone(),
                        index: all.len() as u32,
                    });
                }
                all.push(b.clone());
            }
            if serving.len() > before {
                group_ends.push(serving.len());
            }
        }
        Layout {
            interfaces,
            all,
            serving,
            group_ends,
            mode: config.mode,
        }
    }

    /// The block at `index` (an index from this layout).
    #[inline]
    pub(crate) fn block(&self, index: u32) -> &Arc<Block> {
        &self.all[index as usize]
    }

    /// Every block, in index order.
    pub(crate) fn all_blocks(&self) -> &[Arc<Block>] {
        &self.all
    }

    /// The index of `block` in this layout, if it is attached.
    pub(crate) fn index_of(&self, block: &Arc<Block>) -> Option<u32> {
        self.all
            .iter()
            .position(|b| Arc::ptr_eq(b, block))
            .map(|i| i as u32)
    }

    /// The blocks that serve pods.
    pub(crate) fn serving(&self) -> impl Iterator<Item = &Arc<Block>> {
        self.serving.iter().map(|s| &s.block)
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

    /// The attached block handing out `address` (its index), and the offset there.
    pub(crate) fn locate(&self, address: IpAddr) -> Option<(u32, u32)> {
        self.all
            .iter()
            .enumerate()
            .find_map(|(i, b)| b.offset_of(address).map(|o| (i as u32, o)))
    }

    /// Claims an address by the packing rule: interfaces by device number; within one, the
    /// most-assigned block that still has a free address (ties: lowest CIDR); within the block,
    /// the lowest address that is neither assigned nor cooling. Returns the block's index.
    pub(crate) fn claim(&self, now: u64, cooldown: u64) -> Option<(u32, u32)> {
        let mut start = 0;
        for &end in &self.group_ends {
            let group = &self.serving[start..end];
            start = end;
            if let Some(hit) = self.claim_in_group(group, now, cooldown) {
                return Some(hit);
            }
        }
        None
    }

    /// Tries the blocks of one interface, most assigned first (ties: lowest CIDR, the group's
    /// order). The common case is one pass: a block is looked at closely only when its count
    /// would beat the best so far, and the look (`peek`) already finds the address, which one
    /// compare-and-swap then claims. Only if that fails (another thread changed the word) is the
    /// chosen block searched again, and then the rest in order.
    fn claim_in_group(&self, group: &[Serving], now: u64, cooldown: u64) -> Option<(u32, u32)> {
        let mut best: Option<(u32, &Serving, Peeked)> = None;
        for s in group {
            let b = &s.block;
            // A full block, or one that cannot beat the best so far, needs no closer look.
            let Some(assigned) = b.assigned_unless_full() else {
                continue;
            };
            if best.is_some_and(|(a, _, _)| assigned <= a) {
                continue;
            }
            if let Some(p) = b.peek(now, cooldown) {
                best = Some((assigned, s, p));
            }
        }
        let (_, first, peeked) = best?;
        if let Some(o) = first
            .block
            .claim_peeked(peeked)
            .or_else(|| first.block.claim(now, cooldown))
        {
            return Some((first.index, o));
        }
        let mut order: Vec<(u32, u32, &Block)> = group
            .iter()
            .filter(|s| s.index != first.index)
            .map(|s| (s.block.capacity() - s.block.assigned(), s.index, &*s.block))
            .collect();
        order.sort_unstable_by_key(|&(room, index, _)| (room, index));
        order
            .into_iter()
            .find_map(|(_, i, b)| b.claim(now, cooldown).map(|o| (i, o)))
    }
}

/// The block (of any kind) or primary address among `interfaces` overlapping `cidr`.
pub(crate) fn overlapping(interfaces: &[Interface], cidr: IpNet) -> Option<(IpNet, &Interface)> {
    for iface in interfaces {
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

fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
