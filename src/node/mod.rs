//! The node side: what the cloud attached to one instance, and the pods using it.
//!
//! Hot path (assign / release) and cold path (attach / remove) are kept apart:
//!
//! - Pod records live in a sharded index (`SHARDS` mutex-guarded hash tables). A key's shard lock
//!   is held across "look the key up, claim an address, insert the record", which makes
//!   assignment by key atomic (idempotent) without a node-wide lock. Addresses are claimed with
//!   one compare-and-swap on the block's word ([`block`]), so two shards never hand out the same
//!   address.
//! - Attachments change under the `admin` lock *and* every shard lock (taken in index order). An
//!   attachment change therefore sees no assignment half done: the claimed bits equal the records.
//!   Each shard keeps its own `Arc` of the layout ([`layout`]), swapped during the change.
//!
//! This file holds the `Node` value and what its parts share; the methods live by job:
//! [`assign`] (the hot path: a pod's address by key), [`attach`] (attachment changes),
//! [`quarantine`] (restored pods whose address no attached block holds) and [`inspect`]
//! (snapshots, the checkpoint export and `verify`).

mod assign;
mod attach;
mod block;
mod clock;
mod cloud;
mod config;
mod error;
mod gc;
mod inspect;
mod key;
mod layout;
mod quarantine;
mod snapshot;

pub use block::BlockKind;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use cloud::{CloudDiff, ObservedInterface, RECONCILE_COOLDOWN};
pub use config::{AddressMode, IpFamily, NodeConfig};
pub use error::{NodeError, NodeInvariantViolation};
pub use gc::{GcPolicy, GcReport};
pub use key::{PodKey, PodMetadata, PodRequest, MIGRATED_IF_NAME, MIGRATED_NETWORK_NAME};
pub use layout::{InterfaceFlags, InterfaceSpec};
pub use snapshot::{BlockSnapshot, Capacity, InterfaceSnapshot, NodeSnapshot, PodInfo};

use self::clock::duration_nanos;
use self::layout::Layout;
use crate::limits::{InstanceLimits, NodeLimits, PrefixFallback};
use crate::sync::{Mutex, MutexGuard};
use hashbrown::HashTable;
use ipnet::IpNet;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Index shards: enough that two threads rarely meet; few enough that a cold-path change, which
/// locks them all, stays cheap. loom models get two, to keep their state space small.
const SHARDS: usize = if cfg!(loom) { 2 } else { 64 };

/// The pod-key hasher: keyed per node, so that keys chosen by an outsider cannot be made to
/// collide. loom replays each execution and needs every run to take the same shards, so models
/// get a fixed seed.
#[cfg(not(loom))]
type KeyHasher = foldhash::fast::RandomState;
#[cfg(loom)]
type KeyHasher = foldhash::fast::FixedState;

/// The address given to a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The pod's address.
    pub address: IpAddr,
    /// The block (prefix, or secondary address as /32 or /128) it came from.
    pub block: IpNet,
    /// The device number of the interface holding the block ([`Node::pod`] also names the
    /// interface; the hot path returns no shared string, to touch no shared reference count).
    pub device_number: u32,
    /// `true` when the key held this address already (a repeated assignment changes nothing).
    pub existing: bool,
}

/// What a key holds ([`Node::held_by`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// An address of an attached block.
    Assigned(Assignment),
    /// An address in [quarantine](Node::quarantined): its block is not attached.
    Quarantined(IpAddr),
}

/// What a release gave back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// The address, now cooling down (or free, with a zero cooldown).
    pub address: IpAddr,
    /// The block it belongs to.
    pub block: IpNet,
    /// The device number of the interface holding the block, as [`Assignment`] gives it
    /// ([`Node::snapshot`] names the interface); `None` for a pod released from
    /// [quarantine](Node::quarantined), whose block is on no interface.
    pub device_number: Option<u32>,
    /// The metadata it was assigned with.
    pub metadata: PodMetadata,
    /// When it was assigned.
    pub assigned_at: Timestamp,
}

#[derive(Debug)]
struct PodRecord {
    key: PodKey,
    /// Index of the block in the shard's layout (remapped when the layout changes).
    block: u32,
    offset: u32,
    metadata: PodMetadata,
    assigned_at: Timestamp,
}

impl PodRecord {
    /// The record of `request` holding `offset` of block `block` since `assigned_at`.
    fn new(request: PodRequest, block: u32, offset: u32, assigned_at: Timestamp) -> Self {
        Self {
            key: request.key,
            block,
            offset,
            metadata: request.metadata,
            assigned_at,
        }
    }
}

#[derive(Debug)]
struct Shard {
    layout: Arc<Layout>,
    pods: HashTable<PodRecord>,
    /// This shard's keys in the node's quarantine, with their addresses: a quarantined key
    /// holds its address, and assignment and release by key must see that without the admin
    /// lock. Nearly always empty; written only with the admin lock held too.
    quarantined: Vec<(PodKey, IpAddr)>,
}

