//! The redo journal: what makes an append durable (ADR 0030).
//!
//! Every group commit is one *frame* in a preallocated journal file, and an
//! append is acknowledged once its frame is fdatasynced: one sequential
//! write and one `fdatasync` of a file whose blocks already exist, instead
//! of sled's flush and an `fdatasync` of sled's data file. sled is written
//! by the apply stage while the frame is written (readers see a position
//! only once its frame is durable *and* it is in sled) and made durable
//! only at a *checkpoint*: sled's flush, an fsync of its data and blob
//! files. A
//! checkpoint runs before a journal file is recycled and at open.
//!
//! Two files, `journal/journal-0` and `journal/journal-1`, take turns.
//! Each starts with a header block (magic, epoch, start position, CRC32C);
//! frames follow it back to back:
//!
//! ```text
//! header_crc u32 | payload_len u32 | payload_crc u32 | 0 u32
//! | epoch u64 | first_position u64 | next_position u64 | payload
//! ```
//!
//! all little endian; `header_crc` is the CRC32C of the 36 header bytes
//! after it, `payload_crc` that of the payload, which is the group commit's
//! sled batch: `count u32`, then per entry `key_len u32 | key | value_len
//! u32 | value`. A frame whose epoch is not its file's is *stale* (left
//! from the file's previous turn); a frame whose CRCs fail or that runs
//! past the end of the file is *torn*. Neither was acknowledged: a frame is
//! acknowledged only after it and every frame before it were fdatasynced,
//! so the acknowledged frames are a prefix of the file.
//!
//! **Ordering.** (1) Each frame is one sled batch, applied in frame order,
//! so sled's meta position is always a frame boundary. (2) Before the next
//! file's header is written, the writer waits until sled holds every frame
//! of the current file and a checkpoint makes sled durable up to there. (3) So
//! after any crash, sled's durable meta position `M` is at least the start
//! of the newest file with a valid header, and every acknowledged position
//! at or past `M` is in a valid frame of that file. Recovery
//! ([`replay`]) applies, in order, the frames of the newest file that end
//! after `M`, and stops at the first torn or stale one. A newest file that
//! starts after `M` means sled lost a checkpoint: the log is refused.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::keyspace;

/// Directory of the journal files inside a data directory.
pub const JOURNAL_DIR: &str = "journal";

/// The journal files, used in turn.
pub const JOURNAL_FILES: [&str; 2] = ["journal-0", "journal-1"];

/// Default size a journal file grows to before the writer checkpoints and
/// turns to the other file.
pub const DEFAULT_FILE_BYTES: u64 = 64 << 20;

/// Smallest size a journal file grows to (a smaller
/// [`crate::LogConfig::journal_file_bytes`] is raised to it).
pub const MIN_FILE_BYTES: u64 = 1 << 20;

/// Bytes of the header block at the start of each journal file.
pub const FILE_HEADER_BYTES: u64 = 4096;

/// Bytes of a frame's header.
pub const FRAME_HEADER_BYTES: usize = 40;

const MAGIC: &[u8; 8] = b"EVLJRN01";

/// Granularity in which a journal file is zero-filled ahead of its frames,
/// so a frame's `fdatasync` writes data blocks only, not the file's size.
const GROW_STEP: u64 = 256 << 10;

const CRC: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

/// CRC32C (Castagnoli) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC.checksum(bytes)
}

/// The header of a journal file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// The file's turn: one more than the turn before, across both files.
    pub epoch: u64,
    /// Position of the file's first frame.
    pub start_position: u64,
}

impl FileHeader {
    /// The 28 header bytes: magic, epoch, start position, CRC32C of those.
    pub fn encode(&self) -> [u8; 28] {
        let mut out = [0u8; 28];
        out[..8].copy_from_slice(MAGIC);
        out[8..16].copy_from_slice(&self.epoch.to_le_bytes());
        out[16..24].copy_from_slice(&self.start_position.to_le_bytes());
        let crc = crc32c(&out[..24]);
        out[24..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The header in `bytes`, if it is one and its CRC holds.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..28)?;
        if &bytes[..8] != MAGIC || crc32c(&bytes[..24]).to_le_bytes() != bytes[24..28] {
            return None;
        }
        Some(Self {
            epoch: u64::from_le_bytes(bytes[8..16].try_into().ok()?),
            start_position: u64::from_le_bytes(bytes[16..24].try_into().ok()?),
        })
    }
}

