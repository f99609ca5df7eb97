//! Arbitrary operation sequences through the `extern "C"` functions, as a C caller makes them:
//! valid calls compared with the naive subnet model, and NULL pointers, bad strings (invalid
//! UTF-8, interior NULs, overlong), bad families and lengths, and short buffers. Checked after
//! every step: the status agrees with the model, outputs are untouched on failure, text outputs
//! are NUL-terminated with the reported length, and `pdipam_subnet_verify` and
//! `pdipam_node_verify` pass. Its proptest twin is ffi/tests/ops.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pdipam_c::testing_ops::{decode, FfiPair};

fuzz_target!(|data: &[u8]| {
    let Some((config, rest)) = data.split_first() else {
        return;
    };
    let mut pair = FfiPair::new(*config);
    for op in decode(rest).iter().take(300) {
        if let Err(e) = pair.step(op) {
            panic!("{op:?}: {e}");
        }
    }
});
