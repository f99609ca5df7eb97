//! Max pods per instance type, exactly as the EKS max-pods calculator defines it (docs/rules.md,
//! "Max pods").

use super::{Hypervisor, InstanceLimits, LimitsError};
use std::fmt;
use std::str::FromStr;

/// A VPC CNI version, `X.Y.Z` (a leading `v` and a pre-release or build suffix are accepted, as
/// in `v1.18.3-eksbuild.1`). Only major and minor matter: prefix delegation needs 1.9 or later.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CniVersion(semver::Version);

impl CniVersion {
    /// The version assumed when none is given: a current release.
    pub const CURRENT: (u64, u64, u64) = (1, 19, 0);

    /// `major.minor.patch`.
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        CniVersion(semver::Version::new(major, minor, patch))
    }

    /// Whether this version can delegate prefixes (1.9.0 or later).
    pub fn supports_prefix_delegation(&self) -> bool {
        (self.0.major, self.0.minor) >= (1, 9)
    }
}

impl Default for CniVersion {
    fn default() -> Self {
        let (a, b, c) = Self::CURRENT;
        CniVersion::new(a, b, c)
    }
}

impl FromStr for CniVersion {
    type Err = LimitsError;
    fn from_str(text: &str) -> Result<Self, LimitsError> {
        let bare = text.strip_prefix('v').unwrap_or(text);
        semver::Version::parse(bare)
            .map(CniVersion)
            .map_err(|_| LimitsError::InvalidCniVersion {
                text: text.to_owned(),
            })
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The questions `max_pods` asks, with the calculator's defaults (secondary-IP mode, no custom
/// networking, no interface limit, a current CNI version, the recommended cap applied).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaxPodsOptions {
    /// Ask for prefix mode. Granted only on Nitro or bare metal with CNI 1.9 or later; otherwise
    /// the result is computed for secondary-IP mode and says why ([`MaxPods::fallback`]).
    pub prefix_delegation: bool,
    /// Custom networking: the primary interface serves no pods.
    pub custom_networking: bool,
    /// A limit on the interfaces used (the CNI's `MAX_ENI`), applied before custom networking.
    pub max_eni: Option<u32>,
    /// The CNI version.
    pub cni_version: CniVersion,
    /// Skip the recommended 110 / 250 cap and report the uncapped value.
    pub show_max_allowed: bool,
}

/// Why prefix mode was asked for but not granted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrefixFallback {
    /// Neither Nitro nor bare metal.
    NotNitro {
        /// The hypervisor the type reports.
        hypervisor: Hypervisor,
    },
    /// The CNI version is older than 1.9.
    CniTooOld {
        /// The version given.
        version: CniVersion,
    },
}

impl fmt::Display for PrefixFallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixFallback::NotNitro { hypervisor } => write!(
                f,
                "prefix delegation needs a nitro or bare-metal instance (hypervisor: {hypervisor}); \
                 computed for secondary-IP mode"
            ),
            PrefixFallback::CniTooOld { version } => write!(
                f,
                "prefix delegation needs CNI 1.9.0 or later (given {version}); computed for \
                 secondary-IP mode"
            ),
        }
    }
}

/// Whether and how the recommended cap applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PodCap {
    /// The recommended cap (110 for 30 vCPUs or fewer, else 250); `max_pods` is the smaller of
    /// it and the uncapped value.
    Recommended(u32),
    /// Skipped on request (`show_max_allowed`).
    Skipped,
}

/// The answer of [`max_pods`], with how it was reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxPods {
    /// The value for the kubelet's `maxPods`.
    pub max_pods: u32,
    /// The formula's value before the cap.
    pub uncapped: u32,
    /// Whether the result is for prefix mode (asked for *and* possible).
    pub prefix_mode: bool,
    /// Set when prefix mode was asked for but not granted, with the reason.
    pub fallback: Option<PrefixFallback>,
    /// The cap that applied.
    pub cap: PodCap,
    /// Interfaces that serve pods in the formula (after `max_eni` and custom networking).
    pub interfaces: u32,
}

/// Pods that count against max pods but need no pod address: the CNI's own daemon (aws-node)
/// and kube-proxy run with host networking. They are the `+ 2` of the max-pods formula, so a
/// node runs at most `max_pods - HOST_NETWORK_PODS` pods that have an address of their own.
pub const HOST_NETWORK_PODS: u32 = 2;

/// Max pods for a type of the embedded table. See [`InstanceLimits::max_pods`].
///
/// # Errors
/// [`LimitsError::UnknownInstanceType`], or [`LimitsError::UnknownVcpus`] when the cap is asked
/// for on a type whose vCPU count is unknown.
///
/// # Example
/// ```
/// use pdipam::{limits::{max_pods, MaxPodsOptions}};
/// assert_eq!(max_pods("m5.large", &MaxPodsOptions::default())?.max_pods, 29);
/// let pd = MaxPodsOptions { prefix_delegation: true, ..Default::default() };
/// let m = max_pods("m5.large", &pd)?;
/// assert_eq!((m.max_pods, m.uncapped), (110, 434));
/// # Ok::<(), pdipam::limits::LimitsError>(())
/// ```
pub fn max_pods(instance_type: &str, options: &MaxPodsOptions) -> Result<MaxPods, LimitsError> {
    InstanceLimits::lookup(instance_type)?.max_pods(options)
}

