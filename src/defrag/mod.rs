//! Defragmentation: the cheapest set of moves that gives aligned blocks (/28s by default) back
//! to a subnet, and the prefix reservations that keep them free.
//!
//! A pure function ([`plan`]) of the subnet, who holds each address with what moving it costs
//! ([`HolderCost`]), the existing reservations and a [`Goal`]. It chooses aligned regions (a
//! /28, a /27, ... each to become one prefix reservation) so that the goal's blocks lie free in
//! reservations afterwards, at the least total [`Cost`]: fewer pods moved first, then fewer
//! interfaces detached, then fewer reservations created; ties beyond those three are broken the
//! same way every time, favouring blocks at lower addresses (not a strict order of addresses). A dynamic program over the tree of aligned blocks finds it exactly: for
//! each block, the cheapest way to get *k* free blocks inside it is either the
//! block whole as one region, or the best split of *k* between its two halves.
//!
//! What the planner takes as given:
//! - a region never covers an existing reservation (it would not be a new one) nor a holder
//!   that cannot move ([`MoveCost::Pinned`]): the addresses the subnet reserves, a delegated
//!   prefix, an instance's primary address, requester-managed interfaces, unknown holders;
//! - free blocks inside existing prefix reservations count toward the goal at no cost;
//! - every pod moved needs a free address outside the regions and outside explicit
//!   reservations: the plan says whether there is room ([`Plan::room`]).

mod dp;

use ipnet::{IpNet, Ipv4Net};
use std::fmt;
use std::net::Ipv4Addr;

/// What moving one holder costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MoveCost {
    /// It can move: the pods restarted and the interfaces detached (both zero for an idle
    /// secondary address, which is simply unassigned).
    Move {
        /// Pods restarted.
        pods: u32,
        /// Interfaces detached.
        interfaces: u32,
    },
    /// It cannot move.
    Pinned(PinReason),
}

/// Why a holder cannot move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PinReason {
    /// An address the subnet reserves (the first four and the last).
    SubnetReserved,
    /// A delegated prefix (moving one is not planned: its pods would all restart).
    Prefix,
    /// The primary address of an instance's primary interface.
    InstancePrimary,
    /// An interface the requester manages (a load balancer, a NAT gateway, Lambda).
    RequesterManaged,
    /// Nobody known holds it.
    Unknown,
}

impl fmt::Display for PinReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinReason::SubnetReserved => "reserved by the subnet",
            PinReason::Prefix => "a delegated prefix",
            PinReason::InstancePrimary => "the primary address of an instance",
            PinReason::RequesterManaged => "a requester-managed interface",
            PinReason::Unknown => "an unknown holder",
        })
    }
}

/// One holder of addresses in the subnet and what moving it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HolderCost {
    /// What it holds: one address (a /32) or a prefix.
    pub held: Ipv4Net,
    /// What moving it costs.
    pub cost: MoveCost,
}

/// An existing reservation of the subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExistingReservation {
    /// Its CIDR.
    pub cidr: Ipv4Net,
    /// `true` for a prefix reservation (its free blocks count toward the goal), `false` for an
    /// explicit one (no moved address may go there).
    pub prefix: bool,
}

/// How many aligned blocks of which length to get back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Goal {
    /// Blocks wanted free inside prefix reservations after the plan.
    pub blocks: u32,
    /// Their prefix length (28 for the /28s prefix delegation needs).
    pub len: u8,
}

/// The cost of a plan or a region, compared in this order: pods, interfaces, reservations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cost {
    /// Pods restarted.
    pub pods: u64,
    /// Interfaces detached.
    pub interfaces: u64,
    /// Prefix reservations created.
    pub reservations: u64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            pods: self.pods + o.pods,
            interfaces: self.interfaces + o.interfaces,
            reservations: self.reservations + o.reservations,
        }
    }
}

/// One region to reserve, and what must leave it first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// The aligned block, to become a prefix reservation.
    pub cidr: Ipv4Net,
    /// The holders to move out, in address order.
    pub moves: Vec<HolderCost>,
    /// Its cost (one reservation included).
    pub cost: Cost,
    /// Goal-sized blocks it gives.
    pub blocks: u32,
}

