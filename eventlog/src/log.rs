//! The log handle: open, append, read, subscribe, close.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::{oneshot, watch};

use crate::acked::{AckedHead, AckedHeadFile, ACKED_HEAD_FILE};
use crate::append::{AppendOutcome, AppendRequest};
use crate::checkpoint::ConsumerStore;
use crate::config::{Durability, LogConfig};
use crate::error::{AppendError, LogError};
use crate::journal::Journal;
use crate::keyspace;
use crate::record::{
    Hash, RecordedEvent, MAX_FIELD_LEN, MAX_METADATA_BYTES, MAX_METADATA_ENTRIES,
    MAX_PAYLOAD_BYTES, MAX_STREAM_ID_LEN,
};
use crate::recovery;
use crate::storage::{self, BlobSync};
use crate::subscription::Subscription;
use crate::verify::{self, VerifyError, VerifyReport};
use crate::writer::{
    AppliedMark, Fence, Flusher, Head, Publisher, Writer, WriterCounters, WriterMsg,
};

/// A handle on an open log. Cheap to clone; every clone shares one writer.
///
/// Reads and subscriptions only ever see durable events (positions below
/// the published head), so a reader never observes an event that a crash
/// could take back.
#[derive(Clone)]
pub struct EventLog {
    shared: Arc<Shared>,
}

struct Shared {
    db: sled::Db,
    tree: sled::Tree,
    path: PathBuf,
    durability: Durability,
    head: Arc<watch::Sender<Head>>,
    writer: mpsc::Sender<WriterMsg>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    max_batch_events: usize,
    counters: Arc<WriterCounters>,
    fence: Arc<Fence>,
    projection_cache_bytes: u64,
    /// The projections' database once [`EventLog::projection_db`] opened it.
    projection_db: Mutex<Option<sled::Db>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: the writer finishes what is queued and
        // closes (the journal stage holds a sender, so the writer's queue
        // does not end by itself).
        let _ = self.writer.send(WriterMsg::Shutdown(None));
    }
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("path", &self.shared.path)
            .field("next_position", &self.next_position())
            .finish()
    }
}

/// What the writer has done since the log was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Successful group commits (each one write and one flush).
    pub group_commits: u64,
    /// Events those commits wrote.
    pub events_written: u64,
    /// sled blob files fsynced by checkpoints (stays 0 for logs created
    /// with [`crate::storage::SEGMENT_SIZE`], which have none).
    pub blob_files_synced: u64,
    /// Checkpoints (sled made durable) since open, each before the journal
    /// turned to its other file, and one at a clean close.
    pub checkpoints: u64,
}

/// The full check open runs on a stored log (see [`EventLog::open`]).
fn check_stored_log(path: &Path, tree: &sled::Tree) -> Result<(), LogError> {
    let started = std::time::Instant::now();
    let report =
        verify::verify_acknowledged(path, tree, &mut |_| {}).map_err(|e| e.into_log_error(path))?;
    tracing::info!(
        events = report.events,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "event log verified at open"
    );
    Ok(())
}

fn fsync_dir(path: &Path) -> Result<(), LogError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| LogError::io(path, e))
}

