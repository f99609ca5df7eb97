//! The warm-pool planner against docs/rules.md, "Warm pools": the formulas, the t3.small example, the timers and
//! the interface-freeing rules, executed through a `LocalProvider` on an in-process subnet.

use pdipam::{
    limits::InstanceLimits,
    planner::{explain, plan, Action, Holdback, Plan, Rule, WarmSettings},
    provider::{execute, LocalProvider},
    AddressMode, BlockKind, Clock, ManualClock, Node, NodeConfig, PodKey, PodRequest, Subnet,
    Timestamp,
};
use std::sync::Arc;
use std::time::Duration;

struct Sim {
    clock: Arc<ManualClock>,
    subnet: Arc<Subnet>,
    node: Node,
    provider: LocalProvider,
    settings: WarmSettings,
    pods: u32,
}

impl Sim {
    fn new(t: &str, mode: AddressMode, settings: WarmSettings) -> Sim {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
            1_000_000_000_000,
        )));
        let subnet = Arc::new(Subnet::new("10.0.0.0/20".parse().unwrap()).unwrap());
        let cfg = NodeConfig::new().mode(mode);
        let node = Node::with_clock(
            InstanceLimits::lookup(t).unwrap().clone(),
            cfg,
            clock.clone(),
        );
        let mut provider = LocalProvider::new("n1", subnet.clone());
        provider.boot(&node).unwrap();
        Sim {
            clock,
            subnet,
            node,
            provider,
            settings,
            pods: 0,
        }
    }

    fn plan(&self) -> Plan {
        plan(
            self.node.limits(),
            &self.settings,
            &self.node.snapshot(),
            self.clock.now(),
        )
    }

    /// Plans and executes until the plan is empty (or 10 rounds), 31 s apart so timers allow.
    fn settle(&mut self) -> Vec<Action> {
        let mut all = Vec::new();
        for _ in 0..10 {
            let p = self.plan();
            if p.actions.is_empty() {
                break;
            }
            let ex = execute(&self.node, &p, &mut self.provider);
            assert!(ex.failed.is_empty(), "{:?}", ex.failed);
            all.extend(ex.done);
            self.clock.advance(Duration::from_secs(31));
        }
        self.check();
        all
    }

    fn check(&self) {
        self.node.verify().unwrap();
        self.subnet.verify().unwrap();
    }

    fn add_pods(&mut self, n: u32) {
        for _ in 0..n {
            let k = PodKey::new("net", format!("c{}", self.pods), "eth0");
            self.node.assign(PodRequest::new(k)).unwrap();
            self.pods += 1;
        }
    }

    fn remove_pods(&mut self, n: u32) {
        for _ in 0..n {
            self.pods -= 1;
            self.node
                .release(&PodKey::new("net", format!("c{}", self.pods), "eth0"))
                .unwrap();
        }
    }

    fn prefixes(&self) -> usize {
        self.node
            .snapshot()
            .interfaces
            .iter()
            .flat_map(|i| i.serving())
            .count()
    }
}

fn ip_targets(w: u32, m: u32) -> WarmSettings {
    WarmSettings::new().warm_ip_target(w).minimum_ip_target(m)
}

#[test]
fn t3_small_docs_example_with_warm_prefix_target_1() {
    let mut s = Sim::new(
        "t3.small",
        AddressMode::Prefix,
        WarmSettings::shipped_manifest(),
    );
    s.settle();
    assert_eq!(s.prefixes(), 1, "0 pods");
    s.add_pods(5);
    s.settle();
    assert_eq!(s.prefixes(), 2, "5 pods");
    s.add_pods(12);
    s.settle();
    assert_eq!(s.prefixes(), 3, "17 pods");
    let e = s.plan().explanation;
    assert_eq!(
        (e.rule, e.total, e.assigned, e.available),
        (Rule::WarmPrefix, 48, 17, 31)
    );
    assert_eq!(e.target_available, 16);
    assert_eq!(e.target_prefixes, Some(3));
    assert_eq!(e.idle_after, 31);
}

