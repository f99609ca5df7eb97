//! `pdipam explain`: grows a node of the given type to N pods with the planner, on an in-process
//! subnet, and prints the warm pool the settings keep and what it costs.

use crate::warm::WarmArgs;
use clap::Parser;
use pdipam::{
    limits::InstanceLimits,
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
    let mut placed = 0u32;
    for _ in 0..200 {
        while placed < args.pods {
            let key = PodKey::new("explain", format!("pod-{placed}"), "eth0");
            if node.assign(PodRequest::new(key)).is_err() {
                break;
            }
            placed += 1;
        }
        let p = plan(limits, &settings, &node.snapshot(), clock.now());
        if p.actions.is_empty() && (placed == args.pods || !p.holdbacks.is_empty()) {
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
        "prefixes"
    } else {
        "secondary addresses"
    };
    writeln!(
        out,
        "{} in {} mode, {placed} pods{} (max pods {})",
        limits.instance_type,
        if mode == AddressMode::Prefix {
            "prefix"
        } else {
            "secondary-IP"
        },
        if placed < args.pods {
            format!(" of {} wanted: the node is full", args.pods)
        } else {
            String::new()
        },
        e.max_pods
    )?;
    writeln!(out, "rule: {rule}")?;
    match e.target_prefixes {
        Some(p) => writeln!(
            out,
            "keeps available: {} addresses; wants {p} {} for these pods",
            e.target_available,
            if p == 1 { "prefix" } else { "prefixes" }
        )?,
        None => writeln!(out, "keeps available: {} addresses", e.target_available)?,
    }
    if e.target_total > 0 {
        writeln!(out, "keeps attached at least: {} addresses", e.target_total)?;
    }
    writeln!(
        out,
        "attached: {} addresses in {blocks} {unit} on {} interfaces",
        e.total,
        snap.interfaces.len()
    )?;
    writeln!(out, "idle: {} addresses", e.idle_after)?;
    Ok(())
}
