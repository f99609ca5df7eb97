//! `pdipam_node`: one node's interfaces, slots and pod assignments behind an opaque handle, with
//! its warm-pool settings.

use crate::boundary::{run, run_on, Guarded};
use crate::prefix::{addr_arg, net_arg, pdipam_prefix};
use crate::raw::{self, Out};
use crate::status::{pdipam_status, Failure};
use pdipam::{
    limits::InstanceLimits, planner::WarmSettings, AddressMode, InterfaceFlags, InterfaceSpec,
    IpFamily, Node, NodeConfig, PodKey, PodRequest,
};
use std::ffi::c_char;
use std::sync::atomic::AtomicBool;
use std::sync::RwLock;
use std::time::Duration;

/// A node: interfaces, their prefixes and secondary addresses, and the pods holding addresses.
///
/// Thread safety: every call but `pdipam_node_free` takes a `const pdipam_node *` and may run on
/// many threads at once (assign and release take one of 64 short per-shard locks).
/// `pdipam_node_free` must be the last call, with no other call running.
pub struct pdipam_node {
    pub(crate) node: Node,
    pub(crate) settings: RwLock<WarmSettings>,
    poisoned: AtomicBool,
}

impl Guarded for pdipam_node {
    fn poison_flag(&self) -> &AtomicBool {
        &self.poisoned
    }
}

impl pdipam_node {
    pub(crate) fn boxed(node: Node, settings: WarmSettings) -> *mut pdipam_node {
        Box::into_raw(Box::new(pdipam_node {
            node,
            settings: RwLock::new(settings),
            poisoned: AtomicBool::new(false),
        }))
    }

    pub(crate) fn settings(&self) -> WarmSettings {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Mode: prefix delegation (the default).
pub const PDIPAM_MODE_PREFIX: u8 = 0;
/// Mode: secondary IPs.
pub const PDIPAM_MODE_SECONDARY: u8 = 1;
/// No fallback: the node serves pods in the mode asked for.
pub const PDIPAM_FALLBACK_NONE: u8 = 0;
/// Prefix mode was asked for on an instance type that cannot delegate prefixes (neither Nitro
/// nor bare metal, an m4.xlarge say): the node serves secondary addresses, as ipamd does.
pub const PDIPAM_FALLBACK_NOT_NITRO: u8 = 1;
/// Interface flag: the instance's primary interface.
pub const PDIPAM_INTERFACE_PRIMARY: u32 = 1;
/// Interface flag: a trunk interface (serves no pods).
pub const PDIPAM_INTERFACE_TRUNK: u32 = 2;
/// Interface flag: an EFA interface (serves no pods).
pub const PDIPAM_INTERFACE_EFA: u32 = 4;
/// Interface flag: excluded from pod addresses (ipamd's `IsExcludedForPodIPs`, or tagged
/// `node.k8s.amazonaws.com/no_manage`): keeps its blocks, serves no pod, is never freed, but
/// takes one of the instance's interfaces.
pub const PDIPAM_INTERFACE_EXCLUDED: u32 = 8;
/// Bytes of the longest interface id a node takes, with its NUL (`pdipam_action` holds one).
pub const PDIPAM_INTERFACE_ID_MAX: usize = 64;

/// How a node serves pods (`pdipam_node_new_with`). A plain value: no call keeps a pointer to it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_node_config {
    /// `PDIPAM_MODE_*`.
    pub mode: u8,
    /// 4 or 6: the family pods get.
    pub family: u8,
    /// Non-zero: custom networking (the primary interface serves no pods).
    pub custom_networking: u8,
    /// Milliseconds a released address rests before reuse (30000 is the default; 0 for none).
    /// The node reads the kernel's coarse clock, and waits one tick of it (a few ms) longer, so
    /// that an address does not come back early.
    pub cooldown_ms: u32,
    /// A limit on interfaces below the instance's (MAX_ENI); 0 for none.
    pub max_eni: u32,
}

/// The warm-pool settings (the CNI's variables; 0 means unset where the CNI says so). A plain
/// value: `pdipam_node_set_warm_settings` copies it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_warm_settings {
    /// WARM_ENI_TARGET.
    pub warm_eni_target: u32,
    /// WARM_IP_TARGET (0: unset).
    pub warm_ip_target: u32,
    /// MINIMUM_IP_TARGET (0: unset).
    pub minimum_ip_target: u32,
    /// WARM_PREFIX_TARGET.
    pub warm_prefix_target: u32,
    /// The kubelet's maxPods; 0 for the recommended value of the instance type.
    pub max_pods: u32,
}

