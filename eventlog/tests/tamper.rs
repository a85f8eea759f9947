//! Tampering with stored records is detected and located.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{append_one, open};
use eventlog::keyspace::{run_key, run_value, LOG_TREE};
use eventlog::pages::{encode_page, page_key, page_records};
use eventlog::{
    verify_dir, Durability, EventLog, ExpectedVersion, LogConfig, LogError, Problem, VerifyError,
};

async fn log_of(dir: &Path, events: u64) {
    let log = open(dir, Durability::Durable);
    for i in 0..events {
        log.append(append_one(
            &format!("s{}", i % 5),
            ExpectedVersion::Any,
            &format!("payload {i}"),
        ))
        .await
        .unwrap();
    }
    log.close().await;
}

/// Reopening a directory this process has just closed can find sled's
/// background threads still holding its lock for a moment (seen in CI):
/// retry while the only problem is that lock.
fn unlocked<T, E>(
    locked: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match attempt() {
            Err(e) if locked(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn is_locked(e: &LogError) -> bool {
    matches!(e, LogError::Locked(_))
}

fn verify(dir: &Path) -> Result<eventlog::VerifyReport, VerifyError> {
    unlocked(
        |e| matches!(e, VerifyError::Log(l) if is_locked(l)),
        || verify_dir(dir, &mut |_| {}),
    )
}

fn reopen(dir: &Path) -> Result<EventLog, LogError> {
    unlocked(is_locked, || EventLog::open(LogConfig::new(dir)))
}

fn with_tree(dir: &Path, f: impl FnOnce(&sled::Tree)) {
    let db = unlocked(is_locked, || eventlog::storage::open_sled(dir, 1 << 24)).unwrap();
    let tree = db.open_tree(LOG_TREE).unwrap();
    f(&tree);
    db.flush().unwrap();
}

/// The one record of a page: `log_of` appends one event at a time, so
/// every group commit, and so every page, holds one record.
fn only_record(page: &[u8]) -> Vec<u8> {
    let records = page_records(page).unwrap();
    assert_eq!(records.len(), 1, "one record per page");
    records[0].to_vec()
}

/// A page holding just `record`.
fn record_page(record: &[u8]) -> Vec<u8> {
    encode_page(&[record])
}

fn damaged_at(dir: &Path) -> (u64, Problem) {
    match verify(dir) {
        Err(VerifyError::Damaged { position, problem }) => (position, problem),
        other => panic!("expected damage, got {other:?}"),
    }
}

#[tokio::test]
async fn changing_any_byte_of_a_record_is_named_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 50).await;
    let page = {
        let db = eventlog::storage::open_sled(dir.path(), 1 << 24).unwrap();
        db.open_tree(LOG_TREE)
            .unwrap()
            .get(page_key(17))
            .unwrap()
            .unwrap()
            .to_vec()
    };
    let original = only_record(&page);
    for index in [
        1,
        original.len() / 2,
        original.len() - 40,
        original.len() - 1,
    ] {
        with_tree(dir.path(), |tree| {
            let mut bytes = original.clone();
            bytes[index] ^= 0x20;
            tree.insert(page_key(17), record_page(&bytes)).unwrap();
        });
        let (position, _) = damaged_at(dir.path());
        assert_eq!(position, 17, "flip at byte {index}");
    }
    with_tree(dir.path(), |tree| {
        tree.insert(page_key(17), record_page(&original)).unwrap();
    });
    assert_eq!(verify(dir.path()).unwrap().events, 50);
}

#[tokio::test]
async fn a_deleted_record_is_named_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 50).await;
    with_tree(dir.path(), |tree| {
        tree.remove(page_key(23)).unwrap();
    });
    let (position, problem) = damaged_at(dir.path());
    assert_eq!(position, 23);
    assert_eq!(problem, Problem::Gap { found: 24 });
}

#[tokio::test]
async fn opening_a_log_whose_last_record_was_removed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 10).await;
    with_tree(dir.path(), |tree| {
        tree.remove(page_key(9)).unwrap();
    });
    let err = reopen(dir.path()).unwrap_err();
    assert!(err.is_damage(), "{err}");
    assert!(
        matches!(err, LogError::Damaged { position: 9, .. }),
        "the missing record is named: {err}"
    );
}

