//! The network configuration on stdin, checked whole before anything is touched.
//!
//! Only the `ipam` section is ours, and it is strict: an unknown key there is an error naming
//! it (a misspelt `prefixes` must not silently mean "no prefixes"). Keys elsewhere belong to
//! the runtime or the main plugin and are ignored.

use crate::error::{code, CniError};
use crate::fleet::config::{host_name, FleetSettings};
use crate::version::CniVersion;
use ipnet::IpNet;
use pdipam::{AddressMode, IpFamily};
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where state lives when the configuration does not say.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/pdipam";
/// How long a call waits for another one's lock before answering "try again later".
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole network configuration, as far as pdipam-cni reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// The version asked for.
    pub cni_version: CniVersion,
    /// The network name (part of every allocation's key, and the state directory's name).
    pub name: String,
    /// The `ipam` section.
    pub ipam: IpamConfig,
    /// CHECK's `prevResult`, when given.
    pub prev_result: Option<Value>,
    /// GC's `cni.dev/valid-attachments`, when given.
    pub valid_attachments: Option<Vec<Attachment>>,
    /// Addresses the runtime asks for in `runtimeConfig.ips` (the `ips` capability), unparsed.
    pub requested_ips: Vec<String>,
}

/// One attachment GC must keep.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    /// The container id.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// The interface name.
    #[serde(rename = "ifname")]
    pub if_name: String,
}

/// The `ipam` section, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct IpamConfig {
    /// The directory holding one state directory per network.
    pub data_dir: PathBuf,
    /// Prefixes or secondary addresses.
    pub mode: AddressMode,
    /// Per family that has blocks: what pods get from it. IPv4 first.
    pub families: Vec<FamilyConfig>,
    /// How long a released address rests before another pod gets it.
    pub cooldown: Duration,
    /// Routes for the result, as given.
    pub routes: Vec<Value>,
    /// DNS settings for the result, as given.
    pub dns: Option<Value>,
    /// How long to wait for the state lock.
    pub lock_timeout: Duration,
    /// Fleet mode: the blocks are claimed from a subnet shared through etcd, not listed.
    pub fleet: Option<FleetSettings>,
}

/// One address family's blocks and how its addresses are presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyConfig {
    /// The family.
    pub family: IpFamily,
    /// The delegated prefixes (/28, /80) or secondary addresses (/32, /128), in order given.
    pub blocks: Vec<IpNet>,
    /// The prefix length a pod's address is given with: the subnet's if one is configured,
    /// else its block's own.
    pub subnet: Option<IpNet>,
    /// The gateway reported with each address, if any.
    pub gateway: Option<IpAddr>,
}

impl FamilyConfig {
    /// The prefix length of `address` in results.
    pub fn mask_len(&self, block: IpNet) -> u8 {
        self.subnet.map_or(block.prefix_len(), |s| s.prefix_len())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNetwork {
    name: Option<String>,
    ipam: Option<Value>,
    prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<Attachment>>,
    #[serde(default)]
    runtime_config: RuntimeConfig,
}

#[derive(Default, Deserialize)]
struct RuntimeConfig {
    #[serde(default)]
    ips: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawIpam {
    #[serde(rename = "type")]
    _type: String,
    data_dir: Option<String>,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    secondary_addresses: Vec<String>,
    #[serde(default)]
    subnets: Vec<String>,
    #[serde(default)]
    gateways: Vec<String>,
    cooldown_seconds: Option<f64>,
    #[serde(default)]
    routes: Vec<Value>,
    dns: Option<Value>,
    lock_timeout_seconds: Option<f64>,
    fleet: Option<Value>,
}

fn invalid(message: String) -> CniError {
    CniError::new(code::INVALID_CONFIG, message)
}

/// The `cniVersion` of a configuration, without judging the rest (a VERSION call or an
/// error object wants it even when the rest is wrong).
pub fn peek_version(stdin: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(stdin).ok()?;
    v.get("cniVersion")?.as_str().map(str::to_owned)
}

impl NetworkConfig {
    /// Parses and checks the configuration.
    ///
    /// # Errors
    /// Code 6 if stdin is not JSON; 1 for an unsupported `cniVersion`; 7 naming the value at
    /// fault for anything else.
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let value: Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(code::DECODE, "failed to decode the network configuration")
                .with_details(e.to_string())
        })?;
        let version = match value.get("cniVersion") {
            Some(Value::String(v)) => CniVersion::parse(v)?,
            Some(other) => return Err(invalid(format!("cniVersion {other} is not a string"))),
            None => return Err(invalid("cniVersion is missing".into())),
        };
        let raw: RawNetwork = serde_json::from_value(value)
            .map_err(|e| invalid(format!("network configuration: {e}")))?;
        let name = raw.name.ok_or_else(|| invalid("name is missing".into()))?;
        check_network_name(&name)?;
        let ipam = raw
            .ipam
            .ok_or_else(|| invalid("the ipam section is missing".into()))?;
        let ipam: RawIpam =
            serde_json::from_value(ipam).map_err(|e| invalid(format!("ipam: {e}")))?;
        Ok(NetworkConfig {
            cni_version: version,
            name,
            ipam: ipam.check()?,
            prev_result: raw.prev_result,
            valid_attachments: raw.valid_attachments,
            requested_ips: raw.runtime_config.ips,
        })
    }
}

