//! The defragmentation planner: hand-computed subnets, the exact cost against a brute force
//! over every choice of regions, and a plan carried out on an in-process subnet.

use crate::model::cases;
use ipnet::Ipv4Net;
use pdipam::defrag::{
    plan, Cost, DefragError, ExistingReservation, Goal, HolderCost, MoveCost, PinReason,
};
use pdipam::{Holder, ReservationKind, Subnet};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn addr(s: &str, cost: MoveCost) -> HolderCost {
    HolderCost {
        held: Ipv4Net::new(s.parse().unwrap(), 32).unwrap(),
        cost,
    }
}

fn moves(pods: u32, interfaces: u32) -> MoveCost {
    MoveCost::Move { pods, interfaces }
}

fn goal(blocks: u32) -> Goal {
    Goal { blocks, len: 28 }
}

/// 10.0.0.0/26: four /28s. The subnet's five reserved addresses pin the first and the last;
/// an idle address sits in the second, a pod's address in the third, an interface with three
/// pods in the fourth.
fn small() -> Vec<HolderCost> {
    let pinned = MoveCost::Pinned(PinReason::SubnetReserved);
    let mut h: Vec<HolderCost> = ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.63"]
        .iter()
        .map(|a| addr(a, pinned))
        .collect();
    h.push(addr("10.0.0.20", moves(0, 0)));
    h.push(addr("10.0.0.40", moves(1, 0)));
    h.push(addr("10.0.0.50", moves(3, 1)));
    h
}

#[test]
fn the_cheapest_regions_of_a_small_subnet_as_worked_out_by_hand() {
    let subnet = net("10.0.0.0/26");
    let one = plan(subnet, &small(), &[], goal(1)).unwrap();
    assert!(one.met);
    assert_eq!(one.regions.len(), 1);
    assert_eq!(one.regions[0].cidr, net("10.0.0.16/28"));
    assert_eq!(
        one.cost,
        Cost {
            pods: 0,
            interfaces: 0,
            reservations: 1
        }
    );
    assert_eq!(one.regions[0].moves, vec![addr("10.0.0.20", moves(0, 0))]);

    // Two: the second and third /28s are not one aligned /27, so two reservations.
    let two = plan(subnet, &small(), &[], goal(2)).unwrap();
    let cidrs: Vec<_> = two.regions.iter().map(|r| r.cidr).collect();
    assert_eq!(cidrs, vec![net("10.0.0.16/28"), net("10.0.0.32/28")]);
    assert_eq!(
        two.cost,
        Cost {
            pods: 1,
            interfaces: 0,
            reservations: 2
        }
    );
    assert!(two.met && two.after == 2);
    // The moved pod finds an address: 12 free in the first /28, 14 in the last.
    assert_eq!((two.room.needed, two.room.available), (1, 26));
    assert!(two.room.fits());

    // Three cannot be had: the cheapest plan reaching the most gives two, and says what pins
    // the rest.
    let three = plan(subnet, &small(), &[], goal(3)).unwrap();
    assert!(!three.met);
    assert_eq!(three.after, 2);
    assert_eq!(three.cost, two.cost);
    let pins: Vec<_> = three
        .pinned
        .iter()
        .map(|h| h.held.network().to_string())
        .collect();
    assert_eq!(
        pins,
        ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.63"]
    );
}

#[test]
fn existing_reservations_are_honoured_and_free_blocks_in_them_count() {
    let subnet = net("10.0.0.0/26");
    let existing = [ExistingReservation {
        cidr: net("10.0.0.32/28"),
        prefix: true,
    }];
    // The third /28 is reserved already but holds a pod: not counted, never a new region.
    let p = plan(subnet, &small(), &existing, goal(2)).unwrap();
    assert_eq!(p.already, 0);
    assert!(!p.met && p.after == 1, "{p:?}");
    // Free and reserved: counted at no cost.
    let holders: Vec<_> = small()
        .into_iter()
        .filter(|h| h.held != net("10.0.0.40/32"))
        .collect();
    let p = plan(subnet, &holders, &existing, goal(2)).unwrap();
    assert_eq!(p.already, 1);
    assert!(p.met);
    assert_eq!(p.regions.len(), 1);
    assert_eq!(p.cost.reservations, 1);
    // An explicit reservation is never a destination for a moved pod.
    let explicit = [ExistingReservation {
        cidr: net("10.0.0.0/28"),
        prefix: false,
    }];
    let p = plan(subnet, &small(), &explicit, goal(2)).unwrap();
    assert_eq!(p.room.available, 14);
}

