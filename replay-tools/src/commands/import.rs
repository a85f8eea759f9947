//! `import`: reads an export file into an empty data directory through
//! [`eventlog::restore`], which re-verifies the whole chain as it goes
//! (each record's recomputed hash equals its recorded hash and links to the
//! one before, positions are dense, stream versions consecutive) and
//! rebuilds the stream index, heads and meta from the records; this module
//! reads the file and checks its readable fields against the record bytes.
//! The result is then opened as a log (recovery checks) before success is
//! reported.
//!
//! The meta record is written last: an import that fails half-way leaves a
//! directory the log refuses to open, never a silently short log.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use base64::Engine as _;
use clap::Args;
use eventlog::keyspace::IdempotencyValue;
use eventlog::restore::{self, ChainCheck, CheckedRecord, RestoreError, Restorer};
use eventlog::{Hash, LogError, FORMAT_VERSION};
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::datadir::{close_log, DataDir, CACHE_BYTES};
use crate::error::ReplayError;
use sha2::{Digest, Sha256};

use crate::export_format::{
    EventLine, Header, IdempotencyLine, EXPORT_VERSION, FORMAT_NAME, MAX_LINE_BYTES,
    OLDEST_EXPORT_VERSION,
};
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
    /// A consumer that makes external calls (`handoff-dispatcher`):
    /// declared as such, with its recovery bound at the imported head, so
    /// its first run re-observes the imported history and calls no one.
    /// Repeatable; a name that is not one of the platform's side-effect
    /// consumers is refused before anything is written.
    #[arg(long = "side-effect-consumer", value_name = "NAME")]
    pub side_effect_consumers: Vec<String>,
    /// Longest sled's final flush may take, in seconds. sled 0.34 can stall
    /// there for good (about one import of a million events in six); past
    /// this the import removes what it wrote and starts again, up to
    /// three attempts in all (a file only: standard input cannot be read
    /// twice). 0 counts every flush as stalled.
    #[arg(long, value_name = "SECONDS", default_value_t = FLUSH_STALL_SECS)]
    pub flush_stall_limit: u64,
}

/// The default of `--flush-stall-limit`: a flush writes only what sled has
/// not written yet, so seconds on a working disk.
pub const FLUSH_STALL_SECS: u64 = 120;

/// Attempts one `import` of a file makes in all when sled's flush stalls.
pub const MAX_ATTEMPTS: u32 = 3;

/// The environment variable that carries the attempt number into the
/// process an import restarts as.
const ATTEMPT_VAR: &str = "OMS_REPLAY_IMPORT_ATTEMPT";

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

/// What a refused restore means for an import.
fn restore_error(error: RestoreError) -> ReplayError {
    match error {
        RestoreError::NotEmpty(dir) => ReplayError::Usage(format!(
            "import needs an empty data directory; {dir} is not empty, and nothing was \
             written to it: import into a new directory. Remove {dir} first only if \
             `oms-replay --data-dir {dir} verify` reports a restore that did not finish (an \
             import that was killed) or an empty log: a directory that holds a log may be \
             the only copy of it",
            dir = dir.display()
        )),
        RestoreError::Refused { position, problem } => damaged(position, problem.to_string()),
        e @ RestoreError::BadIdempotencyRecord { .. } => {
            ReplayError::Usage(format!("export file: {e}"))
        }
        RestoreError::Log(e) => e.into(),
        other => ReplayError::Usage(format!("export file: {other}")),
    }
}

fn hex_hash(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    /// The next line without its newline, or `None` at the end; a line
    /// longer than [`MAX_LINE_BYTES`] is refused once that much of it is
    /// read, never held whole.
    fn next_line(&mut self) -> Result<Option<&str>, ReplayError> {
        self.buf.clear();
        self.number += 1;
        let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX);
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| ReplayError::io("reading the export file", e))?;
        if read == 0 {
            return Ok(None);
        }
        if self.buf.len() >= MAX_LINE_BYTES && self.buf.last() != Some(&b'\n') {
            return Err(bad(
                self.number,
                format!(
                    "the line is longer than {MAX_LINE_BYTES} bytes, more than any \
                     line of an export (is this an export file?)"
                ),
            ));
        }
        let text = std::str::from_utf8(&self.buf)
            .map_err(|_| bad(self.number, "the line is not UTF-8 text"))?;
        Ok(Some(text.trim_end_matches(['\n', '\r'])))
    }
}

