//! Status codes: what every fallible call returns. The numbers are fixed, grouped by area, and
//! never reused. `pdipam_status` is a plain `int32_t`, so a C caller may pass any integer back
//! (to `pdipam_status_str`) without undefined behaviour on the Rust side.

use pdipam::{limits::LimitsError, persist::PersistError, NodeError, SubnetError};
use std::ffi::c_char;
use std::fmt;

/// The result of a call: `PDIPAM_STATUS_OK` (0) or one of the `PDIPAM_STATUS_*` codes.
#[allow(non_camel_case_types)]
pub type pdipam_status = i32;

/// Success.
pub const PDIPAM_STATUS_OK: pdipam_status = 0;
/// A required pointer argument was NULL.
pub const PDIPAM_STATUS_NULL_ARG: pdipam_status = 1;
/// An argument is malformed: not UTF-8, too long, an unknown family or enum value, a bad CIDR.
pub const PDIPAM_STATUS_INVALID_ARG: pdipam_status = 2;
/// The output buffer is too small; the needed length was reported.
pub const PDIPAM_STATUS_BUFFER_TOO_SMALL: pdipam_status = 3;
/// pdipam panicked (a bug); the handle is poisoned from now on.
pub const PDIPAM_STATUS_PANIC: pdipam_status = 4;
/// A previous call on this handle panicked: the handle refuses every call but `_free`.
pub const PDIPAM_STATUS_POISONED: pdipam_status = 5;
/// An invariant check (`_verify`) failed: a pdipam bug, described by `pdipam_last_error`.
pub const PDIPAM_STATUS_INVARIANT: pdipam_status = 6;

/// A CIDR or address outside the subnet.
pub const PDIPAM_STATUS_OUTSIDE_SUBNET: pdipam_status = 100;
/// A prefix whose address is not aligned to its length.
pub const PDIPAM_STATUS_MISALIGNED: pdipam_status = 101;
/// An IPv4 value given to an IPv6 subnet or node, or the reverse.
pub const PDIPAM_STATUS_WRONG_FAMILY: pdipam_status = 102;
/// A prefix length the subnet or node cannot use.
pub const PDIPAM_STATUS_PREFIX_LENGTH: pdipam_status = 103;
/// The space is already allocated (by whom: `pdipam_last_error`).
pub const PDIPAM_STATUS_ALREADY_ALLOCATED: pdipam_status = 104;
/// Nothing is allocated there.
pub const PDIPAM_STATUS_NOT_ALLOCATED: pdipam_status = 105;
/// An address the subnet's profile reserves (AWS: the first four and the last).
pub const PDIPAM_STATUS_RESERVED_ADDRESS: pdipam_status = 106;
/// `InsufficientCidrBlocks`: free addresses remain but no free aligned block of that length.
pub const PDIPAM_STATUS_INSUFFICIENT_CIDR_BLOCKS: pdipam_status = 107;
/// `InsufficientFreeAddressesInSubnet`: too few free addresses.
pub const PDIPAM_STATUS_INSUFFICIENT_FREE_ADDRESSES: pdipam_status = 108;
/// A reservation overlapping another.
pub const PDIPAM_STATUS_RESERVATION_OVERLAP: pdipam_status = 109;
/// No reservation with that CIDR.
pub const PDIPAM_STATUS_RESERVATION_NOT_FOUND: pdipam_status = 110;
/// A release that does not match one allocation exactly.
pub const PDIPAM_STATUS_NOT_ONE_ALLOCATION: pdipam_status = 111;
/// A subnet length pdipam does not manage (IPv4 /8 to /30, IPv6 /44 to /64).
pub const PDIPAM_STATUS_SUBNET_LENGTH: pdipam_status = 112;

