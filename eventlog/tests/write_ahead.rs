//! The write-ahead rule of the writer: a group commit goes into sled only
//! once its journal frame is durable, one entry at a time. A crash in the
//! middle of that apply is completed from the journal at the next open,
//! and an idempotency key whose append is still on its way through the
//! journal (not yet in sled) is recognised all the same.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::time::Duration;

use common::{append_one, event};
use eventlog::{
    AppendError, AppendRequest, Durability, EventLog, ExpectedVersion, FaultPlan, Idempotency,
    LogConfig,
};

fn config(dir: &std::path::Path, faults: FaultPlan) -> LogConfig {
    let mut config = LogConfig::new(dir).durability(Durability::Durable);
    config.faults = faults;
    config
}

/// The third group commit's apply writes half of its entries and fails:
/// its caller is not acknowledged, the log is fenced, and the reopened log
/// is whole: verify is clean and the half-applied frame, which the
/// journal holds, is there in full (it was durable; only its answer was
/// lost), with its stream index and head.
#[tokio::test]
async fn an_apply_cut_half_way_is_completed_from_the_journal_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultPlan {
        half_write_at: Some(3),
        ..FaultPlan::default()
    };
    let log = EventLog::open(config(dir.path(), faults)).unwrap();
    for i in 0..2u64 {
        let outcome = log
            .append(append_one(
                "quote-1",
                ExpectedVersion::Exact(i),
                &format!("e{i}"),
            ))
            .await
            .unwrap();
        assert_eq!(outcome.first_position, i);
    }
    let cut = log
        .append(append_one("quote-1", ExpectedVersion::Exact(2), "e2"))
        .await;
    assert!(
        matches!(cut, Err(AppendError::Storage(ref m)) if m.contains("half-way")),
        "{cut:?}"
    );
    assert!(matches!(
        log.append(append_one("quote-2", ExpectedVersion::Any, "x"))
            .await,
        Err(AppendError::Fenced(_))
    ));
    assert_eq!(log.next_position(), 2, "nothing published past the cut");
    log.close().await;
    drop(log);

    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    let report = log.verify(&mut |_| {}).unwrap();
    assert_eq!(report.events, 3);
    assert_eq!(log.next_position(), 3);
    assert_eq!(log.stream_version("quote-1").unwrap(), 3);
    let stream = log.read_stream("quote-1", 1, 10).unwrap();
    let payloads: Vec<_> = stream.iter().map(|r| r.payload.clone()).collect();
    assert_eq!(
        payloads,
        vec![b"e0".to_vec(), b"e1".to_vec(), b"e2".to_vec()]
    );
    let next = log
        .append(append_one("quote-1", ExpectedVersion::Exact(3), "e3"))
        .await
        .unwrap();
    assert_eq!(next.first_position, 3);
    log.close().await;
}

fn keyed(payload: &str) -> AppendRequest {
    AppendRequest::new("quote-7", ExpectedVersion::Any, vec![event(payload)])
        .idempotent(Idempotency::key("command-42"))
}

/// While the journal is slow, a first append waits in the writer (its
/// frame in the journal, not in sled). A retry of it in a later group
/// commit gets the same answer and appends nothing; another request under
/// the same key is refused. Then the log holds the event once, before and
/// after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_an_append_still_in_the_journal_is_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultPlan {
        slow_journal: Some(Duration::from_millis(300)),
        ..FaultPlan::default()
    };
    let log = EventLog::open(config(dir.path(), faults)).unwrap();
    let first = tokio::spawn({
        let log = log.clone();
        async move { log.append(keyed("approve")).await }
    });
    // The first append is staged and on its way through the journal.
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        log.next_position(),
        0,
        "the first append is not durable yet"
    );
    let retry = tokio::spawn({
        let log = log.clone();
        async move { log.append(keyed("approve")).await }
    });
    let other = tokio::spawn({
        let log = log.clone();
        async move { log.append(keyed("reject")).await }
    });
    let first = first.await.unwrap().unwrap();
    let retry = retry.await.unwrap().unwrap();
    assert!(!first.deduplicated);
    assert!(retry.deduplicated, "the retry is answered from the first");
    assert_eq!(retry.first_position, first.first_position);
    assert_eq!(retry.stream_version, first.stream_version);
    assert!(
        matches!(
            other.await.unwrap(),
            Err(AppendError::IdempotencyConflict { .. })
        ),
        "another request under the key is refused"
    );
    assert_eq!(log.read_stream("quote-7", 1, 10).unwrap().len(), 1);
    log.close().await;
    drop(log);

    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.read_stream("quote-7", 1, 10).unwrap().len(), 1);
    assert_eq!(log.verify(&mut |_| {}).unwrap().events, 1);
    let again = log.append(keyed("approve")).await.unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.first_position, first.first_position);
    log.close().await;
}
