//! The `ipam.fleet` section: where the node's blocks come from when they are claimed from a
//! subnet shared through etcd instead of listed in the configuration.

use crate::error::{code, CniError};
use ipnet::IpNet;
use pdipam::planner::WarmSettings;
use pdipam_fleet::Credentials;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lease a node's registration lives on, when the configuration does not say: a node
/// whose calls stop for this long (and then the reclaimer's grace) loses its blocks.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3600);
/// How long one etcd call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The kubelet's default `maxPods`.
pub const DEFAULT_MAX_PODS: u32 = 110;

/// The `ipam.fleet` section, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetSettings {
    /// etcd's client URLs.
    pub endpoints: Vec<String>,
    /// The fleet subnet the blocks are claimed from (created by `pdipam fleet init`).
    pub subnet: IpNet,
    /// This node's name in the fleet (default: the host name).
    pub node_name: String,
    /// The keyspace root (`""` by default).
    pub root: String,
    /// The warm pool kept on the node: `warmPrefixTarget` (default 1), `warmIpTarget`,
    /// `minimumIpTarget`, and `maxPods`, which caps the node's addresses.
    pub warm: WarmSettings,
    /// The TTL of the node's registration lease.
    pub lease: Duration,
    /// The timeout of every etcd call.
    pub timeout: Duration,
    /// TLS files and an etcd user (`caFile`, `certFile`, `keyFile`, `username`,
    /// `passwordFile`); the password itself is only ever in its file.
    pub credentials: Credentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFleet {
    #[serde(default)]
    etcd_endpoints: Vec<String>,
    subnet: Option<String>,
    node_name: Option<String>,
    #[serde(default)]
    root: String,
    warm_prefix_target: Option<u32>,
    warm_ip_target: Option<u32>,
    minimum_ip_target: Option<u32>,
    max_pods: Option<u32>,
    lease_seconds: Option<u64>,
    timeout_seconds: Option<f64>,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    username: Option<String>,
    password_file: Option<String>,
}

fn invalid(message: String) -> CniError {
    CniError::new(code::INVALID_CONFIG, message)
}

impl FleetSettings {
    /// Parses `ipam.fleet`; `host_name` gives the default node name.
    ///
    /// # Errors
    /// Code 7 naming the field and the value at fault.
    pub fn parse(
        value: Value,
        host_name: impl FnOnce() -> Option<String>,
    ) -> Result<Self, CniError> {
        let raw: RawFleet =
            serde_json::from_value(value).map_err(|e| invalid(format!("ipam.fleet: {e}")))?;
        if raw.etcd_endpoints.is_empty() {
            return Err(invalid(
                "ipam.fleet.etcdEndpoints is missing or empty".into(),
            ));
        }
        for (i, e) in raw.etcd_endpoints.iter().enumerate() {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(invalid(format!(
                    "ipam.fleet.etcdEndpoints[{i}] {e:?} is not an http:// or https:// URL"
                )));
            }
        }
        let text = raw
            .subnet
            .ok_or_else(|| invalid("ipam.fleet.subnet is missing".into()))?;
        let subnet: IpNet = text
            .parse()
            .map_err(|_| invalid(format!("ipam.fleet.subnet {text:?} is not a CIDR")))?;
        if subnet.trunc() != subnet {
            return Err(invalid(format!(
                "ipam.fleet.subnet {text:?} has host bits set (the subnet is {})",
                subnet.trunc()
            )));
        }
        let node_name = match raw.node_name {
            Some(n) => n,
            None => host_name().ok_or_else(|| {
                invalid("ipam.fleet.nodeName is missing and the host name is unknown".into())
            })?,
        };
        if !crate::env::is_cni_identifier(&node_name) || node_name.len() > 253 {
            return Err(invalid(format!(
                "ipam.fleet.nodeName {node_name:?} is invalid: at most 253 letters, digits, \
                 '_', '.' and '-', starting with a letter or digit"
            )));
        }
        let mut warm = WarmSettings::new()
            .warm_prefix_target(raw.warm_prefix_target.unwrap_or(1))
            .warm_ip_target(raw.warm_ip_target.unwrap_or(0))
            .minimum_ip_target(raw.minimum_ip_target.unwrap_or(0))
            .max_pods(Some(raw.max_pods.unwrap_or(DEFAULT_MAX_PODS)));
        warm.warm_eni_target = 0;
        if warm.max_pods == Some(0) {
            return Err(invalid(
                "ipam.fleet.maxPods 0 leaves no address for a pod".into(),
            ));
        }
        let lease = match raw.lease_seconds {
            None => DEFAULT_LEASE,
            Some(s) if s >= 10 => Duration::from_secs(s),
            Some(s) => {
                return Err(invalid(format!(
                    "ipam.fleet.leaseSeconds {s} is too short: at least 10"
                )))
            }
        };
        let timeout = match raw.timeout_seconds {
            None => DEFAULT_TIMEOUT,
            Some(s) => Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    invalid(format!(
                        "ipam.fleet.timeoutSeconds {s} is not a number of seconds > 0"
                    ))
                })?,
        };
        let path = |field: &str, v: &Option<String>| -> Result<Option<PathBuf>, CniError> {
            match v {
                Some(p) if !Path::new(p).is_absolute() => Err(invalid(format!(
                    "ipam.fleet.{field} {p:?} is not an absolute path"
                ))),
                other => Ok(other.as_ref().map(PathBuf::from)),
            }
        };
        let mut credentials = Credentials::new();
        if let Some(ca) = path("caFile", &raw.ca_file)? {
            credentials = credentials.ca_file(ca);
        }
        match (
            path("certFile", &raw.cert_file)?,
            path("keyFile", &raw.key_file)?,
        ) {
            (Some(cert), Some(key)) => credentials = credentials.client_cert(cert, key),
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "ipam.fleet: certFile and keyFile go together".into(),
                ))
            }
        }
        match (raw.username, path("passwordFile", &raw.password_file)?) {
            (Some(user), Some(file)) => credentials = credentials.user(user, file),
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "ipam.fleet: username and passwordFile go together (the password is read \
                     from its file, never given in the configuration)"
                        .into(),
                ))
            }
        }
        let https = raw.etcd_endpoints.iter().any(|e| e.starts_with("https://"));
        if https && credentials.ca_file.is_none() {
            return Err(invalid(
                "ipam.fleet: https:// endpoints need caFile (the CA that signed etcd's certificate)"
                    .into(),
            ));
        }
        Ok(FleetSettings {
            endpoints: raw.etcd_endpoints,
            subnet,
            node_name,
            root: raw.root,
            warm,
            lease,
            timeout,
            credentials,
        })
    }
}

