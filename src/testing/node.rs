//! The naive model of [`Node`](crate::Node): one big lock, ordered maps, linear scans.

use crate::{
    limits::InstanceLimits, AddressMode, Assignment, BlockKind, Clock, CloudDiff, InterfaceFlags,
    InterfaceSpec, IpFamily, NodeConfig, NodeError, ObservedInterface, PodInfo, PodKey,
    PodMetadata, PodRequest, Released, Timestamp, RECONCILE_COOLDOWN,
};
use ipnet::IpNet;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

#[derive(Clone, Debug)]
struct Iface {
    id: String,
    device_number: u32,
    primary_address: IpAddr,
    flags: InterfaceFlags,
    attached_at: Timestamp,
    /// (cidr, kind, capacity), kept sorted by CIDR.
    blocks: Vec<(IpNet, BlockKind, u32)>,
}

#[derive(Clone, Debug)]
struct Pod {
    address: IpAddr,
    block: IpNet,
    interface: String,
    device_number: u32,
    metadata: PodMetadata,
    assigned_at: Timestamp,
}

#[derive(Debug, Default)]
struct State {
    interfaces: Vec<Iface>,
    pods: BTreeMap<PodKey, Pod>,
    /// address -> when it was released (cooling while now < released + cooldown).
    released: BTreeMap<IpAddr, Timestamp>,
    /// Quarantined pods, oldest first.
    quarantine: Vec<PodInfo>,
    /// Blocks attached through `attach_*`, and when (for the cloud reconcile).
    attached: BTreeMap<IpNet, Timestamp>,
    /// Blocks and interfaces removed through `remove_*`, and when.
    given_back: BTreeMap<IpNet, Timestamp>,
    interfaces_given_back: BTreeMap<String, Timestamp>,
}

/// [`Node`](crate::Node)'s contract written the obvious way, under one lock.
#[derive(Debug)]
pub struct NaiveNode {
    limits: InstanceLimits,
    config: NodeConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

fn nth(cidr: IpNet, offset: u32) -> IpAddr {
    match cidr {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) + offset)),
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) + u128::from(offset))),
    }
}

fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn check_key(key: &PodKey) -> Result<(), NodeError> {
    if key.container_id().is_empty() {
        return Err(NodeError::InvalidKey {
            key: key.clone(),
            reason: "empty container id",
        });
    }
    if key.if_name().is_empty() {
        return Err(NodeError::InvalidKey {
            key: key.clone(),
            reason: "empty interface name",
        });
    }
    Ok(())
}