/// A node's counts. A plain value, written by `pdipam_node_get_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_node_stats {
    /// Interfaces attached.
    pub interfaces: u32,
    /// Pod addresses in serving blocks.
    pub total: u32,
    /// Addresses pods hold.
    pub assigned: u32,
    /// Addresses cooling down after a release.
    pub cooling: u32,
    /// Addresses a pod could get now.
    pub available: u32,
    /// Pods holding an address.
    pub pods: u64,
}

fn config(c: &pdipam_node_config) -> Result<NodeConfig, Failure> {
    let mode = match c.mode {
        PDIPAM_MODE_PREFIX => AddressMode::Prefix,
        PDIPAM_MODE_SECONDARY => AddressMode::Secondary,
        m => return Err(Failure::invalid(format!("mode {m}: expected 0 or 1"))),
    };
    let family = match c.family {
        4 => IpFamily::V4,
        6 => IpFamily::V6,
        f => return Err(Failure::invalid(format!("family {f}: expected 4 or 6"))),
    };
    Ok(NodeConfig::new()
        .mode(mode)
        .family(family)
        .cooldown(Duration::from_millis(c.cooldown_ms.into()))
        .custom_networking(c.custom_networking != 0)
        .max_eni((c.max_eni != 0).then_some(c.max_eni)))
}

pub(crate) fn settings(s: &pdipam_warm_settings) -> WarmSettings {
    WarmSettings::new()
        .warm_eni_target(s.warm_eni_target)
        .warm_ip_target(s.warm_ip_target)
        .minimum_ip_target(s.minimum_ip_target)
        .warm_prefix_target(s.warm_prefix_target)
        .max_pods((s.max_pods != 0).then_some(s.max_pods))
}

fn key(
    network: *const c_char,
    container_id: *const c_char,
    ifname: *const c_char,
) -> Result<PodKey, Failure> {
    Ok(PodKey::new(
        raw::text(network, "network")?,
        raw::text(container_id, "container_id")?,
        raw::text(ifname, "ifname")?,
    ))
}

pub(crate) fn interface_id_arg<'a>(p: *const c_char) -> Result<&'a str, Failure> {
    let id = raw::text(p, "interface_id")?;
    if id.is_empty() || id.len() >= PDIPAM_INTERFACE_ID_MAX {
        return Err(Failure::invalid(format!(
            "interface id {id:?}: expected 1 to {} bytes",
            PDIPAM_INTERFACE_ID_MAX - 1
        )));
    }
    Ok(id)
}