#[test]
fn warm_prefix_target_grows_by_the_missing_prefixes_and_releases_beyond_it() {
    let settings = WarmSettings::new().warm_prefix_target(3);
    let mut s = Sim::new("m5.large", AddressMode::Prefix, settings);
    let p = s.plan();
    assert_eq!(
        p.actions,
        vec![Action::AttachPrefixes {
            interface: "eni-n1-1".into(),
            count: 3
        }]
    );
    s.settle();
    assert_eq!(s.prefixes(), 3);
    // Lower the target: the empty prefixes beyond it go, highest address first.
    s.settings.warm_prefix_target = 1;
    let p = s.plan();
    match &p.actions[..] {
        [Action::ReleasePrefixes { prefixes, .. }] => assert_eq!(prefixes.len(), 2),
        other => panic!("{other:?}"),
    }
    s.settle();
    assert_eq!(s.prefixes(), 1);
    // WP = 0 grows only when nothing is available, by one prefix.
    s.settings.warm_prefix_target = 0;
    // The formula would release the last empty prefix and then grow one back at once: no flap.
    assert!(s.plan().actions.is_empty());
    s.add_pods(16);
    assert_eq!(
        s.plan().actions,
        vec![Action::AttachPrefixes {
            interface: "eni-n1-1".into(),
            count: 1
        }]
    );
}

#[test]
fn ip_targets_override_and_follow_the_formulas() {
    // Prefix mode, W = 5: short = W - av.
    let mut s = Sim::new("m5.large", AddressMode::Prefix, ip_targets(5, 0));
    s.settle();
    assert_eq!(s.prefixes(), 1);
    s.add_pods(12); // av = 4 < 5: one more prefix
    s.settle();
    assert_eq!(s.prefixes(), 2);
    s.remove_pods(12);
    // P = 2, A = 0, one empty prefix: the formula allows min(1, 2 - ceil(5/16), 2 - 0) = 1
    // release, but while 12 addresses cool, releasing it would leave av = 4 < W and the next
    // plan would grow it straight back: pdipam waits for the cooldown instead of flapping.
    assert!(s.plan().actions.is_empty());
    s.clock
        .advance(Duration::from_secs(30) + Duration::from_nanos(1));
    let p = s.plan();
    match &p.actions[..] {
        [Action::ReleasePrefixes { prefixes, .. }] => {
            assert_eq!(prefixes, &["10.0.0.32/28".parse().unwrap()])
        }
        other => panic!("{other:?}"),
    }
    s.settle();
    assert_eq!(s.prefixes(), 1);

    // M = 40: short = M - T = 40 -> ceil(40/16) = 3 prefixes at once.
    let s = Sim::new("m5.large", AddressMode::Prefix, ip_targets(0, 40));
    let p = s.plan();
    assert_eq!(
        p.actions,
        vec![Action::AttachPrefixes {
            interface: "eni-n1-1".into(),
            count: 3
        }]
    );
    assert_eq!(p.explanation.rule, Rule::IpTargets);
    assert_eq!(
        (p.explanation.target_total, p.explanation.target_prefixes),
        (40, Some(3))
    );
    assert_eq!(p.explanation.total_after, 48);

    // Secondary mode, W = 3, M = 0: exactly the short addresses, and the surplus goes back.
    let mut s = Sim::new("c5.large", AddressMode::Secondary, ip_targets(3, 0));
    assert_eq!(
        s.plan().actions,
        vec![Action::AttachAddresses {
            interface: "eni-n1-1".into(),
            count: 3
        }]
    );
    s.settle();
    s.add_pods(2);
    s.settle();
    assert_eq!(s.node.snapshot().total(), 5);
    s.remove_pods(2);
    s.clock
        .advance(Duration::from_secs(30) + Duration::from_nanos(1));
    let p = s.plan();
    match &p.actions[..] {
        [Action::ReleaseAddresses { addresses, .. }] => assert_eq!(addresses.len(), 2),
        other => panic!("{other:?}"),
    }
    s.settle();
    assert_eq!(s.node.snapshot().total(), 3);
}

