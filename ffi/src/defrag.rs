//! The defragmentation planner (`pdipam::defrag`) for C callers: a plan handle, read through
//! its totals, its steps (regions to reserve), each step's moves, and what pins the rest.

use crate::boundary::{run, run_on, Guarded};
use crate::prefix::{net_arg, pdipam_prefix};
use crate::raw::{self, Out};
use crate::status::{pdipam_status, Failure};
use ipnet::{IpNet, Ipv4Net};
use pdipam::defrag::{self, ExistingReservation, Goal, HolderCost, MoveCost, PinReason, Plan};
use std::sync::atomic::AtomicBool;

/// The holder can move (at `pods` and `interfaces`).
pub const PDIPAM_PIN_NONE: u8 = 0;
/// Pinned: an address the subnet reserves.
pub const PDIPAM_PIN_SUBNET_RESERVED: u8 = 1;
/// Pinned: a delegated prefix.
pub const PDIPAM_PIN_PREFIX: u8 = 2;
/// Pinned: the primary address of an instance's primary interface.
pub const PDIPAM_PIN_INSTANCE_PRIMARY: u8 = 3;
/// Pinned: a requester-managed interface (load balancer, NAT gateway, Lambda).
pub const PDIPAM_PIN_REQUESTER_MANAGED: u8 = 4;
/// Pinned: nobody known holds it.
pub const PDIPAM_PIN_UNKNOWN: u8 = 5;

/// One holder of a subnet's addresses and what moving it costs. A plain value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_defrag_holder {
    /// One address (a /32) or a prefix.
    pub held: pdipam_prefix,
    /// `PDIPAM_PIN_NONE` when it can move, else why not (`PDIPAM_PIN_*`).
    pub pin: u8,
    /// Pods restarted if it moves.
    pub pods: u32,
    /// Interfaces detached if it moves.
    pub interfaces: u32,
}

/// An existing reservation of the subnet. A plain value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_defrag_reservation {
    /// Its CIDR.
    pub cidr: pdipam_prefix,
    /// Non-zero for a prefix reservation, 0 for an explicit one.
    pub prefix: u8,
}

/// A plan's totals. A plain value, written by `pdipam_defrag_plan_totals`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_defrag_totals {
    /// Pods restarted.
    pub pods: u64,
    /// Interfaces detached.
    pub interfaces: u64,
    /// Prefix reservations created (one per step).
    pub reservations: u64,
    /// Addresses the moved pods need outside the regions and reservations.
    pub room_needed: u64,
    /// Free addresses there.
    pub room_available: u64,
    /// Blocks already free inside prefix reservations.
    pub already: u32,
    /// Blocks free inside prefix reservations once the plan is carried out.
    pub after: u32,
    /// Steps (`pdipam_defrag_plan_step`).
    pub steps: u32,
    /// Holders that stop more blocks coming back when the goal is not met
    /// (`pdipam_defrag_plan_pinned`).
    pub pinned: u32,
    /// Non-zero when `after` reaches the goal.
    pub met: u8,
}

/// One step: reserve `region`, then move `moves` holders out of it. A plain value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_defrag_step {
    /// The aligned region to reserve (a prefix reservation).
    pub region: pdipam_prefix,
    /// Goal-sized blocks it gives.
    pub blocks: u32,
    /// Holders to move out (`pdipam_defrag_plan_move`).
    pub moves: u32,
    /// Pods restarted.
    pub pods: u64,
    /// Interfaces detached.
    pub interfaces: u64,
}

/// A defragmentation plan, made by `pdipam_defrag_plan_new`. Read-only: calls on it may run
/// from any number of threads. `pdipam_defrag_plan_free` must be the last call.
pub struct pdipam_defrag_plan {
    plan: Plan,
    poisoned: AtomicBool,
}

impl Guarded for pdipam_defrag_plan {
    fn poison_flag(&self) -> &AtomicBool {
        &self.poisoned
    }
}

fn v4(net: IpNet, what: &str) -> Result<Ipv4Net, Failure> {
    match net {
        IpNet::V4(n) => Ok(n),
        IpNet::V6(_) => Err(Failure::invalid(format!(
            "{what} {net}: the planner takes IPv4 subnets"
        ))),
    }
}

