//! # pdipam
//!
//! An embeddable IP address manager for pod networking built on prefix delegation.
//!
//! The subnet side ([`Subnet`]) tracks an IPv4 subnet per address or an IPv6 subnet per /80 in a
//! bitmap with summaries, hands out aligned prefixes and single addresses without locks, applies
//! the cloud's rules (reserved addresses, subnet CIDR reservations) and says *why* a request
//! failed: [`SubnetError::InsufficientCidrBlocks`] (fragmentation: addresses are free but no
//! aligned block is) is told apart from [`SubnetError::InsufficientFreeAddressesInSubnet`], and
//! [`Subnet::explain_prefix_failure`] names the allocations that spoil the candidate blocks.
//!
//! The node side ([`Node`]) holds what the cloud attached to one instance (interfaces, /28 and /80
//! prefixes, secondary addresses, within the [`InstanceLimits`](limits::InstanceLimits) of its
//! type) and assigns pod addresses from it by key, idempotently, with cooldown and deterministic
//! packing.
//!
//! The rest is grouped by job:
//! - [`limits`]: the embedded instance-type table and the max-pods formula;
//! - [`planner`]: warm-pool settings and the plan of cloud actions they call for ([`planner::plan`]);
//! - [`provider`]: carrying a plan out through the cloud ([`provider::execute`], the
//!   [`Provider`](provider::Provider) trait, an in-process [`LocalProvider`](provider::LocalProvider));
//! - [`persist`]: checkpoints of nodes and subnets, durable writes, the VPC CNI's
//!   `vpc-cni-ipam/1` import;
//! - [`cards`]: instances with several network cards, one node per managed card;
//! - [`defrag`]: the cheapest moves that give aligned /28s back to a subnet, and the prefix
//!   reservations that keep them free.
//!
//! The rules pdipam follows (reserved addresses, slots, max pods, warm-pool precedence,
//! cooldown, error words) are in the repository's `docs/rules.md`.
//!
//! ```
//! use pdipam::{Origin, ReservationKind, Subnet};
//!
//! let subnet = Subnet::new("10.1.0.0/20".parse()?)?;
//! subnet.add_reservation("10.1.4.0/22".parse()?, ReservationKind::Prefix)?;
//! let p = subnet.allocate_prefix(28)?; // comes from the prefix reservation
//! assert_eq!(p.cidr.to_string(), "10.1.4.0/28");
//! assert_eq!(p.origin, Origin::Reservation("10.1.4.0/22".parse()?));
//! let ip = subnet.allocate_ip()?; // single addresses never land in a reservation
//! assert_eq!(ip.to_string(), "10.1.0.4");
//! let stats = subnet.stats();
//! assert_eq!(stats.free_blocks_of(28), 253); // 256, less the two holding reserved addresses, less p
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cards;
pub mod defrag;
pub mod limits;
mod node;
pub mod persist;
pub mod planner;
pub mod provider;
mod space;
mod subnet;
mod sync;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use node::{
    AddressMode, Assignment, BlockKind, BlockSnapshot, Capacity, Clock, CloudDiff, GcPolicy,
    GcReport, Held, InterfaceFlags, InterfaceSnapshot, InterfaceSpec, IpFamily, ManualClock, Node,
    NodeConfig, NodeError, NodeInvariantViolation, NodeSnapshot, ObservedInterface, PodInfo,
    PodKey, PodMetadata, PodRequest, Released, SystemClock, Timestamp, MIGRATED_IF_NAME,
    MIGRATED_NETWORK_NAME, RECONCILE_COOLDOWN,
};
pub use subnet::{
    Allocation, FreeBlocks, Holder, InvariantViolation, Origin, Placement, PrefixFailure,
    Reservation, ReservationKind, ReservedProfile, Spoiler, Subnet, SubnetError, SubnetOptions,
    SubnetStats,
};