#[test]
fn warm_eni_fills_interfaces_whole_and_frees_surplus_interfaces() {
    // c5.large: 3 interfaces x 10 slots, 9 addresses each.
    let mut s = Sim::new("c5.large", AddressMode::Secondary, WarmSettings::default());
    assert_eq!(
        s.plan().actions,
        vec![Action::AttachAddresses {
            interface: "eni-n1-1".into(),
            count: 9
        }]
    );
    s.settle();
    s.add_pods(9); // av = 0 < 9: a new interface, full
    let p = s.plan();
    assert_eq!(
        p.actions,
        vec![Action::AttachInterface {
            device_number: 1,
            kind: BlockKind::Secondary,
            count: 9
        }]
    );
    s.settle();
    s.add_pods(1);
    s.settle(); // av = 8 < 9: the third interface
    assert_eq!(s.node.snapshot().interfaces.len(), 3);
    s.add_pods(17);
    // Everything is attached: growth wanted but impossible.
    let p = s.plan();
    assert!(p.actions.is_empty());
    assert!(
        matches!(p.holdbacks[..], [Holdback::NoCapacity { missing: 9 }]),
        "{:?}",
        p.holdbacks
    );
    // Pods leave: av = 27 >= (WE+1)*9, but an interface with cooling addresses stays.
    s.remove_pods(27);
    assert!(s.plan().actions.is_empty());
    s.clock
        .advance(Duration::from_secs(30) + Duration::from_nanos(1));
    let p = s.plan();
    assert_eq!(
        p.actions,
        vec![Action::FreeInterface {
            interface: "eni-n1-3".into()
        }]
    );
    s.settle();
    // Then the second (av 18 >= 18 still); never single addresses, never the primary.
    let snap = s.node.snapshot();
    assert_eq!(snap.interfaces.len(), 1);
    assert_eq!(snap.total(), 9);
    assert!(s.plan().actions.is_empty());
}

#[test]
fn interfaces_younger_than_60s_or_trunk_are_not_freed() {
    let mut s = Sim::new("c5.large", AddressMode::Secondary, WarmSettings::default());
    s.settle();
    s.add_pods(9);
    // Attach, then immediately lose the pods: the new interface is too young to free.
    let p = s.plan();
    execute(&s.node, &p, &mut s.provider);
    assert_eq!(s.node.snapshot().interfaces.len(), 2);
    s.remove_pods(9);
    s.clock
        .advance(Duration::from_secs(30) + Duration::from_nanos(1)); // cooldown over, interface 30 s old
    let p = s.plan();
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::FreeInterface { .. })),
        "{p:?}"
    );
    s.clock
        .advance(Duration::from_secs(30) + Duration::from_nanos(1));
    let p = s.plan();
    assert_eq!(
        p.actions,
        vec![Action::FreeInterface {
            interface: "eni-n1-2".into()
        }]
    );
    s.settle();
    // A trunk interface serves no pods and is never freed, however idle and old.
    s.node
        .attach_interface(
            pdipam::InterfaceSpec::new("eni-trunk", 5, "10.0.9.9".parse().unwrap()).flags(
                pdipam::InterfaceFlags {
                    trunk: true,
                    ..Default::default()
                },
            ),
        )
        .unwrap();
    s.clock.advance(Duration::from_secs(600));
    let snap = s.node.snapshot();
    assert!(
        !snap
            .interfaces
            .iter()
            .find(|i| i.id == "eni-trunk")
            .unwrap()
            .serves_pods
    );
    assert!(s.plan().actions.is_empty(), "{:?}", s.plan());
}

