//! Arbitrary operation sequences on `Node` and on its naive model (`NaiveNode`): assign, release,
//! quarantine, attach, remove, clock advance and warm-pool plans carried out on both; every result compared,
//! `verify()`, counts and pods compared after every step. The replay is
//! `pdipam::testing::node_ops`, shared with the proptest twin in tests/integration/node_model.rs.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pdipam::testing::node_ops::{NodeOp, NodePair};
use pdipam::{AddressMode, NodeConfig};
use std::time::Duration;

#[derive(Arbitrary, Debug)]
enum Op {
    AttachInterface(u8, bool),
    AttachPrefix(u8, u8, u8),
    AttachSecondary(u8, u8),
    Assign(u8),
    AssignAddress(u8, u8),
    Release(u8),
    Quarantine(u8, u8),
    ReleaseQuarantined(u8),
    Advance(u8),
    RemovePrefix(u8, bool),
    RemoveSecondary(u8, bool),
    RemoveInterface(u8, bool),
    Plan,
    Reconcile(u8, u8, u8),
}

impl Op {
    fn node_op(&self) -> NodeOp {
        match *self {
            Op::AttachInterface(dev, trunk) => NodeOp::AttachInterface {
                dev: u32::from(dev % 4),
                trunk,
            },
            Op::AttachPrefix(dev, n, shape) => NodeOp::AttachPrefix {
                dev: u32::from(dev % 4),
                n: n % 8,
                shape: shape % 10,
            },
            Op::AttachSecondary(dev, n) => NodeOp::AttachSecondary {
                dev: u32::from(dev % 4),
                n: n % 12,
            },
            Op::Assign(key) => NodeOp::Assign { key: key % 24 },
            Op::AssignAddress(key, n) => NodeOp::AssignAddress {
                key: key % 24,
                n: n % 64,
            },
            Op::Release(key) => NodeOp::Release { key: key % 24 },
            Op::Quarantine(key, n) => NodeOp::Quarantine {
                key: key % 24,
                n: n % 64,
            },
            Op::ReleaseQuarantined(key) => NodeOp::ReleaseQuarantined { key: key % 24 },
            Op::Advance(secs) => NodeOp::Advance { secs: secs % 40 },
            Op::RemovePrefix(n, force) => NodeOp::RemovePrefix { n: n % 8, force },
            Op::RemoveSecondary(n, force) => NodeOp::RemoveSecondary { n: n % 12, force },
            Op::RemoveInterface(dev, force) => NodeOp::RemoveInterface {
                dev: u32::from(dev % 4),
                force,
            },
            Op::Plan => NodeOp::Plan,
            Op::Reconcile(drop_iface, drop_block, add) => NodeOp::Reconcile {
                drop_iface: drop_iface % 6,
                drop_block: drop_block % 24,
                add: add % 32,
            },
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    instance: u8,
    secondary_mode: bool,
    cooldown: bool,
    custom_networking: bool,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let instance = ["t3.small", "m5.large", "t3.nano"][input.instance as usize % 3];
    let config = NodeConfig::new()
        .mode(if input.secondary_mode {
            AddressMode::Secondary
        } else {
            AddressMode::Prefix
        })
        .cooldown(if input.cooldown {
            Duration::from_secs(30)
        } else {
            Duration::ZERO
        })
        .custom_networking(input.custom_networking);
    let mut pair = NodePair::new(instance, config);
    for op in input.ops.iter().take(200) {
        let op = op.node_op();
        if let Err(e) = pair.step(&op) {
            panic!("{op:?}: {e}");
        }
    }
});
