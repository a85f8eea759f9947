//! `trace`: the causal tree of one correlation id.

use crate::common::{generated, oms, records};
use crate::gen;

fn find_command<'a>(node: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    if node["kind"] == kind {
        return Some(node);
    }
    node["events"]
        .as_array()?
        .iter()
        .flat_map(|e| e["caused"].as_array().into_iter().flatten())
        .find_map(|c| find_command(c, kind))
}

fn count_events(node: &serde_json::Value) -> usize {
    node["events"].as_array().map_or(0, |events| {
        events.len()
            + events
                .iter()
                .flat_map(|e| e["caused"].as_array().into_iter().flatten())
                .map(count_events)
                .sum::<usize>()
    })
}

#[test]
fn trace_links_each_policy_command_to_the_event_that_issued_it() {
    let (_tmp, dir) = generated();
    let corr = gen::correlation(5);
    let run = oms(&dir, &["trace", &corr, "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    let in_log = records(&dir)
        .iter()
        .filter(|r| r.correlation_id == corr)
        .count();
    assert_eq!(json["events"], in_log);
    let roots = json["roots"].as_array().unwrap();
    // Every event appears exactly once in the tree.
    assert_eq!(roots.iter().map(count_events).sum::<usize>(), in_log);
    // The quote's commands are roots; the acceptance issued the capture.
    let accept = roots
        .iter()
        .find(|r| r["events"][0]["event_type"] == "QuoteAccepted")
        .expect("the accept command is a root");
    assert_eq!(accept["kind"], "external");
    let capture = &accept["events"][0]["caused"][0];
    assert_eq!(capture["kind"], "policy Order::Capture");
    assert_eq!(capture["events"][0]["event_type"], "OrderCaptured");
    assert_eq!(
        capture["issued_by_position"],
        accept["events"][0]["position"]
    );
    // Deeper: the capture requested steps, which opened handoffs.
    let open = roots
        .iter()
        .find_map(|r| find_command(r, "policy Handoff::Request"))
        .expect("a handoff was opened by the policy");
    assert_eq!(open["events"][0]["event_type"], "HandoffRequested");
}

#[test]
fn trace_text_indents_what_each_event_caused() {
    let (_tmp, dir) = generated();
    let run = oms(&dir, &["trace", &gen::correlation(2)]);
    assert_eq!(run.code, 0, "{run:?}");
    let capture = run
        .stdout
        .lines()
        .find(|l| l.contains("[policy Order::Capture]"))
        .expect("capture line");
    assert!(capture.starts_with("    command "), "{capture}");
    assert!(run
        .stdout
        .lines()
        .next()
        .unwrap()
        .starts_with("correlation corr-2:"));
}

#[test]
fn trace_of_an_unknown_correlation_is_a_usage_error() {
    let (_tmp, dir) = generated();
    assert_eq!(oms(&dir, &["trace", "nobody"]).code, 2);
}
