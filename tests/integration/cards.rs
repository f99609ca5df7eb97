//! Instances with several network cards (docs/rules.md, "Several network cards"): one node per
//! managed card with its own device numbers and checkpoint, a fixed warm target of one address
//! on later cards, single-address pods from card 0 first, multi-NIC pods on every card or none.

use crate::node::clock;
use pdipam::cards::{card_checkpoint_path, CardError, CardOptions, MultiCardNode};
use pdipam::limits::{max_pods, InstanceLimits, MaxPodsOptions};
use pdipam::persist::NodeCheckpoint;
use pdipam::planner::{plan, Action, WarmSettings};
use pdipam::{
    AddressMode, Clock, InterfaceFlags, InterfaceSpec, ManualClock, NodeConfig, NodeError,
    ObservedInterface, PodKey, PodRequest,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// c6in.32xlarge: two network cards of 8 interfaces, 50 slots each.
const TWO_CARDS: &str = "c6in.32xlarge";

fn key(c: &str) -> PodKey {
    PodKey::new("aws-cni", c, "eth0")
}

fn cards(options: &CardOptions, mode: AddressMode, c: &Arc<ManualClock>) -> MultiCardNode {
    MultiCardNode::with_clock(
        InstanceLimits::lookup(TWO_CARDS).unwrap(),
        NodeConfig::new().mode(mode),
        options,
        c.clone(),
    )
    .unwrap()
}

/// Two cards, each with an interface at device 0 (card 0's the instance's primary) holding
/// one /28: 10.0.1.0/28 on card 0, 10.0.9.0/28 on card 1.
fn two_cards(c: &Arc<ManualClock>) -> MultiCardNode {
    let node = cards(&CardOptions::new().multi_nic(true), AddressMode::Prefix, c);
    let c0 = node.card(0).unwrap();
    c0.attach_interface(
        InterfaceSpec::new("eni-a", 0, "10.0.0.10".parse().unwrap()).flags(InterfaceFlags::PRIMARY),
    )
    .unwrap();
    c0.attach_prefix("eni-a", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    let c1 = node.card(1).unwrap();
    c1.attach_interface(InterfaceSpec::new("eni-b", 0, "10.0.8.10".parse().unwrap()))
        .unwrap();
    c1.attach_prefix("eni-b", "10.0.9.0/28".parse().unwrap())
        .unwrap();
    node
}

#[test]
fn which_cards_are_managed() {
    let c = clock();
    let only_default = cards(&CardOptions::new(), AddressMode::Prefix, &c);
    assert_eq!(
        only_default.cards().map(|(i, _)| i).collect::<Vec<_>>(),
        [0]
    );
    assert_eq!(
        only_default.card(1).unwrap_err(),
        CardError::Unmanaged { card: 1 }
    );
    let e = only_default.card(2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "network card 2 does not exist: c6in.32xlarge has 2 network cards"
    );
    let both = cards(&CardOptions::new().multi_nic(true), AddressMode::Prefix, &c);
    assert_eq!(both.cards().map(|(i, _)| i).collect::<Vec<_>>(), [0, 1]);
    let efa_only = cards(
        &CardOptions::new().multi_nic(true).unmanaged(1),
        AddressMode::Prefix,
        &c,
    );
    assert_eq!(efa_only.cards().count(), 1);
    let limits = InstanceLimits::lookup(TWO_CARDS).unwrap();
    let refused = |o: CardOptions| MultiCardNode::new(limits, NodeConfig::new(), &o).unwrap_err();
    assert_eq!(
        refused(CardOptions::new().multi_nic(true).unmanaged(0)),
        CardError::DefaultCardUnmanaged
    );
    assert!(matches!(
        refused(CardOptions::new().unmanaged(7)),
        CardError::NoSuchCard { card: 7, .. }
    ));
    // One card only: multi-NIC mode manages just it.
    let one = MultiCardNode::new(
        InstanceLimits::lookup("m5.large").unwrap(),
        NodeConfig::new(),
        &CardOptions::new().multi_nic(true),
    )
    .unwrap();
    assert_eq!(one.cards().count(), 1);
}

#[test]
fn interfaces_are_numbered_per_card() {
    let c = clock();
    let node = two_cards(&c);
    // Device 1 on both cards: each card numbers its own interfaces.
    for (card, (id, primary)) in [("eni-a1", "10.0.0.11"), ("eni-b1", "10.0.8.11")]
        .into_iter()
        .enumerate()
    {
        node.card(card as u32)
            .unwrap()
            .attach_interface(InterfaceSpec::new(id, 1, primary.parse().unwrap()))
            .unwrap();
    }
    assert_eq!(
        node.card(1).unwrap().snapshot().interfaces[1].device_number,
        1
    );
    // Within a card, a device number is taken once.
    let dup = node
        .card(1)
        .unwrap()
        .attach_interface(InterfaceSpec::new("eni-x", 1, "10.0.8.12".parse().unwrap()))
        .unwrap_err();
    assert!(matches!(dup, NodeError::DuplicateDeviceNumber { .. }));
    // Each card has the instance's per-card interface limit (8), not all cards' (16).
    assert_eq!(node.card(1).unwrap().interface_limit(), 8);
    node.verify().unwrap();
}

#[test]
fn a_pod_with_one_interface_comes_from_card_0_first() {
    let c = clock();
    let node = two_cards(&c);
    for i in 0..16 {
        let a = node.assign(PodRequest::new(key(&format!("p{i}")))).unwrap();
        assert_eq!(a.card, 0, "card 0 has addresses left");
    }
    // Card 0 is full: the next pod falls back to card 1.
    let late = node.assign(PodRequest::new(key("late"))).unwrap();
    assert_eq!(late.card, 1);
    assert_eq!(late.assignment.address.to_string(), "10.0.9.0");
    assert_eq!(late.assignment.device_number, 0);
    // Card 0 gets room again; asking again for the same key returns its card-1 address.
    node.release(&key("p3")).unwrap();
    c.advance(Duration::from_secs(31));
    let again = node.assign(PodRequest::new(key("late"))).unwrap();
    assert_eq!((again.card, again.assignment.existing), (1, true));
    assert_eq!(again.assignment.address, late.assignment.address);
    // And a new pod comes from card 0 again.
    assert_eq!(node.assign(PodRequest::new(key("new"))).unwrap().card, 0);
    // The release finds it on card 1.
    let rel = node.release(&key("late")).unwrap();
    assert_eq!(rel.len(), 1);
    assert_eq!(rel[0].card, 1);
    assert!(matches!(
        node.release(&key("late")),
        Err(CardError::Node {
            card: 0,
            error: NodeError::UnknownPod { .. }
        })
    ));
    node.verify().unwrap();
}

#[test]
fn no_address_on_any_card_names_card_0() {
    let c = clock();
    let node = cards(&CardOptions::new().multi_nic(true), AddressMode::Prefix, &c);
    let e = node.assign(PodRequest::new(key("p"))).unwrap_err();
    assert!(matches!(
        e,
        CardError::Node {
            card: 0,
            error: NodeError::NoAvailableAddresses { .. }
        }
    ));
}

#[test]
fn a_multi_nic_pod_gets_one_address_per_card_or_none() {
    let c = clock();
    let node = two_cards(&c);
    let got = node
        .assign_multi_nic(PodRequest::new(key("multi")))
        .unwrap();
    let per_card: Vec<_> = got
        .iter()
        .map(|a| (a.card, a.assignment.address.to_string()))
        .collect();
    assert_eq!(
        per_card,
        [(0, "10.0.1.0".to_string()), (1, "10.0.9.0".to_string())]
    );
    for (_, n) in node.cards() {
        assert_eq!(n.pod(&key("multi")).unwrap().metadata.interfaces_count, 2);
    }
    // Repeated: the same addresses.
    let again = node
        .assign_multi_nic(PodRequest::new(key("multi")))
        .unwrap();
    assert!(again.iter().all(|a| a.assignment.existing));
    // Fill card 1: a multi-NIC pod then gets nothing, and keeps nothing on card 0.
    let c1 = node.card(1).unwrap();
    for i in 1..16 {
        c1.assign(PodRequest::new(key(&format!("c1-{i}")))).unwrap();
    }
    let before = node.card(0).unwrap().pod_count();
    let e = node
        .assign_multi_nic(PodRequest::new(key("second")))
        .unwrap_err();
    assert!(matches!(
        e,
        CardError::Node {
            card: 1,
            error: NodeError::NoAvailableAddresses { .. }
        }
    ));
    assert_eq!(node.card(0).unwrap().pod_count(), before);
    assert!(node.held(&key("second")).is_empty());
    // Its release gives back both.
    let rel = node.release(&key("multi")).unwrap();
    assert_eq!(rel.iter().map(|r| r.card).collect::<Vec<_>>(), [0, 1]);
    node.verify().unwrap();
}

#[test]
fn a_multi_nic_pod_needs_multi_nic_mode() {
    let c = clock();
    let node = cards(&CardOptions::new(), AddressMode::Prefix, &c);
    let e = node
        .assign_multi_nic(PodRequest::new(key("multi")))
        .unwrap_err();
    assert!(e
        .to_string()
        .starts_with("enable multi-nic feature on CNI for creating multi-nic-attachment pods"));
}

#[test]
fn later_cards_keep_one_address_warm() {
    let c = clock();
    let node = two_cards(&c);
    let manifest = WarmSettings::shipped_manifest();
    let now = c.now();
    // Card 1 holds one free /28: one address ready, nothing to do.
    assert!(node.plan(1, &manifest, now).unwrap().actions.is_empty());
    // Take one address: still one ready.
    node.card(1)
        .unwrap()
        .assign(PodRequest::new(key("x")))
        .unwrap();
    assert!(node.plan(1, &manifest, now).unwrap().actions.is_empty());
    // Two more, empty /28s on card 1: both go back (the used one keeps 15 ready), however
    // many card 0 keeps (WARM_PREFIX_TARGET is card 0's).
    let c1 = node.card(1).unwrap();
    c1.attach_prefix("eni-b", "10.0.9.16/28".parse().unwrap())
        .unwrap();
    c1.attach_prefix("eni-b", "10.0.9.32/28".parse().unwrap())
        .unwrap();
    c.advance(Duration::from_secs(120));
    let p = node
        .plan(1, &manifest.clone().warm_prefix_target(3), c.now())
        .unwrap();
    assert!(
        matches!(&p.actions[..], [Action::ReleasePrefixes { prefixes, .. }] if prefixes.len() == 2),
        "{:?}",
        p.actions
    );
    // In secondary-IP mode card 1 grows by one address, where card 0 fills an interface.
    let sec = cards(
        &CardOptions::new().multi_nic(true),
        AddressMode::Secondary,
        &c,
    );
    for (card, primary) in [(0, "10.0.0.10"), (1, "10.0.8.10")] {
        let spec = InterfaceSpec::new(format!("eni-{card}"), 0, primary.parse().unwrap());
        let spec = if card == 0 {
            spec.flags(InterfaceFlags::PRIMARY)
        } else {
            spec
        };
        sec.card(card).unwrap().attach_interface(spec).unwrap();
    }
    let settings = WarmSettings::new();
    let card1 = sec.plan(1, &settings, c.now()).unwrap();
    assert_eq!(
        card1.actions,
        [Action::AttachAddresses {
            interface: "eni-1".into(),
            count: 1
        }]
    );
    let card0 = sec.plan(0, &settings, c.now()).unwrap();
    assert_eq!(
        card0.actions,
        [Action::AttachAddresses {
            interface: "eni-0".into(),
            count: 49
        }]
    );
    // The same as planning card 1's node by hand with WARM_IP_TARGET=MINIMUM_IP_TARGET=1.
    let n1 = sec.card(1).unwrap();
    let by_hand = WarmSettings::new().warm_ip_target(1).minimum_ip_target(1);
    assert_eq!(
        plan(n1.limits(), &by_hand, &n1.snapshot(), c.now()).actions,
        card1.actions
    );
}

#[test]
fn max_pods_counts_the_default_card() {
    let m = max_pods(
        TWO_CARDS,
        &MaxPodsOptions {
            show_max_allowed: true,
            ..Default::default()
        },
    )
    .unwrap();
    let limits = InstanceLimits::lookup(TWO_CARDS).unwrap();
    assert_eq!((limits.max_enis, limits.max_enis_all_cards), (8, 16));
    assert_eq!(m.interfaces, 8);
    assert_eq!(m.max_pods, 8 * (50 - 1) + 2);
}

#[test]
fn each_card_has_its_own_checkpoint() {
    let c = clock();
    let node = two_cards(&c);
    node.assign_multi_nic(PodRequest::new(key("multi")))
        .unwrap();
    node.card(1)
        .unwrap()
        .assign(PodRequest::new(key("c1")))
        .unwrap();
    let dir = std::env::temp_dir().join(format!("pdipam-cards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("ipam.json");
    assert_eq!(card_checkpoint_path(&base, 0), base);
    assert_eq!(card_checkpoint_path(&base, 1), dir.join("ipam-nic-1.json"));
    assert_eq!(
        card_checkpoint_path(Path::new("/var/lib/pdipam/node"), 2),
        Path::new("/var/lib/pdipam/node-nic-2")
    );
    for (card, n) in node.cards() {
        n.checkpoint(None)
            .write(&card_checkpoint_path(&base, card))
            .unwrap();
    }
    let restored: Vec<_> = [0, 1]
        .into_iter()
        .map(|card| {
            let path = card_checkpoint_path(&base, card);
            let cp = NodeCheckpoint::read(&path).unwrap();
            let r = cp.restore(&path.display().to_string(), c.clone()).unwrap();
            (card, r.node)
        })
        .collect();
    let back = MultiCardNode::from_nodes(restored, true).unwrap();
    assert_eq!(back.held(&key("multi")).len(), 2);
    assert_eq!(back.held(&key("c1"))[0].card, 1);
    assert_eq!(back.card(0).unwrap().pod_count(), 1);
    assert_eq!(back.card(1).unwrap().pod_count(), 2);
    back.verify().unwrap();
    // Without card 0, or a card twice, it is refused.
    let lone = |card| {
        let path = card_checkpoint_path(&base, card);
        let cp = NodeCheckpoint::read(&path).unwrap();
        (card, cp.restore("x", c.clone()).unwrap().node)
    };
    assert_eq!(
        MultiCardNode::from_nodes(vec![lone(1)], true).unwrap_err(),
        CardError::DefaultCardUnmanaged
    );
    assert!(matches!(
        MultiCardNode::from_nodes(vec![lone(0), lone(0)], true).unwrap_err(),
        CardError::DuplicateCard { card: 0 }
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reconcile_hands_each_card_its_own_interfaces() {
    let c = clock();
    let node = two_cards(&c);
    c.advance(pdipam::RECONCILE_COOLDOWN);
    let report = vec![
        ObservedInterface::new(
            InterfaceSpec::new("eni-a", 0, "10.0.0.10".parse().unwrap())
                .flags(InterfaceFlags::PRIMARY),
        )
        .prefix("10.0.1.0/28".parse().unwrap()),
        ObservedInterface::new(InterfaceSpec::new("eni-b", 0, "10.0.8.10".parse().unwrap()))
            .prefix("10.0.9.0/28".parse().unwrap())
            .prefix("10.0.9.16/28".parse().unwrap())
            .network_card(1),
    ];
    let diffs = node.reconcile(&report);
    assert_eq!(diffs.len(), 2);
    assert!(diffs[0].1.is_empty(), "{:?}", diffs[0]);
    assert_eq!(
        diffs[1].1.added_blocks,
        [("eni-b".to_string(), "10.0.9.16/28".parse().unwrap())]
    );
    node.verify().unwrap();
}

#[test]
fn one_key_from_many_threads_gets_one_address_across_cards() {
    let c = clock();
    let node = Arc::new(two_cards(&c));
    // Card 0 has one address left: racing requests of one key, some falling back to card 1,
    // must agree on one address.
    for i in 0..15 {
        node.assign(PodRequest::new(key(&format!("p{i}")))).unwrap();
    }
    for round in 0..50 {
        let k = key(&format!("race{round}"));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let node = node.clone();
                let k = k.clone();
                std::thread::spawn(move || node.assign(PodRequest::new(k)).unwrap())
            })
            .collect();
        let got: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(got
            .iter()
            .all(|a| a.assignment.address == got[0].assignment.address));
        assert_eq!(got.iter().filter(|a| !a.assignment.existing).count(), 1);
        assert_eq!(node.held(&k).len(), 1);
        node.release(&k).unwrap();
        c.advance(Duration::from_secs(31));
    }
    node.verify().unwrap();
}

// ---- against a naive model ---------------------------------------------------------------

/// One step on a two-card node with 3 secondary addresses on card 0 and 2 on card 1, no
/// cooldown: keys 0 to 5.
#[derive(Clone, Copy, Debug)]
enum CardOp {
    Assign(u8),
    AssignMultiNic(u8),
    Release(u8),
}

/// What the rules say, counted: each card's free addresses and the cards each key holds on.
#[derive(Default)]
struct CardModel {
    free: [u32; 2],
    held: std::collections::BTreeMap<u8, Vec<u32>>,
}

impl CardModel {
    /// The cards the op leaves the key on, or `None` when it must fail.
    fn step(&mut self, op: CardOp) -> Option<Vec<u32>> {
        match op {
            CardOp::Assign(k) => {
                if let Some(cards) = self.held.get(&k) {
                    return Some(cards[..1].to_vec());
                }
                let card = (0..2).find(|&c| self.free[c as usize] > 0)?;
                self.free[card as usize] -= 1;
                self.held.insert(k, vec![card]);
                Some(vec![card])
            }
            CardOp::AssignMultiNic(k) => {
                let mut have = self.held.get(&k).cloned().unwrap_or_default();
                let missing: Vec<u32> = (0..2).filter(|c| !have.contains(c)).collect();
                if missing.iter().any(|&c| self.free[c as usize] == 0) {
                    return None;
                }
                for c in missing {
                    self.free[c as usize] -= 1;
                    have.push(c);
                }
                have.sort();
                self.held.insert(k, have.clone());
                Some(have)
            }
            CardOp::Release(k) => {
                let cards = self.held.remove(&k)?;
                for &c in &cards {
                    self.free[c as usize] += 1;
                }
                Some(cards)
            }
        }
    }
}

fn card_op() -> impl proptest::strategy::Strategy<Value = CardOp> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0..6u8).prop_map(CardOp::Assign),
        2 => (0..6u8).prop_map(CardOp::AssignMultiNic),
        3 => (0..6u8).prop_map(CardOp::Release),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::model::cases(256)))]

    #[test]
    fn cards_follow_the_rules_of_the_model(ops in proptest::collection::vec(card_op(), 1..60)) {
        let c = clock();
        let node = MultiCardNode::with_clock(
            InstanceLimits::lookup(TWO_CARDS).unwrap(),
            NodeConfig::new().mode(AddressMode::Secondary).cooldown(Duration::ZERO),
            &CardOptions::new().multi_nic(true),
            c.clone(),
        )
        .unwrap();
        for (card, n) in [(0u32, 3u8), (1, 2)] {
            let node = node.card(card).unwrap();
            let spec = InterfaceSpec::new(format!("eni-{card}"), 0, format!("10.{card}.0.10").parse().unwrap());
            node.attach_interface(spec).unwrap();
            for i in 0..n {
                node.attach_secondary(&format!("eni-{card}"), format!("10.{card}.0.{}", 20 + i).parse().unwrap()).unwrap();
            }
        }
        let mut model = CardModel { free: [3, 2], ..Default::default() };
        for (step, op) in ops.into_iter().enumerate() {
            let cards = |v: Vec<u32>| Some(v);
            let got = match op {
                CardOp::Assign(k) => node.assign(PodRequest::new(key(&format!("k{k}")))).ok().map(|a| vec![a.card]),
                CardOp::AssignMultiNic(k) => node
                    .assign_multi_nic(PodRequest::new(key(&format!("k{k}"))))
                    .ok()
                    .map(|v| v.iter().map(|a| a.card).collect()),
                CardOp::Release(k) => node.release(&key(&format!("k{k}"))).ok().map(|v| v.iter().map(|r| r.card).collect()),
            };
            let want = model.step(op);
            proptest::prop_assert_eq!(got, want.and_then(cards), "step {}: {:?}", step, op);
            node.verify().map_err(proptest::test_runner::TestCaseError::fail)?;
            for (k, want) in &model.held {
                let held: Vec<u32> = node.held(&key(&format!("k{k}"))).iter().map(|a| a.card).collect();
                proptest::prop_assert_eq!(&held, want, "step {}: key k{}", step, k);
            }
        }
    }
}

