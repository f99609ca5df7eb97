//! pdipam-cni under real CNI plugins (Debian's `containernetworking-plugins`: `ptp`, `bridge`),
//! in network namespaces this test creates and removes. Each plugin runs inside a "host"
//! namespace of the test's own, so the veths, the bridge, addresses, routes and sysctls it sets
//! all stay inside namespaces the test owns; the machine's own network is never touched.
//!
//! Needs root, `ip` (iproute2) and the plugins. Without them the tests say why and pass,
//! unless `PDIPAM_CNI_NETNS_TESTS=require` (as `.ci/run` sets, after installing them), which
//! turns a missing prerequisite into a failure.

mod common;

use common::netns::*;
use common::*;
use ipnet::IpNet;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PREFIXES: [&str; 3] = ["10.0.1.16/28", "10.0.1.48/28", "2600:1f14:0:1::/80"];
fn conf(plugin_type: &str, version: &str, dir: &DataDir, dual_stack: bool) -> Value {
    let prefixes: Vec<&str> = PREFIXES
        .iter()
        .copied()
        .filter(|p| dual_stack || !p.contains(':'))
        .collect();
    let mut c = network(
        version,
        dir.path(),
        json!({
            "prefixes": prefixes,
            "subnets": if dual_stack {
                json!(["10.0.0.0/22", "2600:1f14::/56"])
            } else {
                json!(["10.0.0.0/22"])
            },
            "routes": if dual_stack {
                json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}])
            } else {
                json!([{"dst": "0.0.0.0/0"}])
            },
        }),
    );
    c["type"] = json!(plugin_type);
    c
}

/// What the main plugin put on the pod's eth0 must be what pdipam-cni gave, inside a
/// configured prefix.
fn assert_pod_addresses(pod: &Netns, result: &Value) -> Vec<IpAddr> {
    let given: Vec<IpNet> = result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["address"].as_str().unwrap().parse().unwrap())
        .collect();
    let on_link = pod.addresses("eth0");
    assert_eq!(on_link.len(), given.len(), "{on_link:?} vs {given:?}");
    for g in &given {
        assert!(
            on_link.contains(g),
            "{g} not on the pod's eth0: {on_link:?}"
        );
        assert!(within(g.addr(), &PREFIXES), "{g} outside the prefixes");
    }
    given.iter().map(|g| g.addr()).collect()
}

fn supports_1_1(plugins: &Path, plugin: &str) -> bool {
    let out = Command::new(plugins.join(plugin))
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("1.1.0")
}

fn ptp_round(plugins: &Path, version: &str, dual_stack: bool) {
    let tag = format!(
        "{}{}",
        version.replace('.', ""),
        if dual_stack { "d" } else { "" }
    );
    let dir = DataDir::new(&format!("ptp-{tag}"));
    let conf = conf("ptp", version, &dir, dual_stack);
    let ptp = plugins.join("ptp");
    let host = Netns::new(&format!("h{tag}"));
    let pods: Vec<Netns> = (0..3).map(|i| Netns::new(&format!("p{tag}{i}"))).collect();

    let add = |i: usize| {
        run_plugin(
            plugins,
            &ptp,
            &host,
            "ADD",
            &format!("c{i}"),
            Some(&pods[i]),
            &conf,
        )
    };
    let r0 = add(0);
    assert!(r0.success, "ptp ADD: {r0:?}");
    let a0 = assert_pod_addresses(&pods[0], &r0.json());
    assert_eq!(a0.len(), if dual_stack { 2 } else { 1 });
    // ptp put the gateway (the subnet's router) on the host side of the veth.
    let on_host = host.all_addresses();
    assert!(
        on_host.contains(&"10.0.0.1/32".parse().unwrap()),
        "{on_host:?}"
    );
    let r1 = add(1);
    assert!(r1.success, "ptp ADD: {r1:?}");
    let a1 = assert_pod_addresses(&pods[1], &r1.json());
    assert!(
        a0.iter().all(|a| !a1.contains(a)),
        "{a0:?} and {a1:?} share an address"
    );

    // CHECK with the previous result, as the runtime sends it (0.3.x has no CHECK: ptp
    // refuses it before asking the IPAM plugin).
    let mut check = conf.clone();
    check["prevResult"] = r0.json();
    let c = run_plugin(plugins, &ptp, &host, "CHECK", "c0", Some(&pods[0]), &check);
    assert_eq!(c.success, !version.starts_with("0.3."), "ptp CHECK: {c:?}");

    // DEL: the veth goes and so does the allocation; a second DEL succeeds.
    let d = run_plugin(plugins, &ptp, &host, "DEL", "c0", Some(&pods[0]), &conf);
    assert!(d.success, "ptp DEL: {d:?}");
    assert!(!pods[0].has_link("eth0"));
    let d = run_plugin(plugins, &ptp, &host, "DEL", "c0", Some(&pods[0]), &conf);
    assert!(d.success, "second DEL: {d:?}");
    let held = |c: &str| {
        stored_pods(dir.path(), "ipv4")
            .0
            .iter()
            .any(|p| p.key.container_id() == c)
    };
    assert!(!held("c0") && held("c1"));

    // GC: c2's DEL never comes; the runtime's list of valid attachments holds only c1.
    assert!(add(2).success);
    let mut gc = conf.clone();
    gc["cniVersion"] = json!("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "c1", "ifname": "eth0"}]);
    // Debian's plugins (1.1.1) speak CNI up to 1.0.0 and cannot relay GC; then the call goes
    // to pdipam-cni as a 1.1 plugin would delegate it.
    let gc_plugin = if supports_1_1(plugins, "ptp") {
        ptp.clone()
    } else {
        PathBuf::from(PLUGIN)
    };
    let g = run_plugin(plugins, &gc_plugin, &host, "GC", "", None, &gc);
    assert!(g.success, "GC: {g:?}");
    assert!(held("c1") && !held("c2"));
    if dual_stack {
        let v6: Vec<_> = stored_pods(dir.path(), "ipv6").0;
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].key.container_id(), "c1");
    }
    for (i, pod) in pods.iter().enumerate().skip(1) {
        let d = run_plugin(
            plugins,
            &ptp,
            &host,
            "DEL",
            &format!("c{i}"),
            Some(pod),
            &conf,
        );
        assert!(d.success, "DEL c{i}: {d:?}");
    }
    assert!(stored_pods(dir.path(), "ipv4").0.is_empty());
}

