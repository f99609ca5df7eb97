//! The subnet layer: CIDRs on top of the bitmap, with the cloud's rules.

mod diagnostics;
mod error;
mod geometry;
mod options;
mod reservation;

pub use diagnostics::{FreeBlocks, PrefixFailure, Spoiler, SubnetStats};
pub use error::{InvariantViolation, SubnetError};
pub use options::{Placement, ReservedProfile, SubnetOptions};
pub use reservation::{Reservation, ReservationKind};

pub(crate) use geometry::Geometry;
pub(crate) use reservation::ReservationSet;

use crate::space::{BlockMap, Run, Shortfall, Strategy, Unit};
use crate::sync::{AtomicU64, Ordering::SeqCst, RwLock};
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

/// Who holds an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    /// Reserved by the subnet's profile (never handed out).
    Reserved(IpAddr),
    /// A single address (IPv4 secondary-address style allocation, or an IPv4 /32).
    Address(IpAddr),
    /// A delegated prefix.
    Prefix(IpNet),
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Reserved(a) => write!(f, "reserved address {a}"),
            Holder::Address(a) => write!(f, "address {a}"),
            Holder::Prefix(p) => write!(f, "prefix {p}"),
        }
    }
}

/// Where an automatic prefix came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// From this prefix reservation.
    Reservation(IpNet),
    /// From unreserved space; the subnet has no prefix reservation.
    Unreserved,
    /// From unreserved space because every prefix reservation was full.
    Fallback,
}

/// A successful automatic prefix allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Allocation {
    /// The prefix.
    pub cidr: IpNet,
    /// Where it came from.
    pub origin: Origin,
}

/// One subnet: its free and allocated space, reservations, placement and diagnostics.
///
/// `Subnet` is `Send + Sync` and every method takes `&self`: allocate and release from as many
/// threads as you like. Prefixes of up to 64 units (an IPv4 /26, or 64 IPv6 /80s) and single
/// addresses are claimed with one compare-and-swap and no lock; larger prefixes and reservation
/// changes take a short lock. A failed call changes nothing. No address is ever handed out twice.
///
/// Calls that read the whole subnet (`stats`, `explain_prefix_failure`, `verify`, `allocations`)
/// see a consistent picture only when no other thread is changing the subnet.
///
/// # Example
/// ```
/// use pdipam::{Subnet, SubnetError};
///
/// let subnet = Subnet::new("10.0.0.0/24".parse().unwrap()).unwrap();
/// let prefix = subnet.allocate_prefix(28).unwrap();
/// assert_eq!(prefix.cidr.to_string(), "10.0.0.16/28"); // .0/28 holds reserved addresses
/// let ip = subnet.allocate_ip().unwrap();
/// assert_eq!(ip.to_string(), "10.0.0.4"); // into the /28 that the reserved .0-.3 already broke
/// subnet.release(prefix.cidr).unwrap();
/// assert!(matches!(subnet.release(prefix.cidr), Err(SubnetError::NotAllocated { .. })));
/// assert_eq!(subnet.stats().free_blocks_of(28), 14);
/// ```
#[derive(Debug)]
pub struct Subnet {
    geo: Geometry,
    options: SubnetOptions,
    map: BlockMap,
    reserved: Vec<u64>,
    reservations: RwLock<ReservationSet>,
    /// Non-zero once any reservation was ever added: lets the hot path skip the lock.
    has_reservations: AtomicU64,
    rng: AtomicU64,
}

impl Subnet {
    /// A subnet with default options (AWS reserved addresses, `Pack`, fallback on).
    ///
    /// # Errors
    /// [`SubnetError::SubnetLength`] outside IPv4 /8-/30 or IPv6 /44-/64;
    /// [`SubnetError::Misaligned`] if `cidr` has host bits set.
    pub fn new(cidr: IpNet) -> Result<Self, SubnetError> {
        Self::with_options(cidr, SubnetOptions::default())
    }

    /// A subnet with the given options. Same errors as [`Subnet::new`].
    pub fn with_options(cidr: IpNet, options: SubnetOptions) -> Result<Self, SubnetError> {
        let geo = Geometry::new(cidr)?;
        let map = BlockMap::new(geo.log2_units);
        let reserved = options.profile.reserved_units(geo.units(), geo.is_v4());
        for &u in &reserved {
            let claimed = map.claim_at(Run {
                start: Unit(u),
                log2: 0,
            });
            debug_assert!(claimed);
        }
        let seed = match options.placement {
            Placement::Random { seed } => seed,
            _ => 0,
        };
        Ok(Self {
            geo,
            options,
            map,
            reserved,
            reservations: RwLock::new(ReservationSet::new(geo.units())),
            has_reservations: AtomicU64::new(0),
            rng: AtomicU64::new(seed),
        })
    }

