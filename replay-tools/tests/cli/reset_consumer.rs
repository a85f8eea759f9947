//! `reset-consumer`: plain consumers move freely; side-effect consumers
//! only in recovery mode, where replayed events call nobody again.

use std::path::Path;

use domain::handoff::HandoffEvent;
use eventlog::{decode_payload, ConsumerBatch, EventLog};

use crate::common::{generated, generated_events, oms, runtime, wait_unlocked, with_log};
use crate::gen;

/// A stand-in for the dispatcher that honours the recovery bound: for each
/// `HandoffRequested` it calls the simulated target (one ledger line per
/// call) unless the event is below the bound, where it only re-observes it
/// and counts a suppressed call. Returns the calls it suppressed.
fn run_fake_dispatcher(log: &EventLog, ledger: &Path) -> u64 {
    let store = log.consumer("dispatcher").unwrap();
    store.declare_side_effects().unwrap();
    let until = store.recovery_until().unwrap();
    let mut calls = std::fs::read_to_string(ledger).unwrap_or_default();
    let mut suppressed = 0;
    for record in log.iter_all(store.checkpoint().unwrap()) {
        let record = record.unwrap();
        let mut batch = ConsumerBatch::default();
        if record.event_type == "HandoffRequested" {
            let HandoffEvent::HandoffRequested {
                idempotency_key, ..
            } = decode_payload(&record.payload).unwrap()
            else {
                panic!("not a request")
            };
            if until.is_some_and(|bound| record.position < bound) {
                suppressed += 1;
            } else {
                calls.push_str(&idempotency_key);
                calls.push('\n');
            }
            batch.insert(idempotency_key.as_bytes(), b"observed".to_vec());
        }
        if until.is_some_and(|bound| record.position + 1 >= bound) {
            batch.clear_recovery();
        }
        store.commit(batch, record.position + 1).unwrap();
    }
    store.record_suppressed(suppressed).unwrap();
    std::fs::write(ledger, calls).unwrap();
    suppressed
}

fn requested(dir: &Path) -> usize {
    oms(dir, &["dump", "--type", "HandoffRequested"])
        .json_lines()
        .len()
}

