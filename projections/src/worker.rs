//! Feeding decoded batches to projectors: the piece shared by the live
//! runners, catch-up, rebuilds and the swap hand-over.
//!
//! A [`Worker`] applies events to its projector's in-memory caches as they
//! arrive and commits them (rows plus checkpoint, together) when enough
//! have accumulated or when no more events are waiting. sled costs several
//! microseconds per key written, so a commit that spans many events writes
//! each hot row once instead of once per event; [`crate::commit`] writes a
//! large commit key by key behind a pending record, so sled's process-wide
//! lock is never held for long and the log is never stalled. The
//! checkpoint only ever shows committed state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

use eventlog::EventLog;

use crate::commit::{self, Writes};
use crate::error::{FoldError, ProjectionError};
use crate::event::{decode, Decoded};
use crate::projector::{new_projector, Projector};
use crate::store::ProjectorFailure;

/// A batch of decoded events, shared by every projector.
pub(crate) type EventBatch = Arc<Vec<Decoded>>;

/// One projector bound to one generation tree.
pub(crate) struct Worker {
    pub(crate) name: &'static str,
    projector: Box<dyn Projector>,
    pub(crate) tree: sled::Tree,
    log: EventLog,
    /// Committed: every event below it is in the tree.
    pub(crate) checkpoint: u64,
    /// Applied to the caches (committed or not): the next position expected.
    next: u64,
    pub(crate) failure: Option<ProjectorFailure>,
}

impl Worker {
    /// A worker for `name` on `tree`, at the tree's checkpoint.
    pub(crate) fn new(
        name: &'static str,
        tree: sled::Tree,
        log: &EventLog,
    ) -> Result<Self, ProjectionError> {
        let projector = new_projector(name)
            .ok_or_else(|| ProjectionError::UnknownProjector(name.to_owned()))?;
        let checkpoint = crate::projector::read_checkpoint(name, &tree)?;
        Ok(Self {
            name,
            projector,
            tree,
            log: log.clone(),
            checkpoint,
            next: checkpoint,
            failure: None,
        })
    }

    /// Events applied but not committed yet.
    pub(crate) fn pending(&self) -> u64 {
        self.next - self.checkpoint
    }

    /// Applies a batch to the caches (events already applied are skipped;
    /// a stopped worker ignores batches). Nothing is committed here.
    pub(crate) fn feed(&mut self, events: &[Decoded]) {
        if self.failure.is_some() {
            return;
        }
        let start = events.partition_point(|e| e.record.position < self.next);
        for event in &events[start..] {
            let position = event.record.position;
            if position != self.next {
                let expected = self.next;
                return self.fail_at(
                    expected,
                    format!("gap: expected position {expected}, got {position}"),
                );
            }
            if let Err(e) = self.projector.apply(&self.tree, event) {
                return self.fail_at(position, e.0);
            }
            self.next += 1;
        }
    }

    /// Commits every applied event: rows and checkpoint together
    /// ([`crate::commit`]). Returns how many events it committed.
    pub(crate) fn commit(&mut self) -> u64 {
        let committed = self.next - self.checkpoint;
        if committed == 0 {
            return 0;
        }
        match self.try_commit() {
            Ok(()) => {
                self.checkpoint = self.next;
                committed
            }
            Err(e) => {
                self.projector.discard();
                self.next = self.checkpoint;
                let position = self.checkpoint;
                self.stop(position, format!("commit failed: {e}"));
                0
            }
        }
    }

    fn try_commit(&mut self) -> Result<(), FoldError> {
        let mut writes = Writes::default();
        self.projector.flush(&mut writes)?;
        commit::commit(&self.tree, writes, self.next)
    }

    /// Stops at `position`: commits exactly the events before it (re-read
    /// from the log, since the caches may hold uncommitted ones), then
    /// records the failure.
    fn fail_at(&mut self, position: u64, message: String) {
        self.projector.discard();
        self.next = self.checkpoint;
        let mut replay: Result<(), FoldError> = Ok(());
        if position > self.checkpoint {
            let from = self.checkpoint;
            let projector = &mut self.projector;
            let tree = &self.tree;
            let read = read_batches(&self.log, from, position, 4096, |batch| {
                for e in batch.iter() {
                    if let Err(err) = projector.apply(tree, e) {
                        replay = Err(err);
                        return false;
                    }
                }
                true
            });
            if let Err(e) = read {
                replay = Err(FoldError(e.to_string()));
            }
            if replay.is_ok() {
                self.next = position;
                self.commit();
            } else {
                self.projector.discard();
            }
        }
        if self.failure.is_none() {
            self.stop(position, message);
        }
    }