impl NaiveNode {
    /// A node with no interfaces; prefix mode where the instance cannot delegate prefixes falls
    /// back to secondary-IP mode (see [`Node::with_clock`](crate::Node::with_clock)).
    pub fn new(limits: InstanceLimits, mut config: NodeConfig, clock: Arc<dyn Clock>) -> Self {
        if !limits.supports_prefix_delegation() {
            config.mode = crate::AddressMode::Secondary;
        }
        NaiveNode {
            limits,
            config,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// The first instant a released address is free again: it rests while the time since its
    /// release is at most the cooldown (inclusive, as ipamd compares), so one nanosecond after.
    fn cooldown_end(&self, released: Timestamp) -> Timestamp {
        if self.config.cooldown.is_zero() {
            return released;
        }
        released.saturating_add(self.config.cooldown + std::time::Duration::from_nanos(1))
    }

    fn is_cooling(&self, st: &State, a: IpAddr, now: Timestamp) -> bool {
        st.released
            .get(&a)
            .is_some_and(|&r| now < self.cooldown_end(r))
    }

    fn serves(&self, i: &Iface) -> bool {
        !(i.flags.trunk
            || i.flags.efa
            || i.flags.excluded
            || (self.config.custom_networking && (i.flags.primary || i.device_number == 0)))
    }

    fn serving_kind(&self, cidr: IpNet, kind: BlockKind) -> bool {
        let want = match self.config.mode {
            AddressMode::Prefix => BlockKind::Prefix,
            AddressMode::Secondary => BlockKind::Secondary,
        };
        let fam = match self.config.family {
            IpFamily::V4 => cidr.addr().is_ipv4(),
            IpFamily::V6 => cidr.addr().is_ipv6(),
        };
        kind == want && fam
    }

    fn overlapping(st: &State, cidr: IpNet) -> Option<(IpNet, String)> {
        for i in &st.interfaces {
            let p = IpNet::from(i.primary_address);
            if overlaps(p, cidr) {
                return Some((p, i.id.clone()));
            }
            if let Some(b) = i.blocks.iter().find(|b| overlaps(b.0, cidr)) {
                return Some((b.0, i.id.clone()));
            }
        }
        None
    }

    /// See [`Node::attach_interface`](crate::Node::attach_interface).
    pub fn attach_interface(&self, spec: InterfaceSpec) -> Result<(), NodeError> {
        let now = self.clock.now();
        let mut st = self.state.lock();
        self.attach_interface_in(&mut st, spec, now)
    }

    fn attach_interface_in(
        &self,
        st: &mut State,
        spec: InterfaceSpec,
        attached_at: Timestamp,
    ) -> Result<(), NodeError> {
        if st.interfaces.iter().any(|i| i.id == spec.id) {
            return Err(NodeError::DuplicateInterface { id: spec.id });
        }
        if let Some(i) = st
            .interfaces
            .iter()
            .find(|i| i.device_number == spec.device_number)
        {
            return Err(NodeError::DuplicateDeviceNumber {
                device_number: spec.device_number,
                existing: i.id.clone(),
            });
        }
        let limit = self
            .limits
            .max_enis
            .min(self.config.max_eni.filter(|m| *m >= 1).unwrap_or(u32::MAX));
        if st.interfaces.len() as u32 >= limit {
            return Err(NodeError::TooManyInterfaces {
                instance_type: self.limits.instance_type.clone(),
                limit,
            });
        }
        let p = IpNet::from(spec.primary_address);
        if let Some((existing, interface)) = Self::overlapping(st, p) {
            return Err(NodeError::AlreadyAttached {
                cidr: p,
                existing,
                interface,
            });
        }
        st.interfaces.push(Iface {
            id: spec.id,
            device_number: spec.device_number,
            primary_address: spec.primary_address,
            flags: spec.flags,
            attached_at,
            blocks: Vec::new(),
        });
        st.interfaces.sort_by_key(|i| i.device_number);
        Ok(())
    }

    /// See [`Node::attach_prefix`](crate::Node::attach_prefix).
    pub fn attach_prefix(&self, interface: &str, cidr: IpNet) -> Result<(), NodeError> {
        self.attach(interface, cidr, BlockKind::Prefix)
    }

    /// See [`Node::attach_secondary`](crate::Node::attach_secondary).
    pub fn attach_secondary(&self, interface: &str, address: IpAddr) -> Result<(), NodeError> {
        self.attach(interface, IpNet::from(address), BlockKind::Secondary)
    }

    fn attach(&self, id: &str, cidr: IpNet, kind: BlockKind) -> Result<(), NodeError> {
        let now = self.clock.now();
        let mut st = self.state.lock();
        self.attach_in(&mut st, id, cidr, kind)?;
        st.given_back.remove(&cidr);
        st.attached.insert(cidr, now);
        Ok(())
    }

    /// The capacity of a block of this kind, or why it cannot be one.
    fn capacity(&self, cidr: IpNet, kind: BlockKind) -> Result<u32, NodeError> {
        match kind {
            BlockKind::Prefix => {
                let expected = if cidr.addr().is_ipv4() { 28 } else { 80 };
                if cidr.prefix_len() != expected {
                    return Err(NodeError::PrefixLength { cidr, expected });
                }
                if cidr.trunc() != cidr {
                    return Err(NodeError::Misaligned { cidr });
                }
                Ok(if cidr.addr().is_ipv4() {
                    16
                } else {
                    self.config.ipv6_prefix_capacity
                })
            }
            BlockKind::Secondary if cidr.addr().is_ipv6() => {
                let address = cidr.addr();
                Err(NodeError::Ipv6NeedsPrefixMode {
                    what: format!(
                        "{address} cannot be a secondary address; attach an IPv6 /80 prefix"
                    ),
                })
            }
            BlockKind::Secondary => Ok(1),
        }
    }

    fn attach_in(
        &self,
        st: &mut State,
        id: &str,
        cidr: IpNet,
        kind: BlockKind,
    ) -> Result<(), NodeError> {
        let cap = self.capacity(cidr, kind)?;
        let Some(idx) = st.interfaces.iter().position(|i| i.id == id) else {
            return Err(NodeError::UnknownInterface { id: id.to_owned() });
        };
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
        let i = &st.interfaces[idx];
        let used = u32::from(i.primary_address.is_ipv4() == v4)
            + i.blocks
                .iter()
                .filter(|b| b.0.addr().is_ipv4() == v4)
                .count() as u32;
        if used >= slots {
            return Err(NodeError::NoFreeSlot {
                interface: id.to_owned(),
                family: if v4 { "IPv4" } else { "IPv6" },
                slots,
                instance_type: self.limits.instance_type.clone(),
            });
        }
        if let Some((existing, interface)) = Self::overlapping(st, cidr) {
            return Err(NodeError::AlreadyAttached {
                cidr,
                existing,
                interface,
            });
        }
        let (iface, device_number) = (id.to_owned(), st.interfaces[idx].device_number);
        let blocks = &mut st.interfaces[idx].blocks;
        blocks.push((cidr, kind, cap));
        blocks.sort();
        // Quarantined pods whose address the new block holds get it back.
        let (back, kept): (Vec<PodInfo>, Vec<PodInfo>) = std::mem::take(&mut st.quarantine)
            .into_iter()
            .partition(|q| (0..cap).any(|o| nth(cidr, o) == q.address));
        st.quarantine = kept;
        for q in back {
            let pod = Pod {
                address: q.address,
                block: cidr,
                interface: iface.clone(),
                device_number,
                metadata: q.metadata,
                assigned_at: q.assigned_at,
            };
            st.pods.insert(q.key, pod);
        }
        Ok(())
    }

    /// The attached block holding `address` and its interface, if any.
    fn holding(st: &State, address: IpAddr) -> Option<(IpNet, &Iface)> {
        st.interfaces.iter().find_map(|i| {
            i.blocks
                .iter()
                .find(|b| (0..b.2).any(|o| nth(b.0, o) == address))
                .map(|b| (b.0, i))
        })
    }

    /// The address `key` holds in quarantine.
    fn quarantined_at(st: &State, key: &PodKey) -> Option<IpAddr> {
        st.quarantine
            .iter()
            .find(|q| &q.key == key)
            .map(|q| q.address)
    }

    /// See [`Node::quarantine`](crate::Node::quarantine).
    pub fn quarantine(&self, mut pod: PodInfo) -> Result<(), NodeError> {
        check_key(&pod.key)?;
        let mut st = self.state.lock();
        let held = st
            .pods
            .get(&pod.key)
            .map(|p| p.address)
            .or_else(|| Self::quarantined_at(&st, &pod.key));
        if let Some(held) = held {
            return Err(NodeError::KeyHoldsOther { key: pod.key, held });
        }
        if let Some((existing, i)) = Self::holding(&st, pod.address) {
            return Err(NodeError::AlreadyAttached {
                cidr: IpNet::from(pod.address),
                existing,
                interface: i.id.clone(),
            });
        }
        if st.quarantine.iter().any(|q| q.address == pod.address) {
            return Err(NodeError::AddressInUse {
                address: pod.address,
            });
        }
        pod.block = IpNet::from(pod.address);
        pod.interface_id = Arc::from("");
        st.quarantine.push(pod);
        Ok(())
    }

    /// See [`Node::release_quarantined`](crate::Node::release_quarantined).
    pub fn release_quarantined(&self, key: &PodKey) -> Result<PodInfo, NodeError> {
        let mut st = self.state.lock();
        match st.quarantine.iter().position(|q| &q.key == key) {
            Some(i) => Ok(st.quarantine.remove(i)),
            None => Err(NodeError::UnknownPod { key: key.clone() }),
        }
    }

    /// Quarantined pods, oldest first: key and address.
    pub fn quarantined(&self) -> Vec<(PodKey, IpAddr)> {
        let st = self.state.lock();
        st.quarantine
            .iter()
            .map(|q| (q.key.clone(), q.address))
            .collect()
    }

    fn assigned_in(st: &State, block: IpNet) -> u32 {
        st.pods.values().filter(|p| p.block == block).count() as u32
    }

    fn cooling_until(
        &self,
        st: &State,
        block: IpNet,
        cap: u32,
        now: Timestamp,
    ) -> Option<Timestamp> {
        (0..cap)
            .map(|o| nth(block, o))
            .filter(|a| self.is_cooling(st, *a, now))
            .map(|a| self.cooldown_end(st.released[&a]))
            .max()
    }

    fn drop_pods(st: &mut State, doomed: impl Fn(&Pod) -> bool) -> Vec<PodKey> {
        let keys: Vec<PodKey> = st
            .pods
            .iter()
            .filter(|(_, p)| doomed(p))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            st.pods.remove(k);
        }
        keys
    }

    fn forget_cooling(st: &mut State, block: IpNet) {
        st.released.retain(|a, _| !block.contains(a));
    }

    /// See [`Node::remove_block`](crate::Node::remove_block).
    pub fn remove_block(&self, cidr: IpNet, force: bool) -> Result<Vec<PodKey>, NodeError> {
        let now = self.clock.now();
        let mut st = self.state.lock();
        let found = st.interfaces.iter().enumerate().find_map(|(i, f)| {
            f.blocks
                .iter()
                .position(|b| b.0 == cidr)
                .map(|j| (i, j, f.blocks[j].2))
        });
        let Some((i, j, cap)) = found else {
            return Err(NodeError::NotAttached { cidr });
        };
        if !force {
            let pods = Self::assigned_in(&st, cidr);
            if pods > 0 {
                return Err(NodeError::InUse { cidr, pods });
            }
            if let Some(until) = self.cooling_until(&st, cidr, cap, now) {
                return Err(NodeError::Cooling { cidr, until });
            }
        }
        let keys = Self::drop_pods(&mut st, |p| p.block == cidr);
        st.interfaces[i].blocks.remove(j);
        Self::forget_cooling(&mut st, cidr);
        st.attached.remove(&cidr);
        st.given_back.insert(cidr, now);
        Ok(keys)
    }

    /// See [`Node::remove_interface`](crate::Node::remove_interface).
    pub fn remove_interface(&self, id: &str, force: bool) -> Result<Vec<PodKey>, NodeError> {
        let now = self.clock.now();
        let mut st = self.state.lock();
        let Some(idx) = st.interfaces.iter().position(|i| i.id == id) else {
            return Err(NodeError::UnknownInterface { id: id.to_owned() });
        };
        let iface = st.interfaces[idx].clone();
        if !force {
            if iface.flags.primary {
                return Err(NodeError::PrimaryInterface { id: id.to_owned() });
            }
            let pods: u32 = iface
                .blocks
                .iter()
                .map(|b| Self::assigned_in(&st, b.0))
                .sum();
            if pods > 0 {
                return Err(NodeError::InterfaceInUse {
                    id: id.to_owned(),
                    pods,
                });
            }
            let until = iface
                .blocks
                .iter()
                .filter_map(|b| self.cooling_until(&st, b.0, b.2, now))
                .max();
            if let Some(until) = until {
                return Err(NodeError::InterfaceCooling {
                    id: id.to_owned(),
                    until,
                });
            }
        }
        let mut keys = Self::drop_pods(&mut st, |p| p.interface == id);
        keys.sort();
        for b in &iface.blocks {
            Self::forget_cooling(&mut st, b.0);
            st.attached.remove(&b.0);
            st.given_back.insert(b.0, now);
        }
        st.interfaces_given_back.insert(iface.id.clone(), now);
        st.interfaces.remove(idx);
        Ok(keys)
    }

    fn result(p: &Pod, existing: bool) -> Assignment {
        Assignment {
            address: p.address,
            block: p.block,
            device_number: p.device_number,
            existing,
        }
    }

    /// See [`Node::assign`](crate::Node::assign): the packing rule, written out.
    pub fn assign(&self, request: PodRequest) -> Result<Assignment, NodeError> {
        check_key(&request.key)?;
        let now = self.clock.now();
        let mut st = self.state.lock();
        if let Some(p) = st.pods.get(&request.key) {
            return Ok(Self::result(p, true));
        }
        if let Some(held) = Self::quarantined_at(&st, &request.key) {
            return Err(NodeError::KeyHoldsOther {
                key: request.key,
                held,
            });
        }
        let mut choice = None;
        'interfaces: for i in st.interfaces.iter().filter(|i| self.serves(i)) {
            let mut blocks: Vec<(u32, IpNet, u32)> = i
                .blocks
                .iter()
                .filter(|b| self.serving_kind(b.0, b.1))
                .map(|b| (b.2 - Self::assigned_in(&st, b.0), b.0, b.2))
                .collect();
            blocks.sort(); // fewest free first, then lowest CIDR
            for (_, cidr, cap) in blocks {
                for o in 0..cap {
                    let a = nth(cidr, o);
                    let taken = st.pods.values().any(|p| p.address == a);
                    if !taken && !self.is_cooling(&st, a, now) {
                        choice = Some((a, cidr, i.id.clone(), i.device_number));
                        break 'interfaces;
                    }
                }
            }
        }
        let Some((address, block, interface, device_number)) = choice else {
            let cooling = st
                .interfaces
                .iter()
                .filter(|i| self.serves(i))
                .flat_map(|i| i.blocks.iter())
                .filter(|b| self.serving_kind(b.0, b.1))
                .flat_map(|b| (0..b.2).map(move |o| nth(b.0, o)))
                .filter(|a| self.is_cooling(&st, *a, now))
                .count() as u32;
            if self.config.family == crate::IpFamily::V6
                && self.config.mode == crate::AddressMode::Secondary
            {
                return Err(NodeError::Ipv6NeedsPrefixMode {
                    what: format!(
                        "an IPv6 node in secondary-IP mode has no address for {}",
                        request.key
                    ),
                });
            }
            return Err(NodeError::NoAvailableAddresses {
                key: request.key,
                cooling,
            });
        };
        st.released.remove(&address);
        let pod = Pod {
            address,
            block,
            interface,
            device_number,
            metadata: request.metadata,
            assigned_at: now,
        };
        let out = Self::result(&pod, false);
        st.pods.insert(request.key, pod);
        Ok(out)
    }

