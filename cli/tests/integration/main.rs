//! The command line's tests: the `pdipam` binary run as a user runs it, its reports pinned.
mod cli;
mod cli_subnet;
