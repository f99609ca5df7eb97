//! The `pdipam` binary: max-pods, explain and inspect, run as a user runs them (simulate and frag:
//! `cli_subnet`).

use std::process::Command;

fn pdipam(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pdipam"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn max_pods_prints_the_number_alone() {
    let cases: &[(&[&str], &str)] = &[
        (&["--instance-type", "m5.large"], "29"),
        (
            &["--instance-type", "m5.large", "--custom-networking"],
            "20",
        ),
        (
            &["--instance-type", "m5.large", "--prefix-delegation"],
            "110",
        ),
        (
            &[
                "--instance-type",
                "m5.large",
                "--prefix-delegation",
                "--show-max-allowed",
            ],
            "434",
        ),
        (&["--instance-type", "t3.nano", "--prefix-delegation"], "34"),
        (&["--instance-type", "m5.8xlarge"], "234"),
        (
            &["--instance-type", "m5.8xlarge", "--prefix-delegation"],
            "250",
        ),
        (
            &["--instance-type", "m4.xlarge", "--prefix-delegation"],
            "58",
        ),
        (
            &[
                "--instance-type",
                "m5.large",
                "--prefix-delegation",
                "--cni-version",
                "1.8.0",
            ],
            "29",
        ),
        (&["--instance-type", "m5.8xlarge", "--max-eni", "2"], "60"),
    ];
    for (args, want) in cases {
        let mut all = vec!["max-pods"];
        all.extend_from_slice(args);
        let (ok, out, _) = pdipam(&all);
        assert!(ok, "{all:?}");
        assert_eq!(out, format!("{want}\n"), "{all:?}");
    }
    let (_, _, err) = pdipam(&[
        "max-pods",
        "--instance-type",
        "m4.xlarge",
        "--prefix-delegation",
    ]);
    assert!(err.contains("nitro"), "the fallback is reported: {err}");
}

