//! CNI versions: which ones pdipam-cni speaks, and the shape of results for each.

use crate::error::{code, CniError};
use serde::Serialize;

/// The versions this plugin reads configurations of and writes results for, oldest first.
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest supported version (the answer to a VERSION call that names none).
pub const LATEST: &str = "1.1.0";

/// How results are written: 0.3.x and 0.4.0 tag each IP with `"version"`; 1.x does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultShape {
    /// 0.3.0, 0.3.1 and 0.4.0 results.
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
        if self.0.starts_with("0.") {
            ResultShape::V04
        } else {
            ResultShape::V1
        }
    }

    /// CHECK exists from 0.4.0 on.
    pub fn has_check(&self) -> bool {
        !self.0.starts_with("0.3.")
    }

    /// GC and STATUS exist from 1.1.0 on.
    pub fn has_gc_and_status(&self) -> bool {
        self.0 == "1.1.0"
    }
}

/// The version to answer in when the runtime asked for `asked`: that one if supported; for one
/// that is not, the nearest supported (the oldest for an older one, else the newest), so that
/// every error object is one the plugin can stand behind and the runtime can read.
pub fn answer_version(asked: Option<&str>) -> &'static str {
    let Some(asked) = asked else { return LATEST };
    if let Some(v) = SUPPORTED.iter().find(|v| **v == asked) {
        return v;
    }
    let older = match (
        semver::Version::parse(asked),
        semver::Version::parse(SUPPORTED[0]),
    ) {
        (Ok(a), Ok(oldest)) => a < oldest,
        _ => false,
    };
    if older {
        SUPPORTED[0]
    } else {
        LATEST
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
        cni_version: answer_version(asked),
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
        for old in ["0.3.0", "0.3.1"] {
            let v = CniVersion::parse(old).unwrap();
            assert_eq!(v.shape(), ResultShape::V04);
            assert!(!v.has_check() && !v.has_gc_and_status());
        }
        assert!(CniVersion::parse("0.4.0").unwrap().has_check());
        let e = CniVersion::parse("0.2.0").unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        assert!(
            e.message.contains("\"0.2.0\"")
                && e.details.contains("0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"),
            "{e}"
        );
        let v: serde_json::Value = serde_json::from_str(&version_answer(Some("1.0.0"))).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["supportedVersions"][4], "1.1.0");
        // An unsupported version is answered in the nearest supported one.
        assert_eq!(answer_version(Some("0.2.0")), "0.3.0");
        assert_eq!(answer_version(Some("2.0.0")), "1.1.0");
        assert_eq!(answer_version(Some("banana")), "1.1.0");
        assert_eq!(answer_version(Some("0.3.1")), "0.3.1");
        assert_eq!(answer_version(None), "1.1.0");
    }
}
