//! Restoring a log from its stored records: the writing side of an import.
//!
//! An export carries every record's exact stored bytes and the idempotency
//! records. Restoring writes them into an empty data directory and rebuilds
//! every derived key (stream index, meta) from the records,
//! never from what the caller says. It comes in two halves, so that
//! checking and writing can run on two threads:
//!
//! - [`ChainCheck`] takes the stored bytes in position order and checks
//!   each record: its hash against its bytes, its position (dense from 0),
//!   its link to the record before, and its stream version (consecutive
//!   per stream). A record that passes becomes a [`CheckedRecord`], the
//!   only thing a [`Restorer`] writes.
//! - [`Restorer`] writes checked records in position order, packed into
//!   pages (see [`crate::pages`]), with plain ascending inserts (about twice as fast as `apply_batch` for a bulk
//!   load, and without its memory growth; see ADR 0006), checks that each
//!   one continues what it has written (position, previous hash, stream
//!   version: comparisons only), and keeps the stream index in memory, as
//!   runs of consecutive positions (one per stretch of a stream). The
//!   idempotency records come after the records they point to and are
//!   written as they come ([`Restorer::add_idempotency`]), so none is held
//!   in memory. [`Restorer::finish`] then writes the stream index sorted
//!   by key, the guards of side-effect consumers and the meta record;
//!   makes the whole of it durable with one flush (given up after two
//!   minutes, see ADR 0032); removes the restore marker in a flush of its
//!   own and one `fdatasync`; and
//!   writes the acknowledged head ([`crate::AckedHead`]).
//!
//! Every key and value goes through [`crate::keyspace`].
//!
//! A restore marker comes first and goes last, once everything else is
//! durable (a file, [`UNFINISHED_FILE`], before sled creates anything, and
//! a key in the log tree): a restore that stops half-way, or whose flush
//! stalls, leaves a
//! directory that [`crate::EventLog::open`] refuses, never a silently
//! short or empty log.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use eventlog::restore::{ChainCheck, Restorer};
//!
//! // The stored records, in position order (for example from an export).
//! let stored: Vec<Vec<u8>> = Vec::new();
//! let dir = tempfile::tempdir()?;
//! let mut check = ChainCheck::new();
//! let mut restorer = Restorer::create(&dir.path().join("restored"), 32 << 20)?;
//! for bytes in stored {
//!     restorer.write(check.check(bytes)?.record)?;
//! }
//! let restored = restorer.finish()?;
//! assert_eq!(restored.events, 0);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::acked::{AckedHead, AckedHeadFile, ACKED_HEAD_FILE};
use crate::checkpoint::ConsumerStore;
use crate::error::LogError;
use crate::keyspace::{self, IdempotencyValue, StreamRun};
use crate::pages::PageBuilder;
use crate::record::{DecodeError, Hash, RecordedEvent, GENESIS_HASH, MAX_FIELD_LEN};
use crate::storage;

/// Why a restore stopped. Nothing it wrote is a log yet: the directory
/// has no meta record until [`Restorer::finish`] succeeds.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The target directory exists and is not empty.
    #[error("restore needs an empty data directory; {} is not empty", .0.display())]
    NotEmpty(PathBuf),
    /// A record was refused at `position`; nothing from it on is written.
    #[error("record at position {position} is refused: {problem}")]
    Refused {
        /// Position of the refused record (the position it should have).
        position: u64,
        /// What is wrong with it.
        problem: RestoreProblem,
    },
    /// An idempotency record has an empty or too long key, is given twice,
    /// or points outside the records written before it.
    #[error("idempotency record {key:?} is malformed or points outside the log")]
    BadIdempotencyRecord {
        /// The idempotency key.
        key: String,
    },
    /// The data directory could not be created, written or made durable.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl From<sled::Error> for RestoreError {
    fn from(error: sled::Error) -> Self {
        Self::Log(LogError::Storage(error))
    }
}

