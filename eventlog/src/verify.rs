//! Full verification of a stored log.
//!
//! One sequential pass over the records checks, for every position from 0:
//! the key is the next dense position, the record decodes, its position
//! field matches its key, its hash is `sha256(prev || body)`, its previous
//! hash is the hash of the record before it, and its stream version follows
//! the stream's previous version. A second sequential pass over the stream
//! index compares an order-independent fingerprint of (stream, version,
//! position) triples with the records'; only when they differ does a slower
//! pass look up each record's index entry to name the first bad position.
//! Finally every stream head and the meta record are compared with what the
//! records say.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher};
use std::path::Path;

use crate::error::LogError;
use crate::keyspace;
use crate::record::{Hash, RecordedEvent, GENESIS_HASH};
use crate::recovery::read_meta;

/// What a successful verification walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of events.
    pub events: u64,
    /// Number of streams.
    pub streams: u64,
    /// Hash of the last record ([`GENESIS_HASH`] for an empty log).
    pub head_hash: Hash,
}

impl VerifyReport {
    /// Position of the last record, if the log has any.
    pub fn head_position(&self) -> Option<u64> {
        self.events.checked_sub(1)
    }
}

/// What is wrong at the first bad position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// No record at this position although later ones exist.
    #[error("record missing (next record found at position {found})")]
    Gap {
        /// The next position that does hold a record.
        found: u64,
    },
    /// The stored bytes do not decode.
    #[error("record does not decode: {0}")]
    Undecodable(String),
    /// The record's own position field differs from its key.
    #[error("record claims position {0}")]
    WrongPosition(u64),
    /// The stored hash is not the hash of the stored bytes.
    #[error("hash does not match the record's bytes")]
    HashMismatch,
    /// The record's previous hash is not the hash of the record before it.
    #[error("chain broken: previous hash does not match the preceding record")]
    BrokenChain,
    /// The record's stream version does not follow the stream's last one.
    #[error("stream {stream} jumps from version {previous} to {found}")]
    StreamVersionGap {
        /// The stream.
        stream: String,
        /// Its previous version.
        previous: u64,
        /// The version found.
        found: u64,
    },
    /// The stream index has no entry, or a different one, for this record.
    #[error("stream index entry for {stream} version {version} is missing or wrong")]
    IndexMismatch {
        /// The stream.
        stream: String,
        /// The version.
        version: u64,
    },
    /// The stream index has an entry that no record backs.
    #[error("stream index has an extra entry for {stream} version {version}")]
    ExtraIndexEntry {
        /// The stream.
        stream: String,
        /// The version.
        version: u64,
    },
    /// A stream head disagrees with the stream's last record.
    #[error("stream head of {0} disagrees with its records")]
    HeadMismatch(String),
    /// The meta record disagrees with the last record.
    #[error("meta record disagrees with the last record")]
    MetaMismatch,
}

/// A verification that found the log damaged, or could not read it.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log is damaged at `position`.
    #[error("log damaged at position {position}: {problem}")]
    Damaged {
        /// First bad position.
        position: u64,
        /// What is wrong there.
        problem: Problem,
    },
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
}

fn damaged(position: u64, problem: Problem) -> VerifyError {
    VerifyError::Damaged { position, problem }
}

fn fingerprint(stream: &str, version: u64, position: u64) -> u64 {
    let mut h = DefaultHasher::new();
    stream.hash(&mut h);
    version.hash(&mut h);
    position.hash(&mut h);
    h.finish()
}

/// Verifies the log in a data directory without opening it for writing
/// (no recovery checks first, so a damaged log can still be inspected).
/// Fails with [`LogError::Locked`] if a server holds the directory.
pub fn verify_dir(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, VerifyError> {
    if !path.join("db").exists() {
        return Err(LogError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no event log here"),
        )
        .into());
    }
    let db = crate::log::open_db(path, 64 * 1024 * 1024)?;
    let tree = db.open_tree(keyspace::LOG_TREE).map_err(LogError::from)?;
    verify_tree(&tree, progress)
}

/// Verifies a log tree that nothing writes to. `progress` is called with
/// the number of records checked so far, every few thousand records.
pub fn verify_tree(
    tree: &sled::Tree,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    verify_tree_until(tree, None, progress)
}

