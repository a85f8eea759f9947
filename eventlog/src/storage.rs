//! The data directory's files underneath the log: sled's configuration
//! file, the segment size, and the blob files.
//!
//! sled 0.34.7 writes any page whose serialised size is more than
//! `segment_size / 4 - 52` bytes to its own file under `blobs/`, and never
//! fsyncs those files. New logs are therefore created with
//! [`SEGMENT_SIZE`] (16 MiB, the largest sled allows), whose threshold
//! (about 4 MiB) is above the largest page the log tree can hold (see
//! [`MAX_LOG_PAGE_BYTES`]): every page of a new log stays in `db`, the file
//! the durable flush fsyncs. An existing data directory keeps the segment
//! size recorded in its `conf` (sled refuses another); for such a log the
//! flush stage also fsyncs every blob file (see [`BlobSync`]).
//!
//! sled itself only warns when `conf` fails its checksum and then reports
//! confusing errors (or silently rewrites a short `conf` with defaults), so
//! [`open_sled`] checks `conf` first and names a damaged one. sled also
//! panics on some damaged logs while recovering; that panic is caught and
//! reported as damage.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::record::{
    MAX_FIELD_LEN, MAX_METADATA_BYTES, MAX_METADATA_ENTRIES, MAX_PAYLOAD_BYTES, MAX_STREAM_ID_LEN,
};

/// sled segment size of every log created by this version: 16 MiB, the
/// largest sled 0.34.7 accepts (it must be a power of two).
pub const SEGMENT_SIZE: usize = 16 << 20;

/// sled's default segment size (512 KiB), which logs created before
/// [`SEGMENT_SIZE`] was set have in their `conf`.
pub const SLED_DEFAULT_SEGMENT_SIZE: usize = 512 * 1024;

/// Largest page sled keeps inline in `db` for a segment size: sled 0.34.7
/// (`pagecache/logger.rs`, `reserve_inner`) sends a message to a blob file
/// when `MAX_MSG_HEADER_LEN (32) + serialised size` exceeds
/// `segment_size / MINIMUM_ITEMS_PER_SEGMENT (4) - SEG_HEADER_LEN (20)`.
pub const fn max_inline_page_bytes(segment_size: usize) -> usize {
    segment_size / 4 - 20 - 32
}

/// Upper bound of one stored record's size, from the append limits: the
/// payload, the metadata, six short text fields (stream id, event type,
/// tenant, correlation, causation), bincode's length prefixes (at most 9
/// bytes each), the fixed fields, the format byte and two hashes.
pub const MAX_STORED_RECORD_BYTES: usize = MAX_PAYLOAD_BYTES
    + MAX_METADATA_BYTES
    + MAX_METADATA_ENTRIES * 2 * 9
    + MAX_STREAM_ID_LEN
    + 5 * MAX_FIELD_LEN
    + 8 * 9
    + 16
    + 1
    + 2 * 32
    + 64;

/// Most entries a leaf of the log tree holds: sled 0.34.7 splits a leaf
/// holding more than 16 entries on the next traversal (`Node::should_split`)
/// and merges a leaf of fewer than 4 into its neighbour, so a leaf never
/// holds more than 20; 32 leaves room to spare.
pub const MAX_LEAF_ENTRIES: usize = 32;

/// Upper bound of the largest page of the log tree: a full leaf of maximum
/// record pages ([`crate::pages::MAX_PAGE_VALUE_BYTES`]) with their keys
/// (9 bytes) and sled's per-entry overhead. Index pages (at most 257 keys
/// of at most 267 bytes) are far smaller.
pub const MAX_LOG_PAGE_BYTES: usize =
    MAX_LEAF_ENTRIES * (crate::pages::MAX_PAGE_VALUE_BYTES + 9 + 32) + 4096;

// The guarantee of this module, checked when it is compiled.
const _: () = assert!(MAX_LOG_PAGE_BYTES < max_inline_page_bytes(SEGMENT_SIZE));
const _: () = assert!(SEGMENT_SIZE.is_power_of_two() && SEGMENT_SIZE <= 1 << 24);

/// What sled's `conf` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SledConf {
    pub(crate) segment_size: usize,
}

