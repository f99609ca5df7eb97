//! The CNI protocol, through the binary: every verb in every supported version, the error
//! objects, idempotency, exhaustion, corrupt state, configuration changes and GC.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::IpAddr;

const PREFIXES: [&str; 2] = ["10.0.1.16/28", "10.0.1.48/28"];

fn v4_network(version: &str, dir: &DataDir) -> Value {
    network(
        version,
        dir.path(),
        json!({
            "prefixes": PREFIXES,
            "subnets": ["10.0.0.0/22"],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.0.0.2"]},
        }),
    )
}

#[test]
fn version_lists_the_supported_versions() {
    let r = call_with(
        &[("CNI_COMMAND", "VERSION".into())],
        br#"{"cniVersion":"1.0.0"}"#,
    );
    assert!(r.success, "{r:?}");
    let v = r.json();
    assert_eq!(v["cniVersion"], "1.0.0");
    assert_eq!(
        v["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    // No input at all: the newest version answers.
    let r = call_with(&[("CNI_COMMAND", "VERSION".into())], b"");
    assert_eq!(r.json()["cniVersion"], "1.1.0");
}

#[test]
fn add_check_del_in_every_version() {
    for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let dir = DataDir::new(&format!("verbs-{version}"));
        let has_check = !version.starts_with("0.3.");
        let conf = v4_network(version, &dir);
        let add = call("ADD", "c1", &conf);
        let result = add.json();
        assert_eq!(result["cniVersion"], version, "{}", add.stdout);
        let ip = &result["ips"][0];
        assert_eq!(ip["address"], "10.0.1.16/22");
        assert_eq!(ip["gateway"], "10.0.0.1");
        assert_eq!(ip.get("version").is_some(), version.starts_with("0."));
        assert_eq!(result["routes"], json!([{"dst": "0.0.0.0/0"}]));
        assert_eq!(result["dns"]["nameservers"], json!(["10.0.0.2"]));

        // A repeated ADD (same container and interface) gets the same address.
        assert_eq!(call("ADD", "c1", &conf).addresses(), add.addresses());
        // CHECK passes with and without the previous result, and fails when the previous
        // result shows another address.
        let mut with_prev = conf.clone();
        with_prev["prevResult"] = result.clone();
        if has_check {
            assert!(call("CHECK", "c1", &with_prev).success);
            assert!(call("CHECK", "c1", &conf).success);
            with_prev["prevResult"]["ips"][0]["address"] = json!("10.0.1.20/22");
            assert_eq!(call("CHECK", "c1", &with_prev).code(), 102);
        } else {
            // CHECK came with 0.4.0: refused as the specification says, in the words of
            // the reference library's plugins.
            let r = call("CHECK", "c1", &with_prev);
            assert_eq!(r.code(), 1);
            assert!(
                r.stdout.contains("config version does not allow CHECK"),
                "{r:?}"
            );
            assert_eq!(r.json()["cniVersion"], version);
        }

        let del = call("DEL", "c1", &conf);
        assert!(del.success && del.stdout.is_empty(), "{del:?}");
        // DEL of an unknown container succeeds; CHECK of it is code 3, "container unknown
        // or does not exist".
        assert!(call("DEL", "c1", &conf).success);
        assert!(call("DEL", "never-added", &conf).success);
        if has_check {
            assert_eq!(call("CHECK", "c1", &conf).code(), 3);
        }
        let (pods, _) = stored_pods(dir.path(), "ipv4");
        assert!(pods.is_empty());
    }
}

#[test]
fn del_and_check_of_a_network_never_used() {
    let dir = DataDir::new("unused");
    let conf = v4_network("1.0.0", &dir);
    assert!(call("DEL", "c1", &conf).success);
    assert!(!dir.path().join("pods").exists(), "DEL created state");
    assert_eq!(call("CHECK", "c1", &conf).code(), 3);
}

#[test]
fn errors_are_specification_error_objects() {
    let dir = DataDir::new("errors");
    let conf = v4_network("1.0.0", &dir);
    // 6: stdin is not JSON.
    let r = call_with(&env_for("ADD", "c1"), b"{ not json");
    assert_eq!(r.code(), 6);
    // 1: unsupported version, named, answered in the nearest supported version with every
    // supported one listed.
    for (asked, answered) in [("0.2.0", "0.3.0"), ("2.0.0", "1.1.0")] {
        let mut other = conf.clone();
        other["cniVersion"] = json!(asked);
        let r = call("ADD", "c1", &other);
        assert_eq!(r.code(), 1);
        let v = r.json();
        assert!(v["msg"].as_str().unwrap().contains(asked), "{v}");
        assert_eq!(v["cniVersion"], answered, "{v}");
        assert!(
            v["details"]
                .as_str()
                .unwrap()
                .contains("0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"),
            "{v}"
        );
    }
    // Any other error carries the configuration's own version.
    let mut v031 = conf.clone();
    v031["cniVersion"] = json!("0.3.1");
    v031["ipam"]["prefixes"] = json!(["10.0.1.17/28"]);
    assert_eq!(call("ADD", "c1", &v031).json()["cniVersion"], "0.3.1");
    // 7: an invalid value, named.
    let mut bad = conf.clone();
    bad["ipam"]["prefixes"] = json!(["10.0.1.17/28"]);
    let r = call("ADD", "c1", &bad);
    assert_eq!(r.code(), 7);
    assert!(r.stdout.contains("10.0.1.17/28"), "{}", r.stdout);
    // 4: a missing variable, named.
    let env: Vec<_> = env_for("ADD", "c1")
        .into_iter()
        .filter(|(k, _)| *k != "CNI_CONTAINERID")
        .collect();
    let r = call_with(&env, conf.to_string().as_bytes());
    assert_eq!(r.code(), 4);
    assert!(r.stdout.contains("CNI_CONTAINERID"));
    // 1: GC and STATUS need 1.1.0.
    assert_eq!(
        call_with(
            &[("CNI_COMMAND", "STATUS".into())],
            conf.to_string().as_bytes()
        )
        .code(),
        1
    );
    // The error object carries the configuration's version; nothing was written.
    assert_eq!(r.json()["cniVersion"], "1.0.0");
    assert!(!dir.path().join("pods").exists());
}

#[test]
fn exhaustion_says_no_available_ip_prefix_addresses_and_status_agrees() {
    let dir = DataDir::new("exhaustion");
    let conf = network(
        "1.1.0",
        dir.path(),
        json!({"prefixes": ["10.0.1.16/28"], "subnets": ["10.0.0.0/22"], "cooldownSeconds": 3600}),
    );
    let status = |c: &Value| {
        call_with(
            &[("CNI_COMMAND", "STATUS".into())],
            c.to_string().as_bytes(),
        )
    };
    assert!(status(&conf).success);
    let mut seen = HashSet::new();
    for i in 0..16 {
        let a = call("ADD", &format!("c{i}"), &conf).addresses();
        assert_eq!(a[0].prefix_len(), 22, "the subnet's length");
        assert!(seen.insert(a[0].addr()));
    }
    let r = call("ADD", "c16", &conf);
    assert_eq!(r.code(), 100);
    assert!(
        r.stdout.contains("no available IP/Prefix addresses"),
        "{}",
        r.stdout
    );
    assert_eq!(status(&conf).code(), 50);
    // A released address cools down: still no address, and the message says why.
    assert!(call("DEL", "c3", &conf).success);
    let r = call("ADD", "c16", &conf);
    assert_eq!(r.code(), 100);
    assert!(
        r.json()["details"]
            .as_str()
            .unwrap()
            .contains("1 cooling down"),
        "{}",
        r.stdout
    );
    assert_eq!(status(&conf).code(), 50);
}

#[test]
fn cooldown_survives_between_calls_and_ends() {
    let dir = DataDir::new("cooldown");
    let conf = network(
        "1.0.0",
        dir.path(),
        json!({"secondaryAddresses": ["10.0.0.9"], "cooldownSeconds": 0.3}),
    );
    assert_eq!(
        call("ADD", "a", &conf).addresses()[0].to_string(),
        "10.0.0.9/32"
    );
    assert!(call("DEL", "a", &conf).success);
    assert_eq!(call("ADD", "b", &conf).code(), 100);
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(
        call("ADD", "b", &conf).addresses()[0].to_string(),
        "10.0.0.9/32"
    );
}

#[test]
fn dual_stack_gives_one_address_per_family() {
    let dir = DataDir::new("dual");
    let conf = network(
        "1.0.0",
        dir.path(),
        json!({
            "prefixes": ["10.0.1.16/28", "2600:1f14:0:1::/80"],
            "subnets": ["10.0.0.0/22", "2600:1f14::/56"],
        }),
    );
    let a = call("ADD", "c1", &conf).addresses();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].to_string(), "10.0.1.16/22");
    assert_eq!(a[1].to_string(), "2600:1f14:0:1::/56");
    assert_eq!(stored_pods(dir.path(), "ipv6").0.len(), 1);
    assert!(call("DEL", "c1", &conf).success);
    assert!(stored_pods(dir.path(), "ipv4").0.is_empty());
    assert!(stored_pods(dir.path(), "ipv6").0.is_empty());
}

