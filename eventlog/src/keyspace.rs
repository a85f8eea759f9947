//! The log's keyspace: every key of the log lives in one sled tree, told
//! apart by a one-byte prefix, so one `apply_batch` writes a whole append.
//!
//! Layout 2 (this build, [`LAYOUT_VERSION`]):
//!
//! | prefix | key                                        | value                                   |
//! |--------|--------------------------------------------|-----------------------------------------|
//! | `p`    | `p` + first position (u64 BE)              | a page of stored records (see [`crate::pages`]) |
//! | `r`    | `r` + len (u16 BE) + stream id + first version (u64 BE) | first position (u64 BE) + count (u64 BE) |
//! | `i`    | `i` + idempotency key                      | request hash (32) + first position, last position, stream version (3 x u64 BE) |
//! | `m`    | `m`                                        | layout (1) + next position (8) + head hash (32) |
//! | `x`    | `x`                                        | empty: a restore into this directory has not finished |
//! | `a`    | `a` + the caller's key                     | an attachment (see [`crate::AppendRequest::attach`]) |
//!
//! Records are packed into pages of consecutive positions, one or a few
//! per group commit. The stream index holds one *run* per append: an
//! append's events have consecutive versions and consecutive positions, so
//! one key says where all of them are. A stream's head is its last run,
//! derived, not stored. Layout 1 kept one `e` key per record, one `s` key
//! per event and one `h` (head) key per stream; the upgrade run by
//! [`crate::EventLog::open`] rewrites such a log in place.
//!
//! This module is the one place that knows these bytes: the writer,
//! recovery, verify and [`crate::restore`] all encode and decode keys and
//! values through it.
//!
//! Big-endian integers make sled's byte order equal to numeric order, so a
//! range scan over `p` walks the log in position order and a range scan over
//! one stream's `r` keys walks that stream in version order. The length
//! prefix on the stream id keeps one stream's keys from being a prefix of
//! another's.

use crate::record::Hash;

/// Name of the sled tree that holds the whole log.
pub const LOG_TREE: &str = "eventlog";

/// Prefix of record pages, keyed by their first record's position.
pub const PAGE: u8 = b'p';
/// Layout 1's per-record prefix, read only by the upgrade.
pub const LEGACY_EVENT: u8 = b'e';
/// Prefix of the stream index: (stream id, first version) -> run.
pub const RUN: u8 = b'r';
/// Layout 1's per-event stream index prefix, read only by the upgrade.
pub const LEGACY_STREAM_INDEX: u8 = b's';
/// Layout 1's stream head prefix, read only by the upgrade.
pub const LEGACY_HEAD: u8 = b'h';
/// Prefix of idempotency records: key -> request hash + first outcome.
pub const IDEMPOTENCY: u8 = b'i';
/// Prefix of attachments: records stored atomically with an append but
/// outside the hash chain (not records, not exported, not verified).
pub const ATTACHMENT: u8 = b'a';
/// Present while a restore ([`crate::restore`]) has not finished: such a
/// directory is refused at open.
pub const RESTORE_MARKER: &[u8] = b"x";
/// The single meta record: layout, next position, head hash.
pub const META: &[u8] = b"m";

/// Key of layout 1's record at `position`.
pub fn legacy_event_key(position: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = LEGACY_EVENT;
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

/// Position encoded in a layout-1 record key, if the key is one.
pub fn position_of_legacy_event_key(key: &[u8]) -> Option<u64> {
    match key {
        [LEGACY_EVENT, rest @ ..] => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// Prefix shared by every run key of one stream.
pub fn stream_prefix(stream_id: &str) -> Vec<u8> {
    prefixed_stream(RUN, stream_id)
}

fn prefixed_stream(prefix: u8, stream_id: &str) -> Vec<u8> {
    let bytes = stream_id.as_bytes();
    let mut key = Vec::with_capacity(3 + bytes.len() + 8);
    key.push(prefix);
    // Stream ids are validated to at most `MAX_STREAM_ID_LEN` bytes on
    // append, so the length always fits.
    key.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    key.extend_from_slice(bytes);
    key
}

/// Key of the run of `stream_id` that starts at `first_version`.
pub fn run_key(stream_id: &str, first_version: u64) -> Vec<u8> {
    let mut key = stream_prefix(stream_id);
    key.extend_from_slice(&first_version.to_be_bytes());
    key
}

/// Decodes a run key into (stream id, first version).
pub fn parse_run_key(key: &[u8]) -> Option<(&str, u64)> {
    parse_stream_key(RUN, key)
}

fn parse_stream_key(prefix: u8, key: &[u8]) -> Option<(&str, u64)> {
    let [p, a, b, rest @ ..] = key else {
        return None;
    };
    if *p != prefix {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*a, *b]));
    if rest.len() != len + 8 {
        return None;
    }
    let stream = std::str::from_utf8(&rest[..len]).ok()?;
    let version = u64::from_be_bytes(rest[len..].try_into().ok()?);
    Some((stream, version))
}

/// Consecutive events of one stream at consecutive positions: the events
/// of one append (or of several, after a restore or an upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRun {
    /// Stream version of the run's first event (1 is a stream's first).
    pub first_version: u64,
    /// Log position of the run's first event.
    pub first_position: u64,
    /// Number of events in the run (at least 1).
    pub count: u64,
}

