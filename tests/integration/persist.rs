//! Checkpoints: format, durable writes, restore, vpc-cni-ipam/1 import, leak GC.

use pdipam::{
    limits::InstanceLimits,
    persist::{
        import_vpc_cni, NodeCheckpoint, PersistError, SubnetCheckpoint, WriteThroughError,
        WriteThroughNode,
    },
    planner::WarmSettings,
    Clock, GcPolicy, InterfaceFlags, InterfaceSpec, ManualClock, Node, NodeConfig, NodeError,
    PodInfo, PodKey, PodMetadata, PodRequest, ReservationKind, Subnet, Timestamp,
};
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
        1_763_683_200_000_000_000,
    )))
}

fn key(c: &str) -> PodKey {
    PodKey::new("aws-cni", c, "eth0")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An m5.large with two interfaces, three /28s, a secondary address, pods and a cooling address.
pub(crate) fn sample(clock: &Arc<ManualClock>) -> Node {
    let node = Node::with_clock(
        InstanceLimits::lookup("m5.large").unwrap().clone(),
        NodeConfig::default(),
        clock.clone(),
    );
    for (dev, primary) in [(0u32, "10.0.0.10"), (1, "10.0.0.11")] {
        node.attach_interface(
            InterfaceSpec::new(format!("eni-{dev}"), dev, ip(primary)).flags(InterfaceFlags {
                primary: dev == 0,
                ..Default::default()
            }),
        )
        .unwrap();
    }
    node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    node.attach_prefix("eni-0", "10.0.1.16/28".parse().unwrap())
        .unwrap();
    node.attach_prefix("eni-1", "10.0.2.0/28".parse().unwrap())
        .unwrap();
    node.attach_secondary("eni-1", ip("10.0.0.12")).unwrap();
    for i in 0..3 {
        let req = PodRequest {
            key: key(&format!("c{i}")),
            metadata: PodMetadata {
                namespace: "default".into(),
                pod_name: format!("web-{i}"),
                interfaces_count: 1,
            },
        };
        node.assign(req).unwrap();
    }
    clock.advance(Duration::from_secs(5));
    node.release(&key("c1")).unwrap();
    node
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pdipam-persist-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("node.json")
}

#[test]
fn the_documented_example_parses_and_restores() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/checkpoint.md"))
        .unwrap();
    let start = doc.find("```json\n").unwrap() + 8;
    let end = start + doc[start..].find("```").unwrap();
    let cp = NodeCheckpoint::from_bytes(&doc.as_bytes()[start..end], "docs/checkpoint.md").unwrap();
    let c = clock();
    let restored = cp.restore("docs/checkpoint.md", c.clone()).unwrap();
    assert_eq!(restored.node.pod_count(), 2);
    assert_eq!(restored.node.snapshot().cooling(), 1);
    // The example is exactly what the sample node writes.
    assert_eq!(
        cp,
        sample(&clock()).checkpoint(Some(&WarmSettings::shipped_manifest()))
    );
}

#[test]
fn round_trip_keeps_everything_and_cooldowns_resume() {
    let _serial = FAILPOINT.lock().unwrap();
    let c = clock();
    let node = sample(&c);
    let cp = node.checkpoint(None);
    let path = tmp("round-trip");
    cp.write(&path).unwrap();
    let back = NodeCheckpoint::read(&path).unwrap();
    assert_eq!(back, cp);
    c.advance(Duration::from_secs(20)); // 20 s after the release: 10 s of cooldown left
    let r = back.restore("node.json", c.clone()).unwrap();
    r.node.verify().unwrap();
    assert!(r.quarantined.is_empty());
    assert_eq!(r.node.pods(), node.pods());
    let released = ip("10.0.1.1");
    let e = r
        .node
        .assign_address(PodRequest::new(key("x")), released, c.now())
        .unwrap_err();
    assert!(matches!(e, NodeError::AddressCooling { .. }), "{e}");
    // Free once more than the cooldown has passed since the release (inclusive).
    c.advance(Duration::from_secs(10) + Duration::from_nanos(1));
    r.node
        .assign_address(PodRequest::new(key("x")), released, c.now())
        .unwrap();
    // The interface age survives too (the planner's 60-second rule reads it).
    assert_eq!(
        r.node.snapshot().interfaces[1].attached_at,
        node.snapshot().interfaces[1].attached_at
    );
}

