//! Random operation sequences on `Node` and on its naive model (`NaiveNode`): every result
//! compared, counts and pods compared, `verify()` after every step.

use crate::model::cases;
use ipnet::IpNet;
use pdipam::testing::NaiveNode;
use pdipam::{
    AddressMode, Clock, InstanceLimits, InterfaceFlags, InterfaceSpec, ManualClock, Node,
    NodeConfig, PodKey, PodMetadata, PodRequest, Timestamp,
};
use proptest::prelude::*;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
enum Op {
    AttachInterface { dev: u32, trunk: bool },
    AttachPrefix { dev: u32, n: u8, shape: u8 },
    AttachSecondary { dev: u32, n: u8 },
    Assign { key: u8 },
    AssignAddress { key: u8, n: u8 },
    Release { key: u8 },
    Advance { secs: u8 },
    RemovePrefix { n: u8, force: bool },
    RemoveSecondary { n: u8, force: bool },
    RemoveInterface { dev: u32, force: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..4u32, prop::bool::weighted(0.1)).prop_map(|(dev, trunk)| Op::AttachInterface { dev, trunk }),
        4 => (0..4u32, 0..8u8, 0..10u8).prop_map(|(dev, n, shape)| Op::AttachPrefix { dev, n, shape }),
        2 => (0..4u32, 0..12u8).prop_map(|(dev, n)| Op::AttachSecondary { dev, n }),
        10 => (0..24u8).prop_map(|key| Op::Assign { key }),
        2 => (0..24u8, 0..64u8).prop_map(|(key, n)| Op::AssignAddress { key, n }),
        7 => (0..24u8).prop_map(|key| Op::Release { key }),
        2 => (0..40u8).prop_map(|secs| Op::Advance { secs }),
        1 => (0..8u8, any::<bool>()).prop_map(|(n, force)| Op::RemovePrefix { n, force }),
        1 => (0..12u8, any::<bool>()).prop_map(|(n, force)| Op::RemoveSecondary { n, force }),
        1 => (0..4u32, any::<bool>()).prop_map(|(dev, force)| Op::RemoveInterface { dev, force }),
    ]
}

fn prefix(n: u8, shape: u8) -> IpNet {
    match shape {
        0 => format!("10.1.{n}.8/28").parse().unwrap(), // misaligned
        1 => format!("10.1.{n}.0/27").parse().unwrap(), // wrong length
        _ => format!("10.1.{n}.0/28").parse().unwrap(),
    }
}

fn secondary(n: u8) -> IpAddr {
    format!("10.2.0.{}", n + 1).parse().unwrap()
}

fn key(k: u8) -> PodKey {
    // Key 23 is invalid (empty container id): its errors must agree too.
    let c = if k == 23 {
        String::new()
    } else {
        format!("c{k}")
    };
    PodKey::new("net", c, "eth0")
}

fn request(k: u8) -> PodRequest {
    PodRequest {
        key: key(k),
        metadata: PodMetadata {
            namespace: "ns".into(),
            pod_name: format!("p{k}"),
            interfaces_count: 1,
        },
    }
}

fn replay(t: &str, config: NodeConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
        1_000_000_000_000,
    )));
    let limits = InstanceLimits::lookup(t).unwrap().clone();
    let node = Node::with_clock(limits.clone(), config.clone(), clock.clone());
    let model = NaiveNode::new(limits, config, clock.clone());
    for (step, op) in ops.iter().enumerate() {
        let ctx = format!("step {step}: {op:?}");
        match *op {
            Op::AttachInterface { dev, trunk } => {
                let spec = InterfaceSpec {
                    id: format!("eni-{dev}"),
                    device_number: dev,
                    primary_address: format!("10.0.0.{}", 10 + dev).parse().unwrap(),
                    flags: InterfaceFlags {
                        primary: dev == 0,
                        trunk,
                        efa: false,
                    },
                };
                prop_assert_eq!(
                    node.attach_interface(spec.clone()),
                    model.attach_interface(spec),
                    "{}",
                    ctx
                );
            }
            Op::AttachPrefix { dev, n, shape } => {
                let (id, p) = (format!("eni-{dev}"), prefix(n, shape));
                prop_assert_eq!(
                    node.attach_prefix(&id, p),
                    model.attach_prefix(&id, p),
                    "{}",
                    ctx
                );
            }
            Op::AttachSecondary { dev, n } => {
                let (id, a) = (format!("eni-{dev}"), secondary(n));
                prop_assert_eq!(
                    node.attach_secondary(&id, a),
                    model.attach_secondary(&id, a),
                    "{}",
                    ctx
                );
            }
            Op::Assign { key } => {
                prop_assert_eq!(
                    node.assign(request(key)),
                    model.assign(request(key)),
                    "{}",
                    ctx
                );
            }
            Op::AssignAddress { key, n } => {
                // Addresses in the prefixes, in the secondaries, or outside everything.
                let a: IpAddr = match n % 4 {
                    0 => secondary(n / 4 % 12),
                    3 => format!("10.9.0.{n}").parse().unwrap(),
                    _ => format!("10.1.{}.{}", n % 8, n / 8).parse().unwrap(),
                };
                let at = clock.now();
                prop_assert_eq!(
                    node.assign_address(request(key), a, at),
                    model.assign_address(request(key), a, at),
                    "{}",
                    ctx
                );
            }
            Op::Release { key: k } => {
                prop_assert_eq!(node.release(&key(k)), model.release(&key(k)), "{}", ctx);
            }
            Op::Advance { secs } => clock.advance(Duration::from_secs(u64::from(secs))),
            Op::RemovePrefix { n, force } => {
                let p = prefix(n, 2);
                prop_assert_eq!(
                    node.remove_block(p, force),
                    model.remove_block(p, force),
                    "{}",
                    ctx
                );
            }
            Op::RemoveSecondary { n, force } => {
                let c = IpNet::from(secondary(n));
                prop_assert_eq!(
                    node.remove_block(c, force),
                    model.remove_block(c, force),
                    "{}",
                    ctx
                );
            }
            Op::RemoveInterface { dev, force } => {
                let id = format!("eni-{dev}");
                prop_assert_eq!(
                    node.remove_interface(&id, force),
                    model.remove_interface(&id, force),
                    "{}",
                    ctx
                );
            }
        }
        node.verify()
            .map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
        let snap = node.snapshot();
        prop_assert_eq!(
            (snap.total(), snap.assigned(), snap.cooling()),
            model.counts(),
            "{}",
            ctx
        );
        let pods: Vec<(PodKey, IpAddr)> = node
            .pods()
            .into_iter()
            .map(|p| (p.key, p.address))
            .collect();
        prop_assert_eq!(pods, model.pods(), "{}", ctx);
    }
    Ok(())
}

fn config() -> impl Strategy<Value = NodeConfig> {
    (
        any::<bool>(),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(prefix, cooldown, custom)| NodeConfig {
            mode: if prefix {
                AddressMode::Prefix
            } else {
                AddressMode::Secondary
            },
            cooldown: if cooldown {
                Duration::from_secs(30)
            } else {
                Duration::ZERO
            },
            custom_networking: custom,
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn node_matches_the_model(
        t in prop::sample::select(vec!["t3.small", "m5.large", "t3.nano"]),
        config in config(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        replay(t, config, &ops)?;
    }
}
