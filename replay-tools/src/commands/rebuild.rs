//! `rebuild`: rebuilds one or all projections from position 0 into fresh
//! trees while the old ones stay intact, and swaps each in only once it has
//! caught up with the head (see `docs/adr/0005-projections.md`). Prints
//! each rebuilt projector's digest.

use clap::Args;
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::datadir::close_log;
use crate::error::ReplayError;
use crate::output::Out;
use crate::projection::{self, ProjectorState};

/// Arguments of `rebuild`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Projectors: quotes, orders, handoffs, fallout, audit.\n\nExamples:\n  oms-replay rebuild --all\n  oms-replay rebuild fallout --json"
)]
pub struct RebuildArgs {
    /// The projector to rebuild.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Rebuild every projector (one pass over the log for all of them).
    #[arg(long)]
    pub all: bool,
}

#[derive(Serialize)]
struct RebuildJson {
    ok: bool,
    rebuilt: Vec<projections::RebuildReport>,
    projectors: Vec<ProjectorState>,
}

/// Runs `rebuild`.
pub fn run(args: &RebuildArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    let log = ctx.dir.open_log()?;
    let names: Vec<&str> = args.name.as_deref().into_iter().collect();
    let progress = ctx.progress("rebuild", Some(log.next_position()));
    let result = projection::rebuild(&log, &names, &progress)
        .and_then(|reports| Ok((reports, projection::projector_states(&log)?)));
    close_log(log)?;
    let (reports, states) = result?;
    if ctx.json {
        out.json(&RebuildJson {
            ok: true,
            rebuilt: reports,
            projectors: states,
        })?;
        return Ok(Outcome::Clean);
    }
    for report in &reports {
        let digest = states
            .iter()
            .find(|s| s.name == report.name)
            .map_or("-", |s| s.digest.as_str());
        out.line(format_args!(
            "rebuilt {} into generation {}: {} events in {} ms ({:.0} events/s); {} rows, digest {digest}",
            report.name,
            report.generation,
            report.events,
            report.elapsed_ms,
            report.events_per_s,
            states
                .iter()
                .find(|s| s.name == report.name)
                .map_or(0, |s| s.rows),
        ))?;
    }
    Ok(Outcome::Clean)
}