#[test]
fn ptp_add_check_del_gc_in_network_namespaces() {
    let Some(plugins) = plugins() else { return };
    ptp_round(&plugins, "1.0.0", false);
    ptp_round(&plugins, "0.4.0", false);
    ptp_round(&plugins, "0.3.1", false);
    ptp_round(&plugins, "1.0.0", true);
}

#[test]
fn bridge_add_check_del_in_network_namespaces() {
    let Some(plugins) = plugins() else { return };
    let dir = DataDir::new("bridge");
    let mut conf = conf("bridge", "1.0.0", &dir, false);
    conf["bridge"] = json!("pdipam-br0");
    conf["isGateway"] = json!(true);
    let bridge = plugins.join("bridge");
    let host = Netns::new("hbr");
    let pods: Vec<Netns> = (0..2).map(|i| Netns::new(&format!("pbr{i}"))).collect();
    let mut given = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        // The second pod asks for its address through the `ips` capability, as a runtime
        // does: bridge hands its runtimeConfig on to the IPAM plugin.
        let mut add = conf.clone();
        if i == 1 {
            add["runtimeConfig"] = json!({"ips": ["10.0.1.60/22"]});
        }
        let r = run_plugin(
            &plugins,
            &bridge,
            &host,
            "ADD",
            &format!("b{i}"),
            Some(pod),
            &add,
        );
        assert!(r.success, "bridge ADD: {r:?}");
        given.extend(assert_pod_addresses(pod, &r.json()));
        if i == 1 {
            assert_eq!(given[1].to_string(), "10.0.1.60");
        }
        let mut check = conf.clone();
        check["prevResult"] = r.json();
        let c = run_plugin(
            &plugins,
            &bridge,
            &host,
            "CHECK",
            &format!("b{i}"),
            Some(pod),
            &check,
        );
        assert!(c.success, "bridge CHECK: {c:?}");
    }
    assert_ne!(given[0], given[1]);
    // The bridge, in the test's host namespace, carries the gateway with the subnet's length.
    let on_bridge = host.addresses("pdipam-br0");
    assert!(
        on_bridge.contains(&"10.0.0.1/22".parse().unwrap()),
        "{on_bridge:?}"
    );
    for (i, pod) in pods.iter().enumerate() {
        let d = run_plugin(
            &plugins,
            &bridge,
            &host,
            "DEL",
            &format!("b{i}"),
            Some(pod),
            &conf,
        );
        assert!(d.success, "bridge DEL: {d:?}");
        assert!(!pod.has_link("eth0"));
    }
    assert!(stored_pods(dir.path(), "ipv4").0.is_empty());
}

/// Whether a UDP datagram sent from the pod namespace `from` reaches `address` in the pod
/// namespace `to`: each end is a thread that enters its namespace (as a pod's process would).
fn reaches(from: &Netns, to: &Netns, address: IpAddr) -> bool {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    use std::net::{SocketAddr, UdpSocket};
    use std::time::Duration;
    let enter = |ns: &Netns| {
        let f = std::fs::File::open(ns.path()).unwrap();
        move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&f),
            Some(LinkNameSpaceType::Network),
        )
        .unwrap();
    };
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let receiver = s.spawn(move || {
            enter(to);
            let socket = UdpSocket::bind(SocketAddr::new(address, 0)).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            tx.send(socket.local_addr().unwrap().port()).unwrap();
            let mut buf = [0u8; 16];
            matches!(socket.recv(&mut buf), Ok(5) if &buf[..5] == b"hello")
        });
        let port = rx.recv().unwrap();
        s.spawn(move || {
            enter(from);
            let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
            // A refusal to send ("Network is unreachable", a broadcast address) is a miss.
            let _ = socket.send_to(b"hello", SocketAddr::new(address, port));
        })
        .join()
        .unwrap();
        receiver.join().unwrap()
    })
}

