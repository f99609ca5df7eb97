//! GC (CNI 1.1): every allocation of this network whose (container, interface) is not in
//! `cni.dev/valid-attachments` is released; the listed ones are untouched.

use crate::config::NetworkConfig;
use crate::error::{code, CniError};
use crate::fleet::{maintain, Need};
use crate::state::NetworkState;
use std::collections::HashSet;

pub(super) fn gc(net: &NetworkConfig) -> Result<(), CniError> {
    // Without the list every allocation would look stale: refuse rather than release them all.
    let valid = net.valid_attachments.as_ref().ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "GC needs cni.dev/valid-attachments in the configuration",
        )
    })?;
    if !NetworkState::exists(net) {
        return Ok(());
    }
    let keep: HashSet<(&str, &str)> = valid
        .iter()
        .map(|a| (a.container_id.as_str(), a.if_name.as_str()))
        .collect();
    let mut state = NetworkState::open(net)?;
    for f in &mut state.families {
        let stale = |k: &pdipam::PodKey| {
            k.network_name() == net.name && !keep.contains(&(k.container_id(), k.if_name()))
        };
        let mut released = false;
        for p in f.node.pods().into_iter().filter(|p| stale(&p.key)) {
            released |= f.node.release(&p.key).is_ok();
        }
        for q in f.node.quarantined().into_iter().filter(|q| stale(&q.key)) {
            released |= f.node.release_quarantined(&q.key).is_ok();
        }
        if released {
            f.mark_changed();
        }
    }
    for f in &mut state.families {
        // Fleet mode: empty blocks beyond the warm pool go back once cooled (when due).
        maintain(net, f, Need::Upkeep)?;
    }
    state.commit()
}