/// What the parsing thread hands to the writing one, in file order.
enum Parsed {
    Events(Vec<CheckedRecord>),
    Idempotency(Vec<(String, IdempotencyValue)>),
    /// The file was read to its end and checked.
    End,
}

/// The stream (as the chain check numbers it, see
/// [`CheckedRecord::stream_index`]) and stream version of every event read
/// so far, by position, so an idempotency record can be checked against
/// the events it names.
#[derive(Default)]
struct StreamsByPosition {
    at: Vec<(u32, u64)>,
}

impl StreamsByPosition {
    fn push(&mut self, stream: u32, version: u64) {
        self.at.push((stream, version));
    }

    /// Whether positions `first..=last` are one run of one stream ending at
    /// `version` (an append's events are consecutive in the log and in
    /// their stream, whose versions the chain check keeps consecutive).
    fn one_append(&self, first: u64, last: u64, version: u64) -> bool {
        let at = |p: u64| usize::try_from(p).ok().and_then(|p| self.at.get(p));
        match (at(first), at(last)) {
            (Some((a, first_version)), Some((b, last_version))) => {
                a == b
                    && *last_version == version
                    && last_version.checked_sub(*first_version) == Some(last - first)
            }
            _ => false,
        }
    }
}

/// Events (or idempotency records) per message between the two threads.
const CHUNK: usize = 1024;

/// Parses and checks the whole file after its header, in order: every
/// record through [`ChainCheck`] (hash, chain link, dense positions,
/// consecutive stream versions), the readable fields against the record,
/// the head hash and the counts. Sends checked records and idempotency
/// records to `tx`.
fn parse_body<R: BufRead>(
    lines: &mut Lines<R>,
    header: &Header,
    header_head: Hash,
    tx: &SyncSender<Result<Parsed, ReplayError>>,
) -> Result<(), ReplayError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut check = ChainCheck::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut streams = StreamsByPosition::default();
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
        let line: EventLine<'_> = serde_json::from_str(text).map_err(|e| {
            if serde_json::from_str::<IdempotencyLine<'_>>(text).is_ok() {
                bad(
                    number,
                    format!(
                        "an idempotency record after {position} events; the header says {}",
                        header.events
                    ),
                )
            } else {
                bad(number, format!("bad event line: {e}"))
            }
        })?;
        if line.kind != "event" {
            return Err(bad(
                number,
                format!("expected an event line, found {:?}", line.kind),
            ));
        }
        let bytes = b64
            .decode(line.record.as_bytes())
            .map_err(|e| bad(number, format!("record is not base64: {e}")))?;
        let checked = check.check(bytes).map_err(restore_error)?;
        let record = &checked.event;
        if line.position != record.position
            || hex_hash(&line.hash) != Some(record.hash)
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
        streams.push(checked.record.stream_index(), record.stream_version);
        chunk.push(checked.record);
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if tx.send(Ok(Parsed::Events(full))).is_err() {
                return Ok(());
            }
        }
    }
    if check.head_hash() != header_head {
        return Err(damaged(
            header.events.saturating_sub(1),
            "the last record's hash is not the header's head_hash",
        ));
    }
    if !chunk.is_empty() && tx.send(Ok(Parsed::Events(chunk))).is_err() {
        return Ok(());
    }
    let mut records = Vec::with_capacity(CHUNK);
    let mut digest = Sha256::new();
    let mut previous_key: Option<String> = None;
    for _ in 0..header.idempotency_records {
        let number = lines.number + 1;
        let text = lines
            .next_line()?
            .ok_or_else(|| bad(number, "the file ends before its idempotency records"))?;
        digest.update(text.as_bytes());
        digest.update(b"\n");
        let line: IdempotencyLine<'_> = serde_json::from_str(text)
            .map_err(|e| bad(number, format!("bad idempotency line: {e}")))?;
        let request_hash = hex_hash(&line.request_hash)
            .filter(|_| line.kind == "idempotency")
            .ok_or_else(|| bad(number, "malformed idempotency line"))?;
        let value = IdempotencyValue {
            request_hash,
            first_position: line.first_position,
            last_position: line.last_position,
            stream_version: line.stream_version,
        };
        if !value.is_well_formed() || value.last_position >= header.events {
            return Err(bad(
                number,
                format!("idempotency record {} points outside the log", line.key),
            ));
        }
        // A command that changed nothing recorded its id alone (ADR 0051):
        // no events to check it against.
        if value.records_events()
            && !streams.one_append(line.first_position, line.last_position, line.stream_version)
        {
            return Err(bad(
                number,
                format!(
                    "idempotency record {} does not name one append of one stream \
                     (positions {}..={} at stream version {})",
                    line.key, line.first_position, line.last_position, line.stream_version
                ),
            ));
        }
        // An export lists each key once, in key order: the same key on the
        // line before is a line given twice.
        if previous_key.as_deref() == Some(line.key.as_ref()) {
            return Err(bad(
                number,
                format!("idempotency record {} is given twice", line.key),
            ));
        }
        previous_key = Some(line.key.clone().into_owned());
        records.push((line.key.into_owned(), value));
        if records.len() == CHUNK {
            let full = std::mem::replace(&mut records, Vec::with_capacity(CHUNK));
            if tx.send(Ok(Parsed::Idempotency(full))).is_err() {
                return Ok(());
            }
        }
    }
    if let Some(expected) = header.idempotency_sha256.as_deref().and_then(hex_hash) {
        let found: Hash = digest.finalize().into();
        if found != expected {
            return Err(bad(
                lines.number,
                "the idempotency records are not those the header's idempotency_sha256 names \
                 (changed, added or removed)",
            ));
        }
    }
    if !records.is_empty() && tx.send(Ok(Parsed::Idempotency(records))).is_err() {
        return Ok(());
    }
    // Only blank lines may follow the last record, however many.
    while let Some(text) = lines.next_line()? {
        if !text.trim().is_empty() {
            return Err(bad(lines.number, "unexpected line after the last record"));
        }
    }
    let _ = tx.send(Ok(Parsed::End));
    Ok(())
}

