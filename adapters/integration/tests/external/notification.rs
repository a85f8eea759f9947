//! Customer notifications end to end: each milestone is sent once, after
//! its event is committed, with curated data; an ambiguous provider answer
//! is settled by a status query, never by a second send (the seeds'
//! runbook case "notification sent twice").

use std::time::Duration;

use domain::handoff::{HandoffState, HandoffStatus};
use domain::idempotency::TargetSystem;
use domain::ids::OrderId;
use domain::notification::{handoff, Milestone};
use domain::order::OrderCommand;
use domain::testing::fixtures::{at, customer, tenant};
use integration::reconciliation::ReconciliationResult;
use simulators::{Fault, Script};

use crate::harness::{status_of, succeeded, Harness, Options};

fn notification(order: &OrderId, milestone: &Milestone) -> domain::handoff::HandoffSubject {
    handoff(&tenant(), order, &customer().customer_id, milestone).subject
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_order_notifies_capture_and_completion_once_each() {
    let h = Harness::start(Options::default()).await;
    let order = h.accept_quote("q-notify", &["l1", "l2"]).await;
    h.completed(&order, 20).await;
    let captured = notification(&order, &Milestone::OrderCaptured);
    let completed = notification(&order, &Milestone::OrderCompleted);
    h.wait_handoff(&captured, 10, "sent", succeeded).await;
    h.wait_handoff(&completed, 10, "sent", succeeded).await;
    let ledger = h.sims.ledger(TargetSystem::Notification);
    assert_eq!(ledger.len(), 2, "{ledger:#?}");
    assert!(
        ledger.iter().all(|e| e.requests == 1 && e.effects == 1),
        "{ledger:#?}"
    );
    assert_eq!(h.sims.duplicate_side_effects(), 0);
    h.stop().await;
}

/// Runbook 29.3: the provider sends, then its answer is lost; the
/// platform records UNKNOWN, does not send again, and reconciliation finds
/// the message sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_provider_answer_followed_by_a_retry_sends_once() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Notification,
        Script::Next(vec![Fault::TimeoutAfterApply]),
    );
    let order = h.accept_quote("q-notify-twice", &["l1"]).await;
    let captured = notification(&order, &Milestone::OrderCaptured);
    h.wait_handoff(&captured, 10, "unknown", |s| {
        status_of(s) == Some(HandoffStatus::Unknown)
    })
    .await;
    // Let the hanging answer end: still one request, no resend while unknown.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let key = captured.idempotency_key();
    let entry = |h: &Harness| {
        h.sims
            .ledger(TargetSystem::Notification)
            .into_iter()
            .find(|e| e.key == key)
            .unwrap()
    };
    assert_eq!((entry(&h).requests, entry(&h).effects), (1, 1));
    assert_eq!(
        h.reconcile(&captured).await,
        ReconciliationResult::ExternalSuccess
    );
    h.wait_handoff(&captured, 10, "sent", succeeded).await;
    h.completed(&order, 20).await;
    // A second reconciliation and the order's completion send nothing more.
    h.fulfillment()
        .trigger_reconciliation(&tenant())
        .await
        .unwrap();
    assert_eq!((entry(&h).requests, entry(&h).effects), (1, 1));
    assert_eq!(h.sims.duplicate_side_effects(), 0);
    h.stop().await;
}

/// A line that falls out tells the customer in curated words; the
/// provider's refusal of a notification is the notification's own
/// fallout, never the order's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_in_fallout_gets_a_curated_message_and_a_bounced_message_stays_its_own_fallout() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Inventory,
        Script::Next(vec![Fault::BusinessReject]),
    );
    h.sims.script(
        TargetSystem::Notification,
        Script::Next(vec![Fault::BusinessReject]),
    );
    let order = h.accept_quote("q-notify-attention", &["l1"]).await;
    let captured = notification(&order, &Milestone::OrderCaptured);
    h.wait_handoff(&captured, 10, "rejected", |s| {
        matches!(
            status_of(s),
            Some(HandoffStatus::Rejected | HandoffStatus::Fallout { .. })
        )
    })
    .await;
    let attention = Milestone::LineNeedsAttention {
        line_id: domain::ids::LineId::new("l1"),
        step: domain::order::Step::Reservation,
        attempt: 1,
        reason: domain::outcome::FalloutReason::BusinessRejected,
    };
    let subject = notification(&order, &attention);
    h.wait_handoff(&subject, 10, "sent", succeeded).await;
    let ledger = h.sims.ledger(TargetSystem::Notification);
    assert_eq!(ledger.len(), 2, "{ledger:#?}");
    // The order is in fallout for its line, not for the bounced message.
    let state = h.order(&order);
    assert!(crate::harness::line_in_fallout(&state, "l1"), "{state:#?}");
    // The template data the provider got is the curated text.
    let HandoffState::Open(sent) = h.handoff(&subject) else {
        panic!("no attention handoff")
    };
    let message = sent.request_snapshot.fields.get("message").cloned();
    assert_eq!(message.as_deref(), Some(attention.message()));
    assert!(!message.unwrap_or_default().contains("NO_CAPACITY"));
    // A cancelled order is never notified again.
    let cancelled = h
        .path
        .execute::<domain::OrderDecider>(
            &domain::ids::order_stream(&order),
            &OrderCommand::Cancel {
                reason: "customer withdrew".to_owned(),
                at: at(1),
            },
            &application::CommandContext::new(
                domain::idempotency::CommandKey::job("test", "cancel"),
                "t1".to_owned(),
                "corr".to_owned(),
            ),
        )
        .await;
    assert!(cancelled.is_ok(), "{cancelled:?}");
    let refused = h
        .path
        .execute::<domain::OrderDecider>(
            &domain::ids::order_stream(&order),
            &OrderCommand::RequestNotification {
                milestone: Milestone::OrderCompleted,
                at: at(2),
            },
            &application::CommandContext::new(
                domain::idempotency::CommandKey::job("test", "notify"),
                "t1".to_owned(),
                "corr".to_owned(),
            ),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    h.stop().await;
}