/// The specification's rule for network names; it also keeps the name a single, safe path
/// component for the state directory.
fn check_network_name(name: &str) -> Result<(), CniError> {
    if crate::env::is_cni_identifier(name) {
        Ok(())
    } else {
        Err(invalid(format!(
            "name {name:?} is invalid: it must start with a letter or digit and hold only \
             letters, digits, '_', '.' and '-'"
        )))
    }
}

fn seconds(field: &str, v: Option<f64>, default: Duration) -> Result<Duration, CniError> {
    match v {
        None => Ok(default),
        Some(s) => Duration::try_from_secs_f64(s)
            .map_err(|_| invalid(format!("ipam.{field} {s} is not a number of seconds >= 0"))),
    }
}

fn family_of(a: IpAddr) -> IpFamily {
    if a.is_ipv4() {
        IpFamily::V4
    } else {
        IpFamily::V6
    }
}

impl RawIpam {
    fn check(self) -> Result<IpamConfig, CniError> {
        let data_dir = PathBuf::from(self.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR));
        if !data_dir.is_absolute() {
            return Err(invalid(format!(
                "ipam.dataDir {:?} is not an absolute path",
                data_dir.display().to_string()
            )));
        }
        let fleet = match self.fleet {
            Some(v) => Some(FleetSettings::parse(v, host_name)?),
            None => None,
        };
        let (mode, blocks) = match (
            self.prefixes.is_empty(),
            self.secondary_addresses.is_empty(),
        ) {
            (true, true) if fleet.is_some() => (AddressMode::Prefix, Vec::new()),
            _ if fleet.is_some() => {
                return Err(invalid(
                    "ipam: with fleet, the node's prefixes come from the fleet: give no \
                     prefixes or secondaryAddresses"
                        .into(),
                ))
            }
            (false, true) => (AddressMode::Prefix, parse_prefixes(&self.prefixes)?),
            (true, false) => (
                AddressMode::Secondary,
                parse_addresses(&self.secondary_addresses)?,
            ),
            (false, false) => {
                return Err(invalid(
                    "ipam: give prefixes or secondaryAddresses, not both".into(),
                ))
            }
            (true, true) => {
                return Err(invalid(
                    "ipam: no prefixes or secondaryAddresses: there is nothing to give pods".into(),
                ))
            }
        };
        let subnets = parse_subnets(&self.subnets)?;
        let gateways = parse_gateways(&self.gateways)?;
        let mut families = Vec::new();
        for family in [IpFamily::V4, IpFamily::V6] {
            let mine: Vec<IpNet> = blocks
                .iter()
                .copied()
                .filter(|b| family_of(b.addr()) == family)
                .collect();
            let configured = subnets
                .iter()
                .copied()
                .find(|s| family_of(s.addr()) == family);
            let fleet_subnet = fleet
                .as_ref()
                .map(|f| f.subnet)
                .filter(|s| family_of(s.addr()) == family);
            let subnet = match (configured, fleet_subnet) {
                (Some(s), Some(f)) if !s.contains(&f) => {
                    return Err(invalid(format!(
                        "ipam.subnets: {s} does not hold the fleet subnet {f}"
                    )))
                }
                (Some(s), _) => Some(s),
                // Pods of every node share the fleet subnet's length.
                (None, f) => f,
            };
            if fleet_subnet.is_some() {
                let gateway = gateways.iter().copied().find(|g| family_of(*g) == family);
                families.push(family_config(family, Vec::new(), subnet, gateway)?);
                continue;
            }
            let gateway = gateways.iter().copied().find(|g| family_of(*g) == family);
            if mine.is_empty() {
                if let Some(s) = subnet {
                    return Err(invalid(format!(
                        "ipam.subnets: {s} has no block of its family to serve"
                    )));
                }
                continue;
            }
            families.push(family_config(family, mine, subnet, gateway)?);
        }
        for (i, r) in self.routes.iter().enumerate() {
            check_route(i, r)?;
        }
        if let Some(d) = &self.dns {
            if !d.is_object() {
                return Err(invalid(format!("ipam.dns {d} is not an object")));
            }
        }
        Ok(IpamConfig {
            data_dir,
            mode,
            families,
            cooldown: seconds(
                "cooldownSeconds",
                self.cooldown_seconds,
                Duration::from_secs(30),
            )?,
            routes: self.routes,
            dns: self.dns,
            lock_timeout: seconds(
                "lockTimeoutSeconds",
                self.lock_timeout_seconds,
                DEFAULT_LOCK_TIMEOUT,
            )?,
            fleet,
        })
    }
}

