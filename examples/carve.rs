//! Carves one subnet the way EC2 does and the way pdipam does, and prints what each leaves behind.
//!
//! `cargo run --release --example carve`
//!
//! A /22 receives 400 single secondary addresses (secondary-IP nodes) and then as many /28
//! prefixes as it will take (prefix-delegation nodes). With cloud-like scattered placement the
//! singles spoil almost every aligned /28, and prefix delegation fails with
//! `InsufficientCidrBlocks` while hundreds of addresses are free. With `Pack` the same singles
//! share a few /28s and the prefixes keep coming.
//!
//! Then the node side: max pods for a few instance types, and a t3.small node growing its warm
//! pool as pods arrive, its prefixes carved from an in-process subnet.

use pdipam::{
    limits::{max_pods, InstanceLimits, MaxPodsOptions},
    planner::{explain, plan, WarmSettings},
    provider::{execute, LocalProvider},
    Clock, ManualClock, Node, NodeConfig, Placement, PodKey, PodRequest, ReservationKind, Subnet,
    SubnetError, SubnetOptions, SubnetStats, Timestamp,
};
use std::sync::Arc;
use std::time::Duration;

const SUBNET: &str = "10.20.0.0/22";
const SINGLES: usize = 400;

fn carve(title: &str, options: SubnetOptions, reserve: bool) -> Result<(), SubnetError> {
    let subnet = Subnet::with_options(SUBNET.parse().expect("valid CIDR"), options)?;
    if reserve {
        // What AWS recommends against fragmentation: set space aside for prefixes.
        subnet.add_reservation(
            "10.20.2.0/23".parse().expect("valid CIDR"),
            ReservationKind::Prefix,
        )?;
    }
    for _ in 0..SINGLES {
        subnet.allocate_ip()?;
    }
    let mut prefixes = 0;
    let failure = loop {
        match subnet.allocate_prefix(28) {
            Ok(_) => prefixes += 1,
            Err(e) => break e,
        }
    };
    let stats = subnet.stats();
    println!("== {title}");
    println!("   {SINGLES} secondary addresses, then {prefixes} /28 prefixes delegated");
    print_stats(&stats);
    println!("   next /28: {failure}");
    if matches!(failure, SubnetError::InsufficientCidrBlocks { .. }) {
        let why = subnet.explain_prefix_failure(28)?;
        for line in why.to_string().lines().take(6) {
            println!("   | {line}");
        }
    }
    subnet.verify().expect("invariants hold");
    println!();
    Ok(())
}

fn print_stats(s: &SubnetStats) {
    println!(
        "   {}: {} addresses, {} free ({} available as AWS counts them), {} free /28s, largest free block {}, fragmentation {:.2}",
        s.cidr,
        s.total,
        s.free,
        s.available,
        s.free_blocks_of(28),
        s.largest_free_block.map_or("none".to_string(), |b| b.to_string()),
        s.fragmentation
    );
}

/// The node side: how many pods fit, and what the warm pool costs while pods arrive, on an
/// in-process subnet.
fn node_side() -> Result<(), Box<dyn std::error::Error>> {
    println!("== node side");
    for t in ["t3.small", "m5.large", "m5.8xlarge", "m4.xlarge"] {
        let secondary = max_pods(t, &MaxPodsOptions::default())?;
        let pd = max_pods(
            t,
            &MaxPodsOptions {
                prefix_delegation: true,
                ..Default::default()
            },
        )?;
        let note = pd.fallback.map_or(String::new(), |f| format!(" ({f})"));
        println!(
            "   {t}: max pods {} in secondary-IP mode, {} in prefix mode ({} uncapped){note}",
            secondary.max_pods, pd.max_pods, pd.uncapped
        );
    }
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
        1_700_000_000_000_000_000,
    )));
    let subnet = Arc::new(Subnet::new("10.30.0.0/24".parse()?)?);
    let limits = InstanceLimits::lookup("t3.small")?;
    let node = Node::with_clock(limits.clone(), NodeConfig::default(), clock.clone());
    let mut cloud = LocalProvider::new("demo", subnet.clone());
    cloud.boot(&node)?;
    let settings = WarmSettings::shipped_manifest();
    println!(
        "   t3.small, prefix mode, WARM_PREFIX_TARGET=1, on {}:",
        subnet.cidr()
    );
    for pods in [0u32, 5, 17, 40] {
        while node.pod_count() < pods as usize {
            let key = PodKey::new("demo", format!("pod-{}", node.pod_count()), "eth0");
            if node.assign(PodRequest::new(key)).is_err() {
                break; // pending: the planner grows the node below
            }
        }
        for _ in 0..5 {
            let p = plan(limits, &settings, &node.snapshot(), clock.now());
            if p.actions.is_empty() {
                break;
            }
            execute(&node, &p, &mut cloud);
            clock.advance(Duration::from_secs(31));
        }
        while node.pod_count() < pods as usize {
            let key = PodKey::new("demo", format!("pod-{}", node.pod_count()), "eth0");
            if node.assign(PodRequest::new(key)).is_err() {
                break;
            }
        }
        let snap = node.snapshot();
        let e = explain(limits, &settings, &snap, clock.now());
        let prefixes: usize = snap.interfaces.iter().map(|i| i.serving().count()).sum();
        println!(
            "   {:>3} pods wanted, {:>3} placed: {} interfaces, {prefixes} prefixes, {} addresses attached, {} idle{}",
            pods,
            node.pod_count(),
            snap.interfaces.len(),
            snap.total(),
            e.idle_after,
            if node.pod_count() < pods as usize { " (max pods reached)" } else { "" },
        );
    }
    node.verify()?;
    subnet.verify().map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    carve(
        "cloud-like scatter (Random)",
        SubnetOptions::default().placement(Placement::Random { seed: 42 }),
        false,
    )?;
    carve(
        "cloud-like scatter, with a /23 prefix reservation",
        SubnetOptions::default().placement(Placement::Random { seed: 42 }),
        true,
    )?;
    carve("pdipam Pack", SubnetOptions::default(), false)?;
    node_side()
}
