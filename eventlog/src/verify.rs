//! Full verification of a stored log.
//!
//! One sequential pass over the record pages checks, for every position
//! from 0: the page holding it starts where the previous one ended (a
//! missing page is a gap) and its lengths add up, the record's header
//! decodes (its position, stream and stream version, borrowed from the
//! stored bytes; the payload, metadata and other strings are not decoded),
//! its position field matches its place in the pages, its hash is `sha256(prev || body)`, its previous
//! hash is the hash of the record before it, and its stream version follows
//! the stream's previous version. The hashes are checked on a second
//! thread, fed in batches by the walk; the first problem in log order is
//! reported either way. Beside the walk, on two more threads, one pass
//! over the stream index sums an order-independent fingerprint of
//! (stream, version, position) triples, expanded from its runs, and one
//! pass reads every idempotency record; when the walk is done, the index's
//! fingerprint is compared with the records', and only when they differ
//! does a slower pass look up each record's index entry to name the first
//! bad position. The idempotency records and the meta record are then
//! compared with what the records say (stream heads are derived from the
//! index, so there are none to compare). A problem the walk finds is named
//! before any the scans found, as a sequential check would.
//!
//! A page sled cannot read (its checksum fails, or the read fails) is
//! damage too: in the record walk it is named by the first position that
//! could not be read ([`Problem::Unreadable`]); elsewhere by the keys being
//! read ([`VerifyError::Unreadable`]). [`check_acknowledged`] compares the
//! log with the head last acknowledged (see [`crate::AckedHead`]), which
//! finds acknowledged events that sled dropped at recovery.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher};
use std::path::Path;

use crate::acked::AckedHead;
use crate::append::AppendOutcome;
use crate::error::LogError;
use crate::keyspace::{self, StreamRun};
use crate::pages::RawError;
use crate::record::{Hash, RecordHeader, RecordedEvent, GENESIS_HASH};
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
    /// The meta record disagrees with the last record.
    #[error("meta record disagrees with the last record")]
    MetaMismatch,
    /// sled cannot read the stored page holding this position: its checksum
    /// fails or the read fails. Every position from here to `through` (when
    /// known) is unreadable.
    #[error("the stored page holding this record cannot be read{}: {detail}", through_text(*.through))]
    Unreadable {
        /// Last unreadable position before a readable one, when one was
        /// found within 4,096 positions.
        through: Option<u64>,
        /// What sled reported.
        detail: String,
    },
    /// An idempotency record is malformed or points past the log.
    #[error("idempotency record {key:?} is malformed or points past the log")]
    BadIdempotencyRecord {
        /// The idempotency key (lossy UTF-8).
        key: String,
    },
    /// The log ends here, but every position below `acknowledged` was
    /// acknowledged to a caller: acknowledged events are gone (sled drops
    /// the rest of its log after a damaged spot when it recovers; the
    /// events since the last checkpoint are in the redo journal only, so a
    /// directory copied without `journal/`, or with a damaged journal
    /// file, lacks them too).
    #[error(
        "the log ends here but positions up to {} were acknowledged (acked-head): \
         acknowledged events are missing (the events since sled's last checkpoint are \
         kept in the redo journal, `journal/`: if this directory was copied without it, \
         or a journal file was changed, put back the journal of the directory it came \
         from; else restore from a backup or an export)",
        .acknowledged.saturating_sub(1)
    )]
    MissingAcknowledged {
        /// One past the last acknowledged position.
        acknowledged: u64,
    },
    /// The record at the last acknowledged position is not the one that was
    /// acknowledged: the history was rewritten.
    #[error("the record differs from the one acknowledged at this position (acked-head)")]
    NotAcknowledged,
}

fn through_text(through: Option<u64>) -> String {
    match through {
        Some(through) => format!(" (unreadable through position {through})"),
        None => " (nor any of the next 4096 positions)".to_owned(),
    }
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
    /// sled cannot read the stored page holding these keys (outside the
    /// records: the stream index, heads, idempotency or meta records).
    #[error("log damaged: the stored page holding {region} cannot be read: {detail}")]
    Unreadable {
        /// Which keys were being read.
        region: String,
        /// What sled reported.
        detail: String,
    },
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl VerifyError {
    /// The error as a [`LogError`] of the log in `path` (damage stays
    /// damage).
    pub fn into_log_error(self, path: &Path) -> LogError {
        match self {
            Self::Damaged { position, problem } => LogError::Damaged { position, problem },
            Self::Unreadable { region, detail } => LogError::DamagedStorage {
                path: path.to_path_buf(),
                detail: format!("the stored page holding {region} cannot be read: {detail}"),
            },
            Self::Log(e) => e,
        }
    }
}

fn damaged(position: u64, problem: Problem) -> VerifyError {
    VerifyError::Damaged { position, problem }
}

/// True for sled errors that mean a stored page could not be read.
fn is_read_damage(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Corruption { .. } | sled::Error::Io(_))
}

