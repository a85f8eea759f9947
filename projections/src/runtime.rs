//! The live runtime: one reader thread fans decoded batches out to one
//! runner thread per projector; rebuilds fold into fresh generations and
//! hand them to the runner, which swaps them in atomically.
//!
//! # Exactly once
//! Each runner commits its rows and its checkpoint in one `apply_batch` and
//! skips events below its checkpoint, so after a crash at any moment it
//! resumes exactly after the last committed batch. The reader starts at the
//! lowest checkpoint and delivers a dense sequence of positions; a runner
//! that sees a gap stops with an error instead of skipping.
//!
//! # Failures
//! A projector that cannot apply an event commits everything before it,
//! stops at it (checkpoint = its position), records the position and message
//! (in [`ProjectorStatus::failure`] and in `proj/meta`), and ignores further
//! batches; the other projectors keep running. Restarting retries the event;
//! a rebuild replaces the stopped generation.
//!
//! # Rebuild and swap
//! A rebuild folds the log from position 0 into generation `g + 1` (a fresh
//! tree) while generation `g` keeps serving queries and keeps being updated
//! by its runner. Once the rebuild is within one batch of the head, it hands
//! the new generation to the runner, which catches it up to exactly the
//! position it has itself been fed, flushes, flips the generation pointer in
//! one insert, swaps the tree queries read, and drops the old tree. A crash
//! before the flip leaves the old generation current (the half-built tree is
//! dropped on the next start); a crash after it leaves the new one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eventlog::EventLog;
use serde::Serialize;

use crate::error::ProjectionError;
use crate::event::decode;
use crate::models::handoffs::SlaPolicy;
use crate::projector::{layout_version, PROJECTOR_NAMES};
use crate::read::{Handle, ReadModels};
use crate::store::{Meta, ProjectorFailure};
use crate::worker::{fan_out, EventBatch, Pace, Worker};

/// How the runtime runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionConfig {
    /// Most events per decoded batch handed to the projectors.
    pub batch_size: usize,
    /// A projector commits once this many events are applied and not yet
    /// committed, once `commit_interval` has passed since its last commit,
    /// and whenever it has applied everything up to the log's head (so live
    /// appends are visible at once). Larger values write hot rows less often.
    pub commit_every: u64,
    /// Longest time applied events wait for their commit during a catch-up.
    pub commit_interval: Duration,
    /// Batches buffered between the reader and each runner.
    pub channel_depth: usize,
    /// SLA policy for the handoffs' overdue flag.
    pub sla: SlaPolicy,
}

impl ProjectionConfig {
    pub(crate) fn pace(&self) -> Pace {
        Pace {
            batch: self.batch_size.max(1),
            commit_every: self.commit_every.max(1),
        }
    }
}

impl Default for ProjectionConfig {
    /// Batches of 4,096 events, commits every 50,000 events or every 500 ms
    /// (and at the head), 2 batches buffered, the default SLA policy.
    fn default() -> Self {
        Self {
            batch_size: 4096,
            commit_every: 50_000,
            commit_interval: Duration::from_millis(500),
            channel_depth: 2,
            sla: SlaPolicy::default(),
        }
    }
}

/// Progress of a running rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RebuildProgress {
    /// Events folded into the new generation so far.
    pub done: u64,
    /// The log head the rebuild is folding towards.
    pub total: u64,
}

/// Where one projector stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectorStatus {
    /// The projector.
    pub name: String,
    /// The generation queries read.
    pub generation: u64,
    /// The position of the next event it will apply.
    pub checkpoint: u64,
    /// The log's durable head (next position to be written).
    pub head: u64,
    /// `head - checkpoint`.
    pub lag: u64,
    /// Events applied per second over the last few seconds.
    pub events_per_s: f64,
    /// Where it stopped, if it stopped.
    pub failure: Option<ProjectorFailure>,
    /// The rebuild in progress, if one is.
    pub rebuild: Option<RebuildProgress>,
    /// False once its runner has ended (after shutdown).
    pub running: bool,
}

/// What a completed rebuild did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebuildReport {
    /// The projector.
    pub name: String,
    /// The generation now serving.
    pub generation: u64,
    /// Events folded.
    pub events: u64,
    /// Wall time of the fold and the swap.
    pub elapsed_ms: u64,
    /// `events / elapsed`.
    pub events_per_s: f64,
}

const RATE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
    total: u64,
}

