//! The whole-platform chaos test, short mode (issue 12): the real
//! `oms-server` with the simulators' fault mix on, 4 clients driving quotes
//! to acceptance and retrying every unanswered command with the same
//! command id, 6 stops alternately by SIGKILL and SIGTERM with restarts on
//! the same data directory and port; then nothing acknowledged is lost,
//! every retry of an acknowledged command gets its first outcome, no side
//! effect is doubled, no genuine callback is refused, no order is stuck,
//! fallout equals the injected rejections, `oms-replay verify` is clean and
//! every read model equals its rebuild. See `tests/src/chaos.rs`.
//!
//! Needs `target/<profile>/oms-server` and `oms-replay` (`cargo test
//! --workspace` builds both; alone: `cargo build -p api -p replay-tools`).
//! `CHAOS_SEED` replays a stop schedule; the long mode is
//! `cargo run --release -p tests --example chaos -- --cycles 50`.
#![allow(clippy::unwrap_used)]

use tests::chaos::{self, ChaosOptions};

#[test]
fn the_platform_survives_kills_and_restarts_under_faults() {
    let mut options = ChaosOptions::ci();
    if let Some(seed) = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        options.seed = seed;
    }
    let report =
        chaos::run(&options).unwrap_or_else(|e| panic!("the chaos run could not run: {e}"));
    println!("{}", report.json_line());
    let failures = report.failures();
    assert!(
        failures.is_empty(),
        "chaos run (seed {}) failed:\n- {}\nproblems:\n  {}\nreport: {}",
        report.seed,
        failures.join("\n- "),
        report.problems.join("\n  "),
        report.json_line()
    );
    // The run exercised what it claims to.
    assert!(
        report.kills_sigkill >= 3 && report.kills_sigterm >= 3,
        "{}",
        report.json_line()
    );
    assert!(
        report.commands_retried > 0,
        "no command needed a retry: {}",
        report.json_line()
    );
}

/// The journal reader the figures rest on: a torn line (a kill mid-write)
/// is skipped, a torn fragment glued to the next line still yields that
/// line, and duplicates, rejections and refused callbacks are counted.
#[test]
fn the_journal_reader_counts_effects_rejections_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let lines = [
        r#"{"kind":"effect","system":"inventory","key":"k1","operation":"reserve"}"#,
        r#"{"kind":"effect","system":"inventory","key":"k1","operation":"reserve"}"#,
        r#"{"kind":"effect","system":"billing","key":"k1","operation":"activate_billing"}"#,
        r#"{"kind":"state","system":"provisioning","key":"k2","fault":"BusinessReject","state":"REJECTED"}"#,
        r#"{"kind":"state","system":"provisioning","key":"k2","fault":"BusinessReject","state":"REJECTED"}"#,
        r#"{"kind":"state","system":"billing","key":"k3","fault":"NeverCompletes","state":"PENDING"}"#,
        r#"{"kind":"reject","system":"inventory","key":"k4","fault":"BusinessReject"}"#,
        r#"{"kind":"callback","system":"inventory","key":"k1","message_id":"m1","status":200}"#,
        r#"{"kind":"callback","system":"inventory","key":"k1","message_id":"m1","status":200}"#,
        r#"{"kind":"callback","system":"inventory","key":"k5","message_id":"m2","status":null}"#,
        r#"{"kind":"callback","system":"billing","key":"k6","message_id":"m3","status":409}"#,
        // Torn by a kill, then glued to the first line of the next start.
        r#"{"kind":"effe{"kind":"effect","system":"provisioning","key":"k7","operation":"activate"}"#,
        r#"{"kind":"effect","system":"inv"#,
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let journal = chaos::Journal::read(&path).unwrap().unwrap();
    assert_eq!(journal.effect_count(), 4);
    assert_eq!(journal.duplicate_side_effects(), 1);
    assert_eq!(journal.injected_rejections(), 2);
    assert_eq!(journal.callbacks, 4);
    assert_eq!(journal.refused_callbacks.len(), 1);
    assert_eq!(journal.duplicate_deliveries(), 1);
    assert_eq!(journal.torn_lines, 2);
    assert!(chaos::Journal::read(&dir.path().join("missing.jsonl"))
        .unwrap()
        .is_none());
}