fn cost(h: &pdipam_defrag_holder) -> Result<MoveCost, Failure> {
    Ok(match h.pin {
        PDIPAM_PIN_NONE => MoveCost::Move {
            pods: h.pods,
            interfaces: h.interfaces,
        },
        PDIPAM_PIN_SUBNET_RESERVED => MoveCost::Pinned(PinReason::SubnetReserved),
        PDIPAM_PIN_PREFIX => MoveCost::Pinned(PinReason::Prefix),
        PDIPAM_PIN_INSTANCE_PRIMARY => MoveCost::Pinned(PinReason::InstancePrimary),
        PDIPAM_PIN_REQUESTER_MANAGED => MoveCost::Pinned(PinReason::RequesterManaged),
        PDIPAM_PIN_UNKNOWN => MoveCost::Pinned(PinReason::Unknown),
        other => return Err(Failure::invalid(format!("pin {other}: unknown"))),
    })
}

fn holder_out(h: &HolderCost) -> pdipam_defrag_holder {
    let (pin, pods, interfaces) = match h.cost {
        MoveCost::Move { pods, interfaces } => (PDIPAM_PIN_NONE, pods, interfaces),
        MoveCost::Pinned(r) => (
            match r {
                PinReason::SubnetReserved => PDIPAM_PIN_SUBNET_RESERVED,
                PinReason::Prefix => PDIPAM_PIN_PREFIX,
                PinReason::InstancePrimary => PDIPAM_PIN_INSTANCE_PRIMARY,
                PinReason::RequesterManaged => PDIPAM_PIN_REQUESTER_MANAGED,
                _ => PDIPAM_PIN_UNKNOWN,
            },
            0,
            0,
        ),
    };
    pdipam_defrag_holder {
        held: pdipam_prefix::from_net(IpNet::V4(h.held)),
        pin,
        pods,
        interfaces,
    }
}