impl InstanceLimits {
    /// Max pods for this type (docs/rules.md, "Max pods"): with `enis` = `max_enis` (or
    /// `min(max_enis, max_eni)`), less one with custom networking, and `ips` = `ipv4_per_eni`:
    /// secondary-IP mode `enis * (ips - 1) + 2`, prefix mode `enis * (ips - 1) * 16 + 2`, then
    /// the recommended cap (110 for 30 vCPUs or fewer, else 250) unless skipped.
    ///
    /// # Errors
    /// [`LimitsError::UnknownVcpus`] when the cap is asked for and the vCPU count is unknown.
    pub fn max_pods(&self, options: &MaxPodsOptions) -> Result<MaxPods, LimitsError> {
        let fallback = if !options.prefix_delegation {
            None
        } else if !self.supports_prefix_delegation() {
            Some(PrefixFallback::NotNitro {
                hypervisor: self.hypervisor,
            })
        } else if !options.cni_version.supports_prefix_delegation() {
            Some(PrefixFallback::CniTooOld {
                version: options.cni_version.clone(),
            })
        } else {
            None
        };
        let prefix_mode = options.prefix_delegation && fallback.is_none();
        let mut interfaces = self.max_enis;
        if let Some(limit) = options.max_eni {
            interfaces = interfaces.min(limit);
        }
        if options.custom_networking {
            interfaces = interfaces.saturating_sub(1);
        }
        let uncapped = interfaces
            .saturating_mul(self.addresses_per_interface(prefix_mode))
            .saturating_add(HOST_NETWORK_PODS);
        let (max_pods, cap) = if options.show_max_allowed {
            (uncapped, PodCap::Skipped)
        } else {
            let vcpus = self
                .default_vcpus
                .ok_or_else(|| LimitsError::UnknownVcpus {
                    instance_type: self.instance_type.clone(),
                    uncapped,
                })?;
            let cap = if vcpus <= 30 { 110 } else { 250 };
            (uncapped.min(cap), PodCap::Recommended(cap))
        };
        Ok(MaxPods {
            max_pods,
            uncapped,
            prefix_mode,
            fallback,
            cap,
            interfaces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(t: &str, f: impl FnOnce(&mut MaxPodsOptions)) -> MaxPods {
        let mut o = MaxPodsOptions::default();
        f(&mut o);
        max_pods(t, &o).unwrap()
    }

    #[test]
    fn spec_examples() {
        assert_eq!(mp("m5.large", |_| {}).max_pods, 29);
        assert_eq!(mp("m5.large", |o| o.custom_networking = true).max_pods, 20);
        let pd = mp("m5.large", |o| o.prefix_delegation = true);
        assert_eq!(
            (pd.max_pods, pd.uncapped, pd.cap),
            (110, 434, PodCap::Recommended(110))
        );
        let pd = mp("m5.large", |o| {
            o.prefix_delegation = true;
            o.show_max_allowed = true
        });
        assert_eq!((pd.max_pods, pd.cap), (434, PodCap::Skipped));
        assert_eq!(mp("t3.nano", |o| o.prefix_delegation = true).max_pods, 34);
        assert_eq!(mp("m5.8xlarge", |_| {}).max_pods, 234);
        let big = mp("m5.8xlarge", |o| o.prefix_delegation = true);
        assert_eq!((big.max_pods, big.uncapped), (250, 3714));
        assert_eq!(mp("m4.xlarge", |_| {}).max_pods, 58);
        let xen = mp("m4.xlarge", |o| o.prefix_delegation = true);
        assert_eq!(xen.max_pods, 58);
        assert!(!xen.prefix_mode);
        assert_eq!(
            xen.fallback,
            Some(PrefixFallback::NotNitro {
                hypervisor: Hypervisor::Xen
            })
        );
    }

    #[test]
    fn old_cni_falls_back_and_says_so() {
        let m = mp("m5.large", |o| {
            o.prefix_delegation = true;
            o.cni_version = "1.8.0".parse().unwrap();
        });
        assert_eq!(m.max_pods, 29);
        assert!(matches!(m.fallback, Some(PrefixFallback::CniTooOld { .. })));
        assert!(m.fallback.unwrap().to_string().contains("1.8.0"));
        let ok = mp("m5.large", |o| {
            o.prefix_delegation = true;
            o.cni_version = "v1.9.0-eksbuild.1".parse().unwrap();
        });
        assert!(ok.prefix_mode);
        assert!("1.x".parse::<CniVersion>().is_err());
    }

    #[test]
    fn max_eni_applies_before_custom_networking() {
        // m5.8xlarge: 8 interfaces of 30 slots.
        let m = mp("m5.8xlarge", |o| {
            o.max_eni = Some(3);
            o.custom_networking = true
        });
        assert_eq!((m.interfaces, m.max_pods), (2, 2 * 29 + 2));
        let none = mp("m5.8xlarge", |o| o.max_eni = Some(0));
        assert_eq!(none.max_pods, 2);
    }

    #[test]
    fn bare_metal_without_hypervisor_may_delegate() {
        let m = mp("m5.metal", |o| o.prefix_delegation = true);
        assert!(m.prefix_mode);
        assert_eq!((m.uncapped, m.max_pods), (15 * 49 * 16 + 2, 250));
    }

    #[test]
    fn unknown_vcpus_are_reported_not_guessed() {
        let o = MaxPodsOptions::default();
        match max_pods("c5a.metal", &o) {
            Err(LimitsError::UnknownVcpus {
                instance_type,
                uncapped,
            }) => {
                assert_eq!(
                    (instance_type.as_str(), uncapped),
                    ("c5a.metal", 15 * 49 + 2)
                )
            }
            other => panic!("{other:?}"),
        }
        let o = MaxPodsOptions {
            show_max_allowed: true,
            ..o
        };
        assert_eq!(max_pods("c5a.metal", &o).unwrap().max_pods, 737);
    }
}
