//! `pdipam frag ... --free N`: the cheapest plan that gives N /28s back, in the order to carry it
//! out (`pdipam::defrag`). Costs come from the AWS CLI's output: a secondary address holds one
//! pod, unless a node checkpoint given for its instance (`--ipam-checkpoint NODE=FILE`, pdipam's
//! or ipamd's `ipam.json`) says whether a pod uses it, and which; the primary address of an
//! interface that is not an instance's primary one costs its pods and detaching it; an
//! instance's primary address, a requester-managed interface, a delegated prefix and the
//! subnet's reserved addresses cannot move.

use super::load::{InterfaceInfo, Loaded};
use crate::words::count;
use ipnet::{IpNet, Ipv4Net};
use pdipam::defrag::{self, Cost, ExistingReservation, Goal, HolderCost, MoveCost, PinReason};
use pdipam::{Holder, ReservationKind};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;

/// The pods of each node whose checkpoint was given: instance id to (address to pod name).
pub type PodUse = HashMap<String, HashMap<IpAddr, String>>;

/// Reads `NODE=FILE` checkpoints: pdipam's node checkpoint or ipamd's `vpc-cni-ipam/1` file.
///
/// # Errors
/// A malformed argument or an unreadable file, naming it.
pub fn pod_use(args: &[String]) -> Result<PodUse, Box<dyn std::error::Error>> {
    let mut out = PodUse::new();
    for arg in args {
        let Some((node, file)) = arg.split_once('=') else {
            return Err(format!("--ipam-checkpoint {arg:?}: expected NODE=FILE").into());
        };
        let bytes = std::fs::read(file).map_err(|e| format!("--ipam-checkpoint {file}: {e}"))?;
        let head: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("--ipam-checkpoint {file}: not JSON: {e}"))?;
        let pods = out.entry(node.to_string()).or_default();
        let named = |ns: &str, name: &str, key: &str| {
            if name.is_empty() {
                key.to_string()
            } else {
                format!("{ns}/{name}")
            }
        };
        if head["version"] == pdipam::persist::VPC_CNI_VERSION {
            for e in pdipam::persist::read_vpc_cni(&bytes, file)? {
                let name = named(
                    &e.metadata.namespace,
                    &e.metadata.pod_name,
                    e.key.container_id(),
                );
                pods.insert(e.address, name);
            }
        } else {
            let cp = pdipam::persist::NodeCheckpoint::from_bytes(&bytes, file)?;
            for p in cp.pods.iter().chain(&cp.quarantined) {
                let name = named(&p.metadata.namespace, &p.metadata.pod_name, &p.container_id);
                pods.insert(p.address, name);
            }
        }
    }
    Ok(out)
}

#[derive(Serialize)]
pub struct Report {
    subnet: IpNet,
    goal: u32,
    already: u32,
    after: u32,
    met: bool,
    pods: u64,
    interfaces: u64,
    reservations: u64,
    steps: Vec<Step>,
    room_needed: u64,
    room_available: u64,
    pinned: Vec<Pinned>,
}

#[derive(Serialize)]
struct Step {
    reserve: Ipv4Net,
    command: String,
    moves: Vec<Move>,
    pods: u64,
    interfaces: u64,
    /// /28s free in prefix reservations once this step is done.
    free_after: u32,
}

#[derive(Serialize)]
struct Move {
    address: IpAddr,
    interface: Option<String>,
    instance: Option<String>,
    /// "secondary" (restart its pod, then unassign it) or "primary" (detach the interface).
    kind: &'static str,
    pods: u32,
    /// The pod using it, when a checkpoint of its node says.
    pod: Option<String>,
}

#[derive(Serialize)]
struct Pinned {
    holder: IpNet,
    why: String,
}

