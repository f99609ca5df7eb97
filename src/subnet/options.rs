//! Construction options: reserved-address profile, placement policy, fallback.

use std::fmt;

/// Which addresses of a subnet are never handed out (docs/rules.md, "Sizes and reserved addresses").
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ReservedProfile {
    /// AWS: the first four addresses and the last one (for IPv6: the first and the last /80,
    /// which hold `::`..`::3` and the all-ones address).
    #[default]
    Aws,
    /// Network and broadcast address (IPv6: the first and the last /80).
    Classic,
    /// Nothing reserved: routed pools where every address is usable.
    None,
}

impl ReservedProfile {
    /// The profile's name as used in messages and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            ReservedProfile::Aws => "aws",
            ReservedProfile::Classic => "classic",
            ReservedProfile::None => "none",
        }
    }

    /// Reserved units of a subnet of `units` units (`v4`: one unit per address).
    pub(crate) fn reserved_units(self, units: u64, v4: bool) -> Vec<u64> {
        let last = units - 1;
        let mut out = match (self, v4) {
            (ReservedProfile::Aws, true) => vec![0, 1, 2, 3, last],
            (ReservedProfile::Aws, false) | (ReservedProfile::Classic, _) => vec![0, last],
            (ReservedProfile::None, _) => vec![],
        };
        out.dedup();
        out
    }
}

impl fmt::Display for ReservedProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where automatic allocation places things (docs/rules.md, "Single addresses and placement").
///
/// `Pack`, the default, keeps large free aligned blocks whole. The rule, exactly:
/// * the subnet is scanned in words of 64 units (64 addresses for IPv4, 64 /80s for IPv6);
/// * a single unit (an IPv4 address, an IPv6 /80) goes, in this order of preference, into the
///   lowest word that has a *broken* 16-unit block (partly used), choosing there the most-used
///   broken block (ties: the lowest) and its lowest free unit; else into the lowest partly used
///   word; else into the lowest empty word;
/// * a run of 2 to 32 units goes into the lowest partly used word that can hold it, else the lowest
///   empty word; inside the word it takes the free aligned position whose enclosing free aligned
///   block is smallest (best fit; ties: the lowest), so bigger free blocks stay whole;
/// * a run of 64 units or more takes the lowest free aligned block.
///
/// Units outside the searched domain (reservations) count as used when judging a word.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Keep free aligned blocks whole (see the type's docs for the exact rule).
    #[default]
    Pack,
    /// The lowest free aligned block: naive allocators.
    FirstFit,
    /// The first free aligned block at or after a pseudo-random point, wrapping: cloud-like
    /// scatter, deterministic for a seed when calls are made from one thread.
    Random {
        /// Seed of the generator.
        seed: u64,
    },
}

/// How a [`Subnet`](crate::Subnet) is built. `SubnetOptions::default()` is AWS behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubnetOptions {
    /// Reserved-address profile.
    pub profile: ReservedProfile,
    /// Placement policy.
    pub placement: Placement,
    /// When the prefix reservations are full, take automatic prefixes from unreserved space
    /// (reported in the [`Allocation`](crate::Allocation)). Default on.
    pub fallback_to_unreserved: bool,
}

impl Default for SubnetOptions {
    fn default() -> Self {
        Self {
            profile: ReservedProfile::Aws,
            placement: Placement::Pack,
            fallback_to_unreserved: true,
        }
    }
}

impl SubnetOptions {
    /// With this reserved-address profile.
    pub fn profile(mut self, profile: ReservedProfile) -> Self {
        self.profile = profile;
        self
    }

    /// With this placement policy.
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// With or without falling back to unreserved space.
    pub fn fallback_to_unreserved(mut self, on: bool) -> Self {
        self.fallback_to_unreserved = on;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_print_their_names() {
        for (p, name) in [
            (ReservedProfile::Aws, "aws"),
            (ReservedProfile::Classic, "classic"),
            (ReservedProfile::None, "none"),
        ] {
            assert_eq!((p.to_string(), p.name()), (name.to_owned(), name));
        }
    }
}
