//! The defragmentation planner on a /16 with 20,000 holders (single addresses of random cost,
//! one in twenty pinned), for goals of 100, 1000 and 4000 /28s. Baseline, in the same run:
//! sorting the holders by address, which the planner does first (the least it can cost).

use criterion::{BenchmarkId, Criterion};
use ipnet::Ipv4Net;
use pdipam::defrag::{plan, Goal, HolderCost, MoveCost, PinReason};
use std::hint::black_box;
use std::net::Ipv4Addr;

fn holders() -> Vec<HolderCost> {
    let mut rng = 0x243f_6a88_85a3_08d3u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut offsets: Vec<u32> = Vec::new();
    let mut seen = vec![false; 65536];
    while offsets.len() < 20_000 {
        let o = (next() % 65536) as usize;
        if !seen[o] {
            seen[o] = true;
            offsets.push(o as u32);
        }
    }
    offsets
        .into_iter()
        .map(|o| HolderCost {
            held: Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + o), 32).unwrap(),
            cost: if next() % 20 == 0 {
                MoveCost::Pinned(PinReason::Unknown)
            } else {
                MoveCost::Move {
                    pods: (next() % 3) as u32,
                    interfaces: u32::from(next() % 10 == 0),
                }
            },
        })
        .collect()
}

pub fn benches(c: &mut Criterion) {
    let subnet: Ipv4Net = "10.0.0.0/16".parse().unwrap();
    let hs = holders();
    let mut g = c.benchmark_group("defrag_16_20000_holders");
    g.sample_size(20);
    g.bench_function("baseline/sort_holders", |b| {
        b.iter(|| {
            let mut v = hs.clone();
            v.sort_by_key(|h| u32::from(h.held.network()));
            black_box(v)
        })
    });
    for blocks in [100u32, 1000, 4000] {
        g.bench_with_input(BenchmarkId::new("plan", blocks), &blocks, |b, &blocks| {
            b.iter(|| black_box(plan(subnet, &hs, &[], Goal { blocks, len: 28 }).unwrap()))
        });
    }
    g.finish();
}
