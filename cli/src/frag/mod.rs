//! `pdipam frag`: diagnoses a real subnet from `aws ec2 describe-network-interfaces` and
//! `aws ec2 get-subnet-cidr-reservations` output: free addresses and /28s, what spoils the /28s,
//! and which prefix reservation would give the most of them back.

mod advice;
mod aws;
mod free;
mod load;

use crate::census::Census;
use crate::map::{self, Owners};
use crate::words::count;
use advice::{InterfaceSpoil, Suggestion};
use clap::Parser;
use ipnet::IpNet;
use pdipam::{Holder, Reservation};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

/// Spoilers and interfaces listed.
const LIST: usize = 10;

#[derive(Parser)]
pub struct Args {
    /// The subnet's IPv4 CIDR, e.g. 10.0.0.0/20.
    #[arg(long, value_name = "CIDR", value_parser = crate::cidr::parse)]
    subnet: IpNet,
    /// Output of `aws ec2 describe-network-interfaces` (interfaces of other subnets are skipped).
    #[arg(long, value_name = "FILE")]
    network_interfaces: PathBuf,
    /// Output of `aws ec2 get-subnet-cidr-reservations --subnet-id ...`.
    #[arg(long, value_name = "FILE")]
    reservations: Option<PathBuf>,
    /// Write an SVG map of the subnet: one cell per /28, coloured by holder.
    #[arg(long, value_name = "FILE.svg")]
    map: Option<PathBuf>,
    /// Plan the cheapest way to get N /28s back (kept free by prefix reservations), in the
    /// order to carry it out, instead of the diagnosis.
    #[arg(long, value_name = "N")]
    free: Option<u32>,
    /// With --free: a node's checkpoint (pdipam's, or ipamd's ipam.json) for instance NODE,
    /// saying which of its addresses pods use and which sit idle (repeatable). Without one, each
    /// secondary address of the node counts as one pod's.
    #[arg(long = "ipam-checkpoint", value_name = "NODE=FILE")]
    ipam_checkpoint: Vec<String>,
    /// JSON output for machines.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    subnet: IpNet,
    total: u64,
    reserved_by_aws: u64,
    interfaces: usize,
    interfaces_elsewhere: usize,
    single_addresses: u64,
    prefixes: u64,
    reservations: Vec<Reservation>,
    free: u64,
    available: u64,
    free_28s: u64,
    /// Free /28s where automatic prefix assignment looks (outside explicit reservations, ...).
    free_28s_for_automatic_prefixes: u64,
    largest_free_block: Option<IpNet>,
    fragmentation: f64,
    /// What an automatic /28 would get now: a prefix, or the cloud's error.
    automatic_28: Result<IpNet, String>,
    /// When it fails: the explanation, as text.
    why: Option<String>,
    /// Single addresses that alone spoil a /28: releasing one gives its /28 back.
    spoilers: Vec<Spoiler>,
    interfaces_spoiling: Vec<InterfaceSpoil>,
    /// Best prefix reservation of each length, best first.
    reservation_suggestions: Vec<Suggestion>,
}

#[derive(Serialize)]
struct Spoiler {
    address: String,
    interface: Option<String>,
    frees: Option<IpNet>,
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if !matches!(args.subnet, IpNet::V4(_)) || args.subnet.prefix_len() > 28 {
        return Err(format!(
            "--subnet {}: frag diagnoses IPv4 subnets of /28 or larger (prefixes are /28s)",
            args.subnet
        )
        .into());
    }
    let loaded = load::load(
        args.subnet,
        &args.network_interfaces,
        args.reservations.as_deref(),
    )?;
    if let Some(blocks) = args.free {
        let pods = free::pod_use(&args.ipam_checkpoint)?;
        let report = free::plan(&loaded, args.subnet, blocks, &pods)?;
        if let Some(path) = &args.map {
            let census = Census::of(&loaded.subnet)?;
            write_map(path, &loaded, &census, &report.marks())?;
        }
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            free::print(&report, &mut out)?;
            if let Some(path) = &args.map {
                writeln!(out, "map: {}", path.display())?;
            }
        }
        return Ok(());
    }
    let subnet = &loaded.subnet;
    let census = Census::of(subnet)?;
    let stats = subnet.stats();
    let why = subnet.explain_prefix_failure(28)?;
    let automatic_28 = match subnet.allocate_prefix(28) {
        Ok(a) => {
            // A trial on the in-process copy: give it back so every figure stays as read.
            subnet.release(a.cidr)?;
            Ok(a.cidr)
        }
        Err(e) => Err(e.to_string()),
    };
    let (mut singles, mut prefixes) = (0, 0);
    for h in subnet.allocations() {
        match h {
            Holder::Address(_) => singles += 1,
            Holder::Prefix(_) => prefixes += 1,
            Holder::Reserved(_) => {}
        }
    }
    let report = Report {
        subnet: args.subnet,
        total: stats.total,
        reserved_by_aws: stats.reserved,
        interfaces: loaded.interfaces,
        interfaces_elsewhere: loaded.interfaces_elsewhere,
        single_addresses: singles,
        prefixes,
        reservations: subnet.reservations(),
        free: stats.free,
        available: stats.available,
        free_28s: stats.free_blocks_of(28),
        free_28s_for_automatic_prefixes: why.free_blocks,
        largest_free_block: stats.largest_free_block,
        fragmentation: stats.fragmentation,
        why: automatic_28.is_err().then(|| why.to_string()),
        automatic_28,
        spoilers: why
            .spoilers
            .iter()
            .filter(|s| s.sole > 0)
            .filter_map(|s| match s.holder {
                Holder::Address(a) => Some(Spoiler {
                    address: a.to_string(),
                    interface: loaded.address_owner.get(&a).cloned(),
                    frees: s.example,
                }),
                _ => None,
            })
            .take(LIST)
            .collect(),
        interfaces_spoiling: advice::interfaces(&census, &loaded.address_owner, LIST),
        reservation_suggestions: advice::reservations(&census),
    };

    if let Some(path) = &args.map {
        write_map(path, &loaded, &census, &map::Marks::default())?;
    }
    if args.json {
        // Written, not printed: a closed pipe is an error `main` treats as success.
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&report)?
        )?;
        return Ok(());
    }
    print(&report, args)?;
    Ok(())
}