#[test]
fn a_key_quarantined_on_one_card_takes_nothing_on_another() {
    let c = clock();
    let node = two_cards(&c);
    for i in 0..16 {
        node.assign(PodRequest::new(key(&format!("p{i}")))).unwrap();
    }
    assert_eq!(node.assign(PodRequest::new(key("late"))).unwrap().card, 1);
    // Card 1's prefix vanishes: the pod is quarantined there.
    c.advance(pdipam::RECONCILE_COOLDOWN);
    let report = [
        ObservedInterface::new(
            InterfaceSpec::new("eni-a", 0, "10.0.0.10".parse().unwrap())
                .flags(InterfaceFlags::PRIMARY),
        )
        .prefix("10.0.1.0/28".parse().unwrap()),
        ObservedInterface::new(InterfaceSpec::new("eni-b", 0, "10.0.8.10".parse().unwrap()))
            .network_card(1),
    ];
    let diffs = node.reconcile(&report);
    assert_eq!(diffs[1].1.quarantined.len(), 1);
    // Card 0 has room again, but the key holds its quarantined address.
    node.release(&key("p0")).unwrap();
    c.advance(Duration::from_secs(31));
    for e in [
        node.assign(PodRequest::new(key("late"))).unwrap_err(),
        node.assign_multi_nic(PodRequest::new(key("late")))
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                CardError::Node {
                    card: 1,
                    error: NodeError::KeyHoldsOther { .. }
                }
            ),
            "{e}"
        );
    }
    assert_eq!(node.card(0).unwrap().pod_count(), 15);
    // Released, it goes.
    let rel = node.release(&key("late")).unwrap();
    assert_eq!((rel[0].card, rel[0].released.device_number), (1, None));
    node.verify().unwrap();
}