#[test]
fn a_corrupt_checkpoint_is_reported_and_left_alone() {
    let dir = DataDir::new("corrupt");
    let conf = v4_network("1.0.0", &dir);
    call("ADD", "c1", &conf).addresses();
    // One generation written: one file; two: both. Neither opens here.
    for adds in [1, 2] {
        if adds == 2 {
            std::fs::remove_dir_all(dir.path()).unwrap();
            call("ADD", "c1", &conf).addresses();
            call("ADD", "c2", &conf).addresses();
        }
        let corrupted = corrupt_ipv4_checkpoint(dir.path());
        assert_eq!(corrupted.len(), adds);
        for verb in ["ADD", "DEL", "CHECK"] {
            let r = call(verb, "c3", &conf);
            assert_eq!(r.code(), 101, "{verb}: {}", r.stdout);
            assert!(r.stdout.contains("ipv4.checkpoint"), "{}", r.stdout);
        }
        for (path, bytes) in corrupted {
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{path:?} was replaced"
            );
        }
    }
}

#[test]
fn a_block_dropped_from_the_configuration_keeps_its_pods_in_quarantine() {
    let dir = DataDir::new("reconfigure");
    let conf = v4_network("1.0.0", &dir);
    let first: IpAddr = call("ADD", "c1", &conf).addresses()[0].addr();
    assert!(within(first, &["10.0.1.16/28"]));
    // The operator removes the first prefix: c1 keeps its record, new pods never get it.
    let mut smaller = conf.clone();
    smaller["ipam"]["prefixes"] = json!(["10.0.1.48/28"]);
    let second = call("ADD", "c2", &smaller).addresses()[0].addr();
    assert!(within(second, &["10.0.1.48/28"]));
    let (pods, quarantined) = stored_pods(dir.path(), "ipv4");
    assert_eq!(pods.len(), 1);
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].address, first);
    let r = call("CHECK", "c1", &smaller);
    assert_eq!(r.code(), 102);
    assert!(
        r.stdout
            .contains(&format!("holds {first}, which lies in no configured block")),
        "{}",
        r.stdout
    );
    // With the prefix back, c1 holds its address again.
    assert!(call("CHECK", "c1", &conf).success);
    assert_eq!(call("ADD", "c1", &conf).addresses()[0].addr(), first);
    // DEL releases a quarantined pod too.
    assert!(call("DEL", "c1", &smaller).success);
    assert!(call("ADD", "c1", &smaller).success);
    let (_, quarantined) = stored_pods(dir.path(), "ipv4");
    assert!(quarantined.is_empty());
}

