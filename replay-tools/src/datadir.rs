//! Opening a data directory: raw (for reading and verifying a closed log,
//! without recovery) or as an [`EventLog`] (for consumers), naming a held
//! lock as a running server.

use std::path::{Path, PathBuf};

use eventlog::{EventLog, LogConfig};

use crate::error::ReplayError;

/// sled page cache used by the tool, for the log's database and for the
/// projections' (ADR 0034) each: small, so walking a large log keeps a
/// small resident set. A walk reads each page once, so a larger cache buys
/// no speed; sled also holds pages it has not yet counted against the
/// cache (each of its 256 LRU shards counts accesses in blocks of 64), so
/// the resident set is this plus that backlog (ADR 0033).
pub const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A data directory the tool works on.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// The directory at `path` (nothing is opened yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails with [`ReplayError::Usage`] when the path names something
    /// that is not a directory (a file given as `--data-dir`, a link to
    /// nothing); a path that
    /// names nothing passes (`import` creates it, the others say there is
    /// no log there).
    pub fn require_not_a_file(&self) -> Result<(), ReplayError> {
        let is_link = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.is_symlink());
        if is_link && !self.path.exists() {
            return Err(ReplayError::Usage(format!(
                "{} is a link to nothing, not a data directory (set --data-dir or OMS_DATA_DIR)",
                self.path.display()
            )));
        }
        if self.path.exists() && !self.path.is_dir() {
            return Err(ReplayError::Usage(format!(
                "{} is a file, not a data directory (set --data-dir or OMS_DATA_DIR)",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// True when the directory holds a sled database.
    pub fn has_log(&self) -> bool {
        self.path.join("db").is_file()
    }

    /// Fails with [`ReplayError::NoLog`] unless the directory holds a log,
    /// as damage when a restore into it did not finish, and with
    /// [`ReplayError::DamagedFiles`] when its data file is
    /// missing or not a file although the directory says events were
    /// acknowledged (the finding the server refuses to start on).
    pub fn require_log(&self) -> Result<(), ReplayError> {
        eventlog::storage::check_restore_finished_file(&self.path)?;
        eventlog::storage::check_data_file(&self.path)?;
        if self.has_log() {
            Ok(())
        } else {
            Err(ReplayError::NoLog(self.path.clone()))
        }
    }

    /// Opens the sled database without any recovery check, so a damaged log
    /// can still be read. Fails with [`ReplayError::Locked`] when a server
    /// holds the directory.
    pub fn open_db(&self) -> Result<sled::Db, ReplayError> {
        self.require_log()?;
        open_sled(&self.path)
    }

    /// Opens the log tree of an existing log, raw.
    pub fn open_tree(&self) -> Result<(sled::Db, sled::Tree), ReplayError> {
        let db = self.open_db()?;
        let tree = eventlog::storage::log_tree(&self.path, &db)?;
        Ok((db, tree))
    }

    /// Opens the log through [`EventLog::open`] (recovery checks included).
    /// An acknowledged-head file that does not check out is named on
    /// stderr first ([`eventlog::acknowledged_head_warning`]): the open
    /// writes it anew, with the head the log holds.
    pub fn open_log(&self) -> Result<EventLog, ReplayError> {
        self.require_log()?;
        // A file that is missing is the open's to judge (it names a log
        // that lost it); one that is there and unreadable is overwritten.
        if let Some(warning) = eventlog::acknowledged_head_warning(&self.path, 0) {
            crate::stderr_line!(
                "oms-replay: warning: {warning}; opening the log writes it anew with the head \
                 the log holds now, so `oms-replay verify` will not warn of it again"
            );
        }
        let mut config = LogConfig::new(&self.path);
        config.cache_capacity_bytes = CACHE_BYTES;
        config.projection_cache_bytes = CACHE_BYTES;
        Ok(EventLog::open(config)?)
    }
}

/// Opens (or creates) sled in `path` with the tool's cache size, through
/// [`eventlog::storage::open_sled`]: a new directory gets the log's segment
/// size, a damaged `conf` or a log sled cannot recover is a finding, and a
/// held lock is a running server.
pub(crate) fn open_sled(path: &Path) -> Result<sled::Db, ReplayError> {
    Ok(eventlog::storage::open_sled(path, CACHE_BYTES)?)
}

/// Waits (up to 30 s) until sled's lock on `path` is free again after this
/// process dropped its `Db`: sled's background threads keep the lock (an
/// exclusive `flock` of `<path>/db`) for a moment after the last handle
/// goes, so reopening at once would look like a running server.
pub(crate) fn wait_released(path: &Path) -> Result<(), ReplayError> {
    use fs2::FileExt;
    let db_file = path.join("db");
    for _ in 0..3_000 {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&db_file)
            .map_err(|e| ReplayError::io(format!("opening {}", db_file.display()), e))?;
        if file.try_lock_exclusive().is_ok() {
            let _ = FileExt::unlock(&file);
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(ReplayError::Locked(path.to_path_buf()))
}

/// Stops an opened log's writer cleanly (it needs a runtime to close).
pub fn close_log(log: EventLog) -> Result<(), ReplayError> {
    log.flush()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ReplayError::io("starting a runtime to close the log", e))?;
    runtime.block_on(log.close());
    Ok(())
}
