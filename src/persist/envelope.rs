//! The envelope every pdipam checkpoint shares: format name, version, kind, checksum, body.
//!
//! The checksum is CRC-32 over the body's canonical JSON (object keys sorted, no spaces), so it
//! can be recomputed from the parsed file whatever whitespace a person or tool added.

use super::PersistError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format name written into every checkpoint.
pub const FORMAT: &str = "pdipam-checkpoint";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    version: Value,
    kind: String,
    checksum: String,
    body: Value,
}

fn checksum(body: &Value) -> String {
    // `serde_json::Value` keeps object keys sorted (no `preserve_order`): canonical text.
    let text = body.to_string();
    format!("crc32:{:08x}", crc32fast::hash(text.as_bytes()))
}

/// The file bytes for `body` of `kind` (pretty-printed; the checksum ignores layout).
pub(crate) fn seal<T: Serialize>(kind: &str, body: &T) -> Vec<u8> {
    let body = serde_json::to_value(body).unwrap_or(Value::Null);
    let env = Envelope {
        format: FORMAT.into(),
        version: VERSION.into(),
        kind: kind.into(),
        checksum: checksum(&body),
        body,
    };
    let mut out = serde_json::to_vec_pretty(&env).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The body of a checkpoint of `kind`, after checking format, version, kind and checksum.
pub(crate) fn open<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    source: &str,
    kind: &'static str,
) -> Result<T, PersistError> {
    let parse = |message: String| PersistError::Parse {
        source_name: source.into(),
        message,
    };
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| parse(e.to_string()))?;
    if env.format != FORMAT || env.version != VERSION {
        return Err(PersistError::UnknownVersion {
            source_name: source.into(),
            found: format!("{} {}", env.format, env.version),
            expected: format!("{FORMAT} {VERSION}"),
        });
    }
    let computed = checksum(&env.body);
    if computed != env.checksum {
        return Err(PersistError::BadChecksum {
            source_name: source.into(),
            stored: env.checksum,
            computed,
        });
    }
    if env.kind != kind {
        return Err(PersistError::WrongKind {
            source_name: source.into(),
            found: env.kind,
            expected: kind,
        });
    }
    serde_json::from_value(env.body).map_err(|e| parse(e.to_string()))
}
