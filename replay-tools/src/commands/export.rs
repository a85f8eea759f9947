//! `export`: writes the portable export file (see
//! [`crate::export_format`]), checking every record's hash and chain link
//! on the way, so a damaged log is never exported as if it were sound.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::Args;
use eventlog::{RecordedEvent, FORMAT_VERSION, GENESIS_HASH};
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::error::ReplayError;
use crate::export_format::{
    line_bytes, EventLine, Header, IdempotencyLine, EXPORT_VERSION, FORMAT_NAME,
};
use crate::output::{write_error, write_json_line, Out};
use crate::progress::Progress;
use crate::reader::{self, LogReader};
use sha2::{Digest, Sha256};

/// Most characters of the export's name its partial file repeats.
const PARTIAL_NAME_CHARS: usize = 64;

/// Arguments of `export`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  oms-replay export --output log.oms-export\n  oms-replay export --output - | gzip > log.oms-export.gz"
)]
pub struct ExportArgs {
    /// The file to write (`-` for standard output).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Event lines.
    pub events: u64,
    /// Idempotency lines.
    pub idempotency_records: u64,
    /// Position of the last event.
    pub head_position: Option<u64>,
    /// Hash of the last event, hex.
    pub head_hash: String,
}

fn damaged(position: u64, problem: impl Into<String>) -> ReplayError {
    ReplayError::Damaged {
        position,
        problem: problem.into(),
    }
}

/// Writes the whole log of `reader` to `writer` in the export format.
pub fn export(
    reader: &LogReader,
    writer: &mut dyn Write,
    progress: &Progress,
) -> Result<ExportSummary, ReplayError> {
    let events = reader.next_position()?;
    let head_hash = match events.checked_sub(1) {
        Some(last) => reader.get(last)?.map_or(GENESIS_HASH, |r| r.hash),
        None => GENESIS_HASH,
    };
    // A first walk of the idempotency records counts and digests them for
    // the header; the second writes them (the log is closed: they cannot
    // change in between, and the second walk checks it).
    let mut idempotency_records = 0u64;
    let mut digest = Sha256::new();
    for_each_idempotency_line(reader, |line| {
        digest.update(line_bytes(line).map_err(|e| ReplayError::Usage(e.to_string()))?);
        idempotency_records += 1;
        Ok(())
    })?;
    let idempotency_sha256 = hex::encode(digest.finalize());
    let header = Header {
        format: FORMAT_NAME.to_owned(),
        export_version: EXPORT_VERSION,
        record_format: FORMAT_VERSION,
        events,
        head_position: events.checked_sub(1),
        head_hash: hex::encode(head_hash),
        idempotency_records,
        idempotency_sha256: Some(idempotency_sha256.clone()),
    };
    write_json_line(writer, &header)?;
    progress.set_total(events);
    let mut expected = 0u64;
    let mut prev_hash = GENESIS_HASH;
    let b64 = base64::engine::general_purpose::STANDARD;
    reader.for_each_raw(0, events, |(position, bytes)| {
        if position != expected {
            return Err(damaged(
                expected,
                format!("record missing (next record found at position {position})"),
            ));
        }
        if !RecordedEvent::hash_is_valid(&bytes).unwrap_or(false) {
            return Err(damaged(position, "record hash does not match its bytes"));
        }
        let record = reader::decode(position, &bytes)?;
        if record.position != position || record.prev_hash != prev_hash {
            return Err(damaged(
                position,
                "record does not chain to the record before it",
            ));
        }
        let line = EventLine {
            kind: Cow::Borrowed("event"),
            position,
            stream_id: Cow::Borrowed(&record.stream_id),
            stream_version: record.stream_version,
            event_type: Cow::Borrowed(&record.event_type),
            tenant_id: Cow::Borrowed(&record.tenant_id),
            correlation_id: Cow::Borrowed(&record.correlation_id),
            recorded_at_ms: record.recorded_at_ms,
            prev_hash: Cow::Owned(hex::encode(record.prev_hash)),
            hash: Cow::Owned(hex::encode(record.hash)),
            record: Cow::Owned(b64.encode(&bytes)),
        };
        write_json_line(writer, &line)?;
        prev_hash = record.hash;
        expected += 1;
        if expected % 4096 == 0 {
            progress.set(expected);
        }
        Ok(true)
    })?;
    if expected != events || prev_hash != head_hash {
        return Err(damaged(
            expected,
            "the log changed or ends early while exporting",
        ));
    }
    let mut written = 0u64;
    let mut digest = Sha256::new();
    for_each_idempotency_line(reader, |line| {
        digest.update(line_bytes(line).map_err(|e| ReplayError::Usage(e.to_string()))?);
        write_json_line(writer, line)?;
        written += 1;
        Ok(())
    })?;
    if written != idempotency_records || hex::encode(digest.finalize()) != idempotency_sha256 {
        return Err(damaged(0, "idempotency records changed while exporting"));
    }
    writer.flush().map_err(write_error)?;
    progress.finish();
    Ok(ExportSummary {
        events,
        idempotency_records,
        head_position: header.head_position,
        head_hash: header.head_hash,
    })
}