/// A sled error met while reading `region`: damage when the page could not
/// be read, a plain storage error otherwise.
fn read_error(region: &str, e: sled::Error) -> VerifyError {
    if is_read_damage(&e) {
        VerifyError::Unreadable {
            region: region.to_owned(),
            detail: crate::storage::described(&e),
        }
    } else {
        LogError::from(e).into()
    }
}

/// The record walk could not read the record at `position`: finds how far
/// the unreadable stretch goes (the first readable position within 4,096).
fn unreadable_records(tree: &sled::Tree, position: u64, e: &sled::Error) -> VerifyError {
    let through = (position + 1..position.saturating_add(4097))
        .find(|p| crate::pages::record_at(tree, *p).is_ok())
        .map(|readable| readable - 1);
    damaged(
        position,
        Problem::Unreadable {
            through,
            detail: crate::storage::described(e),
        },
    )
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
    crate::storage::check_restore_finished_file(path)?;
    // A data file lost from a directory that shows it held events is
    // damage, named as the open names it, not "no event log".
    crate::storage::check_data_file(path)?;
    if !path.join("db").exists() {
        return Err(LogError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no event log here"),
        )
        .into());
    }
    let db = crate::storage::open_sled(path, 64 * 1024 * 1024)?;
    let tree = crate::storage::log_tree(path, &db)?;
    verify_acknowledged(path, &tree, progress)
}

/// Verifies the log tree of the data directory `dir` ([`verify_tree`])
/// and compares it with the head last acknowledged there
/// ([`check_acknowledged`]): the one check that open, [`verify_dir`] and
/// `oms-replay verify` run on a stored log.
///
/// # Errors
/// As [`verify_tree`] and [`check_acknowledged`]; a problem past the
/// log's end in a log that ends before the acknowledged head is named as
/// the missing acknowledged events.
pub fn verify_acknowledged(
    dir: &Path,
    tree: &sled::Tree,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let report = verify_tree(tree, progress).map_err(|e| explain_by_acknowledged(dir, tree, e))?;
    check_acknowledged(dir, tree, report.events)?;
    Ok(report)
}

/// Names the root cause of a problem found past the log's end when the
/// log ends before the head last acknowledged: sled dropped a damaged
/// message and everything after it (see [`crate::AckedHead`]), and what is left past the
/// meta record's head is the debris of the group commit it cut, so the
/// missing acknowledged events are the damage to report. Any other error
/// is returned as it is.
fn explain_by_acknowledged(dir: &Path, tree: &sled::Tree, error: VerifyError) -> VerifyError {
    let VerifyError::Damaged { position, .. } = &error else {
        return error;
    };
    let stored = match crate::recovery::read_meta_any_layout(tree) {
        Ok(Some(meta)) => meta.next_position,
        Ok(None) => 0,
        Err(_) => return error,
    };
    match AckedHead::read(dir) {
        Some(acked) if *position >= stored && acked.next_position > stored => damaged(
            stored,
            Problem::MissingAcknowledged {
                acknowledged: acked.next_position,
            },
        ),
        _ => error,
    }
}

