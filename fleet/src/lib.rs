//! # pdipam-fleet
//!
//! One pdipam subnet shared by many nodes, its state in etcd v3.
//!
//! The subnet's allocations are split into chunks, each an aligned block of the subnet stored
//! as one etcd key with the holder (node and lease) of every allocation in it. Each member keeps
//! a mirror of the chunks, chooses candidates locally with pdipam's own placement, and commits
//! a claim with one transaction that compares the chunk's `mod_revision` and the member's
//! lease: two members never commit the same block, and a member whose lease expired commits
//! nothing. The keyspace and the protocol are described in `docs/fleet.md`.
//!
//! ```no_run
//! use pdipam_fleet::{Etcd, FleetConfig, FleetSubnet, Keyspace, Member};
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let etcd = Etcd::connect(&["http://127.0.0.1:2379".into()], Duration::from_secs(5)).await?;
//! let keys = Keyspace::new("");
//! let cidr = "10.0.0.0/16".parse()?;
//! FleetSubnet::init(&etcd, &keys, &FleetConfig::new(cidr)).await?; // once per subnet
//! let me = Member::join(&etcd, &keys, "node-1", Duration::from_secs(30)).await?;
//! let subnet = FleetSubnet::open(&etcd, &keys, cidr, &me).await?;
//! let prefix = subnet.allocate_prefix(28).await?;
//! subnet.release(prefix).await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod chunk;
mod config;
mod credentials;
mod error;
mod etcd;
mod feed;
mod keyspace;
mod member;
mod mirror;
mod provider;
mod reclaim;
mod reserve;
mod snapshot;
mod subnet;
#[cfg(feature = "testing")]
pub mod testing;
mod verify;

pub use chunk::{Chunk, Kind, Run};
pub use config::FleetConfig;
pub use credentials::Credentials;
pub use error::FleetError;
pub use etcd::{Etcd, DEFAULT_TIMEOUT};
pub use keyspace::Keyspace;
pub use member::Member;
pub use provider::EtcdProvider;
pub use reclaim::{release_node, ReclaimReport, Reclaimer};
pub use reserve::{add_reservation, remove_reservation};
pub use subnet::FleetSubnet;
pub use verify::{verify, FleetReport};
