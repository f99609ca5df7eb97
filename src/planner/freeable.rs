//! Whether an interface may be freed, and if not why not, in the words ipamd logs: the checks
//! the planner makes before it frees an interface, public so that an embedder (or an operator
//! asking why an interface stays) gets the same answer.

use super::{WarmSettings, INTERFACE_MIN_AGE, PREFIX_ADDRESSES};
use crate::limits::InstanceLimits;
use crate::node::{AddressMode, InterfaceSnapshot, NodeSnapshot, Timestamp};
use std::time::Duration;

/// Why an interface is kept. The messages are ipamd's (`ENI ... cannot be deleted because ...`),
/// with the warm ENI target, which ipamd checks elsewhere, worded the same way.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeepReason {
    /// No interface with that id is attached.
    #[error("ENI {id} is not attached")]
    Unknown {
        /// The id asked about.
        id: String,
    },
    /// The instance's primary interface (device 0) is never freed.
    #[error("ENI {id} cannot be deleted because it is primary")]
    Primary {
        /// The interface.
        id: String,
    },
    /// Excluded from pod addresses, or not managed by the CNI ([`InterfaceFlags::excluded`]).
    ///
    /// [`InterfaceFlags::excluded`]: crate::InterfaceFlags::excluded
    #[error("ENI {id} cannot be deleted because it is excluded from pod IPs or not managed")]
    Excluded {
        /// The interface.
        id: String,
    },
    /// Attached less than [`INTERFACE_MIN_AGE`] ago.
    #[error("ENI {id} cannot be deleted because it is too young ({age:?} old, {INTERFACE_MIN_AGE:?} needed)")]
    TooYoung {
        /// The interface.
        id: String,
        /// How long it has been attached.
        age: Duration,
    },
    /// An address of it is still cooling down.
    #[error("ENI {id} cannot be deleted because has IPs in cooling")]
    IpsInCooling {
        /// The interface.
        id: String,
    },
    /// A pod holds one of its addresses.
    #[error("ENI {id} cannot be deleted because it has pods assigned")]
    HasPods {
        /// The interface.
        id: String,
    },
    /// The other interfaces' free addresses fall short of `WARM_IP_TARGET` (in whole prefixes
    /// in prefix mode).
    #[error("ENI {id} cannot be deleted because it is required for WARM_IP_TARGET: {target}")]
    RequiredForWarmIpTarget {
        /// The interface.
        id: String,
        /// The target.
        target: u32,
    },
    /// The other interfaces' addresses fall short of `MINIMUM_IP_TARGET`.
    #[error("ENI {id} cannot be deleted because it is required for MINIMUM_IP_TARGET: {target}")]
    RequiredForMinimumIpTarget {
        /// The interface.
        id: String,
        /// The target.
        target: u32,
    },
    /// The other interfaces' empty prefixes fall short of `WARM_PREFIX_TARGET`.
    #[error("ENI {id} cannot be deleted because it is required for WARM_PREFIX_TARGET: {target}")]
    RequiredForWarmPrefixTarget {
        /// The interface.
        id: String,
        /// The target.
        target: u32,
    },
    /// Without it, fewer addresses than `WARM_ENI_TARGET` interfaces' worth (at least one)
    /// would be available.
    #[error("ENI {id} cannot be deleted because it is required for WARM_ENI_TARGET: {target}")]
    RequiredForWarmEniTarget {
        /// The interface.
        id: String,
        /// The target.
        target: u32,
    },
    /// A trunk interface (security groups for pods) is never freed.
    #[error("ENI {id} cannot be deleted because it is a trunk ENI")]
    Trunk {
        /// The interface.
        id: String,
    },
    /// An EFA interface is never freed.
    #[error("ENI {id} cannot be deleted because it is an EFA ENI")]
    Efa {
        /// The interface.
        id: String,
    },
}

/// Whether the planner may free interface `id` of the node in `state` at `now` under
/// `settings`: `Ok` or the first reason to keep it, checked in ipamd's order (primary, age,
/// cooling, pods, the targets, trunk, EFA; an excluded or unmanaged interface, which ipamd does
/// not consider at all, right after the primary). The targets count the *other* interfaces' serving
/// blocks, as ipamd does; an interface holding nothing is never needed for them.
///
/// # Errors
/// The [`KeepReason`].
pub fn may_free_interface(
    limits: &InstanceLimits,
    settings: &WarmSettings,
    state: &NodeSnapshot,
    id: &str,
    now: Timestamp,
) -> Result<(), KeepReason> {
    let Some(i) = state.interfaces.iter().find(|i| i.id == id) else {
        return Err(KeepReason::Unknown { id: id.into() });
    };
    own_reason(i, now).map_or(Ok(()), Err)?;
    let prefix = state.mode == AddressMode::Prefix;
    let others = || {
        state
            .interfaces
            .iter()
            .filter(|o| o.id != i.id)
            .flat_map(|o| o.serving())
    };
    let id = || i.id.clone();
    let whole = |n: u32| {
        if prefix {
            n.div_ceil(PREFIX_ADDRESSES) * PREFIX_ADDRESSES
        } else {
            n
        }
    };
    let w = settings.warm_ip_target;
    if w > 0 && others().map(|b| b.available()).sum::<u32>() < whole(w) {
        return Err(KeepReason::RequiredForWarmIpTarget {
            id: id(),
            target: w,
        });
    }
    let m = settings.minimum_ip_target;
    if m > 0 && others().map(|b| b.capacity).sum::<u32>() < whole(m) {
        return Err(KeepReason::RequiredForMinimumIpTarget {
            id: id(),
            target: m,
        });
    }
    if !settings.ip_targets_set() {
        let wp = settings.warm_prefix_target;
        if prefix && wp > 0 && (others().filter(|b| b.is_empty()).count() as u32) < wp {
            return Err(KeepReason::RequiredForWarmPrefixTarget {
                id: id(),
                target: wp,
            });
        }
        let we = settings.warm_eni_target;
        let want = we
            .saturating_mul(limits.addresses_per_interface(false))
            .max(1);
        if !prefix && others().map(|b| b.available()).sum::<u32>() < want {
            return Err(KeepReason::RequiredForWarmEniTarget {
                id: id(),
                target: we,
            });
        }
    }
    trunk_or_efa(i).map_or(Ok(()), Err)
}

/// The reasons that depend on the interface alone, before the targets (ipamd's order).
pub(super) fn own_reason(i: &InterfaceSnapshot, now: Timestamp) -> Option<KeepReason> {
    let id = || i.id.clone();
    let age = now.saturating_since(i.attached_at);
    if i.flags.primary || i.device_number == 0 {
        Some(KeepReason::Primary { id: id() })
    } else if i.flags.excluded {
        Some(KeepReason::Excluded { id: id() })
    } else if age < INTERFACE_MIN_AGE {
        Some(KeepReason::TooYoung { id: id(), age })
    } else if i.cooling() > 0 {
        Some(KeepReason::IpsInCooling { id: id() })
    } else if i.assigned() > 0 {
        Some(KeepReason::HasPods { id: id() })
    } else {
        None
    }
}

/// Trunk and EFA interfaces stay whatever the targets say.
pub(super) fn trunk_or_efa(i: &InterfaceSnapshot) -> Option<KeepReason> {
    if i.flags.trunk {
        Some(KeepReason::Trunk { id: i.id.clone() })
    } else if i.flags.efa {
        Some(KeepReason::Efa { id: i.id.clone() })
    } else {
        None
    }
}
