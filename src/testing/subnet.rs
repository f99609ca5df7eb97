//! The naive model of [`Subnet`](crate::Subnet).
//!
//! [`NaiveSubnet`] implements the documented behaviour of [`Subnet`](crate::Subnet) the obvious
//! way: allocation records in a `BTreeMap`, used units in a flat bit set, and every placement rule
//! written out from its definition with linear scans. It shares only CIDR validation and the
//! error and result types with the real structure, so a disagreement points at a real bug.

use crate::space::{Run, Unit};
use crate::subnet::Geometry;
use crate::{
    Allocation, FreeBlocks, Holder, Origin, Placement, Reservation, ReservationKind,
    ReservedProfile, SubnetError, SubnetOptions, SubnetStats,
};
use bitvec::prelude::*;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

/// Unit ranges searched in order.
type Domain = Vec<Range<u64>>;

/// The obvious implementation of [`Subnet`](crate::Subnet)'s contract.
#[derive(Clone, Debug)]
pub struct NaiveSubnet {
    geo: Geometry,
    options: SubnetOptions,
    /// start unit -> log2 of the run length.
    allocs: BTreeMap<u64, u8>,
    used: BitVec<u64, Lsb0>,
    reserved: Vec<u64>,
    /// (reservation, first unit, units), sorted by first unit.
    reservations: Vec<(Reservation, u64, u64)>,
    rng: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    Broken16,
    Partial,
    Empty,
}

impl NaiveSubnet {
    /// Same contract as [`Subnet::with_options`](crate::Subnet::with_options).
    pub fn with_options(cidr: IpNet, options: SubnetOptions) -> Result<Self, SubnetError> {
        let geo = Geometry::new(cidr)?;
        let units = geo.units();
        let last = units - 1;
        let mut reserved = match (options.profile, geo.is_v4()) {
            (ReservedProfile::None, _) => vec![],
            (ReservedProfile::Aws, true) => vec![0, 1, 2, 3, last],
            _ => vec![0, last],
        };
        reserved.dedup(); // a /30: the last address is also one of the first four
        let mut m = Self {
            geo,
            options,
            allocs: BTreeMap::new(),
            used: bitvec![u64, Lsb0; 0; units as usize],
            reserved: reserved.clone(),
            reservations: Vec::new(),
            rng: match options.placement {
                Placement::Random { seed } => seed,
                _ => 0,
            },
        };
        for u in reserved {
            m.take(u, 0);
        }
        Ok(m)
    }

    fn units(&self) -> u64 {
        self.geo.units()
    }

    fn take(&mut self, start: u64, log2: u8) {
        for u in start..start + (1 << log2) {
            assert!(!self.used[u as usize], "model double allocation");
            self.used.set(u as usize, true);
        }
        self.allocs.insert(start, log2);
    }

    fn is_used(&self, u: u64) -> bool {
        u >= self.units() || self.used[u as usize]
    }

    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Used bits of word `w` with every unit outside `range` (or the subnet) counted as used.
    fn view(&self, w: u64, range: &Range<u64>) -> u64 {
        let mut v = 0u64;
        for i in 0..64 {
            let u = w * 64 + i;
            if !range.contains(&u) || self.is_used(u) {
                v |= 1 << i;
            }
        }
        v
    }

    fn run_free(view: u64, p: u32, n: u32) -> bool {
        (p..p + (1 << n)).all(|i| view & (1u64 << i) == 0)
    }

    fn positions(view: u64, n: u32) -> Vec<u32> {
        (0..64)
            .step_by(1 << n)
            .filter(|&p| Self::run_free(view, p, n))
            .collect()
    }

    fn choose(tier: Tier, view: u64, n: u32) -> Option<u32> {
        match tier {
            Tier::Broken16 => {
                let mut best: Option<(u32, u32)> = None;
                for b in 0..4 {
                    let c = (0..16)
                        .filter(|i| view & (1u64 << (b * 16 + i)) != 0)
                        .count() as u32;
                    if c > 0 && c < 16 && best.is_none_or(|(bc, _)| c > bc) {
                        best = Some((c, b));
                    }
                }
                let (_, b) = best?;
                (b * 16..b * 16 + 16).find(|&i| view & (1u64 << i) == 0)
            }
            Tier::Partial => {
                if view == 0 || view == u64::MAX {
                    return None;
                }
                // Best fit: the candidate inside the smallest entirely free aligned block.
                Self::positions(view, n).into_iter().min_by_key(|&p| {
                    let biggest = (n..=6)
                        .filter(|&m| Self::run_free(view, p & !((1 << m) - 1), m))
                        .max()
                        .unwrap_or(n);
                    (biggest, p)
                })
            }
            Tier::Empty => (view == 0).then_some(0),
        }
    }

