//! The simulators' durable journal: what the simulated external systems
//! did, one JSON object per line, appended before they answer.
//!
//! A real external system outlives the platform's crashes. The embedded
//! simulators run inside the server's process, so without a journal a
//! restart would forget every ledger: a resend after a restart would look
//! like a first request, and doubled side effects would go unseen. With a
//! journal the ledgers are rebuilt at start, so they count across restarts,
//! and an outside observer (the chaos test) can read what happened.
//!
//! Lines (`kind` first):
//! - `{"kind":"effect","system","key","tenant","operation","request_hash","state"}`:
//!   a side effect was applied;
//! - `{"kind":"state","system","key","tenant","operation","request_hash","state","fault"}`:
//!   the key's state changed without an effect (a rejection, an unmapped
//!   status, a request that never completes);
//! - `{"kind":"callback","system","key","message_id","status"}`: a callback
//!   got an HTTP answer (`status` null when the receiver was unreachable).
//!
//! Each line is written with one `write` call on a file opened for append,
//! so a SIGKILL keeps every line written before it; a torn last line (a
//! power cut) is skipped on reading. The journal is not fsynced: it models
//! the external systems, whose own durability is not the platform's.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use domain::idempotency::TargetSystem;
use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JournalLine {
    /// A side effect was applied for `key`.
    Effect {
        /// The system (`inventory`, ...).
        system: String,
        /// The idempotency key.
        key: String,
        /// The tenant (the key's first segment).
        tenant: String,
        /// The operation.
        operation: String,
        /// sha256 hex of the first request body.
        request_hash: String,
        /// The key's state after the effect.
        state: String,
    },
    /// The key's state changed with no effect.
    State {
        /// The system.
        system: String,
        /// The idempotency key.
        key: String,
        /// The tenant.
        tenant: String,
        /// The operation.
        operation: String,
        /// sha256 hex of the first request body.
        request_hash: String,
        /// The key's new state.
        state: String,
        /// The fault that caused it (`BusinessReject`, ...).
        fault: String,
    },
    /// A callback delivery got an answer.
    Callback {
        /// The system that called back.
        system: String,
        /// The idempotency key the callback is about.
        key: String,
        /// The callback's message id.
        message_id: String,
        /// The receiver's HTTP status; `None` when it was unreachable.
        status: Option<u16>,
    },
}

impl JournalLine {
    /// The system the line is about.
    pub fn system(&self) -> &str {
        match self {
            Self::Effect { system, .. }
            | Self::State { system, .. }
            | Self::Callback { system, .. } => system,
        }
    }
}

/// The journal file, appended under a lock.
#[derive(Debug)]
pub(super) struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens (creating) `dir/journal.jsonl` for append, and reads the lines
    /// already there.
    pub(super) fn open(dir: &Path) -> std::io::Result<(Journal, Vec<JournalLine>)> {
        let path = dir.join("journal.jsonl");
        // Every error names the file (a directory in its place said only
        // "Is a directory").
        let named = |error: std::io::Error| {
            std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
        };
        // The directory's own error names the directory: a file in its
        // place said "File exists" of the journal's path.
        std::fs::create_dir_all(dir).map_err(|error| {
            let what = if dir.is_file() {
                "is a file, where the simulators keep their journal's directory: move it out \
                 of the data directory"
                    .to_owned()
            } else {
                error.to_string()
            };
            std::io::Error::new(error.kind(), format!("{}: {what}", dir.display()))
        })?;
        let lines = read(&path).map_err(named)?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(named)?;
        // A line torn by a crash is ended here, so this start's first line
        // is not glued to it (and lost with it) on the next read.
        if !ends_with_newline(&mut file).map_err(named)? {
            file.write_all(b"\n").map_err(named)?;
        }
        Ok((
            Journal {
                path,
                file: Mutex::new(file),
            },
            lines,
        ))
    }

    /// Appends one line. A failure is logged, never fatal: the journal is
    /// evidence of the simulation, not part of the platform.
    pub(super) fn append(&self, line: &JournalLine) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        let written = match self.file.lock() {
            Ok(mut file) => file.write_all(text.as_bytes()),
            Err(_) => Err(std::io::Error::other("journal lock poisoned")),
        };
        if let Err(error) = written {
            tracing::warn!(path = %self.path.display(), %error, "simulator journal write failed");
        }
    }
}

/// True when the file is empty or its last byte is a newline.
fn ends_with_newline(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Every whole line of the journal at `path` (none when it does not exist);
/// a line that does not parse (torn by a crash, or bytes that are not
/// text) is skipped, with a warning naming the first such lines by
/// number: the ledger forgets what they recorded.
///
/// # Errors
/// An I/O error other than the file not existing.
pub fn read(path: &Path) -> std::io::Result<Vec<JournalLine>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut lines = Vec::new();
    let mut skipped = Vec::new();
    for (number, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        match serde_json::from_slice::<JournalLine>(&line) {
            Ok(parsed) => lines.push(parsed),
            Err(_) if line.is_empty() => {}
            Err(_) => skipped.push(number + 1),
        }
    }
    if !skipped.is_empty() {
        let first: Vec<String> = skipped.iter().take(5).map(ToString::to_string).collect();
        tracing::warn!(
            path = %path.display(),
            skipped = skipped.len(),
            lines = %first.join(", "),
            "simulator journal lines that do not parse were skipped (torn by a crash, or damaged): what they recorded is forgotten"
        );
    }
    Ok(lines)
}

/// The system a journal's `system` field names.
pub(super) fn system_named(name: &str) -> Option<TargetSystem> {
    super::SIMULATED.into_iter().find(|s| s.as_str() == name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn effect(key: &str) -> JournalLine {
        JournalLine::Effect {
            system: "inventory".to_owned(),
            key: key.to_owned(),
            tenant: "t1".to_owned(),
            operation: "reserve".to_owned(),
            request_hash: "h".to_owned(),
            state: "CONFIRMED".to_owned(),
        }
    }

    /// A probe's directory in place of the journal stopped the server
    /// with "simulators: Is a directory", naming no file.
    #[test]
    fn a_journal_that_cannot_be_opened_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("journal.jsonl")).unwrap();
        let error = Journal::open(dir.path()).err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("journal.jsonl")),
            "{error:?}"
        );
        // A file where the directory belongs is named as such (a probe
        // read "…/simulators/journal.jsonl: File exists").
        let file = dir.path().join("simulators");
        std::fs::write(&file, b"").unwrap();
        let error = Journal::open(&file).err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("is a file")
                && e.contains("simulators")
                && !e.contains("journal.jsonl")),
            "{error:?}"
        );
    }

    #[test]
    fn a_line_torn_by_a_crash_does_not_swallow_the_next_starts_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let whole = serde_json::to_string(&effect("k1")).unwrap();
        std::fs::write(&path, format!("{whole}\n{{\"kind\":\"eff")).unwrap();
        let (journal, before) = Journal::open(dir.path()).unwrap();
        assert_eq!(before, vec![effect("k1")]);
        journal.append(&effect("k2"));
        assert_eq!(read(&path).unwrap(), vec![effect("k1"), effect("k2")]);
    }

    #[test]
    fn a_line_of_bytes_that_are_not_text_is_skipped_like_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut bytes = serde_json::to_vec(&effect("k1")).unwrap();
        bytes.extend_from_slice(b"\n\xff\xfe{\"kind\"\n");
        bytes.extend_from_slice(&serde_json::to_vec(&effect("k2")).unwrap());
        bytes.push(b'\n');
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read(&path).unwrap(), vec![effect("k1"), effect("k2")]);
    }
}
