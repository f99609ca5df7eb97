//! The AWS CLI's documented output shapes `frag` reads (docs/rules.md, "What `pdipam frag`
//! reads"): only the fields it needs; every other field is ignored, and every list may be
//! missing, null or empty.

use serde::Deserialize;
use std::path::Path;

/// `aws ec2 describe-network-interfaces`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterfaces {
    pub network_interfaces: Vec<NetworkInterface>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterface {
    #[serde(default)]
    pub network_interface_id: Option<String>,
    /// The primary address (also in `private_ip_addresses`, flagged primary).
    #[serde(default)]
    pub private_ip_address: Option<String>,
    #[serde(default)]
    pub private_ip_addresses: Option<Vec<PrivateIpAddress>>,
    #[serde(default)]
    pub ipv4_prefixes: Option<Vec<Ipv4Prefix>>,
    /// Where it is attached (`--free`: an instance's primary interface never moves).
    #[serde(default)]
    pub attachment: Option<Attachment>,
    /// A load balancer's, NAT gateway's or Lambda's interface (`--free`: never moves).
    #[serde(default)]
    pub requester_managed: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attachment {
    #[serde(default)]
    pub device_index: Option<u32>,
    #[serde(default)]
    pub instance_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrivateIpAddress {
    #[serde(default)]
    pub private_ip_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipv4Prefix {
    #[serde(default)]
    pub ipv4_prefix: Option<String>,
}

/// `aws ec2 get-subnet-cidr-reservations`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CidrReservations {
    #[serde(default)]
    pub subnet_ipv4_cidr_reservations: Option<Vec<CidrReservation>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CidrReservation {
    #[serde(default)]
    pub subnet_cidr_reservation_id: Option<String>,
    pub cidr: String,
    pub reservation_type: String,
}

/// Reads and parses one of the shapes, naming the file in every error.
pub fn read<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{}: not the JSON that `aws ec2 {what}` prints: {e}",
            path.display()
        )
    })
}

impl NetworkInterface {
    /// Its id, or its place in the file when the id is missing.
    pub fn name(&self, index: usize) -> String {
        self.network_interface_id
            .clone()
            .unwrap_or_else(|| format!("interface #{}", index + 1))
    }

    /// Every private address it lists (the primary once).
    pub fn addresses(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.private_ip_address.iter().map(String::as_str).collect();
        for a in self.private_ip_addresses.iter().flatten() {
            if let Some(text) = &a.private_ip_address {
                if !out.contains(&text.as_str()) {
                    out.push(text);
                }
            }
        }
        out
    }

    /// Every IPv4 prefix it lists.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.ipv4_prefixes
            .iter()
            .flatten()
            .filter_map(|p| p.ipv4_prefix.as_deref())
    }
}
