//! Max pods (the EKS calculation) and the library's version, for C callers.

use crate::boundary::run;
use crate::raw::{self, Out};
use crate::status::pdipam_status;
use pdipam::limits::{CniVersion, InstanceLimits, MaxPodsOptions};
use std::ffi::c_char;

/// The questions `pdipam_max_pods` asks (all zero: the calculator's defaults). A plain value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pdipam_max_pods_options {
    /// Non-zero: prefix delegation (granted on Nitro or bare metal).
    pub prefix_delegation: u8,
    /// Non-zero: custom networking (the primary interface serves no pods).
    pub custom_networking: u8,
    /// Non-zero: the uncapped value instead of the recommended 110 / 250 cap.
    pub show_max_allowed: u8,
    /// A limit on interfaces (MAX_ENI); 0 for none.
    pub max_eni: u32,
}

/// Max pods for `instance_type` (docs/rules.md, "Max pods") into `*max_pods_out`; `options` may
/// be NULL for the defaults (secondary-IP mode, capped).
///
/// Status: `OK`; `NULL_ARG`; `INVALID_ARG`; `UNKNOWN_INSTANCE_TYPE`; `UNKNOWN_VCPUS` (the cap
/// needs the vCPU count: ask with `show_max_allowed`). Thread-safe.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `instance_type` is a NUL-terminated string that stays alive and
/// unchanged during the call; `options` points to an initialised `pdipam_max_pods_options`;
/// `max_pods_out` is writable for one `u32`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_max_pods(
    instance_type: *const c_char,
    options: *const pdipam_max_pods_options,
    max_pods_out: *mut u32,
) -> pdipam_status {
    run(|| {
        let limits = InstanceLimits::lookup(raw::text(instance_type, "instance_type")?)?;
        let out = Out::new(max_pods_out, "max_pods_out")?;
        let o = if options.is_null() {
            pdipam_max_pods_options {
                prefix_delegation: 0,
                custom_networking: 0,
                show_max_allowed: 0,
                max_eni: 0,
            }
        } else {
            *raw::input(options, "options")?
        };
        let m = limits.max_pods(&MaxPodsOptions {
            prefix_delegation: o.prefix_delegation != 0,
            custom_networking: o.custom_networking != 0,
            max_eni: (o.max_eni != 0).then_some(o.max_eni),
            cni_version: CniVersion::default(),
            show_max_allowed: o.show_max_allowed != 0,
        })?;
        out.write(m.max_pods);
        Ok(())
    })
}

/// The library's version, e.g. `"0.1.0"`: a static NUL-terminated string, never NULL.
#[no_mangle]
pub extern "C" fn pdipam_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
