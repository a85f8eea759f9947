//! Golden bytes: one encoded event of every type, at its current schema version, is
//! committed in `tests/fixtures/golden_events.txt` (`<aggregate> <EventType> <hex>`
//! per line) and must keep decoding to the same value. A change that reorders
//! variants or fields breaks this test, which is the point: old logs must stay
//! readable.
//!
//! Regenerate only after a deliberate change: a compatible one, or a version bump
//! whose old shape is frozen with its upcaster and its own golden bytes under
//! `tests/golden/` (see `tests/upcast.rs` and `docs/adr/0013-upcasting.md`):
//! `DOMAIN_BLESS=1 cargo test -p domain --test golden`.

use domain::catalog::CatalogEvent;
use domain::decider::DomainEvent;
use domain::handoff::{HandoffEvent, RequestSnapshot};
use domain::idempotency::Purpose;
use domain::ids::CustomerId;
use domain::order::{CompensationPlan, OrderEvent, Resolution, Step, Uncompensated};
use domain::outcome::{FalloutReason, ObservationSource, OutcomeClass};
use domain::quote::{ApprovalReason, QuoteEvent};
use domain::testing::fixtures::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::PathBuf;

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_events.txt")
}

/// Forces a compile error when a variant is added without a golden sample.
fn quote_sample_for(event: &QuoteEvent) -> QuoteEvent {
    match event {
        QuoteEvent::QuoteCreated { .. }
        | QuoteEvent::LineAdded { .. }
        | QuoteEvent::LineChanged { .. }
        | QuoteEvent::LineRemoved { .. }
        | QuoteEvent::RevisionStarted { .. }
        | QuoteEvent::QuotePriced { .. }
        | QuoteEvent::ApprovalRequired { .. }
        | QuoteEvent::ApprovalGranted { .. }
        | QuoteEvent::ApprovalRejected { .. }
        | QuoteEvent::ProposalGenerated { .. }
        | QuoteEvent::SignatureRecorded { .. }
        | QuoteEvent::QuoteAccepted { .. }
        | QuoteEvent::QuoteExpired { .. }
        | QuoteEvent::QuoteWithdrawn { .. }
        | QuoteEvent::CustomerDriftReported { .. }
        | QuoteEvent::CustomerRevalidated { .. }
        | QuoteEvent::CustomerSuspended { .. }
        | QuoteEvent::CustomerApprovalRequired { .. }
        | QuoteEvent::CustomerCheckFailed { .. } => event.clone(),
    }
}

fn quote_samples() -> Vec<QuoteEvent> {
    let reason = ApprovalReason {
        segment: customer().segment,
        discount: percent(20),
        threshold: percent(15),
        policy_version: "approval-v2".to_owned(),
    };
    [
        quote_created(),
        QuoteEvent::LineAdded {
            revision: 1,
            line: line("l1"),
            at: T0,
        },
        QuoteEvent::LineChanged {
            revision: 2,
            line: line("l1"),
            at: at(1),
        },
        QuoteEvent::LineRemoved {
            revision: 2,
            line_id: line_id("l2"),
            at: at(2),
        },
        QuoteEvent::RevisionStarted {
            revision: 2,
            at: at(1),
        },
        QuoteEvent::QuotePriced {
            price: Box::new(price(2, &["l1"], percent(20))),
            at: at(3),
        },
        QuoteEvent::ApprovalRequired {
            revision: 2,
            reason,
            at: at(3),
        },
        QuoteEvent::ApprovalGranted {
            revision: 2,
            approver: "boss".to_owned(),
            at: at(4),
        },
        QuoteEvent::ApprovalRejected {
            revision: 2,
            approver: "boss".to_owned(),
            reason: "no".to_owned(),
            at: at(4),
        },
        QuoteEvent::ProposalGenerated {
            revision: 2,
            artifact: proposal("art-2"),
            at: at(5),
        },
        QuoteEvent::SignatureRecorded {
            revision: 2,
            signature: signature("art-2"),
            at: at(6),
        },
        QuoteEvent::QuoteAccepted {
            quote_id: quote_id(),
            tenant_id: tenant(),
            revision: 2,
            customer_id: CustomerId::new("c1"),
            billing_account: billing_account(),
            price_input_hash: "price-input-r2".to_owned(),
            signed_artifact_hash: "art-2".to_owned(),
            lines: vec![accepted_line("l1")],
            at: at(7),
        },
        QuoteEvent::QuoteExpired { at: at(8) },
        QuoteEvent::QuoteWithdrawn {
            reason: "lost".to_owned(),
            at: at(8),
        },
        QuoteEvent::CustomerDriftReported {
            observed: customer_in_enterprise_segment(),
            at: at(9),
        },
        QuoteEvent::CustomerRevalidated {
            customer: customer_in_enterprise_segment(),
            at: at(10),
        },
        QuoteEvent::CustomerSuspended {
            status: "SUSPENDED".to_owned(),
            at: at(11),
        },
        QuoteEvent::CustomerApprovalRequired {
            revision: 2,
            status: "SUSPENDED".to_owned(),
            at: at(12),
        },
        QuoteEvent::CustomerCheckFailed {
            evidence: "CRM answered in an unexpected shape".to_owned(),
            at: at(13),
        },
    ]
    .iter()
    .map(quote_sample_for)
    .collect()
}

