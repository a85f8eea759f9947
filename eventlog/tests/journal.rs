//! The redo journal (ADR 0030): acknowledged group commits that sled lost
//! since its last checkpoint are put back from the journal; a torn last
//! frame (never acknowledged) is ignored; a garbled frame that was
//! acknowledged is not silently dropped; a journal that starts after
//! sled's head is refused; many turns of a small journal lose nothing.
//!
//! sled losing what it wrote since its last checkpoint (what a power cut
//! does to a file that was not fsynced) is simulated by putting back a copy
//! of sled's files taken at a checkpoint; the FUSE power-cut test in the
//! `tests` crate cuts the power for real.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::path::{Path, PathBuf};

use common::append_one;
use eventlog::journal::{scan_file, FrameEnd, JOURNAL_DIR, JOURNAL_FILES};
use eventlog::{
    verify_dir, EventLog, ExpectedVersion, LogConfig, LogError, Problem, VerifyError,
    ACKED_HEAD_FILE,
};

/// Lets a closed log's sled threads release the directory.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(150));
}

fn payload(i: u64) -> String {
    format!("event-{i:05}-{}", "p".repeat(200))
}

/// Opens the log, appends events `from..to` one commit each, closes it.
async fn append_range(dir: &Path, from: u64, to: u64) {
    let log = EventLog::open(LogConfig::new(dir)).unwrap();
    assert_eq!(log.next_position(), from);
    for i in from..to {
        log.append(append_one(
            &format!("s{}", i % 5),
            ExpectedVersion::Any,
            &payload(i),
        ))
        .await
        .unwrap();
    }
    log.close().await;
    drop(log);
    settle();
}

/// sled's own files in a data directory (not the journal, not the
/// acknowledged head).
fn sled_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name != JOURNAL_DIR && name != ACKED_HEAD_FILE
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

/// Copies sled's files of `dir` into `keep`.
fn save_sled(dir: &Path, keep: &Path) {
    for path in sled_files(dir) {
        copy_tree(&path, &keep.join(path.file_name().unwrap()));
    }
}

/// Replaces sled's files of `dir` by the copy in `keep`: sled is back at
/// that checkpoint, the journal and the acknowledged head are not.
fn restore_sled(dir: &Path, keep: &Path) {
    for path in sled_files(dir) {
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    save_sled(keep, dir);
}

/// The newest journal file of `dir`.
fn newest_journal(dir: &Path) -> PathBuf {
    JOURNAL_FILES
        .iter()
        .map(|name| dir.join(JOURNAL_DIR).join(name))
        .filter_map(|path| scan_file(&path).unwrap().map(|s| (s.header.epoch, path)))
        .max()
        .unwrap()
        .1
}

/// A log of 40 events checkpointed at 20: sled is put back at 20, the
/// journal holds 20..40.
async fn sled_behind_journal() -> (tempfile::TempDir, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    append_range(dir.path(), 0, 20).await;
    save_sled(dir.path(), keep.path());
    append_range(dir.path(), 20, 40).await;
    restore_sled(dir.path(), keep.path());
    (dir, keep)
}

#[tokio::test]
async fn acknowledged_commits_that_sled_lost_are_put_back_from_the_journal() {
    let (dir, _keep) = sled_behind_journal().await;
    let scanned = scan_file(&newest_journal(dir.path())).unwrap().unwrap();
    assert_eq!(scanned.header.start_position, 20);
    assert_eq!(scanned.frames.len(), 20);
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.next_position(), 40);
    for i in 0..40 {
        let record = log.read_at(i).unwrap().unwrap();
        assert_eq!(record.payload, payload(i).as_bytes());
    }
    assert_eq!(log.verify(&mut |_| {}).unwrap().events, 40);
    let outcome = log
        .append(append_one("after", ExpectedVersion::NoStream, "after"))
        .await
        .unwrap();
    assert_eq!(outcome.first_position, 40);
    log.close().await;
}

#[tokio::test]
async fn verify_of_a_closed_directory_sees_the_journaled_commits_too() {
    let (dir, _keep) = sled_behind_journal().await;
    assert_eq!(verify_dir(dir.path(), &mut |_| {}).unwrap().events, 40);
}

