//! Random operation sequences replayed on `Subnet` and on the naive model; every result, the
//! allocations, reservations and statistics compared, `verify()` after every step.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use pdipam::testing::NaiveSubnet;
use pdipam::{Placement, ReservationKind, ReservedProfile, Subnet, SubnetOptions};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One operation; units and lengths are mapped onto the subnet at replay time, sometimes out of
/// range or misaligned on purpose.
#[derive(Clone, Debug)]
pub enum Op {
    Prefix(usize),
    PrefixAt(u64, usize),
    Ip,
    IpAt(u64),
    /// Release a held allocation (by index), or a raw CIDR.
    ReleaseHeld(usize),
    ReleaseRaw(u64, usize),
    Reserve(u64, usize, bool),
    Unreserve(usize),
    Holder(u64),
    IsFree(u64, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<usize>().prop_map(Op::Prefix),
        2 => (any::<u64>(), any::<usize>()).prop_map(|(u, l)| Op::PrefixAt(u, l)),
        6 => Just(Op::Ip),
        2 => any::<u64>().prop_map(Op::IpAt),
        6 => any::<usize>().prop_map(Op::ReleaseHeld),
        1 => (any::<u64>(), any::<usize>()).prop_map(|(u, l)| Op::ReleaseRaw(u, l)),
        1 => (any::<u64>(), any::<usize>(), any::<bool>()).prop_map(|(u, l, k)| Op::Reserve(u, l, k)),
        1 => any::<usize>().prop_map(Op::Unreserve),
        1 => any::<u64>().prop_map(Op::Holder),
        1 => (any::<u64>(), any::<usize>()).prop_map(|(u, l)| Op::IsFree(u, l)),
    ]
}

fn options() -> impl Strategy<Value = SubnetOptions> {
    (
        prop_oneof![
            Just(ReservedProfile::Aws),
            Just(ReservedProfile::Classic),
            Just(ReservedProfile::None)
        ],
        prop_oneof![
            Just(Placement::Pack),
            Just(Placement::FirstFit),
            any::<u64>().prop_map(|seed| Placement::Random { seed })
        ],
        any::<bool>(),
    )
        .prop_map(|(p, pl, f)| {
            SubnetOptions::default()
                .profile(p)
                .placement(pl)
                .fallback_to_unreserved(f)
        })
}

/// Lengths worth trying for a subnet: mostly the defaults and singles, some multi-word runs,
/// the whole subnet, and one out of range.
fn lengths(subnet: IpNet) -> Vec<u8> {
    let (unit, l) = match subnet {
        IpNet::V4(_) => (32u8, subnet.prefix_len()),
        IpNet::V6(_) => (80u8, subnet.prefix_len()),
    };
    let mut v = vec![
        unit,
        unit,
        unit - 4,
        unit - 4,
        unit - 1,
        unit - 2,
        unit - 3,
        unit - 5,
        unit - 6,
        unit - 7,
        unit - 8,
        l,
        unit + 1,
    ];
    v.retain(|&x| x >= l.saturating_sub(1));
    v
}

/// CIDR at unit `u` (taken modulo twice the subnet size, so sometimes outside) with length `len`,
/// aligned most of the time.
fn cidr_at(subnet: IpNet, u: u64, len: u8) -> IpNet {
    let misalign = u % 11 == 0;
    match subnet {
        IpNet::V4(n) => {
            let units = 1u64 << (32 - n.prefix_len());
            let mut off = (u % (units * 2)) as u32;
            if !misalign && len <= 32 {
                off &= !((1u64 << (32 - len)) - 1) as u32;
            }
            let a = Ipv4Addr::from(u32::from(n.network()).wrapping_add(off));
            IpNet::V4(Ipv4Net::new(a, len.min(32)).unwrap())
        }
        IpNet::V6(n) => {
            let units = 1u64 << (80 - n.prefix_len());
            let mut off = (u % (units * 2)) as u128;
            if !misalign && len <= 80 {
                off &= !((1u128 << (80 - len)) - 1);
            }
            let a = Ipv6Addr::from(u128::from(n.network()).wrapping_add(off << 48));
            IpNet::V6(Ipv6Net::new(a, len.min(128)).unwrap())
        }
    }
}

fn addr_at(subnet: IpNet, u: u64) -> IpAddr {
    cidr_at(subnet, u & !0x1, 128).addr()
}

