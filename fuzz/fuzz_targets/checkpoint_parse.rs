//! Arbitrary bytes as a checkpoint: pdipam's node and subnet formats and ipamd's
//! `vpc-cni-ipam/1`. Each parse is an error or a state that passes `verify()`; never a panic.
//! The first byte picks a mutation of a valid checkpoint (so the fuzzer reaches the restore
//! logic past the checksum) or raw bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pdipam::{
    limits::InstanceLimits,
    persist::{import_vpc_cni, NodeCheckpoint, SubnetCheckpoint},
    InterfaceFlags, InterfaceSpec, ManualClock, Node, NodeConfig, Timestamp,
};
use std::sync::Arc;

fn node() -> Node {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
    let n = Node::with_clock(
        InstanceLimits::lookup("m5.large").unwrap().clone(),
        NodeConfig::default(),
        clock,
    );
    n.attach_interface(
        InterfaceSpec::new("eni-0", 0, "10.0.0.10".parse().unwrap()).flags(InterfaceFlags {
            primary: true,
            ..Default::default()
        }),
    )
    .unwrap();
    n.attach_prefix("eni-0", "10.0.1.0/28".parse().unwrap())
        .unwrap();
    n
}

/// Re-seals a JSON body the fuzzer wrote, so that it passes the checksum and reaches restore.
fn resealed(kind: &str, body: &[u8]) -> Option<Vec<u8>> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = body.to_string();
    let env = serde_json::json!({
        "format": "pdipam-checkpoint", "version": 1, "kind": kind,
        "checksum": format!("crc32:{:08x}", crc32fast::hash(text.as_bytes())),
        "body": body,
    });
    Some(env.to_string().into_bytes())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(1 << 60)));
    match mode % 5 {
        0 => {
            if let Ok(cp) = NodeCheckpoint::from_bytes(rest, "fuzz") {
                if let Ok(r) = cp.restore("fuzz", clock) {
                    r.node.verify().unwrap();
                }
            }
        }
        1 => {
            if let Some(bytes) = resealed("node", rest) {
                if let Ok(cp) = NodeCheckpoint::from_bytes(&bytes, "fuzz") {
                    if let Ok(r) = cp.restore("fuzz", clock) {
                        r.node.verify().unwrap();
                    }
                }
            }
        }
        2 | 3 => {
            let bytes = if mode % 5 == 2 {
                Some(rest.to_vec())
            } else {
                resealed("subnet", rest)
            };
            if let Some(bytes) = bytes {
                if let Ok(cp) = SubnetCheckpoint::from_bytes(&bytes, "fuzz") {
                    if let Ok(s) = cp.restore("fuzz") {
                        s.verify().unwrap();
                    }
                }
            }
        }
        _ => {
            let n = node();
            let before = n.pods();
            match import_vpc_cni(rest, "fuzz", &n) {
                Ok(_) => n.verify().unwrap(),
                Err(_) => {
                    assert_eq!(n.pods(), before, "a failed import changed the node");
                    assert!(n.quarantined().is_empty());
                    n.verify().unwrap();
                }
            }
        }
    }
});
