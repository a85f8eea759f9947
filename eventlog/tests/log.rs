//! Behaviour of appends, reads, idempotency and consumer checkpoints.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use common::{append_one, event, open};
use eventlog::{
    AppendError, AppendRequest, ConsumerBatch, Durability, EventLog, ExpectedVersion, Idempotency,
    LogConfig, LogError,
};

#[tokio::test]
async fn appends_get_dense_positions_and_stream_versions() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Durable);
    let a = log
        .append(append_one("quote-1", ExpectedVersion::NoStream, "a"))
        .await
        .unwrap();
    let b = log
        .append(AppendRequest::new(
            "quote-2",
            ExpectedVersion::Any,
            vec![event("b"), event("c")],
        ))
        .await
        .unwrap();
    let c = log
        .append(append_one("quote-1", ExpectedVersion::Exact(1), "d"))
        .await
        .unwrap();
    assert_eq!((a.first_position, a.stream_version), (0, 1));
    assert_eq!(
        (b.first_position, b.last_position, b.stream_version),
        (1, 2, 2)
    );
    assert_eq!((c.first_position, c.stream_version), (3, 2));
    assert_eq!(log.next_position(), 4);
    let quote1: Vec<_> = log.read_stream("quote-1", 1, 10).unwrap();
    assert_eq!(
        quote1.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![0, 3]
    );
    assert_eq!(quote1[1].payload, b"d");
    assert_eq!(quote1[1].prev_hash, log.read_at(2).unwrap().unwrap().hash);
    assert_eq!(log.read_stream("quote-1", 2, 10).unwrap().len(), 1);
    assert_eq!(
        log.read_all(1, 2)
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(log.stream_version("quote-2").unwrap(), 2);
    assert_eq!(log.stream_version("missing").unwrap(), 0);
    log.close().await;
}

#[tokio::test]
async fn a_wrong_expected_version_names_expected_and_actual_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Durable);
    log.append(append_one("s", ExpectedVersion::NoStream, "a"))
        .await
        .unwrap();
    let err = log
        .append(append_one("s", ExpectedVersion::Exact(5), "b"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        AppendError::WrongExpectedVersion {
            stream_id: "s".into(),
            expected: ExpectedVersion::Exact(5),
            actual: 1
        }
    );
    assert!(err.to_string().contains("expected 5, actual 1"));
    let err = log
        .append(append_one("s", ExpectedVersion::NoStream, "c"))
        .await
        .unwrap_err();
    assert!(err.is_version_conflict());
    assert_eq!(log.next_position(), 1);
    log.close().await;
}

#[tokio::test]
async fn the_same_idempotency_key_and_request_returns_the_first_result_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Durable);
    let request = append_one("s", ExpectedVersion::Any, "a").idempotent(Idempotency::key("cmd-1"));
    let first = log.append(request.clone()).await.unwrap();
    log.append(append_one("s", ExpectedVersion::Any, "other"))
        .await
        .unwrap();
    let again = log.append(request).await.unwrap();
    assert!(!first.deduplicated);
    assert!(again.deduplicated);
    assert_eq!(again.positions(), first.positions());
    assert_eq!(again.stream_version, first.stream_version);
    assert_eq!(log.next_position(), 2);
    let (hash, recorded) = log.idempotency_record("cmd-1").unwrap().unwrap();
    assert_eq!(recorded.first_position, 0);
    assert_ne!(hash, [0u8; 32]);
    log.close().await;
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_request_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Durable);
    log.append(append_one("s", ExpectedVersion::Any, "a").idempotent(Idempotency::key("k")))
        .await
        .unwrap();
    let err = log
        .append(append_one("s", ExpectedVersion::Any, "b").idempotent(Idempotency::key("k")))
        .await
        .unwrap_err();
    assert_eq!(err, AppendError::IdempotencyConflict { key: "k".into() });
    // A caller-supplied request hash decides instead of the content.
    let hash = [7u8; 32];
    let a = log
        .append(
            append_one("t", ExpectedVersion::Any, "x")
                .idempotent(Idempotency::with_request_hash("c", hash)),
        )
        .await
        .unwrap();
    let b = log
        .append(
            append_one("t", ExpectedVersion::Any, "y")
                .idempotent(Idempotency::with_request_hash("c", hash)),
        )
        .await
        .unwrap();
    assert_eq!(a.first_position, b.first_position);
    assert!(b.deduplicated);
    assert_eq!(log.next_position(), 2);
    log.close().await;
}

