//! Given events, then view: one scenario per read model, built from the
//! domain's deciders and fixtures, appended to a real log and projected.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use common::TestLog;
use domain::decider::{fold, run, Decider};
use domain::handoff::{HandoffCommand, HandoffDecider, HandoffEvent, HandoffSubject};
use domain::idempotency::{Purpose, TargetSystem};
use domain::ids::{CustomerId, HandoffId, OrderId, QuoteId, TenantId, Timestamp};
use domain::order::{OrderCommand, OrderDecider, OrderEvent, Resolution, Step};
use domain::outcome::{FalloutReason, ObservationSource, OutcomeClass};
use domain::quote::{QuoteCommand, QuoteDecider, QuoteEvent};
use domain::testing::fixtures::{self, at, T0};
use projections::{
    ApprovalState, CaseStatus, FalloutAction, FalloutFilter, HandoffFilter, HandoffStage,
    LineStage, OrderFilter, OrderStatus, QueryError, QuoteFilter, QuoteStatus, ResolutionHow,
    StepChange,
};

const MIN: u64 = 60_000;

fn t1() -> TenantId {
    fixtures::tenant()
}

/// Decides `commands` in order from `history` and returns the new events.
fn decide<D: Decider>(history: &[D::Event], commands: Vec<D::Command>) -> Vec<D::Event>
where
    D::Error: std::fmt::Debug,
{
    let mut state = fold::<D, _>(history);
    let mut out = Vec::new();
    for c in commands {
        let d = run::<D>(state, &c).unwrap();
        state = d.state;
        out.extend(d.events);
    }
    out
}

fn quote(id: &str, customer: &str, created: Timestamp) -> Vec<QuoteEvent> {
    let mut c = fixtures::customer();
    c.customer_id = CustomerId::new(customer);
    vec![QuoteEvent::QuoteCreated {
        quote_id: QuoteId::new(id),
        tenant_id: t1(),
        customer: c,
        catalog_version: "catalog-2024.06".into(),
        at: created,
    }]
}

#[test]
fn a_quote_shows_its_revision_lines_price_approval_proposal_signature_and_acceptance() {
    let t = TestLog::new();
    let mut history = fixtures::quote_ready_to_accept();
    history.extend(decide::<QuoteDecider>(
        &history,
        vec![QuoteCommand::Accept {
            billing_account: fixtures::billing_account(),
            price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
            capabilities: domain::capability::Capabilities::all(),
            at: at(6_000),
        }],
    ));
    t.append("quote-q1", "t1", "corr-1", &history);
    let read = t.project();
    let q = read.quote(&t1(), &fixtures::quote_id()).unwrap().unwrap();
    assert_eq!(q.status, QuoteStatus::Accepted);
    assert_eq!(q.revision, 1);
    assert_eq!(q.lines, vec![fixtures::line("l1")]);
    assert_eq!(
        q.price.as_ref().map(|p| p.input_hash.as_str()),
        Some("price-input-r1")
    );
    assert!(q.approval.is_none());
    assert_eq!(
        q.proposal
            .as_ref()
            .map(|p| p.artifact.artifact_hash.as_str()),
        Some("art-1")
    );
    assert_eq!(
        q.signature.as_ref().map(|s| s.evidence.signer.as_str()),
        Some("jane@acme.example")
    );
    let acceptance = q.acceptance.as_ref().unwrap();
    assert_eq!(acceptance.billing_account, fixtures::billing_account());
    assert_eq!(acceptance.signed_artifact_hash, "art-1");
    assert_eq!(acceptance.lines, vec![fixtures::accepted_line("l1")]);
    assert_eq!((q.created_at, q.updated_at, q.version), (T0, at(6_000), 6));
    // Another tenant sees nothing.
    assert!(read
        .quote(&TenantId::new("t2"), &fixtures::quote_id())
        .unwrap()
        .is_none());
}

#[test]
fn an_approval_required_then_granted_shows_on_the_quote() {
    let t = TestLog::new();
    let mut history = vec![
        fixtures::quote_created(),
        QuoteEvent::LineAdded {
            revision: 1,
            line: fixtures::line("l1"),
            at: T0,
        },
    ];
    history.extend(decide::<QuoteDecider>(
        &history,
        vec![QuoteCommand::Price {
            price: fixtures::price(1, &["l1"], fixtures::percent(20)),
            policy: fixtures::approval_policy(),
            at: at(1_000),
        }],
    ));
    t.append("quote-q1", "t1", "c", &history);
    let read = t.project();
    let q = read.quote(&t1(), &fixtures::quote_id()).unwrap().unwrap();
    assert_eq!(q.status, QuoteStatus::PendingApproval);
    assert_eq!(
        q.approval.as_ref().map(|a| a.state),
        Some(ApprovalState::Required)
    );
    let granted = decide::<QuoteDecider>(
        &history,
        vec![QuoteCommand::Approve {
            approver: "boss".into(),
            at: at(2_000),
        }],
    );
    t.append("quote-q1", "t1", "c", &granted);
    let read = t.project();
    let q = read.quote(&t1(), &fixtures::quote_id()).unwrap().unwrap();
    assert_eq!(q.status, QuoteStatus::Approved);
    let a = q.approval.unwrap();
    assert_eq!(
        (a.state, a.decided_by.as_deref(), a.decided_at),
        (ApprovalState::Granted, Some("boss"), Some(at(2_000)))
    );
    assert_eq!(a.reason.map(|r| r.threshold), Some(fixtures::percent(15)));
}