/// Imports the export read from `input` into the empty directory `dir`,
/// with each of `guarded` declared a side-effect consumer whose recovery
/// bound is the imported head (written before the import is marked
/// finished, see [`Restorer::side_effect_consumers`]).
/// A refused file leaves `dir` as it was (missing, or empty); a sled
/// flush stall leaves what was written for `run` to clear.
///
/// One thread parses the file and checks every record ([`ChainCheck`])
/// while this one writes them through a [`Restorer`]: records in position
/// order as they come, then the idempotency records as they come, then
/// (in [`Restorer::finish`]) the stream index sorted by key and the meta
/// record last, and the acknowledged head.
pub fn import(
    input: impl Read + Send,
    dir: &Path,
    guarded: &[String],
    flush_stall_limit: std::time::Duration,
    progress: &Progress,
) -> Result<ImportSummary, ReplayError> {
    if eventlog::storage::is_held(dir)? {
        return Err(ReplayError::Locked(dir.to_path_buf()));
    }
    restore::require_empty(dir).map_err(restore_error)?;
    let mut lines = Lines {
        reader: BufReader::with_capacity(1 << 20, input),
        buf: Vec::new(),
        number: 0,
    };
    // A compressed export is the likeliest file that is not text.
    if lines
        .reader
        .fill_buf()
        .is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]))
    {
        return Err(bad(
            1,
            "the file is gzip-compressed: decompress it on the way in \
             (gunzip -c FILE | oms-replay import -)",
        ));
    }
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
    if !(OLDEST_EXPORT_VERSION..=EXPORT_VERSION).contains(&header.export_version) {
        return Err(bad(
            1,
            format!(
                "export version {} is not supported (this build reads \
                 {OLDEST_EXPORT_VERSION} to {EXPORT_VERSION})",
                header.export_version
            ),
        ));
    }
    // Version 2 covers the idempotency records with a digest.
    if header.export_version >= 2
        && header
            .idempotency_sha256
            .as_deref()
            .and_then(hex_hash)
            .is_none()
    {
        return Err(bad(1, "idempotency_sha256 is missing or not 64 hex digits"));
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
    if header.head_position != header.events.checked_sub(1) {
        return Err(bad(
            1,
            format!(
                "head_position {} is not the last of {} events",
                header
                    .head_position
                    .map_or_else(|| "null".to_owned(), |p| p.to_string()),
                header.events
            ),
        ));
    }
    let created_parents = missing_parents(dir);
    let mut claim = None;
    let restored = match restore_body(
        &mut lines,
        &header,
        header_head,
        dir,
        guarded,
        flush_stall_limit,
        progress,
        &mut claim,
    ) {
        Ok(restored) => restored,
        // A stall leaves sled's threads writing: `run` starts a new
        // process, which clears the directory.
        Err(stall @ ReplayError::Log(LogError::FlushStalled { .. })) => return Err(stall),
        Err(refused) => {
            // Only a restore that claimed the directory wrote into it; one
            // refused before (another import, or a server, got there
            // first) leaves it to its owner.
            if let Some(claim) = claim {
                remove_unfinished(&claim);
            }
            remove_empty(&created_parents);
            return Err(refused);
        }
    };
    crate::datadir::wait_released(dir)?;
    progress.finish();
    // Open it as the server would: recovery checks the head, meta and heads.
    let log = DataDir::new(dir).open_log()?;
    close_log(log)?;
    Ok(ImportSummary {
        events: restored.events,
        streams: restored.streams,
        idempotency_records: restored.idempotency_records,
        head_hash: hex::encode(restored.head_hash),
        recovery_consumers: guarded.to_vec(),
    })
}