#[tokio::test]
async fn a_broken_stream_index_is_named_and_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 20).await;
    // s2 holds positions 2, 7, 12, 17, one append (one run) each: point
    // its version 2 somewhere else.
    with_tree(dir.path(), |tree| {
        tree.insert(run_key("s2", 2), &run_value(3, 1)[..]).unwrap();
    });
    let (position, problem) = damaged_at(dir.path());
    assert_eq!(position, 7);
    assert_eq!(
        problem,
        Problem::IndexMismatch {
            stream: "s2".into(),
            version: 2
        }
    );
    // A run that claims one more event overlaps the next run.
    with_tree(dir.path(), |tree| {
        tree.insert(run_key("s2", 2), &run_value(7, 2)[..]).unwrap();
    });
    assert_eq!(
        damaged_at(dir.path()),
        (
            12,
            Problem::ExtraIndexEntry {
                stream: "s2".into(),
                version: 3
            }
        )
    );
    // A run past the last record is an entry no record backs.
    with_tree(dir.path(), |tree| {
        tree.insert(run_key("s2", 2), &run_value(7, 1)[..]).unwrap();
        tree.insert(run_key("s2", 5), &run_value(20, 1)[..])
            .unwrap();
    });
    assert_eq!(
        damaged_at(dir.path()),
        (
            20,
            Problem::ExtraIndexEntry {
                stream: "s2".into(),
                version: 5
            }
        )
    );
    let err = reopen(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Damaged {
                problem: Problem::ExtraIndexEntry { .. },
                ..
            }
        ),
        "{err}"
    );
    // Mended, the log opens again and s2 continues from version 4.
    with_tree(dir.path(), |tree| {
        tree.remove(run_key("s2", 5)).unwrap();
    });
    let log = reopen(dir.path()).unwrap();
    assert_eq!(log.stream_version("s2").unwrap(), 4);
    log.close().await;
}

#[tokio::test]
async fn a_bad_idempotency_record_is_named_and_the_first_in_key_order_wins() {
    use eventlog::keyspace::{idempotency_key, idempotency_value, IdempotencyValue};
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 20).await;
    let record = |first, last| {
        idempotency_value(&IdempotencyValue {
            request_hash: [7; 32],
            first_position: first,
            last_position: last,
            stream_version: 1,
        })
    };
    let bad = |key: &str| Problem::BadIdempotencyRecord { key: key.into() };
    // Records that point inside the log are fine.
    with_tree(dir.path(), |tree| {
        tree.insert(idempotency_key("k-fine"), &record(3, 4)[..])
            .unwrap();
    });
    assert_eq!(verify(dir.path()).unwrap().events, 20);
    // A range ending past the log, named at its first position.
    with_tree(dir.path(), |tree| {
        tree.insert(idempotency_key("k-late"), &record(18, 25)[..])
            .unwrap();
    });
    assert_eq!(damaged_at(dir.path()), (18, bad("k-late")));
    // An empty range after it in key order: the late one is still first.
    with_tree(dir.path(), |tree| {
        tree.insert(idempotency_key("k-reversed"), &record(9, 2)[..])
            .unwrap();
    });
    assert_eq!(damaged_at(dir.path()), (18, bad("k-late")));
    // A malformed record before both: named at the log's last position.
    with_tree(dir.path(), |tree| {
        tree.insert(idempotency_key("k-cut"), &record(1, 1)[..10])
            .unwrap();
    });
    assert_eq!(damaged_at(dir.path()), (19, bad("k-cut")));
    // Without the malformed and the late one, the empty range is named.
    with_tree(dir.path(), |tree| {
        tree.remove(idempotency_key("k-cut")).unwrap();
        tree.remove(idempotency_key("k-late")).unwrap();
    });
    assert_eq!(damaged_at(dir.path()), (9, bad("k-reversed")));
    let err = reopen(dir.path()).unwrap_err();
    assert!(err.is_damage(), "{err}");
}