#[test]
fn the_quote_list_filters_by_status_customer_and_update_time_and_pages_with_a_cursor() {
    let t = TestLog::new();
    for i in 0..5u64 {
        let id = format!("q{i}");
        let mut events = quote(
            &id,
            if i % 2 == 0 { "c-even" } else { "c-odd" },
            at(i * 1_000),
        );
        if i == 4 {
            events.push(QuoteEvent::QuoteWithdrawn {
                reason: "gone".into(),
                at: at(10_000),
            });
        }
        t.append(&format!("quote-{id}"), "t1", "c", &events);
    }
    let mut other = quote("qx", "c-even", T0);
    if let QuoteEvent::QuoteCreated { tenant_id, .. } = &mut other[0] {
        *tenant_id = TenantId::new("t2");
    }
    t.append("quote-qx", "t2", "c", &other);
    let read = t.project();
    let ids = |page: &projections::Page<projections::QuoteSummary>| {
        page.items
            .iter()
            .map(|q| q.quote_id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    // Newest first, two per page.
    let p1 = read
        .quotes(&t1(), &QuoteFilter::default(), None, 2)
        .unwrap();
    assert_eq!(ids(&p1), ["q4", "q3"]);
    assert!(p1.has_more);
    let p2 = read
        .quotes(&t1(), &QuoteFilter::default(), p1.next_cursor.as_deref(), 2)
        .unwrap();
    assert_eq!(ids(&p2), ["q2", "q1"]);
    let p3 = read
        .quotes(&t1(), &QuoteFilter::default(), p2.next_cursor.as_deref(), 2)
        .unwrap();
    assert_eq!(ids(&p3), ["q0"]);
    assert!(!p3.has_more && p3.next_cursor.is_none());
    let withdrawn = QuoteFilter {
        status: Some(QuoteStatus::Withdrawn),
        ..QuoteFilter::default()
    };
    assert_eq!(
        ids(&read.quotes(&t1(), &withdrawn, None, 10).unwrap()),
        ["q4"]
    );
    let even = QuoteFilter {
        customer_id: Some(CustomerId::new("c-even")),
        ..QuoteFilter::default()
    };
    assert_eq!(
        ids(&read.quotes(&t1(), &even, None, 10).unwrap()),
        ["q4", "q2", "q0"]
    );
    let recent = QuoteFilter {
        updated_since: Some(at(3_000).0),
        ..QuoteFilter::default()
    };
    assert_eq!(
        ids(&read.quotes(&t1(), &recent, None, 10).unwrap()),
        ["q4", "q3"]
    );
    assert_eq!(
        ids(&read
            .quotes(&TenantId::new("t2"), &QuoteFilter::default(), None, 10)
            .unwrap()),
        ["qx"]
    );
    // A cursor of another index, or garbage, is refused.
    let bad = read.quotes(&t1(), &withdrawn, p1.next_cursor.as_deref(), 2);
    assert!(matches!(bad, Err(QueryError::InvalidCursor)));
    assert!(matches!(
        read.quotes(&t1(), &QuoteFilter::default(), Some("zz"), 2),
        Err(QueryError::InvalidCursor)
    ));
}

/// An order `o1` with lines l1, l2: l1's reservation succeeded and its
/// provisioning is in flight; l2's reservation was rejected (fallout).
fn order_history() -> (
    Vec<OrderEvent>,
    HandoffSubject,
    HandoffSubject,
    HandoffSubject,
) {
    let mut history = vec![fixtures::order_captured(&["l1", "l2"])];
    history.extend(decide::<OrderDecider>(
        &history,
        vec![
            OrderCommand::RequestStep {
                line_id: fixtures::line_id("l1"),
                step: Step::Reservation,
                at: at(1_000),
            },
            OrderCommand::RequestStep {
                line_id: fixtures::line_id("l2"),
                step: Step::Reservation,
                at: at(1_000),
            },
        ],
    ));
    let l1_reserve = fixtures::subject("l1", Purpose::Reserve, 1);
    let l2_reserve = fixtures::subject("l2", Purpose::Reserve, 1);
    history.extend(decide::<OrderDecider>(
        &history,
        vec![
            OrderCommand::RecordStepSucceeded {
                line_id: fixtures::line_id("l1"),
                handoff_id: l1_reserve.handoff_id(),
                attempt: 1,
                external_reference: Some("res-9".into()),
                at: at(3_000),
            },
            OrderCommand::RequestStep {
                line_id: fixtures::line_id("l1"),
                step: Step::Provisioning,
                at: at(4_000),
            },
            OrderCommand::RaiseFallout {
                line_id: fixtures::line_id("l2"),
                handoff_id: l2_reserve.handoff_id(),
                attempt: 1,
                reason: FalloutReason::BusinessRejected,
                at: at(5_000),
            },
        ],
    ));
    let l1_provision = fixtures::subject("l1", Purpose::Activate, 1);
    (history, l1_reserve, l2_reserve, l1_provision)
}

fn handoff_events(
    subject: &HandoffSubject,
    outcome: Option<OutcomeClass>,
    t: u64,
) -> Vec<HandoffEvent> {
    let mut h = vec![];
    let mut requested = fixtures::handoff_requested(subject);
    if let HandoffEvent::HandoffRequested { at: a, .. } = &mut requested {
        *a = at(t);
    }
    h.push(requested);
    let mut commands = vec![HandoffCommand::RecordDispatch { at: at(t + 100) }];
    if let Some(class) = outcome {
        let mut o = fixtures::observation(subject, class, ObservationSource::Dispatch);
        o.observed_at = at(t + 200);
        o.raw_code = Some(format!("RAW-{class:?}"));
        commands.push(HandoffCommand::Observe {
            observation: o,
            retry_policy: fixtures::retry_policy(),
        });
    }
    let more = decide::<HandoffDecider>(&h, commands);
    h.extend(more);
    h
}

#[test]
fn an_order_shows_each_lines_current_step_history_and_handoffs_with_age() {
    let t = TestLog::new();
    let (history, l1_reserve, l2_reserve, l1_provision) = order_history();
    t.append("order-o1", "t1", "corr-o", &history);
    for (s, outcome, at_ms) in [
        (&l1_reserve, Some(OutcomeClass::Succeeded), 1_000),
        (&l2_reserve, Some(OutcomeClass::BusinessRejected), 1_000),
        (&l1_provision, None, 4_000),
    ] {
        t.append(
            &format!("handoff-{}", s.handoff_id()),
            "t1",
            "corr-o",
            &handoff_events(s, outcome, at_ms),
        );
    }
    let read = t.project();
    let now = at(10 * MIN).0;
    let o = read
        .order(&t1(), &fixtures::order_id(), now)
        .unwrap()
        .unwrap();
    assert_eq!(o.order.status, OrderStatus::Open);
    assert_eq!(o.open_fallouts, 1);
    let l1 = &o.order.lines[0];
    assert_eq!(
        (l1.stage, l1.current_step, l1.attempt),
        (LineStage::InFlight, Some(Step::Provisioning), 1)
    );
    let changes: Vec<_> = l1
        .history
        .iter()
        .map(|h| (h.step, h.change.clone()))
        .collect();
    assert_eq!(
        changes,
        vec![
            (Some(Step::Reservation), StepChange::Requested),
            (
                Some(Step::Reservation),
                StepChange::Succeeded {
                    external_reference: Some("res-9".into())
                }
            ),
            (Some(Step::Provisioning), StepChange::Requested),
        ]
    );
    let l2 = &o.order.lines[1];
    assert_eq!(
        (l2.stage, l2.open_fallout, l2.fallout_reason),
        (
            LineStage::Fallout,
            true,
            Some(FalloutReason::BusinessRejected)
        )
    );
    // Handoffs per step, with attempt, age and the live stage.
    let hs: Vec<_> = o
        .handoffs
        .iter()
        .map(|h| {
            (
                h.line_id.as_str().to_owned(),
                h.handoff.step,
                h.handoff.attempt,
                h.stage,
                h.age_ms,
            )
        })
        .collect();
    assert_eq!(
        hs,
        vec![
            (
                "l1".into(),
                Some(Step::Reservation),
                1,
                Some(HandoffStage::Succeeded),
                now - at(1_000).0
            ),
            (
                "l1".into(),
                Some(Step::Provisioning),
                1,
                Some(HandoffStage::Sent),
                now - at(4_000).0
            ),
            (
                "l2".into(),
                Some(Step::Reservation),
                1,
                Some(HandoffStage::Rejected),
                now - at(1_000).0
            ),
        ]
    );
    // The list: filters by status and fallout.
    let with_fallout = OrderFilter {
        has_fallout: Some(true),
        ..OrderFilter::default()
    };
    let page = read.orders(&t1(), &with_fallout, None, 10).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].lines_in_fallout, 1);
    let without = OrderFilter {
        has_fallout: Some(false),
        ..OrderFilter::default()
    };
    assert!(read
        .orders(&t1(), &without, None, 10)
        .unwrap()
        .items
        .is_empty());
    let completed = OrderFilter {
        status: Some(OrderStatus::Completed),
        ..OrderFilter::default()
    };
    assert!(read
        .orders(&t1(), &completed, None, 10)
        .unwrap()
        .items
        .is_empty());
    let open = OrderFilter {
        status: Some(OrderStatus::Open),
        has_fallout: Some(true),
    };
    assert_eq!(read.orders(&t1(), &open, None, 10).unwrap().items.len(), 1);
    assert!(read
        .order(&TenantId::new("t2"), &fixtures::order_id(), now)
        .unwrap()
        .is_none());
}

