//! How a node serves pods: mode, family, cooldown.

use std::time::Duration;

/// Which attached blocks serve pods.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum AddressMode {
    /// Prefix delegation: pods get addresses from /28 (IPv4) or /80 (IPv6) prefixes.
    #[default]
    Prefix,
    /// Secondary-IP mode: each pod gets one secondary address of an interface.
    Secondary,
}

/// The address family pods get.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum IpFamily {
    /// IPv4 pods.
    #[default]
    V4,
    /// IPv6 pods (from /80 prefixes in prefix mode).
    V6,
}

/// A node's settings (the pod-serving ones; warm-pool settings live in
/// [`WarmSettings`](crate::planner::WarmSettings)).
///
/// Built from [`NodeConfig::new`] (the defaults) and the setters, so that a field added later
/// is not a breaking change:
///
/// ```
/// use pdipam::{AddressMode, IpFamily, NodeConfig};
/// use std::time::Duration;
///
/// let config = NodeConfig::new()
///     .mode(AddressMode::Secondary)
///     .family(IpFamily::V4)
///     .cooldown(Duration::from_secs(10))
///     .max_eni(Some(2));
/// assert_eq!(config.cooldown, Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeConfig {
    /// Prefix or secondary-IP mode. Blocks of the other kind may stay attached (after a mode
    /// change) but serve no new pods.
    pub mode: AddressMode,
    /// IPv4 or IPv6 pods.
    pub family: IpFamily,
    /// How long a released address rests before it is given to another pod (default 30 s).
    pub cooldown: Duration,
    /// Custom networking: the primary interface (device 0) serves no pods.
    pub custom_networking: bool,
    /// A limit on interfaces below the instance's (the CNI's `MAX_ENI`); below 1 it is ignored,
    /// as ipamd ignores it.
    pub max_eni: Option<u32>,
    /// Addresses of an IPv6 /80 that pods may get: the first this many (default 1024, more than
    /// any instance's max pods; a /80 has 2^48, which no bitmap should hold).
    pub ipv6_prefix_capacity: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            mode: AddressMode::Prefix,
            family: IpFamily::V4,
            cooldown: Duration::from_secs(30),
            custom_networking: false,
            max_eni: None,
            ipv6_prefix_capacity: 1024,
        }
    }
}

impl NodeConfig {
    /// The defaults: prefix mode, IPv4, a 30 s cooldown, no custom networking, no `MAX_ENI`,
    /// 1024 addresses per IPv6 /80.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`mode`](Self::mode).
    pub fn mode(mut self, mode: AddressMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`family`](Self::family).
    pub fn family(mut self, family: IpFamily) -> Self {
        self.family = family;
        self
    }

    /// Sets [`cooldown`](Self::cooldown).
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets [`custom_networking`](Self::custom_networking).
    pub fn custom_networking(mut self, on: bool) -> Self {
        self.custom_networking = on;
        self
    }

    /// Sets [`max_eni`](Self::max_eni).
    pub fn max_eni(mut self, max_eni: Option<u32>) -> Self {
        self.max_eni = max_eni;
        self
    }

    /// Sets [`ipv6_prefix_capacity`](Self::ipv6_prefix_capacity).
    pub fn ipv6_prefix_capacity(mut self, capacity: u32) -> Self {
        self.ipv6_prefix_capacity = capacity;
        self
    }
}