/// Forces a compile error when a variant is added without a golden sample.
fn order_sample_for(event: &OrderEvent) -> OrderEvent {
    match event {
        OrderEvent::OrderCaptured { .. }
        | OrderEvent::StepRequested { .. }
        | OrderEvent::StepSucceeded { .. }
        | OrderEvent::LineActivated { .. }
        | OrderEvent::LineFalloutRaised { .. }
        | OrderEvent::LineFalloutResolved { .. }
        | OrderEvent::LineCancelled { .. }
        | OrderEvent::OrderCancelled { .. }
        | OrderEvent::OrderCompleted { .. }
        | OrderEvent::CompensationSettled { .. }
        | OrderEvent::NotificationRequested { .. }
        | OrderEvent::ConfirmationRequested { .. }
        | OrderEvent::StepWithdrawn { .. }
        | OrderEvent::CancellationPlanned { .. }
        | OrderEvent::CompensationRequested { .. } => event.clone(),
    }
}

fn plan_for_golden() -> CompensationPlan {
    CompensationPlan {
        compensations: vec![domain::handoff::HandoffRequest::new(
            subject("l1", Purpose::Cancel, 1),
            request(),
        )],
        uncompensated: vec![Uncompensated {
            line_id: line_id("l1"),
            step: Step::Reservation,
        }],
    }
}

fn order_samples() -> Vec<OrderEvent> {
    let reserve = subject("l1", Purpose::Reserve, 1);
    let release =
        domain::handoff::HandoffRequest::new(subject("l1", Purpose::Release, 1), request());
    let plan = CompensationPlan {
        compensations: vec![release],
        uncompensated: vec![Uncompensated {
            line_id: line_id("l2"),
            step: Step::BillingActivation,
        }],
    };
    [
        order_captured(&["l1", "l2"]),
        OrderEvent::StepRequested {
            step: Step::Reservation,
            handoff: domain::handoff::HandoffRequest::new(reserve.clone(), request()),
            at: at(1),
        },
        OrderEvent::StepSucceeded {
            line_id: line_id("l1"),
            step: Step::Reservation,
            handoff_id: reserve.handoff_id(),
            attempt: 1,
            external_reference: Some("INV-1".to_owned()),
            at: at(2),
        },
        OrderEvent::LineActivated {
            line_id: line_id("l1"),
            lines_open: 1,
            at: at(3),
        },
        OrderEvent::LineFalloutRaised {
            line_id: line_id("l2"),
            step: Step::Provisioning,
            handoff_id: reserve.handoff_id(),
            attempt: 1,
            reason: FalloutReason::SlaBreach,
            at: at(4),
        },
        OrderEvent::LineFalloutResolved {
            line_id: line_id("l2"),
            step: Step::Provisioning,
            handoff_id: reserve.handoff_id(),
            resolution: Resolution::ResolvedExternally {
                reference: "PRV-9".to_owned(),
                note: "ok".to_owned(),
            },
            operator: "ops".to_owned(),
            at: at(5),
        },
        OrderEvent::LineCancelled {
            line_id: line_id("l1"),
            plan: plan.clone(),
            lines_open: 0,
            at: at(6),
        },
        OrderEvent::OrderCancelled {
            reason: "customer".to_owned(),
            plan,
            at: at(7),
        },
        OrderEvent::OrderCompleted { at: at(8) },
        OrderEvent::CompensationSettled {
            line_id: line_id("l1"),
            handoff_id: subject("l1", Purpose::Release, 1).handoff_id(),
            purpose: Purpose::Release,
            outcome: domain::order::CompensationOutcome::Failed {
                reason: domain::outcome::FalloutReason::BusinessRejected,
            },
            at: at(9),
        },
        {
            let milestone = domain::notification::Milestone::LineNeedsAttention {
                line_id: line_id("l1"),
                step: Step::Provisioning,
                attempt: 1,
                reason: FalloutReason::SlaBreach,
            };
            OrderEvent::NotificationRequested {
                key: domain::notification::notification_key(&order_id(), &milestone),
                handoff: domain::notification::handoff(
                    &tenant(),
                    &order_id(),
                    &CustomerId::new("c1"),
                    &milestone,
                ),
                milestone,
                at: at(10),
            }
        },
        OrderEvent::ConfirmationRequested {
            key: "document:ORDER_CONFIRMATION:o1:order-confirmation-v1:en".to_owned(),
            snapshot_id: "ab".repeat(32),
            handoff: domain::handoff::HandoffRequest::new(
                subject(
                    "document_order-confirmation-v1",
                    Purpose::GenerateDocument,
                    1,
                ),
                request(),
            ),
            at: at(11),
        },
        OrderEvent::StepWithdrawn {
            line_id: line_id("l2"),
            step: Step::Provisioning,
            handoff_id: subject("l2", Purpose::Activate, 1).handoff_id(),
            attempt: 1,
            at: at(12),
        },
        OrderEvent::CancellationPlanned {
            line_id: line_id("l1"),
            plan: plan_for_golden(),
            at: at(13),
        },
        OrderEvent::CompensationRequested {
            line_id: line_id("l1"),
            handoff: domain::handoff::HandoffRequest::new(
                subject("l1", Purpose::Release, 1),
                request(),
            ),
            at: at(14),
        },
    ]
    .iter()
    .map(order_sample_for)
    .collect()
}

