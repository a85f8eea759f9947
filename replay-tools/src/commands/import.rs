//! `import`: reads an export file into an empty data directory,
//! re-verifying the whole chain as it goes (each record's recomputed hash
//! equals its recorded hash and links to the one before), rebuilding the
//! stream index, heads and meta from the records, then opening the result
//! as a log (recovery checks) before reporting success.
//!
//! The meta record is written last: an import that fails half-way leaves a
//! directory the log refuses to open, never a silently short log.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use base64::Engine as _;
use clap::Args;
use eventlog::{keyspace, Hash, RecordedEvent, FORMAT_VERSION, GENESIS_HASH};
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::datadir::{close_log, open_sled, DataDir};
use crate::error::ReplayError;
use crate::export_format::{EventLine, Header, IdempotencyLine, EXPORT_VERSION, FORMAT_NAME};
use crate::output::Out;
use crate::progress::Progress;

/// Arguments of `import`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "The target (--data-dir) must not exist or be empty.\n\nExamples:\n  oms-replay --data-dir ./restored import log.oms-export --side-effect-consumer handoff-dispatcher\n  gunzip -c log.oms-export.gz | oms-replay --data-dir ./restored import -"
)]
pub struct ImportArgs {
    /// The export file (`-` for standard input).
    pub file: PathBuf,
    /// A consumer that makes external calls (e.g. `handoff-dispatcher`):
    /// declared as such, with its recovery bound at the imported head, so
    /// its first run re-observes the imported history and calls no one.
    /// Repeatable.
    #[arg(long = "side-effect-consumer", value_name = "NAME")]
    pub side_effect_consumers: Vec<String>,
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Events imported.
    pub events: u64,
    /// Streams rebuilt.
    pub streams: u64,
    /// Idempotency records imported.
    pub idempotency_records: u64,
    /// Hash of the last event, hex.
    pub head_hash: String,
    /// Side-effect consumers set to re-observe the imported history.
    pub recovery_consumers: Vec<String>,
}

fn bad(line: u64, message: impl std::fmt::Display) -> ReplayError {
    ReplayError::Usage(format!("export file line {line}: {message}"))
}

fn damaged(position: u64, problem: impl Into<String>) -> ReplayError {
    ReplayError::Damaged {
        position,
        problem: format!("in the export file: {}", problem.into()),
    }
}

fn hex_hash(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

/// Fails unless `dir` is missing or an empty directory.
pub fn require_empty(dir: &Path) -> Result<(), ReplayError> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ReplayError::io(format!("reading {}", dir.display()), e)),
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(ReplayError::Usage(format!(
                "import needs an empty data directory; {} is not empty",
                dir.display()
            ))),
        },
    }
}

struct Lines<R> {
    reader: R,
    buf: String,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    /// The next line without its newline, or `None` at the end.
    fn next_line(&mut self) -> Result<Option<&str>, ReplayError> {
        self.buf.clear();
        let read = self
            .reader
            .read_line(&mut self.buf)
            .map_err(|e| ReplayError::io("reading the export file", e))?;
        self.number += 1;
        if read == 0 {
            return Ok(None);
        }
        Ok(Some(self.buf.trim_end_matches(['\n', '\r'])))
    }
}

/// One checked event, ready to store.
struct Checked {
    position: u64,
    bytes: Vec<u8>,
    /// Index of the stream in the order streams first appeared.
    stream: u32,
    /// The stream's id, on its first event only.
    new_stream: Option<String>,
    version: u64,
}

/// What the parsing thread hands to the writing one.
enum Parsed {
    Events(Vec<Checked>),
    Idempotency(Vec<(Vec<u8>, Vec<u8>)>),
}

/// Events per message between the two threads.
const CHUNK: usize = 1024;

