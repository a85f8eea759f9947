//! Attachments: values stored in the same atomic write as an append (the
//! evidence of the external call whose outcome the append records), so a
//! crash keeps both or neither. Not stored for a refused append nor for a
//! retry answered by its first outcome; completed from the journal with
//! the events when sled's apply was cut.
#![allow(clippy::unwrap_used)]

mod common;

use common::{append_one, open};
use eventlog::{
    AppendError, Durability, EventLog, ExpectedVersion, FaultPlan, Idempotency, LogConfig,
    MAX_ATTACHMENT_VALUE_BYTES,
};

fn stored(log: &EventLog, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    log.attachments(prefix)
        .unwrap()
        .into_iter()
        .map(|(key, value)| (key, value.to_vec()))
        .collect()
}

#[tokio::test]
async fn an_attachment_is_stored_with_its_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Durable);
    log.append(
        append_one("handoff-1", ExpectedVersion::NoStream, "accepted")
            .attach(b"ev/h1/2".to_vec(), b"second".to_vec())
            .attach(b"ev/h1/1".to_vec(), b"first".to_vec()),
    )
    .await
    .unwrap();
    // Refused: nothing of it is stored.
    let refused = log
        .append(
            append_one("handoff-1", ExpectedVersion::NoStream, "again")
                .attach(b"ev/h1/3".to_vec(), b"refused".to_vec()),
        )
        .await;
    assert!(matches!(
        refused,
        Err(AppendError::WrongExpectedVersion { .. })
    ));
    // A retry answered by its first outcome stores nothing new.
    let keyed = |value: &[u8]| {
        append_one("handoff-2", ExpectedVersion::Any, "observed")
            .idempotent(Idempotency::key("observe-h2"))
            .attach(b"ev/h2/1".to_vec(), value.to_vec())
    };
    log.append(keyed(b"call one")).await.unwrap();
    let retry = log.append(keyed(b"call two")).await.unwrap();
    assert!(retry.deduplicated);
    // Too large: the append is invalid and nothing is written.
    let huge = log
        .append(
            append_one("handoff-3", ExpectedVersion::Any, "x")
                .attach(b"ev/h3".to_vec(), vec![0; MAX_ATTACHMENT_VALUE_BYTES + 1]),
        )
        .await;
    assert!(matches!(huge, Err(AppendError::Invalid(_))), "{huge:?}");
    assert_eq!(log.stream_version("handoff-3").unwrap(), 0);

    let expected_h1 = vec![
        (b"ev/h1/1".to_vec(), b"first".to_vec()),
        (b"ev/h1/2".to_vec(), b"second".to_vec()),
    ];
    assert_eq!(stored(&log, b"ev/h1/"), expected_h1);
    assert_eq!(
        stored(&log, b"ev/h2/"),
        vec![(b"ev/h2/1".to_vec(), b"call one".to_vec())]
    );
    assert!(stored(&log, b"ev/h3").is_empty());
    log.close().await;
    drop(log);
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    log.verify(&mut |_| {}).unwrap();
    assert_eq!(stored(&log, b"ev/h1/"), expected_h1);
    log.close().await;
}

/// The group commit that carries an attachment fails to go into sled at
/// all, after its journal frame was durable: the journal applies it at the
/// next open, the attachment with it.
#[tokio::test]
async fn an_attachment_cut_with_its_apply_is_completed_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig::new(dir.path()).durability(Durability::Durable);
    config.faults = FaultPlan {
        fail_write_at: Some(2),
        ..FaultPlan::default()
    };
    let log = EventLog::open(config).unwrap();
    log.append(append_one("handoff-1", ExpectedVersion::NoStream, "sent"))
        .await
        .unwrap();
    let cut = log
        .append(
            append_one("handoff-1", ExpectedVersion::Exact(1), "accepted")
                .attach(b"ev/h1/1".to_vec(), b"the call".to_vec()),
        )
        .await;
    assert!(matches!(cut, Err(AppendError::Storage(_))), "{cut:?}");
    log.close().await;
    drop(log);
    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.stream_version("handoff-1").unwrap(), 2);
    assert_eq!(
        stored(&log, b"ev/h1/"),
        vec![(b"ev/h1/1".to_vec(), b"the call".to_vec())]
    );
    log.verify(&mut |_| {}).unwrap();
    log.close().await;
}
