//! The single writer: group commit in two pipelined stages (ADR 0030,
//! ADR 0035).
//!
//! Every append goes through one *writer* thread that owns the sequence.
//! It drains the queue of waiting appends, checks each against the stream
//! heads (the recent ones kept in memory, see [`crate::heads`]), and encodes every accepted append of the
//! drain as one journal frame (its records packed into pages, one run key
//! per append, the meta record last) for the *journal* thread. The journal
//! thread drains every frame handed over so far, writes them to the redo
//! journal with one `fdatasync` (see [`crate::journal`]) and tells the
//! writer how far the journal is durable. So one `fdatasync` serves every
//! append that arrived during the previous one.
//!
//! A small group commit (under [`BATCH_FROM_ENTRIES`] entries) is
//! *write-ahead*: the writer inserts its entries into sled only once the
//! journal holds its frame durably, then publishes the new head (which
//! wakes subscribers and lets readers see the events) and answers. A crash
//! in the middle of those inserts leaves the frame's meta record out (it
//! comes last), and recovery applies the whole frame again from the
//! journal. Plain inserts leave sled's I/O buffer to fill, where every
//! `apply_batch` writes it to sled's file beside the journal's
//! `fdatasync`. A larger group commit, and every one of a log whose journal
//! a power loss may lose, goes into sled at once as one atomic batch
//! (overlapping the `fdatasync`), and the journal thread answers it once
//! durable. sled itself is made durable only at checkpoints, when a
//! journal file is full and the journal turns to the other one.
//!
//! A conflicting append fails alone. A failed write or flush fences the
//! writer: nothing is acknowledged after it, including group commits
//! encoded but not yet durable (their callers get a storage error).

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
use crate::heads::StreamHeads;
use crate::journal::{Frame, FramePayload, Journal};
use crate::keyspace;
use crate::pages::PageBuilder;
use crate::record::{Hash, RecordedEvent};
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

/// How far the apply stage has written into sled, as the number of the
/// last frame applied (see [`crate::journal::Frame::number`]; 0 at open,
/// when sled holds everything): the journal stage waits on it before it
/// publishes a head (readers read sled) and before a checkpoint (which
/// must cover every frame of the file it retires).
#[derive(Debug, Default)]
pub(crate) struct AppliedMark {
    frame: std::sync::Mutex<u64>,
    changed: std::sync::Condvar,
}

impl AppliedMark {
    fn guard(&self) -> std::sync::MutexGuard<'_, u64> {
        self.frame
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// sled holds every frame up to number `frame`.
    fn advance(&self, frame: u64) {
        let mut applied = self.guard();
        *applied = (*applied).max(frame);
        self.changed.notify_all();
    }

    /// Wakes the waiter after the fence was set.
    fn wake(&self) {
        drop(self.guard());
        self.changed.notify_all();
    }

