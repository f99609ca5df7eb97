//! `pdipam simulate` and `pdipam frag`, run as a user runs them; their maps parsed as XML.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pdipam"))
        .args(args)
        .output()
        .unwrap()
}

fn json_of(args: &[&str]) -> Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pdipam-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The map's cells (rects of the `cells` group) with their fill, and the legend's text.
fn read_map(path: &Path) -> (Vec<String>, String, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the map is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let group = |id: &str| {
        doc.descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no {id} group"))
    };
    let fills = group("cells")
        .children()
        .filter(|n| n.has_tag_name("rect"))
        .map(|n| n.attribute("fill").unwrap().to_string())
        .collect();
    let legend: String = group("legend")
        .descendants()
        .filter(|n| n.is_text())
        .map(|n| format!("{}\n", n.text().unwrap()))
        .collect();
    let reservations = group("reservations")
        .children()
        .filter(|n| n.has_tag_name("rect"))
        .count();
    (fills, legend, reservations)
}

const RANDOM_22: &[&str] = &[
    "simulate",
    "--subnet",
    "10.0.0.0/22",
    "--instance-type",
    "m5.xlarge",
    "--nodes",
    "8",
    "--pods",
    "600",
    "--policy",
    "random",
    "--churn",
    "5",
    "--json",
];

#[test]
fn simulate_places_every_pod_and_accounts_for_every_address() {
    let mut args = RANDOM_22.to_vec();
    args[10] = "pack";
    let v = json_of(&args);
    assert_eq!(v["pods"]["running"], 600);
    assert_eq!(v["pods"]["pending"], 0);
    // Placement and five churn rounds, each over once 130 quiet seconds have passed.
    assert_eq!(v["unsettled_phases"], 0);
    let simulated = v["simulated_seconds"].as_u64().unwrap();
    assert!((6 * 130..3600).contains(&simulated), "{simulated}");
    assert_eq!(v["failures"].as_array().unwrap().len(), 0, "{v:#}");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 8);
    let pods: u64 = nodes.iter().map(|n| n["pods"].as_u64().unwrap()).sum();
    let prefixes: u64 = nodes.iter().map(|n| n["prefixes"].as_u64().unwrap()).sum();
    let idle: u64 = nodes.iter().map(|n| n["idle"].as_u64().unwrap()).sum();
    assert_eq!(pods, 600);
    // Every prefix of every node is one of the subnet's, and the addresses add up.
    let s = &v["subnet"];
    assert_eq!(s["prefixes"].as_u64(), Some(prefixes));
    assert_eq!(prefixes * 16, pods + idle);
    assert_eq!(s["single_addresses"], 8, "one primary address per node");
    assert_eq!(
        s["free"].as_u64().unwrap(),
        1024 - 5 - 8 - prefixes * 16,
        "{s:#}"
    );
    // Pack keeps the free space in whole /28s.
    assert!(s["fragmentation"].as_f64().unwrap() < 0.5, "{s:#}");
}

#[test]
fn simulate_explains_every_refusal_and_is_deterministic_per_seed() {
    let v = json_of(RANDOM_22);
    let failures = v["failures"].as_array().unwrap();
    assert!(
        !failures.is_empty(),
        "random placement fragments this subnet"
    );
    for f in failures {
        assert!(
            f["error"]
                .as_str()
                .unwrap()
                .contains("InsufficientCidrBlocks"),
            "{f:#}"
        );
        let why = &f["explanation"];
        assert_eq!(why["free_blocks"], 0, "{f:#}");
        assert!(why["free_addresses"].as_u64().unwrap() >= 16, "{f:#}");
        assert!(!why["spoilers"].as_array().unwrap().is_empty(), "{f:#}");
    }
    assert_eq!(v["subnet"]["free_28s"], 0);
    assert_eq!(json_of(RANDOM_22), v, "the same seed gives the same run");
    let mut other = RANDOM_22.to_vec();
    other.extend(["--seed", "7"]);
    assert_ne!(json_of(&other)["subnet"], v["subnet"]);

    // The text report groups the refusals and says why.
    let text = run(&RANDOM_22[..RANDOM_22.len() - 1]);
    let stdout = String::from_utf8(text.stdout).unwrap();
    assert!(stdout.contains("InsufficientCidrBlocks"), "{stdout}");
    assert!(stdout.contains("why: /28 in 10.0.0.0/22"), "{stdout}");
    assert!(stdout.contains("alone spoils"), "{stdout}");
    // Piped output: no progress bar on stderr.
    assert!(
        text.stderr.is_empty(),
        "{:?}",
        String::from_utf8(text.stderr)
    );
}