/// What moving each single address costs, worked out once: the pods on each interface are
/// counted in one pass over the addresses, not once per primary address.
fn costs(loaded: &Loaded, pods: &PodUse) -> HashMap<IpAddr, MoveCost> {
    // Without its node's checkpoint, a secondary address counts as one pod's.
    let used = |a: &IpAddr, info: &InterfaceInfo| {
        info.instance
            .as_ref()
            .and_then(|i| pods.get(i))
            .map_or(1, |known| u32::from(known.contains_key(a)))
    };
    let mut on_interface: HashMap<&str, u32> = HashMap::new();
    for (a, name) in &loaded.address_owner {
        if let Some(info) = loaded.interface_info.get(name) {
            if info.primary != Some(*a) {
                *on_interface.entry(name.as_str()).or_default() += used(a, info);
            }
        }
    }
    loaded
        .address_owner
        .iter()
        .map(|(a, name)| {
            let cost = match loaded.interface_info.get(name) {
                None => MoveCost::Pinned(PinReason::Unknown),
                Some(info) if info.requester_managed => {
                    MoveCost::Pinned(PinReason::RequesterManaged)
                }
                Some(info) if info.primary != Some(*a) => MoveCost::Move {
                    pods: used(a, info),
                    interfaces: 0,
                },
                Some(info) if info.device_index == Some(0) => {
                    MoveCost::Pinned(PinReason::InstancePrimary)
                }
                Some(_) => MoveCost::Move {
                    pods: on_interface.get(name.as_str()).copied().unwrap_or(0),
                    interfaces: 1,
                },
            };
            (*a, cost)
        })
        .collect()
}

pub fn plan(
    loaded: &Loaded,
    cidr: IpNet,
    blocks: u32,
    pods: &PodUse,
) -> Result<Report, Box<dyn std::error::Error>> {
    let IpNet::V4(subnet) = cidr else {
        return Err(format!("--subnet {cidr}: --free plans IPv4 subnets").into());
    };
    let v4 = |n: IpNet| match n {
        IpNet::V4(n) => Some(n),
        IpNet::V6(_) => None,
    };
    let costs = costs(loaded, pods);
    let holders: Vec<HolderCost> = loaded
        .subnet
        .allocations()
        .into_iter()
        .filter_map(|h| {
            let (held, cost) = match h {
                Holder::Reserved(a) => {
                    (IpNet::from(a), MoveCost::Pinned(PinReason::SubnetReserved))
                }
                Holder::Prefix(p) => (p, MoveCost::Pinned(PinReason::Prefix)),
                Holder::Address(a) => (
                    IpNet::from(a),
                    costs
                        .get(&a)
                        .copied()
                        .unwrap_or(MoveCost::Pinned(PinReason::Unknown)),
                ),
            };
            v4(held).map(|held| HolderCost { held, cost })
        })
        .collect();
    let reservations: Vec<ExistingReservation> = loaded
        .subnet
        .reservations()
        .into_iter()
        .filter_map(|r| {
            v4(r.cidr).map(|cidr| ExistingReservation {
                cidr,
                prefix: r.kind == ReservationKind::Prefix,
            })
        })
        .collect();
    let p = defrag::plan(subnet, &holders, &reservations, Goal { blocks, len: 28 })?;
    let pods_of = pods;
    let mut free = p.already;
    let steps = p
        .regions
        .iter()
        .map(|r| {
            free += r.blocks;
            Step {
                reserve: r.cidr,
                command: format!(
                    "aws ec2 create-subnet-cidr-reservation --subnet-id SUBNET --cidr {} \
                     --reservation-type prefix",
                    r.cidr
                ),
                moves: r
                    .moves
                    .iter()
                    .map(|m| {
                        let a = IpAddr::V4(m.held.network());
                        let cost = costs
                            .get(&a)
                            .copied()
                            .unwrap_or(MoveCost::Pinned(PinReason::Unknown));
                        let owner = loaded
                            .address_owner
                            .get(&a)
                            .and_then(|n| loaded.interface_info.get(n).map(|i| (n, i)));
                        let (n_pods, kind) = match cost {
                            MoveCost::Move { pods, interfaces } if interfaces > 0 => {
                                (pods, "primary")
                            }
                            MoveCost::Move { pods, .. } => (pods, "secondary"),
                            MoveCost::Pinned(_) => (0, "secondary"),
                        };
                        let instance = owner.and_then(|(_, i)| i.instance.clone());
                        let pod = instance
                            .as_ref()
                            .and_then(|i| pods_of.get(i))
                            .and_then(|k| k.get(&a))
                            .cloned();
                        Move {
                            address: a,
                            interface: owner.map(|(n, _)| n.clone()),
                            instance,
                            kind,
                            pods: n_pods,
                            pod,
                        }
                    })
                    .collect(),
                pods: r.cost.pods,
                interfaces: r.cost.interfaces,
                free_after: free,
            }
        })
        .collect();
    let Cost {
        pods,
        interfaces,
        reservations,
    } = p.cost;
    Ok(Report {
        subnet: cidr,
        goal: blocks,
        already: p.already,
        after: p.after,
        met: p.met,
        pods,
        interfaces,
        reservations,
        steps,
        room_needed: p.room.needed,
        room_available: p.room.available,
        pinned: p
            .pinned
            .iter()
            .map(|h| Pinned {
                holder: IpNet::V4(h.held),
                why: match h.cost {
                    MoveCost::Pinned(r) => r.to_string(),
                    MoveCost::Move { .. } => "movable".into(),
                },
            })
            .collect(),
    })
}

