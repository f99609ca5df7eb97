//! Rebuilds a real subnet in-process from the AWS CLI's output: reservations, then every address
//! and prefix of every interface inside it. Every refusal names the value and its interface.

use super::aws::{self, CidrReservations, NetworkInterfaces};
use ipnet::IpNet;
use pdipam::{Reservation, ReservationKind, Subnet};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// The subnet as the files describe it.
pub struct Loaded {
    pub subnet: Subnet,
    /// Interface of every single address.
    pub address_owner: HashMap<IpAddr, String>,
    /// Interface of every prefix.
    pub prefix_owner: HashMap<IpNet, String>,
    /// Interfaces with at least one address or prefix in the subnet.
    pub interfaces: usize,
    /// Interfaces listed with nothing in the subnet (other subnets of the VPC).
    pub interfaces_elsewhere: usize,
    /// What each interface with something in the subnet is (what moving its addresses costs).
    pub interface_info: HashMap<String, InterfaceInfo>,
}

/// An interface, as `--free` prices its addresses.
#[derive(Clone, Debug, Default)]
pub struct InterfaceInfo {
    /// Its primary address.
    pub primary: Option<IpAddr>,
    /// The instance it is attached to, if any.
    pub instance: Option<String>,
    /// The device index it is attached at (0: the instance's primary interface).
    pub device_index: Option<u32>,
    /// Managed by another service (load balancer, NAT gateway, Lambda).
    pub requester_managed: bool,
}

pub fn load(cidr: IpNet, interfaces: &Path, reservations: Option<&Path>) -> Result<Loaded, String> {
    let subnet = Subnet::new(cidr).map_err(|e| format!("--subnet {cidr}: {e}"))?;
    if let Some(path) = reservations {
        let file: CidrReservations = aws::read(path, "get-subnet-cidr-reservations")?;
        // IPv6 reservations (`SubnetIpv6CidrReservations`) do not touch an IPv4 subnet's /28s.
        for r in file.subnet_ipv4_cidr_reservations.iter().flatten() {
            let id = r
                .subnet_cidr_reservation_id
                .as_deref()
                .unwrap_or("reservation");
            let parsed = reservation(r.cidr.as_str(), r.reservation_type.as_str())
                .map_err(|e| format!("{}: {id}: {e}", path.display()))?;
            subnet
                .add_reservation(parsed.cidr, parsed.kind)
                .map_err(|e| format!("{}: {id}: {e}", path.display()))?;
        }
    }

    let file: NetworkInterfaces = aws::read(interfaces, "describe-network-interfaces")?;
    let mut loaded = Loaded {
        subnet,
        address_owner: HashMap::new(),
        prefix_owner: HashMap::new(),
        interfaces: 0,
        interfaces_elsewhere: 0,
        interface_info: HashMap::new(),
    };
    let at = |name: &str, e: String| format!("{}: {name}: {e}", interfaces.display());
    // An address of the first interface outside the subnet, to show where the file's are.
    let mut elsewhere_example: Option<(String, IpAddr)> = None;
    for (i, iface) in file.network_interfaces.iter().enumerate() {
        let name = iface.name(i);
        let mut inside = false;
        for text in iface.addresses() {
            let addr: IpAddr = text
                .parse()
                .map_err(|e| at(&name, format!("address {text:?}: {e}")))?;
            if elsewhere_example.is_none() && !cidr.contains(&addr) {
                elsewhere_example = Some((name.clone(), addr));
            }
            if !cidr.contains(&addr) {
                continue;
            }
            inside = true;
            match loaded.address_owner.get(&addr) {
                Some(owner) if *owner == name => continue,
                Some(owner) => {
                    return Err(at(&name, format!("address {addr} is also on {owner}")));
                }
                None => {}
            }
            loaded
                .subnet
                .allocate_ip_at(addr)
                .map_err(|e| at(&name, e.to_string()))?;
            loaded.address_owner.insert(addr, name.clone());
        }
        for text in iface.prefixes() {
            let prefix: IpNet = text
                .parse()
                .map_err(|e| at(&name, format!("prefix {text:?}: {e}")))?;
            if !cidr.contains(&prefix) {
                continue;
            }
            inside = true;
            if let Some(owner) = loaded.prefix_owner.get(&prefix) {
                return Err(at(&name, format!("prefix {prefix} is also on {owner}")));
            }
            loaded
                .subnet
                .allocate_prefix_at(prefix)
                .map_err(|e| at(&name, e.to_string()))?;
            loaded.prefix_owner.insert(prefix, name.clone());
        }
        if inside {
            let primary = iface
                .private_ip_address
                .as_deref()
                .and_then(|a| a.parse().ok());
            loaded.interface_info.insert(
                name.clone(),
                InterfaceInfo {
                    primary,
                    instance: iface
                        .attachment
                        .as_ref()
                        .and_then(|a| a.instance_id.clone()),
                    device_index: iface.attachment.as_ref().and_then(|a| a.device_index),
                    requester_managed: iface.requester_managed.unwrap_or(false),
                },
            );
            loaded.interfaces += 1;
        } else {
            loaded.interfaces_elsewhere += 1;
        }
    }
    // Interfaces listed but none in the subnet: most likely a mistyped --subnet, not an empty
    // subnet (a file listing no interface at all is one).
    if loaded.interfaces == 0 && loaded.interfaces_elsewhere > 0 {
        let example = elsewhere_example
            .map(|(name, addr)| format!(" ({name} has {addr})"))
            .unwrap_or_default();
        return Err(format!(
            "--subnet {cidr}: {} in {} {} an address or prefix in it{example}: check --subnet",
            if loaded.interfaces_elsewhere == 1 {
                "the one interface"
            } else {
                "none of the interfaces"
            },
            interfaces.display(),
            if loaded.interfaces_elsewhere == 1 {
                "has no"
            } else {
                "has"
            }
        ));
    }
    Ok(loaded)
}

fn reservation(cidr: &str, kind: &str) -> Result<Reservation, String> {
    Ok(Reservation {
        cidr: cidr
            .parse()
            .map_err(|e| format!("reservation CIDR {cidr:?}: {e}"))?,
        kind: kind.parse::<ReservationKind>()?,
    })
}
