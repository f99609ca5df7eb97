//! The hot path: a pod's address by key (assign, release, restore) and the lookups by key.
//! Each call locks one index shard and claims or frees with a compare-and-swap on the block's
//! word; only an assignment that finds the node full locks every shard (see
//! `assign_on_a_still_node`).

use super::block::Busy;
use super::key::{KeyParts, MIGRATED_IF_NAME, MIGRATED_NETWORK_NAME};
use super::layout::Layout;
use super::{
    pod_info, quarantined_in, shard_index, Assignment, Guards, Held, Node, NodeError, PodInfo,
    PodKey, PodRecord, PodRequest, Released, Shard, Timestamp,
};
use ipnet::IpNet;
use std::hash::BuildHasher;
use std::net::IpAddr;

impl Node {
    /// Gives the pod behind `request.key` an address, or returns the one it holds.
    ///
    /// Packing is deterministic: interfaces by device number; within one, the most-assigned
    /// serving block with a free address (ties: lowest CIDR); within it, the lowest address that
    /// is neither assigned nor cooling. The interface's primary address is never given out.
    ///
    /// # Errors
    /// [`NodeError::InvalidKey`] for an empty container id or interface name;
    /// [`NodeError::KeyHoldsOther`] when the key is [quarantined](Node::quarantine) (it holds
    /// that address, which no attached block holds);
    /// [`NodeError::NoAvailableAddresses`] when no serving address is free (it says how many are
    /// cooling): checked with every index shard locked, so it describes one instant even while
    /// other pods come and go (a full node's requests pay for those locks). Nothing changes on
    /// error.
    pub fn assign(&self, request: PodRequest) -> Result<Assignment, NodeError> {
        check_key(&request.key)?;
        let hash = self.hasher.hash_one(&request.key);
        let mut guard = self.shard(hash).lock();
        let Shard {
            layout,
            pods,
            quarantined,
        } = &mut *guard;
        // One probe finds the key or the slot it will take (growing the table first if it must:
        // capacity, not content, so a failed claim below still changes nothing).
        let hasher = &self.hasher;
        let slot = match pods.entry(hash, |r| r.key == request.key, |r| hasher.hash_one(&r.key)) {
            hashbrown::hash_table::Entry::Occupied(held) => {
                return Ok(assignment(layout, held.get(), true))
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                // Out of line: the hot path pays one length check.
                if !quarantined.is_empty() {
                    if let Some(refusal) = quarantined_refusal(quarantined, &request.key) {
                        return Err(refusal);
                    }
                }
                slot
            }
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
        if let Some(held) = quarantined_in(&shard.quarantined, |k| k == &request.key) {
            return Err(NodeError::KeyHoldsOther {
                key: request.key,
                held,
            });
        }
        let now = self.clock.now();
        let Some((block, offset)) = shard.layout.claim(now.as_unix_nanos(), self.cooldown) else {
            if self.config.family == super::IpFamily::V6
                && shard.layout.mode == super::AddressMode::Secondary
            {
                return Err(NodeError::Ipv6NeedsPrefixMode {
                    what: format!(
                        "an IPv6 node in secondary-IP mode has no address for {}",
                        request.key
                    ),
                });
            }
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

    /// Releases the address held by `key`; it then cools down for the configured time. A
    /// [quarantined](Node::quarantine) key leaves the quarantine (its address lies in no
    /// attached block, so there is nothing to cool): the pod is gone, and its address must not
    /// come back to it when its block is attached again.
    ///
    /// # Errors
    /// [`NodeError::UnknownPod`] when the key holds nothing (a CNI DEL may treat that as done).
    pub fn release(&self, key: &PodKey) -> Result<Released, NodeError> {
        // Compared whole (one length check and one memcmp), not part by part.
        self.release_matching(self.hasher.hash_one(key), |k| k == key, || key.clone())
            .or_else(|e| self.release_migrated(key.container_id(), e))
    }

    /// ipamd's fallback for entries it migrated from the container runtime's old state: keyed
    /// `_migrated-from-cri` / `unknown`, they are released by the pod's current key, whose
    /// container id is theirs. Only on the way to an "unknown pod" answer.
    #[cold]
    fn release_migrated(&self, container_id: &str, e: NodeError) -> Result<Released, NodeError> {
        if !matches!(e, NodeError::UnknownPod { .. }) {
            return Err(e);
        }
        let parts = KeyParts(MIGRATED_NETWORK_NAME, container_id, MIGRATED_IF_NAME);
        self.release_matching(
            self.hasher.hash_one(&parts),
            |k| k.is(&parts),
            || PodKey::new(parts.0, parts.1, parts.2),
        )
        .map_err(|_| e)
    }

    /// [`Node::release`] by the key's parts, without building a [`PodKey`]: for callers that
    /// hold the parts as separate strings (a CNI DEL, the C ABI).
    ///
    /// # Errors
    /// As [`Node::release`].
    ///
    /// # Example
    /// ```
    /// # use pdipam::{*, limits::InstanceLimits};
    /// let node = Node::new(InstanceLimits::lookup("m5.large")?.clone(), NodeConfig::default());
    /// node.attach_interface(
    ///     InterfaceSpec::new("eni-0", 0, "10.0.0.5".parse()?).flags(InterfaceFlags::PRIMARY),
    /// )?;
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
        .or_else(|e| self.release_migrated(parts.1, e))
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
            let quarantined = quarantined_in(&shard.quarantined, &is_key).is_some();
            drop(guard);
            return self.release_unheld(quarantined, hash, is_key, key);
        };
        let (rec, _) = entry.remove();
        Ok(self.release_removed(shard, rec))
    }

    /// Releases the address of `rec`, just removed from `shard`.
    #[inline(always)]
    pub(super) fn release_removed(&self, shard: &Shard, rec: PodRecord) -> Released {
        let now = if self.cooldown == 0 {
            0
        } else {
            self.clock.now().as_unix_nanos()
        };
        let block = shard.layout.block(rec.block);
        block.release(rec.offset, now, self.cooldown);
        Released {
            address: block.address(rec.offset),
            block: block.cidr,
            device_number: Some(block.device_number),
            metadata: rec.metadata,
            assigned_at: rec.assigned_at,
        }
    }

    /// Gives the pod behind `request.key` exactly `address` (a restore, an import, or a caller
    /// with its own placement). The address may lie in any attached block, serving or not: a
    /// pod restored after a mode change keeps its secondary address.
    ///
    /// # Errors
    /// [`NodeError::InvalidKey`]; [`NodeError::KeyHoldsOther`] when the key holds a different
    /// address (the same address is returned as `existing`), in a block or in
    /// [quarantine](Node::quarantine); [`NodeError::NotAttached`] when no attached block hands
    /// out `address` (a key quarantined at `address` gets this too: it holds the address, which
    /// is still not attached); [`NodeError::AddressInUse`] or
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
        // A key quarantined at `address` itself is told below that it is not attached.
        let quarantined = quarantined_in(&shard.quarantined, |k| k == &request.key);
        if let Some(held) = quarantined.filter(|&held| held != address) {
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
    /// metadata and time, its fresh cooldown ignored. An address no attached block holds (a
    /// quarantined pod's, or one whose block was detached meanwhile) goes back into quarantine,
    /// as the checkpoint on disk still has it.
    pub(crate) fn reinstate_released(
        &self,
        key: PodKey,
        released: &Released,
    ) -> Result<(), NodeError> {
        let hash = self.hasher.hash_one(&key);
        let mut guard = self.shard(hash).lock();
        let shard = &mut *guard;
        let Some((block, offset)) = shard.layout.locate(released.address) else {
            drop(guard);
            return self.quarantine(PodInfo {
                key,
                address: released.address,
                block: IpNet::from(released.address),
                interface_id: "".into(),
                metadata: released.metadata.clone(),
                assigned_at: released.assigned_at,
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

    /// What `key` holds, in one shard lock and without copying its record: its assignment
    /// (as a repeated [`assign`](Node::assign) would return it), or the address it holds in
    /// [quarantine](Node::quarantined), or nothing.
    pub fn held_by(&self, key: &PodKey) -> Option<Held> {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash).lock();
        if let Some(r) = shard.pods.find(hash, |r| &r.key == key) {
            return Some(Held::Assigned(assignment(&shard.layout, r, true)));
        }
        quarantined_in(&shard.quarantined, |k| k == key).map(Held::Quarantined)
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

    fn cooling_in(&self, layout: &Layout, now: Timestamp) -> u32 {
        let now = now.as_unix_nanos();
        layout
            .serving()
            .map(|b| b.cooling(now, self.cooldown).len() as u32)
            .sum()
    }
}

pub(super) fn check_key(key: &PodKey) -> Result<(), NodeError> {
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

/// The refusal of an assignment to a key held in quarantine. Cold: called only when the shard
/// has quarantined keys.
#[cold]
#[inline(never)]
fn quarantined_refusal(quarantined: &[(PodKey, IpAddr)], key: &PodKey) -> Option<NodeError> {
    quarantined_in(quarantined, |k| k == key).map(|held| NodeError::KeyHoldsOther {
        key: key.clone(),
        held,
    })
}
