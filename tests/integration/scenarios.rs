//! Scenario tests written from docs/rules.md, "Subnets", one rule each.

use ipnet::IpNet;
use pdipam::{
    Holder, Origin, Placement, ReservationKind, ReservedProfile, Subnet, SubnetError, SubnetOptions,
};
use std::net::IpAddr;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn subnet(s: &str) -> Subnet {
    Subnet::new(net(s)).unwrap()
}

fn with(s: &str, opts: SubnetOptions) -> Subnet {
    Subnet::with_options(net(s), opts).unwrap()
}

/// Runs `f`, which must fail, and checks that the subnet is exactly as before.
fn fails_unchanged<T: std::fmt::Debug>(
    s: &Subnet,
    f: impl FnOnce(&Subnet) -> Result<T, SubnetError>,
) -> SubnetError {
    let before = (s.allocations(), s.reservations(), s.stats());
    let err = f(s).expect_err("call should fail");
    assert_eq!(
        before,
        (s.allocations(), s.reservations(), s.stats()),
        "failed call changed state: {err}"
    );
    s.verify().unwrap();
    err
}

// --- 1.1 sizes and reserved addresses ---

#[test]
fn aws_reserves_first_four_and_last_relative_to_the_subnet() {
    let s = subnet("10.0.0.128/26");
    for a in [
        "10.0.0.128",
        "10.0.0.129",
        "10.0.0.130",
        "10.0.0.131",
        "10.0.0.191",
    ] {
        assert_eq!(
            s.holder(ip(a)).unwrap(),
            Some(Holder::Reserved(ip(a))),
            "{a}"
        );
        let err = fails_unchanged(&s, |s| s.allocate_ip_at(ip(a)));
        assert!(
            matches!(err, SubnetError::ReservedAddress { addr, .. } if addr == ip(a)),
            "{err}"
        );
    }
    assert_eq!(s.holder(ip("10.0.0.132")).unwrap(), None);
}

#[test]
fn a_slash24_has_251_usable_addresses_and_14_delegatable_slash28s() {
    let s = subnet("10.0.0.0/24");
    let st = s.stats();
    assert_eq!(
        (st.total, st.reserved, st.free, st.available),
        (256, 5, 251, 251)
    );
    assert_eq!(st.free_blocks_of(28), 14);
    let got: Vec<_> = (0..14)
        .map(|_| s.allocate_prefix(28).unwrap().cidr)
        .collect();
    assert!(!got.contains(&net("10.0.0.0/28")) && !got.contains(&net("10.0.0.240/28")));
    let err = fails_unchanged(&s, |s| s.allocate_prefix(28));
    assert!(
        matches!(err, SubnetError::InsufficientCidrBlocks { len: 28, .. }),
        "{err}"
    );
    assert_eq!(s.stats().free, 27, "27 addresses free, not one aligned /28");
    s.verify().unwrap();
}

#[test]
fn a_slash28_subnet_has_11_usable_addresses_and_no_delegatable_slash28() {
    let s = subnet("10.0.0.0/28");
    assert_eq!(s.stats().available, 11);
    assert_eq!(s.stats().free_blocks_of(28), 0);
    let err = fails_unchanged(&s, |s| s.allocate_prefix(28));
    assert!(
        matches!(
            err,
            SubnetError::InsufficientFreeAddressesInSubnet { needed: 16, .. }
        ),
        "{err}"
    );
    for _ in 0..11 {
        s.allocate_ip().unwrap();
    }
    let err = fails_unchanged(&s, |s| s.allocate_ip());
    assert!(err
        .to_string()
        .contains("InsufficientFreeAddressesInSubnet"));
}

