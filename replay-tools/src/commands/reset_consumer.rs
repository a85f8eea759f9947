//! `reset-consumer NAME --to POSITION`: moves a consumer's checkpoint for
//! incident recovery.
//!
//! A consumer with external side effects (it declared them, see
//! [`eventlog::ConsumerStore::declare_side_effects`]) is only rewound in
//! recovery mode: the checkpoint moves and, in the same atomic write, the
//! recovery bound is set to the old checkpoint, so the consumer re-observes
//! the replayed events without calling anyone again and counts what it
//! suppressed. Without `--recovery` the reset is refused (exit 1).

use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::datadir::close_log;
use crate::error::ReplayError;
use crate::output::Out;

/// Arguments of `reset-consumer`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  oms-replay reset-consumer fulfillment-process --to 0\n  oms-replay reset-consumer handoff-dispatcher --to 120000 --recovery"
)]
pub struct ResetConsumerArgs {
    /// The consumer (see `oms-replay consumers`).
    pub name: String,
    /// The position it will process next.
    #[arg(long, value_name = "POSITION")]
    pub to: u64,
    /// Recovery mode, required for consumers with external side effects: replayed events are re-observed, no external call is made again.
    #[arg(long)]
    pub recovery: bool,
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetReport {
    /// The consumer.
    pub name: String,
    /// Its checkpoint before.
    pub previous_checkpoint: u64,
    /// Its checkpoint now.
    pub checkpoint: u64,
    /// True when it makes external calls.
    pub side_effects: bool,
    /// Events below this position will be re-observed without external calls.
    pub recovery_until: Option<u64>,
    /// Events it will process again (previous checkpoint minus new one).
    pub replayed_events: u64,
    /// Events it will never process (new checkpoint minus previous one):
    /// a consumer that makes external calls never makes theirs.
    pub skipped_events: u64,
    /// Of those, the ones whose effects will be suppressed, per event type.
    pub replayed_by_type: BTreeMap<String, u64>,
}

/// Resets consumer `name` of the log in `ctx`'s data directory.
pub fn reset_consumer(
    ctx: &Ctx,
    name: &str,
    to: u64,
    recovery: bool,
) -> Result<ResetReport, ReplayError> {
    let log = ctx.dir.open_log()?;
    let result = (|| {
        if projections::PROJECTOR_NAMES.contains(&name) {
            return Err(ReplayError::Usage(format!(
                "{name} is a projector: rebuild it from position 0 with `oms-replay rebuild {name}`"
            )));
        }
        let names = log.consumers()?;
        if !names.iter().any(|n| n == name) {
            return Err(ReplayError::Usage(format!(
                "no consumer named {name}; known consumers: {}",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )));
        }
        let head = log.next_position();
        if to > head {
            return Err(ReplayError::Usage(format!(
                "position {to} is past the head of the log ({head})"
            )));
        }
        let store = log.consumer(name)?;
        let side_effects = store.has_side_effects()?;
        let previous = store.checkpoint()?;
        let recovery_until = if side_effects {
            if !recovery {
                return Err(ReplayError::Refused(format!(
                    "consumer {name} makes external calls; moving its checkpoint requires --recovery \
                     (replayed events are re-observed, no external call is made again)"
                )));
            }
            store.rewind_for_recovery(to)?.recovery_until
        } else {
            store.reset_checkpoint(to)?;
            None
        };
        let mut replayed_by_type = BTreeMap::new();
        if to < previous {
            for record in log
                .iter_all(to)
                .take_while(|r| r.as_ref().map_or(true, |r| r.position < previous))
            {
                *replayed_by_type.entry(record?.event_type).or_default() += 1;
            }
        }
        log.flush()?;
        Ok(ResetReport {
            name: name.to_owned(),
            previous_checkpoint: previous,
            checkpoint: to,
            side_effects,
            recovery_until,
            replayed_events: previous.saturating_sub(to),
            skipped_events: to.saturating_sub(previous),
            replayed_by_type,
        })
    })();
    close_log(log)?;
    result
}

/// Runs `reset-consumer`.
pub fn run(args: &ResetConsumerArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    let report = reset_consumer(ctx, &args.name, args.to, args.recovery)?;
    if ctx.json {
        out.json(&serde_json::json!({"ok": true, "reset": report}))?;
        return Ok(Outcome::Clean);
    }
    out.line(format_args!(
        "consumer {}: checkpoint {} -> {}",
        report.name, report.previous_checkpoint, report.checkpoint
    ))?;
    if report.skipped_events > 0 {
        out.line(format_args!(
            "{} events at positions {}..{} are skipped: the consumer will never process them{}",
            report.skipped_events,
            report.previous_checkpoint,
            report.checkpoint,
            if report.side_effects {
                " (no external call is made for them)"
            } else {
                ""
            }
        ))?;
    }
    match (report.side_effects, report.recovery_until) {
        (true, Some(until)) => {
            out.line(format_args!(
                "recovery mode: events at positions {}..{until} will be re-observed; no external call is made again for them",
                report.checkpoint
            ))?;
            for (event_type, n) in &report.replayed_by_type {
                out.line(format_args!("  {n:>8}  {event_type}"))?;
            }
            out.line("the consumer reports the calls it suppressed in `oms-replay consumers`")?;
        }
        (true, None) => out.line("no events are replayed; nothing to suppress")?,
        (false, _) if report.skipped_events > 0 => {}
        (false, _) => out.line(format_args!(
            "{} events will be processed again",
            report.replayed_events
        ))?,
    }
    Ok(Outcome::Clean)
}