/// Compares a log of `events` records with the head last acknowledged in
/// `dir` (see [`crate::AckedHead`]): the log must reach that head and hold
/// the very record that was acknowledged there. Without a readable `acked-head`
/// file there is nothing to compare and the check passes.
///
/// # Errors
/// [`VerifyError::Damaged`] with [`Problem::MissingAcknowledged`] at the
/// first missing position, or [`Problem::NotAcknowledged`] at the last
/// acknowledged one.
pub fn check_acknowledged(dir: &Path, tree: &sled::Tree, events: u64) -> Result<(), VerifyError> {
    let Some(acked) = AckedHead::read(dir) else {
        let path = dir.join(crate::acked::ACKED_HEAD_FILE);
        if events > 0 && !path.exists() {
            // Logs from before the file existed have none; a deleted one
            // looks the same, so this warns rather than refuses.
            tracing::warn!(
                path = %path.display(),
                events,
                "acknowledged head file is missing from a log that holds events; its check is skipped"
            );
        }
        return Ok(());
    };
    if acked.next_position == 0 {
        return Ok(());
    }
    if events < acked.next_position {
        return Err(damaged(
            events,
            Problem::MissingAcknowledged {
                acknowledged: acked.next_position,
            },
        ));
    }
    let position = acked.next_position - 1;
    let stored = crate::pages::record_at(tree, position).map_err(|e| match e {
        RawError::Storage { error, .. } => unreadable_records(tree, position, &error),
        RawError::Malformed { position, why } => damaged(position, Problem::Undecodable(why)),
    })?;
    let hash = stored
        .as_deref()
        .map(RecordedEvent::decode)
        .and_then(Result::ok)
        .map(|r| r.hash);
    if hash != Some(acked.head_hash) {
        return Err(damaged(position, Problem::NotAcknowledged));
    }
    Ok(())
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
    // The index checks below read this build's layout only.
    crate::recovery::check_layout(tree)?;
    crate::recovery::check_restore_finished(tree)?;
    // The record walk (with its hashing thread) and the scans of the
    // stream index and of the idempotency records run side by side:
    // disjoint key ranges, read only. The scans need the walk's figures
    // only at the end (`IndexScan::check`, `IdempotencyScan::check`), and
    // the walk's problem, being earlier in log order, is named first.
    let (walk, index, idempotency) = std::thread::scope(|scope| {
        let index = scope.spawn(|| IndexScan::run(tree, bound));
        let idempotency = scope.spawn(|| IdempotencyScan::run(tree, bound));
        let (batches, hashing) = std::sync::mpsc::sync_channel::<Vec<(u64, sled::IVec)>>(8);
        let hasher = scope.spawn(move || first_bad_hash(&hashing));
        let walked = walk_records(tree, bound, &batches, progress);
        drop(batches);
        let bad_hash = hasher.join().unwrap_or(None);
        (
            earliest(walked, bad_hash),
            joined(index),
            joined(idempotency),
        )
    });
    let walk = walk?;
    let Walk {
        events: expected,
        head_hash: prev_hash,
        streams,
        record_print,
    } = walk;
    // Only its size is reported.
    let streams = u64::try_from(streams.len()).unwrap_or(u64::MAX);
    if until.is_some_and(|until| expected < until) {
        // The records end before the bound the caller saw as durable.
        return Err(damaged(expected, Problem::Gap { found: u64::MAX }));
    }
    // The index's problem is named first, as a sequential check would.
    index?.check(tree, expected, record_print, bound)?;
    idempotency?.check(tree, expected, bound)?;
    let meta = match read_meta(tree) {
        Err(LogError::Storage(e)) => return Err(read_error("the meta record", e)),
        other => other?,
    };
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
        streams,
        head_hash: prev_hash,
    })
}

