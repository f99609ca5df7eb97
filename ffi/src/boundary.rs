//! The edge every exported function passes: panics caught and turned into
//! `PDIPAM_STATUS_PANIC` (poisoning the handle), poisoned handles refused, and the message of
//! the last failure kept per thread for `pdipam_last_error`.

use crate::raw;
use crate::status::{
    pdipam_status, Failure, PDIPAM_STATUS_OK, PDIPAM_STATUS_PANIC, PDIPAM_STATUS_POISONED,
};
use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn remember(message: String) {
    LAST_ERROR.with(|m| *m.borrow_mut() = message);
}

/// A handle that can be poisoned by a panic inside a call on it.
pub(crate) trait Guarded {
    fn poison_flag(&self) -> &AtomicBool;
}

/// Runs `f` behind the panic boundary, turning its result into a status. The result is settled
/// inside the boundary, so only a status crosses it (the error type is large; on the success
/// path nothing is copied or dropped).
#[inline]
pub(crate) fn run(f: impl FnOnce() -> Result<(), Failure>) -> pdipam_status {
    match catch_unwind(AssertUnwindSafe(|| settle(f()))) {
        Ok(status) => status,
        Err(payload) => panicked(payload),
    }
}

#[inline]
fn settle(result: Result<(), Failure>) -> pdipam_status {
    match result {
        Ok(()) => PDIPAM_STATUS_OK,
        Err(e) => failed(e),
    }
}

#[cold]
#[inline(never)]
fn failed(e: Failure) -> pdipam_status {
    let status = e.status();
    remember(e.to_string());
    status
}

#[cold]
#[inline(never)]
fn panicked(payload: Box<dyn std::any::Any + Send>) -> pdipam_status {
    remember(panic_message(payload.as_ref()));
    PDIPAM_STATUS_PANIC
}

/// Runs `f` on the handle behind `h`: NULL is refused, a poisoned handle is refused, and a panic
/// in `f` poisons it (its state may be half-changed: refusing every later call is what keeps an
/// address from being handed out twice).
#[inline]
pub(crate) fn run_on<H: Guarded>(
    h: *const H,
    what: &'static str,
    f: impl FnOnce(&H) -> Result<(), Failure>,
) -> pdipam_status {
    let handle = match raw::input(h, what) {
        Ok(handle) => handle,
        Err(e) => return failed(e),
    };
    if handle.poison_flag().load(Ordering::Acquire) {
        return poisoned(what);
    }
    let status = run(|| f(handle));
    if status == PDIPAM_STATUS_PANIC {
        handle.poison_flag().store(true, Ordering::Release);
    }
    status
}

#[cold]
#[inline(never)]
fn poisoned(what: &str) -> pdipam_status {
    remember(format!(
        "{what} is poisoned: an earlier call on it panicked"
    ));
    PDIPAM_STATUS_POISONED
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    format!("pdipam panicked (a bug; please report it): {detail}")
}

/// The message of the last failed call on this thread, NUL-terminated, into `buf` (`buf_len`
/// bytes); its length without the NUL into `len_out`. Empty when no call failed yet.
///
/// Status: `OK`; `NULL_ARG` (`len_out`, or `buf` with `buf_len` > 0); `BUFFER_TOO_SMALL` with the
/// length needed (without the NUL) in `len_out`. Thread-safe: each thread has its own message.
///
/// # Safety
/// Each pointer may be NULL (refused with `PDIPAM_STATUS_NULL_ARG` where it is required); any
/// other pointer must be valid: `buf` is writable for `buf_len` bytes; `len_out` is writable for
/// one `usize`.
#[no_mangle]
pub unsafe extern "C" fn pdipam_last_error(
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> pdipam_status {
    let message = LAST_ERROR.with(|m| m.borrow().clone());
    // Reporting on the message must not replace it.
    match catch_unwind(AssertUnwindSafe(|| {
        raw::write_text(&message, buf, buf_len, len_out)
    })) {
        Ok(Ok(())) => PDIPAM_STATUS_OK,
        Ok(Err(e)) => e.status(),
        Err(_) => PDIPAM_STATUS_PANIC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Handle(AtomicBool);
    impl Guarded for Handle {
        fn poison_flag(&self) -> &AtomicBool {
            &self.0
        }
    }

    #[test]
    fn a_panic_poisons_the_handle_and_is_reported() {
        let h = Handle(AtomicBool::new(false));
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let status = run_on(&h, "handle", |_| panic!("boom"));
        std::panic::set_hook(quiet);
        assert_eq!(status, PDIPAM_STATUS_PANIC);
        assert!(LAST_ERROR.with(|m| m.borrow().contains("boom")));
        assert_eq!(run_on(&h, "handle", |_| Ok(())), PDIPAM_STATUS_POISONED);
        let fresh = Handle(AtomicBool::new(false));
        assert_eq!(run_on(&fresh, "handle", |_| Ok(())), PDIPAM_STATUS_OK);
        assert_eq!(
            run_on(std::ptr::null::<Handle>(), "handle", |_| Ok(())),
            crate::status::PDIPAM_STATUS_NULL_ARG
        );
    }
}
