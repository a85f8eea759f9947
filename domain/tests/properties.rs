//! Model-free property tests: random command sequences against each decider never
//! reach a state the rules forbid. Commands are generated from small abstract ops
//! that read the current state, so that both fitting and misfitting commands occur.

use domain::decider::{Decider, Decision};
use domain::handoff::{
    HandoffCommand, HandoffDecider, HandoffEvent, HandoffState, HandoffStatus, RetryPolicy,
};
use domain::idempotency::Purpose;
use domain::order::{
    LineProgress, OrderCommand, OrderDecider, OrderEvent, OrderState, Resolution, Step,
};
use domain::outcome::{FalloutReason, Observation, ObservationSource, OutcomeClass};
use domain::quote::{Approval, QuoteCommand, QuoteDecider, QuoteLine, QuoteState};
use domain::testing::fixtures::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn step<D: Decider>(state: D::State, command: &D::Command) -> (D::State, Vec<D::Event>) {
    match domain::run::<D>(state.clone(), command) {
        Ok(Decision { events, state }) => (state, events),
        Err(_) => (state, Vec::new()),
    }
}

// ---------------------------------------------------------------- quote

#[derive(Clone, Debug)]
enum QuoteOp {
    AddLine(u8),
    ChangeLine(u8, u32),
    RemoveLine(u8),
    Price { discount: i64, revision_offset: u32 },
    Approve,
    Reject,
    Proposal { hash: u32, revision_offset: u32 },
    Signature { hash: u32, revision_offset: u32 },
    Accept { days: u64 },
    Expire,
    Withdraw,
    Drift,
    Revalidate,
}

/// Mostly 0, sometimes 1: the usual revision or artifact, occasionally another.
fn mostly_zero() -> impl Strategy<Value = u32> {
    proptest::bool::weighted(0.15).prop_map(u32::from)
}

/// Weighted towards the path that reaches acceptance, so acceptance is exercised.
fn quote_op() -> impl Strategy<Value = QuoteOp> {
    prop_oneof![
        2 => (0u8..3).prop_map(QuoteOp::AddLine),
        1 => (0u8..3, 1u32..3).prop_map(|(l, q)| QuoteOp::ChangeLine(l, q)),
        1 => (0u8..3).prop_map(QuoteOp::RemoveLine),
        3 => (0i64..30, mostly_zero()).prop_map(|(discount, revision_offset)| QuoteOp::Price { discount, revision_offset }),
        2 => Just(QuoteOp::Approve),
        1 => Just(QuoteOp::Reject),
        3 => (mostly_zero(), mostly_zero()).prop_map(|(hash, revision_offset)| QuoteOp::Proposal { hash, revision_offset }),
        3 => (mostly_zero(), mostly_zero()).prop_map(|(hash, revision_offset)| QuoteOp::Signature { hash, revision_offset }),
        4 => (0u64..40).prop_map(|days| QuoteOp::Accept { days }),
        1 => Just(QuoteOp::Expire),
        1 => Just(QuoteOp::Withdraw),
        1 => Just(QuoteOp::Drift),
        1 => Just(QuoteOp::Revalidate),
    ]
}

