//! The portable export file (see `docs/adr/0006-export-format.md`).
//!
//! A UTF-8 text file of JSON lines:
//!
//! 1. one header line: `{"format":"oms-export","export_version":2,
//!    "record_format":<eventlog FORMAT_VERSION>,"events":N,
//!    "head_position":P,"head_hash":"<hex>","idempotency_records":M,
//!    "idempotency_sha256":"<hex>"}` (the digest, since version 2, is the
//!    sha256 of the `M` idempotency lines, each with its `\n`: the events
//!    are covered by their chain and `head_hash`, the idempotency records
//!    by it);
//! 2. `N` event lines in position order, each with the stored record bytes
//!    (`record`, base64) and readable copies of its envelope fields and
//!    hashes, which import checks against the bytes;
//! 3. `M` idempotency lines in key order (key, request hash, outcome), so a
//!    retried command is still recognised after an import.
//!
//! Nothing in the file depends on when or where it was written, so
//! exporting an imported log gives the same bytes.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The `format` field of the header.
pub const FORMAT_NAME: &str = "oms-export";

/// The version of this file layout (2: the header carries
/// `idempotency_sha256`). Import reads 1 and 2.
pub const EXPORT_VERSION: u32 = 2;

/// The oldest layout import reads (without the idempotency digest).
pub const OLDEST_EXPORT_VERSION: u32 = 1;

/// The longest line an export writes, its newline included: an event
/// line's record (at most [`eventlog::record::MAX_RECORD_BYTES`], with its
/// format byte and hash) in base64, beside its envelope fields (each at
/// most [`eventlog::record::MAX_FIELD_LEN`] bytes, every character escaped
/// at worst) and hashes, with room to spare. Import refuses a longer line
/// once it has read this much of it, so its memory stays bounded whatever
/// the file holds.
pub const MAX_LINE_BYTES: usize =
    (eventlog::record::MAX_RECORD_BYTES + 64).div_ceil(3) * 4 + 64 * 1024;

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The file layout version ([`EXPORT_VERSION`]).
    pub export_version: u32,
    /// The stored record format ([`eventlog::FORMAT_VERSION`]).
    pub record_format: u8,
    /// Number of event lines.
    pub events: u64,
    /// Position of the last event (absent for an empty log).
    pub head_position: Option<u64>,
    /// Hash of the last event, hex (the genesis hash for an empty log).
    pub head_hash: String,
    /// Number of idempotency lines after the events.
    pub idempotency_records: u64,
    /// sha256 of the idempotency lines, hex (absent in version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_sha256: Option<String>,
}

/// The bytes of one line as the file holds it (JSON, then `\n`), which
/// the idempotency digest covers.
pub fn line_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// One event line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine<'a> {
    /// Always `event`.
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    /// Global position.
    pub position: u64,
    /// Stream id.
    #[serde(borrow)]
    pub stream_id: Cow<'a, str>,
    /// Stream version.
    pub stream_version: u64,
    /// Event type.
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    /// Tenant.
    #[serde(borrow)]
    pub tenant_id: Cow<'a, str>,
    /// Correlation id.
    #[serde(borrow)]
    pub correlation_id: Cow<'a, str>,
    /// Recording time, Unix milliseconds.
    pub recorded_at_ms: i64,
    /// Previous hash, hex.
    #[serde(borrow)]
    pub prev_hash: Cow<'a, str>,
    /// Hash of this record, hex.
    #[serde(borrow)]
    pub hash: Cow<'a, str>,
    /// The stored record bytes (format byte, body, hash), base64.
    #[serde(borrow)]
    pub record: Cow<'a, str>,
}

/// One idempotency line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyLine<'a> {
    /// Always `idempotency`.
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    /// The idempotency key.
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    /// sha256 of the request, hex.
    #[serde(borrow)]
    pub request_hash: Cow<'a, str>,
    /// First position the request wrote.
    pub first_position: u64,
    /// Last position the request wrote.
    pub last_position: u64,
    /// Stream version after the request.
    pub stream_version: u64,
}