/// Parses and checks the whole file after its header, in order: every
/// record's hash, its link to the previous one, dense positions,
/// consecutive stream versions, the readable fields, the head hash and the
/// counts. Sends checked events and idempotency records to `tx`.
fn parse_body<R: BufRead>(
    lines: &mut Lines<R>,
    header: &Header,
    header_head: Hash,
    tx: &SyncSender<Result<Parsed, ReplayError>>,
) -> Result<(), ReplayError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut streams: HashMap<String, (u32, u64)> = HashMap::new();
    let mut prev_hash = GENESIS_HASH;
    let mut chunk = Vec::with_capacity(CHUNK);
    for position in 0..header.events {
        let number = lines.number + 1;
        let text = lines.next_line()?.ok_or_else(|| {
            bad(
                number,
                format!(
                    "the file ends after {position} events; the header says {}",
                    header.events
                ),
            )
        })?;
        let line: EventLine<'_> =
            serde_json::from_str(text).map_err(|e| bad(number, format!("bad event line: {e}")))?;
        if line.kind != "event" {
            return Err(bad(
                number,
                format!("expected an event line, found {:?}", line.kind),
            ));
        }
        let bytes = b64
            .decode(line.record.as_bytes())
            .map_err(|e| bad(number, format!("record is not base64: {e}")))?;
        if !RecordedEvent::hash_is_valid(&bytes).unwrap_or(false) {
            return Err(damaged(
                position,
                "the record's hash does not match its bytes",
            ));
        }
        let record = RecordedEvent::decode(&bytes)
            .map_err(|e| damaged(position, format!("the record does not decode: {e}")))?;
        if record.position != position || line.position != position {
            return Err(damaged(
                position,
                format!(
                    "found position {} where {position} was expected",
                    record.position
                ),
            ));
        }
        if record.prev_hash != prev_hash {
            return Err(damaged(
                position,
                "the record does not chain to the record before it",
            ));
        }
        if hex_hash(&line.hash) != Some(record.hash)
            || hex_hash(&line.prev_hash) != Some(record.prev_hash)
            || line.stream_id != record.stream_id
            || line.stream_version != record.stream_version
            || line.event_type != record.event_type
            || line.tenant_id != record.tenant_id
            || line.correlation_id != record.correlation_id
            || line.recorded_at_ms != record.recorded_at_ms
        {
            return Err(damaged(
                position,
                "the readable fields disagree with the record bytes",
            ));
        }
        let next_index =
            u32::try_from(streams.len()).map_err(|_| bad(number, "too many streams"))?;
        let (stream, new_stream, previous) = match streams.get_mut(&record.stream_id) {
            Some((index, version)) => {
                let previous = *version;
                *version = record.stream_version;
                (*index, None, previous)
            }
            None => {
                streams.insert(
                    record.stream_id.clone(),
                    (next_index, record.stream_version),
                );
                (next_index, Some(record.stream_id.clone()), 0)
            }
        };
        if record.stream_version != previous + 1 {
            return Err(damaged(
                position,
                format!(
                    "stream {} jumps from version {previous} to {}",
                    record.stream_id, record.stream_version
                ),
            ));
        }
        prev_hash = record.hash;
        chunk.push(Checked {
            position,
            bytes,
            stream,
            new_stream,
            version: record.stream_version,
        });
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if tx.send(Ok(Parsed::Events(full))).is_err() {
                return Ok(());
            }
        }
    }
    if prev_hash != header_head {
        return Err(damaged(
            header.events.saturating_sub(1),
            "the last record's hash is not the header's head_hash",
        ));
    }
    if !chunk.is_empty() && tx.send(Ok(Parsed::Events(chunk))).is_err() {
        return Ok(());
    }
    let mut records = Vec::new();
    for _ in 0..header.idempotency_records {
        let number = lines.number + 1;
        let text = lines
            .next_line()?
            .ok_or_else(|| bad(number, "the file ends before its idempotency records"))?;
        let line: IdempotencyLine<'_> = serde_json::from_str(text)
            .map_err(|e| bad(number, format!("bad idempotency line: {e}")))?;
        let request_hash = hex_hash(&line.request_hash)
            .filter(|_| line.kind == "idempotency")
            .ok_or_else(|| bad(number, "malformed idempotency line"))?;
        if line.first_position > line.last_position || line.last_position >= header.events {
            return Err(bad(
                number,
                format!("idempotency record {} points outside the log", line.key),
            ));
        }
        let mut value = request_hash.to_vec();
        for n in [line.first_position, line.last_position, line.stream_version] {
            value.extend_from_slice(&keyspace::u64_value(n));
        }
        records.push((keyspace::idempotency_key(&line.key), value));
    }
    if let Some(text) = lines.next_line()? {
        if !text.trim().is_empty() {
            return Err(bad(lines.number, "unexpected line after the last record"));
        }
    }
    let _ = tx.send(Ok(Parsed::Idempotency(records)));
    Ok(())
}