    /// See [`Node::assign_address`](crate::Node::assign_address).
    pub fn assign_address(
        &self,
        request: PodRequest,
        address: IpAddr,
        assigned_at: Timestamp,
    ) -> Result<Assignment, NodeError> {
        check_key(&request.key)?;
        let now = self.clock.now();
        let mut st = self.state.lock();
        if let Some(p) = st.pods.get(&request.key) {
            if p.address == address {
                return Ok(Self::result(p, true));
            }
            return Err(NodeError::KeyHoldsOther {
                key: request.key,
                held: p.address,
            });
        }
        if let Some(held) = Self::quarantined_at(&st, &request.key).filter(|&h| h != address) {
            return Err(NodeError::KeyHoldsOther {
                key: request.key,
                held,
            });
        }
        let found = Self::holding(&st, address).map(|(b, i)| (b, i.id.clone(), i.device_number));
        let Some((block, interface, device_number)) = found else {
            return Err(NodeError::NotAttached {
                cidr: IpNet::from(address),
            });
        };
        if st.pods.values().any(|p| p.address == address) {
            return Err(NodeError::AddressInUse { address });
        }
        if self.is_cooling(&st, address, now) {
            return Err(NodeError::AddressCooling { address });
        }
        st.released.remove(&address);
        let pod = Pod {
            address,
            block,
            interface,
            device_number,
            metadata: request.metadata,
            assigned_at,
        };
        let out = Self::result(&pod, false);
        st.pods.insert(request.key, pod);
        Ok(out)
    }

