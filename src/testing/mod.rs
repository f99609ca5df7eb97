//! Naive reference models, shared by tests, fuzz targets and benches. Not a stable API.
//!
//! Each model implements the documented contract of a fast structure the obvious way (ordered
//! maps, linear scans, one big lock), sharing only validation helpers and the error and result
//! types with it, so that a disagreement points at a real bug. The benches use them as the
//! baseline.

mod node;
pub mod node_ops;
mod subnet;

pub use node::NaiveNode;
pub use subnet::NaiveSubnet;

/// Makes the next `n` durable checkpoint writes fail just before their rename (the worst
/// moment), process-wide, so tests can check that a failed write leaves the previous file and
/// rolls write-through changes back.
pub fn fail_next_checkpoint_writes(n: u64) {
    crate::persist::durable::FAIL_WRITES.store(n, std::sync::atomic::Ordering::SeqCst);
}
