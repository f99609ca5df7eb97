//! CHECK: the container still holds an address of every configured family, and the previous
//! result (when given) shows those addresses.

use super::key_of;
use crate::config::NetworkConfig;
use crate::env::Invocation;
use crate::error::{code, CniError};
use crate::result::previous_addresses;
use crate::state::NetworkState;

pub(super) fn check(net: &NetworkConfig, invocation: &Invocation) -> Result<(), CniError> {
    let key = key_of(net, invocation);
    let failed = |m: String| CniError::new(code::CHECK_FAILED, m);
    // The specification's code for a container the plugin does not know.
    let unknown = |m: String| CniError::new(code::UNKNOWN_CONTAINER, m);
    if !NetworkState::exists(net) {
        return Err(unknown(format!(
            "datastore: unknown pod {key}: network {} has no state",
            net.name
        )));
    }
    let state = NetworkState::open(net)?;
    let previous = net.prev_result.as_ref().map(previous_addresses);
    for f in state.families.iter().filter(|f| f.config.is_some()) {
        let address = match f.node.pod(&key) {
            Some(p) => p.address,
            None => {
                return Err(match f.node.quarantined().iter().find(|q| q.key == key) {
                    Some(q) => failed(format!(
                        "pod {key} holds {}, which lies in no configured block any more",
                        q.address
                    )),
                    None => unknown(format!("datastore: unknown pod {key}")),
                })
            }
        };
        if let Some(prev) = &previous {
            if !prev.contains(&address) {
                return Err(failed(format!(
                    "pod {key} holds {address}, which its previous result does not show"
                )));
            }
        }
    }
    Ok(())
}