/// `datastore: unknown pod`: no pod with that key.
pub const PDIPAM_STATUS_UNKNOWN_POD: pdipam_status = 200;
/// `AssignPodIPAddress: no available IP/Prefix addresses`.
pub const PDIPAM_STATUS_NO_AVAILABLE_ADDRESSES: pdipam_status = 201;
/// No interface with that id.
pub const PDIPAM_STATUS_UNKNOWN_INTERFACE: pdipam_status = 202;
/// An interface id or device number already attached.
pub const PDIPAM_STATUS_DUPLICATE_INTERFACE: pdipam_status = 203;
/// The instance allows no more interfaces.
pub const PDIPAM_STATUS_TOO_MANY_INTERFACES: pdipam_status = 204;
/// Every address slot of the interface is taken.
pub const PDIPAM_STATUS_NO_FREE_SLOT: pdipam_status = 205;
/// `datastore: IP already in data store`: the prefix or address is already attached.
pub const PDIPAM_STATUS_ALREADY_ATTACHED: pdipam_status = 206;
/// The prefix or address is not attached.
pub const PDIPAM_STATUS_NOT_ATTACHED: pdipam_status = 207;
/// `datastore: IP is used and can not be deleted` (or `ENI is used`): pods hold addresses there.
pub const PDIPAM_STATUS_IN_USE: pdipam_status = 208;
/// Addresses there are cooling down after a release.
pub const PDIPAM_STATUS_COOLING: pdipam_status = 209;
/// The primary interface cannot be removed.
pub const PDIPAM_STATUS_PRIMARY_INTERFACE: pdipam_status = 210;
/// The key already holds another address, or the address is held by another key.
pub const PDIPAM_STATUS_KEY_CONFLICT: pdipam_status = 211;
/// A pod key with an empty container id or interface name.
pub const PDIPAM_STATUS_INVALID_KEY: pdipam_status = 212;
/// An instance type not in the embedded table.
pub const PDIPAM_STATUS_UNKNOWN_INSTANCE_TYPE: pdipam_status = 213;
/// The instance type's vCPU count is unknown, so the recommended cap cannot be applied.
pub const PDIPAM_STATUS_UNKNOWN_VCPUS: pdipam_status = 214;

/// The checkpoint cannot be read or written (the operating system refused).
pub const PDIPAM_STATUS_IO: pdipam_status = 300;
/// The checkpoint is corrupt: not JSON, a bad checksum, an unknown format or version, wrong kind.
pub const PDIPAM_STATUS_CHECKPOINT_CORRUPT: pdipam_status = 301;
/// The checkpoint gives one address or key twice, or an entry the node refuses.
pub const PDIPAM_STATUS_CHECKPOINT_CONFLICT: pdipam_status = 302;

/// Each code beside its name, the name spelled from the constant's identifier (written once).
macro_rules! named {
    ($($code:ident),* $(,)?) => {
        &[$(($code, concat!(stringify!($code), "\0"))),*]
    };
}

/// Every code with its name, for `pdipam_status_str` and the tests. A test checks that every
/// `PDIPAM_STATUS_*` constant of this file is listed.
pub(crate) const NAMES: &[(pdipam_status, &str)] = named![
    PDIPAM_STATUS_OK,
    PDIPAM_STATUS_NULL_ARG,
    PDIPAM_STATUS_INVALID_ARG,
    PDIPAM_STATUS_BUFFER_TOO_SMALL,
    PDIPAM_STATUS_PANIC,
    PDIPAM_STATUS_POISONED,
    PDIPAM_STATUS_INVARIANT,
    PDIPAM_STATUS_OUTSIDE_SUBNET,
    PDIPAM_STATUS_MISALIGNED,
    PDIPAM_STATUS_WRONG_FAMILY,
    PDIPAM_STATUS_PREFIX_LENGTH,
    PDIPAM_STATUS_ALREADY_ALLOCATED,
    PDIPAM_STATUS_NOT_ALLOCATED,
    PDIPAM_STATUS_RESERVED_ADDRESS,
    PDIPAM_STATUS_INSUFFICIENT_CIDR_BLOCKS,
    PDIPAM_STATUS_INSUFFICIENT_FREE_ADDRESSES,
    PDIPAM_STATUS_RESERVATION_OVERLAP,
    PDIPAM_STATUS_RESERVATION_NOT_FOUND,
    PDIPAM_STATUS_NOT_ONE_ALLOCATION,
    PDIPAM_STATUS_SUBNET_LENGTH,
    PDIPAM_STATUS_UNKNOWN_POD,
    PDIPAM_STATUS_NO_AVAILABLE_ADDRESSES,
    PDIPAM_STATUS_UNKNOWN_INTERFACE,
    PDIPAM_STATUS_DUPLICATE_INTERFACE,
    PDIPAM_STATUS_TOO_MANY_INTERFACES,
    PDIPAM_STATUS_NO_FREE_SLOT,
    PDIPAM_STATUS_ALREADY_ATTACHED,
    PDIPAM_STATUS_NOT_ATTACHED,
    PDIPAM_STATUS_IN_USE,
    PDIPAM_STATUS_COOLING,
    PDIPAM_STATUS_PRIMARY_INTERFACE,
    PDIPAM_STATUS_KEY_CONFLICT,
    PDIPAM_STATUS_INVALID_KEY,
    PDIPAM_STATUS_UNKNOWN_INSTANCE_TYPE,
    PDIPAM_STATUS_UNKNOWN_VCPUS,
    PDIPAM_STATUS_IO,
    PDIPAM_STATUS_CHECKPOINT_CORRUPT,
    PDIPAM_STATUS_CHECKPOINT_CONFLICT,
];

