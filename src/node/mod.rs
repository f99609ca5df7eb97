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

mod block;
mod clock;
mod config;
mod error;
mod gc;
mod key;
mod layout;
mod snapshot;

pub use block::BlockKind;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::{AddressMode, IpFamily, NodeConfig};
pub use error::{NodeError, NodeInvariantViolation};
pub use gc::{GcPolicy, GcReport};
use key::KeyParts;
pub use key::{PodKey, PodMetadata, PodRequest};
pub use layout::{InterfaceFlags, InterfaceSpec};
pub use snapshot::{BlockSnapshot, InterfaceSnapshot, NodeSnapshot, PodInfo};

use self::block::{Block, Busy};
use self::clock::duration_nanos;
use self::layout::{serving_kind, Interface, Layout};
use crate::sync::{Mutex, MutexGuard};
use crate::InstanceLimits;
use hashbrown::HashTable;
use ipnet::IpNet;
use std::collections::HashSet;
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

/// What a release gave back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// The address, now cooling down (or free, with a zero cooldown).
    pub address: IpAddr,
    /// The block it belongs to.
    pub block: IpNet,
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
}

/// Keeps each shard on its own cache lines, so two threads in two shards do not share one.
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

#[derive(Debug)]
struct Admin {
    layout: Arc<Layout>,
    last_shrink: Option<Timestamp>,
    last_insufficient_space: Option<Timestamp>,
    /// Restored pods whose address lies in no attached block: kept, reported, and reinstated
    /// when a block holding the address is attached, so the address is never given to another
    /// pod unless the caller drops the entry.
    quarantine: Vec<PodInfo>,
}

type Guards<'a> = Vec<MutexGuard<'a, Shard>>;

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
/// use pdipam::{InstanceLimits, InterfaceFlags, InterfaceSpec, Node, NodeConfig, PodKey, PodRequest};
///
/// let node = Node::new(InstanceLimits::lookup("m5.large")?.clone(), NodeConfig::default());
/// node.attach_interface(InterfaceSpec {
///     id: "eni-0".into(),
///     device_number: 0,
///     primary_address: "10.0.0.10".parse()?,
///     flags: InterfaceFlags { primary: true, ..Default::default() },
/// })?;
/// node.attach_prefix("eni-0", "10.0.1.16/28".parse()?)?;
/// let a = node.assign(PodRequest::new(PodKey::new("aws-cni", "c1", "eth0")))?;
/// assert_eq!(a.address.to_string(), "10.0.1.16");
/// node.release(&PodKey::new("aws-cni", "c1", "eth0"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Node {
    limits: InstanceLimits,
    config: NodeConfig,
    /// How long a released address rests, in nanoseconds: the configured cooldown plus the
    /// clock's resolution (zero: no cooldown).
    cooldown: u64,
    clock: Arc<dyn Clock>,
    hasher: KeyHasher,
    shards: Box<[Padded<Mutex<Shard>>]>,
    admin: Mutex<Admin>,
    gc: gc::GcState,
}

impl Node {
    /// A node with no interfaces, on the system clock.
    pub fn new(limits: InstanceLimits, config: NodeConfig) -> Self {
        Self::with_clock(limits, config, Arc::new(SystemClock))
    }

    /// A node on the given clock (a [`ManualClock`] in tests and simulations).
    pub fn with_clock(limits: InstanceLimits, config: NodeConfig, clock: Arc<dyn Clock>) -> Self {
        let layout = Arc::new(Layout::default());
        let shards = (0..SHARDS)
            .map(|_| {
                Padded(Mutex::new(Shard {
                    layout: layout.clone(),
                    pods: HashTable::new(),
                }))
            })
            .collect();
        Node {
            // A coarse clock may lag by up to its tick at release and at the claim: waiting one
            // tick more means an address does not come back before its cooldown is over.
            cooldown: match duration_nanos(config.cooldown) {
                0 => 0,
                c => c.saturating_add(duration_nanos(clock.resolution())),
            },
            limits,
            config,
            clock,
            hasher: KeyHasher::default(),
            shards,
            admin: Mutex::new(Admin {
                layout,
                last_shrink: None,
                last_insufficient_space: None,
                quarantine: Vec::new(),
            }),
            gc: gc::GcState::default(),
        }
    }

