//! Reconciling a node with what the cloud reports attached (`Node::reconcile`) for C callers:
//! the report goes in as an array of plain structs, the diff comes back as a read-only handle
//! of changes, each a plain value, with the pod keys and refusal messages read as text.

use crate::boundary::{run_on, Guarded};
use crate::node::{flags_arg, interface_id_arg, pdipam_node, PDIPAM_INTERFACE_ID_MAX};
use crate::prefix::pdipam_prefix;
use crate::raw::{self, Out};
use crate::status::{pdipam_status, Failure, PDIPAM_STATUS_OK};
use ipnet::IpNet;
use pdipam::{CloudDiff, InterfaceSpec, NodeError, ObservedInterface, PodKey};
use std::ffi::c_char;
use std::sync::atomic::AtomicBool;

/// One interface as the cloud reports it (EC2 `DescribeNetworkInterfaces` or the instance
/// metadata). Its arrays may be NULL when their length is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_observed_interface {
    /// The interface id (1 to 63 bytes, NUL-terminated).
    pub interface_id: *const c_char,
    /// Its device number.
    pub device_number: u32,
    /// `PDIPAM_INTERFACE_*` flags, used when the interface is new to the node.
    pub flags: u32,
    /// Its primary address (a /32 or /128).
    pub primary_addr: pdipam_prefix,
    /// Its delegated prefixes.
    pub prefixes: *const pdipam_prefix,
    /// How many.
    pub prefixes_len: usize,
    /// Its secondary addresses (/32); the primary address listed here is skipped.
    pub addresses: *const pdipam_prefix,
    /// How many.
    pub addresses_len: usize,
}

/// The cloud reports an interface the node did not have: added.
pub const PDIPAM_CHANGE_ADDED_INTERFACE: u8 = 0;
/// The node had an interface the cloud no longer reports: removed with its blocks.
pub const PDIPAM_CHANGE_REMOVED_INTERFACE: u8 = 1;
/// A block (prefix, or secondary address as /32) added.
pub const PDIPAM_CHANGE_ADDED_BLOCK: u8 = 2;
/// A block removed from an interface still attached.
pub const PDIPAM_CHANGE_REMOVED_BLOCK: u8 = 3;
/// A pod whose address vanished, now in quarantine (`block` is its address; read its key with
/// `pdipam_cloud_diff_pod_key` and release it with `pdipam_node_release` when the pod is gone).
pub const PDIPAM_CHANGE_QUARANTINED: u8 = 4;
/// A quarantined pod whose address an added block holds: it has it again.
pub const PDIPAM_CHANGE_REINSTATED: u8 = 5;
/// Reported, but pdipam gave it back less than 60 s ago: not added (stale metadata).
pub const PDIPAM_CHANGE_IGNORED_GIVEN_BACK: u8 = 6;
/// Not reported, but pdipam attached it less than 60 s ago: kept.
pub const PDIPAM_CHANGE_AWAITING_REPORT: u8 = 7;
/// Reported, but not taken: `status` says why, `pdipam_cloud_diff_message` in words.
pub const PDIPAM_CHANGE_REFUSED: u8 = 8;

/// One change of a reconcile. A plain value, written by `pdipam_cloud_diff_change`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_cloud_change {
    /// `PDIPAM_CHANGE_*`.
    pub kind: u8,
    /// Non-zero when `block` is set (a block change, a pod's address); 0 for an interface.
    pub has_block: u8,
    /// For `PDIPAM_CHANGE_REFUSED`, the status the attachment would have failed with; else
    /// `PDIPAM_STATUS_OK`.
    pub status: pdipam_status,
    /// The interface (NUL-terminated); empty for a pod entry.
    pub interface_id: [c_char; PDIPAM_INTERFACE_ID_MAX],
    /// The block, or the pod's address.
    pub block: pdipam_prefix,
}

/// What one `pdipam_node_reconcile` changed, made by it. Read-only: calls on it may run from
/// any number of threads. `pdipam_cloud_diff_free` must be the last call.
pub struct pdipam_cloud_diff {
    changes: Vec<Change>,
    poisoned: AtomicBool,
}

impl Guarded for pdipam_cloud_diff {
    fn poison_flag(&self) -> &AtomicBool {
        &self.poisoned
    }
}

struct Change {
    kind: u8,
    interface: String,
    block: Option<IpNet>,
    pod: Option<PodKey>,
    refusal: Option<NodeError>,
}

