//! STATUS (CNI 1.1): succeeds when an ADD could get an address of every configured family now.

use crate::config::NetworkConfig;
use crate::error::{code, CniError};
use crate::fleet::{maintain, Need};
use crate::state::{family_name, NetworkState};

pub(super) fn status(net: &NetworkConfig) -> Result<(), CniError> {
    let unavailable =
        |m: String, details: String| CniError::new(code::NOT_AVAILABLE, m).with_details(details);
    if !NetworkState::exists(net) {
        // Nothing assigned yet: every configured address is free.
        return Ok(());
    }
    let mut state = NetworkState::open(net).map_err(|e| {
        if e.code == code::TRY_AGAIN_LATER {
            e
        } else {
            unavailable(
                format!("the network's state is unusable: {}", e.message),
                e.details,
            )
        }
    })?;
    for f in &mut state.families {
        // Fleet mode: the runtime's periodic STATUS keeps the lease alive and the warm pool
        // where it should be, so a node without pod churn needs no daemon either.
        maintain(net, f, Need::Upkeep)?;
    }
    state.commit()?;
    for f in state.families.iter().filter(|f| f.config.is_some()) {
        let snap = f.node.snapshot();
        if snap.available() == 0 {
            return Err(unavailable(
                "no available IP/Prefix addresses: an ADD would fail now".into(),
                format!(
                    "{}: {} addresses, {} assigned, {} cooling down",
                    family_name(f.family),
                    snap.total(),
                    snap.assigned(),
                    snap.cooling()
                ),
            ));
        }
    }
    Ok(())
}