/// Writes the file's body (after its header) into a new log in `dir`
/// and finishes it: everything an import writes. The restorer, and with
/// it sled, is dropped when this returns, whatever the outcome; `claim`
/// is set once the restore holds the directory (see
/// [`Restorer::claim`]).
#[allow(clippy::too_many_arguments)]
fn restore_body<R: BufRead + Send>(
    lines: &mut Lines<R>,
    header: &Header,
    header_head: Hash,
    dir: &Path,
    guarded: &[String],
    flush_stall_limit: std::time::Duration,
    progress: &Progress,
    claim: &mut Option<restore::RestoreClaim>,
) -> Result<restore::Restored, ReplayError> {
    let mut restorer = Restorer::create(dir, CACHE_BYTES)
        .map_err(restore_error)?
        .flush_stall_limit(flush_stall_limit)
        .side_effect_consumers(guarded);
    *claim = Some(restorer.claim());
    progress.set_total(header.events);

    let (tx, rx) = sync_channel::<Result<Parsed, ReplayError>>(8);
    std::thread::scope(|scope| {
        let parser = scope.spawn(move || {
            if let Err(e) = parse_body(lines, header, header_head, &tx) {
                let _ = tx.send(Err(e));
            }
        });
        let written = write_log(&mut restorer, &rx, progress);
        drop(rx);
        let _ = parser.join();
        written
    })?;
    if restorer.next_position() != header.events {
        return Err(bad(0, "the file was not read to its end"));
    }
    restorer.finish().map_err(restore_error)
}

/// Removes what a refused import wrote ([`restore::RestoreClaim::remove_written`]:
/// the restore's own files, and the directory if it created it), once
/// sled has let go of it. A directory that cannot be cleaned keeps its
/// marker (it opens as damage, never as a log) and the operator is told.
fn remove_unfinished(claim: &restore::RestoreClaim) {
    let dir = claim.dir();
    if !dir.exists() {
        return;
    }
    let released = if dir.join("db").exists() {
        crate::datadir::wait_released(dir)
    } else {
        Ok(())
    };
    let removed = released.and_then(|()| {
        claim
            .remove_written()
            .map_err(|e| ReplayError::io(format!("removing the import from {}", dir.display()), e))
    });
    if let Err(e) = removed {
        crate::stderr_line!(
            "import: could not remove the unfinished import from {}: {e}; remove it before importing again",
            dir.display()
        );
    }
}