impl Change {
    fn of(kind: u8, interface: &str, block: Option<IpNet>) -> Self {
        Change {
            kind,
            interface: interface.to_owned(),
            block,
            pod: None,
            refusal: None,
        }
    }
}

/// The diff's changes in the order the header documents.
fn flatten(diff: CloudDiff) -> Vec<Change> {
    let mut out = Vec::new();
    for i in &diff.added_interfaces {
        out.push(Change::of(PDIPAM_CHANGE_ADDED_INTERFACE, i, None));
    }
    for i in &diff.removed_interfaces {
        out.push(Change::of(PDIPAM_CHANGE_REMOVED_INTERFACE, i, None));
    }
    for (i, b) in &diff.added_blocks {
        out.push(Change::of(PDIPAM_CHANGE_ADDED_BLOCK, i, Some(*b)));
    }
    for (i, b) in &diff.removed_blocks {
        out.push(Change::of(PDIPAM_CHANGE_REMOVED_BLOCK, i, Some(*b)));
    }
    for q in diff.quarantined {
        let mut c = Change::of(PDIPAM_CHANGE_QUARANTINED, "", Some(IpNet::from(q.address)));
        c.pod = Some(q.key);
        out.push(c);
    }
    for k in diff.reinstated {
        let mut c = Change::of(PDIPAM_CHANGE_REINSTATED, "", None);
        c.pod = Some(k);
        out.push(c);
    }
    for (i, b) in &diff.ignored_given_back {
        out.push(Change::of(PDIPAM_CHANGE_IGNORED_GIVEN_BACK, i, *b));
    }
    for (i, b) in &diff.awaiting_report {
        out.push(Change::of(PDIPAM_CHANGE_AWAITING_REPORT, i, *b));
    }
    for (i, b, e) in diff.refused {
        let mut c = Change::of(PDIPAM_CHANGE_REFUSED, &i, b);
        c.refusal = Some(e);
        out.push(c);
    }
    out
}

fn observed(o: &pdipam_observed_interface) -> Result<ObservedInterface, Failure> {
    let id = interface_id_arg(o.interface_id)?;
    let primary = o.primary_addr.read_addr()?;
    let spec = InterfaceSpec::new(id, o.device_number, primary).flags(flags_arg(o.flags)?);
    let mut out = ObservedInterface::new(spec);
    for p in raw::input_array(o.prefixes, o.prefixes_len, "prefixes")? {
        out = out.prefix(p.read_net()?);
    }
    for a in raw::input_array(o.addresses, o.addresses_len, "addresses")? {
        out = out.secondary_address(a.read_addr()?);
    }
    Ok(out)
}

/// Brings the node in line with what the cloud reports attached (`observed`, `observed_len`
/// interfaces; NULL when 0), in one change that assignments see whole or not at all, and
/// writes the diff's handle to `*diff_out` (docs/rules.md, "Reconciling with the cloud").
/// Appeared interfaces and blocks are added; vanished ones removed, their pods quarantined
/// (never dropped); what pdipam gave back or attached less than 60 s ago is held off.
/// What cannot be taken is listed as `PDIPAM_CHANGE_REFUSED`; the rest still applies.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG` (a malformed id, address or
/// flag in the report: nothing changed). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `observed` points to `observed_len` initialised `pdipam_observed_interface`s,
/// each with a NUL-terminated `interface_id` and arrays of the given lengths, all unchanged
/// during the call; `diff_out` is writable for one `pdipam_cloud_diff *`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_reconcile(
    node: *const pdipam_node,
    observed: *const pdipam_observed_interface,
    observed_len: usize,
    diff_out: *mut *mut pdipam_cloud_diff,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let report = raw::input_array(observed, observed_len, "observed")?
            .iter()
            .map(self::observed)
            .collect::<Result<Vec<_>, Failure>>()?;
        let out = Out::new(diff_out, "diff_out")?;
        let changes = flatten(n.node.reconcile(&report));
        out.write(Box::into_raw(Box::new(pdipam_cloud_diff {
            changes,
            poisoned: AtomicBool::new(false),
        })));
        Ok(())
    })
}

/// Frees a diff. NULL is fine. No other call on it may be running or follow.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `diff` comes from `pdipam_node_reconcile` and is freed once,
/// with no other call on it running or to come.
#[no_mangle]
pub unsafe extern "C" fn pdipam_cloud_diff_free(diff: *mut pdipam_cloud_diff) {
    raw::free(diff);
}

