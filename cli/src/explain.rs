//! `pdipam explain`: grows a node of the given type to N pods with the planner, on an in-process
//! subnet, and prints the warm pool the settings keep and what it costs.

use crate::warm::WarmArgs;
use clap::Parser;
use pdipam::{
    limits::{InstanceLimits, HOST_NETWORK_PODS},
    planner::{explain, plan, Rule},
    provider::{execute, LocalProvider},
    AddressMode, Clock, ManualClock, Node, NodeConfig, PodKey, PodRequest, Subnet, SubnetOptions,
    Timestamp,
};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
pub struct Args {
    /// The instance type, e.g. m5.large.
    #[arg(long)]
    instance_type: String,
    #[command(flatten)]
    warm: WarmArgs,
    /// Pods running on the node.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pods: u32,
    /// JSON output for machines.
    #[arg(long)]
    json: bool,
}

/// The one rule every command applies, as it states it: max pods counts the two host-network
/// pods, which take no address, so at most `max_pods - 2` pods get one.
pub fn pod_room(max_pods: u32) -> String {
    format!(
        "max pods {max_pods}: {} with an address beside {HOST_NETWORK_PODS} host-network pods",
        crate::words::count(max_pods.saturating_sub(HOST_NETWORK_PODS), "pod", "pods")
    )
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let limits = InstanceLimits::lookup(&args.instance_type)?;
    let settings = args.warm.settings();
    let mode = args.warm.mode();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
    // A subnet large enough never to be the limit: the question is about the node.
    let subnet = Arc::new(Subnet::with_options(
        "10.0.0.0/12".parse()?,
        SubnetOptions::default(),
    )?);
    let config = NodeConfig::new().mode(mode);
    let node = Node::with_clock(limits.clone(), config, clock.clone());
    let mut cloud = LocalProvider::new("explain", subnet);
    cloud.boot(&node)?;
    // Pods beyond max pods - 2 are never placed: the scheduler would not send them.
    let room = explain(limits, &settings, &node.snapshot(), clock.now())
        .max_pods
        .saturating_sub(HOST_NETWORK_PODS);
    let wanted = args.pods.min(room);
    let mut placed = 0u32;
    for _ in 0..200 {
        while placed < wanted {
            let key = PodKey::new("explain", format!("pod-{placed}"), "eth0");
            if node.assign(PodRequest::new(key)).is_err() {
                break;
            }
            placed += 1;
        }
        let p = plan(limits, &settings, &node.snapshot(), clock.now());
        if p.actions.is_empty() && (placed == wanted || !p.holdbacks.is_empty()) {
            break;
        }
        execute(&node, &p, &mut cloud);
        clock.advance(Duration::from_secs(31));
    }
    let snap = node.snapshot();
    let e = explain(limits, &settings, &snap, clock.now());
    let blocks: usize = snap.interfaces.iter().map(|i| i.serving().count()).sum();
    let rule = match e.rule {
        Rule::IpTargets => "WARM_IP_TARGET / MINIMUM_IP_TARGET",
        Rule::WarmPrefix => "WARM_PREFIX_TARGET",
        Rule::WarmEni => "WARM_ENI_TARGET",
        _ => "IPv6 prefix",
    };
    // Written, not printed: a closed pipe is an error `main` treats as success.
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "instance_type": limits.instance_type,
                "mode": mode,
                "pods_wanted": args.pods,
                "pods_placed": placed,
                "pods_with_address_max": room,
                "max_pods": e.max_pods,
                "rule": rule,
                "target_available": e.target_available,
                "target_total": e.target_total,
                "target_prefixes": e.target_prefixes,
                "attached": e.total,
                "blocks": blocks,
                "interfaces": snap.interfaces.len(),
                "idle": e.idle_after,
            })
        )?;
        return Ok(());
    }
    let unit = if mode == AddressMode::Prefix {
        ("prefix", "prefixes")
    } else {
        ("secondary address", "secondary addresses")
    };
    let addresses = |n: u32| crate::words::count(n, "address", "addresses");
    writeln!(
        out,
        "{} in {} mode, {}{} ({})",
        limits.instance_type,
        if mode == AddressMode::Prefix {
            "prefix"
        } else {
            "secondary-IP"
        },
        crate::words::count(placed, "pod", "pods"),
        if placed < args.pods {
            let why = if placed == room {
                "max pods reached"
            } else {
                "the node is full"
            };
            format!(" of {} wanted: {why}", args.pods)
        } else {
            String::new()
        },
        pod_room(e.max_pods)
    )?;
    writeln!(out, "rule: {rule}")?;
    match e.target_prefixes {
        Some(p) => writeln!(
            out,
            "keeps available: {}; wants {} for these pods",
            addresses(e.target_available),
            crate::words::count(p, "prefix", "prefixes")
        )?,
        None => writeln!(out, "keeps available: {}", addresses(e.target_available))?,
    }
    if e.target_total > 0 {
        writeln!(
            out,
            "keeps attached at least: {}",
            addresses(e.target_total)
        )?;
    }
    writeln!(
        out,
        "attached: {} in {} on {}",
        addresses(e.total),
        crate::words::count(blocks as u64, unit.0, unit.1),
        crate::words::count(snap.interfaces.len() as u64, "interface", "interfaces")
    )?;
    writeln!(out, "idle: {}", addresses(e.idle_after))?;
    Ok(())
}
