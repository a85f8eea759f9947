//! The seeds' integration test table, end to end through the simulators,
//! the callback server and the fulfillment process.

use std::time::Duration;

use domain::handoff::HandoffStatus;
use domain::idempotency::{Purpose, TargetSystem};
use domain::order::{OrderCommand, OrderState, Resolution};
use domain::outcome::FalloutReason;
use domain::testing::fixtures::{at, tenant};
use integration::reconciliation::{ReconciliationResult, Scope};
use simulators::{Fault, Script};

use crate::harness::{line_in_fallout, status_of, subject, Harness, Options};

fn all_effects_once(h: &Harness) {
    for system in [
        TargetSystem::Inventory,
        TargetSystem::Provisioning,
        TargetSystem::Billing,
        TargetSystem::Notification,
    ] {
        for entry in h.sims.ledger(system) {
            assert!(
                entry.effects <= 1,
                "{system}: doubled side effect {entry:#?}"
            );
        }
    }
}

/// Waits (up to 10 s) until every ledger entry of `system` counts at least
/// `count` callbacks. The simulator counts a callback once the platform's
/// answer to it arrives, which may come after the order moved on it.
async fn callbacks_answered(h: &Harness, system: TargetSystem, count: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h
        .sims
        .ledger(system)
        .iter()
        .any(|e| e.callbacks_delivered < count)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_completes_an_order_through_every_system() {
    let h = Harness::start(Options::default()).await;
    let order = h.accept_quote("q-happy", &["l1", "l2"]).await;
    h.completed(&order, 20).await;
    for system in [
        TargetSystem::Inventory,
        TargetSystem::Provisioning,
        TargetSystem::Billing,
    ] {
        callbacks_answered(&h, system, 1).await;
        let ledger = h.sims.ledger(system);
        assert_eq!(ledger.len(), 2, "{system}: {ledger:#?}");
        assert!(
            ledger.iter().all(|e| e.effects == 1 && e.requests == 1),
            "{ledger:#?}"
        );
        assert!(
            ledger.iter().all(|e| e.callbacks_delivered == 1),
            "{ledger:#?}"
        );
    }
    let snapshot = h.fulfillment().metrics_snapshot();
    assert_eq!(snapshot.calls["inventory"]["accepted"], 2, "{snapshot:#?}");
    h.stop().await;
}

/// Idempotency test: a retry does not duplicate the external side effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_a_retried_dispatch_never_duplicates_the_side_effect() {
    let h = Harness::start(Options::default()).await;
    // Two technical failures (no effect), then success: three sends, one key.
    h.sims.script(
        TargetSystem::Inventory,
        Script::Next(vec![Fault::ServerError, Fault::TooManyRequests]),
    );
    // Provisioning times out before applying: reconciliation finds nothing,
    // the resend uses the same key.
    h.sims.script(
        TargetSystem::Provisioning,
        Script::Next(vec![Fault::TimeoutBeforeApply]),
    );
    let order = h.accept_quote("q-idem", &["l1"]).await;
    let provisioning = subject(&order, "l1", Purpose::Activate, 1);
    h.wait_handoff(&provisioning, 10, "unknown", |s| {
        status_of(s) == Some(HandoffStatus::Unknown)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await; // let the hanging answer end
    let report = h
        .fulfillment()
        .trigger_reconciliation(&tenant())
        .await
        .unwrap();
    assert_eq!(
        report.entries[0].result,
        ReconciliationResult::NotFoundResent,
        "{report:#?}"
    );
    h.completed(&order, 20).await;
    let inventory = h.sims.ledger(TargetSystem::Inventory);
    assert_eq!(
        inventory.len(),
        1,
        "one ledger entry per key: {inventory:#?}"
    );
    assert_eq!((inventory[0].requests, inventory[0].effects), (3, 1));
    let provisioning = h.sims.ledger(TargetSystem::Provisioning);
    assert_eq!(provisioning.len(), 1);
    assert_eq!((provisioning[0].requests, provisioning[0].effects), (2, 1));
    all_effects_once(&h);
    h.stop().await;
}

/// Timeout test: a timeout after sending becomes UNKNOWN, not a failure,
/// and nothing is sent again before reconciliation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_after_sending_becomes_unknown_not_failure() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Billing,
        Script::Next(vec![Fault::TimeoutAfterApply]),
    );
    let order = h.accept_quote("q-timeout", &["l1"]).await;
    let billing = subject(&order, "l1", Purpose::ActivateBilling, 1);
    h.wait_handoff(&billing, 10, "unknown", |s| {
        status_of(s) == Some(HandoffStatus::Unknown)
    })
    .await;
    // No failure anywhere, no resend while unknown.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let state = h.order(&order);
    assert!(
        matches!(state, OrderState::Open(_)) && !line_in_fallout(&state, "l1"),
        "{state:#?}"
    );
    assert_eq!(h.sims.ledger(TargetSystem::Billing)[0].requests, 1);
    assert_eq!(
        status_of(&h.handoff(&billing)),
        Some(HandoffStatus::Unknown)
    );
    let report = h
        .fulfillment()
        .trigger_reconciliation(&tenant())
        .await
        .unwrap();
    assert_eq!(report.entries.len(), 1, "{report:#?}");
    assert_eq!(
        report.entries[0].result,
        ReconciliationResult::ExternalSuccess
    );
    h.completed(&order, 10).await;
    assert_eq!(h.sims.ledger(TargetSystem::Billing)[0].effects, 1);
    h.stop().await;
}

