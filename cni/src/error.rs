//! The CNI error object: a code from the specification (or one of ours, 100 and up), a message,
//! and details. Every failure of the plugin ends as one of these on stdout with exit status 1.

use serde::Serialize;
use std::fmt;

/// Error codes: the specification's well-known ones, then pdipam-cni's own.
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Container unknown or does not exist (CHECK of a container the network does not know).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables (`CNI_COMMAND`, `CNI_CONTAINERID`, ...).
    pub const INVALID_ENVIRONMENT: u32 = 4;
    /// I/O failure (the state directory or checkpoint could not be written).
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content (stdin is not JSON).
    pub const DECODE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later: the state lock was not obtained in time.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADD requests now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// Ours: no address left to give (all assigned or cooling down).
    pub const NO_ADDRESSES: u32 = 100;
    /// Ours: the checkpoint on disk is unreadable or inconsistent (never silently replaced).
    pub const BAD_STATE: u32 = 101;
    /// Ours: CHECK found the container's allocation different from its previous result, or in
    /// a block no longer configured.
    pub const CHECK_FAILED: u32 = 102;
    /// Ours: the address asked for (`IP=` in `CNI_ARGS`, `runtimeConfig.ips`) cannot be given:
    /// outside every configured block, held by another pod, or cooling down.
    pub const ADDRESS_UNAVAILABLE: u32 = 103;
    /// Ours: fleet mode: the fleet (etcd) refused, or holds what pdipam cannot read.
    pub const FLEET: u32 = 104;
    /// Ours: a bug (a panic), reported as an error object instead of a torn output.
    pub const INTERNAL: u32 = 199;
}

/// A failure, as the CNI specification's error object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CniError {
    /// The error code.
    pub code: u32,
    /// A short message.
    #[serde(rename = "msg")]
    pub message: String,
    /// Longer details (the value at fault, what to do).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with a code and a message, no details.
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        CniError {
            code,
            message: message.into(),
            details: String::new(),
        }
    }

    /// The same error with details.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The error object as the JSON the runtime reads, with the `cniVersion` it asked for.
    pub fn to_json(&self, cni_version: &str) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(rename = "cniVersion")]
            cni_version: &'a str,
            #[serde(flatten)]
            error: &'a CniError,
        }
        serde_json::to_string_pretty(&Out {
            cni_version,
            error: self,
        })
        .unwrap_or_else(|_| format!("{{\"code\":{},\"msg\":\"unprintable\"}}", self.code))
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {}: {}", self.code, self.message)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_object_has_the_specifications_field_names() {
        let e = CniError::new(code::TRY_AGAIN_LATER, "busy").with_details("lock held");
        let v: serde_json::Value = serde_json::from_str(&e.to_json("1.1.0")).unwrap();
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["code"], 11);
        assert_eq!(v["msg"], "busy");
        assert_eq!(v["details"], "lock held");
        let plain = CniError::new(code::DECODE, "x").to_json("1.0.0");
        assert!(!plain.contains("details"), "{plain}");
        assert_eq!(e.to_string(), "code 11: busy (lock held)");
    }
}
