//! The log's keyspace: every key of the log lives in one sled tree, told
//! apart by a one-byte prefix, so one `apply_batch` writes a whole append.
//!
//! | prefix | key                                        | value                                   |
//! |--------|--------------------------------------------|-----------------------------------------|
//! | `e`    | `e` + position (u64 BE)                    | the stored record (see [`crate::record`]) |
//! | `s`    | `s` + len (u16 BE) + stream id + version (u64 BE) | position (u64 BE)                  |
//! | `h`    | `h` + stream id                            | version (u64 BE) + position (u64 BE)    |
//! | `i`    | `i` + idempotency key                      | request hash (32) + first position, last position, stream version (3 x u64 BE) |
//! | `m`    | `m`                                        | format (1) + next position (8) + head hash (32) |
//!
//! This module is the one place that knows these bytes: the writer,
//! recovery, verify and [`crate::restore`] all encode and decode keys and
//! values through it.
//!
//! Big-endian integers make sled's byte order equal to numeric order, so a
//! range scan over `e` walks the log in position order and a range scan over
//! one stream's `s` keys walks that stream in version order. The length
//! prefix on the stream id keeps one stream's keys from being a prefix of
//! another's.

use crate::record::{Hash, FORMAT_VERSION};

/// Name of the sled tree that holds the whole log.
pub const LOG_TREE: &str = "eventlog";

/// Prefix of event records, keyed by global position.
pub const EVENT: u8 = b'e';
/// Prefix of the stream index: (stream id, version) -> position.
pub const STREAM_INDEX: u8 = b's';
/// Prefix of stream heads: stream id -> (version, position).
pub const HEAD: u8 = b'h';
/// Prefix of idempotency records: key -> request hash + first outcome.
pub const IDEMPOTENCY: u8 = b'i';
/// The single meta record: format, next position, head hash.
pub const META: &[u8] = b"m";