#[test]
fn a_side_effect_consumer_is_not_rewound_without_recovery_mode() {
    let (tmp, dir) = generated();
    let ledger = tmp.path().join("ledger");
    with_log(&dir, |log| run_fake_dispatcher(log, &ledger));
    let run = oms(
        &dir,
        &["reset-consumer", "dispatcher", "--to", "0", "--json"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--recovery"), "{}", run.stderr);
    assert_eq!(run.json()["error"]["kind"], "refused");
    let consumers = oms(&dir, &["consumers", "--json"]).json();
    assert_eq!(consumers["consumers"][0]["checkpoint"], generated_events());
    assert_eq!(consumers["consumers"][0]["side_effects"], true);
}

#[test]
fn recovery_mode_over_a_flow_with_handoffs_leaves_the_simulator_ledger_unchanged() {
    let (tmp, dir) = generated();
    let ledger = tmp.path().join("ledger");
    with_log(&dir, |log| run_fake_dispatcher(log, &ledger));
    let before = std::fs::read_to_string(&ledger).unwrap();
    let handoffs = requested(&dir);
    assert_eq!(before.lines().count(), handoffs);
    assert!(handoffs > 0);

    let run = oms(
        &dir,
        &[
            "reset-consumer",
            "dispatcher",
            "--to",
            "0",
            "--recovery",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let reset = &run.json()["reset"];
    assert_eq!(reset["previous_checkpoint"], generated_events());
    assert_eq!(reset["checkpoint"], 0);
    assert_eq!(reset["recovery_until"], generated_events());
    assert_eq!(reset["replayed_events"], generated_events());
    assert_eq!(reset["replayed_by_type"]["HandoffRequested"], handoffs);

    let suppressed = with_log(&dir, |log| run_fake_dispatcher(log, &ledger));
    assert_eq!(suppressed as usize, handoffs);
    assert_eq!(
        std::fs::read_to_string(&ledger).unwrap(),
        before,
        "no call was made again"
    );
    let consumers = oms(&dir, &["consumers", "--json"]).json();
    let dispatcher = &consumers["consumers"][0];
    assert_eq!(dispatcher["checkpoint"], generated_events());
    assert_eq!(dispatcher["recovery_until"], serde_json::Value::Null);
    assert_eq!(dispatcher["suppressed"], handoffs);
    let text = oms(&dir, &["consumers"]);
    assert!(
        text.stdout
            .contains(&format!("suppressed {handoffs} calls")),
        "{}",
        text.stdout
    );

    // Past the bound it calls again, for new events only.
    runtime().block_on(async {
        let log = EventLog::open(
            eventlog::LogConfig::new(&dir).durability(eventlog::Durability::Buffered),
        )
        .unwrap();
        let path = application::CommandPath::new(log.clone());
        gen::run_flow(&path, 1000, 1).await.unwrap();
        drop(path);
        log.close().await;
    });
    wait_unlocked(&dir);
    with_log(&dir, |log| run_fake_dispatcher(log, &ledger));
    let after = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(
        after.lines().count(),
        handoffs + 6,
        "one line: three new step handoffs, two milestone notifications and the order's confirmation"
    );
    assert!(after.starts_with(&before));
}

#[test]
fn a_partial_rewind_replays_only_the_window() {
    let (tmp, dir) = generated();
    let ledger = tmp.path().join("ledger");
    with_log(&dir, |log| run_fake_dispatcher(log, &ledger));
    let before = std::fs::read_to_string(&ledger).unwrap();
    let to = generated_events() / 2;
    let run = oms(
        &dir,
        &[
            "reset-consumer",
            "dispatcher",
            "--to",
            &to.to_string(),
            "--recovery",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("re-observed"), "{}", run.stdout);
    let window = oms(
        &dir,
        &[
            "dump",
            "--type",
            "HandoffRequested",
            "--from",
            &to.to_string(),
        ],
    )
    .json_lines()
    .len();
    let suppressed = with_log(&dir, |log| run_fake_dispatcher(log, &ledger));
    assert_eq!(suppressed as usize, window);
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), before);
}

#[test]
fn a_plain_consumer_moves_to_any_position_up_to_the_head() {
    let (_tmp, dir) = generated();
    with_log(&dir, |log| {
        let store = log.consumer("projection-orders").unwrap();
        store.reset_checkpoint(log.next_position()).unwrap();
    });
    let run = oms(&dir, &["reset-consumer", "projection-orders", "--to", "10"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("{} -> 10", generated_events())),
        "{}",
        run.stdout
    );
    let consumers = oms(&dir, &["consumers", "--json"]).json();
    assert_eq!(consumers["consumers"][0]["checkpoint"], 10);
    assert_eq!(consumers["consumers"][0]["lag"], generated_events() - 10);

    // Forward again: the events passed over are said to be skipped.
    let run = oms(&dir, &["reset-consumer", "projection-orders", "--to", "15"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("5 events at positions 10..15 are skipped"),
        "{}",
        run.stdout
    );
    let json = oms(
        &dir,
        &[
            "reset-consumer",
            "projection-orders",
            "--to",
            "20",
            "--json",
        ],
    )
    .json();
    assert_eq!(json["reset"]["skipped_events"], 5, "{json}");

    let past = (generated_events() + 1).to_string();
    assert_eq!(
        oms(
            &dir,
            &["reset-consumer", "projection-orders", "--to", &past]
        )
        .code,
        2
    );
    let unknown = oms(&dir, &["reset-consumer", "nobody", "--to", "0"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.stderr.contains("projection-orders"),
        "{}",
        unknown.stderr
    );
}