#[test]
fn handoffs_list_unknown_first_then_pending_oldest_first_with_ages_and_overdue() {
    let t = TestLog::new();
    let unknown = fixtures::subject("l1", Purpose::Reserve, 1);
    let sent = fixtures::subject("l2", Purpose::Activate, 1);
    let done = fixtures::subject("l3", Purpose::Reserve, 1);
    t.append(
        &format!("handoff-{}", done.handoff_id()),
        "t1",
        "c",
        &handoff_events(&done, Some(OutcomeClass::Succeeded), 0),
    );
    t.append(
        &format!("handoff-{}", sent.handoff_id()),
        "t1",
        "c",
        &handoff_events(&sent, None, 1_000),
    );
    t.append(
        &format!("handoff-{}", unknown.handoff_id()),
        "t1",
        "c",
        &handoff_events(&unknown, Some(OutcomeClass::Unknown), 2_000),
    );
    let read = t.project();
    let now = at(30 * MIN).0;
    let page = read
        .handoffs(&t1(), &HandoffFilter::default(), None, 10, now)
        .unwrap();
    let order: Vec<_> = page
        .items
        .iter()
        .map(|h| (h.handoff.line_id.as_str().to_owned(), h.handoff.stage))
        .collect();
    assert_eq!(
        order,
        vec![
            ("l1".into(), HandoffStage::Unknown),
            ("l2".into(), HandoffStage::Sent),
            ("l3".into(), HandoffStage::Succeeded),
        ]
    );
    let u = &page.items[0];
    assert_eq!(u.age_ms, now - at(2_000).0);
    assert_eq!(u.since_last_observation_ms, Some(now - at(2_200).0));
    assert_eq!((u.handoff.sends, u.handoff.attempt), (1, 1));
    // Inventory's SLA is 15 minutes: the unknown reservation is overdue;
    // provisioning's is 4 hours: the sent activation is not.
    assert!(u.overdue);
    assert!(!page.items[1].overdue);
    assert!(!page.items[2].overdue, "closed handoffs are never overdue");
    let pending = HandoffFilter {
        pending_only: true,
        ..HandoffFilter::default()
    };
    assert_eq!(
        read.handoffs(&t1(), &pending, None, 10, now)
            .unwrap()
            .items
            .len(),
        2
    );
    let overdue = HandoffFilter {
        overdue_only: true,
        ..HandoffFilter::default()
    };
    assert_eq!(
        read.handoffs(&t1(), &overdue, None, 10, now)
            .unwrap()
            .items
            .len(),
        1
    );
    let by_stage = HandoffFilter {
        stage: Some(HandoffStage::Sent),
        ..HandoffFilter::default()
    };
    let sent_only = read.handoffs(&t1(), &by_stage, None, 10, now).unwrap();
    assert_eq!(sent_only.items.len(), 1);
    assert_eq!(sent_only.items[0].handoff.handoff_id, sent.handoff_id());
    let inventory = HandoffFilter {
        target: Some(TargetSystem::Inventory),
        ..HandoffFilter::default()
    };
    assert_eq!(
        read.handoffs(&t1(), &inventory, None, 10, now)
            .unwrap()
            .items
            .len(),
        2
    );
    let one = read
        .handoff(&t1(), &sent.handoff_id(), now)
        .unwrap()
        .unwrap();
    assert_eq!(one.handoff.last_sent_at, Some(at(1_100)));
    // Pages of one.
    let p1 = read
        .handoffs(&t1(), &HandoffFilter::default(), None, 1, now)
        .unwrap();
    let p2 = read
        .handoffs(
            &t1(),
            &HandoffFilter::default(),
            p1.next_cursor.as_deref(),
            1,
            now,
        )
        .unwrap();
    assert_eq!(p2.items[0].handoff.line_id.as_str(), "l2");
}