#[test]
fn simulate_in_secondary_mode_stops_at_max_pods() {
    let v = json_of(&[
        "simulate",
        "--subnet",
        "10.0.0.0/24",
        "--instance-type",
        "m5.large",
        "--nodes",
        "3",
        "--pods",
        "100",
        "--mode",
        "secondary",
        "--json",
    ]);
    // max pods 29, of which two are host-network pods that take no address.
    assert_eq!(v["max_pods"], 29);
    assert_eq!(v["pods"]["running"], 81);
    assert_eq!(v["pods"]["unschedulable"], 19);
    for n in v["nodes"].as_array().unwrap() {
        assert_eq!(
            (n["interfaces"].as_u64(), n["pods"].as_u64()),
            (Some(3), Some(27))
        );
        assert_eq!(n["prefixes"], 0);
    }
}

#[test]
fn simulate_map_has_one_cell_per_28_coloured_by_node() {
    let dir = scratch("simulate-map");
    let map = dir.join("subnet.svg");
    let args = [
        "simulate",
        "--subnet",
        "10.0.0.0/22",
        "--instance-type",
        "m5.xlarge",
        "--nodes",
        "3",
        "--pods",
        "200",
        "--reserve",
        "10.0.2.0/23:prefix",
        "--reserve",
        "10.0.1.240/28:explicit",
        "--map",
        map.to_str().unwrap(),
    ];
    let out = run(&args);
    assert!(out.status.success(), "{out:?}");
    let (fills, legend, reservations) = read_map(&map);
    assert_eq!(fills.len(), 64, "a /22 has 64 /28s");
    assert_eq!(reservations, 2);
    // Each node's colour counts its own prefixes, as the JSON report of the same run lists them.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let v = json_of(&json_args);
    for n in v["nodes"].as_array().unwrap() {
        let line = format!(
            "prefixes on {} ({} /28s)",
            n["name"].as_str().unwrap(),
            n["prefixes"]
        );
        assert!(legend.contains(&line), "{line:?} not in {legend}");
    }
    // 32 cells in the prefix reservation, 18 of them prefixes, one holding .255; and the explicit one.
    assert!(legend.contains("free, in a reservation (14)"), "{legend}");
    // The reservation fills first: every prefix lies in 10.0.2.0/23, the last 32 cells.
    let distinct = |cells: &[String]| {
        let mut c = cells.to_vec();
        c.sort();
        c.dedup();
        c.len()
    };
    assert!(distinct(&fills[32..]) >= 3, "{fills:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Interfaces of a 10.0.0.0/24 in `describe-network-interfaces` shape, with fields frag ignores,
/// missing and null lists, and an interface of another subnet.
fn sample_interfaces() -> Value {
    json!({"NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-a", "SubnetId": "subnet-1", "Status": "in-use",
         "Attachment": {"DeviceIndex": 0, "InstanceId": "i-1"},
         "PrivateIpAddress": "10.0.0.4",
         "PrivateIpAddresses": [
            {"Primary": true, "PrivateIpAddress": "10.0.0.4", "PrivateDnsName": "ip-10-0-0-4"},
            {"Primary": false, "PrivateIpAddress": "10.0.0.20"}],
         "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.0.160/28"}, {"Ipv4Prefix": "10.0.0.176/28"}],
         "Ipv6Addresses": [], "TagSet": []},
        {"NetworkInterfaceId": "eni-b", "SubnetId": "subnet-1",
         "PrivateIpAddress": "10.0.0.36",
         "PrivateIpAddresses": [
            {"Primary": true, "PrivateIpAddress": "10.0.0.36"},
            {"Primary": false, "PrivateIpAddress": "10.0.0.37"},
            {"Primary": false, "PrivateIpAddress": "10.0.0.100"}],
         "Ipv4Prefixes": []},
        {"NetworkInterfaceId": "eni-c", "PrivateIpAddress": "10.0.0.200",
         "PrivateIpAddresses": null},
        {"NetworkInterfaceId": "eni-elsewhere", "PrivateIpAddress": "10.1.0.5"}
    ]})
}