fn damaged_conf(path: &Path, reason: impl Into<String>) -> LogError {
    LogError::DamagedConfig {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// CRC-32 (IEEE, as `crc32fast`, which sled uses for `conf`).
fn crc32(bytes: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(bytes)
}

/// True when the file at `path` exists and is not empty.
fn holds_data(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.len() > 0)
}

/// Makes sled's `conf` durable (sled writes it when it creates a database
/// and never fsyncs it), with the directory entry.
fn sync_conf(dir: &Path) -> Result<(), LogError> {
    let path = dir.join("conf");
    File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(|e| LogError::io(&path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

/// Reads and checks sled's `conf` in `dir`: `None` when the directory holds
/// no database yet. sled writes `segment_size: N\nuse_compression: B\n
/// version: 0.34\n` followed by the CRC-32 of those bytes (little endian).
///
/// # Errors
/// [`LogError::DamagedConfig`] when `conf` is missing next to a non-empty
/// `db`, fails its checksum, or does not parse.
pub(crate) fn read_sled_conf(dir: &Path) -> Result<Option<SledConf>, LogError> {
    let path = dir.join("conf");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if holds_data(&dir.join("db")) {
                Err(damaged_conf(
                    &path,
                    "the file is missing although the data file `db` holds data",
                ))
            } else {
                Ok(None)
            };
        }
        Err(e) => return Err(LogError::io(&path, e)),
    };
    if bytes.is_empty() && !holds_data(&dir.join("db")) {
        // sled writes `conf` when it creates a database and never fsyncs
        // it: a power cut before the first sync leaves it empty beside an
        // empty data file. Nothing was ever stored; start afresh.
        std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
        return Ok(None);
    }
    if bytes.len() <= 8 {
        return Err(damaged_conf(
            &path,
            format!(
                "it holds {} bytes, too few for a configuration",
                bytes.len()
            ),
        ));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32(body) != stored {
        return Err(damaged_conf(&path, "its checksum does not match its bytes"));
    }
    let text = std::str::from_utf8(body).map_err(|_| damaged_conf(&path, "it is not text"))?;
    let mut segment_size = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            return Err(damaged_conf(&path, format!("line {line:?} is malformed")));
        };
        match key {
            "segment_size" => {
                let size: usize = value.parse().map_err(|_| {
                    damaged_conf(&path, format!("segment_size {value:?} is not a number"))
                })?;
                if !size.is_power_of_two() || !(256..=1 << 24).contains(&size) {
                    return Err(damaged_conf(
                        &path,
                        format!("segment_size {size} is not a power of two from 256 to 16 MiB"),
                    ));
                }
                segment_size = Some(size);
            }
            "use_compression" if value == "false" => {}
            "version" if value == "0.34" => {}
            _ => return Err(damaged_conf(&path, format!("unexpected setting {line:?}"))),
        }
    }
    let segment_size = segment_size.ok_or_else(|| damaged_conf(&path, "it has no segment_size"))?;
    Ok(Some(SledConf { segment_size }))
}

/// Opens sled on a data directory for the log: checks `conf` first (see
/// [`read_sled_conf`]), creates a new database with [`SEGMENT_SIZE`] and
/// keeps an existing one's segment size, names a lock still held after
/// a second as [`LogError::Locked`], and reports a panic of sled's recovery as
/// [`LogError::DamagedStorage`].
///
/// It applies the redo journal ([`crate::journal::replay`]) and runs no
/// other check of the log; [`crate::EventLog::open`] does.
///
/// # Errors
/// [`LogError::DamagedConfig`], [`LogError::Locked`],
/// [`LogError::DamagedStorage`], or [`LogError::Storage`] for other sled
/// errors.
pub fn open_sled(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, LogError> {
    let db = open_sled_db(path, cache_capacity_bytes)?;
    replay_journal(path, &db)?;
    Ok(db)
}

/// Refuses a symbolic link at `path`, where the log keeps a file of its
/// own (`acked-head`, the journal's files): the log never writes through
/// a link, which would overwrite whatever it points at.
///
/// # Errors
/// An [`std::io::ErrorKind::InvalidInput`] error saying so.
pub(crate) fn refuse_link(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a symbolic link where the event log keeps a file of its own; the log never writes \
             through a link: remove it (a copy of the data directory must hold the files \
             themselves)",
        )),
        _ => Ok(()),
    }
}

/// The log's tree of `db`, the database of the data directory `path`.
/// A database that holds other trees but no log (the projections'
/// database, say) is not an event log's: it is refused rather than given
/// a log.
///
/// # Errors
/// [`LogError::NotALog`]; sled's failure to open the tree, as damage or a
/// storage error.
pub fn log_tree(path: &Path, db: &sled::Db) -> Result<sled::Tree, LogError> {
    let names = db.tree_names();
    let has_log = names
        .iter()
        .any(|name| name.as_ref() == crate::keyspace::LOG_TREE.as_bytes());
    // sled always has its default tree.
    if !has_log && names.len() > 1 {
        return Err(LogError::NotALog {
            path: path.to_path_buf(),
        });
    }
    db.open_tree(crate::keyspace::LOG_TREE)
        .map_err(|e| damage_or_storage(path, e))
}

/// The directory, inside a log's data directory, of the sled database
/// that holds the log's projections (see [`crate::EventLog::projection_db`]).
pub const PROJECTION_DIR: &str = "projections";