#[test]
fn gc_releases_exactly_the_attachments_missing_from_the_valid_list() {
    let dir = DataDir::new("gc");
    let conf = v4_network("1.1.0", &dir);
    let mut addresses = Vec::new();
    for i in 0..20 {
        addresses.push(call("ADD", &format!("c{i}"), &conf).addresses()[0].addr());
    }
    // Keep every third attachment, plus one that was never added (harmless).
    let keep: Vec<String> = (0..20)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("c{i}"))
        .collect();
    let mut valid: Vec<Value> = keep
        .iter()
        .map(|c| json!({"containerID": c, "ifname": "eth0"}))
        .collect();
    valid.push(json!({"containerID": "ghost", "ifname": "eth0"}));
    // c1 on another interface is not c1 on eth0: it does not protect it.
    valid.push(json!({"containerID": "c1", "ifname": "net1"}));
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!(valid);
    let r = call_with(&[("CNI_COMMAND", "GC".into())], gc.to_string().as_bytes());
    assert!(r.success, "{r:?}");
    let (pods, _) = stored_pods(dir.path(), "ipv4");
    let left: HashSet<String> = pods
        .iter()
        .map(|p| p.key.container_id().to_owned())
        .collect();
    assert_eq!(left, keep.iter().cloned().collect::<HashSet<_>>());
    for p in &pods {
        let i: usize = p.key.container_id()[1..].parse().unwrap();
        assert_eq!(p.address, addresses[i], "a kept pod moved");
    }
    // A quarantined pod (its block dropped from the configuration) is released too, and the
    // release is written even when it is the only one.
    let moved = keep
        .iter()
        .find(|c| {
            within(
                addresses[c[1..].parse::<usize>().unwrap()],
                &["10.0.1.16/28"],
            )
        })
        .expect("a kept pod in the first prefix")
        .clone();
    let mut smaller = gc.clone();
    smaller["ipam"]["prefixes"] = json!(["10.0.1.48/28"]);
    assert_eq!(call("CHECK", &moved, &smaller).code(), 102);
    let valid: Vec<Value> = keep
        .iter()
        .filter(|c| **c != moved)
        .map(|c| json!({"containerID": c, "ifname": "eth0"}))
        .collect();
    smaller["cni.dev/valid-attachments"] = json!(valid);
    let r = call_with(
        &[("CNI_COMMAND", "GC".into())],
        smaller.to_string().as_bytes(),
    );
    assert!(r.success, "{r:?}");
    // The other kept pods of the dropped block stay, in quarantine.
    let (pods, quarantined) = stored_pods(dir.path(), "ipv4");
    let left: HashSet<&str> = pods
        .iter()
        .chain(&quarantined)
        .map(|p| p.key.container_id())
        .collect();
    let expected: HashSet<&str> = keep
        .iter()
        .map(String::as_str)
        .filter(|c| *c != moved)
        .collect();
    assert_eq!(left, expected);
    assert!(quarantined
        .iter()
        .all(|q| within(q.address, &["10.0.1.16/28"])));
    assert!(!quarantined.is_empty());

    // GC without the list refuses rather than releasing everything.
    let r = call_with(&[("CNI_COMMAND", "GC".into())], conf.to_string().as_bytes());
    assert_eq!(r.code(), 7);
    let (pods, quarantined) = stored_pods(dir.path(), "ipv4");
    assert_eq!(pods.len() + quarantined.len(), keep.len() - 1);
}

