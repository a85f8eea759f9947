//! The log's keyspace: every key of the log lives in one sled tree, told
//! apart by a one-byte prefix, so one `apply_batch` writes a whole append.
//!
//! | prefix | key                                        | value                                   |
//! |--------|--------------------------------------------|-----------------------------------------|
//! | `e`    | `e` + position (u64 BE)                    | the stored record (see [`crate::record`]) |
//! | `s`    | `s` + len (u16 BE) + stream id + version (u64 BE) | position (u64 BE)                  |
//! | `h`    | `h` + stream id                            | version (u64 BE) + position (u64 BE)    |
//! | `i`    | `i` + idempotency key                      | request hash (32) + outcome (24)        |
//! | `m`    | `m`                                        | format (1) + next position (8) + head hash (32) |
//!
//! Big-endian integers make sled's byte order equal to numeric order, so a
//! range scan over `e` walks the log in position order and a range scan over
//! one stream's `s` keys walks that stream in version order. The length
//! prefix on the stream id keeps one stream's keys from being a prefix of
//! another's.

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
    fn event_keys_sort_by_position() {
        assert!(event_key(255) < event_key(256));
        assert_eq!(position_of_event_key(&event_key(42)), Some(42));
    }
}