/// The host name, as the kernel has it.
pub fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<FleetSettings, CniError> {
        FleetSettings::parse(v, || Some("host-1".into()))
    }

    #[test]
    fn defaults_and_every_field() {
        let f = parse(json!({"etcdEndpoints": ["http://127.0.0.1:2379"], "subnet": "10.0.0.0/16"}))
            .unwrap();
        assert_eq!(f.node_name, "host-1");
        assert_eq!((f.lease, f.timeout), (DEFAULT_LEASE, DEFAULT_TIMEOUT));
        assert_eq!(f.warm.warm_prefix_target, 1);
        assert_eq!(f.warm.max_pods, Some(110));
        let f = parse(json!({
            "etcdEndpoints": ["https://e1:2379", "https://e2:2379"], "subnet": "fd00::/64",
            "nodeName": "n-7", "root": "/prod", "warmPrefixTarget": 0, "warmIpTarget": 5,
            "minimumIpTarget": 10, "maxPods": 50, "leaseSeconds": 60, "timeoutSeconds": 0.5,
            "caFile": "/etc/etcd/ca.pem", "certFile": "/etc/etcd/node.pem",
            "keyFile": "/etc/etcd/node-key.pem", "username": "pdipam",
            "passwordFile": "/etc/etcd/pdipam.password"
        }))
        .unwrap();
        assert_eq!((f.node_name.as_str(), f.root.as_str()), ("n-7", "/prod"));
        assert_eq!((f.warm.warm_ip_target, f.warm.minimum_ip_target), (5, 10));
        assert_eq!(f.timeout, Duration::from_millis(500));
        assert_eq!(
            f.credentials,
            Credentials::new()
                .ca_file("/etc/etcd/ca.pem")
                .client_cert("/etc/etcd/node.pem", "/etc/etcd/node-key.pem")
                .user("pdipam", "/etc/etcd/pdipam.password")
        );
    }

    #[test]
    fn each_bad_value_is_named() {
        let cases = [
            (json!({"subnet": "10.0.0.0/16"}), "etcdEndpoints is missing"),
            (
                json!({"etcdEndpoints": ["127.0.0.1:2379"], "subnet": "10.0.0.0/16"}),
                "\"127.0.0.1:2379\" is not an http",
            ),
            (
                json!({"etcdEndpoints": ["http://e:1"]}),
                "subnet is missing",
            ),
            (
                json!({"etcdEndpoints": ["http://e:1"], "subnet": "10.0.0.1/16"}),
                "host bits",
            ),
            (
                json!({"etcdEndpoints": ["http://e:1"], "subnet": "x"}),
                "\"x\" is not a CIDR",
            ),
            (
                json!({"etcdEndpoints": ["http://e:1"], "subnet": "10.0.0.0/16", "nodeName": "a/b"}),
                "nodeName \"a/b\" is invalid",
            ),
            (
                json!({"etcdEndpoints": ["http://e:1"], "subnet": "10.0.0.0/16", "leaseSeconds": 2}),
                "leaseSeconds 2 is too short",
            ),
            (
                json!({"etcdEndpoints": ["http://e:1"], "subnet": "10.0.0.0/16", "maxPods": 0}),
                "maxPods 0",
            ),
            (
                json!({"etcdEndpoints": ["http://e:1"], "subnet": "10.0.0.0/16", "timeoutSeconds": -1}),
                "timeoutSeconds -1",
            ),
            (
                json!({"etcdEndpoints": ["http://e:1"], "subnet": "10.0.0.0/16", "endpoints": []}),
                "unknown field `endpoints`",
            ),
        ];
        for (v, want) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert_eq!(e.code, code::INVALID_CONFIG);
            assert!(e.message.contains(want), "{v}: {}", e.message);
        }
    }
}
