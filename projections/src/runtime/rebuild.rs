//! Online rebuild: claim the projectors, fold the log from 0 into fresh
//! generations while the current ones keep serving, then hand each new
//! generation to its runner to be caught up and swapped in.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;

use super::runner::Msg;
use super::{corrupt, Inner};
use crate::error::ProjectionError;
use crate::worker::{fan_out, Worker};

/// Progress of a running rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RebuildProgress {
    /// Events folded into the new generation so far.
    pub done: u64,
    /// The log head the rebuild is folding towards.
    pub total: u64,
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

pub(super) fn report(name: &str, generation: u64, events: u64, started: Instant) -> RebuildReport {
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

    pub(super) fn claim_rebuild(&self, names: &[&'static str]) -> Result<(), ProjectionError> {
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

    pub(super) fn release_rebuild(&self, names: &[&'static str]) {
        let mut slots = self.shared.slots();
        for n in names {
            if let Some(s) = self.index(n).ok().and_then(|i| slots.get_mut(i)) {
                s.rebuild = None;
            }
        }
    }

    pub(super) fn rebuild(
        &self,
        names: &[&'static str],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<RebuildReport>, ProjectionError> {
        self.claim_rebuild(names)?;
        self.rebuild_claimed(names, progress)
    }

    pub(super) fn rebuild_claimed(
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
