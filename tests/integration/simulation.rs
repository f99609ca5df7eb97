//! A group of nodes scaling up and down on one subnet through `LocalProvider`, under every
//! placement policy and several warm settings, with the cross-structure invariants checked after
//! every step.

use pdipam::{
    limits::InstanceLimits,
    planner::{plan, Rule, WarmSettings},
    provider::{execute, LocalProvider},
    AddressMode, BlockKind, Clock, Holder, ManualClock, Node, NodeConfig, Placement, PodKey,
    PodRequest, Subnet, SubnetOptions, Timestamp,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Member {
    node: Node,
    provider: LocalProvider,
    pods: Vec<PodKey>,
    next: u64,
}

fn check(subnet: &Subnet, members: &[Member], settings: &WarmSettings, settled: bool) {
    subnet.verify().unwrap();
    let mut seen: HashSet<ipnet::IpNet> = HashSet::new();
    for m in members {
        m.node.verify().unwrap();
        let snap = m.node.snapshot();
        let limits = m.node.limits();
        assert!(snap.interfaces.len() as u32 <= limits.max_enis);
        let mut own: HashSet<ipnet::IpNet> = HashSet::new();
        for i in &snap.interfaces {
            assert!(
                i.slots_used(pdipam::IpFamily::V4) <= limits.ipv4_per_eni,
                "{}",
                i.id
            );
            let primary = ipnet::IpNet::from(i.primary_address);
            assert!(seen.insert(primary), "{primary} on two interfaces");
            assert_eq!(
                subnet.holder(i.primary_address).unwrap(),
                Some(Holder::Address(i.primary_address))
            );
            for b in &i.blocks {
                assert!(seen.insert(b.cidr), "{} owned twice", b.cidr);
                own.insert(b.cidr);
                let want = match b.kind {
                    BlockKind::Prefix => Holder::Prefix(b.cidr),
                    BlockKind::Secondary => Holder::Address(b.cidr.addr()),
                };
                assert_eq!(subnet.holder(b.cidr.addr()).unwrap(), Some(want));
            }
        }
        for p in m.node.pods() {
            assert!(own.contains(&p.block), "{} outside its node", p.address);
            assert!(p.block.contains(&p.address));
        }
        if settled {
            let p = plan(limits, settings, &snap, m.node.clock().now());
            assert!(
                !p.actions.iter().any(|a| !a.is_growth()),
                "still something to release after settling: {p:?}"
            );
            if p.explanation.rule == Rule::WarmPrefix {
                assert!(snap.empty_blocks() <= settings.warm_prefix_target.max(1));
            }
        }
    }
    // Everything the subnet hands out belongs to some node.
    for h in subnet.allocations() {
        let net = match h {
            Holder::Prefix(p) => p,
            Holder::Address(a) => ipnet::IpNet::from(a),
            Holder::Reserved(_) => continue,
        };
        assert!(
            seen.contains(&net),
            "{net} leaked: held in the subnet by no node"
        );
    }
}

fn run(placement: Placement, mode: AddressMode, settings: WarmSettings, seed: u64) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
        1_000_000_000_000,
    )));
    let opts = SubnetOptions::default().placement(placement);
    let subnet = Arc::new(Subnet::with_options("10.8.0.0/22".parse().unwrap(), opts).unwrap());
    let limits = InstanceLimits::lookup("m5.large").unwrap();
    let mut members: Vec<Member> = (0..4)
        .map(|n| {
            let node =
                Node::with_clock(limits.clone(), NodeConfig::new().mode(mode), clock.clone());
            let mut provider = LocalProvider::new(format!("n{n}"), subnet.clone());
            provider.boot(&node).unwrap();
            Member {
                node,
                provider,
                pods: Vec::new(),
                next: 0,
            }
        })
        .collect();
    let mut rng = Rng(seed | 1);
    let mut wanted: HashMap<usize, u64> = HashMap::new();
    for step in 0..120 {
        // Scale up for 60 steps, then down.
        let up = step < 60;
        for (i, m) in members.iter_mut().enumerate() {
            let target = wanted.entry(i).or_insert(0);
            *target = if up {
                (*target + rng.below(6)).min(70)
            } else {
                target.saturating_sub(rng.below(6))
            };
            while (m.pods.len() as u64) > *target {
                let k = m.pods.swap_remove(rng.below(m.pods.len() as u64) as usize);
                m.node.release(&k).unwrap();
            }
            while (m.pods.len() as u64) < *target {
                let k = PodKey::new("net", format!("c{}", m.next), "eth0");
                if m.node.assign(PodRequest::new(k.clone())).is_err() {
                    break; // pending until the planner grows the node
                }
                m.next += 1;
                m.pods.push(k);
            }
            let p = plan(m.node.limits(), &settings, &m.node.snapshot(), clock.now());
            execute(&m.node, &p, &mut m.provider);
        }
        clock.advance(Duration::from_secs(10));
        check(&subnet, &members, &settings, false);
    }
    // Let cooldowns and timers run out; then nothing above the targets remains attached.
    for _ in 0..12 {
        clock.advance(Duration::from_secs(31));
        for m in &mut members {
            let p = plan(m.node.limits(), &settings, &m.node.snapshot(), clock.now());
            execute(&m.node, &p, &mut m.provider);
        }
    }
    clock.advance(Duration::from_secs(31));
    check(&subnet, &members, &settings, true);
}

fn settings_cases() -> Vec<(AddressMode, WarmSettings)> {
    vec![
        (AddressMode::Prefix, WarmSettings::shipped_manifest()),
        (
            AddressMode::Prefix,
            WarmSettings::new().warm_prefix_target(2),
        ),
        (
            AddressMode::Prefix,
            WarmSettings::new().warm_prefix_target(0),
        ),
        (
            AddressMode::Prefix,
            WarmSettings::new().warm_ip_target(5).minimum_ip_target(10),
        ),
        (AddressMode::Secondary, WarmSettings::default()),
        (
            AddressMode::Secondary,
            WarmSettings::new().warm_ip_target(3),
        ),
    ]
}

#[test]
fn nodes_scale_up_and_down_on_one_subnet_under_every_policy() {
    for placement in [
        Placement::Pack,
        Placement::FirstFit,
        Placement::Random { seed: 7 },
    ] {
        for (mode, settings) in settings_cases() {
            for seed in [1, 0xdead_beef] {
                run(placement, mode, settings.clone(), seed);
            }
        }
    }
}
