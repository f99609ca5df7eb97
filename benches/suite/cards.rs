//! What serving several network cards costs a pod: an assign + release pair through
//! `MultiCardNode` on a c6in.32xlarge (two cards, one /28 each, no cooldown), beside the same
//! pair on card 0's `Node` directly, the baseline, in the same run.

use criterion::{BenchmarkId, Criterion};
use pdipam::cards::{CardOptions, MultiCardNode};
use pdipam::limits::InstanceLimits;
use pdipam::{
    Clock, InterfaceFlags, InterfaceSpec, ManualClock, NodeConfig, PodKey, PodRequest, Timestamp,
};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// Two cards (one with `multi_nic` off), each with one interface at device 0 holding one /28;
/// card 0's /28 filled with 16 pods when `card0_full`.
fn cards(multi_nic: bool, card0_full: bool) -> MultiCardNode {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
    let config = NodeConfig::new().cooldown(Duration::ZERO);
    let options = CardOptions::new().multi_nic(multi_nic);
    let limits = InstanceLimits::lookup("c6in.32xlarge").unwrap();
    let node = MultiCardNode::with_clock(limits, config, &options, clock).unwrap();
    for (card, n) in node.cards() {
        let spec = InterfaceSpec::new("eni-0", 0, format!("10.{card}.0.10").parse().unwrap());
        let flags = InterfaceFlags {
            primary: card == 0,
            ..Default::default()
        };
        n.attach_interface(spec.flags(flags)).unwrap();
        n.attach_prefix("eni-0", format!("10.{card}.1.0/28").parse().unwrap())
            .unwrap();
    }
    if card0_full {
        for i in 0..16 {
            let key = PodKey::new("aws-cni", format!("full{i}"), "eth0");
            node.card(0).unwrap().assign(PodRequest::new(key)).unwrap();
        }
    }
    node
}

pub fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("cards_assign_release");
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    let keys: Vec<PodKey> = (0..64)
        .map(|i| PodKey::new("aws-cni", format!("ctr-{i}"), "eth0"))
        .collect();
    let mut i = 0;
    let mut next = || {
        i = (i + 1) % keys.len();
        keys[i].clone()
    };
    let base = cards(false, false);
    g.bench_function(BenchmarkId::new("node", "card-0"), |b| {
        let n = base.card(0).unwrap();
        b.iter(|| {
            let k = next();
            black_box(n.assign(PodRequest::new(k.clone())).unwrap());
            black_box(n.release(&k).unwrap());
        })
    });
    for (label, node) in [
        ("one-card", cards(false, false)),
        ("two-cards", cards(true, false)),
        ("two-cards/card-0-full", cards(true, true)),
    ] {
        g.bench_function(BenchmarkId::new("cards", label), |b| {
            b.iter(|| {
                let k = next();
                black_box(node.assign(PodRequest::new(k.clone())).unwrap());
                black_box(node.release(&k).unwrap());
            })
        });
    }
    let multi = cards(true, false);
    g.bench_function(BenchmarkId::new("cards", "two-cards/multi-nic"), |b| {
        b.iter(|| {
            let k = next();
            black_box(multi.assign_multi_nic(PodRequest::new(k.clone())).unwrap());
            black_box(multi.release(&k).unwrap());
        })
    });
    g.finish();
}