    /// Waits until sled holds every frame up to number `frame`; the
    /// fence's reason if the writer was fenced first.
    fn wait_for(&self, frame: u64, fence: &Fence) -> Result<(), String> {
        let mut applied = self.guard();
        while *applied < frame {
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

/// Publishes the durable head: records it in `acked-head` (before any
/// caller is answered) and shows it to readers and subscribers. Shared by
/// the two stages (each answers some group commits), so it only ever moves
/// forward.
pub(crate) struct Publisher {
    head: Arc<watch::Sender<Head>>,
    /// The acknowledged head file and the position it last recorded.
    acked: std::sync::Mutex<(AckedHeadFile, u64)>,
    durability: Durability,
}

impl Publisher {
    /// A publisher starting at `next_position`.
    pub(crate) fn new(
        head: Arc<watch::Sender<Head>>,
        acked: AckedHeadFile,
        next_position: u64,
        durability: Durability,
    ) -> Self {
        Self {
            head,
            acked: std::sync::Mutex::new((acked, next_position)),
            durability,
        }
    }

    fn acked(&self) -> std::sync::MutexGuard<'_, (AckedHeadFile, u64)> {
        self.acked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every position below `next_position` is durable and in sled.
    fn publish(&self, next_position: u64, head_hash: Hash) -> Result<(), String> {
        let mut acked = self.acked();
        if next_position <= acked.1 {
            return Ok(());
        }
        if self.durability != Durability::Buffered {
            let head = AckedHead {
                next_position,
                head_hash,
            };
            acked
                .0
                .record(head)
                .map_err(|e| format!("recording the acknowledged head failed: {e}"))?;
        }
        acked.1 = next_position;
        self.head
            .send_modify(|h| h.next_position = h.next_position.max(next_position));
        Ok(())
    }

    /// Records the head at a clean close (everything is in sled, whatever
    /// the durability) and fsyncs the file.
    fn record_at_close(&self, next_position: u64, head_hash: Hash) {
        let acked = self.acked();
        let head = AckedHead {
            next_position,
            head_hash,
        };
        if let Err(e) = acked.0.record(head).and_then(|()| acked.0.sync()) {
            tracing::error!(error = %e, "recording the acknowledged head at close failed");
        }
    }

    /// Marks the log closed.
    fn close(&self) {
        self.head.send_modify(|h| h.open = false);
    }
}

/// A message to the writer thread.
pub(crate) enum WriterMsg {
    Append(
        AppendRequest,
        oneshot::Sender<Result<AppendOutcome, AppendError>>,
    ),
    /// Stop after everything queued before; answered once the log is
    /// closed (`None` when the last handle was dropped).
    Shutdown(Option<oneshot::Sender<()>>),
    /// From the journal stage: every frame up to this number is durable,
    /// or the journal failed (the writer is fenced).
    Durable(Result<u64, String>),
    /// From the journal stage: it has stopped, after its final checkpoint
    /// when `checkpointed`.
    JournalClosed { checkpointed: bool },
}

/// Everything the writer thread owns.
pub(crate) struct Writer {
    pub(crate) tree: sled::Tree,
    /// The version each stream has reached, as appends were accepted.
    pub(crate) heads: StreamHeads,
    pub(crate) next_position: u64,
    pub(crate) head_hash: Hash,
    pub(crate) max_batch_events: usize,
    pub(crate) durability: Durability,
    pub(crate) fence: Arc<Fence>,
    pub(crate) journal: mpsc::Sender<FlushMsg>,
    pub(crate) applied: Arc<AppliedMark>,
    pub(crate) applies: u64,
    /// Frames sealed since the log opened (the last one's number).
    pub(crate) frames_sealed: u64,
    /// Publishes the head of the group commits this stage answers.
    pub(crate) publisher: Arc<Publisher>,
    /// Group commits handed to the journal that go into sled once durable
    /// (see [`Writer::apply_now`]), oldest first.
    pub(crate) pending: std::collections::VecDeque<Pending>,
    /// Idempotency keys of the pending group commits (sled does not hold
    /// them yet).
    pub(crate) unapplied_keys: HashMap<String, (Hash, AppendOutcome)>,
    #[cfg(feature = "fault-injection")]
    pub(crate) faults: crate::FaultPlan,
}

/// A group commit on its way through the journal that goes into sled
/// once durable; the writer answers it.
pub(crate) struct Pending {
    /// The log's next position once it is applied.
    next_position: u64,
    /// Hash of the last record once it is applied.
    head_hash: Hash,
    frame: Arc<Frame>,
    /// Idempotency keys it records.
    keys: Vec<String>,
    /// Streams whose heads it moves.
    streams: Vec<String>,
    replies: Vec<Reply>,
}

/// A group commit the journal stage answers: one already in sled, or one
/// without a frame (every append refused or a retry), answered with the
/// group commits before it.
pub(crate) struct Answered {
    frame: Option<Arc<Frame>>,
    /// The number of the last frame sealed before it is answered: every
    /// frame up to it must be in sled first.
    after_frame: u64,
    /// The log's next position after it.
    next_position: u64,
    /// Hash of the last record after it.
    head_hash: Hash,
    replies: Vec<Reply>,
}

/// Everything the journal stage owns.
pub(crate) struct Flusher {
    pub(crate) db: sled::Db,
    /// The data directory (named by a stalled checkpoint's error).
    pub(crate) path: std::path::PathBuf,
    /// Longest a checkpoint waits for sled's flush.
    pub(crate) checkpoint_stall_limit: std::time::Duration,
    pub(crate) data_file: Option<File>,
    pub(crate) durability: Durability,
    pub(crate) stats: Arc<WriterCounters>,
    pub(crate) fence: Arc<Fence>,
    pub(crate) flushes: u64,
    /// Fsyncs sled's blob files at a checkpoint.
    pub(crate) blobs: BlobSync,
    /// The redo journal the group commits are made durable in.
    pub(crate) journal: Journal,
    /// The number of the last frame received.
    pub(crate) last_frame: u64,
    /// How far the writer has applied durable frames into sled.
    pub(crate) applied: Arc<AppliedMark>,
    /// Where durability is reported.
    pub(crate) writer: mpsc::Sender<WriterMsg>,
    /// Publishes the head of the group commits this stage answers.
    pub(crate) publisher: Arc<Publisher>,
    #[cfg(feature = "fault-injection")]
    pub(crate) faults: crate::FaultPlan,
}

/// From the writer to the journal stage.
pub(crate) enum FlushMsg {
    /// A group commit's frame, to be made durable; the writer applies and
    /// answers it once told.
    Frame(Arc<Frame>),
    /// A group commit to make durable and answer here.
    Answered(Answered),
    /// The writer is closing: journal what came before, checkpoint, stop.
    Shutdown,
}

pub(crate) type Reply = (
    oneshot::Sender<Result<AppendOutcome, AppendError>>,
    Result<AppendOutcome, AppendError>,
);

/// Appends staged in one group commit, not yet durable.
struct Staged {
    /// The group commit, encoded as a journal frame.
    payload: FramePayload,
    /// The group commit's records, packed into pages.
    pages: PageBuilder,
    /// The version each stream this group commit wrote reaches.
    heads: HashMap<String, u64>,
    keys: HashMap<String, (Hash, AppendOutcome)>,
    /// Whether an accepted append brought attachments.
    attached: bool,
    next_position: u64,
    head_hash: Hash,
    replies: Vec<Reply>,
}

/// How long the writer polls for its next message while a frame is in the
/// journal: about one `fdatasync`, after which its answer comes.
const POLL_WHILE_JOURNALING: std::time::Duration = std::time::Duration::from_micros(400);

impl Writer {
    /// Runs until closed (by [`WriterMsg::Shutdown`] and then the journal
    /// stage's [`WriterMsg::JournalClosed`]).
    pub(crate) fn run(mut self, rx: mpsc::Receiver<WriterMsg>) {
        let mut waiters = Vec::new();
        let mut shutdown = false;
        let mut journal_told = false;
        let mut journal_closed = None;
        while journal_closed.is_none() {
            let poll = if self.pending.is_empty() {
                POLL_BEFORE_SLEEP
            } else {
                POLL_WHILE_JOURNALING
            };
            let Some(first) = recv_soon(&rx, poll) else {
                break;
            };
            let mut appends = Vec::new();
            let mut events = 0usize;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Append(req, reply) if !shutdown => {
                        events += req.events.len();
                        appends.push((req, reply));
                    }
                    WriterMsg::Append(_, reply) => {
                        let _ = reply.send(Err(AppendError::Closed));
                    }
                    WriterMsg::Shutdown(reply) => {
                        waiters.extend(reply);
                        shutdown = true;
                    }
                    WriterMsg::Durable(result) => self.durable(result),
                    WriterMsg::JournalClosed { checkpointed } => {
                        journal_closed = Some(checkpointed);
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
            if shutdown && !journal_told {
                // After the last frame: the journal stage checkpoints,
                // stops and answers with `JournalClosed`.
                journal_told = true;
                if self.journal.send(FlushMsg::Shutdown).is_err() {
                    break;
                }
            }
        }
        self.finish(journal_closed == Some(true), waiters);
    }

    /// After the journal stage stopped: records the head at a clean close,
    /// marks the log closed and answers the waiting `close` calls.
    fn finish(mut self, checkpointed: bool, waiters: Vec<oneshot::Sender<()>>) {
        let reason = self
            .fence
            .reason()
            .unwrap_or_else(|| "the event log closed".to_owned());
        self.fail_pending(&reason);
        if checkpointed && self.fence.reason().is_none() {
            self.publisher
                .record_at_close(self.next_position, self.head_hash);
        }
        self.publisher.close();
        let Writer { tree, .. } = self;
        drop(tree);
        for waiter in waiters {
            let _ = waiter.send(());
        }
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
            payload: FramePayload::new(),
            pages: PageBuilder::new(self.next_position),
            heads: HashMap::new(),
            keys: HashMap::new(),
            attached: false,
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
        // A frame for the events, or for idempotency records or
        // attachments alone.
        let frame = (events > 0 || !staged.keys.is_empty() || staged.attached).then(|| {
            self.frames_sealed += 1;
            let mut frame = self
                .finish_batch(&mut staged)
                .seal(first_position, staged.next_position);
            frame.number = self.frames_sealed;
            Arc::new(frame)
        });
        self.next_position = staged.next_position;
        self.head_hash = staged.head_hash;
        let now = frame.as_ref().is_some_and(|f| self.apply_now(f));
        if let Some(frame) = frame.as_ref().filter(|_| now) {
            if let Err(reason) = self.apply(std::slice::from_ref(frame)) {
                self.fence_with(&reason, staged.replies);
                return;
            }
            self.applied.advance(frame.number);
            self.heads.applied(std::mem::take(&mut staged.heads));
        }
        let frame = match frame {
            Some(frame) if !now => frame,
            frame => {
                // In sled already, or nothing to apply: the journal stage
                // answers it once it (and every group commit before) is
                // durable and in sled.
                self.answer_in_journal(Answered {
                    frame,
                    after_frame: self.frames_sealed,
                    next_position: self.next_position,
                    head_hash: self.head_hash,
                    replies: staged.replies,
                });
                return;
            }
        };
        if self.journal.send(FlushMsg::Frame(frame.clone())).is_err() {
            self.fence_with("journal stage stopped", staged.replies);
            return;
        }
        let keys = staged.keys.keys().cloned().collect();
        self.unapplied_keys.extend(staged.keys);
        let streams = self.heads.pending(frame.number, staged.heads);
        self.pending.push_back(Pending {
            next_position: self.next_position,
            head_hash: self.head_hash,
            frame,
            keys,
            streams,
            replies: staged.replies,
        });
    }

    /// Hands `answered` to the journal stage, which answers it.
    fn answer_in_journal(&mut self, answered: Answered) {
        if let Err(mpsc::SendError(FlushMsg::Answered(answered))) =
            self.journal.send(FlushMsg::Answered(answered))
        {
            self.fence_with("journal stage stopped", answered.replies);
        }
    }

    /// Whether `frame` goes into sled now, before the journal holds it,
    /// rather than once it is durable: only as one atomic batch (a crash
    /// then leaves all of it or none, and a frame beyond the journal is
    /// never acknowledged, like any append in flight), and only in order
    /// (every frame before is in sled). A frame of many entries pays for
    /// the batch; a log whose journal a power loss may lose always
    /// batches.
    fn apply_now(&self, frame: &Frame) -> bool {
        let batches =
            self.durability != Durability::Durable || frame.entry_count() >= BATCH_FROM_ENTRIES;
        batches && self.pending.is_empty()
    }

    /// The journal is durable up to frame number `durable` (or failed):
    /// applies the group commits it covers, publishes the new head and
    /// answers them.
    fn durable(&mut self, durable: Result<u64, String>) {
        let durable = match durable {
            Ok(durable) if self.fence.reason().is_none() => durable,
            Ok(_) => {
                let reason = self.fence.reason().unwrap_or_default();
                self.fail_pending(&reason);
                return;
            }
            Err(reason) => {
                self.fence.set(&reason);
                self.fail_pending(&reason);
                return;
            }
        };
        let mut replies = Vec::new();
        let mut frames = Vec::new();
        let mut moved = Vec::new();
        let mut published = None;
        while self
            .pending
            .front()
            .is_some_and(|p| p.frame.number <= durable)
        {
            let Some(group) = self.pending.pop_front() else {
                break;
            };
            published = Some((group.next_position, group.head_hash, group.frame.number));
            moved.push((group.frame.number, group.streams));
            frames.push(group.frame);
            for key in &group.keys {
                self.unapplied_keys.remove(key);
            }
            replies.extend(group.replies);
        }
        let Some((next_position, head_hash, last_frame)) = published else {
            return;
        };
        let done = self.apply(&frames).map(|()| {
            self.applied.advance(last_frame);
            for (frame, streams) in moved {
                self.heads.frame_applied(frame, streams);
            }
        });
        if let Err(reason) = done.and_then(|()| self.publisher.publish(next_position, head_hash)) {
            self.fence_with(&reason, replies);
            return;
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }

    /// A write failed: fences the writer, wakes a checkpoint waiting for
    /// the apply, and answers `replies` and every pending group commit
    /// with a storage error (refusals keep their own answer).
    fn fence_with(&mut self, reason: &str, replies: Vec<Reply>) {
        self.fence.set(reason);
        self.applied.wake();
        answer_failed(replies, reason);
        self.fail_pending(reason);
    }

    /// Answers every pending group commit with a storage error (refusals
    /// keep their own answer).
    fn fail_pending(&mut self, reason: &str) {
        for group in std::mem::take(&mut self.pending) {
            answer_failed(group.replies, reason);
        }
        self.unapplied_keys.clear();
        self.heads.forget_unapplied();
    }

    /// Checks one append against the heads and keys (durable and staged)
    /// and, if accepted, adds its keys to the frame.
    fn stage(
        &mut self,
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
        let current = match staged.heads.get(&req.stream_id) {
            Some(version) => *version,
            None => self
                .heads
                .version(&self.tree, &req.stream_id)
                .map_err(|e| AppendError::Storage(e.to_string()))?,
        };
        if !req.expected.admits(current) {
            return Err(AppendError::WrongExpectedVersion {
                stream_id: req.stream_id,
                expected: req.expected,
                actual: current,
            });
        }
        if let Some(problem) = attachment_problem(&req.attachments) {
            return Err(AppendError::Invalid(problem));
        }
        if req.events.is_empty() {
            // A command that changed nothing: its idempotency record alone,
            // with no position (an empty range just before the head; from
            // 1, so that `last_position` is never below 0).
            let first_position = staged.next_position.max(1);
            let outcome = AppendOutcome {
                first_position,
                last_position: first_position - 1,
                stream_version: current,
                deduplicated: false,
            };
            if let (Some(idem), Some(hash)) = (req.idempotency, request_hash) {
                staged.record_key(idem.key, hash, outcome);
            }
            staged.attach(req.attachments);
            return Ok(outcome);
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
            staged.record_key(idem.key, hash, outcome);
        }
        staged.attach(req.attachments);
        staged.heads.insert(req.stream_id, version);
        Ok(outcome)
    }

    fn seen_key(
        &self,
        staged: &Staged,
        key: &str,
    ) -> Result<Option<(Hash, AppendOutcome)>, AppendError> {
        if let Some(seen) = staged
            .keys
            .get(key)
            .or_else(|| self.unapplied_keys.get(key))
        {
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

    /// Adds the staged pages and, last, the meta record to the frame and
    /// returns it.
    fn finish_batch(&self, staged: &mut Staged) -> FramePayload {
        let meta = keyspace::meta_value(staged.next_position, &staged.head_hash);
        for (key, value) in std::mem::take(&mut staged.pages).finish() {
            staged.payload.insert(&key, &value);
        }
        staged.payload.insert(keyspace::META, &meta);
        std::mem::take(&mut staged.payload)
    }

    /// Writes durable frames into sled (not yet durable there). A few
    /// entries of a durable log go in one by one (its journal holds the
    /// frames, and each frame's meta record comes last); more entries, or
    /// any of a log whose journal a power loss may lose, go in as one
    /// atomic batch, whose cost (sled writes its I/O buffer to its file)
    /// is then shared by many entries.
    fn apply(&mut self, frames: &[Arc<Frame>]) -> Result<(), String> {
        self.applies += 1;
        #[cfg(feature = "fault-injection")]
        if self.faults.fail_write_at == Some(self.applies) {
            return Err("injected write failure".into());
        }
        let mut entries = Vec::new();
        for frame in frames {
            entries.extend(
                frame
                    .entries()
                    .ok_or_else(|| "a frame the writer encoded does not parse".to_owned())?,
            );
        }
        if self.durability == Durability::Durable && entries.len() < BATCH_FROM_ENTRIES {
            #[cfg(feature = "fault-injection")]
            if self.faults.half_write_at == Some(self.applies) {
                let half = entries.len() / 2;
                for (key, value) in entries.into_iter().take(half) {
                    self.tree.insert(key, value).map_err(|e| e.to_string())?;
                }
                return Err("injected failure half-way through an apply".into());
            }
            for (key, value) in entries {
                self.tree.insert(key, value).map_err(|e| e.to_string())?;
            }
            Ok(())
        } else {
            let mut batch = sled::Batch::default();
            for (key, value) in entries {
                batch.insert(key, value);
            }
            self.tree.apply_batch(batch).map_err(|e| e.to_string())
        }
    }
}

/// Entries from which an apply is one `apply_batch` rather than inserts.
const BATCH_FROM_ENTRIES: usize = 12;

impl Staged {
    /// Adds one entry to the frame.
    fn insert(&mut self, key: &[u8], value: &[u8]) {
        self.payload.insert(key, value);
    }

    /// Adds an accepted append's attachments to the frame.
    fn attach(&mut self, attachments: Vec<(Vec<u8>, Vec<u8>)>) {
        for (key, value) in attachments {
            self.insert(&keyspace::attachment_key(&key), &value);
            self.attached = true;
        }
    }

    /// Records idempotency key `key` for the request hashed `hash`, whose
    /// outcome is `outcome`: in the frame, and for the appends after it.
    fn record_key(&mut self, key: String, hash: Hash, outcome: AppendOutcome) {
        self.insert(&keyspace::idempotency_key(&key), &outcome.to_bytes(&hash));
        let mut remembered = outcome;
        remembered.deduplicated = true;
        self.keys.insert(key, (hash, remembered));
    }
}

/// Why `attachments` cannot be stored, if they cannot.
fn attachment_problem(attachments: &[(Vec<u8>, Vec<u8>)]) -> Option<String> {
    use crate::append::{MAX_ATTACHMENT_KEY_BYTES, MAX_ATTACHMENT_VALUE_BYTES};
    attachments.iter().find_map(|(key, value)| {
        if key.is_empty() || key.len() > MAX_ATTACHMENT_KEY_BYTES {
            Some(format!(
                "an attachment key of {} bytes (1 to {MAX_ATTACHMENT_KEY_BYTES})",
                key.len()
            ))
        } else if value.len() > MAX_ATTACHMENT_VALUE_BYTES {
            Some(format!(
                "an attachment of {} bytes (at most {MAX_ATTACHMENT_VALUE_BYTES})",
                value.len()
            ))
        } else {
            None
        }
    })
}

/// How long a stage polls for its next message before it sleeps: with one
/// client, the next message follows the last answer by about this much,
/// and a futex wake costs tens of microseconds more.
const POLL_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(150);

/// How long the journal stage polls for the next frame before it sleeps.
const JOURNAL_POLL: std::time::Duration = std::time::Duration::from_micros(60);

/// The next message, polled for `poll` before blocking; `None` once every
/// sender is gone.
fn recv_soon<T>(rx: &mpsc::Receiver<T>, poll: std::time::Duration) -> Option<T> {
    let started = std::time::Instant::now();
    while started.elapsed() < poll {
        match rx.try_recv() {
            Ok(msg) => return Some(msg),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    rx.recv().ok()
}

/// Answers every accepted append of a failed group commit with a storage
/// error; refusals keep their own answer.
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
    /// Runs until the writer closes the log.
    pub(crate) fn run(mut self, rx: mpsc::Receiver<FlushMsg>) {
        let mut shutdown = false;
        while !shutdown {
            let Some(first) = recv_soon(&rx, JOURNAL_POLL) else {
                break;
            };
            let mut frames = Vec::new();
            let mut answered = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    FlushMsg::Frame(frame) => frames.push(frame),
                    FlushMsg::Answered(group) => {
                        frames.extend(group.frame.clone());
                        answered.push(group);
                    }
                    FlushMsg::Shutdown => shutdown = true,
                }
                if !shutdown {
                    next = rx.try_recv().ok();
                }
            }
            self.make_durable(&frames, answered);
        }
        let mut checkpointed = false;
        if shutdown && self.fence.reason().is_none() {
            // The final checkpoint covers every frame: wait for the writer
            // to apply the last ones.
            let done = self
                .applied
                .wait_for(self.last_frame, &self.fence)
                .and_then(|()| self.checkpoint());
            match done {
                Ok(()) => checkpointed = true,
                Err(e) => tracing::error!(error = %e, "final checkpoint of the event log failed"),
            }
        }
        let Flusher {
            db,
            data_file,
            writer,
            ..
        } = self;
        drop(data_file);
        drop(db);
        let _ = writer.send(WriterMsg::JournalClosed { checkpointed });
    }

    /// One journal write and fdatasync for every frame received so far;
    /// then the writer is told how far the journal is durable, and the
    /// group commits answered here are answered once sled holds them.
    fn make_durable(&mut self, frames: &[Arc<Frame>], answered: Vec<Answered>) {
        let durable = match self.fence.reason() {
            Some(reason) => Err(reason),
            None if frames.is_empty() => Ok(()),
            None => self
                .sync(frames)
                .inspect_err(|reason| self.fence.set(reason)),
        };
        if durable.is_ok() && !frames.is_empty() {
            let events: u64 = frames
                .iter()
                .map(|f| f.next_position - f.first_position)
                .sum();
            self.stats.group_commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .events_written
                .fetch_add(events, Ordering::Relaxed);
        }
        if !frames.is_empty() {
            let _ = self.writer.send(WriterMsg::Durable(
                durable.clone().map(|()| self.last_frame),
            ));
        }
        let Some(last) = answered.last() else {
            return;
        };
        let (next_position, head_hash) = (last.next_position, last.head_hash);
        let after_frame = last.after_frame;
        let replies = answered.into_iter().flat_map(|group| group.replies);
        let published = durable
            .and_then(|()| self.applied.wait_for(after_frame, &self.fence))
            .and_then(|()| self.publisher.publish(next_position, head_hash));
        match published {
            Ok(()) => {
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
            }
            Err(reason) => {
                self.fence.set(&reason);
                answer_failed(replies.collect(), &reason);
            }
        }
    }

    /// Journals `frames` (checkpointing and turning to the other journal
    /// file whenever the current one is full) and makes them as durable
    /// as the log promises.
    fn sync(&mut self, frames: &[Arc<Frame>]) -> Result<(), String> {
        self.flushes += 1;
        #[cfg(feature = "fault-injection")]
        if self.faults.fail_flush_at == Some(self.flushes) {
            return Err("injected flush failure".into());
        }
        if let Some(last) = frames.last() {
            self.last_frame = last.number;
        }
        if self.durability == Durability::Buffered {
            return Ok(());
        }
        #[cfg(feature = "fault-injection")]
        if let Some(delay) = self.faults.slow_journal {
            std::thread::sleep(delay);
        }
        let durable = self.durability == Durability::Durable;
        for frame in frames {
            if !self.journal.fits(frame) {
                // The checkpoint must cover every frame of the file: make
                // the ones before this durable, let the writer apply them.
                self.journal.sync(durable)?;
                let before = frame.number.saturating_sub(1);
                let _ = self.writer.send(WriterMsg::Durable(Ok(before)));
                self.applied.wait_for(before, &self.fence)?;
                self.checkpoint()?;
                self.journal.turn(frame.first_position)?;
            }
            self.journal.push(frame);
        }
        self.journal.sync(durable)
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
