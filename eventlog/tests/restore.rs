//! Restoring a log from its stored records (`eventlog::restore`): the
//! restored directory is the same log, key for key, and anything that does
//! not continue the chain is refused at its position.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{event, open};
use eventlog::keyspace::{self, IdempotencyValue, LOG_TREE};
use eventlog::restore::{ChainCheck, RestoreError, RestoreProblem, Restorer};
use eventlog::{
    verify_dir, AckedHead, AppendRequest, Durability, EventLog, ExpectedVersion, Idempotency,
    LogConfig, LogError, VerifyError,
};

const STREAMS: u64 = 7;

/// A log of `events` appends over [`STREAMS`] streams, every third with an
/// idempotency key and some with two events.
async fn source_log(dir: &Path, events: u64) {
    let log = open(dir, Durability::Durable);
    for i in 0..events {
        let mut batch = vec![event(&format!("payload {i}"))];
        if i % 5 == 0 {
            batch.push(event(&format!("payload {i}b")));
        }
        let mut request = AppendRequest::new(
            format!("stream-{}", i % STREAMS),
            ExpectedVersion::Any,
            batch,
        );
        if i % 3 == 0 {
            request = request.idempotent(Idempotency::key(format!("command-{i}")));
        }
        log.append(request).await.unwrap();
    }
    log.close().await;
}

/// Every key and value of the log tree, as stored.
fn stored_tree(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = eventlog::storage::open_sled(dir, 1 << 24).unwrap();
    let tree = db.open_tree(LOG_TREE).unwrap();
    tree.iter()
        .map(|entry| {
            let (key, value) = entry.unwrap();
            (key.to_vec(), value.to_vec())
        })
        .collect()
}

/// The stored records in position order, and the idempotency records: what
/// an export carries.
fn exported(tree: &BTreeMap<Vec<u8>, Vec<u8>>) -> (Vec<Vec<u8>>, Vec<(String, IdempotencyValue)>) {
    let records = tree
        .iter()
        .filter(|(key, _)| eventlog::pages::position_of_page_key(key).is_some())
        .flat_map(|(_, page)| eventlog::pages::page_records(page).unwrap())
        .map(<[u8]>::to_vec)
        .collect();
    let idempotency = tree
        .iter()
        .filter(|(key, _)| key[0] == keyspace::IDEMPOTENCY)
        .map(|(key, value)| {
            (
                String::from_utf8(key[1..].to_vec()).unwrap(),
                keyspace::parse_idempotency_value(value).unwrap(),
            )
        })
        .collect();
    (records, idempotency)
}

#[tokio::test]
async fn a_restored_log_is_the_same_log_record_for_record_and_opens_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    source_log(&source, 120).await;
    let original = stored_tree(&source);
    let (records, idempotency) = exported(&original);
    let report = verify_dir(&source, &mut |_| {}).unwrap();

    let target = tmp.path().join("restored");
    let mut check = ChainCheck::new();
    let mut restorer = Restorer::create(&target, 1 << 24).unwrap();
    for bytes in &records {
        let checked = check.check(bytes.clone()).unwrap();
        assert_eq!(checked.record.position(), checked.event.position);
        restorer.write(checked.record).unwrap();
    }
    for (key, value) in &idempotency {
        restorer.add_idempotency(key, *value).unwrap();
    }
    let restored = restorer.finish().unwrap();
    assert_eq!(restored.events, report.events);
    assert_eq!(restored.streams, STREAMS);
    assert_eq!(restored.idempotency_records, idempotency.len() as u64);
    assert_eq!(restored.head_hash, report.head_hash);
    assert_eq!(check.head_hash(), report.head_hash);

    // Records, idempotency records and meta: all equal. (Pages and index
    // runs may be cut differently: a restore packs records into full pages
    // and merges the runs of adjacent appends; verify below checks both.)
    let copy = stored_tree(&target);
    assert_eq!(exported(&copy), (records.clone(), idempotency.clone()));
    assert_eq!(copy.get(keyspace::META), original.get(keyspace::META));
    assert_eq!(verify_dir(&target, &mut |_| {}).unwrap(), report);
    assert_eq!(
        AckedHead::read(&target),
        Some(AckedHead {
            next_position: report.events,
            head_hash: report.head_hash,
        })
    );

    let source_log = EventLog::open(LogConfig::new(&source)).unwrap();
    let log = EventLog::open(LogConfig::new(&target)).unwrap();
    assert_eq!(log.next_position(), source_log.next_position());
    for s in 0..STREAMS {
        let stream = format!("stream-{s}");
        assert_eq!(
            log.stream_version(&stream).unwrap(),
            source_log.stream_version(&stream).unwrap()
        );
        assert_eq!(
            log.read_stream(&stream, 1, 1000).unwrap(),
            source_log.read_stream(&stream, 1, 1000).unwrap()
        );
    }
    assert_eq!(
        log.idempotency_record("command-9").unwrap(),
        source_log.idempotency_record("command-9").unwrap()
    );
    source_log.close().await;
    // The restored log goes on where the source ended.
    let next = log
        .append(AppendRequest::new(
            "stream-0",
            ExpectedVersion::Any,
            vec![event("after")],
        ))
        .await
        .unwrap();
    assert_eq!(next.first_position, report.events);
    log.close().await;
}