#[test]
fn timers_back_off_after_no_space_and_space_out_shrinks() {
    // A /26 subnet: the profile's 5 reserved addresses spoil the first and last /28, the primary
    // address a third: one /28 left.
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
        1_000_000_000_000,
    )));
    let subnet = Arc::new(Subnet::new("10.0.0.0/26".parse().unwrap()).unwrap());
    let node = Node::with_clock(
        InstanceLimits::lookup("m5.large").unwrap().clone(),
        NodeConfig::default(),
        clock.clone(),
    );
    let mut provider = LocalProvider::new("n", subnet.clone());
    provider.boot(&node).unwrap();
    let settings = WarmSettings::new().warm_prefix_target(3);
    let p = plan(node.limits(), &settings, &node.snapshot(), clock.now());
    let ex = execute(&node, &p, &mut provider);
    assert_eq!(ex.failed.len(), 1);
    assert!(
        ex.failed[0].1.to_string().contains("Insufficient"),
        "{}",
        ex.failed[0].1
    );
    node.verify().unwrap();
    subnet.verify().unwrap();
    let p = plan(node.limits(), &settings, &node.snapshot(), clock.now());
    assert!(p.actions.is_empty());
    assert!(matches!(p.holdbacks[..], [Holdback::Backoff { .. }]));
    clock.advance(Duration::from_secs(119));
    assert!(
        plan(node.limits(), &settings, &node.snapshot(), clock.now())
            .actions
            .is_empty()
    );
    clock.advance(Duration::from_secs(1));
    // The same request again (all or nothing, as the cloud's API), refused again: back-off anew.
    let p = plan(node.limits(), &settings, &node.snapshot(), clock.now());
    assert_eq!(
        p.actions,
        vec![Action::AttachPrefixes {
            interface: "eni-n-1".into(),
            count: 3
        }]
    );
    assert_eq!(execute(&node, &p, &mut provider).failed.len(), 1);
    clock.advance(Duration::from_secs(60));
    let one = WarmSettings::new().warm_prefix_target(1);
    let p = plan(node.limits(), &one, &node.snapshot(), clock.now());
    assert!(matches!(p.holdbacks[..], [Holdback::Backoff { .. }]));
    clock.advance(Duration::from_secs(60));
    let p = plan(node.limits(), &one, &node.snapshot(), clock.now());
    let ex = execute(&node, &p, &mut provider);
    assert!(ex.failed.is_empty(), "one fits: {:?}", ex.failed);
    node.verify().unwrap();
    subnet.verify().unwrap();

    // Shrinks at most every 30 s.
    let mut s = Sim::new(
        "m5.large",
        AddressMode::Prefix,
        WarmSettings::new().warm_prefix_target(4),
    );
    s.settle();
    s.settings.warm_prefix_target = 2;
    let p = s.plan();
    execute(&s.node, &p, &mut s.provider);
    s.settings.warm_prefix_target = 0;
    let p = s.plan();
    assert!(p.actions.is_empty());
    assert!(
        matches!(p.holdbacks[..], [Holdback::ShrinkTimer { .. }]),
        "{:?}",
        p.holdbacks
    );
    s.clock
        .advance(Duration::from_secs(30) + Duration::from_nanos(1));
    assert_eq!(s.plan().actions.len(), 1);
}

#[test]
fn never_grows_past_max_pods() {
    // m5.large prefix mode: max pods 110; 7 prefixes = 112 >= 110.
    let mut s = Sim::new("m5.large", AddressMode::Prefix, ip_targets(200, 0));
    s.settle();
    let e = s.plan();
    assert_eq!(e.explanation.max_pods, 110);
    assert_eq!(s.node.snapshot().total(), 112);
    assert!(matches!(
        e.holdbacks[..],
        [Holdback::AtMaxPods { max_pods: 110 }]
    ));
    s.settings.max_pods = Some(50);
    let x = explain(
        s.node.limits(),
        &s.settings,
        &s.node.snapshot(),
        s.clock.now(),
    );
    assert_eq!(x.max_pods, 50);
}

