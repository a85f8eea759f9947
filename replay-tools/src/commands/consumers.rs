//! `consumers`: every consumer of the log with its checkpoint, lag, last
//! error and, for side-effect consumers, the recovery state; and every
//! projector with its generation, checkpoint, lag, last error and digest.

use clap::Args;
use eventlog::EventLog;
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::datadir::close_log;
use crate::error::ReplayError;
use crate::output::Out;
use crate::projection::{self, ProjectorState};

/// Arguments of `consumers`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  oms-replay consumers\n  oms-replay consumers --json | jq '.consumers[] | select(.lag > 0)'"
)]
pub struct ConsumersArgs {}

/// One consumer's position and health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerStatus {
    /// The consumer's name.
    pub name: String,
    /// Position of the next event it will process.
    pub checkpoint: u64,
    /// Events it has not processed yet (head minus checkpoint).
    pub lag: u64,
    /// Position it stopped at, if it is stopped on an error.
    pub failed_at: Option<u64>,
    /// The error it stopped on.
    pub last_error: Option<String>,
    /// True when it makes external calls.
    pub side_effects: bool,
    /// Events below this position are re-observed without external calls.
    pub recovery_until: Option<u64>,
    /// External calls suppressed during recovery so far.
    pub suppressed: u64,
}

/// The status of every consumer of `log`, by name.
pub fn consumer_statuses(log: &EventLog) -> Result<Vec<ConsumerStatus>, ReplayError> {
    let head = log.next_position();
    let mut names = log.consumers()?;
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let store = log.consumer(&name)?;
            let checkpoint = store.checkpoint()?;
            let failure = store.failure()?;
            Ok(ConsumerStatus {
                checkpoint,
                lag: head.saturating_sub(checkpoint),
                failed_at: failure.as_ref().map(|f| f.position),
                last_error: failure.map(|f| f.message),
                side_effects: store.has_side_effects()?,
                recovery_until: store.recovery_until()?,
                suppressed: store.suppressed()?,
                name,
            })
        })
        .collect()
}

/// Runs `consumers`.
pub fn run(_args: &ConsumersArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    let log = ctx.dir.open_log()?;
    let head = log.next_position();
    let statuses = projection::check_projection_db(&log)
        .and_then(|()| consumer_statuses(&log))
        .and_then(|c| {
            let projectors = if projection::has_projections(&log)? {
                projection::projector_states(&log)?
            } else {
                Vec::new()
            };
            Ok((c, projectors))
        });
    close_log(log)?;
    let (statuses, projectors) = statuses?;
    if ctx.json {
        out.report(&serde_json::json!({
            "head": head,
            "consumers": statuses,
            "projectors": projectors,
        }))?;
        return Ok(Outcome::Clean);
    }
    out.line(format_args!("head: {head} events"))?;
    print_projectors(out, &projectors)?;
    if statuses.is_empty() {
        out.line("no other consumers")?;
        return Ok(Outcome::Clean);
    }
    let width = statuses
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.line(format_args!(
        "{:<width$}  {:>10}  {:>10}  {:<12}  last error",
        "name", "checkpoint", "lag", "side effects"
    ))?;
    for s in &statuses {
        let effects = match (s.side_effects, s.recovery_until) {
            (false, _) => "no".to_owned(),
            (true, None) => "yes".to_owned(),
            (true, Some(until)) => format!("recovering<{until}"),
        };
        let error = match (&s.failed_at, &s.last_error) {
            (Some(p), Some(m)) => format!("at {p}: {m}"),
            _ => "-".to_owned(),
        };
        out.line(format_args!(
            "{:<width$}  {:>10}  {:>10}  {:<12}  {error}{}",
            s.name,
            s.checkpoint,
            s.lag,
            effects,
            if s.suppressed > 0 {
                format!(" (suppressed {} calls)", s.suppressed)
            } else {
                String::new()
            }
        ))?;
    }
    Ok(Outcome::Clean)
}

fn print_projectors(out: &mut Out, projectors: &[ProjectorState]) -> Result<(), ReplayError> {
    if projectors.is_empty() {
        return out.line("no projections");
    }
    out.line(format_args!(
        "{:<10}  {:>10}  {:>10}  {:>10}  {:>10}  last error",
        "projector", "generation", "checkpoint", "lag", "rows"
    ))?;
    for p in projectors {
        let error = match (&p.failed_at, &p.last_error) {
            (Some(at), Some(m)) => format!("at {at}: {m}"),
            _ => "-".to_owned(),
        };
        out.line(format_args!(
            "{:<10}  {:>10}  {:>10}  {:>10}  {:>10}  {error}",
            p.name, p.generation, p.checkpoint, p.lag, p.rows
        ))?;
    }
    Ok(())
}
