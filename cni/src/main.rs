//! The `pdipam-cni` binary: one CNI call per process.

use pdipam_cni::config::peek_version;
use pdipam_cni::env::Invocation;
use pdipam_cni::version::answer_version;
use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let outcome = match read {
        Err(e) => Err(pdipam_cni::CniError::new(
            pdipam_cni::error::code::IO_FAILURE,
            format!("cannot read stdin: {e}"),
        )),
        // A panic is a bug; the runtime still gets an error object, not a torn output. No
        // state was written by then unless the write itself had finished (each checkpoint is
        // replaced whole or not at all).
        Ok(_) => std::panic::catch_unwind(|| {
            Invocation::from_env(|k| std::env::var(k).ok())
                .and_then(|inv| pdipam_cni::run(&inv, &stdin))
        })
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(pdipam_cni::CniError::new(
                pdipam_cni::error::code::INTERNAL,
                format!("pdipam-cni failed unexpectedly: {what}"),
            ))
        }),
    };
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(text) => {
            if let Some(text) = text {
                // A runtime that went away cannot be told anything more.
                let _ = writeln!(out, "{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The configuration's version where it could be read and is supported; otherwise
            // the nearest the plugin supports (the details name them all).
            let version = answer_version(peek_version(&stdin).as_deref());
            let _ = writeln!(out, "{}", e.to_json(version));
            ExitCode::FAILURE
        }
    }
}