/// Plans the cheapest way to get `blocks` free blocks of `/block_len` (28 for prefix
/// delegation) inside prefix reservations of `subnet` (IPv4), given its `holders` and existing
/// `reservations` (either array may be NULL when its length is 0); the handle goes to
/// `*plan_out` (docs/rules.md, "Defragmentation").
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG` (an IPv6 or malformed prefix, an unknown pin, a
/// holder or reservation outside the subnet, overlapping holders, a block length that does not
/// fit, more than 65536 blocks; `pdipam_last_error` names the value). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `subnet` points to an initialised `pdipam_prefix`; `holders`
/// points to `holders_len` initialised `pdipam_defrag_holder`s and `reservations` to
/// `reservations_len` initialised `pdipam_defrag_reservation`s, unchanged during the call;
/// `plan_out` is writable for one `pdipam_defrag_plan *`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_defrag_plan_new(
    subnet: *const pdipam_prefix,
    holders: *const pdipam_defrag_holder,
    holders_len: usize,
    reservations: *const pdipam_defrag_reservation,
    reservations_len: usize,
    blocks: u32,
    block_len: u8,
    plan_out: *mut *mut pdipam_defrag_plan,
) -> pdipam_status {
    run(|| {
        let subnet = v4(net_arg(subnet, "subnet")?, "subnet")?;
        let holders = raw::input_array(holders, holders_len, "holders")?
            .iter()
            .map(|h| {
                Ok(HolderCost {
                    held: v4(h.held.read_net()?, "holder")?,
                    cost: cost(h)?,
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let reservations = raw::input_array(reservations, reservations_len, "reservations")?
            .iter()
            .map(|r| {
                Ok(ExistingReservation {
                    cidr: v4(r.cidr.read_net()?, "reservation")?,
                    prefix: r.prefix != 0,
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let out = Out::new(plan_out, "plan_out")?;
        let goal = Goal {
            blocks,
            len: block_len,
        };
        let plan = defrag::plan(subnet, &holders, &reservations, goal)
            .map_err(|e| Failure::invalid(e.to_string()))?;
        out.write(Box::into_raw(Box::new(pdipam_defrag_plan {
            plan,
            poisoned: AtomicBool::new(false),
        })));
        Ok(())
    })
}

/// Frees a plan. NULL is fine. No other call on it may be running or follow.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `plan` comes from `pdipam_defrag_plan_new` and is freed once,
/// with no other call on it running or to come.
#[no_mangle]
pub unsafe extern "C" fn pdipam_defrag_plan_free(plan: *mut pdipam_defrag_plan) {
    raw::free(plan);
}

/// The plan's totals into `*totals_out`.
///
/// Status: `OK`; `NULL_ARG`; `POISONED`; `PANIC`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `plan` is a `pdipam_defrag_plan` handle that is not freed before
/// this call returns; `totals_out` is writable for one `pdipam_defrag_totals`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_defrag_plan_totals(
    plan: *const pdipam_defrag_plan,
    totals_out: *mut pdipam_defrag_totals,
) -> pdipam_status {
    run_on(plan, "plan", |p| {
        let out = Out::new(totals_out, "totals_out")?;
        let p = &p.plan;
        out.write(pdipam_defrag_totals {
            pods: p.cost.pods,
            interfaces: p.cost.interfaces,
            reservations: p.cost.reservations,
            room_needed: p.room.needed,
            room_available: p.room.available,
            already: p.already,
            after: p.after,
            steps: p.regions.len() as u32,
            pinned: p.pinned.len() as u32,
            met: u8::from(p.met),
        });
        Ok(())
    })
}

fn index<T>(list: &[T], i: u32, what: &str) -> Result<usize, Failure> {
    let i = i as usize;
    if i < list.len() {
        Ok(i)
    } else {
        Err(Failure::invalid(format!(
            "{what} {i}: the plan has {}",
            list.len()
        )))
    }
}

/// Step `step` (from 0, in address order, the order to carry them out) into `*step_out`.
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG` (no such step); `POISONED`; `PANIC`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `plan` is a `pdipam_defrag_plan` handle that is not freed before
/// this call returns; `step_out` is writable for one `pdipam_defrag_step`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_defrag_plan_step(
    plan: *const pdipam_defrag_plan,
    step: u32,
    step_out: *mut pdipam_defrag_step,
) -> pdipam_status {
    run_on(plan, "plan", |p| {
        let out = Out::new(step_out, "step_out")?;
        let r = &p.plan.regions[index(&p.plan.regions, step, "step")?];
        out.write(pdipam_defrag_step {
            region: pdipam_prefix::from_net(IpNet::V4(r.cidr)),
            blocks: r.blocks,
            moves: r.moves.len() as u32,
            pods: r.cost.pods,
            interfaces: r.cost.interfaces,
        });
        Ok(())
    })
}

/// Move `index` (in address order) of step `step` into `*holder_out`: the holder to move out of
/// the step's region once it is reserved.
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG` (no such step or move); `POISONED`; `PANIC`.
/// Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `plan` is a `pdipam_defrag_plan` handle that is not freed before
/// this call returns; `holder_out` is writable for one `pdipam_defrag_holder`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_defrag_plan_move(
    plan: *const pdipam_defrag_plan,
    step: u32,
    index_in_step: u32,
    holder_out: *mut pdipam_defrag_holder,
) -> pdipam_status {
    run_on(plan, "plan", |p| {
        let out = Out::new(holder_out, "holder_out")?;
        let r = &p.plan.regions[index(&p.plan.regions, step, "step")?];
        out.write(holder_out_of(&r.moves, index_in_step, "move")?);
        Ok(())
    })
}

fn holder_out_of(list: &[HolderCost], i: u32, what: &str) -> Result<pdipam_defrag_holder, Failure> {
    Ok(holder_out(&list[index(list, i, what)?]))
}

/// Pinned holder `index` into `*holder_out`: when the goal is not met, what stops more blocks
/// coming back.
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG` (no such holder); `POISONED`; `PANIC`. Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `plan` is a `pdipam_defrag_plan` handle that is not freed before
/// this call returns; `holder_out` is writable for one `pdipam_defrag_holder`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_defrag_plan_pinned(
    plan: *const pdipam_defrag_plan,
    index_in_plan: u32,
    holder_out: *mut pdipam_defrag_holder,
) -> pdipam_status {
    run_on(plan, "plan", |p| {
        let out = Out::new(holder_out, "holder_out")?;
        out.write(holder_out_of(
            &p.plan.pinned,
            index_in_plan,
            "pinned holder",
        )?);
        Ok(())
    })
}
