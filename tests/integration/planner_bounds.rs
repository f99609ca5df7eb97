//! Exact plans for hand-built nodes at the edges of each planner rule: growth that spills past
//! an interface or stops at max pods, the IPv6 rule, the IP-target shrink formulas at zero,
//! WARM_ENI's boundaries, and when a shrink frees a whole interface. Mutation testing
//! (cargo-mutants on `src/planner`) showed the settle-until-quiet scenarios in `planner` leave
//! these unpinned: a plan that over-fills one interface by a slot, or reports a shrink timer for
//! a shrink nobody wants, passes them.

use pdipam::{
    limits::InstanceLimits,
    planner::{plan, Action, Holdback, Plan, WarmSettings},
    AddressMode, BlockKind, Clock, InterfaceFlags, InterfaceSpec, IpFamily, ManualClock, Node,
    NodeConfig, PodKey, PodRequest, Timestamp,
};
use std::sync::Arc;
use std::time::Duration;

/// A node of instance type `t` with its primary interface `eni-0` (device 0, 10.0.0.10).
struct Setup {
    clock: Arc<ManualClock>,
    node: Node,
    pods: u32,
}

impl Setup {
    fn new(t: &str, config: NodeConfig) -> Setup {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
            1_000_000_000_000,
        )));
        let limits = InstanceLimits::lookup(t).unwrap().clone();
        let node = Node::with_clock(limits, config, clock.clone());
        let b = Setup {
            clock,
            node,
            pods: 0,
        };
        b.interface("eni-0", 0, true);
        b
    }

    fn mode(t: &str, mode: AddressMode) -> Setup {
        Setup::new(t, NodeConfig::new().mode(mode))
    }

    fn interface(&self, id: &str, device_number: u32, primary: bool) {
        self.node
            .attach_interface(
                InterfaceSpec::new(
                    id,
                    device_number,
                    format!("10.0.0.{}", 10 + device_number).parse().unwrap(),
                )
                .flags(InterfaceFlags {
                    primary,
                    ..Default::default()
                }),
            )
            .unwrap();
    }

    fn prefixes(&self, id: &str, cidrs: &[&str]) {
        for c in cidrs {
            self.node.attach_prefix(id, c.parse().unwrap()).unwrap();
        }
    }

    fn secondaries(&self, id: &str, addresses: &[&str]) {
        for a in addresses {
            self.node.attach_secondary(id, a.parse().unwrap()).unwrap();
        }
    }

    fn add_pods(&mut self, n: u32) {
        for _ in 0..n {
            let k = PodKey::new("net", format!("c{}", self.pods), "eth0");
            self.node.assign(PodRequest::new(k)).unwrap();
            self.pods += 1;
        }
    }

    /// Moves past the 60-second interface age and the 30-second shrink timer.
    fn age(&self) {
        self.clock.advance(Duration::from_secs(61));
    }

    /// Starts the 30-second shrink timer now.
    fn shrunk_just_now(&self) {
        self.node.note_shrink(self.clock.now());
    }

    fn plan(&self, settings: &WarmSettings) -> Plan {
        plan(
            self.node.limits(),
            settings,
            &self.node.snapshot(),
            self.clock.now(),
        )
    }
}

fn ip_targets(w: u32, m: u32) -> WarmSettings {
    WarmSettings::new().warm_ip_target(w).minimum_ip_target(m)
}

fn attach(interface: &str, count: u32) -> Action {
    Action::AttachAddresses {
        interface: interface.into(),
        count,
    }
}

fn new_interface(device_number: u32, kind: BlockKind, count: u32) -> Action {
    Action::AttachInterface {
        device_number,
        kind,
        count,
    }
}

fn is_shrink_timer(p: &Plan) -> bool {
    matches!(p.holdbacks[..], [Holdback::ShrinkTimer { .. }])
}

#[test]
fn growth_fills_each_interface_to_its_free_slots_then_says_what_is_missing() {
    // t3.small: 3 interfaces of 4 slots; the primary address takes one of eni-0's.
    let b = Setup::mode("t3.small", AddressMode::Secondary);
    let p = b.plan(&ip_targets(20, 0).max_pods(Some(100)));
    let secondary = BlockKind::Secondary;
    assert_eq!(
        p.actions,
        [
            attach("eni-0", 3),
            new_interface(1, secondary, 3),
            new_interface(2, secondary, 3),
        ]
    );
    assert_eq!(p.holdbacks, [Holdback::NoCapacity { missing: 11 }]);
    assert_eq!(p.explanation.total_after, 9);

    // Growth that fits reports nothing.
    let p = b.plan(&ip_targets(5, 0));
    assert_eq!(
        p.actions,
        [attach("eni-0", 3), new_interface(1, secondary, 2)]
    );
    assert!(p.holdbacks.is_empty(), "{:?}", p.holdbacks);
}