/// One group commit's sled batch, encoded as a frame payload as it is
/// built (the apply stage builds the sled batch beside it).
#[derive(Debug, Default)]
pub struct FramePayload {
    bytes: Vec<u8>,
    count: u32,
}

impl FramePayload {
    /// An empty payload.
    pub fn new() -> Self {
        Self {
            bytes: vec![0; 4],
            count: 0,
        }
    }

    /// Adds one entry of the batch.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        // Keys and values are bounded far below 4 GiB (see `storage`).
        let len = |b: &[u8]| u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes();
        self.bytes.extend_from_slice(&len(key));
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(&len(value));
        self.bytes.extend_from_slice(value);
        self.count += 1;
    }

    /// Seals the payload of the group commit `[first, next)`: the frame,
    /// still without its epoch (the journal stage sets it).
    pub fn seal(mut self, first_position: u64, next_position: u64) -> Frame {
        self.bytes[..4].copy_from_slice(&self.count.to_le_bytes());
        let payload_crc = crc32c(&self.bytes);
        Frame {
            first_position,
            next_position,
            payload_crc,
            payload: self.bytes,
            number: 0,
        }
    }
}

/// A group commit on its way into the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Position of its first record.
    pub first_position: u64,
    /// Position after its last record.
    pub next_position: u64,
    /// CRC32C of the payload.
    pub payload_crc: u32,
    /// The encoded batch (see [`FramePayload`]).
    pub payload: Vec<u8>,
    /// Which of the frames the writer sealed since the log opened this is
    /// (from 1; 0 for a frame read back from a file). Durability and the
    /// apply are tracked by it, not by position: a frame of idempotency
    /// records alone (a command that changed nothing) holds no position.
    pub number: u64,
}

impl Frame {
    /// Bytes the frame takes in a journal file.
    pub fn stored_len(&self) -> u64 {
        (FRAME_HEADER_BYTES + self.payload.len()) as u64
    }

    /// The frame's header in the turn `epoch`.
    pub fn header(&self, epoch: u64) -> [u8; FRAME_HEADER_BYTES] {
        let mut out = [0u8; FRAME_HEADER_BYTES];
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out[4..8].copy_from_slice(&len.to_le_bytes());
        out[8..12].copy_from_slice(&self.payload_crc.to_le_bytes());
        out[16..24].copy_from_slice(&epoch.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_position.to_le_bytes());
        out[32..40].copy_from_slice(&self.next_position.to_le_bytes());
        let crc = crc32c(&out[4..]);
        out[..4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// How many entries the batch holds (as its payload says).
    pub fn entry_count(&self) -> usize {
        self.payload
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize)
    }

    /// The batch's entries, if the payload parses.
    pub fn entries(&self) -> Option<Vec<(&[u8], &[u8])>> {
        let bytes = &self.payload;
        let count = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
        let mut at = 4usize;
        let take = |at: &mut usize| -> Option<&[u8]> {
            let len = u32::from_le_bytes(bytes.get(*at..*at + 4)?.try_into().ok()?) as usize;
            let part = bytes.get(*at + 4..(*at + 4).checked_add(len)?)?;
            *at += 4 + len;
            Some(part)
        };
        let mut entries = Vec::with_capacity(count.min(1 << 16) as usize);
        for _ in 0..count {
            let key = take(&mut at)?;
            let value = take(&mut at)?;
            entries.push((key, value));
        }
        (at == bytes.len()).then_some(entries)
    }
}

/// Why a scan of a journal file stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEnd {
    /// The bytes after the last frame are zeros (never written).
    Clean,
    /// A frame's header or payload fails its CRC, or runs past the file.
    Torn,
    /// A frame of another turn of the file, or one that does not continue
    /// the one before it.
    Stale,
}

/// The valid frames of one journal file, in order, and why the scan
/// stopped.
#[derive(Debug)]
pub struct ScannedFile {
    /// The file's header.
    pub header: FileHeader,
    /// Its frames, each continuing the one before, from the header's start.
    pub frames: Vec<Frame>,
    /// What follows the last frame.
    pub end: FrameEnd,
    /// Offset just past the last valid frame.
    pub end_offset: u64,
}

fn io_error(path: &Path, e: std::io::Error) -> LogError {
    LogError::io(path, e)
}

