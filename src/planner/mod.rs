//! The warm-pool planner: a pure function from (instance limits, settings, node snapshot, time)
//! to a plan of cloud actions, implementing docs/rules.md, "Warm pools".
//!
//! The planner never calls the cloud and never changes the node: an embedder executes the plan
//! with its own cloud client, or a [`Provider`](crate::provider::Provider) does. Every decision
//! it makes is visible in the returned [`Plan`]: the actions, what held it back, and the
//! effective targets.

mod freeable;
mod output;
mod settings;

pub use freeable::{may_free_interface, KeepReason};
pub use output::{Action, Explanation, Holdback, Plan, Rule};
pub use settings::{SettingWarning, WarmSettings};

use crate::limits::{InstanceLimits, MaxPodsOptions};
use crate::node::{AddressMode, BlockKind, IpFamily, NodeSnapshot, Timestamp};
use ipnet::IpNet;
use std::time::Duration;

/// An interface must be this old before the planner frees it.
pub const INTERFACE_MIN_AGE: Duration = Duration::from_secs(60);
/// Shrinks (releases) happen at most this often.
pub const SHRINK_INTERVAL: Duration = Duration::from_secs(30);
/// After the cloud reports no space, growth waits this long.
pub const INSUFFICIENT_SPACE_BACKOFF: Duration = Duration::from_secs(120);

/// Addresses in an IPv4 prefix.
const PREFIX_ADDRESSES: u32 = 16;

/// Plans the warm pool of a node (docs/rules.md, "Warm pools"): a pure function of its arguments.
///
/// - Growth: never once `T >= max_pods`, never within 120 s of an out-of-space error; it fills
///   attached interfaces first (lowest device number with a free slot), then new interfaces.
/// - Shrink: at most every 30 s; only empty blocks (no pod, no cooling address) are released;
///   an interface is freed only if it is not the primary, older than 60 s, has no pod and no
///   cooling address, is not a trunk or EFA interface and is not needed for the targets
///   ([`may_free_interface`] says which and why not).
/// - Blocks of the kind the node does not serve (a node restored or switched to the other mode)
///   are given back once they hold no pod and no cooling address.
/// - An interface left holding no block at all (its blocks released in earlier plans, or a
///   grant that failed after it was created) is freed once [`may_free_interface`] allows it,
///   in any plan that does not grow: it serves nothing and takes an address of the subnet.
///
/// `max_pods` is `settings.max_pods`, else the recommended value (docs/rules.md, "Max pods") for
/// the node's mode (the uncapped one when the instance's vCPUs are unknown).
///
/// # Example
/// ```
/// use pdipam::{Node, NodeConfig, limits::InstanceLimits, planner::{plan, Action, WarmSettings}};
/// let limits = InstanceLimits::lookup("t3.small")?;
/// let node = Node::new(limits.clone(), NodeConfig::default());
/// node.attach_interface(
///     pdipam::InterfaceSpec::new("eni-0", 0, "10.0.0.5".parse()?)
///         .flags(pdipam::InterfaceFlags::PRIMARY),
/// )?;
/// let now = node.clock().now();
/// let p = plan(limits, &WarmSettings::shipped_manifest(), &node.snapshot(), now);
/// assert_eq!(p.actions, vec![Action::AttachPrefixes { interface: "eni-0".into(), count: 1 }]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan(
    limits: &InstanceLimits,
    settings: &WarmSettings,
    state: &NodeSnapshot,
    now: Timestamp,
) -> Plan {
    Planner::new(limits, settings, state, now).run()
}

/// The effective targets and their cost, without the actions: `plan(..).explanation`.
pub fn explain(
    limits: &InstanceLimits,
    settings: &WarmSettings,
    state: &NodeSnapshot,
    now: Timestamp,
) -> Explanation {
    plan(limits, settings, state, now).explanation
}

/// Where growth can go: an attached interface with free slots, or a new one.
struct Target {
    interface: Option<String>,
    device_number: u32,
    free_slots: u32,
}