#[test]
fn growth_stops_at_max_pods_part_way_and_says_so() {
    let b = Setup::mode("t3.small", AddressMode::Secondary);
    let p = b.plan(&ip_targets(20, 0).max_pods(Some(5)));
    assert_eq!(
        p.actions,
        [
            attach("eni-0", 3),
            new_interface(1, BlockKind::Secondary, 2)
        ]
    );
    assert_eq!(p.holdbacks, [Holdback::AtMaxPods { max_pods: 5 }]);
    assert_eq!(p.explanation.total_after, 5);

    // WARM_ENI_TARGET = 2 fills whole interfaces, and stops at max pods too.
    let we = |max_pods| WarmSettings::new().warm_eni_target(2).max_pods(max_pods);
    let p = b.plan(&we(None));
    assert_eq!(
        p.actions,
        [
            attach("eni-0", 3),
            new_interface(1, BlockKind::Secondary, 3)
        ]
    );
    assert!(p.holdbacks.is_empty(), "{:?}", p.holdbacks);
    let p = b.plan(&we(Some(4)));
    assert_eq!(
        p.actions,
        [
            attach("eni-0", 3),
            new_interface(1, BlockKind::Secondary, 1)
        ]
    );
    assert_eq!(p.holdbacks, [Holdback::AtMaxPods { max_pods: 4 }]);
}

#[test]
fn warm_eni_zero_grows_only_when_nothing_is_available() {
    let we0 = WarmSettings::new().warm_eni_target(0);
    let mut b = Setup::mode("t3.small", AddressMode::Secondary);
    assert_eq!(b.plan(&we0).actions, [attach("eni-0", 3)]);
    b.secondaries("eni-0", &["10.0.1.1"]);
    let p = b.plan(&we0);
    assert_eq!((p.actions, p.holdbacks), (vec![], vec![]));
    b.add_pods(1);
    assert_eq!(b.plan(&we0).actions, [attach("eni-0", 2)]);
}

#[test]
fn warm_eni_frees_an_interface_only_beyond_one_spare_and_never_under_the_shrink_timer() {
    // WE = 1 on t3.small wants 3 available; eni-1 holds 2 unused addresses.
    let settings = WarmSettings::new().warm_eni_target(1);
    let b = Setup::mode("t3.small", AddressMode::Secondary);
    b.secondaries("eni-0", &["10.0.1.1", "10.0.1.2", "10.0.1.3"]);
    b.interface("eni-1", 1, false);
    b.secondaries("eni-1", &["10.0.1.4", "10.0.1.5"]);
    b.age();
    // av = 5: below (WE + 1) x 3 = 6, so no interface is a candidate even though freeing eni-1
    // would leave 3; nor is the shrink timer consulted.
    b.shrunk_just_now();
    let p = b.plan(&settings);
    assert_eq!((p.actions, p.holdbacks), (vec![], vec![]));

    b.secondaries("eni-1", &["10.0.1.6"]);
    let p = b.plan(&settings);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(is_shrink_timer(&p), "{:?}", p.holdbacks);
    b.age();
    let p = b.plan(&settings);
    assert_eq!(
        p.actions,
        [Action::FreeInterface {
            interface: "eni-1".into()
        }]
    );
    assert_eq!((p.explanation.total, p.explanation.total_after), (6, 3));
}

#[test]
fn ipv6_wants_one_80_on_the_first_serving_interface() {
    let config = NodeConfig::new().family(IpFamily::V6);
    let b = Setup::new("t3.small", config);
    let settings = WarmSettings::default();
    let p = b.plan(&settings);
    assert_eq!(
        p.actions,
        [Action::AttachPrefixes {
            interface: "eni-0".into(),
            count: 1
        }]
    );
    assert_eq!(p.explanation.target_prefixes, Some(1));
    // After an out-of-space error: nothing, and why.
    b.node.note_insufficient_space(b.clock.now());
    let p = b.plan(&settings);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(
        matches!(p.holdbacks[..], [Holdback::Backoff { .. }]),
        "{:?}",
        p.holdbacks
    );
    // With a /80 attached there is nothing to do.
    b.prefixes("eni-0", &["2600:1f14:abc:de00:1234::/80"]);
    b.clock.advance(Duration::from_secs(121));
    let p = b.plan(&settings);
    assert_eq!((p.actions, p.holdbacks), (vec![], vec![]));
}

#[test]
fn ip_targets_in_prefix_mode_count_prefixes_for_assigned_plus_warm() {
    let mut b = Setup::mode("m5.large", AddressMode::Prefix);
    b.prefixes("eni-0", &["10.0.1.0/28", "10.0.1.16/28"]);
    b.add_pods(20);
    // ceil((20 + 5) / 16) = 2 prefixes for the pods and the warm addresses, ceil(40 / 16) = 3
    // for the minimum.
    let e = b.plan(&ip_targets(5, 40)).explanation;
    assert_eq!(e.target_prefixes, Some(3));
    let e = b.plan(&ip_targets(5, 0)).explanation;
    assert_eq!(e.target_prefixes, Some(2));
}

