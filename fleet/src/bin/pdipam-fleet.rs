//! `pdipam-fleet` (also `pdipam fleet ...`): an operator's view of a fleet subnet in etcd.
//!
//! `pdipam-fleet --etcd http://127.0.0.1:2379 status --subnet 10.0.0.0/16`

use clap::{Parser, Subcommand};
use ipnet::IpNet;
use pdipam::{Reservation, ReservationKind, ReservedProfile};
use pdipam_fleet::{
    add_reservation, release_node, remove_reservation, verify, Credentials, Etcd, FleetConfig,
    FleetReport, FleetSubnet, Keyspace, Reclaimer,
};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "pdipam fleet",
    bin_name = "pdipam fleet",
    version,
    about = "One subnet shared by many nodes through etcd: create, inspect, check, reclaim"
)]
struct Cli {
    /// etcd endpoints, comma-separated (http://127.0.0.1:2379).
    #[arg(long, value_name = "URL,...", value_delimiter = ',', required = true)]
    etcd: Vec<String>,
    /// The keyspace root the fleet lives under.
    #[arg(long, value_name = "PATH", default_value = "")]
    root: String,
    /// Seconds every etcd call may take.
    #[arg(long, value_name = "S", default_value_t = 5)]
    timeout: u64,
    /// The CA that signed etcd's certificate (PEM), for https:// endpoints.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// A client certificate (PEM), for etcd's --client-cert-auth; with --key-file.
    #[arg(long, value_name = "FILE", requires = "key_file")]
    cert_file: Option<std::path::PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert_file")]
    key_file: Option<std::path::PathBuf>,
    /// An etcd user; its password is read from --password-file.
    #[arg(long, value_name = "NAME", requires = "password_file")]
    user: Option<String>,
    /// The file holding the user's password (never given on the command line).
    #[arg(long, value_name = "FILE", requires = "user")]
    password_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates a fleet subnet (a second init with the same options changes nothing).
    Init {
        /// The subnet, e.g. 10.0.0.0/16.
        #[arg(long, value_name = "CIDR")]
        subnet: IpNet,
        /// Reserved addresses: aws (first four and last), classic, none.
        #[arg(long, default_value = "aws", value_parser = parse_profile)]
        profile: ReservedProfile,
        /// A subnet CIDR reservation, CIDR:prefix or CIDR:explicit (repeatable).
        #[arg(long, value_name = "CIDR:KIND", value_parser = parse_reservation)]
        reserve: Vec<Reservation>,
        /// Prefix length of one chunk (one etcd key); default 1024 units.
        #[arg(long, value_name = "LEN")]
        chunk_len: Option<u8>,
    },
    /// Adds a subnet CIDR reservation to a live fleet subnet (members follow it at once).
    Reserve {
        /// The fleet subnet.
        #[arg(long, value_name = "CIDR")]
        subnet: IpNet,
        /// The reservation, CIDR:prefix or CIDR:explicit.
        #[arg(value_name = "CIDR:KIND", value_parser = parse_reservation)]
        reservation: Reservation,
    },
    /// Removes a subnet CIDR reservation (nothing allocated in it is released).
    Unreserve {
        /// The fleet subnet.
        #[arg(long, value_name = "CIDR")]
        subnet: IpNet,
        /// The reservation's CIDR.
        #[arg(value_name = "CIDR")]
        reserved: IpNet,
    },
    /// Free addresses and /28s, the largest free block, fragmentation, holders per node.
    Status {
        /// The fleet subnet.
        #[arg(long, value_name = "CIDR")]
        subnet: IpNet,
        /// JSON output for machines.
        #[arg(long)]
        json: bool,
    },
    /// The cheapest plan that gives N /28s back (pdipam::defrag), from the live fleet: a single
    /// address counts as one pod's (the fleet knows its node, not its pod), prefixes stay. With
    /// --apply, the plan's prefix reservations are added to the fleet at once: no new single
    /// address lands there while the addresses drain (`status` shows how far they are).
    Defrag {
        /// The fleet subnet.
        #[arg(long, value_name = "CIDR")]
        subnet: IpNet,
        /// /28s wanted free inside prefix reservations.
        #[arg(long, value_name = "N")]
        free: u32,
        /// Add the plan's reservations to the fleet now.
        #[arg(long)]
        apply: bool,
        /// JSON output for machines.
        #[arg(long)]
        json: bool,
    },
    /// Writes the fleet as `aws ec2 describe-network-interfaces` (one interface per node,
    /// holding its prefixes and addresses) and `get-subnet-cidr-reservations` print it, into
    /// DIR/network-interfaces.json and DIR/reservations.json: what `pdipam frag` reads, and how
    /// `pdipam fleet map` draws a live fleet.
    Export {
        /// The fleet subnet.
        #[arg(long, value_name = "CIDR")]
        subnet: IpNet,
        /// The directory to write into.
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// Reads every key and checks the invariants: exit code 1 naming the first broken key.
    Verify {
        /// The fleet subnet.
        #[arg(long, value_name = "CIDR")]
        subnet: IpNet,
    },
    /// Frees the blocks of nodes whose lease is gone, once orphaned for the grace period.
    Reclaim {
        /// The fleet subnet.
        #[arg(long, value_name = "CIDR")]
        subnet: IpNet,
        /// Seconds an allocation must stay orphaned before it is freed.
        #[arg(long, value_name = "S", default_value_t = 300)]
        grace: u64,
        /// Seconds between passes.
        #[arg(long, value_name = "S", default_value_t = 30)]
        every: u64,
        /// Stop after this many passes (default: run until stopped).
        #[arg(long, value_name = "N")]
        passes: Option<u64>,
    },
    /// Releases a dead node now: revokes its lease (it is fenced) and frees all its blocks.
    ReleaseNode {
        /// The fleet subnet.
        #[arg(long, value_name = "CIDR")]
        subnet: IpNet,
        /// The node.
        node: String,
    },
}

fn parse_profile(text: &str) -> Result<ReservedProfile, String> {
    match text {
        "aws" => Ok(ReservedProfile::Aws),
        "classic" => Ok(ReservedProfile::Classic),
        "none" => Ok(ReservedProfile::None),
        other => Err(format!("{other:?}: expected aws, classic or none")),
    }
}

fn parse_reservation(text: &str) -> Result<Reservation, String> {
    let (cidr, kind) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?}: expected CIDR:prefix or CIDR:explicit"))?;
    Ok(Reservation {
        cidr: cidr.parse().map_err(|e| format!("{cidr:?}: {e}"))?,
        kind: kind.parse::<ReservationKind>()?,
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            eprintln!("pdipam fleet: {first}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pdipam fleet: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pdipam fleet: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut credentials = Credentials::new();
    if let Some(ca) = &cli.ca_file {
        credentials = credentials.ca_file(ca);
    }
    if let (Some(cert), Some(key)) = (&cli.cert_file, &cli.key_file) {
        credentials = credentials.client_cert(cert, key);
    }
    if let (Some(user), Some(file)) = (&cli.user, &cli.password_file) {
        credentials = credentials.user(user, file);
    }
    let etcd =
        Etcd::connect_with(&cli.etcd, Duration::from_secs(cli.timeout), &credentials).await?;
    let keys = Keyspace::new(&cli.root);
    match cli.command {
        Command::Init {
            subnet,
            profile,
            reserve,
            chunk_len,
        } => {
            let mut config = FleetConfig::new(subnet).profile(profile);
            for r in reserve {
                config = config.reservation(r);
            }
            if let Some(len) = chunk_len {
                config = config.chunk_len(len);
            }
            FleetSubnet::init(&etcd, &keys, &config).await?;
            println!(
                "fleet subnet {} at {} ({} chunks of /{})",
                config.cidr,
                keys.subnet(config.cidr),
                config.chunk_count(),
                config.chunk_len
            );
        }
        Command::Reserve {
            subnet,
            reservation,
        } => {
            add_reservation(&etcd, &keys, subnet, reservation).await?;
            println!(
                "{subnet}: {} reserved ({})",
                reservation.cidr, reservation.kind
            );
        }
        Command::Unreserve { subnet, reserved } => {
            remove_reservation(&etcd, &keys, subnet, reserved).await?;
            println!("{subnet}: reservation {reserved} removed");
        }
        Command::Status { subnet, json } => {
            let report = verify(&etcd, &keys, subnet).await?;
            if json {
                println!("{}", status_json(subnet, &report));
            } else {
                print_status(subnet, &report);
            }
        }
        Command::Defrag {
            subnet,
            free,
            apply,
            json,
        } => {
            let report = verify(&etcd, &keys, subnet).await?;
            let plan = defrag_plan(subnet, &report, free)?;
            if json {
                println!("{}", defrag_json(subnet, &report, &plan));
            } else {
                print_defrag(subnet, &report, &plan);
            }
            if apply {
                for r in &plan.regions {
                    let reservation = Reservation {
                        cidr: IpNet::V4(r.cidr),
                        kind: ReservationKind::Prefix,
                    };
                    add_reservation(&etcd, &keys, subnet, reservation).await?;
                    if !json {
                        println!("applied: {} reserved (prefix)", r.cidr);
                    }
                }
            }
        }
        Command::Export { subnet, out } => {
            let report = verify(&etcd, &keys, subnet).await?;
            let (interfaces, reservations) = aws_shapes(&report);
            for (name, value) in [
                ("network-interfaces.json", interfaces),
                ("reservations.json", reservations),
            ] {
                let path = out.join(name);
                std::fs::write(&path, value.to_string())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            println!(
                "{subnet}: {} allocations of {} nodes written to {}",
                report.runs.len(),
                report.per_node.len(),
                out.display()
            );
        }
        Command::Verify { subnet } => {
            let report = verify(&etcd, &keys, subnet).await?;
            println!(
                "{subnet}: ok at revision {}: {} allocations held by {} nodes, {} orphaned",
                report.revision,
                report.runs.len(),
                report.per_node.len(),
                report.orphans.len()
            );
        }
        Command::Reclaim {
            subnet,
            grace,
            every,
            passes,
        } => {
            let mut reclaimer = Reclaimer::new(&etcd, &keys, subnet, Duration::from_secs(grace));
            let mut done = 0;
            loop {
                let pass = reclaimer.run_once().await?;
                for r in &pass.freed {
                    println!("freed {} of node {} (lease {:x})", r.cidr, r.node, r.lease);
                }
                println!(
                    "pass {}: {} freed, {} orphaned within the grace period",
                    done + 1,
                    pass.freed.len(),
                    pass.waiting.len()
                );
                done += 1;
                if passes.is_some_and(|n| done >= n) {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(every)).await;
            }
        }
        Command::ReleaseNode { subnet, node } => {
            let freed = release_node(&etcd, &keys, subnet, &node).await?;
            for r in &freed {
                println!("freed {}", r.cidr);
            }
            println!("node {node} released: {} allocations freed", freed.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(subnet: IpNet, r: &FleetReport) {
    let s = &r.stats;
    println!(
        "fleet subnet {subnet} at revision {}: {} free of {} ({} available as AWS counts)",
        r.revision, s.free, s.total, s.available
    );
    println!(
        "free aligned /28s: {}; largest free block: {}; fragmentation {:.2}",
        s.free_blocks_of(28),
        s.largest_free_block
            .map_or_else(|| "none".to_string(), |b| b.to_string()),
        s.fragmentation
    );
    println!(
        "{} allocations held by {} nodes, {} orphaned",
        r.runs.len(),
        r.per_node.len(),
        r.orphans.len()
    );
    for (node, n) in &r.per_node {
        println!("  {node:<24} {n}");
    }
    for (res, blocks, free, singles) in drains(r) {
        println!(
            "prefix reservation {}: {free} of {blocks} /28s free{}",
            res.cidr,
            if singles > 0 {
                format!(", single addresses still to move out: {singles}")
            } else {
                String::new()
            }
        );
    }
}

/// The defragmentation plan of the fleet as `report` read it.
fn defrag_plan(
    subnet: IpNet,
    r: &FleetReport,
    blocks: u32,
) -> Result<pdipam::defrag::Plan, Box<dyn std::error::Error>> {
    use pdipam::defrag::{plan, ExistingReservation, Goal, HolderCost, MoveCost, PinReason};
    let IpNet::V4(v4) = subnet else {
        return Err(format!("--subnet {subnet}: defrag plans IPv4 fleets").into());
    };
    let as_v4 = |n: IpNet| match n {
        IpNet::V4(n) => Some(n),
        IpNet::V6(_) => None,
    };
    let mut holders: Vec<HolderCost> = r
        .reserved
        .iter()
        .filter_map(|a| as_v4(IpNet::from(*a)))
        .map(|held| HolderCost {
            held,
            cost: MoveCost::Pinned(PinReason::SubnetReserved),
        })
        .collect();
    for run in &r.runs {
        let Some(held) = as_v4(run.cidr) else {
            continue;
        };
        let cost = match run.kind {
            pdipam_fleet::Kind::Address => MoveCost::Move {
                pods: 1,
                interfaces: 0,
            },
            _ => MoveCost::Pinned(PinReason::Prefix),
        };
        holders.push(HolderCost { held, cost });
    }
    let reservations: Vec<ExistingReservation> = r
        .reservations
        .iter()
        .filter_map(|res| {
            as_v4(res.cidr).map(|cidr| ExistingReservation {
                cidr,
                prefix: res.kind == ReservationKind::Prefix,
            })
        })
        .collect();
    Ok(plan(v4, &holders, &reservations, Goal { blocks, len: 28 })?)
}

/// The node holding `cidr`, if any.
fn holder_of(r: &FleetReport, cidr: IpNet) -> &str {
    r.runs
        .iter()
        .find(|run| run.cidr == cidr)
        .map_or("?", |run| run.node.as_str())
}

fn print_defrag(subnet: IpNet, r: &FleetReport, p: &pdipam::defrag::Plan) {
    println!(
        "plan for free /28s in prefix reservations on {subnet}: {} wanted, {} there now; cost: \
         {} pods restarted, {} reservations",
        p.goal.blocks, p.already, p.cost.pods, p.cost.reservations
    );
    let mut free = p.already;
    for (i, region) in p.regions.iter().enumerate() {
        free += region.blocks;
        println!(
            "step {}: pdipam fleet reserve --subnet {subnet} {}:prefix",
            i + 1,
            region.cidr
        );
        for m in &region.moves {
            println!(
                "  {} held by {}: move its pod, then release it",
                m.held.network(),
                holder_of(r, IpNet::V4(m.held))
            );
        }
        println!(
            "  free /28s in prefix reservations after step {}: {free}",
            i + 1
        );
    }
    println!(
        "addresses for the moved pods: {} needed, {} free outside the reservations",
        p.room.needed, p.room.available
    );
    if !p.met {
        println!(
            "the goal cannot be met: the cheapest plan reaching the most gives {} free /28s; \
             these cannot move:",
            p.after
        );
        for h in &p.pinned {
            println!("  {}", h.held);
        }
    }
}

fn defrag_json(subnet: IpNet, r: &FleetReport, p: &pdipam::defrag::Plan) -> serde_json::Value {
    serde_json::json!({
        "subnet": subnet,
        "goal": p.goal.blocks,
        "already": p.already,
        "after": p.after,
        "met": p.met,
        "pods": p.cost.pods,
        "reservations": p.cost.reservations,
        "steps": p.regions.iter().map(|region| serde_json::json!({
            "reserve": region.cidr,
            "moves": region.moves.iter().map(|m| serde_json::json!({
                "address": m.held.network(),
                "node": holder_of(r, IpNet::V4(m.held)),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "room_needed": p.room.needed,
        "room_available": p.room.available,
    })
}

/// How far each prefix reservation has drained: its /28s free, and the single addresses still
/// inside it (what a defragmentation plan moves out).
fn drains(r: &FleetReport) -> Vec<(Reservation, usize, usize, usize)> {
    r.reservations
        .iter()
        .filter(|res| res.kind == ReservationKind::Prefix)
        .map(|res| {
            let blocks: Vec<IpNet> = res
                .cidr
                .subnets(28)
                .map(|s| s.collect())
                .unwrap_or_default();
            let held = |b: &IpNet| {
                r.runs
                    .iter()
                    .any(|run| b.contains(&run.cidr.network()) || run.cidr.contains(&b.network()))
                    || r.reserved.iter().any(|a| b.contains(a))
            };
            let free = blocks.iter().filter(|b| !held(b)).count();
            let singles = r
                .runs
                .iter()
                .filter(|run| {
                    run.kind == pdipam_fleet::Kind::Address && res.cidr.contains(&run.cidr)
                })
                .count();
            (*res, blocks.len(), free, singles)
        })
        .collect()
}

fn status_json(subnet: IpNet, r: &FleetReport) -> serde_json::Value {
    let s = &r.stats;
    serde_json::json!({
        "subnet": subnet,
        "revision": r.revision,
        "total": s.total,
        "free": s.free,
        "available": s.available,
        "free_28s": s.free_blocks_of(28),
        "largest_free_block": s.largest_free_block,
        "fragmentation": s.fragmentation,
        "per_node": r.per_node,
        "prefix_reservations": drains(r).into_iter().map(|(res, blocks, free, singles)| serde_json::json!({
            "cidr": res.cidr, "blocks_28": blocks, "free_28s": free, "single_addresses_inside": singles,
        })).collect::<Vec<_>>(),
        "orphans": r.orphans.iter().map(|o| serde_json::json!({
            "cidr": o.cidr, "node": o.node, "lease": o.lease,
        })).collect::<Vec<_>>(),
    })
}

/// The fleet in the AWS CLI's shapes: an interface per node (its id is the node's name), its
/// prefixes as `Ipv4Prefixes`, its single addresses as `PrivateIpAddresses`; the subnet's
/// reservations as CIDR reservations.
fn aws_shapes(r: &FleetReport) -> (serde_json::Value, serde_json::Value) {
    use pdipam_fleet::Kind;
    let interfaces: Vec<serde_json::Value> = r
        .per_node
        .keys()
        .map(|node| {
            let mine = r.runs.iter().filter(|run| &run.node == node);
            let prefixes: Vec<_> = mine
                .clone()
                .filter(|run| run.kind == Kind::Prefix)
                .map(|run| serde_json::json!({ "Ipv4Prefix": run.cidr.to_string() }))
                .collect();
            let addresses: Vec<_> = mine
                .filter(|run| run.kind == Kind::Address)
                .map(|run| serde_json::json!({ "PrivateIpAddress": run.cidr.addr().to_string() }))
                .collect();
            serde_json::json!({
                "NetworkInterfaceId": node,
                "PrivateIpAddresses": addresses,
                "Ipv4Prefixes": prefixes,
            })
        })
        .collect();
    let reservations: Vec<_> = r
        .reservations
        .iter()
        .map(|res| {
            serde_json::json!({
                "Cidr": res.cidr.to_string(),
                "ReservationType": res.kind.to_string(),
            })
        })
        .collect();
    (
        serde_json::json!({ "NetworkInterfaces": interfaces }),
        serde_json::json!({ "SubnetIpv4CidrReservations": reservations }),
    )
}