struct Planner<'a> {
    limits: &'a InstanceLimits,
    s: &'a WarmSettings,
    state: &'a NodeSnapshot,
    now: Timestamp,
    prefix: bool,
    unit: u32,
    per_eni: u32,
    max_pods: u32,
    total: u32,
    assigned: u32,
    cooling: u32,
    actions: Vec<Action>,
    holdbacks: Vec<Holdback>,
}

impl<'a> Planner<'a> {
    fn new(
        limits: &'a InstanceLimits,
        s: &'a WarmSettings,
        state: &'a NodeSnapshot,
        now: Timestamp,
    ) -> Self {
        let prefix = state.mode == AddressMode::Prefix;
        let max_pods = s.max_pods.unwrap_or_else(|| {
            let o = MaxPodsOptions {
                prefix_delegation: prefix,
                custom_networking: state.custom_networking,
                max_eni: Some(state.interface_limit),
                show_max_allowed: false,
                ..Default::default()
            };
            match limits.max_pods(&o) {
                Ok(m) => m.max_pods,
                Err(crate::limits::LimitsError::UnknownVcpus { uncapped, .. }) => uncapped,
                Err(_) => u32::MAX,
            }
        });
        Planner {
            limits,
            s,
            state,
            now,
            prefix,
            unit: if prefix { PREFIX_ADDRESSES } else { 1 },
            per_eni: limits.addresses_per_interface(prefix),
            max_pods,
            total: state.total(),
            assigned: state.assigned(),
            cooling: state.cooling(),
            actions: Vec::new(),
            holdbacks: Vec::new(),
        }
    }

    fn available(&self) -> u32 {
        self.total.saturating_sub(self.assigned + self.cooling)
    }

    fn run(mut self) -> Plan {
        let rule = if self.state.family == IpFamily::V6 {
            Rule::Ipv6Prefix
        } else if self.s.ip_targets_set() {
            Rule::IpTargets
        } else if self.prefix {
            Rule::WarmPrefix
        } else {
            Rule::WarmEni
        };
        let start_total = self.total;
        match rule {
            Rule::Ipv6Prefix => self.ipv6(),
            Rule::IpTargets => self.ip_targets(),
            Rule::WarmPrefix => self.warm_prefix(),
            Rule::WarmEni => self.warm_eni(),
        }
        self.release_old_kind();
        self.free_empty_interfaces();
        let (target_available, target_total, target_prefixes) = self.targets(rule);
        let explanation = Explanation {
            rule,
            mode: self.state.mode,
            prefix_fallback: self.state.prefix_fallback.clone(),
            max_pods: self.max_pods,
            total: start_total,
            assigned: self.assigned,
            cooling: self.cooling,
            available: start_total.saturating_sub(self.assigned + self.cooling),
            target_available,
            target_total,
            target_prefixes,
            total_after: self.total,
            idle_after: self.total.saturating_sub(self.assigned),
        };
        Plan {
            actions: self.actions,
            holdbacks: self.holdbacks,
            explanation,
        }
    }

    fn targets(&self, rule: Rule) -> (u32, u32, Option<u32>) {
        let s = self.s;
        match rule {
            Rule::IpTargets => {
                let p = self.prefix.then(|| {
                    (self.assigned + s.warm_ip_target)
                        .div_ceil(PREFIX_ADDRESSES)
                        .max(s.minimum_ip_target.div_ceil(PREFIX_ADDRESSES))
                });
                (s.warm_ip_target, s.minimum_ip_target, p)
            }
            Rule::WarmPrefix => {
                let in_use = self
                    .state
                    .interfaces
                    .iter()
                    .flat_map(|i| i.serving())
                    .filter(|b| !b.is_empty())
                    .count() as u32;
                (
                    PREFIX_ADDRESSES.saturating_mul(s.warm_prefix_target),
                    0,
                    Some(in_use + s.warm_prefix_target),
                )
            }
            Rule::WarmEni => (s.warm_eni_target.saturating_mul(self.per_eni), 0, None),
            Rule::Ipv6Prefix => (0, 0, Some(1)),
        }
    }

