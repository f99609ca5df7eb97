//! `pdipam_subnet`: one subnet's bitmap allocator behind an opaque handle.

use crate::boundary::{run, run_on, Guarded};
use crate::prefix::{addr_arg, net_arg, pdipam_prefix};
use crate::raw::{self, Out};
use crate::status::{pdipam_status, Failure};
use pdipam::{Placement, ReservationKind, ReservedProfile, Subnet, SubnetOptions};
use std::ffi::c_char;
use std::sync::atomic::AtomicBool;

/// A subnet: its free and allocated space, reservations, placement and diagnostics.
///
/// Thread safety: every call but `pdipam_subnet_free` takes a `const pdipam_subnet *` and may run
/// on many threads at once (allocations of up to 64 units take no lock). `pdipam_subnet_free`
/// must be the last call, with no other call running.
pub struct pdipam_subnet {
    subnet: Subnet,
    poisoned: AtomicBool,
}

impl Guarded for pdipam_subnet {
    fn poison_flag(&self) -> &AtomicBool {
        &self.poisoned
    }
}

/// Reserved-address profile: AWS (the first four addresses and the last; the default).
pub const PDIPAM_PROFILE_AWS: u8 = 0;
/// Reserved-address profile: network and broadcast address.
pub const PDIPAM_PROFILE_CLASSIC: u8 = 1;
/// Reserved-address profile: nothing reserved.
pub const PDIPAM_PROFILE_NONE: u8 = 2;
/// Placement: keep large free aligned blocks whole (the default).
pub const PDIPAM_PLACEMENT_PACK: u8 = 0;
/// Placement: the lowest free aligned block.
pub const PDIPAM_PLACEMENT_FIRST_FIT: u8 = 1;
/// Placement: cloud-like scatter, deterministic per seed.
pub const PDIPAM_PLACEMENT_RANDOM: u8 = 2;
/// Reservation kind: automatic prefixes come from here first.
pub const PDIPAM_RESERVATION_PREFIX: u8 = 0;
/// Reservation kind: only manual assignment.
pub const PDIPAM_RESERVATION_EXPLICIT: u8 = 1;

/// How a subnet is built (`pdipam_subnet_new_with`). A plain value: no call keeps a pointer to it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_subnet_options {
    /// `PDIPAM_PROFILE_*`.
    pub profile: u8,
    /// `PDIPAM_PLACEMENT_*`.
    pub placement: u8,
    /// Non-zero: when prefix reservations are full, take automatic prefixes from unreserved
    /// space (the AWS default).
    pub fallback_to_unreserved: u8,
    /// Seed of `PDIPAM_PLACEMENT_RANDOM`.
    pub seed: u64,
}

/// Occupancy figures (IPv4 counts are addresses, IPv6 counts are /80s). A plain value, written
/// by `pdipam_subnet_get_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_subnet_stats {
    /// Units in the subnet.
    pub total: u64,
    /// Units reserved by the profile.
    pub reserved: u64,
    /// Units allocated (reserved ones not included).
    pub allocated: u64,
    /// Units not allocated.
    pub free: u64,
    /// Free units as AWS counts `AvailableIpAddressCount`.
    pub available: u64,
    /// Free aligned blocks of 16 units (IPv4 /28s; IPv6 /76s).
    pub free_blocks_16: u64,
    /// 0 when every free unit lies in a free aligned 16-unit block, 1 when none does.
    pub fragmentation: f64,
    /// The lowest of the largest free aligned blocks (valid when `has_largest_free_block`).
    pub largest_free_block: pdipam_prefix,
    /// 1 when some unit is free, else 0.
    pub has_largest_free_block: u8,
}

fn options(o: &pdipam_subnet_options) -> Result<SubnetOptions, Failure> {
    let profile = match o.profile {
        PDIPAM_PROFILE_AWS => ReservedProfile::Aws,
        PDIPAM_PROFILE_CLASSIC => ReservedProfile::Classic,
        PDIPAM_PROFILE_NONE => ReservedProfile::None,
        p => return Err(Failure::invalid(format!("profile {p}: expected 0, 1 or 2"))),
    };
    let placement = match o.placement {
        PDIPAM_PLACEMENT_PACK => Placement::Pack,
        PDIPAM_PLACEMENT_FIRST_FIT => Placement::FirstFit,
        PDIPAM_PLACEMENT_RANDOM => Placement::Random { seed: o.seed },
        p => {
            return Err(Failure::invalid(format!(
                "placement {p}: expected 0, 1 or 2"
            )))
        }
    };
    Ok(SubnetOptions::default()
        .profile(profile)
        .placement(placement)
        .fallback_to_unreserved(o.fallback_to_unreserved != 0))
}