/// A scan thread's result (its panic goes on in the caller).
fn joined<T>(scan: std::thread::ScopedJoinHandle<'_, T>) -> T {
    scan.join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// What the walk over the records found.
struct Walk {
    events: u64,
    head_hash: Hash,
    streams: HashMap<String, (u64, u64)>,
    record_print: u64,
}

/// Records handed to the hashing thread at a time.
const HASH_BATCH: usize = 256;

/// The sequential walk over the records below `bound`: dense positions,
/// each record's header (position, stream, version: nothing else is
/// decoded), the chain link to the record before it, and stream versions.
/// Every record is also sent to the hashing thread, before its chain and
/// version are checked, so a record whose bytes were changed is named as a
/// hash mismatch, as a sequential check would name it.
fn walk_records(
    tree: &sled::Tree,
    bound: u64,
    hashing: &std::sync::mpsc::SyncSender<Vec<(u64, sled::IVec)>>,
    progress: &mut dyn FnMut(u64),
) -> Result<Walk, VerifyError> {
    let mut walk = Walk {
        events: 0,
        head_hash: GENESIS_HASH,
        streams: HashMap::new(),
        record_print: 0,
    };
    let mut batch = Vec::with_capacity(HASH_BATCH);
    let result = (|| {
        // Untouched: verify's speed is a target, its resident set is well
        // within its bound without the touches (ADR 0037).
        for entry in crate::pages::raw_range_touching(tree, 0, bound, 0) {
            let expected = walk.events;
            let (position, bytes) = match entry {
                Ok(entry) => entry,
                Err(RawError::Storage { error, .. }) if is_read_damage(&error) => {
                    return Err(unreadable_records(tree, expected, &error))
                }
                Err(RawError::Storage { error, .. }) => return Err(LogError::from(error).into()),
                Err(RawError::Malformed { position, why }) => {
                    return Err(damaged(position, Problem::Undecodable(why)))
                }
            };
            if position != expected {
                return Err(damaged(expected, Problem::Gap { found: position }));
            }
            let header = RecordHeader::read(&bytes)
                .map_err(|e| damaged(position, Problem::Undecodable(e.to_string())))?;
            if header.position != position {
                return Err(damaged(position, Problem::WrongPosition(header.position)));
            }
            batch.push((position, bytes.clone()));
            if batch.len() == HASH_BATCH {
                // A hashing thread that stopped has found a mismatch already.
                let _ = hashing.send(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(HASH_BATCH),
                ));
            }
            if header.prev_hash != walk.head_hash {
                return Err(damaged(position, Problem::BrokenChain));
            }
            let previous = walk.streams.get(header.stream_id).map_or(0, |s| s.0);
            if header.stream_version != previous + 1 {
                return Err(damaged(
                    position,
                    Problem::StreamVersionGap {
                        stream: header.stream_id.to_owned(),
                        previous,
                        found: header.stream_version,
                    },
                ));
            }
            walk.record_print = walk.record_print.wrapping_add(fingerprint(
                header.stream_id,
                header.stream_version,
                position,
            ));
            match walk.streams.get_mut(header.stream_id) {
                Some(stream) => *stream = (header.stream_version, position),
                None => {
                    walk.streams.insert(
                        header.stream_id.to_owned(),
                        (header.stream_version, position),
                    );
                }
            }
            walk.head_hash = header.hash;
            walk.events += 1;
            if walk.events % 4096 == 0 {
                progress(walk.events);
            }
        }
        Ok(())
    })();
    if !batch.is_empty() {
        let _ = hashing.send(batch);
    }
    progress(walk.events);
    result.map(|()| walk)
}

/// The hashing thread: the first position whose stored hash is not
/// `sha256(prev_hash || body)` (bytes too short to hold one are the walk's
/// to name), or `None`.
fn first_bad_hash(batches: &std::sync::mpsc::Receiver<Vec<(u64, sled::IVec)>>) -> Option<u64> {
    for batch in batches {
        for (position, bytes) in batch {
            if RecordedEvent::hash_is_valid(&bytes) == Ok(false) {
                return Some(position);
            }
        }
    }
    None
}

/// The first problem in log order: the walk's, or a hash mismatch the
/// hashing thread found at or before it (the walk's own checks of a
/// record's key, header and position come before its hash).
fn earliest(walked: Result<Walk, VerifyError>, bad_hash: Option<u64>) -> Result<Walk, VerifyError> {
    let Some(bad) = bad_hash else {
        return walked;
    };
    match walked {
        Err(VerifyError::Damaged { position, problem })
            if position < bad
                || (position == bad
                    && matches!(
                        problem,
                        Problem::Gap { .. } | Problem::Undecodable(_) | Problem::WrongPosition(_)
                    )) =>
        {
            Err(VerifyError::Damaged { position, problem })
        }
        // Every record the walk read before it stopped was hashed: the
        // mismatch comes first.
        _ => Err(damaged(bad, Problem::HashMismatch)),
    }
}

/// The stream index read in one pass, before the record walk's figures
/// are known: the first malformed or overlapping run (in key order, which
/// is what a sequential check names), and the count and fingerprint of
/// the (stream, version, position) triples of the runs below the bound.
struct IndexScan {
    /// Runs of entries below the bound: their entries.
    count: u64,
    /// Sum of their triples' fingerprints.
    print: u64,
    /// A run reaching past the stored records (or whose fingerprint was
    /// not taken, so that a damaged count cannot make the scan run for
    /// ever): the slow path names it.
    outside: bool,
    /// The first malformed or overlapping entry, as (position before it is
    /// capped by the walk's count, problem).
    problem: Option<(u64, Problem)>,
}