/// Callback duplicate test: a redelivered callback is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_callback_is_a_no_op() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Provisioning,
        Script::Next(vec![Fault::CallbackTwice]),
    );
    h.sims.script(
        TargetSystem::Inventory,
        Script::Next(vec![Fault::CallbackOutOfOrder]),
    );
    let order = h.accept_quote("q-dup", &["l1"]).await;
    h.completed(&order, 20).await;
    let metrics = h.fulfillment().metrics_snapshot();
    assert!(metrics.callbacks_duplicate >= 1, "{metrics:#?}");
    let provisioning = subject(&order, "l1", Purpose::Activate, 1);
    let events = h
        .path
        .log()
        .read_stream(
            &domain::ids::handoff_stream(&provisioning.handoff_id()),
            1,
            100,
        )
        .unwrap();
    let succeeded = events
        .iter()
        .filter(|e| e.event_type == "HandoffSucceeded")
        .count();
    assert_eq!(
        succeeded,
        1,
        "{:?}",
        events.iter().map(|e| &e.event_type).collect::<Vec<_>>()
    );
    callbacks_answered(&h, TargetSystem::Provisioning, 2).await;
    assert_eq!(
        h.sims.ledger(TargetSystem::Provisioning)[0].callbacks_delivered,
        2
    );
    all_effects_once(&h);
    h.stop().await;
}

/// Callback before local wait test, as the simulators play it: the
/// callback arrives before the call's own response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_before_the_response_is_handled() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Inventory,
        Script::Next(vec![Fault::CallbackBeforeResponse]),
    );
    h.sims
        .script(TargetSystem::Billing, Script::Next(vec![Fault::AnswerLate]));
    let order = h.accept_quote("q-early", &["l1"]).await;
    h.completed(&order, 20).await;
    all_effects_once(&h);
    h.stop().await;
}

/// Reconciliation test: a missing callback is repaired, at once when an
/// operator asks (inside the SLA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_reconciliation_queries_at_once_and_repairs_a_lost_callback() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Provisioning,
        Script::Next(vec![Fault::DropCallback]),
    );
    let order = h.accept_quote("q-lost", &["l1"]).await;
    let provisioning = subject(&order, "l1", Purpose::Activate, 1);
    h.wait_handoff(&provisioning, 10, "accepted", |s| {
        status_of(s) == Some(HandoffStatus::Accepted)
    })
    .await;
    // Before the SLA the scheduled loop leaves it alone...
    let scheduled = h
        .fulfillment()
        .reconciler()
        .run("scheduled", Scope::Scheduled)
        .await
        .unwrap();
    assert_eq!(scheduled.checked, 0, "{scheduled:#?}");
    // An operator of another tenant neither checks nor sees it...
    let other = h
        .fulfillment()
        .trigger_reconciliation(&domain::ids::TenantId::new("t2"))
        .await
        .unwrap();
    assert_eq!((other.open_handoffs, other.checked), (0, 0), "{other:#?}");
    assert_eq!(
        status_of(&h.handoff(&provisioning)),
        Some(HandoffStatus::Accepted)
    );
    // ...and an operator of its own tenant asks the system at once.
    let report = h
        .fulfillment()
        .trigger_reconciliation(&tenant())
        .await
        .unwrap();
    assert_eq!(report.checked, 1, "{report:#?}");
    assert_eq!(
        report.entries[0].result,
        ReconciliationResult::ExternalSuccess
    );
    assert_eq!(report.entries[0].status_before, "accepted");
    h.completed(&order, 10).await;
    assert_eq!(h.sims.ledger(TargetSystem::Provisioning)[0].requests, 1);
    let runs = h.fulfillment().reconciler().recent_runs(10).unwrap();
    assert!(runs.len() >= 2, "every run is recorded");
    let evidence = h
        .fulfillment()
        .evidence(&provisioning.handoff_id())
        .unwrap();
    assert!(
        evidence.iter().any(|e| e.source == "reconciliation"),
        "{evidence:#?}"
    );
    h.stop().await;
}