#[tokio::test]
async fn a_flipped_byte_a_missing_record_or_a_record_of_another_check_is_refused_at_its_position() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    source_log(&source, 40).await;
    let (records, _) = exported(&stored_tree(&source));

    let mut tampered = records[17].clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let mut check = ChainCheck::new();
    for bytes in &records[..17] {
        check.check(bytes.clone()).unwrap();
    }
    assert!(matches!(
        check.check(tampered),
        Err(RestoreError::Refused {
            position: 17,
            problem: RestoreProblem::HashMismatch
        })
    ));
    // A refusal leaves the check where it was: the genuine record passes.
    check.check(records[17].clone()).unwrap();
    // Record 19 where 18 is due.
    assert!(matches!(
        check.check(records[19].clone()),
        Err(RestoreError::Refused {
            position: 18,
            problem: RestoreProblem::WrongPosition {
                found: 19,
                expected: 18
            }
        })
    ));

    // The restorer takes records only in order, from one check.
    let mut restorer = Restorer::create(&tmp.path().join("twice"), 1 << 24).unwrap();
    let mut first = ChainCheck::new();
    let mut second = ChainCheck::new();
    restorer
        .write(first.check(records[0].clone()).unwrap().record)
        .unwrap();
    assert!(matches!(
        restorer.write(second.check(records[0].clone()).unwrap().record),
        Err(RestoreError::Refused { position: 1, .. })
    ));
}

#[tokio::test]
async fn a_restore_that_stops_half_way_never_opens_as_a_log() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    source_log(&source, 30).await;
    let (records, _) = exported(&stored_tree(&source));
    let target = tmp.path().join("half");
    {
        let mut check = ChainCheck::new();
        let mut restorer = Restorer::create(&target, 1 << 24).unwrap();
        for bytes in &records[..10] {
            restorer
                .write(check.check(bytes.clone()).unwrap().record)
                .unwrap();
        }
        // Dropped without `finish`: no meta record.
    }
    let refused = EventLog::open(LogConfig::new(&target)).err().unwrap();
    assert!(refused.is_damage(), "{refused}");
    // Verify refuses it too, even when no page was written yet.
    let empty = tmp.path().join("empty");
    drop(Restorer::create(&empty, 1 << 24).unwrap());
    // sled's threads may hold the lock a moment after the drop.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let verified = loop {
        match verify_dir(&empty, &mut |_| {}) {
            Err(VerifyError::Log(LogError::Locked(_))) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other,
        }
    };
    match verified {
        Err(VerifyError::Log(e)) => assert!(e.is_damage(), "{e}"),
        other => panic!("an unfinished restore verified: {other:?}"),
    }
    let refused = EventLog::open(LogConfig::new(&empty)).err().unwrap();
    assert!(refused.is_damage(), "{refused}");
}

#[tokio::test]
async fn a_non_empty_directory_and_idempotency_records_outside_the_log_or_twice_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    source_log(&source, 12).await;
    assert!(matches!(
        Restorer::create(&source, 1 << 24),
        Err(RestoreError::NotEmpty(_))
    ));

    let (records, _) = exported(&stored_tree(&source));
    let mut check = ChainCheck::new();
    let mut restorer = Restorer::create(&tmp.path().join("restored"), 1 << 24).unwrap();
    for bytes in &records {
        restorer
            .write(check.check(bytes.clone()).unwrap().record)
            .unwrap();
    }
    let beyond = IdempotencyValue {
        request_hash: [1; 32],
        first_position: records.len() as u64,
        last_position: records.len() as u64,
        stream_version: 1,
    };
    assert!(matches!(
        restorer.add_idempotency("late", beyond),
        Err(RestoreError::BadIdempotencyRecord { key }) if key == "late"
    ));
    // A key given twice is refused at its second record.
    let inside = IdempotencyValue {
        first_position: 0,
        last_position: 0,
        ..beyond
    };
    restorer.add_idempotency("once", inside).unwrap();
    assert!(matches!(
        restorer.add_idempotency("once", inside),
        Err(RestoreError::BadIdempotencyRecord { key }) if key == "once"
    ));
    // The second value replaced the first in sled: the restore cannot
    // finish as a log.
    assert!(matches!(
        restorer.finish(),
        Err(RestoreError::BadIdempotencyRecord { key }) if key == "once"
    ));
}