#[test]
fn corrupt_or_foreign_files_are_clear_errors_naming_the_file() {
    let c = clock();
    let bytes = sample(&c).checkpoint(None).to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let tampered = text.replacen("10.0.1.0", "10.0.1.2", 1);
    let e = NodeCheckpoint::from_bytes(tampered.as_bytes(), "/var/lib/x.json").unwrap_err();
    assert!(matches!(e, PersistError::BadChecksum { .. }), "{e}");
    assert!(e.to_string().starts_with("/var/lib/x.json: bad checksum"));
    let v2 = text.replacen("\"version\":1", "\"version\":2", 1);
    let e = NodeCheckpoint::from_bytes(v2.as_bytes(), "f").unwrap_err();
    assert!(matches!(e, PersistError::UnknownVersion { .. }), "{e}");
    let e = NodeCheckpoint::from_bytes(b"{not json", "f").unwrap_err();
    assert!(matches!(e, PersistError::Parse { .. }));
    let subnet = Subnet::new("10.0.0.0/24".parse().unwrap()).unwrap();
    let e = NodeCheckpoint::from_bytes(&subnet.checkpoint().to_bytes(), "f").unwrap_err();
    assert!(matches!(e, PersistError::WrongKind { .. }), "{e}");
    // Whitespace does not matter: the checksum covers the canonical body.
    let compact =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()).unwrap();
    NodeCheckpoint::from_bytes(&compact, "f").unwrap();
}

#[test]
fn duplicates_are_errors_naming_both_keys_and_strays_are_quarantined() {
    let c = clock();
    let mut cp = sample(&c).checkpoint(None);
    let mut dup = cp.pods[0].clone();
    dup.container_id = "other".into();
    cp.pods.push(dup);
    match cp.restore("f", c.clone()).unwrap_err() {
        PersistError::DuplicateAddress { first, second, .. } => {
            assert_eq!(
                (first.container_id(), second.container_id()),
                ("c0", "other")
            )
        }
        e => panic!("{e}"),
    }
    cp.pods.pop();
    // A pod whose prefix is no longer attached: kept, reported, never handed out.
    cp.interfaces[1].prefixes.clear();
    let mut stray = cp.pods[0].clone();
    stray.container_id = "stray".into();
    stray.address = ip("10.0.2.5");
    cp.pods.push(stray);
    let r = cp.restore("f", c.clone()).unwrap();
    assert_eq!(r.quarantined.len(), 1);
    assert_eq!(r.node.quarantined()[0].key, key("stray"));
    // Re-attaching the prefix gives the pod its address back; nobody else gets it.
    r.node
        .attach_prefix("eni-1", "10.0.2.0/28".parse().unwrap())
        .unwrap();
    assert!(r.node.quarantined().is_empty());
    assert_eq!(r.node.pod(&key("stray")).unwrap().address, ip("10.0.2.5"));
    r.node.verify().unwrap();
}

#[test]
fn a_failed_write_leaves_the_previous_checkpoint_and_no_temporary_file() {
    let _serial = FAILPOINT.lock().unwrap();
    let c = clock();
    let node = sample(&c);
    let path = tmp("failed-write");
    let first = node.checkpoint(None);
    first.write(&path).unwrap();
    node.assign(PodRequest::new(key("later"))).unwrap();
    pdipam::testing::fail_next_checkpoint_writes(1);
    let e = node.checkpoint(None).write(&path).unwrap_err();
    assert!(matches!(e, PersistError::Io { .. }), "{e}");
    assert_eq!(NodeCheckpoint::read(&path).unwrap(), first);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only node.json: the temporary file is gone"
    );
    node.checkpoint(None).write(&path).unwrap();
    assert_ne!(NodeCheckpoint::read(&path).unwrap(), first);
}