    fn words_of(range: &Range<u64>) -> Range<u64> {
        if range.is_empty() {
            return 0..0;
        }
        range.start / 64..(range.end - 1) / 64 + 1
    }

    fn pack(&self, n: u32, domain: &[Range<u64>]) -> Option<u64> {
        if n > 6 {
            return self.first_from(n, domain, 0);
        }
        let tiers: &[Tier] = match n {
            0 => &[Tier::Broken16, Tier::Partial, Tier::Empty],
            6 => &[Tier::Empty],
            _ => &[Tier::Partial, Tier::Empty],
        };
        for &t in tiers {
            for r in domain {
                for w in Self::words_of(r) {
                    if let Some(p) = Self::choose(t, self.view(w, r), n) {
                        return Some(w * 64 + p as u64);
                    }
                }
            }
        }
        None
    }

    fn first_from(&self, n: u32, domain: &[Range<u64>], r: u64) -> Option<u64> {
        let total: u64 = domain.iter().map(|d| d.end - d.start).sum();
        if total == 0 {
            return None;
        }
        let mut off = r % total;
        let mut k = 0;
        while off >= domain[k].end - domain[k].start {
            off -= domain[k].end - domain[k].start;
            k += 1;
        }
        let at = domain[k].start + off;
        let from = (at & !((1u64 << n) - 1)).max(domain[k].start);
        let mut order: Vec<Range<u64>> = std::iter::once(from..domain[k].end).collect();
        order.extend(domain[k + 1..].iter().cloned());
        order.extend(domain[..k].iter().cloned());
        order.push(domain[k].start..from);
        let size = 1u64 << n;
        for sub in order {
            let mut s = sub.start.next_multiple_of(size);
            while s + size <= sub.end {
                if (s..s + size).all(|u| !self.is_used(u)) {
                    return Some(s);
                }
                s += size;
            }
        }
        None
    }

    fn place(&mut self, n: u32, domain: &[Range<u64>], r: Option<u64>) -> Option<u64> {
        let got = match r {
            None => self.pack(n, domain),
            Some(r) => self.first_from(n, domain, r),
        }?;
        self.take(got, n as u8);
        Some(got)
    }

    fn start_point(&mut self) -> Option<u64> {
        match self.options.placement {
            Placement::Pack => None,
            Placement::FirstFit => Some(0),
            Placement::Random { .. } => Some(self.next_random()),
        }
    }

    /// (prefix reservations, unreserved space), or `None` without reservations.
    fn domains(&self) -> Option<(Domain, Domain)> {
        if self.reservations.is_empty() {
            return None;
        }
        let prefix = self
            .reservations
            .iter()
            .filter(|(r, _, _)| r.kind == ReservationKind::Prefix)
            .map(|&(_, s, l)| s..s + l)
            .collect();
        let mut unreserved = Vec::new();
        let mut at = 0;
        for &(_, s, l) in &self.reservations {
            if s > at {
                unreserved.push(at..s);
            }
            at = s + l;
        }
        if at < self.units() {
            unreserved.push(at..self.units());
        }
        Some((prefix, unreserved))
    }

    fn free_in(&self, ranges: &[Range<u64>]) -> u64 {
        ranges
            .iter()
            .flat_map(|r| r.clone())
            .filter(|&u| !self.is_used(u))
            .count() as u64
    }