/// The name of a status code, e.g. `"PDIPAM_STATUS_NULL_ARG"`: a static NUL-terminated string,
/// never NULL, to be neither freed nor changed. Any integer is fine: unknown values give
/// `"PDIPAM_STATUS_UNKNOWN"`. Thread-safe.
#[no_mangle]
pub extern "C" fn pdipam_status_str(status: pdipam_status) -> *const c_char {
    NAMES
        .iter()
        .find(|(code, _)| *code == status)
        .map_or("PDIPAM_STATUS_UNKNOWN\0", |(_, name)| name)
        .as_ptr()
        .cast()
}

/// Why a call failed, inside the crate: a status and the message `pdipam_last_error` gives.
/// Boxed, so that every `Result` on the success path stays as small as its value (the reasons
/// are large, and they cross the panic boundary only when a call fails).
#[derive(Debug)]
pub(crate) struct Failure(Box<Why>);

#[derive(Debug)]
enum Why {
    Null(&'static str),
    Invalid(String),
    BufferTooSmall,
    Invariant(String),
    Subnet(SubnetError),
    Node(NodeError),
    Limits(LimitsError),
    Persist(PersistError),
}

impl Failure {
    /// A required pointer was NULL.
    pub(crate) fn null(what: &'static str) -> Self {
        Failure(Box::new(Why::Null(what)))
    }

    /// A malformed argument, with the message naming it.
    pub(crate) fn invalid(why: String) -> Self {
        Failure(Box::new(Why::Invalid(why)))
    }

    /// The caller's buffer is too small (the needed length was reported).
    pub(crate) fn buffer_too_small() -> Self {
        Failure(Box::new(Why::BufferTooSmall))
    }

    /// An invariant check failed.
    pub(crate) fn invariant(why: String) -> Self {
        Failure(Box::new(Why::Invariant(why)))
    }

