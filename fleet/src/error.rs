//! Why a fleet call failed. Every variant names the value at fault; a failed call has changed
//! nothing, in etcd or in the local mirror.

use ipnet::IpNet;
use pdipam::SubnetError;
use std::time::Duration;

/// A fleet call's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// etcd could not be reached or refused the request (connection, authentication, a lost
    /// leader): nothing changed.
    #[error("etcd unavailable at {endpoints}: {source}")]
    Unavailable {
        /// The endpoints tried.
        endpoints: String,
        /// The client's error.
        #[source]
        source: etcd_client::Error,
    },
    /// etcd refused this client: its TLS certificate, or its user and password.
    #[error("etcd at {endpoints} refused this client: {reason}")]
    Rejected {
        /// The endpoints tried.
        endpoints: String,
        /// Why, as far as the client can tell.
        reason: String,
        /// The client's error.
        #[source]
        source: etcd_client::Error,
    },
    /// The credentials cannot be used: a file that cannot be read, a certificate without its
    /// key, `https://` endpoints without a CA. Names the file or setting, never a secret.
    #[error("etcd credentials: {message}")]
    Credentials {
        /// What is wrong.
        message: String,
    },
    /// etcd did not answer in time: nothing changed locally. A claim whose answer was lost is
    /// resolved by reading again (the holder record says whether it was this node's).
    #[error("etcd unavailable at {endpoints}: no answer within {after:?}")]
    Timeout {
        /// The endpoints tried.
        endpoints: String,
        /// The timeout.
        after: Duration,
    },
    /// The subnet refused: out of space (`InsufficientCidrBlocks`,
    /// `InsufficientFreeAddressesInSubnet`), a CIDR outside it, already allocated, ...
    #[error(transparent)]
    Subnet(#[from] SubnetError),
    /// No fleet subnet with this CIDR under the keyspace (`init` creates it).
    #[error("no fleet subnet {cidr}: {key} does not exist (run `pdipam fleet init`)")]
    NotInitialised {
        /// The subnet asked for.
        cidr: IpNet,
        /// Its configuration key.
        key: String,
    },
    /// `init` found the subnet configured differently.
    #[error("fleet subnet {cidr} exists with another configuration at {key}")]
    ConfiguredDifferently {
        /// The subnet.
        cidr: IpNet,
        /// Its configuration key.
        key: String,
    },
    /// The configuration is not one pdipam accepts.
    #[error("fleet subnet {cidr}: {message}")]
    Config {
        /// The subnet.
        cidr: IpNet,
        /// What is wrong.
        message: String,
    },
    /// A stored value pdipam cannot read: it is left as it is.
    #[error("{key}: corrupt: {message}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// This node's registration is gone or under another lease (it expired during a pause, or
    /// an operator released the node): nothing can be committed under the old lease.
    #[error("node {node} no longer holds lease {lease:x}: its registration expired or was released; nothing was written")]
    Fenced {
        /// The node.
        node: String,
        /// The lease it held.
        lease: i64,
    },
    /// Other members kept changing the chunks this call wanted.
    #[error("{cidr}: gave up after {attempts} attempts, each lost to a concurrent change")]
    Contention {
        /// The subnet.
        cidr: IpNet,
        /// Attempts made.
        attempts: u32,
    },
    /// A release of an allocation another node holds.
    #[error("{cidr} is held by node {holder}, not by {node}")]
    NotHolder {
        /// The allocation.
        cidr: IpNet,
        /// Its holder.
        holder: String,
        /// The node asking.
        node: String,
    },
    /// A prefix that would span more than 64 chunks: one transaction covers at most 64.
    #[error("/{len} spans more than 64 chunks (/{chunk_len}) of {cidr}: one etcd transaction covers at most 64; create the fleet subnet with a coarser --chunk-len")]
    LargerThanChunk {
        /// The subnet.
        cidr: IpNet,
        /// The length asked for.
        len: u8,
        /// The chunk length.
        chunk_len: u8,
    },
}