/// Creates a node of `instance_type` (e.g. `"m5.large"`) in prefix mode with IPv4 pods, a 30 s
/// cooldown and the shipped manifest's warm-pool settings (WARM_PREFIX_TARGET=1); the handle goes
/// to `*node_out`.
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG` (not UTF-8, too long); `UNKNOWN_INSTANCE_TYPE`
/// (`pdipam_last_error` suggests close names). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `instance_type` is a NUL-terminated string that stays alive and
/// unchanged during the call; `node_out` is writable for one `pdipam_node *`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_new(
    instance_type: *const c_char,
    node_out: *mut *mut pdipam_node,
) -> pdipam_status {
    let c = pdipam_node_config {
        mode: PDIPAM_MODE_PREFIX,
        family: 4,
        custom_networking: 0,
        cooldown_ms: 30_000,
        max_eni: 0,
    };
    // SAFETY: the caller's pointers, passed on unchanged under the same contract, and a local.
    unsafe { pdipam_node_new_with(instance_type, &c, node_out) }
}

/// `pdipam_node_new` with a mode, family, cooldown, custom networking and MAX_ENI.
///
/// Status: as `pdipam_node_new`; `INVALID_ARG` for an unknown mode or family.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `instance_type` is a NUL-terminated string that stays alive and
/// unchanged during the call; `config_in` points to an initialised `pdipam_node_config`;
/// `node_out` is writable for one `pdipam_node *`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_new_with(
    instance_type: *const c_char,
    config_in: *const pdipam_node_config,
    node_out: *mut *mut pdipam_node,
) -> pdipam_status {
    run(|| {
        let limits = InstanceLimits::lookup(raw::text(instance_type, "instance_type")?)?;
        let config = config(raw::input(config_in, "config")?)?;
        let out = Out::new(node_out, "node_out")?;
        let node = Node::new(limits, config);
        out.write(pdipam_node::boxed(node, WarmSettings::shipped_manifest()));
        Ok(())
    })
}

/// Frees a node. NULL is fine. No other call on it may be running or follow.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` comes from `pdipam_node_new` (or another call that returns
/// a `pdipam_node`) and is freed once, with no other call on it running or to come.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_free(node: *mut pdipam_node) {
    raw::free(node);
}

/// Attaches an interface: its id (1 to 63 bytes), device number and primary address (a /32 or
/// /128, which takes a slot and is never given to a pod). Device 0 is flagged primary.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `DUPLICATE_INTERFACE` (id or
/// device number); `TOO_MANY_INTERFACES`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `interface_id` is a NUL-terminated string that stays alive and unchanged during
/// the call; `primary_addr` points to an initialised `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_attach_interface(
    node: *const pdipam_node,
    interface_id: *const c_char,
    device_number: u32,
    primary_addr: *const pdipam_prefix,
) -> pdipam_status {
    let flags = if device_number == 0 {
        PDIPAM_INTERFACE_PRIMARY
    } else {
        0
    };
    // SAFETY: the caller's pointers, passed on unchanged under the same contract, and a local.
    unsafe {
        pdipam_node_attach_interface_with_flags(
            node,
            interface_id,
            device_number,
            primary_addr,
            flags,
        )
    }
}

/// `pdipam_node_attach_interface` with `PDIPAM_INTERFACE_*` flags (trunk and EFA interfaces
/// serve no pods; the primary is never freed by the planner).
///
/// Status: as `pdipam_node_attach_interface`; `INVALID_ARG` for unknown flag bits.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `interface_id` is a NUL-terminated string that stays alive and unchanged during
/// the call; `primary_addr` points to an initialised `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_attach_interface_with_flags(
    node: *const pdipam_node,
    interface_id: *const c_char,
    device_number: u32,
    primary_addr: *const pdipam_prefix,
    flags: u32,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let id = interface_id_arg(interface_id)?;
        let primary = addr_arg(primary_addr, "primary_addr")?;
        let flags = flags_arg(flags)?;
        Ok(n.node.attach_interface(
            InterfaceSpec::new(id.to_string(), device_number, primary).flags(flags),
        )?)
    })
}

/// `PDIPAM_INTERFACE_*` bits as flags; unknown bits are refused.
pub(crate) fn flags_arg(flags: u32) -> Result<InterfaceFlags, Failure> {
    let known = PDIPAM_INTERFACE_PRIMARY
        | PDIPAM_INTERFACE_TRUNK
        | PDIPAM_INTERFACE_EFA
        | PDIPAM_INTERFACE_EXCLUDED;
    if flags & !known != 0 {
        return Err(Failure::invalid(format!(
            "interface flags {flags:#x}: unknown bits"
        )));
    }
    Ok(InterfaceFlags {
        primary: flags & PDIPAM_INTERFACE_PRIMARY != 0,
        trunk: flags & PDIPAM_INTERFACE_TRUNK != 0,
        efa: flags & PDIPAM_INTERFACE_EFA != 0,
        excluded: flags & PDIPAM_INTERFACE_EXCLUDED != 0,
    })
}

