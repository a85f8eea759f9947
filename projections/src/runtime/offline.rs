//! Catch-up and rebuild of a closed data directory, in the calling thread
//! (no live runtime), e.g. for the replay CLI.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use eventlog::EventLog;

use super::rebuild::{report, RebuildReport};
use super::{corrupt, static_name, ProjectionConfig, Projections};
use crate::error::ProjectionError;
use crate::projector::{layout_version, PROJECTOR_NAMES};
use crate::read::ReadModels;
use crate::store::Meta;
use crate::worker::{fan_out, Worker};

impl Projections {
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
        let meta = Meta::open(&log.projection_db()?)?;
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
        let meta = Meta::open(&log.projection_db()?)?;
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
}
