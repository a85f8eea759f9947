//! `as-of`: the fold of a stream's prefix, by position and by time.

use domain::decider::{fold, Decider};
use domain::ids::StreamKind;
use domain::{HandoffDecider, OrderDecider, QuoteDecider};
use eventlog::{decode_payload, RecordedEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::common::{generated, oms, records, Lcg};

/// The folded state's `Debug` text and its JSON (`Serialize`) form.
fn fold_state<D: Decider>(events: &[&RecordedEvent]) -> (String, serde_json::Value)
where
    D::Event: DeserializeOwned,
    D::State: Serialize,
{
    let decoded: Vec<D::Event> = events
        .iter()
        .map(|r| decode_payload(&r.payload).unwrap())
        .collect();
    let state = fold::<D, _>(&decoded);
    (format!("{state:?}"), serde_json::to_value(&state).unwrap())
}

fn expected_state(prefix: &[&RecordedEvent], stream: &str) -> (String, serde_json::Value) {
    match StreamKind::split(stream).expect("an aggregate stream").0 {
        StreamKind::Quote => fold_state::<QuoteDecider>(prefix),
        StreamKind::Order => fold_state::<OrderDecider>(prefix),
        StreamKind::Handoff => fold_state::<HandoffDecider>(prefix),
        StreamKind::Catalog => fold_state::<domain::CatalogDecider>(prefix),
    }
}

fn expected(prefix: &[&RecordedEvent], stream: &str) -> String {
    expected_state(prefix, stream).0
}

#[test]
fn as_of_equals_folding_the_prefix_for_random_aggregates_and_positions() {
    let (_tmp, dir) = generated();
    let all = records(&dir);
    let mut rng = Lcg(7);
    for _ in 0..12 {
        // A random event picks the stream; a random position after the
        // stream's first event bounds the prefix.
        let pick = &all[rng.below(all.len() as u64) as usize];
        let stream = pick.stream_id.clone();
        let events: Vec<&RecordedEvent> = all.iter().filter(|r| r.stream_id == stream).collect();
        let first = events[0].position;
        let bound = first + rng.below(all.len() as u64 - first);
        let prefix: Vec<&RecordedEvent> = events
            .iter()
            .copied()
            .filter(|r| r.position <= bound)
            .collect();
        let run = oms(
            &dir,
            &["as-of", &stream, "--position", &bound.to_string(), "--json"],
        );
        assert_eq!(run.code, 0, "{run:?}");
        let json = run.json();
        assert_eq!(
            json["state_debug"],
            expected(&prefix, &stream),
            "{stream} at {bound}"
        );
        assert_eq!(json["version"], prefix.len() as u64);
        let positions: Vec<u64> = json["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect();
        assert_eq!(
            positions,
            prefix.iter().map(|r| r.position).collect::<Vec<_>>()
        );
        // The state as serde writes it: the lifecycle variant, then its content.
        assert_eq!(
            json["state"],
            expected_state(&prefix, &stream).1,
            "{stream} at {bound}"
        );
        assert!(json["state"].is_object(), "{}", json["state"]);
    }
}

#[test]
fn as_of_a_time_folds_what_was_recorded_by_then() {
    let (_tmp, dir) = generated();
    let all = records(&dir);
    let order = all
        .iter()
        .find(|r| r.event_type == "OrderCaptured")
        .unwrap();
    let stream = order.stream_id.clone();
    let events: Vec<&RecordedEvent> = all.iter().filter(|r| r.stream_id == stream).collect();
    let at = events[events.len() / 2].recorded_at_ms;
    let prefix: Vec<&RecordedEvent> = events
        .iter()
        .copied()
        .filter(|r| r.recorded_at_ms <= at)
        .collect();
    let run = oms(
        &dir,
        &["as-of", &stream, "--time", &at.to_string(), "--json"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["state_debug"], expected(&prefix, &stream));
    // The text form shows the state and the events that led there.
    let text = oms(&dir, &["as-of", &stream, "--time", &at.to_string()]);
    assert!(text.stdout.contains("OrderCaptured"), "{}", text.stdout);
    assert!(text.stdout.contains("state:"), "{}", text.stdout);
}

#[test]
fn as_of_an_unknown_stream_is_a_usage_error() {
    let (_tmp, dir) = generated();
    assert_eq!(oms(&dir, &["as-of", "quote-nope"]).code, 2);
    assert_eq!(oms(&dir, &["as-of", "widget-1"]).code, 2);
}

/// A position past the log's head names a state the log has not reached:
/// a usage error naming the head, not a state "as of" it.
#[test]
fn as_of_a_position_past_the_head_is_a_usage_error() {
    let (_tmp, dir) = generated();
    let last = records(&dir).last().map(|r| r.position).unwrap();
    let stream = records(&dir).last().map(|r| r.stream_id.clone()).unwrap();
    let at_head = oms(&dir, &["as-of", &stream, "--position", &last.to_string()]);
    assert_eq!(at_head.code, 0, "{at_head:?}");
    let past = (last + 1).to_string();
    let run = oms(&dir, &["as-of", &stream, "--position", &past]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(&last.to_string()), "{run:?}");
}