/// The parents of `dir` that do not exist yet (the import creates them),
/// nearest first.
fn missing_parents(dir: &Path) -> Vec<std::path::PathBuf> {
    dir.ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .take_while(|p| !p.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// Removes each of `dirs`, nearest first, while it is empty: the parents a
/// refused import created go, anything someone put in them since stays.
fn remove_empty(dirs: &[std::path::PathBuf]) {
    for dir in dirs {
        if std::fs::remove_dir(dir).is_err() {
            return;
        }
    }
}

/// This process's attempt at an import: 1, or what the process that
/// restarted it set.
fn attempt() -> u32 {
    std::env::var(ATTEMPT_VAR)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Replaces this process with a new run of the same command line as
/// attempt `attempt`: the stalled sled threads, their memory and their
/// lock on the directory go with the old process image. Returns only when
/// the new image could not be started.
fn restart(attempt: u32) -> ReplayError {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return ReplayError::io("finding the oms-replay binary to start again", e),
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(ATTEMPT_VAR, attempt.to_string())
        .exec();
    ReplayError::io("starting the import again", error)
}

/// Writes what the parser sends through `restorer`, as it comes: records,
/// then idempotency records, until the parser says the file is done.
fn write_log(
    restorer: &mut Restorer,
    rx: &Receiver<Result<Parsed, ReplayError>>,
    progress: &Progress,
) -> Result<(), ReplayError> {
    let mut complete = false;
    for message in rx {
        match message? {
            Parsed::Events(chunk) => {
                for record in chunk {
                    restorer.write(record).map_err(restore_error)?;
                }
                progress.set(restorer.next_position());
            }
            Parsed::Idempotency(records) => {
                for (key, value) in records {
                    restorer
                        .add_idempotency(&key, value)
                        .map_err(restore_error)?;
                }
            }
            Parsed::End => complete = true,
        }
    }
    if complete {
        Ok(())
    } else {
        Err(bad(0, "the file was not read to its end"))
    }
}

/// Refuses a name that is not one of the platform's side-effect consumers
/// ([`domain::consumers::SIDE_EFFECT_CONSUMERS`]): guarding a mistyped name
/// would leave the real consumer to send the imported history again.
fn check_side_effect_consumers(names: &[String]) -> Result<(), ReplayError> {
    let known = domain::consumers::SIDE_EFFECT_CONSUMERS;
    match names.iter().find(|name| !known.contains(&name.as_str())) {
        Some(unknown) => Err(ReplayError::Usage(format!(
            "--side-effect-consumer {} is not a consumer that makes external calls; \
             those are: {}",
            crate::ids::shown(unknown),
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Opens the export file at `path`: a path that names nothing, or names a
/// directory, is bad input (exit 2), not an I/O failure.
fn open_export(path: &Path) -> Result<File, ReplayError> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReplayError::Usage(format!(
            "{shown}: no such file (give an export file, or - for standard input)"
        )),
        _ => ReplayError::io(format!("opening {shown}"), e),
    })?;
    let is_dir = file
        .metadata()
        .map_err(|e| ReplayError::io(format!("reading {shown}"), e))?
        .is_dir();
    if is_dir {
        return Err(ReplayError::Usage(format!(
            "{shown} is a directory, not an export file"
        )));
    }
    Ok(file)
}

/// Runs `import`.
pub fn run(args: &ImportArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    check_side_effect_consumers(&args.side_effect_consumers)?;
    let progress = ctx.progress("import", None);
    let limit = std::time::Duration::from_secs(args.flush_stall_limit);
    // A name given twice is one consumer.
    let mut guarded = args.side_effect_consumers.clone();
    guarded.sort();
    guarded.dedup();
    let guarded = &guarded;
    let from_stdin = args.file.as_os_str() == "-";
    let imported = if from_stdin {
        import(std::io::stdin(), ctx.dir.path(), guarded, limit, &progress)
    } else {
        import(
            open_export(&args.file)?,
            ctx.dir.path(),
            guarded,
            limit,
            &progress,
        )
    };
    let summary = match imported {
        Err(ReplayError::Log(stall @ LogError::FlushStalled { .. })) => {
            let attempt = attempt();
            if from_stdin || attempt >= MAX_ATTEMPTS {
                return Err(ReplayError::Log(stall));
            }
            progress.finish();
            restore::remove_restore_files(ctx.dir.path()).map_err(|e| {
                ReplayError::io(
                    format!("removing the import from {}", ctx.dir.path().display()),
                    e,
                )
            })?;
            crate::stderr_line!(
                "import: sled did not finish writing within {} s (a known sled 0.34 stall); \
                 removed what attempt {attempt} of {MAX_ATTEMPTS} wrote; starting again",
                args.flush_stall_limit
            );
            return Err(restart(attempt + 1));
        }
        other => other?,
    };
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
