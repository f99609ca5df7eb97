//! pdipam placeholder while the subnet layer is written.
#![forbid(unsafe_code)]
mod space;
mod sync;
