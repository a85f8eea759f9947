//! The projections of a closed data directory: whether it has any, their
//! status (generation, checkpoint, lag, recorded failure, digest) and an
//! offline rebuild, through the `projections` crate.

use eventlog::EventLog;
use projections::{ProjectionConfig, Projections, ReadModels, RebuildReport, PROJECTOR_NAMES};
use serde::Serialize;

use crate::error::ReplayError;
use crate::progress::Progress;

/// One projector's position and health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectorState {
    /// The projector.
    pub name: String,
    /// The generation queries read.
    pub generation: u64,
    /// Position of the next event it will apply.
    pub checkpoint: u64,
    /// Head minus checkpoint.
    pub lag: u64,
    /// Position it stopped at, if stopped.
    pub failed_at: Option<u64>,
    /// The error it stopped on.
    pub last_error: Option<String>,
    /// Rows in its read model.
    pub rows: u64,
    /// sha256 over its rows (equal digests mean equal read models).
    pub digest: String,
}

/// True when the data directory holds the projections' database, or
/// projection trees in the log's database (where they lived before ADR
/// 0034; opening the projections moves them out, see
/// [`EventLog::projection_db`]).
///
/// # Errors
/// [`ReplayError::Io`] when the projections' directory cannot be read.
pub fn has_projections(log: &EventLog) -> Result<bool, ReplayError> {
    Ok(holds_projection_files(log)?
        || log
            .db()
            .tree_names()
            .iter()
            .any(|name| name.starts_with(b"proj/")))
}

/// Whether the projections' directory holds any file: the server kept
/// read models there, so a data file that is gone is damage for the open
/// to name, not "no projections". A directory that cannot be read is an
/// error to name (a probe had one of mode 000 reported as "no
/// projections"), never taken for an empty one.
///
/// # Errors
/// [`ReplayError::Io`] naming the directory.
fn holds_projection_files(log: &EventLog) -> Result<bool, ReplayError> {
    let dir = log.path().join(eventlog::storage::PROJECTION_DIR);
    match std::fs::read_dir(&dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ReplayError::io(
            format!("reading the read models' directory {}", dir.display()),
            e,
        )),
    }
}

/// Opens the projections' database, when the directory has one, as it is
/// found: a report must name damage there, not set the database aside and
/// show empty read models as the server's repair would.
///
/// # Errors
/// [`ReplayError::DamagedFiles`] naming the damage and the repair.
pub fn check_projection_db(log: &EventLog) -> Result<(), ReplayError> {
    let dir = log.path().join(eventlog::storage::PROJECTION_DIR);
    if !holds_projection_files(log)? {
        return Ok(());
    }
    match log.projection_db_as_found() {
        Err(error) if error.is_damage() => Err(ReplayError::DamagedFiles(format!(
            "the read models' database {} is damaged ({}); nothing was changed: the \
             server sets it aside and refills the read models from the log at its next start, \
             as `oms-replay rebuild --all` does now",
            dir.display(),
            what_is_wrong(&error),
        ))),
        opened => opened.map(drop).map_err(ReplayError::from),
    }
}

/// What is wrong with the read models' database, without the remedy the
/// log's own damage would call for (a backup, an import): read models are
/// made again from the log.
fn what_is_wrong(error: &eventlog::LogError) -> String {
    match error {
        eventlog::LogError::DamagedStorage { detail, .. } => detail
            .split("; ")
            .next()
            .and_then(|clause| clause.split(": ").next())
            .unwrap_or(detail)
            .to_owned(),
        other => other.to_string(),
    }
}

/// The state of every projector (computing each digest walks its rows).
pub fn projector_states(log: &EventLog) -> Result<Vec<ProjectorState>, ReplayError> {
    let read = ReadModels::open(log, ProjectionConfig::default().sla)?;
    let head = log.next_position();
    PROJECTOR_NAMES
        .iter()
        .map(|name| {
            let digest = read.digest(name)?;
            let failure = read.recorded_failure(name)?;
            Ok(ProjectorState {
                name: (*name).to_owned(),
                generation: digest.generation,
                checkpoint: digest.checkpoint,
                lag: head.saturating_sub(digest.checkpoint),
                failed_at: failure.as_ref().map(|f| f.position),
                last_error: failure.map(|f| f.message),
                rows: digest.rows,
                digest: digest.sha256,
            })
        })
        .collect()
}

/// How the tool folds a rebuild: decoded batches of 1,024 events and a
/// commit every 5,000 (the server's defaults are 4,096 and 50,000, for a
/// catch-up that never waits on sled). Fewer decoded events in flight and
/// smaller write sets keep the resident set about 80 MB smaller over a
/// 1M-event log at the same speed (ADR 0038).
pub fn rebuild_config() -> ProjectionConfig {
    ProjectionConfig {
        batch_size: 1024,
        commit_every: 5_000,
        ..ProjectionConfig::default()
    }
}

/// Rebuilds `names` (every projector when empty) of a closed log from
/// position 0 into fresh generations and swaps each in once caught up.
pub fn rebuild(
    log: &EventLog,
    names: &[&str],
    progress: &Progress,
) -> Result<Vec<RebuildReport>, ReplayError> {
    let reports =
        Projections::rebuild_offline(log, &rebuild_config(), names, &mut |done, total| {
            progress.set_total(total);
            progress.set(done);
        })?;
    progress.finish();
    Ok(reports)
}