fn kind(k: u8) -> Result<ReservationKind, Failure> {
    match k {
        PDIPAM_RESERVATION_PREFIX => Ok(ReservationKind::Prefix),
        PDIPAM_RESERVATION_EXPLICIT => Ok(ReservationKind::Explicit),
        k => Err(Failure::invalid(format!(
            "reservation kind {k}: expected 0 (prefix) or 1 (explicit)"
        ))),
    }
}

/// Creates a subnet over `cidr` (IPv4 /8 to /30, IPv6 /44 to /64 tracked in /80s) with the AWS
/// reserved addresses and `Pack` placement; the handle goes to `*subnet_out`.
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG` (family, length); `SUBNET_LENGTH`; `MISALIGNED`
/// (host bits set). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `cidr` points to an initialised `pdipam_prefix`; `subnet_out` is
/// writable for one `pdipam_subnet *`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_new(
    cidr: *const pdipam_prefix,
    subnet_out: *mut *mut pdipam_subnet,
) -> pdipam_status {
    let defaults = pdipam_subnet_options {
        profile: PDIPAM_PROFILE_AWS,
        placement: PDIPAM_PLACEMENT_PACK,
        fallback_to_unreserved: 1,
        seed: 0,
    };
    // SAFETY: the caller's pointers, passed on unchanged under the same contract, and a local.
    unsafe { pdipam_subnet_new_with(cidr, &defaults, subnet_out) }
}

/// `pdipam_subnet_new` with a profile, a placement policy and the reservation fallback.
///
/// Status: as `pdipam_subnet_new`; `INVALID_ARG` for an unknown profile or placement.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `cidr` points to an initialised `pdipam_prefix`; `options_in`
/// points to an initialised `pdipam_subnet_options`; `subnet_out` is writable for one
/// `pdipam_subnet *`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_new_with(
    cidr: *const pdipam_prefix,
    options_in: *const pdipam_subnet_options,
    subnet_out: *mut *mut pdipam_subnet,
) -> pdipam_status {
    run(|| {
        let cidr = net_arg(cidr, "cidr")?;
        let options = options(raw::input(options_in, "options")?)?;
        let out = Out::new(subnet_out, "subnet_out")?;
        let subnet = Subnet::with_options(cidr, options)?;
        out.write(Box::into_raw(Box::new(pdipam_subnet {
            subnet,
            poisoned: AtomicBool::new(false),
        })));
        Ok(())
    })
}

/// Frees a subnet. NULL is fine. No other call on it may be running or follow.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` comes from `pdipam_subnet_new` (or another call that
/// returns a `pdipam_subnet`) and is freed once, with no other call on it running or to come.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_free(subnet: *mut pdipam_subnet) {
    raw::free(subnet);
}

/// Allocates a prefix of length `len` automatically (placement policy; prefix reservations
/// first) into `*prefix_out`.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `PREFIX_LENGTH`; `INSUFFICIENT_CIDR_BLOCKS`
/// (free addresses remain, no free aligned block: `pdipam_subnet_explain` says why);
/// `INSUFFICIENT_FREE_ADDRESSES`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `prefix_out` is writable for one `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_alloc_prefix(
    subnet: *const pdipam_subnet,
    len: u8,
    prefix_out: *mut pdipam_prefix,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let out = Out::new(prefix_out, "prefix_out")?;
        let a = s.subnet.allocate_prefix(len)?;
        out.write_prefix(pdipam_prefix::from_net(a.cidr));
        Ok(())
    })
}

/// Allocates exactly `prefix` (manual assignment: anywhere free, reservations included).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `WRONG_FAMILY`;
/// `OUTSIDE_SUBNET`; `MISALIGNED`; `PREFIX_LENGTH`; `ALREADY_ALLOCATED`; `RESERVED_ADDRESS`.
/// Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `prefix` points to an initialised `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_alloc_prefix_at(
    subnet: *const pdipam_subnet,
    prefix: *const pdipam_prefix,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let p = net_arg(prefix, "prefix")?;
        Ok(s.subnet.allocate_prefix_at(p)?)
    })
}

/// Allocates one IPv4 address automatically (never inside a reservation) into `*addr_out` (a
/// /32).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `WRONG_FAMILY` (an IPv6 subnet);
/// `INSUFFICIENT_FREE_ADDRESSES`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `addr_out` is writable for one `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_alloc_ip(
    subnet: *const pdipam_subnet,
    addr_out: *mut pdipam_prefix,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let out = Out::new(addr_out, "addr_out")?;
        let a = s.subnet.allocate_ip()?;
        out.write_prefix(pdipam_prefix::from_addr(a));
        Ok(())
    })
}

/// Allocates exactly the IPv4 address `addr` (a /32).
///
/// Status: as `pdipam_subnet_alloc_prefix_at`; `INVALID_ARG` when `addr` is not a /32.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `addr` points to an initialised `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_alloc_ip_at(
    subnet: *const pdipam_subnet,
    addr: *const pdipam_prefix,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let a = addr_arg(addr, "addr")?;
        Ok(s.subnet.allocate_ip_at(a)?)
    })
}

