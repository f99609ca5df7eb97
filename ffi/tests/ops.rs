//! The proptest twin of the `ffi_ops` fuzz target: random bytes become operation sequences
//! through `arbitrary` (the fuzzer's own decoding), replayed through the C ABI beside the
//! naive model by `pdipam_ffi::testing_ops` (the code the fuzz target runs).

use pdipam_ffi::testing_ops::{decode, FfiOp, FfiPair};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn c_abi_calls_agree_with_the_model(config in any::<u8>(), bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let ops = decode(&bytes);
        let mut pair = FfiPair::new(config);
        for (step, op) in ops.iter().enumerate() {
            pair.step(op).map_err(|e| TestCaseError::fail(format!("step {step}: {op:?}: {e}")))?;
        }
    }
}

/// Random bytes do decode into long sequences of every kind (the property above is not vacuous).
#[test]
fn random_bytes_decode_into_many_operations() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let ops: Vec<FfiOp> = decode(&bytes);
    assert!(ops.len() >= 50, "{} {:?}", ops.len(), ops.first());
    let kinds: std::collections::HashSet<_> = ops.iter().map(std::mem::discriminant).collect();
    assert!(kinds.len() >= 10, "{kinds:?}");
    let mut pair = FfiPair::new(4);
    for op in &ops {
        pair.step(op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
}
