//! `verify`: a sound log, a tampered byte, a deleted record, digests.

use std::path::Path;

use eventlog::{keyspace, Durability, EventLog, LogConfig, NewEvent, RecordedEvent};
use eventlog::{AppendRequest, ExpectedVersion};

use crate::common::{
    generated, generated_events, oms, records, remove_records, rewrite_record, runtime,
    with_raw_tree,
};

#[test]
fn a_sound_log_verifies_and_prints_its_head() {
    let (_tmp, dir) = generated();
    let run = oms(&dir, &["verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run
        .stdout
        .contains(&format!("ok: {} events", generated_events())));
    let json = oms(&dir, &["verify", "--json"]).json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["events"], generated_events());
    assert_eq!(json["head_position"], generated_events() - 1);
    let last = records(&dir).pop().unwrap();
    assert_eq!(json["head_hash"], hex::encode(last.hash));
}

#[test]
fn digest_prints_head_position_and_hash_alone() {
    let (_tmp, dir) = generated();
    let run = oms(&dir, &["verify", "--digest"]);
    assert_eq!(run.code, 0, "{run:?}");
    let last = records(&dir).pop().unwrap();
    assert_eq!(
        run.stdout.trim(),
        format!("{}:{}", last.position, hex::encode(last.hash))
    );
}

#[test]
fn one_flipped_byte_is_named_by_its_position() {
    let (_tmp, dir) = generated();
    let position = generated_events() / 2;
    with_raw_tree(&dir, |tree| {
        rewrite_record(tree, position, |bytes| {
            let i = bytes.len() - 40; // inside the body, before the hash
            bytes[i] ^= 0x01;
        });
    });
    let run = oms(&dir, &["verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!("position {position}:")),
        "{}",
        run.stdout
    );
    let json = oms(&dir, &["verify", "--json"]).json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["position"], position);
}

#[test]
fn a_deleted_record_is_named_by_its_position() {
    let (_tmp, dir) = generated();
    let position = generated_events() / 3;
    with_raw_tree(&dir, |tree| {
        remove_records(tree, position, position + 1);
    });
    let run = oms(&dir, &["verify", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let json = run.json();
    assert_eq!(json["position"], position);
    assert!(json["problem"].as_str().unwrap().contains("missing"));
}

/// Cuts the log down to its first `keep` records and repairs the index,
/// heads, meta and the acknowledged head so the shorter log is consistent
/// on its own (what a careful forger would do).
fn truncate_consistently(dir: &Path, keep: u64) {
    cut_records(dir, keep);
    std::fs::remove_file(dir.join(eventlog::ACKED_HEAD_FILE)).unwrap();
}

/// Cuts the log down to its first `keep` records, consistently inside
/// sled, but leaves the acknowledged head alone (as sled does when it
/// drops the end of its log at recovery).
fn cut_records(dir: &Path, keep: u64) {
    with_raw_tree(dir, |tree| {
        let all: Vec<RecordedEvent> = eventlog::pages::raw_range(tree, 0, u64::MAX)
            .map(|e| RecordedEvent::decode(&e.unwrap().1).unwrap())
            .collect();
        remove_records(tree, keep, all.len() as u64);
        // Each stream's runs end at `keep`: later runs go, a run across it
        // is cut short.
        let runs: Vec<_> = tree
            .scan_prefix([keyspace::RUN])
            .map(|e| e.unwrap())
            .collect();
        for (key, value) in runs {
            let (stream, run) = eventlog::index::decode_entry(&key, &value).unwrap();
            if run.first_position >= keep {
                tree.remove(key).unwrap();
            } else if run.last_position() >= keep {
                let count = keep - run.first_position;
                tree.insert(
                    keyspace::run_key(&stream, run.first_version),
                    &keyspace::run_value(run.first_position, count)[..],
                )
                .unwrap();
            }
        }
        // Idempotency records of removed appends would point past the head.
        let stale: Vec<_> = tree
            .scan_prefix([keyspace::IDEMPOTENCY])
            .map(|e| e.unwrap())
            .filter(|(_, v)| keyspace::read_u64(&v[40..48]).unwrap() >= keep)
            .map(|(k, _)| k)
            .collect();
        for key in stale {
            tree.remove(key).unwrap();
        }
        let mut meta = vec![keyspace::LAYOUT_VERSION];
        meta.extend_from_slice(&keep.to_be_bytes());
        meta.extend_from_slice(&all[keep as usize - 1].hash);
        tree.insert(keyspace::META, meta).unwrap();
    });
}

#[test]
fn verify_alone_detects_acknowledged_events_cut_off_the_end() {
    let (_tmp, dir) = generated();
    let keep = generated_events() - 25;
    cut_records(&dir, keep);
    let run = oms(&dir, &["verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!("position {keep}:")) && run.stdout.contains("acknowledged"),
        "{}",
        run.stdout
    );
}

#[test]
fn against_detects_a_truncation_that_verify_alone_cannot_see() {
    let (_tmp, dir) = generated();
    let digest = oms(&dir, &["verify", "--digest"]).stdout.trim().to_owned();
    truncate_consistently(&dir, generated_events() - 25);
    assert_eq!(
        oms(&dir, &["verify"]).code,
        0,
        "the shorter log is consistent"
    );
    let run = oms(&dir, &["verify", "--against", &digest]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("truncated"), "{}", run.stdout);
    let json = oms(&dir, &["verify", "--json", "--against", &digest]).json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["against"]["result"], "truncated");
}

fn append_events(dir: &Path, n: usize) {
    runtime().block_on(async {
        let log = EventLog::open(LogConfig::new(dir).durability(Durability::Buffered)).unwrap();
        for i in 0..n {
            let event = NewEvent::new("Forged", "t0", "forged", vec![i as u8]);
            log.append(AppendRequest::new(
                format!("forged-{i}"),
                ExpectedVersion::NoStream,
                vec![event],
            ))
            .await
            .unwrap();
        }
        log.close().await;
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
}

#[test]
fn against_detects_a_rewritten_history_and_accepts_a_longer_honest_log() {
    let (_tmp, dir) = generated();
    let digest = oms(&dir, &["verify", "--digest"]).stdout.trim().to_owned();
    // Honest: more events appended after the digest.
    let (_tmp2, honest) = generated();
    append_events(&honest, 3);
    let run = oms(&honest, &["verify", "--against", &digest]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("3 events appended since"),
        "{}",
        run.stdout
    );
    // Forged: cut back before the digest, then re-grown past it.
    truncate_consistently(&dir, generated_events() - 10);
    append_events(&dir, 20);
    assert_eq!(oms(&dir, &["verify"]).code, 0);
    let run = oms(&dir, &["verify", "--against", &digest]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("rewritten"), "{}", run.stdout);
}

#[test]
fn a_malformed_digest_is_a_usage_error() {
    let (_tmp, dir) = generated();
    let run = oms(&dir, &["verify", "--against", "12:nothex"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn a_missing_log_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = oms(&tmp.path().join("nothing"), &["verify", "--json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.json()["error"]["kind"], "no_log");
}