/// Every address of a full /28 is reachable from a pod in another prefix: no pod is given the
/// network or broadcast address of the length its result announces.
fn a_full_28_is_reachable(plugin: &str) {
    let Some(plugins) = plugins() else { return };
    let dir = DataDir::new(&format!("reach-{plugin}"));
    let mut conf = conf(plugin, "1.0.0", &dir, false);
    if plugin == "bridge" {
        conf["bridge"] = json!("pdipam-br1");
        conf["isGateway"] = json!(true);
    }
    let binary = plugins.join(plugin);
    let host = Netns::new(&format!("hr{plugin}"));
    let pods: Vec<Netns> = (0..17)
        .map(|i| Netns::new(&format!("r{plugin}{i}")))
        .collect();
    let mut addresses = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let r = run_plugin(
            &plugins,
            &binary,
            &host,
            "ADD",
            &format!("r{i}"),
            Some(pod),
            &conf,
        );
        assert!(r.success, "{plugin} ADD {i}: {r:?}");
        addresses.extend(assert_pod_addresses(pod, &r.json()));
    }
    // The first sixteen fill 10.0.1.16/28, the seventeenth is in the next prefix.
    let first: IpNet = "10.0.1.16/28".parse().unwrap();
    assert!(
        addresses[..16].iter().all(|a| first.contains(a)),
        "{addresses:?}"
    );
    let peer = &pods[16];
    for (pod, address) in pods[..16].iter().zip(&addresses) {
        assert!(
            reaches(peer, pod, *address),
            "{plugin}: {address} is not reachable"
        );
    }
}

#[test]
fn every_address_of_a_full_28_is_reachable_under_ptp() {
    a_full_28_is_reachable("ptp");
}

#[test]
fn every_address_of_a_full_28_is_reachable_under_bridge() {
    a_full_28_is_reachable("bridge");
}

/// The `n`th fenced JSON block of docs/cni.md after the heading `heading`.
fn docs_json(heading: &str, n: usize) -> Value {
    let page = include_str!("../../docs/cni.md");
    let mut rest = &page[page.find(heading).expect("the heading")..];
    for _ in 0..n {
        rest = &rest[rest.find("```json\n").unwrap() + 8..];
        rest = &rest[rest.find("```").unwrap() + 3..];
    }
    let start = rest.find("```json\n").unwrap() + 8;
    let end = start + rest[start..].find("```").unwrap();
    serde_json::from_str(&rest[start..end]).expect("the example is JSON")
}

/// docs/cni.md's complete network configuration works as written under Debian's `ptp`: ADD
/// prints the result the page shows, CHECK with that result passes, DEL removes the pod.
#[test]
fn the_docs_example_works_as_written_under_ptp() {
    let Some(plugins) = plugins() else { return };
    let dir = DataDir::new("docs-example");
    let mut conf = docs_json("## A complete network configuration", 0);
    let shown = docs_json("## A complete network configuration", 1);
    // Only where the state lives changes, so that the test owns it.
    conf["ipam"]["dataDir"] = json!(dir.path());
    let ptp = plugins.join("ptp");
    let host = Netns::new("hdocs");
    let pod = Netns::new("pdocs");
    let r = run_plugin(&plugins, &ptp, &host, "ADD", "docs0", Some(&pod), &conf);
    assert!(r.success, "ADD: {r:?}");
    let result = r.json();
    for key in ["ips", "routes", "dns"] {
        let strip = |v: &Value| {
            // ptp adds the interface index to each address; the page shows the IPAM result.
            let mut v = v.clone();
            if let Some(ips) = v.as_array_mut() {
                for ip in ips {
                    ip.as_object_mut().map(|o| o.remove("interface"));
                }
            }
            v
        };
        assert_eq!(strip(&result[key]), shown[key], "{key}: {result}");
    }
    let mut check = conf.clone();
    check["prevResult"] = result;
    let c = run_plugin(&plugins, &ptp, &host, "CHECK", "docs0", Some(&pod), &check);
    assert!(c.success, "CHECK: {c:?}");
    let d = run_plugin(&plugins, &ptp, &host, "DEL", "docs0", Some(&pod), &conf);
    assert!(d.success, "DEL: {d:?}");
    assert!(!pod.has_link("eth0"));
    // The page's way to ask for an address, through ptp.
    let page = include_str!("../../docs/cni.md");
    let args = "IgnoreUnknown=1;IP=10.0.1.20";
    assert!(
        page.contains(&format!("`CNI_ARGS={args}`")),
        "the page shows {args}"
    );
    let other = Netns::new("pdocs1");
    let r = run_plugin_with_args(
        &plugins,
        &ptp,
        &host,
        "ADD",
        "docs1",
        Some(&other),
        &conf,
        Some(args),
    );
    assert!(r.success, "ADD with {args}: {r:?}");
    assert_eq!(r.json()["ips"][0]["address"], "10.0.1.20/22");
}