/// What is wrong with a refused record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreProblem {
    /// The stored hash is not `sha256(previous hash || body)` of its bytes.
    #[error("the record's hash does not match its bytes")]
    HashMismatch,
    /// The bytes do not decode as a record.
    #[error("the record does not decode: {0}")]
    Undecodable(DecodeError),
    /// The record carries another position than the next one.
    #[error("found position {found} where {expected} was expected")]
    WrongPosition {
        /// The position the record carries.
        found: u64,
        /// The position that was due.
        expected: u64,
    },
    /// The record's previous hash is not the hash of the record before it.
    #[error("the record does not chain to the record before it")]
    BrokenChain,
    /// The record's stream version does not follow its stream's last one.
    #[error("stream {stream} jumps from version {from} to {to}")]
    VersionJump {
        /// The stream.
        stream: String,
        /// The stream's version before this record (0 for a new stream).
        from: u64,
        /// The version the record carries.
        to: u64,
    },
    /// More streams than a restore can index (2^32).
    #[error("too many streams")]
    TooManyStreams,
    /// The record was checked by another [`ChainCheck`] than the records
    /// before it.
    #[error("the record was checked apart from the records before it")]
    ForeignCheck,
}

/// The file a restore writes into its directory before anything else and
/// removes after everything else: while it is there, every opener (the
/// server and each `oms-replay` command) refuses the directory as "a
/// restore into this directory did not finish".
pub const UNFINISHED_FILE: &str = "restore-unfinished";

fn refused(position: u64, problem: RestoreProblem) -> RestoreError {
    RestoreError::Refused { position, problem }
}

/// Fails with [`RestoreError::NotEmpty`] unless `dir` is missing or an
/// empty directory: one holding nothing but nobody's data
/// ([`storage::is_nobodys_entry`]: a fresh volume's `lost+found`, hidden
/// files), which a restore leaves alone.
///
/// # Errors
/// [`RestoreError::NotEmpty`], or [`RestoreError::Log`] when `dir` cannot
/// be read.
pub fn require_empty(dir: &Path) -> Result<(), RestoreError> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(dir, e).into()),
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(|e| LogError::io(dir, e))?;
                if !storage::is_nobodys_entry(&entry.file_name().to_string_lossy()) {
                    return Err(RestoreError::NotEmpty(dir.to_path_buf()));
                }
            }
            Ok(())
        }
    }
}

/// A record that passed [`ChainCheck::check`], ready for
/// [`Restorer::write`]. Only a `ChainCheck` makes one.
#[derive(Debug)]
pub struct CheckedRecord {
    position: u64,
    prev_hash: Hash,
    hash: Hash,
    /// Index of the stream, in the order streams first appeared.
    stream: u32,
    /// The stream's id, on its first record only.
    new_stream: Option<String>,
    version: u64,
    bytes: Vec<u8>,
}

impl CheckedRecord {
    /// The record's position.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The record's hash.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The record's stream, as the number its [`ChainCheck`] gave it:
    /// streams are numbered from 0 in the order they first appear, so two
    /// records of one check share a stream exactly when they share this.
    pub fn stream_index(&self) -> u32 {
        self.stream
    }
}

/// One record checked by [`ChainCheck::check`].
#[derive(Debug)]
pub struct Checked {
    /// The decoded record, for the caller's own checks.
    pub event: RecordedEvent,
    /// What to hand to [`Restorer::write`].
    pub record: CheckedRecord,
}

/// Checks stored records in position order (see the module docs). Cheap to
/// move to another thread than the [`Restorer`]'s.
#[derive(Debug)]
pub struct ChainCheck {
    next_position: u64,
    prev_hash: Hash,
    /// Stream id -> (index, last version).
    streams: HashMap<String, (u32, u64)>,
}

impl Default for ChainCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainCheck {
    /// A check that expects position 0 next, chained to the genesis hash.
    pub fn new() -> Self {
        Self {
            next_position: 0,
            prev_hash: GENESIS_HASH,
            streams: HashMap::new(),
        }
    }

    /// The position the next record must carry (the number checked).
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// Hash of the last record checked ([`GENESIS_HASH`] before the first).
    pub fn head_hash(&self) -> Hash {
        self.prev_hash
    }