/// Verifies the records below `until` of a tree that may be written to
/// meanwhile (a live log): records, index entries and heads at or past
/// `until` belong to appends made after the check began and are left out;
/// everything below it is checked exactly as by [`verify_tree`]. With
/// `None`, the whole tree is checked and must be quiescent.
pub fn verify_tree_until(
    tree: &sled::Tree,
    until: Option<u64>,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let bound = until.unwrap_or(u64::MAX);
    let mut expected = 0u64;
    let mut prev_hash = GENESIS_HASH;
    let mut streams: HashMap<String, (u64, u64)> = HashMap::new();
    let mut record_print = 0u64;
    for entry in tree.scan_prefix([keyspace::EVENT]) {
        let (key, bytes) = entry.map_err(LogError::from)?;
        let position = keyspace::position_of_event_key(&key).unwrap_or(u64::MAX);
        if expected >= bound {
            break;
        }
        if position != expected {
            return Err(damaged(expected, Problem::Gap { found: position }));
        }
        let record = RecordedEvent::decode(&bytes)
            .map_err(|e| damaged(position, Problem::Undecodable(e.to_string())))?;
        if record.position != position {
            return Err(damaged(position, Problem::WrongPosition(record.position)));
        }
        if !RecordedEvent::hash_is_valid(&bytes).unwrap_or(false) {
            return Err(damaged(position, Problem::HashMismatch));
        }
        if record.prev_hash != prev_hash {
            return Err(damaged(position, Problem::BrokenChain));
        }
        let previous = streams.get(&record.stream_id).map_or(0, |s| s.0);
        if record.stream_version != previous + 1 {
            return Err(damaged(
                position,
                Problem::StreamVersionGap {
                    stream: record.stream_id,
                    previous,
                    found: record.stream_version,
                },
            ));
        }
        record_print = record_print.wrapping_add(fingerprint(
            &record.stream_id,
            record.stream_version,
            position,
        ));
        streams.insert(record.stream_id, (record.stream_version, position));
        prev_hash = record.hash;
        expected += 1;
        if expected % 4096 == 0 {
            progress(expected);
        }
    }
    progress(expected);
    if until.is_some_and(|until| expected < until) {
        // The records end before the bound the caller saw as durable.
        return Err(damaged(expected, Problem::Gap { found: u64::MAX }));
    }
    check_index(tree, expected, record_print, bound)?;
    check_heads(tree, &streams, bound)?;
    let meta = read_meta(tree)?;
    let meta_agrees = match meta {
        // A live log's meta has moved past the bound: nothing to compare.
        Some(meta) if until.is_some() && meta.next_position > expected => true,
        Some(meta) => meta.next_position == expected && meta.head_hash == prev_hash,
        None => expected == 0,
    };
    if !meta_agrees {
        return Err(damaged(expected.saturating_sub(1), Problem::MetaMismatch));
    }
    Ok(VerifyReport {
        events: expected,
        streams: u64::try_from(streams.len()).unwrap_or(u64::MAX),
        head_hash: prev_hash,
    })
}

fn check_index(
    tree: &sled::Tree,
    events: u64,
    record_print: u64,
    bound: u64,
) -> Result<(), VerifyError> {
    let mut count = 0u64;
    let mut index_print = 0u64;
    for entry in tree.scan_prefix([keyspace::STREAM_INDEX]) {
        let (key, value) = entry.map_err(LogError::from)?;
        let position = keyspace::read_u64(&value).unwrap_or(u64::MAX);
        if position >= bound && position != u64::MAX {
            continue;
        }
        match keyspace::parse_stream_index_key(&key) {
            Some((stream, version)) => {
                index_print = index_print.wrapping_add(fingerprint(stream, version, position))
            }
            None => {
                return Err(damaged(
                    position,
                    Problem::Undecodable("malformed stream index key".into()),
                ))
            }
        }
        count += 1;
    }
    if count == events && index_print == record_print {
        return Ok(());
    }
    // Slow path: name the first record whose index entry is wrong.
    for record in crate::log::read_range(tree, 0, events) {
        let record = record?;
        let indexed = tree
            .get(keyspace::stream_index_key(
                &record.stream_id,
                record.stream_version,
            ))
            .map_err(LogError::from)?;
        if indexed.as_deref().and_then(keyspace::read_u64) != Some(record.position) {
            return Err(damaged(
                record.position,
                Problem::IndexMismatch {
                    stream: record.stream_id,
                    version: record.stream_version,
                },
            ));
        }
    }
    // Every record is indexed correctly, so some index entry is extra.
    for entry in tree.scan_prefix([keyspace::STREAM_INDEX]) {
        let (key, value) = entry.map_err(LogError::from)?;
        let position = keyspace::read_u64(&value).unwrap_or(u64::MAX);
        if position >= bound && position != u64::MAX {
            continue;
        }
        let Some((stream, version)) = keyspace::parse_stream_index_key(&key) else {
            continue;
        };
        let backed = match tree
            .get(keyspace::event_key(position))
            .map_err(LogError::from)?
        {
            Some(bytes) => RecordedEvent::decode(&bytes)
                .is_ok_and(|r| r.stream_id == stream && r.stream_version == version),
            None => false,
        };
        if !backed {
            return Err(damaged(
                position,
                Problem::ExtraIndexEntry {
                    stream: stream.to_owned(),
                    version,
                },
            ));
        }
    }
    Ok(())
}

fn check_heads(
    tree: &sled::Tree,
    streams: &HashMap<String, (u64, u64)>,
    bound: u64,
) -> Result<(), VerifyError> {
    let mut heads = 0usize;
    for entry in tree.scan_prefix([keyspace::HEAD]) {
        let (key, value) = entry.map_err(LogError::from)?;
        let stream = String::from_utf8_lossy(&key[1..]).into_owned();
        let stored = keyspace::parse_head_value(&value);
        match (stored, streams.get(&stream)) {
            (Some(head), Some(actual)) if head == *actual => heads += 1,
            // Moved by an append made after the check began.
            (Some((version, position)), Some(actual))
                if position >= bound && version > actual.0 =>
            {
                heads += 1
            }
            (Some((_, position)), None) if position >= bound && bound != u64::MAX => {}
            (stored, _) => {
                let position = stored.map_or(0, |(_, p)| p);
                return Err(damaged(position, Problem::HeadMismatch(stream)));
            }
        }
    }
    if heads != streams.len() {
        // A stream with records has no head.
        let (stream, (_, position)) = streams
            .iter()
            .find(|(s, _)| !matches!(tree.get(keyspace::head_key(s)), Ok(Some(_))))
            .map(|(s, h)| (s.clone(), *h))
            .unwrap_or_default();
        return Err(damaged(position, Problem::HeadMismatch(stream)));
    }
    Ok(())
}
