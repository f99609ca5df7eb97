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
        let mut config = self.config.clone();
        config.mode = admin.mode;
        let interfaces = admin
            .layout
            .interfaces
            .iter()
            .map(|i| {
                let serves = i.serves_pods(&config);
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
                        .map(|b| self.block_snapshot(&config, b, serves, now))
                        .collect(),
                }
            })
            .collect();
        NodeSnapshot {
            taken_at: now,
            mode: admin.mode,
            prefix_fallback: admin.prefix_fallback.clone(),
            family: self.config.family,
            interfaces,
            interface_limit: self.interface_limit(),
            custom_networking: self.config.custom_networking,
            last_shrink: admin.last_shrink,
            last_insufficient_space: admin.last_insufficient_space,
        }
    }

    fn block_snapshot(
        &self,
        config: &super::NodeConfig,
        b: &Block,
        iface_serves: bool,
        now: Timestamp,
    ) -> BlockSnapshot {
        BlockSnapshot {
            cidr: b.cidr,
            kind: b.kind,
            serving: iface_serves && serving_kind(config, b),
            capacity: b.capacity(),
            assigned: b.assigned(),
            cooling: b
                .cooling(now.as_unix_nanos(), self.cooldown)
                .into_iter()
                .map(|(o, t)| (b.address(o), Timestamp::from_unix_nanos(t)))
                .collect(),
        }
    }

    /// Checks every invariant (docs/architecture.md, "Invariants": 1, 3 and 4) with assignments stopped: each record's address
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

#[cfg(all(test, not(loom)))]
mod tests {
    //! `verify` names each way a node can be broken. The states are planted behind the public
    //! API's back (it cannot reach them), one corruption per node.
    use super::super::block::BlockKind;
    use super::super::layout::{Interface, Layout};
    use super::*;
    use crate::{
        limits::InstanceLimits, InterfaceFlags, InterfaceSpec, ManualClock, NodeConfig, PodKey,
        PodMetadata, PodRequest,
    };

    const PREFIX: &str = "10.0.1.16/28";

    fn key(name: &str) -> PodKey {
        PodKey::new("net", name, "eth0")
    }

