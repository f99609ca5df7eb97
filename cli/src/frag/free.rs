//! `pdipam frag ... --free N`: the cheapest plan that gives N /28s back, in the order to carry it
//! out (`pdipam::defrag`). Costs come from the AWS CLI's output alone: a secondary address is
//! taken to hold one pod; the primary address of an interface that is not an instance's
//! primary one costs its pods and detaching it; an instance's primary address, a
//! requester-managed interface, a delegated prefix and the subnet's reserved addresses cannot
//! move.

use super::load::{InterfaceInfo, Loaded};
use crate::words::count;
use ipnet::{IpNet, Ipv4Net};
use pdipam::defrag::{self, Cost, ExistingReservation, Goal, HolderCost, MoveCost, PinReason};
use pdipam::{Holder, ReservationKind};
use serde::Serialize;
use std::io::Write;
use std::net::IpAddr;

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
}

#[derive(Serialize)]
struct Pinned {
    holder: IpNet,
    why: String,
}

fn cost_of(a: IpAddr, loaded: &Loaded) -> (MoveCost, Option<(&String, &InterfaceInfo)>) {
    let Some(name) = loaded.address_owner.get(&a) else {
        return (MoveCost::Pinned(PinReason::Unknown), None);
    };
    let Some(info) = loaded.interface_info.get(name) else {
        return (MoveCost::Pinned(PinReason::Unknown), None);
    };
    let cost = if info.requester_managed {
        MoveCost::Pinned(PinReason::RequesterManaged)
    } else if info.primary != Some(a) {
        MoveCost::Move {
            pods: 1,
            interfaces: 0,
        }
    } else if info.device_index == Some(0) {
        MoveCost::Pinned(PinReason::InstancePrimary)
    } else {
        MoveCost::Move {
            pods: info.secondaries,
            interfaces: 1,
        }
    };
    (cost, Some((name, info)))
}

pub fn plan(
    loaded: &Loaded,
    cidr: IpNet,
    blocks: u32,
) -> Result<Report, Box<dyn std::error::Error>> {
    let IpNet::V4(subnet) = cidr else {
        return Err(format!("--subnet {cidr}: --free plans IPv4 subnets").into());
    };
    let v4 = |n: IpNet| match n {
        IpNet::V4(n) => Some(n),
        IpNet::V6(_) => None,
    };
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
                Holder::Address(a) => (IpNet::from(a), cost_of(a, loaded).0),
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
                        let (cost, owner) = cost_of(a, loaded);
                        let (pods, kind) = match cost {
                            MoveCost::Move { pods, interfaces } if interfaces > 0 => {
                                (pods, "primary")
                            }
                            MoveCost::Move { pods, .. } => (pods, "secondary"),
                            MoveCost::Pinned(_) => (0, "secondary"),
                        };
                        Move {
                            address: a,
                            interface: owner.map(|(n, _)| n.clone()),
                            instance: owner.and_then(|(_, i)| i.instance.clone()),
                            kind,
                            pods,
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
                _ if m.pods == 0 => writeln!(out, "  {at}: unassign it")?,
                _ => writeln!(out, "  {at}: move its pod, then unassign it")?,
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
