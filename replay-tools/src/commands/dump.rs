//! `dump`: events as JSON lines with decoded domain payloads, filtered by
//! stream, aggregate, tenant, correlation id, event type, position range or
//! time range.

use std::io::Write;

use clap::Args;
use eventlog::RecordedEvent;

use crate::cli::{Ctx, Outcome};
use crate::error::ReplayError;
use crate::ids;
use crate::output::{write_json_line, Out};
use crate::payload::Aggregate;
use crate::progress::Progress;
use crate::reader::{self, LogReader};
use crate::render::EventJson;
use crate::timefmt;

/// Arguments of `dump`. Filters of one kind are alternatives (OR); filters
/// of different kinds must all match (AND).
#[derive(Debug, Clone, Default, Args)]
#[command(
    after_help = "Times are Unix milliseconds, RFC 3339 (2024-05-01T12:00:00Z) or a day (2024-05-01).\n\nExamples:\n  oms-replay dump --stream quote-q1\n  oms-replay dump --correlation corr-42 --type QuoteAccepted --type OrderCaptured\n  oms-replay dump --aggregate handoff --since 2024-05-01 --until 2024-05-02\n  oms-replay dump --from 1000 --to 1999 > slice.jsonl"
)]
pub struct DumpArgs {
    /// Only this stream (repeatable).
    #[arg(long, value_name = "STREAM_ID")]
    pub stream: Vec<String>,
    /// Only this aggregate kind (repeatable).
    #[arg(long, value_enum)]
    pub aggregate: Vec<Aggregate>,
    /// Only this tenant (repeatable).
    #[arg(long)]
    pub tenant: Vec<String>,
    /// Only this correlation id (repeatable).
    #[arg(long)]
    pub correlation: Vec<String>,
    /// Only this event type (repeatable).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    pub event_type: Vec<String>,
    /// First position (inclusive).
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
    /// Last position (inclusive).
    #[arg(long, value_name = "POSITION")]
    pub to: Option<u64>,
    /// Recorded at or after this time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Recorded before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Stop after this many events (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}

/// A parsed filter over recorded events.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Streams (any of).
    pub streams: Vec<String>,
    /// Aggregates (any of).
    pub aggregates: Vec<Aggregate>,
    /// Tenants (any of).
    pub tenants: Vec<String>,
    /// Correlation ids (any of).
    pub correlations: Vec<String>,
    /// Event types (any of).
    pub event_types: Vec<String>,
    /// First position.
    pub from: u64,
    /// One past the last position.
    pub to: u64,
    /// Earliest recording time (ms, inclusive).
    pub since_ms: Option<i64>,
    /// Latest recording time (ms, exclusive).
    pub until_ms: Option<i64>,
    /// Most events to print.
    pub limit: Option<u64>,
}

fn any_or_all<T: PartialEq>(wanted: &[T], value: &T) -> bool {
    wanted.is_empty() || wanted.contains(value)
}

impl Filter {
    /// The filter `args` describe.
    pub fn from_args(args: &DumpArgs) -> Result<Self, ReplayError> {
        let to = match args.to {
            Some(to) => to
                .checked_add(1)
                .ok_or_else(|| ReplayError::Usage("--to is out of range".into()))?,
            None => u64::MAX,
        };
        let from = args.from.unwrap_or(0);
        if from >= to {
            return Err(ReplayError::Usage(match args.to {
                Some(last) => {
                    format!("--from {from} is after --to {last}: the range holds no position")
                }
                None => format!("--from {from} is past the last position a log can hold"),
            }));
        }
        for stream in &args.stream {
            ids::check_stream("--stream", stream)?;
        }
        for event_type in &args.event_type {
            ids::check_event_type("--type", event_type)?;
        }
        for correlation in &args.correlation {
            ids::check_correlation("--correlation", correlation)?;
        }
        for tenant in &args.tenant {
            domain::ids::validate_id(tenant).map_err(|e| {
                ReplayError::Usage(format!(
                    "--tenant {} is not a tenant id: {e}",
                    ids::shown(tenant)
                ))
            })?;
        }
        let since_ms = args.since.as_deref().map(timefmt::parse_time).transpose()?;
        let until_ms = args.until.as_deref().map(timefmt::parse_time).transpose()?;
        if let (Some(since), Some(until), Some(since_ms), Some(until_ms)) =
            (&args.since, &args.until, since_ms, until_ms)
        {
            if since_ms >= until_ms {
                return Err(ReplayError::Usage(format!(
                    "--since {since} is not before --until {until} (which is exclusive): \
                     the range holds no time"
                )));
            }
        }
        Ok(Self {
            streams: args.stream.clone(),
            aggregates: args.aggregate.clone(),
            tenants: args.tenant.clone(),
            correlations: args.correlation.clone(),
            event_types: args.event_type.clone(),
            from,
            to,
            since_ms,
            until_ms,
            limit: args.limit,
        })
    }