    /// The instance limits the node was built with.
    pub fn limits(&self) -> &InstanceLimits {
        &self.limits
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// How long a released address rests before it can be assigned again: the configured
    /// cooldown plus the clock's [resolution](Clock::resolution) (a few milliseconds on
    /// [`SystemClock`], none on [`ManualClock`]), so that it does not come back early; zero when
    /// the cooldown is off.
    pub fn effective_cooldown(&self) -> Duration {
        Duration::from_nanos(self.cooldown)
    }

    /// The node's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Interfaces this node may have: the instance's, or `max_eni` if lower.
    pub fn interface_limit(&self) -> u32 {
        self.limits
            .max_enis
            .min(self.config.max_eni.unwrap_or(u32::MAX))
    }

    // ---- hot path -------------------------------------------------------------------------

    /// Gives the pod behind `request.key` an address, or returns the one it holds.
    ///
    /// Packing is deterministic: interfaces by device number; within one, the most-assigned
    /// serving block with a free address (ties: lowest CIDR); within it, the lowest address that
    /// is neither assigned nor cooling. The interface's primary address is never given out.
    ///
    /// # Errors
    /// [`NodeError::InvalidKey`] for an empty container id or interface name;
    /// [`NodeError::NoAvailableAddresses`] when no serving address is free (it says how many are
    /// cooling): checked with every index shard locked, so it describes one instant even while
    /// other pods come and go (a full node's requests pay for those locks). Nothing changes on
    /// error.
    pub fn assign(&self, request: PodRequest) -> Result<Assignment, NodeError> {
        check_key(&request.key)?;
        let hash = self.hasher.hash_one(&request.key);
        let mut guard = self.shard(hash).lock();
        let Shard { layout, pods } = &mut *guard;
        // One probe finds the key or the slot it will take (growing the table first if it must:
        // capacity, not content, so a failed claim below still changes nothing).
        let hasher = &self.hasher;
        let slot = match pods.entry(hash, |r| r.key == request.key, |r| hasher.hash_one(&r.key)) {
            hashbrown::hash_table::Entry::Occupied(held) => {
                return Ok(assignment(layout, held.get(), true))
            }
            hashbrown::hash_table::Entry::Vacant(slot) => slot,
        };
        let now = self.clock.now();
        let claimed = layout.claim(now.as_unix_nanos(), self.cooldown);
        let Some((block, offset)) = claimed else {
            drop(guard);
            return self.assign_on_a_still_node(request, hash);
        };
        let rec = PodRecord::new(request, block, offset, now);
        let out = assignment(layout, &rec, false);
        slot.insert(rec);
        Ok(out)
    }

    /// The end of [`Node::assign`] when its search found no address. That search reads one
    /// block after another while other shards' pods come and go, so a release behind it and a
    /// claim ahead of it can make every block look taken although an address was free at every
    /// instant (the loom model `a_failed_assignment_saw_every_address_taken_at_once`). With
    /// every shard locked no assignment or release runs, so the search here sees one instant,
    /// and only its "none free" is reported. Shards are locked in order, as [`Node::change`]
    /// does (which also takes the admin lock first): no cycle. Cold: only a request that finds
    /// the node full pays for the locks.
    #[cold]
    #[inline(never)]
    fn assign_on_a_still_node(
        &self,
        request: PodRequest,
        hash: u64,
    ) -> Result<Assignment, NodeError> {
        let mut guards: Guards<'_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let shard = &mut *guards[shard_index(hash)];
        // Another thread may have assigned this key while no lock was held.
        if let Some(rec) = shard.pods.find(hash, |r| r.key == request.key) {
            return Ok(assignment(&shard.layout, rec, true));
        }
        let now = self.clock.now();
        let Some((block, offset)) = shard.layout.claim(now.as_unix_nanos(), self.cooldown) else {
            let cooling = self.cooling_in(&shard.layout, now);
            return Err(NodeError::NoAvailableAddresses {
                key: request.key,
                cooling,
            });
        };
        let rec = PodRecord::new(request, block, offset, now);
        let out = assignment(&shard.layout, &rec, false);
        self.insert(shard, hash, rec);
        Ok(out)
    }

    /// Releases the address held by `key`; it then cools down for the configured time.
    ///
    /// # Errors
    /// [`NodeError::UnknownPod`] when the key holds nothing (a CNI DEL may treat that as done).
    pub fn release(&self, key: &PodKey) -> Result<Released, NodeError> {
        // Compared whole (one length check and one memcmp), not part by part.
        self.release_matching(self.hasher.hash_one(key), |k| k == key, || key.clone())
    }

    /// [`Node::release`] by the key's parts, without building a [`PodKey`]: for callers that
    /// hold the parts as separate strings (a CNI DEL, the C ABI).
    ///
    /// # Errors
    /// As [`Node::release`].
    ///
    /// # Example
    /// ```
    /// # use pdipam::*;
    /// let node = Node::new(InstanceLimits::lookup("m5.large")?.clone(), NodeConfig::default());
    /// node.attach_interface(InterfaceSpec {
    ///     id: "eni-0".into(), device_number: 0, primary_address: "10.0.0.5".parse()?,
    ///     flags: InterfaceFlags { primary: true, ..Default::default() },
    /// })?;
    /// node.attach_prefix("eni-0", "10.0.1.16/28".parse()?)?;
    /// let a = node.assign(PodRequest::new(PodKey::new("net", "c1", "eth0")))?;
    /// assert_eq!(node.release_parts("net", "c1", "eth0")?.address, a.address);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_parts(
        &self,
        network_name: &str,
        container_id: &str,
        if_name: &str,
    ) -> Result<Released, NodeError> {
        self.release_parts_of(&KeyParts(network_name, container_id, if_name))
    }

