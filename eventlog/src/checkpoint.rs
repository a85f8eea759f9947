//! Consumer state stores: a consumer's rows and its checkpoint in one tree.
//!
//! Each consumer owns one sled tree named `consumer/<name>` in the log's
//! database. Its rows and its checkpoint are written by one `apply_batch`
//! ([`ConsumerStore::commit`]), so after a crash the rows always match the
//! checkpoint: no event is applied twice and none is skipped. (sled's
//! multi-tree transactions are several times slower; one tree per consumer
//! keeps the hot path on single-tree batches.)
//!
//! Row keys are stored under the byte `0x01`; the checkpoint and the last
//! error live under `0x00`, so a consumer's keys can never collide with them.
//!
//! Consumers with external side effects (the dispatcher, notification)
//! also keep three metadata rows under `0x00`: a marker saying they make
//! external calls ([`ConsumerStore::declare_side_effects`]), the recovery
//! bound set by an operator who rewound them
//! ([`ConsumerStore::rewind_for_recovery`]): events below it were already
//! acted on, so they are re-observed and never sent again, and a counter of
//! the calls suppressed that way ([`ConsumerStore::record_suppressed`]).

use crate::error::LogError;
use crate::keyspace;

const TREE_PREFIX: &str = "consumer/";
const CHECKPOINT_KEY: &[u8] = b"\x00checkpoint";
const FAILURE_KEY: &[u8] = b"\x00failure";
const SIDE_EFFECTS_KEY: &[u8] = b"\x00side_effects";
const RECOVERY_UNTIL_KEY: &[u8] = b"\x00recovery_until";
const SUPPRESSED_KEY: &[u8] = b"\x00suppressed";
const ROW: u8 = 0x01;

/// A consumer's state: rows plus the position it will process next.
#[derive(Debug, Clone)]
pub struct ConsumerStore {
    name: String,
    tree: sled::Tree,
}

/// Rows to write together with a new checkpoint.
#[derive(Debug, Default)]
pub struct ConsumerBatch {
    batch: sled::Batch,
    /// Rows set or removed, and keys cleared, so far.
    writes: usize,
}

impl ConsumerBatch {
    /// Sets a row.
    pub fn insert(&mut self, key: &[u8], value: impl Into<sled::IVec>) {
        self.batch.insert(row_key(key), value.into());
        self.writes += 1;
    }

    /// Removes a row.
    pub fn remove(&mut self, key: &[u8]) {
        self.batch.remove(row_key(key));
        self.writes += 1;
    }

    /// Also clears the recovery bound, in the same atomic write: for a
    /// side-effect consumer whose new checkpoint reaches
    /// [`ConsumerStore::recovery_until`].
    pub fn clear_recovery(&mut self) {
        self.batch.remove(RECOVERY_UNTIL_KEY);
        self.writes += 1;
    }
}

/// What [`ConsumerStore::rewind_for_recovery`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryRewind {
    /// The checkpoint before the rewind.
    pub previous_checkpoint: u64,
    /// The checkpoint now.
    pub checkpoint: u64,
    /// Events below this position are re-observed without external calls
    /// (`None` when nothing is to be replayed).
    pub recovery_until: Option<u64>,
}

/// Where a consumer stopped on an event it could not process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsumerFailure {
    /// Position of the event that failed.
    pub position: u64,
    /// What went wrong.
    pub message: String,
}

fn row_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(ROW);
    out.extend_from_slice(key);
    out
}

impl ConsumerStore {
    pub(crate) fn open(db: &sled::Db, name: &str) -> Result<Self, LogError> {
        Ok(Self {
            name: name.to_owned(),
            tree: db.open_tree(format!("{TREE_PREFIX}{name}"))?,
        })
    }