    /// See [`Node::release`](crate::Node::release).
    pub fn release(&self, key: &PodKey) -> Result<Released, NodeError> {
        let now = self.clock.now();
        let mut st = self.state.lock();
        let Some(p) = st.pods.remove(key) else {
            // A quarantined pod leaves the quarantine; its address was never attached.
            let Some(i) = st.quarantine.iter().position(|q| &q.key == key) else {
                // ipamd's fallback for entries it migrated (see Node::release).
                let migrated = PodKey::new(
                    crate::node::MIGRATED_NETWORK_NAME,
                    key.container_id(),
                    crate::node::MIGRATED_IF_NAME,
                );
                if &migrated != key {
                    drop(st);
                    return self
                        .release(&migrated)
                        .map_err(|_| NodeError::UnknownPod { key: key.clone() });
                }
                return Err(NodeError::UnknownPod { key: key.clone() });
            };
            let q = st.quarantine.remove(i);
            return Ok(Released {
                address: q.address,
                block: q.block,
                device_number: None,
                metadata: q.metadata,
                assigned_at: q.assigned_at,
            });
        };
        if !self.config.cooldown.is_zero() {
            st.released.insert(p.address, now);
        }
        Ok(Released {
            address: p.address,
            block: p.block,
            device_number: Some(p.device_number),
            metadata: p.metadata,
            assigned_at: p.assigned_at,
        })
    }

