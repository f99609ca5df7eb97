//! Node scenarios from docs/rules.md, "Instance limits and slots" and "Pods and addresses": slots, attachments, packing, idempotency, cooldown,
//! removal rules, IPv6.

use pdipam::{
    limits::InstanceLimits, AddressMode, Clock, InterfaceFlags, InterfaceSpec, IpFamily,
    ManualClock, Node, NodeConfig, NodeError, PodInfo, PodKey, PodRequest, Timestamp,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
        1_700_000_000_000_000_000,
    )))
}

pub(crate) fn node_with(t: &str, config: NodeConfig, clock: &Arc<ManualClock>) -> Node {
    Node::with_clock(
        InstanceLimits::lookup(t).unwrap().clone(),
        config,
        clock.clone(),
    )
}

pub(crate) fn iface(node: &Node, id: &str, dev: u32, primary: &str) {
    node.attach_interface(InterfaceSpec::new(id, dev, primary.parse().unwrap()).flags(
        InterfaceFlags {
            primary: dev == 0,
            ..Default::default()
        },
    ))
    .unwrap();
}

fn key(c: &str) -> PodKey {
    PodKey::new("aws-cni", c, "eth0")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn assign(node: &Node, c: &str) -> String {
    let a = node.assign(PodRequest::new(key(c))).unwrap();
    node.verify().unwrap();
    a.address.to_string()
}

#[test]
fn slots_count_the_primary_address_and_both_kinds() {
    let c = clock();
    let node = node_with("c5.large", NodeConfig::default(), &c); // 3 interfaces x 10 slots
    iface(&node, "eni-0", 0, "10.0.0.10");
    for i in 0..8 {
        node.attach_prefix("eni-0", format!("10.0.{}.0/28", i + 1).parse().unwrap())
            .unwrap();
    }
    node.attach_secondary("eni-0", ip("10.0.0.11")).unwrap(); // the 10th slot
    let e = node
        .attach_prefix("eni-0", "10.0.9.0/28".parse().unwrap())
        .unwrap_err();
    assert!(matches!(e, NodeError::NoFreeSlot { slots: 10, .. }), "{e}");
    let snap = node.snapshot();
    assert_eq!(snap.interfaces[0].slots_used(IpFamily::V4), 10);
    // Only prefixes serve pods in prefix mode: 8 x 16.
    assert_eq!(snap.total(), 128);
    // Capacity counts both kinds, serving or not.
    let cap = snap.capacity();
    assert_eq!(
        cap,
        pdipam::Capacity {
            prefixes: 8,
            prefix_addresses: 128,
            secondary_addresses: 1,
        }
    );
    assert_eq!(cap.addresses(), 129);
    node.verify().unwrap();
}

/// The small API gaps: limits looked up go into a node as they are (no clone), and a release
/// says which interface it freed from, by device number as an assignment does.
#[test]
fn a_node_takes_looked_up_limits_and_a_release_names_its_interface() {
    let limits = InstanceLimits::lookup("m5.large").unwrap();
    let node = Node::new(limits, NodeConfig::default());
    assert!(
        std::ptr::eq(node.limits(), limits),
        "the table's row, not a copy"
    );
    let owned = Node::new(limits.clone(), NodeConfig::default());
    assert_eq!(owned.limits(), limits);
    iface(&node, "eni-0", 0, "10.0.0.10");
    iface(&node, "eni-1", 1, "10.0.0.11");
    node.attach_prefix("eni-1", "10.0.2.0/28".parse().unwrap())
        .unwrap();
    let a = node.assign(PodRequest::new(key("c1"))).unwrap();
    assert_eq!(a.device_number, 1);
    let r = node.release(&key("c1")).unwrap();
    assert_eq!(r.device_number, Some(1));
    assert_eq!(r.address, a.address);
    // A quarantined pod's block is on no interface.
    node.assign(PodRequest::new(key("c2"))).unwrap();
    let held = node.pod(&key("c2")).unwrap();
    node.remove_block("10.0.2.0/28".parse().unwrap(), true)
        .unwrap();
    node.quarantine(held).unwrap();
    let q = node.release(&key("c2")).unwrap();
    assert_eq!(q.device_number, None);
    node.verify().unwrap();
}

#[test]
fn bad_attachments_are_typed_errors_and_change_nothing() {
    let c = clock();
    let node = node_with("t3.small", NodeConfig::default(), &c); // 3 interfaces x 4 slots
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    let before = node.snapshot();
    let cases: Vec<(Result<(), NodeError>, &str)> = vec![
        (
            node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap()),
            "already in data store",
        ),
        (
            node.attach_prefix("eni-0", "10.0.1.0/27".parse().unwrap()),
            "wrong length",
        ),
        (
            node.attach_prefix("eni-0", "10.0.2.1/28".parse().unwrap()),
            "not aligned",
        ),
        (
            node.attach_prefix("eni-9", "10.0.3.0/28".parse().unwrap()),
            "unknown interface eni-9",
        ),
        (
            node.attach_secondary("eni-0", ip("10.0.1.5")),
            "overlaps 10.0.1.0/28",
        ),
        (
            node.attach_secondary("eni-0", ip("10.0.0.10")),
            "overlaps 10.0.0.10/32",
        ),
        (
            node.attach_interface(
                InterfaceSpec::new("eni-0", 1, ip("10.0.0.20")).flags(Default::default()),
            ),
            "already attached",
        ),
        (
            node.attach_interface(
                InterfaceSpec::new("eni-1", 0, ip("10.0.0.20")).flags(Default::default()),
            ),
            "device number 0",
        ),
    ];
    for (r, text) in cases {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(text), "{e:?} lacks {text:?}");
    }
    iface(&node, "eni-1", 1, "10.0.0.20");
    iface(&node, "eni-2", 2, "10.0.0.30");
    let e = node
        .attach_interface(InterfaceSpec::new("eni-3", 3, ip("10.0.0.40")).flags(Default::default()))
        .unwrap_err();
    assert!(matches!(e, NodeError::TooManyInterfaces { limit: 3, .. }));
    assert_eq!(node.snapshot().interfaces[0], before.interfaces[0]);
    node.verify().unwrap();
    let old = node_with("m1.large", NodeConfig::default(), &c); // no IPv6 slots
    iface(&old, "eni-0", 0, "10.0.0.10");
    let e = old
        .attach_prefix("eni-0", "2001:db8::/80".parse().unwrap())
        .unwrap_err();
    assert!(matches!(e, NodeError::Ipv6Unsupported { .. }), "{e}");
}

