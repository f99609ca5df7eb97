//! Whatever a runtime (or an attacker with access to the configuration) can hand pdipam-cni
//! before it touches state: environment variables and the network configuration. Never a
//! panic; what is accepted obeys the documented rules, and the result built from it is JSON
//! that reads back the same. Configurations come raw or assembled from fuzzed parts, so that
//! the checks after JSON decoding are reached.
#![no_main]

use arbitrary::Arbitrary;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use pdipam_cni::config::NetworkConfig;
use pdipam_cni::env::Invocation;
use pdipam_cni::result::{add_result, previous_addresses, GivenAddress};
use serde_json::{json, Value};

/// A CIDR or address as text: free text, or built from numbers so that valid ones are common.
#[derive(Arbitrary, Debug)]
enum Net {
    Text(String),
    V4(u32, u8),
    V6(u128, u8),
    Addr4(u32),
    Addr6(u128),
}

impl Net {
    fn text(&self) -> String {
        match self {
            Net::Text(t) => t.clone(),
            Net::V4(a, l) => format!("{}/{}", std::net::Ipv4Addr::from(*a), l % 34),
            Net::V6(a, l) => format!("{}/{}", std::net::Ipv6Addr::from(*a), l % 130),
            Net::Addr4(a) => std::net::Ipv4Addr::from(*a).to_string(),
            Net::Addr6(a) => std::net::Ipv6Addr::from(*a).to_string(),
        }
    }
}

fn texts(v: &[Net]) -> Vec<String> {
    v.iter().map(Net::text).collect()
}

// One value per run, built once: its size does not matter, and boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Arbitrary, Debug)]
enum Stdin {
    Raw(Vec<u8>),
    Built {
        version: u8,
        name: String,
        prefixes: Vec<Net>,
        secondary: Vec<Net>,
        subnets: Vec<Net>,
        gateways: Vec<Net>,
        cooldown: Option<f64>,
        routes: Vec<(Net, Option<Net>)>,
        data_dir: Option<String>,
        prev_addresses: Vec<Net>,
        unknown_key: Option<String>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    env: Vec<(u8, String)>,
    stdin: Stdin,
}

const VARS: [&str; 7] = [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_PATH",
    "CNI_ARGS",
    "CNI_OTHER",
];
const VERSIONS: [&str; 5] = ["0.4.0", "1.0.0", "1.1.0", "0.3.1", "2.0.0"];

fn stdin_bytes(s: &Stdin) -> Vec<u8> {
    match s {
        Stdin::Raw(b) => b.clone(),
        Stdin::Built {
            version,
            name,
            prefixes,
            secondary,
            subnets,
            gateways,
            cooldown,
            routes,
            data_dir,
            prev_addresses,
            unknown_key,
        } => {
            let mut ipam = json!({"type": "pdipam-cni"});
            if !prefixes.is_empty() {
                ipam["prefixes"] = json!(texts(prefixes));
            }
            if !secondary.is_empty() {
                ipam["secondaryAddresses"] = json!(texts(secondary));
            }
            if !subnets.is_empty() {
                ipam["subnets"] = json!(texts(subnets));
            }
            if !gateways.is_empty() {
                ipam["gateways"] = json!(texts(gateways));
            }
            if let Some(c) = cooldown {
                ipam["cooldownSeconds"] = json!(c);
            }
            if let Some(d) = data_dir {
                ipam["dataDir"] = json!(d);
            }
            ipam["routes"] = routes
                .iter()
                .map(|(dst, gw)| json!({"dst": dst.text(), "gw": gw.as_ref().map(Net::text)}))
                .collect();
            if let Some(k) = unknown_key {
                ipam[k.as_str()] = json!(1);
            }
            let prev: Vec<Value> = prev_addresses
                .iter()
                .map(|a| json!({"address": a.text()}))
                .collect();
            serde_json::to_vec(&json!({
                "cniVersion": VERSIONS[*version as usize % VERSIONS.len()],
                "name": name,
                "ipam": ipam,
                "prevResult": {"ips": prev},
            }))
            .unwrap()
        }
    }
}

fuzz_target!(|input: Input| {
    let get = |k: &str| {
        input
            .env
            .iter()
            .rev()
            .find(|(i, _)| VARS[*i as usize % VARS.len()] == k)
            .map(|(_, v)| v.clone())
    };
    if let Ok(inv) = Invocation::from_env(get) {
        let id = &inv.container_id;
        assert!(id.is_empty() || id.chars().next().unwrap().is_ascii_alphanumeric());
        assert!(inv.if_name.len() <= 15);
    }

    let stdin = stdin_bytes(&input.stdin);
    let Ok(net) = NetworkConfig::parse(&stdin) else {
        return;
    };
    // To see that fuzzing reaches the checks past decoding: print what was accepted.
    if std::env::var_os("CNI_INPUT_SHOW_ACCEPTED").is_some() {
        eprintln!("accepted: {}", String::from_utf8_lossy(&stdin));
    }
    assert!(net.ipam.data_dir.is_absolute());
    assert!(!net.ipam.families.is_empty());
    let mut given = Vec::new();
    for f in &net.ipam.families {
        assert!(!f.blocks.is_empty());
        for b in &f.blocks {
            assert_eq!(b.trunc(), *b, "{b} accepted unaligned");
            if let Some(s) = f.subnet {
                assert!(s.contains(b), "{b} outside {s}");
            }
            if let Some(g) = f.gateway {
                assert!(!b.contains(&g), "gateway {g} inside {b}");
            }
        }
        let block = f.blocks[0];
        given.push(GivenAddress::new(f, block.addr(), block));
    }
    let text = add_result(&net.cni_version, &net.ipam, &given);
    let back: Value = serde_json::from_str(&text).expect("the result is JSON");
    let addresses: Vec<IpNet> = back["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["address"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(addresses.len(), given.len());
    for (a, g) in addresses.iter().zip(&given) {
        assert_eq!((a.addr(), a.prefix_len()), (g.address, g.prefix_len));
    }
    assert_eq!(previous_addresses(&back).len(), given.len());
    if let Some(prev) = &net.prev_result {
        let _ = previous_addresses(prev);
    }
});