#[test]
fn a_fallout_case_opens_with_evidence_and_actions_and_leaves_the_queue_when_resolved() {
    let t = TestLog::new();
    let (history, l1_reserve, l2_reserve, _) = order_history();
    t.append("order-o1", "t1", "corr-o", &history[..history.len() - 1]);
    let rejected = handoff_events(&l2_reserve, Some(OutcomeClass::BusinessRejected), 1_000);
    t.append(
        &format!("handoff-{}", l2_reserve.handoff_id()),
        "t1",
        "corr-o",
        &rejected,
    );
    t.append(
        &format!("handoff-{}", l1_reserve.handoff_id()),
        "t1",
        "corr-o",
        &handoff_events(&l1_reserve, Some(OutcomeClass::Succeeded), 1_000),
    );
    // The order's fallout event arrives after the handoff's.
    t.append("order-o1", "t1", "corr-o", &history[history.len() - 1..]);
    let read = t.project();
    let now = at(60 * MIN).0;
    let queue = read
        .fallout(&t1(), &FalloutFilter::default(), None, 10, now)
        .unwrap();
    assert_eq!(queue.items.len(), 1);
    let case = &queue.items[0];
    assert_eq!(case.case.handoff_id, l2_reserve.handoff_id());
    assert_eq!(case.case.order_id, fixtures::order_id());
    assert_eq!(case.case.line_id.as_str(), "l2");
    assert_eq!(
        (case.case.step, case.case.target),
        (Some(Step::Reservation), TargetSystem::Inventory)
    );
    assert_eq!(case.case.reason, FalloutReason::BusinessRejected);
    assert_eq!(case.case.raw_code.as_deref(), Some("RAW-BusinessRejected"));
    assert_eq!(case.case.raw_label.as_deref(), Some("raw label"));
    assert_eq!(case.case.attempt, 1);
    assert!(case.case.line_fallout);
    assert_eq!(case.age_ms, now - at(1_200).0);
    assert_eq!(
        case.case.allowed_actions,
        vec![
            FalloutAction::NewAttempt,
            FalloutAction::RecordExternalResolution,
            FalloutAction::CancelLine
        ]
    );
    // The operator asks for a new attempt; the policy then closes the handoff.
    let resolved = decide::<OrderDecider>(
        &history,
        vec![OrderCommand::ResolveFallout {
            line_id: fixtures::line_id("l2"),
            resolution: Resolution::NewAttempt,
            operator: "ops-7".into(),
            at: at(2 * MIN),
        }],
    );
    t.append("order-o1", "t1", "corr-o", &resolved);
    let closed = decide::<HandoffDecider>(
        &rejected,
        vec![HandoffCommand::Resolve {
            operator: "ops-7".into(),
            note: "order line retried under a new attempt".into(),
            at: at(2 * MIN + 1),
        }],
    );
    t.append(
        &format!("handoff-{}", l2_reserve.handoff_id()),
        "t1",
        "corr-o",
        &closed,
    );
    let read = t.project();
    assert!(read
        .fallout(&t1(), &FalloutFilter::default(), None, 10, now)
        .unwrap()
        .items
        .is_empty());
    let done = FalloutFilter {
        status: CaseStatus::Resolved,
        ..FalloutFilter::default()
    };
    let page = read.fallout(&t1(), &done, None, 10, now).unwrap();
    assert_eq!(page.items.len(), 1);
    let r = page.items[0].case.resolution.clone().unwrap();
    assert_eq!(
        (r.resolved_by.as_str(), r.how, r.at),
        ("ops-7", ResolutionHow::NewAttempt, at(2 * MIN))
    );
    assert_eq!(
        r.handoff_note.as_deref(),
        Some("order line retried under a new attempt")
    );
    assert!(page.items[0].case.allowed_actions.is_empty());
    let one = read
        .fallout_case(&t1(), &l2_reserve.handoff_id(), now)
        .unwrap()
        .unwrap();
    assert_eq!(one.case.status, CaseStatus::Resolved);
    // The new attempt's handoff is requested by the order.
    let o = read
        .order(&t1(), &fixtures::order_id(), now)
        .unwrap()
        .unwrap();
    assert_eq!(o.order.lines[1].attempt, 2);
    assert_eq!(o.open_fallouts, 0);
}