/// Calls `visit` with the line of every idempotency record, in key order.
fn for_each_idempotency_line(
    reader: &LogReader,
    mut visit: impl FnMut(&IdempotencyLine<'_>) -> Result<(), ReplayError>,
) -> Result<(), ReplayError> {
    for entry in reader.idempotency_records() {
        let (key, value) = entry?;
        let key =
            std::str::from_utf8(&key).map_err(|_| damaged(0, "an idempotency key is not UTF-8"))?;
        let record = eventlog::keyspace::parse_idempotency_value(&value)
            .ok_or_else(|| damaged(0, format!("idempotency record {key} is malformed")))?;
        visit(&IdempotencyLine {
            kind: Cow::Borrowed("idempotency"),
            key: Cow::Borrowed(key),
            request_hash: Cow::Owned(hex::encode(record.request_hash)),
            first_position: record.first_position,
            last_position: record.last_position,
            stream_version: record.stream_version,
        })?;
    }
    Ok(())
}

/// Runs `export`.
///
/// A log that ends before the head last acknowledged (sled's recovery cut
/// it at a damaged spot) is refused before anything is written: its export
/// would import as a sound log without the lost events. A file is written
/// under a fresh, randomly named file beside it and renamed over `FILE`
/// only once whole and synced, so a failed or killed export leaves an
/// earlier file as it was.
/// So is a directory an import did not finish writing (what it holds is a
/// prefix of another log, without its idempotency records), and a `FILE`
/// inside the data directory (it would replace the log's own files).
pub fn run(args: &ExportArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    refuse_output_inside(&args.output, ctx.dir.path())?;
    if args.output.is_dir() {
        return Err(ReplayError::Usage(format!(
            "-o {} is a directory: name the export file (inside it, say)",
            args.output.display()
        )));
    }
    let reader = LogReader::open(&ctx.dir)?;
    eventlog::check_restore_finished(reader.tree())?;
    let head = reader.next_position()?;
    eventlog::check_acknowledged(ctx.dir.path(), reader.tree(), head)?;
    if let Some(warning) = eventlog::acknowledged_head_warning(ctx.dir.path(), head) {
        crate::stderr_line!(
            "oms-replay: warning: {warning}; the export holds the log as it stands"
        );
    }
    let progress = ctx.progress("export", Some(head));
    let to_stdout = args.output.as_os_str() == "-";
    let summary = if to_stdout {
        export(&reader, out.writer(), &progress)?
    } else {
        export_to_file(&reader, &args.output, &progress)?
    };
    if ctx.json && !to_stdout {
        out.json(&serde_json::json!({"ok": true, "file": args.output, "export": summary}))?;
    } else if !to_stdout {
        out.line(format_args!(
            "exported {} events and {} idempotency records to {}; head {}:{}",
            summary.events,
            summary.idempotency_records,
            args.output.display(),
            summary
                .head_position
                .map_or("-".to_owned(), |p| p.to_string()),
            summary.head_hash
        ))?;
    } else {
        ctx.note(format_args!(
            "exported {} events and {} idempotency records",
            summary.events, summary.idempotency_records
        ));
    }
    Ok(Outcome::Clean)
}

/// Refuses an `output` file inside `data_dir` (compared by their
/// canonical paths, so `./data/../data/db` is caught too).
fn refuse_output_inside(output: &Path, data_dir: &Path) -> Result<(), ReplayError> {
    if output.as_os_str() == "-" {
        return Ok(());
    }
    let Ok(data_dir) = data_dir.canonicalize() else {
        return Ok(());
    };
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(parent) = parent.canonicalize() else {
        return Ok(());
    };
    if parent.starts_with(&data_dir) {
        return Err(ReplayError::Usage(format!(
            "{} is inside the data directory {}: an export there could replace the log's own files; \
             write it elsewhere",
            output.display(),
            data_dir.display()
        )));
    }
    Ok(())
}

/// Exports to `output` through a fresh file beside it, renamed over
/// `output` once written and synced; that file is removed on failure. Its
/// name is random and it is created exclusively (`O_EXCL`, mode 0600), so
/// a link planted under a predictable name is never written through, and
/// two exports to one `output` never share it. An `output` that exists and
/// is not a regular file (a pipe, a device) is written directly.
fn export_to_file(
    reader: &LogReader,
    output: &Path,
    progress: &Progress,
) -> Result<ExportSummary, ReplayError> {
    if output.metadata().is_ok_and(|m| !m.is_file()) {
        let file = OpenOptions::new()
            .write(true)
            .open(output)
            .map_err(|e| ReplayError::io(format!("opening {}", output.display()), e))?;
        return export_to(reader, &file, progress);
    }
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The partial file is named after the export, cut short: a name the
    // filesystem takes must still leave room for the dot, the random part
    // and the suffix.
    let name = output.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(
        ".{}.",
        name.chars().take(PARTIAL_NAME_CHARS).collect::<String>()
    );
    let partial = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(|e| ReplayError::io(format!("creating a file in {}", dir.display()), e))?;
    let interrupted = crate::interrupt::RemovedOnInterrupt::new(partial.path());
    let summary = export_to(reader, partial.as_file(), progress)?;
    let persisted = partial.persist(output);
    drop(interrupted);
    persisted.map_err(|e| ReplayError::io(format!("renaming to {}", output.display()), e.error))?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| ReplayError::io(format!("syncing {}", dir.display()), e))?;
    Ok(summary)
}

/// Exports to `file`, then syncs it if it is a regular file.
fn export_to(
    reader: &LogReader,
    file: &File,
    progress: &Progress,
) -> Result<ExportSummary, ReplayError> {
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let summary = export(reader, &mut writer, progress)?;
    writer
        .flush()
        .map_err(|e| ReplayError::io("writing the export", e))?;
    drop(writer);
    // A pipe or a device cannot be synced; a regular file must be.
    if file.metadata().is_ok_and(|m| m.is_file()) {
        file.sync_all()
            .map_err(|e| ReplayError::io("syncing the export", e))?;
    }
    Ok(summary)
}