    /// Checks the next record's stored bytes: its hash against its bytes,
    /// its position, its link to the record before and its stream version.
    ///
    /// # Errors
    /// [`RestoreError::Refused`] at the position that was due; the check
    /// is then unchanged.
    pub fn check(&mut self, bytes: Vec<u8>) -> Result<Checked, RestoreError> {
        let position = self.next_position;
        if !RecordedEvent::hash_is_valid(&bytes).unwrap_or(false) {
            return Err(refused(position, RestoreProblem::HashMismatch));
        }
        let event = RecordedEvent::decode(&bytes)
            .map_err(|e| refused(position, RestoreProblem::Undecodable(e)))?;
        if event.position != position {
            return Err(refused(
                position,
                RestoreProblem::WrongPosition {
                    found: event.position,
                    expected: position,
                },
            ));
        }
        if event.prev_hash != self.prev_hash {
            return Err(refused(position, RestoreProblem::BrokenChain));
        }
        let jump = |from: u64| {
            refused(
                position,
                RestoreProblem::VersionJump {
                    stream: event.stream_id.clone(),
                    from,
                    to: event.stream_version,
                },
            )
        };
        let (stream, new_stream) = match self.streams.get_mut(&event.stream_id) {
            Some((index, version)) => {
                if version.checked_add(1) != Some(event.stream_version) {
                    return Err(jump(*version));
                }
                *version = event.stream_version;
                (*index, None)
            }
            None => {
                if event.stream_version != 1 {
                    return Err(jump(0));
                }
                let index = u32::try_from(self.streams.len())
                    .map_err(|_| refused(position, RestoreProblem::TooManyStreams))?;
                self.streams
                    .insert(event.stream_id.clone(), (index, event.stream_version));
                (index, Some(event.stream_id.clone()))
            }
        };
        self.prev_hash = event.hash;
        self.next_position = position.saturating_add(1);
        Ok(Checked {
            record: CheckedRecord {
                position,
                prev_hash: event.prev_hash,
                hash: event.hash,
                stream,
                new_stream,
                version: event.stream_version,
                bytes,
            },
            event,
        })
    }
}

/// Creates `dir` (mode 0700, with its missing parents) and says whether
/// this call created it: `false` when it was there already.
fn create_claimed_dir(dir: &Path) -> Result<bool, RestoreError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        storage::create_private_dir(parent).map_err(|e| LogError::io(parent, e))?;
    }
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
        Err(e) => Err(LogError::io(dir, e).into()),
    }
}

/// Takes back a claim that [`Restorer::create`] could not complete: its
/// marker, and the directory if it created it and nothing else is there.
/// Whatever anyone else put there stays.
fn give_up_claim(dir: &Path, created_dir: bool) {
    let _ = std::fs::remove_file(dir.join(UNFINISHED_FILE));
    if created_dir {
        let _ = std::fs::remove_dir(dir);
    }
}

/// The files and directories a restore writes into its directory: the
/// marker, sled's (`conf`, `db`, `blobs`, `snap.*`), the acknowledged head
/// and the snapshot marker ([`storage::SNAPSHOT_KEPT_FILE`]).
fn written_by_a_restore(name: &str) -> bool {
    matches!(
        name,
        UNFINISHED_FILE | "conf" | "db" | "blobs" | ACKED_HEAD_FILE | storage::SNAPSHOT_KEPT_FILE
    ) || name.starts_with("snap.")
}

/// A restore's hold on its directory: what [`RestoreClaim::remove_written`]
/// needs to take back what the restore wrote should it not finish.
#[derive(Debug, Clone)]
pub struct RestoreClaim {
    dir: PathBuf,
    created_dir: bool,
}

impl RestoreClaim {
    /// The restore's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes what the restore wrote, once sled has let go of the
    /// directory: the files a restore writes ([`UNFINISHED_FILE`] last, so
    /// a removal that stops half-way still leaves a directory every
    /// opener refuses), then the directory itself if the restore created
    /// it and nothing else is in it. Anything else in the directory (put
    /// there by someone else meanwhile) stays. Does nothing to a directory
    /// without the marker: it holds no unfinished restore.
    ///
    /// # Errors
    /// The first file that could not be removed.
    pub fn remove_written(&self) -> std::io::Result<()> {
        remove_restore_files(&self.dir)?;
        if self.created_dir && self.dir.exists() {
            let _ = std::fs::remove_dir(&self.dir);
        }
        Ok(())
    }
}

/// Removes the files a restore writes ([`written_by_a_restore`]) from
/// `dir`, the marker last, if `dir` holds an unfinished restore (its
/// [`UNFINISHED_FILE`]); anything else stays.
///
/// # Errors
/// The first entry that could not be listed or removed.
pub fn remove_restore_files(dir: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(dir.join(UNFINISHED_FILE)).is_err() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == UNFINISHED_FILE || !written_by_a_restore(name) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    std::fs::remove_file(dir.join(UNFINISHED_FILE))?;
    crate::storage::sync_dir(dir).map_err(|e| std::io::Error::other(e.to_string()))
}