/// Declares each of `names` a side-effect consumer of the log in `dir`
/// with its recovery bound at the head, so it replays without calling.
fn guard_side_effects(dir: &Path, names: &[String]) -> Result<(), ReplayError> {
    if names.is_empty() {
        return Ok(());
    }
    let log = DataDir::new(dir).open_log()?;
    let head = log.next_position();
    for name in names {
        let store = log.consumer(name)?;
        store.declare_side_effects()?;
        store.set_recovery_until(head)?;
    }
    close_log(log)
}

/// Imports the export read from `input` into the empty directory `dir`.
///
/// One thread parses and checks the file while this one writes: records in
/// position order as they come, then the stream index sorted by key, the
/// heads, the idempotency records and the meta record last. (sled inserts
/// keys in ascending order fastest, and plain inserts outrun batches; the
/// meta-last rule gives the all-or-nothing outcome.)
pub fn import(
    input: impl Read + Send,
    dir: &Path,
    progress: &Progress,
) -> Result<ImportSummary, ReplayError> {
    require_empty(dir)?;
    let mut lines = Lines {
        reader: BufReader::with_capacity(1 << 20, input),
        buf: String::new(),
        number: 0,
    };
    let header: Header = match lines.next_line()? {
        Some(text) => serde_json::from_str(text).map_err(|e| bad(1, format!("bad header: {e}")))?,
        None => return Err(bad(1, "the file is empty")),
    };
    if header.format != FORMAT_NAME {
        return Err(bad(
            1,
            format!("format is {:?}, not {FORMAT_NAME:?}", header.format),
        ));
    }
    if header.export_version != EXPORT_VERSION {
        return Err(bad(
            1,
            format!(
                "export version {} is not supported (this build reads {EXPORT_VERSION})",
                header.export_version
            ),
        ));
    }
    if header.record_format != FORMAT_VERSION {
        return Err(bad(
            1,
            format!(
                "record format {} is not supported (this build reads {FORMAT_VERSION})",
                header.record_format
            ),
        ));
    }
    let header_head =
        hex_hash(&header.head_hash).ok_or_else(|| bad(1, "head_hash is not 64 hex digits"))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| ReplayError::io(format!("creating {}", dir.display()), e))?;
    let db = open_sled(dir)?;
    let tree = db.open_tree(keyspace::LOG_TREE)?;
    progress.set_total(header.events);

    let (tx, rx) = sync_channel::<Result<Parsed, ReplayError>>(8);
    let header_ref = &header;
    let written = std::thread::scope(|scope| {
        let parser = scope.spawn(move || {
            if let Err(e) = parse_body(&mut lines, header_ref, header_head, &tx) {
                let _ = tx.send(Err(e));
            }
        });
        let written = write_log(&tree, &rx, progress);
        drop(rx);
        let _ = parser.join();
        written
    })?;
    if written.events != header.events {
        return Err(bad(0, "the file was not read to its end"));
    }
    // Meta last: only a complete import opens as a log.
    let mut meta = vec![FORMAT_VERSION];
    meta.extend_from_slice(&keyspace::u64_value(header.events));
    meta.extend_from_slice(&header_head);
    tree.insert(keyspace::META, meta)?;
    db.flush()?;
    drop(tree);
    drop(db);
    crate::datadir::wait_released(dir)?;
    progress.finish();
    // Open it as the server would: recovery checks the head, meta and heads.
    let log = DataDir::new(dir).open_log()?;
    close_log(log)?;
    Ok(ImportSummary {
        events: header.events,
        streams: written.streams,
        idempotency_records: header.idempotency_records,
        head_hash: hex::encode(header_head),
        recovery_consumers: Vec::new(),
    })
}

struct Written {
    events: u64,
    streams: u64,
}