impl RateMeter {
    fn new() -> Self {
        Self {
            samples: VecDeque::from([(Instant::now(), 0)]),
            total: 0,
        }
    }

    fn record(&mut self, applied: u64) {
        let now = Instant::now();
        self.total += applied;
        match self.samples.back_mut() {
            Some(last) if now.duration_since(last.0) < Duration::from_millis(100) => {
                last.1 = self.total
            }
            _ => self.samples.push_back((now, self.total)),
        }
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|s| now.duration_since(s.0) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    fn rate(&self) -> f64 {
        let now = Instant::now();
        let Some(oldest) = self
            .samples
            .iter()
            .find(|s| now.duration_since(s.0) <= RATE_WINDOW)
        else {
            return 0.0;
        };
        let secs = now.duration_since(oldest.0).as_secs_f64();
        if secs < 0.001 {
            return 0.0;
        }
        // Precision: counts stay far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        let events = (self.total - oldest.1) as f64;
        events / secs
    }
}

#[derive(Debug)]
struct Slot {
    checkpoint: u64,
    failure: Option<ProjectorFailure>,
    meter: RateMeter,
    rebuild: Option<RebuildProgress>,
    running: bool,
}

struct Shared {
    slots: Mutex<Vec<Slot>>,
    changed: Condvar,
    notify: tokio::sync::Notify,
    stop: AtomicBool,
    stop_reader: tokio::sync::Notify,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        match self.slots.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn update(&self, idx: usize, f: impl FnOnce(&mut Slot)) {
        if let Some(slot) = self.slots().get_mut(idx) {
            f(slot);
        }
        self.changed.notify_all();
        self.notify.notify_waiters();
    }
}

enum Msg {
    Events(EventBatch),
    Adopt {
        generation: u64,
        worker: Box<Worker>,
        reply: mpsc::Sender<Result<(), ProjectionError>>,
    },
    Stop,
}

struct Inner {
    read: ReadModels,
    log: EventLog,
    meta: Meta,
    shared: Arc<Shared>,
    controls: Vec<SyncSender<Msg>>,
    config: ProjectionConfig,
    rebuilds: Mutex<Vec<JoinHandle<()>>>,
}

/// The running projectors and their read models.
///
/// [`Projections::start`] spawns one reader thread and one runner thread
/// per projector (plain std threads: no async runtime is needed, and it runs
/// inside one). [`Projections::shutdown`] (or drop) stops them after their
/// current batch; everything applied is committed.
pub struct Projections {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Projections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projections")
            .field("status", &self.status())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn static_name(name: &str) -> Result<&'static str, ProjectionError> {
    PROJECTOR_NAMES
        .iter()
        .copied()
        .find(|n| *n == name)
        .ok_or_else(|| ProjectionError::UnknownProjector(name.to_owned()))
}

fn corrupt(name: &str) -> impl FnOnce(crate::error::FoldError) -> ProjectionError + '_ {
    move |e| ProjectionError::Corrupt {
        projector: name.to_owned(),
        message: e.0,
    }
}

impl Projections {
    /// Starts every projector on `log` with the default configuration.
    ///
    /// # Errors
    /// Storage errors, a damaged projection tree, or a thread that cannot
    /// be spawned.
    pub fn start(log: EventLog) -> Result<Self, ProjectionError> {
        Self::start_with(log, ProjectionConfig::default())
    }

