//! The ADD result, in the shape of the version the runtime asked for.

use crate::config::{FamilyConfig, IpamConfig};
use crate::version::{CniVersion, ResultShape};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::Value;
use std::net::IpAddr;

/// One address given to the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenAddress {
    /// The address.
    pub address: IpAddr,
    /// The prefix length it is presented with (the subnet's, or its block's).
    pub prefix_len: u8,
    /// The gateway, if configured.
    pub gateway: Option<IpAddr>,
}

impl GivenAddress {
    /// `address` from `block` as `family` presents it.
    pub fn new(family: &FamilyConfig, address: IpAddr, block: IpNet) -> Self {
        GivenAddress {
            address,
            prefix_len: family.mask_len(block),
            gateway: family.gateway,
        }
    }
}

#[derive(Serialize)]
struct IpConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
}

#[derive(Serialize)]
struct AddResult<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    ips: Vec<IpConfig>,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    routes: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a Value>,
}

/// The ADD result's JSON.
pub fn add_result(version: &CniVersion, ipam: &IpamConfig, given: &[GivenAddress]) -> String {
    let shape = version.shape();
    let ips = given
        .iter()
        .map(|g| IpConfig {
            version: (shape == ResultShape::V04).then_some(if g.address.is_ipv4() {
                "4"
            } else {
                "6"
            }),
            address: format!("{}/{}", g.address, g.prefix_len),
            gateway: g.gateway,
        })
        .collect();
    serde_json::to_string_pretty(&AddResult {
        cni_version: version.as_str(),
        ips,
        routes: &ipam.routes,
        dns: ipam.dns.as_ref(),
    })
    .unwrap_or_default()
}

/// The IP addresses of a previous result's `ips` (CHECK's `prevResult`), any version.
pub fn previous_addresses(prev: &Value) -> Vec<IpAddr> {
    prev.get("ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|ip| ip.get("address")?.as_str()?.parse::<IpNet>().ok())
        .map(|n| n.addr())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;

    #[test]
    fn shapes_per_version() {
        let conf = |v: &str| {
            NetworkConfig::parse(
                format!(
                    r#"{{"cniVersion":"{v}","name":"n","ipam":{{"type":"pdipam-cni",
                    "prefixes":["10.0.1.16/28","2600::/80"],"subnets":["10.0.0.0/22"],
                    "routes":[{{"dst":"0.0.0.0/0"}}]}}}}"#
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let c = conf("0.4.0");
        let given = [
            GivenAddress::new(
                &c.ipam.families[0],
                "10.0.1.16".parse().unwrap(),
                "10.0.1.16/28".parse().unwrap(),
            ),
            GivenAddress::new(
                &c.ipam.families[1],
                "2600::".parse().unwrap(),
                "2600::/80".parse().unwrap(),
            ),
        ];
        let v: Value = serde_json::from_str(&add_result(&c.cni_version, &c.ipam, &given)).unwrap();
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(v["ips"][0]["version"], "4");
        assert_eq!(v["ips"][0]["address"], "10.0.1.16/22");
        assert_eq!(v["ips"][0]["gateway"], "10.0.0.1");
        assert_eq!(v["ips"][1]["version"], "6");
        assert_eq!(v["ips"][1]["address"], "2600::/80");
        assert!(v["ips"][1].get("gateway").is_none());
        assert_eq!(v["routes"][0]["dst"], "0.0.0.0/0");
        assert!(v.get("dns").is_none());
        let c = conf("1.1.0");
        let v: Value = serde_json::from_str(&add_result(&c.cni_version, &c.ipam, &given)).unwrap();
        assert!(v["ips"][0].get("version").is_none());
        assert_eq!(
            previous_addresses(&v),
            vec![
                "10.0.1.16".parse::<IpAddr>().unwrap(),
                "2600::".parse().unwrap()
            ]
        );
    }
}