/// Cancelling an order releases the case its line held, and a step's
/// rejection that arrives after the cancellation opens a case no line
/// holds: both offer only the handoff's resolution (the cancelled order
/// refuses the line's actions).
#[test]
fn cases_of_a_cancelled_order_offer_only_the_handoffs_resolution() {
    let t = TestLog::new();
    let (history, l1_reserve, l2_reserve, l1_provision) = order_history();
    t.append("order-o1", "t1", "corr-o", &history);
    for (subject, class) in [
        (&l1_reserve, OutcomeClass::Succeeded),
        (&l2_reserve, OutcomeClass::BusinessRejected),
    ] {
        t.append(
            &format!("handoff-{}", subject.handoff_id()),
            "t1",
            "corr-o",
            &handoff_events(subject, Some(class), 1_000),
        );
    }
    let now = at(60 * MIN).0;
    let held = t
        .project()
        .fallout_case(&t1(), &l2_reserve.handoff_id(), now)
        .unwrap()
        .unwrap();
    assert!(held.case.line_fallout);
    assert!(held
        .case
        .allowed_actions
        .contains(&FalloutAction::CancelLine));
    let cancelled = decide::<OrderDecider>(
        &history,
        vec![OrderCommand::Cancel {
            reason: "customer withdrew".into(),
            at: at(6_000),
        }],
    );
    t.append("order-o1", "t1", "corr-o", &cancelled);
    // l1's provisioning, in flight at the cancellation, is rejected after it.
    t.append(
        &format!("handoff-{}", l1_provision.handoff_id()),
        "t1",
        "corr-o",
        &handoff_events(&l1_provision, Some(OutcomeClass::BusinessRejected), 7_000),
    );
    let read = t.project();
    for subject in [&l2_reserve, &l1_provision] {
        let case = read
            .fallout_case(&t1(), &subject.handoff_id(), now)
            .unwrap()
            .unwrap();
        assert_eq!(case.case.status, CaseStatus::Open, "{case:?}");
        assert!(!case.case.line_fallout, "{case:?}");
        assert!(case.case.line_cancelled, "{case:?}");
        assert_eq!(
            case.case.allowed_actions,
            vec![FalloutAction::RecordExternalResolution],
            "{case:?}"
        );
    }
}

#[test]
fn the_fallout_queue_filters_by_target_reason_and_age_oldest_first() {
    let t = TestLog::new();
    let cases = [
        ("l1", Purpose::Reserve, OutcomeClass::BusinessRejected, 0u64),
        (
            "l2",
            Purpose::Activate,
            OutcomeClass::SchemaMismatch,
            10 * MIN,
        ),
        (
            "l3",
            Purpose::ActivateBilling,
            OutcomeClass::BusinessRejected,
            20 * MIN,
        ),
        (
            "l4",
            Purpose::Release,
            OutcomeClass::SchemaMismatch,
            30 * MIN,
        ),
    ];
    for (line, purpose, class, t0) in cases {
        let s = fixtures::subject(line, purpose, 1);
        t.append(
            &format!("handoff-{}", s.handoff_id()),
            "t1",
            "c",
            &handoff_events(&s, Some(class), t0),
        );
    }
    let read = t.project();
    let now = at(60 * MIN).0;
    let lines = |f: &FalloutFilter| {
        read.fallout(&t1(), f, None, 10, now)
            .unwrap()
            .items
            .iter()
            .map(|c| c.case.line_id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&FalloutFilter::default()), ["l1", "l2", "l3", "l4"]);
    let f = |target, reason, min, max| FalloutFilter {
        target,
        reason,
        min_age_ms: min,
        max_age_ms: max,
        ..FalloutFilter::default()
    };
    assert_eq!(
        lines(&f(Some(TargetSystem::Inventory), None, None, None)),
        ["l1", "l4"]
    );
    assert_eq!(
        lines(&f(None, Some(FalloutReason::SchemaMismatch), None, None)),
        ["l2", "l4"]
    );
    assert_eq!(
        lines(&f(
            Some(TargetSystem::Inventory),
            Some(FalloutReason::SchemaMismatch),
            None,
            None
        )),
        ["l4"]
    );
    // At least 35 minutes old: opened at or before minute 25.
    assert_eq!(
        lines(&f(None, None, Some(35 * MIN), None)),
        ["l1", "l2", "l3"]
    );
    // At most 45 minutes old.
    assert_eq!(lines(&f(None, None, None, Some(45 * MIN))), ["l3", "l4"]);
    // Compensations and local-impossible cases may only be closed.
    let l4 = read
        .fallout(&t1(), &f(None, None, None, Some(35 * MIN)), None, 10, now)
        .unwrap();
    assert_eq!(
        l4.items[0].case.allowed_actions,
        vec![FalloutAction::RecordExternalResolution]
    );
    assert_eq!(l4.items[0].case.step, None);
    // Cursor pagination through the queue.
    let p1 = read
        .fallout(&t1(), &FalloutFilter::default(), None, 3, now)
        .unwrap();
    assert!(p1.has_more);
    let p2 = read
        .fallout(
            &t1(),
            &FalloutFilter::default(),
            p1.next_cursor.as_deref(),
            3,
            now,
        )
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert_eq!(p2.items[0].case.line_id.as_str(), "l4");
}

#[test]
fn the_audit_trail_lists_a_correlation_and_a_stream_in_order_with_hashes_and_causes() {
    let t = TestLog::new();
    let mut g = common::generator(3);
    t.generate(&mut g, 600);
    let read = t.project();
    // Pick an order stream and its correlation from the log.
    let order_event = t
        .log
        .iter_all(0)
        .map(Result::unwrap)
        .find(|r| {
            r.stream_id.starts_with("order-")
                && r.metadata.contains_key(projections::CAUSATION_EVENT_ID)
        })
        .unwrap();
    let tenant = TenantId::new(order_event.tenant_id.clone());
    let all: Vec<_> = t
        .log
        .iter_all(0)
        .map(Result::unwrap)
        .filter(|r| r.correlation_id == order_event.correlation_id)
        .collect();
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let page = read
            .audit_by_correlation(&tenant, &order_event.correlation_id, cursor.as_deref(), 7)
            .unwrap();
        entries.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        entries.iter().map(|e| e.position).collect::<Vec<_>>(),
        all.iter().map(|r| r.position).collect::<Vec<_>>()
    );
    // An edited cursor is refused, not resumed from (a probe moved a
    // trail's cursor by one position and got the page after it), and a
    // correlation trail's cursor does not page a stream's.
    let first = read
        .audit_by_correlation(&tenant, &order_event.correlation_id, None, 1)
        .unwrap();
    let cursor = first.next_cursor.expect("more than one event");
    let mut edited = cursor.clone().into_bytes();
    edited[17] = if edited[17] == b'0' { b'1' } else { b'0' };
    let edited = String::from_utf8(edited).unwrap();
    for bad in [&edited, &cursor[..cursor.len() - 2], &format!("{cursor}00")] {
        assert!(
            read.audit_by_correlation(&tenant, &order_event.correlation_id, Some(bad), 7)
                .is_err(),
            "accepted {bad}"
        );
    }
    assert!(read
        .audit_by_stream(&tenant, &order_event.stream_id, Some(&cursor), 7)
        .is_err());
    for (e, r) in entries.iter().zip(&all) {
        assert_eq!(e.hash.len(), 64);
        let hex: String = r.hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(e.hash, hex);
    }
    // The order event links to the quote (or order) event it reacted to.
    let linked = entries
        .iter()
        .find(|e| e.position == order_event.position)
        .unwrap();
    let cause = linked.caused_by_position.unwrap();
    let cause_id = &order_event.metadata[projections::CAUSATION_EVENT_ID];
    assert_eq!(
        &t.log.read_at(cause).unwrap().unwrap().event_id.to_string(),
        cause_id
    );
    // The stream's trail, in version order.
    let stream = read
        .audit_by_stream(&tenant, &order_event.stream_id, None, 500)
        .unwrap();
    let versions: Vec<u64> = stream.items.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    assert!(read
        .audit_by_stream(&TenantId::new("nobody"), &order_event.stream_id, None, 500)
        .unwrap()
        .items
        .is_empty());
    assert!(read
        .audit_by_correlation(
            &TenantId::new("nobody"),
            &order_event.correlation_id,
            None,
            500
        )
        .unwrap()
        .items
        .is_empty());
}

