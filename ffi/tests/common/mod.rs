//! What the tests that compile C share: the repository root and libpdipam built for them.

#![allow(dead_code)] // each test binary uses its own part of this

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The directory holding `libpdipam.a` and `libpdipam.so` (debug), built once per test binary
/// in a target directory of its own (so the nested cargo never waits on the outer one's lock).
pub fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = root().join("target/c-abi");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "libpdipam", "--target-dir"])
            .arg(&target)
            .current_dir(root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building libpdipam failed");
        target.join("debug")
    })
}
