//! Mapping between a subnet's CIDRs and addresses and the units of its bitmap.

use super::error::SubnetError;
use crate::space::{Run, Unit};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Smallest and largest accepted IPv4 subnet lengths.
pub(crate) const V4_LENGTHS: (u8, u8) = (8, 30);
/// Smallest and largest accepted IPv6 subnet lengths.
pub(crate) const V6_LENGTHS: (u8, u8) = (44, 64);
/// IPv6 is tracked per /80: one unit is one /80.
pub(crate) const V6_UNIT_LEN: u8 = 80;

/// A subnet's shape: its CIDR, the prefix length of one unit, and the number of units.
///
/// The CIDR has no host bits ([`Geometry::new`] checks), so its address is its network address:
/// the methods below use `addr()`, which reads a field, where `network()` would mask it again
/// on every allocation and release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) cidr: IpNet,
    /// The CIDR's prefix length, without a match on its family.
    pub(crate) len: u8,
    pub(crate) unit_len: u8,
    pub(crate) log2_units: u32,
}

impl Geometry {
    /// Checks the subnet itself: an accepted length, no host bits.
    pub(crate) fn new(cidr: IpNet) -> Result<Self, SubnetError> {
        let ((min, max), unit_len) = match cidr {
            IpNet::V4(_) => (V4_LENGTHS, 32),
            IpNet::V6(_) => (V6_LENGTHS, V6_UNIT_LEN),
        };
        if cidr.prefix_len() < min || cidr.prefix_len() > max {
            return Err(SubnetError::SubnetLength { cidr, min, max });
        }
        if cidr.addr() != cidr.network() {
            return Err(SubnetError::Misaligned {
                cidr,
                network: cidr.trunc(),
            });
        }
        Ok(Self {
            cidr,
            len: cidr.prefix_len(),
            unit_len,
            log2_units: (unit_len - cidr.prefix_len()) as u32,
        })
    }

    /// Number of units.
    pub(crate) fn units(&self) -> u64 {
        1 << self.log2_units
    }

    pub(crate) fn is_v4(&self) -> bool {
        matches!(self.cidr, IpNet::V4(_))
    }

    /// The unit holding `addr`, or an error naming it if it is of the other family or outside.
    pub(crate) fn unit_of(&self, addr: IpAddr) -> Result<Unit, SubnetError> {
        let as_net = IpNet::from(addr);
        match (self.cidr, addr) {
            (IpNet::V4(net), IpAddr::V4(a)) if net.contains(&a) => {
                Ok(Unit((u32::from(a) - u32::from(net.addr())) as u64))
            }
            (IpNet::V6(net), IpAddr::V6(a)) if net.contains(&a) => Ok(Unit(
                ((u128::from(a) - u128::from(net.addr())) >> 48) as u64,
            )),
            (IpNet::V4(_), IpAddr::V4(_)) | (IpNet::V6(_), IpAddr::V6(_)) => {
                Err(SubnetError::OutsideSubnet {
                    cidr: as_net,
                    subnet: self.cidr,
                })
            }
            _ => Err(SubnetError::WrongFamily {
                cidr: as_net,
                subnet: self.cidr,
            }),
        }
    }

    /// The first address of `unit`.
    pub(crate) fn addr_of(&self, unit: Unit) -> IpAddr {
        match self.cidr {
            IpNet::V4(net) => IpAddr::V4(Ipv4Addr::from(u32::from(net.addr()) + unit.0 as u32)),
            IpNet::V6(net) => IpAddr::V6(Ipv6Addr::from(
                u128::from(net.addr()) + ((unit.0 as u128) << 48),
            )),
        }
    }

