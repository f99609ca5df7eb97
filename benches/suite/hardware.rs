//! What the machine charges for the atomic instructions pdipam's lock-free paths are built from,
//! one thread, no contention. The workloads' floors follow from these: a CPU runs locked
//! instructions one at a time, and W5, for one, executes ten per pair (two of them 128-bit
//! compare-and-swaps), so no W5 pair takes less than their sum, whatever the rest of the code
//! does (69-83 ns on the machine of 2026-11-23). BENCHMARKS.md gives the counts per workload.

use criterion::Criterion;
use portable_atomic::AtomicU128;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

/// A load and a compare-and-swap of one atomic, timed as an uncontended path swaps it (the
/// expected value matches): once with the expected value taken from the last swap's result, so
/// that each swap waits for the one before, and once read from the atomic first, as the code
/// does. `AtomicU64` and portable-atomic's `AtomicU128` share these methods but no trait.
macro_rules! load_and_swaps {
    ($g:expr, $name:literal, $atomic:expr, $ty:ty) => {{
        let x = &$atomic;
        $g.bench_function(concat!($name, "-load"), |b| {
            b.iter(|| black_box(x).load(SeqCst))
        });
        let mut next: $ty = x.load(SeqCst);
        $g.bench_function(concat!($name, "-compare_exchange"), |b| {
            b.iter(|| {
                let r = black_box(x).compare_exchange(next, next + 1, SeqCst, SeqCst);
                next = r.unwrap_or_else(|actual| actual) + <$ty>::from(r.is_ok());
                black_box(r)
            })
        });
        $g.bench_function(concat!($name, "-load+compare_exchange"), |b| {
            b.iter(|| {
                let cur = x.load(SeqCst);
                black_box(black_box(x).compare_exchange(cur, cur + 1, SeqCst, SeqCst))
            })
        });
    }};
}

pub fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("hardware");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    // The bracket of a change in flight (`Activity`), a level-1 summary bit.
    let a = AtomicU64::new(0);
    g.bench_function("u64-fetch_add", |b| {
        b.iter(|| black_box(&a).fetch_add(1, SeqCst))
    });
    // A level-0 summary entry.
    load_and_swaps!(g, "u64", a, u64);
    // A word of the bitmap: occupancy and boundaries in one compare-and-swap, dispatched at run
    // time by portable-atomic on the default x86-64 target.
    load_and_swaps!(g, "u128", AtomicU128::new(0), u128);
    g.finish();
}
