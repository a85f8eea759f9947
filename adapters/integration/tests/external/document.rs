//! Order confirmation documents end to end: rendered once per order from
//! the order's snapshot, after the capture is committed; an ambiguous
//! answer of the document service is settled by a status query, never by
//! a second render; a refused render is the document's own fallout, never
//! the order's.

use std::time::Duration;

use domain::handoff::{HandoffState, HandoffStatus, HandoffSubject};
use domain::idempotency::TargetSystem;
use domain::ids::OrderId;
use domain::order::OrderState;
use domain::testing::fixtures::tenant;
use integration::reconciliation::ReconciliationResult;
use simulators::{Fault, LedgerEntry, Script};

use crate::harness::{status_of, succeeded, Harness, Options};

/// The confirmation the captured order asks for.
async fn confirmation(h: &Harness, order: &OrderId) -> domain::confirmation::ConfirmationRequest {
    let state = h
        .wait_order(order, 10, "captured", |s| !matches!(s, OrderState::Empty))
        .await;
    let (OrderState::Open(captured) | OrderState::Completed(captured)) = state else {
        panic!("not captured: {state:#?}");
    };
    domain::confirmation::request(&captured)
}

/// The document service's renders by key (not the proposals' renders).
fn renders(h: &Harness) -> Vec<LedgerEntry> {
    h.sims
        .ledger(TargetSystem::Document)
        .into_iter()
        .filter(|e| e.operation == "generate_document")
        .collect()
}

fn render_of(h: &Harness, subject: &HandoffSubject) -> LedgerEntry {
    let key = subject.idempotency_key();
    renders(h)
        .into_iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no render with key {key}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_order_renders_its_confirmation_once_from_its_snapshot() {
    let h = Harness::start(Options::default()).await;
    let order = h.accept_quote("q-confirm", &["l1", "l2"]).await;
    let request = confirmation(&h, &order).await;
    let subject = request.handoff.subject.clone();
    h.wait_handoff(&subject, 10, "rendered", succeeded).await;
    h.completed(&order, 20).await;
    let ledger = renders(&h);
    assert_eq!(ledger.len(), 1, "{ledger:#?}");
    assert_eq!((ledger[0].requests, ledger[0].effects), (1, 1));
    // The stored record: the snapshot's id and the template, the service's
    // reference for the artifact.
    let HandoffState::Open(rendered) = h.handoff(&subject) else {
        panic!("no confirmation handoff")
    };
    let fields = &rendered.request_snapshot.fields;
    assert_eq!(fields["snapshot_id"], request.snapshot_id);
    assert_eq!(
        fields["template_version"],
        domain::confirmation::TEMPLATE_VERSION
    );
    let events = h
        .path
        .log()
        .read_stream(&domain::ids::handoff_stream(&subject.handoff_id()), 1, 100)
        .unwrap();
    let reference = events.iter().find_map(|e| {
        match eventlog::decode_payload::<domain::handoff::HandoffEvent>(&e.payload) {
            Ok(domain::handoff::HandoffEvent::HandoffSucceeded { observation, .. }) => {
                observation.external_reference
            }
            _ => None,
        }
    });
    assert!(
        reference
            .as_deref()
            .is_some_and(|r| r.starts_with("document-ref-")),
        "{reference:?}"
    );
    // The completed order asks for nothing more.
    let completed = confirmation(&h, &order).await;
    assert_eq!(completed, request);
    assert_eq!(h.sims.duplicate_side_effects(), 0);
    h.stop().await;
}

/// The seeds' "sent twice" case for documents: the service stores the
/// document, then its answer is lost. The platform records UNKNOWN, does
/// not render again, and reconciliation finds the document stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_render_followed_by_a_retry_stores_one_document() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Document,
        Script::Next(vec![Fault::TimeoutAfterApply]),
    );
    let order = h.accept_quote("q-confirm-twice", &["l1"]).await;
    let subject = confirmation(&h, &order).await.handoff.subject;
    h.wait_handoff(&subject, 10, "unknown", |s| {
        status_of(s) == Some(HandoffStatus::Unknown)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let entry = render_of(&h, &subject);
    assert_eq!((entry.requests, entry.effects), (1, 1));
    assert_eq!(
        h.reconcile(&subject).await,
        ReconciliationResult::ExternalSuccess
    );
    h.wait_handoff(&subject, 10, "rendered", succeeded).await;
    h.completed(&order, 20).await;
    h.fulfillment()
        .trigger_reconciliation(&tenant())
        .await
        .unwrap();
    let entry = render_of(&h, &subject);
    assert_eq!((entry.requests, entry.effects), (1, 1));
    assert_eq!(h.sims.duplicate_side_effects(), 0);
    h.stop().await;
}

/// A render lost before the service got it: reconciliation finds nothing
/// and the platform renders again with the same key, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_lost_before_it_arrived_is_sent_again_with_the_same_key() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Document,
        Script::Next(vec![Fault::TimeoutBeforeApply]),
    );
    let order = h.accept_quote("q-confirm-lost", &["l1"]).await;
    let subject = confirmation(&h, &order).await.handoff.subject;
    h.wait_handoff(&subject, 10, "unknown", |s| {
        status_of(s) == Some(HandoffStatus::Unknown)
    })
    .await;
    h.fulfillment()
        .trigger_reconciliation(&tenant())
        .await
        .unwrap();
    h.wait_handoff(&subject, 15, "rendered", succeeded).await;
    let entry = render_of(&h, &subject);
    assert_eq!(entry.effects, 1, "{entry:#?}");
    assert_eq!(h.sims.duplicate_side_effects(), 0);
    h.stop().await;
}

/// The service refuses the template: the confirmation's handoff is its
/// own fallout case; the order is fulfilled all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_render_is_the_documents_own_fallout_and_the_order_completes() {
    let h = Harness::start(Options::default()).await;
    h.sims.script(
        TargetSystem::Document,
        Script::Next(vec![Fault::ValidationReject]),
    );
    let order = h.accept_quote("q-confirm-refused", &["l1"]).await;
    let subject = confirmation(&h, &order).await.handoff.subject;
    h.wait_handoff(&subject, 10, "refused", |s| {
        matches!(
            status_of(s),
            Some(HandoffStatus::Rejected | HandoffStatus::Fallout { .. })
        )
    })
    .await;
    h.completed(&order, 20).await;
    assert_eq!(render_of(&h, &subject).effects, 0);
    h.stop().await;
}