fn family_config(
    family: IpFamily,
    blocks: Vec<IpNet>,
    subnet: Option<IpNet>,
    gateway: Option<IpAddr>,
) -> Result<FamilyConfig, CniError> {
    check_announced_lengths(family, &blocks, subnet)?;
    if let Some(s) = subnet {
        if let Some(b) = blocks.iter().find(|b| !s.contains(*b)) {
            return Err(invalid(format!("ipam: {b} lies outside its subnet {s}")));
        }
    }
    // The subnet's router (its first address plus one, which AWS reserves for it) unless the
    // configuration names a gateway.
    let gateway = gateway.or_else(|| subnet.map(router_of));
    if let Some(g) = gateway {
        if let Some(b) = blocks.iter().find(|b| b.contains(&g)) {
            return Err(invalid(format!(
                "ipam: the gateway {g} lies inside {b}, whose addresses go to pods"
            )));
        }
    }
    Ok(FamilyConfig {
        family,
        blocks,
        subnet,
        gateway,
    })
}

/// No pod is given the network or broadcast address of the length its address is announced
/// with (IPv4; peers cannot reach them, and ping calls the second a broadcast address). Pods are
/// announced with the subnet's length, so an IPv4 prefix needs `subnets` (with its own /28, its
/// first and last addresses would be exactly those), and no block may hold the subnet's own
/// network or broadcast address. Single addresses without a subnet are announced as /32, which
/// has neither.
fn check_announced_lengths(
    family: IpFamily,
    blocks: &[IpNet],
    subnet: Option<IpNet>,
) -> Result<(), CniError> {
    if family != IpFamily::V4 {
        return Ok(());
    }
    match subnet {
        None => match blocks.iter().find(|b| b.prefix_len() < 31) {
            Some(b) => Err(invalid(format!(
                "ipam: the IPv4 prefix {b} needs ipam.subnets (the subnet it comes from): pods \
                 are given addresses with the subnet's length; with the prefix's own /{}, its \
                 first and last addresses would be its network and broadcast addresses, which \
                 peers cannot reach",
                b.prefix_len()
            ))),
            None => Ok(()),
        },
        Some(s) if s.prefix_len() < 31 => {
            for edge in [(s.network(), "network"), (s.broadcast(), "broadcast")] {
                if let Some(b) = blocks.iter().find(|b| b.contains(&edge.0)) {
                    return Err(invalid(format!(
                        "ipam: {b} holds {}, the {} address of the subnet {s}: no pod may have it",
                        edge.0, edge.1
                    )));
                }
            }
            Ok(())
        }
        Some(_) => Ok(()),
    }
}