#[test]
fn bad_input_is_refused_naming_the_value() {
    let subnet = net("10.0.0.0/26");
    let outside = [addr("10.0.1.1", moves(0, 0))];
    assert_eq!(
        plan(subnet, &outside, &[], goal(1))
            .unwrap_err()
            .to_string(),
        "10.0.1.1/32 is not inside 10.0.0.0/26"
    );
    let overlap = [
        addr("10.0.0.17", moves(0, 0)),
        HolderCost {
            held: net("10.0.0.16/28"),
            cost: MoveCost::Pinned(PinReason::Prefix),
        },
    ];
    assert!(matches!(
        plan(subnet, &overlap, &[], goal(1)),
        Err(DefragError::Overlap { .. })
    ));
    assert!(matches!(
        plan(subnet, &[], &[], Goal { blocks: 1, len: 24 }),
        Err(DefragError::BlockLength { len: 24, .. })
    ));
    assert!(matches!(
        plan(net("10.0.0.0/8"), &[], &[], goal(1)),
        Err(DefragError::TooManyBlocks { .. })
    ));
}

/// (blocks, cost) of every set of disjoint aligned regions within the block of `count` leaves
/// at `first` that covers nothing pinned: the block whole, or any choice in its left half with
/// any choice in its right half (nothing at all, for a single leaf). Every valid choice is
/// listed: a /24 without pinned holders has 458,330.
fn every_choice(first: usize, count: usize, pinned: &[bool], cost: &[Cost]) -> Vec<(u32, Cost)> {
    let one = Cost {
        reservations: 1,
        ..Cost::default()
    };
    let mut out = Vec::new();
    if !pinned[first..first + count].iter().any(|p| *p) {
        let whole = cost[first..first + count].iter().fold(one, |a, c| a + *c);
        out.push((count as u32, whole));
    }
    if count == 1 {
        out.push((0, Cost::default()));
        return out;
    }
    let half = count / 2;
    let left = every_choice(first, half, pinned, cost);
    let right = every_choice(first + half, half, pinned, cost);
    out.reserve(left.len() * right.len());
    for (lb, lc) in &left {
        for (rb, rc) in &right {
            out.push((lb + rb, *lc + *rc));
        }
    }
    out
}

/// The brute force: (blocks freed, least cost) over every choice, as the planner ranks them:
/// the goal met at least cost, or else the most blocks at least cost.
fn brute_force(subnet: Ipv4Net, holders: &[HolderCost], want: u32) -> (u32, Cost) {
    let leaves = 1usize << (28 - subnet.prefix_len());
    let base = u32::from(subnet.network());
    let leaf_of = |a: u32| ((a - base) >> 4) as usize;
    let mut pinned = vec![false; leaves];
    let mut cost = vec![Cost::default(); leaves];
    for h in holders {
        let i = leaf_of(u32::from(h.held.network()));
        match h.cost {
            MoveCost::Move { pods, interfaces } => {
                cost[i].pods += u64::from(pods);
                cost[i].interfaces += u64::from(interfaces);
            }
            MoveCost::Pinned(_) => pinned[i] = true,
        }
    }
    every_choice(0, leaves, &pinned, &cost)
        .into_iter()
        .map(|(blocks, c)| (blocks.min(want), c))
        .min_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)))
        .expect("the empty choice")
}

