//! `pdipam inspect FILE`: what a pdipam checkpoint (node or subnet) or an ipamd
//! `vpc-cni-ipam/1` file holds. A node checkpoint kept as two generations (`NAME` and
//! `NAME.1`, as pdipam-cni keeps its own) is read as a whole: given either file, the newest
//! generation that opens is summarised, with where it is and what is wrong with the other.

use crate::words::count;
use clap::Parser;
use ipnet::IpNet;
use pdipam::persist::{
    read_vpc_cni, Generations, NodeCheckpoint, PersistError, SubnetCheckpoint, VPC_CNI_VERSION,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Parser)]
pub struct Args {
    /// The file: a pdipam node or subnet checkpoint, or ipamd's ipam.json.
    file: PathBuf,
    /// JSON output for machines.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let name = args.file.display().to_string();
    let report = match generations_base(&args.file) {
        Some(base) => generations(&base)?,
        None => one_file(&args.file, &name)?,
    };
    // Written, not printed: a reader that closes the pipe early is an error `main` treats as
    // success, where `println!` would panic.
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{report}")?;
    } else {
        write_text(&mut out, &report)?;
    }
    Ok(())
}

/// The checkpoint name when `file` is one of two generations (`NAME` beside `NAME.1`, or
/// `NAME.1` itself).
fn generations_base(file: &Path) -> Option<PathBuf> {
    let text = file.as_os_str().to_string_lossy();
    let base = match text.strip_suffix(".1") {
        Some(b) => PathBuf::from(b),
        None => file.to_path_buf(),
    };
    let [first, second] = Generations::files_of(&base);
    (first.exists() && second.exists()).then_some(base)
}

/// The newest generation of a two-file node checkpoint, with where it is and the other file's
/// state.
fn generations(base: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    let (gens, newest) = Generations::open(base)?;
    let newest = newest.ok_or_else(|| format!("{}: no generation", base.display()))?;
    let mut report = node(&newest);
    let file = gens.newest_file().map(|f| f.display().to_string());
    let other = Generations::files_of(base)
        .into_iter()
        .map(|f| f.display().to_string())
        .find(|f| Some(f) != file.as_ref());
    report["generations"] = json!({
        "newest": file,
        "other": other,
        "damaged": gens.damaged().map(|(_, why)| why.to_string()),
    });
    Ok(report)
}

fn one_file(file: &Path, name: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(file).map_err(|e| format!("{name}: {e}"))?;
    let head: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{name}: not JSON: {e}"))?;
    Ok(if head["version"] == VPC_CNI_VERSION {
        vpc_cni(&bytes, name)?
    } else if head["kind"] == "subnet" {
        subnet(&SubnetCheckpoint::from_bytes(&bytes, name)?, name)?
    } else {
        node(&NodeCheckpoint::from_bytes(&bytes, name)?)
    })
}

/// The /28 (IPv4) or /80 (IPv6) an address falls in: the unit the summaries count by.
fn block_of(a: IpAddr) -> IpNet {
    let len = if a.is_ipv4() { 28 } else { 80 };
    IpNet::new(a, len)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(a))
}

fn node(cp: &NodeCheckpoint) -> Value {
    let mut blocks: BTreeMap<IpNet, (u32, u32)> = BTreeMap::new();
    let interfaces: Vec<Value> = cp
        .interfaces
        .iter()
        .map(|i| {
            for p in &i.prefixes {
                blocks.insert(*p, (0, 0));
            }
            for a in &i.secondary_addresses {
                blocks.insert(IpNet::from(*a), (0, 0));
            }
            json!({
                "id": i.id, "device_number": i.device_number, "primary_address": i.primary_address,
                "prefixes": i.prefixes.len(), "secondary_addresses": i.secondary_addresses.len(),
            })
        })
        .collect();
    // (pods, cooling) per attached block.
    let mut per_block = blocks;
    let mut count = |a: IpAddr, cooling: bool| {
        if let Some((_, v)) = per_block.iter_mut().find(|(b, _)| b.contains(&a)) {
            if cooling {
                v.1 += 1
            } else {
                v.0 += 1
            }
        }
    };
    cp.pods.iter().for_each(|p| count(p.address, false));
    cp.cooling.iter().for_each(|c| count(c.address, true));
    json!({
        "kind": "node",
        "instance_type": cp.limits.instance_type,
        "mode": cp.config.mode,
        "written_at": cp.written_at,
        "interfaces": interfaces,
        "blocks": per_block.iter().map(|(b, (pods, cooling))| json!({
            "cidr": b, "pods": pods, "cooling": cooling,
        })).collect::<Vec<_>>(),
        "pods": cp.pods.len(),
        "cooling": cp.cooling.len(),
        "quarantined": cp.quarantined.iter().map(|q| json!({
            "key": format!("{}/{}/{}", q.network_name, q.container_id, q.if_name),
            "address": q.address,
        })).collect::<Vec<_>>(),
        "settings": cp.settings,
    })
}

fn subnet(cp: &SubnetCheckpoint, name: &str) -> Result<Value, PersistError> {
    let s = cp.restore(name)?;
    let st = s.stats();
    Ok(json!({
        "kind": "subnet",
        "cidr": cp.cidr,
        "profile": cp.profile,
        "placement": cp.placement,
        "reservations": cp.reservations,
        "prefixes": cp.prefixes.len(),
        "addresses": cp.addresses.len(),
        "free_addresses": st.available,
        "free_28s": st.free_blocks_of(28),
        "largest_free_block": st.largest_free_block,
        "fragmentation": st.fragmentation,
    }))
}

