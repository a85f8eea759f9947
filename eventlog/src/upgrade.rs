//! Upgrading a log stored in keyspace layout 1 to layout 2, in place (see
//! [`crate::keyspace`] for both layouts and ADR 0028).
//!
//! Layout 1 kept one key per record, one stream index key per event and
//! one head key per stream; layout 2 packs records into pages, keeps one
//! run key per append and derives heads. The records' bytes (and so the
//! hash chain and exports) do not change.
//! [`crate::EventLog::open`] runs the upgrade in three steps, each safe to
//! interrupt by a crash:
//!
//! 1. [`upgrade_in_place`] packs layout 1's records, in position order,
//!    into pages, and walks layout 1's index (sorted by stream, then
//!    version) to write one run key for each stretch of consecutive
//!    versions at consecutive positions, in batches. The new keys are
//!    derived from the old keys alone, so a rerun after a crash writes the
//!    same keys again; nothing reads them before step 2.
//! 2. It then rewrites the meta record with layout 2 in one write and
//!    flushes. From here on the log is a layout-2 log.
//! 3. After open's full verify has checked the pages and runs,
//!    [`drop_legacy_keys`] deletes the old record, index and head keys. Nothing
//!    reads them any more, so a crash midway only leaves some for the next
//!    open to delete.

use crate::error::LogError;
use crate::keyspace::{self, StreamRun};
use crate::pages::PageBuilder;
use crate::recovery::read_meta_any_layout;

/// Keys written or deleted per sled batch during an upgrade.
const UPGRADE_BATCH_KEYS: usize = 10_000;
/// Bytes of values written per sled batch during an upgrade (pages are
/// up to about 100 KB each).
const UPGRADE_BATCH_BYTES: usize = 8 << 20;

/// Upgrades a layout-1 log to layout 2 (steps 1 and 2 above); returns
/// whether there was anything to upgrade. A log in layout 2, a new log
/// and a log in a layout this build does not know are left alone (the
/// last is refused by recovery).
///
/// # Errors
/// [`LogError::Inconsistent`] when a layout-1 index key is malformed; a
/// storage error when sled fails.
pub(crate) fn upgrade_in_place(db: &sled::Db, tree: &sled::Tree) -> Result<bool, LogError> {
    let Some(meta) = read_meta_any_layout(tree)? else {
        return Ok(false);
    };
    if meta.layout != keyspace::LAYOUT_V1 {
        return Ok(false);
    }
    write_pages(tree)?;
    write_runs(tree)?;
    db.flush()?;
    tree.insert(
        keyspace::META,
        &keyspace::meta_value(meta.next_position, &meta.head_hash)[..],
    )?;
    db.flush()?;
    Ok(true)
}

/// Step 1: layout 1's records packed into pages (a gap in the old keys
/// starts a new page, so verify still names it).
fn write_pages(tree: &sled::Tree) -> Result<(), LogError> {
    let mut writer = BatchWriter::new(tree);
    let mut pages: Option<(u64, PageBuilder)> = None;
    for entry in tree.scan_prefix([keyspace::LEGACY_EVENT]) {
        let (key, bytes) = entry?;
        let position =
            keyspace::position_of_legacy_event_key(&key).ok_or_else(|| LogError::Inconsistent {
                position: 0,
                problem: "malformed layout-1 record key".into(),
            })?;
        let continues = pages.as_ref().is_some_and(|(next, _)| *next == position);
        if !continues {
            if let Some((_, builder)) = pages.take() {
                writer.insert_pages(builder.finish())?;
            }
            pages = Some((position, PageBuilder::new(position)));
        }
        if let Some((next, builder)) = &mut pages {
            builder.push(&bytes);
            *next = position + 1;
            let sealed = builder.take_sealed();
            writer.insert_pages(sealed)?;
        }
    }
    if let Some((_, builder)) = pages {
        writer.insert_pages(builder.finish())?;
    }
    writer.finish()
}

/// Step 1: one run key per stretch of layout 1's per-event index.
fn write_runs(tree: &sled::Tree) -> Result<(), LogError> {
    let mut writer = BatchWriter::new(tree);
    let mut current: Option<(String, StreamRun)> = None;
    for entry in tree.scan_prefix([keyspace::LEGACY_STREAM_INDEX]) {
        let (key, value) = entry?;
        let parsed = keyspace::parse_legacy_stream_index_key(&key)
            .zip(keyspace::read_u64(&value).filter(|_| value.len() == 8));
        let Some(((stream, version), position)) = parsed else {
            return Err(LogError::Inconsistent {
                position: 0,
                problem: "malformed layout-1 stream index entry".into(),
            });
        };
        if let Some((s, run)) = &mut current {
            if s == stream
                && run.last_version().checked_add(1) == Some(version)
                && run.last_position().checked_add(1) == Some(position)
            {
                run.count += 1;
                continue;
            }
        }
        if let Some((s, run)) = current.take() {
            writer.insert_run(&s, &run)?;
        }
        current = Some((
            stream.to_owned(),
            StreamRun {
                first_version: version,
                first_position: position,
                count: 1,
            },
        ));
    }
    if let Some((s, run)) = current {
        writer.insert_run(&s, &run)?;
    }
    writer.finish()
}

/// Step 3: deletes layout 1's record, index and head keys, if any are
/// left.
pub(crate) fn drop_legacy_keys(db: &sled::Db, tree: &sled::Tree) -> Result<(), LogError> {
    let mut writer = BatchWriter::new(tree);
    for prefix in [
        keyspace::LEGACY_EVENT,
        keyspace::LEGACY_STREAM_INDEX,
        keyspace::LEGACY_HEAD,
    ] {
        for key in tree.scan_prefix([prefix]).keys() {
            writer.remove(key?)?;
        }
    }
    if writer.written > 0 {
        writer.finish()?;
        db.flush()?;
    }
    Ok(())
}

/// Writes keys in sled batches of [`UPGRADE_BATCH_KEYS`].
struct BatchWriter<'a> {
    tree: &'a sled::Tree,
    batch: sled::Batch,
    pending: usize,
    pending_bytes: usize,
    written: u64,
}

impl<'a> BatchWriter<'a> {
    fn new(tree: &'a sled::Tree) -> Self {
        Self {
            tree,
            batch: sled::Batch::default(),
            pending: 0,
            pending_bytes: 0,
            written: 0,
        }
    }

    fn insert_run(&mut self, stream: &str, run: &StreamRun) -> Result<(), LogError> {
        self.batch.insert(
            keyspace::run_key(stream, run.first_version),
            &keyspace::run_value(run.first_position, run.count)[..],
        );
        self.counted()
    }

    fn insert_pages(&mut self, pages: Vec<([u8; 9], Vec<u8>)>) -> Result<(), LogError> {
        for (key, value) in pages {
            self.pending_bytes += value.len();
            self.batch.insert(&key, value);
            self.counted()?;
        }
        Ok(())
    }

    fn remove(&mut self, key: sled::IVec) -> Result<(), LogError> {
        self.batch.remove(key);
        self.counted()
    }

    fn counted(&mut self) -> Result<(), LogError> {
        self.pending += 1;
        self.written += 1;
        if self.pending >= UPGRADE_BATCH_KEYS || self.pending_bytes >= UPGRADE_BATCH_BYTES {
            self.finish()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), LogError> {
        if self.pending > 0 {
            self.tree.apply_batch(std::mem::take(&mut self.batch))?;
            self.pending = 0;
            self.pending_bytes = 0;
        }
        Ok(())
    }
}