/// The address held in quarantine by the key for which `is_key` holds, in a shard's
/// `quarantined` list.
#[inline(always)]
fn quarantined_in(list: &[(PodKey, IpAddr)], is_key: impl Fn(&PodKey) -> bool) -> Option<IpAddr> {
    // The common case, an empty quarantine, is one length check.
    if list.is_empty() {
        return None;
    }
    list.iter().find(|(k, _)| is_key(k)).map(|(_, a)| *a)
}

/// Keeps each shard on its own cache lines, so two threads in two shards do not share one.
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

#[derive(Debug)]
struct Admin {
    layout: Arc<Layout>,
    /// The mode pods are served in now ([`Node::set_mode`]), and why it is not the one asked
    /// for, if it is not.
    mode: AddressMode,
    prefix_fallback: Option<PrefixFallback>,
    last_shrink: Option<Timestamp>,
    last_insufficient_space: Option<Timestamp>,
    /// Restored pods whose address lies in no attached block: kept, reported, and reinstated
    /// when a block holding the address is attached, so the address is never given to another
    /// pod unless the caller drops the entry.
    quarantine: Vec<PodInfo>,
}

type Guards<'a> = Vec<MutexGuard<'a, Shard>>;

/// The mode a node gets when `asked` is asked for on `limits`: prefix mode falls back to
/// secondary-IP mode where the instance type cannot delegate prefixes, as ipamd does.
fn granted(limits: &InstanceLimits, asked: AddressMode) -> (AddressMode, Option<PrefixFallback>) {
    if asked == AddressMode::Prefix && !limits.supports_prefix_delegation() {
        let why = PrefixFallback::NotNitro {
            hypervisor: limits.hypervisor,
        };
        (AddressMode::Secondary, Some(why))
    } else {
        (asked, None)
    }
}

/// One instance: its interfaces, the prefixes and secondary addresses attached to them, and the
/// pods holding addresses from them.
///
/// `Node` is `Send + Sync`; every method takes `&self`. [`assign`](Node::assign) and
/// [`release`](Node::release) lock one index shard and claim with a compare-and-swap, so they
/// run in parallel for different keys; attachment changes are serialised and briefly stop
/// assignments.
///
/// # Example
/// ```
/// use pdipam::{InterfaceFlags, InterfaceSpec, Node, NodeConfig, PodKey, PodRequest, limits::InstanceLimits};
///
/// // The table's row, borrowed: no copy (an owned or shared `InstanceLimits` works too).
/// let node = Node::new(InstanceLimits::lookup("m5.large")?, NodeConfig::default());
/// node.attach_interface(
///     InterfaceSpec::new("eni-0", 0, "10.0.0.10".parse()?).flags(InterfaceFlags::PRIMARY),
/// )?;
/// node.attach_prefix("eni-0", "10.0.1.16/28".parse()?)?;
/// let a = node.assign(PodRequest::new(PodKey::new("aws-cni", "c1", "eth0")))?;
/// assert_eq!(a.address.to_string(), "10.0.1.16");
/// node.release(&PodKey::new("aws-cni", "c1", "eth0"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Node {
    limits: NodeLimits,
    /// As built; the mode in force is in [`Admin`] (see [`Node::config`]).
    config: NodeConfig,
    /// How long a released address rests, in nanoseconds: the configured cooldown plus the
    /// clock's resolution (zero: no cooldown).
    cooldown: u64,
    clock: Arc<dyn Clock>,
    hasher: KeyHasher,
    shards: Box<[Padded<Mutex<Shard>>]>,
    admin: Mutex<Admin>,
    /// pdipam's own attachment changes of the last minute, for [`Node::reconcile`]. Taken
    /// only inside an attachment change, after the admin and shard locks.
    recent: Mutex<cloud::RecentChanges>,
    gc: gc::GcState,
}

impl Node {
    /// A node with no interfaces, on the system clock. `limits` is what
    /// [`InstanceLimits::lookup`] returns (borrowed, not copied), or limits of the caller's own
    /// ([`NodeLimits`]).
    pub fn new(limits: impl Into<NodeLimits>, config: NodeConfig) -> Self {
        Self::with_clock(limits, config, Arc::new(SystemClock))
    }