impl StreamRun {
    /// A run of the one event at `version` and `position`.
    pub fn one(version: u64, position: u64) -> Self {
        Self {
            first_version: version,
            first_position: position,
            count: 1,
        }
    }

    /// Stream version of the run's last event.
    pub fn last_version(&self) -> u64 {
        self.first_version
            .saturating_add(self.count.saturating_sub(1))
    }

    /// Log position of the run's last event.
    pub fn last_position(&self) -> u64 {
        self.first_position
            .saturating_add(self.count.saturating_sub(1))
    }

    /// Position of the event at `version`, if the run holds it.
    pub fn position_of(&self, version: u64) -> Option<u64> {
        (version >= self.first_version && version <= self.last_version())
            .then(|| self.first_position + (version - self.first_version))
    }

    /// The run's (version, position) pairs, in order.
    pub fn entries(&self) -> impl Iterator<Item = (u64, u64)> {
        let (v, p) = (self.first_version, self.first_position);
        (0..self.count).map(move |i| (v + i, p + i))
    }
}

/// Length of a run's value.
pub const RUN_VALUE_LEN: usize = 16;

/// Encodes a run's value (its first version is in the key).
pub fn run_value(first_position: u64, count: u64) -> [u8; RUN_VALUE_LEN] {
    let mut out = [0u8; RUN_VALUE_LEN];
    out[..8].copy_from_slice(&first_position.to_be_bytes());
    out[8..].copy_from_slice(&count.to_be_bytes());
    out
}

/// Decodes a run from its key's first version and its value; `None`
/// unless the value has [`RUN_VALUE_LEN`] bytes, the run holds at least
/// one event and neither its versions nor its positions overflow.
pub fn parse_run(first_version: u64, value: &[u8]) -> Option<StreamRun> {
    if value.len() != RUN_VALUE_LEN {
        return None;
    }
    let run = StreamRun {
        first_version,
        first_position: read_u64(&value[..8])?,
        count: read_u64(&value[8..])?,
    };
    let fits = run.count > 0
        && first_version > 0
        && first_version.checked_add(run.count).is_some()
        && run.first_position.checked_add(run.count).is_some();
    fits.then_some(run)
}

/// Key of a layout-1 stream index entry (one per event).
pub fn legacy_stream_index_key(stream_id: &str, version: u64) -> Vec<u8> {
    let mut key = prefixed_stream(LEGACY_STREAM_INDEX, stream_id);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// Decodes a layout-1 stream index key into (stream id, version).
pub fn parse_legacy_stream_index_key(key: &[u8]) -> Option<(&str, u64)> {
    parse_stream_key(LEGACY_STREAM_INDEX, key)
}

/// Key of a layout-1 stream head.
pub fn legacy_head_key(stream_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + stream_id.len());
    key.push(LEGACY_HEAD);
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

/// Key of the attachment the caller keys `key`.
pub fn attachment_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(ATTACHMENT);
    out.extend_from_slice(key);
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

/// Length of the meta record's value.
pub const META_LEN: usize = 1 + 8 + 32;

/// The keyspace layout this build writes (see the module docs).
pub const LAYOUT_VERSION: u8 = 2;

/// The layout before stream runs: one index key per event, stored heads.
pub const LAYOUT_V1: u8 = 1;

/// The fields of the meta record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The keyspace layout the log is stored in ([`LAYOUT_VERSION`] or
    /// [`LAYOUT_V1`]; records carry their own format byte).
    pub layout: u8,
    /// The position the next append gets (the number of records).
    pub next_position: u64,
    /// Hash of the record at `next_position - 1` (the genesis hash when empty).
    pub head_hash: Hash,
}