/// Attaches a delegated prefix (IPv4 /28 or IPv6 /80) to an interface.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `UNKNOWN_INTERFACE`;
/// `PREFIX_LENGTH`; `MISALIGNED`; `WRONG_FAMILY`; `NO_FREE_SLOT`; `ALREADY_ATTACHED`.
/// Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `interface_id` is a NUL-terminated string that stays alive and unchanged during
/// the call; `prefix` points to an initialised `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_attach_prefix(
    node: *const pdipam_node,
    interface_id: *const c_char,
    prefix: *const pdipam_prefix,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let id = interface_id_arg(interface_id)?;
        let p = net_arg(prefix, "prefix")?;
        Ok(n.node.attach_prefix(id, p)?)
    })
}

/// Attaches a secondary address (a /32 or /128) to an interface.
///
/// Status: as `pdipam_node_attach_prefix`.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `interface_id` is a NUL-terminated string that stays alive and unchanged during
/// the call; `addr` points to an initialised `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_attach_secondary(
    node: *const pdipam_node,
    interface_id: *const c_char,
    addr: *const pdipam_prefix,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let id = interface_id_arg(interface_id)?;
        let a = addr_arg(addr, "addr")?;
        Ok(n.node.attach_secondary(id, a)?)
    })
}

/// Removes a prefix or secondary address. Unless `force` is non-zero it fails while pods hold
/// or cool addresses in it; forced, it drops those pods and reports how many in
/// `*dropped_out` (may be NULL).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `NOT_ATTACHED`; `IN_USE`;
/// `COOLING`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `block` points to an initialised `pdipam_prefix`; `dropped_out` is writable for
/// one `usize`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_remove_block(
    node: *const pdipam_node,
    block: *const pdipam_prefix,
    force: u8,
    dropped_out: *mut usize,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let b = net_arg(block, "block")?;
        let dropped = n.node.remove_block(b, force != 0)?;
        raw::write_optional(dropped_out, dropped.len());
        Ok(())
    })
}

/// Removes an interface with everything on it. Unless `force` is non-zero it fails for the
/// primary interface or while pods hold or cool addresses on it; `*dropped_out` (may be NULL)
/// gets the number of pods a forced removal dropped.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `UNKNOWN_INTERFACE`;
/// `PRIMARY_INTERFACE`; `IN_USE`; `COOLING`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `interface_id` is a NUL-terminated string that stays alive and unchanged during
/// the call; `dropped_out` is writable for one `usize`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_remove_interface(
    node: *const pdipam_node,
    interface_id: *const c_char,
    force: u8,
    dropped_out: *mut usize,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let id = interface_id_arg(interface_id)?;
        let dropped = n.node.remove_interface(id, force != 0)?;
        raw::write_optional(dropped_out, dropped.len());
        Ok(())
    })
}

/// Gives the pod keyed by (network, container id, interface name) an address, written to
/// `*addr_out` as a /32 or /128. Idempotent: the same key gets the same address again.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG` (strings); `INVALID_KEY` (empty
/// container id or interface name); `NO_AVAILABLE_ADDRESSES` (`AssignPodIPAddress: no available
/// IP/Prefix addresses`: grow the warm pool). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `network` is a NUL-terminated string that stays alive and unchanged during the
/// call; `container_id` is a NUL-terminated string that stays alive and unchanged during the call;
/// `ifname` is a NUL-terminated string that stays alive and unchanged during the call; `addr_out`
/// is writable for one `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_assign(
    node: *const pdipam_node,
    network: *const c_char,
    container_id: *const c_char,
    ifname: *const c_char,
    addr_out: *mut pdipam_prefix,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let k = key(network, container_id, ifname)?;
        let out = Out::new(addr_out, "addr_out")?;
        let a = n.node.assign(PodRequest::new(k))?;
        out.write_prefix(pdipam_prefix::from_addr(a.address));
        Ok(())
    })
}