/// The cause links are the same whichever trail of a correlation is read
/// first: read models that already read later events of the correlation
/// (the link cache read up to them) answer as fresh ones do.
#[test]
fn cause_links_do_not_depend_on_which_trail_was_read_first() {
    let t = TestLog::new();
    let mut g = common::generator(5);
    t.generate(&mut g, 600);
    let shared = t.project();
    let mut streams: Vec<(TenantId, String)> = t
        .log
        .iter_all(0)
        .map(Result::unwrap)
        .map(|r| (TenantId::new(r.tenant_id), r.stream_id))
        .collect();
    streams.dedup();
    streams.sort();
    streams.dedup();
    // Latest streams first: the shared cache reads far into each
    // correlation before the earlier events are asked about.
    streams.reverse();
    let mut linked = 0;
    for (tenant, stream) in &streams {
        let cached = shared.audit_by_stream(tenant, stream, None, 500).unwrap();
        let fresh = t
            .project()
            .audit_by_stream(tenant, stream, None, 500)
            .unwrap();
        let causes = |page: &projections::Page<projections::AuditEntry>| {
            page.items
                .iter()
                .map(|e| (e.position, e.caused_by_position))
                .collect::<Vec<_>>()
        };
        assert_eq!(causes(&cached), causes(&fresh), "{stream}");
        linked += cached
            .items
            .iter()
            .filter(|e| e.caused_by_position.is_some())
            .count();
    }
    assert!(linked > 0, "no event linked to a cause");
}

#[test]
fn the_dashboard_counts_outcomes_pending_unknown_oldest_and_fallout_per_hour() {
    let t = TestLog::new();
    let hour = 60 * MIN;
    let s = |line: &str, p| fixtures::subject(line, p, 1);
    let scenarios = [
        (s("l1", Purpose::Reserve), Some(OutcomeClass::Succeeded), 0),
        (
            s("l2", Purpose::Reserve),
            Some(OutcomeClass::Unknown),
            10 * MIN,
        ),
        (s("l3", Purpose::Activate), None, 20 * MIN),
        (
            s("l4", Purpose::Activate),
            Some(OutcomeClass::BusinessRejected),
            hour + 5 * MIN,
        ),
        (
            s("l5", Purpose::Reserve),
            Some(OutcomeClass::SchemaMismatch),
            hour + 10 * MIN,
        ),
    ];
    for (subject, outcome, t0) in &scenarios {
        t.append(
            &format!("handoff-{}", subject.handoff_id()),
            "t1",
            "c",
            &handoff_events(subject, *outcome, *t0),
        );
    }
    // The schema-mismatch case is closed in the third hour.
    let l5 = &scenarios[4].0;
    let history = handoff_events(l5, Some(OutcomeClass::SchemaMismatch), hour + 10 * MIN);
    let closed = decide::<HandoffDecider>(
        &history,
        vec![HandoffCommand::Resolve {
            operator: "ops".into(),
            note: "fixed".into(),
            at: at(2 * hour + MIN),
        }],
    );
    t.append(&format!("handoff-{}", l5.handoff_id()), "t1", "c", &closed);
    let read = t.project();
    let now = at(2 * hour + 30 * MIN).0;
    let d = read.dashboard(&t1(), now).unwrap();
    let inv = d
        .targets
        .iter()
        .find(|x| x.target == TargetSystem::Inventory)
        .unwrap();
    let prov = d
        .targets
        .iter()
        .find(|x| x.target == TargetSystem::Provisioning)
        .unwrap();
    let count = |t: &projections::TargetDashboard, c| {
        t.outcomes
            .iter()
            .find(|o| o.class == c)
            .map_or(0, |o| o.count)
    };
    assert_eq!(count(inv, OutcomeClass::Succeeded), 1);
    assert_eq!(count(inv, OutcomeClass::Unknown), 1);
    assert_eq!(count(inv, OutcomeClass::SchemaMismatch), 1);
    assert_eq!(count(prov, OutcomeClass::BusinessRejected), 1);
    assert_eq!(
        (inv.pending, inv.unknown, prov.pending, prov.unknown),
        (1, 1, 1, 0)
    );
    assert_eq!((d.pending, d.unknown), (2, 1));
    // The oldest pending is the unknown reservation, requested at minute 10.
    assert_eq!(d.oldest_pending_handoff, Some(scenarios[1].0.handoff_id()));
    assert_eq!(d.oldest_pending_age_ms, Some(now - at(10 * MIN).0));
    assert_eq!(d.open_fallout, 1);
    let hours: Vec<(u64, u64)> = d
        .fallout_by_hour
        .iter()
        .map(|h| (h.opened, h.resolved))
        .collect();
    assert_eq!(hours.len(), 24);
    assert_eq!(&hours[21..], &[(0, 0), (2, 0), (0, 1)]);
    assert_eq!(d.fallout_by_hour[23].hour_start_ms % hour as i64, 0);
    // Another tenant's dashboard is empty.
    let other = read.dashboard(&TenantId::new("t2"), now).unwrap();
    assert!(
        other.targets.is_empty()
            && other.open_fallout == 0
            && other.oldest_pending_handoff.is_none()
    );
}