/// The map of the subnet, prefixes coloured by interface, with a plan's marks if any.
fn write_map(
    path: &std::path::Path,
    loaded: &load::Loaded,
    census: &Census,
    marks: &map::Marks,
) -> Result<(), String> {
    let mut names: Vec<String> = loaded.prefix_owner.values().cloned().collect();
    names.sort();
    names.dedup();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let owner_of = |p: IpNet| {
        loaded
            .prefix_owner
            .get(&p)
            .and_then(|n| index.get(n.as_str()).copied())
            .unwrap_or(0)
    };
    map::write_marked(
        path,
        census,
        &Owners {
            names: names.clone(),
            owner_of: &owner_of,
        },
        marks,
    )
}

fn print(r: &Report, args: &Args) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "subnet {}: {}, {} reserved by AWS",
        r.subnet,
        count(r.total, "address", "addresses"),
        r.reserved_by_aws
    )?;
    write!(
        out,
        "in use: {} with {} and {}",
        count(r.interfaces as u64, "interface", "interfaces"),
        count(r.single_addresses, "address", "addresses"),
        count(r.prefixes, "prefix", "prefixes")
    )?;
    if r.interfaces_elsewhere > 0 {
        write!(
            out,
            " ({} of other subnets skipped)",
            count(r.interfaces_elsewhere as u64, "interface", "interfaces")
        )?;
    }
    writeln!(out)?;
    if !r.reservations.is_empty() {
        let list: Vec<String> = r
            .reservations
            .iter()
            .map(|x| format!("{} {}", x.cidr, x.kind))
            .collect();
        writeln!(out, "reservations: {}", list.join(", "))?;
    }
    writeln!(
        out,
        "free: {} ({} available as AWS counts them)",
        count(r.free, "address", "addresses"),
        r.available
    )?;
    writeln!(
        out,
        "free aligned /28s: {} ({} where automatic prefixes look); largest free block: {}; \
         fragmentation {:.2}",
        r.free_28s,
        r.free_28s_for_automatic_prefixes,
        r.largest_free_block
            .map_or("none".to_string(), |b| b.to_string()),
        r.fragmentation
    )?;
    match &r.automatic_28 {
        Ok(p) => writeln!(out, "an automatic /28 now: succeeds ({p} would be chosen)")?,
        Err(e) => writeln!(out, "an automatic /28 now: {e}")?,
    }
    if let Some(why) = &r.why {
        for (i, line) in why.lines().enumerate() {
            writeln!(out, "{}{line}", if i == 0 { "why: " } else { "     " })?;
        }
    }
    writeln!(out)?;

    if r.spoilers.is_empty() {
        writeln!(out, "no single address alone spoils a /28")?;
    } else {
        writeln!(
            out,
            "addresses that alone spoil a /28 (releasing one gives its /28 back):"
        )?;
        for s in &r.spoilers {
            writeln!(
                out,
                "  {} on {}: frees {}",
                s.address,
                s.interface.as_deref().unwrap_or("?"),
                s.frees.map_or("?".to_string(), |b| b.to_string())
            )?;
        }
    }
    if !r.interfaces_spoiling.is_empty() {
        writeln!(out, "interfaces whose addresses spoil the most /28s:")?;
        for i in &r.interfaces_spoiling {
            writeln!(
                out,
                "  {}: {} in {}, {} of them alone",
                i.interface,
                count(i.addresses, "address", "addresses"),
                count(i.spoils, "/28", "/28s"),
                i.alone
            )?;
        }
    }
    writeln!(out)?;

    match r.reservation_suggestions.split_first() {
        None => writeln!(
            out,
            "no prefix reservation would give back or keep free a /28 while leaving room for \
             the single addresses"
        )?,
        Some((best, rest)) => {
            writeln!(out, "the prefix reservation that gives the most /28s back:")?;
            writeln!(out, "  {}", suggestion(best))?;
            writeln!(
                out,
                "  aws ec2 create-subnet-cidr-reservation --subnet-id SUBNET --cidr {} \
                 --reservation-type prefix",
                best.cidr
            )?;
            if !rest.is_empty() {
                writeln!(out, "other sizes:")?;
                for s in rest.iter().take(3) {
                    writeln!(out, "  {}", suggestion(s))?;
                }
            }
        }
    }
    if let Some(path) = &args.map {
        writeln!(out, "map: {}", path.display())?;
    }
    Ok(())
}

fn suggestion(s: &Suggestion) -> String {
    format!(
        "{}: gives back {} as its {} released, keeps {} free; {} stay outside it",
        s.cidr,
        count(s.gives_back, "/28", "/28s"),
        count(
            s.single_addresses_inside,
            "single address is",
            "single addresses are"
        ),
        count(s.free_now, "free /28", "free /28s"),
        count(s.free_outside, "free address", "free addresses"),
    )
}
