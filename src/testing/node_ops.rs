//! Operation sequences replayed on a [`Node`] and on its [`NaiveNode`] side by side: every
//! result compared, `verify()`, counts and pods compared after every step. One replay serves the
//! proptest (`tests/integration/node_model.rs`) and the fuzz target (`fuzz/.../node_ops.rs`).

use super::NaiveNode;
use crate::{
    limits::InstanceLimits,
    planner::{plan, Action, WarmSettings},
    BlockKind, Clock, InterfaceFlags, InterfaceSpec, ManualClock, Node, NodeConfig, PodInfo,
    PodKey, PodMetadata, PodRequest, Timestamp,
};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// One step. Small numbers pick interfaces (`dev`), prefixes and addresses (`n`) and keys from
/// small fixed sets, so that sequences collide often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeOp {
    /// Attach interface `eni-{dev}` (device 0 is the primary).
    AttachInterface {
        /// Device number, 0 to 3.
        dev: u32,
        /// Flag it trunk.
        trunk: bool,
    },
    /// Attach a prefix: `10.1.{n}.0/28`, or misaligned (`shape` 0) or of the wrong length (1).
    AttachPrefix {
        /// Interface.
        dev: u32,
        /// Which prefix.
        n: u8,
        /// 0 misaligned, 1 wrong length, else a good /28.
        shape: u8,
    },
    /// Attach secondary address `10.2.0.{n + 1}`.
    AttachSecondary {
        /// Interface.
        dev: u32,
        /// Which address.
        n: u8,
    },
    /// Assign key `key` (key 23 is invalid: an empty container id).
    Assign {
        /// Which key.
        key: u8,
    },
    /// Assign key `key` a given address (in a prefix, a secondary, or outside everything).
    AssignAddress {
        /// Which key.
        key: u8,
        /// Which address.
        n: u8,
    },
    /// Release key `key`.
    Release {
        /// Which key.
        key: u8,
    },
    /// Quarantine key `key` at an address picked as for [`NodeOp::AssignAddress`] (as a restore
    /// does for a pod whose block is not attached).
    Quarantine {
        /// Which key.
        key: u8,
        /// Which address.
        n: u8,
    },
    /// Drop key `key`'s quarantine entry.
    ReleaseQuarantined {
        /// Which key.
        key: u8,
    },
    /// Move the clock.
    Advance {
        /// Seconds.
        secs: u8,
    },
    /// Remove prefix `10.1.{n}.0/28`.
    RemovePrefix {
        /// Which prefix.
        n: u8,
        /// Drop its pods.
        force: bool,
    },
    /// Remove secondary address `10.2.0.{n + 1}`.
    RemoveSecondary {
        /// Which address.
        n: u8,
        /// Drop its pod.
        force: bool,
    },
    /// Remove interface `eni-{dev}`.
    RemoveInterface {
        /// Which interface.
        dev: u32,
        /// Even with pods, or the primary.
        force: bool,
    },
    /// Plan the warm pool (shipped settings), check the plan's rules, and carry it out on both
    /// with a deterministic cloud (prefixes `10.3.k.0/28`, addresses `10.4.0.k`).
    Plan,
    /// Reconcile with a cloud report: what is attached, less the `drop_iface`-th interface
    /// and the `drop_block`-th block (if there are that many), plus what `add` picks (a
    /// prefix, a secondary address, an interface with or without a prefix, a misaligned
    /// prefix, or nothing).
    Reconcile {
        /// Which interface to leave out.
        drop_iface: u8,
        /// Which block to leave out.
        drop_block: u8,
        /// What to add.
        add: u8,
    },
}