#[test]
fn queries_of_unknown_ids_return_none() {
    let t = TestLog::new();
    let read = t.project();
    let tenant = t1();
    assert!(read.quote(&tenant, &QuoteId::new("x")).unwrap().is_none());
    assert!(read
        .order(&tenant, &OrderId::new("x"), 0)
        .unwrap()
        .is_none());
    assert!(read
        .handoff(&tenant, &HandoffId::new("x"), 0)
        .unwrap()
        .is_none());
    assert!(read
        .fallout_case(&tenant, &HandoffId::new("x"), 0)
        .unwrap()
        .is_none());
}

/// Found by a probe: a quote signed, then priced again in the same
/// revision, still showed its proposal and signature as the current
/// revision's, though the domain had dropped them (accepting it was refused
/// `signature_missing`). And a late signature of revision 1 hid revision
/// 2's signature. The read model keeps what the domain counts; an earlier
/// revision's proposal stays as evidence once a later revision is priced.
/// A re-probe found a new proposal of another document left the old
/// signature shown as current; it voids it, as in the domain.
#[test]
fn a_quote_shows_the_proposal_and_signature_the_domain_counts() {
    let t = TestLog::new();
    let repriced_at = at(7_000);
    let mut repriced = fixtures::quote_ready_to_accept();
    repriced.push(QuoteEvent::QuotePriced {
        price: Box::new(fixtures::price(1, &["l1"], fixtures::percent(20))),
        at: repriced_at,
    });
    t.append("quote-q1", "t1", "corr-1", &repriced);

    // Quote q2: revision 2 signed, then a late signature of revision 1.
    let mut commands = revision_two_priced();
    commands.extend([
        QuoteCommand::RecordProposal {
            revision: 2,
            artifact: fixtures::proposal("art-2"),
            price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
            at: at(7_000),
        },
        QuoteCommand::RecordSignature {
            revision: 2,
            signature: fixtures::signature("art-2"),
            at: at(8_000),
        },
        QuoteCommand::RecordSignature {
            revision: 1,
            signature: fixtures::signature("art-1"),
            at: at(9_000),
        },
    ]);
    let q2 = QuoteId::new("q2");
    t.append(
        "quote-q2",
        "t1",
        "corr-2",
        &signed_quote_then(&q2, commands),
    );
    // Quote q3: revision 2 priced, its revision 1 proposal and signature kept.
    let q3 = QuoteId::new("q3");
    let next_revision = signed_quote_then(&q3, revision_two_priced());
    t.append("quote-q3", "t1", "corr-3", &next_revision);

    // Quote q4: signed over art-1, then proposed again as art-2.
    let q4 = QuoteId::new("q4");
    let reproposed = signed_quote_then(
        &q4,
        vec![QuoteCommand::RecordProposal {
            revision: 1,
            artifact: fixtures::proposal("art-2"),
            price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
            at: at(6_000),
        }],
    );
    t.append("quote-q4", "t1", "corr-4", &reproposed);

    let read = t.project();
    let q = read.quote(&t1(), &q4).unwrap().unwrap();
    assert_eq!(q.status, QuoteStatus::Proposed);
    assert!(q.signature.is_none(), "{:?}", q.signature);
    let q = read.quote(&t1(), &fixtures::quote_id()).unwrap().unwrap();
    assert_eq!(q.status, QuoteStatus::Priced);
    assert!(q.proposal.is_none(), "{:?}", q.proposal);
    assert!(q.signature.is_none(), "{:?}", q.signature);

    let q = read.quote(&t1(), &q2).unwrap().unwrap();
    assert_eq!(q.status, QuoteStatus::Signed);
    assert_eq!(q.signature.as_ref().map(|s| s.revision), Some(2));

    let q = read.quote(&t1(), &q3).unwrap().unwrap();
    assert_eq!(q.revision, 2);
    assert_eq!(q.proposal.as_ref().map(|p| p.revision), Some(1));
    assert_eq!(q.signature.as_ref().map(|s| s.revision), Some(1));
}

/// A second line added (revision 2) and revision 2 priced.
fn revision_two_priced() -> Vec<QuoteCommand> {
    vec![
        QuoteCommand::AddLine {
            line: fixtures::line("l2"),
            at: at(6_000),
        },
        QuoteCommand::Price {
            price: fixtures::price(2, &["l1", "l2"], fixtures::percent(5)),
            policy: fixtures::approval_policy(),
            at: at(6_500),
        },
    ]
}

/// The fixture's signed quote, renamed `id`, then `commands`' events.
fn signed_quote_then(id: &QuoteId, commands: Vec<QuoteCommand>) -> Vec<QuoteEvent> {
    let mut history = fixtures::quote_ready_to_accept();
    history.extend(decide::<QuoteDecider>(&history, commands));
    for e in &mut history {
        if let QuoteEvent::QuoteCreated { quote_id, .. } = e {
            *quote_id = id.clone();
        }
    }
    history
}

/// A signed quote that needs an approval at acceptance (the customer's
/// account was suspended since) and gets it is `SIGNED` again, ready to
/// accept: it showed `APPROVED`, so the `SIGNED` filter lost it.
#[test]
fn an_approval_granted_after_signing_leaves_the_quote_signed() {
    let t = TestLog::new();
    let q = QuoteId::new("q-approved-late");
    let mut events = signed_quote_then(&q, Vec::new());
    events.push(QuoteEvent::CustomerApprovalRequired {
        revision: 1,
        status: "SUSPENDED".to_owned(),
        at: at(6_000),
    });
    t.append("quote-q-approved-late", "t1", "corr-5", &events);
    let read = t.project();
    let row = read.quote(&t1(), &q).unwrap().unwrap();
    assert_eq!(row.status, QuoteStatus::PendingApproval);
    t.append(
        "quote-q-approved-late",
        "t1",
        "corr-5",
        &[QuoteEvent::ApprovalGranted {
            revision: 1,
            approver: "admin".to_owned(),
            at: at(7_000),
        }],
    );
    let read = t.project();
    let row = read.quote(&t1(), &q).unwrap().unwrap();
    assert_eq!(row.status, QuoteStatus::Signed);
    assert!(row.signature.is_some());
}

