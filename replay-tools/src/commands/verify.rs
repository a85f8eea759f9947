//! `verify`: walks the whole log (hashes, chain, dense positions, stream
//! versions, index, heads, meta) without recovery, names the first bad
//! position, prints a digest, and proves the log still extends an earlier
//! digest.

use std::fmt;
use std::str::FromStr;

use clap::Args;
use eventlog::{verify, Hash, VerifyReport};
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::datadir::DataDir;
use crate::error::ReplayError;
use crate::output::{unless_reader_left, Out};
use crate::progress::Progress;
use crate::reader::LogReader;

/// Arguments of `verify`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  oms-replay verify\n  oms-replay verify --digest > digest.txt\n  oms-replay verify --against \"$(cat digest.txt)\""
)]
pub struct VerifyArgs {
    /// Print only the digest `HEAD_POSITION:HEAD_HASH` (for an auditor to store elsewhere).
    #[arg(long)]
    pub digest: bool,
    /// Prove the log still extends an earlier digest: the same record at that position with that hash.
    #[arg(long, value_name = "POSITION:HASH")]
    pub against: Option<Digest>,
}

/// A head digest: the position of a record and its hash. Because every
/// hash chains over all records before it, a log whose record at
/// `position` has `hash` (and whose chain verifies) extends, unchanged, the
/// log the digest was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    /// Position of the record.
    pub position: u64,
    /// Its hash.
    pub hash: Hash,
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.position, hex::encode(self.hash))
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (position, hash) = text
            .trim()
            .split_once(':')
            .ok_or("a digest is POSITION:HASH (64 hex digits)")?;
        let position = position.parse().map_err(|e: std::num::ParseIntError| {
            if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
                format!("digest position {position:?} is past any position a log can hold")
            } else {
                format!("digest position {position:?} is not a number")
            }
        })?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hash, &mut bytes)
            .map_err(|_| "digest hash must be 64 hex digits".to_owned())?;
        Ok(Self {
            position,
            hash: bytes,
        })
    }
}

/// What `--against` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AgainstResult {
    /// The log still holds the digest's record: it extends the earlier head.
    Extends {
        /// Records appended since the digest.
        appended_since: u64,
    },
    /// The log ends before the digest's position: it was truncated.
    Truncated {
        /// Events the log holds now.
        events: u64,
    },
    /// The record at the digest's position has another hash: the history up
    /// to there was rewritten.
    Rewritten {
        /// The hash found there, hex.
        found_hash: String,
    },
}

/// A verification that walked the whole log.
#[derive(Debug, Clone)]
pub struct Verified {
    /// What was walked.
    pub report: VerifyReport,
    /// The comparison with an earlier digest, when one was given.
    pub against: Option<AgainstResult>,
}

impl Verified {
    /// The head digest, if the log is not empty.
    pub fn digest(&self) -> Option<Digest> {
        self.report.head_position().map(|position| Digest {
            position,
            hash: self.report.head_hash,
        })
    }
}

/// Verifies the log of `dir` (raw, no recovery) and compares it with
/// `against`. A damaged log is [`ReplayError::Damaged`] naming the first bad
/// position (also when acknowledged events are missing, see
/// [`eventlog::check_acknowledged`]), or [`ReplayError::DamagedFiles`] when
/// no position can be named (a damaged sled `conf`, a log sled refuses to
/// recover, an unreadable page outside the records).
pub fn verify_log(
    dir: &DataDir,
    against: Option<&Digest>,
    progress: &Progress,
) -> Result<Verified, ReplayError> {
    let reader = LogReader::open(dir)?;
    // The walk names damage by position; the total is only for the bar.
    progress.set_total(reader.next_position().unwrap_or(0));
    let report =
        verify::verify_acknowledged(dir.path(), reader.tree(), &mut |done| progress.set(done))?;
    progress.finish();
    let against = against
        .map(|digest| compare(&reader, &report, digest))
        .transpose()?;
    Ok(Verified { report, against })
}

fn compare(
    reader: &LogReader,
    report: &VerifyReport,
    digest: &Digest,
) -> Result<AgainstResult, ReplayError> {
    if digest.position >= report.events {
        return Ok(AgainstResult::Truncated {
            events: report.events,
        });
    }
    let record = reader.get(digest.position)?.ok_or(ReplayError::Damaged {
        position: digest.position,
        problem: "record missing".into(),
    })?;
    Ok(if record.hash == digest.hash {
        AgainstResult::Extends {
            appended_since: report.events - 1 - digest.position,
        }
    } else {
        AgainstResult::Rewritten {
            found_hash: hex::encode(record.hash),
        }
    })
}