    fn stop(&mut self, position: u64, message: String) {
        tracing::error!(projector = self.name, position, error = %message, "projector stopped");
        self.failure = Some(ProjectorFailure { position, message });
    }
}

/// Reads `[from, to)` from the log in decoded batches of `batch_size`,
/// handing each to `sink` (which returns false to stop early).
pub(crate) fn read_batches(
    log: &EventLog,
    from: u64,
    to: u64,
    batch_size: usize,
    mut sink: impl FnMut(EventBatch) -> bool,
) -> Result<(), ProjectionError> {
    let mut buf = Vec::with_capacity(batch_size);
    for record in log.iter_all(from) {
        let record = record?;
        if record.position >= to {
            break;
        }
        buf.push(decode(record));
        if buf.len() >= batch_size
            && !sink(Arc::new(std::mem::replace(
                &mut buf,
                Vec::with_capacity(batch_size),
            )))
        {
            return Ok(());
        }
    }
    if !buf.is_empty() {
        sink(Arc::new(buf));
    }
    Ok(())
}

/// How a fold commits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Events per decoded batch.
    pub(crate) batch: usize,
    /// Commit once this many events are applied and not committed.
    pub(crate) commit_every: u64,
}

/// Brings every worker to `to` (or to its failure), reading the log once
/// from the lowest checkpoint and applying each batch to every worker in
/// parallel (one thread per worker when there are several), committing
/// every `pace.commit_every` events and at the end.
/// `progress(done, total)` is called after each batch with events read;
/// setting `stop` ends the fold early (what was applied is committed).
pub(crate) fn fan_out(
    log: &EventLog,
    workers: &mut [Worker],
    to: u64,
    pace: Pace,
    progress: &mut dyn FnMut(u64, u64),
    stop: &AtomicBool,
) -> Result<(), ProjectionError> {
    let Some(from) = workers
        .iter()
        .filter(|w| w.failure.is_none())
        .map(|w| w.checkpoint)
        .min()
    else {
        return Ok(());
    };
    if from >= to {
        progress(to, to);
        return Ok(());
    }
    let started = Instant::now();
    let mut report = |done: u64| progress(done, to);
    let step = |w: &mut Worker, batch: &[Decoded]| {
        w.feed(batch);
        if w.pending() >= pace.commit_every {
            w.commit();
        }
    };
    let result = if workers.len() == 1 {
        let w = &mut workers[0];
        read_batches(log, from, to, pace.batch, |batch| {
            step(w, &batch);
            if let Some(last) = batch.last() {
                report(last.record.position + 1);
            }
            w.failure.is_none() && !stop.load(Ordering::Relaxed)
        })
    } else {
        std::thread::scope(|scope| -> Result<(), ProjectionError> {
            let mut senders = Vec::new();
            for w in workers.iter_mut() {
                let (tx, rx) = sync_channel::<EventBatch>(2);
                senders.push(tx);
                std::thread::Builder::new()
                    .name(format!("proj-{}", w.name))
                    .spawn_scoped(scope, move || {
                        while let Ok(batch) = rx.recv() {
                            step(w, &batch);
                        }
                        w.commit();
                    })
                    .map_err(ProjectionError::Spawn)?;
            }
            let result = read_batches(log, from, to, pace.batch, |batch| {
                let last = batch.last().map(|e| e.record.position + 1);
                let mut alive = false;
                for tx in &senders {
                    alive |= tx.send(batch.clone()).is_ok();
                }
                if let Some(last) = last {
                    report(last);
                }
                alive && !stop.load(Ordering::Relaxed)
            });
            drop(senders);
            result
        })
    };
    for w in workers.iter_mut() {
        w.commit();
    }
    tracing::debug!(
        events = to - from,
        elapsed_ms = started.elapsed().as_millis(),
        "fan-out done"
    );
    result
}
