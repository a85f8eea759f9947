//! Reading a closed log straight from its sled tree: records in position
//! order, one stream through its index, idempotency records and the head.
//!
//! Nothing here runs recovery, so a damaged log can still be inspected; a
//! record that does not decode is reported as [`ReplayError::Damaged`] at
//! its position.

use eventlog::{index, keyspace, LogError, RecordedEvent};

use crate::datadir::DataDir;
use crate::error::ReplayError;

/// A read-only view of a log tree.
#[derive(Debug, Clone)]
pub struct LogReader {
    db: sled::Db,
    tree: sled::Tree,
}

/// One stored record: its key's position and its stored bytes.
pub type RawRecord = (u64, sled::IVec);

impl LogReader {
    /// Opens the log of `dir` raw (no recovery, the lock is taken).
    ///
    /// # Errors
    /// A log in an older keyspace layout is refused (the server upgrades
    /// it when it opens it); a damaged meta record is not: the records can
    /// still be inspected.
    pub fn open(dir: &DataDir) -> Result<Self, ReplayError> {
        let (db, tree) = dir.open_tree()?;
        eventlog::check_layout(&tree)?;
        Ok(Self { db, tree })
    }

    /// The sled database (for consumer trees and sizes).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The log tree.
    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// One past the highest stored position (0 for an empty log).
    pub fn next_position(&self) -> Result<u64, ReplayError> {
        Ok(eventlog::pages::next_position(&self.tree).map_err(LogError::from)?)
    }

    /// Stored bytes of the records at positions `[from, to)`, in order.
    pub fn raw_records(
        &self,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = Result<RawRecord, ReplayError>> + 'static {
        eventlog::pages::raw_range(&self.tree, from, to).map(|raw| match raw {
            Ok(record) => Ok(record),
            Err(eventlog::pages::RawError::Malformed { position, why }) => {
                Err(ReplayError::Damaged {
                    position,
                    problem: format!("record page: {why}"),
                })
            }
            Err(other) => Err(LogError::from(other).into()),
        })
    }

    /// Calls `visit` on the stored bytes of every record in `[from, to)`, in
    /// order, while a second thread reads ahead from sled (so reading and
    /// the caller's work use two cores). `visit` returns `false` to stop.
    pub fn for_each_raw(
        &self,
        from: u64,
        to: u64,
        visit: impl FnMut(RawRecord) -> Result<bool, ReplayError>,
    ) -> Result<(), ReplayError> {
        const CHUNK: usize = 1024;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<RawRecord>, ReplayError>>(8);
        let records = self.raw_records(from, to);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut chunk = Vec::with_capacity(CHUNK);
                for record in records {
                    match record {
                        Ok(record) => chunk.push(record),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                    if chunk.len() == CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        if tx.send(Ok(full)).is_err() {
                            return;
                        }
                    }
                }
                let _ = tx.send(Ok(chunk));
            });
            // `rx` moves in and is dropped when this returns, before the
            // scope joins the read-ahead thread: a visitor that stops
            // early (or fails) ends that thread's `send` instead of
            // leaving it blocked on a full channel for good.
            visit_chunks(rx, visit)
        })
    }

    /// Decoded records at positions `[from, to)`, in order.
    pub fn records(
        &self,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = Result<RecordedEvent, ReplayError>> + 'static {
        self.raw_records(from, to)
            .map(|raw| raw.and_then(|(position, bytes)| decode(position, &bytes)))
    }

    /// The record at `position`, if stored.
    pub fn get(&self, position: u64) -> Result<Option<RecordedEvent>, ReplayError> {
        match self
            .raw_records(position, position.saturating_add(1))
            .next()
        {
            Some(Ok((p, bytes))) if p == position => decode(position, &bytes).map(Some),
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        }
    }

    /// Positions of one stream's events, in version order, from its index.
    pub fn stream_positions(&self, stream_id: &str) -> Result<Vec<u64>, ReplayError> {
        let mut positions = Vec::new();
        for run in index::runs_from(&self.tree, stream_id, 1) {
            let run = run.map_err(|e| match e {
                LogError::Inconsistent { position, problem } => {
                    ReplayError::Damaged { position, problem }
                }
                other => other.into(),
            })?;
            positions.extend(run.entries().map(|(_, position)| position));
        }
        Ok(positions)
    }

    /// Every idempotency record as (key, stored value), in key order; ends
    /// after its first error (sled's scan over a damaged page repeats its
    /// error for ever, so a caller that counted or skipped errors would
    /// never end).
    pub fn idempotency_records(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, sled::IVec), ReplayError>> + 'static {
        let mut failed = false;
        self.tree
            .scan_prefix([keyspace::IDEMPOTENCY])
            .map_while(move |entry| {
                if failed {
                    return None;
                }
                failed = entry.is_err();
                Some(
                    entry
                        .map(|(key, value)| (key[1..].to_vec(), value))
                        .map_err(ReplayError::from),
                )
            })
    }
}

