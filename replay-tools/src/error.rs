//! The one error type of the tool, and its single mapping to exit codes.
//!
//! Every module returns [`ReplayError`]; only [`crate::cli`] turns it into a
//! message and an exit code, through [`ReplayError::exit_code`]:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | ok |
//! | 1 | a finding: a damaged log (a bad record, a page sled cannot read, a damaged sled `conf`, acknowledged events missing), a digest that no longer matches, a refused reset, a projector that stopped on an event |
//! | 2 | usage or bad input (arguments, missing log, malformed export file) |
//! | 3 | the data directory is held by a running server |
//! | 4 | I/O or any other error |

use std::path::PathBuf;

use eventlog::{LogError, VerifyError};

/// Exit code of a successful run.
pub const EXIT_OK: u8 = 0;
/// Exit code of a finding (damaged log or data directory, digest mismatch,
/// refused reset).
pub const EXIT_FINDING: u8 = 1;
/// Exit code of a usage error or bad input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when a running server holds the data directory.
pub const EXIT_LOCKED: u8 = 3;
/// Exit code of I/O and other errors.
pub const EXIT_ERROR: u8 = 4;

/// Why a command did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A running server, or another `oms-replay` command (an import still
    /// writing, a rebuild), holds the data directory's lock.
    #[error(
        "data directory {} is held by a running server or by another oms-replay command \
         (an import still writing it, a rebuild); wait for that command, or stop the server \
         or use its admin mutations \
         `verifyLog` / `rebuildProjection` / `resetConsumer` over GraphQL",
        .0.display()
    )]
    Locked(PathBuf),
    /// The data directory holds no event log.
    #[error("no event log in {} (set --data-dir or OMS_DATA_DIR)", .0.display())]
    NoLog(PathBuf),
    /// The arguments or the input file are not usable.
    #[error("{0}")]
    Usage(String),
    /// The log is damaged at `position`.
    #[error("log damaged at position {position}: {problem}")]
    Damaged {
        /// First bad position.
        position: u64,
        /// What is wrong there.
        problem: String,
    },
    /// The data directory's files are damaged where no position can be
    /// named: sled's `conf`, a page outside the records, or a log sled
    /// refuses to recover.
    #[error("{0}")]
    DamagedFiles(String),
    /// The command refused to act (for example a reset without `--recovery`).
    #[error("{0}")]
    Refused(String),
    /// The log could not be read or written.
    #[error(transparent)]
    Log(LogError),
    /// A projector stopped on an event it cannot apply (its previous
    /// generation keeps serving).
    #[error("projector {projector} stopped at position {position}: {message}")]
    ProjectorStopped {
        /// The projector.
        projector: String,
        /// The event it could not apply.
        position: u64,
        /// Why.
        message: String,
    },
    /// A projection could not be read or rebuilt.
    #[error("projections: {0}")]
    Projection(projections::ProjectionError),
    /// sled failed underneath the log.
    #[error("storage error: {}", eventlog::storage::described(.0))]
    Storage(sled::Error),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The context of an error writing the command's output.
pub(crate) const OUTPUT_WRITE: &str = "writing output";

impl ReplayError {
    /// The process exit code for this error (see the module table).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Damaged { .. }
            | Self::DamagedFiles(_)
            | Self::Refused(_)
            | Self::ProjectorStopped { .. } => EXIT_FINDING,
            Self::NoLog(_) | Self::Usage(_) => EXIT_USAGE,
            Self::Locked(_) => EXIT_LOCKED,
            Self::Log(_) | Self::Projection(_) | Self::Storage(_) | Self::Io { .. } => EXIT_ERROR,
        }
    }

    /// A stable snake_case name of the kind of error, for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Locked(_) => "locked",
            Self::NoLog(_) => "no_log",
            Self::Usage(_) => "usage",
            Self::Damaged { .. } | Self::DamagedFiles(_) => "damaged",
            Self::ProjectorStopped { .. } => "projector_stopped",
            Self::Refused(_) => "refused",
            Self::Log(_) | Self::Storage(_) => "storage",
            Self::Projection(_) => "projection",
            Self::Io { .. } => "io",
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// True when writing the command's output failed (a full disk, a
    /// closed pipe), as opposed to the work it reports on.
    pub fn is_output_write(&self) -> bool {
        matches!(self, Self::Io { context, .. } if context == OUTPUT_WRITE)
    }

    /// True when the error is a closed pipe on output (`| head`), which the
    /// command line treats as success.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl From<sled::Error> for ReplayError {
    /// A page sled cannot read is damage (exit 1), other sled errors are
    /// storage errors.
    fn from(error: sled::Error) -> Self {
        match error {
            sled::Error::Corruption { .. } => Self::DamagedFiles(format!(
                "the log's stored data cannot be read: {}; run `oms-replay verify` to name \
                 the first damaged position",
                eventlog::storage::described(&error)
            )),
            other => Self::Storage(other),
        }
    }
}

impl From<LogError> for ReplayError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::Locked(path) => Self::Locked(path),
            LogError::Inconsistent { position, problem } => Self::Damaged { position, problem },
            LogError::Decode { position, source } => Self::Damaged {
                position,
                problem: format!("record does not decode: {source}"),
            },
            LogError::Damaged { position, problem } => Self::Damaged {
                position,
                problem: problem.to_string(),
            },
            LogError::Storage(e) => e.into(),
            e @ LogError::NotALog { .. } => Self::Usage(e.to_string()),
            e @ (LogError::DamagedConfig { .. } | LogError::DamagedStorage { .. }) => {
                Self::DamagedFiles(e.to_string())
            }
            other => Self::Log(other),
        }
    }
}

impl From<VerifyError> for ReplayError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Damaged { position, problem } => Self::Damaged {
                position,
                problem: problem.to_string(),
            },
            e @ VerifyError::Unreadable { .. } => Self::DamagedFiles(e.to_string()),
            VerifyError::Log(log) => log.into(),
        }
    }
}

impl From<projections::ProjectionError> for ReplayError {
    fn from(error: projections::ProjectionError) -> Self {
        use projections::ProjectionError as E;
        match error {
            E::UnknownProjector(name) => Self::Usage(format!(
                "no projector is named {name:?}; projectors: {}",
                projections::PROJECTOR_NAMES.join(", ")
            )),
            E::Failed {
                projector,
                position,
                message,
            } => Self::ProjectorStopped {
                projector,
                position,
                message,
            },
            E::Log(log) => log.into(),
            other => Self::Projection(other),
        }
    }
}