    pub(crate) fn names(db: &sled::Db) -> Result<Vec<String>, LogError> {
        Ok(db
            .tree_names()
            .into_iter()
            .filter_map(|n| {
                std::str::from_utf8(&n)
                    .ok()?
                    .strip_prefix(TREE_PREFIX)
                    .map(str::to_owned)
            })
            .collect())
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Position of the next event to process (0 when the consumer is new).
    pub fn checkpoint(&self) -> Result<u64, LogError> {
        Ok(self
            .tree
            .get(CHECKPOINT_KEY)?
            .as_deref()
            .and_then(keyspace::read_u64)
            .unwrap_or(0))
    }

    /// Atomically writes `rows` and moves the checkpoint to `next_position`
    /// (and clears a recorded failure).
    ///
    /// A commit with no rows and no failure to clear is one plain insert
    /// of the checkpoint (atomic on its own): sled's `apply_batch` takes a
    /// process-wide write lock that every read in the process waits on,
    /// and most of a consumer's commits (batches of events it has nothing
    /// to do with) write no row.
    pub fn commit(&self, rows: ConsumerBatch, next_position: u64) -> Result<(), LogError> {
        if rows.writes == 0 && !self.tree.contains_key(FAILURE_KEY)? {
            self.tree
                .insert(CHECKPOINT_KEY, &keyspace::u64_value(next_position))?;
            return Ok(());
        }
        let mut batch = rows.batch;
        batch.insert(CHECKPOINT_KEY, &keyspace::u64_value(next_position));
        batch.remove(FAILURE_KEY);
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Moves the checkpoint without touching rows and clears a recorded
    /// failure (operator recovery), in one batch: unlike the consumer's own
    /// commits, this runs on another task than the one that records the
    /// consumer's failures, so it does not check for one first.
    pub fn reset_checkpoint(&self, next_position: u64) -> Result<(), LogError> {
        let mut batch = sled::Batch::default();
        batch.insert(CHECKPOINT_KEY, &keyspace::u64_value(next_position));
        batch.remove(FAILURE_KEY);
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Records that the consumer stopped at `position` (visible to operators).
    pub fn record_failure(&self, position: u64, message: &str) -> Result<(), LogError> {
        let mut value = keyspace::u64_value(position).to_vec();
        value.extend_from_slice(message.as_bytes());
        self.tree.insert(FAILURE_KEY, value)?;
        Ok(())
    }

    /// The failure the consumer stopped at, if it is stopped.
    pub fn failure(&self) -> Result<Option<ConsumerFailure>, LogError> {
        Ok(self.tree.get(FAILURE_KEY)?.and_then(|v| {
            Some(ConsumerFailure {
                position: keyspace::read_u64(&v)?,
                message: String::from_utf8_lossy(v.get(8..)?).into_owned(),
            })
        }))
    }

    /// Marks this consumer as one that makes external calls. A consumer
    /// with side effects calls this when it opens (idempotent), so operator
    /// tools refuse to rewind it outside recovery mode.
    pub fn declare_side_effects(&self) -> Result<(), LogError> {
        self.tree.insert(SIDE_EFFECTS_KEY, &[1u8])?;
        Ok(())
    }

    /// True when the consumer declared that it makes external calls.
    pub fn has_side_effects(&self) -> Result<bool, LogError> {
        Ok(self.tree.get(SIDE_EFFECTS_KEY)?.is_some())
    }

    /// Sets the recovery bound: the consumer re-observes every event at a
    /// position below `position` instead of acting on it again (no external
    /// call), counts each call it suppresses, and clears the bound once its
    /// checkpoint reaches it.
    pub fn set_recovery_until(&self, position: u64) -> Result<(), LogError> {
        self.tree
            .insert(RECOVERY_UNTIL_KEY, &keyspace::u64_value(position))?;
        Ok(())
    }

    /// The recovery bound, if the consumer is recovering.
    pub fn recovery_until(&self) -> Result<Option<u64>, LogError> {
        Ok(self
            .tree
            .get(RECOVERY_UNTIL_KEY)?
            .as_deref()
            .and_then(keyspace::read_u64))
    }

    /// Removes the recovery bound (see also [`ConsumerBatch::clear_recovery`]
    /// to clear it atomically with a commit).
    pub fn clear_recovery(&self) -> Result<(), LogError> {
        self.tree.remove(RECOVERY_UNTIL_KEY)?;
        Ok(())
    }

    /// Moves the checkpoint to `to` for incident recovery and, when that
    /// replays events, sets the recovery bound to the old checkpoint (or
    /// keeps a higher bound already set), in one atomic write: there is no
    /// moment where the checkpoint is rewound without the bound. Rows are
    /// untouched.
    pub fn rewind_for_recovery(&self, to: u64) -> Result<RecoveryRewind, LogError> {
        let previous_checkpoint = self.checkpoint()?;
        let existing = self.recovery_until()?;
        let recovery_until = if to < previous_checkpoint {
            Some(existing.map_or(previous_checkpoint, |e| e.max(previous_checkpoint)))
        } else {
            existing.filter(|bound| *bound > to)
        };
        let mut batch = sled::Batch::default();
        batch.insert(CHECKPOINT_KEY, &keyspace::u64_value(to));
        batch.remove(FAILURE_KEY);
        match recovery_until {
            Some(bound) => batch.insert(RECOVERY_UNTIL_KEY, &keyspace::u64_value(bound)),
            None => batch.remove(RECOVERY_UNTIL_KEY),
        }
        self.tree.apply_batch(batch)?;
        Ok(RecoveryRewind {
            previous_checkpoint,
            checkpoint: to,
            recovery_until,
        })
    }

    /// Adds `n` to the count of external calls suppressed during recovery
    /// and returns the new total. A report counter: a crash between a commit
    /// and this call can make it undercount, never overcount.
    pub fn record_suppressed(&self, n: u64) -> Result<u64, LogError> {
        let updated = self.tree.update_and_fetch(SUPPRESSED_KEY, |old| {
            let total = old
                .and_then(keyspace::read_u64)
                .unwrap_or(0)
                .saturating_add(n);
            Some(keyspace::u64_value(total).to_vec())
        })?;
        Ok(updated.as_deref().and_then(keyspace::read_u64).unwrap_or(0))
    }

    /// External calls suppressed during recovery so far.
    pub fn suppressed(&self) -> Result<u64, LogError> {
        Ok(self
            .tree
            .get(SUPPRESSED_KEY)?
            .as_deref()
            .and_then(keyspace::read_u64)
            .unwrap_or(0))
    }

    /// A row, if set.
    pub fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>, LogError> {
        Ok(self.tree.get(row_key(key))?)
    }

    /// Rows whose key starts with `prefix`, in key order (keys without the
    /// store's internal prefix byte).
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(Vec<u8>, sled::IVec), LogError>> {
        self.tree.scan_prefix(row_key(prefix)).map(|entry| {
            entry
                .map(|(k, v)| (k[1..].to_vec(), v))
                .map_err(LogError::from)
        })
    }

    /// Rows with keys in `[start, end)`, in key order.
    pub fn range(
        &self,
        start: &[u8],
        end: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(Vec<u8>, sled::IVec), LogError>> {
        self.tree.range(row_key(start)..row_key(end)).map(|entry| {
            entry
                .map(|(k, v)| (k[1..].to_vec(), v))
                .map_err(LogError::from)
        })
    }

    /// Deletes every row and the checkpoint (the tree itself stays).
    pub fn clear(&self) -> Result<(), LogError> {
        self.tree.clear()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ConsumerStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        let store = ConsumerStore::open(&db, "dispatcher").expect("store");
        (dir, store)
    }

    #[test]
    fn a_consumer_has_no_side_effects_until_it_declares_them() {
        let (_dir, store) = store();
        assert!(!store.has_side_effects().expect("read"));
        store.declare_side_effects().expect("declare");
        store.declare_side_effects().expect("declare twice");
        assert!(store.has_side_effects().expect("read"));
    }

    #[test]
    fn rewinding_sets_the_bound_to_the_old_checkpoint_in_the_same_write() {
        let (_dir, store) = store();
        store.reset_checkpoint(40).expect("checkpoint");
        let rewind = store.rewind_for_recovery(10).expect("rewind");
        assert_eq!(
            rewind,
            RecoveryRewind {
                previous_checkpoint: 40,
                checkpoint: 10,
                recovery_until: Some(40)
            }
        );
        assert_eq!(store.checkpoint().expect("cp"), 10);
        assert_eq!(store.recovery_until().expect("bound"), Some(40));
    }

    #[test]
    fn a_second_rewind_keeps_the_higher_bound() {
        let (_dir, store) = store();
        store.reset_checkpoint(40).expect("checkpoint");
        store.rewind_for_recovery(10).expect("rewind");
        store.reset_checkpoint(20).expect("progress");
        let rewind = store.rewind_for_recovery(5).expect("rewind again");
        assert_eq!(rewind.recovery_until, Some(40));
    }

    #[test]
    fn moving_forward_sets_no_bound_and_drops_one_it_passed() {
        let (_dir, store) = store();
        store.reset_checkpoint(40).expect("checkpoint");
        assert_eq!(
            store
                .rewind_for_recovery(50)
                .expect("forward")
                .recovery_until,
            None
        );
        store.rewind_for_recovery(10).expect("rewind");
        assert_eq!(
            store.rewind_for_recovery(55).expect("past").recovery_until,
            None
        );
        assert_eq!(store.recovery_until().expect("bound"), None);
    }

    #[test]
    fn a_commit_without_rows_moves_the_checkpoint_and_clears_a_failure() {
        let (_dir, store) = store();
        let mut rows = ConsumerBatch::default();
        rows.insert(b"row", b"v".to_vec());
        store.commit(rows, 3).expect("commit");
        store.commit(ConsumerBatch::default(), 7).expect("commit");
        assert_eq!(store.checkpoint().expect("cp"), 7);
        assert_eq!(store.get(b"row").expect("row").as_deref(), Some(&b"v"[..]));
        store.record_failure(7, "bad payload").expect("failure");
        store.commit(ConsumerBatch::default(), 8).expect("commit");
        assert_eq!(store.checkpoint().expect("cp"), 8);
        assert_eq!(store.failure().expect("failure"), None);
    }

    #[test]
    fn an_operator_reset_moves_the_checkpoint_back_and_clears_a_failure_keeping_rows() {
        let (_dir, store) = store();
        let mut rows = ConsumerBatch::default();
        rows.insert(b"row", b"v".to_vec());
        store.commit(rows, 9).expect("commit");
        store.record_failure(9, "bad payload").expect("failure");
        store.reset_checkpoint(4).expect("reset");
        assert_eq!(store.checkpoint().expect("cp"), 4);
        assert_eq!(store.failure().expect("failure"), None);
        assert_eq!(store.get(b"row").expect("row").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn a_commit_can_clear_the_bound_atomically() {
        let (_dir, store) = store();
        store.set_recovery_until(3).expect("bound");
        let mut batch = ConsumerBatch::default();
        batch.insert(b"row", b"v".to_vec());
        batch.clear_recovery();
        store.commit(batch, 3).expect("commit");
        assert_eq!(store.recovery_until().expect("bound"), None);
        assert_eq!(store.get(b"row").expect("row").as_deref(), Some(&b"v"[..]));
        store.set_recovery_until(9).expect("bound");
        store.clear_recovery().expect("clear");
        assert_eq!(store.recovery_until().expect("bound"), None);
    }

    #[test]
    fn suppressed_calls_accumulate() {
        let (_dir, store) = store();
        assert_eq!(store.suppressed().expect("read"), 0);
        assert_eq!(store.record_suppressed(2).expect("add"), 2);
        assert_eq!(store.record_suppressed(3).expect("add"), 5);
        assert_eq!(store.suppressed().expect("read"), 5);
    }

    #[test]
    fn metadata_rows_never_show_up_as_rows() {
        let (_dir, store) = store();
        store.declare_side_effects().expect("declare");
        store.set_recovery_until(7).expect("bound");
        store.record_suppressed(1).expect("add");
        assert_eq!(store.scan_prefix(b"").count(), 0);
    }
}
