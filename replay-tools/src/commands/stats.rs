//! `stats`: events per type, per tenant and per day; streams per
//! aggregate; idempotency records; bytes of records and on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::Args;
use domain::ids::StreamKind;
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::error::ReplayError;
use crate::output::Out;
use crate::progress::Progress;
use crate::reader::{self, LogReader};
use crate::timefmt;

/// Arguments of `stats`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  oms-replay stats\n  oms-replay stats --json | jq .per_tenant")]
pub struct StatsArgs {}

/// Counts over the whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Events in the log.
    pub events: u64,
    /// Events per event type.
    pub per_type: BTreeMap<String, u64>,
    /// Events per tenant.
    pub per_tenant: BTreeMap<String, u64>,
    /// Events per UTC day of recording.
    pub per_day: BTreeMap<String, u64>,
    /// Streams.
    pub streams: u64,
    /// Streams per aggregate (stream prefix).
    pub streams_per_aggregate: BTreeMap<String, u64>,
    /// Idempotency records.
    pub idempotency_records: u64,
    /// Bytes of stored records (format byte, body and hash).
    pub record_bytes: u64,
    /// Bytes of payloads.
    pub payload_bytes: u64,
    /// Bytes of the data directory on disk.
    pub disk_bytes: u64,
    /// Consumer state stores.
    pub consumers: u64,
}

/// Walks the log once and counts.
pub fn stats(reader: &LogReader, dir: &Path, progress: &Progress) -> Result<Stats, ReplayError> {
    let head = reader.next_position()?;
    progress.set_total(head);
    let mut stats = Stats::default();
    let mut streams: BTreeSet<String> = BTreeSet::new();
    for raw in reader.raw_records(0, head) {
        let (position, bytes) = raw?;
        let record = reader::decode(position, &bytes)?;
        stats.events += 1;
        if stats.events % 1024 == 0 {
            progress.set(stats.events);
        }
        stats.record_bytes += u64::try_from(bytes.len()).unwrap_or(0);
        stats.payload_bytes += u64::try_from(record.payload.len()).unwrap_or(0);
        *stats.per_type.entry(record.event_type).or_default() += 1;
        *stats.per_tenant.entry(record.tenant_id).or_default() += 1;
        *stats
            .per_day
            .entry(timefmt::day_of_ms(record.recorded_at_ms))
            .or_default() += 1;
        if record.stream_version == 1 {
            streams.insert(record.stream_id);
        }
    }
    progress.finish();
    stats.streams = u64::try_from(streams.len()).unwrap_or(u64::MAX);
    for stream in &streams {
        // A stream of no known aggregate counts under its first dash-part.
        let aggregate = StreamKind::split(stream).map_or_else(
            |_| stream.split_once('-').map_or(stream.as_str(), |(a, _)| a),
            |(kind, _)| kind.as_str(),
        );
        *stats
            .streams_per_aggregate
            .entry(aggregate.to_owned())
            .or_default() += 1;
    }
    stats.idempotency_records = count_or_first_error(reader.idempotency_records())?;
    stats.consumers = u64::try_from(
        reader
            .db()
            .tree_names()
            .iter()
            .filter(|n| n.starts_with(b"consumer/"))
            .count(),
    )
    .unwrap_or(u64::MAX);
    stats.disk_bytes = disk_usage(dir);
    Ok(stats)
}

/// How many items `items` yields, or its first error: a scan over a
/// damaged page repeats its error for ever, so a plain count never ends.
fn count_or_first_error<T, E>(items: impl Iterator<Item = Result<T, E>>) -> Result<u64, E> {
    let mut n = 0u64;
    for item in items {
        item?;
        n += 1;
    }
    Ok(n)
}

/// Total size of the files under `dir`.
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => disk_usage(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn table(out: &mut Out, title: &str, rows: &BTreeMap<String, u64>) -> Result<(), ReplayError> {
    out.line(format_args!("{title}:"))?;
    let width = rows.keys().map(String::len).max().unwrap_or(0);
    for (key, count) in rows {
        out.line(format_args!("  {key:<width$}  {count:>10}"))?;
    }
    Ok(())
}

/// Runs `stats`.
pub fn run(_args: &StatsArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    let reader = ctx.read_log()?;
    let progress = ctx.progress("stats", Some(reader.next_position()?));
    let stats = stats(&reader, ctx.dir.path(), &progress)?;
    if ctx.json {
        out.report(&stats)?;
        return Ok(Outcome::Clean);
    }
    out.line(format_args!(
        "events: {}\nstreams: {}\nidempotency records: {}\nconsumers: {}\nrecord bytes: {} (payloads {})\nbytes on disk: {}",
        stats.events,
        stats.streams,
        stats.idempotency_records,
        stats.consumers,
        stats.record_bytes,
        stats.payload_bytes,
        stats.disk_bytes
    ))?;
    table(out, "streams per aggregate", &stats.streams_per_aggregate)?;
    table(out, "events per type", &stats.per_type)?;
    table(out, "events per tenant", &stats.per_tenant)?;
    table(out, "events per day", &stats.per_day)?;
    Ok(Outcome::Clean)
}

#[cfg(test)]
mod tests {
    use super::count_or_first_error;

    /// sled's scan over a damaged page yields the same error for ever: the
    /// count ends at it.
    #[test]
    fn a_count_ends_at_an_error_that_repeats_for_ever() {
        let items = [Ok(1), Ok(2)]
            .into_iter()
            .chain(std::iter::repeat_with(|| Err("damaged")));
        assert_eq!(count_or_first_error(items), Err("damaged"));
        assert_eq!(
            count_or_first_error([Ok::<u8, ()>(1), Ok(2)].into_iter()),
            Ok(2)
        );
    }
}
