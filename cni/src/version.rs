//! CNI versions: which ones pdipam-cni speaks, and the shape of results for each.

use crate::error::{code, CniError};
use serde::Serialize;

/// The versions this plugin reads configurations of and writes results for, oldest first.
pub const SUPPORTED: [&str; 3] = ["0.4.0", "1.0.0", "1.1.0"];

/// The newest supported version (the answer to a VERSION call that names none).
pub const LATEST: &str = "1.1.0";

/// How results are written: 0.4.0 tags each IP with `"version"`; 1.x does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultShape {
    /// 0.4.0 results.
    V04,
    /// 1.0.0 and 1.1.0 results.
    V1,
}

/// A version the configuration asked for, known to be supported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniVersion(String);

impl CniVersion {
    /// Checks `v` against [`SUPPORTED`].
    ///
    /// # Errors
    /// Code 1 naming the version and listing the supported ones.
    pub fn parse(v: &str) -> Result<Self, CniError> {
        if SUPPORTED.contains(&v) {
            Ok(CniVersion(v.to_owned()))
        } else {
            Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("incompatible CNI version {v:?}"),
            )
            .with_details(format!("pdipam-cni supports {}", SUPPORTED.join(", "))))
        }
    }

    /// The version text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The result shape for this version.
    pub fn shape(&self) -> ResultShape {
        if self.0 == "0.4.0" {
            ResultShape::V04
        } else {
            ResultShape::V1
        }
    }

    /// GC and STATUS exist from 1.1.0 on.
    pub fn has_gc_and_status(&self) -> bool {
        self.0 == "1.1.0"
    }
}

/// The VERSION verb's answer.
pub fn version_answer(asked: Option<&str>) -> String {
    #[derive(Serialize)]
    struct Answer<'a> {
        #[serde(rename = "cniVersion")]
        cni_version: &'a str,
        #[serde(rename = "supportedVersions")]
        supported_versions: &'a [&'a str],
    }
    serde_json::to_string(&Answer {
        cni_version: asked.unwrap_or(LATEST),
        supported_versions: &SUPPORTED,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_versions_and_their_shapes() {
        assert_eq!(
            CniVersion::parse("0.4.0").unwrap().shape(),
            ResultShape::V04
        );
        assert_eq!(CniVersion::parse("1.0.0").unwrap().shape(), ResultShape::V1);
        assert!(CniVersion::parse("1.1.0").unwrap().has_gc_and_status());
        assert!(!CniVersion::parse("1.0.0").unwrap().has_gc_and_status());
        let e = CniVersion::parse("0.3.1").unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        assert!(
            e.message.contains("\"0.3.1\"") && e.details.contains("1.1.0"),
            "{e}"
        );
        let v: serde_json::Value = serde_json::from_str(&version_answer(Some("1.0.0"))).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["supportedVersions"][2], "1.1.0");
    }
}