#[test]
fn max_pods_all_lists_every_type_sorted_and_reports_unknown_vcpus() {
    let (ok, out, err) = pdipam(&["max-pods", "--all", "--prefix-delegation"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1392);
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    assert!(lines.contains(&"m5.large 110"));
    assert!(lines.contains(&"c5a.metal -"));
    assert!(err.contains("19 types have unknown vCPUs"));
    let (_, out, err) = pdipam(&["max-pods", "--all", "--show-max-allowed"]);
    assert!(out.lines().any(|l| l == "c5a.metal 737"));
    // Uncapped, every type has a value: no note.
    assert_eq!(err, "");
}

#[test]
fn max_pods_json_and_errors() {
    let (ok, out, _) = pdipam(&["max-pods", "--instance-type", "m5.large", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["max_pods"], 29);
    let (ok, out, _) = pdipam(&["max-pods", "--all", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1392);
    let (ok, _, err) = pdipam(&["max-pods", "--instance-type", "m5.lareg"]);
    assert!(!ok);
    assert!(err.contains("did you mean m5.large"), "{err}");
    let (ok, _, err) = pdipam(&["max-pods", "--instance-type", "c5a.metal"]);
    assert!(!ok);
    assert!(err.contains("vCPUs of c5a.metal are unknown"), "{err}");
    let (ok, _, err) = pdipam(&[
        "max-pods",
        "--instance-type",
        "m5.large",
        "--cni-version",
        "x",
    ]);
    assert!(!ok);
    assert!(err.contains("invalid CNI version"), "{err}");
    let (ok, _, _) = pdipam(&["max-pods"]);
    assert!(!ok, "one of --instance-type and --all is required");
    // An instance has its primary interface: --max-eni 0 describes no node.
    let (ok, out, err) = pdipam(&["max-pods", "--instance-type", "m5.large", "--max-eni", "0"]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("'0' for '--max-eni <N>'"), "{err}");
    assert!(err.contains("at least its primary interface"), "{err}");
}

/// One rule for every command: max pods counts the two host-network pods, so at most
/// max pods - 2 pods get an address, and the output says so.
#[test]
fn explain_stops_at_max_pods_less_the_host_network_pods() {
    for (mode, wanted, placed, line) in [
        ("prefix", "108", 108, "t3.small in prefix mode, 108 pods (max pods 110: 108 pods with an address beside 2 host-network pods)"),
        ("prefix", "111", 108, "t3.small in prefix mode, 108 pods of 111 wanted: max pods reached (max pods 110: 108 pods with an address beside 2 host-network pods)"),
        ("prefix", "200", 108, "t3.small in prefix mode, 108 pods of 200 wanted: max pods reached (max pods 110: 108 pods with an address beside 2 host-network pods)"),
        ("secondary", "200", 9, "t3.small in secondary-IP mode, 9 pods of 200 wanted: max pods reached (max pods 11: 9 pods with an address beside 2 host-network pods)"),
        ("prefix", "1", 1, "t3.small in prefix mode, 1 pod (max pods 110: 108 pods with an address beside 2 host-network pods)"),
    ] {
        let args = ["explain", "--instance-type", "t3.small", "--mode", mode, "--pods", wanted];
        let (ok, out, err) = pdipam(&args);
        assert!(ok, "{err}");
        assert_eq!(out.lines().next(), Some(line));
        let (_, json, _) = pdipam(&[&args[..], &["--json"]].concat());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!((v["pods_placed"].as_u64(), v["pods_with_address_max"].as_u64()),
            (Some(placed), Some(if mode == "prefix" { 108 } else { 9 })));
    }
}

#[test]
fn explain_reports_the_warm_pool_and_its_cost() {
    // The t3.small example of docs/rules.md, "Warm pools": 0, 5, 17 pods -> 1, 2, 3 prefixes.
    for (pods, prefixes, idle) in [("0", 1, 16), ("5", 2, 27), ("17", 3, 31)] {
        let (ok, out, err) = pdipam(&[
            "explain",
            "--instance-type",
            "t3.small",
            "--pods",
            pods,
            "--json",
        ]);
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["blocks"], prefixes, "{pods} pods");
        assert_eq!(v["idle"], idle, "{pods} pods");
        assert_eq!(v["rule"], "WARM_PREFIX_TARGET");
    }
    let (ok, out, _) = pdipam(&["explain", "--instance-type", "t3.small", "--pods", "5"]);
    assert!(ok);
    assert!(
        out.contains("attached: 32 addresses in 2 prefixes on 1 interface\n"),
        "{out}"
    );
    assert!(out.contains("idle: 27 addresses"), "{out}");
    // No MINIMUM_IP_TARGET: no floor line.
    assert!(!out.contains("keeps attached at least"), "{out}");
    let mut warm_ip = vec![
        "explain",
        "--instance-type",
        "m5.large",
        "--warm-ip-target",
        "5",
        "--minimum-ip-target",
        "40",
        "--pods",
        "10",
    ];
    let (ok, out, _) = pdipam(&warm_ip);
    assert!(ok);
    assert!(
        out.contains("keeps available: 5 addresses; wants 3 prefixes for these pods\nkeeps attached at least: 40 addresses\n"),
        "{out}"
    );
    warm_ip.push("--json");
    let (ok, out, _) = pdipam(&warm_ip);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["rule"].as_str(), v["attached"].as_u64()),
        (Some("WARM_IP_TARGET / MINIMUM_IP_TARGET"), Some(48))
    );
}

#[test]
fn bad_input_is_one_line_naming_the_value_and_exit_code_2() {
    for args in [
        &["explain", "--instance-type", "m9.huge"][..],
        &["max-pods", "--instance-type", "m9.huge"][..],
        &[
            "max-pods",
            "--instance-type",
            "m5.large",
            "--cni-version",
            "one",
        ][..],
        &["explain", "--instance-type", "m5.large", "--pods", "-3"][..],
        &["max-pods", "--bogus"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pdipam"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.contains("m9.huge")
                || err.contains("one")
                || err.contains("-3")
                || err.contains("--bogus"),
            "{args:?}: {err}"
        );
    }
}

/// The node checkpoint documented in docs/checkpoint.md (its first JSON block).
fn documented_node_checkpoint() -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/checkpoint.md"
    ))
    .unwrap();
    let start = doc.find("```json\n").unwrap() + 8;
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_string()
}