/// Cancelling an order cancels its active lines too: their plans undo
/// what can be undone (the service cancelled, the reservation released)
/// and list the rest (billing) as uncompensated, so none of them is shown
/// active any more. A probe saw a line `ACTIVE` with every step
/// `SUCCEEDED` and `linesActive: 1` after its service was torn down.
#[test]
fn an_active_line_of_a_cancelled_order_is_cancelled_with_what_is_left_uncompensated() {
    let t = TestLog::new();
    let mut history = vec![fixtures::order_captured(&["l1", "l2"])];
    for step in [
        Step::Reservation,
        Step::Provisioning,
        Step::BillingActivation,
    ] {
        history.extend(decide::<OrderDecider>(
            &history,
            vec![OrderCommand::RequestStep {
                line_id: fixtures::line_id("l1"),
                step,
                at: at(1_000),
            }],
        ));
        history.extend(decide::<OrderDecider>(
            &history,
            vec![OrderCommand::RecordStepSucceeded {
                line_id: fixtures::line_id("l1"),
                handoff_id: fixtures::subject("l1", step.purpose(), 1).handoff_id(),
                attempt: 1,
                external_reference: None,
                at: at(2_000),
            }],
        ));
    }
    t.append("order-o1", "t1", "corr-o", &history);
    let now = at(10 * MIN).0;
    let before = t
        .project()
        .order(&t1(), &fixtures::order_id(), now)
        .unwrap()
        .unwrap();
    assert_eq!(before.order.lines[0].stage, LineStage::Active);
    assert_eq!(
        projections::OrderSummary::from(&before.order).lines_active,
        1
    );

    let cancelled = decide::<OrderDecider>(
        &history,
        vec![OrderCommand::Cancel {
            reason: "customer left".into(),
            at: at(6_000),
        }],
    );
    t.append("order-o1", "t1", "corr-o", &cancelled);
    let after = t
        .project()
        .order(&t1(), &fixtures::order_id(), now)
        .unwrap()
        .unwrap();
    assert_eq!(after.order.status, OrderStatus::Cancelled);
    for line in &after.order.lines {
        assert_eq!(line.stage, LineStage::Cancelled, "{line:?}");
    }
    assert_eq!(
        projections::OrderSummary::from(&after.order).lines_active,
        0
    );
    assert!(
        after.order.lines[0]
            .history
            .iter()
            .any(|h| h.change == StepChange::Cancelled),
        "{:?}",
        after.order.lines[0].history
    );
    assert!(
        after
            .order
            .uncompensated
            .iter()
            .any(|u| u.step == Step::BillingActivation),
        "{:?}",
        after.order.uncompensated
    );
}

/// A cancelled line's history shows each compensation requested, one at a
/// time, and settled under the attempt of its handoff (a probe saw
/// `attempt: 0` on every settled entry beside `1` on its request).
#[test]
fn a_cancelled_lines_compensations_show_in_order_under_their_handoffs_attempt() {
    let t = TestLog::new();
    let mut history = vec![fixtures::order_captured(&["l1"])];
    for step in [Step::Reservation, Step::Provisioning] {
        history.extend(decide::<OrderDecider>(
            &history,
            vec![
                OrderCommand::RequestStep {
                    line_id: fixtures::line_id("l1"),
                    step,
                    at: at(1_000),
                },
                OrderCommand::RecordStepSucceeded {
                    line_id: fixtures::line_id("l1"),
                    handoff_id: fixtures::subject("l1", step.purpose(), 1).handoff_id(),
                    attempt: 1,
                    external_reference: None,
                    at: at(2_000),
                },
            ],
        ));
    }
    history.extend(decide::<OrderDecider>(
        &history,
        vec![OrderCommand::Cancel {
            reason: "customer left".into(),
            at: at(3_000),
        }],
    ));
    let cancel = fixtures::subject("l1", Purpose::Cancel, 1).handoff_id();
    let release = fixtures::subject("l1", Purpose::Release, 1).handoff_id();
    for handoff_id in [&cancel, &release] {
        history.extend(decide::<OrderDecider>(
            &history,
            vec![OrderCommand::RecordCompensation {
                handoff_id: handoff_id.clone(),
                outcome: domain::order::CompensationOutcome::Done,
                at: at(4_000),
            }],
        ));
    }
    t.append("order-o1", "t1", "corr-o", &history);
    let view = t
        .project()
        .order(&t1(), &fixtures::order_id(), at(10 * MIN).0)
        .unwrap()
        .unwrap();
    let compensations: Vec<(StepChange, u32, Option<HandoffId>)> = view.order.lines[0]
        .history
        .iter()
        .filter(|h| {
            matches!(
                h.change,
                StepChange::CompensationRequested { .. } | StepChange::CompensationSettled { .. }
            )
        })
        .map(|h| (h.change.clone(), h.attempt, h.handoff_id.clone()))
        .collect();
    let done = domain::order::CompensationOutcome::Done;
    assert_eq!(
        compensations,
        [
            (
                StepChange::CompensationRequested {
                    purpose: Purpose::Cancel
                },
                1,
                Some(cancel.clone())
            ),
            (
                StepChange::CompensationSettled {
                    purpose: Purpose::Cancel,
                    outcome: done
                },
                1,
                Some(cancel)
            ),
            (
                StepChange::CompensationRequested {
                    purpose: Purpose::Release
                },
                1,
                Some(release.clone())
            ),
            (
                StepChange::CompensationSettled {
                    purpose: Purpose::Release,
                    outcome: done
                },
                1,
                Some(release)
            ),
        ]
    );
}