/// ipamd's file knows allocations only, not which blocks are attached: its pods are grouped by
/// the /28 (IPv4) or /80 (IPv6) their address lies in, which in prefix mode is the prefix.
fn vpc_cni(bytes: &[u8], name: &str) -> Result<Value, PersistError> {
    let entries = read_vpc_cni(bytes, name)?;
    let mut per_block: BTreeMap<IpNet, Vec<Value>> = BTreeMap::new();
    for e in &entries {
        let pod = if e.metadata.pod_name.is_empty() {
            Value::Null
        } else {
            json!(format!("{}/{}", e.metadata.namespace, e.metadata.pod_name))
        };
        per_block
            .entry(block_of(e.address))
            .or_default()
            .push(json!({
                "address": e.address,
                "key": e.key.to_string(),
                "pod": pod,
            }));
    }
    for pods in per_block.values_mut() {
        pods.sort_by_key(|p| p["address"].as_str().and_then(|a| a.parse::<IpAddr>().ok()));
    }
    Ok(json!({
        "kind": VPC_CNI_VERSION,
        "pods": entries.len(),
        "blocks": per_block.iter().map(|(b, pods)| json!({
            "cidr": b, "pods": pods.len(), "allocations": pods,
        })).collect::<Vec<_>>(),
    }))
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn write_text(out: &mut impl Write, r: &Value) -> std::io::Result<()> {
    match r["kind"].as_str() {
        Some("node") => {
            writeln!(
                out,
                "node checkpoint: {}, {} mode",
                r["instance_type"].as_str().unwrap_or("?"),
                r["mode"].as_str().unwrap_or("?")
            )?;
            let g = &r["generations"];
            if let Some(newest) = g["newest"].as_str() {
                writeln!(
                    out,
                    "  newest of two generations: {newest} (written at {})",
                    r["written_at"]
                )?;
                match g["damaged"].as_str() {
                    Some(why) => writeln!(
                        out,
                        "  the other, {}, does not open (taken for a write cut short): {why}",
                        g["other"].as_str().unwrap_or("?")
                    )?,
                    None => writeln!(
                        out,
                        "  the other, {}, holds the generation before it",
                        g["other"].as_str().unwrap_or("?")
                    )?,
                }
            }
            for i in r["interfaces"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "  interface {} (device {}, primary {}): {}, {}",
                    i["id"].as_str().unwrap_or("?"),
                    i["device_number"],
                    i["primary_address"].as_str().unwrap_or("?"),
                    count(n(&i["prefixes"]), "prefix", "prefixes"),
                    count(
                        n(&i["secondary_addresses"]),
                        "secondary address",
                        "secondary addresses"
                    )
                )?;
            }
            for b in r["blocks"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "  {:<20} {}, {} cooling",
                    b["cidr"].as_str().unwrap_or("?"),
                    count(n(&b["pods"]), "pod", "pods"),
                    b["cooling"]
                )?;
            }
            writeln!(out, "pods: {}, cooling: {}", r["pods"], r["cooling"])?;
            let q = r["quarantined"].as_array().cloned().unwrap_or_default();
            writeln!(out, "quarantined: {}", q.len())?;
            for e in q {
                writeln!(
                    out,
                    "  {} at {}",
                    e["key"].as_str().unwrap_or("?"),
                    e["address"].as_str().unwrap_or("?")
                )?;
            }
        }
        Some("subnet") => {
            writeln!(
                out,
                "subnet checkpoint: {}",
                r["cidr"].as_str().unwrap_or("?")
            )?;
            writeln!(
                out,
                "  {}, {}, {}",
                count(n(&r["prefixes"]), "prefix", "prefixes"),
                count(n(&r["addresses"]), "single address", "single addresses"),
                count(
                    r["reservations"].as_array().map_or(0, Vec::len) as u64,
                    "reservation",
                    "reservations"
                )
            )?;
            writeln!(
                out,
                "  free addresses {}, free /28s {}, largest free block {}, fragmentation {:.2}",
                r["free_addresses"],
                r["free_28s"],
                r["largest_free_block"].as_str().unwrap_or("none"),
                r["fragmentation"].as_f64().unwrap_or(0.0)
            )?;
        }
        _ => {
            let blocks = r["blocks"].as_array().cloned().unwrap_or_default();
            writeln!(
                out,
                "{} file: {} in {} (ipamd records no attachments: blocks are the /28 or /80 \
                 each address lies in)",
                VPC_CNI_VERSION,
                count(n(&r["pods"]), "pod", "pods"),
                count(blocks.len() as u64, "block", "blocks")
            )?;
            for b in blocks {
                writeln!(
                    out,
                    "  {:<20} {}",
                    b["cidr"].as_str().unwrap_or("?"),
                    count(n(&b["pods"]), "pod", "pods")
                )?;
                for a in b["allocations"].as_array().into_iter().flatten() {
                    writeln!(
                        out,
                        "    {:<18} {}{}",
                        a["address"].as_str().unwrap_or("?"),
                        a["key"].as_str().unwrap_or("?"),
                        a["pod"]
                            .as_str()
                            .map(|p| format!(" ({p})"))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
    }
    Ok(())
}
