//! Random operation sequences on `Node` and on its naive model (`NaiveNode`): every result
//! compared, counts, pods and the quarantine compared, `verify()` after every step, warm-pool plans checked and
//! carried out on both. The replay lives in `pdipam::testing::node_ops`, shared with the
//! `node_ops` fuzz target.

use crate::model::cases;
use pdipam::testing::node_ops::{NodeOp, NodePair};
use pdipam::{AddressMode, NodeConfig};
use proptest::prelude::*;
use std::time::Duration;

fn op() -> impl Strategy<Value = NodeOp> {
    prop_oneof![
        2 => (0..4u32, prop::bool::weighted(0.1)).prop_map(|(dev, trunk)| NodeOp::AttachInterface { dev, trunk }),
        4 => (0..4u32, 0..8u8, 0..10u8).prop_map(|(dev, n, shape)| NodeOp::AttachPrefix { dev, n, shape }),
        2 => (0..4u32, 0..12u8).prop_map(|(dev, n)| NodeOp::AttachSecondary { dev, n }),
        10 => (0..24u8).prop_map(|key| NodeOp::Assign { key }),
        2 => (0..24u8, 0..64u8).prop_map(|(key, n)| NodeOp::AssignAddress { key, n }),
        7 => (0..24u8).prop_map(|key| NodeOp::Release { key }),
        1 => (0..24u8, 0..64u8).prop_map(|(key, n)| NodeOp::Quarantine { key, n }),
        1 => (0..24u8).prop_map(|key| NodeOp::ReleaseQuarantined { key }),
        2 => (0..40u8).prop_map(|secs| NodeOp::Advance { secs }),
        1 => (0..8u8, any::<bool>()).prop_map(|(n, force)| NodeOp::RemovePrefix { n, force }),
        1 => (0..12u8, any::<bool>()).prop_map(|(n, force)| NodeOp::RemoveSecondary { n, force }),
        1 => (0..4u32, any::<bool>()).prop_map(|(dev, force)| NodeOp::RemoveInterface { dev, force }),
        2 => Just(NodeOp::Plan),
        2 => (0..6u8, 0..24u8, 0..32u8).prop_map(|(drop_iface, drop_block, add)| NodeOp::Reconcile { drop_iface, drop_block, add }),
    ]
}

/// The proptest twin of the `node_ops` fuzz target: the same replay (`NodePair::step`).
fn replay(t: &str, config: NodeConfig, ops: &[NodeOp]) -> Result<(), TestCaseError> {
    let mut pair = NodePair::new(t, config);
    for (step, op) in ops.iter().enumerate() {
        pair.step(op)
            .map_err(|e| TestCaseError::fail(format!("step {step}: {op:?}: {e}")))?;
    }
    Ok(())
}

fn config() -> impl Strategy<Value = NodeConfig> {
    (
        any::<bool>(),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(prefix, cooldown, custom)| {
            NodeConfig::new()
                .mode(if prefix {
                    AddressMode::Prefix
                } else {
                    AddressMode::Secondary
                })
                .cooldown(if cooldown {
                    Duration::from_secs(30)
                } else {
                    Duration::ZERO
                })
                .custom_networking(custom)
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
