//! Fault injection: a failed write or flush, or a stalled checkpoint,
//! fences the writer.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use common::append_one;
use eventlog::{AppendError, Durability, EventLog, ExpectedVersion, FaultPlan, LogConfig};

async fn run_until_fenced(faults: FaultPlan) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig::new(dir.path()).durability(Durability::Durable);
    config.faults = faults;
    let log = EventLog::open(config).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut errors = Vec::new();
                for i in 0..40 {
                    let payload = format!("w{w}-{i}");
                    match log
                        .append(append_one(&format!("w{w}"), ExpectedVersion::Any, &payload))
                        .await
                    {
                        Ok(outcome) => {
                            assert!(errors.is_empty(), "acknowledged after a storage failure");
                            acked.push((outcome.first_position, payload));
                        }
                        Err(e @ (AppendError::Storage(_) | AppendError::Fenced(_))) => {
                            errors.push(e)
                        }
                        Err(other) => panic!("unexpected {other}"),
                    }
                }
                (acked, errors)
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut storage_errors = 0;
    let mut fenced_errors = 0;
    for t in tasks {
        let (a, e) = t.await.unwrap();
        acked.extend(a);
        storage_errors += e
            .iter()
            .filter(|e| matches!(e, AppendError::Storage(_)))
            .count();
        fenced_errors += e
            .iter()
            .filter(|e| matches!(e, AppendError::Fenced(_)))
            .count();
    }
    assert!(
        storage_errors >= 1,
        "the failing batch's callers got an error"
    );
    assert!(fenced_errors >= 1, "later appends are refused");
    assert!(log.fenced().is_some(), "the log says it is fenced");
    let last_acked = acked.iter().map(|a| a.0).max();
    assert_eq!(
        log.next_position(),
        last_acked.map_or(0, |p| p + 1),
        "nothing published after the fence"
    );
    log.close().await;
    drop(log);

    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    let report = log.verify(&mut |_| {}).unwrap();
    assert!(report.events >= acked.len() as u64);
    for (position, payload) in &acked {
        let record = log
            .read_at(*position)
            .unwrap()
            .expect("acknowledged event present");
        assert_eq!(record.payload, payload.as_bytes());
    }
    let fresh = log
        .append(append_one("after", ExpectedVersion::Any, "ok"))
        .await
        .unwrap();
    assert_eq!(fresh.first_position, report.events);
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_flush_fences_the_writer_and_reopening_keeps_every_acknowledged_event() {
    run_until_fenced(FaultPlan {
        fail_write_at: None,
        fail_flush_at: Some(3),
        ..FaultPlan::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_write_fences_the_writer_and_reopening_keeps_every_acknowledged_event() {
    run_until_fenced(FaultPlan {
        fail_write_at: Some(4),
        fail_flush_at: None,
        ..FaultPlan::default()
    })
    .await;
}

/// sled 0.34's flush can stall for good (ADR 0032). A checkpoint whose
/// flush does not return within the limit fences the log with an error
/// naming the stall, instead of leaving every later append waiting; every
/// acknowledged append is still there after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_checkpoint_fences_the_log_instead_of_hanging_its_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig::new(dir.path());
    // 8 KiB events turn a 1 MiB journal file after about 128 appends.
    config.journal_file_bytes = eventlog::journal::MIN_FILE_BYTES;
    config.checkpoint_stall_limit = std::time::Duration::from_millis(200);
    config.faults.stall_checkpoint_flush = Some(std::time::Duration::from_secs(2));
    let log = EventLog::open(config).unwrap();
    let payload = "x".repeat(8 * 1024);
    let mut acked = Vec::new();
    let mut failure = None;
    let appends = async {
        for i in 0..1_000 {
            match log
                .append(append_one(
                    "s",
                    ExpectedVersion::Any,
                    &format!("{i}{payload}"),
                ))
                .await
            {
                Ok(outcome) => acked.push((outcome.first_position, i)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
    };
    // Without the limit the appends after the stall would wait forever.
    tokio::time::timeout(std::time::Duration::from_secs(60), appends)
        .await
        .expect("appends were answered");
    let failure = failure.expect("a checkpoint came within 1,000 appends of 8 KiB");
    assert!(
        failure.to_string().contains("did not finish writing"),
        "the error names the stall: {failure}"
    );
    assert!(
        !acked.is_empty(),
        "appends before the checkpoint were acknowledged"
    );
    match log
        .append(append_one("s", ExpectedVersion::Any, "after"))
        .await
    {
        Err(AppendError::Fenced(reason)) => assert!(reason.contains("did not finish writing")),
        other => panic!("expected the fence, got {other:?}"),
    }
    log.close().await;
    drop(log);

    let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
    assert_eq!(log.fenced(), None, "reopening lifts the fence");
    log.verify(&mut |_| {}).unwrap();
    for (position, i) in &acked {
        let record = log
            .read_at(*position)
            .unwrap()
            .expect("acknowledged event present");
        assert!(record.payload.starts_with(format!("{i}x").as_bytes()));
    }
    log.close().await;
}