/// What [`Restorer::finish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Records written (the next position of the restored log).
    pub events: u64,
    /// Streams indexed.
    pub streams: u64,
    /// Idempotency records written.
    pub idempotency_records: u64,
    /// Hash of the last record ([`GENESIS_HASH`] for an empty log).
    pub head_hash: Hash,
}

/// Writes checked records into a new data directory (see the module docs).
#[derive(Debug)]
pub struct Restorer {
    /// Whether the restore created `dir` (it was missing).
    created_dir: bool,
    dir: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    next_position: u64,
    head_hash: Hash,
    /// Stream ids by index.
    names: Vec<String>,
    /// Records written but not yet inserted: the page being filled.
    pages: PageBuilder,
    /// Where each stream's last run is in `runs`, by stream index.
    last_run: Vec<usize>,
    /// (stream index, run) of every stretch of consecutive positions of
    /// one stream, in position order.
    runs: Vec<(u32, StreamRun)>,
    /// Idempotency records written.
    idempotency_records: u64,
    /// The key of an idempotency record given twice: its second value
    /// replaced the first in sled, so [`Restorer::finish`] refuses.
    duplicate_key: Option<String>,
    /// Longest the final flush may take (see [`Restorer::flush_stall_limit`]).
    flush_stall_limit: std::time::Duration,
    /// Consumers that make external calls, guarded at the restored head
    /// (see [`Restorer::side_effect_consumers`]).
    side_effect_consumers: Vec<String>,
}