#[tokio::test]
async fn two_appends_with_one_key_in_one_group_commit_write_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Durable);
    let request = append_one("s", ExpectedVersion::Any, "a").idempotent(Idempotency::key("same"));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let log = log.clone();
            let request = request.clone();
            tokio::spawn(async move { log.append(request).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(log.next_position(), 1);
    assert_eq!(outcomes.iter().filter(|o| !o.deduplicated).count(), 1);
    assert!(outcomes.iter().all(|o| o.first_position == 0));
    log.close().await;
}

#[tokio::test]
async fn invalid_appends_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Durable);
    let empty = AppendRequest::new("s", ExpectedVersion::Any, vec![]);
    assert!(matches!(
        log.append(empty).await,
        Err(AppendError::Invalid(_))
    ));
    let no_stream = append_one("", ExpectedVersion::Any, "a");
    assert!(matches!(
        log.append(no_stream).await,
        Err(AppendError::Invalid(_))
    ));
    let mut big = event("");
    big.payload = vec![0; eventlog::record::MAX_PAYLOAD_BYTES + 1];
    let big = AppendRequest::new("s", ExpectedVersion::Any, vec![big]);
    assert!(matches!(
        log.append(big).await,
        Err(AppendError::Invalid(_))
    ));
    assert_eq!(log.next_position(), 0);
    log.close().await;
}

#[tokio::test]
async fn a_second_open_of_a_held_directory_says_it_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Durable);
    let err = EventLog::open(LogConfig::new(dir.path())).unwrap_err();
    assert!(matches!(err, LogError::Locked(_)), "{err}");
    assert!(err.to_string().contains("locked"));
    log.close().await;
}

#[tokio::test]
async fn appends_after_close_fail_and_subscriptions_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Durable);
    log.append(append_one("s", ExpectedVersion::Any, "a"))
        .await
        .unwrap();
    let mut sub = log.subscribe(0);
    log.close().await;
    assert_eq!(sub.next().await.unwrap().unwrap().position, 0);
    assert!(sub.next().await.unwrap().is_none());
    assert_eq!(
        log.append(append_one("s", ExpectedVersion::Any, "b")).await,
        Err(AppendError::Closed)
    );
}

#[tokio::test]
async fn a_consumer_commits_rows_and_checkpoint_together_and_keeps_them_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), Durability::Durable);
        let store = log.consumer("counter").unwrap();
        assert_eq!(store.checkpoint().unwrap(), 0);
        let mut rows = ConsumerBatch::default();
        rows.insert(b"count", 3u64.to_be_bytes().to_vec());
        store.commit(rows, 3).unwrap();
        store.record_failure(3, "bad payload").unwrap();
        assert_eq!(store.failure().unwrap().unwrap().position, 3);
        log.flush().unwrap();
        log.close().await;
    }
    let log = open(dir.path(), Durability::Durable);
    let store = log.consumer("counter").unwrap();
    assert_eq!(store.checkpoint().unwrap(), 3);
    assert_eq!(
        store.get(b"count").unwrap().unwrap().as_ref(),
        3u64.to_be_bytes()
    );
    assert_eq!(store.failure().unwrap().unwrap().message, "bad payload");
    store.commit(ConsumerBatch::default(), 4).unwrap();
    assert!(
        store.failure().unwrap().is_none(),
        "a commit clears the failure"
    );
    assert_eq!(log.consumers().unwrap(), vec!["counter".to_string()]);
    assert_eq!(store.scan_prefix(b"co").count(), 1);
    log.close().await;
}

#[tokio::test]
async fn verify_reports_the_head_of_a_healthy_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Buffered);
    for i in 0..100 {
        log.append(append_one(
            &format!("s{}", i % 7),
            ExpectedVersion::Any,
            "x",
        ))
        .await
        .unwrap();
    }
    let report = log.verify(&mut |_| {}).unwrap();
    assert_eq!(report.events, 100);
    assert_eq!(report.streams, 7);
    assert_eq!(report.head_position(), Some(99));
    assert_eq!(report.head_hash, log.read_at(99).unwrap().unwrap().hash);
    log.close().await;
}
