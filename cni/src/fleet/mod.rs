//! Fleet mode: the node's prefixes are claimed from a subnet shared through etcd
//! (`pdipam-fleet`), not listed in the configuration. There is no daemon: a call contacts etcd
//! only when it must (a pod needs an address and none is free), when the warm pool wants a
//! change (growth to the warm target, or giving back empty blocks after their cooldown), or
//! when the node's lease is due for renewal; otherwise it is as local as a listed-prefix call.
//!
//! Each contact: renews the node's registration (or registers anew and adopts its claims),
//! reads the subnet, brings the checkpoint in line with what the fleet says the node holds,
//! then runs pdipam's planner and carries its actions out through [`EtcdProvider`].

pub mod config;

use crate::config::{FamilyConfig, NetworkConfig};
use crate::error::{code, CniError};
use crate::state::{state_dir, FamilyState, INTERFACE_ID};
use config::FleetSettings;
use ipnet::IpNet;
use pdipam::planner::plan;
use pdipam::provider::{execute, ProviderError};
use pdipam::{Clock, Holder, IpFamily, Node, SubnetError, SystemClock};
use pdipam_fleet::{Etcd, EtcdProvider, FleetError, FleetSubnet, Keyspace, Kind, Member};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How much a call needs the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The call cannot go on without it (no free address for the pod): a failure is the call's.
    Address,
    /// Upkeep (warm pool, lease): done when due; a failure leaves the call's own result as it
    /// is, and the next call tries again.
    Upkeep,
}

/// The file whose modification time is when this network last renewed the node's lease:
/// losing it only makes the next call renew early, so it is written plainly.
fn renewed_path(net: &NetworkConfig) -> PathBuf {
    state_dir(net).join("fleet-renewed")
}

/// The file whose modification time is when upkeep last failed (etcd unreachable): upkeep then
/// waits [`UPKEEP_BACKOFF`], so that calls served locally do not each wait out etcd's timeout.
fn failed_path(net: &NetworkConfig) -> PathBuf {
    state_dir(net).join("fleet-upkeep-failed")
}

/// How long upkeep rests after it failed.
pub const UPKEEP_BACKOFF: Duration = Duration::from_secs(30);

/// Marks now in `path` (its modification time).
fn touch(path: &Path) {
    let _ = std::fs::write(path, b"");
}

/// Whether `path` was touched less than `period` ago (a time in the future counts as not).
fn within(path: &Path, period: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < period)
}

fn renewal_due(net: &NetworkConfig, fleet: &FleetSettings) -> bool {
    // A third of the lease, as a long-lived member renews: one missed renewal costs nothing.
    !within(&renewed_path(net), fleet.lease / 3)
}

/// Brings the fleet-mode family `f` in line with the fleet and its warm pool when `need` says
/// so or upkeep is due. Marks `f` changed when its blocks changed.
///
/// # Errors
/// For [`Need::Address`] only: code 11 when etcd is unavailable (naming the endpoints), 100
/// when the fleet subnet is full, 7 when it does not exist, 104 for the fleet's other refusals.
pub fn maintain(net: &NetworkConfig, f: &mut FamilyState, need: Need) -> Result<(), CniError> {
    let Some(fleet) = net.ipam.fleet.as_ref() else {
        return Ok(());
    };
    let Some(family) = f.config.clone() else {
        return Ok(());
    };
    if need == Need::Upkeep {
        if within(&failed_path(net), UPKEEP_BACKOFF) {
            return Ok(());
        }
        let wanted = plan(
            f.node.limits(),
            &fleet.warm,
            &f.node.snapshot(),
            SystemClock.now(),
        );
        if wanted.actions.is_empty() && !renewal_due(net, fleet) {
            return Ok(());
        }
    }
    let outcome =
        Session::open(fleet, &member_name(fleet, net)).and_then(|s| s.sync(fleet, &family, f));
    match &outcome {
        Ok(()) => {
            touch(&renewed_path(net));
            let _ = std::fs::remove_file(failed_path(net));
        }
        Err(e) if e.code == code::TRY_AGAIN_LATER => touch(&failed_path(net)),
        Err(_) => {}
    }
    match need {
        Need::Address => outcome,
        Need::Upkeep => Ok(()),
    }
}