    /// Same contract as [`Subnet::allocate_prefix`](crate::Subnet::allocate_prefix).
    pub fn allocate_prefix(&mut self, len: u8) -> Result<Allocation, SubnetError> {
        let n = self.geo.run_log2(len)? as u32;
        let r = self.start_point();
        let whole: Domain = std::iter::once(0..self.units()).collect();
        let (found, searched) = match self.domains() {
            None => (
                self.place(n, &whole, r).map(|u| (u, Origin::Unreserved)),
                whole.to_vec(),
            ),
            Some((prefix, unreserved)) => {
                let mut found = None;
                if !prefix.is_empty() {
                    found = self.place(n, &prefix, r).map(|u| {
                        let res = self
                            .reservations
                            .iter()
                            .find(|(_, s, l)| (*s..s + l).contains(&u))
                            .expect("inside a reservation");
                        (u, Origin::Reservation(res.0.cidr))
                    });
                }
                let fall_back = prefix.is_empty() || self.options.fallback_to_unreserved;
                if found.is_none() && fall_back && !unreserved.is_empty() {
                    let origin = if prefix.is_empty() {
                        Origin::Unreserved
                    } else {
                        Origin::Fallback
                    };
                    found = self.place(n, &unreserved, r).map(|u| (u, origin));
                }
                let mut searched = prefix;
                if fall_back {
                    searched.extend(unreserved);
                }
                (found, searched)
            }
        };
        match found {
            Some((u, origin)) => Ok(Allocation {
                cidr: self.geo.net_of(Run {
                    start: Unit(u),
                    log2: n as u8,
                }),
                origin,
            }),
            None => {
                let needed = 1u64 << n;
                Err(if self.free_in(&searched) >= needed {
                    SubnetError::InsufficientCidrBlocks {
                        subnet: self.geo.cidr,
                        len,
                    }
                } else {
                    SubnetError::InsufficientFreeAddressesInSubnet {
                        subnet: self.geo.cidr,
                        needed,
                    }
                })
            }
        }
    }

    /// Same contract as [`Subnet::allocate_ip`](crate::Subnet::allocate_ip).
    pub fn allocate_ip(&mut self) -> Result<IpAddr, SubnetError> {
        if !self.geo.is_v4() {
            return Err(SubnetError::NotIpv4 {
                subnet: self.geo.cidr,
            });
        }
        let r = self.start_point();
        let domain = match self.domains() {
            None => std::iter::once(0..self.units()).collect(),
            Some((_, unreserved)) => unreserved,
        };
        match self.place(0, &domain, r) {
            Some(u) => Ok(self.geo.addr_of(Unit(u))),
            None => Err(SubnetError::InsufficientFreeAddressesInSubnet {
                subnet: self.geo.cidr,
                needed: 1,
            }),
        }
    }

    fn reserved_in(&self, cidr: IpNet, run: Run) -> Result<(), SubnetError> {
        match self.reserved.iter().find(|u| run.range().contains(u)) {
            Some(&u) => Err(SubnetError::ReservedAddress {
                cidr,
                addr: self.geo.addr_of(Unit(u)),
                profile: self.options.profile.name(),
            }),
            None => Ok(()),
        }
    }

    fn holder_of(&self, start: u64, log2: u8) -> Holder {
        let addr = self.geo.addr_of(Unit(start));
        if log2 == 0 && self.reserved.contains(&start) {
            Holder::Reserved(addr)
        } else if log2 == 0 && self.geo.is_v4() {
            Holder::Address(addr)
        } else {
            Holder::Prefix(self.geo.net_of(Run {
                start: Unit(start),
                log2,
            }))
        }
    }

    fn allocation_at(&self, u: u64) -> Option<(u64, u8)> {
        let (&s, &l) = self.allocs.range(..=u).next_back()?;
        (u < s + (1 << l)).then_some((s, l))
    }

    fn first_holder_in(&self, run: Run) -> Option<Holder> {
        let u = run.range().find(|&u| self.is_used(u))?;
        let (s, l) = self.allocation_at(u)?;
        Some(self.holder_of(s, l))
    }

    /// Same contract as [`Subnet::allocate_prefix_at`](crate::Subnet::allocate_prefix_at).
    pub fn allocate_prefix_at(&mut self, cidr: IpNet) -> Result<(), SubnetError> {
        let run = self.geo.run_of(cidr)?;
        self.reserved_in(cidr, run)?;
        if let Some(holder) = self.first_holder_in(run) {
            return Err(SubnetError::AlreadyAllocated { cidr, holder });
        }
        self.take(run.start.0, run.log2);
        Ok(())
    }

    /// Same contract as [`Subnet::allocate_ip_at`](crate::Subnet::allocate_ip_at).
    pub fn allocate_ip_at(&mut self, addr: IpAddr) -> Result<(), SubnetError> {
        if !self.geo.is_v4() {
            return Err(SubnetError::NotIpv4 {
                subnet: self.geo.cidr,
            });
        }
        self.allocate_prefix_at(IpNet::from(addr))
    }

    /// Same contract as [`Subnet::release`](crate::Subnet::release).
    pub fn release(&mut self, cidr: IpNet) -> Result<(), SubnetError> {
        let run = self.geo.run_of(cidr)?;
        self.reserved_in(cidr, run)?;
        if self.allocs.get(&run.start.0) == Some(&run.log2) {
            self.allocs.remove(&run.start.0);
            for u in run.range() {
                self.used.set(u as usize, false);
            }
            return Ok(());
        }
        match self.first_holder_in(run) {
            None => Err(SubnetError::NotAllocated { cidr }),
            Some(holder) => Err(SubnetError::NotOneAllocation { cidr, holder }),
        }
    }

