//! Racing writers and subscribers.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::collections::{HashMap, HashSet};

use common::{append_one, open};
use eventlog::{AppendError, Durability, EventLog, ExpectedVersion, LogConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_exact_version_appends_have_one_winner_per_version_and_no_gap() {
    race_exact_versions(LogConfig::new("").stream_heads_kept).await;
}

/// The same race with the writer keeping a single stream head: the others
/// are read back from the stream index, or kept while their group commit
/// waits for the journal (ADR 0062).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_appends_decide_the_same_when_the_writer_keeps_one_head() {
    race_exact_versions(1).await;
}

async fn race_exact_versions(heads_kept: usize) {
    const STREAMS: usize = 4;
    const VERSIONS: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig::new(dir.path());
    config.stream_heads_kept = heads_kept;
    let log = EventLog::open(config).unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut wins = Vec::new();
                let mut conflicts = 0u64;
                for round in 0.. {
                    let stream = format!("quote-{}", (task + round) % STREAMS);
                    let version = log.stream_version(&stream).unwrap();
                    if (0..STREAMS)
                        .all(|s| log.stream_version(&format!("quote-{s}")).unwrap() >= VERSIONS)
                    {
                        break;
                    }
                    if version >= VERSIONS {
                        continue;
                    }
                    let payload = format!("task {task} round {round}");
                    match log
                        .append(append_one(
                            &stream,
                            ExpectedVersion::Exact(version),
                            &payload,
                        ))
                        .await
                    {
                        Ok(outcome) => {
                            wins.push((stream, outcome.stream_version, outcome.first_position))
                        }
                        Err(AppendError::WrongExpectedVersion { actual, .. }) => {
                            assert!(
                                actual > version,
                                "a conflict reports a newer actual version"
                            );
                            conflicts += 1;
                        }
                        Err(other) => panic!("unexpected error {other}"),
                    }
                }
                (wins, conflicts)
            })
        })
        .collect();
    let mut wins = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (w, c) = t.await.unwrap();
        wins.extend(w);
        conflicts += c;
    }
    let by_version: HashSet<_> = wins.iter().map(|(s, v, _)| (s.clone(), *v)).collect();
    assert_eq!(
        by_version.len(),
        wins.len(),
        "two writers won the same version"
    );
    let positions: HashSet<_> = wins.iter().map(|w| w.2).collect();
    assert_eq!(positions.len(), wins.len());
    let total = log.next_position();
    assert_eq!(
        positions,
        (0..total).collect::<HashSet<_>>(),
        "positions are dense"
    );
    for s in 0..STREAMS {
        let events = log
            .read_stream(&format!("quote-{s}"), 1, usize::MAX)
            .unwrap();
        let versions: Vec<_> = events.iter().map(|e| e.stream_version).collect();
        assert_eq!(versions, (1..=events.len() as u64).collect::<Vec<_>>());
    }
    assert!(conflicts > 0, "the race produced conflicts");
    log.verify(&mut |_| {}).unwrap();
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_started_during_racing_appends_sees_every_event_once_in_order() {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::ProcessCrashSafe);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    let expected = ExpectedVersion::Exact(i as u64);
                    log.append(append_one(
                        &format!("writer-{w}"),
                        expected,
                        &format!("{i}"),
                    ))
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    // Start subscribers at different moments of the race.
    let mut subscribers = Vec::new();
    for start_after in [0u64, 100, 500] {
        while log.next_position() < start_after {
            tokio::task::yield_now().await;
        }
        let from = log.next_position() / 2;
        let mut sub = log.subscribe(from);
        subscribers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < WRITERS * PER_WRITER - from as usize {
                seen.extend(sub.next_batch(64).await.unwrap());
            }
            (from, seen)
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    for s in subscribers {
        let (from, seen) = s.await.unwrap();
        let positions: Vec<_> = seen.iter().map(|e| e.position).collect();
        assert_eq!(
            positions,
            (from..(WRITERS * PER_WRITER) as u64).collect::<Vec<_>>()
        );
        let mut last: HashMap<&str, u64> = HashMap::new();
        for e in &seen {
            let prev = last.insert(&e.stream_id, e.stream_version);
            if let Some(prev) = prev {
                assert_eq!(e.stream_version, prev + 1, "stream order kept");
            }
        }
    }
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_does_not_hold_back_the_writer_or_a_fast_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::Buffered);
    let _slow = log.subscribe(0); // never polled
    let mut fast = log.subscribe(0);
    for i in 0..2_000u64 {
        log.append(append_one("s", ExpectedVersion::Exact(i), "x"))
            .await
            .unwrap();
    }
    let mut got = 0;
    while got < 2_000 {
        got += fast.next_batch(500).await.unwrap().len();
    }
    assert_eq!(fast.position(), 2_000);
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verifying_a_live_log_while_writers_append_reports_no_damage() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), Durability::ProcessCrashSafe);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let log = log.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut round = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // A few long streams and many new ones, so heads move
                    // and appear while the check runs.
                    let stream = if round % 3 == 0 {
                        format!("order-{writer}")
                    } else {
                        format!("quote-{writer}-{round}")
                    };
                    log.append(append_one(&stream, ExpectedVersion::Any, "x"))
                        .await
                        .unwrap();
                    round += 1;
                }
            })
        })
        .collect();
    let mut checks = 0;
    while checks < 20 {
        let verifier = log.clone();
        let report = tokio::task::spawn_blocking(move || verifier.verify(&mut |_| {}))
            .await
            .unwrap();
        let report = report.unwrap_or_else(|e| panic!("live verify reported damage: {e}"));
        assert!(report.events <= log.next_position());
        checks += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let report = log.verify(&mut |_| {}).unwrap();
    assert_eq!(report.events, log.next_position());
}