/// Whether the pods moved have somewhere to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// Addresses the moved pods need.
    pub needed: u64,
    /// Free addresses outside the regions and outside explicit reservations.
    pub available: u64,
}

impl Room {
    /// Whether every moved pod finds an address.
    pub fn fits(&self) -> bool {
        self.needed <= self.available
    }
}

/// A defragmentation plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The goal asked for.
    pub goal: Goal,
    /// Goal-sized blocks already free inside prefix reservations.
    pub already: u32,
    /// The regions to reserve, in address order.
    pub regions: Vec<Region>,
    /// The total cost.
    pub cost: Cost,
    /// Goal-sized blocks free inside prefix reservations once the plan is carried out.
    pub after: u32,
    /// Whether `after` reaches the goal.
    pub met: bool,
    /// Where the moved pods go.
    pub room: Room,
    /// When the goal is not met: the holders that cannot move, in blocks that are not free,
    /// outside existing reservations (what stops more blocks coming back).
    pub pinned: Vec<HolderCost>,
}

/// Why the input cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefragError {
    /// The goal's block length is shorter than the subnet's or longer than /32.
    #[error("blocks of /{len} do not fit in {subnet}")]
    BlockLength {
        /// The subnet.
        subnet: Ipv4Net,
        /// The length asked for.
        len: u8,
    },
    /// The subnet has more blocks of that length than the planner takes (2^16).
    #[error("{subnet} has more than 65536 blocks of /{len}")]
    TooManyBlocks {
        /// The subnet.
        subnet: Ipv4Net,
        /// The length asked for.
        len: u8,
    },
    /// A holder or reservation lies outside the subnet.
    #[error("{cidr} is not inside {subnet}")]
    Outside {
        /// The subnet.
        subnet: Ipv4Net,
        /// The CIDR at fault.
        cidr: IpNet,
    },
    /// Two holders overlap.
    #[error("{first} and {second} overlap")]
    Overlap {
        /// One holder.
        first: Ipv4Net,
        /// The other.
        second: Ipv4Net,
    },
}

/// The cheapest plan for `goal` (see the module docs).
///
/// # Errors
/// [`DefragError`] naming the offending value; nothing is planned then.
pub fn plan(
    subnet: Ipv4Net,
    holders: &[HolderCost],
    reservations: &[ExistingReservation],
    goal: Goal,
) -> Result<Plan, DefragError> {
    let subnet = subnet.trunc();
    if goal.len < subnet.prefix_len() || goal.len > 32 {
        return Err(DefragError::BlockLength {
            subnet,
            len: goal.len,
        });
    }
    if goal.len - subnet.prefix_len() > 16 {
        return Err(DefragError::TooManyBlocks {
            subnet,
            len: goal.len,
        });
    }
    let outside = |c: Ipv4Net| DefragError::Outside {
        subnet,
        cidr: IpNet::V4(c),
    };
    for h in holders {
        if !subnet.contains(&h.held) {
            return Err(outside(h.held));
        }
    }
    for r in reservations {
        if !subnet.contains(&r.cidr) {
            return Err(outside(r.cidr));
        }
    }
    let mut sorted: Vec<HolderCost> = holders.to_vec();
    sorted.sort_by_key(|h| (u32::from(h.held.network()), h.held.prefix_len()));
    for w in sorted.windows(2) {
        if w[0].held.contains(&w[1].held.network()) {
            return Err(DefragError::Overlap {
                first: w[0].held,
                second: w[1].held,
            });
        }
    }
    Ok(dp::solve(subnet, &sorted, reservations, goal))
}

/// The first address of `net` as a number.
fn start(net: Ipv4Net) -> u32 {
    u32::from(net.network())
}

/// The last address of `net` as a number.
fn end(net: Ipv4Net) -> u32 {
    u32::from(net.broadcast())
}

/// The aligned block of `len` whose index is `i` within `subnet`.
fn block(subnet: Ipv4Net, len: u8, i: u32) -> Ipv4Net {
    let size = 1u64 << (32 - len);
    let first = u64::from(start(subnet)) + u64::from(i) * size;
    Ipv4Net::new(Ipv4Addr::from(first as u32), len).expect("length checked")
}