    /// The subnet's CIDR.
    pub fn cidr(&self) -> IpNet {
        self.geo.cidr
    }

    /// The options it was built with.
    pub fn options(&self) -> SubnetOptions {
        self.options
    }

    /// Prefix length of one tracking unit: 32 for IPv4, 80 for IPv6.
    pub fn unit_len(&self) -> u8 {
        self.geo.unit_len
    }

    fn strategy(&self) -> Strategy {
        match self.options.placement {
            Placement::Pack => Strategy::Pack,
            Placement::FirstFit => Strategy::FirstFrom(0),
            Placement::Random { .. } => Strategy::FirstFrom(splitmix64(&self.rng)),
        }
    }

    /// Runs `f` with the reservation set, skipping the lock while no reservation ever existed.
    fn with_reservations<T>(&self, f: impl FnOnce(Option<&ReservationSet>) -> T) -> T {
        if self.has_reservations.load(SeqCst) == 0 {
            return f(None);
        }
        let set = self.reservations.read();
        if set.is_empty() {
            f(None)
        } else {
            f(Some(&set))
        }
    }

    /// The whole subnet as a search domain (a list of one range).
    fn whole(&self) -> [Range<u64>; 1] {
        #[allow(clippy::single_range_in_vec_init)] // a domain is a list of ranges; this one has one
        [0..self.geo.units()]
    }

    /// Allocates a prefix of length `len`, placed by the subnet's policy, from the prefix
    /// reservations first (then, if allowed, from unreserved space), never from an explicit
    /// reservation.
    ///
    /// # Errors
    /// [`SubnetError::PrefixLength`] if `len` is shorter than the subnet or longer than one unit;
    /// [`SubnetError::InsufficientCidrBlocks`] when enough addresses are free but no aligned
    /// block of that length is ([`Subnet::explain_prefix_failure`] tells why);
    /// [`SubnetError::InsufficientFreeAddressesInSubnet`] when not enough addresses are free.
    ///
    /// Complexity: O(log units) for runs up to 64 units; larger runs scan empty-word summaries.
    pub fn allocate_prefix(&self, len: u8) -> Result<Allocation, SubnetError> {
        let n = self.geo.run_log2(len)? as u32;
        let strategy = self.strategy();
        let cidr = |u: Unit| {
            self.geo.net_of(Run {
                start: u,
                log2: n as u8,
            })
        };
        if self.has_reservations.load(SeqCst) == 0 {
            // The common case takes no lock at all.
            return match self.map.claim_whole(n, strategy) {
                Ok(u) => Ok(Allocation {
                    cidr: cidr(u),
                    origin: Origin::Unreserved,
                }),
                Err(why) => Err(self.shortfall_error(len, n, why)),
            };
        }
        let set = self.reservations.read();
        let prefix = set.prefix_ranges();
        if !prefix.is_empty() {
            if let Some(u) = self.map.claim_auto(n, strategy, prefix) {
                let res = set
                    .prefix_reservation_at(u.0)
                    .expect("claimed inside a prefix reservation");
                return Ok(Allocation {
                    cidr: cidr(u),
                    origin: Origin::Reservation(res),
                });
            }
        }
        let (origin, may_fall_back) = if prefix.is_empty() {
            (Origin::Unreserved, true)
        } else {
            (Origin::Fallback, self.options.fallback_to_unreserved)
        };
        if may_fall_back {
            if let Some(u) = self.map.claim_auto(n, strategy, set.unreserved()) {
                return Ok(Allocation {
                    cidr: cidr(u),
                    origin,
                });
            }
        }
        Err(self.exhausted(len, n, &set.prefix_domain(may_fall_back)))
    }

    fn free_in(&self, ranges: &[Range<u64>]) -> u64 {
        ranges
            .iter()
            .map(|r| (r.end - r.start) - self.map.used_in(r.clone()))
            .sum()
    }

    /// The error for a failed automatic claim of `2^n` units in `domain`: fragmentation if at
    /// least that many units are free there, exhaustion otherwise (bounded scan, O(2^n) words).
    fn exhausted(&self, len: u8, n: u32, domain: &[Range<u64>]) -> SubnetError {
        self.shortfall_error(len, n, self.map.shortfall(domain, 1 << n))
    }

    /// The error for a failed request of a `/len` (`2^n` units).
    fn shortfall_error(&self, len: u8, n: u32, why: Shortfall) -> SubnetError {
        match why {
            Shortfall::Fragmented => SubnetError::InsufficientCidrBlocks {
                subnet: self.geo.cidr,
                len,
            },
            Shortfall::Exhausted => SubnetError::InsufficientFreeAddressesInSubnet {
                subnet: self.geo.cidr,
                needed: 1 << n,
            },
        }
    }