/// sled's directory of blob files (values larger than its segment allows)
/// in a data directory.
pub const BLOB_DIR: &str = "blobs";

/// [`open_sled`] without the journal: checks `conf`, keeps an existing
/// database's segment size (new ones get [`SEGMENT_SIZE`], so no value
/// goes to a blob file), waits for a lock this process still holds, and
/// makes `conf` durable.
///
/// # Errors
/// As [`open_sled`].
pub(crate) fn open_sled_db(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, LogError> {
    std::fs::create_dir_all(path).map_err(|e| LogError::io(path, e))?;
    check_data_file(path)?;
    set_aside_unfinished_snapshots(path)?;
    check_snapshot_kept(path)?;
    let segment_size = read_sled_conf(path)?.map_or(SEGMENT_SIZE, |c| c.segment_size);
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity_bytes)
        .segment_size(segment_size);
    let open = || std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
    let mut opened = open();
    // sled releases its lock on `db` only when its last IO thread lets go
    // of the file, a moment after this process dropped its last handle: a
    // reopen in the same process waits for that, up to LOCK_WAIT.
    let started = std::time::Instant::now();
    while matches!(&opened, Ok(Err(e)) if is_lock_error(e)) && started.elapsed() < LOCK_WAIT {
        std::thread::sleep(std::time::Duration::from_millis(10));
        opened = open();
    }
    match opened {
        Ok(Ok(db)) => {
            sync_conf(path)?;
            mark_snapshot_kept(path)?;
            Ok(db)
        }
        Ok(Err(e)) if is_lock_error(&e) => Err(LogError::Locked(path.to_path_buf())),
        Ok(Err(sled::Error::Corruption { .. })) => Err(LogError::DamagedStorage {
            path: path.to_path_buf(),
            detail: corruption_detail(path),
        }),
        Ok(Err(sled::Error::Io(source)))
            if matches!(
                source.kind(),
                std::io::ErrorKind::ReadOnlyFilesystem
                    | std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            Err(LogError::Unwritable {
                path: path.to_path_buf(),
                source,
            })
        }
        Ok(Err(other)) => Err(damage_or_storage(path, other)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(LogError::DamagedStorage {
                path: path.to_path_buf(),
                detail: format!("sled gave up recovering the data file (it panicked: {message})"),
            })
        }
    }
}

/// Refuses a data directory whose files of the log's own (`db`, `conf`,
/// `acked-head`, the redo journal and its files, the read models'
/// `projections` directory, sled's `blobs` and snapshots) are not what the log
/// writes: a symbolic link (the log never writes through one), a
/// directory where a file belongs or a file where the journal's directory
/// belongs. Missing files are left to the checks that know what they
/// mean. Every opener (the server, each `oms-replay` command) gives this
/// one verdict, before anything is opened.
///
/// # Errors
/// [`LogError::DamagedStorage`] naming the file.
pub fn check_own_files(path: &Path) -> Result<(), LogError> {
    // What stands at `name`, if anything; damage unless it is `want`.
    let expect = |name: &str, want: Entry| -> Result<Option<Entry>, LogError> {
        match Entry::at(&path.join(name)) {
            // The read models are derived from the log and made again.
            Some(found) if found != want && name == PROJECTION_DIR => {
                Err(LogError::DamagedStorage {
                    path: path.to_path_buf(),
                    detail: format!(
                        "`{name}` is {}, where the server keeps the read models' directory; \
                         nothing was opened or written: move it out of the data directory (the \
                         read models are made again from the log at the server's next start, \
                         or by `oms-replay rebuild --all`)",
                        found.described(),
                    ),
                })
            }
            Some(found) if found != want => Err(LogError::DamagedStorage {
                path: path.to_path_buf(),
                detail: format!(
                    "`{name}` is {}, where the event log keeps a {noun} of its own; nothing was \
                     opened or written: put the log's own {noun} back (from a backup), or import \
                     an export into a new directory (`oms-replay import`)",
                    found.described(),
                    noun = want.noun(),
                ),
            }),
            found => Ok(found),
        }
    };
    for name in ["db", "conf", crate::acked::ACKED_HEAD_FILE] {
        expect(name, Entry::File)?;
    }
    for name in [PROJECTION_DIR, BLOB_DIR] {
        expect(name, Entry::Directory)?;
    }
    let journal = crate::journal::JOURNAL_DIR;
    if expect(journal, Entry::Directory)?.is_some() {
        for name in crate::journal::JOURNAL_FILES {
            expect(&format!("{journal}/{name}"), Entry::File)?;
        }
    }
    // sled's snapshots (`snap.<lsn>`, and one it was writing): sled reads
    // or removes each, and a directory there was an I/O error naming none.
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("snap.") {
                expect(&name, Entry::File)?;
            }
        }
    }
    Ok(())
}

