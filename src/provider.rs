//! Carrying out a plan: the [`Provider`] trait (the cloud's side of each action) and
//! [`LocalProvider`], which carves everything from in-process [`Subnet`]s.

use crate::node::{BlockKind, InterfaceFlags, InterfaceSpec, Node, NodeError};
use crate::planner::{Action, Plan};
use crate::{Subnet, SubnetError};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// Why the cloud refused an action. [`std::error::Error::source`] gives the cause itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The subnet has no room (`InsufficientCidrBlocks` or `InsufficientFreeAddressesInSubnet`):
    /// the planner backs off for 120 seconds.
    #[error("{0}")]
    InsufficientSpace(#[source] SubnetError),
    /// Any other refusal: the cloud client's own error, kept whole (an SDK error, an HTTP
    /// failure) so the embedder can inspect or downcast it. [`ProviderError::cloud`] builds one.
    #[error("{0}")]
    Cloud(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The node refused what the cloud gave (a defect of the provider: say which).
    #[error("node refused the cloud's answer: {0}")]
    Node(#[source] NodeError),
}

impl ProviderError {
    /// A [`ProviderError::Cloud`] from any error of the embedder's cloud client, or a message
    /// (`ProviderError::cloud("throttled")`).
    pub fn cloud(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        ProviderError::Cloud(error.into())
    }
}

/// The cloud's side of a plan's actions. Each method either does all it was asked or nothing.
pub trait Provider {
    /// Creates and attaches a new (non-primary) interface at `device_number`.
    fn create_interface(&mut self, device_number: u32) -> Result<InterfaceSpec, ProviderError>;
    /// Delegates `count` prefixes of the node's family to `interface`.
    fn assign_prefixes(
        &mut self,
        interface: &str,
        v6: bool,
        count: u32,
    ) -> Result<Vec<IpNet>, ProviderError>;
    /// Assigns `count` secondary addresses to `interface`.
    fn assign_addresses(
        &mut self,
        interface: &str,
        count: u32,
    ) -> Result<Vec<IpAddr>, ProviderError>;
    /// Gives back prefixes or secondary addresses (as /32 or /128) of `interface`.
    fn unassign(&mut self, interface: &str, blocks: &[IpNet]) -> Result<(), ProviderError>;
    /// Deletes an interface: its primary address and every block still on it.
    fn delete_interface(
        &mut self,
        interface: &str,
        primary: IpAddr,
        blocks: &[IpNet],
    ) -> Result<(), ProviderError>;
}

/// What [`execute`] did.
#[derive(Debug, Default)]
pub struct Execution {
    /// Actions carried out in full.
    pub done: Vec<Action>,
    /// Actions refused, with the reason. Growth stops at the first refusal; a release whose
    /// block got a pod meanwhile is skipped (the node refuses it) and reported here.
    pub failed: Vec<(Action, ProviderError)>,
}

/// Creates a node's primary interface (device 0) through `provider` and attaches it; if the
/// node refuses it, the interface is deleted again.
///
/// # Errors
/// The provider's refusal (out of space, ...), or [`ProviderError::Node`].
pub fn boot(node: &Node, provider: &mut dyn Provider) -> Result<(), ProviderError> {
    let spec = provider.create_interface(0)?.flags(InterfaceFlags::PRIMARY);
    let primary = spec.primary_address;
    let id = spec.id.clone();
    node.attach_interface(spec).map_err(|e| {
        let _ = provider.delete_interface(&id, primary, &[]);
        ProviderError::Node(e)
    })
}

/// Carries out `plan` on `node` through `provider`, in order. Growth actions attach what the
/// cloud gave to the node; shrink actions take blocks off the node first (so a pod that got an
/// address meanwhile keeps it: the node refuses, the cloud is not asked) and then give them back.
/// An out-of-space refusal is recorded on the node (120-second back-off) and any shrink on it
/// (30-second interval).
pub fn execute(node: &Node, plan: &Plan, provider: &mut dyn Provider) -> Execution {
    let mut out = Execution::default();
    let mut shrunk = false;
    let v6 = node.config().family == crate::node::IpFamily::V6;
    for action in &plan.actions {
        if action.is_growth() && out.failed.iter().any(|(a, _)| a.is_growth()) {
            continue;
        }
        let result = match action {
            Action::AttachPrefixes { interface, count } => {
                grow(node, provider, interface, BlockKind::Prefix, v6, *count)
            }
            Action::AttachAddresses { interface, count } => {
                grow(node, provider, interface, BlockKind::Secondary, v6, *count)
            }
            Action::AttachInterface {
                device_number,
                kind,
                count,
            } => provider.create_interface(*device_number).and_then(|spec| {
                let id = spec.id.clone();
                let primary = spec.primary_address;
                if let Err(e) = node.attach_interface(spec) {
                    let _ = provider.delete_interface(&id, primary, &[]);
                    return Err(ProviderError::Node(e));
                }
                grow(node, provider, &id, *kind, v6, *count).inspect_err(|_| {
                    // An interface created for blocks it did not get would stay attached with
                    // nothing on it: delete it again (a block the node took keeps it).
                    let empty = node
                        .snapshot()
                        .interfaces
                        .iter()
                        .any(|i| i.id == id && i.blocks.is_empty());
                    if empty && node.remove_interface(&id, false).is_ok() {
                        let _ = provider.delete_interface(&id, primary, &[]);
                    }
                })
            }),
            Action::ReleasePrefixes {
                interface,
                prefixes,
            } => shrink(node, provider, interface, prefixes, &mut out, action),
            Action::ReleaseAddresses {
                interface,
                addresses,
            } => {
                let nets: Vec<IpNet> = addresses.iter().map(|a| IpNet::from(*a)).collect();
                shrink(node, provider, interface, &nets, &mut out, action)
            }
            Action::FreeInterface { interface } => {
                let snap = node.snapshot();
                let iface = snap.interfaces.iter().find(|i| &i.id == interface).cloned();
                match iface {
                    None => Err(ProviderError::Node(NodeError::UnknownInterface {
                        id: interface.clone(),
                    })),
                    Some(i) => node
                        .remove_interface(interface, false)
                        .map_err(ProviderError::Node)
                        .and_then(|_| {
                            let blocks: Vec<IpNet> = i.blocks.iter().map(|b| b.cidr).collect();
                            provider.delete_interface(interface, i.primary_address, &blocks)
                        }),
                }
            }
        };
        match result {
            Ok(()) => {
                shrunk |= !action.is_growth();
                out.done.push(action.clone());
            }
            Err(e) => {
                if matches!(e, ProviderError::InsufficientSpace(_)) {
                    node.note_insufficient_space(node.clock().now());
                }
                out.failed.push((action.clone(), e));
            }
        }
    }
    if shrunk {
        node.note_shrink(node.clock().now());
    }
    out
}

fn grow(
    node: &Node,
    provider: &mut dyn Provider,
    interface: &str,
    kind: BlockKind,
    v6: bool,
    count: u32,
) -> Result<(), ProviderError> {
    let blocks: Vec<IpNet> = match kind {
        BlockKind::Prefix => provider.assign_prefixes(interface, v6, count)?,
        BlockKind::Secondary => provider
            .assign_addresses(interface, count)?
            .into_iter()
            .map(IpNet::from)
            .collect(),
    };
    for (i, b) in blocks.iter().enumerate() {
        let r = match kind {
            BlockKind::Prefix => node.attach_prefix(interface, *b),
            BlockKind::Secondary => node.attach_secondary(interface, b.addr()),
        };
        if let Err(e) = r {
            // Give the cloud back what the node would not take.
            let _ = provider.unassign(interface, &blocks[i..]);
            return Err(ProviderError::Node(e));
        }
    }
    Ok(())
}

fn shrink(
    node: &Node,
    provider: &mut dyn Provider,
    interface: &str,
    blocks: &[IpNet],
    out: &mut Execution,
    action: &Action,
) -> Result<(), ProviderError> {
    let mut removed = Vec::new();
    for b in blocks {
        match node.remove_block(*b, false) {
            Ok(_) => removed.push(*b),
            Err(e) => out.failed.push((action.clone(), ProviderError::Node(e))),
        }
    }
    provider.unassign(interface, &removed)
}

/// A [`Provider`] that carves interfaces, prefixes and addresses from in-process subnets: the
/// simulation's cloud. Interfaces get their primary address from the IPv4 subnet too.
#[derive(Debug)]
pub struct LocalProvider {
    name: String,
    v4: Arc<Subnet>,
    v6: Option<Arc<Subnet>>,
    created: u64,
}

impl LocalProvider {
    /// A provider for the node called `name` (used in interface ids) on `subnet`.
    pub fn new(name: impl Into<String>, subnet: Arc<Subnet>) -> Self {
        LocalProvider {
            name: name.into(),
            v4: subnet,
            v6: None,
            created: 0,
        }
    }

    /// Adds an IPv6 subnet for /80 prefixes.
    pub fn with_ipv6(mut self, subnet: Arc<Subnet>) -> Self {
        self.v6 = Some(subnet);
        self
    }

    /// Creates the node's primary interface (device 0) and attaches it to `node`.
    ///
    /// # Errors
    /// Out of space, or the node refusing it.
    pub fn boot(&mut self, node: &Node) -> Result<(), ProviderError> {
        boot(node, self)
    }

    fn subnet(&self, v6: bool) -> Result<&Subnet, ProviderError> {
        if v6 {
            self.v6
                .as_deref()
                .ok_or_else(|| ProviderError::cloud("no IPv6 subnet"))
        } else {
            Ok(&self.v4)
        }
    }
}

fn space(e: SubnetError) -> ProviderError {
    match e {
        SubnetError::InsufficientCidrBlocks { .. }
        | SubnetError::InsufficientFreeAddressesInSubnet { .. } => {
            ProviderError::InsufficientSpace(e)
        }
        other => ProviderError::cloud(other),
    }
}

/// The refusal of a request for `count` blocks, from the refusal of the one that did not fit.
/// The cloud takes all or nothing, so "fewer than 1 free" (true once the first blocks were
/// taken, false once they are given back) becomes "fewer than `count` free".
fn whole_request(e: SubnetError, count: u32) -> SubnetError {
    match e {
        SubnetError::InsufficientFreeAddressesInSubnet { subnet, needed } => {
            SubnetError::InsufficientFreeAddressesInSubnet {
                subnet,
                needed: needed.saturating_mul(u64::from(count)),
            }
        }
        other => other,
    }
}

impl Provider for LocalProvider {
    fn create_interface(&mut self, device_number: u32) -> Result<InterfaceSpec, ProviderError> {
        let primary = self.v4.allocate_ip().map_err(space)?;
        self.created += 1;
        Ok(InterfaceSpec {
            id: format!("eni-{}-{}", self.name, self.created),
            device_number,
            primary_address: primary,
            flags: InterfaceFlags::default(),
        })
    }

    fn assign_prefixes(
        &mut self,
        _interface: &str,
        v6: bool,
        count: u32,
    ) -> Result<Vec<IpNet>, ProviderError> {
        let subnet = self.subnet(v6)?;
        let len = if v6 { 80 } else { 28 };
        let mut got = Vec::new();
        for _ in 0..count {
            match subnet.allocate_prefix(len) {
                Ok(a) => got.push(a.cidr),
                Err(e) => {
                    for p in got {
                        let _ = subnet.release(p);
                    }
                    return Err(space(whole_request(e, count)));
                }
            }
        }
        Ok(got)
    }

    fn assign_addresses(
        &mut self,
        _interface: &str,
        count: u32,
    ) -> Result<Vec<IpAddr>, ProviderError> {
        let mut got = Vec::new();
        for _ in 0..count {
            match self.v4.allocate_ip() {
                Ok(a) => got.push(a),
                Err(e) => {
                    for a in got {
                        let _ = self.v4.release_ip(a);
                    }
                    return Err(space(whole_request(e, count)));
                }
            }
        }
        Ok(got)
    }

    fn unassign(&mut self, _interface: &str, blocks: &[IpNet]) -> Result<(), ProviderError> {
        for b in blocks {
            let subnet = self.subnet(b.addr().is_ipv6())?;
            subnet.release(*b).map_err(ProviderError::cloud)?;
        }
        Ok(())
    }

    fn delete_interface(
        &mut self,
        interface: &str,
        primary: IpAddr,
        blocks: &[IpNet],
    ) -> Result<(), ProviderError> {
        self.unassign(interface, blocks)?;
        self.v4.release_ip(primary).map_err(ProviderError::cloud)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// An embedder's own error type, as a cloud SDK would return.
    #[derive(Debug, thiserror::Error)]
    #[error("throttled: retry after {0} ms")]
    struct Throttled(u32);

    #[test]
    fn a_cloud_error_is_kept_whole_and_is_the_source() {
        let e = ProviderError::cloud(Throttled(250));
        assert_eq!(e.to_string(), "throttled: retry after 250 ms");
        let cause = e.source().and_then(|s| s.downcast_ref::<Throttled>());
        assert_eq!(cause.map(|t| t.0), Some(250));
        assert_eq!(
            ProviderError::cloud("no IPv6 subnet").to_string(),
            "no IPv6 subnet"
        );
    }

    #[test]
    fn nested_errors_are_sources() {
        let subnet = Subnet::new("10.0.0.0/30".parse().unwrap()).unwrap();
        let refusal = subnet.allocate_prefix(28).unwrap_err();
        let e = ProviderError::InsufficientSpace(refusal.clone());
        let cause = e.source().and_then(|s| s.downcast_ref::<SubnetError>());
        assert_eq!(cause, Some(&refusal));
    }
}