#[derive(Serialize)]
struct VerifyJson {
    ok: bool,
    events: u64,
    streams: u64,
    head_position: Option<u64>,
    head_hash: String,
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    against: Option<AgainstJson>,
    /// Why the acknowledged-head check could not be made, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

#[derive(Serialize)]
struct AgainstJson {
    digest: String,
    #[serde(flatten)]
    result: AgainstResult,
}

/// Reports damage found by `verify`. With `--json`, one object that has
/// both the finding's own fields and the `error` object every other
/// failure of the tool has. With `--digest`, nothing on stdout (a script
/// storing stdout as the digest must not store a failure), the finding on
/// stderr; otherwise `FAILED: ...` on stdout.
fn report_finding(
    args: &VerifyArgs,
    ctx: &Ctx,
    out: &mut Out,
    position: Option<u64>,
    problem: &str,
    message: &str,
) -> Result<(), ReplayError> {
    if ctx.json {
        out.json(&serde_json::json!({
            "ok": false,
            "position": position,
            "problem": problem,
            "message": message,
            "error": {
                "kind": "damaged",
                "exit_code": crate::error::EXIT_FINDING,
                "message": message,
                "position": position,
            },
        }))
    } else if args.digest {
        crate::stderr_line!("oms-replay: FAILED: {message}");
        Ok(())
    } else {
        out.line(format_args!("FAILED: {message}"))
    }
}

/// Runs `verify`.
pub fn run(args: &VerifyArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    let progress = ctx.progress("verify", None);
    let verified = match verify_log(&ctx.dir, args.against.as_ref(), &progress) {
        Ok(v) => v,
        Err(ReplayError::Damaged { position, problem }) => {
            progress.finish();
            let message = format!("log damaged at position {position}: {problem}");
            report_verdict(
                report_finding(args, ctx, out, Some(position), &problem, &message)
                    .and_then(|()| out.flush()),
                &message,
            );
            return Ok(Outcome::Finding);
        }
        Err(ReplayError::DamagedFiles(message)) => {
            progress.finish();
            report_verdict(
                report_finding(args, ctx, out, None, &message, &message).and_then(|()| out.flush()),
                &message,
            );
            return Ok(Outcome::Finding);
        }
        Err(e) => return Err(e),
    };
    let digest = verified.digest();
    if args.digest && digest.is_none() {
        return Err(ReplayError::Usage(
            "the log is empty: there is no head to digest".into(),
        ));
    }
    let against_ok = !matches!(
        verified.against,
        Some(AgainstResult::Truncated { .. } | AgainstResult::Rewritten { .. })
    );
    // The log checks out, but one of its checks could not be made: said
    // on stderr whatever the output (and never suppressed).
    let warning = eventlog::acknowledged_head_warning(ctx.dir.path(), verified.report.events);
    if let Some(warning) = &warning {
        crate::stderr_line!("oms-replay: warning: {warning}");
    }
    let written = if ctx.json {
        out.json(&VerifyJson {
            ok: against_ok,
            events: verified.report.events,
            streams: verified.report.streams,
            head_position: verified.report.head_position(),
            head_hash: hex::encode(verified.report.head_hash),
            digest: digest.map(|d| d.to_string()),
            against: args
                .against
                .zip(verified.against.clone())
                .map(|(d, result)| AgainstJson {
                    digest: d.to_string(),
                    result,
                }),
            warning,
        })
    } else if args.digest && args.against.is_none() {
        digest.map_or(Ok(()), |digest| out.line(digest))
    } else {
        print_text(out, &verified, args.against.as_ref())
    };
    if against_ok {
        unless_reader_left(written)?;
    } else if let (Some(digest), Some(result)) = (&args.against, &verified.against) {
        report_verdict(
            written.and_then(|()| out.flush()),
            &against_line(digest, result),
        );
    }
    Ok(if against_ok {
        Outcome::Clean
    } else {
        Outcome::Finding
    })
}

fn print_text(out: &mut Out, v: &Verified, against: Option<&Digest>) -> Result<(), ReplayError> {
    match v.digest() {
        Some(digest) => out.line(format_args!(
            "ok: {} events in {} streams; hashes, chain, positions, stream index and heads verified\nhead: {digest}",
            v.report.events, v.report.streams
        ))?,
        None => out.line("ok: the log is empty")?,
    }
    if let (Some(digest), Some(result)) = (against, &v.against) {
        out.line(against_line(digest, result))?;
    }
    Ok(())
}

/// The line that says how the log stands against `digest`.
fn against_line(digest: &Digest, result: &AgainstResult) -> String {
    match result {
        AgainstResult::Extends { appended_since } => format!(
            "against {digest}: ok, the log extends that head ({appended_since} events appended since)"
        ),
        AgainstResult::Truncated { events } => format!(
            "against {digest}: FAILED, the log was truncated: it holds {events} events and ends before position {}",
            digest.position
        ),
        AgainstResult::Rewritten { found_hash } => format!(
            "against {digest}: FAILED, history was rewritten: the record at position {} has hash {found_hash}",
            digest.position
        ),
    }
}

/// A finding stands (exit 1) whether or not its report was written; one
/// that could not reach standard output (full, or its reader gone) is
/// said on standard error instead, so it is never lost.
fn report_verdict(written: Result<(), ReplayError>, verdict: &str) {
    if let Err(error) = written {
        crate::stderr_line!(
            "oms-replay: FAILED: {verdict} (the report could not be written: {error})"
        );
    }
}
