//! What a plan says: the actions to ask of the cloud, the rule that decided, what held it back,
//! and the effective targets; each action prints as one line for logs.

use crate::node::{AddressMode, BlockKind, Timestamp};
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

/// One thing to ask of the cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Delegate `count` more prefixes to an attached interface.
    AttachPrefixes {
        /// The interface.
        interface: String,
        /// How many.
        count: u32,
    },
    /// Assign `count` more secondary addresses to an attached interface.
    AttachAddresses {
        /// The interface.
        interface: String,
        /// How many.
        count: u32,
    },
    /// Create and attach a new interface with `count` prefixes or secondary addresses.
    AttachInterface {
        /// The device number to attach it at.
        device_number: u32,
        /// Prefixes or secondary addresses.
        kind: BlockKind,
        /// How many of them.
        count: u32,
    },
    /// Give back these empty prefixes.
    ReleasePrefixes {
        /// The interface holding them.
        interface: String,
        /// The prefixes.
        prefixes: Vec<IpNet>,
    },
    /// Give back these unused secondary addresses.
    ReleaseAddresses {
        /// The interface holding them.
        interface: String,
        /// The addresses.
        addresses: Vec<IpAddr>,
    },
    /// Detach and delete an interface with everything on it.
    FreeInterface {
        /// The interface.
        interface: String,
    },
}

impl Action {
    /// Whether the action grows the node.
    pub fn is_growth(&self) -> bool {
        matches!(
            self,
            Action::AttachPrefixes { .. }
                | Action::AttachAddresses { .. }
                | Action::AttachInterface { .. }
        )
    }
}

/// `count` followed by the singular or plural noun.
fn amount(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line for logs and reports.
///
/// ```
/// use pdipam::planner::Action;
/// let grow = Action::AttachPrefixes { interface: "eni-1".into(), count: 2 };
/// assert_eq!(grow.to_string(), "attach 2 prefixes to eni-1");
/// let shrink = Action::ReleaseAddresses {
///     interface: "eni-1".into(),
///     addresses: vec!["10.0.0.7".parse().unwrap()],
/// };
/// assert_eq!(shrink.to_string(), "release 10.0.0.7 from eni-1");
/// ```
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::AttachPrefixes { interface, count } => {
                let what = amount(*count as usize, "prefix", "prefixes");
                write!(f, "attach {what} to {interface}")
            }
            Action::AttachAddresses { interface, count } => {
                let what = amount(*count as usize, "secondary address", "secondary addresses");
                write!(f, "attach {what} to {interface}")
            }
            Action::AttachInterface {
                device_number,
                kind,
                count,
            } => {
                let what = match kind {
                    BlockKind::Prefix => amount(*count as usize, "prefix", "prefixes"),
                    BlockKind::Secondary => {
                        amount(*count as usize, "secondary address", "secondary addresses")
                    }
                };
                write!(
                    f,
                    "attach a new interface at device {device_number} with {what}"
                )
            }
            Action::ReleasePrefixes {
                interface,
                prefixes,
            } => write!(f, "release {} from {interface}", list(prefixes)),
            Action::ReleaseAddresses {
                interface,
                addresses,
            } => write!(f, "release {} from {interface}", list(addresses)),
            Action::FreeInterface { interface } => write!(f, "free interface {interface}"),
        }
    }
}

/// Which of the docs/rules.md, "Warm pools" rules decided the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// WARM_IP_TARGET and/or MINIMUM_IP_TARGET (they override the others).
    IpTargets,
    /// WARM_PREFIX_TARGET (prefix mode without IP targets).
    WarmPrefix,
    /// WARM_ENI_TARGET (secondary-IP mode without IP targets).
    WarmEni,
    /// IPv6: one /80 serves every pod.
    Ipv6Prefix,
}

