//! The single writer: group commit in two pipelined stages.
//!
//! Every append goes through one *apply* thread that owns the sequence. It
//! drains the queue of waiting appends, checks each against the stream heads
//! it keeps in memory, builds one sled batch of every accepted append (its
//! records packed into pages, one run key per append) and the same batch
//! encoded as a journal frame, hands the frame and the batch's answers to
//! the *journal* thread, and then writes the batch with one `apply_batch`
//! while the journal thread writes the frame. The journal thread drains
//! every frame handed over so far, writes them to the redo journal with one
//! `fdatasync` (see [`crate::journal`]), waits until sled holds their
//! batches ([`AppliedMark`]), publishes the new head (which wakes
//! subscribers and lets readers see the events) and only then answers the
//! waiters. While one fdatasync is on the disk, the next batches are
//! checked and applied, so one fdatasync serves everything applied during
//! the previous one. sled itself is made durable only at checkpoints, when
//! a journal file is full and the journal turns to the other one.
//!
//! A conflicting append fails alone. A failed write or flush fences the
//! writer: nothing is acknowledged after it, including batches applied but
//! not yet flushed (their callers get a storage error).

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{oneshot, watch};
use ulid::Ulid;

use crate::acked::{AckedHead, AckedHeadFile};
use crate::append::{AppendOutcome, AppendRequest};
use crate::config::Durability;
use crate::error::AppendError;
use crate::journal::{Frame, FramePayload, Journal};
use crate::keyspace;
use crate::pages::PageBuilder;
use crate::record::{Hash, RecordedEvent};
use crate::recovery::StreamHead;
use crate::storage::BlobSync;

/// The durable head published to readers and subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// Position the next event will get; every position below is durable.
    pub(crate) next_position: u64,
    /// False once the log has shut down.
    pub(crate) open: bool,
}

/// Counters the writer keeps for benchmarks and metrics.
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    pub(crate) group_commits: AtomicU64,
    pub(crate) events_written: AtomicU64,
    pub(crate) blob_files_synced: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    /// Blob files fsynced and still present, with their fsynced lengths.
    #[cfg(feature = "fault-injection")]
    pub(crate) synced_blobs: std::sync::Mutex<Vec<(String, u64)>>,
}

/// The fence shared by both stages: set once, by whichever stage failed.
#[derive(Debug, Default)]
pub(crate) struct Fence(std::sync::Mutex<Option<String>>);

impl Fence {
    pub(crate) fn reason(&self) -> Option<String> {
        self.0
            .lock()
            .map_or_else(|p| p.into_inner().clone(), |g| g.clone())
    }

    fn set(&self, reason: &str) {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            tracing::error!(error = %reason, "event log write failed; writer fenced");
            *guard = Some(reason.to_owned());
        }
    }
}

/// How far the apply stage has written into sled: the journal stage waits
/// on it before it publishes a head (readers read sled) and before a
/// checkpoint (which must cover every frame of the file it retires).
#[derive(Debug, Default)]
pub(crate) struct AppliedMark {
    next_position: std::sync::Mutex<u64>,
    changed: std::sync::Condvar,
}