/// Whether the read models' database beside a log holds data: it is
/// written only after the log's own data file was (the server opens the
/// log, and checkpoints it, first).
fn holds_read_models(path: &Path) -> bool {
    std::fs::metadata(path.join(PROJECTION_DIR).join("db")).is_ok_and(|m| m.len() > 0)
}

/// Whether `name`, an entry of a data directory, is one the log itself
/// writes there (its data file and `conf`, `acked-head`, the journal's,
/// the read models' and the blobs' directories, sled's snapshots and
/// their marker, an unfinished restore's marker): what [`check_own_files`]
/// and [`check_data_file`] judge.
pub fn is_log_entry(name: &str) -> bool {
    [
        "db",
        "conf",
        crate::acked::ACKED_HEAD_FILE,
        crate::journal::JOURNAL_DIR,
        PROJECTION_DIR,
        BLOB_DIR,
        SNAPSHOT_KEPT_FILE,
        crate::restore::UNFINISHED_FILE,
    ]
    .contains(&name)
        || name.starts_with("snap.")
}

/// The data directory of the log `dir` belongs to, when `dir` is one of a
/// log's own subdirectories (its read models', blobs' or journal's): its
/// name is one the log writes ([`is_log_entry`]) and its parent holds a
/// log's data file and `conf`. A server or tool pointed there by mistake
/// would open the read models' database as a log, or set up a new log
/// inside another's.
pub fn log_holding(dir: &Path) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = dir.file_name()?.to_str()?;
    let parent = dir.parent()?;
    (is_log_entry(name) && parent.join("db").is_file() && parent.join("conf").is_file())
        .then(|| parent.to_path_buf())
}

/// Whether `name`, an entry of a data directory, is nobody's data: a file
/// system's own (`lost+found`, where a volume is mounted) or a hidden
/// entry. A directory holding only such entries is empty to the server and
/// to an import alike.
pub fn is_nobodys_entry(name: &str) -> bool {
    name == "lost+found" || name.starts_with('.')
}

/// Whether `path` is a data directory's read-models directory.
fn is_projection_dir(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name == std::ffi::OsStr::new(PROJECTION_DIR))
}

/// What stands at a path of a data directory, for [`check_own_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File,
    Directory,
    Link,
    Other,
}

impl Entry {
    /// The entry at `path` (a link itself, not followed), if any.
    fn at(path: &Path) -> Option<Self> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        let kind = meta.file_type();
        Some(if kind.is_symlink() {
            Self::Link
        } else if kind.is_dir() {
            Self::Directory
        } else if kind.is_file() {
            Self::File
        } else {
            Self::Other
        })
    }

    fn described(self) -> &'static str {
        match self {
            Self::File => "a file",
            Self::Directory => "a directory",
            Self::Link => "a symbolic link",
            Self::Other => "neither a file nor a directory",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            _ => "file",
        }
    }
}

/// Makes the entries of `dir` durable.
///
/// # Errors
/// [`LogError::Io`] when the directory cannot be opened or synced.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