    /// Same contract as [`Subnet::holder`](crate::Subnet::holder).
    pub fn holder(&self, addr: IpAddr) -> Result<Option<Holder>, SubnetError> {
        let u = self.geo.unit_of(addr)?.0;
        Ok(self.allocation_at(u).map(|(s, l)| self.holder_of(s, l)))
    }

    /// Same contract as [`Subnet::is_free`](crate::Subnet::is_free).
    pub fn is_free(&self, cidr: IpNet) -> Result<bool, SubnetError> {
        let run = self.geo.run_of(cidr)?;
        Ok(run.range().all(|u| !self.is_used(u)))
    }

    /// Same contract as [`Subnet::add_reservation`](crate::Subnet::add_reservation).
    pub fn add_reservation(
        &mut self,
        cidr: IpNet,
        kind: ReservationKind,
    ) -> Result<(), SubnetError> {
        let run = self.geo.run_of(cidr)?;
        let (s, l) = (run.start.0, run.len());
        if let Some((r, _, _)) = self
            .reservations
            .iter()
            .find(|(_, rs, rl)| *rs < s + l && s < rs + rl)
        {
            return Err(SubnetError::ReservationOverlap {
                cidr,
                existing: r.cidr,
            });
        }
        self.reservations.push((Reservation { cidr, kind }, s, l));
        self.reservations.sort_by_key(|r| r.1);
        Ok(())
    }

    /// Same contract as [`Subnet::remove_reservation`](crate::Subnet::remove_reservation).
    pub fn remove_reservation(&mut self, cidr: IpNet) -> Result<Reservation, SubnetError> {
        let i = self
            .reservations
            .iter()
            .position(|(r, _, _)| r.cidr == cidr)
            .ok_or(SubnetError::ReservationNotFound {
                cidr,
                subnet: self.geo.cidr,
            })?;
        Ok(self.reservations.remove(i).0)
    }

    /// Same contract as [`Subnet::reservations`](crate::Subnet::reservations).
    pub fn reservations(&self) -> Vec<Reservation> {
        self.reservations.iter().map(|r| r.0).collect()
    }

    /// Same contract as [`Subnet::allocations`](crate::Subnet::allocations).
    pub fn allocations(&self) -> Vec<Holder> {
        self.allocs
            .iter()
            .map(|(&s, &l)| self.holder_of(s, l))
            .collect()
    }

    /// Same contract as [`Subnet::stats`](crate::Subnet::stats), computed by brute force.
    pub fn stats(&self) -> SubnetStats {
        let log2 = self.geo.log2_units;
        let units = self.units();
        let mut free_blocks = Vec::new();
        let mut largest = None;
        let mut count_at = vec![0u64; log2 as usize + 1];
        for n in (0..=log2).rev() {
            let size = 1u64 << n;
            let mut count = 0;
            let mut first = None;
            for b in 0..units / size {
                if (b * size..(b + 1) * size).all(|u| !self.is_used(u)) {
                    count += 1;
                    first.get_or_insert(b * size);
                }
            }
            count_at[n as usize] = count;
            if largest.is_none() {
                largest = first.map(|s| {
                    self.geo.net_of(Run {
                        start: Unit(s),
                        log2: n as u8,
                    })
                });
            }
            free_blocks.push(FreeBlocks {
                len: self.geo.unit_len - n as u8,
                count,
            });
        }
        let used = self.used.count_ones() as u64;
        let free = units - used;
        let in_prefix_res: u64 = self
            .reservations
            .iter()
            .filter(|(r, _, _)| r.kind == ReservationKind::Prefix)
            .map(|&(_, s, l)| self.free_in(std::slice::from_ref(&(s..s + l))))
            .sum();
        let block = 4.min(log2);
        SubnetStats {
            cidr: self.geo.cidr,
            total: units,
            reserved: self.reserved.len() as u64,
            allocated: used - self.reserved.len() as u64,
            free,
            available: free - in_prefix_res,
            free_blocks,
            largest_free_block: largest,
            fragmentation: if free == 0 {
                0.0
            } else {
                1.0 - ((count_at[block as usize] << block) as f64 / free as f64)
            },
        }
    }
}