/// The cloud report of [`NodeOp::Reconcile`], built from what the model has attached.
fn report(
    mut r: Vec<crate::ObservedInterface>,
    drop_iface: u8,
    drop_block: u8,
    add: u8,
) -> Vec<crate::ObservedInterface> {
    if usize::from(drop_iface) < r.len() {
        r.remove(usize::from(drop_iface));
    }
    let mut k = usize::from(drop_block);
    for o in &mut r {
        if k < o.prefixes.len() {
            o.prefixes.remove(k);
            break;
        }
        k -= o.prefixes.len();
        // The first listed address is the primary one; it is not a block.
        let secondaries = o.secondary_addresses.len().saturating_sub(1);
        if k < secondaries {
            o.secondary_addresses.remove(k + 1);
            break;
        }
        k -= secondaries;
    }
    let len = r.len();
    let at = usize::from(add) % len.max(1);
    match add {
        0..=7 if len > 0 => r[at] = r[at].clone().prefix(prefix(add, 2)),
        8..=19 if len > 0 => r[at] = r[at].clone().secondary_address(secondary(add - 8)),
        20..=23 => r.push(crate::ObservedInterface::new(interface(
            u32::from(add - 20),
            false,
        ))),
        24..=27 => r.push(
            crate::ObservedInterface::new(interface(u32::from(add - 24), false))
                .prefix(prefix(add - 20, 2)),
        ),
        28 if len > 0 => r[0] = r[0].clone().prefix(prefix(0, 0)),
        _ => {}
    }
    r
}

/// A node and its model, driven together.
pub struct NodePair {
    node: Node,
    model: NaiveNode,
    clock: Arc<ManualClock>,
    limits: InstanceLimits,
    settings: WarmSettings,
    /// Next block the deterministic cloud hands out.
    cloud: u32,
}

fn prefix(n: u8, shape: u8) -> IpNet {
    let net = match shape {
        0 => format!("10.1.{n}.8/28"),
        1 => format!("10.1.{n}.0/27"),
        _ => format!("10.1.{n}.0/28"),
    };
    net.parse().expect("a valid CIDR")
}

fn secondary(n: u8) -> IpAddr {
    IpAddr::from([10, 2, 0, n.wrapping_add(1)])
}

fn key(k: u8) -> PodKey {
    let c = if k == 23 {
        String::new()
    } else {
        format!("c{k}")
    };
    PodKey::new("net", c, "eth0")
}

fn request(k: u8) -> PodRequest {
    PodRequest {
        key: key(k),
        metadata: PodMetadata {
            namespace: "ns".into(),
            pod_name: format!("p{k}"),
            interfaces_count: 1,
        },
    }
}

fn interface(dev: u32, trunk: bool) -> InterfaceSpec {
    InterfaceSpec::new(
        format!("eni-{dev}"),
        dev,
        IpAddr::from([10, 0, 0, 10 + (dev % 200) as u8]),
    )
    .flags(InterfaceFlags {
        primary: dev == 0,
        trunk,
        efa: false,
        excluded: false,
    })
}

/// Address `n` of the set [`NodeOp::AssignAddress`] and [`NodeOp::Quarantine`] pick from: a
/// secondary address, one of a prefix's, or one outside everything.
fn address(n: u8) -> IpAddr {
    match n % 4 {
        0 => secondary(n / 4 % 12),
        3 => IpAddr::from([10, 9, 0, n]),
        _ => IpAddr::from([10, 1, n % 8, n / 8]),
    }
}

/// `Err` with both sides when they differ.
fn same<T: PartialEq + std::fmt::Debug>(what: &str, node: T, model: T) -> Result<(), String> {
    if node == model {
        Ok(())
    } else {
        Err(format!("{what}: node {node:?}, model {model:?}"))
    }
}