/// Decodes stored bytes at `position`, naming the position when they do not.
pub fn decode(position: u64, bytes: &[u8]) -> Result<RecordedEvent, ReplayError> {
    RecordedEvent::decode(bytes).map_err(|e| ReplayError::Damaged {
        position,
        problem: format!("record does not decode: {e}"),
    })
}

/// Feeds the records of each chunk received on `rx` to `visit`, until the
/// channel ends, `visit` returns `false`, or either fails. Takes `rx` by
/// value, so the receiver is gone once this returns.
fn visit_chunks(
    rx: std::sync::mpsc::Receiver<Result<Vec<RawRecord>, ReplayError>>,
    mut visit: impl FnMut(RawRecord) -> Result<bool, ReplayError>,
) -> Result<(), ReplayError> {
    for chunk in rx {
        for record in chunk? {
            if !visit(record)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use eventlog::{AppendRequest, Durability, EventLog, ExpectedVersion, LogConfig, NewEvent};

    use super::LogReader;
    use crate::datadir::DataDir;
    use crate::error::ReplayError;

    /// A closed log of `events` small events, in `dir`.
    fn log_of(dir: &std::path::Path, events: u64) {
        let log = EventLog::open(LogConfig::new(dir).durability(Durability::Buffered)).unwrap();
        for request in 0..events / 500 {
            let batch = (0..500)
                .map(|i| NewEvent::new("Tick", "t", format!("c{request}-{i}"), b"{}".to_vec()))
                .collect();
            log.append_blocking(AppendRequest::new(
                format!("s{request}"),
                ExpectedVersion::Any,
                batch,
            ))
            .unwrap();
        }
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(log.close());
    }

    /// Runs `for_each_raw` with `visit` on a helper thread; `None` when it
    /// has not returned within 30 s.
    fn walk_with(
        dir: &std::path::Path,
        visit: fn(super::RawRecord) -> Result<bool, ReplayError>,
    ) -> Option<Result<(), ReplayError>> {
        let reader = LogReader::open(&DataDir::new(dir)).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(reader.for_each_raw(0, 20_000, visit));
        });
        rx.recv_timeout(Duration::from_secs(30)).ok()
    }

    /// The read-ahead thread fills a bounded channel; a visitor that
    /// stops early (`dump --limit 1`, a closed pipe) must not leave it
    /// blocked on a full channel, or the walk never returns and the data
    /// directory stays locked.
    #[test]
    fn a_walk_stopped_early_returns_instead_of_waiting_on_its_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        log_of(dir.path(), 20_000);
        let stopped = walk_with(dir.path(), |_| Ok(false)).expect("the walk returned");
        assert!(stopped.is_ok(), "{stopped:?}");
        let failed = walk_with(dir.path(), |(position, _)| {
            Err(ReplayError::Damaged {
                position,
                problem: "visitor failed".into(),
            })
        })
        .expect("the walk returned");
        assert!(
            matches!(failed, Err(ReplayError::Damaged { position: 0, .. })),
            "{failed:?}"
        );
    }
}