impl IndexScan {
    fn run(tree: &sled::Tree, bound: u64) -> Result<Self, VerifyError> {
        // One past the highest stored record: no honest run reaches it.
        let stored = crate::pages::next_position(tree).unwrap_or(0);
        let mut scan = Self {
            count: 0,
            print: 0,
            outside: false,
            problem: None,
        };
        let mut previous: Option<(Vec<u8>, StreamRun)> = None;
        for entry in tree.scan_prefix([keyspace::RUN]) {
            let (key, value) = entry.map_err(|e| read_error("stream index entries", e))?;
            let Some((stream, run)) = crate::index::decode_entry(&key, &value) else {
                let position = keyspace::read_u64(&value).unwrap_or(0);
                scan.problem = Some((
                    position,
                    Problem::Undecodable("malformed stream index entry".into()),
                ));
                return Ok(scan);
            };
            // A run is one append: wholly below the bound or wholly above it.
            if run.first_position >= bound {
                continue;
            }
            let prefix = keyspace::stream_prefix(&stream);
            if let Some((previous_prefix, previous_run)) = &previous {
                if *previous_prefix == prefix && run.first_version <= previous_run.last_version() {
                    scan.problem = Some((
                        run.first_position,
                        Problem::ExtraIndexEntry {
                            stream,
                            version: run.first_version,
                        },
                    ));
                    return Ok(scan);
                }
            }
            if run.last_position() >= stored {
                scan.outside = true;
            } else {
                for (version, position) in run.entries() {
                    scan.print = scan
                        .print
                        .wrapping_add(fingerprint(&stream, version, position));
                }
                scan.count += run.count;
            }
            previous = Some((prefix, run));
        }
        Ok(scan)
    }

    /// Checks the stream index against the records: every record has its
    /// (stream, version) -> position entry in exactly one run and every
    /// run entry is backed by a record. The fast path compares the
    /// fingerprints; the slow one names the first bad position.
    fn check(
        self,
        tree: &sled::Tree,
        events: u64,
        record_print: u64,
        bound: u64,
    ) -> Result<(), VerifyError> {
        if let Some((position, problem)) = self.problem {
            let position = match problem {
                Problem::Undecodable(_) => position.min(events.saturating_sub(1)),
                _ => position,
            };
            return Err(damaged(position, problem));
        }
        if !self.outside && self.count == events && self.print == record_print {
            return Ok(());
        }
        name_index_problem(tree, events, bound)
    }
}

/// The slow path of the index check: names the first record whose index
/// entry is wrong, or else the first run entry no record backs.
fn name_index_problem(tree: &sled::Tree, events: u64, bound: u64) -> Result<(), VerifyError> {
    for record in crate::log::read_range(tree, 0, events) {
        let record = match record {
            Err(LogError::Storage(e)) => return Err(read_error("records", e)),
            other => other?,
        };
        let indexed =
            match crate::index::position_of(tree, &record.stream_id, record.stream_version) {
                Err(LogError::Storage(e)) => return Err(read_error("stream index entries", e)),
                Err(_) => None,
                Ok(indexed) => indexed,
            };
        if indexed != Some(record.position) {
            return Err(damaged(
                record.position,
                Problem::IndexMismatch {
                    stream: record.stream_id,
                    version: record.stream_version,
                },
            ));
        }
    }
    // Every record is indexed correctly, so some run holds an extra entry.
    for entry in tree.scan_prefix([keyspace::RUN]) {
        let (key, value) = entry.map_err(|e| read_error("stream index entries", e))?;
        let Some((stream, run)) = crate::index::decode_entry(&key, &value) else {
            continue;
        };
        if run.first_position >= bound {
            continue;
        }
        for (version, position) in run.entries() {
            let stored = match crate::pages::record_at(tree, position) {
                Ok(stored) => stored,
                Err(RawError::Storage { error, .. }) => return Err(read_error("records", error)),
                Err(RawError::Malformed { .. }) => None,
            };
            let backed = position < events
                && stored.is_some_and(|bytes| {
                    RecordHeader::read(&bytes)
                        .is_ok_and(|r| r.stream_id == stream && r.stream_version == version)
                });
            if !backed {
                return Err(damaged(
                    position,
                    Problem::ExtraIndexEntry { stream, version },
                ));
            }
        }
    }
    Ok(())
}