    fn require_v4(&self) -> Result<(), SubnetError> {
        if self.geo.is_v4() {
            Ok(())
        } else {
            Err(SubnetError::NotIpv4 {
                subnet: self.geo.cidr,
            })
        }
    }

    /// Allocates one IPv4 address (secondary-IP mode), placed by the subnet's policy, never
    /// inside a reservation.
    ///
    /// # Errors
    /// [`SubnetError::NotIpv4`] on an IPv6 subnet;
    /// [`SubnetError::InsufficientFreeAddressesInSubnet`] when no unreserved address is free.
    pub fn allocate_ip(&self) -> Result<IpAddr, SubnetError> {
        self.require_v4()?;
        let strategy = self.strategy();
        let found = self.with_reservations(|set| match set {
            None => self.map.claim_auto(0, strategy, &self.whole()),
            Some(set) => self.map.claim_auto(0, strategy, set.unreserved()),
        });
        found
            .map(|u| self.geo.addr_of(u))
            .ok_or(SubnetError::InsufficientFreeAddressesInSubnet {
                subnet: self.geo.cidr,
                needed: 1,
            })
    }

    /// Checks `run` against the reserved-address profile.
    fn check_not_reserved(&self, cidr: IpNet, run: Run) -> Result<(), SubnetError> {
        match self.reserved.iter().find(|u| run.range().contains(u)) {
            Some(&u) => Err(SubnetError::ReservedAddress {
                cidr,
                addr: self.geo.addr_of(Unit(u)),
                profile: self.options.profile.name(),
            }),
            None => Ok(()),
        }
    }

    /// Allocates exactly `cidr` (manual assignment: allowed inside any reservation).
    ///
    /// # Errors
    /// [`SubnetError::WrongFamily`], [`SubnetError::Misaligned`], [`SubnetError::OutsideSubnet`],
    /// [`SubnetError::PrefixLength`] for a bad CIDR; [`SubnetError::ReservedAddress`] if it
    /// holds a reserved address; [`SubnetError::AlreadyAllocated`] naming the holder in the way.
    pub fn allocate_prefix_at(&self, cidr: IpNet) -> Result<(), SubnetError> {
        let run = self.geo.run_of(cidr)?;
        self.check_not_reserved(cidr, run)?;
        if self.map.claim_at(run) {
            return Ok(());
        }
        match self.first_holder_in(run) {
            Some(holder) => Err(SubnetError::AlreadyAllocated { cidr, holder }),
            // Freed between the failed claim and the look: try once more.
            None => self.allocate_prefix_at(cidr),
        }
    }

    /// Allocates exactly the IPv4 address `addr`. Errors as [`Subnet::allocate_prefix_at`],
    /// plus [`SubnetError::NotIpv4`] on an IPv6 subnet.
    pub fn allocate_ip_at(&self, addr: IpAddr) -> Result<(), SubnetError> {
        self.require_v4()?;
        self.allocate_prefix_at(IpNet::from(addr))
    }

    /// Releases exactly one allocation: a prefix, or an address as a /32.
    ///
    /// # Errors
    /// The CIDR errors of [`Subnet::allocate_prefix_at`]; [`SubnetError::ReservedAddress`];
    /// [`SubnetError::NotAllocated`] if nothing in it is allocated;
    /// [`SubnetError::NotOneAllocation`] if it is part of a larger allocation or spans several.
    pub fn release(&self, cidr: IpNet) -> Result<(), SubnetError> {
        let run = self.geo.run_of(cidr)?;
        self.check_not_reserved(cidr, run)?;
        match self.map.release(run) {
            Ok(()) => Ok(()),
            // Which refusal it was is re-derived with the holder the error must name anyway.
            Err(_) => match self.first_holder_in(run) {
                None => Err(SubnetError::NotAllocated { cidr }),
                Some(holder) => Err(SubnetError::NotOneAllocation { cidr, holder }),
            },
        }
    }

    /// Releases the single address `addr`. Errors as [`Subnet::release`].
    pub fn release_ip(&self, addr: IpAddr) -> Result<(), SubnetError> {
        self.release(IpNet::from(addr))
    }

    fn holder_of_run(&self, run: Run) -> Holder {
        let addr = self.geo.addr_of(run.start);
        if run.log2 == 0 && self.reserved.contains(&run.start.0) {
            Holder::Reserved(addr)
        } else if run.log2 == 0 && self.geo.is_v4() {
            Holder::Address(addr)
        } else {
            Holder::Prefix(self.geo.net_of(run))
        }
    }

