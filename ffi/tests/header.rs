//! `include/pdipam.h` is what cbindgen generates from this crate: regenerate and compare.

use std::path::Path;

#[test]
fn checked_in_header_matches_the_code() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads the crate")
        .write(&mut generated);
    let path = crate_dir.join("../include/pdipam.h");
    if std::env::var_os("PDIPAM_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/pdipam.h differs from what the code generates: \
         run `PDIPAM_BLESS=1 cargo test -p pdipam-ffi --test header` and commit the header"
    );
}