/// The failure hook is process-wide: tests that use it take turns.
pub(crate) static FAILPOINT: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn write_through_rolls_back_when_the_write_fails() {
    let _serial = FAILPOINT.lock().unwrap();
    let c = clock();
    let path = tmp("write-through");
    let w = WriteThroughNode::new(sample(&c), &path, None).unwrap();
    let a = w.assign(PodRequest::new(key("new"))).unwrap();
    let on_disk = NodeCheckpoint::read(&path).unwrap();
    assert!(on_disk.pods.iter().any(|p| p.address == a.address));
    let dir = path.parent().unwrap().to_path_buf();
    let blocked = Node::with_clock(
        InstanceLimits::lookup("m5.large").unwrap().clone(),
        NodeConfig::default(),
        c.clone(),
    );
    let bad = WriteThroughNode::new(blocked, dir.join("missing-dir/node.json"), None);
    assert!(matches!(bad, Err(PersistError::Io { .. })));
    let before = w.node().pods();
    let on_disk_before = NodeCheckpoint::read(&path).unwrap();
    pdipam::testing::fail_next_checkpoint_writes(1);
    let e = w.assign(PodRequest::new(key("lost"))).unwrap_err();
    assert!(matches!(e, WriteThroughError::Persist(_)), "{e}");
    assert_eq!(w.node().pods(), before, "assignment rolled back");
    pdipam::testing::fail_next_checkpoint_writes(1);
    let e = w.release(&key("new")).unwrap_err();
    assert!(matches!(e, WriteThroughError::Persist(_)));
    assert_eq!(w.node().pods(), before, "release rolled back");
    assert_eq!(NodeCheckpoint::read(&path).unwrap(), on_disk_before);
    w.node().verify().unwrap();
    w.release(&key("new")).unwrap();
    assert!(!NodeCheckpoint::read(&path)
        .unwrap()
        .pods
        .iter()
        .any(|p| p.address == a.address));
}

#[test]
fn a_quarantined_pod_released_through_write_through_leaves_disk_or_stays() {
    let _serial = FAILPOINT.lock().unwrap();
    let c = clock();
    let path = tmp("write-through-quarantine");
    let node = sample(&c);
    node.quarantine(PodInfo {
        key: key("parked"),
        address: ip("10.0.9.9"),
        block: "10.0.9.9/32".parse().unwrap(),
        interface_id: Arc::from(""),
        metadata: Default::default(),
        assigned_at: c.now(),
    })
    .unwrap();
    let w = WriteThroughNode::new(node, &path, None).unwrap();
    let on_disk = |p: &std::path::Path| {
        NodeCheckpoint::read(p)
            .unwrap()
            .quarantined
            .iter()
            .map(|q| q.address)
            .collect::<Vec<_>>()
    };
    assert_eq!(on_disk(&path), [ip("10.0.9.9")]);
    // The write fails: the pod goes back into quarantine, as the file still has it.
    pdipam::testing::fail_next_checkpoint_writes(1);
    let e = w.release(&key("parked")).unwrap_err();
    assert!(matches!(e, WriteThroughError::Persist(_)), "{e}");
    assert_eq!(w.node().quarantined()[0].address, ip("10.0.9.9"));
    w.node().verify().unwrap();
    // The write succeeds: gone from the node and from the file.
    let r = w.release(&key("parked")).unwrap();
    assert_eq!(
        (r.address, r.block.to_string()),
        (ip("10.0.9.9"), "10.0.9.9/32".into())
    );
    assert!(w.node().quarantined().is_empty());
    assert!(on_disk(&path).is_empty());
    w.node().verify().unwrap();
}

const IPAM_JSON: &str = r#"{"version":"vpc-cni-ipam/1","allocations":[
 {"networkName":"aws-cni","containerID":"c-a","ifName":"eth0","ipv4":"10.0.1.7","allocationTimestamp":1763683100000000000,
  "metadata":{"k8sPodNamespace":"kube-system","k8sPodName":"coredns-1","interfacesCount":1}},
 {"networkName":"aws-cni","containerID":"c-b","ifName":"eth0","ipv4":"10.0.9.9","allocationTimestamp":1763683100000000001,
  "metadata":{"k8sPodNamespace":"default","k8sPodName":"gone","interfacesCount":1}}
]}"#;