    /// The lowest allocation overlapping `run`.
    fn first_holder_in(&self, run: Run) -> Option<Holder> {
        let unit = self.map.first_used_in(run.range())?;
        self.map.allocation_at(unit).map(|a| self.holder_of_run(a))
    }

    /// Who holds `addr`, if anyone.
    ///
    /// # Errors
    /// [`SubnetError::WrongFamily`] or [`SubnetError::OutsideSubnet`].
    pub fn holder(&self, addr: IpAddr) -> Result<Option<Holder>, SubnetError> {
        let unit = self.geo.unit_of(addr)?;
        Ok(self
            .map
            .allocation_at(unit)
            .map(|run| self.holder_of_run(run)))
    }

    /// Whether every address of `cidr` is free (unallocated; reservations do not count).
    ///
    /// # Errors
    /// The CIDR errors of [`Subnet::allocate_prefix_at`].
    pub fn is_free(&self, cidr: IpNet) -> Result<bool, SubnetError> {
        let run = self.geo.run_of(cidr)?;
        Ok(self.map.is_free(run.range()))
    }

    /// Adds a reservation. Space already in use stays allocated; automatic assignment follows the
    /// new rules from now on.
    ///
    /// # Errors
    /// The CIDR errors of [`Subnet::allocate_prefix_at`]; [`SubnetError::ReservationOverlap`].
    pub fn add_reservation(&self, cidr: IpNet, kind: ReservationKind) -> Result<(), SubnetError> {
        let run = self.geo.run_of(cidr)?;
        let mut set = self.reservations.write();
        if let Some(existing) = set.overlapping(run) {
            return Err(SubnetError::ReservationOverlap {
                cidr,
                existing: existing.cidr,
            });
        }
        set.insert(Reservation { cidr, kind }, run, self.geo.units());
        self.has_reservations.store(1, SeqCst);
        Ok(())
    }

    /// Removes the reservation with exactly this CIDR; unassigns nothing.
    ///
    /// # Errors
    /// [`SubnetError::ReservationNotFound`].
    pub fn remove_reservation(&self, cidr: IpNet) -> Result<Reservation, SubnetError> {
        self.reservations
            .write()
            .remove(cidr, self.geo.units())
            .ok_or(SubnetError::ReservationNotFound {
                cidr,
                subnet: self.geo.cidr,
            })
    }

    /// The reservations, in address order.
    pub fn reservations(&self) -> Vec<Reservation> {
        self.reservations.read().list()
    }

    /// Every allocation (reserved addresses included), in address order.
    pub fn allocations(&self) -> Vec<Holder> {
        self.map
            .allocations()
            .into_iter()
            .map(|r| self.holder_of_run(r))
            .collect()
    }

    /// Heap bytes this subnet holds (bitmap pages, summaries, directory).
    pub fn heap_bytes(&self) -> usize {
        self.map.heap_bytes()
    }

    /// Checks every invariant: one owner per unit, well-formed allocations, exact summaries and
    /// counters, reserved addresses held, reservations consistent. For tests and fuzzing; linear.
    ///
    /// # Errors
    /// [`InvariantViolation`] describing the first broken invariant (a pdipam bug).
    pub fn verify(&self) -> Result<(), InvariantViolation> {
        self.map.verify()?;
        for &u in &self.reserved {
            let want = Run {
                start: Unit(u),
                log2: 0,
            };
            if self.map.allocation_at(Unit(u)) != Some(want) {
                return Err(format!(
                    "reserved address {} is not held as a single address",
                    self.geo.addr_of(Unit(u))
                )
                .into());
            }
        }
        self.reservations.read().verify(self.geo.units())?;
        Ok(())
    }
}

/// splitmix64 step over a shared state: deterministic per seed from one thread.
fn splitmix64(state: &AtomicU64) -> u64 {
    let mut z = state
        .fetch_add(0x9E37_79B9_7F4A_7C15, SeqCst)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_is_send_and_sync() {
        fn is<T: Send + Sync>() {}
        is::<Subnet>();
    }

    #[test]
    fn verify_finds_a_reserved_address_that_is_not_held() {
        let s = Subnet::new("10.0.0.0/24".parse().unwrap()).unwrap();
        s.verify().unwrap();
        // The public API refuses this release; the map below it does not know what is reserved.
        let network = Run {
            start: Unit(0),
            log2: 0,
        };
        s.map.release(network).unwrap();
        let e = s.verify().unwrap_err();
        assert!(e.to_string().contains("reserved address 10.0.0.0"), "{e}");
    }
}
