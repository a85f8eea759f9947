//! No acknowledged event lives in a file that was not fsynced: sled writes
//! pages above a quarter of its segment size to files under `blobs/` and
//! never fsyncs them. New logs use a segment size whose blob threshold is
//! above the largest page of the log, so maximum-size payloads stay in
//! `db`; a log created with sled's default segment size keeps it, and every
//! checkpoint (which makes sled durable before the redo journal turns to
//! its other file and drops what sled holds) fsyncs its blob files.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use eventlog::storage::{stored_segment_size, SEGMENT_SIZE, SLED_DEFAULT_SEGMENT_SIZE};
use eventlog::{
    record::MAX_PAYLOAD_BYTES, AppendRequest, Durability, EventLog, ExpectedVersion, LogConfig,
    NewEvent,
};

/// A maximum-size event: 64 KiB of payload that does not compress, the
/// most metadata.
fn max_event(i: u64) -> NewEvent {
    let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let payload = (0..MAX_PAYLOAD_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut event = NewEvent::new("Big", "tenant-a", "corr", payload);
    for k in 0..16 {
        event
            .metadata
            .insert(format!("key-{k:02}"), format!("{:0>100}", i));
    }
    event
}

/// Blob files present now: name and length. sled's blob collection may
/// remove a file between the listing and its metadata: such a file is
/// simply not present any more.
fn blob_files(dir: &Path) -> BTreeMap<String, u64> {
    match std::fs::read_dir(dir.join("blobs")) {
        Ok(entries) => entries
            .filter_map(|e| {
                let e = e.ok()?;
                let len = e.metadata().ok()?.len();
                Some((e.file_name().to_string_lossy().into_owned(), len))
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

fn small_cache(dir: &Path) -> LogConfig {
    let mut config = LogConfig::new(dir).durability(Durability::Durable);
    // A small cache makes sled evict and consolidate pages often.
    config.cache_capacity_bytes = 1 << 20;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximum_size_payloads_never_go_to_blob_files_in_a_new_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(small_cache(dir.path())).unwrap();
    assert_eq!(stored_segment_size(dir.path()).unwrap(), Some(SEGMENT_SIZE));
    // One long stream (leaves fill with maximum records one by one) ...
    for i in 0..120u64 {
        let request = AppendRequest::new("big", ExpectedVersion::Any, vec![max_event(i)]);
        log.append(request).await.unwrap();
        assert!(
            blob_files(dir.path()).is_empty(),
            "after append {i}: {:?}",
            blob_files(dir.path())
        );
    }
    // ... and large group commits: many maximum records in one batch.
    let tasks: Vec<_> = (0..8u64)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..12u64 {
                    let events = (0..4).map(|k| max_event(1_000 + w * 100 + i * 4 + k));
                    let request = AppendRequest::new(
                        format!("big-{w}"),
                        ExpectedVersion::Any,
                        events.collect(),
                    );
                    log.append(request).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(log.next_position(), 120 + 8 * 12 * 4);
    assert!(
        blob_files(dir.path()).is_empty(),
        "{:?}",
        blob_files(dir.path())
    );
    assert_eq!(log.writer_stats().blob_files_synced, 0);
    log.close().await;
    drop(log);
    std::thread::sleep(std::time::Duration::from_millis(100));
    // Reopening (sled recovers and rewrites its snapshot) keeps it so.
    let log = EventLog::open(small_cache(dir.path())).unwrap();
    assert_eq!(log.read_stream("big", 1, 200).unwrap().len(), 120);
    assert!(blob_files(dir.path()).is_empty());
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_with_sleds_default_segment_size_fsyncs_every_blob_file_at_each_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // A data directory made before the segment size was set: sled's default.
    {
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        db.flush().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        stored_segment_size(dir.path()).unwrap(),
        Some(SLED_DEFAULT_SEGMENT_SIZE)
    );
    let mut config = small_cache(dir.path());
    // The smallest journal file: 64 appends of 66 KiB turn it twice.
    config.journal_file_bytes = 0;
    let log = EventLog::open(config).unwrap();
    let mut checked = 0usize;
    let mut checkpoints = log.writer_stats().checkpoints;
    for i in 0..64u64 {
        // Written by earlier appends, whose batches sled held before any
        // checkpoint this append's commit runs.
        let before = blob_files(dir.path());
        let request = AppendRequest::new("big", ExpectedVersion::Any, vec![max_event(i)]);
        log.append(request).await.unwrap();
        let now = log.writer_stats().checkpoints;
        if now == checkpoints {
            continue;
        }
        checkpoints = now;
        // Every blob file there before this append and still there (sled
        // writes a blob file once and may remove it) was fsynced by the
        // checkpoint at its whole length.
        let synced: BTreeMap<String, u64> = log.synced_blob_files().into_iter().collect();
        for (name, len) in blob_files(dir.path())
            .into_iter()
            .filter(|(n, _)| before.contains_key(n))
        {
            assert_eq!(
                synced.get(&name),
                Some(&len),
                "after append {i}: blob file {name} ({len} bytes) was not fsynced by the checkpoint"
            );
            checked += 1;
        }
    }
    assert!(checkpoints >= 2, "only {checkpoints} checkpoints");
    assert!(
        checked > 0,
        "sled's default segment size must produce blob files here"
    );
    assert!(log.writer_stats().blob_files_synced > 0);
    log.close().await;
}
