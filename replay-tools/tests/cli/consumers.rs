//! `consumers`: checkpoint, lag and last error of every consumer.

use crate::common::{generated, generated_events, oms, records, with_log};

#[test]
fn consumers_show_checkpoint_lag_and_last_error() {
    let (_tmp, dir) = generated();
    with_log(&dir, |log| {
        log.consumer("audit-trail")
            .unwrap()
            .reset_checkpoint(100)
            .unwrap();
        let stuck = log.consumer("fallout-queue").unwrap();
        stuck.reset_checkpoint(7).unwrap();
        stuck.record_failure(7, "payload does not decode").unwrap();
    });
    let run = oms(&dir, &["consumers", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    assert_eq!(json["head"], generated_events());
    let list = json["consumers"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "audit-trail");
    assert_eq!(list[0]["lag"], generated_events() - 100);
    assert_eq!(list[1]["failed_at"], 7);
    assert_eq!(list[1]["last_error"], "payload does not decode");
    let text = oms(&dir, &["consumers"]).stdout;
    assert!(text.contains("at 7: payload does not decode"), "{text}");
}

/// Every report with `--json` says `"ok": true`, as the errors say
/// `"ok": false` and export, import, rebuild, reset and verify said it
/// already: a script reads one field to tell them apart (`stats` and
/// `consumers` lacked it, a probe found).
#[test]
fn every_json_report_says_ok() {
    let (_tmp, dir) = generated();
    let corr = crate::gen::correlation(5);
    let stream = records(&dir)
        .into_iter()
        .find(|r| r.stream_id.starts_with("quote-"))
        .map(|r| r.stream_id)
        .expect("a quote's event");
    for args in [
        vec!["stats", "--json"],
        vec!["consumers", "--json"],
        vec!["trace", &corr, "--json"],
        vec!["as-of", &stream, "--json"],
        vec!["verify", "--json"],
        vec!["rebuild", "--all", "--json"],
    ] {
        let run = oms(&dir, &args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        assert_eq!(run.json()["ok"], true, "{args:?}: {}", run.stdout);
    }
}