    fn release_parts_of(&self, parts: &KeyParts<'_>) -> Result<Released, NodeError> {
        self.release_matching(
            self.hasher.hash_one(parts),
            |k| k.is(parts),
            || PodKey::new(parts.0, parts.1, parts.2),
        )
    }

    /// Releases the record with key hash `hash` for which `is_key` holds; `key` builds the key
    /// for the error if there is none.
    #[inline(always)]
    fn release_matching(
        &self,
        hash: u64,
        is_key: impl Fn(&PodKey) -> bool,
        key: impl FnOnce() -> PodKey,
    ) -> Result<Released, NodeError> {
        let mut guard = self.shard(hash).lock();
        let shard = &mut *guard;
        let Ok(entry) = shard.pods.find_entry(hash, |r| is_key(&r.key)) else {
            return Err(NodeError::UnknownPod { key: key() });
        };
        let (rec, _) = entry.remove();
        let now = if self.cooldown == 0 {
            0
        } else {
            self.clock.now().as_unix_nanos()
        };
        let block = shard.layout.block(rec.block);
        block.release(rec.offset, now, self.cooldown);
        Ok(Released {
            address: block.address(rec.offset),
            block: block.cidr,
            metadata: rec.metadata,
            assigned_at: rec.assigned_at,
        })
    }

    /// Gives the pod behind `request.key` exactly `address` (a restore, an import, or a caller
    /// with its own placement). The address may lie in any attached block, serving or not: a
    /// pod restored after a mode change keeps its secondary address.
    ///
    /// # Errors
    /// [`NodeError::InvalidKey`]; [`NodeError::KeyHoldsOther`] when the key holds a different
    /// address (the same address is returned as `existing`); [`NodeError::NotAttached`] when no
    /// attached block hands out `address`; [`NodeError::AddressInUse`] or
    /// [`NodeError::AddressCooling`] when it is not free.
    pub fn assign_address(
        &self,
        request: PodRequest,
        address: IpAddr,
        assigned_at: Timestamp,
    ) -> Result<Assignment, NodeError> {
        check_key(&request.key)?;
        let hash = self.hasher.hash_one(&request.key);
        let mut shard = self.shard(hash).lock();
        let shard = &mut *shard;
        if let Some(rec) = shard.pods.find(hash, |r| r.key == request.key) {
            let held = shard.layout.block(rec.block).address(rec.offset);
            if held == address {
                return Ok(assignment(&shard.layout, rec, true));
            }
            return Err(NodeError::KeyHoldsOther {
                key: request.key,
                held,
            });
        }
        let Some((block, offset)) = shard.layout.locate(address) else {
            return Err(NodeError::NotAttached {
                cidr: IpNet::from(address),
            });
        };
        let now = self.clock.now().as_unix_nanos();
        shard
            .layout
            .block(block)
            .claim_at(offset, now, self.cooldown)
            .map_err(|busy| match busy {
                Busy::Assigned => NodeError::AddressInUse { address },
                Busy::Cooling => NodeError::AddressCooling { address },
            })?;
        let rec = PodRecord::new(request, block, offset, assigned_at);
        let out = assignment(&shard.layout, &rec, false);
        self.insert(shard, hash, rec);
        Ok(out)
    }

    /// Marks a free `address` as cooling since `released_at` (a restore resumes cooldowns with
    /// their remaining time).
    ///
    /// # Errors
    /// [`NodeError::NotAttached`], or [`NodeError::AddressInUse`] when a pod holds it.
    pub fn mark_cooling(&self, address: IpAddr, released_at: Timestamp) -> Result<(), NodeError> {
        // Under the admin lock, so the block cannot be detached meanwhile.
        let admin = self.admin.lock();
        let Some((block, offset)) = admin.layout.locate(address) else {
            return Err(NodeError::NotAttached {
                cidr: IpNet::from(address),
            });
        };
        admin
            .layout
            .block(block)
            .set_cooling(offset, released_at.as_unix_nanos(), self.cooldown)
            .map_err(|_| NodeError::AddressInUse { address })
    }