/// Writes what the parser sends: records, then the sorted stream index,
/// heads and idempotency records.
fn write_log(
    tree: &sled::Tree,
    rx: &Receiver<Result<Parsed, ReplayError>>,
    progress: &Progress,
) -> Result<Written, ReplayError> {
    let mut names: Vec<String> = Vec::new();
    let mut index: Vec<(u32, u64, u64)> = Vec::new();
    let mut events = 0u64;
    let mut idempotency = None;
    for message in rx {
        match message? {
            Parsed::Events(chunk) => {
                for event in chunk {
                    tree.insert(keyspace::event_key(event.position), event.bytes)?;
                    if let Some(name) = event.new_stream {
                        names.push(name);
                    }
                    index.push((event.stream, event.version, event.position));
                    events += 1;
                }
                progress.set(events);
            }
            Parsed::Idempotency(records) => idempotency = Some(records),
        }
    }
    let Some(idempotency) = idempotency else {
        return Err(bad(0, "the file was not read to its end"));
    };
    // Streams ranked by their index key, so index keys go in ascending.
    let mut ranked: Vec<(Vec<u8>, u32)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            (
                keyspace::stream_prefix(name),
                u32::try_from(i).unwrap_or(u32::MAX),
            )
        })
        .collect();
    ranked.sort_unstable();
    let mut rank = vec![0u32; names.len()];
    for (r, (_, stream)) in ranked.iter().enumerate() {
        if let Some(slot) = rank.get_mut(stream_slot(*stream)) {
            *slot = u32::try_from(r).unwrap_or(u32::MAX);
        }
    }
    index.sort_unstable_by_key(|(stream, version, _)| {
        (
            rank.get(stream_slot(*stream)).copied().unwrap_or(0),
            *version,
        )
    });
    let mut heads: Vec<(u64, u64)> = vec![(0, 0); names.len()];
    for (stream, version, position) in index {
        let name = names.get(stream_slot(stream)).map_or("", String::as_str);
        tree.insert(
            keyspace::stream_index_key(name, version),
            &keyspace::u64_value(position),
        )?;
        if let Some(head) = heads.get_mut(stream_slot(stream)) {
            *head = (version, position);
        }
    }
    let mut by_head_key: Vec<(Vec<u8>, usize)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (keyspace::head_key(name), i))
        .collect();
    by_head_key.sort_unstable();
    for (key, i) in by_head_key {
        let (version, position) = heads.get(i).copied().unwrap_or((0, 0));
        tree.insert(key, &keyspace::head_value(version, position))?;
    }
    for (key, value) in idempotency {
        tree.insert(key, value)?;
    }
    Ok(Written {
        events,
        streams: u64::try_from(names.len()).unwrap_or(u64::MAX),
    })
}

fn stream_slot(stream: u32) -> usize {
    usize::try_from(stream).unwrap_or(usize::MAX)
}

/// Runs `import`.
pub fn run(args: &ImportArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    let progress = ctx.progress("import", None);
    let mut summary = if args.file.as_os_str() == "-" {
        import(std::io::stdin(), ctx.dir.path(), &progress)?
    } else {
        let file = File::open(&args.file)
            .map_err(|e| ReplayError::io(format!("opening {}", args.file.display()), e))?;
        import(file, ctx.dir.path(), &progress)?
    };
    crate::datadir::wait_released(ctx.dir.path())?;
    guard_side_effects(ctx.dir.path(), &args.side_effect_consumers)?;
    summary.recovery_consumers = args.side_effect_consumers.clone();
    if ctx.json {
        out.json(&serde_json::json!({"ok": true, "data_dir": ctx.dir.path(), "import": summary}))?;
    } else {
        out.line(format_args!(
            "imported {} events ({} streams, {} idempotency records) into {}; chain re-verified, head hash {}",
            summary.events,
            summary.streams,
            summary.idempotency_records,
            ctx.dir.path().display(),
            summary.head_hash
        ))?;
        for name in &summary.recovery_consumers {
            out.line(format_args!(
                "{name}: side-effect consumer, re-observes the imported history without external calls"
            ))?;
        }
    }
    Ok(Outcome::Clean)
}
