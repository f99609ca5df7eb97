//! The cold path: attaching and removing interfaces, prefixes and secondary addresses. Every
//! change runs under the admin lock and every shard lock ([`Node::change`]), so it sees no
//! assignment half done, and swaps in a new layout for all shards at once.

use super::block::{Block, BlockKind};
use super::layout::{overlapping, Interface, Layout};
use super::{Guards, InterfaceSpec, Node, NodeError, PodKey, PodRecord, Timestamp};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

impl Node {
    /// Runs an attachment change with the admin lock and every shard locked. `f` returns the new
    /// interface list (or `None` for no change) and its result.
    pub(super) fn change<R>(
        &self,
        f: impl FnOnce(&Layout, &mut Guards<'_>) -> Result<(Option<Vec<Interface>>, R), NodeError>,
    ) -> Result<R, NodeError> {
        let mut admin = self.admin.lock();
        let mut guards: Guards<'_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let (new, out) = f(&admin.layout, &mut guards)?;
        if let Some(interfaces) = new {
            self.swap_layout(&mut admin, &mut guards, interfaces);
        }
        Ok(out)
    }

    /// Sets the mode pods are served in and lays the same interfaces out again under it, with
    /// the admin lock and every shard locked.
    pub(super) fn relayout_in(
        &self,
        mode: super::AddressMode,
        fallback: Option<crate::limits::PrefixFallback>,
    ) {
        let mut admin = self.admin.lock();
        let mut guards: Guards<'_> = self.shards.iter().map(|s| s.0.lock()).collect();
        admin.mode = mode;
        admin.prefix_fallback = fallback;
        let interfaces = admin.layout.interfaces.clone();
        self.swap_layout(&mut admin, &mut guards, interfaces);
    }

    /// Builds the layout of `interfaces` under the mode in force and hands it to every shard,
    /// remapping each pod record to its block's new index.
    pub(super) fn swap_layout(
        &self,
        admin: &mut super::Admin,
        guards: &mut Guards<'_>,
        interfaces: Vec<Interface>,
    ) {
        {
            let mut config = self.config.clone();
            config.mode = admin.mode;
            let layout = Arc::new(Layout::new(interfaces, &config));
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
            self.reinstate(admin, guards);
        }
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
        self.change(|layout, _| {
            let mut interfaces = layout.interfaces.clone();
            self.add_interface(&mut interfaces, spec, attached_at)?;
            Ok((Some(interfaces), ()))
        })
    }

    /// Adds the interface `spec` (with no blocks) to `interfaces`, a working copy of the
    /// layout's, if the node may have it.
    pub(super) fn add_interface(
        &self,
        interfaces: &mut Vec<Interface>,
        spec: InterfaceSpec,
        attached_at: Timestamp,
    ) -> Result<(), NodeError> {
        if interfaces.iter().any(|i| *i.id == *spec.id) {
            return Err(NodeError::DuplicateInterface { id: spec.id });
        }
        if let Some(i) = interfaces
            .iter()
            .find(|i| i.device_number == spec.device_number)
        {
            return Err(NodeError::DuplicateDeviceNumber {
                device_number: spec.device_number,
                existing: i.id.to_string(),
            });
        }
        let limit = self.interface_limit();
        if interfaces.len() as u32 >= limit {
            return Err(NodeError::TooManyInterfaces {
                instance_type: self.limits.instance_type.clone(),
                limit,
            });
        }
        let primary = IpNet::from(spec.primary_address);
        if let Some((existing, iface)) = overlapping(interfaces, primary) {
            return Err(NodeError::AlreadyAttached {
                cidr: primary,
                existing,
                interface: iface.id.to_string(),
            });
        }
        interfaces.push(Interface {
            id: Arc::from(spec.id.as_str()),
            device_number: spec.device_number,
            primary_address: spec.primary_address,
            flags: spec.flags,
            attached_at,
            blocks: Vec::new(),
        });
        Ok(())
    }

    /// Attaches a delegated prefix (IPv4 /28 or IPv6 /80) to an interface.
    ///
    /// # Errors
    /// [`NodeError::PrefixLength`], [`NodeError::Misaligned`], [`NodeError::UnknownInterface`],
    /// [`NodeError::NoFreeSlot`], [`NodeError::Ipv6Unsupported`], [`NodeError::AlreadyAttached`].
    pub fn attach_prefix(&self, interface_id: &str, cidr: IpNet) -> Result<(), NodeError> {
        self.attach_block(interface_id, cidr, BlockKind::Prefix)
    }

    /// Attaches a secondary address to an interface.
    ///
    /// # Errors
    /// As [`attach_prefix`](Node::attach_prefix), less the length checks;
    /// [`NodeError::Ipv6NeedsPrefixMode`] for an IPv6 address.
    pub fn attach_secondary(&self, interface_id: &str, address: IpAddr) -> Result<(), NodeError> {
        self.attach_block(interface_id, IpNet::from(address), BlockKind::Secondary)
    }

    fn attach_block(
        &self,
        interface_id: &str,
        cidr: IpNet,
        kind: BlockKind,
    ) -> Result<(), NodeError> {
        self.change(|layout, _| {
            let mut interfaces = layout.interfaces.clone();
            self.add_block(&mut interfaces, interface_id, cidr, kind)?;
            // Noted under the change's locks, so a cloud reconcile sees the block and its note
            // together (see `Node::reconcile`).
            self.recent.lock().note_attached(cidr, self.clock.now());
            Ok((Some(interfaces), ()))
        })
    }

    /// Adds a prefix (`kind` `Prefix`) or a secondary address (`Secondary`, `cidr` a /32 or
    /// /128) to the interface `interface_id` of `interfaces`, a working copy of the layout's,
    /// if the interface has a free slot and nothing attached overlaps it.
    pub(super) fn add_block(
        &self,
        interfaces: &mut [Interface],
        interface_id: &str,
        cidr: IpNet,
        kind: BlockKind,
    ) -> Result<(), NodeError> {
        let v4 = cidr.addr().is_ipv4();
        let capacity = match kind {
            BlockKind::Prefix => {
                let expected = if v4 { 28 } else { 80 };
                if cidr.prefix_len() != expected {
                    return Err(NodeError::PrefixLength { cidr, expected });
                }
                if cidr.trunc() != cidr {
                    return Err(NodeError::Misaligned { cidr });
                }
                if v4 {
                    16
                } else {
                    self.config.ipv6_prefix_capacity
                }
            }
            BlockKind::Secondary => {
                if !v4 {
                    let address = cidr.addr();
                    return Err(NodeError::Ipv6NeedsPrefixMode {
                        what: format!(
                            "{address} cannot be a secondary address; attach an IPv6 /80 prefix"
                        ),
                    });
                }
                1
            }
        };
        let Some(idx) = interfaces.iter().position(|i| &*i.id == interface_id) else {
            return Err(NodeError::UnknownInterface {
                id: interface_id.to_owned(),
            });
        };
        let iface = &interfaces[idx];
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
        if let Some((existing, other)) = overlapping(interfaces, cidr) {
            return Err(NodeError::AlreadyAttached {
                cidr,
                existing,
                interface: other.id.to_string(),
            });
        }
        let iface = &mut interfaces[idx];
        let block = Block::new(cidr, kind, iface.id.clone(), iface.device_number, capacity);
        iface.blocks.push(Arc::new(block));
        iface.blocks.sort_by_key(|b| b.cidr);
        Ok(())
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
            self.recent.lock().note_given_back(cidr, self.clock.now());
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
            self.recent
                .lock()
                .note_interface_given_back(iface, self.clock.now());
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
}

/// Removes the records whose block matches `doomed` from every shard; returns their keys,
/// sorted.
fn drop_records(guards: &mut Guards<'_>, doomed: impl Fn(&Arc<Block>) -> bool) -> Vec<PodKey> {
    let mut keys = take_records(guards, doomed, |_, _, r| r.key.clone());
    keys.sort();
    keys
}

/// Removes the records whose block matches `doomed` from every shard, and returns what `each`
/// makes of each one (given its shard's index and layout).
pub(super) fn take_records<T>(
    guards: &mut Guards<'_>,
    doomed: impl Fn(&Arc<Block>) -> bool,
    mut each: impl FnMut(usize, &Layout, &PodRecord) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    for (shard, g) in guards.iter_mut().enumerate() {
        let g = &mut **g;
        let layout = &g.layout;
        g.pods.retain(|r| {
            if doomed(layout.block(r.block)) {
                out.push(each(shard, layout, r));
                false
            } else {
                true
            }
        });
    }
    out
}