    /// Undoes an assignment without a cooldown (a write-through or import rollback: the
    /// address was never really given out).
    pub(crate) fn forget(&self, key: &PodKey) -> Option<IpAddr> {
        let hash = self.hasher.hash_one(key);
        let mut guard = self.shard(hash).lock();
        let shard = &mut *guard;
        let (rec, _) = shard
            .pods
            .find_entry(hash, |r| &r.key == key)
            .ok()?
            .remove();
        let block = shard.layout.block(rec.block);
        block.release(rec.offset, 0, 0);
        Some(block.address(rec.offset))
    }

    /// Puts back an allocation taken by `release` (a write-through rollback): the same address,
    /// metadata and time, its fresh cooldown ignored.
    pub(crate) fn reinstate_released(
        &self,
        key: PodKey,
        released: &Released,
    ) -> Result<(), NodeError> {
        let hash = self.hasher.hash_one(&key);
        let mut guard = self.shard(hash).lock();
        let shard = &mut *guard;
        let Some((block, offset)) = shard.layout.locate(released.address) else {
            return Err(NodeError::NotAttached {
                cidr: IpNet::from(released.address),
            });
        };
        shard
            .layout
            .block(block)
            .claim_at(offset, u64::MAX, 0)
            .map_err(|_| NodeError::AddressInUse {
                address: released.address,
            })?;
        let rec = PodRecord {
            key,
            block,
            offset,
            metadata: released.metadata.clone(),
            assigned_at: released.assigned_at,
        };
        self.insert(shard, hash, rec);
        Ok(())
    }