#[test]
fn a_slash64_has_65534_delegatable_slash80s() {
    let s = subnet("2001:db8:1:2::/64");
    let st = s.stats();
    assert_eq!(st.total, 65536);
    assert_eq!(st.free_blocks_of(80), 65534);
    assert_eq!(st.free_blocks_of(64), 0);
    assert_eq!(
        s.holder(ip("2001:db8:1:2::3")).unwrap(),
        Some(Holder::Reserved(ip("2001:db8:1:2::")))
    );
    let err = fails_unchanged(&s, |s| s.allocate_prefix_at(net("2001:db8:1:2::/80")));
    assert!(matches!(err, SubnetError::ReservedAddress { .. }));
    let first = s.allocate_prefix(80).unwrap();
    assert_eq!(first.cidr, net("2001:db8:1:2:1::/80")); // unit 1: the /80 after the reserved one
    assert!(matches!(s.allocate_ip(), Err(SubnetError::NotIpv4 { .. })));
}

#[test]
fn profiles_classic_and_none() {
    let c = with(
        "10.0.0.0/24",
        SubnetOptions::default().profile(ReservedProfile::Classic),
    );
    assert_eq!(c.stats().available, 254);
    assert_eq!(c.stats().free_blocks_of(28), 14);
    assert!(c.allocate_ip_at(ip("10.0.0.1")).is_ok());
    let n = with(
        "10.0.0.0/24",
        SubnetOptions::default().profile(ReservedProfile::None),
    );
    assert_eq!(n.stats().available, 256);
    assert_eq!(n.stats().free_blocks_of(28), 16);
    assert_eq!(n.stats().free_blocks_of(24), 1);
    assert_eq!(n.allocate_prefix(24).unwrap().cidr, net("10.0.0.0/24"));
}

#[test]
fn ipv6_large_subnets_are_tracked_lazily() {
    let s = subnet("2001:db8::/44");
    assert!(s.heap_bytes() < 64 << 20, "{} bytes", s.heap_bytes());
    assert_eq!(s.stats().free_blocks_of(80), (1u64 << 36) - 2);
    let p = s.allocate_prefix(80).unwrap();
    assert_eq!(p.cidr, net("2001:db8:0:0:1::/80"));
    let big = s.allocate_prefix(72).unwrap();
    assert_eq!(big.cidr, net("2001:db8:0:0:100::/72"));
    s.release(big.cidr).unwrap();
    s.verify().unwrap();
}

// --- 1.2 prefixes, the two failure modes, diagnostics ---

#[test]
fn scattered_singles_give_insufficient_cidr_blocks_not_free_addresses() {
    let s = subnet("10.0.0.0/24");
    for b in 1..15 {
        s.allocate_ip_at(ip(&format!("10.0.0.{}", b * 16 + 7)))
            .unwrap();
    }
    let err = fails_unchanged(&s, |s| s.allocate_prefix(28));
    assert_eq!(
        err,
        SubnetError::InsufficientCidrBlocks {
            subnet: net("10.0.0.0/24"),
            len: 28,
        }
    );
    assert!(err.to_string().starts_with("InsufficientCidrBlocks"));
    let st = s.stats();
    assert_eq!(st.free_blocks_of(28), 0);
    assert!((st.fragmentation - 1.0).abs() < 1e-9);
    assert_eq!(st.largest_free_block.unwrap().prefix_len(), 29);
    let why = s.explain_prefix_failure(28).unwrap();
    assert_eq!(
        (why.candidate_blocks, why.free_blocks, why.free_units),
        (16, 0, 237)
    );
    assert_eq!(why.blocks_with_reserved_addresses, 2);
    assert_eq!(why.spoiling_allocations, 14);
    assert_eq!(why.blocks_with_one_spoiler, 14);
    assert_eq!(why.spoilers[0].holder, Holder::Address(ip("10.0.0.23")));
    assert_eq!(
        (why.spoilers[0].sole, why.spoilers[0].example),
        (1, Some(net("10.0.0.16/28")))
    );
    assert!(
        why.to_string()
            .contains("address 10.0.0.23 alone spoils 1 block, e.g. 10.0.0.16/28"),
        "{why}"
    );
    // A /29 still fits: the two kinds of failure are per length.
    assert!(s.allocate_prefix(29).is_ok());
}

