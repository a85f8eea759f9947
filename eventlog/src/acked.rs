//! The acknowledged head, kept outside sled.
//!
//! sled treats a message that fails its checksum in the part of its log
//! written since its last snapshot as the torn end of a crash: its recovery
//! drops that message and everything after it, and zeroes the rest of the
//! segment. A byte flipped there would silently cut acknowledged events
//! off the log, and the shorter log is consistent with itself.
//!
//! So after each durable group commit, before its callers are answered, the
//! stage that answers them writes the new head (next position and head hash) to
//! `<dir>/acked-head`. The write is not fsynced (a power loss may leave the
//! file older than the log, never newer: the head it names is already
//! durable in `db`), and the file is fsynced at open and at a clean close.
//! Open and verify compare the log with it: a log that ends before the
//! acknowledged head, or holds another record there, has lost acknowledged
//! events.
//!
//! Layout (56 bytes): `b"EVLACK01"`, next position (u64 BE), head hash
//! (32 bytes), the first 8 bytes of sha256 of the 48 bytes before.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::record::Hash;

/// File name of the acknowledged head in the data directory.
pub const ACKED_HEAD_FILE: &str = "acked-head";

const MAGIC: &[u8; 8] = b"EVLACK01";
const LEN: usize = 56;

/// The head of the log as last acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckedHead {
    /// Every position below this one was acknowledged.
    pub next_position: u64,
    /// Hash of the record at `next_position - 1`.
    pub head_hash: Hash,
}

impl AckedHead {
    fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..16].copy_from_slice(&self.next_position.to_be_bytes());
        out[16..48].copy_from_slice(&self.head_hash);
        let sum = Sha256::digest(&out[..48]);
        out[48..].copy_from_slice(&sum[..8]);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != LEN || &bytes[..8] != MAGIC {
            return None;
        }
        let sum = Sha256::digest(&bytes[..48]);
        if bytes[48..] != sum[..8] {
            return None;
        }
        let next_position = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
        let head_hash = bytes[16..48].try_into().ok()?;
        Some(Self {
            next_position,
            head_hash,
        })
    }

    /// Reads the acknowledged head of a data directory. `None` when there
    /// is no file, or when it does not check out (a write torn by a power
    /// loss cannot be told from a damaged file; the check is then skipped,
    /// with a warning, rather than refusing a log that may be sound).
    pub fn read(dir: &Path) -> Option<Self> {
        let path = dir.join(ACKED_HEAD_FILE);
        let bytes = std::fs::read(&path).ok()?;
        let head = Self::decode(&bytes);
        if head.is_none() {
            tracing::warn!(path = %path.display(), "acknowledged head file is unreadable; its check is skipped");
        }
        head
    }
}

/// Why the acknowledged-head check cannot be made on a data directory
/// whose log holds `events` records, if it cannot: the file is there but
/// does not check out (damaged, or torn by a power loss), cannot be read
/// (a directory in its place, say), or it is missing
/// from a log that holds events (a log from before the file existed looks
/// the same, so this is a warning, not a refusal). `None` when the check
/// can be made, or there is nothing to check.
pub fn acknowledged_head_warning(dir: &Path, events: u64) -> Option<String> {
    let path = dir.join(ACKED_HEAD_FILE);
    match std::fs::read(&path) {
        Ok(bytes) if AckedHead::decode(&bytes).is_some() => None,
        Ok(_) => Some(format!(
            "{} is unreadable, so nothing checks that every acknowledged event is still in the log (the server rewrites it at its next acknowledgement)",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (events > 0).then(|| format!(
            "{} is missing from a log of {events} events, so nothing checks that every acknowledged event is still in the log (the server writes it at its next acknowledgement)",
            path.display()
        )),
        Err(e) => Some(format!(
            "{} cannot be read ({e}), so nothing checks that every acknowledged event is still in the log",
            path.display()
        )),
    }
}

/// The open `acked-head` file the writer's stages write.
#[derive(Debug)]
pub(crate) struct AckedHeadFile {
    file: File,
}

impl AckedHeadFile {
    /// Opens (creating) the file and writes `head` durably.
    pub(crate) fn create(dir: &Path, head: AckedHead) -> std::io::Result<Self> {
        crate::storage::refuse_link(&dir.join(ACKED_HEAD_FILE))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join(ACKED_HEAD_FILE))?;
        let this = Self { file };
        this.record(head)?;
        this.file.set_len(LEN as u64)?;
        this.file.sync_all()?;
        Ok(this)
    }

    /// Overwrites the file with `head` (not fsynced).
    pub(crate) fn record(&self, head: AckedHead) -> std::io::Result<()> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&head.encode())
    }

    /// Makes the last recorded head durable.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::AckedHead;

    #[test]
    fn round_trips_and_refuses_a_flipped_byte() {
        let head = AckedHead {
            next_position: 42,
            head_hash: [7; 32],
        };
        let mut bytes = head.encode();
        assert_eq!(AckedHead::decode(&bytes), Some(head));
        bytes[20] ^= 1;
        assert_eq!(AckedHead::decode(&bytes), None);
    }
}