pub fn replay(subnet: IpNet, opts: SubnetOptions, ops: &[Op]) -> Result<(), TestCaseError> {
    let real = Subnet::with_options(subnet, opts).unwrap();
    let mut model = NaiveSubnet::with_options(subnet, opts).unwrap();
    let lens = lengths(subnet);
    let mut held: Vec<IpNet> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let len = |i: usize| lens[i % lens.len()];
        match op {
            Op::Prefix(i) => {
                let (a, b) = (
                    real.allocate_prefix(len(*i)),
                    model.allocate_prefix(len(*i)),
                );
                prop_assert_eq!(&a, &b, "step {} {:?}", step, op);
                if let Ok(a) = a {
                    held.push(a.cidr);
                }
            }
            Op::PrefixAt(u, i) => {
                let c = cidr_at(subnet, *u, len(*i));
                let (a, b) = (real.allocate_prefix_at(c), model.allocate_prefix_at(c));
                prop_assert_eq!(&a, &b, "step {} {}", step, c);
                if a.is_ok() {
                    held.push(c);
                }
            }
            Op::Ip => {
                let (a, b) = (real.allocate_ip(), model.allocate_ip());
                prop_assert_eq!(&a, &b, "step {}", step);
                if let Ok(a) = a {
                    held.push(IpNet::from(a));
                }
            }
            Op::IpAt(u) => {
                let a = addr_at(subnet, *u);
                let (x, y) = (real.allocate_ip_at(a), model.allocate_ip_at(a));
                prop_assert_eq!(&x, &y, "step {} {}", step, a);
                if x.is_ok() {
                    held.push(IpNet::from(a));
                }
            }
            Op::ReleaseHeld(i) => {
                if held.is_empty() {
                    continue;
                }
                let c = held.swap_remove(i % held.len());
                let (a, b) = (real.release(c), model.release(c));
                prop_assert_eq!(&a, &b, "step {} release {}", step, c);
                prop_assert!(a.is_ok(), "release of held {} failed: {:?}", c, a);
            }
            Op::ReleaseRaw(u, i) => {
                let c = cidr_at(subnet, *u, len(*i));
                let (a, b) = (real.release(c), model.release(c));
                prop_assert_eq!(&a, &b, "step {} release {}", step, c);
                if a.is_ok() {
                    held.retain(|h| *h != c);
                }
            }
            Op::Reserve(u, i, prefix) => {
                let c = cidr_at(subnet, *u, len(*i + 2));
                let kind = if *prefix {
                    ReservationKind::Prefix
                } else {
                    ReservationKind::Explicit
                };
                prop_assert_eq!(
                    real.add_reservation(c, kind),
                    model.add_reservation(c, kind),
                    "step {} reserve {}",
                    step,
                    c
                );
            }
            Op::Unreserve(i) => {
                let list = model.reservations();
                if list.is_empty() {
                    continue;
                }
                let c = list[i % list.len()].cidr;
                prop_assert_eq!(
                    real.remove_reservation(c),
                    model.remove_reservation(c),
                    "step {}",
                    step
                );
            }
            Op::Holder(u) => {
                let a = addr_at(subnet, *u);
                prop_assert_eq!(
                    real.holder(a),
                    model.holder(a),
                    "step {} holder {}",
                    step,
                    a
                );
            }
            Op::IsFree(u, i) => {
                let c = cidr_at(subnet, *u, len(*i));
                prop_assert_eq!(
                    real.is_free(c),
                    model.is_free(c),
                    "step {} is_free {}",
                    step,
                    c
                );
            }
        }
        if let Err(e) = real.verify() {
            return Err(TestCaseError::fail(format!("step {step} {op:?}: {e}")));
        }
        prop_assert_eq!(
            real.allocations(),
            model.allocations(),
            "allocations after step {}",
            step
        );
    }
    prop_assert_eq!(real.reservations(), model.reservations());
    prop_assert_eq!(real.stats(), model.stats());
    Ok(())
}

fn v4_subnet() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        Just("10.0.0.0/24"),
        Just("10.0.0.0/22"),
        Just("10.0.0.64/26"),
        Just("10.0.0.8/29"),
        Just("10.0.0.4/30"),
        Just("172.16.0.0/20"),
    ]
    .prop_map(|s| s.parse().unwrap())
}

/// Case count: the default here, or `PROPTEST_CASES` for deeper runs.
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(192)))]

    #[test]
    fn ipv4_subnet_matches_the_model(subnet in v4_subnet(), opts in options(), ops in prop::collection::vec(op(), 1..80)) {
        replay(subnet, opts, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(12) / 16 + 12))]

    #[test]
    fn ipv6_subnet_matches_the_model(opts in options(), ops in prop::collection::vec(op(), 1..30)) {
        replay("2001:db8:0:7::/64".parse().unwrap(), opts, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(24) / 8 + 8))]

    /// Subnets of more than one bitmap page (65,536 units), where a directory says which pages
    /// hold which kinds of word and runs longer than a page span pages.
    #[test]
    fn multi_page_subnet_matches_the_model(
        subnet in prop_oneof![Just("10.0.0.0/15"), Just("10.4.0.0/14")],
        opts in options(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        replay(subnet.parse().unwrap(), opts, &ops)?;
    }
}

/// A fixed long sequence on a crowded /24, to reach full and fragmented states every run.
#[test]
fn crowded_sequence_matches_the_model() {
    for placement in [
        Placement::Pack,
        Placement::FirstFit,
        Placement::Random { seed: 3 },
    ] {
        let opts = SubnetOptions::default().placement(placement);
        let ops: Vec<Op> = (0..600u64)
            .map(|i| match i % 7 {
                0 | 3 => Op::Ip,
                1 => Op::Prefix(0),
                2 => Op::Prefix(2),
                4 => Op::ReleaseHeld((i * 31) as usize),
                5 => Op::Reserve(i * 97, (i % 5) as usize, i % 2 == 0),
                _ => Op::Unreserve(i as usize),
            })
            .collect();
        replay("10.9.0.0/24".parse().unwrap(), opts, &ops).unwrap();
    }
}