    pub(crate) fn status(&self) -> pdipam_status {
        match &*self.0 {
            Why::Null(_) => PDIPAM_STATUS_NULL_ARG,
            Why::Invalid(_) => PDIPAM_STATUS_INVALID_ARG,
            Why::BufferTooSmall => PDIPAM_STATUS_BUFFER_TOO_SMALL,
            Why::Invariant(_) => PDIPAM_STATUS_INVARIANT,
            Why::Subnet(e) => subnet_status(e),
            Why::Node(e) => node_status(e),
            Why::Limits(LimitsError::UnknownVcpus { .. }) => PDIPAM_STATUS_UNKNOWN_VCPUS,
            Why::Limits(LimitsError::UnknownInstanceType { .. }) => {
                PDIPAM_STATUS_UNKNOWN_INSTANCE_TYPE
            }
            Why::Limits(_) => PDIPAM_STATUS_INVALID_ARG,
            Why::Persist(e) => match e {
                PersistError::Io { .. } => PDIPAM_STATUS_IO,
                PersistError::DuplicateAddress { .. }
                | PersistError::DuplicateKey { .. }
                | PersistError::Node { .. } => PDIPAM_STATUS_CHECKPOINT_CONFLICT,
                _ => PDIPAM_STATUS_CHECKPOINT_CORRUPT,
            },
        }
    }
}

fn subnet_status(e: &SubnetError) -> pdipam_status {
    match e {
        SubnetError::SubnetLength { .. } => PDIPAM_STATUS_SUBNET_LENGTH,
        SubnetError::Misaligned { .. } => PDIPAM_STATUS_MISALIGNED,
        SubnetError::WrongFamily { .. } | SubnetError::NotIpv4 { .. } => PDIPAM_STATUS_WRONG_FAMILY,
        SubnetError::OutsideSubnet { .. } => PDIPAM_STATUS_OUTSIDE_SUBNET,
        SubnetError::PrefixLength { .. } => PDIPAM_STATUS_PREFIX_LENGTH,
        SubnetError::AlreadyAllocated { .. } => PDIPAM_STATUS_ALREADY_ALLOCATED,
        SubnetError::NotAllocated { .. } => PDIPAM_STATUS_NOT_ALLOCATED,
        SubnetError::NotOneAllocation { .. } => PDIPAM_STATUS_NOT_ONE_ALLOCATION,
        SubnetError::ReservedAddress { .. } => PDIPAM_STATUS_RESERVED_ADDRESS,
        SubnetError::InsufficientCidrBlocks { .. } => PDIPAM_STATUS_INSUFFICIENT_CIDR_BLOCKS,
        SubnetError::InsufficientFreeAddressesInSubnet { .. } => {
            PDIPAM_STATUS_INSUFFICIENT_FREE_ADDRESSES
        }
        SubnetError::ReservationOverlap { .. } => PDIPAM_STATUS_RESERVATION_OVERLAP,
        SubnetError::ReservationNotFound { .. } => PDIPAM_STATUS_RESERVATION_NOT_FOUND,
        _ => PDIPAM_STATUS_INVALID_ARG,
    }
}

fn node_status(e: &NodeError) -> pdipam_status {
    match e {
        NodeError::InvalidKey { .. } => PDIPAM_STATUS_INVALID_KEY,
        NodeError::NoAvailableAddresses { .. } => PDIPAM_STATUS_NO_AVAILABLE_ADDRESSES,
        NodeError::KeyHoldsOther { .. } | NodeError::AddressInUse { .. } => {
            PDIPAM_STATUS_KEY_CONFLICT
        }
        NodeError::AddressCooling { .. } | NodeError::Cooling { .. } => PDIPAM_STATUS_COOLING,
        NodeError::InterfaceCooling { .. } => PDIPAM_STATUS_COOLING,
        NodeError::UnknownPod { .. } => PDIPAM_STATUS_UNKNOWN_POD,
        NodeError::UnknownInterface { .. } => PDIPAM_STATUS_UNKNOWN_INTERFACE,
        NodeError::DuplicateInterface { .. } | NodeError::DuplicateDeviceNumber { .. } => {
            PDIPAM_STATUS_DUPLICATE_INTERFACE
        }
        NodeError::TooManyInterfaces { .. } => PDIPAM_STATUS_TOO_MANY_INTERFACES,
        NodeError::NoFreeSlot { .. } => PDIPAM_STATUS_NO_FREE_SLOT,
        NodeError::AlreadyAttached { .. } => PDIPAM_STATUS_ALREADY_ATTACHED,
        NodeError::PrefixLength { .. } => PDIPAM_STATUS_PREFIX_LENGTH,
        NodeError::Misaligned { .. } => PDIPAM_STATUS_MISALIGNED,
        NodeError::NotAttached { .. } => PDIPAM_STATUS_NOT_ATTACHED,
        NodeError::InUse { .. } | NodeError::InterfaceInUse { .. } => PDIPAM_STATUS_IN_USE,
        NodeError::PrimaryInterface { .. } => PDIPAM_STATUS_PRIMARY_INTERFACE,
        _ => PDIPAM_STATUS_INVALID_ARG,
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Why::Null(what) => write!(f, "{what} is NULL"),
            Why::Invalid(why) | Why::Invariant(why) => f.write_str(why),
            Why::BufferTooSmall => f.write_str("the buffer is too small"),
            Why::Subnet(e) => e.fmt(f),
            Why::Node(e) => e.fmt(f),
            Why::Limits(e) => e.fmt(f),
            Why::Persist(e) => e.fmt(f),
        }
    }
}

impl From<SubnetError> for Failure {
    fn from(e: SubnetError) -> Self {
        Failure(Box::new(Why::Subnet(e)))
    }
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        Failure(Box::new(Why::Node(e)))
    }
}

impl From<LimitsError> for Failure {
    fn from(e: LimitsError) -> Self {
        Failure(Box::new(Why::Limits(e)))
    }
}

impl From<PersistError> for Failure {
    fn from(e: PersistError) -> Self {
        Failure(Box::new(Why::Persist(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_names_terminated() {
        let mut codes: Vec<_> = NAMES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), NAMES.len());
        for (_, name) in NAMES {
            assert!(name.ends_with('\0') && name.starts_with("PDIPAM_STATUS_"));
        }
    }

    #[test]
    fn every_status_constant_is_named() {
        let source = include_str!("status.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub const "))
            .filter_map(|l| l.split(':').next())
            .collect();
        assert!(declared.len() > 30, "{declared:?}");
        for name in declared {
            let listed = NAMES
                .iter()
                .any(|(_, n)| n.strip_suffix('\0') == Some(name));
            assert!(listed, "{name} is not in NAMES");
        }
    }
}