    /// Starts every projector on `log`: each resumes at its checkpoint and
    /// then follows live appends.
    ///
    /// # Errors
    /// As [`Projections::start`].
    pub fn start_with(log: EventLog, config: ProjectionConfig) -> Result<Self, ProjectionError> {
        let read = ReadModels::open(&log, config.sla.clone())?;
        let meta = Meta::open(log.db())?;
        let mut workers = Vec::new();
        let mut slots = Vec::new();
        for handle in &read.inner.handles {
            let worker = Worker::new(handle.name, handle.tree(), &log)?;
            // A recorded failure is retried: the cause may be fixed.
            meta.set_failure(handle.name, None)
                .map_err(corrupt(handle.name))?;
            slots.push(Slot {
                checkpoint: worker.checkpoint,
                failure: None,
                meter: RateMeter::new(),
                rebuild: None,
                running: true,
            });
            workers.push(worker);
        }
        let shared = Arc::new(Shared {
            slots: Mutex::new(slots),
            changed: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            stop_reader: tokio::sync::Notify::new(),
        });
        let from = workers.iter().map(|w| w.checkpoint).min().unwrap_or(0);
        let mut threads = Vec::new();
        let mut controls = Vec::new();
        for (idx, (worker, handle)) in workers
            .into_iter()
            .zip(read.inner.handles.iter().cloned())
            .enumerate()
        {
            let (tx, rx) = sync_channel(config.channel_depth.max(1));
            controls.push(tx);
            let runner = Runner {
                idx,
                worker,
                handle,
                log: log.clone(),
                meta: meta.clone(),
                shared: shared.clone(),
                pace: config.pace(),
                commit_interval: config.commit_interval,
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("proj-{}", runner.worker.name))
                    .spawn(move || runner.run(rx))
                    .map_err(ProjectionError::Spawn)?,
            );
        }
        let reader = Reader {
            log: log.clone(),
            from,
            senders: controls.clone(),
            shared: shared.clone(),
            batch_size: config.batch_size.max(1),
        };
        threads.push(
            std::thread::Builder::new()
                .name("proj-reader".into())
                .spawn(move || reader.run())
                .map_err(ProjectionError::Spawn)?,
        );
        tracing::info!(from, "projections started");
        Ok(Self {
            inner: Arc::new(Inner {
                read,
                log,
                meta,
                shared,
                controls,
                config,
                rebuilds: Mutex::new(Vec::new()),
            }),
            threads: Mutex::new(threads),
        })
    }

    /// The read query API (cheap to clone, usable from any thread).
    pub fn read_models(&self) -> ReadModels {
        self.inner.read.clone()
    }

    /// Where every projector stands, in [`PROJECTOR_NAMES`] order.
    pub fn status(&self) -> Vec<ProjectorStatus> {
        let head = self.inner.log.next_position();
        let slots = self.inner.shared.slots();
        slots
            .iter()
            .zip(&self.inner.read.inner.handles)
            .map(|(slot, handle)| ProjectorStatus {
                name: handle.name.to_owned(),
                generation: handle.generation(),
                checkpoint: slot.checkpoint,
                head,
                lag: head.saturating_sub(slot.checkpoint),
                events_per_s: slot.meter.rate(),
                failure: slot.failure.clone(),
                rebuild: slot.rebuild,
                running: slot.running,
            })
            .collect()
    }

    fn check(&self, position: u64) -> Option<Result<(), ProjectionError>> {
        let slots = self.inner.shared.slots();
        for (slot, handle) in slots.iter().zip(&self.inner.read.inner.handles) {
            if let Some(f) = slot.failure.as_ref().filter(|f| f.position < position) {
                return Some(Err(ProjectionError::Failed {
                    projector: handle.name.to_owned(),
                    position: f.position,
                    message: f.message.clone(),
                }));
            }
        }
        if slots.iter().all(|s| s.checkpoint >= position) {
            return Some(Ok(()));
        }
        if slots.iter().any(|s| !s.running) {
            return Some(Err(ProjectionError::Stopped));
        }
        None
    }

    fn timeout_error(&self, position: u64) -> ProjectionError {
        let slots = self.inner.shared.slots();
        let slowest = slots
            .iter()
            .zip(&self.inner.read.inner.handles)
            .min_by_key(|(s, _)| s.checkpoint);
        ProjectionError::Timeout {
            position,
            slowest: slowest.map(|(_, h)| h.name.to_owned()).unwrap_or_default(),
            checkpoint: slowest.map(|(s, _)| s.checkpoint).unwrap_or(0),
        }
    }

    /// Blocks until every projector has applied every event below
    /// `position` (pass an append's `last_position + 1` to read your writes).
    ///
    /// # Errors
    /// [`ProjectionError::Failed`] as soon as a projector is stopped below
    /// `position`; [`ProjectionError::Timeout`]; [`ProjectionError::Stopped`].
    pub fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), ProjectionError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(result) = self.check(position) {
                return result;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timeout_error(position));
            }
            let slots = self.inner.shared.slots();
            let _ = self
                .inner
                .shared
                .changed
                .wait_timeout(slots, (deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// [`Projections::wait_for`] for async callers (needs a tokio runtime
    /// with the time driver).
    ///
    /// # Errors
    /// As [`Projections::wait_for`].
    pub async fn wait_for_async(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(result) = self.check(position) {
                return result;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(self.timeout_error(position));
            }
        }
    }

    /// Rebuilds one projector online and waits for the swap: folds the log
    /// from 0 into a fresh generation while the current one keeps serving,
    /// then swaps it in atomically and drops the old one.
    /// `progress(done, total)` follows the fold.
    ///
    /// # Errors
    /// [`ProjectionError::UnknownProjector`], [`ProjectionError::RebuildInProgress`],
    /// [`ProjectionError::Failed`] when the fold stops on an event (the
    /// current generation is kept), [`ProjectionError::Stopped`].
    pub fn rebuild(
        &self,
        name: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RebuildReport, ProjectionError> {
        let name = static_name(name)?;
        self.inner
            .rebuild(&[name], progress)
            .map(|mut r| r.remove(0))
    }

    /// Rebuilds every projector online (one pass over the log for all of
    /// them) and swaps each in; see [`Projections::rebuild`].
    ///
    /// # Errors
    /// As [`Projections::rebuild`].
    pub fn rebuild_all(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<RebuildReport>, ProjectionError> {
        self.inner.rebuild(&PROJECTOR_NAMES, progress)
    }

    /// Starts an online rebuild of `name` in the background and returns at
    /// once (for an admin mutation); its progress, and any failure, show in
    /// [`Projections::status`].
    ///
    /// # Errors
    /// [`ProjectionError::UnknownProjector`], [`ProjectionError::RebuildInProgress`].
    pub fn start_rebuild(&self, name: &str) -> Result<(), ProjectionError> {
        let name = static_name(name)?;
        self.inner.claim_rebuild(&[name])?;
        let inner = self.inner.clone();
        let handle = std::thread::Builder::new()
            .name(format!("proj-rebuild-{name}"))
            .spawn(move || {
                if let Err(e) = inner.rebuild_claimed(&[name], &mut |_, _| {}) {
                    tracing::error!(projector = name, error = %e, "background rebuild failed");
                }
            })
            .map_err(|e| {
                self.inner.release_rebuild(&[name]);
                ProjectionError::Spawn(e)
            })?;
        lock(&self.inner.rebuilds).push(handle);
        Ok(())
    }

    /// Catches every projector of a closed data directory up to the log's
    /// head in the calling thread (no live runtime), e.g. for the replay CLI.
    ///
    /// # Errors
    /// [`ProjectionError::Failed`] when a projector stops on an event (its
    /// failure is recorded; the others are caught up); storage errors.
    pub fn catch_up_offline(
        log: &EventLog,
        config: &ProjectionConfig,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ReadModels, ProjectionError> {
        let read = ReadModels::open(log, config.sla.clone())?;
        let meta = Meta::open(log.db())?;
        let mut workers = read
            .inner
            .handles
            .iter()
            .map(|h| Worker::new(h.name, h.tree(), log))
            .collect::<Result<Vec<_>, _>>()?;
        let never = AtomicBool::new(false);
        fan_out(
            log,
            &mut workers,
            log.next_position(),
            config.pace(),
            progress,
            &never,
        )?;
        let mut first = None;
        for w in &workers {
            meta.set_failure(w.name, w.failure.as_ref())
                .map_err(corrupt(w.name))?;
            if let (None, Some(f)) = (&first, &w.failure) {
                first = Some(ProjectionError::Failed {
                    projector: w.name.to_owned(),
                    position: f.position,
                    message: f.message.clone(),
                });
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(read),
        }
    }

    /// Rebuilds the named projectors of a closed data directory (all of
    /// them when `names` is empty) from position 0 into fresh generations,
    /// swaps each one that completed, and drops the old trees.
    ///
    /// # Errors
    /// [`ProjectionError::UnknownProjector`]; [`ProjectionError::Failed`]
    /// when a fold stops on an event (that projector keeps its old
    /// generation; the others are swapped); storage errors.
    pub fn rebuild_offline(
        log: &EventLog,
        config: &ProjectionConfig,
        names: &[&str],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<RebuildReport>, ProjectionError> {
        let names: Vec<&'static str> = if names.is_empty() {
            PROJECTOR_NAMES.to_vec()
        } else {
            names
                .iter()
                .map(|n| static_name(n))
                .collect::<Result<_, _>>()?
        };
        let read = ReadModels::open(log, config.sla.clone())?;
        let meta = Meta::open(log.db())?;
        let started = Instant::now();
        let mut workers = Vec::new();
        let mut generations = Vec::new();
        for name in &names {
            let current = read.handle(name).map(|h| h.generation()).unwrap_or(0);
            let generation = current + 1;
            let tree = meta.fresh_tree(name, generation).map_err(corrupt(name))?;
            workers.push(Worker::new(name, tree, log)?);
            generations.push((current, generation));
        }
        let head = log.next_position();
        let never = AtomicBool::new(false);
        fan_out(log, &mut workers, head, config.pace(), progress, &never)?;
        let mut reports = Vec::new();
        let mut first = None;
        for ((old, generation), w) in generations.into_iter().zip(workers) {
            if let Some(f) = &w.failure {
                meta.drop_generation(w.name, generation)
                    .map_err(corrupt(w.name))?;
                first.get_or_insert(ProjectionError::Failed {
                    projector: w.name.to_owned(),
                    position: f.position,
                    message: f.message.clone(),
                });
                continue;
            }
            meta.set_generation(w.name, generation, layout_version(w.name))
                .map_err(corrupt(w.name))?;
            meta.drop_generation(w.name, old).map_err(corrupt(w.name))?;
            meta.set_failure(w.name, None).map_err(corrupt(w.name))?;
            reports.push(report(w.name, generation, w.checkpoint, started));
        }
        match first {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }

    /// Stops the reader and every runner after their current batch and
    /// waits for them. Idempotent; also done on drop.
    pub fn shutdown(&self) {
        self.inner.shared.stop.store(true, Ordering::SeqCst);
        self.inner.shared.stop_reader.notify_one();
        let mut threads = std::mem::take(&mut *lock(&self.threads));
        // The reader is last: join it first so no batch follows the Stop.
        if let Some(reader) = threads.pop() {
            let _ = reader.join();
        }
        for tx in &self.inner.controls {
            let _ = tx.send(Msg::Stop);
        }
        for t in threads {
            let _ = t.join();
        }
        let rebuilds = std::mem::take(&mut *lock(&self.inner.rebuilds));
        for t in rebuilds {
            let _ = t.join();
        }
    }
}

impl Drop for Projections {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn report(name: &str, generation: u64, events: u64, started: Instant) -> RebuildReport {
    let elapsed = started.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let events_per_s = events as f64 / elapsed.as_secs_f64().max(1e-9);
    RebuildReport {
        name: name.to_owned(),
        generation,
        events,
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        events_per_s,
    }
}

impl Inner {
    fn index(&self, name: &str) -> Result<usize, ProjectionError> {
        self.read
            .inner
            .handles
            .iter()
            .position(|h| h.name == name)
            .ok_or_else(|| ProjectionError::UnknownProjector(name.to_owned()))
    }

    fn claim_rebuild(&self, names: &[&'static str]) -> Result<(), ProjectionError> {
        let idx = names
            .iter()
            .map(|n| self.index(n))
            .collect::<Result<Vec<_>, _>>()?;
        let mut slots = self.shared.slots();
        if let Some(&busy) = idx
            .iter()
            .find(|&&i| slots.get(i).is_some_and(|s| s.rebuild.is_some()))
        {
            return Err(ProjectionError::RebuildInProgress(
                names[idx.iter().position(|&i| i == busy).unwrap_or(0)].to_owned(),
            ));
        }
        let head = self.log.next_position();
        for i in idx {
            if let Some(s) = slots.get_mut(i) {
                s.rebuild = Some(RebuildProgress {
                    done: 0,
                    total: head,
                });
            }
        }
        Ok(())
    }

    fn release_rebuild(&self, names: &[&'static str]) {
        let mut slots = self.shared.slots();
        for n in names {
            if let Some(s) = self.index(n).ok().and_then(|i| slots.get_mut(i)) {
                s.rebuild = None;
            }
        }
    }

    fn rebuild(
        &self,
        names: &[&'static str],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<RebuildReport>, ProjectionError> {
        self.claim_rebuild(names)?;
        self.rebuild_claimed(names, progress)
    }

    fn rebuild_claimed(
        &self,
        names: &[&'static str],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<RebuildReport>, ProjectionError> {
        let result = self.rebuild_inner(names, progress);
        self.release_rebuild(names);
        result
    }

    fn rebuild_inner(
        &self,
        names: &[&'static str],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<RebuildReport>, ProjectionError> {
        let started = Instant::now();
        let mut workers = Vec::new();
        let mut generations = Vec::new();
        for name in names {
            let idx = self.index(name)?;
            let generation = self.read.inner.handles[idx].generation() + 1;
            let tree = self
                .meta
                .fresh_tree(name, generation)
                .map_err(corrupt(name))?;
            workers.push(Worker::new(name, tree, &self.log)?);
            generations.push((idx, generation));
        }
        let pace = self.config.pace();
        let idx_list: Vec<usize> = generations.iter().map(|(i, _)| *i).collect();
        let shared = self.shared.clone();
        let mut tick = |done: u64, total: u64| {
            {
                let mut slots = shared.slots();
                for &i in &idx_list {
                    if let Some(s) = slots.get_mut(i) {
                        s.rebuild = Some(RebuildProgress { done, total });
                    }
                }
            }
            progress(done, total);
        };
        let cleanup = |workers: &[Worker], generations: &[(usize, u64)]| {
            for (w, (_, g)) in workers.iter().zip(generations) {
                let _ = self.meta.drop_generation(w.name, *g);
            }
        };
        // Fold until the new generations are within one batch of the head.
        loop {
            let head = self.log.next_position();
            if let Err(e) = fan_out(
                &self.log,
                &mut workers,
                head,
                pace,
                &mut tick,
                &self.shared.stop,
            ) {
                cleanup(&workers, &generations);
                return Err(e);
            }
            if let Some((name, f)) = workers
                .iter()
                .find_map(|w| w.failure.clone().map(|f| (w.name, f)))
            {
                cleanup(&workers, &generations);
                return Err(ProjectionError::Failed {
                    projector: name.to_owned(),
                    position: f.position,
                    message: f.message,
                });
            }
            if self.shared.stop.load(Ordering::SeqCst) {
                cleanup(&workers, &generations);
                return Err(ProjectionError::Stopped);
            }
            let lowest = workers.iter().map(|w| w.checkpoint).min().unwrap_or(0);
            if self.log.next_position().saturating_sub(lowest) <= pace.commit_every {
                break;
            }
        }
        let mut reports = Vec::new();
        let mut pending = workers.into_iter().zip(generations).collect::<Vec<_>>();
        while let Some((worker, (idx, generation))) = pending.pop() {
            let name = worker.name;
            let (reply, answer) = mpsc::channel();
            let sent = self.controls[idx].send(Msg::Adopt {
                generation,
                worker: Box::new(worker),
                reply,
            });
            let outcome = match sent {
                Ok(()) => answer.recv().unwrap_or(Err(ProjectionError::Stopped)),
                Err(_) => Err(ProjectionError::Stopped),
            };
            if let Err(e) = outcome {
                let _ = self.meta.drop_generation(name, generation);
                for (w, (_, g)) in &pending {
                    let _ = self.meta.drop_generation(w.name, *g);
                }
                return Err(e);
            }
            let events = self
                .shared
                .slots()
                .get(idx)
                .map(|s| s.checkpoint)
                .unwrap_or(0);
            reports.push(report(name, generation, events, started));
        }
        reports.reverse();
        Ok(reports)
    }
}

struct Runner {
    idx: usize,
    worker: Worker,
    handle: Arc<Handle>,
    log: EventLog,
    meta: Meta,
    shared: Arc<Shared>,
    pace: Pace,
    commit_interval: Duration,
}

impl Runner {
    fn run(mut self, rx: Receiver<Msg>) {
        // Position after the last event the reader handed over.
        let mut delivered = self.worker.checkpoint;
        let mut next_msg = None;
        let mut last_commit = Instant::now();
        loop {
            let msg = match next_msg.take() {
                Some(m) => m,
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            match msg {
                Msg::Events(batch) => {
                    if let Some(last) = batch.last() {
                        delivered = delivered.max(last.record.position + 1);
                    }
                    let was_stopped = self.worker.failure.is_some();
                    self.worker.feed(&batch);
                    // Commit at the head (live appends become visible at once),
                    // when enough accumulated, or when the last commit is old.
                    let waiting = match rx.try_recv() {
                        Ok(m) => {
                            next_msg = Some(m);
                            true
                        }
                        Err(_) => false,
                    };
                    let at_head = !waiting && delivered >= self.log.next_position();
                    let due = at_head
                        || self.worker.pending() >= self.pace.commit_every
                        || last_commit.elapsed() >= self.commit_interval;
                    let committed = if due {
                        last_commit = Instant::now();
                        self.worker.commit()
                    } else {
                        0
                    };
                    if !was_stopped {
                        if let Some(f) = &self.worker.failure {
                            if let Err(e) = self.meta.set_failure(self.worker.name, Some(f)) {
                                tracing::error!(projector = self.worker.name, error = %e, "could not record the failure");
                            }
                        }
                    }
                    if committed > 0 || self.worker.failure.is_some() != was_stopped {
                        self.publish(committed);
                    }
                }
                Msg::Adopt {
                    generation,
                    worker,
                    reply,
                } => {
                    self.worker.commit();
                    let result = self.adopt(generation, *worker, delivered);
                    self.publish(0);
                    let _ = reply.send(result);
                }
                Msg::Stop => break,
            }
        }
        let committed = self.worker.commit();
        self.publish(committed);
        self.shared.update(self.idx, |slot| slot.running = false);
    }

    fn publish(&self, applied: u64) {
        let (checkpoint, failure) = (self.worker.checkpoint, self.worker.failure.clone());
        self.shared.update(self.idx, |slot| {
            slot.checkpoint = checkpoint;
            slot.failure = failure;
            slot.meter.record(applied);
        });
    }

    /// Catches `new` up to exactly what this runner has been fed, then
    /// swaps it in.
    fn adopt(
        &mut self,
        generation: u64,
        mut new: Worker,
        delivered: u64,
    ) -> Result<(), ProjectionError> {
        let name = self.worker.name;
        let never = AtomicBool::new(false);
        fan_out(
            &self.log,
            std::slice::from_mut(&mut new),
            delivered,
            self.pace,
            &mut |_, _| {},
            &never,
        )?;
        if let Some(f) = &new.failure {
            return Err(ProjectionError::Failed {
                projector: name.to_owned(),
                position: f.position,
                message: f.message.clone(),
            });
        }
        // Invariant: the pointer flip is the commit point of the swap; the
        // new tree is flushed before it (inside set_generation).
        self.meta
            .set_generation(name, generation, layout_version(name))
            .map_err(corrupt(name))?;
        let old_generation = self.handle.generation();
        let _old_tree = self.handle.swap(generation, new.tree.clone());
        self.worker = new;
        self.meta.set_failure(name, None).map_err(corrupt(name))?;
        self.meta
            .drop_generation(name, old_generation)
            .map_err(corrupt(name))?;
        tracing::info!(
            projector = name,
            generation,
            "rebuilt generation swapped in"
        );
        Ok(())
    }
}

struct Reader {
    log: EventLog,
    from: u64,
    senders: Vec<SyncSender<Msg>>,
    shared: Arc<Shared>,
    batch_size: usize,
}

impl Reader {
    fn run(self) {
        let runtime = match tokio::runtime::Builder::new_current_thread().build() {
            Ok(rt) => rt,
            Err(e) => {
                self.fail(self.from, &format!("reader could not start: {e}"));
                return;
            }
        };
        runtime.block_on(self.follow());
    }

    fn fail(&self, position: u64, message: &str) {
        tracing::error!(position, error = message, "projection reader stopped");
        for idx in 0..self.senders.len() {
            self.shared.update(idx, |slot| {
                if slot.failure.is_none() {
                    slot.failure = Some(ProjectorFailure {
                        position,
                        message: message.to_owned(),
                    });
                }
            });
        }
    }

    async fn follow(&self) {
        let mut sub = self.log.subscribe(self.from);
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            let first = tokio::select! {
                r = sub.next_batch(self.batch_size) => r,
                () = self.shared.stop_reader.notified() => return,
            };
            let mut records = match first {
                Ok(v) if v.is_empty() => return,
                Ok(v) => v,
                Err(e) => return self.fail(sub.position(), &format!("log read failed: {e}")),
            };
            while records.len() < self.batch_size {
                match sub.try_next_batch(self.batch_size - records.len()) {
                    Ok(v) if v.is_empty() => break,
                    Ok(v) => records.extend(v),
                    Err(e) => return self.fail(sub.position(), &format!("log read failed: {e}")),
                }
            }
            let batch: EventBatch = Arc::new(records.into_iter().map(decode).collect());
            let mut alive = false;
            for tx in &self.senders {
                alive |= tx.send(Msg::Events(batch.clone())).is_ok();
            }
            if !alive {
                return;
            }
        }
    }
}
