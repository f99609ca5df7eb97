//! `pdipam-fleet` (what `pdipam fleet` runs) against a real etcd, as an operator uses it.

mod common;

use common::EtcdServer;
use pdipam_fleet::{FleetSubnet, Keyspace, Member};
use std::process::Command;
use std::time::Duration;

fn fleet(server: &EtcdServer, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pdipam-fleet"))
        .args(["--etcd", &server.endpoint, "--root", "/ops"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn an_operator_creates_inspects_checks_and_reclaims_a_fleet() {
    let Some(server) = EtcdServer::start("cli") else {
        return;
    };
    let subnet = "10.0.0.0/20";
    let (code, out, err) = fleet(
        &server,
        &[
            "init",
            "--subnet",
            subnet,
            "--reserve",
            "10.0.8.0/22:prefix",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "fleet subnet 10.0.0.0/20 at /ops/pdipam/v1/subnets/10.0.0.0_20/ (256 chunks of /28)\n"
    );
    // Two nodes claim; one of them dies.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (dead_lease, _alive) = rt.block_on(async {
        let etcd = server.connect(Duration::from_secs(5)).await;
        let keys = Keyspace::new("/ops");
        let cidr = subnet.parse().unwrap();
        let alive = Member::join(&etcd, &keys, "alive", Duration::from_secs(30))
            .await
            .unwrap();
        let s = FleetSubnet::open(&etcd, &keys, cidr, &alive).await.unwrap();
        s.allocate_prefix(28).await.unwrap();
        let dead = Member::join(&etcd, &keys, "dead", Duration::from_secs(30))
            .await
            .unwrap();
        let d = FleetSubnet::open(&etcd, &keys, cidr, &dead).await.unwrap();
        d.allocate_prefix(28).await.unwrap();
        d.allocate_prefix(28).await.unwrap();
        let lease = dead.lease();
        etcd.call(etcd.client().lease_revoke(lease)).await.unwrap();
        (lease, alive)
    });
    let (code, out, err) = fleet(&server, &["status", "--subnet", subnet]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("3 allocations held by 2 nodes, 2 orphaned"),
        "{out}"
    );
    assert!(out.contains("  alive                    1\n"), "{out}");
    let (code, out, _) = fleet(&server, &["status", "--subnet", subnet, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["orphans"].as_array().unwrap().len(), 2);
    assert_eq!(v["per_node"]["dead"], 2);
    // Reservations change on the live fleet, and back.
    let (code, out, err) = fleet(
        &server,
        &["reserve", "--subnet", subnet, "10.0.4.0/24:explicit"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "10.0.0.0/20: 10.0.4.0/24 reserved (explicit)\n");
    let (code, _, err) = fleet(
        &server,
        &["reserve", "--subnet", subnet, "10.0.4.0/25:prefix"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("10.0.4.0/25") && err.contains("10.0.4.0/24"),
        "{err}"
    );
    let (code, out, err) = fleet(&server, &["unreserve", "--subnet", subnet, "10.0.4.0/24"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "10.0.0.0/20: reservation 10.0.4.0/24 removed\n");
    // What `pdipam fleet map` draws: the fleet in the AWS CLI's shapes, a node per interface.
    let dir = std::env::temp_dir().join(format!("pdipam-fleet-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, _, err) = fleet(
        &server,
        &["export", "--subnet", subnet, "--out", dir.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
    };
    let interfaces = read("network-interfaces.json");
    let prefixes = |node: &str| {
        interfaces["NetworkInterfaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["NetworkInterfaceId"] == node)
            .map_or(0, |i| i["Ipv4Prefixes"].as_array().unwrap().len())
    };
    assert_eq!(
        (prefixes("alive"), prefixes("dead")),
        (1, 2),
        "{interfaces}"
    );
    assert_eq!(
        read("reservations.json"),
        serde_json::json!({"SubnetIpv4CidrReservations": [
            {"Cidr": "10.0.8.0/22", "ReservationType": "prefix"}
        ]})
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let (code, out, _) = fleet(&server, &["verify", "--subnet", subnet]);
    assert_eq!(code, 0);
    assert!(
        out.contains(": 3 allocations held by 2 nodes, 2 orphaned"),
        "{out}"
    );
    // One pass with the default grace frees nothing; with none, the dead node's blocks go.
    let (code, out, _) = fleet(&server, &["reclaim", "--subnet", subnet, "--passes", "1"]);
    assert_eq!(code, 0);
    assert_eq!(out, "pass 1: 0 freed, 2 orphaned within the grace period\n");
    let (code, out, _) = fleet(
        &server,
        &[
            "reclaim", "--subnet", subnet, "--grace", "0", "--passes", "1",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out.matches(&format!("of node dead (lease {dead_lease:x})"))
            .count(),
        2,
        "{out}"
    );
    assert!(
        out.ends_with("pass 1: 2 freed, 0 orphaned within the grace period\n"),
        "{out}"
    );
    let (code, out, _) = fleet(&server, &["release-node", "--subnet", subnet, "alive"]);
    assert_eq!(code, 0);
    assert!(
        out.ends_with("node alive released: 1 allocations freed\n"),
        "{out}"
    );
    let (_, out, _) = fleet(&server, &["verify", "--subnet", subnet]);
    assert!(
        out.contains(": 0 allocations held by 0 nodes, 0 orphaned"),
        "{out}"
    );
    // Bad input and a subnet that is not there: one line, a non-zero exit.
    let (code, _, err) = fleet(&server, &["status", "--subnet", "10.9.0.0/16"]);
    assert_eq!(code, 1);
    assert!(err.contains("no fleet subnet 10.9.0.0/16"), "{err}");
    let (code, _, err) = fleet(&server, &["init", "--subnet", "10.0.0.0/33"]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn an_unreachable_etcd_is_one_line_naming_it() {
    let endpoint = pdipam_fleet::testing::unused_endpoint();
    let out = Command::new(env!("CARGO_BIN_EXE_pdipam-fleet"))
        .args([
            "--etcd",
            &endpoint,
            "--timeout",
            "2",
            "verify",
            "--subnet",
            "10.0.0.0/16",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.starts_with(&format!("pdipam fleet: etcd unavailable at {endpoint}")),
        "{err}"
    );
}

/// The TLS and user flags: with the CA and a client certificate the commands work against an
/// etcd that requires them; without the certificate, one line names the endpoint.
#[test]
fn the_commands_take_a_ca_and_a_client_certificate() {
    let Some(server) = EtcdServer::start_tls("cli-tls") else {
        return;
    };
    let certs = server.certs.as_ref().unwrap();
    let run = |extra: &[&std::path::Path], args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pdipam-fleet"));
        cmd.args(["--etcd", &server.endpoint, "--ca-file"])
            .arg(&certs.ca);
        if let [cert, key] = extra {
            cmd.arg("--cert-file").arg(cert).arg("--key-file").arg(key);
        }
        let out = cmd.args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let client = [certs.client.0.as_path(), certs.client.1.as_path()];
    let (code, out, err) = run(&client, &["init", "--subnet", "10.7.0.0/24"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("fleet subnet 10.7.0.0/24"), "{out}");
    let (code, _, err) = run(&client, &["verify", "--subnet", "10.7.0.0/24"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&[], &["verify", "--subnet", "10.7.0.0/24"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&server.endpoint) && err.contains("refuses this client's certificate"),
        "{err}"
    );
}

/// `defrag` on a live fleet: the same plan as the library's from the fleet's holders, applied as
/// prefix reservations the members follow at once (no new single address lands there), and
/// `status` showing the drain until the addresses are gone.
#[test]
fn defrag_plans_from_the_live_fleet_applies_and_status_shows_the_drain() {
    let Some(server) = EtcdServer::start("cli-defrag") else {
        return;
    };
    let subnet = "10.0.0.0/26";
    let (code, _, err) = fleet(&server, &["init", "--subnet", subnet]);
    assert_eq!(code, 0, "{err}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (etcd, member) = rt.block_on(async {
        let etcd = server.connect(Duration::from_secs(5)).await;
        let keys = Keyspace::new("/ops");
        let member = Member::join(&etcd, &keys, "node-a", Duration::from_secs(30))
            .await
            .unwrap();
        (etcd, member)
    });
    let keys = Keyspace::new("/ops");
    let cidr = subnet.parse().unwrap();
    let s = rt
        .block_on(FleetSubnet::open(&etcd, &keys, cidr, &member))
        .unwrap();
    for a in ["10.0.0.20", "10.0.0.40", "10.0.0.50"] {
        rt.block_on(s.allocate_ip_at(a.parse().unwrap())).unwrap();
    }
    let (code, out, err) = fleet(&server, &["defrag", "--subnet", subnet, "--free", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "plan for free /28s in prefix reservations on 10.0.0.0/26: 1 wanted, 0 there now; cost: \
         1 pods restarted, 1 reservations\n\
         step 1: pdipam fleet reserve --subnet 10.0.0.0/26 10.0.0.16/28:prefix\n  \
         10.0.0.20 held by node-a: move its pod, then release it\n  \
         free /28s in prefix reservations after step 1: 1\n\
         addresses for the moved pods: 1 needed, 41 free outside the reservations\n"
    );
    let (code, out, err) = fleet(
        &server,
        &["defrag", "--subnet", subnet, "--free", "1", "--apply"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.ends_with("applied: 10.0.0.16/28 reserved (prefix)\n"),
        "{out}"
    );
    // Draining: the address is still there, and no new single address lands in the region.
    let (_, out, _) = fleet(&server, &["status", "--subnet", subnet]);
    assert!(
        out.contains(
            "prefix reservation 10.0.0.16/28: 0 of 1 /28s free, single addresses still to move out: 1"
        ),
        "{out}"
    );
    rt.block_on(s.refresh()).unwrap();
    for _ in 0..20 {
        let a = rt.block_on(s.allocate_ip()).unwrap();
        assert!(
            !"10.0.0.16/28".parse::<ipnet::IpNet>().unwrap().contains(&a),
            "{a} landed in the reservation"
        );
    }
    // Drained: the pod moved, the address released; the /28 is free and kept free.
    rt.block_on(s.release("10.0.0.20/32".parse().unwrap()))
        .unwrap();
    let (_, out, _) = fleet(&server, &["status", "--subnet", subnet, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["prefix_reservations"][0],
        serde_json::json!({"cidr": "10.0.0.16/28", "blocks_28": 1, "free_28s": 1,
                           "single_addresses_inside": 0})
    );
    let (_, out, _) = fleet(&server, &["defrag", "--subnet", subnet, "--free", "1"]);
    assert!(
        out.starts_with(
            "plan for free /28s in prefix reservations on 10.0.0.0/26: 1 wanted, 1 there now; \
             cost: 0 pods restarted, 0 reservations\n"
        ),
        "{out}"
    );
}
