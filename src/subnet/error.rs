//! Errors of the subnet layer. Each names the offending value; texts carry the words users
//! already search for (`InsufficientCidrBlocks`, `InsufficientFreeAddressesInSubnet`).

use super::Holder;
use ipnet::IpNet;
use std::net::IpAddr;

/// Why a [`Subnet`](crate::Subnet) call failed. A failed call changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubnetError {
    /// The subnet's length is not accepted (IPv4 /8 to /30, IPv6 /44 to /64).
    #[error("subnet {cidr} has an unsupported length: accepted are /{min} to /{max}")]
    SubnetLength {
        /// The subnet given.
        cidr: IpNet,
        /// Shortest accepted length.
        min: u8,
        /// Longest accepted length.
        max: u8,
    },
    /// A CIDR has host bits set, so it is not aligned to its length.
    #[error("{cidr} is misaligned: its network is {network}")]
    Misaligned {
        /// The CIDR given.
        cidr: IpNet,
        /// Its network (the aligned CIDR it probably meant).
        network: IpNet,
    },
    /// An address or CIDR of the other family.
    #[error("{cidr} is not of the same address family as subnet {subnet}")]
    WrongFamily {
        /// The value given.
        cidr: IpNet,
        /// The subnet.
        subnet: IpNet,
    },
    /// An address or CIDR not inside the subnet.
    #[error("{cidr} is outside subnet {subnet}")]
    OutsideSubnet {
        /// The value given.
        cidr: IpNet,
        /// The subnet.
        subnet: IpNet,
    },
    /// A prefix length outside what the subnet can hand out.
    #[error("prefix length /{len} is out of range for subnet {subnet}: /{min} to /{max}")]
    PrefixLength {
        /// The length given.
        len: u8,
        /// Shortest possible (the subnet's own length).
        min: u8,
        /// Longest possible (one tracking unit: /32, or /80 for IPv6).
        max: u8,
        /// The subnet.
        subnet: IpNet,
    },
    /// Single-address calls are for IPv4 subnets; IPv6 hands out /80 prefixes.
    #[error("single addresses are IPv4 only; {subnet} is an IPv6 subnet (allocate a /80 prefix instead)")]
    NotIpv4 {
        /// The subnet.
        subnet: IpNet,
    },
    /// Some address of the CIDR is already allocated.
    #[error("{cidr} is already allocated: it overlaps {holder}")]
    AlreadyAllocated {
        /// The CIDR asked for.
        cidr: IpNet,
        /// The allocation in the way (the lowest one).
        holder: Holder,
    },
    /// Release of a CIDR of which nothing is allocated.
    #[error("{cidr} is not allocated")]
    NotAllocated {
        /// The CIDR given.
        cidr: IpNet,
    },
    /// Release of a CIDR that is not exactly one allocation (part of one, or spanning several).
    #[error("{cidr} is not one allocation: it overlaps {holder}")]
    NotOneAllocation {
        /// The CIDR given.
        cidr: IpNet,
        /// An allocation it overlaps that differs from it.
        holder: Holder,
    },
    /// The CIDR holds an address reserved by the subnet's profile.
    #[error("{cidr} contains {addr}, reserved by the {profile} profile")]
    ReservedAddress {
        /// The CIDR given.
        cidr: IpNet,
        /// The reserved address it contains.
        addr: IpAddr,
        /// The profile's name.
        profile: &'static str,
    },
    /// Enough addresses are free where automatic assignment may look, but no free aligned block
    /// of the asked length: fragmentation. `Subnet::explain_prefix_failure` tells which
    /// allocations spoil the candidate blocks; `Subnet::stats` counts the free addresses.
    #[error(
        "InsufficientCidrBlocks: There are not enough free cidr blocks in the specified subnet to satisfy the request: no free aligned /{len} in {subnet}, although enough addresses are free (fragmentation)"
    )]
    InsufficientCidrBlocks {
        /// The subnet.
        subnet: IpNet,
        /// The prefix length asked for.
        len: u8,
    },
    /// Fewer addresses are free where automatic assignment may look than the request needs.
    #[error(
        "InsufficientFreeAddressesInSubnet: There aren't sufficient free Ipv4 addresses or prefixes in {subnet}: fewer than {needed} free where automatic assignment may look"
    )]
    InsufficientFreeAddressesInSubnet {
        /// The subnet.
        subnet: IpNet,
        /// Units needed (addresses; /80s for IPv6).
        needed: u64,
    },
    /// A new reservation overlaps an existing one.
    #[error("reservation {cidr} overlaps existing reservation {existing}")]
    ReservationOverlap {
        /// The reservation asked for.
        cidr: IpNet,
        /// The one in the way.
        existing: IpNet,
    },
    /// No reservation with this CIDR.
    #[error("no reservation {cidr} in subnet {subnet}")]
    ReservationNotFound {
        /// The CIDR given.
        cidr: IpNet,
        /// The subnet.
        subnet: IpNet,
    },
}

/// An invariant found broken by `verify()`: a bug in pdipam, never the caller's fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pdipam invariant violated: {detail}")]
pub struct InvariantViolation {
    /// What was found.
    pub detail: String,
}

impl From<String> for InvariantViolation {
    fn from(detail: String) -> Self {
        Self { detail }
    }
}