    /// An m5.large (3 interfaces of 10 IPv4 slots) with one prefix on eni-0, and pods "a" and
    /// "b" at its first two addresses.
    fn node() -> Node {
        let limits = InstanceLimits::lookup("m5.large").unwrap().clone();
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 40)));
        let node = Node::with_clock(limits, NodeConfig::default(), clock);
        node.attach_interface(InterfaceSpec {
            id: "eni-0".into(),
            device_number: 0,
            primary_address: "10.0.0.10".parse().unwrap(),
            flags: InterfaceFlags {
                primary: true,
                ..Default::default()
            },
        })
        .unwrap();
        node.attach_prefix("eni-0", PREFIX.parse().unwrap())
            .unwrap();
        for k in ["a", "b"] {
            node.assign(PodRequest::new(key(k))).unwrap();
        }
        node.verify().unwrap();
        node
    }

    fn fails_with(node: &Node, text: &str) {
        let err = node.verify().unwrap_err().0;
        assert!(err.contains(text), "{err:?} should say {text:?}");
    }

    /// Gives the admin and every shard a new layout built from the interfaces as `change` leaves
    /// them. Blocks keep their indices as long as `change` only appends.
    fn relayout(node: &Node, change: impl FnOnce(&mut Vec<Interface>)) {
        let mut admin = node.admin.lock();
        let mut interfaces = admin.layout.interfaces.clone();
        change(&mut interfaces);
        let layout = Arc::new(Layout::new(interfaces, &node.config));
        for s in node.shards.iter() {
            s.0.lock().layout = layout.clone();
        }
        admin.layout = layout;
    }

    fn interface(id: &str, device_number: u32, primary: &str) -> Interface {
        Interface {
            id: id.into(),
            device_number,
            primary_address: primary.parse().unwrap(),
            flags: InterfaceFlags::default(),
            attached_at: Timestamp::from_unix_nanos(0),
            blocks: Vec::new(),
        }
    }

    fn prefix(cidr: &str, interface: &str, device_number: u32) -> Arc<Block> {
        Arc::new(Block::new(
            cidr.parse().unwrap(),
            BlockKind::Prefix,
            interface.into(),
            device_number,
            16,
        ))
    }

    /// Runs `change` on the record of `key`, in its shard.
    fn edit_record(node: &Node, k: &str, change: impl FnOnce(&mut super::super::PodRecord)) {
        let k = key(k);
        let h = node.hasher.hash_one(&k);
        let mut shard = node.shard(h).lock();
        change(shard.pods.find_mut(h, |r| r.key == k).unwrap());
    }

    fn quarantined(k: &str, address: &str) -> PodInfo {
        let address: std::net::IpAddr = address.parse().unwrap();
        PodInfo {
            key: key(k),
            address,
            block: IpNet::from(address),
            interface_id: "".into(),
            metadata: PodMetadata::default(),
            assigned_at: Timestamp::from_unix_nanos(0),
        }
    }

    #[test]
    fn interfaces_beyond_the_instance_limits() {
        let n = node();
        relayout(&n, |ifs| {
            ifs.push(interface("eni-1", 1, "10.0.0.11"));
            ifs.push(interface("eni-2", 2, "10.0.0.12"));
        });
        n.verify().unwrap(); // three: the limit
        relayout(&n, |ifs| ifs.push(interface("eni-3", 3, "10.0.0.13")));
        fails_with(&n, "4 interfaces attached");

        let n = node();
        relayout(&n, |ifs| {
            for k in 0..8u32 {
                let cidr = format!("10.0.2.{}/28", 16 * k);
                ifs[0].blocks.push(prefix(&cidr, "eni-0", 0));
            }
        });
        n.verify().unwrap(); // the primary address and nine prefixes: ten slots, the limit
        relayout(&n, |ifs| {
            ifs[0].blocks.push(prefix("10.0.3.0/28", "eni-0", 0))
        });
        fails_with(&n, "interface eni-0 uses 11 IPv4 slots");
    }

    #[test]
    fn an_interface_or_device_twice() {
        let n = node();
        relayout(&n, |ifs| ifs.push(interface("eni-0", 1, "10.0.0.11")));
        fails_with(&n, "interface eni-0 or device 1 twice");
        let n = node();
        relayout(&n, |ifs| ifs.push(interface("eni-1", 0, "10.0.0.11")));
        fails_with(&n, "interface eni-1 or device 0 twice");
    }

    #[test]
    fn a_block_naming_the_wrong_interface() {
        let n = node();
        relayout(&n, |ifs| {
            ifs[0].blocks.push(prefix("10.0.2.0/28", "eni-9", 0))
        });
        fails_with(&n, "10.0.2.0/28 names the wrong interface");
        let n = node();
        relayout(&n, |ifs| {
            ifs[0].blocks.push(prefix("10.0.2.0/28", "eni-0", 4))
        });
        fails_with(&n, "10.0.2.0/28 names the wrong interface");
    }

    #[test]
    fn overlapping_attachments() {
        let n = node();
        relayout(&n, |ifs| {
            ifs[0].blocks.push(prefix("10.0.0.0/28", "eni-0", 0))
        });
        fails_with(&n, "10.0.0.0/28 and 10.0.0.10/32 overlap");
        let n = node();
        relayout(&n, |ifs| ifs.push(interface("eni-1", 1, "10.0.1.20")));
        fails_with(&n, "10.0.1.16/28 and 10.0.1.20/32 overlap");
    }

    #[test]
    fn a_shard_with_a_stale_layout() {
        let n = node();
        let fresh = {
            let admin = n.admin.lock();
            Arc::new(Layout::new(admin.layout.interfaces.clone(), &n.config))
        };
        n.shards[5].0.lock().layout = fresh;
        fails_with(&n, "shard 5 holds a stale layout");
    }

    #[test]
    fn a_record_in_the_wrong_shard() {
        let n = node();
        let k = key("a");
        let h = n.hasher.hash_one(&k);
        let home = shard_index(h);
        let rec = {
            let mut shard = n.shards[home].0.lock();
            let entry = shard.pods.find_entry(h, |r| r.key == k).unwrap();
            entry.remove().0
        };
        let other = (home + 1) % n.shards.len();
        let hasher = n.hasher.clone();
        n.shards[other]
            .0
            .lock()
            .pods
            .insert_unique(h, rec, |r| hasher.hash_one(&r.key));
        fails_with(&n, "net/a/eth0 is in the wrong shard");
    }

    #[test]
    fn a_record_naming_what_is_not_there() {
        let n = node();
        edit_record(&n, "a", |r| r.block = 7);
        fails_with(&n, "net/a/eth0 names block 7 of 1");
        let n = node();
        edit_record(&n, "a", |r| r.offset = 16);
        fails_with(&n, "net/a/eth0 holds offset 16 of 10.0.1.16/28");
        let n = node();
        edit_record(&n, "a", |r| r.offset = 5);
        fails_with(&n, "net/a/eth0 holds 10.0.1.21 but it is not marked");
    }

    #[test]
    fn an_address_held_twice_or_marked_without_a_record() {
        let n = node();
        edit_record(&n, "b", |r| r.offset = 0);
        fails_with(&n, "10.0.1.16 is held twice");
        let n = node();
        let block = n.admin.lock().layout.block(0).clone();
        block.claim_at(7, 0, 0).unwrap();
        fails_with(&n, "10.0.1.16/28: 3 assigned bits, 2 records");
    }

    /// Plants `entries` in the admin's quarantine and `listed` in the shard lists.
    fn plant_quarantine(n: &Node, entries: &[PodInfo], listed: &[(&str, &str)]) {
        let mut admin = n.admin.lock();
        admin.quarantine.extend(entries.iter().cloned());
        for (k, a) in listed {
            let k = key(k);
            let h = n.hasher.hash_one(&k);
            n.shard(h).lock().quarantined.push((k, a.parse().unwrap()));
        }
    }

    #[test]
    fn a_quarantine_out_of_step() {
        let n = node();
        n.quarantine(quarantined("q", "10.9.9.9")).unwrap();
        n.verify().unwrap();
        plant_quarantine(&n, &[], &[("q", "10.9.9.9")]);
        fails_with(&n, "shards list 2 quarantined keys, the quarantine holds 1");

        let n = node();
        let (q, r) = (quarantined("q", "10.9.9.9"), quarantined("r", "10.9.9.9"));
        plant_quarantine(&n, &[q, r], &[("q", "10.9.9.9"), ("r", "10.9.9.9")]);
        fails_with(&n, "10.9.9.9 is quarantined twice");

        let n = node();
        let (q, r) = (quarantined("q", "10.9.9.9"), quarantined("r", "10.9.9.8"));
        plant_quarantine(&n, &[q, r], &[("q", "10.9.9.9"), ("q", "10.9.9.9")]);
        fails_with(
            &n,
            "quarantined net/q/eth0 at 10.9.9.9 is listed 2 times in its shard",
        );

        // Listed under the wrong key: q's entry with r's address.
        let n = node();
        let (q, r) = (quarantined("q", "10.9.9.9"), quarantined("r", "10.9.9.8"));
        plant_quarantine(&n, &[q, r], &[("q", "10.9.9.9"), ("q", "10.9.9.8")]);
        fails_with(
            &n,
            "quarantined net/r/eth0 at 10.9.9.8 is listed 0 times in its shard",
        );

        let n = node();
        let q = quarantined("q", "10.0.1.30");
        plant_quarantine(&n, &[q], &[("q", "10.0.1.30")]);
        fails_with(&n, "quarantined 10.0.1.30 lies in an attached block");

        let n = node();
        let q = quarantined("a", "10.9.9.9");
        plant_quarantine(&n, &[q], &[("a", "10.9.9.9")]);
        fails_with(&n, "net/a/eth0 is both quarantined and assigned");
    }
}