#[test]
fn a_local_provider_refuses_a_whole_request_and_says_how_much_it_needed() {
    use pdipam::{
        provider::{Provider, ProviderError},
        SubnetError,
    };
    // A /28: 11 usable addresses, no /28 to delegate.
    let subnet = Arc::new(Subnet::new("10.0.0.0/28".parse().unwrap()).unwrap());
    let mut provider = LocalProvider::new("n", subnet.clone());
    let free = subnet.stats().free;
    match provider.assign_addresses("eni-1", 20) {
        Err(ProviderError::InsufficientSpace(SubnetError::InsufficientFreeAddressesInSubnet {
            needed,
            ..
        })) => assert_eq!(needed, 20),
        other => panic!("{other:?}"),
    }
    // All or nothing: the 11 it could take were given back.
    assert_eq!(subnet.stats().free, free);
    assert_eq!(provider.assign_addresses("eni-1", 11).unwrap().len(), 11);
    match provider.assign_prefixes("eni-1", false, 2) {
        Err(ProviderError::InsufficientSpace(SubnetError::InsufficientFreeAddressesInSubnet {
            needed,
            ..
        })) => assert_eq!(needed, 32),
        other => panic!("{other:?}"),
    }
    subnet.verify().unwrap();
}

/// An interface whose blocks are all gone stays attached no longer than it must: freed once it
/// is older than the minimum age (also when it was emptied while young), and the predicate says
/// why it stays meanwhile, in ipamd's words.
#[test]
fn an_interface_left_with_no_block_is_freed_once_old_enough() {
    use pdipam::planner::{may_free_interface, KeepReason};
    let warm_prefix = WarmSettings::new().warm_prefix_target(1);
    let mut s = Sim::new("m5.large", AddressMode::Prefix, warm_prefix);
    s.settle();
    let attached = s.clock.now();
    s.node
        .attach_interface(pdipam::InterfaceSpec::new(
            "eni-x",
            1,
            "10.0.9.9".parse().unwrap(),
        ))
        .unwrap();
    for p in ["10.0.9.16/28", "10.0.9.32/28"] {
        s.node.attach_prefix("eni-x", p.parse().unwrap()).unwrap();
    }
    let why = |s: &Sim, id: &str| {
        may_free_interface(
            s.node.limits(),
            &s.settings,
            &s.node.snapshot(),
            id,
            s.clock.now(),
        )
    };
    // Emptied over two steps while young: one block released, then the other.
    s.clock.advance(Duration::from_secs(5));
    s.node
        .remove_block("10.0.9.16/28".parse().unwrap(), false)
        .unwrap();
    s.clock.advance(Duration::from_secs(5));
    s.node
        .remove_block("10.0.9.32/28".parse().unwrap(), false)
        .unwrap();
    let frees = |p: &Plan| {
        p.actions
            .iter()
            .filter(|a| matches!(a, Action::FreeInterface { interface } if interface == "eni-x"))
            .count()
    };
    assert_eq!(frees(&s.plan()), 0);
    let e = why(&s, "eni-x").unwrap_err();
    assert!(matches!(e, KeepReason::TooYoung { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("ENI eni-x cannot be deleted because it is too young"),
        "{e}"
    );
    s.clock
        .advance(Duration::from_secs(60) - s.clock.now().saturating_since(attached));
    assert_eq!(why(&s, "eni-x"), Ok(()));
    let p = s.plan();
    assert_eq!(frees(&p), 1, "{p:?}");
    // The other reasons, in ipamd's words.
    assert_eq!(
        why(&s, "eni-n1-1").unwrap_err().to_string(),
        "ENI eni-n1-1 cannot be deleted because it is primary"
    );
    assert_eq!(
        why(&s, "eni-none").unwrap_err(),
        KeepReason::Unknown {
            id: "eni-none".into()
        }
    );
    s.node
        .attach_prefix("eni-x", "10.0.9.48/28".parse().unwrap())
        .unwrap();
    s.node
        .assign(PodRequest::new(PodKey::new("net", "on-x", "eth0")))
        .unwrap();
    // Packed onto the primary interface's prefix first: eni-x still holds no pod. Its empty
    // prefix is the only warm one beyond the primary's, so the warm prefix target needs it.
    let e = why(&s, "eni-x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "ENI eni-x cannot be deleted because it is required for WARM_PREFIX_TARGET: 1"
    );
}

/// A new interface whose prefix grant fails (the subnet has free addresses but no free aligned
/// /28) is deleted again: nothing is left attached with no block, and its address goes back.
#[test]
fn a_failed_grant_right_after_creating_an_interface_leaves_nothing_attached() {
    let mut s = Sim::new("m5.large", AddressMode::Prefix, WarmSettings::default());
    s.settle();
    // Every /28 taken, then one of them freed and spoiled by a single address.
    let mut taken = Vec::new();
    while let Ok(p) = s.subnet.allocate_prefix(28) {
        taken.push(p.cidr);
    }
    let spoiled = taken.pop().unwrap();
    s.subnet.release(spoiled).unwrap();
    s.subnet.allocate_ip_at(spoiled.addr()).unwrap();
    let free_before = s.subnet.stats().available;
    let mut p = s.plan();
    p.actions = vec![Action::AttachInterface {
        device_number: 1,
        kind: BlockKind::Prefix,
        count: 1,
    }];
    let ex = execute(&s.node, &p, &mut s.provider);
    assert_eq!(ex.failed.len(), 1, "{ex:?}");
    assert!(
        matches!(
            ex.failed[0].1,
            pdipam::provider::ProviderError::InsufficientSpace(_)
        ),
        "{ex:?}"
    );
    assert_eq!(
        s.node.snapshot().interfaces.len(),
        1,
        "the new interface stayed"
    );
    assert_eq!(
        s.subnet.stats().available,
        free_before,
        "its address was kept"
    );
    s.check();
}

/// Prefix mode on an instance type that cannot delegate prefixes (m4.xlarge runs on Xen): the
/// node falls back to secondary addresses as ipamd does, and says so in its state and its plan.
#[test]
fn prefix_mode_off_nitro_falls_back_to_secondary_addresses_and_says_so() {
    use pdipam::limits::{Hypervisor, PrefixFallback};
    let s = Sim::new(
        "m4.xlarge",
        AddressMode::Prefix,
        WarmSettings::new().warm_prefix_target(1),
    );
    let fallback = PrefixFallback::NotNitro {
        hypervisor: Hypervisor::Xen,
    };
    assert_eq!(s.node.config().mode, AddressMode::Secondary);
    assert_eq!(s.node.prefix_fallback(), Some(fallback.clone()));
    assert_eq!(s.node.snapshot().prefix_fallback, Some(fallback.clone()));
    let p = s.plan();
    assert_eq!(p.explanation.prefix_fallback, Some(fallback));
    assert_eq!(p.explanation.mode, AddressMode::Secondary);
    assert!(
        p.actions
            .iter()
            .all(|a| matches!(a, Action::AttachAddresses { .. })),
        "{p:?}"
    );
    assert!(!p.actions.is_empty());
    // On Nitro nothing falls back.
    let nitro = Sim::new("m5.large", AddressMode::Prefix, WarmSettings::default());
    assert_eq!(nitro.node.prefix_fallback(), None);
    assert_eq!(nitro.plan().explanation.prefix_fallback, None);
}

/// A node in prefix mode that still holds secondary addresses (restored from a node that ran in
/// secondary-IP mode) gives back those no pod uses, as ipamd does at start; the one a pod holds
/// goes once the pod has left and its address cooled down. And the reverse.
#[test]
fn blocks_of_the_mode_a_node_no_longer_serves_are_given_back_when_unused() {
    let settings = WarmSettings::new().warm_prefix_target(1);
    let mut s = Sim::new("m5.large", AddressMode::Prefix, settings);
    s.settle();
    let primary = s.node.snapshot().interfaces[0].id.clone();
    let (used, unused) = (
        s.subnet.allocate_ip().unwrap(),
        s.subnet.allocate_ip().unwrap(),
    );
    for a in [used, unused] {
        s.node.attach_secondary(&primary, a).unwrap();
    }
    let key = PodKey::new("net", "old", "eth0");
    s.node
        .assign_address(PodRequest::new(key.clone()), used, s.clock.now())
        .unwrap();
    let p = s.plan();
    assert_eq!(
        p.actions,
        vec![Action::ReleaseAddresses {
            interface: primary.clone(),
            addresses: vec![unused],
        }]
    );
    execute(&s.node, &p, &mut s.provider);
    s.check();
    s.node.release(&key).unwrap();
    s.clock.advance(Duration::from_secs(31));
    assert_eq!(
        s.plan().actions,
        vec![Action::ReleaseAddresses {
            interface: primary.clone(),
            addresses: vec![used],
        }]
    );
    let actions = s.settle();
    assert!(!actions.is_empty());
    let snap = s.node.snapshot();
    assert!(snap
        .interfaces
        .iter()
        .flat_map(|i| &i.blocks)
        .all(|b| b.kind == BlockKind::Prefix));

    // The reverse: a secondary-IP node holding an unused prefix gives it back.
    let mut s = Sim::new("m5.large", AddressMode::Secondary, ip_targets(1, 0));
    s.settle();
    let primary = s.node.snapshot().interfaces[0].id.clone();
    let prefix = s.subnet.allocate_prefix(28).unwrap().cidr;
    s.node.attach_prefix(&primary, prefix).unwrap();
    let p = s.plan();
    assert!(
        p.actions.contains(&Action::ReleasePrefixes {
            interface: primary,
            prefixes: vec![prefix],
        }),
        "{p:?}"
    );
}

/// An interface excluded from pod addresses (or not managed): it keeps its blocks, serves no
/// pod, is never freed or shrunk, counts nothing toward the warm pool, and takes one of the
/// instance's interfaces (ipamd's hasRoomForEni).
#[test]
fn an_excluded_interface_serves_nothing_stays_and_takes_a_place() {
    use pdipam::planner::{may_free_interface, Holdback, KeepReason};
    let mut s = Sim::new(
        "m5.large",
        AddressMode::Prefix,
        WarmSettings::new().warm_prefix_target(1),
    );
    s.settle();
    let address = s.subnet.allocate_ip().unwrap();
    s.node
        .attach_interface(
            pdipam::InterfaceSpec::new("eni-excluded", 1, address).flags(pdipam::InterfaceFlags {
                excluded: true,
                ..Default::default()
            }),
        )
        .unwrap();
    let theirs: Vec<_> = (0..2)
        .map(|_| s.subnet.allocate_prefix(28).unwrap().cidr)
        .collect();
    for p in &theirs {
        s.node.attach_prefix("eni-excluded", *p).unwrap();
    }
    s.clock.advance(Duration::from_secs(600));
    let snap = s.node.snapshot();
    let excluded = snap
        .interfaces
        .iter()
        .find(|i| i.id == "eni-excluded")
        .unwrap();
    assert!(!excluded.serves_pods);
    assert_eq!(snap.total(), 16, "its prefixes count nothing");
    // Pods never land there; the planner grows elsewhere and never touches it.
    let mut actions = Vec::new();
    for _ in 0..4 {
        s.add_pods(5);
        actions.extend(s.settle());
    }
    assert!(s
        .node
        .pods()
        .iter()
        .all(|p| !theirs.iter().any(|t| t.contains(&p.address))));
    s.remove_pods(20);
    s.clock.advance(Duration::from_secs(600));
    actions.extend(s.settle());
    let mentions = |a: &Action| format!("{a:?}").contains("eni-excluded");
    assert!(!actions.iter().any(mentions), "{actions:?}");
    let snap = s.node.snapshot();
    let kept = snap
        .interfaces
        .iter()
        .find(|i| i.id == "eni-excluded")
        .unwrap();
    assert_eq!(kept.blocks.len(), 2);
    assert_eq!(
        may_free_interface(
            s.node.limits(),
            &s.settings,
            &snap,
            "eni-excluded",
            s.clock.now()
        ),
        Err(KeepReason::Excluded {
            id: "eni-excluded".into()
        })
    );
    // Room for new interfaces: an m5.large has 3; the primary and the excluded one leave one.
    s.settings = WarmSettings::new()
        .warm_prefix_target(40)
        .max_pods(Some(10_000));
    let p = s.plan();
    let new: Vec<_> = p
        .actions
        .iter()
        .filter(|a| matches!(a, Action::AttachInterface { .. }))
        .collect();
    assert_eq!(new.len(), 1, "{p:?}");
    assert!(
        p.holdbacks
            .iter()
            .any(|h| matches!(h, Holdback::NoCapacity { .. })),
        "{p:?}"
    );
    assert!(!p.actions.iter().any(mentions), "{p:?}");
}

/// The mode changed on a live node: new pods come from blocks of the new kind at once, a pod on
/// a block of the old kind keeps its address, and the planner gives the old blocks back once
/// nothing uses them. Off Nitro, prefix mode falls back and says so.
#[test]
fn the_mode_changes_on_a_live_node_and_the_old_blocks_drain() {
    let mut s = Sim::new("m5.large", AddressMode::Secondary, ip_targets(2, 0));
    s.settle();
    s.add_pods(1);
    let old = s.node.pods()[0].clone();
    assert!(s.node.snapshot().interfaces[0]
        .blocks
        .iter()
        .all(|b| b.kind == BlockKind::Secondary));
    assert_eq!(s.node.set_mode(AddressMode::Prefix), None);
    assert_eq!(s.node.config().mode, AddressMode::Prefix);
    s.node.verify().unwrap();
    // The planner grows a prefix and gives back the idle secondary addresses.
    let actions = s.settle();
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::AttachPrefixes { .. })),
        "{actions:?}"
    );
    let snap = s.node.snapshot();
    let secondaries: Vec<_> = snap
        .interfaces
        .iter()
        .flat_map(|i| &i.blocks)
        .filter(|b| b.kind == BlockKind::Secondary)
        .collect();
    assert_eq!(secondaries.len(), 1, "only the pod's stays: {snap:?}");
    assert!(!secondaries[0].serving);
    // A new pod comes from the prefix; the old one keeps its address.
    s.add_pods(1);
    let new = s
        .node
        .pods()
        .into_iter()
        .find(|p| p.key != old.key)
        .unwrap();
    assert_eq!(new.block.prefix_len(), 28);
    assert_eq!(s.node.pod(&old.key).unwrap().address, old.address);
    // Once the old pod leaves and its address has cooled, the last secondary address goes.
    s.node.release(&old.key).unwrap();
    s.clock.advance(Duration::from_secs(31));
    s.settle();
    assert!(s
        .node
        .snapshot()
        .interfaces
        .iter()
        .flat_map(|i| &i.blocks)
        .all(|b| b.kind == BlockKind::Prefix));
    s.check();

    // Off Nitro: prefix mode asked of a live m4.xlarge falls back, and says why.
    let m4 = Sim::new("m4.xlarge", AddressMode::Secondary, WarmSettings::default());
    let why = m4.node.set_mode(AddressMode::Prefix);
    assert!(why.is_some());
    assert_eq!(m4.node.config().mode, AddressMode::Secondary);
    assert_eq!(m4.node.prefix_fallback(), why);
}
