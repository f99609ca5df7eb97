//! [`EtcdProvider`]: the node side's [`Provider`] on a fleet subnet, so that the planner's
//! warm-pool actions run against the fleet exactly as they run against `LocalProvider`.

use crate::error::FleetError;
use crate::subnet::FleetSubnet;
use ipnet::IpNet;
use pdipam::provider::{Provider, ProviderError};
use pdipam::{InterfaceSpec, Node, SubnetError};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::runtime::Handle;

/// Carries out plans by claiming from and releasing to fleet subnets (IPv4, and IPv6 for /80
/// prefixes). Interfaces are named `eni-<node>-<n>`; an interface's primary address is a single
/// address of the IPv4 subnet.
///
/// The [`Provider`] trait is synchronous: each call blocks on `runtime` until the fleet
/// answers, so call it from a thread that is not one of that runtime's (a plain thread, or
/// `tokio::task::spawn_blocking`).
pub struct EtcdProvider {
    name: String,
    v4: Arc<FleetSubnet>,
    v6: Option<Arc<FleetSubnet>>,
    runtime: Handle,
    created: u32,
}

impl EtcdProvider {
    /// A provider for node `name` on the fleet subnet `v4`.
    pub fn new(name: &str, v4: Arc<FleetSubnet>, runtime: Handle) -> Self {
        EtcdProvider {
            name: name.to_string(),
            v4,
            v6: None,
            runtime,
            created: 0,
        }
    }

    /// Adds the IPv6 fleet subnet that /80 prefixes come from.
    pub fn with_v6(mut self, v6: Arc<FleetSubnet>) -> Self {
        self.v6 = Some(v6);
        self
    }

    /// Creates the node's primary interface (device 0) and attaches it.
    ///
    /// # Errors
    /// The fleet's refusal, or the node's (the primary address is then given back).
    pub fn boot(&mut self, node: &Node) -> Result<(), ProviderError> {
        pdipam::provider::boot(node, self)
    }

    fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        self.runtime.block_on(f)
    }

    fn subnet(&self, v6: bool) -> Result<&Arc<FleetSubnet>, ProviderError> {
        if v6 {
            self.v6
                .as_ref()
                .ok_or_else(|| ProviderError::cloud("no IPv6 fleet subnet"))
        } else {
            Ok(&self.v4)
        }
    }

    /// Claims `count` blocks with `claim`, all or none.
    fn claim_all<T: Copy>(
        &self,
        subnet: &FleetSubnet,
        count: u32,
        claim: impl AsyncClaim<T>,
        as_net: impl Fn(T) -> IpNet,
    ) -> Result<Vec<T>, ProviderError> {
        self.block_on(async {
            let mut got = Vec::new();
            for _ in 0..count {
                match claim.claim(subnet).await {
                    Ok(x) => got.push(x),
                    Err(e) => {
                        for x in got {
                            let _ = subnet.release(as_net(x)).await;
                        }
                        return Err(refusal(e, count));
                    }
                }
            }
            Ok(got)
        })
    }
}

/// One kind of automatic claim.
trait AsyncClaim<T> {
    fn claim(&self, subnet: &FleetSubnet) -> impl Future<Output = Result<T, FleetError>>;
}

struct PrefixClaim(u8);
struct AddressClaim;

impl AsyncClaim<IpNet> for PrefixClaim {
    fn claim(&self, subnet: &FleetSubnet) -> impl Future<Output = Result<IpNet, FleetError>> {
        subnet.allocate_prefix(self.0)
    }
}

impl AsyncClaim<IpAddr> for AddressClaim {
    fn claim(&self, subnet: &FleetSubnet) -> impl Future<Output = Result<IpAddr, FleetError>> {
        subnet.allocate_ip()
    }
}

/// The planner backs off on out-of-space refusals, as on the cloud's; every other failure is
/// the cloud's error, kept whole.
fn refusal(e: FleetError, count: u32) -> ProviderError {
    match e {
        FleetError::Subnet(SubnetError::InsufficientFreeAddressesInSubnet { subnet, needed }) => {
            ProviderError::InsufficientSpace(SubnetError::InsufficientFreeAddressesInSubnet {
                subnet,
                needed: needed.saturating_mul(u64::from(count)),
            })
        }
        FleetError::Subnet(s @ SubnetError::InsufficientCidrBlocks { .. }) => {
            ProviderError::InsufficientSpace(s)
        }
        other => ProviderError::cloud(other),
    }
}

impl Provider for EtcdProvider {
    fn create_interface(&mut self, device_number: u32) -> Result<InterfaceSpec, ProviderError> {
        let primary = self.claim_all(&self.v4.clone(), 1, AddressClaim, IpNet::from)?[0];
        self.created += 1;
        Ok(InterfaceSpec::new(
            format!("eni-{}-{}", self.name, self.created),
            device_number,
            primary,
        ))
    }

    fn assign_prefixes(
        &mut self,
        _interface: &str,
        v6: bool,
        count: u32,
    ) -> Result<Vec<IpNet>, ProviderError> {
        let subnet = self.subnet(v6)?.clone();
        let len = if v6 { 80 } else { 28 };
        self.claim_all(&subnet, count, PrefixClaim(len), |p| p)
    }

    fn assign_addresses(
        &mut self,
        _interface: &str,
        count: u32,
    ) -> Result<Vec<IpAddr>, ProviderError> {
        self.claim_all(&self.v4.clone(), count, AddressClaim, IpNet::from)
    }

    fn unassign(&mut self, _interface: &str, blocks: &[IpNet]) -> Result<(), ProviderError> {
        for b in blocks {
            let subnet = self.subnet(b.addr().is_ipv6())?.clone();
            self.block_on(subnet.release(*b))
                .map_err(ProviderError::cloud)?;
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
        self.block_on(self.v4.release(IpNet::from(primary)))
            .map_err(ProviderError::cloud)
    }
}
