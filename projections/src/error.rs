//! Errors of the projection runtime and of read queries.

/// Why the projection runtime could not start, stop, wait or rebuild.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The event log failed. Handling: infrastructure error (HTTP 503 / GraphQL
    /// `INTERNAL`); retry after the log is healthy.
    #[error("event log: {0}")]
    Log(#[from] eventlog::LogError),
    /// sled failed on a projection tree. Handling: infrastructure error.
    #[error("projection storage: {0}")]
    Storage(#[from] sled::Error),
    /// A stored projection value does not decode. Handling: rebuild the
    /// named projector.
    #[error("projection {projector} holds a row that does not decode: {message}")]
    Corrupt {
        /// The projector.
        projector: String,
        /// What failed.
        message: String,
    },
    /// No projector has this name. Handling: client error (bad input).
    #[error("no projector is named {0:?}")]
    UnknownProjector(String),
    /// A rebuild of this projector is already running. Handling: wait for it
    /// (see `status()`), do not retry at once.
    #[error("projector {0} is already being rebuilt")]
    RebuildInProgress(String),
    /// A projector stopped on an event. Handling: an operator reads the
    /// message, fixes the cause, and rebuilds or restarts.
    #[error("projector {projector} is stopped at position {position}: {message}")]
    Failed {
        /// The projector.
        projector: String,
        /// The event it could not apply.
        position: u64,
        /// Why.
        message: String,
    },
    /// `wait_for` gave up before every projector reached the position.
    /// Handling: retryable; the read models are lagging.
    #[error("projections did not reach position {position} in time (slowest: {slowest} at {checkpoint})")]
    Timeout {
        /// The position waited for.
        position: u64,
        /// The slowest projector.
        slowest: String,
        /// Its checkpoint.
        checkpoint: u64,
    },
    /// The runtime was shut down (or a runner thread died).
    #[error("projection runtime is stopped")]
    Stopped,
    /// A thread could not be spawned.
    #[error("could not spawn a projection thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Why a read query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The cursor was not produced by this query. Handling: client error
    /// (GraphQL `BAD_USER_INPUT`); start again without a cursor.
    #[error("invalid cursor")]
    InvalidCursor,
    /// sled failed. Handling: infrastructure error, retryable.
    #[error("read model storage: {0}")]
    Storage(#[from] sled::Error),
    /// A stored row does not decode. Handling: internal error; rebuild the
    /// projector.
    #[error("read model {projector} holds a row that does not decode: {message}")]
    Corrupt {
        /// The projector.
        projector: &'static str,
        /// What failed.
        message: String,
    },
}

/// Why one event could not be applied: the projector stops at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FoldError(pub(crate) String);

impl From<sled::Error> for FoldError {
    fn from(e: sled::Error) -> Self {
        FoldError(format!("storage: {e}"))
    }
}
