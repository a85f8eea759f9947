//! One runner thread per projector: applies the batches the reader fans
//! out, commits rows and checkpoint together, and adopts rebuilt
//! generations.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::EventLog;

use super::corrupt;
use super::status::Shared;
use crate::error::ProjectionError;
use crate::projector::layout_version;
use crate::read::Handle;
use crate::store::Meta;
use crate::worker::{fan_out, EventBatch, Pace, Worker};

pub(super) enum Msg {
    Events(EventBatch),
    Adopt {
        generation: u64,
        worker: Box<Worker>,
        reply: mpsc::Sender<Result<(), ProjectionError>>,
    },
    Stop,
}

pub(super) struct Runner {
    pub(super) idx: usize,
    pub(super) worker: Worker,
    pub(super) handle: Arc<Handle>,
    pub(super) log: EventLog,
    pub(super) meta: Meta,
    pub(super) shared: Arc<Shared>,
    pub(super) pace: Pace,
    pub(super) commit_interval: Duration,
}

impl Runner {
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
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
