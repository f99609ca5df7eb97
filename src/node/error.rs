//! Errors of the node layer. Texts carry the words of the VPC CNI's messages (docs/rules.md, "The words users search for") where the
//! condition is the same, so a search for the old message finds the new one.

use super::{PodKey, Timestamp};
use ipnet::IpNet;
use std::net::IpAddr;

/// Why a node operation failed. A failed call changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A key with an empty container id or interface name.
    #[error("invalid pod key {key}: {reason}")]
    InvalidKey {
        /// The key.
        key: PodKey,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// IPv6 pod addresses come from delegated prefixes only (ipamd refuses IPv6 in secondary-IP
    /// mode with these words): an IPv6 secondary address, or an assignment on an IPv6 node in
    /// secondary-IP mode.
    #[error("V6 is only supported in PD mode: {what}")]
    Ipv6NeedsPrefixMode {
        /// What was asked.
        what: String,
    },
    /// No serving address is free; `cooling` more are resting after a release.
    #[error(
        "AssignPodIPAddress: no available IP/Prefix addresses for {key} \
         ({cooling} addresses cooling down)"
    )]
    NoAvailableAddresses {
        /// The key that asked.
        key: PodKey,
        /// Addresses that are free but still cooling down.
        cooling: u32,
    },
    /// The key holds another address than the one asked for.
    #[error("pod {key} already holds {held}")]
    KeyHoldsOther {
        /// The key.
        key: PodKey,
        /// The address it holds.
        held: IpAddr,
    },
    /// The address is held by another pod.
    #[error("datastore: IP is used: {address} is assigned to another pod")]
    AddressInUse {
        /// The address.
        address: IpAddr,
    },
    /// The address is cooling down after a release.
    #[error("{address} is cooling down after a release")]
    AddressCooling {
        /// The address.
        address: IpAddr,
    },
    /// Release of a key that holds no address (CNI DEL callers may treat this as success).
    #[error("datastore: unknown pod {key}")]
    UnknownPod {
        /// The key.
        key: PodKey,
    },
    /// No interface with this id.
    #[error("unknown interface {id}")]
    UnknownInterface {
        /// The id.
        id: String,
    },
    /// An interface with this id is attached already.
    #[error("interface {id} is already attached")]
    DuplicateInterface {
        /// The id.
        id: String,
    },
    /// Another interface has this device number.
    #[error("device number {device_number} is already used by interface {existing}")]
    DuplicateDeviceNumber {
        /// The device number.
        device_number: u32,
        /// The interface holding it.
        existing: String,
    },
    /// The instance allows no more interfaces.
    #[error("{instance_type} allows {limit} interfaces and all are attached")]
    TooManyInterfaces {
        /// The instance type.
        instance_type: String,
        /// The limit that applied (instance or `max_eni`).
        limit: u32,
    },
    /// The interface's address slots are all taken.
    #[error("interface {interface} has no free {family} address slot ({slots} slots on {instance_type})")]
    NoFreeSlot {
        /// The interface.
        interface: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// Its slot count, primary address included.
        slots: u32,
        /// The instance type.
        instance_type: String,
    },
    /// The CIDR (or an overlapping one) is attached already.
    #[error(
        "datastore: IP already in data store: {cidr} overlaps {existing} on interface {interface}"
    )]
    AlreadyAttached {
        /// The CIDR asked for.
        cidr: IpNet,
        /// The attached block or primary address it overlaps.
        existing: IpNet,
        /// The interface holding it.
        interface: String,
    },
    /// A prefix of the wrong length: IPv4 prefixes are /28, IPv6 prefixes /80.
    #[error("prefix {cidr} has the wrong length: expected /{expected}")]
    PrefixLength {
        /// The prefix.
        cidr: IpNet,
        /// The length expected for its family.
        expected: u8,
    },
    /// A prefix with host bits set.
    #[error("prefix {cidr} is not aligned: host bits are set")]
    Misaligned {
        /// The prefix.
        cidr: IpNet,
    },
    /// The instance cannot hold IPv6 addresses (or its IPv6 limit is unknown).
    #[error("{instance_type} has no known IPv6 address slots")]
    Ipv6Unsupported {
        /// The instance type.
        instance_type: String,
    },
    /// No such prefix or secondary address is attached.
    #[error("{cidr} is not attached to this node")]
    NotAttached {
        /// The CIDR.
        cidr: IpNet,
    },
    /// The block holds pods; force the removal to drop them.
    #[error("datastore: IP is used and can not be deleted: {cidr} holds {pods} pods")]
    InUse {
        /// The block.
        cidr: IpNet,
        /// Pods holding addresses in it.
        pods: u32,
    },
    /// The block holds addresses still cooling down; force the removal or wait.
    #[error("{cidr} holds addresses cooling down until {until}")]
    Cooling {
        /// The block.
        cidr: IpNet,
        /// When its last address finishes cooling.
        until: Timestamp,
    },
    /// The interface holds pods; force the removal to drop them.
    #[error("datastore: ENI is used and can not be deleted: {id} holds {pods} pods")]
    InterfaceInUse {
        /// The interface.
        id: String,
        /// Pods holding addresses on it.
        pods: u32,
    },
    /// The interface holds addresses still cooling down.
    #[error("interface {id} holds addresses cooling down until {until}")]
    InterfaceCooling {
        /// The interface.
        id: String,
        /// When its last address finishes cooling.
        until: Timestamp,
    },
    /// The primary interface is removed only by a forced call.
    #[error("interface {id} is the primary interface and is removed only when forced")]
    PrimaryInterface {
        /// The interface.
        id: String,
    },
}

/// A broken invariant found by [`Node::verify`](crate::Node::verify).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("node invariant violated: {0}")]
pub struct NodeInvariantViolation(pub String);