/// Rejection test: a business rejection opens fallout; the operator's new
/// attempt (a new key) succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_opens_fallout_and_the_operators_new_attempt_succeeds() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Billing,
        Script::Next(vec![Fault::BusinessReject]),
    );
    let order = h.accept_quote("q-reject", &["l1", "l2"]).await;
    let state = h
        .wait_order(&order, 20, "in fallout", |s| {
            line_in_fallout(s, "l1") || line_in_fallout(s, "l2")
        })
        .await;
    let failed = if line_in_fallout(&state, "l1") {
        "l1"
    } else {
        "l2"
    };
    let OrderState::Open(open) = &state else {
        panic!("{state:#?}")
    };
    let line = open
        .lines
        .iter()
        .find(|l| l.line_id().as_str() == failed)
        .unwrap();
    assert!(matches!(
        line.progress,
        domain::order::LineProgress::Fallout {
            reason: FalloutReason::BusinessRejected,
            ..
        }
    ));
    let resolve = OrderCommand::ResolveFallout {
        line_id: line.line_id().clone(),
        resolution: Resolution::NewAttempt,
        operator: "ops@example".into(),
        at: at(60_000),
    };
    h.operate(&order, resolve, "resolve-1").await;
    h.completed(&order, 20).await;
    let billing = h.sims.ledger(TargetSystem::Billing);
    let first = billing
        .iter()
        .find(|e| {
            e.key
                .ends_with(&format!("{failed}:billing:activate_billing:1"))
        })
        .unwrap();
    let second = billing
        .iter()
        .find(|e| {
            e.key
                .ends_with(&format!("{failed}:billing:activate_billing:2"))
        })
        .unwrap();
    assert_eq!((first.state.as_str(), first.effects), ("REJECTED", 0));
    assert_eq!((second.state.as_str(), second.effects), ("ACTIVE", 1));
    let old = h.handoff(&subject(&order, failed, Purpose::ActivateBilling, 1));
    assert_eq!(status_of(&old), Some(HandoffStatus::Resolved));
    h.stop().await;
}

/// Unmapped, malformed and unauthorized answers go to fallout with the raw
/// code as evidence; nothing is retried blindly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_malformed_and_unauthorized_answers_raise_fallout() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Inventory,
        Script::Next(vec![
            Fault::UnknownStatusCode,
            Fault::MalformedBody,
            Fault::Unauthorized,
        ]),
    );
    let order = h.accept_quote("q-odd", &["l1", "l2", "l3"]).await;
    h.wait_order(&order, 20, "three lines in fallout", |s| {
        ["l1", "l2", "l3"].iter().all(|l| line_in_fallout(s, l))
    })
    .await;
    let OrderState::Open(open) = h.order(&order) else {
        panic!()
    };
    let mut reasons: Vec<FalloutReason> = open
        .lines
        .iter()
        .filter_map(|l| match l.progress {
            domain::order::LineProgress::Fallout { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    reasons.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        reasons,
        vec![
            FalloutReason::SchemaMismatch,
            FalloutReason::SecurityConfiguration,
            FalloutReason::Unclassified
        ]
    );
    assert!(h
        .sims
        .ledger(TargetSystem::Inventory)
        .iter()
        .all(|e| e.requests == 1));
    h.stop().await;
}

/// Replay test: a replayed consumer does not call any external system again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_consumer_does_not_call_any_external_system_again() {
    let mut h = Harness::start(Options::default()).await;
    let order = h.accept_quote("q-replay", &["l1", "l2"]).await;
    h.completed(&order, 20).await;
    // The capture and completion notifications are sent, and the order's
    // confirmation rendered, too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.sims.requests(TargetSystem::Notification) < 2
        || h.sims.requests(TargetSystem::Document) < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "notifications not sent"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let requests = |h: &Harness| {
        [
            TargetSystem::Inventory,
            TargetSystem::Provisioning,
            TargetSystem::Billing,
            TargetSystem::Notification,
            TargetSystem::Document,
        ]
        .map(|s| h.sims.requests(s))
    };
    let before = requests(&h);
    h.stop_fulfillment().await;

    // A plain checkpoint reset: every dispatch's command id is already
    // recorded, so nothing is called again.
    let dispatcher = h
        .path
        .log()
        .consumer(integration::dispatcher::NAME)
        .unwrap();
    assert!(dispatcher.has_side_effects().unwrap());
    dispatcher.reset_checkpoint(0).unwrap();
    h.start_fulfillment().await;
    let head = h.path.log().next_position();
    wait_for_checkpoint(&h, head).await;
    assert_eq!(requests(&h), before);
    h.stop_fulfillment().await;

    // Recovery mode (as `reset-consumer --recovery` does): suppressed and counted.
    let rewind = dispatcher.rewind_for_recovery(0).unwrap();
    assert!(rewind.recovery_until.is_some());
    h.start_fulfillment().await;
    let head = h.path.log().next_position();
    wait_for_checkpoint(&h, head).await;
    assert_eq!(requests(&h), before);
    assert_eq!(
        dispatcher.suppressed().unwrap(),
        9,
        "3 steps x 2 lines, 2 milestones and 1 confirmation suppressed"
    );
    assert_eq!(
        h.fulfillment().metrics_snapshot().suppressed_side_effects,
        9
    );
    assert_eq!(
        dispatcher.recovery_until().unwrap(),
        None,
        "bound cleared once passed"
    );
    assert!(matches!(h.order(&order), OrderState::Completed(_)));
    h.stop().await;
}

