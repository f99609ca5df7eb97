//! The artifact crate: `libpdipam.a` and `libpdipam.so.0` hold every `pdipam_*` function of
//! `pdipam-ffi`, and nothing else is exported (see `build.rs` and `pdipam.map`).
#![forbid(unsafe_code)]

pub use pdipam_ffi::*;
