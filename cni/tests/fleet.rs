//! pdipam-cni in fleet mode: nodes (distinct node names and data directories) claim their
//! prefixes from one subnet kept in a real etcd (started by the test on loopback, stopped by
//! pid). Where etcd is missing the tests say so and pass, unless `PDIPAM_FLEET_TESTS=require`;
//! the network-namespace test also needs what `netns.rs` needs.

mod common;

use common::netns::{bridge_loopback, plugins, run_plugin, Netns};
use common::*;
use ipnet::IpNet;
use pdipam_fleet::testing::EtcdServer;
use pdipam_fleet::{verify, FleetConfig, FleetSubnet, Keyspace, Kind, Run};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

const SUBNET: &str = "10.99.0.0/24";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// etcd with the fleet subnet created, as `pdipam fleet init` creates it.
fn fleet_etcd(name: &str) -> Option<(EtcdServer, tokio::runtime::Runtime)> {
    let server = EtcdServer::start(name)?;
    let rt = init(&server, FleetConfig::new(SUBNET.parse().unwrap()));
    Some((server, rt))
}

/// Creates the fleet subnet `config` on `server`, under the empty root.
fn init(server: &EtcdServer, config: FleetConfig) -> tokio::runtime::Runtime {
    let rt = runtime();
    rt.block_on(async {
        let etcd = server.connect(Duration::from_secs(5)).await;
        FleetSubnet::init(&etcd, &Keyspace::new(""), &config)
            .await
            .unwrap();
    });
    rt
}

fn fleet_conf(server: &EtcdServer, dir: &DataDir, node: &str, extra: Value) -> Value {
    let mut fleet = json!({
        "etcdEndpoints": server.endpoints(),
        "subnet": SUBNET,
        "nodeName": node,
        "timeoutSeconds": 2,
    });
    for (k, v) in extra.as_object().unwrap() {
        fleet[k] = v.clone();
    }
    network(
        "1.0.0",
        dir.path(),
        json!({"fleet": fleet, "cooldownSeconds": 0, "routes": [{"dst": "0.0.0.0/0"}]}),
    )
}

/// Every allocation in the fleet with its holder, after the fleet's own check (no unit held
/// twice, holders match, no orphan).
fn fleet_state(rt: &tokio::runtime::Runtime, server: &EtcdServer) -> Vec<Run> {
    rt.block_on(async {
        let etcd = server.connect(Duration::from_secs(5)).await;
        let report = verify(&etcd, &Keyspace::new(""), SUBNET.parse().unwrap())
            .await
            .expect("the fleet verifies");
        assert!(report.orphans.is_empty(), "{:?}", report.orphans);
        report.runs
    })
}

fn holder_of(runs: &[Run], address: IpAddr) -> Option<&str> {
    runs.iter()
        .find(|r| r.kind == Kind::Prefix && r.cidr.contains(&address))
        .map(|r| r.node.as_str())
}

