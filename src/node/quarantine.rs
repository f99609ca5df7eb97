//! Restored pods whose address lies in no attached block: kept aside so that the address goes
//! to no one else, and reinstated when a block holding it is attached.

use super::{shard_index, Admin, Guards, Node, NodeError, PodInfo, PodKey, PodRecord};
use ipnet::IpNet;
use std::hash::BuildHasher;

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
            let shard = &guards[shard_index(hash)];
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
}
