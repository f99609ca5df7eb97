//! Node checkpoints from C: saved durably (temporary file, fsync, rename), loaded with every
//! check of the format (checksum, duplicates, quarantine).

use crate::boundary::{run, run_on};
use crate::node::pdipam_node;
use crate::raw::{self, Out};
use crate::status::{pdipam_status, Failure};
use pdipam::{
    persist::{write_durably, NodeCheckpoint, PersistError},
    planner::WarmSettings,
    SystemClock,
};
use std::ffi::c_char;
use std::path::Path;
use std::sync::Arc;

/// Writes the node (with its warm settings) to `path` durably: a failed write leaves the old
/// file as it was.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG` (path not UTF-8); `IO`.
/// Thread-safe (take it with assignments stopped for one consistent state).
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `path` is a NUL-terminated string that stays alive and unchanged during the call.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_save(
    node: *const pdipam_node,
    path: *const c_char,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let path = raw::text(path, "path")?;
        let bytes = n.node.checkpoint(Some(&n.settings())).to_bytes();
        Ok(write_durably(Path::new(path), &bytes)?)
    })
}

/// Restores a node from the checkpoint at `path` into `*node_out`; `*quarantined_out` (may be
/// NULL) gets the number of allocations whose address lies in no attached block (kept aside,
/// never given to another pod).
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG`; `IO`; `CHECKPOINT_CORRUPT` (not JSON, bad checksum,
/// unknown format or version, wrong kind); `CHECKPOINT_CONFLICT` (an address or key twice, an
/// entry the node refuses). `pdipam_last_error` names the file and the entry. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `path` is a NUL-terminated string that stays alive and unchanged
/// during the call; `quarantined_out` is writable for one `usize`; `node_out` is writable for one
/// `pdipam_node *`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_load(
    path: *const c_char,
    quarantined_out: *mut usize,
    node_out: *mut *mut pdipam_node,
) -> pdipam_status {
    run(|| {
        let path = raw::text(path, "path")?;
        let out = Out::new(node_out, "node_out")?;
        let bytes = std::fs::read(path).map_err(|e| {
            Failure::from(PersistError::Io {
                source_name: path.into(),
                operation: "read",
                source: e,
            })
        })?;
        let checkpoint = NodeCheckpoint::from_bytes(&bytes, path)?;
        let restored = checkpoint.restore(path, Arc::new(SystemClock))?;
        raw::write_optional(quarantined_out, restored.quarantined.len());
        let settings = restored
            .settings
            .unwrap_or_else(WarmSettings::shipped_manifest);
        out.write(pdipam_node::boxed(restored.node, settings));
        Ok(())
    })
}
