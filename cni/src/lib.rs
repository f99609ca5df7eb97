//! `pdipam-cni`: a CNI IPAM plugin that gives pods addresses from a node's delegated prefixes
//! (or secondary addresses), on pdipam's node.
//!
//! A container runtime runs it once per call: the verb and the container in environment
//! variables, the network configuration on stdin, the result or a CNI error object on stdout.
//! [`run`] is that whole call, so tests drive it in-process as well as through the binary.
//! See `docs/cni.md` for the configuration.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod env;
pub mod error;
pub mod fleet;
pub mod lock;
pub mod registry;
pub mod result;
pub mod state;
pub mod verbs;
pub mod version;

pub use error::CniError;
pub use verbs::run;