/// Forces a compile error when a variant is added without a golden sample.
fn handoff_sample_for(event: &HandoffEvent) -> HandoffEvent {
    match event {
        HandoffEvent::HandoffRequested { .. }
        | HandoffEvent::HandoffSent { .. }
        | HandoffEvent::HandoffAccepted { .. }
        | HandoffEvent::HandoffSucceeded { .. }
        | HandoffEvent::HandoffRejected { .. }
        | HandoffEvent::HandoffOutcomeUnknown { .. }
        | HandoffEvent::HandoffRetryScheduled { .. }
        | HandoffEvent::HandoffFalloutRaised { .. }
        | HandoffEvent::HandoffResolved { .. }
        | HandoffEvent::HandoffObservationNoted { .. }
        | HandoffEvent::HandoffWithdrawn { .. } => event.clone(),
    }
}

fn handoff_samples() -> Vec<HandoffEvent> {
    let s = subject("l1", Purpose::ActivateBilling, 2);
    let seen = |class, source| observation(&s, class, source);
    [
        handoff_requested(&s),
        HandoffEvent::HandoffSent { send: 1, at: at(1) },
        HandoffEvent::HandoffAccepted {
            observation: seen(OutcomeClass::Accepted, ObservationSource::Dispatch),
        },
        HandoffEvent::HandoffSucceeded {
            subject: s.clone(),
            observation: seen(OutcomeClass::IdempotentSuccess, ObservationSource::Callback),
        },
        HandoffEvent::HandoffRejected {
            subject: s.clone(),
            reason: FalloutReason::BusinessRejected,
            observation: seen(OutcomeClass::BusinessRejected, ObservationSource::Callback),
        },
        HandoffEvent::HandoffOutcomeUnknown {
            observation: seen(OutcomeClass::Unknown, ObservationSource::Dispatch),
        },
        HandoffEvent::HandoffRetryScheduled {
            retry: 1,
            due_at: at(3_000),
            observation: seen(
                OutcomeClass::TechnicalRetryable,
                ObservationSource::Reconciliation,
            ),
        },
        HandoffEvent::HandoffFalloutRaised {
            subject: s.clone(),
            reason: FalloutReason::SecurityConfiguration,
            observation: Some(seen(
                OutcomeClass::SecurityConfiguration,
                ObservationSource::Dispatch,
            )),
            at: at(4),
        },
        HandoffEvent::HandoffResolved {
            operator: "ops".to_owned(),
            note: "creds rotated".to_owned(),
            at: at(5),
            subject: Some(s.clone()),
        },
        HandoffEvent::HandoffObservationNoted {
            observation: seen(
                OutcomeClass::SchemaMismatch,
                ObservationSource::Reconciliation,
            ),
        },
        HandoffEvent::HandoffWithdrawn {
            reason: "order cancelled".to_owned(),
            at: at(6),
        },
    ]
    .iter()
    .map(handoff_sample_for)
    .collect()
}