fn router_of(subnet: IpNet) -> IpAddr {
    match subnet.network() {
        IpAddr::V4(a) => IpAddr::from(u32::from(a).wrapping_add(1).to_be_bytes()),
        IpAddr::V6(a) => IpAddr::from(u128::from(a).wrapping_add(1).to_be_bytes()),
    }
}

/// The entries of `ipam.<field>`, each read by `read` (which says what is wrong with one),
/// refusing one that `clashes` with an earlier entry with the words `clash`. Errors name the
/// field, the index and the text.
fn parse_list<T>(
    field: &str,
    texts: &[String],
    read: impl Fn(&str) -> Result<T, String>,
    clashes: impl Fn(&T, &T) -> bool,
    clash: &str,
) -> Result<Vec<T>, CniError> {
    let mut out: Vec<T> = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let bad = |why: String| invalid(format!("ipam.{field}[{i}] {t:?} {why}"));
        let v = read(t).map_err(bad)?;
        if out.iter().any(|o| clashes(o, &v)) {
            return Err(bad(clash.to_owned()));
        }
        out.push(v);
    }
    Ok(out)
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn parse_prefixes(texts: &[String]) -> Result<Vec<IpNet>, CniError> {
    let read = |t: &str| {
        let p: IpNet = t.parse().map_err(|_| "is not a CIDR".to_owned())?;
        let want = if p.addr().is_ipv4() { 28 } else { 80 };
        if p.prefix_len() != want {
            return Err(format!(
                "is a /{}; delegated prefixes are IPv4 /28 or IPv6 /80",
                p.prefix_len()
            ));
        }
        if p.trunc() != p {
            return Err(format!(
                "is not aligned (host bits are set; {} is)",
                p.trunc()
            ));
        }
        if p.contains(&unspecified(p.addr())) {
            return Err("holds the unspecified address".to_owned());
        }
        Ok(p)
    };
    parse_list("prefixes", texts, read, |a, b| a == b, "is listed twice")
}

fn parse_addresses(texts: &[String]) -> Result<Vec<IpNet>, CniError> {
    let read = |t: &str| {
        let a: IpAddr = t.parse().map_err(|_| "is not an IP address".to_owned())?;
        if a.is_unspecified() {
            return Err("is the unspecified address".to_owned());
        }
        Ok(IpNet::from(a))
    };
    parse_list(
        "secondaryAddresses",
        texts,
        read,
        |a, b| a == b,
        "is listed twice",
    )
}

fn parse_subnets(texts: &[String]) -> Result<Vec<IpNet>, CniError> {
    let read = |t: &str| {
        let s: IpNet = t.parse().map_err(|_| "is not a CIDR".to_owned())?;
        if s.trunc() != s {
            return Err(format!("has host bits set (the subnet is {})", s.trunc()));
        }
        Ok(s)
    };
    let clashes = |a: &IpNet, b: &IpNet| same_family(a.addr(), b.addr());
    parse_list(
        "subnets",
        texts,
        read,
        clashes,
        "is a second subnet of its family",
    )
}

fn parse_gateways(texts: &[String]) -> Result<Vec<IpAddr>, CniError> {
    let read = |t: &str| {
        t.parse::<IpAddr>()
            .map_err(|_| "is not an IP address".to_owned())
    };
    let clashes = |a: &IpAddr, b: &IpAddr| same_family(*a, *b);
    parse_list(
        "gateways",
        texts,
        read,
        clashes,
        "is a second gateway of its family",
    )
}

