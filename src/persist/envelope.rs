//! The envelope every pdipam checkpoint shares: format name, version, kind, checksum, body.
//!
//! The checksum is CRC-32 over the body's canonical JSON (object keys sorted, no spaces), so it
//! can be recomputed from the parsed file whatever whitespace a person or tool added.

use super::PersistError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// The format name written into every checkpoint.
pub const FORMAT: &str = "pdipam-checkpoint";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Sealed<'a> {
    format: &'a str,
    version: u32,
    kind: &'a str,
    checksum: String,
    body: &'a RawValue,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    format: String,
    version: Value,
    kind: String,
    checksum: String,
    #[serde(borrow)]
    body: &'a RawValue,
}

fn crc(text: &str) -> String {
    format!("crc32:{:08x}", crc32fast::hash(text.as_bytes()))
}

/// The file bytes for `body` of `kind`. The body is written in its canonical form (keys sorted,
/// no whitespace), so a reader checks the checksum over the bytes as they are.
pub(crate) fn seal<T: Serialize>(kind: &str, body: &T) -> Vec<u8> {
    // `serde_json::Value` keeps object keys sorted (no `preserve_order`): canonical text.
    let text = serde_json::to_value(body)
        .unwrap_or(Value::Null)
        .to_string();
    let raw = RawValue::from_string(text)
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"));
    let sealed = Sealed {
        format: FORMAT,
        version: VERSION,
        kind,
        checksum: crc(raw.get()),
        body: &raw,
    };
    let mut out = serde_json::to_vec(&sealed).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The body of a checkpoint of `kind`, after checking format, version, kind and checksum.
/// A body as written is checked over its bytes directly; a reformatted one (a person or tool
/// re-indented it) is brought back to canonical form first.
pub(crate) fn open<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    source: &str,
    kind: &'static str,
) -> Result<T, PersistError> {
    let parse = |message: String| PersistError::Parse {
        source_name: source.into(),
        message,
    };
    let env: Envelope<'_> = serde_json::from_slice(bytes).map_err(|e| parse(e.to_string()))?;
    if env.format != FORMAT || env.version != VERSION {
        return Err(PersistError::UnknownVersion {
            source_name: source.into(),
            found: format!("{} {}", env.format, env.version),
            expected: format!("{FORMAT} {VERSION}"),
        });
    }
    let raw = env.body.get();
    if crc(raw) != env.checksum {
        let canonical: Value = serde_json::from_str(raw).map_err(|e| parse(e.to_string()))?;
        let computed = crc(&canonical.to_string());
        if computed != env.checksum {
            return Err(PersistError::BadChecksum {
                source_name: source.into(),
                stored: env.checksum,
                computed,
            });
        }
    }
    if env.kind != kind {
        return Err(PersistError::WrongKind {
            source_name: source.into(),
            found: env.kind,
            expected: kind,
        });
    }
    serde_json::from_str(raw).map_err(|e| parse(e.to_string()))
}

/// Seals `body` and replaces the file at `path` durably.
pub(crate) fn write<T: Serialize>(
    kind: &str,
    body: &T,
    path: &std::path::Path,
) -> Result<(), PersistError> {
    super::durable::write_durably(path, &seal(kind, body))
}

/// Reads the file at `path` and opens it as a checkpoint of `kind`.
pub(crate) fn read<T: for<'de> Deserialize<'de>>(
    path: &std::path::Path,
    kind: &'static str,
) -> Result<T, PersistError> {
    let bytes = super::durable::read_file(path)?;
    open(&bytes, &path.display().to_string(), kind)
}
