//! ADD: the container's addresses, one per configured family, on disk before they are printed.
//! A repeated ADD for the same container and interface returns the same addresses.

use super::key_of;
use crate::config::NetworkConfig;
use crate::env::Invocation;
use crate::error::{code, CniError};
use crate::result::{add_result, GivenAddress};
use crate::state::{family_name, FamilyState, NetworkState};
use pdipam::{Clock, NodeError, PodMetadata, PodRequest, SystemClock};

pub(super) fn add(net: &NetworkConfig, invocation: &Invocation) -> Result<String, CniError> {
    let key = key_of(net, invocation);
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
        match f.node.assign(request) {
            Ok(a) => {
                if !a.existing {
                    f.mark_changed();
                }
                given.push(GivenAddress::new(&config, a.address, a.block));
            }
            // Nothing was written: the addresses of other families assigned above are
            // forgotten with this process.
            Err(e @ NodeError::NoAvailableAddresses { .. }) => return Err(exhausted(f, e)),
            Err(e @ NodeError::InvalidKey { .. }) => {
                return Err(CniError::new(code::INVALID_ENVIRONMENT, e.to_string()))
            }
            Err(e) => return Err(CniError::new(code::BAD_STATE, e.to_string())),
        }
    }
    state.commit()?;
    Ok(add_result(&net.cni_version, &net.ipam, &given))
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