#[tokio::test]
async fn a_torn_last_frame_was_never_acknowledged_and_is_ignored() {
    let (dir, _keep) = sled_behind_journal().await;
    let path = newest_journal(dir.path());
    let scanned = scan_file(&path).unwrap().unwrap();
    // Cut the file in the middle of its last frame, as a power cut during
    // its write would; that commit was not acknowledged, so the head on
    // record is the one before it.
    let last = scanned.frames.last().unwrap();
    let cut = scanned.end_offset - last.stored_len() / 2;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(cut).unwrap();
    drop(file);
    assert_eq!(scan_file(&path).unwrap().unwrap().end, FrameEnd::Torn);
    std::fs::remove_file(dir.path().join(ACKED_HEAD_FILE)).unwrap();
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.next_position(), 39);
    let outcome = log
        .append(append_one("after", ExpectedVersion::NoStream, "after"))
        .await
        .unwrap();
    assert_eq!(outcome.first_position, 39);
    assert_eq!(log.verify(&mut |_| {}).unwrap().events, 40);
    log.close().await;
}

#[tokio::test]
async fn a_garbled_acknowledged_frame_is_not_silently_dropped() {
    let (dir, _keep) = sled_behind_journal().await;
    let path = newest_journal(dir.path());
    let scanned = scan_file(&path).unwrap().unwrap();
    // Flip a payload byte of the sixth frame: replay stops before it, and
    // the acknowledged head (40) shows 14 commits missing.
    let offset: u64 = eventlog::journal::FILE_HEADER_BYTES
        + scanned.frames[..5]
            .iter()
            .map(|f| f.stored_len())
            .sum::<u64>()
        + eventlog::journal::FRAME_HEADER_BYTES as u64
        + 10;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset as usize] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(scan_file(&path).unwrap().unwrap().frames.len(), 5);
    let err = EventLog::open(LogConfig::new(dir.path())).unwrap_err();
    // The message points at the journal, where the events were.
    assert!(err.to_string().contains("`journal/`"), "{err}");
    match &err {
        LogError::Damaged {
            position,
            problem: Problem::MissingAcknowledged { acknowledged: 40 },
        } => assert_eq!(*position, 25),
        other => panic!("expected missing acknowledged events: {other}"),
    }
    settle();
    match verify_dir(dir.path(), &mut |_| {}) {
        Err(VerifyError::Damaged { position: 25, .. }) => {}
        other => panic!("expected damage at 25: {other:?}"),
    }
}

#[tokio::test]
async fn a_journal_that_starts_after_the_data_files_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    append_range(dir.path(), 0, 10).await;
    save_sled(dir.path(), keep.path());
    append_range(dir.path(), 10, 20).await;
    // The third open starts the journal's turn at 20, after a checkpoint.
    append_range(dir.path(), 20, 30).await;
    restore_sled(dir.path(), keep.path());
    match EventLog::open(LogConfig::new(dir.path())) {
        Err(LogError::Inconsistent { position, problem }) => {
            assert_eq!(position, 10, "{problem}");
            assert!(
                problem.contains("journal starts at position 20"),
                "{problem}"
            );
        }
        other => panic!("expected a refusal: {other:?}"),
    }
}

#[tokio::test]
async fn many_turns_of_a_small_journal_keep_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig::new(dir.path());
    config.journal_file_bytes = 0;
    let log = EventLog::open(config).unwrap();
    let big = "b".repeat(60_000);
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let log = log.clone();
            let big = big.clone();
            tokio::spawn(async move {
                for i in 0..60 {
                    let body = format!("w{w}-{i}-{big}");
                    log.append(append_one(&format!("w{w}"), ExpectedVersion::Any, &body))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = log.writer_stats();
    // 240 events of 60 KB are 14 MB: at least five turns of 1 MiB files.
    assert!(stats.checkpoints >= 5, "{stats:?}");
    log.close().await;
    drop(log);
    settle();
    // The reopen starts a new turn in a recycled file: right after its
    // header lie frames of an older turn, which are stale, not replayed.
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    let newest = scan_file(&newest_journal(dir.path())).unwrap().unwrap();
    assert_eq!(newest.header.start_position, 240);
    assert!(newest.frames.is_empty());
    assert_eq!(newest.end, FrameEnd::Stale);
    assert_eq!(log.verify(&mut |_| {}).unwrap().events, 240);
    for w in 0..4 {
        let events = log.read_stream(&format!("w{w}"), 1, 100).unwrap();
        assert_eq!(events.len(), 60);
        for (i, event) in events.iter().enumerate() {
            assert!(event.payload.starts_with(format!("w{w}-{i}-").as_bytes()));
        }
    }
    log.close().await;
}
