//! `pdipam_node_plan`: the warm-pool planner's actions, flattened into a caller's array.

use crate::boundary::run_on;
use crate::node::{pdipam_node, PDIPAM_INTERFACE_ID_MAX};
use crate::prefix::pdipam_prefix;
use crate::raw::{self, Out};
use crate::status::{pdipam_status, Failure};
use ipnet::IpNet;
use pdipam::{
    planner::{plan, Action},
    BlockKind,
};
use std::ffi::c_char;

/// Delegate `count` prefixes to `interface_id`.
pub const PDIPAM_ACTION_ATTACH_PREFIXES: u8 = 1;
/// Assign `count` secondary addresses to `interface_id`.
pub const PDIPAM_ACTION_ATTACH_ADDRESSES: u8 = 2;
/// Create an interface at `device_number` with `count` prefixes (`prefixes` 1) or secondary
/// addresses (`prefixes` 0).
pub const PDIPAM_ACTION_ATTACH_INTERFACE: u8 = 3;
/// Give back the empty block `block` (a prefix, or an address as /32 or /128) of
/// `interface_id`.
pub const PDIPAM_ACTION_RELEASE_BLOCK: u8 = 4;
/// Detach and delete `interface_id` with everything on it.
pub const PDIPAM_ACTION_FREE_INTERFACE: u8 = 5;

/// One thing to ask of the cloud. Fields an action does not use are zero. A plain value, written
/// by `pdipam_node_plan` into the caller's array.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_action {
    /// `PDIPAM_ACTION_*`.
    pub kind: u8,
    /// For `ATTACH_INTERFACE`: 1 for prefixes, 0 for secondary addresses.
    pub prefixes: u8,
    /// For `ATTACH_INTERFACE`: the device number to attach it at.
    pub device_number: u32,
    /// How many prefixes or addresses to attach.
    pub count: u32,
    /// The interface, NUL-terminated (empty for `ATTACH_INTERFACE`).
    pub interface_id: [c_char; PDIPAM_INTERFACE_ID_MAX],
    /// For `RELEASE_BLOCK`: the block.
    pub block: pdipam_prefix,
}

fn action(kind: u8, interface: &str) -> pdipam_action {
    let mut id = [0 as c_char; PDIPAM_INTERFACE_ID_MAX];
    // Interface ids are shorter than the array (the node refuses longer ones), so the last
    // byte stays NUL.
    for (slot, byte) in id
        .iter_mut()
        .zip(interface.bytes().take(PDIPAM_INTERFACE_ID_MAX - 1))
    {
        *slot = byte as c_char;
    }
    pdipam_action {
        kind,
        prefixes: 0,
        device_number: 0,
        count: 0,
        interface_id: id,
        block: pdipam_prefix {
            family: 0,
            len: 0,
            addr: [0; 16],
        },
    }
}

fn flatten(actions: &[Action]) -> Vec<pdipam_action> {
    let mut out = Vec::new();
    let release = |interface: &str, block: IpNet| pdipam_action {
        block: pdipam_prefix::from_net(block),
        ..action(PDIPAM_ACTION_RELEASE_BLOCK, interface)
    };
    for a in actions {
        match a {
            Action::AttachPrefixes { interface, count } => out.push(pdipam_action {
                count: *count,
                ..action(PDIPAM_ACTION_ATTACH_PREFIXES, interface)
            }),
            Action::AttachAddresses { interface, count } => out.push(pdipam_action {
                count: *count,
                ..action(PDIPAM_ACTION_ATTACH_ADDRESSES, interface)
            }),
            Action::AttachInterface {
                device_number,
                kind,
                count,
            } => out.push(pdipam_action {
                prefixes: u8::from(*kind == BlockKind::Prefix),
                device_number: *device_number,
                count: *count,
                ..action(PDIPAM_ACTION_ATTACH_INTERFACE, "")
            }),
            Action::ReleasePrefixes {
                interface,
                prefixes,
            } => out.extend(prefixes.iter().map(|p| release(interface, *p))),
            Action::ReleaseAddresses {
                interface,
                addresses,
            } => out.extend(
                addresses
                    .iter()
                    .map(|a| release(interface, IpNet::from(*a))),
            ),
            Action::FreeInterface { interface } => {
                out.push(action(PDIPAM_ACTION_FREE_INTERFACE, interface))
            }
        }
    }
    out
}

/// Plans the node's warm pool now (docs/rules.md, "Warm pools", with the node's warm settings)
/// into `actions` (`cap` elements), growth first; the number of actions goes to `*len_out` (0:
/// nothing to do).
/// `actions` may be NULL when `cap` is 0 (a size query).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `BUFFER_TOO_SMALL` with the number needed in
/// `*len_out` (nothing written to `actions`). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `actions` is writable for `cap` elements; `len_out` is writable for one `usize`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_plan(
    node: *const pdipam_node,
    actions: *mut pdipam_action,
    cap: usize,
    len_out: *mut usize,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let len = Out::new(len_out, "len_out")?;
        let settings = n.settings();
        let now = n.node.clock().now();
        let p = plan(n.node.limits(), &settings, &n.node.snapshot(), now);
        let flat = flatten(&p.actions);
        if flat.len() > cap {
            len.write(flat.len());
            return Err(Failure::buffer_too_small());
        }
        let slots = raw::array(actions, cap, "actions")?;
        slots[..flat.len()].copy_from_slice(&flat);
        len.write(flat.len());
        Ok(())
    })
}