/// The network's name in the fleet: `<nodeName>/<network>`. Each network of a node is a member
/// of its own, so that two networks sharing a fleet subnet never take each other's prefixes for
/// their own when they bring their checkpoints in line with the fleet.
pub fn member_name(fleet: &FleetSettings, net: &NetworkConfig) -> String {
    format!("{}/{}", fleet.node_name, net.name)
}

/// One contact with the fleet.
struct Session {
    runtime: tokio::runtime::Runtime,
    subnet: Arc<FleetSubnet>,
    member: Member,
}

impl Session {
    fn open(fleet: &FleetSettings, name: &str) -> Result<Self, CniError> {
        // A worker thread of its own: EtcdProvider blocks on the runtime from this thread.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| {
                CniError::new(code::IO_FAILURE, "cannot start the etcd client")
                    .with_details(e.to_string())
            })?;
        let (member, subnet) = runtime
            .block_on(async {
                let etcd =
                    Etcd::connect_with(&fleet.endpoints, fleet.timeout, &fleet.credentials).await?;
                let keys = Keyspace::new(&fleet.root);
                let (member, fresh) = Member::resume(&etcd, &keys, name, fleet.lease).await?;
                let subnet =
                    FleetSubnet::open_unwatched(&etcd, &keys, fleet.subnet, &member).await?;
                let stale = subnet.held().iter().any(|r| r.lease != member.lease());
                if fresh || stale {
                    subnet.adopt().await?;
                }
                Ok::<_, FleetError>((member, subnet))
            })
            .map_err(|e| fleet_error(fleet, name, e))?;
        Ok(Session {
            runtime,
            subnet: Arc::new(subnet),
            member,
        })
    }

    /// Reconciles the node's blocks with what the fleet records, then carries out the plan.
    fn sync(
        &self,
        fleet: &FleetSettings,
        family: &FamilyConfig,
        f: &mut FamilyState,
    ) -> Result<(), CniError> {
        check_unservable(fleet, family, &self.subnet)?;
        if self.reconcile(fleet, &f.node)? {
            f.mark_changed();
        }
        let now = SystemClock.now();
        let wanted = plan(f.node.limits(), &fleet.warm, &f.node.snapshot(), now);
        if wanted.actions.is_empty() {
            return Ok(());
        }
        let mut provider = EtcdProvider::new(
            self.member.name(),
            self.subnet.clone(),
            self.runtime.handle().clone(),
        );
        if f.family == IpFamily::V6 {
            provider = provider.with_v6(self.subnet.clone());
        }
        let done = execute(&f.node, &wanted, &mut provider);
        if !done.done.is_empty() || !done.failed.is_empty() {
            // Blocks changed, or a refusal's back-off was noted on the node.
            f.mark_changed();
        }
        match done.failed.into_iter().find(|(a, _)| a.is_growth()) {
            Some((_, ProviderError::InsufficientSpace(e))) => Err(CniError::new(
                code::NO_ADDRESSES,
                format!("fleet subnet {}: {e}", fleet.subnet),
            )),
            Some((_, e)) => Err(CniError::new(
                code::FLEET,
                format!(
                    "fleet subnet {}: a new prefix could not be claimed",
                    fleet.subnet
                ),
            )
            .with_details(e.to_string())),
            None => Ok(()),
        }
    }

    /// The node's prefixes made to match the fleet's record: a prefix the fleet says the node
    /// holds but the checkpoint lacks (a call killed between its claim and its checkpoint) is
    /// attached; one the checkpoint has but the fleet does not give to the node is claimed
    /// again if free, and otherwise (another node holds it: the lease expired and the block
    /// was reclaimed) taken off the node, its pods kept in quarantine so that their addresses
    /// go to no one else here. Returns whether the node changed.
    fn reconcile(&self, fleet: &FleetSettings, node: &Node) -> Result<bool, CniError> {
        let mut changed = false;
        let held: Vec<IpNet> = self
            .subnet
            .held()
            .into_iter()
            .filter(|r| r.kind == Kind::Prefix)
            .map(|r| r.cidr)
            .collect();
        let attached: Vec<IpNet> = node
            .snapshot()
            .interfaces
            .iter()
            .flat_map(|i| i.blocks.iter().map(|b| b.cidr))
            .collect();
        for h in held.iter().filter(|h| !attached.contains(h)) {
            if node.attach_prefix(INTERFACE_ID, *h).is_ok() {
                changed = true;
            } else {
                // No slot for it under maxPods: it goes back.
                let _ = self.runtime.block_on(self.subnet.release(*h));
            }
        }
        for b in attached.iter().filter(|b| !held.contains(b)) {
            let mine = match self.subnet.allocation(*b) {
                None => self
                    .runtime
                    .block_on(self.subnet.allocate_prefix_at(*b))
                    .map(|()| true)
                    .or_else(|e| match e {
                        FleetError::Subnet(
                            SubnetError::AlreadyAllocated { .. }
                            | SubnetError::NotOneAllocation { .. },
                        ) => Ok(false),
                        other => Err(fleet_error(fleet, self.member.name(), other)),
                    })?,
                Some(run) => run.node == self.member.name(),
            };
            if !mine {
                let pods: Vec<_> = node
                    .pods()
                    .into_iter()
                    .filter(|p| b.contains(&p.address))
                    .collect();
                if node.remove_block(*b, true).is_ok() {
                    for p in pods {
                        let _ = node.quarantine(p);
                    }
                    changed = true;
                }
            }
        }
        Ok(changed)
    }
}

