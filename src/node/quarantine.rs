//! Restored pods whose address lies in no attached block: kept aside so that the address goes
//! to no one else, and reinstated when a block holding it is attached.

use super::assign::check_key;
use super::{
    shard_index, Admin, Guards, Node, NodeError, PodInfo, PodKey, PodRecord, Released, Shard,
};
use ipnet::IpNet;
use std::hash::BuildHasher;
use std::sync::Arc;

impl Node {
    /// Gives each quarantined pod whose address an attached block now holds that address back.
    pub(super) fn reinstate(&self, admin: &mut Admin, guards: &mut Guards<'_>) {
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
            let shard = &mut guards[shard_index(hash)];
            shard.quarantined.retain(|(k, _)| k != &q.key);
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

    /// Puts a restored pod whose address lies in no attached block into quarantine: the key
    /// holds the address (no other pod gets it; [`assign`](Node::assign) of the key is refused
    /// with [`NodeError::KeyHoldsOther`]) until a block holding it is attached, which reinstates
    /// the pod, or until [`release`](Node::release) or
    /// [`release_quarantined`](Node::release_quarantined) drops the entry. Its `interface_id` is
    /// made empty and its `block` the address itself.
    ///
    /// # Errors
    /// Nothing changes on error. [`NodeError::InvalidKey`]; [`NodeError::KeyHoldsOther`] if the
    /// key holds an address already (assigned or quarantined); [`NodeError::AlreadyAttached`]
    /// if the address lies in an attached block (assign it instead);
    /// [`NodeError::AddressInUse`] if another quarantined pod holds the address.
    pub fn quarantine(&self, mut pod: PodInfo) -> Result<(), NodeError> {
        check_key(&pod.key)?;
        // One critical section, admin lock first and then the key's shard (the order
        // `change` takes them in): no attachment can slip in between the checks and the entry,
        // and no assignment of the key can run beside it.
        let mut admin = self.admin.lock();
        let hash = self.hasher.hash_one(&pod.key);
        let mut shard = self.shard(hash).lock();
        if let Some(r) = shard.pods.find(hash, |r| r.key == pod.key) {
            let held = shard.layout.block(r.block).address(r.offset);
            return Err(NodeError::KeyHoldsOther { key: pod.key, held });
        }
        if let Some(q) = admin.quarantine.iter().find(|q| q.key == pod.key) {
            let held = q.address;
            return Err(NodeError::KeyHoldsOther { key: pod.key, held });
        }
        if let Some((b, _)) = admin.layout.locate(pod.address) {
            let block = admin.layout.block(b);
            return Err(NodeError::AlreadyAttached {
                cidr: IpNet::from(pod.address),
                existing: block.cidr,
                interface: block.interface.to_string(),
            });
        }
        if admin.quarantine.iter().any(|q| q.address == pod.address) {
            return Err(NodeError::AddressInUse {
                address: pod.address,
            });
        }
        pod.block = IpNet::from(pod.address);
        pod.interface_id = Arc::from("");
        shard.quarantined.push((pod.key.clone(), pod.address));
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
        let hash = self.hasher.hash_one(key);
        let mut admin = self.admin.lock();
        let mut shard = self.shard(hash).lock();
        take_quarantined(&mut admin, &mut shard, |k| k == key)
            .ok_or_else(|| NodeError::UnknownPod { key: key.clone() })
    }

    /// The end of [`Node::release`] for a key its shard holds no record of: unknown, or (if
    /// `quarantined`, as its shard listed it) in quarantine. The shard lock was dropped to take
    /// the admin lock first; if a block attached meanwhile reinstated the pod, this is an
    /// ordinary release.
    #[cold]
    #[inline(never)]
    pub(super) fn release_unheld(
        &self,
        quarantined: bool,
        hash: u64,
        is_key: impl Fn(&PodKey) -> bool,
        key: impl FnOnce() -> PodKey,
    ) -> Result<Released, NodeError> {
        if !quarantined {
            return Err(NodeError::UnknownPod { key: key() });
        }
        let mut admin = self.admin.lock();
        let mut shard = self.shard(hash).lock();
        if let Ok(entry) = shard.pods.find_entry(hash, |r| is_key(&r.key)) {
            let (rec, _) = entry.remove();
            return Ok(self.release_removed(&shard, rec));
        }
        let q = take_quarantined(&mut admin, &mut shard, is_key)
            .ok_or_else(|| NodeError::UnknownPod { key: key() })?;
        Ok(Released {
            address: q.address,
            block: q.block,
            device_number: None,
            metadata: q.metadata,
            assigned_at: q.assigned_at,
        })
    }
}

/// Removes the quarantined entry of the key for which `is_key` holds from the node's list and
/// from its shard's (`shard` is that key's).
fn take_quarantined(
    admin: &mut Admin,
    shard: &mut Shard,
    is_key: impl Fn(&PodKey) -> bool,
) -> Option<PodInfo> {
    let i = admin.quarantine.iter().position(|q| is_key(&q.key))?;
    shard.quarantined.retain(|(k, _)| !is_key(k));
    Some(admin.quarantine.remove(i))
}
