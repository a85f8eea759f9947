//! `dump`: JSON lines with decoded payloads, and every filter.

use crate::common::{generated, generated_events, oms, records};
use crate::gen;

#[test]
fn dump_prints_every_event_as_a_json_line_with_its_decoded_payload() {
    let (_tmp, dir) = generated();
    let run = oms(&dir, &["dump"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len() as u64, generated_events());
    let first = &lines[0];
    assert_eq!(first["position"], 0);
    assert_eq!(first["event_type"], "QuoteCreated");
    assert!(
        first["payload"]["QuoteCreated"]["quote_id"].is_string(),
        "{first}"
    );
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);
    assert!(lines.iter().all(|l| l.get("payload_error").is_none()));
}

#[test]
fn a_stream_filter_reads_only_that_stream_in_order() {
    let (_tmp, dir) = generated();
    let stream = gen::quote_stream_of(4);
    let lines = oms(&dir, &["dump", "--stream", &stream]).json_lines();
    let expected: Vec<u64> = records(&dir)
        .iter()
        .filter(|r| r.stream_id == stream)
        .map(|r| r.position)
        .collect();
    let got: Vec<u64> = lines
        .iter()
        .map(|l| l["position"].as_u64().unwrap())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(lines.last().unwrap()["event_type"], "QuoteAccepted");
}

#[test]
fn filters_of_different_kinds_all_apply() {
    let (_tmp, dir) = generated();
    let all = records(&dir);
    let corr = gen::correlation(7);
    let lines = oms(
        &dir,
        &[
            "dump",
            "--correlation",
            &corr,
            "--type",
            "HandoffSucceeded",
            "--type",
            "OrderCaptured",
        ],
    )
    .json_lines();
    let expected = all
        .iter()
        .filter(|r| r.correlation_id == corr)
        .filter(|r| r.event_type == "HandoffSucceeded" || r.event_type == "OrderCaptured")
        .count();
    assert!(expected > 1);
    assert_eq!(lines.len(), expected);

    let lines = oms(&dir, &["dump", "--tenant", "t1", "--aggregate", "order"]).json_lines();
    let expected = all
        .iter()
        .filter(|r| r.tenant_id == "t1" && r.stream_id.starts_with("order-"))
        .count();
    assert_eq!(lines.len(), expected);

    let lines = oms(&dir, &["dump", "--from", "100", "--to", "149"]).json_lines();
    assert_eq!(lines.len(), 50);
    assert_eq!(lines[0]["position"], 100);

    let limited = oms(&dir, &["dump", "--aggregate", "handoff", "--limit", "5"]).json_lines();
    assert_eq!(limited.len(), 5);
}

#[test]
fn a_time_range_selects_by_recording_time() {
    let (_tmp, dir) = generated();
    let all = records(&dir);
    let since = all[all.len() / 4].recorded_at_ms;
    let until = all[all.len() / 2].recorded_at_ms;
    let run = oms(
        &dir,
        &[
            "dump",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let expected = all
        .iter()
        .filter(|r| r.recorded_at_ms >= since && r.recorded_at_ms < until)
        .count();
    assert_eq!(run.json_lines().len(), expected);
    // RFC 3339 is accepted too.
    let day = &oms(&dir, &["dump", "--limit", "1"]).json_lines()[0]["recorded_at"];
    let day = &day.as_str().unwrap()[..10];
    let run = oms(&dir, &["dump", "--since", day, "--limit", "1"]);
    assert_eq!(run.json_lines().len(), 1);
    let bad = oms(&dir, &["dump", "--since", "last tuesday"]);
    assert_eq!(bad.code, 2, "{bad:?}");
}

/// A filter no event can pass is a mistake to name, not an empty dump:
/// a stream or tenant outside the one id grammar, or an empty range.
#[test]
fn a_filter_no_event_can_pass_is_refused_naming_the_flag() {
    let (_tmp, dir) = generated();
    for (args, flag) in [
        (&["dump", "--stream", "../quote-x"][..], "--stream"),
        (&["dump", "--stream", "quote-"][..], "--stream"),
        (&["dump", "--stream", "quote-a/b"][..], "--stream"),
        (&["dump", "--tenant", "a b"][..], "--tenant"),
        (&["dump", "--from", "10", "--to", "5"][..], "--from"),
    ] {
        let run = oms(&dir, args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(flag), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // The edges stay open: one position, a known stream.
    let run = oms(&dir, &["dump", "--from", "5", "--to", "5"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json_lines().len(), 1);
}