fn quote_command(state: &QuoteState, op: &QuoteOp) -> QuoteCommand {
    let (revision, lines): (u32, Vec<String>) = match state {
        QuoteState::Open(q) => (
            q.revision,
            q.lines.iter().map(|l| l.line_id.to_string()).collect(),
        ),
        _ => (1, Vec::new()),
    };
    let name = |i: &u8| format!("l{i}");
    let now = at(1_000);
    match op {
        QuoteOp::AddLine(i) => QuoteCommand::AddLine {
            line: line(&name(i)),
            at: now,
        },
        QuoteOp::ChangeLine(i, quantity) => QuoteCommand::ChangeLine {
            line: QuoteLine {
                quantity: *quantity,
                ..line(&name(i))
            },
            at: now,
        },
        QuoteOp::RemoveLine(i) => QuoteCommand::RemoveLine {
            line_id: line_id(&name(i)),
            at: now,
        },
        QuoteOp::Price {
            discount,
            revision_offset,
        } => {
            let ids: Vec<&str> = lines.iter().map(String::as_str).collect();
            QuoteCommand::Price {
                price: price(revision + revision_offset, &ids, percent(*discount)),
                policy: approval_policy(),
                at: now,
            }
        }
        QuoteOp::Approve => QuoteCommand::Approve {
            approver: "boss".to_owned(),
            at: now,
        },
        QuoteOp::Reject => QuoteCommand::RejectApproval {
            approver: "boss".to_owned(),
            reason: "no".to_owned(),
            at: now,
        },
        QuoteOp::Proposal {
            hash,
            revision_offset,
        } => QuoteCommand::RecordProposal {
            revision: revision + revision_offset,
            artifact: proposal(&format!("art-{hash}")),
            price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
            at: now,
        },
        QuoteOp::Signature {
            hash,
            revision_offset,
        } => QuoteCommand::RecordSignature {
            revision: revision + revision_offset,
            signature: signature(&format!("art-{hash}")),
            at: now,
        },
        QuoteOp::Accept { days } => QuoteCommand::Accept {
            billing_account: billing_account(),
            price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
            capabilities: domain::capability::Capabilities::all(),
            at: at(days * 24 * 60 * 60 * 1_000),
        },
        QuoteOp::Expire => QuoteCommand::Expire { at: now },
        QuoteOp::Withdraw => QuoteCommand::Withdraw {
            reason: "x".to_owned(),
            at: now,
        },
        QuoteOp::Drift => QuoteCommand::ReportCustomerDrift {
            observed: customer_in_enterprise_segment(),
            at: now,
        },
        QuoteOp::Revalidate => QuoteCommand::Revalidate {
            customer: customer_in_enterprise_segment(),
            at: now,
        },
    }
}