#[test]
fn vpc_cni_files_import_with_the_same_rules() {
    let c = clock();
    let node = sample(&c);
    let report =
        import_vpc_cni(IPAM_JSON.as_bytes(), "/var/run/aws-node/ipam.json", &node).unwrap();
    assert_eq!(report.imported, 1);
    assert_eq!(
        report.quarantined.len(),
        1,
        "10.0.9.9 is in no attached prefix: kept, not dropped"
    );
    let p = node.pod(&PodKey::new("aws-cni", "c-a", "eth0")).unwrap();
    assert_eq!(
        (p.address, p.metadata.pod_name.as_str()),
        (ip("10.0.1.7"), "coredns-1")
    );
    node.verify().unwrap();
    // All or nothing: an address held by another pod refuses the whole file.
    let node = sample(&c);
    let clash = IPAM_JSON.replace("10.0.1.7", "10.0.1.0"); // held by c0
    let before = node.pods();
    let e = import_vpc_cni(clash.as_bytes(), "ipam.json", &node).unwrap_err();
    assert!(matches!(e, PersistError::Node { .. }), "{e}");
    assert_eq!(node.pods(), before);
    assert!(node.quarantined().is_empty());
    let dup = IPAM_JSON.replace("10.0.9.9", "10.0.1.7");
    let e = import_vpc_cni(dup.as_bytes(), "ipam.json", &node).unwrap_err();
    assert!(matches!(e, PersistError::DuplicateAddress { .. }), "{e}");
    // The words ipamd users search for.
    assert!(e.to_string().contains("IP already in data store"), "{e}");
    // An entry from before multi-NIC pods (no interface count) reports one interface on release.
    let node = sample(&c);
    let old = IPAM_JSON.replace(
        r#""coredns-1","interfacesCount":1"#,
        r#""coredns-1","interfacesCount":0"#,
    );
    import_vpc_cni(old.as_bytes(), "ipam.json", &node).unwrap();
    let released = node
        .release(&PodKey::new("aws-cni", "c-a", "eth0"))
        .unwrap();
    assert_eq!(released.metadata.interfaces_count, 1);
    let v2 = IPAM_JSON.replace("vpc-cni-ipam/1", "vpc-cni-ipam/2");
    assert!(matches!(
        import_vpc_cni(v2.as_bytes(), "ipam.json", &node),
        Err(PersistError::UnknownVersion { .. })
    ));
}

#[test]
fn leak_gc_releases_only_what_is_certainly_gone() {
    let c = clock();
    let node = sample(&c); // c0 and c2 hold addresses
    let policy = GcPolicy {
        passes: 2,
        grace: Duration::from_secs(600),
    };
    let live: HashSet<PodKey> = [key("c0")].into_iter().collect();
    let observed = c.now();
    // A pod assigned after the observation is not in the live set yet: never touched.
    c.advance(Duration::from_secs(1));
    node.assign(PodRequest::new(key("fresh"))).unwrap();
    let dry = node.collect_leaks(&live, observed, &policy, true);
    assert_eq!(dry.suspected, vec![(key("c2"), 1)]);
    assert!(dry.released.is_empty());
    let first = node.collect_leaks(&live, observed, &policy, false);
    assert!(first.released.is_empty());
    let dry = node.collect_leaks(&live, observed, &policy, true);
    assert_eq!(
        dry.released.len(),
        1,
        "a dry run says what the next pass would release"
    );
    assert!(node.pod(&key("c2")).is_some());
    let second = node.collect_leaks(&live, observed, &policy, false);
    assert_eq!(second.released, vec![(key("c2"), ip("10.0.1.2"))]);
    assert!(node.pod(&key("c2")).is_none());
    assert!(node.pod(&key("fresh")).is_some());
    assert_eq!(node.snapshot().cooling(), 2, "released addresses cool down");
    // Or past the grace period, on the first pass after it.
    let policy = GcPolicy {
        passes: 100,
        grace: Duration::from_secs(60),
    };
    let live: HashSet<PodKey> = HashSet::new();
    c.advance(Duration::from_secs(1));
    let observed = c.now();
    assert!(node
        .collect_leaks(&live, observed, &policy, false)
        .released
        .is_empty());
    c.advance(Duration::from_secs(60));
    let r = node.collect_leaks(&live, observed, &policy, false);
    assert_eq!(r.released.len(), 2);
    node.verify().unwrap();
}

#[test]
fn subnet_checkpoints_round_trip() {
    let s = Subnet::new("10.0.0.0/22".parse().unwrap()).unwrap();
    s.add_reservation("10.0.2.0/23".parse().unwrap(), ReservationKind::Prefix)
        .unwrap();
    for _ in 0..5 {
        s.allocate_prefix(28).unwrap();
    }
    for _ in 0..7 {
        s.allocate_ip().unwrap();
    }
    let cp = s.checkpoint();
    let back = SubnetCheckpoint::from_bytes(&cp.to_bytes(), "s").unwrap();
    assert_eq!(back, cp);
    let path = tmp("subnet").with_file_name("subnet.json");
    cp.write(&path).unwrap();
    assert_eq!(SubnetCheckpoint::read(&path).unwrap(), cp);
    let r = back.restore("s").unwrap();
    assert_eq!(r.allocations(), s.allocations());
    assert_eq!(r.reservations(), s.reservations());
    r.verify().unwrap();
    let mut bad = cp.clone();
    bad.prefixes.push(bad.prefixes[0]);
    assert!(matches!(bad.restore("s"), Err(PersistError::Subnet { .. })));
}

