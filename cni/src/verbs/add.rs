//! ADD: the container's addresses, one per configured family, on disk before they are printed.
//! A repeated ADD for the same container and interface returns the same addresses.

use super::key_of;
use crate::config::NetworkConfig;
use crate::env::Invocation;
use crate::error::{code, CniError};
use crate::fleet::{maintain, Need};
use crate::result::{add_result, GivenAddress};
use crate::state::{family_name, FamilyState, NetworkState};
use ipnet::IpNet;
use pdipam::{Clock, IpFamily, NodeError, PodMetadata, PodRequest, SystemClock};
use std::net::IpAddr;

pub(super) fn add(net: &NetworkConfig, invocation: &Invocation) -> Result<String, CniError> {
    let key = key_of(net, invocation);
    let requested = requested_addresses(net, invocation)?;
    let mut state = NetworkState::open(net)?;
    let mut given = Vec::new();
    for f in &mut state.families {
        let Some(config) = f.config.clone() else {
            continue;
        };
        // The key's earlier address lies in a block the configuration dropped: that address is
        // no longer the network's to give, so the container gets a new one.
        if f.node.release_quarantined(&key).is_ok() {
            f.mark_changed();
        }
        let request = PodRequest {
            key: key.clone(),
            metadata: PodMetadata {
                namespace: invocation.args.namespace.clone(),
                pod_name: invocation.args.pod_name.clone(),
                interfaces_count: 1,
            },
        };
        let wanted = requested
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == (f.family == IpFamily::V4));
        let assigned = match wanted {
            Some(address) => f
                .node
                .assign_address(request, address, SystemClock.now())
                .map_err(|e| unavailable(address, e))?,
            None => match f.node.assign(request.clone()) {
                Ok(a) => a,
                // Fleet mode: claim a prefix, then try once more.
                Err(NodeError::NoAvailableAddresses { .. }) if net.ipam.fleet.is_some() => {
                    maintain(net, f, Need::Address)?;
                    assign(f, request)?
                }
                // Nothing was written: the addresses of other families assigned above are
                // forgotten with this process.
                Err(e) => return Err(assign_error(f, e)),
            },
        };
        if !assigned.existing {
            f.mark_changed();
        }
        given.push(GivenAddress::new(&config, assigned.address, assigned.block));
        // Fleet mode: refill the warm pool, renew the lease (when due; best effort, the pod
        // has its address either way).
        maintain(net, f, Need::Upkeep)?;
    }
    state.commit()?;
    Ok(add_result(&net.cni_version, &net.ipam, &given))
}

fn assign(f: &FamilyState, request: PodRequest) -> Result<pdipam::Assignment, CniError> {
    f.node.assign(request).map_err(|e| assign_error(f, e))
}

/// Nothing was written when an assignment fails: the addresses of other families assigned
/// before it are forgotten with this process.
fn assign_error(f: &FamilyState, e: NodeError) -> CniError {
    match e {
        e @ NodeError::NoAvailableAddresses { .. } => exhausted(f, e),
        e @ NodeError::InvalidKey { .. } => CniError::new(code::INVALID_ENVIRONMENT, e.to_string()),
        e => CniError::new(code::BAD_STATE, e.to_string()),
    }
}

/// The addresses asked for, from `runtimeConfig.ips` and `IP=` in `CNI_ARGS` (both, as
/// host-local reads them): at most one per family, each of a configured family. A CIDR's length
/// is ignored (the address is presented with the configuration's length).
fn requested_addresses(net: &NetworkConfig, inv: &Invocation) -> Result<Vec<IpAddr>, CniError> {
    let from_config = net
        .requested_ips
        .iter()
        .map(|t| (t, code::INVALID_CONFIG, "runtimeConfig.ips"));
    let from_args = inv
        .args
        .ips
        .iter()
        .map(|t| (t, code::INVALID_ENVIRONMENT, "CNI_ARGS IP"));
    let mut out: Vec<IpAddr> = Vec::new();
    for (text, bad_code, source) in from_config.chain(from_args) {
        let address = text
            .parse::<IpNet>()
            .map(|n| n.addr())
            .or_else(|_| text.parse::<IpAddr>())
            .map_err(|_| {
                CniError::new(bad_code, format!("{source} {text:?} is not an IP address"))
            })?;
        if out.contains(&address) {
            continue;
        }
        if out.iter().any(|o| o.is_ipv4() == address.is_ipv4()) {
            return Err(CniError::new(
                bad_code,
                format!("{source} {text:?}: one address per family may be asked for"),
            ));
        }
        let family = if address.is_ipv4() {
            IpFamily::V4
        } else {
            IpFamily::V6
        };
        if !net.ipam.families.iter().any(|f| f.family == family) {
            return Err(CniError::new(
                code::ADDRESS_UNAVAILABLE,
                format!(
                    "requested address {address}: no {} block is configured",
                    family_name(family)
                ),
            ));
        }
        out.push(address);
    }
    Ok(out)
}

/// Why an address asked for cannot be given.
fn unavailable(address: IpAddr, e: NodeError) -> CniError {
    let why = match &e {
        NodeError::NotAttached { .. } => {
            "it lies in no configured block (an IPv6 /80 serves its first 1024 addresses)"
                .to_owned()
        }
        _ => e.to_string(),
    };
    CniError::new(
        code::ADDRESS_UNAVAILABLE,
        format!("requested address {address} is not available: {why}"),
    )
}

/// The exhaustion error, with the words users search for and the pool's state.
fn exhausted(f: &FamilyState, e: NodeError) -> CniError {
    let snap = f.node.snapshot();
    let now = SystemClock.now();
    let next_free = snap
        .interfaces
        .iter()
        .flat_map(|i| i.blocks.iter())
        .flat_map(|b| b.cooling.iter().map(|&(_, until)| until))
        .min()
        .map(|until| {
            format!(
                "; the first cooling address is free again in {:.1} s",
                until.saturating_since(now).as_secs_f64()
            )
        })
        .unwrap_or_default();
    CniError::new(
        code::NO_ADDRESSES,
        format!("add cmd: failed to assign an IP address to container: {e}"),
    )
    .with_details(format!(
        "{}: {} addresses in {} blocks: {} assigned, {} cooling down{next_free}",
        family_name(f.family),
        snap.total(),
        snap.interfaces
            .iter()
            .map(|i| i.blocks.len())
            .sum::<usize>(),
        snap.assigned(),
        snap.cooling(),
    ))
}