/// Removes the snapshots sled did not finish writing from `path`, unless
/// a process holds the directory (its sled may be writing one now).
///
/// sled 0.34 writes a snapshot as `snap.<lsn>.generating`, syncs it and
/// renames it `snap.<lsn>`; a process killed before the rename leaves the
/// first name behind, which sled's next open takes for its newest snapshot
/// and, torn, refuses as corruption: a SIGKILL at the wrong moment left a
/// log that would not open. Such a file is never a finished snapshot: the
/// one before it stays until the rename, and sled recovers from that one
/// (a directory without any is refused by [`check_snapshot_kept`] once it
/// had one).
///
/// # Errors
/// [`LogError::Io`] when the directory cannot be read or a file removed.
fn set_aside_unfinished_snapshots(path: &Path) -> Result<(), LogError> {
    let unfinished: Vec<std::path::PathBuf> = std::fs::read_dir(path)
        .map_err(|e| LogError::io(path, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|file| {
            file.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .is_some_and(|name| name.starts_with("snap.") && name.ends_with(".generating"))
        })
        .collect();
    if unfinished.is_empty() || is_held(path)? {
        return Ok(());
    }
    for file in &unfinished {
        tracing::warn!(file = %file.display(), "removing a snapshot sled did not finish writing");
        std::fs::remove_file(file).map_err(|e| LogError::io(file, e))?;
    }
    sync_dir(path)
}

/// Creates the data directory `path` (and any missing parent) readable by
/// its owner only: the log holds customer data, and sled creates its
/// files readable by anyone the umask lets through. A directory that
/// exists keeps its mode (the operator's choice).
///
/// # Errors
/// What creating it returned.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// The file that says sled has kept a snapshot (`snap.<lsn>`) in its
/// directory. sled 0.34 writes one when it recovers a data file that holds
/// something (the second open on), and from then on always leaves one
/// finished snapshot. Without it, sled rebuilds its page table from the
/// data file's first segment on and zeroes every segment it cannot chain
/// to it: once segments have been reused, that overwrites the log (a probe
/// moved a damaged snapshot out, as an earlier message advised, and lost
/// every event of a 32 MiB data file). So a directory that kept a
/// snapshot and has none is refused before sled opens it.
pub const SNAPSHOT_KEPT_FILE: &str = "snapshot-kept";

/// The finished snapshots (`snap.<lsn>`, not `.generating`) in `path`.
fn finished_snapshots(path: &Path) -> Result<Vec<String>, LogError> {
    Ok(std::fs::read_dir(path)
        .map_err(|e| LogError::io(path, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("snap.") && !name.ends_with(".generating"))
        .collect())
}

/// Refuses a directory that kept a snapshot ([`SNAPSHOT_KEPT_FILE`]) and
/// has none now, before sled opens (and would overwrite) its data file.
fn check_snapshot_kept(path: &Path) -> Result<(), LogError> {
    if !path.join(SNAPSHOT_KEPT_FILE).exists()
        || !holds_data(&path.join("db"))
        || !finished_snapshots(path)?.is_empty()
    {
        return Ok(());
    }
    Err(LogError::DamagedStorage {
        path: path.to_path_buf(),
        detail: format!(
            "sled's snapshot (`snap.<lsn>`) is missing, although sled kept one here \
             (`{SNAPSHOT_KEPT_FILE}`): without it sled would rebuild from the start of its data \
             file and overwrite every part it cannot chain, losing the log; nothing was opened \
             or written: put the snapshot back, restore the directory from a backup, or import \
             an export into a new one (`oms-replay import`). To try sled's rebuild anyway, copy \
             the whole directory and remove `{SNAPSHOT_KEPT_FILE}` in the copy only"
        ),
    })
}

/// Records, once sled has kept a snapshot in `path`, that it did
/// ([`SNAPSHOT_KEPT_FILE`], durable with its directory entry).
fn mark_snapshot_kept(path: &Path) -> Result<(), LogError> {
    let marker = path.join(SNAPSHOT_KEPT_FILE);
    if marker.exists() || finished_snapshots(path)?.is_empty() {
        return Ok(());
    }
    File::create(&marker)
        .and_then(|f| f.sync_all())
        .map_err(|e| LogError::io(&marker, e))?;
    sync_dir(path)
}

/// True when a process holds the data directory `path`: sled's exclusive
/// lock on its data file `db` (a server, an import, any opener of the
/// log) is taken. A directory without a data file is held by no one.
/// Within one process, a log this process opened counts as held too.
///
/// # Errors
/// [`LogError::Io`] when the data file exists but cannot be opened.
pub fn is_held(path: &Path) -> Result<bool, LogError> {
    let data = path.join("db");
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&data)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(LogError::io(&data, e)),
    };
    // The lock sled takes: fs2's exclusive `flock`.
    match fs2::FileExt::try_lock_exclusive(&file) {
        Ok(()) => {
            fs2::FileExt::unlock(&file).map_err(|e| LogError::io(&data, e))?;
            Ok(false)
        }
        Err(e) if e.kind() == fs2::lock_contended_error().kind() => Ok(true),
        Err(e) => Err(LogError::io(&data, e)),
    }
}

/// Refuses a data directory a restore did not finish: it holds
/// [`crate::restore::UNFINISHED_FILE`], written before sled creates
/// anything and removed last. Every opener of a log runs this (the
/// server's open, [`crate::verify::verify_dir`], each `oms-replay`
/// command); only the restore itself opens such a directory.
///
/// A directory with the marker whose data file another process holds is
/// a restore still running, not a damaged one.
///
/// # Errors
/// [`LogError::Locked`] when another process holds the directory
/// ([`is_held`]); else [`LogError::Inconsistent`] at position 0, as the
/// restore marker key in the log tree is reported.
pub fn check_restore_finished_file(path: &Path) -> Result<(), LogError> {
    if std::fs::symlink_metadata(path.join(crate::restore::UNFINISHED_FILE)).is_ok() {
        if is_held(path)? {
            return Err(LogError::Locked(path.to_path_buf()));
        }
        return Err(LogError::Inconsistent {
            position: 0,
            problem: crate::recovery::UNFINISHED_RESTORE.to_owned(),
        });
    }
    Ok(())
}