/// The idempotency records read in one pass, before the record walk's
/// count is known.
struct IdempotencyScan {
    /// The highest last position of the records below the bound read
    /// before `problem` (or all of them).
    max_last: Option<u64>,
    /// The first record that is malformed (named at the log's last
    /// position, `u64::MAX` here) or names a range backwards (at its first
    /// position).
    problem: Option<(u64, Problem)>,
}

impl IdempotencyScan {
    fn run(tree: &sled::Tree, bound: u64) -> Result<Self, VerifyError> {
        let mut scan = Self {
            max_last: None,
            problem: None,
        };
        for entry in tree.scan_prefix([keyspace::IDEMPOTENCY]) {
            let (key, value) = entry.map_err(|e| read_error("idempotency records", e))?;
            let bad = || Problem::BadIdempotencyRecord {
                key: String::from_utf8_lossy(&key[1..]).into_owned(),
            };
            let Some((_, outcome)) = AppendOutcome::from_bytes(&value) else {
                scan.problem = Some((u64::MAX, bad()));
                return Ok(scan);
            };
            if outcome.last_position >= bound {
                continue;
            }
            if !outcome.range_is_well_formed() {
                scan.problem = Some((outcome.first_position, bad()));
                return Ok(scan);
            }
            scan.max_last = scan.max_last.max(Some(outcome.last_position));
        }
        Ok(scan)
    }

    /// Every idempotency record must be well formed and point at records
    /// of the log (or, on a live log, at appends made after the check
    /// began). A record pointing past the log is named by a second,
    /// sequential pass ([`check_idempotency`]).
    fn check(self, tree: &sled::Tree, events: u64, bound: u64) -> Result<(), VerifyError> {
        if self.max_last.is_some_and(|last| last >= events) {
            return check_idempotency(tree, events, bound);
        }
        match self.problem {
            None => Ok(()),
            Some((position, problem)) => {
                Err(damaged(position.min(events.saturating_sub(1)), problem))
            }
        }
    }
}

/// Reads every idempotency record: each must be well formed and point at
/// records of the log (or, on a live log, at appends made after the check
/// began).
fn check_idempotency(tree: &sled::Tree, events: u64, bound: u64) -> Result<(), VerifyError> {
    for entry in tree.scan_prefix([keyspace::IDEMPOTENCY]) {
        let (key, value) = entry.map_err(|e| read_error("idempotency records", e))?;
        let bad = || {
            damaged(
                events.saturating_sub(1),
                Problem::BadIdempotencyRecord {
                    key: String::from_utf8_lossy(&key[1..]).into_owned(),
                },
            )
        };
        let Some((_, outcome)) = AppendOutcome::from_bytes(&value) else {
            return Err(bad());
        };
        if outcome.last_position >= bound {
            continue;
        }
        if !outcome.range_is_well_formed() || outcome.last_position >= events {
            return Err(damaged(
                outcome.first_position.min(events.saturating_sub(1)),
                Problem::BadIdempotencyRecord {
                    key: String::from_utf8_lossy(&key[1..]).into_owned(),
                },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk() -> Walk {
        Walk {
            events: 10,
            head_hash: GENESIS_HASH,
            streams: HashMap::new(),
            record_print: 0,
        }
    }

    fn named(result: Result<Walk, VerifyError>) -> Option<(u64, Problem)> {
        match result {
            Err(VerifyError::Damaged { position, problem }) => Some((position, problem)),
            _ => None,
        }
    }

    #[test]
    fn the_earliest_problem_in_log_order_is_named_whichever_thread_found_it() {
        // A hash mismatch before the walk's problem comes first.
        let chain = || Err(damaged(6, Problem::BrokenChain));
        assert_eq!(
            named(earliest(chain(), Some(4))),
            Some((4, Problem::HashMismatch))
        );
        // At the same record the hash is checked before the chain link...
        assert_eq!(
            named(earliest(chain(), Some(6))),
            Some((6, Problem::HashMismatch))
        );
        // ...but after the record's header.
        let undecodable = Err(damaged(6, Problem::Undecodable("x".into())));
        assert_eq!(
            named(earliest(undecodable, Some(6))),
            Some((6, Problem::Undecodable("x".into())))
        );
        assert_eq!(
            named(earliest(chain(), Some(9))),
            Some((6, Problem::BrokenChain))
        );
        assert_eq!(
            named(earliest(Ok(walk()), Some(7))),
            Some((7, Problem::HashMismatch))
        );
        assert!(earliest(Ok(walk()), None).is_ok());
    }
}
