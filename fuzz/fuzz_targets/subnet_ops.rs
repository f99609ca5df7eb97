//! Arbitrary operation sequences on `Subnet` and on the naive model: every result compared,
//! `verify()` after every step, statistics compared at the end. IPv4 subnets run from a /30 to a
//! /14, so inputs reach maps of more than one 65,536-unit page (their directory, and runs that
//! span pages) as well as the one-page maps most CNI subnets are.
#![no_main]

use arbitrary::Arbitrary;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use libfuzzer_sys::fuzz_target;
use pdipam::testing::NaiveSubnet;
use pdipam::{Placement, ReservationKind, ReservedProfile, Subnet, SubnetOptions};
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Arbitrary, Debug)]
enum Op {
    Prefix(u8),
    PrefixAt(u32, u8),
    Ip,
    IpAt(u32),
    Release(u32, u8),
    ReleaseHeld(u8),
    Reserve(u32, u8, bool),
    Unreserve(u8),
    Holder(u32),
    IsFree(u32, u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    v6: bool,
    subnet_len: u8,
    profile: u8,
    placement: u8,
    seed: u64,
    fallback: bool,
    ops: Vec<Op>,
}

/// The CIDR of length `len` (taken modulo the family's width, so it may be misaligned, outside
/// the subnet or of the wrong size on purpose) at unit `unit` of the subnet. Units run to twice
/// the subnet's size, so half the raw values land outside it.
fn cidr(subnet: IpNet, unit: u32, len: u8) -> IpNet {
    let unit_len: u8 = if subnet.addr().is_ipv4() { 32 } else { 80 };
    let unit = unit % (2u32 << (unit_len - subnet.prefix_len()));
    match subnet {
        IpNet::V4(n) => {
            let a = Ipv4Addr::from(u32::from(n.network()).wrapping_add(unit));
            IpNet::V4(Ipv4Net::new(a, len % 33).unwrap())
        }
        IpNet::V6(n) => {
            let a = Ipv6Addr::from(u128::from(n.network()).wrapping_add((unit as u128) << 48));
            IpNet::V6(Ipv6Net::new(a, len % 129).unwrap())
        }
    }
}

fuzz_target!(|input: Input| {
    let subnet: IpNet = if input.v6 {
        "2001:db8:5::/64".parse().unwrap()
    } else {
        let len = 14 + input.subnet_len % 17; // /14 (four pages) to /30
        IpNet::V4(
            Ipv4Net::new(Ipv4Addr::new(10, 7, 0, 0), len)
                .unwrap()
                .trunc(),
        )
    };
    let profile = [
        ReservedProfile::Aws,
        ReservedProfile::Classic,
        ReservedProfile::None,
    ][input.profile as usize % 3];
    let placement = match input.placement % 3 {
        0 => Placement::Pack,
        1 => Placement::FirstFit,
        _ => Placement::Random { seed: input.seed },
    };
    let opts = SubnetOptions::default()
        .profile(profile)
        .placement(placement)
        .fallback_to_unreserved(input.fallback);
    let real = Subnet::with_options(subnet, opts).unwrap();
    let mut model = NaiveSubnet::with_options(subnet, opts).unwrap();
    let unit_len: u8 = if input.v6 { 80 } else { 32 };
    // Every length from one unit to the whole subnet, and one longer than the subnet.
    let span_bits = unit_len - subnet.prefix_len();
    let len = |x: u8| unit_len.saturating_sub(x % (span_bits + 2));
    // The naive model scans every unit per call: fewer steps on larger maps keep runs fast.
    let steps = match span_bits {
        0..=12 => 200,
        13..=16 => 32,
        _ => 16,
    };
    let mut held: Vec<IpNet> = Vec::new();
    for op in input.ops.iter().take(steps) {
        match *op {
            Op::Prefix(l) => {
                let r = real.allocate_prefix(len(l));
                assert_eq!(r, model.allocate_prefix(len(l)));
                if let Ok(a) = r {
                    held.push(a.cidr);
                }
            }
            Op::PrefixAt(u, l) => {
                let c = cidr(subnet, u, len(l));
                let r = real.allocate_prefix_at(c);
                assert_eq!(r, model.allocate_prefix_at(c));
                if r.is_ok() {
                    held.push(c);
                }
            }
            Op::Ip => {
                let r = real.allocate_ip();
                assert_eq!(r, model.allocate_ip());
                if let Ok(a) = r {
                    held.push(IpNet::from(a));
                }
            }
            Op::IpAt(u) => {
                let a = cidr(subnet, u, unit_len).addr();
                let r = real.allocate_ip_at(a);
                assert_eq!(r, model.allocate_ip_at(a));
                if r.is_ok() {
                    held.push(IpNet::from(a));
                }
            }
            Op::Release(u, l) => {
                let c = cidr(subnet, u, len(l));
                let r = real.release(c);
                assert_eq!(r, model.release(c));
                if r.is_ok() {
                    held.retain(|h| *h != c);
                }
            }
            Op::ReleaseHeld(i) => {
                if !held.is_empty() {
                    let c = held.swap_remove(i as usize % held.len());
                    let r = real.release(c);
                    assert_eq!(r, model.release(c));
                    assert!(r.is_ok(), "release of held {c}: {r:?}");
                }
            }
            Op::Reserve(u, l, prefix) => {
                let c = cidr(subnet, u, len(l.wrapping_add(2)));
                let k = if prefix {
                    ReservationKind::Prefix
                } else {
                    ReservationKind::Explicit
                };
                assert_eq!(real.add_reservation(c, k), model.add_reservation(c, k));
            }
            Op::Unreserve(i) => {
                let list = model.reservations();
                if !list.is_empty() {
                    let c = list[i as usize % list.len()].cidr;
                    assert_eq!(real.remove_reservation(c), model.remove_reservation(c));
                }
            }
            Op::Holder(u) => {
                let a = cidr(subnet, u, unit_len).addr();
                assert_eq!(real.holder(a), model.holder(a));
            }
            Op::IsFree(u, l) => {
                let c = cidr(subnet, u, len(l));
                assert_eq!(real.is_free(c), model.is_free(c));
            }
        }
        real.verify().unwrap();
    }
    assert_eq!(real.allocations(), model.allocations());
    assert_eq!(real.stats(), model.stats());
});