/// Why the plan does less than the settings ask.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holdback {
    /// The cloud recently had no space: no growth until `until`.
    Backoff {
        /// When growth may be tried again.
        until: Timestamp,
    },
    /// The node holds max pods' worth of addresses, before the plan or once its growth reached
    /// them: no (further) growth.
    AtMaxPods {
        /// The max pods value used.
        max_pods: u32,
    },
    /// Growth is wanted but every slot of every interface the instance allows is taken.
    NoCapacity {
        /// Units (prefixes or addresses) that could not be placed.
        missing: u32,
    },
    /// A shrink happened less than 30 seconds ago: no release until `until`.
    ShrinkTimer {
        /// When a release may happen again.
        until: Timestamp,
    },
}

/// The effective targets behind a plan and what they cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The rule that applied.
    pub rule: Rule,
    /// Prefix or secondary-IP mode.
    pub mode: AddressMode,
    /// Why `mode` is secondary-IP although prefix mode was asked for (the instance type cannot
    /// delegate prefixes): the plan is one of secondary addresses then.
    pub prefix_fallback: Option<crate::limits::PrefixFallback>,
    /// The max pods value that caps growth.
    pub max_pods: u32,
    /// `T`: pod addresses attached (serving blocks).
    pub total: u32,
    /// `A`: assigned.
    pub assigned: u32,
    /// Cooling (counted as unavailable).
    pub cooling: u32,
    /// `av = T - A - cooling`.
    pub available: u32,
    /// Addresses the settings keep available (W; 16 x WP; WE x per-interface).
    pub target_available: u32,
    /// Addresses the settings keep attached at least (M).
    pub target_total: u32,
    /// In prefix mode, the prefixes the settings want held for the current pods.
    pub target_prefixes: Option<u32>,
    /// `T` once the plan is carried out.
    pub total_after: u32,
    /// Attached but unassigned addresses once the plan is carried out: what the settings cost.
    pub idle_after: u32,
}

/// What to do, why, and what held it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The actions, growth first; empty when the node is where the settings want it.
    pub actions: Vec<Action>,
    /// Reasons the plan does less than the settings ask.
    pub holdbacks: Vec<Holdback>,
    /// The effective targets.
    pub explanation: Explanation,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attach_prefixes(count: u32) -> Action {
        Action::AttachPrefixes {
            interface: "eni-1".into(),
            count,
        }
    }

    #[test]
    fn each_action_prints_as_one_line_and_says_whether_it_grows() {
        let lines = [
            (attach_prefixes(1), "attach 1 prefix to eni-1", true),
            (attach_prefixes(3), "attach 3 prefixes to eni-1", true),
            (
                Action::AttachAddresses {
                    interface: "eni-1".into(),
                    count: 1,
                },
                "attach 1 secondary address to eni-1",
                true,
            ),
            (
                Action::AttachInterface {
                    device_number: 2,
                    kind: BlockKind::Secondary,
                    count: 9,
                },
                "attach a new interface at device 2 with 9 secondary addresses",
                true,
            ),
            (
                Action::AttachInterface {
                    device_number: 1,
                    kind: BlockKind::Prefix,
                    count: 1,
                },
                "attach a new interface at device 1 with 1 prefix",
                true,
            ),
            (
                Action::ReleasePrefixes {
                    interface: "eni-1".into(),
                    prefixes: vec![
                        "10.0.1.0/28".parse().unwrap(),
                        "10.0.1.16/28".parse().unwrap(),
                    ],
                },
                "release 10.0.1.0/28, 10.0.1.16/28 from eni-1",
                false,
            ),
            (
                Action::ReleaseAddresses {
                    interface: "eni-2".into(),
                    addresses: vec!["10.0.0.7".parse().unwrap(), "10.0.0.9".parse().unwrap()],
                },
                "release 10.0.0.7, 10.0.0.9 from eni-2",
                false,
            ),
            (
                Action::FreeInterface {
                    interface: "eni-3".into(),
                },
                "free interface eni-3",
                false,
            ),
        ];
        for (action, line, grows) in lines {
            assert_eq!(action.to_string(), line);
            assert_eq!(action.is_growth(), grows, "{line}");
        }
    }
}
