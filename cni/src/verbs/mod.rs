//! The verbs. Each takes the checked configuration and the invocation, and returns what to
//! print on success (ADD's result; nothing for the others).

mod add;
mod check;
mod del;
mod gc;
mod status;

use crate::config::{peek_version, NetworkConfig};
use crate::env::{Command, Invocation};
use crate::error::{code, CniError};
use crate::version::version_answer;
use pdipam::PodKey;

/// One whole CNI call: `stdin` is the network configuration. `Ok(Some(text))` is printed on
/// stdout; `Err` becomes the CNI error object and exit status 1.
///
/// # Errors
/// A [`CniError`] with the specification's code (or ours, 100 and up) and the value at fault.
pub fn run(invocation: &Invocation, stdin: &[u8]) -> Result<Option<String>, CniError> {
    if invocation.command == Command::Version {
        return Ok(Some(version_answer(peek_version(stdin).as_deref())));
    }
    let net = NetworkConfig::parse(stdin)?;
    match invocation.command {
        Command::Add => add::add(&net, invocation).map(Some),
        Command::Del => del::del(&net, invocation).map(|()| None),
        Command::Check => {
            if !net.cni_version.has_check() {
                return Err(not_allowed(&net, "CHECK", "0.4.0"));
            }
            check::check(&net, invocation).map(|()| None)
        }
        Command::Gc => {
            require_1_1(&net, "GC")?;
            gc::gc(&net).map(|()| None)
        }
        Command::Status => {
            require_1_1(&net, "STATUS")?;
            status::status(&net).map(|()| None)
        }
        Command::Version => unreachable!("answered above"),
    }
}

fn require_1_1(net: &NetworkConfig, verb: &str) -> Result<(), CniError> {
    if net.cni_version.has_gc_and_status() {
        Ok(())
    } else {
        Err(not_allowed(net, verb, "1.1.0"))
    }
}

/// The specification's refusal of a verb the configuration's version does not have, in the
/// words of the reference library's plugins.
fn not_allowed(net: &NetworkConfig, verb: &str, since: &str) -> CniError {
    CniError::new(
        code::INCOMPATIBLE_VERSION,
        format!(
            "config version does not allow {verb}: the configuration says {}, {verb} needs {since} or later",
            net.cni_version.as_str()
        ),
    )
}

/// The allocation key of this call.
fn key_of(net: &NetworkConfig, invocation: &Invocation) -> PodKey {
    PodKey::new(&net.name, &invocation.container_id, &invocation.if_name)
}
