//! Instance limits (the embedded EC2 table) and the max-pods calculation of docs/rules.md, "Max pods".

mod error;
mod max_pods_calc;
mod node_limits;
mod table;

pub use error::LimitsError;
pub use max_pods_calc::{
    max_pods, CniVersion, MaxPods, MaxPodsOptions, PodCap, PrefixFallback, HOST_NETWORK_PODS,
};
pub use node_limits::NodeLimits;

use std::fmt;

/// The hypervisor an instance type runs on; prefix delegation needs Nitro (or bare metal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Hypervisor {
    /// AWS Nitro.
    Nitro,
    /// Xen (previous generations).
    Xen,
    /// Not reported; most bare-metal types.
    Unknown,
}

impl fmt::Display for Hypervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hypervisor::Nitro => "nitro",
            Hypervisor::Xen => "xen",
            Hypervisor::Unknown => "unknown",
        })
    }
}

/// The networking limits of one instance type.
///
/// [`InstanceLimits::lookup`] returns the row of the embedded table; a type that is not in the
/// table (a brand-new one, or a test double) can be described by building the struct directly.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct InstanceLimits {
    /// The instance type, e.g. `m5.large`.
    pub instance_type: String,
    /// Network interfaces on the default network card: what every max-pods formula uses.
    pub max_enis: u32,
    /// IPv4 address slots per interface, the interface's primary address included.
    pub ipv4_per_eni: u32,
    /// IPv6 addresses per interface: `Some(0)` where unsupported, `None` where unknown.
    pub ipv6_per_eni: Option<u32>,
    /// The hypervisor.
    pub hypervisor: Hypervisor,
    /// Whether this is a bare-metal type.
    pub bare_metal: bool,
    /// Default vCPUs, for the 110 / 250 cap; `None` where unknown.
    pub default_vcpus: Option<u32>,
    /// Network cards; only the default card counts for pods.
    pub network_card_count: u32,
    /// Interfaces over all network cards (not used for max pods).
    pub max_enis_all_cards: u32,
    /// Whether the type supports a trunk interface (security groups for pods); `None` if unknown.
    pub trunking_compatible: Option<bool>,
    /// Branch interfaces (security groups for pods); `None` if unknown.
    pub branch_interfaces: Option<u32>,
}

impl InstanceLimits {
    /// The embedded row for `instance_type` (exact, case-sensitive match, as EC2 spells it).
    ///
    /// # Errors
    /// [`LimitsError::UnknownInstanceType`] naming the type and suggesting up to three close names.
    ///
    /// # Example
    /// ```
    /// let l = pdipam::limits::InstanceLimits::lookup("m5.large")?;
    /// assert_eq!((l.max_enis, l.ipv4_per_eni), (3, 10));
    /// # Ok::<(), pdipam::limits::LimitsError>(())
    /// ```
    pub fn lookup(instance_type: &str) -> Result<&'static InstanceLimits, LimitsError> {
        let all = table::all();
        match all.binary_search_by(|row| row.instance_type.as_str().cmp(instance_type)) {
            Ok(i) => Ok(&all[i]),
            Err(_) => Err(LimitsError::UnknownInstanceType {
                instance_type: instance_type.to_owned(),
                suggestions: suggest(instance_type, all),
            }),
        }
    }

    /// Every instance type of the embedded table, sorted by name.
    pub fn all() -> &'static [InstanceLimits] {
        table::all()
    }

    /// Whether prefix delegation is possible at all on this hardware: Nitro or bare metal.
    pub fn supports_prefix_delegation(&self) -> bool {
        self.hypervisor == Hypervisor::Nitro || self.bare_metal
    }

    /// Pod addresses one interface can hold: its slots less the primary address, times 16 in
    /// prefix mode (each slot then holds a /28).
    pub fn addresses_per_interface(&self, prefix_mode: bool) -> u32 {
        let slots = self.ipv4_per_eni.saturating_sub(1);
        if prefix_mode {
            slots.saturating_mul(16)
        } else {
            slots
        }
    }
}

/// Up to three known names close to `wanted`, best first: same family first (the part before
/// the dot), then by edit distance.
fn suggest(wanted: &str, all: &[InstanceLimits]) -> Vec<String> {
    let wanted_lc = wanted.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = all
        .iter()
        .map(|row| {
            let name = row.instance_type.as_str();
            (strsim::damerau_levenshtein(&wanted_lc, name), name)
        })
        .filter(|(d, name)| *d <= 3.max(name.len() / 3))
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_rows_and_suggests_close_names() {
        let l = InstanceLimits::lookup("t3.small").unwrap();
        assert_eq!(
            (l.max_enis, l.ipv4_per_eni, l.default_vcpus),
            (3, 4, Some(2))
        );
        match InstanceLimits::lookup("m5.lareg") {
            Err(LimitsError::UnknownInstanceType {
                instance_type,
                suggestions,
            }) => {
                assert_eq!(instance_type, "m5.lareg");
                assert_eq!(suggestions.first().map(String::as_str), Some("m5.large"));
            }
            other => panic!("{other:?}"),
        }
        match InstanceLimits::lookup("M5.LARGE") {
            Err(LimitsError::UnknownInstanceType { suggestions, .. }) => {
                assert_eq!(suggestions[0], "m5.large")
            }
            other => panic!("{other:?}"),
        }
        let e = InstanceLimits::lookup("zz-nothing-like-it").unwrap_err();
        assert_eq!(e.to_string(), "unknown instance type zz-nothing-like-it");
    }

    #[test]
    fn long_names_allow_more_typos() {
        // Four edits away: too many for a short name, within a third of a 14-character one.
        let short = InstanceLimits::lookup("t9.xyzzy").unwrap_err();
        assert!(
            matches!(&short, LimitsError::UnknownInstanceType { suggestions, .. } if suggestions.is_empty()),
            "{short:?}"
        );
        match InstanceLimits::lookup("r6idn.32xl") {
            Err(LimitsError::UnknownInstanceType { suggestions, .. }) => {
                assert!(
                    suggestions.iter().any(|s| s == "r6idn.32xlarge"),
                    "{suggestions:?}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hypervisors_display_as_the_table_spells_them() {
        for (h, text) in [
            (Hypervisor::Nitro, "nitro"),
            (Hypervisor::Xen, "xen"),
            (Hypervisor::Unknown, "unknown"),
        ] {
            assert_eq!(h.to_string(), text);
        }
    }

    #[test]
    fn per_interface_addresses() {
        let l = InstanceLimits::lookup("c5.large").unwrap();
        assert_eq!(l.addresses_per_interface(false), 9);
        assert_eq!(l.addresses_per_interface(true), 144);
    }
}
