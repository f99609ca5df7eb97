//! Every raw pointer the C caller hands in is read or written here, and only here: null checks,
//! bounded string reads, output slots written once on success, text into caller buffers.
//!
//! These helpers rely on the C contract stated in the header: a non-NULL pointer points to a
//! live object of the declared type (a handle from `_new` not yet freed, a `pdipam_prefix`, an
//! output slot, or a buffer of `buf_len` bytes). Every exported function that takes a pointer is
//! an `unsafe extern "C" fn` whose `# Safety` section states that contract for its arguments, and
//! passes them here unchanged; the helpers are private to the crate, so nothing else reaches
//! them. They are plain functions, not `unsafe fn`, so that each export reads as a list of checks
//! (NULL, length, UTF-8, poison) rather than as a list of `unsafe` blocks.

use crate::status::Failure;
use std::ffi::{c_char, CStr};

/// Strings longer than this are refused: no name, id or path pdipam takes is that long.
pub(crate) const MAX_STRING: usize = 4096;

/// A shared reference to the value behind a non-NULL `*const T`.
pub(crate) fn input<'a, T>(p: *const T, what: &'static str) -> Result<&'a T, Failure> {
    // SAFETY: the C contract makes a non-NULL pointer point to a live, aligned `T` for the
    // duration of the call; NULL is refused here.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// An output slot: checked for NULL before any work is done, written only on success.
pub(crate) struct Out<T> {
    slot: *mut T,
}

impl<T> Out<T> {
    pub(crate) fn new(p: *mut T, what: &'static str) -> Result<Self, Failure> {
        if p.is_null() {
            Err(Failure::null(what))
        } else {
            Ok(Out { slot: p })
        }
    }

    /// Writes the result; the old contents (perhaps uninitialised) are not read or dropped.
    pub(crate) fn write(self, value: T) {
        // SAFETY: non-NULL (checked in `new`) and, by the C contract, valid for writes of `T`.
        unsafe { self.slot.write(value) }
    }
}

impl Out<crate::prefix::pdipam_prefix> {
    /// Writes a prefix field by field: the address as one 16-byte store at its own offset, so a
    /// caller (or the next call) reading the fields gets each load forwarded from one store.
    #[inline(always)]
    pub(crate) fn write_prefix(self, value: crate::prefix::pdipam_prefix) {
        let slot = self.slot;
        // SAFETY: non-NULL (checked in `new`) and, by the C contract, valid for writes of a
        // `pdipam_prefix`; each field pointer stays inside it.
        unsafe {
            std::ptr::addr_of_mut!((*slot).family).write(value.family);
            std::ptr::addr_of_mut!((*slot).len).write(value.len);
            std::ptr::addr_of_mut!((*slot).addr).write(value.addr);
        }
    }
}

/// An optional output slot: NULL means the caller does not want it.
pub(crate) fn write_optional<T>(p: *mut T, value: T) {
    if !p.is_null() {
        // SAFETY: non-NULL and, by the C contract, valid for writes of `T`.
        unsafe { p.write(value) }
    }
}

/// The UTF-8 text of a NUL-terminated string of at most [`MAX_STRING`] bytes.
pub(crate) fn text<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: the C contract makes a non-NULL `p` a NUL-terminated string that stays alive and
    // unchanged for the call (the optimised strlen reads up to its NUL, as any C library would).
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.len() > MAX_STRING {
        return Err(Failure::invalid(format!(
            "{what} is longer than {MAX_STRING} bytes"
        )));
    }
    std::str::from_utf8(bytes).map_err(|e| Failure::invalid(format!("{what} is not UTF-8: {e}")))
}

/// Writes `text` and a NUL into `buf` (`buf_len` bytes) and its length (without the NUL) to
/// `len_out`. When `buf_len` is too small, reports the length in `len_out` and fails with
/// `BUFFER_TOO_SMALL`; `buf` may then be NULL (a size query with `buf_len` 0).
pub(crate) fn write_text(
    text: &str,
    buf: *mut c_char,
    buf_len: usize,
    len_out: *mut usize,
) -> Result<(), Failure> {
    let len = Out::new(len_out, "len_out")?;
    if buf_len <= text.len() {
        len.write(text.len());
        return Err(Failure::buffer_too_small());
    }
    if buf.is_null() {
        return Err(Failure::null("buf"));
    }
    // SAFETY: `buf` is non-NULL and, by the C contract, valid for `buf_len` bytes, which is more
    // than `text.len()`: the text and its NUL fit. The source is a Rust string, so they do not
    // overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        buf.add(text.len()).write(0);
    }
    len.write(text.len());
    Ok(())
}

/// The caller's array of `cap` elements as a mutable slice (empty when `cap` is 0, where the
/// pointer may be NULL).
pub(crate) fn array<'a, T>(
    p: *mut T,
    cap: usize,
    what: &'static str,
) -> Result<&'a mut [T], Failure> {
    if cap == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and, by the C contract, valid for writes of `cap` elements of `T`. The
    // slice is only written to (element by element, with plain-data `T`).
    Ok(unsafe { std::slice::from_raw_parts_mut(p, cap) })
}

/// The caller's array of `len` elements, read-only (empty when `len` is 0, where the pointer may
/// be NULL).
pub(crate) fn input_array<'a, T>(
    p: *const T,
    len: usize,
    what: &'static str,
) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and, by the C contract, valid for reads of `len` initialised elements of
    // `T`, unchanged during the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Takes back ownership of a handle made by `Box::into_raw` (NULL is fine: nothing happens).
pub(crate) fn free<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: by the C contract, a non-NULL pointer given to `_free` came from the matching
        // `_new` (Box::into_raw) and is freed once, with no call on it running or to come.
        drop(unsafe { Box::from_raw(p) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    #[test]
    fn text_takes_strings_of_up_to_max_string_bytes() {
        let longest = CString::new("a".repeat(MAX_STRING)).unwrap();
        assert_eq!(
            text(longest.as_ptr(), "id").map(str::len).ok(),
            Some(MAX_STRING)
        );
        let longer = CString::new("a".repeat(MAX_STRING + 1)).unwrap();
        assert!(text(longer.as_ptr(), "id").is_err());
        assert!(text(std::ptr::null(), "id").is_err());
    }
}