#[test]
fn inspect_reads_two_generations_as_one_checkpoint() {
    use pdipam::persist::{Generations, NodeCheckpoint};
    let dir = std::env::temp_dir().join(format!("pdipam-cli-gens-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("ipv4.checkpoint");
    let [first, second] = Generations::files_of(&base);
    let older = NodeCheckpoint::from_bytes(documented_node_checkpoint().as_bytes(), "doc").unwrap();
    older.write(&base).unwrap();
    let (mut gens, _) = Generations::open(&base).unwrap();
    let mut newer = older.clone();
    newer.pods.pop();
    gens.write(&mut newer).unwrap();
    for given in [&first, &second] {
        let (ok, out, err) = pdipam(&["inspect", given.to_str().unwrap()]);
        assert!(ok, "{err}");
        assert!(
            out.contains(&format!("newest of two generations: {}", second.display())),
            "{out}"
        );
        assert!(out.contains("1 pod, 1 cooling"), "{out}");
        assert!(out.contains("holds the generation before it"), "{out}");
    }
    // The newest damaged: the one before it, and what is wrong with the other.
    let mut bytes = std::fs::read(&second).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&second, &bytes).unwrap();
    let (ok, out, err) = pdipam(&["inspect", first.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pods"], 2);
    assert_eq!(v["generations"]["newest"], first.display().to_string());
    assert!(
        v["generations"]["damaged"]
            .as_str()
            .unwrap()
            .contains("ipv4.checkpoint.1"),
        "{v}"
    );
    // Both damaged: an error naming each file and its fault.
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&first, &bytes).unwrap();
    let (ok, _, err) = pdipam(&["inspect", first.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("neither generation opens")
            && err.contains("ipv4.checkpoint:")
            && err.contains("ipv4.checkpoint.1:"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inspect_summarises_checkpoints_and_ipamd_files() {
    let dir = std::env::temp_dir().join(format!("pdipam-cli-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The documented node checkpoint.
    let documented = documented_node_checkpoint();
    let node = dir.join("node.json");
    std::fs::write(&node, &documented).unwrap();
    let (ok, out, err) = pdipam(&["inspect", node.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("node checkpoint: m5.large, prefix mode"),
        "{out}"
    );
    assert!(
        out.contains("10.0.1.0/28") && out.contains("2 pods, 1 cooling"),
        "{out}"
    );
    let (_, out, _) = pdipam(&["inspect", node.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["pods"].as_u64(), v["cooling"].as_u64()),
        (Some(2), Some(1))
    );
    // A subnet checkpoint.
    let s = pdipam::Subnet::new("10.1.0.0/24".parse().unwrap()).unwrap();
    s.allocate_prefix(28).unwrap();
    let sub = dir.join("subnet.json");
    std::fs::write(&sub, s.checkpoint().to_bytes()).unwrap();
    let (ok, out, _) = pdipam(&["inspect", sub.to_str().unwrap()]);
    assert!(ok);
    assert!(
        out.contains("  1 prefix, 0 single addresses, 0 reservations\n")
            && out.contains("free /28s 13"),
        "{out}"
    );
    // ipamd's file.
    let ipam = dir.join("ipam.json");
    std::fs::write(
        &ipam,
        r#"{"version":"vpc-cni-ipam/1","allocations":[
          {"networkName":"aws-cni","containerID":"a","ifName":"eth0","ipv4":"10.0.1.9","allocationTimestamp":1,
           "metadata":{"k8sPodNamespace":"default","k8sPodName":"web-1","interfacesCount":1}},
          {"networkName":"aws-cni","containerID":"b","ifName":"eth0","ipv4":"10.0.1.7","allocationTimestamp":2},
          {"networkName":"aws-cni","containerID":"c","ifName":"eth0","ipv4":"10.0.1.40","allocationTimestamp":3}]}"#,
    )
    .unwrap();
    let (ok, out, _) = pdipam(&["inspect", ipam.to_str().unwrap()]);
    assert!(ok);
    assert_eq!(
        out,
        "vpc-cni-ipam/1 file: 3 pods in 2 blocks (ipamd records no attachments: blocks are the \
         /28 or /80 each address lies in)\n  \
         10.0.1.0/28          2 pods\n    \
         10.0.1.7           aws-cni/b/eth0\n    \
         10.0.1.9           aws-cni/a/eth0 (default/web-1)\n  \
         10.0.1.32/28         1 pod\n    \
         10.0.1.40          aws-cni/c/eth0\n"
    );
    // Unreadable or corrupt: one line naming the file, exit code 2.
    for bad in ["missing.json", "node.json"] {
        let path = dir.join(bad);
        if bad == "node.json" {
            std::fs::write(&path, documented.replace("10.0.1.16/28", "10.0.1.32/28")).unwrap();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_pdipam"))
            .args(["inspect", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(bad) && err.lines().count() == 1, "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_in_secondary_mode_keeps_a_spare_interface() {
    // m5.large: 9 addresses per interface. With WARM_ENI_TARGET=1 (the default) and 5 pods the
    // node keeps a whole interface of spare addresses: 2 interfaces, 18 addresses.
    let mut secondary = vec![
        "explain",
        "--instance-type",
        "m5.large",
        "--mode",
        "secondary",
        "--pods",
        "5",
    ];
    let (ok, out, _) = pdipam(&secondary);
    assert!(ok);
    assert!(
        out.starts_with("m5.large in secondary-IP mode, 5 pods"),
        "{out}"
    );
    assert!(
        out.contains("in 18 secondary addresses on 2 interfaces"),
        "{out}"
    );
    secondary.push("--json");
    let (ok, out, err) = pdipam(&secondary);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            v["mode"].as_str(),
            v["rule"].as_str(),
            v["attached"].as_u64(),
            v["interfaces"].as_u64(),
            v["idle"].as_u64(),
            v["max_pods"].as_u64()
        ),
        (
            Some("secondary"),
            Some("WARM_ENI_TARGET"),
            Some(18),
            Some(2),
            Some(13),
            Some(29)
        )
    );
}

#[test]
fn help_is_clap_s_own_output() {
    let (ok, out, err) = pdipam(&["--help"]);
    assert!(ok, "{err}");
    assert!(out.contains("Usage:") && out.contains("max-pods"), "{out}");
    // With no command, the whole help on stderr (not the one-line error form) and exit code 2.
    let bare = Command::new(env!("CARGO_BIN_EXE_pdipam")).output().unwrap();
    assert_eq!(bare.status.code(), Some(2));
    let err = String::from_utf8(bare.stderr).unwrap();
    assert!(
        err.contains("Commands:") && err.lines().count() > 5,
        "{err}"
    );
}

#[test]
fn a_reader_closing_the_pipe_early_is_not_an_error() {
    // `pdipam ... | head`: the reader goes away before the output is written. Every command
    // must end with success and write nothing but its notes to stderr, not panic in `println!`
    // or report a broken pipe.
    let dir = std::env::temp_dir().join(format!("pdipam-cli-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let documented = documented_node_checkpoint();
    let node = dir.join("node.json");
    std::fs::write(&node, &documented).unwrap();
    let checkpoint = node.to_str().unwrap();
    for args in [
        &["max-pods", "--all"][..],
        &["explain", "--instance-type", "m5.large", "--pods", "5"][..],
        &["explain", "--instance-type", "m5.large", "--json"][..],
        &["inspect", checkpoint][..],
        &["inspect", checkpoint, "--json"][..],
        &[
            "simulate",
            "--subnet",
            "10.0.0.0/24",
            "--instance-type",
            "m5.large",
            "--nodes",
            "1",
            "--pods",
            "10",
            "--json",
        ][..],
    ] {
        let out = with_reader_gone(args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(
            err.lines().all(|l| l.starts_with("note: ")),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs `pdipam args` with stdout the writing end of a pipe whose reader has already gone, so
/// every write fails with a broken pipe from the first one. (Closing the reader after the spawn
/// would race with a child quick enough to fill the pipe's buffer first.)
pub(crate) fn with_reader_gone(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pdipam"))
        .args(args)
        .stdout(closed_pipe())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

fn closed_pipe() -> std::process::Stdio {
    let mut reader = Command::new("true")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let writer = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    std::process::Stdio::from(writer)
}

/// The README's command-line session runs as shown: each `$ pdipam ...` line, run, prints
/// exactly the lines below it.
#[test]
fn the_readme_session_prints_what_the_readme_shows() {
    let readme = include_str!("../../../README.md");
    let start = readme.find("```console\n").expect("a console block") + "```console\n".len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let mut sessions: Vec<(Vec<&str>, String)> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("$ pdipam ") {
            Some(command) => sessions.push((command.split(' ').collect(), String::new())),
            None => {
                let (_, expected) = sessions.last_mut().expect("a command first");
                expected.push_str(line);
                expected.push('\n');
            }
        }
    }
    assert!(sessions.len() >= 2, "{block}");
    for (args, expected) in sessions {
        let (ok, out, err) = pdipam(&args);
        assert!(ok, "{args:?}: {err}");
        assert_eq!(out, expected, "{args:?}");
    }
}

/// A stand-in for the pdipam-fleet program: `script` as an executable in a directory of its
/// own (`tag` names it). Returns the directory and the program.
fn fake_fleet_program(tag: &str, script: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("pdipam-fleet-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("pdipam-fleet");
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, fake)
}

/// `pdipam fleet ...` runs the pdipam-fleet program with every argument, `--help` included, and
/// exits as it does; without it, one line says how to get it.
#[test]
fn fleet_runs_the_fleet_program_with_its_arguments() {
    let (dir, fake) = fake_fleet_program("dispatch", "#!/bin/sh\necho \"args: $*\"\nexit 3\n");
    let out = Command::new(env!("CARGO_BIN_EXE_pdipam"))
        .args(["fleet", "--etcd", "http://e:1", "status", "--help"])
        .env("PDIPAM_FLEET", &fake)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "args: --etcd http://e:1 status --help\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pdipam"))
        .args(["fleet", "status"])
        .env("PDIPAM_FLEET", dir.join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("missing"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `pdipam fleet map`: the fleet program exports the live fleet in the AWS CLI's shapes (here a
/// stand-in writes what it would) and pdipam draws and reports it as `frag` does.
#[test]
fn fleet_map_reports_and_draws_what_the_fleet_program_exports() {
    let script = r#"#!/bin/sh
echo "$*" > "$(dirname "$0")/args"
while [ "$1" != "--out" ]; do shift; done
cat > "$2/network-interfaces.json" <<'JSON'
{"NetworkInterfaces": [
 {"NetworkInterfaceId": "node-a", "PrivateIpAddresses": [], "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.0.16/28"}, {"Ipv4Prefix": "10.0.0.32/28"}]},
 {"NetworkInterfaceId": "node-b", "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.200"}], "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.0.64/28"}]}
]}
JSON
echo '{"SubnetIpv4CidrReservations": []}' > "$2/reservations.json"
"#;
    let (dir, fake) = fake_fleet_program("map", script);
    let svg = dir.join("fleet.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_pdipam"))
        .args([
            "fleet",
            "--etcd",
            "http://e:1",
            "map",
            "--subnet",
            "10.0.0.0/24",
            "--map",
        ])
        .arg(&svg)
        .env("PDIPAM_FLEET", &fake)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    assert!(
        args.starts_with("--etcd http://e:1 export --subnet 10.0.0.0/24 --out "),
        "{args}"
    );
    // frag's report: the nodes as interfaces, free /28s, the largest free block, the spoiler.
    assert!(
        text.contains("in use: 2 interfaces with 1 address and 3 prefixes\n")
            && text.contains("free aligned /28s: 10 (10 where automatic prefixes look); largest free block: 10.0.0.128/26")
            && text.contains("10.0.0.200 on node-b: frees 10.0.0.192/28"),
        "{text}"
    );
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.contains("node-a") && picture.contains("node-b"),
        "{picture}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pdipam"))
        .args([
            "fleet",
            "--etcd",
            "http://e:1",
            "map",
            "--subnet",
            "10.0.0.0/24",
            "--json",
        ])
        .env("PDIPAM_FLEET", &fake)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["prefixes"], 3, "{v}");
    assert_eq!(v["single_addresses"], 1, "{v}");
    std::fs::remove_dir_all(dir).unwrap();
}