/// A checkpoint whose body had digits changed, re-sealed so that it passes the checksum (as the
/// `checkpoint_parse` fuzz target does) and reaches the restore logic; `None` if not JSON.
fn digits_changed(bytes: &[u8], edits: &[(usize, u8)]) -> Option<Vec<u8>> {
    let env: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut body = env["body"].to_string().into_bytes();
    let digits: Vec<usize> = (0..body.len())
        .filter(|&i| body[i].is_ascii_digit())
        .collect();
    for (at, d) in edits {
        body[digits[at % digits.len()]] = b'0' + d % 10;
    }
    let body: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let text = body.to_string();
    let sealed = serde_json::json!({
        "format": env["format"], "version": env["version"], "kind": env["kind"],
        "checksum": format!("crc32:{:08x}", crc32fast::hash(text.as_bytes())),
        "body": body,
    });
    Some(sealed.to_string().into_bytes())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::model::cases(256)))]

    /// The `checkpoint_parse` fuzz target's property on changed real checkpoints: a checkpoint
    /// whose numbers (addresses, times, counts) were changed and re-sealed gives an error or a
    /// node that passes `verify()`, never a panic; raw byte damage is caught by the checksum.
    #[test]
    fn changed_checkpoints_are_errors_or_valid_nodes(
        edits in proptest::collection::vec((proptest::prelude::any::<usize>(), 0..10u8), 1..8),
        flip in proptest::prelude::any::<usize>(),
    ) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
        let bytes = sample(&clock).checkpoint(None).to_bytes();
        if let Some(changed) = digits_changed(&bytes, &edits) {
            if let Ok(cp) = NodeCheckpoint::from_bytes(&changed, "changed") {
                if let Ok(restored) = cp.restore("changed", clock.clone()) {
                    restored.node.verify().unwrap();
                }
            }
        }
        let mut damaged = bytes.clone();
        let i = flip % damaged.len();
        damaged[i] ^= 0x01;
        proptest::prop_assert!(NodeCheckpoint::from_bytes(&damaged, "damaged").is_err());
    }
}

#[test]
fn a_second_import_of_the_same_file_changes_nothing_and_a_failed_one_keeps_earlier_pods() {
    let c = clock();
    let node = sample(&c);
    import_vpc_cni(IPAM_JSON.as_bytes(), "ipam.json", &node).unwrap();
    let (pods, parked) = (node.pods(), node.quarantined());
    let again = import_vpc_cni(IPAM_JSON.as_bytes(), "ipam.json", &node).unwrap();
    assert_eq!((again.imported, again.quarantined.len()), (0, 0));
    assert_eq!(
        (node.pods(), node.quarantined()),
        (pods.clone(), parked.clone())
    );
    // A file repeating c-a, then an entry the node refuses: the rollback undoes only what this
    // import added, so c-a (imported before) keeps its address.
    let clash = r#"{"version":"vpc-cni-ipam/1","allocations":[
 {"networkName":"aws-cni","containerID":"c-a","ifName":"eth0","ipv4":"10.0.1.7","allocationTimestamp":1763683100000000000,
  "metadata":{"k8sPodNamespace":"kube-system","k8sPodName":"coredns-1","interfacesCount":1}},
 {"networkName":"aws-cni","containerID":"c-new","ifName":"eth0","ipv4":"10.0.1.8","allocationTimestamp":1763683100000000002,
  "metadata":{"k8sPodNamespace":"default","k8sPodName":"new","interfacesCount":1}},
 {"networkName":"aws-cni","containerID":"c-x","ifName":"eth0","ipv4":"10.0.1.0","allocationTimestamp":1763683100000000003,
  "metadata":{"k8sPodNamespace":"default","k8sPodName":"x","interfacesCount":1}}
]}"#;
    let e = import_vpc_cni(clash.as_bytes(), "ipam.json", &node).unwrap_err();
    assert!(matches!(e, PersistError::Node { .. }), "{e}");
    assert_eq!((node.pods(), node.quarantined()), (pods, parked));
    node.verify().unwrap();
}