/// Reads a journal file's header; `None` when the file is missing, short or
/// its header does not check out.
fn read_header(path: &Path) -> Result<Option<(File, FileHeader)>, LogError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let mut bytes = [0u8; 28];
    match file.read_exact_at(&mut bytes, 0) {
        Ok(()) => Ok(FileHeader::decode(&bytes).map(|h| (file, h))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Reads every valid frame of the journal file at `path`; `None` when it
/// has no valid header.
///
/// # Errors
/// [`LogError::Io`] when the file cannot be read.
pub fn scan_file(path: &Path) -> Result<Option<ScannedFile>, LogError> {
    let Some((file, header)) = read_header(path)? else {
        return Ok(None);
    };
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    let mut frames = Vec::new();
    let mut offset = FILE_HEADER_BYTES;
    let mut expected = header.start_position;
    let end = loop {
        let mut head = [0u8; FRAME_HEADER_BYTES];
        if offset + FRAME_HEADER_BYTES as u64 > len {
            break FrameEnd::Clean;
        }
        file.read_exact_at(&mut head, offset)
            .map_err(|e| io_error(path, e))?;
        if head.iter().all(|b| *b == 0) {
            break FrameEnd::Clean;
        }
        let word =
            |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        let long = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or([0; 8]));
        if word(0) != crc32c(&head[4..]) {
            break FrameEnd::Torn;
        }
        let payload_len = u64::from(word(4));
        let (epoch, first, next) = (long(16), long(24), long(32));
        if epoch != header.epoch || first != expected || next < first {
            break FrameEnd::Stale;
        }
        let start = offset + FRAME_HEADER_BYTES as u64;
        if start + payload_len > len {
            break FrameEnd::Torn;
        }
        // At most 4 GiB (a u32), and no more than the file holds.
        let mut payload = vec![0u8; usize::try_from(payload_len).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut payload, start)
            .map_err(|e| io_error(path, e))?;
        if crc32c(&payload) != word(8) {
            break FrameEnd::Torn;
        }
        frames.push(Frame {
            first_position: first,
            next_position: next,
            payload_crc: word(8),
            payload,
            number: 0,
        });
        expected = next;
        offset = start + payload_len;
    };
    Ok(Some(ScannedFile {
        header,
        frames,
        end,
        end_offset: offset,
    }))
}

/// The newest journal file with a valid header in a data directory: its
/// index in [`JOURNAL_FILES`] and its header.
fn newest_header(dir: &Path) -> Result<Option<(usize, FileHeader)>, LogError> {
    // A link where the writer keeps its files is refused by every reader
    // too, as the writer refuses it.
    let journal = dir.join(JOURNAL_DIR);
    for name in JOURNAL_FILES {
        let path = journal.join(name);
        crate::storage::refuse_link(&path).map_err(|e| io_error(&path, e))?;
    }
    let mut best: Option<(usize, FileHeader)> = None;
    for (index, name) in JOURNAL_FILES.iter().enumerate() {
        if let Some((_, header)) = read_header(&journal.join(name))? {
            if best.is_none_or(|(_, b)| header.epoch > b.epoch) {
                best = Some((index, header));
            }
        }
    }
    Ok(best)
}

/// The newest journal file with a valid header in a data directory.
fn newest(dir: &Path) -> Result<Option<ScannedFile>, LogError> {
    match newest_header(dir)? {
        Some((index, _)) => scan_file(&dir.join(JOURNAL_DIR).join(JOURNAL_FILES[index])),
        None => Ok(None),
    }
}

/// The position the newest journal file starts at, when past 0. A
/// journal file starts past 0 only after sled was checkpointed with every
/// event before that position (a turn, or an open, follows a
/// checkpoint), so a data file without them lost them.
///
/// # Errors
/// [`LogError::Io`] when a journal file cannot be read.
pub fn starts_past_zero(dir: &Path) -> Result<Option<u64>, LogError> {
    Ok(newest_header(dir)?
        .map(|(_, header)| header.start_position)
        .filter(|start| *start > 0))
}

/// What [`replay`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replayed {
    /// Frames applied to sled.
    pub frames: u64,
    /// The log's next position after them.
    pub next_position: u64,
    /// The newest turn found (0 when there is no journal).
    pub epoch: u64,
}

fn refused(dir: &Path, position: u64, problem: String) -> LogError {
    tracing::error!(path = %dir.display(), position, %problem, "journal refused");
    LogError::Inconsistent { position, problem }
}