impl Report {
    /// What the map marks: the regions to reserve and the addresses to move.
    pub fn marks(&self) -> crate::map::Marks {
        crate::map::Marks {
            regions: self.steps.iter().map(|s| s.reserve).collect(),
            moved: self
                .steps
                .iter()
                .flat_map(|s| s.moves.iter().map(|m| m.address))
                .collect(),
        }
    }
}

pub fn print(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "plan for {} in prefix reservations on {} ({} there now): {} restarted, {} detached, {}",
        count(u64::from(r.goal), "free /28", "free /28s"),
        r.subnet,
        r.already,
        count(r.pods, "pod", "pods"),
        count(r.interfaces, "interface", "interfaces"),
        count(r.reservations, "reservation", "reservations")
    )?;
    for (i, s) in r.steps.iter().enumerate() {
        writeln!(out, "step {}: {}", i + 1, s.command)?;
        for m in &s.moves {
            let at = format!(
                "{} on {}{}",
                m.address,
                m.interface.as_deref().unwrap_or("?"),
                m.instance
                    .as_deref()
                    .map_or(String::new(), |i| format!(" ({i})"))
            );
            match m.kind {
                "primary" => writeln!(
                    out,
                    "  {at}, its primary address: move {} off it, then detach and delete it",
                    count(u64::from(m.pods), "pod", "pods")
                )?,
                _ if m.pods == 0 => writeln!(out, "  {at}: no pod uses it; unassign it")?,
                _ => match &m.pod {
                    Some(pod) => writeln!(out, "  {at}: move pod {pod}, then unassign it")?,
                    None => writeln!(out, "  {at}: move its pod, then unassign it")?,
                },
            }
        }
        writeln!(
            out,
            "  cost {}, {}; free /28s in prefix reservations after step {}: {}",
            count(s.pods, "pod", "pods"),
            count(s.interfaces, "interface", "interfaces"),
            i + 1,
            s.free_after
        )?;
    }
    if r.steps.is_empty() && r.met {
        writeln!(
            out,
            "nothing to do: the prefix reservations hold enough free /28s"
        )?;
    }
    writeln!(
        out,
        "moved pods need {} outside the reservations: {} there",
        count(r.room_needed, "free address", "free addresses"),
        r.room_available
    )?;
    if !r.met {
        writeln!(
            out,
            "the goal cannot be met: the cheapest plan reaching the most gives {}; these cannot \
             move:",
            count(u64::from(r.after), "/28", "/28s")
        )?;
        for p in &r.pinned {
            writeln!(out, "  {} ({})", p.holder, p.why)?;
        }
    }
    Ok(())
}