impl NodePair {
    /// A fresh pair of the given instance type (it must be in the table).
    pub fn new(instance_type: &str, config: NodeConfig) -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
            1_000_000_000_000,
        )));
        let limits = InstanceLimits::lookup(instance_type)
            .expect("a known instance type")
            .clone();
        NodePair {
            node: Node::with_clock(limits.clone(), config.clone(), clock.clone()),
            model: NaiveNode::new(limits.clone(), config, clock.clone()),
            clock,
            limits,
            settings: WarmSettings::shipped_manifest(),
            cloud: 0,
        }
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Replays one step on both and compares everything.
    ///
    /// # Errors
    /// A description of the first difference or broken invariant.
    pub fn step(&mut self, op: &NodeOp) -> Result<(), String> {
        let (node, model) = (&self.node, &self.model);
        match *op {
            NodeOp::AttachInterface { dev, trunk } => {
                let spec = interface(dev, trunk);
                same(
                    "attach_interface",
                    node.attach_interface(spec.clone()),
                    model.attach_interface(spec),
                )?;
            }
            NodeOp::AttachPrefix { dev, n, shape } => {
                let (id, p) = (format!("eni-{dev}"), prefix(n, shape));
                same(
                    "attach_prefix",
                    node.attach_prefix(&id, p),
                    model.attach_prefix(&id, p),
                )?;
            }
            NodeOp::AttachSecondary { dev, n } => {
                let (id, a) = (format!("eni-{dev}"), secondary(n));
                same(
                    "attach_secondary",
                    node.attach_secondary(&id, a),
                    model.attach_secondary(&id, a),
                )?;
            }
            NodeOp::Assign { key } => {
                same(
                    "assign",
                    node.assign(request(key)),
                    model.assign(request(key)),
                )?;
            }
            NodeOp::AssignAddress { key, n } => {
                let a = address(n);
                let at = self.clock.now();
                same(
                    "assign_address",
                    node.assign_address(request(key), a, at),
                    model.assign_address(request(key), a, at),
                )?;
            }
            NodeOp::Release { key: k } => {
                same("release", node.release(&key(k)), model.release(&key(k)))?;
            }
            NodeOp::Quarantine { key: k, n } => {
                let a = address(n);
                let r = request(k);
                let pod = PodInfo {
                    key: r.key,
                    address: a,
                    // Both sides replace these two.
                    block: IpNet::from(IpAddr::from([0, 0, 0, 0])),
                    interface_id: Arc::from("eni-x"),
                    metadata: r.metadata,
                    assigned_at: self.clock.now(),
                };
                same(
                    "quarantine",
                    node.quarantine(pod.clone()),
                    model.quarantine(pod),
                )?;
            }
            NodeOp::ReleaseQuarantined { key: k } => {
                same(
                    "release_quarantined",
                    node.release_quarantined(&key(k)),
                    model.release_quarantined(&key(k)),
                )?;
            }
            NodeOp::Advance { secs } => self.clock.advance(Duration::from_secs(u64::from(secs))),
            NodeOp::RemovePrefix { n, force } => {
                let p = prefix(n, 2);
                same(
                    "remove prefix",
                    node.remove_block(p, force),
                    model.remove_block(p, force),
                )?;
            }
            NodeOp::RemoveSecondary { n, force } => {
                let c = IpNet::from(secondary(n));
                same(
                    "remove secondary",
                    node.remove_block(c, force),
                    model.remove_block(c, force),
                )?;
            }
            NodeOp::RemoveInterface { dev, force } => {
                let id = format!("eni-{dev}");
                same(
                    "remove_interface",
                    node.remove_interface(&id, force),
                    model.remove_interface(&id, force),
                )?;
            }
            NodeOp::Plan => self.plan_and_carry_out()?,
            NodeOp::Reconcile {
                drop_iface,
                drop_block,
                add,
            } => {
                let r = report(model.as_reported(), drop_iface, drop_block, add);
                same("reconcile", node.reconcile(&r), model.reconcile(&r))?;
            }
        }
        self.check()
    }

    /// `verify()`, then the counts and every pod, compared.
    fn check(&self) -> Result<(), String> {
        self.node.verify().map_err(|e| format!("verify: {e}"))?;
        let snap = self.node.snapshot();
        same(
            "counts (total, assigned, cooling)",
            (snap.total(), snap.assigned(), snap.cooling()),
            self.model.counts(),
        )?;
        let pods: Vec<(PodKey, IpAddr)> = self
            .node
            .pods()
            .into_iter()
            .map(|p| (p.key, p.address))
            .collect();
        same("pods", pods, self.model.pods())?;
        let quarantined: Vec<(PodKey, IpAddr)> = self
            .node
            .quarantined()
            .into_iter()
            .map(|q| (q.key, q.address))
            .collect();
        same("quarantined", quarantined, self.model.quarantined())?;
        Ok(())
    }

    /// A block from the deterministic cloud, or `None` once it has handed out 250.
    fn next_block(&mut self, kind: BlockKind) -> Option<IpNet> {
        self.cloud += 1;
        let k = u8::try_from(self.cloud).ok().filter(|k| *k <= 250)?;
        let net = match kind {
            BlockKind::Prefix => IpNet::from(IpAddr::from([10, 3, k, 0])),
            BlockKind::Secondary => IpNet::from(IpAddr::from([10, 4, 0, k])),
        };
        match kind {
            BlockKind::Prefix => Some(
                IpNet::new(net.addr(), 28)
                    .expect("28 is a valid length")
                    .trunc(),
            ),
            BlockKind::Secondary => Some(net),
        }
    }

    fn attach(&mut self, interface: &str, kind: BlockKind, count: u32) -> Result<(), String> {
        for _ in 0..count {
            let Some(b) = self.next_block(kind) else {
                return Ok(());
            };
            match kind {
                BlockKind::Prefix => same(
                    "plan: attach prefix",
                    self.node.attach_prefix(interface, b),
                    self.model.attach_prefix(interface, b),
                )?,
                BlockKind::Secondary => same(
                    "plan: attach secondary",
                    self.node.attach_secondary(interface, b.addr()),
                    self.model.attach_secondary(interface, b.addr()),
                )?,
            };
        }
        Ok(())
    }

    /// Plans, checks the plan's rules against the snapshot it came from, and carries it out.
    fn plan_and_carry_out(&mut self) -> Result<(), String> {
        let snap = self.node.snapshot();
        let p = plan(&self.limits, &self.settings, &snap, self.clock.now());
        let e = &p.explanation;
        let grows = p.actions.iter().any(Action::is_growth);
        if grows && e.total >= e.max_pods {
            return Err(format!("plan grows at max pods: {p:?}"));
        }
        for action in &p.actions {
            let released: Vec<(&String, IpNet)> = match action {
                Action::ReleasePrefixes {
                    interface,
                    prefixes,
                } => prefixes.iter().map(|b| (interface, *b)).collect(),
                Action::ReleaseAddresses {
                    interface,
                    addresses,
                } => addresses
                    .iter()
                    .map(|a| (interface, IpNet::from(*a)))
                    .collect(),
                _ => Vec::new(),
            };
            for (interface, b) in released {
                let empty = snap.interfaces.iter().any(|i| {
                    &i.id == interface && i.blocks.iter().any(|x| x.cidr == b && x.is_empty())
                });
                if !empty {
                    return Err(format!("plan releases {b}, not an empty block"));
                }
            }
            if let Action::FreeInterface { interface } = action {
                let i = snap.interfaces.iter().find(|i| &i.id == interface);
                if i.is_none_or(|i| i.flags.primary || i.assigned() > 0 || i.cooling() > 0) {
                    return Err(format!("plan frees {interface}, which it may not"));
                }
            }
        }
        for action in p.actions {
            match action {
                Action::AttachPrefixes { interface, count } => {
                    self.attach(&interface, BlockKind::Prefix, count)?
                }
                Action::AttachAddresses { interface, count } => {
                    self.attach(&interface, BlockKind::Secondary, count)?
                }
                Action::AttachInterface {
                    device_number,
                    kind,
                    count,
                } => {
                    let spec = interface(device_number, false);
                    let id = spec.id.clone();
                    same(
                        "plan: attach interface",
                        self.node.attach_interface(spec.clone()),
                        self.model.attach_interface(spec),
                    )?;
                    self.attach(&id, kind, count)?;
                }
                Action::ReleasePrefixes { prefixes, .. } => {
                    for b in prefixes {
                        same(
                            "plan: release prefix",
                            self.node.remove_block(b, false),
                            self.model.remove_block(b, false),
                        )?;
                    }
                }
                Action::ReleaseAddresses { addresses, .. } => {
                    for a in addresses {
                        same(
                            "plan: release address",
                            self.node.remove_block(IpNet::from(a), false),
                            self.model.remove_block(IpNet::from(a), false),
                        )?;
                    }
                }
                Action::FreeInterface { interface } => {
                    same(
                        "plan: free interface",
                        self.node.remove_interface(&interface, false),
                        self.model.remove_interface(&interface, false),
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_step_grows_both_sides_from_the_deterministic_cloud() {
        let mut pair = NodePair::new("t3.small", NodeConfig::default());
        for op in [
            NodeOp::AttachInterface {
                dev: 0,
                trunk: false,
            },
            NodeOp::Plan,
            NodeOp::Assign { key: 1 },
        ] {
            pair.step(&op).unwrap();
        }
        let snap = pair.node().snapshot();
        assert_eq!(snap.interfaces[0].blocks[0].cidr.to_string(), "10.3.1.0/28");
        assert_eq!(snap.assigned(), 1);
    }

    #[test]
    fn a_difference_is_reported() {
        assert!(same("x", 1, 2).unwrap_err().contains("node 1, model 2"));
    }
}
