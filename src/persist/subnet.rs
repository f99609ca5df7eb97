//! The subnet checkpoint: CIDR, options, reservations and allocations.

use super::{envelope, PersistError};
use crate::{Holder, Placement, Reservation, ReservedProfile, Subnet, SubnetOptions};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::Path;

const KIND: &str = "subnet";

/// A subnet's complete state, as written to disk. See `docs/checkpoint.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetCheckpoint {
    /// The subnet.
    pub cidr: IpNet,
    /// Its reserved-address profile.
    pub profile: ReservedProfile,
    /// Its placement policy.
    pub placement: Placement,
    /// Whether automatic prefixes fall back to unreserved space.
    pub fallback_to_unreserved: bool,
    /// Subnet CIDR reservations.
    pub reservations: Vec<Reservation>,
    /// Delegated prefixes.
    pub prefixes: Vec<IpNet>,
    /// Single addresses.
    pub addresses: Vec<IpAddr>,
}

impl Subnet {
    /// The subnet's state as a checkpoint.
    pub fn checkpoint(&self) -> SubnetCheckpoint {
        let o = self.options();
        let mut prefixes = Vec::new();
        let mut addresses = Vec::new();
        for h in self.allocations() {
            match h {
                Holder::Prefix(p) => prefixes.push(p),
                Holder::Address(a) => addresses.push(a),
                Holder::Reserved(_) => {}
            }
        }
        SubnetCheckpoint {
            cidr: self.cidr(),
            profile: o.profile,
            placement: o.placement,
            fallback_to_unreserved: o.fallback_to_unreserved,
            reservations: self.reservations(),
            prefixes,
            addresses,
        }
    }
}

impl SubnetCheckpoint {
    /// The checkpoint as file bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        envelope::seal(KIND, self)
    }

    /// Parses and checks file bytes; `source` names them in errors.
    ///
    /// # Errors
    /// As [`NodeCheckpoint::from_bytes`](super::NodeCheckpoint::from_bytes).
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self, PersistError> {
        envelope::open(bytes, source, KIND)
    }

    /// Writes durably to `path`.
    ///
    /// # Errors
    /// [`PersistError::Io`]; the previous file is intact.
    pub fn write(&self, path: &Path) -> Result<(), PersistError> {
        envelope::write(KIND, self, path)
    }

    /// Reads and checks the checkpoint at `path`.
    ///
    /// # Errors
    /// As [`SubnetCheckpoint::from_bytes`], and [`PersistError::Io`].
    pub fn read(path: &Path) -> Result<Self, PersistError> {
        envelope::read(path, KIND)
    }

    /// Rebuilds the subnet.
    ///
    /// # Errors
    /// [`PersistError::Subnet`] naming the entry the subnet refuses (an overlap, a CIDR outside
    /// it, a reserved address).
    pub fn restore(&self, source: &str) -> Result<Subnet, PersistError> {
        let refused = |entry: String| {
            move |error| PersistError::Subnet {
                source_name: source.into(),
                entry,
                error,
            }
        };
        let options = SubnetOptions::default()
            .profile(self.profile)
            .placement(self.placement)
            .fallback_to_unreserved(self.fallback_to_unreserved);
        let subnet = Subnet::with_options(self.cidr, options)
            .map_err(refused(format!("subnet {}", self.cidr)))?;
        for r in &self.reservations {
            subnet
                .add_reservation(r.cidr, r.kind)
                .map_err(refused(format!("reservation {}", r.cidr)))?;
        }
        for p in &self.prefixes {
            subnet
                .allocate_prefix_at(*p)
                .map_err(refused(format!("prefix {p}")))?;
        }
        for a in &self.addresses {
            subnet
                .allocate_ip_at(*a)
                .map_err(refused(format!("address {a}")))?;
        }
        Ok(subnet)
    }
}