#[test]
fn two_nodes_share_one_etcd_under_ptp_and_never_share_an_address() {
    let Some(plugins) = plugins() else { return };
    let Some((server, rt)) = fleet_etcd("cni-ptp") else {
        return;
    };
    let ptp = plugins.join("ptp");
    let nodes = ["node-a", "node-b"];
    let dirs: Vec<DataDir> = nodes
        .iter()
        .map(|n| DataDir::new(&format!("fleet-{n}")))
        .collect();
    let confs: Vec<Value> = nodes
        .iter()
        .zip(&dirs)
        .map(|(n, d)| {
            let mut c = fleet_conf(&server, d, n, json!({}));
            c["type"] = json!("ptp");
            c
        })
        .collect();
    let hosts: Vec<Netns> = nodes
        .iter()
        .map(|n| Netns::new(&format!("fh{n}")))
        .collect();
    for h in &hosts {
        bridge_loopback(h, server.port());
    }
    const PODS: usize = 20;
    // Both nodes add their pods at the same time, each from its own thread, as two machines would.
    let given: Vec<Vec<(String, IpAddr, Netns)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..nodes.len())
            .map(|n| {
                let (plugins, ptp, host, conf) = (&plugins, &ptp, &hosts[n], &confs[n]);
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in 0..PODS {
                        let container = format!("{}-c{i}", nodes[n]);
                        let pod = Netns::new(&format!("f{n}p{i}"));
                        let r = run_plugin(plugins, ptp, host, "ADD", &container, Some(&pod), conf);
                        assert!(r.success, "{} ADD {i}: {r:?}", nodes[n]);
                        let result = r.json();
                        let address: IpNet = result["ips"][0]["address"]
                            .as_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        assert_eq!(pod.addresses("eth0"), vec![address]);
                        out.push((container, address.addr(), pod));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let runs = fleet_state(&rt, &server);
    let mut seen = HashSet::new();
    for (n, pods) in given.iter().enumerate() {
        for (container, address, _) in pods {
            assert!(seen.insert(*address), "{address} given twice ({container})");
            // The address lies in a prefix the fleet records for this pod's node (the
            // network's member: node/network).
            let member = format!("{}/pods", nodes[n]);
            assert_eq!(
                holder_of(&runs, *address),
                Some(member.as_str()),
                "{container}: {address}"
            );
        }
    }
    // Each node claimed what its 20 pods and its one warm prefix need, no more.
    let per_node: BTreeMap<&str, usize> = nodes
        .iter()
        .map(|n| {
            (
                *n,
                runs.iter()
                    .filter(|r| r.node == format!("{n}/pods"))
                    .count(),
            )
        })
        .collect();
    for (n, count) in &per_node {
        assert!(
            (2..=3).contains(count),
            "{n} holds {count} prefixes: {runs:?}"
        );
    }

    // node-a's pods go; with no cooldown its emptied prefixes go back to the fleet (one per
    // 30 s, the planner's shrink interval: the first at once), keeping its warm prefix.
    let before = per_node["node-a"];
    for (container, _, pod) in &given[0] {
        let d = run_plugin(
            &plugins,
            &ptp,
            &hosts[0],
            "DEL",
            container,
            Some(pod),
            &confs[0],
        );
        assert!(d.success, "DEL {container}: {d:?}");
    }
    let runs = fleet_state(&rt, &server);
    let after = runs.iter().filter(|r| r.node == "node-a/pods").count();
    assert_eq!(after, before - 1, "{runs:?}");
    // node-b's pods kept their prefixes.
    for (container, address, _) in &given[1] {
        assert_eq!(
            holder_of(&runs, *address),
            Some("node-b/pods"),
            "{container}"
        );
    }
}

fn prefixes_of(runs: &[Run], node: &str) -> Vec<IpNet> {
    runs.iter()
        .filter(|r| r.node == node && r.kind == Kind::Prefix)
        .map(|r| r.cidr)
        .collect()
}

#[test]
fn a_stopped_etcd_fails_only_the_adds_that_need_it_and_says_which() {
    let Some((server, rt)) = fleet_etcd("cni-stop") else {
        return;
    };
    let dir = DataDir::new("fleet-stop");
    // One warm address: the first ADD claims one /28, whose other 15 addresses serve locally.
    let conf = fleet_conf(
        &server,
        &dir,
        "node-s",
        json!({"warmPrefixTarget": 0, "warmIpTarget": 1}),
    );
    assert_eq!(call("ADD", "s0", &conf).addresses().len(), 1);
    let held = prefixes_of(&fleet_state(&rt, &server), "node-s/pods");
    assert_eq!(held.len(), 1);
    server.signal("STOP");
    let mut given = Vec::new();
    for i in 1..15 {
        let r = call("ADD", &format!("s{i}"), &conf);
        given.extend(r.addresses());
    }
    assert!(given.iter().all(|a| held[0].contains(&a.addr())));
    // The block is full: a new one needs etcd, which does not answer within the timeout.
    let started = std::time::Instant::now();
    let r = call("ADD", "s15", &conf);
    let r = if r.success {
        call("ADD", "s16", &conf)
    } else {
        r
    };
    assert_eq!(r.code(), 11, "{r:?}");
    assert!(
        r.json()["msg"].as_str().unwrap().contains(&server.endpoint),
        "{r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    server.signal("CONT");
    let r = call("ADD", "s16", &conf);
    assert!(r.success, "{r:?}");
    let runs = fleet_state(&rt, &server);
    assert_eq!(prefixes_of(&runs, "node-s/pods").len(), 2, "{runs:?}");
}

#[test]
fn the_checkpoint_is_brought_in_line_with_what_the_fleet_records() {
    let Some((server, rt)) = fleet_etcd("cni-reconcile") else {
        return;
    };
    let dir = DataDir::new("fleet-reconcile");
    let conf = fleet_conf(
        &server,
        &dir,
        "node-r",
        json!({"warmPrefixTarget": 0, "warmIpTarget": 1}),
    );
    let first = call("ADD", "r0", &conf).addresses()[0];
    // A call killed after its claim and before its checkpoint: the fleet records a second
    // prefix for the node that the checkpoint lacks.
    let orphan = rt.block_on(async {
        let etcd = server.connect(Duration::from_secs(5)).await;
        let keys = Keyspace::new("");
        let (me, _) =
            pdipam_fleet::Member::resume(&etcd, &keys, "node-r/pods", Duration::from_secs(3600))
                .await
                .unwrap();
        let subnet = FleetSubnet::open(&etcd, &keys, SUBNET.parse().unwrap(), &me)
            .await
            .unwrap();
        subnet.allocate_prefix(28).await.unwrap()
    });
    // Fill the first prefix: the next contact adopts the orphan instead of claiming a third.
    for i in 1..17 {
        call("ADD", &format!("r{i}"), &conf).addresses();
    }
    let (pods, _) = stored_pods(dir.path(), "ipv4");
    assert!(
        pods.iter().any(|p| orphan.contains(&p.address)),
        "{orphan} unused"
    );
    let runs = fleet_state(&rt, &server);
    let held = prefixes_of(&runs, "node-r/pods");
    assert_eq!(held.len(), 2, "{runs:?}");
    assert!(held.contains(&orphan) && held.iter().any(|h| h.contains(&first.addr())));
}

/// The README's fleet-mode configuration works as shown once the fleet exists: pointed at the
/// test's etcd and data directory, its first pod gets an address of the fleet subnet with the
/// subnet's length and router.
#[test]
fn the_readmes_fleet_configuration_works_as_shown() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Fleet mode").unwrap()..];
    let start = section.find("```json\n").unwrap() + "```json\n".len();
    let end = start + section[start..].find("```").unwrap();
    let mut conf: Value = serde_json::from_str(&section[start..end]).unwrap();
    let subnet: IpNet = conf["ipam"]["fleet"]["subnet"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let Some(server) = EtcdServer::start("cni-readme") else {
        return;
    };
    init(&server, FleetConfig::new(subnet));
    let dir = DataDir::new("fleet-readme");
    conf["ipam"]["fleet"]["etcdEndpoints"] = json!(server.endpoints());
    conf["ipam"]["fleet"]["nodeName"] = json!("node-readme");
    conf["ipam"]["dataDir"] = json!(dir.path());
    let r = call("ADD", "readme0", &conf);
    let address = r.addresses()[0];
    assert!(subnet.contains(&address.addr()), "{address}");
    assert_eq!(address.prefix_len(), subnet.prefix_len());
    assert_eq!(r.json()["ips"][0]["gateway"], "10.64.0.1");
}

/// With TLS and `--client-cert-auth`, the `fleet` section's CA and client certificate let the
/// node in; without the certificate the ADD that needs etcd fails naming the endpoint, and
/// says the certificate was refused.
#[test]
fn a_tls_etcd_lets_in_the_node_with_its_certificate_only() {
    let Some(server) = EtcdServer::start_tls("cni-tls") else {
        return;
    };
    let certs = server.certs.as_ref().unwrap();
    init(&server, FleetConfig::new(SUBNET.parse().unwrap()));
    let dir = DataDir::new("fleet-tls");
    let conf = fleet_conf(
        &server,
        &dir,
        "node-t",
        json!({"caFile": certs.ca, "certFile": certs.client.0, "keyFile": certs.client.1}),
    );
    let address = call("ADD", "t0", &conf).addresses()[0];
    assert!(SUBNET.parse::<IpNet>().unwrap().contains(&address.addr()));
    let other = DataDir::new("fleet-tls-nocert");
    let conf = fleet_conf(&server, &other, "node-u", json!({"caFile": certs.ca}));
    let r = call("ADD", "u0", &conf);
    assert_eq!(r.code(), 104, "{r:?}");
    let msg = r.json()["msg"].as_str().unwrap().to_string();
    assert!(
        msg.contains(&server.endpoint) && msg.contains("refuses this client's certificate"),
        "{msg}"
    );
}

/// Two networks of one node on the same fleet subnet are members of their own: each claims its
/// own prefixes, and neither takes the other's for its own when it reconciles.
#[test]
fn two_networks_of_one_node_never_share_a_prefix() {
    let Some((server, rt)) = fleet_etcd("cni-two-networks") else {
        return;
    };
    let dir = DataDir::new("fleet-two-networks");
    let pods = fleet_conf(
        &server,
        &dir,
        "node-n",
        json!({"warmPrefixTarget": 0, "warmIpTarget": 1}),
    );
    let mut other = pods.clone();
    other["name"] = json!("other");
    let mut seen = HashSet::new();
    for i in 0..20 {
        for conf in [&pods, &other] {
            let a = call("ADD", &format!("c{i}"), conf).addresses()[0].addr();
            assert!(seen.insert(a), "{a} given twice");
        }
    }
    let runs = fleet_state(&rt, &server);
    let mine = prefixes_of(&runs, "node-n/pods");
    let theirs = prefixes_of(&runs, "node-n/other");
    assert_eq!((mine.len(), theirs.len()), (2, 2), "{runs:?}");
    assert!(mine.iter().all(|p| !theirs.contains(p)));
}

/// A fleet subnet that reserves nothing could hand a pod the gateway or the subnet's network
/// or broadcast address: refused, naming the address, before any prefix is claimed.
#[test]
fn a_fleet_that_reserves_nothing_is_refused_naming_the_address() {
    let Some(server) = EtcdServer::start("cni-unreserved") else {
        return;
    };
    let rt = init(
        &server,
        FleetConfig::new(SUBNET.parse().unwrap()).profile(pdipam::ReservedProfile::None),
    );
    let dir = DataDir::new("fleet-unreserved");
    let conf = fleet_conf(&server, &dir, "node-x", json!({}));
    let r = call("ADD", "x0", &conf);
    assert_eq!(r.code(), 7, "{r:?}");
    assert!(
        r.stdout.contains("the gateway 10.99.0.1 is not reserved"),
        "{r:?}"
    );
    let mut with_gateway = conf.clone();
    with_gateway["ipam"]["gateways"] = json!(["10.98.0.1"]);
    let r = call("ADD", "x0", &with_gateway);
    assert_eq!(r.code(), 7, "{r:?}");
    assert!(
        r.stdout
            .contains("the network address 10.99.0.0 is not reserved"),
        "{r:?}"
    );
    assert!(fleet_state(&rt, &server).is_empty(), "nothing was claimed");
}