/// How many changes the diff lists into `*len_out` (0: the node matched the report). They come
/// in this order: added interfaces, removed interfaces, added blocks, removed blocks,
/// quarantined pods, reinstated pods, ignored, awaiting report, refused.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `diff` is a `pdipam_cloud_diff` handle that is not freed before
/// this call returns; `len_out` is writable for one `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_cloud_diff_len(
    diff: *const pdipam_cloud_diff,
    len_out: *mut usize,
) -> pdipam_status {
    run_on(diff, "diff", |d| {
        Out::new(len_out, "len_out")?.write(d.changes.len());
        Ok(())
    })
}

fn change(d: &pdipam_cloud_diff, index: usize) -> Result<&Change, Failure> {
    d.changes.get(index).ok_or_else(|| {
        Failure::invalid(format!("change {index}: the diff has {}", d.changes.len()))
    })
}

/// Change `index` into `*change_out`.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG` (index out of range).
/// Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `diff` is a `pdipam_cloud_diff` handle that is not freed before
/// this call returns; `change_out` is writable for one `pdipam_cloud_change`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_cloud_diff_change(
    diff: *const pdipam_cloud_diff,
    index: usize,
    change_out: *mut pdipam_cloud_change,
) -> pdipam_status {
    run_on(diff, "diff", |d| {
        let c = change(d, index)?;
        let out = Out::new(change_out, "change_out")?;
        let mut interface_id = [0 as c_char; PDIPAM_INTERFACE_ID_MAX];
        // Ids were checked to be shorter than the array on the way in (or came from the node,
        // which took them through the same check).
        for (dst, src) in interface_id
            .iter_mut()
            .zip(c.interface.bytes().take(PDIPAM_INTERFACE_ID_MAX - 1))
        {
            *dst = src as c_char;
        }
        let zero = pdipam_prefix::from_addr(std::net::Ipv4Addr::UNSPECIFIED.into());
        out.write(pdipam_cloud_change {
            kind: c.kind,
            has_block: u8::from(c.block.is_some()),
            status: c
                .refusal
                .clone()
                .map_or(PDIPAM_STATUS_OK, |e| Failure::from(e).status()),
            interface_id,
            block: c.block.map_or(zero, pdipam_prefix::from_net),
        });
        Ok(())
    })
}

/// Part `part` of the key of the pod change `index` names (0 the network name, 1 the
/// container id, 2 the interface name) into `buf` (`buf_len` bytes, NUL-terminated), its length
/// into `*len_out`.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG` (index out of range, not a pod
/// change, a part other than 0 to 2); `BUFFER_TOO_SMALL` (the length needed is in `*len_out`).
/// Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `diff` is a `pdipam_cloud_diff` handle that is not freed before
/// this call returns; `buf` is writable for `buf_len` bytes; `len_out` is writable for one
/// `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_cloud_diff_pod_key(
    diff: *const pdipam_cloud_diff,
    index: usize,
    part: u8,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> pdipam_status {
    run_on(diff, "diff", |d| {
        let c = change(d, index)?;
        let key = c
            .pod
            .as_ref()
            .ok_or_else(|| Failure::invalid(format!("change {index}: not a pod change")))?;
        let text = match part {
            0 => key.network_name(),
            1 => key.container_id(),
            2 => key.if_name(),
            other => {
                return Err(Failure::invalid(format!(
                    "key part {other}: expected 0, 1 or 2"
                )))
            }
        };
        raw::write_text(text, buf, buf_len, len_out)
    })
}

/// Why change `index` was refused, in words naming the value (ipamd's where it has them), into
/// `buf` (`buf_len` bytes, NUL-terminated), its length into `*len_out`.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG` (index out of range, not a
/// refusal); `BUFFER_TOO_SMALL` (the length needed is in `*len_out`). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `diff` is a `pdipam_cloud_diff` handle that is not freed before
/// this call returns; `buf` is writable for `buf_len` bytes; `len_out` is writable for one
/// `size_t`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_cloud_diff_message(
    diff: *const pdipam_cloud_diff,
    index: usize,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> pdipam_status {
    run_on(diff, "diff", |d| {
        let c = change(d, index)?;
        let e = c
            .refusal
            .as_ref()
            .ok_or_else(|| Failure::invalid(format!("change {index}: not a refusal")))?;
        raw::write_text(&e.to_string(), buf, buf_len, len_out)
    })
}