    // ---- growth ----------------------------------------------------------------------------

    /// Whether growth may happen at all now; records why not.
    fn may_grow(&mut self) -> bool {
        if let Some(at) = self.state.last_insufficient_space {
            let until = at.saturating_add(INSUFFICIENT_SPACE_BACKOFF);
            if self.now < until {
                self.holdbacks.push(Holdback::Backoff { until });
                return false;
            }
        }
        if self.total >= self.max_pods {
            self.holdbacks.push(Holdback::AtMaxPods {
                max_pods: self.max_pods,
            });
            return false;
        }
        true
    }

    /// Attached interfaces that can take more pod blocks, then the new interfaces the instance
    /// still allows, in device order.
    fn targets_for_growth(&self) -> Vec<Target> {
        let slots = self.limits.ipv4_per_eni;
        let mut out: Vec<Target> = self
            .state
            .interfaces
            .iter()
            .filter(|i| i.serves_pods)
            .filter_map(|i| {
                let free = slots.saturating_sub(i.slots_used(IpFamily::V4));
                (free > 0).then(|| Target {
                    interface: Some(i.id.clone()),
                    device_number: i.device_number,
                    free_slots: free,
                })
            })
            .collect();
        let attached = self.state.interfaces.len() as u32;
        let first = self
            .state
            .interfaces
            .iter()
            .map(|i| i.device_number + 1)
            .max()
            .unwrap_or(0);
        let new = self.state.interface_limit.saturating_sub(attached);
        out.extend((first..first + new).map(|device_number| Target {
            interface: None,
            device_number,
            free_slots: slots - 1,
        }));
        out
    }

    /// Places up to `units` blocks (prefixes or addresses), unit by unit, in the order of
    /// [`Self::targets_for_growth`], never once `T` reaches max pods; says why when it places
    /// fewer.
    fn grow(&mut self, units: u32) {
        let mut left = units;
        for t in self.targets_for_growth() {
            if left == 0 || self.total >= self.max_pods {
                break;
            }
            let mut n = 0;
            while n < t.free_slots && n < left && self.total < self.max_pods {
                n += 1;
                self.total += self.unit;
            }
            left -= n;
            self.push_growth(t, n);
        }
        if left > 0 {
            self.growth_stopped(left);
        }
    }

    /// Records why `missing` wanted units were not placed: the node reached max pods (possibly
    /// part-way through this plan), or every slot the instance allows is taken.
    fn growth_stopped(&mut self, missing: u32) {
        self.holdbacks.push(if self.total >= self.max_pods {
            Holdback::AtMaxPods {
                max_pods: self.max_pods,
            }
        } else {
            Holdback::NoCapacity { missing }
        });
    }

    fn push_growth(&mut self, t: Target, count: u32) {
        if count == 0 {
            return;
        }
        let kind = if self.prefix {
            BlockKind::Prefix
        } else {
            BlockKind::Secondary
        };
        self.actions.push(match (t.interface, self.prefix) {
            (Some(interface), true) => Action::AttachPrefixes { interface, count },
            (Some(interface), false) => Action::AttachAddresses { interface, count },
            (None, _) => Action::AttachInterface {
                device_number: t.device_number,
                kind,
                count,
            },
        });
    }

    fn ipv6(&mut self) {
        let has_prefix = self
            .state
            .interfaces
            .iter()
            .any(|i| i.serving().next().is_some());
        if has_prefix || !self.may_grow() {
            return;
        }
        let target = self.state.interfaces.iter().find(|i| i.serves_pods);
        match target {
            Some(i) => self.actions.push(Action::AttachPrefixes {
                interface: i.id.clone(),
                count: 1,
            }),
            None => self.holdbacks.push(Holdback::NoCapacity { missing: 1 }),
        }
    }