    /// Every pod: key and address, sorted by address.
    pub fn pods(&self) -> Vec<(PodKey, IpAddr)> {
        let st = self.state.lock();
        let mut v: Vec<_> = st
            .pods
            .iter()
            .map(|(k, p)| (k.clone(), p.address))
            .collect();
        v.sort_by_key(|(_, a)| *a);
        v
    }

    /// `(T, A, cooling)` over serving blocks, as [`NodeSnapshot`](crate::NodeSnapshot) counts.
    pub fn counts(&self) -> (u32, u32, u32) {
        let now = self.clock.now();
        let st = self.state.lock();
        let mut t = (0, 0, 0);
        for i in st.interfaces.iter().filter(|i| self.serves(i)) {
            for b in i.blocks.iter().filter(|b| self.serving_kind(b.0, b.1)) {
                t.0 += b.2;
                t.1 += Self::assigned_in(&st, b.0);
                t.2 += (0..b.2)
                    .filter(|&o| self.is_cooling(&st, nth(b.0, o), now))
                    .count() as u32;
            }
        }
        t
    }

    /// See [`Node::reconcile`](crate::Node::reconcile), written out: removals, then additions
    /// one by one.
    pub fn reconcile(&self, observed: &[ObservedInterface]) -> CloudDiff {
        let now = self.clock.now();
        let within = |t: Timestamp| now.saturating_since(t) < RECONCILE_COOLDOWN;
        let mut st = self.state.lock();
        let mut diff = CloudDiff::default();
        let mut reports: Vec<&ObservedInterface> = Vec::new();
        for o in observed {
            if reports.iter().any(|r| r.spec.id == o.spec.id) {
                let e = NodeError::DuplicateInterface {
                    id: o.spec.id.clone(),
                };
                diff.refused.push((o.spec.id.clone(), None, e));
            } else {
                reports.push(o);
            }
        }
        let reported = |o: &ObservedInterface| -> Vec<(IpNet, BlockKind)> {
            let mut v: Vec<_> = o.prefixes.iter().map(|&c| (c, BlockKind::Prefix)).collect();
            v.extend(
                o.secondary_addresses
                    .iter()
                    .filter(|&&a| a != o.spec.primary_address)
                    .map(|&a| (IpNet::from(a), BlockKind::Secondary)),
            );
            v
        };
        let mut vanished = Vec::new();
        let mut kept = Vec::new();
        for mut i in std::mem::take(&mut st.interfaces) {
            let Some(r) = reports.iter().find(|r| r.spec.id == i.id) else {
                if within(i.attached_at) {
                    diff.awaiting_report.push((i.id.clone(), None));
                    kept.push(i);
                } else {
                    vanished.extend(i.blocks.iter().map(|b| b.0));
                    diff.removed_interfaces.push(i.id.clone());
                }
                continue;
            };
            let theirs = reported(r);
            let mut blocks = Vec::new();
            for b in i.blocks {
                if theirs.iter().any(|t| t.0 == b.0) {
                    blocks.push(b);
                } else if st.attached.get(&b.0).is_some_and(|&t| within(t)) {
                    diff.awaiting_report.push((i.id.clone(), Some(b.0)));
                    blocks.push(b);
                } else {
                    vanished.push(b.0);
                    diff.removed_blocks.push((i.id.clone(), b.0));
                }
            }
            i.blocks = blocks;
            kept.push(i);
        }
        st.interfaces = kept;
        let before: Vec<PodKey> = st.quarantine.iter().map(|q| q.key.clone()).collect();
        let gone: Vec<PodKey> = st
            .pods
            .iter()
            .filter(|(_, p)| vanished.contains(&p.block))
            .map(|(k, _)| k.clone())
            .collect();
        let mut newly = Vec::new();
        for k in gone {
            let p = st.pods.remove(&k).expect("listed above");
            newly.push(PodInfo {
                key: k,
                address: p.address,
                block: IpNet::from(p.address),
                interface_id: Arc::from(""),
                metadata: p.metadata,
                assigned_at: p.assigned_at,
            });
        }
        st.quarantine.extend(newly.iter().cloned());
        for b in &vanished {
            Self::forget_cooling(&mut st, *b);
        }
        for r in &reports {
            let id = r.spec.id.clone();
            if !st.interfaces.iter().any(|i| i.id == id) {
                if st
                    .interfaces_given_back
                    .get(&id)
                    .is_some_and(|&t| within(t))
                {
                    diff.ignored_given_back.push((id, None));
                    continue;
                }
                match self.attach_interface_in(&mut st, r.spec.clone(), now) {
                    Ok(()) => diff.added_interfaces.push(id.clone()),
                    Err(e) => {
                        diff.refused.push((id, None, e));
                        continue;
                    }
                }
            }
            for (cidr, kind) in reported(r) {
                let i = st.interfaces.iter().find(|i| i.id == id).expect("there");
                if i.blocks.iter().any(|b| b.0 == cidr) {
                    continue;
                }
                if st.given_back.get(&cidr).is_some_and(|&t| within(t)) {
                    diff.ignored_given_back.push((id.clone(), Some(cidr)));
                    continue;
                }
                match self.attach_in(&mut st, &id, cidr, kind) {
                    Ok(()) => diff.added_blocks.push((id.clone(), cidr)),
                    Err(e) => diff.refused.push((id.clone(), Some(cidr), e)),
                }
            }
        }
        let still: Vec<&PodKey> = st.quarantine.iter().map(|q| &q.key).collect();
        let mut reinstated: Vec<PodKey> = before
            .iter()
            .chain(newly.iter().map(|q| &q.key))
            .filter(|k| !still.contains(k))
            .cloned()
            .collect();
        reinstated.sort();
        diff.reinstated = reinstated;
        diff.quarantined = newly
            .into_iter()
            .filter(|q| still.contains(&&q.key))
            .collect();
        diff
    }

    /// What the cloud would report for the model's attachments: every interface in device
    /// order with its prefixes and secondary addresses (the primary address listed first
    /// among them, as the metadata service lists it).
    pub fn as_reported(&self) -> Vec<ObservedInterface> {
        let st = self.state.lock();
        st.interfaces
            .iter()
            .map(|i| {
                let spec = InterfaceSpec::new(i.id.clone(), i.device_number, i.primary_address)
                    .flags(i.flags);
                let mut o = ObservedInterface::new(spec).secondary_address(i.primary_address);
                for b in &i.blocks {
                    o = match b.1 {
                        BlockKind::Prefix => o.prefix(b.0),
                        BlockKind::Secondary => o.secondary_address(b.0.addr()),
                    };
                }
                o
            })
            .collect()
    }
}
