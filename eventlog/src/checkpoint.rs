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

use crate::error::LogError;
use crate::keyspace;

const TREE_PREFIX: &str = "consumer/";
const CHECKPOINT_KEY: &[u8] = b"\x00checkpoint";
const FAILURE_KEY: &[u8] = b"\x00failure";
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
}

impl ConsumerBatch {
    /// Sets a row.
    pub fn insert(&mut self, key: &[u8], value: impl Into<sled::IVec>) {
        self.batch.insert(row_key(key), value.into());
    }

    /// Removes a row.
    pub fn remove(&mut self, key: &[u8]) {
        self.batch.remove(row_key(key));
    }
}

/// Where a consumer stopped on an event it could not process.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub fn commit(&self, rows: ConsumerBatch, next_position: u64) -> Result<(), LogError> {
        let mut batch = rows.batch;
        batch.insert(CHECKPOINT_KEY, &keyspace::u64_value(next_position));
        batch.remove(FAILURE_KEY);
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Moves the checkpoint without touching rows (operator recovery).
    pub fn reset_checkpoint(&self, next_position: u64) -> Result<(), LogError> {
        self.commit(ConsumerBatch::default(), next_position)
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