/// The gateway announced with every address must never be one, and (IPv4) neither may the
/// network or broadcast address of the subnet length addresses are announced with: inside the
/// fleet subnet each must be reserved there, or held as a single address, so that no prefix the
/// fleet gives holds it (the `aws` profile, the default, reserves all three).
fn check_unservable(
    fleet: &FleetSettings,
    family: &FamilyConfig,
    subnet: &FleetSubnet,
) -> Result<(), CniError> {
    let mut must_not_serve: Vec<(std::net::IpAddr, &str)> = Vec::new();
    if let Some(gw) = family.gateway {
        must_not_serve.push((gw, "gateway"));
    }
    if let Some(s) = family
        .subnet
        .filter(|s| s.addr().is_ipv4() && s.prefix_len() < 31)
    {
        must_not_serve.push((s.network(), "network address"));
        must_not_serve.push((s.broadcast(), "broadcast address"));
    }
    for (addr, what) in must_not_serve {
        if !fleet.subnet.contains(&addr) {
            continue;
        }
        match subnet.holder(addr) {
            Ok(Some(Holder::Reserved(_) | Holder::Address(_))) => {}
            _ => {
                return Err(CniError::new(
                    code::INVALID_CONFIG,
                    format!(
                        "ipam: the {what} {addr} is not reserved in the fleet subnet {}: a pod \
                         could be given it (create the subnet with the aws profile, or name \
                         ipam.subnets and ipam.gateways outside it)",
                        fleet.subnet
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// A fleet failure as the CNI error a runtime acts on.
fn fleet_error(fleet: &FleetSettings, member: &str, e: FleetError) -> CniError {
    let c = match &e {
        FleetError::Unavailable { .. } | FleetError::Timeout { .. } => code::TRY_AGAIN_LATER,
        FleetError::NotInitialised { .. } => code::INVALID_CONFIG,
        FleetError::Subnet(
            SubnetError::InsufficientCidrBlocks { .. }
            | SubnetError::InsufficientFreeAddressesInSubnet { .. },
        ) => code::NO_ADDRESSES,
        _ => code::FLEET,
    };
    CniError::new(
        c,
        format!("fleet subnet {} (member {member}): {e}", fleet.subnet),
    )
}