#[test]
fn the_explanation_ranks_allocations_by_what_their_release_would_win_back() {
    let s = with(
        "10.0.0.0/24",
        SubnetOptions::default().profile(ReservedProfile::None),
    );
    s.allocate_prefix_at(net("10.0.0.0/30")).unwrap(); // fragments block .0/28 alone
    s.allocate_prefix_at(net("10.0.0.16/28")).unwrap(); // a whole block: used, not fragmented
    s.allocate_ip_at(ip("10.0.0.33")).unwrap(); // two singles share block .32/28
    s.allocate_ip_at(ip("10.0.0.34")).unwrap();
    for b in 3..16 {
        s.allocate_ip_at(ip(&format!("10.0.0.{}", b * 16 + 1)))
            .unwrap(); // one alone in each
    }
    let why = s.explain_prefix_failure(28).unwrap();
    assert_eq!(
        (
            why.candidate_blocks,
            why.free_blocks,
            why.blocks_allocated_whole
        ),
        (16, 0, 1)
    );
    assert_eq!(
        why.blocks_with_one_spoiler, 14,
        "all but the whole one and the shared one"
    );
    assert_eq!(why.spoiling_allocations, 16);
    let top = why.spoilers[0];
    assert_eq!(top.holder, Holder::Prefix(net("10.0.0.0/30")));
    assert_eq!(
        (top.sole, top.blocks, top.example),
        (1, 1, Some(net("10.0.0.0/28")))
    );
    assert!(!why
        .spoilers
        .iter()
        .any(|sp| sp.holder == Holder::Prefix(net("10.0.0.16/28"))));
    let shared = why
        .spoilers
        .iter()
        .find(|sp| sp.holder == Holder::Address(ip("10.0.0.33")));
    assert!(shared.is_none_or(|sp| sp.sole == 0), "{shared:?}");
    assert!(
        why.to_string()
            .contains("1 block is allocated whole as a prefix"),
        "{why}"
    );
}

#[test]
fn out_of_addresses_is_insufficient_free_addresses() {
    let s = with(
        "10.0.0.0/26",
        SubnetOptions::default().profile(ReservedProfile::None),
    );
    for _ in 0..4 {
        s.allocate_prefix(28).unwrap();
    }
    let err = fails_unchanged(&s, |s| s.allocate_prefix(28));
    assert!(matches!(
        err,
        SubnetError::InsufficientFreeAddressesInSubnet { needed: 16, .. }
    ));
    assert!(err
        .to_string()
        .contains("There aren't sufficient free Ipv4 addresses or prefixes"));
}