fn sample_reservations() -> Value {
    json!({
        "SubnetIpv4CidrReservations": [
            {"SubnetCidrReservationId": "scr-1", "SubnetId": "subnet-1", "Cidr": "10.0.0.64/28",
             "ReservationType": "explicit", "OwnerId": "123", "Tags": []}],
        "SubnetIpv6CidrReservations": [
            {"SubnetCidrReservationId": "scr-6", "Cidr": "2600:1f14::/80",
             "ReservationType": "prefix"}]
    })
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn frag_diagnoses_a_subnet_from_aws_cli_output() {
    let dir = scratch("frag");
    let enis = write(&dir, "enis.json", &sample_interfaces());
    let res = write(&dir, "reservations.json", &sample_reservations());
    let map = dir.join("frag.svg");
    let base = [
        "frag",
        "--subnet",
        "10.0.0.0/24",
        "--network-interfaces",
        &enis,
        "--reservations",
        &res,
    ];
    let mut args = base.to_vec();
    args.push("--json");
    let v = json_of(&args);
    // `pdipam frag ... | head`: a reader leaving early is no failure, in either output.
    for args in [&base[..], &args[..]] {
        let out = crate::cli::with_reader_gone(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
    }
    assert_eq!(
        (v["interfaces"].as_u64(), v["interfaces_elsewhere"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        (v["single_addresses"].as_u64(), v["prefixes"].as_u64()),
        (Some(6), Some(2))
    );
    // 256 - 5 reserved - 6 single addresses - 32 in prefixes.
    assert_eq!(
        (v["free"].as_u64(), v["available"].as_u64()),
        (Some(213), Some(213))
    );
    // .48 .64 .80 .112 .128 .144 .208 .224; .64 is an explicit reservation.
    assert_eq!(v["free_28s"], 8);
    assert_eq!(v["free_28s_for_automatic_prefixes"], 7);
    assert_eq!(v["automatic_28"]["Ok"], "10.0.0.48/28");
    // .20, .100 and .200 each alone spoil a /28; .36 and .37 share one; .4 sits with reserved ones.
    let spoilers: Vec<(&str, &str)> = v["spoilers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap(),
                s["interface"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        spoilers,
        [
            ("10.0.0.20", "eni-a"),
            ("10.0.0.100", "eni-b"),
            ("10.0.0.200", "eni-c")
        ]
    );
    let interfaces: Vec<(&str, u64, u64, u64)> = v["interfaces_spoiling"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["interface"].as_str().unwrap(),
                i["addresses"].as_u64().unwrap(),
                i["spoils"].as_u64().unwrap(),
                i["alone"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        interfaces,
        [("eni-b", 3, 2, 2), ("eni-a", 1, 1, 1), ("eni-c", 1, 1, 1)]
    );
    // 10.0.0.0/26 gives back .16/28 and .32/28 and keeps .48/28 free; the /25 above holds more
    // free /28s but gives back only .192/28; nothing may overlap the explicit reservation.
    let best = &v["reservation_suggestions"][0];
    assert_eq!(best["cidr"], "10.0.0.0/26");
    assert_eq!(
        (best["gives_back"].as_u64(), best["free_now"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(best["single_addresses_inside"], 4);
    assert_eq!(best["free_outside"], 141);
    let others: Vec<&str> = v["reservation_suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cidr"].as_str().unwrap())
        .collect();
    assert_eq!(
        others,
        [
            "10.0.0.0/26",
            "10.0.0.128/25",
            "10.0.0.96/27",
            "10.0.0.16/28"
        ]
    );

    // The text report and the map.
    let mut args = base.to_vec();
    args.extend(["--map", map.to_str().unwrap()]);
    let out = run(&args);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // The whole report, line for line: what an operator reads.
    let expected = format!(
        "\
subnet 10.0.0.0/24: 256 addresses, 5 reserved by AWS
in use: 3 interfaces with 6 addresses and 2 prefixes (1 interface of other subnets skipped)
reservations: 10.0.0.64/28 explicit
free: 213 addresses (213 available as AWS counts them)
free aligned /28s: 8 (7 where automatic prefixes look); largest free block: 10.0.0.64/27; fragmentation 0.40
an automatic /28 now: succeeds (10.0.0.48/28 would be chosen)

addresses that alone spoil a /28 (releasing one gives its /28 back):
  10.0.0.20 on eni-a: frees 10.0.0.16/28
  10.0.0.100 on eni-b: frees 10.0.0.96/28
  10.0.0.200 on eni-c: frees 10.0.0.192/28
interfaces whose addresses spoil the most /28s:
  eni-b: 3 addresses in 2 /28s, 2 of them alone
  eni-a: 1 address in 1 /28, 1 of them alone
  eni-c: 1 address in 1 /28, 1 of them alone

the prefix reservation that gives the most /28s back:
  10.0.0.0/26: gives back 2 /28s as its 4 single addresses are released, keeps 1 free /28 free; 141 free addresses stay outside it
  aws ec2 create-subnet-cidr-reservation --subnet-id SUBNET --cidr 10.0.0.0/26 --reservation-type prefix
other sizes:
  10.0.0.128/25: gives back 1 /28 as its 1 single address is released, keeps 4 free /28s free; 103 free addresses stay outside it
  10.0.0.96/27: gives back 1 /28 as its 1 single address is released, keeps 1 free /28 free; 166 free addresses stay outside it
  10.0.0.16/28: gives back 1 /28 as its 1 single address is released, keeps 0 free /28s free; 182 free addresses stay outside it
map: {}
",
        map.display()
    );
    assert_eq!(text, expected);
    let (fills, legend, reservations) = read_map(&map);
    assert_eq!(fills.len(), 16);
    assert_eq!(reservations, 1);
    assert!(legend.contains("prefixes on eni-a (2 /28s)"), "{legend}");
    assert!(legend.contains("free (7 /28s)"), "{legend}");
    assert!(
        legend.contains("broken by single or reserved addresses (6)"),
        "{legend}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn frag_refuses_a_full_subnet_with_the_cloud_error_and_explains() {
    let dir = scratch("frag-full");
    // One address in each /28 of a /26: 55 addresses free and not one /28.
    let addrs: Vec<Value> = (0..4)
        .map(|k| json!({"PrivateIpAddress": format!("10.0.0.{}", k * 16 + 5)}))
        .collect();
    let enis = write(
        &dir,
        "enis.json",
        &json!({"NetworkInterfaces": [{"NetworkInterfaceId": "eni-x",
            "PrivateIpAddress": "10.0.0.5", "PrivateIpAddresses": addrs}]}),
    );
    let out = run(&[
        "frag",
        "--subnet",
        "10.0.0.0/26",
        "--network-interfaces",
        &enis,
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("an automatic /28 now: InsufficientCidrBlocks"),
        "{text}"
    );
    assert!(
        text.contains("why: /28 in 10.0.0.0/26: 4 candidate aligned blocks, 0 free"),
        "{text}"
    );
    assert!(
        text.contains("10.0.0.21 on eni-x: frees 10.0.0.16/28"),
        "{text}"
    );
    assert!(text.contains("free: 55 addresses"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_names_the_value_and_exits_2() {
    let dir = scratch("frag-bad");
    let good = write(&dir, "good.json", &sample_interfaces());
    let mut bad_address = sample_interfaces();
    bad_address["NetworkInterfaces"][1]["PrivateIpAddresses"][1]["PrivateIpAddress"] =
        json!("10.0.0.999");
    let bad_address = write(&dir, "bad-address.json", &bad_address);
    let mut twice = sample_interfaces();
    twice["NetworkInterfaces"][2]["PrivateIpAddress"] = json!("10.0.0.37");
    let twice = write(&dir, "twice.json", &twice);
    let mut reserved = sample_interfaces();
    reserved["NetworkInterfaces"][2]["PrivateIpAddress"] = json!("10.0.0.2");
    let reserved = write(&dir, "reserved.json", &reserved);
    let mut kind = sample_reservations();
    kind["SubnetIpv4CidrReservations"][0]["ReservationType"] = json!("sometimes");
    let kind = write(&dir, "kind.json", &kind);
    let mut outside = sample_reservations();
    outside["SubnetIpv4CidrReservations"][0]["Cidr"] = json!("10.9.0.0/28");
    let outside = write(&dir, "outside.json", &outside);
    let not_json = dir.join("not.json");
    std::fs::write(&not_json, "NetworkInterfaces:\n- eni-a\n").unwrap();
    let not_json = not_json.to_str().unwrap().to_string();
    let missing = dir.join("missing.json").to_str().unwrap().to_string();

    let frag = |subnet: &'static str, enis: &str, res: Option<&str>| {
        let mut a = vec![
            "frag".to_string(),
            "--subnet".into(),
            subnet.into(),
            "--network-interfaces".into(),
            enis.into(),
        ];
        if let Some(r) = res {
            a.extend(["--reservations".into(), r.into()]);
        }
        a
    };
    let sim = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "simulate",
            "--subnet",
            "10.0.0.0/22",
            "--instance-type",
            "m5.large",
            "--nodes",
            "2",
            "--pods",
            "10",
        ]
        .map(String::from)
        .to_vec();
        for e in extra.chunks(2) {
            match a.iter().position(|x| x == e[0]) {
                Some(p) => a[p + 1] = e[1].into(),
                None => a.extend([e[0].into(), e[1].into()]),
            }
        }
        a
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            frag("10.0.0.0/24", &bad_address, None),
            vec!["10.0.0.999", "eni-b"],
        ),
        (
            frag("10.0.0.0/24", &twice, None),
            vec!["10.0.0.37", "eni-b", "eni-c"],
        ),
        (
            frag("10.0.0.0/24", &reserved, None),
            vec!["10.0.0.2", "eni-c"],
        ),
        (
            frag("10.0.0.0/24", &good, Some(&kind)),
            vec!["sometimes", "scr-1"],
        ),
        (
            frag("10.0.0.0/24", &good, Some(&outside)),
            vec!["10.9.0.0/28"],
        ),
        (
            frag("10.0.0.0/24", &not_json, None),
            vec!["not.json", "describe-network-interfaces"],
        ),
        (frag("10.0.0.0/24", &missing, None), vec!["missing.json"]),
        (
            frag("10.0.0.0/33", &good, None),
            vec![
                "10.0.0.0/33",
                "prefix length /33 is longer than an IPv4 address",
            ],
        ),
        // Interfaces listed, none in the subnet: a mistyped --subnet, not an empty subnet.
        (
            frag("10.9.0.0/24", &good, None),
            vec![
                "--subnet 10.9.0.0/24",
                "none of the interfaces",
                "good.json",
                "eni-a has 10.0.0.",
            ],
        ),
        (
            sim(&["--subnet", "10.0.0.256/22"]),
            vec!["\"10.0.0.256\" is not an IPv4 or IPv6 address"],
        ),
        // Sizes a run cannot do are refused up front, naming the limit.
        (sim(&["--nodes", "100000"]), vec!["100000", "1..=10000"]),
        (
            sim(&[
                "--subnet",
                "10.0.0.0/8",
                "--nodes",
                "10000",
                "--pods",
                "4294967295",
            ]),
            vec![
                "--pods 4294967295",
                "1080000 pods at once",
                "at most 1000000",
            ],
        ),
        (
            sim(&["--churn", "4294967295"]),
            vec!["4294967295", "0..=10000"],
        ),
        (
            sim(&[
                "--subnet",
                "10.0.0.0/8",
                "--nodes",
                "9000",
                "--pods",
                "900000",
                "--churn",
                "1000",
            ]),
            vec!["--churn 1000", "900000000 pod-rounds", "at most 100000000"],
        ),
        (frag("2600:1f14::/64", &good, None), vec!["2600:1f14::/64"]),
        (sim(&["--subnet", "10.0.0.0/40"]), vec!["10.0.0.0/40"]),
        (sim(&["--subnet", "2600:1f14::/64"]), vec!["2600:1f14::/64"]),
        (sim(&["--instance-type", "m9.huge"]), vec!["m9.huge"]),
        (
            sim(&["--instance-type", "t2.medium"]),
            vec!["t2.medium", "--mode secondary"],
        ),
        (sim(&["--nodes", "0"]), vec!["'0'", "--nodes"]),
        (sim(&["--reserve", "10.0.1.0/24"]), vec!["10.0.1.0/24"]),
        (sim(&["--reserve", "10.0.1.0/24:often"]), vec!["often"]),
        (
            sim(&["--reserve", "10.9.0.0/24:prefix"]),
            vec!["10.9.0.0/24"],
        ),
        (sim(&["--policy", "best"]), vec!["best"]),
        (
            sim(&["--map", "/nonexistent-dir/map.svg"]),
            vec!["/nonexistent-dir/map.svg"],
        ),
        (
            sim(&["--subnet", "10.0.0.0/8", "--map", "/tmp/big.svg"]),
            vec!["10.0.0.0/8", "/12"],
        ),
    ];
    for (args, needles) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_pdipam"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn simulate_draws_a_progress_bar_on_a_terminal_only() {
    // `script` (util-linux) runs the command on a pseudo-terminal and records what it drew.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to provide a terminal");
        return;
    }
    let dir = scratch("progress");
    let record = dir.join("typescript");
    let cmd = format!(
        "{} simulate --subnet 10.0.0.0/22 --instance-type m5.xlarge --nodes 4 --pods 300 --churn 2",
        env!("CARGO_BIN_EXE_pdipam")
    );
    let status = Command::new("script")
        .args(["-qec", &cmd])
        .arg(&record)
        .env("PDIPAM_PROGRESS_AFTER_MS", "0")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let drawn = String::from_utf8_lossy(&std::fs::read(&record).unwrap()).into_owned();
    assert!(drawn.contains("churn round 2"), "{drawn}");
    assert!(drawn.contains("pods: 300 wanted"), "{drawn}");
    // Piped, a short run writes nothing beside its report (checked on every run above)...
    let piped = Command::new(env!("CARGO_BIN_EXE_pdipam"))
        .args(cmd.split(' ').skip(1))
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert!(piped.stderr.is_empty());
    // ... and a long one (the knob makes this one long) plain progress lines on stderr, never
    // on stdout, so a run in a log or a pipe is seen to go on.
    let piped = Command::new(env!("CARGO_BIN_EXE_pdipam"))
        .args(cmd.split(' ').skip(1))
        .env("PDIPAM_PROGRESS_AFTER_MS", "0")
        .output()
        .unwrap();
    assert!(piped.status.success());
    let err = String::from_utf8(piped.stderr).unwrap();
    assert!(
        err.contains("pdipam: 2 of 3 steps done, churn round 2"),
        "{err}"
    );
    assert!(err.lines().all(|l| l.starts_with("pdipam: ")), "{err}");
    assert!(!String::from_utf8(piped.stdout)
        .unwrap()
        .contains("steps done"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn frag_counts_a_prefix_smaller_than_a_28_by_its_size() {
    // Prefixes are /28s when EC2 delegates them, but a /29 in the input is counted as the eight
    // addresses it holds: the cell it sits in keeps eight free.
    let dir = scratch("frag-29");
    let enis = write(
        &dir,
        "enis.json",
        &json!({"NetworkInterfaces": [
            {"NetworkInterfaceId": "eni-a", "PrivateIpAddress": "10.0.0.4",
             "PrivateIpAddresses": [{"Primary": true, "PrivateIpAddress": "10.0.0.4"}],
             "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.0.40/29"}]}]}),
    );
    let map = dir.join("frag.svg");
    let map_arg = map.to_str().unwrap();
    let v = json_of(&[
        "frag",
        "--subnet",
        "10.0.0.0/24",
        "--network-interfaces",
        &enis,
        "--json",
        "--map",
        map_arg,
    ]);
    // 256 - 5 reserved - 1 single address - 8 in the /29.
    assert_eq!(v["free"], 242);
    // Free addresses inside a suggestion plus those outside it are all free addresses.
    let first = &v["reservation_suggestions"][0];
    assert_eq!(first["cidr"], "10.0.0.128/25", "{v}");
    assert_eq!(first["free_outside"], 242 - 127, "{v}");
    // No interface of another subnet, no reservation: neither is mentioned.
    let out = run(&[
        "frag",
        "--subnet",
        "10.0.0.0/24",
        "--network-interfaces",
        &enis,
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().take(3).collect();
    assert_eq!(
        lines,
        [
            "subnet 10.0.0.0/24: 256 addresses, 5 reserved by AWS",
            "in use: 1 interface with 1 address and 1 prefix",
            "free: 242 addresses (242 available as AWS counts them)"
        ]
    );
    let svg = std::fs::read_to_string(&map).unwrap();
    assert!(
        svg.contains("10.0.0.32/28: prefix 10.0.0.40/29 on eni-a; 0 single, 8 free"),
        "{svg}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn frag_refuses_subnets_smaller_than_a_28() {
    let out = run(&[
        "frag",
        "--subnet",
        "10.0.0.0/29",
        "--network-interfaces",
        "/nonexistent.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.trim_end(),
        "pdipam: --subnet 10.0.0.0/29: frag diagnoses IPv4 subnets of /28 or larger (prefixes are /28s)"
    );
    // A /28 is the smallest it takes: 11 usable addresses, no delegatable /28.
    let dir = scratch("frag-28");
    let enis = write(&dir, "enis.json", &json!({"NetworkInterfaces": []}));
    let v = json_of(&[
        "frag",
        "--subnet",
        "10.0.0.0/28",
        "--network-interfaces",
        &enis,
        "--json",
    ]);
    assert_eq!(
        (v["free"].as_u64(), v["free_28s"].as_u64()),
        (Some(11), Some(0))
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `frag`'s JSON and text reports of one interface holding `addresses` and `prefixes`.
fn frag_of(name: &str, subnet: &str, addresses: &[String], prefixes: &[String]) -> (Value, String) {
    let dir = scratch(name);
    let enis = write(
        &dir,
        "enis.json",
        &json!({"NetworkInterfaces": [{
            "NetworkInterfaceId": "eni-a",
            "PrivateIpAddresses": addresses.iter()
                .map(|a| json!({"PrivateIpAddress": a}))
                .collect::<Vec<_>>(),
            "Ipv4Prefixes": prefixes.iter()
                .map(|p| json!({"Ipv4Prefix": p}))
                .collect::<Vec<_>>()}]}),
    );
    let args = ["frag", "--subnet", subnet, "--network-interfaces", &enis];
    let text = String::from_utf8(run(&args).stdout).unwrap();
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let v = json_of(&json_args);
    std::fs::remove_dir_all(dir).unwrap();
    (v, text)
}

const NO_SUGGESTION: &str = "no prefix reservation would give back or keep free a /28 while \
                             leaving room for the single addresses";

#[test]
fn frag_suggests_no_reservation_that_gives_nothing_back() {
    // A /29 in every /28 (the last one's lower half: .255 is reserved): 123 addresses free, but
    // no /28 free or spoiled by single addresses alone, so no reservation could give one back.
    let prefixes: Vec<String> = (0..16)
        .map(|i| format!("10.0.0.{}/29", i * 16 + if i == 15 { 0 } else { 8 }))
        .collect();
    let (v, text) = frag_of("frag-none", "10.0.0.0/24", &[], &prefixes);
    assert_eq!(
        (v["free"].as_u64(), v["free_28s"].as_u64()),
        (Some(123), Some(0))
    );
    assert_eq!(v["reservation_suggestions"], json!([]), "{v:#}");
    assert!(text.contains(NO_SUGGESTION), "{text}");
}

#[test]
fn frag_keeps_room_for_single_addresses_outside_a_suggestion() {
    // A /26 whose only free /28 is .32/28: reserving it would leave no address outside for the
    // next interface's primary address, so it is not suggested.
    let mut addresses: Vec<String> = (4..8).map(|a| format!("10.0.0.{a}")).collect();
    addresses.extend((56..63).map(|a| format!("10.0.0.{a}")));
    let prefixes = ["10.0.0.8/29", "10.0.0.16/28", "10.0.0.48/29"].map(String::from);
    let (v, text) = frag_of("frag-room", "10.0.0.0/26", &addresses, &prefixes);
    assert_eq!(
        (v["free"].as_u64(), v["free_28s"].as_u64()),
        (Some(16), Some(1))
    );
    assert_eq!(v["reservation_suggestions"], json!([]), "{v:#}");
    assert!(text.contains(NO_SUGGESTION), "{text}");
}

/// Simulation runs whose text reports are kept line for line in `tests/integration/golden/`:
/// a fragmented prefix-mode subnet, a single node, and a secondary-IP subnet that runs out of
/// addresses in two different ways. `PDIPAM_BLESS=1 cargo test` rewrites the files after a
/// deliberate change of the report; review the diff.
const GOLDEN_SIMULATIONS: &[(&str, &str)] = &[
    (
        "simulate-random-24.txt",
        "--subnet 10.0.0.0/24 --instance-type m5.large --nodes 3 --pods 150 --policy random --churn 2",
    ),
    (
        "simulate-one-node.txt",
        "--subnet 10.0.0.0/24 --instance-type m5.large --nodes 1 --pods 150 --policy random --churn 1",
    ),
    (
        "simulate-secondary-25.txt",
        "--subnet 10.0.0.0/25 --instance-type m5.large --nodes 6 --pods 180 --mode secondary --churn 1",
    ),
];

#[test]
fn simulate_text_reports_line_for_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/golden");
    let bless = std::env::var_os("PDIPAM_BLESS").is_some();
    for (file, args) in GOLDEN_SIMULATIONS {
        let mut argv = vec!["simulate"];
        argv.extend(args.split(' '));
        let out = run(&argv);
        assert!(out.status.success(), "{args}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let path = dir.join(file);
        if bless {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert!(
            text == expected,
            "pdipam simulate {args}: the report differs from {file}\n--- got\n{text}--- expected\n{expected}"
        );
    }
}

#[test]
fn simulate_text_lists_forty_nodes_and_counts_the_rest() {
    let text_of = |nodes: &str| {
        let out = run(&[
            "simulate",
            "--subnet",
            "10.0.0.0/20",
            "--instance-type",
            "m5.large",
            "--nodes",
            nodes,
            "--pods",
            "100",
        ]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let rows = |text: &str| text.lines().filter(|l| l.starts_with("node-")).count();
    let forty = text_of("40");
    assert_eq!(rows(&forty), 40, "{forty}");
    assert!(!forty.contains("more node"), "{forty}");
    let more = text_of("41");
    assert_eq!(rows(&more), 40, "{more}");
    assert!(
        more.contains("node-40 ")
            && more.contains("\n... and 1 more node (--json lists every node)\n"),
        "{more}"
    );
}

/// `frag --free N` on a /26 worked out by hand: the reservation command first, then what to
/// move, with the cost and the free /28s after each step; when N is out of reach, what pins it.
#[test]
fn frag_free_plans_the_cheapest_moves_in_order() {
    let dir = scratch("frag-free");
    let enis = write(
        &dir,
        "enis.json",
        &json!({"NetworkInterfaces": [
            {"NetworkInterfaceId": "eni-a", "Attachment": {"DeviceIndex": 0, "InstanceId": "i-1"},
             "PrivateIpAddress": "10.0.0.4",
             "PrivateIpAddresses": [{"Primary": true, "PrivateIpAddress": "10.0.0.4"},
                                    {"Primary": false, "PrivateIpAddress": "10.0.0.20"}]},
            {"NetworkInterfaceId": "eni-b", "Attachment": {"DeviceIndex": 1, "InstanceId": "i-1"},
             "PrivateIpAddress": "10.0.0.50",
             "PrivateIpAddresses": [{"Primary": true, "PrivateIpAddress": "10.0.0.50"},
                                    {"Primary": false, "PrivateIpAddress": "10.0.0.40"},
                                    {"Primary": false, "PrivateIpAddress": "10.0.0.41"}]},
            {"NetworkInterfaceId": "eni-c", "Attachment": {"DeviceIndex": 2, "InstanceId": "i-1"},
             "PrivateIpAddress": "10.0.0.33"},
            {"NetworkInterfaceId": "eni-lb", "RequesterManaged": true,
             "PrivateIpAddress": "10.0.0.60"}
        ]}),
    );
    let text = |n: &str| {
        let out = run(&[
            "frag",
            "--subnet",
            "10.0.0.0/26",
            "--network-interfaces",
            &enis,
            "--free",
            n,
        ]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let expected = "\
plan for 2 free /28s in prefix reservations on 10.0.0.0/26 (0 there now): 3 pods restarted, 1 interface detached, 2 reservations
step 1: aws ec2 create-subnet-cidr-reservation --subnet-id SUBNET --cidr 10.0.0.16/28 --reservation-type prefix
  10.0.0.20 on eni-a (i-1): move its pod, then unassign it
  cost 1 pod, 0 interfaces; free /28s in prefix reservations after step 1: 1
step 2: aws ec2 create-subnet-cidr-reservation --subnet-id SUBNET --cidr 10.0.0.32/28 --reservation-type prefix
  10.0.0.33 on eni-c (i-1), its primary address: move 0 pods off it, then detach and delete it
  10.0.0.40 on eni-b (i-1): move its pod, then unassign it
  10.0.0.41 on eni-b (i-1): move its pod, then unassign it
  cost 2 pods, 1 interface; free /28s in prefix reservations after step 2: 2
moved pods need 3 free addresses outside the reservations: 24 there
";
    assert_eq!(text("2"), expected);
    let three = text("3");
    assert!(
        three.ends_with(
            "the goal cannot be met: the cheapest plan reaching the most gives 2 /28s; these \
             cannot move:\n  10.0.0.0/32 (reserved by the subnet)\n  10.0.0.1/32 (reserved by \
             the subnet)\n  10.0.0.2/32 (reserved by the subnet)\n  10.0.0.3/32 (reserved by the \
             subnet)\n  10.0.0.4/32 (the primary address of an instance)\n  10.0.0.60/32 (a \
             requester-managed interface)\n  10.0.0.63/32 (reserved by the subnet)\n"
        ),
        "{three}"
    );
    let v = json_of(&[
        "frag",
        "--subnet",
        "10.0.0.0/26",
        "--network-interfaces",
        &enis,
        "--free",
        "1",
        "--json",
    ]);
    assert_eq!(v["met"], true);
    assert_eq!(v["steps"][0]["reserve"], "10.0.0.16/28");
    assert_eq!(v["steps"][0]["moves"][0]["address"], "10.0.0.20");
    assert_eq!(
        (v["pods"].as_u64(), v["reservations"].as_u64()),
        (Some(1), Some(1))
    );

    // ipamd's checkpoint of i-1 names the pods: 10.0.0.41 sits idle, so it costs nothing.
    let ipam = write(
        &dir,
        "ipam.json",
        &json!({"version": "vpc-cni-ipam/1", "allocations": [
            {"networkName": "aws-cni", "containerID": "c1", "ifName": "eth0", "ipv4": "10.0.0.20",
             "metadata": {"k8sPodNamespace": "default", "k8sPodName": "web-1"}},
            {"networkName": "aws-cni", "containerID": "c2", "ifName": "eth0", "ipv4": "10.0.0.40",
             "metadata": {"k8sPodNamespace": "default", "k8sPodName": "web-2"}}]}),
    );
    let node = format!("i-1={ipam}");
    let with = |node: &str| {
        run(&[
            "frag",
            "--subnet",
            "10.0.0.0/26",
            "--network-interfaces",
            &enis,
            "--free",
            "2",
            "--ipam-checkpoint",
            node,
        ])
    };
    let text = String::from_utf8(with(&node).stdout).unwrap();
    assert!(
        text.starts_with(
            "plan for 2 free /28s in prefix reservations on 10.0.0.0/26 (0 there now): 2 pods \
             restarted, 1 interface detached, 2 reservations\n"
        ),
        "{text}"
    );
    for line in [
        "  10.0.0.20 on eni-a (i-1): move pod default/web-1, then unassign it\n",
        "  10.0.0.40 on eni-b (i-1): move pod default/web-2, then unassign it\n",
        "  10.0.0.41 on eni-b (i-1): no pod uses it; unassign it\n",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // The map marks the regions and the addresses to move.
    let svg = dir.join("plan.svg");
    let out = run(&[
        "frag",
        "--subnet",
        "10.0.0.0/26",
        "--network-interfaces",
        &enis,
        "--free",
        "2",
        "--map",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    for mark in [
        "the plan reserves 10.0.0.16/28",
        "the plan reserves 10.0.0.32/28",
        "the plan moves 10.0.0.20",
        "the plan moves 10.0.0.41",
        "green outline: a prefix reservation the plan creates",
    ] {
        assert!(picture.contains(mark), "{mark}");
    }
    let bad = with("i-1");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected NODE=FILE"));
    std::fs::remove_dir_all(dir).unwrap();
}