/// Refuses a data directory whose sled data file `db` is not a regular
/// file, or is missing or empty while the directory shows it held events
/// (`acked-head` says events were acknowledged, the redo journal starts
/// past position 0, or the read models hold data): sled would otherwise
/// start a new, empty database over the rest of the directory; and one whose other files of the log's own
/// are not what the log writes ([`check_own_files`]). Nothing is created
/// or written.
///
/// # Errors
/// [`LogError::DamagedStorage`] naming the file and the acknowledged head;
/// [`LogError::Io`] when the file cannot be looked at.
pub fn check_data_file(path: &Path) -> Result<(), LogError> {
    check_own_files(path)?;
    let data = path.join("db");
    let state = match std::fs::metadata(&data) {
        Ok(meta) if !meta.is_file() => {
            return Err(LogError::DamagedStorage {
                path: path.to_path_buf(),
                detail: "sled's data file `db` is not a regular file; nothing was opened or \
                         written: restore the directory from a backup, or import an export \
                         into a new one (`oms-replay import`)"
                    .to_owned(),
            })
        }
        Ok(meta) if meta.len() > 0 => return Ok(()),
        Ok(_) => "empty",
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "missing",
        Err(e) => return Err(LogError::io(&data, e)),
    };
    if path.join(SNAPSHOT_KEPT_FILE).exists() {
        // sled kept a snapshot of data here: its data file cannot be new.
        return Err(LogError::DamagedStorage {
            path: path.to_path_buf(),
            detail: format!(
                "sled's data file `db` is {state}, but sled kept data here \
                 (`{SNAPSHOT_KEPT_FILE}`); nothing was opened or written: restore the \
                 directory from a backup, or import an export into a new one \
                 (`oms-replay import`)"
            ),
        });
    }
    // Start again from a backup or an export; what to do to start anew
    // instead is the caller's choice, said last.
    let restore = "nothing was opened or written: restore the directory from a backup, or \
                   import an export into a new one (`oms-replay import`)";
    // A directory that is not there (or cannot be listed) holds none:
    // what else is wrong with it is the opener's to say.
    if let Some(snapshot) = finished_snapshots(path).unwrap_or_default().first() {
        // sled writes a snapshot of what its data file holds, after it.
        return Err(LogError::DamagedStorage {
            path: path.to_path_buf(),
            detail: format!(
                "sled's data file `db` is {state}, but sled's snapshot `{snapshot}` of it is \
                 here; {restore}"
            ),
        });
    }
    if let Some(start) = crate::journal::starts_past_zero(path)? {
        return Err(LogError::DamagedStorage {
            path: path.to_path_buf(),
            detail: format!(
                "sled's data file `db` is {state}, but the redo journal starts at position \
                 {start}: the data file held the events before it; {restore}"
            ),
        });
    }
    if holds_read_models(path) {
        return Err(LogError::DamagedStorage {
            path: path.to_path_buf(),
            detail: format!(
                "sled's data file `db` is {state}, but the read models in `{PROJECTION_DIR}/` \
                 were made from this directory's log: the log's files were lost; {restore}; \
                 to set up a new, empty platform here instead, move `{PROJECTION_DIR}/` out \
                 of the directory first"
            ),
        });
    }
    match crate::acked::AckedHead::read(path) {
        Some(acked) if acked.next_position > 0 => Err(LogError::DamagedStorage {
            path: path.to_path_buf(),
            detail: format!(
                "sled's data file `db` is {state}, but `{}` says {} events were acknowledged; \
                 nothing was opened or written: restore the directory from a backup, or import \
                 an export into a new one (`oms-replay import`)",
                crate::acked::ACKED_HEAD_FILE,
                acked.next_position
            ),
        }),
        _ => Ok(()),
    }
}

/// What to tell the user when sled's recovery finds a checksum that
/// fails (sled's own message adds only an offset and an empty
/// backtrace). sled's snapshot files
/// (`snap.*`) are derived from its data file; when one is damaged, moving
/// it out lets sled rebuild it, and the open that follows verifies every
/// record.
fn corruption_detail(path: &Path) -> String {
    let snapshots = finished_snapshots(path).unwrap_or_default();
    let named = if snapshots.is_empty() {
        String::new()
    } else {
        format!(" (sled's snapshot here: {})", snapshots.join(", "))
    };
    // The read models are derived from the log: what to do with their
    // database is their opener's to say (the server sets it aside and
    // refills it, `oms-replay` names the rebuild).
    if is_projection_dir(path) {
        return format!(
            "sled refuses to recover it (a checksum failed in a stored page it reads at \
             start{named})"
        );
    }
    format!(
        "sled refuses to recover it (a checksum failed in a stored page it reads at start{named}): keep this directory as it is (do not move or delete \
         its files: without its snapshot sled rebuilds from the data file's start and \
         overwrites what it cannot chain), and restore it from a backup, or import an export \
         into a new one (`oms-replay import`)"
    )
}

