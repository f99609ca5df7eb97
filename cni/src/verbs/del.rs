//! DEL: the container's addresses go back (to cool down). DEL of a container the network does
//! not know succeeds, as the specification requires.

use super::key_of;
use crate::config::NetworkConfig;
use crate::env::Invocation;
use crate::error::CniError;
use crate::fleet::{maintain, Need};
use crate::state::NetworkState;

pub(super) fn del(net: &NetworkConfig, invocation: &Invocation) -> Result<(), CniError> {
    if !NetworkState::exists(net) {
        return Ok(());
    }
    let key = key_of(net, invocation);
    let mut state = NetworkState::open(net)?;
    for f in &mut state.families {
        if f.node.release(&key).is_ok() || f.node.release_quarantined(&key).is_ok() {
            f.mark_changed();
        }
    }
    for f in &mut state.families {
        // Fleet mode: empty blocks beyond the warm pool go back once cooled (when due).
        maintain(net, f, Need::Upkeep)?;
    }
    state.commit()
}
