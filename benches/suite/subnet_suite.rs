//! The subnet cases the scaling group does not cover, each beside the naive model: the three
//! placement policies, fragmented states (50%, 90% and 99% of the /28s broken by one single
//! address each), a prefix reservation nearly full, and an IPv6 /64 tracked in /80s. Each case
//! times one allocate + release pair on a state built once.

use super::Alloc;
use criterion::{BenchmarkId, Criterion};
use ipnet::IpNet;
use pdipam::testing::NaiveSubnet;
use pdipam::{Placement, ReservationKind, ReservedProfile, Subnet, SubnetOptions};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// What a case needs beyond [`Alloc`]: building with options, and reservations.
trait Built: Alloc + Sized {
    fn build(cidr: IpNet, o: SubnetOptions) -> Self;
    fn reserve(&mut self, cidr: IpNet, kind: ReservationKind);
}

impl Built for Subnet {
    fn build(cidr: IpNet, o: SubnetOptions) -> Self {
        Subnet::with_options(cidr, o).unwrap()
    }
    fn reserve(&mut self, cidr: IpNet, kind: ReservationKind) {
        self.add_reservation(cidr, kind).unwrap()
    }
}

impl Built for NaiveSubnet {
    fn build(cidr: IpNet, o: SubnetOptions) -> Self {
        NaiveSubnet::with_options(cidr, o).unwrap()
    }
    fn reserve(&mut self, cidr: IpNet, kind: ReservationKind) {
        self.add_reservation(cidr, kind).unwrap()
    }
}

/// A deterministic shuffle of `0..n`.
fn order(n: u32, mut seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    v
}

fn v4(u: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + u))
}

/// A /16 where `pct`% of the /28s (chosen at random) hold one single address each.
fn fragmented<A: Built>(pct: u32, placement: Placement) -> A {
    let o = SubnetOptions::default()
        .profile(ReservedProfile::None)
        .placement(placement);
    let mut a = A::build("10.0.0.0/16".parse().unwrap(), o);
    let broken = 4096 * pct / 100;
    for (i, b) in order(4096, 0x51_7CC1_B727_220A)
        .into_iter()
        .take(broken as usize)
        .enumerate()
    {
        a.ip_at(v4(b * 16 + (i as u32 * 7) % 16));
    }
    a
}

/// A /16 with a /18 prefix reservation whose /28s are all taken but one, with fallback on.
fn reserved<A: Built>() -> A {
    let o = SubnetOptions::default().profile(ReservedProfile::None);
    let mut a = A::build("10.0.0.0/16".parse().unwrap(), o);
    a.reserve("10.0.64.0/18".parse().unwrap(), ReservationKind::Prefix);
    for b in 0..1023u32 {
        a.prefix_at(
            format!("10.0.{}.{}/28", 64 + b / 16, b % 16 * 16)
                .parse()
                .unwrap(),
        );
    }
    a
}

/// An IPv6 /64 (65536 /80s) with the lower half taken as /76s.
fn ipv6<A: Built>() -> A {
    let net: IpNet = "2001:db8:7:1::/64".parse().unwrap();
    let mut a = A::build(net, SubnetOptions::default().profile(ReservedProfile::None));
    let base = match net.addr() {
        IpAddr::V6(x) => u128::from(x),
        IpAddr::V4(_) => unreachable!(),
    };
    for b in 0..2048u128 {
        let addr = std::net::Ipv6Addr::from(base + (b << 52));
        a.prefix_at(IpNet::new(IpAddr::V6(addr), 76).unwrap());
    }
    a
}

fn pair_timed<A: Alloc>(a: &mut A, len: u8, iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        let p = a.prefix(len).expect("a free block remains");
        a.release(black_box(p));
    }
    t.elapsed()
}

pub fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("subnet_suite");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    type Make<A> = fn() -> A;
    let cases: Vec<(String, u8, Make<Subnet>, Make<NaiveSubnet>)> = vec![
        (
            "placement-pack/16-90pct-broken".into(),
            28,
            || fragmented(90, Placement::Pack),
            || fragmented(90, Placement::Pack),
        ),
        (
            "placement-first-fit/16-90pct-broken".into(),
            28,
            || fragmented(90, Placement::FirstFit),
            || fragmented(90, Placement::FirstFit),
        ),
        (
            "placement-random/16-90pct-broken".into(),
            28,
            || fragmented(90, Placement::Random { seed: 3 }),
            || fragmented(90, Placement::Random { seed: 3 }),
        ),
        (
            "fragmented/16-50pct-broken".into(),
            28,
            || fragmented(50, Placement::Pack),
            || fragmented(50, Placement::Pack),
        ),
        (
            "fragmented/16-99pct-broken".into(),
            28,
            || fragmented(99, Placement::Pack),
            || fragmented(99, Placement::Pack),
        ),
        (
            "reservation/16-prefix-18-full-but-one".into(),
            28,
            reserved,
            reserved,
        ),
        ("ipv6/64-at-80-half-taken".into(), 80, ipv6, ipv6),
    ];
    for (name, len, fast, naive) in cases {
        let mut a = fast();
        g.bench_function(BenchmarkId::new("pdipam", &name), |b| {
            b.iter_custom(|iters| pair_timed(&mut a, len, iters))
        });
        drop(a);
        let mut m = naive();
        g.bench_function(BenchmarkId::new("naive", &name), |b| {
            b.iter_custom(|iters| pair_timed(&mut m, len, iters))
        });
    }
    g.finish();
}