/// Longest a [`flush_within`] waits for sled to make what it was given
/// durable. A flush writes only what sled has not written yet (it writes
/// each full buffer as it fills), so seconds at most on a working disk.
pub(crate) const FLUSH_STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// `db.flush()`, given up after `limit`: sled 0.34's flush can wait forever
/// (its stable position stops short of the last reserved one while every
/// I/O thread is idle; seen in about one import of a 1M-event export in
/// six). The flush runs on a helper thread; when it has not returned in
/// time, the caller gets [`LogError::FlushStalled`] naming `dir` and
/// `then` (what the user does next) instead of a hang. The helper
/// stays blocked until the process exits; nothing it holds is used again.
///
/// # Errors
/// [`LogError::Storage`] when the flush fails, [`LogError::FlushStalled`]
/// when it has not returned within `limit`.
pub(crate) fn flush_within(
    db: &sled::Db,
    dir: &Path,
    limit: std::time::Duration,
    then: &str,
) -> Result<(), LogError> {
    let db = db.clone();
    finish_flush_within(move || db.flush().map(drop), dir, limit, then)
}

/// Runs `flush` (a sled flush, or a stand-in for one under fault
/// injection) as [`flush_within`] does. A zero `limit` counts the flush
/// as stalled without running it.
///
/// # Errors
/// As [`flush_within`].
pub(crate) fn finish_flush_within(
    flush: impl FnOnce() -> sled::Result<()> + Send + 'static,
    dir: &Path,
    limit: std::time::Duration,
    then: &str,
) -> Result<(), LogError> {
    let stalled = || LogError::FlushStalled {
        path: dir.to_path_buf(),
        seconds: limit.as_secs_f64(),
        then: then.to_owned(),
    };
    if limit.is_zero() {
        // No flush takes no time: a zero limit counts every flush as
        // stalled, deterministically (tests of what follows a stall use it).
        return Err(stalled());
    }
    let flushed = within(limit, flush).map_err(|source| LogError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    flushed.ok_or_else(stalled)?.map_err(LogError::from)
}

/// Runs `work` on a helper thread and returns its result, or `None` when
/// it has not finished within `limit`.
///
/// # Errors
/// The helper thread could not be started.
fn within<T: Send + 'static>(
    limit: std::time::Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sled-flush".into())
        .spawn(move || {
            let _ = tx.send(work());
        })?;
    Ok(rx.recv_timeout(limit).ok())
}

/// How long [`open_sled`] waits for sled's lock on a data directory before
/// it reports [`LogError::Locked`].
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// True for sled's refusal to open a directory another handle holds.
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// Applies the redo journal's frames that sled does not hold yet (see
/// [`crate::journal::replay`]), so every opener of a data directory sees
/// every acknowledged append.
fn replay_journal(path: &Path, db: &sled::Db) -> Result<(), LogError> {
    // `open_sled_db` refused a journal that is not the log's own directory
    // ([`check_own_files`]); a missing one holds nothing to apply.
    if !path.join(crate::journal::JOURNAL_DIR).exists() {
        return Ok(());
    }
    let tree = db
        .open_tree(crate::keyspace::LOG_TREE)
        .map_err(|e| damage_or_storage(path, e))?;
    crate::journal::replay(path, &tree)?;
    Ok(())
}

/// A sled error as a person reads it: a failed checksum says where it
/// failed (`a checksum failed in the stored page at offset N of the data
/// file`) instead of sled's debug form (`Read corrupted data at file offset
/// Some(Inline(N)) backtrace ()`), an I/O error as the OS words it (a full
/// disk with what to do); any other error as sled words it.
pub fn described(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption {
            at: Some(sled::DiskPtr::Inline(offset)),
            ..
        } => format!("a checksum failed in the stored page at offset {offset} of the data file"),
        sled::Error::Corruption {
            at: Some(sled::DiskPtr::Blob(_, blob)),
            ..
        } => format!("a checksum failed in blob file {blob} under `{BLOB_DIR}`"),
        sled::Error::Corruption { at: None, .. } => "a checksum failed in a stored page".into(),
        // sled words an I/O error in its debug form (`Os { code: 28, ... }`).
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
            format!("{io}: free space on the disk and run it again")
        }
        sled::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// A sled error of the data directory `path`: a failed checksum is damage
/// ([`LogError::DamagedStorage`]), anything else a storage error.
pub(crate) fn damage_or_storage(path: &Path, e: sled::Error) -> LogError {
    match e {
        sled::Error::Corruption { .. } => LogError::DamagedStorage {
            path: path.to_path_buf(),
            detail: described(&e),
        },
        other => LogError::Storage(other),
    }
}

/// The segment size recorded in a data directory's `conf`, if it has one.
///
/// # Errors
/// As [`read_sled_conf`].
pub fn stored_segment_size(dir: &Path) -> Result<Option<usize>, LogError> {
    Ok(read_sled_conf(dir)?.map(|c| c.segment_size))
}