/// Encodes the meta record of a log in this build's [`LAYOUT_VERSION`].
pub fn meta_value(next_position: u64, head_hash: &Hash) -> [u8; META_LEN] {
    let mut out = [0u8; META_LEN];
    out[0] = LAYOUT_VERSION;
    out[1..9].copy_from_slice(&next_position.to_be_bytes());
    out[9..].copy_from_slice(head_hash);
    out
}

/// Decodes a meta record; `None` unless it has [`META_LEN`] bytes. The
/// layout byte is returned, not checked.
pub fn parse_meta_value(bytes: &[u8]) -> Option<Meta> {
    if bytes.len() != META_LEN {
        return None;
    }
    Some(Meta {
        layout: bytes[0],
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

/// Whether an idempotency record's positions are a range a log can hold:
/// its events (`first <= last`), or a command's id alone (ADR 0051): the
/// empty range just before the head it was recorded at (`first = last +
/// 1`, from 1), at a stream version no greater than the events before it.
/// The one rule `verify`, restore and import apply.
pub fn idempotency_range_is_well_formed(first: u64, last: u64, stream_version: u64) -> bool {
    first <= last || (first >= 1 && first == last + 1 && stream_version <= first)
}

impl IdempotencyValue {
    /// Whether its positions are a range a log can hold
    /// ([`idempotency_range_is_well_formed`]).
    pub fn is_well_formed(&self) -> bool {
        idempotency_range_is_well_formed(
            self.first_position,
            self.last_position,
            self.stream_version,
        )
    }

    /// False for a command's id recorded alone (no events).
    pub fn records_events(&self) -> bool {
        self.first_position <= self.last_position
    }
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
    fn run_keys_round_trip_and_sort_by_version() {
        let a = run_key("quote-1", 2);
        let b = run_key("quote-1", 10);
        assert!(a < b);
        assert_eq!(parse_run_key(&b), Some(("quote-1", 10)));
        assert_eq!(parse_run_key(&legacy_stream_index_key("quote-1", 10)), None);
        assert_eq!(
            parse_legacy_stream_index_key(&legacy_stream_index_key("quote-1", 10)),
            Some(("quote-1", 10))
        );
    }

    #[test]
    fn one_stream_is_never_a_prefix_of_another() {
        let short = stream_prefix("quote-1");
        let long = run_key("quote-12", 1);
        assert!(!long.starts_with(&short));
    }

    #[test]
    fn runs_round_trip_and_refuse_empty_or_overflowing_values() {
        let run = parse_run(3, &run_value(10, 4)).expect("a run");
        assert_eq!((run.last_version(), run.last_position()), (6, 13));
        assert_eq!(run.position_of(5), Some(12));
        assert_eq!(run.position_of(7), None);
        assert_eq!(run.position_of(2), None);
        assert_eq!(
            run.entries().collect::<Vec<_>>(),
            [(3, 10), (4, 11), (5, 12), (6, 13)]
        );
        assert_eq!(parse_run(3, &run_value(10, 0)), None);
        assert_eq!(parse_run(0, &run_value(10, 1)), None);
        assert_eq!(parse_run(3, &run_value(u64::MAX, 2)), None);
        assert_eq!(parse_run(u64::MAX, &run_value(1, 2)), None);
        assert_eq!(parse_run(3, &run_value(10, 4)[..15]), None);
    }

    #[test]
    fn meta_and_idempotency_values_round_trip() {
        let meta = meta_value(7, &[3; 32]);
        assert_eq!(
            parse_meta_value(&meta),
            Some(Meta {
                layout: LAYOUT_VERSION,
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

    /// Events, or a command's id alone just before a head (ADR 0051);
    /// nothing backwards by more than one, and no stream version larger
    /// than the events before it.
    #[test]
    fn an_idempotency_range_holds_events_or_a_command_id_alone() {
        assert!(idempotency_range_is_well_formed(4, 6, 3));
        assert!(idempotency_range_is_well_formed(5, 4, 2));
        assert!(idempotency_range_is_well_formed(1, 0, 1));
        assert!(!idempotency_range_is_well_formed(5, 4, 6));
        assert!(!idempotency_range_is_well_formed(6, 4, 1));
    }

    #[test]
    fn page_keys_sort_by_position() {
        use crate::pages::{page_key, position_of_page_key};
        assert!(page_key(255) < page_key(256));
        assert_eq!(position_of_page_key(&page_key(42)), Some(42));
        assert_eq!(
            position_of_legacy_event_key(&legacy_event_key(42)),
            Some(42)
        );
    }
}
