//! The live runtime: one reader thread fans decoded batches out to one
//! runner thread per projector; rebuilds fold into fresh generations and
//! hand them to the runner, which swaps them in atomically.
//!
//! # Exactly once
//! Each runner commits its rows and its checkpoint together (the `commit`
//! module) and skips events below its checkpoint, so after a crash at any moment it
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

mod config;
mod offline;
mod rate;
mod reader;
mod rebuild;
mod runner;
mod status;
mod wait;

pub use config::ProjectionConfig;
pub use rebuild::{RebuildProgress, RebuildReport};
pub use status::ProjectorStatus;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use eventlog::EventLog;

use crate::error::ProjectionError;
use crate::projector::PROJECTOR_NAMES;
use crate::read::ReadModels;
use crate::store::Meta;
use crate::worker::Worker;
use rate::RateMeter;
use reader::Reader;
use runner::{Msg, Runner};
use status::{Shared, Slot};

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
        let meta = Meta::open(&log.projection_db()?)?;
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