/// The shrink formulas of the IP targets decide whether a shrink is wanted at all: a node exactly
/// at its targets wants none, so even a running shrink timer holds nothing back; one prefix over
/// them wants one.
#[test]
fn ip_target_shrinks_start_exactly_beyond_the_targets() {
    // Secondary mode: over = min(av - W, T - M). At av = W, or at T = M, nothing is over.
    let b = Setup::mode("m5.large", AddressMode::Secondary);
    b.secondaries("eni-0", &["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"]);
    b.shrunk_just_now();
    for (w, m) in [(4, 0), (0, 4), (2, 4)] {
        let p = b.plan(&ip_targets(w, m));
        assert_eq!(
            (&p.actions, &p.holdbacks),
            (&vec![], &vec![]),
            "W={w} M={m}"
        );
    }
    assert!(is_shrink_timer(&b.plan(&ip_targets(3, 0))));
    assert!(is_shrink_timer(&b.plan(&ip_targets(0, 3))));

    // Prefix mode: n = min(empty prefixes, P - ceil((A + W) / 16), P - ceil(M / 16)).
    let mut b = Setup::mode("m5.large", AddressMode::Prefix);
    b.prefixes("eni-0", &["10.0.1.0/28", "10.0.1.16/28"]);
    b.add_pods(12); // all in the first prefix; the second is empty
    b.shrunk_just_now();
    // A + W = 32 needs both prefixes; M = 32 needs both too.
    for (w, m) in [(20, 0), (0, 32)] {
        let p = b.plan(&ip_targets(w, m));
        assert_eq!(
            (&p.actions, &p.holdbacks),
            (&vec![], &vec![]),
            "W={w} M={m}"
        );
    }
    assert!(is_shrink_timer(&b.plan(&ip_targets(4, 16))));
}

#[test]
fn ip_target_shrinks_release_what_the_formulas_allow() {
    // Three prefixes, four pods in the first: A + W = 16 needs one prefix; the other two go.
    let mut b = Setup::mode("m5.large", AddressMode::Prefix);
    b.prefixes("eni-0", &["10.0.1.0/28", "10.0.1.16/28", "10.0.1.32/28"]);
    b.add_pods(4);
    let p = b.plan(&ip_targets(12, 0));
    assert_eq!(
        p.actions,
        [Action::ReleasePrefixes {
            interface: "eni-0".into(),
            prefixes: vec![
                "10.0.1.16/28".parse().unwrap(),
                "10.0.1.32/28".parse().unwrap()
            ],
        }]
    );
    assert_eq!(p.explanation.total_after, 16);

    // M = 16 keeps one of two empty prefixes.
    let b = Setup::mode("m5.large", AddressMode::Prefix);
    b.prefixes("eni-0", &["10.0.1.0/28", "10.0.1.16/28"]);
    let p = b.plan(&ip_targets(0, 16));
    assert_eq!(
        p.actions,
        [Action::ReleasePrefixes {
            interface: "eni-0".into(),
            prefixes: vec!["10.0.1.16/28".parse().unwrap()],
        }]
    );
    assert_eq!(p.explanation.total_after, 16);
}

#[test]
fn warm_prefix_releases_only_the_empty_prefixes_beyond_the_target() {
    // Two prefixes with one pod each and two empty ones, WP = 1: the floor alone (16 available)
    // would let both empty ones go; the formula keeps one.
    let b = Setup::mode("m5.large", AddressMode::Prefix);
    b.prefixes(
        "eni-0",
        &[
            "10.0.1.0/28",
            "10.0.1.16/28",
            "10.0.1.32/28",
            "10.0.1.48/28",
        ],
    );
    for (pod, address) in [("c0", "10.0.1.0"), ("c1", "10.0.1.16")] {
        let request = PodRequest::new(PodKey::new("net", pod, "eth0"));
        b.node
            .assign_address(request, address.parse().unwrap(), b.clock.now())
            .unwrap();
    }
    let p = b.plan(&WarmSettings::new().warm_prefix_target(1));
    assert_eq!(
        p.actions,
        [Action::ReleasePrefixes {
            interface: "eni-0".into(),
            prefixes: vec!["10.0.1.48/28".parse().unwrap()],
        }]
    );
    assert_eq!(p.explanation.total_after, 48);
}

#[test]
fn a_shrink_that_empties_an_interface_frees_it_and_a_partial_one_does_not() {
    let settings = ip_targets(1, 0);
    let b = Setup::mode("t3.small", AddressMode::Secondary);
    b.secondaries("eni-0", &["10.0.1.1"]);
    b.interface("eni-1", 1, false);
    b.secondaries("eni-1", &["10.0.1.4", "10.0.1.5"]);
    b.age();
    // av = 3, W = 1: both of eni-1's addresses go, so eni-1 goes whole.
    let p = b.plan(&settings);
    assert_eq!(
        p.actions,
        [Action::FreeInterface {
            interface: "eni-1".into()
        }]
    );
    // W = 2: one of them goes; eni-1 stays.
    let p = b.plan(&ip_targets(2, 0));
    assert_eq!(
        p.actions,
        [Action::ReleaseAddresses {
            interface: "eni-1".into(),
            addresses: vec!["10.0.1.5".parse().unwrap()],
        }]
    );
}
