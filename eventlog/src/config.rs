//! How a log is opened: where, and what an acknowledgement promises.

use std::path::PathBuf;

/// What an acknowledged append has survived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledged once the group commit's journal frame is written and
    /// `fdatasync`ed (see [`crate::journal`]): survives a process crash
    /// and a power loss (on a disk that honours cache flushes). The default.
    #[default]
    Durable,
    /// Acknowledged once the journal frame is written, without
    /// `fdatasync`: survives a process crash; a power loss may lose the
    /// last acknowledged appends.
    ProcessCrashSafe,
    /// Acknowledged once written to sled's memory, without a journal
    /// frame; sled flushes in the background every `flush_every_ms`. A
    /// crash loses up to that much acknowledged data. For tests and
    /// benchmarks only.
    Buffered,
}

/// Options for [`crate::EventLog::open`].
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The data directory (created if missing).
    pub path: PathBuf,
    /// What an acknowledgement promises.
    pub durability: Durability,
    /// sled page cache size in bytes.
    pub cache_capacity_bytes: u64,
    /// sled page cache size in bytes of the projections' own database
    /// ([`crate::EventLog::projection_db`]), apart from the log's.
    pub projection_cache_bytes: u64,
    /// Most events one group commit writes.
    pub max_batch_events: usize,
    /// How many stream heads (stream -> version) the writer keeps in
    /// memory; the others are read from the stream index when an append
    /// names them (ADR 0062). Heads of group commits not yet in sled are
    /// kept besides, whatever this bound (at least one).
    pub stream_heads_kept: usize,
    /// Size a journal file grows to before the writer checkpoints sled
    /// and turns to the other file (at least
    /// [`crate::journal::MIN_FILE_BYTES`]).
    pub journal_file_bytes: u64,
    /// Longest a checkpoint waits for sled's flush (two minutes by
    /// default). sled 0.34's flush can stall for good (ADR 0032); past
    /// this the log is fenced (later appends fail with
    /// [`crate::AppendError::Fenced`] naming the stall) instead of every
    /// append waiting forever. Nothing acknowledged is lost: the journal
    /// holds it, and reopening the log replays it. Zero counts every
    /// checkpoint as stalled (no flush takes no time), so the first
    /// journal turn fences the log.
    pub checkpoint_stall_limit: std::time::Duration,
    /// Test-only: make a chosen write or flush fail.
    #[cfg(feature = "fault-injection")]
    pub faults: crate::FaultPlan,
}

impl LogConfig {
    /// Durable defaults for a data directory.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Durable,
            // 128 MiB in all, as when one database held both: a walk of
            // the log reads each page once and needs little cache, the
            // projections reread their rows (ADR 0034).
            cache_capacity_bytes: 32 * 1024 * 1024,
            projection_cache_bytes: 96 * 1024 * 1024,
            max_batch_events: 4096,
            stream_heads_kept: crate::heads::DEFAULT_HEADS_KEPT,
            journal_file_bytes: crate::journal::DEFAULT_FILE_BYTES,
            checkpoint_stall_limit: crate::storage::FLUSH_STALL_LIMIT,
            #[cfg(feature = "fault-injection")]
            faults: crate::FaultPlan::default(),
        }
    }

    /// The same config with another durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

/// Test-only fault plan: the Nth group commit (counted from 1 after open)
/// fails in its write or in its flush, or checkpoints stall.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Fail the batch write of this group commit.
    pub fail_write_at: Option<u64>,
    /// Write the batch, then fail the flush of this group commit.
    pub fail_flush_at: Option<u64>,
    /// Every checkpoint's sled flush is replaced by a sleep this long
    /// (a stalled flush that holds nothing).
    pub stall_checkpoint_flush: Option<std::time::Duration>,
    /// The apply of this group commit writes only the first half of its
    /// entries into sled and then fails (a crash in the middle of an
    /// apply, whose frame the journal holds).
    pub half_write_at: Option<u64>,
    /// Every journal write waits this long before its `fdatasync` (a slow
    /// disk: group commits wait in the writer, not yet in sled).
    pub slow_journal: Option<std::time::Duration>,
}
