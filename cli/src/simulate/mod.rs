//! `pdipam simulate`: pods scheduled over nodes of one type that draw their addresses, through
//! the warm-pool planner, from one in-process subnet; optionally churned. Reports every node, the
//! subnet, and every refusal with what stood in the way.

mod cluster;
mod report;

use crate::census::Census;
use crate::map::{self, Owners};
use crate::progress::Progress;
use crate::warm::WarmArgs;
use clap::{Parser, ValueEnum};
use cluster::{Cluster, Scenario};
use ipnet::IpNet;
use pdipam::{
    limits::InstanceLimits, AddressMode, BlockKind, Placement, Reservation, Subnet, SubnetOptions,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    Pack,
    FirstFit,
    Random,
}

#[derive(Parser)]
pub struct Args {
    /// The subnet the nodes share, e.g. 10.0.0.0/20 (IPv4).
    #[arg(long, value_name = "CIDR", value_parser = crate::cidr::parse)]
    subnet: IpNet,
    /// The nodes' instance type, e.g. m5.large.
    #[arg(long)]
    instance_type: String,
    /// How many nodes (at most 10000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_NODES as i64))]
    nodes: u32,
    /// How many pods to schedule over them.
    #[arg(long, value_name = "P")]
    pods: u64,
    #[command(flatten)]
    warm: WarmArgs,
    /// Where the subnet places addresses and prefixes.
    #[arg(long, value_enum, default_value = "pack")]
    policy: Policy,
    /// A subnet CIDR reservation, CIDR:prefix or CIDR:explicit (repeatable).
    #[arg(long, value_name = "CIDR:KIND", value_parser = parse_reservation)]
    reserve: Vec<Reservation>,
    /// Churn rounds after the pods are placed: each round a random quarter of the running pods
    /// leave and as many new ones arrive (at most 10000 rounds).
    #[arg(long, value_name = "ROUNDS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=MAX_CHURN_ROUNDS as i64))]
    churn: u32,
    /// Seed for churn and for the random policy: the same seed gives the same run.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Write an SVG map of the subnet: one cell per /28, coloured by holder.
    #[arg(long, value_name = "FILE.svg")]
    map: Option<PathBuf>,
    /// JSON output for machines.
    #[arg(long)]
    json: bool,
}

/// Nodes one run simulates: each is a whole pdipam node (about 10 KB).
const MAX_NODES: u32 = 10_000;
/// Pods running at once in one run: what a run can hold in memory and settle in seconds.
const MAX_PODS_AT_ONCE: u64 = 1_000_000;
/// Churn rounds in one run.
const MAX_CHURN_ROUNDS: u32 = 10_000;
/// Pods moved over all churn rounds (rounds x pods running): about two minutes of work.
const MAX_CHURN_WORK: u64 = 100_000_000;

/// Refuses, before anything is built, a run larger than it can do, naming the limit.
fn check_size(args: &Args, room_per_node: u32) -> Result<(), String> {
    let at_once = args
        .pods
        .min(u64::from(args.nodes) * u64::from(room_per_node));
    if at_once > MAX_PODS_AT_ONCE {
        return Err(format!(
            "--pods {} on --nodes {} would run {at_once} pods at once ({room_per_node} per \
             node); simulate runs at most {MAX_PODS_AT_ONCE}: lower --pods or --nodes",
            args.pods, args.nodes
        ));
    }
    let work = at_once.saturating_mul(u64::from(args.churn));
    if work > MAX_CHURN_WORK {
        return Err(format!(
            "--churn {} rounds over {at_once} running pods is {work} pod-rounds; simulate does \
             at most {MAX_CHURN_WORK} in one run: lower --churn or --pods",
            args.churn
        ));
    }
    Ok(())
}

fn parse_reservation(text: &str) -> Result<Reservation, String> {
    let (cidr, kind) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?}: expected CIDR:prefix or CIDR:explicit"))?;
    let cidr = crate::cidr::parse(cidr).map_err(|e| format!("{e} (in {text:?})"))?;
    Ok(Reservation {
        cidr,
        kind: kind.parse()?,
    })
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let limits = InstanceLimits::lookup(&args.instance_type)?;
    let mode = args.warm.mode();
    if mode == AddressMode::Prefix && !limits.supports_prefix_delegation() {
        return Err(format!(
            "{} is not a Nitro instance type: prefix delegation is not available there \
             (use --mode secondary)",
            limits.instance_type
        )
        .into());
    }
    if !matches!(args.subnet, IpNet::V4(_)) {
        return Err(format!(
            "--subnet {}: simulate takes an IPv4 subnet (an IPv6 node needs a single /80)",
            args.subnet
        )
        .into());
    }
    let room = Cluster::max_pods_of(limits, &args.warm.settings(), mode)
        .saturating_sub(pdipam::limits::HOST_NETWORK_PODS);
    check_size(args, room)?;
    let placement = match args.policy {
        Policy::Pack => Placement::Pack,
        Policy::FirstFit => Placement::FirstFit,
        Policy::Random => Placement::Random { seed: args.seed },
    };
    let subnet = Arc::new(Subnet::with_options(
        args.subnet,
        SubnetOptions::default().placement(placement),
    )?);
    if let Some(path) = &args.map {
        map::check(path, args.subnet)?;
    }
    for r in &args.reserve {
        subnet
            .add_reservation(r.cidr, r.kind)
            .map_err(|e| format!("--reserve {}:{}: {e}", r.cidr, r.kind))?;
    }
    let scenario = Scenario {
        limits: limits.clone(),
        settings: args.warm.settings(),
        mode,
        nodes: args.nodes as usize,
        seed: args.seed,
    };

    let mut progress = Progress::new(1 + u64::from(args.churn));
    let mut cluster = Cluster::boot(subnet.clone(), scenario);
    progress.message(format!("placing {} pods", args.pods));
    cluster.schedule(args.pods);
    cluster.settle(|| progress.poke());
    progress.step();
    for round in 1..=args.churn {
        progress.message(format!("churn round {round}"));
        cluster.churn();
        cluster.settle(|| progress.poke());
        progress.step();
    }
    progress.finish();

    let report = report::Report::of(&cluster, args.pods, args.churn);
    if let Some(path) = &args.map {
        write_map(path, &cluster)?;
    }
    if args.json {
        // Written, not printed: a closed pipe is an error `main` treats as success.
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&report)?
        )?;
    } else {
        report.print(args.map.as_deref())?;
    }
    Ok(())
}

/// The map, with each prefix coloured by the node holding it.
fn write_map(path: &std::path::Path, cluster: &Cluster) -> Result<(), String> {
    let census = Census::of(&cluster.subnet)?;
    let mut owner: HashMap<IpNet, usize> = HashMap::new();
    for (k, n) in cluster.nodes.iter().enumerate() {
        for iface in n.node.snapshot().interfaces {
            for b in iface.blocks.iter().filter(|b| b.kind == BlockKind::Prefix) {
                owner.insert(b.cidr, k);
            }
        }
    }
    let owner_of = |p: IpNet| owner.get(&p).copied().unwrap_or(0);
    let owners = Owners {
        names: cluster.nodes.iter().map(|n| n.name.clone()).collect(),
        owner_of: &owner_of,
    };
    map::write(path, &census, &owners)
}