    /// The CIDR of `run`.
    pub(crate) fn net_of(&self, run: Run) -> IpNet {
        let len = self.unit_len - run.log2;
        // Lengths come from validated runs: unit_len - log2 is never above 32 / 128.
        match self.addr_of(run.start) {
            IpAddr::V4(a) => IpNet::V4(Ipv4Net::new_assert(a, len)),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new_assert(a, len)),
        }
    }

    /// Checks a prefix length for this subnet and returns `n` (the run is `2^n` units).
    pub(crate) fn run_log2(&self, len: u8) -> Result<u8, SubnetError> {
        let min = self.len;
        if len < min || len > self.unit_len {
            return Err(SubnetError::PrefixLength {
                len,
                min,
                max: self.unit_len,
                subnet: self.cidr,
            });
        }
        Ok(self.unit_len - len)
    }

    /// The run of a CIDR inside the subnet: same family, aligned, inside, a trackable length
    /// (checked in that order, so the error names the first thing wrong). Integer arithmetic
    /// only: this runs on every manual claim and every release.
    ///
    /// Inline, a CIDR that passes every check costs a dozen instructions; anything else goes to
    /// [`Self::run_of_checked`], which finds the first thing wrong. (Out of line, with its
    /// error-sized result passed through memory, the whole check took about 60 per release.)
    #[inline]
    pub(crate) fn run_of(&self, cidr: IpNet) -> Result<Run, SubnetError> {
        // `self.len` is 8..=30 (IPv4) or 44..=64 (IPv6), so the shifts below are in range; a
        // length at least the subnet's with no address bit outside it is inside; no bit below
        // the length is aligned. Together they are exactly the success of `run_of_checked`.
        match (self.cidr, cidr) {
            (IpNet::V4(net), IpNet::V4(c)) => {
                let (a, len) = (u32::from(c.addr()), c.prefix_len());
                let off = a.wrapping_sub(u32::from(net.addr()));
                let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                if len >= self.len && off >> (32 - self.len) == 0 && a & host == 0 {
                    return Ok(Run {
                        start: Unit(u64::from(off)),
                        log2: 32 - len,
                    });
                }
            }
            (IpNet::V6(net), IpNet::V6(c)) => {
                let (a, len) = (u128::from(c.addr()), c.prefix_len());
                let off = a.wrapping_sub(u128::from(net.addr()));
                if len >= self.len
                    && len <= V6_UNIT_LEN
                    && off >> (128 - self.len) == 0
                    && a & (u128::MAX >> len) == 0
                {
                    return Ok(Run {
                        start: Unit((off >> (128 - V6_UNIT_LEN)) as u64),
                        log2: V6_UNIT_LEN - len,
                    });
                }
            }
            _ => {}
        }
        self.run_of_checked(cidr)
    }

    /// [`Self::run_of`] with every check in order, for the CIDRs its quick test does not pass.
    #[cold]
    #[inline(never)]
    fn run_of_checked(&self, cidr: IpNet) -> Result<Run, SubnetError> {
        match (self.cidr, cidr) {
            (IpNet::V4(net), IpNet::V4(c)) => {
                // u32 arithmetic: releases and manual claims of IPv4 CIDRs pass through here.
                let host = |l: u8| u32::MAX.checked_shr(l as u32).unwrap_or(0);
                self.check_run(cidr, u32::from(c.addr()) & host(c.prefix_len()) != 0, {
                    let outside = c.prefix_len() < net.prefix_len()
                        || (u32::from(c.addr()) ^ u32::from(net.addr())) & !host(net.prefix_len())
                            != 0;
                    (
                        outside,
                        (u32::from(c.addr()).wrapping_sub(u32::from(net.addr()))) as u64,
                    )
                })
            }
            (IpNet::V6(net), IpNet::V6(c)) => {
                let host = |l: u8| u128::MAX.checked_shr(l as u32).unwrap_or(0);
                let (a, base) = (u128::from(c.addr()), u128::from(net.addr()));
                self.check_run(cidr, a & host(c.prefix_len()) != 0, {
                    let outside = c.prefix_len() < net.prefix_len()
                        || (a ^ base) & !host(net.prefix_len()) != 0;
                    (
                        outside,
                        (a.wrapping_sub(base) >> (128 - V6_UNIT_LEN)) as u64,
                    )
                })
            }
            _ => Err(SubnetError::WrongFamily {
                cidr,
                subnet: self.cidr,
            }),
        }
    }

    /// The shared tail of [`Self::run_of`]: errors in order (misaligned, outside, length), else
    /// the run starting at unit `start`.
    #[inline]
    fn check_run(
        &self,
        cidr: IpNet,
        misaligned: bool,
        (outside, start): (bool, u64),
    ) -> Result<Run, SubnetError> {
        if misaligned {
            return Err(SubnetError::Misaligned {
                cidr,
                network: cidr.trunc(),
            });
        }
        if outside {
            return Err(SubnetError::OutsideSubnet {
                cidr,
                subnet: self.cidr,
            });
        }
        let len = cidr.prefix_len();
        if len > self.unit_len {
            return Err(SubnetError::PrefixLength {
                len,
                min: self.cidr.prefix_len(),
                max: self.unit_len,
                subnet: self.cidr,
            });
        }
        Ok(Run {
            start: Unit(start),
            log2: self.unit_len - len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_ipv4_and_ipv6() {
        let g = Geometry::new("10.0.0.0/24".parse().unwrap()).unwrap();
        assert_eq!(g.units(), 256);
        let r = g.run_of("10.0.0.208/28".parse().unwrap()).unwrap();
        assert_eq!((r.start, r.log2), (Unit(208), 4));
        assert_eq!(g.net_of(r).to_string(), "10.0.0.208/28");
        let g6 = Geometry::new("2001:db8::/64".parse().unwrap()).unwrap();
        assert_eq!(g6.units(), 65536);
        let r = g6.run_of("2001:db8:0:0:5::/80".parse().unwrap()).unwrap();
        assert_eq!((r.start, r.log2), (Unit(5), 0));
        assert_eq!(g6.net_of(r).to_string(), "2001:db8:0:0:5::/80");
    }

    #[test]
    fn rejects_with_the_offending_value() {
        let g = Geometry::new("10.0.0.0/24".parse().unwrap()).unwrap();
        let bad: IpNet = "10.0.0.4/28".parse().unwrap();
        assert!(matches!(g.run_of(bad), Err(SubnetError::Misaligned { cidr, .. }) if cidr == bad));
        assert!(matches!(
            g.run_of("10.0.1.0/28".parse().unwrap()),
            Err(SubnetError::OutsideSubnet { .. })
        ));
        assert!(matches!(
            g.run_of("10.0.0.0/16".parse().unwrap()),
            Err(SubnetError::OutsideSubnet { .. })
        ));
        assert!(matches!(
            g.run_of("::/64".parse().unwrap()),
            Err(SubnetError::WrongFamily { .. })
        ));
        assert!(matches!(
            Geometry::new("10.0.0.0/31".parse().unwrap()),
            Err(SubnetError::SubnetLength { .. })
        ));
        assert!(matches!(
            Geometry::new("2001:db8::/40".parse().unwrap()),
            Err(SubnetError::SubnetLength { .. })
        ));
    }

    #[test]
    fn the_quick_test_agrees_with_every_check() {
        // Every length, at addresses around and inside each subnet (aligned and not), in both
        // families: `run_of`'s quick test must accept exactly what the ordered checks accept.
        let subnets = [
            "10.0.0.0/8",
            "10.20.0.0/16",
            "10.20.30.0/24",
            "10.20.30.4/30",
            "2001:db8::/44",
            "2001:db8:0:ab00::/56",
            "2001:db8::/64",
        ];
        for subnet in subnets {
            let g = Geometry::new(subnet.parse().unwrap()).unwrap();
            let (base, bits, max) = match g.cidr {
                IpNet::V4(n) => (u128::from(u32::from(n.addr())), 32u32, u128::from(u32::MAX)),
                IpNet::V6(n) => (u128::from(n.addr()), 128, u128::MAX),
            };
            let size = 1u128 << (bits - u32::from(g.len));
            let unit = 1u128 << (bits - u32::from(g.unit_len));
            let addrs = [
                0,
                max,
                base,
                base + unit,
                base + 16 * unit,
                base + 3 * unit,
                base + size / 2,
                base + size - unit,
                base + size,
                base.wrapping_sub(unit),
                base ^ (1 << (bits - 1)),
            ];
            for &a in &addrs {
                for len in 0..=bits as u8 {
                    let cidr = match g.cidr {
                        IpNet::V4(_) => {
                            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(a as u32), len))
                        }
                        IpNet::V6(_) => IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(a), len)),
                    };
                    assert_eq!(g.run_of(cidr), g.run_of_checked(cidr), "{cidr} in {subnet}");
                }
            }
            let other: IpNet = if g.is_v4() { "::/64" } else { "10.0.0.0/28" }
                .parse()
                .unwrap();
            assert_eq!(g.run_of(other), g.run_of_checked(other));
        }
    }
}