async fn wait_for_checkpoint(h: &Harness, at_least: u64) {
    for _ in 0..400 {
        let status = h.fulfillment().status();
        let dispatcher = status
            .consumers
            .iter()
            .find(|c| c.name == integration::dispatcher::NAME)
            .unwrap();
        if dispatcher.checkpoint >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "dispatcher never caught up: {:#?}",
        h.fulfillment().status()
    );
}

/// The circuit breaker fails fast with a retryable outcome and marks
/// nothing as failed; the flow resumes when the system recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_fails_fast_without_failing_anything() {
    let h = Harness::start(Options {
        circuit_threshold: 2,
        max_attempts: 10,
        ..Options::default()
    })
    .await;
    h.sims.script(
        TargetSystem::Inventory,
        Script::Next(vec![
            Fault::ServerError,
            Fault::ServerError,
            Fault::ServerError,
        ]),
    );
    let order = h.accept_quote("q-circuit", &["l1"]).await;
    h.completed(&order, 20).await;
    let metrics = h.fulfillment().metrics_snapshot();
    assert!(
        metrics
            .circuit_fast_fails
            .get("inventory")
            .copied()
            .unwrap_or(0)
            >= 1,
        "{metrics:#?}"
    );
    assert_eq!(metrics.calls["inventory"]["technical_retryable"], 3);
    h.stop().await;
}

/// The scheduled loop's next checks survive a restart of the process: a
/// handoff checked and found still pending is not asked again before its
/// next check is due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_reconciliation_schedule() {
    let mut h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Provisioning,
        Script::Next(vec![Fault::NeverCompletes]),
    );
    let order = h.accept_quote("q-schedule", &["l1"]).await;
    let provisioning = subject(&order, "l1", Purpose::Activate, 1);
    h.wait_handoff(&provisioning, 10, "accepted", |s| {
        status_of(s) == Some(HandoffStatus::Accepted)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let scheduled = |h: &Harness| {
        let reconciler = h.fulfillment().reconciler().clone();
        async move { reconciler.run("scheduled", Scope::Scheduled).await.unwrap() }
    };
    let first = scheduled(&h).await;
    assert_eq!(first.checked, 1, "{first:#?}");
    assert_eq!(first.entries[0].result, ReconciliationResult::Matched);
    h.stop_fulfillment().await;
    h.start_fulfillment().await;
    // Matched: next due an SLA later, and the restart remembers it.
    let again = scheduled(&h).await;
    assert_eq!(again.checked, 0, "{again:#?}");
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let later = scheduled(&h).await;
    assert_eq!(later.checked, 1, "{later:#?}");
    h.stop().await;
}

/// A handoff pending past the system's `fallout_after_ms` is declared an SLA
/// breach: the line goes to fallout for an operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_pending_past_its_fallout_deadline_is_an_sla_breach() {
    let mut h = Harness::start(Options::default()).await;
    h.stop_fulfillment().await;
    for systems in h.config.tenants.values_mut() {
        if let Some(provisioning) = systems.systems.get_mut("provisioning") {
            provisioning.fallout_after_ms = Some(1_600);
        }
    }
    h.start_fulfillment().await;
    // Provisioning accepts and never progresses: the status stays pending.
    h.sims.script(
        TargetSystem::Provisioning,
        Script::Next(vec![Fault::NeverCompletes]),
    );
    let order = h.accept_quote("q-sla", &["l1"]).await;
    let provisioning = subject(&order, "l1", Purpose::Activate, 1);
    h.wait_handoff(&provisioning, 10, "accepted", |s| {
        status_of(s) == Some(HandoffStatus::Accepted)
    })
    .await;
    // Past the SLA but before the deadline: checked, still pending, matched.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let report = h
        .fulfillment()
        .trigger_reconciliation(&tenant())
        .await
        .unwrap();
    assert_eq!(
        report.entries[0].result,
        ReconciliationResult::Matched,
        "{report:#?}"
    );
    // Checked again an SLA later, past the deadline: a breach.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let report = h
        .fulfillment()
        .trigger_reconciliation(&tenant())
        .await
        .unwrap();
    assert_eq!(
        report.entries[0].result,
        ReconciliationResult::SlaBreach,
        "{report:#?}"
    );
    let state = h
        .wait_order(&order, 10, "in fallout", |s| line_in_fallout(s, "l1"))
        .await;
    let OrderState::Open(open) = state else {
        panic!()
    };
    assert!(matches!(
        open.lines[0].progress,
        domain::order::LineProgress::Fallout {
            reason: FalloutReason::SlaBreach,
            ..
        }
    ));
    h.stop().await;
}