/// Makes sled's blob files durable: before an acknowledgement, every file
/// under `blobs/` that is new or has grown since it was last fsynced is
/// fsynced, and so is the directory when a file is new. With
/// [`SEGMENT_SIZE`] the directory stays empty and this costs one directory
/// read per group commit; it matters for logs created with a smaller
/// segment size.
#[derive(Debug)]
pub(crate) struct BlobSync {
    dir: PathBuf,
    /// Length of each blob file when it was last fsynced.
    synced: HashMap<OsString, u64>,
    /// Blob files fsynced since open.
    pub(crate) files_synced: u64,
}

impl BlobSync {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(BLOB_DIR),
            synced: HashMap::new(),
            files_synced: 0,
        }
    }

    /// Fsyncs every blob file not yet durable at its current length.
    pub(crate) fn sync(&mut self) -> Result<(), String> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("reading {}: {e}", self.dir.display())),
        };
        let mut present = HashMap::new();
        let mut new_names = false;
        for entry in entries {
            let entry = entry.map_err(|e| format!("reading {}: {e}", self.dir.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            let file = match File::open(&path) {
                Ok(file) => file,
                // Removed by sled's blob collection meanwhile: nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("opening {}: {e}", path.display())),
            };
            let len = file
                .metadata()
                .map_err(|e| format!("reading {}: {e}", path.display()))?
                .len();
            if self.synced.get(&name) != Some(&len) {
                file.sync_all()
                    .map_err(|e| format!("fsync of {}: {e}", path.display()))?;
                self.files_synced += 1;
                new_names |= !self.synced.contains_key(&name);
            }
            present.insert(name, len);
        }
        if new_names {
            File::open(&self.dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| format!("fsync of {}: {e}", self.dir.display()))?;
        }
        self.synced = present;
        Ok(())
    }

    /// Names and lengths of the blob files fsynced and still present.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn synced(&self) -> Vec<(String, u64)> {
        self.synced
            .iter()
            .map(|(name, len)| (name.to_string_lossy().into_owned(), *len))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{corruption_detail, crc32, described, flush_within, within, PROJECTION_DIR};

    #[test]
    fn damage_to_the_read_models_is_not_given_the_logs_remedy() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = corruption_detail(dir.path());
        assert!(log.contains("restore it from a backup"), "{log}");
        let read_models = corruption_detail(&dir.path().join(PROJECTION_DIR));
        assert!(read_models.contains("checksum failed"), "{read_models}");
        assert!(!read_models.contains("backup"), "{read_models}");
        assert!(
            !read_models.contains("keep this directory"),
            "{read_models}"
        );
    }

    #[test]
    fn a_failed_checksum_is_described_without_sleds_debug_form() {
        let inline = sled::Error::Corruption {
            at: Some(sled::DiskPtr::Inline(32_999_039)),
            bt: (),
        };
        assert_eq!(
            described(&inline),
            "a checksum failed in the stored page at offset 32999039 of the data file"
        );
        let nowhere = sled::Error::Corruption { at: None, bt: () };
        assert!(!described(&nowhere).contains("None"));
    }

    /// A probe's import onto a full disk read "storage error: IO error:
    /// Os { code: 28, kind: StorageFull, ... }".
    #[test]
    fn an_io_error_is_described_as_the_os_words_it_and_a_full_disk_with_its_remedy() {
        let full = sled::Error::Io(std::io::Error::from_raw_os_error(28));
        let text = crate::LogError::Storage(full).to_string();
        assert!(
            !text.contains("Os {") && text.contains("No space left") && text.contains("free space"),
            "{text}"
        );
        let denied = sled::Error::Io(std::io::Error::from_raw_os_error(13));
        assert!(
            !described(&denied).contains("Os {"),
            "{}",
            described(&denied)
        );
    }

    #[test]
    fn crc32_is_the_ieee_checksum() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn work_that_finishes_in_time_gives_its_result() {
        let got = within(Duration::from_secs(10), || 7).expect("spawn");
        assert_eq!(got, Some(7));
    }

    #[test]
    fn work_that_does_not_finish_in_time_is_given_up() {
        let started = std::time::Instant::now();
        let got = within(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(3));
            7
        })
        .expect("spawn");
        assert_eq!(got, None);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_working_flush_returns_and_what_it_wrote_is_there_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = sled::Config::new().path(dir.path()).open().expect("open");
            db.insert(b"k", b"v").expect("insert");
            flush_within(&db, dir.path(), Duration::from_secs(60), "").expect("flush");
        }
        let db = reopen(dir.path());
        assert_eq!(db.get(b"k").expect("get").as_deref(), Some(&b"v"[..]));
    }

    /// sled releases its lock a moment after the last handle is dropped.
    fn reopen(path: &std::path::Path) -> sled::Db {
        for _ in 0..200 {
            if let Ok(db) = sled::Config::new().path(path).open() {
                return db;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("could not reopen {}", path.display());
    }
}
