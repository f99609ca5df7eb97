//! Linker flags for `libpdipam.so`: a soname carrying the ABI's major version, so programs
//! linked against it load `libpdipam.so.0` and never an incompatible later library, and a
//! version script that exports only the `pdipam_*` functions (no Rust runtime symbols).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    println!("cargo::rerun-if-changed=pdipam.map");
    if target_os == "linux" {
        println!(
            "cargo::rustc-cdylib-link-arg=-Wl,-soname,libpdipam.so.{}",
            major()
        );
        println!("cargo::rustc-cdylib-link-arg=-Wl,--version-script={dir}/pdipam.map");
    }
}

/// The ABI's major version, read from the line that defines it in pdipam-ffi, so the soname
/// and `PDIPAM_ABI_VERSION_MAJOR` cannot disagree.
fn major() -> u32 {
    let lib =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../src/lib.rs");
    println!("cargo::rerun-if-changed={}", lib.display());
    let text = std::fs::read_to_string(&lib).expect("ffi/src/lib.rs is readable");
    text.lines()
        .find_map(|l| l.strip_prefix("pub const PDIPAM_ABI_VERSION_MAJOR: u32 = "))
        .and_then(|v| v.trim_end_matches(';').trim().parse().ok())
        .expect("ffi/src/lib.rs defines PDIPAM_ABI_VERSION_MAJOR")
}