impl Restorer {
    /// Creates the log's database in `dir`, which must be missing or empty,
    /// with the log's segment size and `cache_capacity_bytes` of page cache.
    ///
    /// # Errors
    /// [`RestoreError::NotEmpty`]; [`RestoreError::Log`] when the directory
    /// cannot be created or sled cannot open it.
    pub fn create(dir: &Path, cache_capacity_bytes: u64) -> Result<Self, RestoreError> {
        require_empty(dir)?;
        let created_dir = create_claimed_dir(dir)?;
        // Durable before sled creates its files: a restore killed at any
        // point before `finish`, even while sled opens, leaves a directory
        // every opener refuses, never an empty log a server would start on.
        // Created only if missing: of two restores into one directory, or
        // a restore and whoever filled the directory since it was found
        // empty, only the one that made the marker goes on.
        let unfinished = dir.join(UNFINISHED_FILE);
        let marked = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&unfinished)
            .and_then(|file| file.sync_all());
        match marked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RestoreError::NotEmpty(dir.to_path_buf()))
            }
            Err(e) => {
                give_up_claim(dir, created_dir);
                return Err(LogError::io(&unfinished, e).into());
            }
        }
        let opened = (|| {
            storage::sync_dir(dir)?;
            let db = storage::open_sled(dir, cache_capacity_bytes)?;
            let tree = db
                .open_tree(keyspace::LOG_TREE)
                .map_err(|e| storage::damage_or_storage(dir, e))?;
            // A log written into the directory since it was found empty
            // (a server started on it) is not the restore's to add to.
            if !tree.is_empty() {
                return Err(RestoreError::NotEmpty(dir.to_path_buf()));
            }
            // Before any record: a restore that stops before `finish` leaves a
            // directory that opens as damage, not as an empty log.
            tree.insert(keyspace::RESTORE_MARKER, &[][..])?;
            Ok((db, tree))
        })();
        let (db, tree) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                give_up_claim(dir, created_dir);
                return Err(e);
            }
        };
        Ok(Self {
            created_dir,
            dir: dir.to_path_buf(),
            db,
            tree,
            next_position: 0,
            head_hash: GENESIS_HASH,
            names: Vec::new(),
            pages: PageBuilder::new(0),
            last_run: Vec::new(),
            runs: Vec::new(),
            idempotency_records: 0,
            duplicate_key: None,
            flush_stall_limit: storage::FLUSH_STALL_LIMIT,
            side_effect_consumers: Vec::new(),
        })
    }

    /// The position the next record must carry (the number written).
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// What removes this restore's files should it not finish (see
    /// [`RestoreClaim::remove_written`]), kept apart so that it outlives
    /// the restorer (and with it sled's hold on the directory).
    pub fn claim(&self) -> RestoreClaim {
        RestoreClaim {
            dir: self.dir.clone(),
            created_dir: self.created_dir,
        }
    }

    /// Writes the next record (not durable before [`Restorer::finish`]).
    ///
    /// # Errors
    /// [`RestoreError::Refused`] when the record does not continue what was
    /// written (another position or previous hash, or a record of another
    /// [`ChainCheck`]); [`RestoreError::Log`] when sled fails.
    pub fn write(&mut self, record: CheckedRecord) -> Result<(), RestoreError> {
        let position = self.next_position;
        if record.position != position {
            return Err(refused(
                position,
                RestoreProblem::WrongPosition {
                    found: record.position,
                    expected: position,
                },
            ));
        }
        if record.prev_hash != self.head_hash {
            return Err(refused(position, RestoreProblem::BrokenChain));
        }
        let slot = usize::try_from(record.stream).unwrap_or(usize::MAX);
        match &record.new_stream {
            Some(_) if slot == self.names.len() && record.version == 1 => {}
            Some(_) => return Err(refused(position, RestoreProblem::ForeignCheck)),
            None => match self.stream_head(slot) {
                Some(run) if run.last_version().checked_add(1) == Some(record.version) => {}
                _ => return Err(refused(position, RestoreProblem::ForeignCheck)),
            },
        }
        self.pages.push(&record.bytes);
        for (key, value) in self.pages.take_sealed() {
            self.tree.insert(key, value)?;
            // As a walk does (ADR 0037): so that sled's cache counts the
            // page and lets it go once written.
            crate::pages::touch(&self.tree, &key, crate::pages::WALK_TOUCHES);
        }
        if let Some(name) = record.new_stream {
            self.names.push(name);
            self.last_run.push(self.runs.len());
            self.runs
                .push((record.stream, StreamRun::one(record.version, position)));
        } else {
            let last = self.last_run.get(slot).copied().unwrap_or(usize::MAX);
            match self.runs.get_mut(last) {
                Some((_, run)) if run.last_position().checked_add(1) == Some(position) => {
                    run.count += 1;
                }
                _ => {
                    if let Some(entry) = self.last_run.get_mut(slot) {
                        *entry = self.runs.len();
                    }
                    self.runs
                        .push((record.stream, StreamRun::one(record.version, position)));
                }
            }
        }
        self.head_hash = record.hash;
        self.next_position = position.saturating_add(1);
        Ok(())
    }

    /// The last run of the stream in `slot`, if it has one.
    fn stream_head(&self, slot: usize) -> Option<&StreamRun> {
        let last = *self.last_run.get(slot)?;
        self.runs.get(last).map(|(_, run)| run)
    }

    /// Writes an idempotency record (not durable before
    /// [`Restorer::finish`]). It must point inside the records written so
    /// far: add idempotency records after the records. Ascending keys (an
    /// export's order) are the fastest for sled.
    ///
    /// # Errors
    /// [`RestoreError::BadIdempotencyRecord`] when the key is empty, longer
    /// than [`MAX_FIELD_LEN`] bytes or given before (the restore then
    /// cannot finish), or the record points outside the records written;
    /// [`RestoreError::Log`] when sled fails.
    pub fn add_idempotency(
        &mut self,
        key: &str,
        value: IdempotencyValue,
    ) -> Result<(), RestoreError> {
        let bad = || RestoreError::BadIdempotencyRecord {
            key: key.to_owned(),
        };
        if key.is_empty()
            || key.len() > MAX_FIELD_LEN
            || !value.is_well_formed()
            || value.last_position >= self.next_position
        {
            return Err(bad());
        }
        let previous = self.tree.insert(
            keyspace::idempotency_key(key),
            &keyspace::idempotency_value(&value)[..],
        )?;
        if previous.is_some() {
            self.duplicate_key.get_or_insert_with(|| key.to_owned());
            return Err(bad());
        }
        self.idempotency_records += 1;
        Ok(())
    }

    /// The same restorer, which declares each of `names` a consumer that
    /// makes external calls, with its recovery bound at the restored head,
    /// so that its first run re-observes the restored history and calls no
    /// one. They are written with the rest, before the restore is marked
    /// finished: a restore that finishes always has them.
    pub fn side_effect_consumers(mut self, names: &[String]) -> Self {
        self.side_effect_consumers = names.to_vec();
        self
    }

    /// The same restorer, whose final flush is given up after `limit`
    /// (two minutes by default) with [`LogError::FlushStalled`]: sled 0.34
    /// can stall there for good (ADR 0032).
    pub fn flush_stall_limit(mut self, limit: std::time::Duration) -> Self {
        self.flush_stall_limit = limit;
        self
    }

    /// Completes the log: writes the stream index (sorted by key, which
    /// sled inserts fastest) and the meta record last; flushes and
    /// `fdatasync`s sled's data file;
    /// closes the database; then writes the acknowledged head and fsyncs
    /// the directory. The directory then opens with
    /// [`crate::EventLog::open`] (which the caller should do to run its
    /// recovery checks; sled may hold the directory's lock for a moment
    /// after this returns).
    ///
    /// # Errors
    /// [`RestoreError::BadIdempotencyRecord`] when an idempotency record
    /// was given twice (nothing more is written);
    /// [`RestoreError::Log`] when writing or syncing fails.
    pub fn finish(self) -> Result<Restored, RestoreError> {
        let Self {
            created_dir: _,
            dir,
            db,
            tree,
            next_position,
            head_hash,
            names,
            pages,
            last_run: _,
            mut runs,
            idempotency_records,
            duplicate_key,
            flush_stall_limit,
            side_effect_consumers,
        } = self;
        if let Some(key) = duplicate_key {
            return Err(RestoreError::BadIdempotencyRecord { key });
        }
        let slot = |stream: u32| usize::try_from(stream).unwrap_or(usize::MAX);
        // Streams ranked by their index key, so index keys go in ascending.
        let mut ranked: Vec<(Vec<u8>, usize)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (keyspace::stream_prefix(name), i))
            .collect();
        ranked.sort_unstable();
        let mut rank = vec![0usize; names.len()];
        for (r, (_, stream)) in ranked.iter().enumerate() {
            if let Some(entry) = rank.get_mut(*stream) {
                *entry = r;
            }
        }
        drop(ranked);
        for (key, value) in pages.finish() {
            tree.insert(key, value)?;
        }
        runs.sort_unstable_by_key(|(stream, run)| {
            (
                rank.get(slot(*stream)).copied().unwrap_or(0),
                run.first_version,
            )
        });
        for (stream, run) in runs {
            let name = names.get(slot(stream)).map_or("", String::as_str);
            tree.insert(
                keyspace::run_key(name, run.first_version),
                &keyspace::run_value(run.first_position, run.count)[..],
            )?;
        }
        for name in &side_effect_consumers {
            let store = ConsumerStore::open(&db, name)?;
            store.declare_side_effects()?;
            store.set_recovery_until(next_position)?;
        }
        tree.insert(
            keyspace::META,
            &keyspace::meta_value(next_position, &head_hash)[..],
        )?;
        // Everything is durable, the marker included, before the marker
        // goes in a write of its own: a flush that stalls (and the import
        // given up) leaves a directory that opens as an unfinished restore,
        // never as a log without its side-effect guards.
        let unfinished = "nothing in this directory was acknowledged: remove it and run again";
        storage::flush_within(&db, &dir, flush_stall_limit, unfinished)?;
        tree.remove(keyspace::RESTORE_MARKER)?;
        storage::flush_within(&db, &dir, flush_stall_limit, unfinished)?;
        let data_path = dir.join("db");
        File::open(&data_path)
            .and_then(|file| file.sync_data())
            .map_err(|e| LogError::io(&data_path, e))?;
        drop(tree);
        drop(db);
        // The head is durable in `db` now, so `acked-head` may name it.
        AckedHeadFile::create(
            &dir,
            AckedHead {
                next_position,
                head_hash,
            },
        )
        .map_err(|e| LogError::io(&dir.join(ACKED_HEAD_FILE), e))?;
        storage::sync_dir(&dir)?;
        // Last: the directory is a finished log from here on.
        let unfinished = dir.join(UNFINISHED_FILE);
        std::fs::remove_file(&unfinished).map_err(|e| LogError::io(&unfinished, e))?;
        storage::sync_dir(&dir)?;
        Ok(Restored {
            events: next_position,
            streams: u64::try_from(names.len()).unwrap_or(u64::MAX),
            idempotency_records,
            head_hash,
        })
    }
}