impl EventLog {
    /// Opens (or creates) the log in `config.path`, recovering after a crash.
    ///
    /// A log that cannot be read end to end is never opened, so it is never
    /// served nor written on top of: before anything else, open checks
    /// sled's `conf`, upgrades a log stored in an older keyspace layout (see
    /// [`crate::upgrade`]), then walks and verifies every record (hashes, chain,
    /// positions, stream index, idempotency and meta records; see
    /// [`crate::verify`]), which also reads every stored page of the log
    /// tree through sled's checksums, and compares the log with the head
    /// last acknowledged (see [`crate::AckedHead`]).
    ///
    /// # Errors
    /// [`LogError::Locked`] when another process holds the directory;
    /// damage ([`LogError::is_damage`]): [`LogError::DamagedConfig`],
    /// [`LogError::DamagedStorage`], [`LogError::Damaged`] naming the first
    /// bad position, or [`LogError::Inconsistent`].
    pub fn open(config: LogConfig) -> Result<Self, LogError> {
        storage::check_restore_finished_file(&config.path)?;
        let db = storage::open_sled(&config.path, config.cache_capacity_bytes)?;
        let tree = storage::log_tree(&config.path, &db)?;
        let upgraded = crate::upgrade::upgrade_in_place(&db, &tree)?;
        check_stored_log(&config.path, &tree)?;
        crate::upgrade::drop_legacy_keys(&db, &tree)?;
        if upgraded {
            tracing::info!(path = %config.path.display(), "event log upgraded to keyspace layout 2");
        }
        let recovered = recovery::recover(&tree)?;
        if recovered.fresh {
            tree.insert(
                keyspace::META,
                &keyspace::meta_value(0, &crate::record::GENESIS_HASH)[..],
            )?;
            db.flush()?;
        }
        let data_path = config.path.join("db");
        let db_file = File::open(&data_path).map_err(|e| LogError::io(&data_path, e))?;
        // A checkpoint before the journal's new turn: what replay applied
        // is durable in sled from here on (see `journal`).
        db.flush()?;
        db_file
            .sync_data()
            .map_err(|e| LogError::io(&data_path, e))?;
        let journal = Journal::start(
            &config.path,
            recovered.next_position,
            config.journal_file_bytes,
        )?;
        let data_file = match config.durability {
            Durability::Durable => Some(db_file),
            _ => None,
        };
        let acked = AckedHeadFile::create(
            &config.path,
            AckedHead {
                next_position: recovered.next_position,
                head_hash: recovered.head_hash,
            },
        )
        .map_err(|e| LogError::io(&config.path.join(ACKED_HEAD_FILE), e))?;
        fsync_dir(&config.path)?;
        let head = Arc::new(watch::Sender::new(Head {
            next_position: recovered.next_position,
            open: true,
        }));
        let (tx, rx) = mpsc::channel();
        let (flush_tx, flush_rx) = mpsc::channel();
        let counters = Arc::new(WriterCounters::default());
        let fence = Arc::new(Fence::default());
        let applied = Arc::new(AppliedMark::default());
        let publisher = Arc::new(Publisher::new(
            head.clone(),
            acked,
            recovered.next_position,
            config.durability,
        ));
        let flusher = Flusher {
            db: db.clone(),
            path: config.path.clone(),
            checkpoint_stall_limit: config.checkpoint_stall_limit,
            data_file,
            durability: config.durability,
            stats: counters.clone(),
            fence: fence.clone(),
            flushes: 0,
            blobs: BlobSync::new(&config.path),
            journal,
            last_frame: 0,
            applied: applied.clone(),
            writer: tx.clone(),
            publisher: publisher.clone(),
            #[cfg(feature = "fault-injection")]
            faults: config.faults.clone(),
        };
        let writer = Writer {
            tree: tree.clone(),
            heads: crate::heads::StreamHeads::new(config.stream_heads_kept),
            next_position: recovered.next_position,
            head_hash: recovered.head_hash,
            max_batch_events: config.max_batch_events.max(1),
            durability: config.durability,
            fence: fence.clone(),
            journal: flush_tx,
            applied,
            applies: 0,
            frames_sealed: 0,
            publisher,
            pending: std::collections::VecDeque::new(),
            unapplied_keys: std::collections::HashMap::new(),
            #[cfg(feature = "fault-injection")]
            faults: config.faults.clone(),
        };
        std::thread::Builder::new()
            .name("eventlog-flush".into())
            .spawn(move || flusher.run(flush_rx))
            .map_err(|e| LogError::io(&config.path, e))?;
        let writer_thread = std::thread::Builder::new()
            .name("eventlog-apply".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::io(&config.path, e))?;
        tracing::info!(path = %config.path.display(), next_position = recovered.next_position, "event log opened");
        Ok(Self {
            shared: Arc::new(Shared {
                db,
                tree,
                path: config.path,
                durability: config.durability,
                head,
                writer: tx,
                writer_thread: Mutex::new(Some(writer_thread)),
                max_batch_events: config.max_batch_events.max(1),
                counters,
                fence,
                projection_cache_bytes: config.projection_cache_bytes,
                projection_db: Mutex::new(None),
            }),
        })
    }