fn assert_accepted_quote_is_valid(state: &QuoteState) {
    let QuoteState::Accepted { quote, accepted_at } = state else {
        return;
    };
    let price = quote.price.as_ref().expect("an accepted quote has a price");
    assert_eq!(
        price.revision, quote.revision,
        "price is for the accepted revision"
    );
    assert!(
        price.is_valid_at(*accepted_at),
        "price was fresh at acceptance"
    );
    let approval_needed =
        approval_policy().approval_needed(&quote.customer.segment, price.discount.percent);
    match (&approval_needed, &quote.approval) {
        (Some(_), Approval::Granted { .. }) | (None, Approval::NotRequired) => {}
        (needed, approval) => panic!("approval needed {needed:?} but state {approval:?}"),
    }
    let proposal = quote
        .current_proposal()
        .expect("a proposal renders the accepted revision");
    let signature = quote
        .signature
        .as_ref()
        .expect("an accepted quote is signed");
    assert_eq!(signature.revision, quote.revision);
    assert_eq!(signature.evidence.artifact_hash, proposal.artifact_hash);
    assert_eq!(quote.drift, None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn an_accepted_quote_always_has_a_fresh_current_price_its_approval_and_a_matching_signature(
        ops in proptest::collection::vec(quote_op(), 0..40)
    ) {
        let (mut state, _) = step::<QuoteDecider>(QuoteDecider::initial(), &QuoteCommand::Create {
            quote_id: quote_id(),
            tenant_id: tenant(),
            customer: customer(),
            catalog_version: "c".to_owned(),
            customer_suspension: None,
            catalog: domain::catalog::VersionStanding::Unmanaged,
            at: T0,
        });
        state = step::<QuoteDecider>(state, &QuoteCommand::AddLine { line: line("l0"), at: T0 }).0;
        for op in &ops {
            let command = quote_command(&state, op);
            state = step::<QuoteDecider>(state, &command).0;
            assert_accepted_quote_is_valid(&state);
        }
    }
}

// ---------------------------------------------------------------- handoff

#[derive(Clone, Debug)]
enum HandoffOp {
    Dispatch {
        later_ms: u64,
    },
    Observe {
        class: usize,
        source: usize,
        wrong_attempt: bool,
        max_attempts: u32,
    },
    SlaBreach,
    Resolve,
}

const CLASSES: [OutcomeClass; 11] = OutcomeClass::ALL;

const SOURCES: [ObservationSource; 3] = [
    ObservationSource::Dispatch,
    ObservationSource::Callback,
    ObservationSource::Reconciliation,
];

fn handoff_op() -> impl Strategy<Value = HandoffOp> {
    prop_oneof![
        1 => (0u64..120_000).prop_map(|later_ms| HandoffOp::Dispatch { later_ms }),
        4 => (0..CLASSES.len(), 0..SOURCES.len(), proptest::bool::weighted(0.1), 1u32..5).prop_map(
            |(class, source, wrong_attempt, max_attempts)| HandoffOp::Observe { class, source, wrong_attempt, max_attempts }
        ),
        1 => Just(HandoffOp::SlaBreach),
        1 => Just(HandoffOp::Resolve),
    ]
}

fn status(state: &HandoffState) -> Option<HandoffStatus> {
    match state {
        HandoffState::Open(h) => Some(h.status.clone()),
        HandoffState::Empty => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_handoff_never_flips_outcome_without_fallout_and_never_resends_an_unknown_before_reconciliation(
        ops in proptest::collection::vec(handoff_op(), 0..40)
    ) {
        let reserve = subject("l1", Purpose::Reserve, 1);
        let (mut state, _) = step::<HandoffDecider>(
            HandoffDecider::initial(),
            &HandoffCommand::Request { subject: reserve.clone(), request: request(), at: T0 },
        );
        let mut clock = T0;
        let mut awaiting_reconciliation = false;
        for op in &ops {
            let command = match op {
                HandoffOp::Dispatch { later_ms } => {
                    clock = clock.plus_millis(*later_ms);
                    HandoffCommand::RecordDispatch { at: clock }
                }
                HandoffOp::Observe { class, source, wrong_attempt, max_attempts } => {
                    clock = clock.plus_millis(500);
                    let mut seen: Observation = observation(&reserve, CLASSES[*class], SOURCES[*source]);
                    seen.observed_at = clock;
                    if *wrong_attempt {
                        seen.attempt = 2;
                    }
                    let retry_policy = RetryPolicy { base_ms: 1_000, max_ms: 8_000, max_attempts: *max_attempts };
                    HandoffCommand::Observe { observation: seen, retry_policy }
                }
                HandoffOp::SlaBreach => HandoffCommand::DeclareSlaBreach { at: clock },
                HandoffOp::Resolve => HandoffCommand::Resolve { operator: "ops".to_owned(), note: "n".to_owned(), at: clock },
            };
            let before = status(&state);
            let (next, events) = step::<HandoffDecider>(state, &command);
            let after = status(&next);
            let reconciled = matches!(
                &command,
                HandoffCommand::Observe { observation, .. } if observation.source == ObservationSource::Reconciliation
            ) && !events.is_empty();
            if reconciled {
                awaiting_reconciliation = false;
            }
            for event in &events {
                if let HandoffEvent::HandoffSent { .. } = event {
                    prop_assert!(!awaiting_reconciliation, "an UNKNOWN handoff was resent before reconciliation");
                }
            }
            match (&before, &after) {
                (Some(HandoffStatus::Succeeded), Some(next)) if next != &HandoffStatus::Succeeded => {
                    prop_assert_eq!(next, &HandoffStatus::Fallout { reason: FalloutReason::LocalImpossible });
                }
                (Some(HandoffStatus::Rejected), Some(next)) if next != &HandoffStatus::Rejected => {
                    prop_assert!(
                        matches!(next, HandoffStatus::Fallout { .. } | HandoffStatus::Resolved),
                        "rejected moved to {:?}", next
                    );
                }
                (Some(HandoffStatus::Unknown), Some(next)) if next != &HandoffStatus::Unknown => {
                    prop_assert!(reconciled, "UNKNOWN moved to {:?} without reconciliation", next);
                }
                _ => {}
            }
            if after == Some(HandoffStatus::Unknown) && before != Some(HandoffStatus::Unknown) {
                awaiting_reconciliation = true;
            }
            if let HandoffState::Open(handoff) = &next {
                prop_assert_eq!(&handoff.idempotency_key, &reserve.idempotency_key());
            }
            state = next;
        }
    }
}

// ---------------------------------------------------------------- order

#[derive(Clone, Debug)]
enum OrderOp {
    Request { line: u8, step: usize },
    Succeed { line: u8, matching: bool },
    Fail { line: u8, reason: usize },
    Resolve { line: u8, how: usize },
    Cancel,
    Complete,
}

const STEPS: [Step; 3] = [
    Step::Reservation,
    Step::Provisioning,
    Step::BillingActivation,
];
const REASONS: [FalloutReason; 4] = [
    FalloutReason::BusinessRejected,
    FalloutReason::SecurityConfiguration,
    FalloutReason::SchemaMismatch,
    FalloutReason::SlaBreach,
];

fn order_op() -> impl Strategy<Value = OrderOp> {
    prop_oneof![
        3 => (0u8..2, 0..STEPS.len()).prop_map(|(line, step)| OrderOp::Request { line, step }),
        3 => (0u8..2, proptest::bool::weighted(0.8)).prop_map(|(line, matching)| OrderOp::Succeed { line, matching }),
        1 => (0u8..2, 0..REASONS.len()).prop_map(|(line, reason)| OrderOp::Fail { line, reason }),
        1 => (0u8..2, 0usize..3).prop_map(|(line, how)| OrderOp::Resolve { line, how }),
        1 => Just(OrderOp::Cancel),
        1 => Just(OrderOp::Complete),
    ]
}

/// The line's in-flight handoff and attempt, or a made-up one.
fn in_flight(state: &OrderState, line: &str) -> (domain::ids::HandoffId, u32) {
    if let OrderState::Open(order) = state {
        if let Some(LineProgress::InFlight {
            handoff_id,
            attempt,
            ..
        }) = order.line(&line_id(line)).map(|l| &l.progress)
        {
            return (handoff_id.clone(), *attempt);
        }
    }
    (subject(line, Purpose::Reserve, 9).handoff_id(), 9)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn an_order_line_never_has_billing_requested_before_provisioning_succeeded(
        ops in proptest::collection::vec(order_op(), 0..50)
    ) {
        let mut state: OrderState = domain::fold::<OrderDecider, _>(&[order_captured(&["l0", "l1"])]);
        let mut provisioned: BTreeSet<String> = BTreeSet::new();
        let mut billed: BTreeSet<String> = BTreeSet::new();
        for op in &ops {
            let now = at(1);
            let command = match op {
                OrderOp::Request { line, step } => {
                    OrderCommand::RequestStep { line_id: line_id(&format!("l{line}")), step: STEPS[*step], at: now }
                }
                OrderOp::Succeed { line, matching } => {
                    let name = format!("l{line}");
                    let (handoff_id, attempt) = in_flight(&state, &name);
                    let attempt = if *matching { attempt } else { attempt + 1 };
                    OrderCommand::RecordStepSucceeded { line_id: line_id(&name), handoff_id, attempt, external_reference: None, at: now }
                }
                OrderOp::Fail { line, reason } => {
                    let name = format!("l{line}");
                    let (handoff_id, attempt) = in_flight(&state, &name);
                    OrderCommand::RaiseFallout { line_id: line_id(&name), handoff_id, attempt, reason: REASONS[*reason], at: now }
                }
                OrderOp::Resolve { line, how } => {
                    let resolution = match how {
                        0 => Resolution::NewAttempt,
                        1 => Resolution::ResolvedExternally { reference: "r".to_owned(), note: "n".to_owned() },
                        _ => Resolution::CancelLine { reason: "c".to_owned() },
                    };
                    OrderCommand::ResolveFallout { line_id: line_id(&format!("l{line}")), resolution, operator: "ops".to_owned(), at: now }
                }
                OrderOp::Cancel => OrderCommand::Cancel { reason: "c".to_owned(), at: now },
                OrderOp::Complete => OrderCommand::Complete { at: now },
            };
            let (next, events) = step::<OrderDecider>(state, &command);
            for event in &events {
                match event {
                    OrderEvent::StepSucceeded { line_id, step: Step::Provisioning, .. } => {
                        provisioned.insert(line_id.to_string());
                    }
                    OrderEvent::StepSucceeded { line_id, step: Step::BillingActivation, .. } => {
                        billed.insert(line_id.to_string());
                    }
                    OrderEvent::StepRequested { step: Step::BillingActivation, handoff, .. } => {
                        prop_assert!(provisioned.contains(handoff.subject.line_id.as_str()), "billing before provisioning");
                    }
                    OrderEvent::LineActivated { line_id, .. } => {
                        prop_assert!(billed.contains(line_id.as_str()), "activated without billing");
                    }
                    OrderEvent::OrderCompleted { .. } => {
                        let OrderState::Completed(order) = &next else {
                            return Err(TestCaseError::fail("completion did not complete the order"));
                        };
                        prop_assert!(order.lines.iter().all(|l| l.progress.is_settled()), "completed with open lines");
                    }
                    _ => {}
                }
            }
            state = next;
        }
    }
}