/// Releases the pod's address (it cools down before reuse) and writes it to `*addr_out`.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVALID_ARG`; `UNKNOWN_POD` (`datastore:
/// unknown pod`; a CNI DEL of an unknown container should treat it as success). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `network` is a NUL-terminated string that stays alive and unchanged during the
/// call; `container_id` is a NUL-terminated string that stays alive and unchanged during the call;
/// `ifname` is a NUL-terminated string that stays alive and unchanged during the call; `addr_out`
/// is writable for one `pdipam_prefix`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_release(
    node: *const pdipam_node,
    network: *const c_char,
    container_id: *const c_char,
    ifname: *const c_char,
    addr_out: *mut pdipam_prefix,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let (net, container, ifname) = (
            raw::text(network, "network")?,
            raw::text(container_id, "container_id")?,
            raw::text(ifname, "ifname")?,
        );
        let out = Out::new(addr_out, "addr_out")?;
        let r = n.node.release_parts(net, container, ifname)?;
        out.write_prefix(pdipam_prefix::from_addr(r.address));
        Ok(())
    })
}

/// The mode the node serves pods in (`PDIPAM_MODE_*`) into `*mode_out`, and why it is not the
/// mode asked for (`PDIPAM_FALLBACK_*`) into `*fallback_out`: prefix mode asked for on an
/// instance type that cannot delegate prefixes falls back to secondary addresses, never
/// silently (`pdipam_node_plan` then plans secondary addresses).
///
/// Status: `OK`; `NULL_ARG` (nothing written); `POISONED`; `PANIC`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `mode_out` and `fallback_out` are each writable for one `uint8_t`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_get_mode(
    node: *const pdipam_node,
    mode_out: *mut u8,
    fallback_out: *mut u8,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let mode = Out::new(mode_out, "mode_out")?;
        let fallback = Out::new(fallback_out, "fallback_out")?;
        mode.write(match n.node.config().mode {
            AddressMode::Prefix => PDIPAM_MODE_PREFIX,
            AddressMode::Secondary => PDIPAM_MODE_SECONDARY,
        });
        fallback.write(match n.node.prefix_fallback() {
            None => PDIPAM_FALLBACK_NONE,
            Some(_) => PDIPAM_FALLBACK_NOT_NITRO,
        });
        Ok(())
    })
}

/// The node's counts into `*stats_out`.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `stats_out` is writable for one `pdipam_node_stats`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_get_stats(
    node: *const pdipam_node,
    stats_out: *mut pdipam_node_stats,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let out = Out::new(stats_out, "stats_out")?;
        let snap = n.node.snapshot();
        out.write(pdipam_node_stats {
            interfaces: snap.interfaces.len() as u32,
            total: snap.total(),
            assigned: snap.assigned(),
            cooling: snap.cooling(),
            available: snap.available(),
            pods: n.node.pod_count() as u64,
        });
        Ok(())
    })
}

/// Replaces the node's warm-pool settings (used by `pdipam_node_plan` and saved in
/// checkpoints).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns; `settings_in` points to an initialised `pdipam_warm_settings`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_set_warm_settings(
    node: *const pdipam_node,
    settings_in: *const pdipam_warm_settings,
) -> pdipam_status {
    run_on(node, "node", |n| {
        let s = settings(raw::input(settings_in, "settings")?);
        match n.settings.write() {
            Ok(mut guard) => *guard = s,
            Err(poisoned) => *poisoned.into_inner() = s,
        }
        Ok(())
    })
}

/// Checks every invariant of the node (for tests; linear).
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`; `INVARIANT`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `node` is a `pdipam_node` handle that is not freed before this
/// call returns.
#[no_mangle]
pub unsafe extern "C" fn pdipam_node_verify(node: *const pdipam_node) -> pdipam_status {
    run_on(node, "node", |n| {
        n.node
            .verify()
            .map_err(|e| Failure::invariant(e.to_string()))
    })
}