impl AppliedMark {
    /// A mark at `next_position` (what sled holds at open).
    pub(crate) fn new(next_position: u64) -> Self {
        Self {
            next_position: std::sync::Mutex::new(next_position),
            changed: std::sync::Condvar::new(),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, u64> {
        self.next_position
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// sled holds every position below `next_position`.
    fn advance(&self, next_position: u64) {
        *self.guard() = next_position;
        self.changed.notify_all();
    }

    /// Wakes the waiter after the fence was set.
    fn wake(&self) {
        drop(self.guard());
        self.changed.notify_all();
    }

    /// Waits until sled holds every position below `next_position`; the
    /// fence's reason if the writer was fenced first.
    fn wait_for(&self, next_position: u64, fence: &Fence) -> Result<(), String> {
        let mut applied = self.guard();
        while *applied < next_position {
            if let Some(reason) = fence.reason() {
                return Err(reason);
            }
            applied = self
                .changed
                .wait_timeout(applied, std::time::Duration::from_millis(10))
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
        Ok(())
    }
}

/// A message to the writer thread.
pub(crate) enum WriterMsg {
    Append(
        AppendRequest,
        oneshot::Sender<Result<AppendOutcome, AppendError>>,
    ),
    Shutdown(oneshot::Sender<()>),
}

/// Everything the apply stage owns.
pub(crate) struct Writer {
    pub(crate) tree: sled::Tree,
    pub(crate) heads: HashMap<String, StreamHead>,
    pub(crate) next_position: u64,
    pub(crate) head_hash: Hash,
    pub(crate) max_batch_events: usize,
    pub(crate) fence: Arc<Fence>,
    pub(crate) flusher: mpsc::Sender<FlushMsg>,
    pub(crate) applied: Arc<AppliedMark>,
    pub(crate) applies: u64,
    #[cfg(feature = "fault-injection")]
    pub(crate) faults: crate::FaultPlan,
}

/// Everything the flush stage owns.
pub(crate) struct Flusher {
    pub(crate) db: sled::Db,
    /// The data directory (named by a stalled checkpoint's error).
    pub(crate) path: std::path::PathBuf,
    /// Longest a checkpoint waits for sled's flush.
    pub(crate) checkpoint_stall_limit: std::time::Duration,
    pub(crate) data_file: Option<File>,
    pub(crate) durability: Durability,
    pub(crate) head: Arc<watch::Sender<Head>>,
    pub(crate) stats: Arc<WriterCounters>,
    pub(crate) fence: Arc<Fence>,
    pub(crate) flushes: u64,
    /// Where the acknowledged head is recorded.
    pub(crate) acked: AckedHeadFile,
    /// Fsyncs sled's blob files before an acknowledgement.
    pub(crate) blobs: BlobSync,
    /// Hash of the last record applied (matches the last `next_position`).
    pub(crate) head_hash: Hash,
    /// The redo journal the group commits are made durable in.
    pub(crate) journal: Journal,
    /// How far the apply stage has written into sled.
    pub(crate) applied: Arc<AppliedMark>,
    #[cfg(feature = "fault-injection")]
    pub(crate) faults: crate::FaultPlan,
}

/// From the apply stage to the flush stage.
pub(crate) enum FlushMsg {
    /// A batch in sled, waiting to be made durable and answered.
    Applied {
        /// The next position after the batch.
        next_position: u64,
        /// Hash of the last record after the batch.
        head_hash: Hash,
        /// Events the batch wrote.
        events: u64,
        /// The batch as a journal frame (none when it wrote nothing).
        frame: Option<Frame>,
        /// The answers, sent once the batch is durable.
        replies: Vec<Reply>,
    },
    /// The apply stage has stopped; finish and answer `close`.
    Shutdown(Option<oneshot::Sender<()>>),
}

pub(crate) type Reply = (
    oneshot::Sender<Result<AppendOutcome, AppendError>>,
    Result<AppendOutcome, AppendError>,
);

/// Appends staged in one group commit, not yet durable.
struct Staged {
    batch: sled::Batch,
    /// The same batch, encoded for the journal.
    payload: FramePayload,
    /// The group commit's records, packed into pages.
    pages: PageBuilder,
    heads: HashMap<String, StreamHead>,
    keys: HashMap<String, (Hash, AppendOutcome)>,
    next_position: u64,
    head_hash: Hash,
    replies: Vec<Reply>,
}

impl Writer {
    /// Runs until shut down or until every log handle is dropped.
    pub(crate) fn run(mut self, rx: mpsc::Receiver<WriterMsg>) {
        let mut shutdown = None;
        while shutdown.is_none() {
            let Ok(first) = rx.recv() else { break };
            let mut appends = Vec::new();
            let mut events = 0usize;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Append(req, reply) => {
                        events += req.events.len();
                        appends.push((req, reply));
                    }
                    WriterMsg::Shutdown(reply) => {
                        shutdown = Some(reply);
                        break;
                    }
                }
                if events < self.max_batch_events {
                    next = rx.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.group_commit(appends);
            }
        }
        let Writer { tree, flusher, .. } = self;
        drop(tree);
        let _ = flusher.send(FlushMsg::Shutdown(shutdown));
    }

    fn group_commit(
        &mut self,
        appends: Vec<(
            AppendRequest,
            oneshot::Sender<Result<AppendOutcome, AppendError>>,
        )>,
    ) {
        if let Some(reason) = self.fence.reason() {
            for (_, reply) in appends {
                let _ = reply.send(Err(AppendError::Fenced(reason.clone())));
            }
            return;
        }
        let mut staged = Staged {
            batch: sled::Batch::default(),
            payload: FramePayload::new(),
            pages: PageBuilder::new(self.next_position),
            heads: HashMap::new(),
            keys: HashMap::new(),
            next_position: self.next_position,
            head_hash: self.head_hash,
            replies: Vec::with_capacity(appends.len()),
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        for (req, reply) in appends {
            let result = self.stage(&mut staged, req, now_ms);
            staged.replies.push((reply, result));
        }
        let first_position = self.next_position;
        let events = staged.next_position - first_position;
        let frame = (events > 0).then(|| {
            self.finish_batch(&mut staged)
                .seal(first_position, staged.next_position)
        });
        let batch = std::mem::take(&mut staged.batch);
        self.next_position = staged.next_position;
        self.head_hash = staged.head_hash;
        self.heads.extend(staged.heads);
        // The frame goes first: its write and fdatasync overlap the apply.
        let applied = FlushMsg::Applied {
            next_position: self.next_position,
            head_hash: self.head_hash,
            events,
            frame,
            replies: staged.replies,
        };
        if let Err(mpsc::SendError(FlushMsg::Applied { replies, .. })) = self.flusher.send(applied)
        {
            answer_failed(replies, "flush stage stopped");
            self.fence.set("flush stage stopped");
            return;
        }
        if events > 0 {
            match self.apply(batch) {
                Ok(()) => self.applied.advance(self.next_position),
                Err(reason) => {
                    self.fence.set(&reason);
                    self.applied.wake();
                }
            }
        }
    }

    /// Checks one append against the heads and keys (durable and staged)
    /// and, if accepted, adds its keys to the batch.
    fn stage(
        &self,
        staged: &mut Staged,
        req: AppendRequest,
        now_ms: i64,
    ) -> Result<AppendOutcome, AppendError> {
        let request_hash = req.idempotency.as_ref().map(|_| req.request_hash());
        if let (Some(idem), Some(hash)) = (&req.idempotency, &request_hash) {
            if let Some(seen) = self.seen_key(staged, &idem.key)? {
                return if &seen.0 == hash {
                    Ok(seen.1)
                } else {
                    Err(AppendError::IdempotencyConflict {
                        key: idem.key.clone(),
                    })
                };
            }
        }
        let current = staged
            .heads
            .get(&req.stream_id)
            .or_else(|| self.heads.get(&req.stream_id))
            .map_or(0, |h| h.version);
        if !req.expected.admits(current) {
            return Err(AppendError::WrongExpectedVersion {
                stream_id: req.stream_id,
                expected: req.expected,
                actual: current,
            });
        }
        // Seal every event before touching the batch, so a refusal leaves
        // nothing of this append staged.
        let first_position = staged.next_position;
        let mut version = current;
        let mut position = first_position;
        let mut head_hash = staged.head_hash;
        let mut sealed = Vec::with_capacity(req.events.len());
        for event in req.events {
            version += 1;
            let event_id = event.event_id.unwrap_or_else(Ulid::new);
            let (record, bytes) = RecordedEvent::seal(
                event,
                position,
                &req.stream_id,
                version,
                event_id,
                now_ms,
                head_hash,
            )
            .map_err(|e| AppendError::Invalid(e.to_string()))?;
            head_hash = record.hash;
            sealed.push(bytes);
            position += 1;
        }
        for bytes in sealed {
            staged.pages.push(&bytes);
        }
        // One index key for the whole append: its events are one run.
        staged.insert(
            &keyspace::run_key(&req.stream_id, current + 1),
            &keyspace::run_value(first_position, position - first_position),
        );
        staged.head_hash = head_hash;
        staged.next_position = position;
        let outcome = AppendOutcome {
            first_position,
            last_position: staged.next_position - 1,
            stream_version: version,
            deduplicated: false,
        };
        if let (Some(idem), Some(hash)) = (req.idempotency, request_hash) {
            staged.insert(
                &keyspace::idempotency_key(&idem.key),
                &outcome.to_bytes(&hash),
            );
            let mut remembered = outcome;
            remembered.deduplicated = true;
            staged.keys.insert(idem.key, (hash, remembered));
        }
        staged.heads.insert(
            req.stream_id,
            StreamHead {
                version,
                position: outcome.last_position,
            },
        );
        Ok(outcome)
    }

    fn seen_key(
        &self,
        staged: &Staged,
        key: &str,
    ) -> Result<Option<(Hash, AppendOutcome)>, AppendError> {
        if let Some(seen) = staged.keys.get(key) {
            return Ok(Some(*seen));
        }
        let stored = self
            .tree
            .get(keyspace::idempotency_key(key))
            .map_err(|e| AppendError::Storage(e.to_string()))?;
        match stored {
            None => Ok(None),
            Some(bytes) => AppendOutcome::from_bytes(&bytes).map(Some).ok_or_else(|| {
                AppendError::Storage(format!("idempotency record for {key} is malformed"))
            }),
        }
    }

    /// Adds the staged pages and the meta record to the batch and returns
    /// the batch encoded for the journal.
    fn finish_batch(&self, staged: &mut Staged) -> FramePayload {
        let meta = keyspace::meta_value(staged.next_position, &staged.head_hash);
        for (key, value) in std::mem::take(&mut staged.pages).finish() {
            staged.insert(&key, &value);
        }
        staged.insert(keyspace::META, &meta);
        std::mem::take(&mut staged.payload)
    }

    /// Writes a group commit's batch into sled (not yet durable).
    fn apply(&mut self, batch: sled::Batch) -> Result<(), String> {
        self.applies += 1;
        #[cfg(feature = "fault-injection")]
        if self.faults.fail_write_at == Some(self.applies) {
            return Err("injected write failure".into());
        }
        self.tree.apply_batch(batch).map_err(|e| e.to_string())
    }
}

impl Staged {
    /// Adds one entry to the sled batch and to its journal frame.
    fn insert(&mut self, key: &[u8], value: &[u8]) {
        self.payload.insert(key, value);
        self.batch.insert(key, value);
    }
}

/// How long the journal stage polls for the next frame before it sleeps:
/// with one client, the next append's frame follows the answer by about
/// this much, and a futex wake costs tens of microseconds more.
const POLL_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(60);

/// The next message, polled for [`POLL_BEFORE_SLEEP`] before blocking;
/// `None` once every sender is gone.
fn recv_soon<T>(rx: &mpsc::Receiver<T>) -> Option<T> {
    let started = std::time::Instant::now();
    while started.elapsed() < POLL_BEFORE_SLEEP {
        match rx.try_recv() {
            Ok(msg) => return Some(msg),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    rx.recv().ok()
}

/// Answers every accepted append of a failed batch with a storage error;
/// refusals keep their own answer.
fn answer_failed(replies: Vec<Reply>, reason: &str) {
    for (reply, result) in replies {
        let result = match result {
            Ok(_) => Err(AppendError::Storage(reason.to_owned())),
            refused => refused,
        };
        let _ = reply.send(result);
    }
}

impl Flusher {
    /// Runs until the apply stage stops.
    pub(crate) fn run(mut self, rx: mpsc::Receiver<FlushMsg>) {
        let mut shutdown = None;
        while shutdown.is_none() {
            let Some(first) = recv_soon(&rx) else { break };
            let mut replies = Vec::new();
            let mut frames = Vec::new();
            let mut next_position = None;
            let mut events = 0;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    FlushMsg::Applied {
                        next_position: n,
                        head_hash,
                        events: e,
                        frame,
                        replies: r,
                    } => {
                        next_position = Some((n, head_hash));
                        events += e;
                        frames.extend(frame);
                        replies.extend(r);
                    }
                    FlushMsg::Shutdown(reply) => shutdown = Some(reply),
                }
                if shutdown.is_none() {
                    next = rx.try_recv().ok();
                }
            }
            self.make_durable(replies, frames, next_position, events);
        }
        if self.fence.reason().is_none() {
            if let Err(e) = self.checkpoint() {
                tracing::error!(error = %e, "final checkpoint of the event log failed");
            } else {
                // Everything is in `db` now, whatever the durability.
                let head = AckedHead {
                    next_position: self.head.borrow().next_position,
                    head_hash: self.head_hash,
                };
                if let Err(e) = self.acked.record(head).and_then(|()| self.acked.sync()) {
                    tracing::error!(error = %e, "recording the acknowledged head at close failed");
                }
            }
        }
        self.head.send_modify(|h| h.open = false);
        let Flusher { db, data_file, .. } = self;
        drop(data_file);
        drop(db);
        if let Some(Some(reply)) = shutdown {
            let _ = reply.send(());
        }
    }

    /// One journal write and fdatasync for every batch applied so far,
    /// then publish and answer.
    fn make_durable(
        &mut self,
        replies: Vec<Reply>,
        frames: Vec<Frame>,
        next_position: Option<(u64, Hash)>,
        events: u64,
    ) {
        if let Some(reason) = self.fence.reason() {
            answer_failed(replies, &reason);
            return;
        }
        if events > 0 {
            let durable = self.sync(&frames).and_then(|()| match next_position {
                Some((n, _)) => self.applied.wait_for(n, &self.fence),
                None => Ok(()),
            });
            if let Err(reason) = durable {
                self.fence.set(&reason);
                answer_failed(replies, &reason);
                return;
            }
            if let Some((next_position, head_hash)) = next_position {
                if self.durability != Durability::Buffered {
                    let head = AckedHead {
                        next_position,
                        head_hash,
                    };
                    if let Err(e) = self.acked.record(head) {
                        let reason = format!("recording the acknowledged head failed: {e}");
                        self.fence.set(&reason);
                        answer_failed(replies, &reason);
                        return;
                    }
                }
                self.head_hash = head_hash;
                self.head.send_modify(|h| h.next_position = next_position);
            }
            self.stats.group_commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .events_written
                .fetch_add(events, Ordering::Relaxed);
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }

    /// Journals `frames` (checkpointing and turning to the other journal
    /// file whenever the current one is full) and makes them as durable
    /// as the log promises.
    fn sync(&mut self, frames: &[Frame]) -> Result<(), String> {
        self.flushes += 1;
        #[cfg(feature = "fault-injection")]
        if self.faults.fail_flush_at == Some(self.flushes) {
            return Err("injected flush failure".into());
        }
        if self.durability == Durability::Buffered {
            return Ok(());
        }
        for frame in frames {
            if !self.journal.fits(frame) {
                // The checkpoint must cover every frame of the file.
                self.applied.wait_for(frame.first_position, &self.fence)?;
                self.checkpoint()?;
                self.journal.turn(frame.first_position)?;
            }
            self.journal.push(frame);
        }
        self.journal.sync(self.durability == Durability::Durable)
    }

    /// Makes everything applied to sled so far durable: sled's flush, then
    /// (for a durable log) an fsync of its blob files and an `fdatasync`
    /// of its data file.
    fn checkpoint(&mut self) -> Result<(), String> {
        let db = self.db.clone();
        let flush: Box<dyn FnOnce() -> sled::Result<()> + Send> =
            Box::new(move || db.flush().map(drop));
        #[cfg(feature = "fault-injection")]
        let flush = match self.faults.stall_checkpoint_flush {
            Some(stall) => Box::new(move || {
                std::thread::sleep(stall);
                Ok(())
            }),
            None => flush,
        };
        crate::storage::finish_flush_within(
            flush,
            &self.path,
            self.checkpoint_stall_limit,
            "the log is fenced; every acknowledged append is in the journal: restart to recover",
        )
        .map_err(|e| format!("checkpoint flush failed: {e}"))?;
        if self.durability == Durability::Durable {
            // sled never fsyncs its blob files (none exist for logs
            // created with storage::SEGMENT_SIZE; older logs may have
            // some).
            self.blobs.sync()?;
            self.stats
                .blob_files_synced
                .store(self.blobs.files_synced, Ordering::Relaxed);
            #[cfg(feature = "fault-injection")]
            if let Ok(mut synced) = self.stats.synced_blobs.lock() {
                *synced = self.blobs.synced();
            }
            // sled's flush ends in sync_file_range, which does not flush
            // the disk's write cache; fdatasync does.
            if let Some(file) = &self.data_file {
                file.sync_data()
                    .map_err(|e| format!("checkpoint fdatasync failed: {e}"))?;
            }
        }
        self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