#[test]
fn errors_keep_their_causes() {
    use std::error::Error as _;
    // An I/O failure keeps the system's error with its kind, and the message names the file.
    let missing = tmp("causes").with_file_name("no-such-file.json");
    let e = NodeCheckpoint::read(&missing).unwrap_err();
    let io = e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the io::Error is the source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains("no-such-file.json"), "{e}");
    // An entry the node refuses keeps the node's error.
    let c = clock();
    let mut checkpoint = sample(&c).checkpoint(None);
    let again = checkpoint.interfaces[0].prefixes[0];
    checkpoint.interfaces[0].prefixes.push(again);
    let e = checkpoint.restore("twice.json", c.clone()).unwrap_err();
    assert!(matches!(e, PersistError::Node { .. }), "{e}");
    let cause = e
        .source()
        .and_then(|s| s.downcast_ref::<pdipam::NodeError>());
    assert!(cause.is_some(), "the NodeError is the source of {e}");
}

/// An entry ipamd migrated from the container runtime's old state (`_migrated-from-cri`,
/// interface `unknown`) is released by the pod's current key, as ipamd's fallback does: the
/// address does not leak.
#[test]
fn a_migrated_entry_is_released_by_the_pods_current_key() {
    let c = clock();
    let node = sample(&c);
    let migrated = IPAM_JSON.replace(
        r#""networkName":"aws-cni","containerID":"c-a","ifName":"eth0""#,
        r#""networkName":"_migrated-from-cri","containerID":"c-a","ifName":"unknown""#,
    );
    assert_ne!(
        migrated, IPAM_JSON,
        "the fixture names the entry as expected"
    );
    import_vpc_cni(migrated.as_bytes(), "ipam.json", &node).unwrap();
    let r = node
        .release(&PodKey::new("aws-cni", "c-a", "eth0"))
        .unwrap();
    assert_eq!(r.address, ip("10.0.1.7"));
    assert!(node
        .pod(&PodKey::new(
            pdipam::MIGRATED_NETWORK_NAME,
            "c-a",
            pdipam::MIGRATED_IF_NAME
        ))
        .is_none());
    // By parts too (a CNI DEL, the C ABI); another container's key finds nothing.
    let node = sample(&c);
    import_vpc_cni(migrated.as_bytes(), "ipam.json", &node).unwrap();
    assert!(matches!(
        node.release(&PodKey::new("aws-cni", "c-other", "eth0")),
        Err(NodeError::UnknownPod { .. })
    ));
    assert_eq!(
        node.release_parts("aws-cni", "c-a", "eth0")
            .unwrap()
            .address,
        ip("10.0.1.7")
    );
    node.verify().unwrap();
}

/// A store of the test's own that fails when told to: a write-through change whose write fails
/// is undone, with no hidden feature and no file.
#[test]
fn a_write_through_node_over_a_store_that_fails_rolls_back() {
    use pdipam::persist::CheckpointStore;
    use std::sync::atomic::{AtomicU32, Ordering};
    #[derive(Debug, Default)]
    struct Flaky {
        fail_next: Arc<AtomicU32>,
        written: Arc<std::sync::Mutex<Vec<NodeCheckpoint>>>,
    }
    impl CheckpointStore for Flaky {
        fn write(&mut self, c: &mut NodeCheckpoint) -> Result<(), PersistError> {
            if self
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(PersistError::Io {
                    source_name: "flaky".into(),
                    operation: "write",
                    source: std::io::Error::other("told to fail"),
                });
            }
            self.written.lock().unwrap().push(c.clone());
            Ok(())
        }
    }
    let c = clock();
    let store = Flaky::default();
    let (fail, written) = (store.fail_next.clone(), store.written.clone());
    let w = WriteThroughNode::with_store(sample(&c), Box::new(store), None).unwrap();
    assert_eq!(w.path(), None);
    let pods = || w.node().pods().len();
    let before = pods();
    w.assign(PodRequest::new(key("kept"))).unwrap();
    assert_eq!(pods(), before + 1);
    fail.store(1, Ordering::SeqCst);
    let e = w.assign(PodRequest::new(key("lost"))).unwrap_err();
    assert!(matches!(e, WriteThroughError::Persist(_)), "{e}");
    assert_eq!(pods(), before + 1, "the failed assignment was undone");
    fail.store(1, Ordering::SeqCst);
    assert!(w.release(&key("kept")).is_err());
    assert!(
        w.node().pod(&key("kept")).is_some(),
        "the failed release was undone"
    );
    let released = w.release(&key("kept")).unwrap();
    assert!(released.device_number.is_some());
    // Every successful change reached the store, the failed ones did not.
    assert_eq!(written.lock().unwrap().len(), 3);
    let last = written.lock().unwrap().last().unwrap().clone();
    assert_eq!(last, w.node().checkpoint(None));
}