/// Key of the record at `position`.
pub fn event_key(position: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = EVENT;
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

/// Position encoded in an event key, if the key is one.
pub fn position_of_event_key(key: &[u8]) -> Option<u64> {
    match key {
        [EVENT, rest @ ..] => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// Prefix shared by every index key of one stream.
pub fn stream_prefix(stream_id: &str) -> Vec<u8> {
    let bytes = stream_id.as_bytes();
    let mut key = Vec::with_capacity(3 + bytes.len() + 8);
    key.push(STREAM_INDEX);
    // Stream ids are validated to at most `MAX_STREAM_ID_LEN` bytes on
    // append, so the length always fits.
    key.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    key.extend_from_slice(bytes);
    key
}

/// Key of one stream index entry.
pub fn stream_index_key(stream_id: &str, version: u64) -> Vec<u8> {
    let mut key = stream_prefix(stream_id);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// Decodes a stream index key into (stream id, version).
pub fn parse_stream_index_key(key: &[u8]) -> Option<(&str, u64)> {
    let [STREAM_INDEX, a, b, rest @ ..] = key else {
        return None;
    };
    let len = usize::from(u16::from_be_bytes([*a, *b]));
    if rest.len() != len + 8 {
        return None;
    }
    let stream = std::str::from_utf8(&rest[..len]).ok()?;
    let version = u64::from_be_bytes(rest[len..].try_into().ok()?);
    Some((stream, version))
}

/// Key of a stream head.
pub fn head_key(stream_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + stream_id.len());
    key.push(HEAD);
    key.extend_from_slice(stream_id.as_bytes());
    key
}

/// Key of an idempotency record.
pub fn idempotency_key(key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(IDEMPOTENCY);
    out.extend_from_slice(key.as_bytes());
    out
}

/// Encodes a u64 as the 8 big-endian bytes stored in values.
pub fn u64_value(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

/// Decodes a u64 stored by [`u64_value`] (or the first 8 bytes of a longer value).
pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Encodes a stream head value.
pub fn head_value(version: u64, position: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&version.to_be_bytes());
    out[8..].copy_from_slice(&position.to_be_bytes());
    out
}

/// Decodes a stream head value into (version, position).
pub fn parse_head_value(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() != 16 {
        return None;
    }
    Some((read_u64(&bytes[..8])?, read_u64(&bytes[8..])?))
}

/// Length of the meta record's value.
pub const META_LEN: usize = 1 + 8 + 32;

/// The fields of the meta record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The record format the log was written with.
    pub format: u8,
    /// The position the next append gets (the number of records).
    pub next_position: u64,
    /// Hash of the record at `next_position - 1` (the genesis hash when empty).
    pub head_hash: Hash,
}

/// Encodes the meta record of a log in this build's [`FORMAT_VERSION`].
pub fn meta_value(next_position: u64, head_hash: &Hash) -> [u8; META_LEN] {
    let mut out = [0u8; META_LEN];
    out[0] = FORMAT_VERSION;
    out[1..9].copy_from_slice(&next_position.to_be_bytes());
    out[9..].copy_from_slice(head_hash);
    out
}

/// Decodes a meta record; `None` unless it has [`META_LEN`] bytes. The
/// format byte is returned, not checked.
pub fn parse_meta_value(bytes: &[u8]) -> Option<Meta> {
    if bytes.len() != META_LEN {
        return None;
    }
    Some(Meta {
        format: bytes[0],
        next_position: read_u64(&bytes[1..9])?,
        head_hash: bytes[9..].try_into().ok()?,
    })
}

/// Length of an idempotency record's value.
pub const IDEMPOTENCY_VALUE_LEN: usize = 32 + 3 * 8;

/// The fields of an idempotency record: the request it stands for and the
/// first outcome of that request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyValue {
    /// sha256 of the request.
    pub request_hash: Hash,
    /// Position of the first event the request appended.
    pub first_position: u64,
    /// Position of the last event the request appended.
    pub last_position: u64,
    /// Stream version after the request.
    pub stream_version: u64,
}

/// Encodes an idempotency record's value.
pub fn idempotency_value(value: &IdempotencyValue) -> [u8; IDEMPOTENCY_VALUE_LEN] {
    let mut out = [0u8; IDEMPOTENCY_VALUE_LEN];
    out[..32].copy_from_slice(&value.request_hash);
    out[32..40].copy_from_slice(&value.first_position.to_be_bytes());
    out[40..48].copy_from_slice(&value.last_position.to_be_bytes());
    out[48..].copy_from_slice(&value.stream_version.to_be_bytes());
    out
}

/// Decodes an idempotency record's value; `None` unless it has
/// [`IDEMPOTENCY_VALUE_LEN`] bytes.
pub fn parse_idempotency_value(bytes: &[u8]) -> Option<IdempotencyValue> {
    if bytes.len() != IDEMPOTENCY_VALUE_LEN {
        return None;
    }
    Some(IdempotencyValue {
        request_hash: bytes[..32].try_into().ok()?,
        first_position: read_u64(&bytes[32..40])?,
        last_position: read_u64(&bytes[40..48])?,
        stream_version: read_u64(&bytes[48..])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_index_keys_round_trip_and_sort_by_version() {
        let a = stream_index_key("quote-1", 2);
        let b = stream_index_key("quote-1", 10);
        assert!(a < b);
        assert_eq!(parse_stream_index_key(&b), Some(("quote-1", 10)));
    }

    #[test]
    fn one_stream_is_never_a_prefix_of_another() {
        let short = stream_prefix("quote-1");
        let long = stream_index_key("quote-12", 1);
        assert!(!long.starts_with(&short));
    }

    #[test]
    fn meta_and_idempotency_values_round_trip() {
        let meta = meta_value(7, &[3; 32]);
        assert_eq!(
            parse_meta_value(&meta),
            Some(Meta {
                format: FORMAT_VERSION,
                next_position: 7,
                head_hash: [3; 32]
            })
        );
        assert_eq!(parse_meta_value(&meta[..40]), None);
        let value = IdempotencyValue {
            request_hash: [9; 32],
            first_position: 1,
            last_position: 2,
            stream_version: 3,
        };
        assert_eq!(
            parse_idempotency_value(&idempotency_value(&value)),
            Some(value)
        );
        assert_eq!(parse_idempotency_value(&[0; 55]), None);
    }

    #[test]
    fn event_keys_sort_by_position() {
        assert!(event_key(255) < event_key(256));
        assert_eq!(position_of_event_key(&event_key(42)), Some(42));
    }
}
