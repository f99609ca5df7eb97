//! Checkpoints: pdipam's own versioned, checksummed format for nodes and subnets, durable
//! writes, restore that never drops an entry silently, import of ipamd's `vpc-cni-ipam/1`, and
//! a write-through node. The format is documented in `docs/checkpoint.md`.

pub(crate) mod durable;
mod envelope;
mod error;
mod generations;
mod node;
mod subnet;
mod vpc_cni;
mod write_through;

pub use durable::write_durably;
pub use envelope::{FORMAT as CHECKPOINT_FORMAT, VERSION as CHECKPOINT_VERSION};
pub use error::PersistError;
pub use generations::Generations;
pub use node::{
    ConfigRecord, CoolingEntry, InterfaceRecord, NodeCheckpoint, PodEntry, RestoredNode,
};
pub use subnet::SubnetCheckpoint;
pub use vpc_cni::{import_vpc_cni, read_vpc_cni, ImportReport, VpcCniEntry, VPC_CNI_VERSION};
pub use write_through::{CheckpointStore, WriteThroughError, WriteThroughNode};