    fn ip_targets(&mut self) {
        let w = i64::from(self.s.warm_ip_target);
        let m = i64::from(self.s.minimum_ip_target);
        let av = i64::from(self.available());
        let t = i64::from(self.total);
        let short = (w - av).max(m - t).max(0) as u32;
        if short > 0 {
            if self.may_grow() {
                let units = if self.prefix {
                    short.div_ceil(PREFIX_ADDRESSES).max(1)
                } else {
                    short
                };
                self.grow(units);
            }
            return;
        }
        let over = (av - w).min(t - m).max(0) as u32;
        if self.prefix {
            let p = self.serving_prefix_count() as i64;
            let a = i64::from(self.assigned);
            let free = i64::from(self.state.empty_blocks());
            let by_warm = p - (a + w + 15) / 16;
            let by_min = p - (m + 15) / 16;
            let n = free.min(by_warm).min(by_min).max(0) as u32;
            self.shrink_blocks(n, w as u32, m as u32);
        } else {
            self.shrink_blocks(over, w as u32, m as u32);
        }
    }

    fn warm_prefix(&mut self) {
        let wp = self.s.warm_prefix_target;
        let av = self.available();
        let free = self.state.empty_blocks();
        if av < PREFIX_ADDRESSES.saturating_mul(wp) || (wp == 0 && av == 0) {
            if self.may_grow() {
                self.grow(wp.saturating_sub(free).max(1));
            }
            return;
        }
        let floor = PREFIX_ADDRESSES.saturating_mul(wp).max(1);
        self.shrink_blocks(free.saturating_sub(wp), floor, 0);
    }

    fn warm_eni(&mut self) {
        let we = self.s.warm_eni_target;
        let want = we.saturating_mul(self.per_eni);
        let short = |p: &Self| p.available() < want || (we == 0 && p.available() == 0);
        if short(self) {
            if !self.may_grow() {
                return;
            }
            // Fill one interface to its limit per step (an attached one first, else a new one),
            // until enough is available.
            let mut targets = self.targets_for_growth().into_iter();
            while short(self) {
                let target = targets.next().filter(|_| self.total < self.max_pods);
                let Some(t) = target else {
                    // With WE = 0 the want is one available address.
                    self.growth_stopped(want.max(1).saturating_sub(self.available()));
                    break;
                };
                let mut n = 0;
                while n < t.free_slots && self.total < self.max_pods {
                    n += 1;
                    self.total += 1;
                }
                self.push_growth(t, n);
            }
            return;
        }
        if self.available() >= (we + 1).saturating_mul(self.per_eni) && self.shrink_allowed() {
            // Free one whole interface, if one may go and the rest still meets the target.
            let candidate = self
                .state
                .interfaces
                .iter()
                .rev()
                .filter(|i| self.may_free(i))
                .find(|i| {
                    // Keep what the next plan would otherwise grow straight back (with WE = 0,
                    // that is one available address).
                    let its: u32 = i.serving().map(|b| b.capacity).sum();
                    self.available().saturating_sub(its) >= want.max(1)
                })
                .map(|i| (i.id.clone(), i.serving().map(|b| b.capacity).sum::<u32>()));
            if let Some((id, its)) = candidate {
                self.total -= its;
                self.actions.push(Action::FreeInterface { interface: id });
            }
        }
    }

    // ---- shrink ------------------------------------------------------------------------------

    fn serving_prefix_count(&self) -> u32 {
        self.state
            .interfaces
            .iter()
            .flat_map(|i| i.serving())
            .count() as u32
    }

    fn shrink_allowed(&mut self) -> bool {
        if let Some(at) = self.state.last_shrink {
            let until = at.saturating_add(SHRINK_INTERVAL);
            if self.now < until {
                self.holdbacks.push(Holdback::ShrinkTimer { until });
                return false;
            }
        }
        true
    }

