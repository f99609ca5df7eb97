//! Many threads on one subnet: no unit owned twice, `verify()` clean at the end.

use ipnet::IpNet;
use pdipam::{Holder, Placement, ReservationKind, ReservedProfile, Subnet, SubnetOptions};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread;

/// Tiny deterministic generator per thread (xorshift); the test needs variety, not quality.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn range_of(c: &IpNet) -> (u128, u128) {
    match c {
        IpNet::V4(n) => (
            u32::from(n.network()) as u128,
            u32::from(n.broadcast()) as u128,
        ),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
    }
}

fn assert_disjoint(all: &[IpNet]) {
    let mut ranges: Vec<(u128, u128)> = all.iter().map(range_of).collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].1 < w[1].0, "overlap between {:?} and {:?}", w[0], w[1]);
    }
}

fn hammer(
    subnet: IpNet,
    opts: SubnetOptions,
    threads: usize,
    ops_per_thread: usize,
    prefix_len: u8,
) {
    let s = Arc::new(Subnet::with_options(subnet, opts).unwrap());
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((t as u64 + 1) * 0x1234_5678);
                let mut held: Vec<IpNet> = Vec::new();
                for _ in 0..ops_per_thread {
                    let r = next(&mut rng);
                    match r % 8 {
                        0..=2 => {
                            if let Ok(a) = s.allocate_prefix(prefix_len) {
                                held.push(a.cidr);
                            }
                        }
                        3 if s.cidr().addr().is_ipv4() => {
                            if let Ok(a) = s.allocate_ip() {
                                held.push(IpNet::from(a));
                            }
                        }
                        4 => {
                            // Contended manual claims of the same few blocks.
                            let c = s.allocate_prefix(prefix_len).map(|a| a.cidr);
                            if let Ok(c) = c {
                                s.release(c).unwrap();
                                if s.allocate_prefix_at(c).is_ok() {
                                    held.push(c);
                                }
                            }
                        }
                        _ => {
                            if !held.is_empty() {
                                let c = held.swap_remove((r >> 8) as usize % held.len());
                                s.release(c)
                                    .unwrap_or_else(|e| panic!("release of held {c}: {e}"));
                            }
                        }
                    }
                }
                held
            })
        })
        .collect();
    let mut all: Vec<IpNet> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_disjoint(&all);
    s.verify().unwrap();
    // The subnet's own records are exactly what the threads hold (plus reserved addresses).
    let recorded: BTreeSet<String> = s
        .allocations()
        .into_iter()
        .filter_map(|h| match h {
            Holder::Reserved(_) => None,
            Holder::Address(a) => Some(IpNet::from(a).to_string()),
            Holder::Prefix(p) => Some(p.to_string()),
        })
        .collect();
    all.sort();
    let held: BTreeSet<String> = all.iter().map(|c| c.to_string()).collect();
    assert_eq!(recorded, held);
}

#[test]
fn four_threads_mixed_ipv4_operations() {
    // 4 x 40_000 = 160_000 operations on a /20 small enough to run full and fragmented.
    for placement in [Placement::Pack, Placement::Random { seed: 9 }] {
        hammer(
            "10.0.0.0/20".parse().unwrap(),
            SubnetOptions::default().placement(placement),
            4,
            40_000,
            28,
        );
    }
}

#[test]
fn threads_on_a_tiny_subnet_contend_on_one_word() {
    hammer(
        "10.0.0.0/26".parse().unwrap(),
        SubnetOptions::default().profile(ReservedProfile::None),
        4,
        30_000,
        30,
    );
}

#[test]
fn threads_on_ipv6_with_multi_word_prefixes() {
    hammer(
        "2001:db8::/64".parse().unwrap(),
        SubnetOptions::default(),
        3,
        20_000,
        73,
    );
    hammer(
        "2001:db8::/64".parse().unwrap(),
        SubnetOptions::default(),
        3,
        20_000,
        80,
    );
}