#[test]
fn packing_is_deterministic_and_keys_are_idempotent() {
    let c = clock();
    let node = node_with("m5.large", NodeConfig::default(), &c);
    iface(&node, "eni-1", 1, "10.0.0.20");
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_prefix("eni-1", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    node.attach_prefix("eni-0", "10.0.2.16/28".parse().unwrap())
        .unwrap();
    node.attach_prefix("eni-0", "10.0.2.0/28".parse().unwrap())
        .unwrap();
    // Device 0 first; among its prefixes the most used, ties to the lowest CIDR.
    assert_eq!(assign(&node, "a"), "10.0.2.0");
    assert_eq!(assign(&node, "b"), "10.0.2.1");
    // Idempotent: the same key gets the same address, nothing changes.
    let again = node.assign(PodRequest::new(key("a"))).unwrap();
    assert!(again.existing);
    assert_eq!(again.address, ip("10.0.2.0"));
    assert_eq!(node.pod_count(), 2);
    // Make the second prefix the most used one: pods go there next.
    for i in 0..3 {
        node.assign_address(
            PodRequest::new(key(&format!("x{i}"))),
            ip(&format!("10.0.2.{}", 16 + i)),
            c.now_ts(),
        )
        .unwrap();
    }
    assert_eq!(assign(&node, "c"), "10.0.2.19");
    // Fill device 0 completely, then device 1 serves.
    for i in 0..26 {
        assign(&node, &format!("fill{i}"));
    }
    assert_eq!(assign(&node, "d"), "10.0.1.0");
    assert_eq!(node.pod(&key("d")).unwrap().interface_id.as_ref(), "eni-1");
    node.verify().unwrap();
}

#[test]
fn keys_sharing_a_container_id_are_separate_pods() {
    // A multi-homed pod: one sandbox, several networks and interfaces. Only the container id is
    // hashed, so these keys share a hash; equality must still keep them apart.
    let c = clock();
    let node = node_with("m5.large", NodeConfig::default(), &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_prefix("eni-0", "10.0.2.0/28".parse().unwrap())
        .unwrap();
    let keys = [
        PodKey::new("aws-cni", "sandbox", "eth0"),
        PodKey::new("aws-cni", "sandbox", "net1"),
        PodKey::new("macvlan", "sandbox", "eth0"),
        PodKey::new("aws-cn", "isandbox", "eth0"),
    ];
    let got: Vec<IpAddr> = keys
        .iter()
        .map(|k| node.assign(PodRequest::new(k.clone())).unwrap().address)
        .collect();
    assert_eq!(
        got,
        ["10.0.2.0", "10.0.2.1", "10.0.2.2", "10.0.2.3"].map(ip)
    );
    for (k, a) in keys.iter().zip(&got) {
        let again = node.assign(PodRequest::new(k.clone())).unwrap();
        assert!(again.existing);
        assert_eq!(again.address, *a);
    }
    assert_eq!(
        node.release_parts("aws-cni", "sandbox", "net1")
            .unwrap()
            .address,
        got[1]
    );
    assert!(node.pod(&keys[1]).is_none());
    for k in [&keys[0], &keys[2], &keys[3]] {
        assert!(node.pod(k).is_some(), "{k} was dropped with its neighbour");
    }
    assert!(matches!(
        node.release(&keys[1]),
        Err(NodeError::UnknownPod { .. })
    ));
    node.verify().unwrap();
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}
impl NowTs for Arc<ManualClock> {
    fn now_ts(&self) -> Timestamp {
        use pdipam::Clock;
        self.now()
    }
}

#[test]
fn cooldown_blocks_reuse_counts_as_unavailable_and_blocks_removal() {
    let c = clock();
    let node = node_with("m5.large", NodeConfig::default(), &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    for i in 0..16 {
        assign(&node, &format!("p{i}"));
    }
    let e = node.assign(PodRequest::new(key("late"))).unwrap_err();
    assert!(
        e.to_string().contains("no available IP/Prefix addresses"),
        "{e}"
    );
    let r = node.release(&key("p3")).unwrap();
    assert_eq!(r.address, ip("10.0.1.3"));
    let snap = node.snapshot();
    assert_eq!(
        (
            snap.total(),
            snap.assigned(),
            snap.cooling(),
            snap.available()
        ),
        (16, 15, 1, 0)
    );
    match node.assign(PodRequest::new(key("late"))).unwrap_err() {
        NodeError::NoAvailableAddresses { cooling, .. } => assert_eq!(cooling, 1),
        other => panic!("{other}"),
    }
    c.advance(Duration::from_secs(29));
    assert!(node.assign(PodRequest::new(key("late"))).is_err());
    // Exactly the cooldown since the release: still cooling (inclusive, as ipamd compares).
    c.advance(Duration::from_secs(1));
    assert!(node.assign(PodRequest::new(key("late"))).is_err());
    c.advance(Duration::from_nanos(1));
    assert_eq!(assign(&node, "late"), "10.0.1.3");
    // A prefix holding only cooling addresses may not be released.
    for i in 0..16 {
        let k = if i == 3 {
            "late".to_string()
        } else {
            format!("p{i}")
        };
        node.release(&key(&k)).unwrap();
    }
    let e = node
        .remove_block("10.0.1.0/28".parse().unwrap(), false)
        .unwrap_err();
    assert!(matches!(e, NodeError::Cooling { .. }), "{e}");
    c.advance(Duration::from_secs(30) + Duration::from_nanos(1));
    assert_eq!(
        node.remove_block("10.0.1.0/28".parse().unwrap(), false)
            .unwrap(),
        vec![]
    );
    node.verify().unwrap();
}

/// A manual clock that reports a coarse clock's tick as its resolution.
#[derive(Debug)]
struct TickingClock(Arc<ManualClock>, Duration);

impl pdipam::Clock for TickingClock {
    fn now(&self) -> Timestamp {
        self.0.now_ts()
    }
    fn resolution(&self) -> Duration {
        self.1
    }
}

#[test]
fn a_coarse_clock_lengthens_the_cooldown_by_its_tick_and_checkpoints_keep_release_times() {
    let c = clock();
    let tick = Duration::from_millis(4);
    let node = Node::with_clock(
        InstanceLimits::lookup("m5.large").unwrap().clone(),
        NodeConfig::default(),
        Arc::new(TickingClock(c.clone(), tick)),
    );
    assert_eq!(
        node.effective_cooldown(),
        Duration::from_secs(30) + tick + Duration::from_nanos(1)
    );
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    assert_eq!(assign(&node, "a"), "10.0.1.0");
    let released_at = c.now_ts();
    node.release(&key("a")).unwrap();
    // Thirty seconds on this clock may be a tick less in truth: .0 still rests.
    c.advance(Duration::from_secs(30));
    assert_eq!(assign(&node, "b"), "10.0.1.1");
    // A checkpoint records the release time itself, not one shifted by the tick.
    let cp = node.checkpoint(None);
    assert_eq!(cp.cooling.len(), 1);
    assert_eq!(cp.cooling[0].released_at, released_at);
    c.advance(tick + Duration::from_nanos(1));
    assert_eq!(assign(&node, "c"), "10.0.1.0");
    // Without a cooldown there is nothing to lengthen.
    let off = Node::with_clock(
        InstanceLimits::lookup("m5.large").unwrap().clone(),
        NodeConfig::new().cooldown(Duration::ZERO),
        Arc::new(TickingClock(c.clone(), tick)),
    );
    assert_eq!(off.effective_cooldown(), Duration::ZERO);
}

#[test]
fn unknown_release_and_removals_holding_pods() {
    let c = clock();
    let node = node_with("m5.large", NodeConfig::default(), &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    iface(&node, "eni-1", 1, "10.0.0.20");
    node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    node.attach_prefix("eni-1", "10.0.2.0/28".parse().unwrap())
        .unwrap();
    let e = node.release(&key("ghost")).unwrap_err();
    assert_eq!(e.to_string(), "datastore: unknown pod aws-cni/ghost/eth0");
    assign(&node, "a");
    node.assign_address(PodRequest::new(key("b")), ip("10.0.2.7"), c.now_ts())
        .unwrap();
    let e = node
        .remove_block("10.0.1.0/28".parse().unwrap(), false)
        .unwrap_err();
    assert!(
        e.to_string().contains("IP is used and can not be deleted"),
        "{e}"
    );
    let e = node.remove_interface("eni-1", false).unwrap_err();
    assert!(
        e.to_string().contains("ENI is used and can not be deleted"),
        "{e}"
    );
    assert!(matches!(
        node.remove_interface("eni-0", false),
        Err(NodeError::PrimaryInterface { .. })
    ));
    node.verify().unwrap();
    assert_eq!(
        node.remove_interface("eni-1", true).unwrap(),
        vec![key("b")]
    );
    assert_eq!(
        node.remove_block("10.0.1.0/28".parse().unwrap(), true)
            .unwrap(),
        vec![key("a")]
    );
    assert_eq!(node.pod_count(), 0);
    assert!(node.pod(&key("a")).is_none());
    assert!(matches!(
        node.release(&key("a")),
        Err(NodeError::UnknownPod { .. })
    ));
    node.verify().unwrap();
}

#[test]
fn secondary_mode_never_hands_out_the_primary_address() {
    let c = clock();
    let cfg = NodeConfig::new().mode(AddressMode::Secondary);
    let node = node_with("t3.small", cfg, &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_secondary("eni-0", ip("10.0.0.12")).unwrap();
    node.attach_secondary("eni-0", ip("10.0.0.11")).unwrap();
    node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap(); // not serving here
    assert_eq!(assign(&node, "a"), "10.0.0.11");
    assert_eq!(assign(&node, "b"), "10.0.0.12");
    assert!(node.assign(PodRequest::new(key("c"))).is_err());
    let a = node.pod(&key("a")).unwrap();
    assert_eq!(a.block, "10.0.0.11/32".parse().unwrap());
    node.verify().unwrap();
}

#[test]
fn custom_networking_leaves_the_primary_interface_alone() {
    let c = clock();
    let cfg = NodeConfig::new()
        .custom_networking(true)
        .cooldown(Duration::ZERO);
    let node = node_with("m5.large", cfg.clone(), &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    iface(&node, "eni-1", 1, "100.64.0.10");
    node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    node.attach_prefix("eni-1", "100.64.1.0/28".parse().unwrap())
        .unwrap();
    assert_eq!(assign(&node, "a"), "100.64.1.0");
    node.release(&key("a")).unwrap();
    assert_eq!(
        assign(&node, "b"),
        "100.64.1.0",
        "no cooldown: reused at once"
    );
    assert_eq!(node.snapshot().total(), 16);
    // Either mark is enough: device 0 without the primary flag, or the flag on another device.
    for (dev, primary) in [(0, false), (1, true)] {
        let node = node_with("m5.large", cfg.clone(), &c);
        node.attach_interface(
            InterfaceSpec::new("eni-p", dev, "10.0.0.10".parse().unwrap()).flags(InterfaceFlags {
                primary,
                ..Default::default()
            }),
        )
        .unwrap();
        node.attach_prefix("eni-p", "10.0.1.0/28".parse().unwrap())
            .unwrap();
        assert_eq!(
            node.snapshot().total(),
            0,
            "device {dev}, primary {primary}"
        );
        assert!(matches!(
            node.assign(PodRequest::new(key("x"))).unwrap_err(),
            NodeError::NoAvailableAddresses { .. }
        ));
    }
}

#[test]
fn ipv6_pods_come_from_the_80() {
    let c = clock();
    let cfg = NodeConfig::new()
        .family(IpFamily::V6)
        .ipv6_prefix_capacity(64);
    let node = node_with("m5.large", cfg, &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_prefix("eni-0", "2600:1f14:abc:de00:1234::/80".parse().unwrap())
        .unwrap();
    assert_eq!(assign(&node, "a"), "2600:1f14:abc:de00:1234::");
    assert_eq!(assign(&node, "b"), "2600:1f14:abc:de00:1234::1");
    for i in 0..62 {
        assign(&node, &format!("v{i}"));
    }
    assert!(node.assign(PodRequest::new(key("full"))).is_err());
    let e = node.attach_prefix("eni-0", "2600:1f14:abc:de00:1234:1::/96".parse().unwrap());
    assert!(matches!(
        e,
        Err(NodeError::PrefixLength { expected: 80, .. })
    ));
    assert_eq!(node.snapshot().total(), 64);
}

#[test]
fn assign_address_checks_what_it_is_given() {
    let c = clock();
    let node = node_with("m5.large", NodeConfig::default(), &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    let t = c.now_ts();
    node.assign_address(PodRequest::new(key("a")), ip("10.0.1.5"), t)
        .unwrap();
    let cases = [
        (
            node.assign_address(PodRequest::new(key("a")), ip("10.0.1.6"), t),
            "already holds 10.0.1.5",
        ),
        (
            node.assign_address(PodRequest::new(key("b")), ip("10.0.1.5"), t),
            "IP is used",
        ),
        (
            node.assign_address(PodRequest::new(key("b")), ip("10.0.0.10"), t),
            "not attached",
        ),
        (
            node.assign_address(PodRequest::new(key("b")), ip("10.0.9.1"), t),
            "not attached",
        ),
        (
            node.assign_address(
                PodRequest::new(PodKey::new("n", "", "eth0")),
                ip("10.0.1.1"),
                t,
            ),
            "empty container id",
        ),
    ];
    for (r, text) in cases {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(text), "{e:?} lacks {text:?}");
    }
    assert!(
        node.assign_address(PodRequest::new(key("a")), ip("10.0.1.5"), t)
            .unwrap()
            .existing
    );
    node.mark_cooling(ip("10.0.1.6"), t).unwrap();
    assert!(matches!(
        node.assign_address(PodRequest::new(key("b")), ip("10.0.1.6"), t),
        Err(NodeError::AddressCooling { .. })
    ));
    assert!(node.mark_cooling(ip("10.0.1.5"), t).is_err());
    node.verify().unwrap();
}

/// A quarantine entry the way a restore makes one: `block` and `interface_id` are replaced.
fn parked(c: &str, address: &str, clock: &ManualClock) -> PodInfo {
    PodInfo {
        key: key(c),
        address: ip(address),
        block: "192.0.2.0/24".parse().unwrap(),
        interface_id: Arc::from("eni-elsewhere"),
        metadata: Default::default(),
        assigned_at: clock.now(),
    }
}

#[test]
fn a_quarantined_key_holds_its_address_until_attached_released_or_dropped() {
    let c = clock();
    let node = node_with("c5.large", NodeConfig::default(), &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    assert_eq!(assign(&node, "a"), "10.0.1.0");
    let refused = |r: Result<(), NodeError>| {
        let e = r.unwrap_err();
        node.verify().unwrap();
        e
    };
    // The key holds an address already: assigned, then quarantined.
    assert!(matches!(
        refused(node.quarantine(parked("a", "10.0.2.5", &c))),
        NodeError::KeyHoldsOther { held, .. } if held == ip("10.0.1.0")
    ));
    node.quarantine(parked("q1", "10.0.2.5", &c)).unwrap();
    node.quarantine(parked("q2", "10.0.2.6", &c)).unwrap();
    node.verify().unwrap();
    let q = node.quarantined();
    assert_eq!(
        q.iter()
            .map(|q| (q.key.container_id(), q.block.to_string(), &*q.interface_id))
            .collect::<Vec<_>>(),
        [
            ("q1", "10.0.2.5/32".into(), ""),
            ("q2", "10.0.2.6/32".into(), "")
        ]
    );
    assert!(matches!(
        refused(node.quarantine(parked("q1", "10.0.2.7", &c))),
        NodeError::KeyHoldsOther { held, .. } if held == ip("10.0.2.5")
    ));
    // The address is another quarantined pod's, or lies in an attached block.
    assert!(matches!(
        refused(node.quarantine(parked("q3", "10.0.2.5", &c))),
        NodeError::AddressInUse { address } if address == ip("10.0.2.5")
    ));
    assert!(matches!(
        refused(node.quarantine(parked("q3", "10.0.1.5", &c))),
        NodeError::AlreadyAttached { existing, interface, .. }
            if existing.to_string() == "10.0.1.0/28" && interface == "eni-0"
    ));
    assert!(matches!(
        refused(node.quarantine(parked("", "10.0.2.8", &c))),
        NodeError::InvalidKey { .. }
    ));
    assert_eq!(node.quarantined(), q, "refusals change nothing");
    // A quarantined key gets no second address, automatic or given.
    assert!(matches!(
        node.assign(PodRequest::new(key("q1"))).unwrap_err(),
        NodeError::KeyHoldsOther { held, .. } if held == ip("10.0.2.5")
    ));
    assert!(matches!(
        node.assign_address(PodRequest::new(key("q1")), ip("10.0.1.3"), c.now()).unwrap_err(),
        NodeError::KeyHoldsOther { held, .. } if held == ip("10.0.2.5")
    ));
    assert!(matches!(
        node.assign_address(PodRequest::new(key("q1")), ip("10.0.2.5"), c.now())
            .unwrap_err(),
        NodeError::NotAttached { .. }
    ));
    node.verify().unwrap();
    // Dropping one entry returns that entry, not the first.
    assert_eq!(
        node.release_quarantined(&key("q2")).unwrap().address,
        ip("10.0.2.6")
    );
    assert!(matches!(
        node.release_quarantined(&key("q2")).unwrap_err(),
        NodeError::UnknownPod { .. }
    ));
    // A CNI DEL of a quarantined pod ends it: attaching its block later gives it nothing back.
    let r = node.release(&key("q1")).unwrap();
    assert_eq!(
        (r.address, r.block.to_string()),
        (ip("10.0.2.5"), "10.0.2.5/32".into())
    );
    assert!(node.quarantined().is_empty());
    node.quarantine(parked("q4", "10.0.2.9", &c)).unwrap();
    node.attach_prefix("eni-0", "10.0.2.0/28".parse().unwrap())
        .unwrap();
    assert!(node.pod(&key("q1")).is_none());
    assert_eq!(node.pod(&key("q4")).unwrap().address, ip("10.0.2.9"));
    assert!(node.quarantined().is_empty());
    node.verify().unwrap();
}

#[test]
fn snapshot_counts_add_up_per_block_interface_and_node() {
    // Numbers chosen so that no two of the counts coincide: a mistaken sum or difference in
    // any accessor shows.
    let c = clock();
    let node = node_with("m5.large", NodeConfig::default(), &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    iface(&node, "eni-1", 1, "10.0.0.20");
    for (eni, prefix) in [
        ("eni-0", "10.0.1.0/28"),
        ("eni-0", "10.0.2.0/28"),
        ("eni-1", "10.0.3.0/28"),
    ] {
        node.attach_prefix(eni, prefix.parse().unwrap()).unwrap();
    }
    for i in 0..21 {
        assign(&node, &format!("p{i}"));
    }
    let snap = node.snapshot();
    let in_block = |cidr: &str| {
        snap.interfaces
            .iter()
            .flat_map(|i| &i.blocks)
            .find(|b| b.cidr == cidr.parse::<ipnet::IpNet>().unwrap())
            .unwrap()
            .assigned
    };
    // Packing fills one block before it starts the next.
    let full = ["10.0.1.0/28", "10.0.2.0/28", "10.0.3.0/28"]
        .into_iter()
        .find(|b| in_block(b) == 16)
        .expect("one block full");
    let partial = ["10.0.1.0/28", "10.0.2.0/28", "10.0.3.0/28"]
        .into_iter()
        .find(|b| in_block(b) == 5)
        .expect("one block with five pods");
    // Three pods of the partial block leave: two assigned, three cooling, eleven available.
    let mut left = 0;
    for pod in node.pods() {
        if left < 3 && pod.block == partial.parse::<ipnet::IpNet>().unwrap() {
            node.release(&pod.key).unwrap();
            left += 1;
        }
    }
    let snap = node.snapshot();
    let block = snap
        .interfaces
        .iter()
        .flat_map(|i| &i.blocks)
        .find(|b| b.cidr == partial.parse::<ipnet::IpNet>().unwrap())
        .unwrap();
    assert_eq!(
        (
            block.capacity,
            block.assigned,
            block.cooling.len(),
            block.available()
        ),
        (16, 2, 3, 11)
    );
    assert!(!block.is_empty());
    let owner = snap
        .interfaces
        .iter()
        .find(|i| i.blocks.iter().any(|b| b.cidr == block.cidr))
        .unwrap();
    let full_here = owner
        .blocks
        .iter()
        .any(|b| b.cidr == full.parse::<ipnet::IpNet>().unwrap());
    assert_eq!(
        (owner.assigned(), owner.cooling()),
        (if full_here { 18 } else { 2 }, 3)
    );
    assert_eq!(
        snap.interfaces.iter().map(|i| i.assigned()).sum::<u32>(),
        18
    );
    assert_eq!(
        (
            snap.total(),
            snap.assigned(),
            snap.cooling(),
            snap.available(),
            snap.empty_blocks()
        ),
        (48, 18, 3, 27, 1)
    );
    node.verify().unwrap();
}

#[test]
fn a_wall_clock_set_back_never_shortens_a_cooldown() {
    let c = clock();
    let secondary = NodeConfig::new().mode(AddressMode::Secondary);
    let node = node_with("m5.large", secondary, &c);
    iface(&node, "eni-0", 0, "10.0.0.10");
    node.attach_secondary("eni-0", ip("10.0.0.11")).unwrap();
    assert_eq!(assign(&node, "a"), "10.0.0.11");
    let released_at = c.now_ts();
    node.release(&key("a")).unwrap();
    // NTP steps the wall clock back an hour: the address stays cooling.
    c.set(Timestamp::from_unix_nanos(
        released_at.as_unix_nanos() - 3_600_000_000_000,
    ));
    assert!(matches!(
        node.assign(PodRequest::new(key("b"))),
        Err(NodeError::NoAvailableAddresses { cooling: 1, .. })
    ));
    c.set(released_at.saturating_add(Duration::from_secs(29)));
    assert!(node.assign(PodRequest::new(key("b"))).is_err());
    c.set(released_at.saturating_add(Duration::from_secs(30)));
    assert!(node.assign(PodRequest::new(key("b"))).is_err(), "inclusive");
    c.set(released_at.saturating_add(Duration::from_secs(30) + Duration::from_nanos(1)));
    assert_eq!(assign(&node, "b"), "10.0.0.11");
    node.verify().unwrap();
}

/// docs/rules.md, "IPv6": IPv6 pod addresses come from delegated /80s only. An IPv6 secondary
/// address is refused, and an IPv6 node in secondary-IP mode assigns nothing, in ipamd's words.
#[test]
fn ipv6_needs_prefix_delegation_in_ipamds_words() {
    let c = clock();
    let config = NodeConfig::new()
        .family(IpFamily::V6)
        .mode(AddressMode::Secondary);
    let node = node_with("m5.large", config, &c);
    iface(&node, "eni-0", 0, "2600:1f14::10");
    let e = node
        .attach_secondary("eni-0", ip("2600:1f14::11"))
        .unwrap_err();
    assert!(matches!(e, NodeError::Ipv6NeedsPrefixMode { .. }), "{e}");
    assert!(
        e.to_string().starts_with("V6 is only supported in PD mode"),
        "{e}"
    );
    let e = node.assign(PodRequest::new(key("c1"))).unwrap_err();
    assert!(
        e.to_string().starts_with("V6 is only supported in PD mode"),
        "{e}"
    );
    node.verify().unwrap();
    // In prefix mode the same node serves pods from a /80.
    let node = node_with("m5.large", NodeConfig::new().family(IpFamily::V6), &c);
    iface(&node, "eni-0", 0, "2600:1f14::10");
    node.attach_prefix("eni-0", "2600:1f14:0:1::/80".parse().unwrap())
        .unwrap();
    assert!(node.assign(PodRequest::new(key("c1"))).is_ok());
}

/// docs/rules.md, "Instance limits and slots": a `max_eni` below 1 is ignored, as ipamd ignores
/// `MAX_ENI < 1`; from 1 up it caps the instance's interfaces.
#[test]
fn a_max_eni_below_one_is_ignored_as_ipamd_ignores_it() {
    let c = clock();
    let limit =
        |max_eni| node_with("m5.large", NodeConfig::new().max_eni(max_eni), &c).interface_limit();
    assert_eq!(limit(None), 3);
    assert_eq!(limit(Some(0)), 3);
    assert_eq!(limit(Some(1)), 1);
    assert_eq!(limit(Some(2)), 2);
    assert_eq!(limit(Some(9)), 3);
}