    /// The allocation of `key`, if any.
    pub fn pod(&self, key: &PodKey) -> Option<PodInfo> {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash).lock();
        shard
            .pods
            .find(hash, |r| &r.key == key)
            .map(|r| pod_info(&shard.layout, r))
    }

    /// Every pod allocation, sorted by address.
    pub fn pods(&self) -> Vec<PodInfo> {
        let mut out: Vec<PodInfo> = Vec::new();
        for s in self.shards.iter() {
            let g = s.0.lock();
            out.extend(g.pods.iter().map(|r| pod_info(&g.layout, r)));
        }
        out.sort_by_key(|p| p.address);
        out
    }

    /// Number of pod allocations.
    pub fn pod_count(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().pods.len()).sum()
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

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[shard_index(hash)].0
    }

    fn cooling_in(&self, layout: &Layout, now: Timestamp) -> u32 {
        let now = now.as_unix_nanos();
        layout
            .serving()
            .map(|b| b.cooling(now, self.cooldown).len() as u32)
            .sum()
    }

    // ---- cold path: attachments -------------------------------------------------------------

    /// Runs an attachment change with the admin lock and every shard locked. `f` returns the new
    /// interface list (or `None` for no change) and its result.
    fn change<R>(
        &self,
        f: impl FnOnce(&Layout, &mut Guards<'_>) -> Result<(Option<Vec<Interface>>, R), NodeError>,
    ) -> Result<R, NodeError> {
        let mut admin = self.admin.lock();
        let mut guards: Guards<'_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let (new, out) = f(&admin.layout, &mut guards)?;
        if let Some(interfaces) = new {
            let layout = Arc::new(Layout::new(interfaces, &self.config));
            for g in guards.iter_mut() {
                let g = &mut **g;
                for r in g.pods.iter_mut() {
                    // `f` dropped the records of removed blocks: every other block is in the
                    // new layout too.
                    let block = g.layout.block(r.block);
                    r.block = layout
                        .index_of(block)
                        .expect("a record's block is still attached");
                }
                g.layout = layout.clone();
            }
            admin.layout = layout;
            self.reinstate(&mut admin, &mut guards);
        }
        Ok(out)
    }

    /// Gives quarantined pods whose address an attached block now holds their address back.
    fn reinstate(&self, admin: &mut Admin, guards: &mut Guards<'_>) {
        if admin.quarantine.is_empty() {
            return;
        }
        let layout = admin.layout.clone();
        admin.quarantine.retain(|q| {
            let Some((block, offset)) = layout.locate(q.address) else {
                return true;
            };
            // Nothing can hold it: the address was in no attached block until now. A cooldown
            // of zero lets the claim take it even if a stale cooling mark were there.
            if layout.block(block).claim_at(offset, u64::MAX, 0).is_err() {
                return true;
            }
            let hash = self.hasher.hash_one(&q.key);
            let shard = &mut guards[(hash >> 32) as usize % SHARDS];
            let rec = PodRecord {
                key: q.key.clone(),
                block,
                offset,
                metadata: q.metadata.clone(),
                assigned_at: q.assigned_at,
            };
            self.insert(shard, hash, rec);
            false
        });
    }

    /// Puts a restored pod whose address lies in no attached block into quarantine.
    ///
    /// # Errors
    /// [`NodeError::KeyHoldsOther`] if the key holds an address already, or
    /// [`NodeError::AlreadyAttached`] if the address lies in an attached block (assign it
    /// instead).
    pub fn quarantine(&self, pod: PodInfo) -> Result<(), NodeError> {
        self.change(|layout, guards| {
            let hash = self.hasher.hash_one(&pod.key);
            let shard = &guards[(hash >> 32) as usize % SHARDS];
            if let Some(r) = shard.pods.find(hash, |r| r.key == pod.key) {
                let held = layout.block(r.block).address(r.offset);
                return Err(NodeError::KeyHoldsOther {
                    key: pod.key.clone(),
                    held,
                });
            }
            if let Some((b, _)) = layout.locate(pod.address) {
                let block = layout.block(b);
                return Err(NodeError::AlreadyAttached {
                    cidr: IpNet::from(pod.address),
                    existing: block.cidr,
                    interface: block.interface.to_string(),
                });
            }
            Ok((None, ()))
        })?;
        let mut admin = self.admin.lock();
        if admin.quarantine.iter().any(|q| q.key == pod.key) {
            return Err(NodeError::KeyHoldsOther {
                key: pod.key,
                held: pod.address,
            });
        }
        admin.quarantine.push(pod);
        Ok(())
    }

    /// Pods restored with an address no attached block holds, oldest first. Their addresses are
    /// given to no one else; attaching the block that holds one reinstates the pod. As they sit
    /// on no interface, their `interface_id` is empty and their `block` is the address itself.
    pub fn quarantined(&self) -> Vec<PodInfo> {
        self.admin.lock().quarantine.clone()
    }

    /// Drops a quarantined entry: the caller decided its address may be used again.
    ///
    /// # Errors
    /// [`NodeError::UnknownPod`] if the key is not in quarantine.
    pub fn release_quarantined(&self, key: &PodKey) -> Result<PodInfo, NodeError> {
        let mut admin = self.admin.lock();
        match admin.quarantine.iter().position(|q| &q.key == key) {
            Some(i) => Ok(admin.quarantine.remove(i)),
            None => Err(NodeError::UnknownPod { key: key.clone() }),
        }
    }

    /// Everything a checkpoint holds, taken with assignments stopped so that it is one
    /// consistent state: the snapshot (interfaces, blocks, cooling addresses, planner memory),
    /// every pod, and the quarantine.
    pub fn export(&self) -> (NodeSnapshot, Vec<PodInfo>, Vec<PodInfo>) {
        let admin = self.admin.lock();
        let guards: Guards<'_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let mut pods: Vec<PodInfo> = Vec::new();
        for g in guards.iter() {
            pods.extend(g.pods.iter().map(|r| pod_info(&admin.layout, r)));
        }
        pods.sort_by_key(|p| p.address);
        let snapshot = self.snapshot_locked(&admin, self.clock.now());
        (snapshot, pods, admin.quarantine.clone())
    }

    /// Attaches an interface (with no blocks yet).
    ///
    /// # Errors
    /// [`NodeError::DuplicateInterface`], [`NodeError::DuplicateDeviceNumber`],
    /// [`NodeError::TooManyInterfaces`], or [`NodeError::AlreadyAttached`] when its primary
    /// address is attached elsewhere.
    pub fn attach_interface(&self, spec: InterfaceSpec) -> Result<(), NodeError> {
        let attached_at = self.clock.now();
        self.attach_interface_at(spec, attached_at)
    }

    /// [`attach_interface`](Node::attach_interface) with a given attachment time (a restore
    /// keeps the original one, which the planner's 60-second rule reads).
    pub fn attach_interface_at(
        &self,
        spec: InterfaceSpec,
        attached_at: Timestamp,
    ) -> Result<(), NodeError> {
        let limit = self.interface_limit();
        self.change(|layout, _| {
            if layout.interface(&spec.id).is_some() {
                return Err(NodeError::DuplicateInterface { id: spec.id });
            }
            if let Some(i) = layout
                .interfaces
                .iter()
                .find(|i| i.device_number == spec.device_number)
            {
                return Err(NodeError::DuplicateDeviceNumber {
                    device_number: spec.device_number,
                    existing: i.id.to_string(),
                });
            }
            if layout.interfaces.len() as u32 >= limit {
                return Err(NodeError::TooManyInterfaces {
                    instance_type: self.limits.instance_type.clone(),
                    limit,
                });
            }
            let primary = IpNet::from(spec.primary_address);
            if let Some((existing, iface)) = layout.overlapping(primary) {
                return Err(NodeError::AlreadyAttached {
                    cidr: primary,
                    existing,
                    interface: iface.id.to_string(),
                });
            }
            let mut interfaces = layout.interfaces.clone();
            interfaces.push(Interface {
                id: Arc::from(spec.id.as_str()),
                device_number: spec.device_number,
                primary_address: spec.primary_address,
                flags: spec.flags,
                attached_at,
                blocks: Vec::new(),
            });
            Ok((Some(interfaces), ()))
        })
    }

    /// Attaches a delegated prefix (IPv4 /28 or IPv6 /80) to an interface.
    ///
    /// # Errors
    /// [`NodeError::PrefixLength`], [`NodeError::Misaligned`], [`NodeError::UnknownInterface`],
    /// [`NodeError::NoFreeSlot`], [`NodeError::Ipv6Unsupported`], [`NodeError::AlreadyAttached`].
    pub fn attach_prefix(&self, interface_id: &str, cidr: IpNet) -> Result<(), NodeError> {
        let expected = if cidr.addr().is_ipv4() { 28 } else { 80 };
        if cidr.prefix_len() != expected {
            return Err(NodeError::PrefixLength { cidr, expected });
        }
        if cidr.trunc() != cidr {
            return Err(NodeError::Misaligned { cidr });
        }
        let capacity = if cidr.addr().is_ipv4() {
            16
        } else {
            self.config.ipv6_prefix_capacity
        };
        self.attach_block(interface_id, cidr, BlockKind::Prefix, capacity)
    }

    /// Attaches a secondary address to an interface.
    ///
    /// # Errors
    /// As [`attach_prefix`](Node::attach_prefix), less the length checks.
    pub fn attach_secondary(&self, interface_id: &str, address: IpAddr) -> Result<(), NodeError> {
        self.attach_block(interface_id, IpNet::from(address), BlockKind::Secondary, 1)
    }

    fn attach_block(
        &self,
        interface_id: &str,
        cidr: IpNet,
        kind: BlockKind,
        capacity: u32,
    ) -> Result<(), NodeError> {
        self.change(|layout, _| {
            let Some(idx) = layout
                .interfaces
                .iter()
                .position(|i| &*i.id == interface_id)
            else {
                return Err(NodeError::UnknownInterface {
                    id: interface_id.to_owned(),
                });
            };
            let iface = &layout.interfaces[idx];
            let v4 = cidr.addr().is_ipv4();
            let slots = if v4 {
                self.limits.ipv4_per_eni
            } else {
                match self.limits.ipv6_per_eni {
                    Some(n) if n > 0 => n,
                    _ => {
                        return Err(NodeError::Ipv6Unsupported {
                            instance_type: self.limits.instance_type.clone(),
                        })
                    }
                }
            };
            let same_family = |a: IpAddr| a.is_ipv4() == v4;
            let used = u32::from(same_family(iface.primary_address))
                + iface
                    .blocks
                    .iter()
                    .filter(|b| same_family(b.cidr.addr()))
                    .count() as u32;
            if used >= slots {
                return Err(NodeError::NoFreeSlot {
                    interface: interface_id.to_owned(),
                    family: if v4 { "IPv4" } else { "IPv6" },
                    slots,
                    instance_type: self.limits.instance_type.clone(),
                });
            }
            if let Some((existing, other)) = layout.overlapping(cidr) {
                return Err(NodeError::AlreadyAttached {
                    cidr,
                    existing,
                    interface: other.id.to_string(),
                });
            }
            let mut interfaces = layout.interfaces.clone();
            let iface = &mut interfaces[idx];
            let block = Block::new(cidr, kind, iface.id.clone(), iface.device_number, capacity);
            iface.blocks.push(Arc::new(block));
            iface.blocks.sort_by_key(|b| b.cidr);
            Ok((Some(interfaces), ()))
        })
    }

    /// Removes a prefix or secondary address (`cidr` is the prefix, or the address as /32 or
    /// /128). Returns the keys of the pods it dropped (none unless forced).
    ///
    /// # Errors
    /// [`NodeError::NotAttached`]; unless `force`: [`NodeError::InUse`] while pods hold addresses
    /// in it, [`NodeError::Cooling`] while addresses in it cool down.
    pub fn remove_block(&self, cidr: IpNet, force: bool) -> Result<Vec<PodKey>, NodeError> {
        self.change(|layout, guards| {
            let Some((iface, block)) = layout.find_block(cidr) else {
                return Err(NodeError::NotAttached { cidr });
            };
            if !force {
                self.check_removable(block)?;
            }
            let dropped = drop_records(guards, |b| Arc::ptr_eq(b, block));
            let mut interfaces = layout.interfaces.clone();
            let i = interfaces
                .iter_mut()
                .find(|i| i.id == iface.id)
                .expect("found above");
            i.blocks.retain(|b| !Arc::ptr_eq(b, block));
            Ok((Some(interfaces), dropped))
        })
    }

    /// Removes an interface with all its blocks. Returns the keys of the pods it dropped.
    ///
    /// # Errors
    /// [`NodeError::UnknownInterface`]; unless `force`: [`NodeError::PrimaryInterface`],
    /// [`NodeError::InterfaceInUse`], [`NodeError::InterfaceCooling`].
    pub fn remove_interface(&self, id: &str, force: bool) -> Result<Vec<PodKey>, NodeError> {
        self.change(|layout, guards| {
            let Some(iface) = layout.interface(id) else {
                return Err(NodeError::UnknownInterface { id: id.to_owned() });
            };
            if !force {
                if iface.flags.primary {
                    return Err(NodeError::PrimaryInterface { id: id.to_owned() });
                }
                let pods: u32 = iface.blocks.iter().map(|b| b.assigned()).sum();
                if pods > 0 {
                    return Err(NodeError::InterfaceInUse {
                        id: id.to_owned(),
                        pods,
                    });
                }
                let now = self.clock.now().as_unix_nanos();
                let until = iface
                    .blocks
                    .iter()
                    .flat_map(|b| b.cooling(now, self.cooldown))
                    .map(|(_, t)| t)
                    .max();
                if let Some(until) = until {
                    return Err(NodeError::InterfaceCooling {
                        id: id.to_owned(),
                        until: Timestamp::from_unix_nanos(until),
                    });
                }
            }
            let dropped = drop_records(guards, |b| &*b.interface == id);
            let mut interfaces = layout.interfaces.clone();
            interfaces.retain(|i| &*i.id != id);
            Ok((Some(interfaces), dropped))
        })
    }

    fn check_removable(&self, block: &Block) -> Result<(), NodeError> {
        let pods = block.assigned();
        if pods > 0 {
            return Err(NodeError::InUse {
                cidr: block.cidr,
                pods,
            });
        }
        let now = self.clock.now().as_unix_nanos();
        if let Some(until) = block
            .cooling(now, self.cooldown)
            .iter()
            .map(|&(_, t)| t)
            .max()
        {
            return Err(NodeError::Cooling {
                cidr: block.cidr,
                until: Timestamp::from_unix_nanos(until),
            });
        }
        Ok(())
    }

    // ---- planner memory ----------------------------------------------------------------------

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

    // ---- pictures ----------------------------------------------------------------------------

    /// The node as of now: interfaces, blocks with assigned and cooling counts, planner memory.
    /// Counts are read without stopping assignments, so under concurrent use they are a recent
    /// picture, not an atomic one.
    pub fn snapshot(&self) -> NodeSnapshot {
        let now = self.clock.now();
        let admin = self.admin.lock();
        self.snapshot_locked(&admin, now)
    }

    fn snapshot_locked(&self, admin: &Admin, now: Timestamp) -> NodeSnapshot {
        let interfaces = admin
            .layout
            .interfaces
            .iter()
            .map(|i| {
                let serves = i.serves_pods(&self.config);
                InterfaceSnapshot {
                    id: i.id.to_string(),
                    device_number: i.device_number,
                    primary_address: i.primary_address,
                    flags: i.flags,
                    attached_at: i.attached_at,
                    serves_pods: serves,
                    blocks: i
                        .blocks
                        .iter()
                        .map(|b| self.block_snapshot(b, serves, now))
                        .collect(),
                }
            })
            .collect();
        NodeSnapshot {
            taken_at: now,
            mode: self.config.mode,
            family: self.config.family,
            interfaces,
            interface_limit: self.interface_limit(),
            custom_networking: self.config.custom_networking,
            last_shrink: admin.last_shrink,
            last_insufficient_space: admin.last_insufficient_space,
        }
    }

    fn block_snapshot(&self, b: &Block, iface_serves: bool, now: Timestamp) -> BlockSnapshot {
        BlockSnapshot {
            cidr: b.cidr,
            kind: b.kind,
            serving: iface_serves && serving_kind(&self.config, b),
            capacity: b.capacity(),
            assigned: b.assigned(),
            cooling: b
                .cooling(now.as_unix_nanos(), self.cooldown)
                .into_iter()
                .map(|(o, t)| (b.address(o), Timestamp::from_unix_nanos(t)))
                .collect(),
        }
    }

    /// Checks every invariant (DESIGN.md 1, 3, 4) with assignments stopped: each record's address
    /// is assigned in an attached block, no address is held twice, the assigned bits equal the
    /// records, no bit is both assigned and cooling, slots and interfaces within the instance's
    /// limits, no two attachments overlap, every shard sees the current layout and every record
    /// sits in the shard its key hashes to.
    ///
    /// # Errors
    /// The first violation found, described.
    pub fn verify(&self) -> Result<(), NodeInvariantViolation> {
        let admin = self.admin.lock();
        let guards: Guards<'_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let fail = |s: String| Err(NodeInvariantViolation(s));
        let layout = &admin.layout;
        if layout.interfaces.len() as u32 > self.interface_limit() {
            return fail(format!("{} interfaces attached", layout.interfaces.len()));
        }
        let mut ids = HashSet::new();
        let mut devices = HashSet::new();
        let mut nets: Vec<IpNet> = Vec::new();
        for i in &layout.interfaces {
            if !ids.insert(i.id.clone()) || !devices.insert(i.device_number) {
                return fail(format!(
                    "interface {} or device {} twice",
                    i.id, i.device_number
                ));
            }
            let v4 = 1 + i.blocks.iter().filter(|b| b.cidr.addr().is_ipv4()).count() as u32;
            if v4 > self.limits.ipv4_per_eni {
                return fail(format!("interface {} uses {v4} IPv4 slots", i.id));
            }
            nets.push(IpNet::from(i.primary_address));
            for b in &i.blocks {
                if *b.interface != *i.id || b.device_number != i.device_number {
                    return fail(format!("{} names the wrong interface", b.cidr));
                }
                b.verify_bits(self.cooldown)
                    .map_err(NodeInvariantViolation)?;
                nets.push(b.cidr);
            }
        }
        nets.sort();
        for w in nets.windows(2) {
            if w[0].contains(&w[1].network()) {
                return fail(format!("{} and {} overlap", w[0], w[1]));
            }
        }
        let mut held: HashSet<(usize, u32)> = HashSet::new();
        let mut per_block: std::collections::HashMap<usize, u32> = Default::default();
        for (n, g) in guards.iter().enumerate() {
            if !Arc::ptr_eq(&g.layout, layout) {
                return fail(format!("shard {n} holds a stale layout"));
            }
            for r in g.pods.iter() {
                let h = self.hasher.hash_one(&r.key);
                if (h >> 32) as usize % SHARDS != n {
                    return fail(format!("{} is in the wrong shard", r.key));
                }
                let Some(block) = layout.all_blocks().get(r.block as usize) else {
                    return fail(format!(
                        "{} names block {} of {}",
                        r.key,
                        r.block,
                        layout.all_blocks().len()
                    ));
                };
                if r.offset >= block.capacity() {
                    return fail(format!(
                        "{} holds offset {} of {}",
                        r.key, r.offset, block.cidr
                    ));
                }
                if !block.is_assigned(r.offset) {
                    return fail(format!(
                        "{} holds {} but it is not marked",
                        r.key,
                        block.address(r.offset)
                    ));
                }
                let id = Arc::as_ptr(block) as usize;
                if !held.insert((id, r.offset)) {
                    return fail(format!("{} is held twice", block.address(r.offset)));
                }
                *per_block.entry(id).or_default() += 1;
            }
        }
        for q in &admin.quarantine {
            if layout.locate(q.address).is_some() {
                return fail(format!(
                    "quarantined {} lies in an attached block",
                    q.address
                ));
            }
            let h = self.hasher.hash_one(&q.key);
            if guards[(h >> 32) as usize % SHARDS]
                .pods
                .find(h, |r| r.key == q.key)
                .is_some()
            {
                return fail(format!("{} is both quarantined and assigned", q.key));
            }
        }
        for (_, b) in layout.blocks() {
            let records = per_block
                .get(&(Arc::as_ptr(b) as usize))
                .copied()
                .unwrap_or(0);
            if b.assigned() != records {
                return fail(format!(
                    "{}: {} assigned bits, {records} records",
                    b.cidr,
                    b.assigned()
                ));
            }
        }
        Ok(())
    }
}

/// The index shard of a key with hash `hash` (the table inside uses the low bits).
fn shard_index(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

fn check_key(key: &PodKey) -> Result<(), NodeError> {
    let reason = if key.container_id_is_empty() {
        "empty container id"
    } else if key.if_name_is_empty() {
        "empty interface name"
    } else {
        return Ok(());
    };
    Err(NodeError::InvalidKey {
        key: key.clone(),
        reason,
    })
}

fn assignment(layout: &Layout, rec: &PodRecord, existing: bool) -> Assignment {
    let block = layout.block(rec.block);
    Assignment {
        address: block.address(rec.offset),
        block: block.cidr,
        device_number: block.device_number,
        existing,
    }
}

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

/// Removes the records whose block matches `doomed` from every shard; returns their keys,
/// sorted.
fn drop_records(guards: &mut Guards<'_>, doomed: impl Fn(&Arc<Block>) -> bool) -> Vec<PodKey> {
    let mut keys = Vec::new();
    for g in guards.iter_mut() {
        let g = &mut **g;
        let layout = &g.layout;
        g.pods.retain(|r| {
            if doomed(layout.block(r.block)) {
                keys.push(r.key.clone());
                false
            } else {
                true
            }
        });
    }
    keys.sort();
    keys
}
