//! Whole-node reads: the snapshot the planner works from, the export a checkpoint writes, and
//! `verify`, which checks every invariant with assignments stopped.

use super::block::Block;
use super::layout::serving_kind;
use super::{
    pod_info, shard_index, Admin, BlockSnapshot, Guards, InterfaceSnapshot, Node,
    NodeInvariantViolation, NodeSnapshot, PodInfo, Timestamp,
};
use ipnet::IpNet;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;

impl Node {
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
                if shard_index(h) != n {
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
        let listed: usize = guards.iter().map(|g| g.quarantined.len()).sum();
        if listed != admin.quarantine.len() {
            return fail(format!(
                "shards list {listed} quarantined keys, the quarantine holds {}",
                admin.quarantine.len()
            ));
        }
        let mut quarantined_addresses = HashSet::new();
        for q in &admin.quarantine {
            if !quarantined_addresses.insert(q.address) {
                return fail(format!("{} is quarantined twice", q.address));
            }
            let listed = guards[shard_index(self.hasher.hash_one(&q.key))]
                .quarantined
                .iter()
                .filter(|(k, a)| k == &q.key && *a == q.address)
                .count();
            if listed != 1 {
                return fail(format!(
                    "quarantined {} at {} is listed {listed} times in its shard",
                    q.key, q.address
                ));
            }
            if layout.locate(q.address).is_some() {
                return fail(format!(
                    "quarantined {} lies in an attached block",
                    q.address
                ));
            }
            let h = self.hasher.hash_one(&q.key);
            if guards[shard_index(h)]
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