#[test]
fn racing_manual_claims_have_one_winner() {
    let s = Arc::new(Subnet::new("10.0.0.0/24".parse().unwrap()).unwrap());
    for round in 0..200 {
        let c: IpNet = format!("10.0.0.{}/28", 16 * (1 + round % 14))
            .parse()
            .unwrap();
        let wins: usize = (0..4)
            .map(|_| {
                let s = Arc::clone(&s);
                thread::spawn(move || s.allocate_prefix_at(c).is_ok() as usize)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(wins, 1, "{c}");
        s.release(c).unwrap();
    }
    s.verify().unwrap();
}

/// Fills the automatic domain of `subnet` with runs of `len`, shares them among four threads,
/// and has each thread release one of its own and ask for one back, many times. There is always
/// a free run at that moment (its own), so every request must succeed, even while other threads'
/// claims, releases and summary updates are in flight.
fn churn_full(
    subnet: &str,
    opts: SubnetOptions,
    len: u8,
    reserve: Option<(&str, ReservationKind)>,
    rounds: usize,
) {
    let s = Arc::new(Subnet::with_options(subnet.parse().unwrap(), opts).unwrap());
    if let Some((cidr, kind)) = reserve {
        s.add_reservation(cidr.parse().unwrap(), kind).unwrap();
    }
    let mut mine: Vec<Vec<IpNet>> = vec![Vec::new(); 4];
    let mut i = 0;
    while let Ok(a) = s.allocate_prefix(len) {
        mine[i % 4].push(a.cidr);
        i += 1;
    }
    assert!(i >= 4, "{subnet}: only {i} runs of /{len}");
    let handles: Vec<_> = mine
        .into_iter()
        .map(|mut held| {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                for k in 0..rounds {
                    let i = k % held.len();
                    s.release(held[i]).unwrap();
                    held[i] = s
                        .allocate_prefix(len)
                        .unwrap_or_else(|e| {
                            panic!("spurious failure after releasing {}: {e}", held[i])
                        })
                        .cidr;
                }
                held
            })
        })
        .collect();
    let all: Vec<IpNet> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), i);
    assert_disjoint(&all);
    s.verify().unwrap();
}

#[test]
fn release_then_allocate_never_fails_spuriously_in_a_full_subnet() {
    let none = SubnetOptions::default().profile(ReservedProfile::None);
    churn_full("10.0.0.0/24", none, 28, None, 30_000);
    churn_full("10.0.0.0/26", none, 32, None, 20_000);
    churn_full(
        "10.0.0.0/25",
        none.placement(Placement::FirstFit),
        29,
        None,
        20_000,
    );
    churn_full(
        "10.0.0.0/25",
        none.placement(Placement::Random { seed: 5 }),
        28,
        None,
        20_000,
    );
    churn_full(
        "10.0.0.0/24",
        SubnetOptions::default(),
        30,
        Some(("10.0.0.64/26", ReservationKind::Explicit)),
        20_000,
    );
    churn_full(
        "10.0.0.0/24",
        none,
        28,
        Some(("10.0.0.128/26", ReservationKind::Prefix)),
        20_000,
    );
    churn_full(
        "2001:db8::/64",
        SubnetOptions::default(),
        80,
        Some(("2001:db8::/72", ReservationKind::Prefix)),
        10_000,
    );
}

#[test]
fn churn_across_bitmap_pages_keeps_the_page_directory_exact() {
    // A /15 is two bitmap pages (65,536 units each), so releases and claims also flip the
    // directory bits that say which pages hold free space; a stale one would hide the freed /28
    // and fail the request that follows it.
    let none = SubnetOptions::default().profile(ReservedProfile::None);
    churn_full("10.0.0.0/15", none, 28, None, 10_000);
    churn_full(
        "10.0.0.0/15",
        none.placement(Placement::Random { seed: 11 }),
        28,
        None,
        10_000,
    );
    hammer(
        "10.0.0.0/15".parse().unwrap(),
        none.placement(Placement::Random { seed: 12 }),
        4,
        25_000,
        28,
    );
}