/// Releases a prefix or address exactly as it was allocated.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `WRONG_FAMILY`;
/// `OUTSIDE_SUBNET`; `MISALIGNED`; `NOT_ALLOCATED`; `NOT_ONE_ALLOCATION`; `RESERVED_ADDRESS`.
/// Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `prefix` points to an initialised `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_release(
    subnet: *const pdipam_subnet,
    prefix: *const pdipam_prefix,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let p = net_arg(prefix, "prefix")?;
        Ok(s.subnet.release(p)?)
    })
}

/// Whether every unit of `prefix` is free (`*free_out` 1) or not (0).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `WRONG_FAMILY`;
/// `OUTSIDE_SUBNET`; `MISALIGNED`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` comes from `pdipam_subnet_new` (or another call that
/// returns a `pdipam_subnet`) and is freed once, with no other call on it running or to come;
/// `prefix` points to an initialised `pdipam_prefix`; `free_out` is writable for one `u8`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_is_free(
    subnet: *const pdipam_subnet,
    prefix: *const pdipam_prefix,
    free_out: *mut u8,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let p = net_arg(prefix, "prefix")?;
        let out = Out::new(free_out, "free_out")?;
        out.write(u8::from(s.subnet.is_free(p)?));
        Ok(())
    })
}

/// Adds a subnet CIDR reservation of kind `PDIPAM_RESERVATION_*` (it may cover addresses in
/// use).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `WRONG_FAMILY`;
/// `OUTSIDE_SUBNET`; `MISALIGNED`; `RESERVATION_OVERLAP`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `cidr` points to an initialised `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_add_reservation(
    subnet: *const pdipam_subnet,
    cidr: *const pdipam_prefix,
    reservation_kind: u8,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let c = net_arg(cidr, "cidr")?;
        let k = kind(reservation_kind)?;
        Ok(s.subnet.add_reservation(c, k)?)
    })
}

/// Removes the reservation with exactly this CIDR (its allocations stay).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `RESERVATION_NOT_FOUND`.
/// Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `cidr` points to an initialised `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_remove_reservation(
    subnet: *const pdipam_subnet,
    cidr: *const pdipam_prefix,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let c = net_arg(cidr, "cidr")?;
        s.subnet.remove_reservation(c)?;
        Ok(())
    })
}

/// Occupancy and fragmentation into `*stats_out`. Linear in the touched part of the subnet.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`. Thread-safe (exact when no other thread is
/// changing the subnet).
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `stats_out` is writable for one `pdipam_subnet_stats`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_get_stats(
    subnet: *const pdipam_subnet,
    stats_out: *mut pdipam_subnet_stats,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let out = Out::new(stats_out, "stats_out")?;
        let st = s.subnet.stats();
        let len16 = s.subnet.unit_len().saturating_sub(4);
        out.write(pdipam_subnet_stats {
            total: st.total,
            reserved: st.reserved,
            allocated: st.allocated,
            free: st.free,
            available: st.available,
            free_blocks_16: st.free_blocks_of(len16),
            fragmentation: st.fragmentation,
            largest_free_block: st
                .largest_free_block
                .map_or(pdipam_prefix::from_net(st.cidr), pdipam_prefix::from_net),
            has_largest_free_block: u8::from(st.largest_free_block.is_some()),
        });
        Ok(())
    })
}

/// Free aligned blocks of prefix length `len` into `*count_out` (0 for a length out of range).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `count_out` is writable for one `u64`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_free_blocks(
    subnet: *const pdipam_subnet,
    len: u8,
    count_out: *mut u64,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let out = Out::new(count_out, "count_out")?;
        out.write(s.subnet.stats().free_blocks_of(len));
        Ok(())
    })
}

/// Explains, as text, what stands in the way of an automatic prefix of length `len`: candidate
/// blocks, free ones, and the allocations spoiling the most. NUL-terminated into `buf`
/// (`buf_len` bytes), its length without the NUL into `*len_out`.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `PREFIX_LENGTH`; `BUFFER_TOO_SMALL` with the
/// length needed in `*len_out`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns; `buf` is writable for `buf_len` bytes; `len_out` is writable for one `usize`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_explain(
    subnet: *const pdipam_subnet,
    len: u8,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        let why = s.subnet.explain_prefix_failure(len)?;
        raw::write_text(&why.to_string(), buf, buf_len, len_out)
    })
}

/// Checks every invariant of the subnet (for tests and fuzzing; linear).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVARIANT` (described by
/// `pdipam_last_error`). Thread-safe (meaningful when no other thread changes the subnet).
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` is a `pdipam_subnet` handle that is not freed before this
/// call returns.
#[no_mangle]
pub unsafe extern "C" fn pdipam_subnet_verify(subnet: *const pdipam_subnet) -> pdipam_status {
    run_on(subnet, "subnet", |s| {
        s.subnet
            .verify()
            .map_err(|e| Failure::invariant(e.to_string()))
    })
}