    /// A node on the given clock (a [`ManualClock`] in tests and simulations).
    ///
    /// Prefix mode on an instance type that cannot delegate prefixes (neither Nitro nor bare
    /// metal, an m4.xlarge say) falls back to secondary-IP mode, as ipamd does at start, and
    /// says so: [`Node::prefix_fallback`], the snapshot, the plan's explanation.
    pub fn with_clock(
        limits: impl Into<NodeLimits>,
        mut config: NodeConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let limits = limits.into();
        let (mode, prefix_fallback) = granted(&limits, config.mode);
        config.mode = mode;
        let layout = Arc::new(Layout::new(Vec::new(), &config));
        let shards = (0..SHARDS)
            .map(|_| {
                Padded(Mutex::new(Shard {
                    layout: layout.clone(),
                    pods: HashTable::new(),
                    quarantined: Vec::new(),
                }))
            })
            .collect();
        Node {
            // A coarse clock may lag by up to its tick at release and at the claim: waiting one
            // tick more means an address does not come back before its cooldown is over. And
            // one nanosecond more: an address rests while the time since its release is at
            // most the cooldown, inclusive, as ipamd compares.
            cooldown: match duration_nanos(config.cooldown) {
                0 => 0,
                c => c
                    .saturating_add(duration_nanos(clock.resolution()))
                    .saturating_add(1),
            },
            limits,
            config,
            clock,
            hasher: KeyHasher::default(),
            shards,
            admin: Mutex::new(Admin {
                layout,
                mode,
                prefix_fallback,
                last_shrink: None,
                last_insufficient_space: None,
                quarantine: Vec::new(),
            }),
            recent: Mutex::new(cloud::RecentChanges::default()),
            gc: gc::GcState::default(),
        }
    }

    /// The instance limits the node was built with.
    pub fn limits(&self) -> &InstanceLimits {
        &self.limits
    }

    /// The node's configuration as in force: its mode is the one pods are served in now
    /// (after a [fallback](Node::prefix_fallback) secondary-IP, after [`Node::set_mode`] the
    /// new one).
    pub fn config(&self) -> NodeConfig {
        let mut c = self.config.clone();
        c.mode = self.admin.lock().mode;
        c
    }

    /// Why the node serves secondary addresses although prefix mode was asked for: the
    /// instance type cannot delegate prefixes. `None` when the mode is as asked.
    pub fn prefix_fallback(&self) -> Option<PrefixFallback> {
        self.admin.lock().prefix_fallback.clone()
    }

    /// Switches the mode pods are served in, on a live node, as a restart with the other
    /// setting would. From the next assignment on, only blocks of the new kind serve new pods;
    /// a pod on a block of the old kind keeps its address, and the planner gives each such block
    /// back once nothing uses it ([`crate::planner::plan`]). Prefix mode on an instance type
    /// that cannot delegate prefixes falls back to secondary-IP mode, as at start: the fallback
    /// is returned (and [`Node::prefix_fallback`] says it).
    pub fn set_mode(&self, mode: AddressMode) -> Option<PrefixFallback> {
        let (mode, fallback) = granted(&self.limits, mode);
        self.relayout_in(mode, fallback.clone());
        fallback
    }

    /// How long a released address rests before it can be assigned again: the configured
    /// cooldown plus the clock's [resolution](Clock::resolution) (a few milliseconds on
    /// [`SystemClock`], none on [`ManualClock`]), so that it does not come back early, plus one
    /// nanosecond (it rests while the time since its release is at most the cooldown, as ipamd
    /// compares); zero when the cooldown is off.
    pub fn effective_cooldown(&self) -> Duration {
        Duration::from_nanos(self.cooldown)
    }

    /// The node's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Interfaces this node may have: the instance's, or `max_eni` if lower. A `max_eni` below
    /// 1 is ignored, as ipamd ignores `MAX_ENI < 1`.
    pub fn interface_limit(&self) -> u32 {
        self.limits
            .max_enis
            .min(self.config.max_eni.filter(|m| *m >= 1).unwrap_or(u32::MAX))
    }

    /// The index shard of `key`: loom models pick keys in different shards, so that the
    /// lock-free claim (not the shard lock) is what they exercise.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn loom_shard_of(&self, key: &PodKey) -> usize {
        shard_index(self.hasher.hash_one(key))
    }

    /// Adds a record whose key the shard does not hold (the caller looked it up under the lock).
    fn insert(&self, shard: &mut Shard, hash: u64, rec: PodRecord) {
        let hasher = &self.hasher;
        shard
            .pods
            .insert_unique(hash, rec, |r| hasher.hash_one(&r.key));
    }

    /// The shard lock of the key with hash `hash`.
    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[shard_index(hash)].0
    }

    /// Records that a shrink (release of prefixes, addresses or an interface) was carried out at
    /// `at`; the planner shrinks at most every 30 seconds.
    pub fn note_shrink(&self, at: Timestamp) {
        self.admin.lock().last_shrink = Some(at);
    }

    /// Records that the cloud refused growth with `InsufficientCidrBlocks` or
    /// `InsufficientFreeAddressesInSubnet` at `at`; the planner then waits 120 seconds.
    pub fn note_insufficient_space(&self, at: Timestamp) {
        self.admin.lock().last_insufficient_space = Some(at);
    }
}

/// The index shard of a key with hash `hash` (the table inside uses the low bits).
fn shard_index(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

/// What the record `rec` says, with its address and block read from `layout`.
fn pod_info(layout: &Layout, rec: &PodRecord) -> PodInfo {
    let block = layout.block(rec.block);
    PodInfo {
        key: rec.key.clone(),
        address: block.address(rec.offset),
        block: block.cidr,
        interface_id: block.interface.clone(),
        metadata: rec.metadata.clone(),
        assigned_at: rec.assigned_at,
    }
}