/// Applies to the log tree every journaled group commit that sled does not
/// hold yet (see the module's ordering argument). Idempotent: the frames
/// are applied from the log's meta position on, so running it again (or
/// after a crash while it ran) applies nothing twice. Writes to sled
/// without flushing it; [`crate::EventLog::open`] checkpoints afterwards.
///
/// # Errors
/// [`LogError::Inconsistent`] when the newest journal file starts after the
/// log's head (sled lost a checkpoint) or a frame does not continue it;
/// [`LogError::Io`] or a sled error when reading or writing fails.
pub fn replay(dir: &Path, tree: &sled::Tree) -> Result<Replayed, LogError> {
    let Some(scanned) = newest(dir)? else {
        return Ok(Replayed::default());
    };
    let meta = crate::recovery::read_meta_any_layout(tree)?;
    let mut head = meta.map_or(0, |m| m.next_position);
    if scanned.header.start_position > head {
        return Err(refused(
            dir,
            head,
            format!(
                "the journal starts at position {} but the data file ends at {head}: the data \
                 file lost events that were checkpointed",
                scanned.header.start_position
            ),
        ));
    }
    let mut frames = 0;
    for frame in &scanned.frames {
        // A frame that ends at the head is in sled already, unless it holds
        // no position (idempotency records alone), which may not be:
        // applying it again writes the same entries.
        let empty_at_head = frame.first_position == head && frame.next_position == head;
        if frame.next_position <= head && !empty_at_head {
            continue;
        }
        if frame.first_position != head {
            return Err(refused(
                dir,
                head,
                format!(
                    "journal frame [{}, {}) does not continue the data file's head",
                    frame.first_position, frame.next_position
                ),
            ));
        }
        let entries = frame.entries().ok_or_else(|| {
            refused(
                dir,
                head,
                "a journal frame's payload does not parse although its checksum holds".into(),
            )
        })?;
        let mut batch = sled::Batch::default();
        let mut names_head = false;
        for (key, value) in entries {
            if key == keyspace::META {
                names_head = keyspace::parse_meta_value(value)
                    .is_some_and(|m| m.next_position == frame.next_position);
            }
            batch.insert(key, value);
        }
        if !names_head {
            return Err(refused(
                dir,
                head,
                "a journal frame does not carry the log's meta record for its end".into(),
            ));
        }
        tree.apply_batch(batch)?;
        head = frame.next_position;
        frames += 1;
    }
    if frames > 0 {
        tracing::info!(path = %dir.display(), frames, next_position = head, "journal replayed into the log");
    }
    Ok(Replayed {
        frames,
        next_position: head,
        epoch: scanned.header.epoch,
    })
}

/// The journal's writer, owned by the journal stage of the writer.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    files: [File; 2],
    /// Bytes of each file known to be allocated (written, zeros or frames).
    allocated: [u64; 2],
    current: usize,
    epoch: u64,
    /// Offset of the next frame in the current file.
    offset: u64,
    /// Frames written into `pending`, not yet in the file.
    pending: Vec<u8>,
    /// Size a file grows to before the writer turns to the other.
    file_bytes: u64,
    /// Position of the next frame.
    next_position: u64,
}

impl Journal {
    /// Opens the journal of `data_dir` after a replay and a checkpoint and
    /// starts a new turn at `next_position` (see [`Journal::turn`]).
    pub(crate) fn start(
        data_dir: &Path,
        next_position: u64,
        file_bytes: u64,
    ) -> Result<Self, LogError> {
        let dir = data_dir.join(JOURNAL_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let open = |name: &str| {
            let path = dir.join(name);
            crate::storage::refuse_link(&path)
                .and_then(|()| {
                    OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .read(true)
                        .write(true)
                        .open(&path)
                })
                .and_then(|f| f.metadata().map(|m| (f, m.len())))
                .map_err(|e| io_error(&path, e))
        };
        let (f0, l0) = open(JOURNAL_FILES[0])?;
        let (f1, l1) = open(JOURNAL_FILES[1])?;
        for path in [data_dir, dir.as_path()] {
            File::open(path)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error(path, e))?;
        }
        // The new turn goes into the file that does not hold the newest.
        let mut newest: Option<(usize, u64)> = None;
        for (index, name) in JOURNAL_FILES.iter().enumerate() {
            if let Some((_, header)) = read_header(&dir.join(name))? {
                if newest.is_none_or(|(_, epoch)| header.epoch > epoch) {
                    newest = Some((index, header.epoch));
                }
            }
        }
        let (current, epoch) = newest.unwrap_or((1, 0));
        let mut journal = Self {
            dir,
            files: [f0, f1],
            allocated: [l0, l1],
            current,
            epoch,
            offset: FILE_HEADER_BYTES,
            pending: Vec::new(),
            file_bytes: file_bytes.max(MIN_FILE_BYTES),
            next_position,
        };
        journal.turn(next_position).map_err(|e| {
            let path = journal.path();
            LogError::io(&path, std::io::Error::other(e))
        })?;
        Ok(journal)
    }

    fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILES[self.current])
    }

    /// True when `frame` fits in the current file (growing it up to its
    /// size); false when the writer must checkpoint and turn first. A
    /// frame larger than a whole file fits an empty one.
    pub(crate) fn fits(&self, frame: &Frame) -> bool {
        let used = self.offset + self.pending.len() as u64;
        used + frame.stored_len() <= self.file_bytes || used == FILE_HEADER_BYTES
    }

    /// Adds `frame` after the frames written so far (not yet written to
    /// the file; see [`Journal::sync`]).
    pub(crate) fn push(&mut self, frame: &Frame) {
        debug_assert_eq!(frame.first_position, self.next_position);
        self.pending.extend_from_slice(&frame.header(self.epoch));
        self.pending.extend_from_slice(&frame.payload);
        self.next_position = frame.next_position;
    }

    /// Writes the pushed frames and, if `durable`, fdatasyncs the file:
    /// once this returns, every frame pushed is acknowledged.
    pub(crate) fn sync(&mut self, durable: bool) -> Result<(), String> {
        let path = self.path();
        let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
        if !self.pending.is_empty() {
            let end = self.offset + self.pending.len() as u64;
            self.grow_to(end).map_err(|e| fail("growing", e))?;
            let file = &self.files[self.current];
            file.write_all_at(&self.pending, self.offset)
                .map_err(|e| fail("writing", e))?;
            self.offset = end;
            self.pending.clear();
        }
        if durable {
            self.files[self.current]
                .sync_data()
                .map_err(|e| fail("fdatasync of", e))?;
        }
        Ok(())
    }

    /// Zero-fills the current file ahead of `end`, a step at a time, so
    /// later frames overwrite allocated blocks.
    fn grow_to(&mut self, end: u64) -> std::io::Result<()> {
        let allocated = self.allocated[self.current];
        if end <= allocated {
            return Ok(());
        }
        let target = end.div_ceil(GROW_STEP) * GROW_STEP;
        let target = target.max(allocated.saturating_mul(2).min(self.file_bytes));
        let zeros = [0u8; 64 << 10];
        let mut at = allocated.max(self.offset + self.pending.len() as u64);
        while at < target {
            let n = usize::try_from(target - at).map_or(zeros.len(), |n| n.min(zeros.len()));
            self.files[self.current].write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        self.allocated[self.current] = target;
        Ok(())
    }

    /// Starts the next turn in the other file at `next_position`. The
    /// caller has checkpointed sled past every frame of the current file
    /// (the ordering argument's step 2).
    pub(crate) fn turn(&mut self, next_position: u64) -> Result<(), String> {
        self.sync(true)?;
        self.current = 1 - self.current;
        self.epoch += 1;
        let header = FileHeader {
            epoch: self.epoch,
            start_position: next_position,
        };
        let mut block = [0u8; 4096];
        debug_assert_eq!(block.len() as u64, FILE_HEADER_BYTES);
        block[..28].copy_from_slice(&header.encode());
        let path = self.path();
        let file = &self.files[self.current];
        file.write_all_at(&block, 0)
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("starting journal file {}: {e}", path.display()))?;
        self.allocated[self.current] = self.allocated[self.current].max(FILE_HEADER_BYTES);
        self.offset = FILE_HEADER_BYTES;
        self.next_position = next_position;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn a_payload_round_trips_and_a_header_refuses_a_flipped_byte() {
        let mut payload = FramePayload::new();
        payload.insert(b"k1", b"v1");
        payload.insert(b"", b"longer value");
        let frame = payload.seal(3, 5);
        let entries = frame.entries().expect("a sealed payload parses");
        assert_eq!(
            entries,
            vec![(&b"k1"[..], &b"v1"[..]), (&b""[..], &b"longer value"[..])]
        );
        let header = FileHeader {
            epoch: 9,
            start_position: 3,
        };
        let mut bytes = header.encode();
        assert_eq!(FileHeader::decode(&bytes), Some(header));
        bytes[10] ^= 1;
        assert_eq!(FileHeader::decode(&bytes), None);
    }
}
