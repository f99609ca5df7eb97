//! Errors of the persistence layer: each names the file (or source) it concerns.

use crate::node::{NodeError, PodKey};
use crate::SubnetError;
use std::net::IpAddr;

/// Why a checkpoint could not be written, read or restored. A failed write leaves the previous
/// file intact; a failed restore builds nothing.
///
/// Each message already includes its cause's text; [`std::error::Error::source`] gives the cause
/// itself (the [`std::io::Error`], with its kind, or the node's or subnet's refusal). Like
/// `io::Error` it is neither `Clone` nor comparable: match on the variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// The operating system refused (open, write, fsync, rename).
    #[error("{source_name}: {operation} failed: {source}")]
    Io {
        /// The file.
        source_name: String,
        /// What was being done.
        operation: &'static str,
        /// The system's error, with its kind.
        source: std::io::Error,
    },
    /// Not JSON, or not the shape of a checkpoint.
    #[error("{source_name}: not a valid checkpoint: {message}")]
    Parse {
        /// The file.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A format or version this build does not read.
    #[error("{source_name}: unknown checkpoint version {found:?} (this build reads {expected})")]
    UnknownVersion {
        /// The file.
        source_name: String,
        /// The version found.
        found: String,
        /// The version this build reads.
        expected: String,
    },
    /// The checksum does not match the contents: the file is corrupt.
    #[error("{source_name}: bad checksum: the file says {stored}, its contents give {computed}")]
    BadChecksum {
        /// The file.
        source_name: String,
        /// The checksum written in it.
        stored: String,
        /// The checksum of what it holds.
        computed: String,
    },
    /// A node checkpoint where a subnet one was expected, or the reverse.
    #[error("{source_name}: holds a {found} checkpoint, not a {expected} one")]
    WrongKind {
        /// The file.
        source_name: String,
        /// What it holds.
        found: String,
        /// What was asked for.
        expected: &'static str,
    },
    /// Two allocations with the same address (ipamd aborts startup on this too, with the words
    /// `IP already in data store`).
    #[error("{source_name}: IP already in data store: {address} is allocated twice: to {first} and to {second}")]
    DuplicateAddress {
        /// The file.
        source_name: String,
        /// The address.
        address: IpAddr,
        /// The first key holding it.
        first: PodKey,
        /// The second key holding it.
        second: PodKey,
    },
    /// Two allocations with the same key.
    #[error("{source_name}: {key} appears twice")]
    DuplicateKey {
        /// The file.
        source_name: String,
        /// The key.
        key: PodKey,
    },
    /// An entry the node refused (an attachment beyond the instance's slots, an overlap, ...).
    #[error("{source_name}: {entry}: {error}")]
    Node {
        /// The file.
        source_name: String,
        /// The entry, described.
        entry: String,
        /// The node's refusal.
        #[source]
        error: NodeError,
    },
    /// Both files of a checkpoint kept as two [`Generations`](super::Generations) exist and
    /// neither opens.
    #[error("{source_name}: neither generation opens: {first}; {second}")]
    NoValidGeneration {
        /// The checkpoint's name (its first file).
        source_name: String,
        /// Why the first file does not open.
        first: Box<PersistError>,
        /// Why the second file does not open.
        second: Box<PersistError>,
    },
    /// Both files of a checkpoint kept as two [`Generations`](super::Generations) open, with
    /// the same time and different content: no write makes that (a copy or an edit did), and
    /// which one is right cannot be told.
    #[error("{source_name} and {other}: two different generations written at the same time {written_at}")]
    ConflictingGenerations {
        /// The first file.
        source_name: String,
        /// The second file.
        other: String,
        /// The time both say they were written.
        written_at: crate::node::Timestamp,
    },
    /// An entry the subnet refused.
    #[error("{source_name}: {entry}: {error}")]
    Subnet {
        /// The file.
        source_name: String,
        /// The entry, described.
        entry: String,
        /// The subnet's refusal.
        #[source]
        error: SubnetError,
    },
}
