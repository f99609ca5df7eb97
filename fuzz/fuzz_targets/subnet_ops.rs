//! Arbitrary operation sequences on `Subnet` and on the naive model: every result compared,
//! `verify()` after every step, statistics compared at the end.
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
    PrefixAt(u16, u8),
    Ip,
    IpAt(u16),
    Release(u16, u8),
    ReleaseHeld(u8),
    Reserve(u16, u8, bool),
    Unreserve(u8),
    Holder(u16),
    IsFree(u16, u8),
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

fn cidr(subnet: IpNet, unit: u16, len: u8) -> IpNet {
    match subnet {
        IpNet::V4(n) => {
            let a = Ipv4Addr::from(u32::from(n.network()).wrapping_add(unit as u32));
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
        let len = 21 + input.subnet_len % 10; // /21 to /30
        IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, 7, 0, 0), len).unwrap().trunc())
    };
    let profile = [ReservedProfile::Aws, ReservedProfile::Classic, ReservedProfile::None][input.profile as usize % 3];
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
    let len = |x: u8| unit_len.saturating_sub(x % 12);
    let mut held: Vec<IpNet> = Vec::new();
    for op in input.ops.iter().take(if input.v6 { 24 } else { 200 }) {
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
                let k = if prefix { ReservationKind::Prefix } else { ReservationKind::Explicit };
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
