//! A fleet subnet's configuration, stored once under its `config` key by `init` and read by
//! every member: what the in-process [`pdipam::Subnet`] needs, and the chunk size.

use ipnet::IpNet;
use pdipam::{Placement, Reservation, ReservedProfile, Subnet, SubnetError, SubnetOptions};
use serde::{Deserialize, Serialize};

/// The configuration of a subnet shared through etcd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FleetConfig {
    /// The subnet.
    pub cidr: IpNet,
    /// Its reserved addresses (AWS: the first four and the last).
    pub profile: ReservedProfile,
    /// Whether automatic prefixes fall back to unreserved space once the prefix reservations
    /// are full.
    pub fallback_to_unreserved: bool,
    /// Subnet CIDR reservations.
    pub reservations: Vec<Reservation>,
    /// The prefix length of one chunk: every chunk is an aligned block of this length.
    pub chunk_len: u8,
}

impl FleetConfig {
    /// A subnet with the AWS profile, no reservations, and chunks of 16 units: an IPv4 /28 (one
    /// delegated prefix per key, so claims conflict only when they want the same /28), sixteen
    /// IPv6 /80s; coarser where that would make more than 65536 keys, the whole subnet where it
    /// is smaller. BENCHMARKS.md has the measurements behind the choice.
    pub fn new(cidr: IpNet) -> Self {
        let unit = match cidr {
            IpNet::V4(_) => 32,
            IpNet::V6(_) => 80,
        };
        FleetConfig {
            cidr: cidr.trunc(),
            profile: ReservedProfile::Aws,
            fallback_to_unreserved: true,
            reservations: Vec::new(),
            chunk_len: (unit - 4)
                .min(cidr.prefix_len().saturating_add(16))
                .max(cidr.prefix_len()),
        }
    }

    /// Sets [`profile`](Self::profile).
    pub fn profile(mut self, profile: ReservedProfile) -> Self {
        self.profile = profile;
        self
    }

    /// Adds a reservation.
    pub fn reservation(mut self, reservation: Reservation) -> Self {
        self.reservations.push(reservation);
        self
    }

    /// Sets [`chunk_len`](Self::chunk_len).
    pub fn chunk_len(mut self, len: u8) -> Self {
        self.chunk_len = len;
        self
    }

    /// The number of chunks.
    pub fn chunk_count(&self) -> u64 {
        1u64 << (self.chunk_len - self.cidr.prefix_len())
    }

    /// Chunk `index`'s CIDR.
    pub fn chunk_cidr(&self, index: u64) -> IpNet {
        let shift = u32::from(self.max_len() - self.chunk_len);
        let base = addr_u128(self.cidr);
        let start = base + (u128::from(index) << shift);
        net_from(self.cidr, start, self.chunk_len)
    }

    /// The chunks `cidr` lies in (which must lie in the subnet): one, or every chunk a prefix
    /// larger than a chunk covers.
    pub fn chunks_of(&self, cidr: IpNet) -> std::ops::Range<u64> {
        let first = self.chunk_of(cidr);
        let count = 1u64 << self.chunk_len.saturating_sub(cidr.prefix_len()).min(63);
        first..first + count
    }

    /// The chunk holding `cidr` (the first, for a prefix larger than a chunk; `cidr` must lie
    /// in the subnet).
    pub fn chunk_of(&self, cidr: IpNet) -> u64 {
        let shift = u32::from(self.max_len() - self.chunk_len);
        ((addr_u128(cidr) - addr_u128(self.cidr)) >> shift) as u64
    }

    fn max_len(&self) -> u8 {
        self.cidr.max_prefix_len()
    }

    /// An empty in-process subnet with these options and reservations: the mirror's base, and
    /// the check that the configuration is one pdipam accepts.
    ///
    /// # Errors
    /// The subnet's refusal (a length pdipam does not manage, a reservation outside or
    /// overlapping); a chunk length outside the subnet or finer than one unit.
    pub fn build(&self) -> Result<Subnet, String> {
        let options = SubnetOptions::default()
            .profile(self.profile)
            .placement(Placement::Pack)
            .fallback_to_unreserved(self.fallback_to_unreserved);
        let subnet = Subnet::with_options(self.cidr, options).map_err(|e| e.to_string())?;
        if self.chunk_len < self.cidr.prefix_len() || self.chunk_len > subnet.unit_len() {
            return Err(format!(
                "chunk length /{} must lie between the subnet's /{} and its unit /{}",
                self.chunk_len,
                self.cidr.prefix_len(),
                subnet.unit_len()
            ));
        }
        if self.chunk_count() > 1 << 20 {
            return Err(format!(
                "/{} chunks make {} keys: at most {} (use a shorter chunk length)",
                self.chunk_len,
                self.chunk_count(),
                1u64 << 20
            ));
        }
        for r in &self.reservations {
            subnet
                .add_reservation(r.cidr, r.kind)
                .map_err(|e: SubnetError| e.to_string())?;
        }
        Ok(subnet)
    }
}

fn addr_u128(net: IpNet) -> u128 {
    match net {
        IpNet::V4(n) => u128::from(u32::from(n.network())),
        IpNet::V6(n) => u128::from(n.network()),
    }
}

fn net_from(like: IpNet, addr: u128, len: u8) -> IpNet {
    match like {
        IpNet::V4(_) => IpNet::new(std::net::Ipv4Addr::from(addr as u32).into(), len),
        IpNet::V6(_) => IpNet::new(std::net::Ipv6Addr::from(addr).into(), len),
    }
    .expect("a length of the subnet's family")
}

#[cfg(test)]
mod tests {
    use super::FleetConfig;

    #[test]
    fn chunks_tile_the_subnet() {
        let c = FleetConfig::new("10.0.0.0/16".parse().unwrap());
        assert_eq!((c.chunk_len, c.chunk_count()), (28, 4096));
        assert_eq!(c.chunk_cidr(1).to_string(), "10.0.0.16/28");
        assert_eq!(c.chunk_of("10.0.7.240/28".parse().unwrap()), 127);
        assert_eq!(c.chunk_of("10.0.255.255/32".parse().unwrap()), 4095);
        assert_eq!(c.chunks_of("10.0.1.0/24".parse().unwrap()), 16..32);
        assert_eq!(c.chunks_of("10.0.1.5/32".parse().unwrap()), 16..17);
        let big = FleetConfig::new("10.0.0.0/8".parse().unwrap());
        assert_eq!((big.chunk_len, big.chunk_count()), (24, 65536));
        let small = FleetConfig::new("10.0.0.0/28".parse().unwrap());
        assert_eq!((small.chunk_len, small.chunk_count()), (28, 1));
        let v6 = FleetConfig::new("2600:1f14::/64".parse().unwrap());
        assert_eq!((v6.chunk_len, v6.chunk_count()), (76, 4096));
        assert_eq!(v6.chunk_cidr(1).to_string(), "2600:1f14:0:0:10::/76");
        assert!(small.clone().chunk_len(20).build().is_err());
        assert!(small.build().is_ok());
    }
}