fn holders_strategy(len: u8) -> impl Strategy<Value = Vec<HolderCost>> {
    let size = 1u32 << (32 - len);
    proptest::collection::btree_map(
        0..size,
        prop_oneof![
            4 => (0u32..4, 0u32..2).prop_map(|(p, i)| moves(p, i)),
            1 => Just(MoveCost::Pinned(PinReason::Unknown)),
        ],
        0..(size as usize / 6),
    )
    .prop_map(move |m| {
        m.into_iter()
            .map(|(offset, cost)| HolderCost {
                held: Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + offset), 32).unwrap(),
                cost,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(96)))]

    /// For random /24s and /25s (up to 458,330 choices of regions), the planner's cost and
    /// blocks equal the brute force's.
    #[test]
    fn the_planner_is_exact_against_every_choice_of_regions(
        (len, holders) in (24u8..=25).prop_flat_map(|len| (Just(len), holders_strategy(len))),
        want in 0u32..18,
    ) {
        let subnet = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), len).unwrap();
        let p = plan(subnet, &holders, &[], goal(want)).unwrap();
        let (blocks, cost) = brute_force(subnet, &holders, want);
        let got = p.after.min(want);
        prop_assert_eq!((got, p.cost), (blocks, cost), "{:?}", p);
        prop_assert_eq!(p.met, p.after >= want);
        // The regions are disjoint, aligned, and hold nothing pinned.
        for r in &p.regions {
            let movable = r.moves.iter().all(|m| matches!(m.cost, MoveCost::Move { .. }));
            prop_assert!(movable, "a region holds something pinned: {:?}", r);
        }
        for w in p.regions.windows(2) {
            prop_assert!(w[0].cidr.broadcast() < w[1].cidr.network());
        }
    }
}

/// A plan carried out on a real subnet: release what the regions hold, reserve them, place the
/// moved pods again (single addresses never land in a reservation). Exactly the promised /28s
/// are free in reservations, and the subnet's invariants hold.
#[test]
fn a_plan_carried_out_gives_exactly_the_promised_blocks() {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..20 {
        let subnet = Subnet::new("10.0.0.0/24".parse().unwrap()).unwrap();
        for _ in 0..(next() % 40) {
            let a = Ipv4Addr::from(0x0a00_0000 + (next() % 256) as u32);
            let _ = subnet.allocate_ip_at(IpAddr::V4(a));
        }
        if next() % 2 == 0 {
            let _ = subnet
                .allocate_prefix_at(format!("10.0.0.{}/28", 16 * (next() % 16)).parse().unwrap());
        }
        let holders: Vec<HolderCost> = subnet
            .allocations()
            .into_iter()
            .map(|h| match h {
                Holder::Reserved(IpAddr::V4(a)) => HolderCost {
                    held: Ipv4Net::new(a, 32).unwrap(),
                    cost: MoveCost::Pinned(PinReason::SubnetReserved),
                },
                Holder::Address(IpAddr::V4(a)) => HolderCost {
                    held: Ipv4Net::new(a, 32).unwrap(),
                    cost: moves(1, 0),
                },
                Holder::Prefix(ipnet::IpNet::V4(p)) => HolderCost {
                    held: p,
                    cost: MoveCost::Pinned(PinReason::Prefix),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        let want = (next() % 14) as u32 + 1;
        let p = plan(net("10.0.0.0/24"), &holders, &[], goal(want)).unwrap();
        assert!(p.room.fits(), "round {round}: {p:?}");
        // In the plan's order: the reservation first (no new address lands there while the
        // region drains), then the moves.
        for r in &p.regions {
            subnet
                .add_reservation(ipnet::IpNet::V4(r.cidr), ReservationKind::Prefix)
                .unwrap();
            for m in &r.moves {
                subnet.release_ip(IpAddr::V4(m.held.network())).unwrap();
            }
        }
        for r in &p.regions {
            for _ in &r.moves {
                let again = subnet.allocate_ip().unwrap();
                assert!(p.regions.iter().all(|r| !r.cidr.contains(&match again {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(_) => unreachable!(),
                })));
            }
        }
        subnet.verify().unwrap();
        let free_reserved: u32 = subnet
            .reservations()
            .iter()
            .flat_map(|r| r.cidr.subnets(28).unwrap())
            .filter(|b| subnet.is_free(*b).unwrap())
            .count() as u32;
        assert_eq!(free_reserved, p.after, "round {round}");
        assert_eq!(p.met, p.after >= want);
    }
}