fn check_route(i: usize, r: &Value) -> Result<(), CniError> {
    let dst = r
        .get("dst")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("ipam.routes[{i}] {r} has no \"dst\" string")))?;
    dst.parse::<IpNet>()
        .map_err(|_| invalid(format!("ipam.routes[{i}].dst {dst:?} is not a CIDR")))?;
    match r.get("gw") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(gw)) if gw.parse::<IpAddr>().is_ok() => Ok(()),
        Some(gw) => Err(invalid(format!(
            "ipam.routes[{i}].gw {gw} is not an IP address"
        ))),
    }
}

fn unspecified(like: IpAddr) -> IpAddr {
    if like.is_ipv4() {
        IpAddr::from([0u8; 4])
    } else {
        IpAddr::from([0u8; 16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf(ipam: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "cniVersion": "1.0.0",
            "name": "pods",
            "type": "ptp",
            "ipMasq": true,
            "ipam": ipam,
        }))
        .unwrap()
    }

    fn err(ipam: Value) -> CniError {
        NetworkConfig::parse(&conf(ipam)).unwrap_err()
    }

    #[test]
    fn a_dual_stack_prefix_configuration() {
        let c = NetworkConfig::parse(&conf(json!({
            "type": "pdipam-cni",
            "dataDir": "/tmp/x",
            "prefixes": ["2600:1f14::/80", "10.0.1.16/28", "10.0.1.32/28"],
            "subnets": ["10.0.0.0/22"],
            "cooldownSeconds": 5,
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.0.0.2"]},
        })))
        .unwrap();
        assert_eq!(c.name, "pods");
        let ipam = &c.ipam;
        assert_eq!(ipam.mode, AddressMode::Prefix);
        assert_eq!(ipam.cooldown, Duration::from_secs(5));
        assert_eq!(ipam.lock_timeout, DEFAULT_LOCK_TIMEOUT);
        let v4 = &ipam.families[0];
        assert_eq!(v4.family, IpFamily::V4);
        assert_eq!(v4.blocks.len(), 2);
        assert_eq!(v4.gateway, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(v4.mask_len(v4.blocks[0]), 22);
        let v6 = &ipam.families[1];
        assert_eq!((v6.gateway, v6.mask_len(v6.blocks[0])), (None, 80));
    }

    #[test]
    fn secondary_addresses_and_defaults() {
        let c = NetworkConfig::parse(&conf(json!({
            "type": "pdipam-cni",
            "secondaryAddresses": ["10.0.0.7", "10.0.0.9"],
            "gateways": ["169.254.1.1"],
        })))
        .unwrap();
        assert_eq!(c.ipam.mode, AddressMode::Secondary);
        assert_eq!(c.ipam.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.ipam.cooldown, Duration::from_secs(30));
        let f = &c.ipam.families[0];
        assert_eq!(f.blocks[1].to_string(), "10.0.0.9/32");
        assert_eq!(f.mask_len(f.blocks[1]), 32);
        assert_eq!(f.gateway, Some("169.254.1.1".parse().unwrap()));
    }

    #[test]
    fn each_bad_value_is_named() {
        let p = |v: Value| json!({"type": "pdipam-cni", "prefixes": v});
        let cases: Vec<(Value, &str)> = vec![
            (
                p(json!(["10.0.1.17/28"])),
                "\"10.0.1.17/28\" is not aligned",
            ),
            (p(json!(["10.0.1.0/24"])), "is a /24"),
            (p(json!(["10.0.1.0/28", "10.0.1.0/28"])), "listed twice"),
            (p(json!(["0.0.0.0/28"])), "unspecified"),
            (p(json!(["banana"])), "\"banana\" is not a CIDR"),
            (json!({"type": "pdipam-cni"}), "nothing to give pods"),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"], "prefixs": []}),
                "unknown field `prefixs`",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"],
                       "secondaryAddresses": ["10.0.0.5"]}),
                "not both",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"],
                       "subnets": ["10.0.2.0/24"]}),
                "10.0.1.0/28 lies outside its subnet 10.0.2.0/24",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"],
                       "subnets": ["10.0.0.0/22"], "gateways": ["10.0.1.3"]}),
                "gateway 10.0.1.3 lies inside 10.0.1.0/28",
            ),
            // No pod gets the network or broadcast address of the length it is given with.
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"]}),
                "the IPv4 prefix 10.0.1.0/28 needs ipam.subnets",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.0.0/28"],
                       "subnets": ["10.0.0.0/22"]}),
                "10.0.0.0/28 holds 10.0.0.0, the network address of the subnet 10.0.0.0/22",
            ),
            (
                json!({"type": "pdipam-cni", "secondaryAddresses": ["10.0.3.255"],
                       "subnets": ["10.0.0.0/22"]}),
                "10.0.3.255/32 holds 10.0.3.255, the broadcast address of the subnet 10.0.0.0/22",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"],
                       "subnets": ["10.0.0.0/16", "10.1.0.0/16"]}),
                "subnets[1] \"10.1.0.0/16\" is a second subnet of its family",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"],
                       "gateways": ["10.0.0.1", "10.0.0.2"]}),
                "gateways[1] \"10.0.0.2\" is a second gateway of its family",
            ),
            (
                json!({"type": "pdipam-cni", "secondaryAddresses": ["10.0.0.5", "10.0.0.5"]}),
                "secondaryAddresses[1] \"10.0.0.5\" is listed twice",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"], "dataDir": "rel"}),
                "\"rel\" is not an absolute path",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"],
                       "subnets": ["10.0.0.0/22"], "cooldownSeconds": -1}),
                "cooldownSeconds -1",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"],
                       "subnets": ["10.0.0.0/22"], "routes": [{"dst": "nowhere"}]}),
                "routes[0].dst \"nowhere\"",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"],
                       "subnets": ["10.0.0.0/22"], "routes": [{"dst": "0.0.0.0/0", "gw": "router"}]}),
                "routes[0].gw \"router\" is not an IP address",
            ),
            (
                json!({"type": "pdipam-cni", "prefixes": ["10.0.1.0/28"],
                       "subnets": ["10.0.0.0/22"], "routes": [{"dst": "0.0.0.0/0", "gw": 1}]}),
                "routes[0].gw 1 is not an IP address",
            ),
        ];
        for (ipam, needle) in cases {
            let e = err(ipam.clone());
            assert_eq!(e.code, code::INVALID_CONFIG, "{ipam}");
            assert!(e.message.contains(needle), "{ipam}: {e}");
        }
    }

    #[test]
    fn routes_take_an_address_or_no_gateway() {
        let routes = json!([
            {"dst": "0.0.0.0/0", "gw": "10.0.0.1"},
            {"dst": "::/0", "gw": "2600:1f14::1"},
            {"dst": "192.168.0.0/16", "gw": null},
            {"dst": "172.16.0.0/12"},
        ]);
        let c = NetworkConfig::parse(&conf(json!({
            "type": "pdipam-cni",
            "prefixes": ["10.0.1.0/28"],
            "subnets": ["10.0.0.0/22"],
            "routes": routes,
        })))
        .unwrap();
        assert_eq!(c.ipam.routes.len(), 4);
    }

    #[test]
    fn decode_version_and_name_errors_have_their_own_codes() {
        assert_eq!(
            NetworkConfig::parse(b"{not json").unwrap_err().code,
            code::DECODE
        );
        let old = br#"{"cniVersion":"0.2.0","name":"n","ipam":{"type":"pdipam-cni"}}"#;
        assert_eq!(
            NetworkConfig::parse(old).unwrap_err().code,
            code::INCOMPATIBLE_VERSION
        );
        let bad_name = br#"{"cniVersion":"1.0.0","name":"../etc","ipam":{}}"#;
        let e = NetworkConfig::parse(bad_name).unwrap_err();
        assert!(e.message.contains("\"../etc\""), "{e}");
        assert_eq!(peek_version(old).as_deref(), Some("0.2.0"));
        assert_eq!(peek_version(b"[]"), None);
    }
}