/// Forces a compile error when a variant is added without a golden sample.
fn catalog_sample_for(event: &CatalogEvent) -> CatalogEvent {
    match event {
        CatalogEvent::CatalogVersionActivated { .. }
        | CatalogEvent::CatalogVersionRetired { .. } => event.clone(),
    }
}

fn catalog_samples() -> Vec<CatalogEvent> {
    [
        CatalogEvent::CatalogVersionActivated {
            tenant_id: tenant(),
            version: "catalog-2026.11".to_owned(),
            at: at(1),
        },
        CatalogEvent::CatalogVersionRetired {
            version: "catalog-2026.11".to_owned(),
            reason: "superseded by catalog-2026.12".to_owned(),
            at: at(2),
        },
    ]
    .iter()
    .map(catalog_sample_for)
    .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .unwrap_or_else(|e| panic!("bad hex at {i}: {e}"))
        })
        .collect()
}

fn encode<E: Serialize>(event: &E) -> Vec<u8> {
    bincode::serde::encode_to_vec(event, bincode::config::standard())
        .unwrap_or_else(|e| panic!("encode: {e}"))
}

fn decode<E: DeserializeOwned>(bytes: &[u8]) -> E {
    let (event, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .unwrap_or_else(|e| panic!("decode: {e}"));
    assert_eq!(read, bytes.len(), "trailing bytes");
    event
}

fn lines_for<E: Serialize + DomainEvent>(aggregate: &str, events: &[E]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{aggregate} {} {}", e.event_type(), hex(&encode(e))))
        .collect()
}

fn expected_fixture() -> String {
    let mut lines = lines_for("quote", &quote_samples());
    lines.extend(lines_for("order", &order_samples()));
    lines.extend(lines_for("handoff", &handoff_samples()));
    lines.extend(lines_for("catalog", &catalog_samples()));
    lines.join("\n") + "\n"
}

/// Decodes `hex` as `E` and checks it equals the sample of the same type.
fn check<E: DeserializeOwned + DomainEvent + PartialEq + Debug>(
    event_type: &str,
    hex: &str,
    samples: &[E],
) {
    let decoded: E = decode(&unhex(hex));
    assert_eq!(decoded.event_type(), event_type, "variant index moved");
    let sample = samples.iter().find(|s| s.event_type() == event_type);
    assert_eq!(
        Some(&decoded),
        sample,
        "{event_type} decodes to another value"
    );
    assert_eq!(
        decoded.schema_version(),
        domain::upcast::current_version(event_type)
    );
}

#[test]
fn every_committed_event_still_decodes_and_encodes_to_the_same_bytes() {
    let path = fixture_path();
    if std::env::var_os("DOMAIN_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, expected_fixture())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e} (bless with DOMAIN_BLESS=1)", path.display()));
    let mut seen = BTreeSet::new();
    for line in committed.lines() {
        let mut parts = line.split(' ');
        let (Some(aggregate), Some(event_type), Some(hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("malformed fixture line: {line}");
        };
        match aggregate {
            "quote" => check(event_type, hex, &quote_samples()),
            "order" => check(event_type, hex, &order_samples()),
            "handoff" => check(event_type, hex, &handoff_samples()),
            "catalog" => check(event_type, hex, &catalog_samples()),
            other => panic!("unknown aggregate {other}"),
        }
        assert!(
            seen.insert(event_type.to_owned()),
            "{event_type} appears twice"
        );
    }
    assert_eq!(
        seen.len(),
        19 + 15 + 11 + 2,
        "every event type has a golden line"
    );
    assert_eq!(
        committed,
        expected_fixture(),
        "encoding changed; if compatible, bless with DOMAIN_BLESS=1"
    );
}

#[test]
fn event_type_names_are_unique_across_aggregates() {
    let mut names: Vec<&str> = quote_samples()
        .iter()
        .map(DomainEvent::event_type)
        .collect();
    names.extend(order_samples().iter().map(DomainEvent::event_type));
    names.extend(handoff_samples().iter().map(DomainEvent::event_type));
    names.extend(catalog_samples().iter().map(DomainEvent::event_type));
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn a_request_snapshot_round_trips() {
    let decoded: RequestSnapshot = decode(&encode(&request()));
    assert_eq!(decoded, request());
}