#[test]
fn bad_input_names_the_value_and_changes_nothing() {
    let s = subnet("10.0.0.0/24");
    s.allocate_prefix_at(net("10.0.0.32/28")).unwrap();
    type Call = Box<dyn Fn(&Subnet) -> Result<(), SubnetError>>;
    let cases: Vec<(Call, &str)> = vec![
        (
            Box::new(|s| s.allocate_prefix_at(net("10.0.1.0/28"))),
            "10.0.1.0/28 is outside subnet 10.0.0.0/24",
        ),
        (
            Box::new(|s| s.allocate_prefix_at(net("10.0.0.4/28"))),
            "10.0.0.4/28 is misaligned: its network is 10.0.0.0/28",
        ),
        (
            Box::new(|s| s.allocate_prefix_at(net("fd00::/80"))),
            "fd00::/80 is not of the same address family",
        ),
        (
            Box::new(|s| s.allocate_prefix(23).map(|_| ())),
            "prefix length /23 is out of range",
        ),
        (
            Box::new(|s| s.allocate_prefix(33).map(|_| ())),
            "prefix length /33 is out of range",
        ),
        (
            Box::new(|s| s.allocate_prefix_at(net("10.0.0.32/27"))),
            "10.0.0.32/27 is already allocated: it overlaps prefix 10.0.0.32/28",
        ),
        (
            Box::new(|s| s.allocate_ip_at(ip("10.0.0.40"))),
            "10.0.0.40/32 is already allocated: it overlaps prefix 10.0.0.32/28",
        ),
        (
            Box::new(|s| s.release(net("10.0.0.64/28"))),
            "10.0.0.64/28 is not allocated",
        ),
        (
            Box::new(|s| s.release(net("10.0.0.32/29"))),
            "10.0.0.32/29 is not one allocation: it overlaps prefix 10.0.0.32/28",
        ),
        (
            Box::new(|s| s.release(net("10.0.0.0/26"))),
            "contains 10.0.0.0, reserved by the aws profile",
        ),
        (
            Box::new(|s| s.release(net("10.0.0.32/27"))),
            "10.0.0.32/27 is not one allocation",
        ),
        (
            Box::new(|s| s.add_reservation(net("10.0.1.0/25"), ReservationKind::Prefix)),
            "outside subnet",
        ),
        (
            Box::new(|s| s.remove_reservation(net("10.0.0.0/25")).map(|_| ())),
            "no reservation 10.0.0.0/25",
        ),
    ];
    for (call, text) in cases {
        let err = fails_unchanged(&s, |s| call(s));
        assert!(
            err.to_string().contains(text),
            "{err} should contain {text}"
        );
    }
    assert!(matches!(
        Subnet::new(net("10.0.0.1/24")),
        Err(SubnetError::Misaligned { .. })
    ));
    assert!(matches!(
        Subnet::new(net("10.0.0.0/31")),
        Err(SubnetError::SubnetLength { .. })
    ));
    assert!(matches!(
        Subnet::new(net("10.0.0.0/7")),
        Err(SubnetError::SubnetLength { .. })
    ));
    assert!(matches!(
        Subnet::new(net("2001:db8::/65")),
        Err(SubnetError::SubnetLength { .. })
    ));
    assert!(matches!(
        s.holder(ip("10.0.1.1")),
        Err(SubnetError::OutsideSubnet { .. })
    ));
    assert!(matches!(
        s.holder(ip("::1")),
        Err(SubnetError::WrongFamily { .. })
    ));
}

#[test]
fn manual_prefixes_and_holders() {
    let s = subnet("10.0.0.0/24");
    s.allocate_prefix_at(net("10.0.0.208/28")).unwrap();
    assert_eq!(
        s.holder(ip("10.0.0.219")).unwrap(),
        Some(Holder::Prefix(net("10.0.0.208/28")))
    );
    assert!(!s.is_free(net("10.0.0.192/27")).unwrap());
    assert!(s.is_free(net("10.0.0.192/28")).unwrap());
    s.release(net("10.0.0.208/28")).unwrap();
    assert!(s.is_free(net("10.0.0.192/27")).unwrap());
}

// --- 1.3 placement ---

#[test]
fn pack_keeps_whole_slash28s_where_random_scatters() {
    let free28 = |placement| {
        let s = with("10.0.0.0/22", SubnetOptions::default().placement(placement));
        for _ in 0..200 {
            s.allocate_ip().unwrap();
        }
        s.verify().unwrap();
        s.stats().free_blocks_of(28)
    };
    let pack = free28(Placement::Pack);
    let first = free28(Placement::FirstFit);
    let random = free28(Placement::Random { seed: 7 });
    // 64 /28s; block 0 holds .0-.3, block 63 the last address. Pack fills both broken blocks
    // first (12 + 15 singles), then 173 singles take ceil(173 / 16) = 11 more blocks: 51 stay whole.
    assert_eq!(pack, 64 - 2 - 11);
    // FirstFit fills from the bottom: ceil((200 + 4) / 16) = 13 blocks, and block 63 stays broken.
    assert_eq!(first, 64 - 13 - 1);
    assert!(random < 10, "random placement kept {random} /28s whole");
}