    /// Whether an interface may be freed (docs/rules.md, "Warm pools"), targets aside.
    fn may_free(&self, i: &crate::node::InterfaceSnapshot) -> bool {
        freeable::own_reason(i, self.now).is_none() && freeable::trunk_or_efa(i).is_none()
    }

    /// Gives back the blocks of the kind the node does not serve (secondary addresses on a node
    /// in prefix mode, or prefixes in secondary-IP mode: a node restored or switched to the
    /// other mode) that hold no pod and no cooling address, as ipamd does at start. They serve
    /// no new pod; one still holding a pod goes once the pod has left and its address cooled.
    fn release_old_kind(&mut self) {
        let served = if self.prefix {
            BlockKind::Prefix
        } else {
            BlockKind::Secondary
        };
        let v4 = self.state.family == IpFamily::V4;
        for i in self.state.interfaces.iter().filter(|i| i.serves_pods) {
            let old: Vec<IpNet> = i
                .blocks
                .iter()
                .filter(|b| b.kind != served && b.cidr.addr().is_ipv4() == v4 && b.is_empty())
                .map(|b| b.cidr)
                .collect();
            if old.is_empty() {
                continue;
            }
            self.actions.push(if self.prefix {
                Action::ReleaseAddresses {
                    interface: i.id.clone(),
                    addresses: old.iter().map(|c| c.addr()).collect(),
                }
            } else {
                Action::ReleasePrefixes {
                    interface: i.id.clone(),
                    prefixes: old,
                }
            });
        }
    }

    /// Frees the interfaces that hold no block at all and may go, unless this plan grows (growth
    /// fills attached interfaces first, so an empty one is about to be used).
    fn free_empty_interfaces(&mut self) {
        if self.actions.iter().any(Action::is_growth) {
            return;
        }
        for i in self.state.interfaces.iter().rev() {
            let freed = self
                .actions
                .iter()
                .any(|a| matches!(a, Action::FreeInterface { interface } if *interface == i.id));
            if i.blocks.is_empty()
                && !freed
                && may_free_interface(self.limits, self.s, self.state, &i.id, self.now).is_ok()
            {
                self.actions.push(Action::FreeInterface {
                    interface: i.id.clone(),
                });
            }
        }
    }

    /// Releases up to `n` empty serving blocks, highest device number and highest address first
    /// (so packing stays low and whole interfaces empty out); an interface left with nothing is
    /// freed instead, when it may be. No release takes `av` below `floor_available` or `T` below
    /// `floor_total`: a shrink never creates the shortage the next plan would grow straight back
    /// (the reference formulas alone flap with WARM_PREFIX_TARGET = 0, or with cooling addresses).
    fn shrink_blocks(&mut self, n: u32, floor_available: u32, floor_total: u32) {
        if n == 0 || !self.shrink_allowed() {
            return;
        }
        let mut left = n;
        for i in self.state.interfaces.iter().rev() {
            if left == 0 {
                break;
            }
            let mut doomed: Vec<IpNet> = Vec::new();
            for b in i.serving().rev() {
                if left == 0 {
                    break;
                }
                let keeps_targets = self.available() >= floor_available + b.capacity
                    && self.total >= floor_total + b.capacity;
                if b.is_empty() && keeps_targets {
                    doomed.push(b.cidr);
                    left -= 1;
                    self.total -= b.capacity;
                }
            }
            if doomed.is_empty() {
                continue;
            }
            doomed.reverse();
            let everything = doomed.len() == i.blocks.len();
            if everything && self.may_free(i) {
                self.actions.push(Action::FreeInterface {
                    interface: i.id.clone(),
                });
            } else if self.prefix {
                self.actions.push(Action::ReleasePrefixes {
                    interface: i.id.clone(),
                    prefixes: doomed,
                });
            } else {
                let addresses = doomed.iter().map(|c| c.addr()).collect();
                self.actions.push(Action::ReleaseAddresses {
                    interface: i.id.clone(),
                    addresses,
                });
            }
        }
    }
}
