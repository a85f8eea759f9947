//! Upcast events through the binary (issue 13, item 2; ADR 0013): a log
//! whose `QuotePriced` events are stored at schema version 1, with their
//! version 1 payload bytes, dumps and folds (`dump`, `as-of`) in the current
//! shape, with `price_book`, and rebuilds (`rebuild --all`) into the same
//! read models, digest by digest, as the same log written in the new shape.

use std::path::{Path, PathBuf};

use domain::quote::QuoteEvent;
use domain::testing::fixtures::{self, PRICE_BOOK};
use eventlog::{
    AppendRequest, Durability, EventLog, ExpectedVersion, LogConfig, NewEvent, RecordedEvent,
};
use serde_json::Value;
use tempfile::TempDir;

use crate::common::{generated, oms, records, runtime, wait_unlocked};

/// The record as it would be appended again; when `version_1`, a
/// `QuotePriced` gets its version 1 payload bytes and schema version.
fn new_event(record: &RecordedEvent, version_1: bool) -> NewEvent {
    let mut event = NewEvent::new(
        record.event_type.clone(),
        record.tenant_id.clone(),
        record.correlation_id.clone(),
        record.payload.clone(),
    );
    event.event_id = Some(record.event_id);
    event.schema_version = record.schema_version;
    event.causation_id = record.causation_id.clone();
    event.metadata = record.metadata.clone();
    if version_1 && record.event_type == "QuotePriced" {
        let current: QuoteEvent = eventlog::decode_payload(&record.payload).unwrap();
        let old = fixtures::quote_priced_v1(&current).expect("version 1 can say it");
        event.payload = eventlog::encode_payload(&old).unwrap();
        event.schema_version = 1;
    }
    event
}

/// Writes `records` again, one event per append in position order (same
/// ids, streams, positions and stream versions), into a new data dir.
fn rewrite(records: &[RecordedEvent], parent: &Path, name: &str, version_1: bool) -> PathBuf {
    let dir = parent.join(name);
    let log = EventLog::open(LogConfig::new(&dir).durability(Durability::Buffered)).unwrap();
    for record in records {
        let request = AppendRequest::new(
            record.stream_id.clone(),
            ExpectedVersion::Any,
            vec![new_event(record, version_1)],
        );
        let outcome = log.append_blocking(request).unwrap();
        assert_eq!(outcome.last_position, record.position);
    }
    log.flush().unwrap();
    runtime().block_on(log.close());
    drop(log);
    wait_unlocked(&dir);
    dir
}

/// The generated log written twice: in the new shape, and in the old one.
fn old_and_new() -> (TempDir, Vec<RecordedEvent>, PathBuf, PathBuf) {
    let (tmp, source) = generated();
    let all = records(&source);
    let priced: Vec<u16> = all
        .iter()
        .filter(|r| r.event_type == "QuotePriced")
        .map(|r| r.schema_version)
        .collect();
    assert!(!priced.is_empty());
    assert!(
        priced.iter().all(|v| *v == 2),
        "the command path writes QuotePriced at version 2"
    );
    let new = rewrite(&all, tmp.path(), "new", false);
    let old = rewrite(&all, tmp.path(), "old", true);
    (tmp, all, old, new)
}

fn price_book(payload: &Value) -> &Value {
    &payload["QuotePriced"]["price"]["price_book"]
}

fn digests(run: &crate::common::Run) -> Vec<(String, u64, String)> {
    assert_eq!(run.code, 0, "{run:?}");
    run.json()["projectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["rows"].as_u64().unwrap(),
                p["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn dump_shows_version_1_events_upcast_and_the_same_payloads_as_the_new_log() {
    let (_tmp, all, old, new) = old_and_new();
    let stored_v1 = records(&old)
        .iter()
        .filter(|r| r.event_type == "QuotePriced")
        .all(|r| r.schema_version == 1);
    assert!(stored_v1, "the old log stores QuotePriced at version 1");

    let old_lines = oms(&old, &["dump"]).json_lines();
    let new_lines = oms(&new, &["dump"]).json_lines();
    assert_eq!(old_lines.len(), all.len());
    assert_eq!(new_lines.len(), all.len());
    let mut upcast = 0;
    for (o, n) in old_lines.iter().zip(&new_lines) {
        assert!(o.get("payload_error").is_none(), "{o}");
        assert_eq!(o["payload"], n["payload"], "position {}", o["position"]);
        assert!(n.get("upcast_to_version").is_none(), "{n}");
        if o["event_type"] == "QuotePriced" {
            upcast += 1;
            assert_eq!(o["schema_version"], 1, "{o}");
            assert_eq!(o["upcast_to_version"], 2, "{o}");
            assert_eq!(n["schema_version"], 2, "{n}");
            assert_eq!(price_book(&o["payload"]), PRICE_BOOK, "{o}");
        } else {
            assert!(o.get("upcast_to_version").is_none(), "{o}");
        }
    }
    assert!(upcast > 0);

    let only = oms(&old, &["dump", "--type", "QuotePriced", "--limit", "1"]);
    assert_eq!(only.code, 0, "{only:?}");
    assert!(only.stdout.contains("\"price_book\""), "{}", only.stdout);
}

#[test]
fn as_of_folds_version_1_events_in_the_new_shape() {
    let (_tmp, all, old, new) = old_and_new();
    let priced = all.iter().find(|r| r.event_type == "QuotePriced").unwrap();
    let stream = priced.stream_id.as_str();
    let position = priced.position.to_string();

    let run = oms(&old, &["as-of", stream, "--position", &position, "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    assert_eq!(
        json["state"]["Open"]["price"]["price_book"], PRICE_BOOK,
        "{json}"
    );
    let last = json["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "QuotePriced");
    assert_eq!(last["schema_version"], 1);
    assert_eq!(last["upcast_to_version"], 2);
    assert_eq!(price_book(&last["payload"]), PRICE_BOOK);

    // The same state as the new log's, at the head too.
    let same = oms(&new, &["as-of", stream, "--position", &position, "--json"]).json();
    assert_eq!(json["state"], same["state"]);
    let head_old = oms(&old, &["as-of", stream, "--json"]).json();
    let head_new = oms(&new, &["as-of", stream, "--json"]).json();
    assert_eq!(head_old["state"], head_new["state"]);
    assert!(head_old["state"]["Accepted"]["quote"]["price"]["price_book"].is_string());

    let text = oms(&old, &["as-of", stream, "--position", &position]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout
            .contains(&format!("price_book: \"{PRICE_BOOK}\"")),
        "{}",
        text.stdout
    );
}

#[test]
fn rebuild_all_of_the_old_log_equals_the_new_log_by_digest() {
    let (_tmp, _all, old, new) = old_and_new();
    let old_digests = digests(&oms(&old, &["rebuild", "--all", "--json"]));
    let new_digests = digests(&oms(&new, &["rebuild", "--all", "--json"]));
    assert_eq!(old_digests.len(), projections::PROJECTOR_NAMES.len());
    assert!(old_digests.iter().all(|(_, rows, _)| *rows > 0));
    assert_eq!(old_digests, new_digests);
}