    /// Appends one request and waits until it is acknowledged (durable under
    /// the configured [`Durability`]).
    ///
    /// # Errors
    /// A refusal ([`AppendError::WrongExpectedVersion`],
    /// [`AppendError::IdempotencyConflict`], [`AppendError::Invalid`]) writes
    /// nothing; [`AppendError::Storage`] and [`AppendError::Fenced`] mean the
    /// append was not acknowledged.
    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        self.enqueue(request)?
            .await
            .map_err(|_| AppendError::Closed)?
    }

    /// [`EventLog::append`] for callers outside an async runtime.
    pub fn append_blocking(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        self.enqueue(request)?
            .blocking_recv()
            .map_err(|_| AppendError::Closed)?
    }

    /// Validates a request and queues it for the writer; the receiver gets
    /// the answer once the append is acknowledged or refused.
    fn enqueue(
        &self,
        request: AppendRequest,
    ) -> Result<oneshot::Receiver<Result<AppendOutcome, AppendError>>, AppendError> {
        self.validate(&request)?;
        let (tx, rx) = oneshot::channel();
        self.shared
            .writer
            .send(WriterMsg::Append(request, tx))
            .map_err(|_| AppendError::Closed)?;
        Ok(rx)
    }

    fn validate(&self, request: &AppendRequest) -> Result<(), AppendError> {
        let invalid = |m: String| Err(AppendError::Invalid(m));
        if request.stream_id.is_empty() || request.stream_id.len() > MAX_STREAM_ID_LEN {
            return invalid(format!("stream id must be 1 to {MAX_STREAM_ID_LEN} bytes"));
        }
        if request.events.is_empty() && request.idempotency.is_none() {
            return invalid(
                "an append needs at least one event, or an idempotency key to record alone".into(),
            );
        }
        if request.events.len() > self.shared.max_batch_events {
            return invalid(format!(
                "an append holds at most {} events",
                self.shared.max_batch_events
            ));
        }
        if let Some(idem) = &request.idempotency {
            if idem.key.is_empty() || idem.key.len() > MAX_FIELD_LEN {
                return invalid(format!(
                    "idempotency key must be 1 to {MAX_FIELD_LEN} bytes"
                ));
            }
        }
        for event in &request.events {
            if event.payload.len() > MAX_PAYLOAD_BYTES {
                return invalid(format!(
                    "payload of {} bytes exceeds {MAX_PAYLOAD_BYTES}",
                    event.payload.len()
                ));
            }
            let fields = [&event.event_type, &event.tenant_id, &event.correlation_id];
            if event.event_type.is_empty()
                || fields.iter().any(|f| f.len() > MAX_FIELD_LEN)
                || event
                    .causation_id
                    .as_ref()
                    .is_some_and(|c| c.len() > MAX_FIELD_LEN)
            {
                return invalid(format!(
                    "event type is required and text fields are at most {MAX_FIELD_LEN} bytes"
                ));
            }
            let meta_bytes: usize = event.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
            if event.metadata.len() > MAX_METADATA_ENTRIES || meta_bytes > MAX_METADATA_BYTES {
                return invalid(format!(
                    "metadata is limited to {MAX_METADATA_ENTRIES} entries and {MAX_METADATA_BYTES} bytes"
                ));
            }
        }
        Ok(())
    }

    /// Position the next event will get; every lower position is durable
    /// and readable.
    pub fn next_position(&self) -> u64 {
        self.shared.head.borrow().next_position
    }

    /// Why the writer refuses appends, once a write, flush or checkpoint
    /// failed since open (every later append fails with
    /// [`AppendError::Fenced`] carrying this reason); `None` while appends
    /// are taken. Only reopening the log (a restart) lifts the fence, and
    /// nothing acknowledged before it is lost.
    pub fn fenced(&self) -> Option<String> {
        self.shared.fence.reason()
    }

    /// Group commits and events written since open.
    pub fn writer_stats(&self) -> WriterStats {
        use std::sync::atomic::Ordering;
        WriterStats {
            group_commits: self.shared.counters.group_commits.load(Ordering::Relaxed),
            events_written: self.shared.counters.events_written.load(Ordering::Relaxed),
            blob_files_synced: self
                .shared
                .counters
                .blob_files_synced
                .load(Ordering::Relaxed),
            checkpoints: self.shared.counters.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// Test-only: the sled blob files fsynced by the last durable group
    /// commit that are still present, with the length they had when
    /// fsynced.
    #[cfg(feature = "fault-injection")]
    pub fn synced_blob_files(&self) -> Vec<(String, u64)> {
        self.shared
            .counters
            .synced_blobs
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// What acknowledgements promise on this log.
    pub fn durability(&self) -> Durability {
        self.shared.durability
    }

    /// The attachments ([`crate::AppendRequest::attach`]) whose keys start
    /// with `prefix`, in key order, keyed as they were attached (one may
    /// show a moment before its append is acknowledged, as sled may hold a
    /// group commit before its journal frame is durable).
    ///
    /// # Errors
    /// A storage error.
    pub fn attachments(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, sled::IVec)>, LogError> {
        self.shared
            .tree
            .scan_prefix(keyspace::attachment_key(prefix))
            .map(|entry| {
                let (key, value) = entry?;
                Ok((key.get(1..).unwrap_or_default().to_vec(), value))
            })
            .collect()
    }

    /// The underlying sled database, for consumers that keep their state in
    /// trees of the same database (see [`EventLog::consumer`]).
    pub fn db(&self) -> &sled::Db {
        &self.shared.db
    }

    /// The sled database of the log's projections (their read models),
    /// in [`storage::PROJECTION_DIR`] inside the data directory: opened on
    /// first use, with its own cache
    /// ([`LogConfig::projection_cache_bytes`]), and the same handle for
    /// every later caller while the log is open.
    ///
    /// It is apart from the log's database so that the log's checkpoints
    /// flush the log's pages only, and a catch-up's pages do not evict the
    /// log's. Nothing in it is acknowledged: it holds state derived from
    /// the log, made durable by sled's own background flushes and by
    /// [`EventLog::close`]; after a crash a projector may find itself
    /// behind the log (it catches up) or, on a log that loses
    /// acknowledged appends by design ([`Durability::Buffered`]), ahead of
    /// it (the `projections` crate then refills it).
    ///
    /// A projections' database sled cannot open (damaged `conf` or data
    /// file) is renamed `projections.damaged-<ulid>` and a new, empty one
    /// takes its place: the projections refill from position 0.
    ///
    /// The first open on a data directory whose log database still holds
    /// projection trees (`proj/...`, where they lived before ADR 0034)
    /// drops those trees: the projections refill from position 0.
    ///
    /// # Errors
    /// As [`storage::open_sled`], for the projections' directory; sled
    /// errors dropping the old trees.
    pub fn projection_db(&self) -> Result<sled::Db, LogError> {
        let mut slot = self.projection_slot();
        if let Some(db) = slot.as_ref() {
            return Ok(db.clone());
        }
        let path = self.shared.path.join(storage::PROJECTION_DIR);
        let db = match storage::open_sled_db(&path, self.shared.projection_cache_bytes) {
            Err(error) if error.is_damage() => {
                // Derived state: set the damaged copy aside (for a look)
                // and refill, rather than keep the server from starting.
                let aside = self.shared.path.join(format!(
                    "{}.damaged-{}",
                    storage::PROJECTION_DIR,
                    ulid::Ulid::new()
                ));
                tracing::warn!(
                    %error,
                    moved_to = %aside.display(),
                    "the projections' database is damaged: it was set aside and the projections refill from position 0"
                );
                std::fs::rename(&path, &aside).map_err(|e| LogError::io(&path, e))?;
                storage::open_sled_db(&path, self.shared.projection_cache_bytes)?
            }
            opened => opened?,
        };
        let legacy: Vec<sled::IVec> = self
            .shared
            .db
            .tree_names()
            .into_iter()
            .filter(|name| name.starts_with(b"proj/"))
            .collect();
        if !legacy.is_empty() {
            tracing::info!(
                trees = legacy.len(),
                "projection trees moved out of the log's database: the projections refill from position 0"
            );
            for name in legacy {
                self.shared.db.drop_tree(name)?;
            }
        }
        *slot = Some(db.clone());
        Ok(db)
    }

    /// [`EventLog::projection_db`] for a reader that repairs nothing: a
    /// damaged projections' database is this error, never set aside, so a
    /// report can name the damage and leave the directory as it was.
    ///
    /// # Errors
    /// As [`storage::open_sled`], for the projections' directory.
    pub fn projection_db_as_found(&self) -> Result<sled::Db, LogError> {
        let mut slot = self.projection_slot();
        if let Some(db) = slot.as_ref() {
            return Ok(db.clone());
        }
        let path = self.shared.path.join(storage::PROJECTION_DIR);
        let db = storage::open_sled_db(&path, self.shared.projection_cache_bytes)?;
        *slot = Some(db.clone());
        Ok(db)
    }

    /// The durable record at `position`, if any.
    pub fn read_at(&self, position: u64) -> Result<Option<RecordedEvent>, LogError> {
        if position >= self.next_position() {
            return Ok(None);
        }
        crate::pages::record_at(&self.shared.tree, position)
            .map_err(LogError::from)?
            .map(|bytes| {
                RecordedEvent::decode(&bytes)
                    .map_err(|source| LogError::Decode { position, source })
            })
            .transpose()
    }

    /// Lazily walks the whole log from `from` up to the head as it is now.
    /// Holds one record at a time: never loads the log into memory.
    pub fn iter_all(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<RecordedEvent, LogError>> + Send + 'static {
        read_range(&self.shared.tree, from, self.next_position())
    }

    /// Up to `max` durable events from position `from`, in order.
    pub fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.iter_all(from).take(max).collect()
    }

    /// Lazily walks one stream from version `from_version` (1 is the first
    /// event), in version order.
    pub fn iter_stream(
        &self,
        stream_id: &str,
        from_version: u64,
    ) -> impl Iterator<Item = Result<RecordedEvent, LogError>> + Send + 'static {
        let tree = self.shared.tree.clone();
        let limit = self.next_position();
        let from_version = from_version.max(1);
        crate::index::runs_from(&self.shared.tree, stream_id, from_version)
            .take_while(move |run| run.as_ref().map_or(true, |r| r.first_position < limit))
            .flat_map(move |run| {
                let (records, failed) = match run {
                    Ok(run) => {
                        // A run is one append, so it lies wholly below the
                        // durable head or wholly above it.
                        let skip = from_version.saturating_sub(run.first_version);
                        let from = run.first_position.saturating_add(skip);
                        let end = run.first_position.saturating_add(run.count).min(limit);
                        (Some(read_run(&tree, from, end)), None)
                    }
                    Err(e) => (None, Some(Err(e))),
                };
                records.into_iter().flatten().chain(failed)
            })
    }

    /// Up to `max` events of one stream from `from_version`, in order.
    pub fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.iter_stream(stream_id, from_version)
            .take(max)
            .collect()
    }

    /// Durable version of a stream (0 when it has no events).
    pub fn stream_version(&self, stream_id: &str) -> Result<u64, LogError> {
        let limit = self.next_position();
        Ok(
            crate::index::last_run_below(&self.shared.tree, stream_id, limit)?
                .map_or(0, |run| run.last_version()),
        )
    }

    /// The request hash and outcome recorded for an idempotency key, if the
    /// key was used (and its append is durable).
    ///
    /// A record of no events (ADR 0051) shows once an event at or after
    /// its position is published: its frame is durable then. One at the
    /// head may be in sled before its frame is durable (a large group
    /// commit is applied while it is journaled), so it does not show here
    /// until then; an append with the same key still meets it in the
    /// writer, which answers only once it is durable.
    pub fn idempotency_record(&self, key: &str) -> Result<Option<(Hash, AppendOutcome)>, LogError> {
        let stored = self.shared.tree.get(keyspace::idempotency_key(key))?;
        let published = self.next_position();
        Ok(stored
            .and_then(|bytes| AppendOutcome::from_bytes(&bytes))
            .filter(|(_, o)| {
                if o.records_events() {
                    o.last_position < published
                } else {
                    o.first_position < published
                }
            }))
    }

    /// A subscription that delivers every event from `from` on: first the
    /// stored ones, then live appends, with no gap and no duplicate.
    pub fn subscribe(&self, from: u64) -> Subscription {
        Subscription::new(self.shared.tree.clone(), self.shared.head.subscribe(), from)
    }

    /// The state store of consumer `name` (a tree of this database), where
    /// its rows and its checkpoint are committed together.
    pub fn consumer(&self, name: &str) -> Result<ConsumerStore, LogError> {
        ConsumerStore::open(&self.shared.db, name)
    }

    /// Names of every consumer that has a state store.
    pub fn consumers(&self) -> Result<Vec<String>, LogError> {
        ConsumerStore::names(&self.shared.db)
    }

    /// Walks the durable log as of the call and checks every hash, the
    /// chain, dense positions and the stream index; appends made
    /// meanwhile are left out, so it can run while the log is written. See
    /// [`crate::verify`].
    pub fn verify(&self, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, VerifyError> {
        verify::verify_tree_until(&self.shared.tree, Some(self.next_position()), progress)
    }

    /// Flushes sled to disk now (whatever the durability): the log's
    /// database, and the projections' once opened.
    pub fn flush(&self) -> Result<(), LogError> {
        self.shared.db.flush()?;
        if let Some(projections) = self.opened_projection_db() {
            projections.flush()?;
        }
        Ok(())
    }

    /// The slot of the projections' database (a poisoned lock still holds
    /// a valid handle or none).
    fn projection_slot(&self) -> std::sync::MutexGuard<'_, Option<sled::Db>> {
        self.shared
            .projection_db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The projections' database if [`EventLog::projection_db`] opened it.
    fn opened_projection_db(&self) -> Option<sled::Db> {
        self.projection_slot().clone()
    }

    /// Stops the writer after it has written everything queued before this
    /// call, flushes, and waits for it. Later appends fail with
    /// [`AppendError::Closed`]; subscriptions end after the last event.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .shared
            .writer
            .send(WriterMsg::Shutdown(Some(tx)))
            .is_ok()
        {
            let _ = rx.await;
        }
        let handle = self
            .shared
            .writer_thread
            .lock()
            .ok()
            .and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        if let Some(db) = self.opened_projection_db() {
            let flushed =
                tokio::task::spawn_blocking(move || db.flush().map_err(|e| e.to_string()))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
            if let Err(error) = flushed {
                tracing::warn!(%error, "flushing the projections' database at close");
            }
        }
    }
}

/// Reads the records `[from, end)` of one run, which must be all there:
/// a missing record is an index pointing at nothing.
fn read_run(
    tree: &sled::Tree,
    from: u64,
    end: u64,
) -> impl Iterator<Item = Result<RecordedEvent, LogError>> + Send + 'static {
    let mut next = from;
    let mut records = read_range(tree, from, end);
    std::iter::from_fn(move || {
        if next >= end {
            return None;
        }
        let position = next;
        next += 1;
        match records.next() {
            Some(Ok(record)) if record.position == position => Some(Ok(record)),
            Some(Err(e)) => Some(Err(e)),
            _ => {
                next = end;
                Some(Err(LogError::Inconsistent {
                    position,
                    problem: "stream index points at a missing record".into(),
                }))
            }
        }
    })
}

/// Lazily reads records `[from, limit)` of a log tree.
pub(crate) fn read_range(
    tree: &sled::Tree,
    from: u64,
    limit: u64,
) -> impl Iterator<Item = Result<RecordedEvent, LogError>> + Send + 'static {
    crate::pages::raw_range(tree, from, limit).map(|raw| {
        let (position, bytes) = raw?;
        RecordedEvent::decode(&bytes).map_err(|source| LogError::Decode { position, source })
    })
}
