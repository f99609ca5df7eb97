//! `Node::reconcile` against what the cloud reports attached (docs/rules.md, "Reconciling with
//! the cloud"): what appeared is added, what vanished is removed with its pods quarantined,
//! pdipam's own changes of the last minute are held off against stale metadata, and a reconcile
//! racing assignments never gives one address twice.

use crate::node::{clock, node_with};
use ipnet::IpNet;
use pdipam::{
    AddressMode, InterfaceFlags, InterfaceSpec, ManualClock, Node, NodeConfig, NodeError,
    ObservedInterface, PodKey, PodRequest, RECONCILE_COOLDOWN,
};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

fn key(c: &str) -> PodKey {
    PodKey::new("aws-cni", c, "eth0")
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn spec(id: &str, dev: u32, primary: &str) -> InterfaceSpec {
    InterfaceSpec::new(id, dev, ip(primary)).flags(InterfaceFlags {
        primary: dev == 0,
        ..Default::default()
    })
}

/// A prefix-mode m5.large with eni-0 (10.0.0.10) holding 10.0.1.0/28 and eni-1 (10.0.0.20)
/// holding 10.0.2.0/28, attached a minute and a second ago.
fn prefix_node() -> (Node, Arc<ManualClock>) {
    let c = clock();
    let node = node_with("m5.large", NodeConfig::new().mode(AddressMode::Prefix), &c);
    node.attach_interface(spec("eni-0", 0, "10.0.0.10"))
        .unwrap();
    node.attach_interface(spec("eni-1", 1, "10.0.0.20"))
        .unwrap();
    node.attach_prefix("eni-0", net("10.0.1.0/28")).unwrap();
    node.attach_prefix("eni-1", net("10.0.2.0/28")).unwrap();
    c.advance(RECONCILE_COOLDOWN + Duration::from_secs(1));
    (node, c)
}

/// The report matching `prefix_node` as built.
fn as_built() -> Vec<ObservedInterface> {
    vec![
        ObservedInterface::new(spec("eni-0", 0, "10.0.0.10"))
            .secondary_address(ip("10.0.0.10"))
            .prefix(net("10.0.1.0/28")),
        ObservedInterface::new(spec("eni-1", 1, "10.0.0.20")).prefix(net("10.0.2.0/28")),
    ]
}

fn attached(node: &Node) -> Vec<(String, IpNet)> {
    let mut v: Vec<_> = node
        .snapshot()
        .interfaces
        .iter()
        .flat_map(|i| i.blocks.iter().map(|b| (i.id.to_string(), b.cidr)))
        .collect();
    v.sort();
    v
}

/// Fills eni-0's /28 so that the next pod lands on eni-1; returns nothing.
fn fill_first(node: &Node) {
    for i in 0..16 {
        node.assign(PodRequest::new(key(&format!("fill{i}"))))
            .unwrap();
    }
}

#[test]
fn a_node_that_matches_the_report_changes_nothing() {
    let (node, _) = prefix_node();
    let before = attached(&node);
    // The primary address listed among the secondary addresses, as the metadata lists it, is
    // skipped.
    let diff = node.reconcile(&as_built());
    assert!(diff.is_empty(), "{diff:?}");
    assert_eq!(attached(&node), before);
    node.verify().unwrap();
}

#[test]
fn what_appeared_is_added_and_serves_pods() {
    let (node, _) = prefix_node();
    let mut report = as_built();
    report[1].prefixes.push(net("10.0.3.0/28"));
    report.push(
        ObservedInterface::new(spec("eni-2", 2, "10.0.0.30"))
            .prefix(net("10.0.4.16/28"))
            .secondary_address(ip("10.0.0.31")),
    );
    let diff = node.reconcile(&report);
    assert_eq!(diff.added_interfaces, vec!["eni-2"]);
    let mut added = diff.added_blocks.clone();
    added.sort();
    assert_eq!(
        added,
        vec![
            ("eni-1".to_string(), net("10.0.3.0/28")),
            ("eni-2".to_string(), net("10.0.0.31/32")),
            ("eni-2".to_string(), net("10.0.4.16/28")),
        ]
    );
    assert!(diff.removed_blocks.is_empty() && diff.refused.is_empty());
    node.verify().unwrap();
    // A second reconcile with the same report finds nothing to do.
    assert!(node.reconcile(&report).is_empty());
    let snap = node.snapshot();
    let eni2 = snap.interfaces.iter().find(|i| &*i.id == "eni-2").unwrap();
    assert_eq!(eni2.device_number, 2);
}

#[test]
fn a_vanished_block_quarantines_its_pods_and_its_address_goes_to_no_one_else() {
    let (node, _) = prefix_node();
    fill_first(&node);
    let held = node.assign(PodRequest::new(key("p"))).unwrap();
    assert_eq!(held.address, ip("10.0.2.0"));
    // The cloud no longer reports eni-1's prefix.
    let mut report = as_built();
    report[1].prefixes.clear();
    let diff = node.reconcile(&report);
    assert_eq!(
        diff.removed_blocks,
        vec![("eni-1".to_string(), net("10.0.2.0/28"))]
    );
    assert_eq!(diff.quarantined.len(), 1);
    let q = &diff.quarantined[0];
    assert_eq!((&q.key, q.address), (&key("p"), ip("10.0.2.0")));
    assert_eq!(node.quarantined(), diff.quarantined);
    node.verify().unwrap();
    // The key holds its address: asking again does not hand it another.
    assert!(matches!(
        node.assign(PodRequest::new(key("p"))),
        Err(NodeError::KeyHoldsOther { .. })
    ));
    // The block comes back (as a prefix on eni-1 again): the pod has its address again.
    let diff = node.reconcile(&as_built());
    assert_eq!(diff.reinstated, vec![key("p")]);
    assert!(diff.quarantined.is_empty());
    assert_eq!(node.pod(&key("p")).unwrap().address, ip("10.0.2.0"));
    assert!(node.quarantined().is_empty());
    // A pod asking now does not get 10.0.2.0.
    assert_eq!(
        node.assign(PodRequest::new(key("q"))).unwrap().address,
        ip("10.0.2.1")
    );
    node.verify().unwrap();
}

#[test]
fn a_quarantined_pod_is_released_by_its_key() {
    let (node, _) = prefix_node();
    fill_first(&node);
    node.assign(PodRequest::new(key("p"))).unwrap();
    let mut report = as_built();
    report[1].prefixes.clear();
    node.reconcile(&report);
    let released = node.release(&key("p")).unwrap();
    assert_eq!(released.address, ip("10.0.2.0"));
    assert_eq!(released.device_number, None);
    assert!(node.quarantined().is_empty());
    node.verify().unwrap();
}

#[test]
fn a_vanished_interface_goes_with_its_blocks_and_its_pods_are_quarantined() {
    let (node, _) = prefix_node();
    fill_first(&node);
    node.assign(PodRequest::new(key("p"))).unwrap();
    node.assign(PodRequest::new(key("q"))).unwrap();
    let diff = node.reconcile(&as_built()[..1]);
    assert_eq!(diff.removed_interfaces, vec!["eni-1"]);
    assert!(diff.removed_blocks.is_empty(), "listed with the interface");
    let keys: Vec<_> = diff.quarantined.iter().map(|q| q.key.clone()).collect();
    assert_eq!(keys, vec![key("p"), key("q")]);
    assert!(diff.quarantined.iter().all(|q| q.interface_id.is_empty()));
    assert_eq!(attached(&node), vec![("eni-0".into(), net("10.0.1.0/28"))]);
    node.verify().unwrap();
}

#[test]
fn a_block_moved_to_another_interface_keeps_its_pods() {
    let c = clock();
    let node = node_with(
        "m5.large",
        NodeConfig::new().mode(AddressMode::Secondary),
        &c,
    );
    node.attach_interface(spec("eni-0", 0, "10.0.0.10"))
        .unwrap();
    node.attach_interface(spec("eni-1", 1, "10.0.0.20"))
        .unwrap();
    node.attach_secondary("eni-1", ip("10.0.0.21")).unwrap();
    node.assign(PodRequest::new(key("p"))).unwrap();
    c.advance(RECONCILE_COOLDOWN);
    // Reassigned in the cloud (AllowReassignment) from eni-1 to eni-0.
    let report = vec![
        ObservedInterface::new(spec("eni-0", 0, "10.0.0.10")).secondary_address(ip("10.0.0.21")),
        ObservedInterface::new(spec("eni-1", 1, "10.0.0.20")),
    ];
    let diff = node.reconcile(&report);
    assert_eq!(
        diff.removed_blocks,
        vec![("eni-1".to_string(), net("10.0.0.21/32"))]
    );
    assert_eq!(
        diff.added_blocks,
        vec![("eni-0".to_string(), net("10.0.0.21/32"))]
    );
    assert_eq!(diff.reinstated, vec![key("p")]);
    assert!(diff.quarantined.is_empty());
    let p = node.pod(&key("p")).unwrap();
    assert_eq!((p.address, &*p.interface_id), (ip("10.0.0.21"), "eni-0"));
    node.verify().unwrap();
}

#[test]
fn what_pdipam_just_attached_is_kept_until_the_cloud_reports_it() {
    let (node, c) = prefix_node();
    node.attach_prefix("eni-1", net("10.0.3.0/28")).unwrap();
    node.attach_interface(spec("eni-2", 2, "10.0.0.30"))
        .unwrap();
    c.advance(RECONCILE_COOLDOWN - Duration::from_secs(1));
    // The metadata does not show them yet.
    let diff = node.reconcile(&as_built());
    let mut waiting = diff.awaiting_report.clone();
    waiting.sort();
    assert_eq!(
        waiting,
        vec![
            ("eni-1".to_string(), Some(net("10.0.3.0/28"))),
            ("eni-2".to_string(), None)
        ]
    );
    assert!(diff.removed_blocks.is_empty() && diff.removed_interfaces.is_empty());
    assert_eq!(attached(&node).len(), 3);
    // A minute after the attachment, a report still without them is believed.
    c.advance(Duration::from_secs(1));
    let diff = node.reconcile(&as_built());
    assert_eq!(
        diff.removed_blocks,
        vec![("eni-1".to_string(), net("10.0.3.0/28"))]
    );
    assert_eq!(diff.removed_interfaces, vec!["eni-2"]);
    node.verify().unwrap();
}

#[test]
fn what_pdipam_just_gave_back_is_not_added_again_for_a_minute() {
    let (node, c) = prefix_node();
    node.remove_block(net("10.0.2.0/28"), false).unwrap();
    node.attach_interface(spec("eni-2", 2, "10.0.0.30"))
        .unwrap();
    node.attach_prefix("eni-2", net("10.0.4.0/28")).unwrap();
    c.advance(RECONCILE_COOLDOWN);
    node.remove_interface("eni-2", false).unwrap();
    c.advance(RECONCILE_COOLDOWN - Duration::from_secs(1));
    // Stale metadata still shows both.
    let mut report = as_built();
    report.push(ObservedInterface::new(spec("eni-2", 2, "10.0.0.30")).prefix(net("10.0.4.0/28")));
    let diff = node.reconcile(&report);
    let mut ignored = diff.ignored_given_back.clone();
    ignored.sort();
    assert_eq!(
        ignored,
        vec![("eni-2".to_string(), None)],
        "10.0.2.0/28 was given back more than a minute ago"
    );
    assert_eq!(
        diff.added_blocks,
        vec![("eni-1".to_string(), net("10.0.2.0/28"))]
    );
    assert!(diff.added_interfaces.is_empty());
    // A minute after its release, an interface still reported is believed.
    c.advance(Duration::from_secs(1));
    let diff = node.reconcile(&report);
    assert_eq!(diff.added_interfaces, vec!["eni-2"]);
    assert_eq!(
        diff.added_blocks,
        vec![("eni-2".to_string(), net("10.0.4.0/28"))]
    );
    node.verify().unwrap();
}

#[test]
fn a_block_given_back_and_still_reported_is_ignored() {
    let (node, c) = prefix_node();
    node.remove_block(net("10.0.2.0/28"), false).unwrap();
    c.advance(Duration::from_secs(30));
    let diff = node.reconcile(&as_built());
    assert_eq!(
        diff.ignored_given_back,
        vec![("eni-1".to_string(), Some(net("10.0.2.0/28")))]
    );
    assert!(diff.added_blocks.is_empty());
    assert_eq!(attached(&node).len(), 1);
}

#[test]
fn what_cannot_be_taken_is_refused_by_name_and_the_rest_applies() {
    let (node, _) = prefix_node();
    let mut report = as_built();
    report[0].prefixes.push(net("10.0.5.8/28"));
    report[1].prefixes.push(net("10.0.1.0/28"));
    report[1].prefixes.push(net("10.0.6.0/28"));
    report.push(ObservedInterface::new(spec("eni-1", 9, "10.0.0.99")));
    let before = node.snapshot();
    let diff = node.reconcile(&report);
    let refused: Vec<_> = diff
        .refused
        .iter()
        .map(|(i, c, e)| (i.as_str(), *c, e.to_string()))
        .collect();
    assert!(
        refused.contains(&("eni-1", None, "interface eni-1 is already attached".into())),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|(i, c, e)| *i == "eni-0"
            && *c == Some(net("10.0.5.8/28"))
            && e.contains("not aligned")),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|(i, c, e)| *i == "eni-1"
            && *c == Some(net("10.0.1.0/28"))
            && e.contains("eni-0")),
        "{refused:?}"
    );
    assert_eq!(
        diff.added_blocks,
        vec![("eni-1".to_string(), net("10.0.6.0/28"))]
    );
    assert_eq!(before.interfaces.len(), node.snapshot().interfaces.len());
    node.verify().unwrap();
}