#[test]
fn pack_fills_broken_blocks_most_used_first() {
    let s = with(
        "10.0.0.0/24",
        SubnetOptions::default().profile(ReservedProfile::None),
    );
    s.allocate_ip_at(ip("10.0.0.17")).unwrap();
    s.allocate_ip_at(ip("10.0.0.33")).unwrap();
    s.allocate_ip_at(ip("10.0.0.34")).unwrap();
    assert_eq!(
        s.allocate_ip().unwrap(),
        ip("10.0.0.32"),
        "the /28 with two used goes first"
    );
    let p = s.allocate_prefix(28).unwrap();
    assert_eq!(
        p.cidr,
        net("10.0.0.0/28"),
        "a /28 beside the broken ones keeps 10.0.0.64/26 whole"
    );
}

#[test]
fn random_is_deterministic_per_seed() {
    let run = |seed| {
        let s = with(
            "10.0.0.0/20",
            SubnetOptions::default().placement(Placement::Random { seed }),
        );
        (0..50)
            .map(|i| {
                if i % 3 == 0 {
                    s.allocate_prefix(28).unwrap().cidr
                } else {
                    IpNet::from(s.allocate_ip().unwrap())
                }
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

// --- 1.4 reservations ---

#[test]
fn reservations_must_be_inside_and_must_not_overlap() {
    let s = subnet("10.0.0.0/24");
    s.add_reservation(net("10.0.0.128/26"), ReservationKind::Prefix)
        .unwrap();
    let err = fails_unchanged(&s, |s| {
        s.add_reservation(net("10.0.0.160/27"), ReservationKind::Explicit)
    });
    assert_eq!(
        err,
        SubnetError::ReservationOverlap {
            cidr: net("10.0.0.160/27"),
            existing: net("10.0.0.128/26")
        }
    );
    let err = fails_unchanged(&s, |s| {
        s.add_reservation(net("10.0.0.0/23"), ReservationKind::Explicit)
    });
    assert!(matches!(err, SubnetError::OutsideSubnet { .. }));
    s.add_reservation(net("10.0.0.192/26"), ReservationKind::Explicit)
        .unwrap();
    assert_eq!(s.reservations().len(), 2);
}

#[test]
fn automatic_prefixes_come_from_prefix_reservations_first_then_fall_back() {
    let s = subnet("10.0.0.0/24");
    s.add_reservation(net("10.0.0.64/27"), ReservationKind::Prefix)
        .unwrap();
    let a = s.allocate_prefix(28).unwrap();
    let b = s.allocate_prefix(28).unwrap();
    assert_eq!(a.origin, Origin::Reservation(net("10.0.0.64/27")));
    assert_eq!(b.origin, Origin::Reservation(net("10.0.0.64/27")));
    let c = s.allocate_prefix(28).unwrap();
    assert_eq!(c.origin, Origin::Fallback);
    assert!(!net("10.0.0.64/27").contains(&c.cidr));

    let strict = with(
        "10.0.0.0/24",
        SubnetOptions::default().fallback_to_unreserved(false),
    );
    strict
        .add_reservation(net("10.0.0.64/28"), ReservationKind::Prefix)
        .unwrap();
    strict.allocate_prefix(28).unwrap();
    let err = fails_unchanged(&strict, |s| s.allocate_prefix(28));
    assert!(
        matches!(err, SubnetError::InsufficientFreeAddressesInSubnet { .. }),
        "{err}"
    );
}

#[test]
fn nothing_automatic_lands_in_an_explicit_reservation_and_singles_avoid_all() {
    let s = with(
        "10.0.0.0/25",
        SubnetOptions::default().profile(ReservedProfile::None),
    );
    s.add_reservation(net("10.0.0.0/27"), ReservationKind::Explicit)
        .unwrap();
    s.add_reservation(net("10.0.0.32/28"), ReservationKind::Prefix)
        .unwrap();
    let mut singles = Vec::new();
    while let Ok(a) = s.allocate_ip() {
        singles.push(a);
    }
    assert_eq!(singles.len(), 128 - 48);
    assert!(singles
        .iter()
        .all(|a| !net("10.0.0.0/26").contains(a) || net("10.0.0.48/28").contains(a)));
    let p = s.allocate_prefix(28).unwrap();
    assert_eq!(p.cidr, net("10.0.0.32/28"));
    assert!(matches!(
        s.allocate_prefix(28),
        Err(SubnetError::InsufficientFreeAddressesInSubnet { .. })
    ));
    // Manual assignment inside either kind is allowed while free.
    s.allocate_ip_at(ip("10.0.0.5")).unwrap();
    s.allocate_prefix_at(net("10.0.0.16/28")).unwrap();
    s.verify().unwrap();
}

#[test]
fn reservations_cover_used_space_unassign_nothing_and_freed_space_is_not_reused() {
    let s = subnet("10.0.0.0/24");
    let a = s.allocate_ip().unwrap();
    assert_eq!(a, ip("10.0.0.4"));
    s.add_reservation(net("10.0.0.0/28"), ReservationKind::Explicit)
        .unwrap();
    assert_eq!(s.holder(a).unwrap(), Some(Holder::Address(a)));
    s.release_ip(a).unwrap();
    let b = s.allocate_ip().unwrap();
    assert!(
        !net("10.0.0.0/28").contains(&b),
        "{b} reused space inside the reservation"
    );
    let before = s.allocations();
    s.remove_reservation(net("10.0.0.0/28")).unwrap();
    assert_eq!(
        before,
        s.allocations(),
        "deleting a reservation unassigns nothing"
    );
}

#[test]
fn counting_rules_for_prefix_and_explicit_reservations() {
    let s = subnet("10.0.0.0/24");
    s.add_reservation(net("10.0.0.64/26"), ReservationKind::Prefix)
        .unwrap();
    assert_eq!(
        s.stats().available,
        251 - 64,
        "a prefix reservation counts at once, whole"
    );
    s.add_reservation(net("10.0.0.128/26"), ReservationKind::Explicit)
        .unwrap();
    assert_eq!(
        s.stats().available,
        251 - 64,
        "an explicit one counts only as assigned"
    );
    s.allocate_ip_at(ip("10.0.0.130")).unwrap();
    assert_eq!(s.stats().available, 251 - 64 - 1);
    s.allocate_prefix(28).unwrap();
    assert_eq!(
        s.stats().available,
        251 - 64 - 1,
        "prefixes from the prefix reservation were counted already"
    );
}

#[test]
fn the_failure_explanation_prints_the_lines_that_apply_and_only_those() {
    // A /26 under Aws: reserved addresses in blocks .0 and .48, an explicit reservation over
    // .16/28, a whole /28 at .32. With no prefix reservation, automatic prefixes may use all
    // unreserved space whether or not fallback is on.
    for fallback in [true, false] {
        let s = with(
            "10.0.0.0/26",
            SubnetOptions::default().fallback_to_unreserved(fallback),
        );
        s.add_reservation(net("10.0.0.16/28"), ReservationKind::Explicit)
            .unwrap();
        s.allocate_prefix_at(net("10.0.0.32/28")).unwrap();
        let why = s.explain_prefix_failure(28).unwrap();
        assert_eq!(
            why.to_string(),
            "/28 in 10.0.0.0/26: 3 candidate aligned blocks, 0 free; 27 free addresses where \
             automatic assignment looks\n  \
             1 block is allocated whole as a prefix\n  \
             2 blocks hold reserved addresses\n  \
             1 block lies in reservations automatic assignment may not use\n",
            "fallback {fallback}"
        );
    }
    // No reserved address, reservation or whole block: none of those lines.
    let s = with(
        "10.0.0.0/26",
        SubnetOptions::default().profile(ReservedProfile::None),
    );
    s.allocate_ip_at(ip("10.0.0.5")).unwrap();
    assert_eq!(
        s.explain_prefix_failure(28).unwrap().to_string(),
        "/28 in 10.0.0.0/26: 4 candidate aligned blocks, 3 free; 63 free addresses where \
         automatic assignment looks\n  \
         1 allocation spoils the other blocks; 1 block is held by a single allocation each\n    \
         address 10.0.0.5 alone spoils 1 block, e.g. 10.0.0.0/28; touches 1\n"
    );
}

#[test]
fn an_allocation_ending_where_a_block_begins_spoils_only_its_own_block() {
    let s = with(
        "10.0.0.0/26",
        SubnetOptions::default().profile(ReservedProfile::None),
    );
    s.allocate_ip_at(ip("10.0.0.15")).unwrap(); // last address of block .0/28
    s.allocate_ip_at(ip("10.0.0.16")).unwrap(); // first address of block .16/28
    let why = s.explain_prefix_failure(28).unwrap();
    assert_eq!(
        (why.spoiling_allocations, why.blocks_with_one_spoiler),
        (2, 2)
    );
    let touched: Vec<(Holder, u64, u64)> = why
        .spoilers
        .iter()
        .map(|s| (s.holder, s.blocks, s.sole))
        .collect();
    assert_eq!(
        touched,
        [
            (Holder::Address(ip("10.0.0.15")), 1, 1),
            (Holder::Address(ip("10.0.0.16")), 1, 1)
        ]
    );
}

#[test]
fn free_block_counts_include_pages_never_touched() {
    // A /15 is two 65,536-unit pages; the second is never touched and counted whole.
    let s = with(
        "10.0.0.0/15",
        SubnetOptions::default().profile(ReservedProfile::None),
    );
    s.allocate_ip_at(ip("10.0.0.1")).unwrap();
    let st = s.stats();
    let counts: Vec<u64> = [32, 31, 28, 26, 25, 16, 15]
        .iter()
        .map(|&len| st.free_blocks_of(len))
        .collect();
    assert_eq!(counts, [131_071, 65_535, 8191, 2047, 1023, 1, 0]);
    assert_eq!(st.largest_free_block, Some(net("10.1.0.0/16")));
}

#[test]
fn each_automatic_prefix_names_the_prefix_reservation_it_came_from() {
    let s = subnet("10.0.0.0/24");
    for r in ["10.0.0.16/28", "10.0.0.64/28", "10.0.0.128/28"] {
        let kind = if r == "10.0.0.16/28" {
            ReservationKind::Explicit
        } else {
            ReservationKind::Prefix
        };
        s.add_reservation(net(r), kind).unwrap();
    }
    let mut origins: Vec<Origin> = (0..2)
        .map(|_| {
            let a = s.allocate_prefix(28).unwrap();
            let Origin::Reservation(r) = a.origin else {
                panic!("{:?} did not come from a prefix reservation", a.origin);
            };
            assert!(r.contains(&a.cidr), "{} credited to {r}", a.cidr);
            a.origin
        })
        .collect();
    origins.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        origins,
        [
            Origin::Reservation(net("10.0.0.128/28")),
            Origin::Reservation(net("10.0.0.64/28"))
        ]
    );
}

#[test]
fn reservation_kinds_print_and_parse_as_aws_spells_them() {
    for (kind, text) in [
        (ReservationKind::Prefix, "prefix"),
        (ReservationKind::Explicit, "explicit"),
    ] {
        assert_eq!(kind.to_string(), text);
        assert_eq!(text.parse::<ReservationKind>(), Ok(kind));
    }
    assert_eq!(
        "Prefix".parse::<ReservationKind>(),
        Err("unknown reservation type \"Prefix\": expected prefix or explicit".to_string())
    );
}

#[test]
fn an_ipv6_address_is_held_by_the_80_it_lies_in() {
    let s = subnet("2001:db8:0:7::/64");
    s.allocate_prefix_at(net("2001:db8:0:7:5::/80")).unwrap();
    assert_eq!(
        s.holder(ip("2001:db8:0:7:5:0:0:1234")).unwrap(),
        Some(Holder::Prefix(net("2001:db8:0:7:5::/80")))
    );
    assert_eq!(s.holder(ip("2001:db8:0:7:6::1")).unwrap(), None);
    assert_eq!(
        s.holder(ip("2001:db8:0:7:ffff::9")).unwrap(),
        Some(Holder::Reserved(ip("2001:db8:0:7:ffff::")))
    );
}

#[test]
fn a_subnet_reports_how_it_was_built() {
    let options = SubnetOptions::default()
        .profile(ReservedProfile::Classic)
        .placement(Placement::Random { seed: 7 })
        .fallback_to_unreserved(false);
    let s = Subnet::with_options(net("10.0.0.0/24"), options).unwrap();
    assert_eq!(s.options(), options);
    assert_eq!(s.unit_len(), 32);
    assert_eq!(subnet("2001:db8::/64").unit_len(), 80);
}

#[test]
fn heap_bytes_grow_with_the_pages_touched() {
    // A /8 creates its bitmap pages on first use: an allocation far from the start adds one.
    let s = Subnet::with_options(
        net("10.0.0.0/8"),
        SubnetOptions::default().profile(ReservedProfile::None),
    )
    .unwrap();
    let empty = s.heap_bytes();
    assert!(empty > 0, "the page directory and summaries");
    s.allocate_prefix_at(net("10.200.0.0/28")).unwrap();
    let one_page = s.heap_bytes();
    // A page is 1,024 words of 16 bytes (a 128-bit word per 64 units) and its summaries, which
    // take less than a kilobyte.
    let page = one_page - empty;
    assert!((16_384..17_408).contains(&page), "{empty} -> {one_page}");
    s.allocate_prefix_at(net("10.200.0.16/28")).unwrap();
    assert_eq!(s.heap_bytes(), one_page, "the same page");
}

#[test]
fn a_subnet_larger_than_one_bitmap_page_is_summarised_across_its_pages() {
    // A bitmap page tracks 65,536 units, so a /15 has two and keeps a directory of which pages
    // hold which kinds of word. Page 0 filled by one /16, page 1 broken by one address in every
    // /28: the first broken word lies in the second page, and a /28 request must be explained
    // from there.
    let s = with(
        "10.0.0.0/15",
        SubnetOptions::default().profile(ReservedProfile::None),
    );
    s.allocate_prefix_at(net("10.0.0.0/16")).unwrap();
    for block in 0..4096u32 {
        let a = std::net::Ipv4Addr::from(u32::from_be_bytes([10, 1, 0, 0]) + block * 16 + 5);
        s.allocate_ip_at(IpAddr::V4(a)).unwrap();
    }
    s.verify().unwrap();
    assert_eq!(
        fails_unchanged(&s, |s| s.allocate_prefix(28)),
        SubnetError::InsufficientCidrBlocks {
            subnet: net("10.0.0.0/15"),
            len: 28
        }
    );
    assert_eq!(
        fails_unchanged(&s, |s| s.allocate_prefix(26)),
        SubnetError::InsufficientCidrBlocks {
            subnet: net("10.0.0.0/15"),
            len: 26
        }
    );
    // Single addresses go where the second page's summaries and the directory point: the
    // lowest address of the most-used broken /28.
    assert_eq!(s.allocate_ip().unwrap(), ip("10.1.0.0"));
    // Freed space in the first page shows up through the directory, and Pack uses it for a /28
    // rather than breaking nothing: the only free /28s are there.
    s.release(net("10.0.0.0/16")).unwrap();
    assert_eq!(
        s.allocate_prefix(28).unwrap().cidr,
        net("10.0.0.0/28"),
        "the first free /28, in page 0"
    );
    s.verify().unwrap();
    assert_eq!(s.stats().free, 65_536 - 16 + 4096 * 15 - 1);
}
