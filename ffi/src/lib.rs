//! C ABI for pdipam. The C ABI issue fills in the surface; this crate already builds
//! `libpdipam.a` / `libpdipam.so` and exports the ABI version so embedders can check it.
#![deny(missing_docs)]

/// Major ABI version: bumped on any incompatible change.
pub const PDIPAM_ABI_VERSION_MAJOR: u32 = 0;
/// Minor ABI version: bumped when functions are added.
pub const PDIPAM_ABI_VERSION_MINOR: u32 = 1;

/// `(PDIPAM_ABI_VERSION_MAJOR << 16) | PDIPAM_ABI_VERSION_MINOR`.
#[no_mangle]
pub extern "C" fn pdipam_abi_version() -> u32 {
    (PDIPAM_ABI_VERSION_MAJOR << 16) | PDIPAM_ABI_VERSION_MINOR
}

#[cfg(test)]
mod tests {
    #[test]
    fn abi_version_packs_major_and_minor() {
        assert_eq!(super::pdipam_abi_version(), 1);
    }
}