#[test]
fn a_report_beyond_the_slots_is_refused_slot_by_slot() {
    let (node, _) = prefix_node();
    // m5.large: 10 slots, the primary address takes one, the /28 another.
    let mut report = as_built();
    for i in 0..9 {
        report[1]
            .prefixes
            .push(net(&format!("10.0.{}.0/28", 10 + i)));
    }
    let diff = node.reconcile(&report);
    assert_eq!(diff.added_blocks.len(), 8);
    assert_eq!(diff.refused.len(), 1);
    assert!(matches!(diff.refused[0].2, NodeError::NoFreeSlot { .. }));
    node.verify().unwrap();
}

#[test]
fn a_reconcile_racing_assignments_never_gives_one_address_twice() {
    let (node, _) = prefix_node();
    let node = Arc::new(node);
    let with_second = as_built();
    let mut without = as_built();
    without[1].prefixes.clear();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let node = node.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let k = key(&format!("w{w}-{}", i % 24));
                    if node.pod(&k).is_some() || node.quarantined().iter().any(|q| q.key == k) {
                        let _ = node.release(&k);
                    } else {
                        let _ = node.assign(PodRequest::new(k));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for round in 0..400 {
        let report = if round % 2 == 0 {
            &without
        } else {
            &with_second
        };
        node.reconcile(report);
        let mut seen = HashSet::new();
        for p in node.pods() {
            assert!(seen.insert(p.address), "{} given twice", p.address);
        }
        for q in node.quarantined() {
            assert!(seen.insert(q.address), "{} given twice", q.address);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    node.verify().unwrap();
}