/// docs/cni.md's example configuration gives docs/cni.md's example result.
#[test]
fn the_documented_example_gives_the_documented_result() {
    let doc = include_str!("../../docs/cni.md");
    let blocks: Vec<&str> = doc
        .split("```json\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let mut conf: Value = serde_json::from_str(blocks[0]).unwrap();
    let expected: Value = serde_json::from_str(blocks[1]).unwrap();
    let dir = DataDir::new("documented");
    conf["ipam"]["dataDir"] = json!(dir.path());
    let r = call("ADD", "c1", &conf);
    assert!(r.success, "{r:?}");
    assert_eq!(r.json(), expected);
}

/// The README's configuration gives the first pod the address and gateway the README names.
#[test]
fn the_readme_example_gives_what_the_readme_says() {
    let readme = include_str!("../../README.md");
    let start = readme.find("```json\n").unwrap() + "```json\n".len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let mut conf: Value = serde_json::from_str(block).unwrap();
    let dir = DataDir::new("readme");
    conf["ipam"]["dataDir"] = json!(dir.path());
    let r = call("ADD", "c1", &conf);
    assert!(r.success, "{r:?}");
    let ip = &r.json()["ips"][0];
    let (address, gateway) = (
        ip["address"].as_str().unwrap(),
        ip["gateway"].as_str().unwrap(),
    );
    assert!(
        readme.contains(&format!(
            "The first pod gets `{address}`, with the subnet's router `{gateway}`"
        )),
        "the README names {address} and {gateway}"
    );
}

#[test]
fn a_lock_held_too_long_is_try_again_later_and_then_the_call_goes_through() {
    let dir = DataDir::new("busy");
    let mut conf = v4_network("1.0.0", &dir);
    conf["ipam"]["lockTimeoutSeconds"] = json!(0.2);
    assert!(call("ADD", "c1", &conf).success);
    // Another holder of the network's lock (as a slow call would be).
    let lock = std::fs::File::open(dir.path().join("pods/lock")).unwrap();
    lock.lock().unwrap();
    let r = call("ADD", "c2", &conf);
    assert_eq!(r.code(), 11, "{}", r.stdout);
    assert!(r.stdout.contains("lock"), "{}", r.stdout);
    drop(lock);
    assert!(call("ADD", "c2", &conf).success);
}

#[test]
fn an_unreadable_checkpoint_is_an_io_error_naming_it() {
    let dir = DataDir::new("unreadable");
    let conf = v4_network("1.0.0", &dir);
    // A directory where the checkpoint should be: it exists but cannot be read as a file.
    std::fs::create_dir_all(dir.path().join("pods/ipv4.checkpoint")).unwrap();
    // Refused when it is read, before anything else happens: a DEL or CHECK that would write
    // nothing does not mistake it for a network that has no state yet.
    for verb in ["ADD", "DEL", "CHECK"] {
        let r = call(verb, "c1", &conf);
        assert_eq!(r.code(), 5, "{verb}: {}", r.stdout);
        assert!(r.stdout.contains("cannot read"), "{verb}: {}", r.stdout);
        assert!(r.stdout.contains("ipv4.checkpoint"), "{verb}: {}", r.stdout);
    }
}

#[test]
fn status_tells_a_busy_network_from_an_unusable_one() {
    let dir = DataDir::new("status");
    let mut conf = v4_network("1.1.0", &dir);
    conf["ipam"]["lockTimeoutSeconds"] = json!(0.2);
    let status = || {
        call_with(
            &[("CNI_COMMAND", "STATUS".into())],
            conf.to_string().as_bytes(),
        )
    };
    assert!(call("ADD", "c1", &conf).success);
    assert!(status().success);
    // Busy: the runtime should ask again, not mark the network unavailable.
    let lock = std::fs::File::open(dir.path().join("pods/lock")).unwrap();
    lock.lock().unwrap();
    let r = status();
    assert_eq!(r.code(), 11, "{}", r.stdout);
    drop(lock);
    // Unusable: a checkpoint that cannot be restored makes the network unavailable.
    corrupt_ipv4_checkpoint(dir.path());
    let r = status();
    assert_eq!(r.code(), 50, "{}", r.stdout);
    assert!(
        r.stdout.contains("the network's state is unusable"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_call_removes_only_temporaries_a_killed_writer_left() {
    let dir = DataDir::new("temporaries");
    let conf = v4_network("1.0.0", &dir);
    assert!(call("ADD", "c1", &conf).success);
    let pods = dir.path().join("pods");
    let abandoned = ".ipv4.checkpoint.tmp.4242.0";
    let others = [".keep", "notes.checkpoint.tmp.1", ".notes"];
    for name in others.iter().chain([&abandoned]) {
        std::fs::write(pods.join(name), b"x").unwrap();
    }
    assert!(call("ADD", "c2", &conf).success);
    assert!(!pods.join(abandoned).exists());
    for name in others {
        assert!(pods.join(name).exists(), "{name} was removed");
    }
}

#[test]
fn an_address_asked_for_is_given_or_refused_with_the_reason() {
    let dir = DataDir::new("requested");
    let conf = v4_network("1.0.0", &dir);
    let with_ip = |ip: &str| {
        let mut env = env_for("ADD", "");
        env.retain(|(k, _)| *k != "CNI_ARGS" && *k != "CNI_CONTAINERID");
        env.push(("CNI_ARGS", format!("IgnoreUnknown=1;IP={ip}")));
        env
    };
    let add_with = |container: &str, ip: &str| {
        let mut env = with_ip(ip);
        env.push(("CNI_CONTAINERID", container.to_owned()));
        call_with(&env, conf.to_string().as_bytes())
    };
    // CNI_ARGS IP=: that address, not the lowest free one.
    assert_eq!(
        add_with("a", "10.0.1.52").addresses()[0].to_string(),
        "10.0.1.52/22"
    );
    // The same again (a retried ADD) is the same allocation.
    assert_eq!(
        add_with("a", "10.0.1.52").addresses()[0].to_string(),
        "10.0.1.52/22"
    );
    // runtimeConfig.ips (the `ips` capability), a CIDR as the conventions write it.
    let mut rc = conf.clone();
    rc["runtimeConfig"] = json!({"ips": ["10.0.1.20/22"]});
    assert_eq!(
        call("ADD", "b", &rc).addresses()[0].to_string(),
        "10.0.1.20/22"
    );
    // Automatic assignment still packs from the lowest free address.
    assert_eq!(
        call("ADD", "c", &conf).addresses()[0].to_string(),
        "10.0.1.16/22"
    );
    // Refusals name the address and the reason.
    let refused = |r: Reply, needle: &str| {
        assert_eq!(r.code(), 103, "{}", r.stdout);
        assert!(
            r.stdout.contains(needle),
            "{needle:?} missing: {}",
            r.stdout
        );
    };
    refused(
        add_with("d", "10.0.1.52"),
        "datastore: IP is used: 10.0.1.52",
    );
    refused(add_with("d", "10.0.2.1"), "no configured block");
    refused(add_with("a", "10.0.1.53"), "already holds 10.0.1.52");
    refused(add_with("d", "2600::1"), "no IPv6 block is configured");
    assert_eq!(add_with("d", "banana").code(), 4);
    let mut two = conf.clone();
    two["runtimeConfig"] = json!({"ips": ["10.0.1.21", "10.0.1.22"]});
    assert_eq!(call("ADD", "d", &two).code(), 7);
    // A released address cools down: asking for it is refused until it has rested.
    assert!(call("DEL", "a", &conf).success);
    refused(add_with("d", "10.0.1.52"), "cooling");
    let (pods, _) = stored_pods(dir.path(), "ipv4");
    assert_eq!(pods.len(), 2, "{pods:?}");
}

/// Two networks in one data directory whose blocks overlap would each give one address to a
/// pod of their own: the second is refused (code 7, naming both networks and the blocks),
/// also when both start at the same moment; networks with their own blocks live side by side.
#[test]
fn two_networks_with_overlapping_blocks_are_refused() {
    let dir = DataDir::new("overlap");
    let named = |name: &str, ipam: Value| {
        let mut c = network("1.0.0", dir.path(), ipam);
        c["name"] = json!(name);
        c
    };
    let pods = named(
        "pods",
        json!({"prefixes": ["10.0.1.16/28"], "subnets": ["10.0.0.0/22"]}),
    );
    assert!(call("ADD", "a", &pods).success);
    for (ipam, overlapping) in [
        (
            json!({"prefixes": ["10.0.1.16/28"], "subnets": ["10.0.0.0/22"]}),
            "10.0.1.16/28",
        ),
        (
            json!({"secondaryAddresses": ["10.0.1.20"], "subnets": ["10.0.0.0/22"]}),
            "10.0.1.20/32",
        ),
    ] {
        let r = call("ADD", "b", &named("other", ipam));
        assert_eq!(r.code(), 7, "{r:?}");
        let msg = r.json()["msg"].as_str().unwrap().to_string();
        assert!(
            msg.contains("\"other\"") && msg.contains("\"pods\"") && msg.contains(overlapping),
            "{msg}"
        );
    }
    let apart = named(
        "apart",
        json!({"prefixes": ["10.0.1.48/28"], "subnets": ["10.0.0.0/22"]}),
    );
    assert!(call("ADD", "c", &apart).success);
    // The first network goes on as before.
    assert!(call("ADD", "d", &pods).success);

    // Both at the first call, at the same moment: exactly one gets in, each time.
    for round in 0..8 {
        let dir = DataDir::new(&format!("overlap-race-{round}"));
        let confs: Vec<Value> = ["one", "two"]
            .iter()
            .map(|name| {
                let mut c = network(
                    "1.0.0",
                    dir.path(),
                    json!({"prefixes": ["10.0.1.16/28"], "subnets": ["10.0.0.0/22"]}),
                );
                c["name"] = json!(name);
                c
            })
            .collect();
        let mut children: Vec<_> = confs.iter().map(|_| spawn(&env_for("ADD", "x"))).collect();
        for (child, conf) in children.iter_mut().zip(&confs) {
            feed(child, conf.to_string().as_bytes());
        }
        let ok = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.success())
            .filter(|s| *s)
            .count();
        assert_eq!(ok, 1, "round {round}: {ok} networks got the same block");
    }
}

/// docs/cni.md, "When a checkpoint is corrupt, or gone": every verb refuses a corrupt
/// checkpoint, DEL included; moved aside, the running pods get their addresses back through
/// ADD with `IP=`, and a new pod is given none of them.
#[test]
fn a_corrupt_checkpoint_is_refused_by_every_verb_and_recovered_as_documented() {
    let dir = DataDir::new("corrupt-recovery");
    let conf = v4_network("1.1.0", &dir);
    let a1 = call("ADD", "c1", &conf).addresses()[0].addr();
    let a2 = call("ADD", "c2", &conf).addresses()[0].addr();
    let corrupted = corrupt_ipv4_checkpoint(dir.path());
    assert_eq!(corrupted.len(), 2, "two generations written, two files");
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    for (verb, container, c) in [
        ("ADD", "c3", &conf),
        ("DEL", "c1", &conf),
        ("CHECK", "c1", &conf),
        ("GC", "", &gc),
        ("STATUS", "", &conf),
    ] {
        let r = if container.is_empty() {
            call_with(&[("CNI_COMMAND", verb.into())], c.to_string().as_bytes())
        } else {
            call(verb, container, c)
        };
        let expected = if verb == "STATUS" { 50 } else { 101 };
        assert_eq!(r.code(), expected, "{verb}: {r:?}");
        assert!(r.stdout.contains("ipv4.checkpoint"), "{verb}: {r:?}");
    }
    // Recovery: the files moved aside, each running pod asks for its address back.
    for (path, bytes) in corrupted {
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{path:?} was replaced"
        );
        let mut aside = path.file_name().unwrap().to_owned();
        aside.push(".corrupt");
        std::fs::rename(&path, dir.path().join(aside)).unwrap();
    }
    for (container, address) in [("c1", a1), ("c2", a2)] {
        let mut env = env_for("ADD", container);
        env.retain(|(k, _)| *k != "CNI_ARGS");
        env.push(("CNI_ARGS", format!("IgnoreUnknown=1;IP={address}")));
        let r = call_with(&env, conf.to_string().as_bytes());
        assert_eq!(r.addresses()[0].addr(), address);
    }
    let fresh = call("ADD", "c3", &conf).addresses()[0].addr();
    assert!(fresh != a1 && fresh != a2, "{fresh} was a running pod's");
}