/// A stop is never held by a dispatch whose outcome the log can no longer
/// take (a fenced or closed log): the job ends unfinished, as after a
/// crash, and the next start marks the handoff UNKNOWN for
/// reconciliation. Found with a full disk: the server logged "stopping"
/// and then retried the observation every 200 ms until SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_a_dispatch_whose_outcome_the_log_can_no_longer_take() {
    let mut h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Inventory,
        Script::Next(vec![Fault::TimeoutAfterApply]),
    );
    let order = h.accept_quote("q-stop-held", &["l1"]).await;
    let reserve = subject(&order, "l1", Purpose::Reserve, 1);
    h.wait_handoff(&reserve, 10, "sent", |s| {
        status_of(s) == Some(HandoffStatus::Sent)
    })
    .await;
    // The call is in flight (the simulator holds its answer past the read
    // timeout); the log stops taking appends before its outcome comes.
    h.path.log().close().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), h.stop_fulfillment()).await;
    assert!(
        stopped.is_ok(),
        "the fulfillment process did not stop within 10 s"
    );
    h.stop().await;
}

/// A forward step waiting for its resend when its order is cancelled is
/// withdrawn: the resend never goes (the cancellation already undoes the
/// step), and the handoff is closed rather than left pending. Found by
/// cancelling an order whose provisioning had a scheduled retry: the
/// provisioning request went out after the cancellation, activating a
/// service nothing would cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_waiting_for_its_resend_is_never_sent_after_its_order_is_cancelled() {
    let h = Harness::start(Options {
        retry_base_ms: 1_500,
        ..Options::default()
    })
    .await;
    h.sims.script(
        TargetSystem::Provisioning,
        Script::Next(vec![Fault::ServerError]),
    );
    let order = h.accept_quote("q-cancel-retry", &["l1"]).await;
    let forward = subject(&order, "l1", Purpose::Activate, 1);
    h.wait_handoff(&forward, 10, "retry scheduled", |s| {
        matches!(status_of(s), Some(HandoffStatus::RetryScheduled { .. }))
    })
    .await;
    let cancel = OrderCommand::Cancel {
        reason: "customer withdrew".into(),
        at: at(60_000),
    };
    h.operate(&order, cancel, "cancel-1").await;
    h.wait_handoff(&forward, 10, "withdrawn", |s| {
        status_of(s) == Some(HandoffStatus::Withdrawn)
    })
    .await;
    // Past the resend's due time (1.5 s after the failure).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let activations: Vec<_> = h
        .sims
        .ledger(TargetSystem::Provisioning)
        .into_iter()
        .filter(|e| e.operation == "activate")
        .collect();
    assert_eq!(activations.len(), 1, "{activations:#?}");
    assert_eq!(
        (activations[0].requests, activations[0].effects),
        (1, 0),
        "the provisioning request was sent again after the cancellation: {activations:#?}"
    );
    assert_eq!(
        status_of(&h.handoff(&forward)),
        Some(HandoffStatus::Withdrawn)
    );
    h.stop().await;
}
