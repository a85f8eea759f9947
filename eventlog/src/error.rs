//! Errors of the log, typed where they are made.
//!
//! Expected refusals of one append (a version conflict, an idempotency
//! conflict, an invalid request) are [`AppendError`] variants that leave the
//! log untouched. Fail-stop conditions (storage errors, a fenced writer) are
//! separate variants so callers can tell "try something else" from "stop".

use crate::record::DecodeError;

/// Why an append was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The stream was not at the expected version; nothing was written.
    #[error("wrong expected version on stream {stream_id}: expected {expected}, actual {actual}")]
    WrongExpectedVersion {
        /// The stream.
        stream_id: String,
        /// What the append expected.
        expected: crate::ExpectedVersion,
        /// The stream's version when the append was checked.
        actual: u64,
    },
    /// The idempotency key was already used for a different request.
    #[error("idempotency key {key} was already used for a different request")]
    IdempotencyConflict {
        /// The reused key.
        key: String,
    },
    /// The request is malformed (empty, too large, bad id); nothing was written.
    #[error("invalid append: {0}")]
    Invalid(String),
    /// Writing or flushing failed; this append is not durable and the writer
    /// is fenced.
    #[error("storage failure, append not acknowledged: {0}")]
    Storage(String),
    /// An earlier write or flush failed: the writer acknowledges nothing more
    /// until the log is reopened.
    #[error("log writer is fenced after an earlier storage failure: {0}")]
    Fenced(String),
    /// The log was shut down.
    #[error("log is closed")]
    Closed,
}

impl AppendError {
    /// True for conflicts that a caller may resolve by reloading and retrying.
    pub fn is_version_conflict(&self) -> bool {
        matches!(self, Self::WrongExpectedVersion { .. })
    }
}

/// Why the log could not be opened, read or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// sled reported an error.
    #[error("storage error: {}", crate::storage::described(.0))]
    Storage(#[from] sled::Error),
    /// sled could not open the data directory for writing: a read-only
    /// file system, a full disk, or no permission. sled opens its data
    /// file for writing even to read it (its recovery writes a snapshot),
    /// so a reader needs a writable copy.
    #[error(
        "the data directory {path} cannot be opened for writing ({source}): sled writes to \
         its files even to read them, so copy the directory (`cp -a`) to a disk with room \
         that this user may write, and run there"
    )]
    Unwritable {
        /// The data directory.
        path: std::path::PathBuf,
        /// What the open returned.
        #[source]
        source: std::io::Error,
    },
    /// A file operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// sled's flush did not return within the limit: sled 0.34 can stall
    /// there for good (ADR 0032). Nothing the flush covered was
    /// acknowledged by it; `then` says what the caller does next.
    #[error(
        "{}: sled did not finish writing within {seconds} s (a known sled 0.34 stall); {then}",
        .path.display()
    )]
    FlushStalled {
        /// The data directory.
        path: std::path::PathBuf,
        /// The limit that passed, in seconds.
        seconds: f64,
        /// What the caller does next.
        then: String,
    },
    /// Another process (or another handle in this one) holds the data directory.
    #[error("data directory {0} is locked by another process (is a server running on it?)")]
    Locked(std::path::PathBuf),
    /// A stored record does not decode.
    #[error("record at position {position} does not decode: {source}")]
    Decode {
        /// Position of the record.
        position: u64,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// The stored log disagrees with itself; it is not served.
    #[error("log is inconsistent at position {position}: {problem}")]
    Inconsistent {
        /// First position found wrong.
        position: u64,
        /// What is wrong.
        problem: String,
    },
    /// A full check of the stored log found it damaged at `position`; it
    /// is not served and not written to.
    #[error("log damaged at position {position}: {problem}")]
    Damaged {
        /// First bad position.
        position: u64,
        /// What is wrong there.
        problem: crate::verify::Problem,
    },
    /// sled's configuration file of the data directory (`conf`) is damaged
    /// or missing; sled would misread the data file, so nothing is opened.
    #[error("the data directory's sled configuration file {} is damaged: {reason}", .path.display())]
    DamagedConfig {
        /// The `conf` file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory holds a sled database that is not an event log's (it
    /// has other trees and no log: the projections' database, say).
    #[error(
        "{} holds a sled database that is not an event log (it has no log, but other data; \
         the read models' `projections/` directory is one such): name the data directory itself",
        .path.display()
    )]
    NotALog {
        /// The directory.
        path: std::path::PathBuf,
    },
    /// sled could not recover or read the data directory's stored pages (a
    /// checksum failed, or its recovery gave up).
    #[error("the stored data in {} is damaged: {detail}", .path.display())]
    DamagedStorage {
        /// The data directory.
        path: std::path::PathBuf,
        /// What sled reported.
        detail: String,
    },
    /// The log was written by a format this build does not know.
    #[error("unsupported log format version {0}")]
    UnsupportedFormat(u8),
    /// The log is stored in an older keyspace layout that this build
    /// upgrades in place when it opens the log for writing
    /// ([`crate::EventLog::open`]); read-only tools refuse it until then.
    #[error(
        "the log is stored in keyspace layout {layout}: open it once with this build's \
         server (oms-server serve) to upgrade it in place, then run this again"
    )]
    NeedsUpgrade {
        /// The stored layout.
        layout: u8,
    },
    /// The writer is gone.
    #[error("log is closed")]
    Closed,
}

impl From<crate::pages::RawError> for LogError {
    fn from(error: crate::pages::RawError) -> Self {
        match error {
            crate::pages::RawError::Storage { error, .. } => Self::Storage(error),
            crate::pages::RawError::Malformed { position, why } => Self::Inconsistent {
                position,
                problem: format!("record page: {why}"),
            },
        }
    }
}

impl LogError {
    /// True when the error says the stored log or its files are damaged
    /// (as opposed to locked, closed or failing to do I/O): the log must
    /// not be served or written until an operator has looked at it.
    pub fn is_damage(&self) -> bool {
        match self {
            Self::Inconsistent { .. }
            | Self::Decode { .. }
            | Self::Damaged { .. }
            | Self::DamagedConfig { .. }
            | Self::DamagedStorage { .. } => true,
            Self::Storage(e) => matches!(e, sled::Error::Corruption { .. }),
            _ => false,
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