    /// True when `record` passes every filter.
    pub fn matches(&self, record: &RecordedEvent) -> bool {
        (self.from..self.to).contains(&record.position)
            && any_or_all(&self.streams, &record.stream_id)
            && (self.aggregates.is_empty()
                || Aggregate::of_stream(&record.stream_id)
                    .is_some_and(|a| self.aggregates.contains(&a)))
            && any_or_all(&self.tenants, &record.tenant_id)
            && any_or_all(&self.correlations, &record.correlation_id)
            && any_or_all(&self.event_types, &record.event_type)
            && self.since_ms.is_none_or(|t| record.recorded_at_ms >= t)
            && self.until_ms.is_none_or(|t| record.recorded_at_ms < t)
    }
}

/// What a dump did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpSummary {
    /// Records read.
    pub scanned: u64,
    /// Records printed.
    pub matched: u64,
}

/// Writes every record of `reader` that passes `filter` to `writer`, one
/// JSON object per line. With stream filters it reads only those streams
/// (through the stream index); otherwise it walks the position range.
pub fn dump(
    reader: &LogReader,
    filter: &Filter,
    writer: &mut dyn Write,
    progress: &Progress,
) -> Result<DumpSummary, ReplayError> {
    let head = reader.next_position()?;
    let to = filter.to.min(head);
    let mut summary = DumpSummary {
        scanned: 0,
        matched: 0,
    };
    let mut visit = |record: RecordedEvent| -> Result<bool, ReplayError> {
        summary.scanned += 1;
        if summary.scanned % 1024 == 0 {
            progress.inc(1024);
        }
        if !filter.matches(&record) {
            return Ok(true);
        }
        write_json_line(writer, &EventJson::of(&record))?;
        summary.matched += 1;
        Ok(filter.limit.is_none_or(|limit| summary.matched < limit))
    };
    if filter.streams.is_empty() {
        progress.set_total(to.saturating_sub(filter.from));
        reader.for_each_raw(filter.from, to, |(position, bytes)| {
            visit(reader::decode(position, &bytes)?)
        })?;
    } else {
        // Only the named streams, through their index, in position order.
        let mut positions = Vec::new();
        for stream in &filter.streams {
            positions.extend(reader.stream_positions(stream)?);
        }
        positions.retain(|p| (filter.from..to).contains(p));
        positions.sort_unstable();
        // A stream named twice is still dumped once.
        positions.dedup();
        progress.set_total(u64::try_from(positions.len()).unwrap_or(u64::MAX));
        for position in positions {
            let record = reader.get(position)?.ok_or(ReplayError::Damaged {
                position,
                problem: "the stream index points at a missing record".into(),
            })?;
            if !visit(record)? {
                break;
            }
        }
    }
    progress.finish();
    Ok(summary)
}

/// Runs `dump`.
pub fn run(args: &DumpArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    let filter = Filter::from_args(args)?;
    let reader = ctx.read_log()?;
    let progress = ctx.progress("dump", None);
    let summary = dump(&reader, &filter, out.writer(), &progress)?;
    ctx.note(format_args!(
        "dumped {} of {} events read",
        summary.matched, summary.scanned
    ));
    Ok(Outcome::Clean)
}
