//! One test per order rule, named as the rule reads.

use super::*;
use crate::decider::{run, Decider};
use crate::handoff::{HandoffRequest, HandoffSubject};
use crate::idempotency::Purpose;
use crate::ids::LineId;
use crate::outcome::FalloutReason;
use crate::testing::fixtures::*;
use crate::testing::Given;

fn step_subject(line: &str, step: Step, attempt: u32) -> HandoffSubject {
    subject(line, step.purpose(), attempt)
}

fn request(line: &str, step: Step) -> OrderCommand {
    OrderCommand::RequestStep {
        line_id: line_id(line),
        step,
        at: at(10),
    }
}

fn succeed(line: &str, step: Step, attempt: u32) -> OrderCommand {
    OrderCommand::RecordStepSucceeded {
        line_id: line_id(line),
        handoff_id: step_subject(line, step, attempt).handoff_id(),
        attempt,
        external_reference: Some(format!("ext-{line}-{step:?}")),
        at: at(20),
    }
}

fn fail(line: &str, step: Step, attempt: u32, reason: FalloutReason) -> OrderCommand {
    OrderCommand::RaiseFallout {
        line_id: line_id(line),
        handoff_id: step_subject(line, step, attempt).handoff_id(),
        attempt,
        reason,
        at: at(30),
    }
}

fn resolve(line: &str, resolution: Resolution) -> OrderCommand {
    OrderCommand::ResolveFallout {
        line_id: line_id(line),
        resolution,
        operator: "ops".to_owned(),
        at: at(40),
    }
}

/// The history an order with `lines` reaches by accepting `commands` in order.
fn play(lines: &[&str], commands: Vec<OrderCommand>) -> Vec<OrderEvent> {
    let mut history = vec![order_captured(lines)];
    let mut state = crate::decider::fold::<OrderDecider, _>(&history);
    for command in commands {
        let decision = run::<OrderDecider>(state, &command)
            .unwrap_or_else(|error| panic!("{command:?} was refused: {error:?}"));
        history.extend(decision.events);
        state = decision.state;
    }
    history
}

/// The plan of cancelling line `l1`, in fallout after `history`, as an
/// operator's resolution.
fn cancelling_l1(history: Vec<OrderEvent>) -> CompensationPlan {
    let events = Given::<OrderDecider>::events(history)
        .when(resolve(
            "l1",
            Resolution::CancelLine {
                reason: "customer".to_owned(),
            },
        ))
        .result()
        .expect("fallout is open");
    match events.as_slice() {
        [_, OrderEvent::LineCancelled { plan, .. }] => plan.clone(),
        _ => panic!("expected resolution then cancellation, got {events:?}"),
    }
}

/// What `plan`'s compensations undo, in order.
fn undoes(plan: &CompensationPlan) -> Vec<Purpose> {
    plan.compensations
        .iter()
        .map(|h| h.subject.purpose)
        .collect()
}

/// A line whose service is active: reservation and provisioning succeeded.
fn provisioned(line: &str) -> Vec<OrderCommand> {
    vec![
        request(line, Step::Reservation),
        succeed(line, Step::Reservation, 1),
        request(line, Step::Provisioning),
        succeed(line, Step::Provisioning, 1),
    ]
}

fn progress_of(history: &[OrderEvent], line: &str) -> LineProgress {
    match crate::decider::fold::<OrderDecider, _>(history) {
        OrderState::Open(order) | OrderState::Completed(order) | OrderState::Cancelled(order) => {
            order
                .line(&line_id(line))
                .map(|line| line.progress.clone())
                .unwrap_or_else(|| panic!("line {line} exists"))
        }
        OrderState::Empty => panic!("order exists"),
    }
}

#[test]
fn an_order_is_captured_with_the_accepted_quote_evidence() {
    Given::<OrderDecider>::nothing()
        .when(OrderCommand::Capture {
            order_id: order_id(),
            tenant_id: tenant(),
            evidence: quote_evidence(),
            customer_id: crate::ids::CustomerId::new("c1"),
            billing_account: billing_account(),
            lines: vec![accepted_line("l1"), accepted_line("l2")],
            at: T0,
        })
        .then(vec![order_captured(&["l1", "l2"])]);
}

#[test]
fn an_order_needs_distinct_lines_and_is_captured_once() {
    let capture = |lines: Vec<crate::quote::AcceptedLine>| OrderCommand::Capture {
        order_id: order_id(),
        tenant_id: tenant(),
        evidence: quote_evidence(),
        customer_id: crate::ids::CustomerId::new("c1"),
        billing_account: billing_account(),
        lines,
        at: T0,
    };
    Given::<OrderDecider>::nothing()
        .when(capture(vec![]))
        .then_err(OrderError::NoLines);
    Given::<OrderDecider>::nothing()
        .when(capture(vec![accepted_line("l1"), accepted_line("l1")]))
        .then_err(OrderError::DuplicateLine);
    Given::<OrderDecider>::events(vec![order_captured(&["l1"])])
        .when(capture(vec![accepted_line("l1")]))
        .then_err(OrderError::AlreadyCaptured);
}

#[test]
fn a_line_starts_with_a_reservation_requested_as_a_handoff() {
    let events = Given::<OrderDecider>::events(vec![order_captured(&["l1"])])
        .when(request("l1", Step::Reservation))
        .result()
        .expect("the reservation is the first step");
    let [OrderEvent::StepRequested {
        step: Step::Reservation,
        handoff,
        ..
    }] = events.as_slice()
    else {
        panic!("expected one reservation request, got {events:?}");
    };
    assert_eq!(handoff.subject, step_subject("l1", Step::Reservation, 1));
    assert_eq!(handoff.handoff_id, handoff.subject.handoff_id());
    assert_eq!(
        handoff.subject.idempotency_key(),
        "t1:o1:l1:inventory:reserve:1"
    );
    assert_eq!(
        handoff
            .request
            .fields
            .get("price_input_hash")
            .map(String::as_str),
        Some("price-input-r1")
    );
}

#[test]
fn billing_is_never_requested_before_the_service_is_active() {
    let reserved = play(
        &["l1"],
        vec![
            request("l1", Step::Reservation),
            succeed("l1", Step::Reservation, 1),
        ],
    );
    Given::<OrderDecider>::events(reserved)
        .when(request("l1", Step::BillingActivation))
        .then_err(OrderError::BillingBeforeServiceActive);
}

#[test]
fn a_billing_request_carries_the_charge_snapshot_and_billing_account() {
    let events = Given::<OrderDecider>::events(play(&["l1"], provisioned("l1")))
        .when(request("l1", Step::BillingActivation))
        .result()
        .expect("billing follows provisioning");
    let [OrderEvent::StepRequested {
        handoff: HandoffRequest {
            request, subject, ..
        },
        ..
    }] = events.as_slice()
    else {
        panic!("expected one billing request, got {events:?}");
    };
    assert_eq!(subject.purpose, Purpose::ActivateBilling);
    assert_eq!(
        request.fields.get("billing_account").map(String::as_str),
        Some("ba-1")
    );
    assert_eq!(
        request.fields.get("charge.1.amount").map(String::as_str),
        Some("49.90 EUR")
    );
}

#[test]
fn a_step_out_of_order_is_refused() {
    Given::<OrderDecider>::events(vec![order_captured(&["l1"])])
        .when(request("l1", Step::Provisioning))
        .then_err(OrderError::StepOutOfOrder);
}

#[test]
fn a_line_with_a_step_in_flight_refuses_another_request() {
    Given::<OrderDecider>::events(play(&["l1"], vec![request("l1", Step::Reservation)]))
        .when(request("l1", Step::Reservation))
        .then_err(OrderError::StepInFlight);
}

#[test]
fn a_step_moves_only_on_an_observation_for_its_handoff_and_attempt() {
    let in_flight = play(&["l1"], vec![request("l1", Step::Reservation)]);
    Given::<OrderDecider>::events(in_flight.clone())
        .when(succeed("l1", Step::Reservation, 2))
        .then_err(OrderError::ObservationForAnotherAttempt);
    Given::<OrderDecider>::events(in_flight)
        .when(OrderCommand::RecordStepSucceeded {
            line_id: line_id("l1"),
            handoff_id: crate::ids::HandoffId::new("h-other"),
            attempt: 1,
            external_reference: None,
            at: at(20),
        })
        .then_err(OrderError::ObservationForAnotherHandoff);
    Given::<OrderDecider>::events(vec![order_captured(&["l1"])])
        .when(succeed("l1", Step::Reservation, 1))
        .then_err(OrderError::StepNotInFlight);
}

#[test]
fn a_succeeded_step_records_the_external_reference_and_unlocks_the_next_step() {
    let subject = step_subject("l1", Step::Reservation, 1);
    let state =
        Given::<OrderDecider>::events(play(&["l1"], vec![request("l1", Step::Reservation)]))
            .when(succeed("l1", Step::Reservation, 1))
            .then(vec![OrderEvent::StepSucceeded {
                line_id: line_id("l1"),
                step: Step::Reservation,
                handoff_id: subject.handoff_id(),
                attempt: 1,
                external_reference: Some("ext-l1-Reservation".to_owned()),
                at: at(20),
            }]);
    Given::<OrderDecider>::state(state)
        .when(request("l1", Step::Provisioning))
        .result()
        .expect("next step");
}

#[test]
fn billing_success_activates_the_line_and_reports_the_lines_still_open() {
    let mut commands = provisioned("l1");
    commands.push(request("l1", Step::BillingActivation));
    let events = Given::<OrderDecider>::events(play(&["l1", "l2"], commands))
        .when(succeed("l1", Step::BillingActivation, 1))
        .result()
        .expect("billing success is recorded");
    assert_eq!(
        events.last(),
        Some(&OrderEvent::LineActivated {
            line_id: line_id("l1"),
            lines_open: 1,
            at: at(20)
        })
    );
}

#[test]
fn a_rejection_security_schema_or_sla_failure_puts_the_line_in_fallout() {
    for reason in [
        FalloutReason::BusinessRejected,
        FalloutReason::SecurityConfiguration,
        FalloutReason::SchemaMismatch,
        FalloutReason::SlaBreach,
    ] {
        Given::<OrderDecider>::events(play(&["l1"], vec![request("l1", Step::Reservation)]))
            .when(fail("l1", Step::Reservation, 1, reason))
            .then(vec![OrderEvent::LineFalloutRaised {
                line_id: line_id("l1"),
                step: Step::Reservation,
                handoff_id: step_subject("l1", Step::Reservation, 1).handoff_id(),
                attempt: 1,
                reason,
                at: at(30),
            }]);
    }
}

#[test]
fn a_line_in_fallout_refuses_new_steps_until_resolved() {
    let history = play(
        &["l1"],
        vec![
            request("l1", Step::Reservation),
            fail("l1", Step::Reservation, 1, FalloutReason::SlaBreach),
        ],
    );
    Given::<OrderDecider>::events(history)
        .when(request("l1", Step::Reservation))
        .then_err(OrderError::LineInFallout);
}

#[test]
fn resolving_fallout_with_a_new_attempt_requests_the_step_under_a_new_key() {
    let history = play(
        &["l1"],
        vec![
            request("l1", Step::Reservation),
            fail("l1", Step::Reservation, 1, FalloutReason::BusinessRejected),
        ],
    );
    let events = Given::<OrderDecider>::events(history)
        .when(resolve("l1", Resolution::NewAttempt))
        .result()
        .expect("fallout is open");
    let [OrderEvent::LineFalloutResolved { .. }, OrderEvent::StepRequested { handoff, .. }] =
        events.as_slice()
    else {
        panic!("expected resolution then request, got {events:?}");
    };
    assert_eq!(
        handoff.subject.idempotency_key(),
        "t1:o1:l1:inventory:reserve:2"
    );
}

/// A step that may have taken effect at the target (an answer nobody
/// reads, an SLA breach, ...) gets no new attempt: its new idempotency key
/// could double the effect. A step that took none may be tried again.
#[test]
fn a_new_attempt_is_refused_where_the_step_may_have_taken_effect() {
    for reason in [
        FalloutReason::BusinessRejected,
        FalloutReason::ValidationRejected,
        FalloutReason::DuplicateConflict,
        FalloutReason::SecurityConfiguration,
        FalloutReason::SchemaMismatch,
        FalloutReason::Unclassified,
        FalloutReason::RetriesExhausted,
        FalloutReason::SlaBreach,
    ] {
        let history = play(
            &["l1"],
            vec![
                request("l1", Step::Reservation),
                fail("l1", Step::Reservation, 1, reason),
            ],
        );
        let decided = Given::<OrderDecider>::events(history)
            .when(resolve("l1", Resolution::NewAttempt))
            .result();
        if reason.may_have_taken_effect() {
            assert_eq!(
                decided,
                Err(OrderError::StepMayHaveTakenEffect),
                "{reason:?}"
            );
        } else {
            assert!(decided.is_ok(), "{reason:?}: {decided:?}");
        }
    }
}

/// A line in fallout for a reason that took no effect learns that its step
/// did take effect (the handoff raised "local impossible" on a late
/// success): the line's fallout is raised again with that reason, so the
/// order refuses a new attempt (which would reserve twice) and a
/// cancellation releases what the target holds. Any other fallout of a
/// line already in fallout is refused, as before.
#[test]
fn a_line_in_fallout_without_effect_takes_a_later_fallout_that_may_have_taken_effect() {
    for first in [
        FalloutReason::BusinessRejected,
        FalloutReason::RetriesExhausted,
        FalloutReason::SecurityConfiguration,
    ] {
        let history = play(
            &["l1"],
            vec![
                request("l1", Step::Reservation),
                fail("l1", Step::Reservation, 1, first),
            ],
        );
        let raised_again = Given::<OrderDecider>::events(history.clone())
            .when(fail(
                "l1",
                Step::Reservation,
                1,
                FalloutReason::LocalImpossible,
            ))
            .result()
            .unwrap_or_else(|e| panic!("{first:?}: {e:?}"));
        assert!(
            matches!(
                raised_again.as_slice(),
                [OrderEvent::LineFalloutRaised {
                    reason: FalloutReason::LocalImpossible,
                    attempt: 1,
                    ..
                }]
            ),
            "{first:?}: {raised_again:?}"
        );
        let mut history = history;
        history.extend(raised_again);
        Given::<OrderDecider>::events(history.clone())
            .when(resolve("l1", Resolution::NewAttempt))
            .then_err(OrderError::StepMayHaveTakenEffect);
        let plan = cancelling_l1(history.clone());
        assert_eq!(undoes(&plan), [Purpose::Release], "{first:?}: {plan:?}");
        // Once raised with a possible effect, nothing raises it again.
        Given::<OrderDecider>::events(history)
            .when(fail(
                "l1",
                Step::Reservation,
                1,
                FalloutReason::LocalImpossible,
            ))
            .then_err(OrderError::StepNotInFlight);
    }
    // A fallout of another attempt, or one without effect, is refused.
    let history = play(
        &["l1"],
        vec![
            request("l1", Step::Reservation),
            fail("l1", Step::Reservation, 1, FalloutReason::BusinessRejected),
        ],
    );
    Given::<OrderDecider>::events(history.clone())
        .when(fail(
            "l1",
            Step::Reservation,
            2,
            FalloutReason::LocalImpossible,
        ))
        .then_err(OrderError::StepNotInFlight);
    Given::<OrderDecider>::events(history)
        .when(fail(
            "l1",
            Step::Reservation,
            1,
            FalloutReason::SecurityConfiguration,
        ))
        .then_err(OrderError::StepNotInFlight);
}

#[test]
fn resolving_fallout_externally_records_the_step_as_succeeded_with_its_evidence() {
    let history = play(
        &["l1"],
        vec![
            request("l1", Step::Reservation),
            fail("l1", Step::Reservation, 1, FalloutReason::Unclassified),
        ],
    );
    let external = Resolution::ResolvedExternally {
        reference: "INV-991".to_owned(),
        note: "checked".to_owned(),
    };
    let handoff_id = step_subject("l1", Step::Reservation, 1).handoff_id();
    Given::<OrderDecider>::events(history)
        .when(resolve("l1", external.clone()))
        .then(vec![
            OrderEvent::LineFalloutResolved {
                line_id: line_id("l1"),
                step: Step::Reservation,
                handoff_id: handoff_id.clone(),
                resolution: external,
                operator: "ops".to_owned(),
                at: at(40),
            },
            OrderEvent::StepSucceeded {
                line_id: line_id("l1"),
                step: Step::Reservation,
                handoff_id,
                attempt: 1,
                external_reference: Some("INV-991".to_owned()),
                at: at(40),
            },
        ]);
}

#[test]
fn cancelling_a_line_in_fallout_cancels_provisioning_and_releases_the_reservation() {
    let history = play(
        &["l1", "l2"],
        vec![
            request("l1", Step::Reservation),
            succeed("l1", Step::Reservation, 1),
            request("l1", Step::Provisioning),
            fail("l1", Step::Provisioning, 1, FalloutReason::SlaBreach),
        ],
    );
    let events = Given::<OrderDecider>::events(history)
        .when(resolve(
            "l1",
            Resolution::CancelLine {
                reason: "no capacity".to_owned(),
            },
        ))
        .result()
        .expect("fallout is open");
    let [_, OrderEvent::LineCancelled {
        plan,
        lines_open: 1,
        ..
    }] = events.as_slice()
    else {
        panic!("expected resolution then cancellation, got {events:?}");
    };
    let purposes: Vec<Purpose> = plan
        .compensations
        .iter()
        .map(|h| h.subject.purpose)
        .collect();
    assert_eq!(purposes, [Purpose::Cancel, Purpose::Release]);
    assert!(plan.uncompensated.is_empty());
}

#[test]
fn a_step_the_target_rejected_needs_no_compensation() {
    let history = play(
        &["l1"],
        vec![
            request("l1", Step::Reservation),
            fail("l1", Step::Reservation, 1, FalloutReason::BusinessRejected),
        ],
    );
    let events = Given::<OrderDecider>::events(history)
        .when(resolve(
            "l1",
            Resolution::CancelLine {
                reason: "rejected".to_owned(),
            },
        ))
        .result()
        .expect("fallout is open");
    let [_, OrderEvent::LineCancelled {
        plan,
        lines_open: 0,
        ..
    }] = events.as_slice()
    else {
        panic!("expected resolution then cancellation, got {events:?}");
    };
    assert_eq!(plan, &CompensationPlan::default());
}

/// Cancelling a line whose billing activation fell out undoes
/// provisioning and the reservation whatever the reason, and reports
/// billing as uncompensated exactly when it may have taken effect (an
/// unreadable answer, a conflict, an SLA breach: billing owns the charge
/// and a human stops it; ADR 0054). Found through the API twice: a
/// billing step without effect (credentials refused, retries run out) was
/// cancelled with every step reported and nothing released; and a probe
/// found the same for a billing step that may have taken effect, leaving
/// the capacity held and the service active.
#[test]
fn cancelling_after_billing_fell_out_undoes_the_steps_before_it() {
    for reason in [
        FalloutReason::SecurityConfiguration,
        FalloutReason::RetriesExhausted,
        FalloutReason::BusinessRejected,
        FalloutReason::ValidationRejected,
        FalloutReason::SchemaMismatch,
        FalloutReason::Unclassified,
        FalloutReason::DuplicateConflict,
        FalloutReason::SlaBreach,
    ] {
        let mut commands = provisioned("l1");
        commands.push(request("l1", Step::BillingActivation));
        commands.push(fail("l1", Step::BillingActivation, 1, reason));
        let plan = cancelling_l1(play(&["l1"], commands));
        assert_eq!(
            undoes(&plan),
            [Purpose::Cancel, Purpose::Release],
            "{reason:?}"
        );
        let billing = Uncompensated {
            line_id: line_id("l1"),
            step: Step::BillingActivation,
        };
        let reported: &[Uncompensated] = if reason.may_have_taken_effect() {
            std::slice::from_ref(&billing)
        } else {
            &[]
        };
        assert_eq!(plan.uncompensated, reported, "{reason:?}");
    }
}

#[test]
fn resolving_a_line_without_open_fallout_is_refused() {
    Given::<OrderDecider>::events(vec![order_captured(&["l1"])])
        .when(resolve("l1", Resolution::NewAttempt))
        .then_err(OrderError::NoOpenFallout);
}

#[test]
fn cancelling_an_order_compensates_records_leftovers_and_withdraws_steps_in_flight() {
    let mut commands = vec![request("l1", Step::Reservation)];
    commands.extend(provisioned("l2"));
    commands.push(request("l2", Step::BillingActivation));
    let history = play(&["l1", "l2", "l3"], commands);
    let history_before_cancel = history.clone();
    let events = Given::<OrderDecider>::events(history)
        .when(OrderCommand::Cancel {
            reason: "customer cancelled".to_owned(),
            at: at(50),
        })
        .result()
        .expect("an open order can be cancelled");
    let [OrderEvent::OrderCancelled { plan, .. }, rest @ ..] = events.as_slice() else {
        panic!("expected the cancellation first, got {events:?}");
    };
    assert_eq!(plan, &CompensationPlan::default());
    // Each line with anything to undo has its own plan (l3, captured, has
    // none), then each step in flight is withdrawn, so no send of it follows
    // the cancellation.
    let (planned, withdrawn) = rest.split_at(2);
    let plans: Vec<(String, CompensationPlan)> = planned
        .iter()
        .map(|event| match event {
            OrderEvent::CancellationPlanned {
                line_id,
                plan,
                at: when,
            } => {
                assert_eq!(*when, at(50));
                (line_id.to_string(), plan.clone())
            }
            other => panic!("expected each line's plan, got {other:?}"),
        })
        .collect();
    let withdrawn: Vec<(String, Step, u32)> = withdrawn
        .iter()
        .map(|event| match event {
            OrderEvent::StepWithdrawn {
                line_id,
                step,
                handoff_id,
                attempt,
                at: when,
            } => {
                assert_eq!(*when, at(50));
                assert_eq!(
                    *handoff_id,
                    step_subject(line_id.as_str(), *step, *attempt).handoff_id()
                );
                (line_id.to_string(), *step, *attempt)
            }
            other => panic!("expected withdrawals after the plans, got {other:?}"),
        })
        .collect();
    assert_eq!(
        withdrawn,
        [
            ("l1".to_owned(), Step::Reservation, 1),
            ("l2".to_owned(), Step::BillingActivation, 1)
        ]
    );
    let [(l1, l1_plan), (l2, l2_plan)] = plans.as_slice() else {
        panic!("expected two plans, got {plans:?}");
    };
    assert_eq!((l1.as_str(), l2.as_str()), ("l1", "l2"));
    let compensations: Vec<(String, Purpose)> = l1_plan
        .compensations
        .iter()
        .map(|h| (h.subject.line_id.to_string(), h.subject.purpose))
        .collect();
    assert_eq!(compensations, [("l1".to_owned(), Purpose::Release)]);
    assert!(l1_plan.uncompensated.is_empty());
    assert_eq!(undoes(l2_plan), [Purpose::Cancel, Purpose::Release]);
    assert_eq!(
        l2_plan.uncompensated,
        [Uncompensated {
            line_id: line_id("l2"),
            step: Step::BillingActivation
        }]
    );
    // The order tracks each planned compensation once cancelled.
    let mut all = history_before_cancel;
    all.extend(events.iter().cloned());
    let state = crate::decider::fold::<OrderDecider, _>(&all);
    let OrderState::Cancelled(order) = state else {
        panic!("expected a cancelled order, got {state:?}");
    };
    assert_eq!(order.lines[0].compensations.len(), 1);
    assert_eq!(order.lines[1].compensations.len(), 2);
}

/// A line in fallout when its order is cancelled has its step withdrawn
/// too, which closes the case: the cancellation's plan undoes what the
/// step did, so nobody has to close the case by hand.
#[test]
fn cancelling_an_order_withdraws_a_step_in_fallout() {
    let history = play(
        &["l1"],
        vec![
            request("l1", Step::Reservation),
            fail("l1", Step::Reservation, 1, FalloutReason::BusinessRejected),
        ],
    );
    let events = Given::<OrderDecider>::events(history)
        .when(OrderCommand::Cancel {
            reason: "customer cancelled".to_owned(),
            at: at(50),
        })
        .result()
        .expect("an open order can be cancelled");
    let withdrawn: Vec<&OrderEvent> = events
        .iter()
        .filter(|e| matches!(e, OrderEvent::StepWithdrawn { .. }))
        .collect();
    assert_eq!(
        withdrawn,
        [&OrderEvent::StepWithdrawn {
            line_id: line_id("l1"),
            step: Step::Reservation,
            handoff_id: step_subject("l1", Step::Reservation, 1).handoff_id(),
            attempt: 1,
            at: at(50),
        }]
    );
}

#[test]
fn the_order_completes_only_when_every_line_is_active_or_cancelled() {
    let mut commands = provisioned("l1");
    commands.push(request("l1", Step::BillingActivation));
    commands.push(succeed("l1", Step::BillingActivation, 1));
    Given::<OrderDecider>::events(play(&["l1", "l2"], commands.clone()))
        .when(OrderCommand::Complete { at: at(60) })
        .then_err(OrderError::LinesStillOpen);
    let history = play(&["l1"], commands);
    assert_eq!(progress_of(&history, "l1"), LineProgress::Active);
    let state = Given::<OrderDecider>::events(history)
        .when(OrderCommand::Complete { at: at(60) })
        .then(vec![OrderEvent::OrderCompleted { at: at(60) }]);
    assert!(OrderDecider::is_terminal(&state));
}

#[test]
fn an_order_whose_every_line_was_cancelled_ends_cancelled_not_completed() {
    let history = play(
        &["l1"],
        vec![
            request("l1", Step::Reservation),
            fail("l1", Step::Reservation, 1, FalloutReason::SlaBreach),
            resolve(
                "l1",
                Resolution::CancelLine {
                    reason: "no capacity".to_owned(),
                },
            ),
        ],
    );
    assert_eq!(progress_of(&history, "l1"), LineProgress::Cancelled);
    let state = Given::<OrderDecider>::events(history)
        .when(OrderCommand::Complete { at: at(60) })
        .then(vec![OrderEvent::OrderCancelled {
            reason: super::decide::EVERY_LINE_CANCELLED.to_owned(),
            plan: CompensationPlan::default(),
            at: at(60),
        }]);
    assert!(matches!(state, OrderState::Cancelled(_)));
}

/// Line `l1` reserved, its provisioning breached its SLA (it may have taken
/// effect), and the line cancelled: its plan cancels provisioning, then
/// releases the reservation.
fn cancelled_after_provisioning_fell_out() -> Vec<OrderCommand> {
    vec![
        request("l1", Step::Reservation),
        succeed("l1", Step::Reservation, 1),
        request("l1", Step::Provisioning),
        fail("l1", Step::Provisioning, 1, FalloutReason::SlaBreach),
        resolve(
            "l1",
            Resolution::CancelLine {
                reason: "no capacity".to_owned(),
            },
        ),
    ]
}

#[test]
fn a_cancelled_lines_compensation_is_tracked_on_the_order_even_after_it_ended() {
    let mut commands = cancelled_after_provisioning_fell_out();
    commands.push(OrderCommand::Complete { at: at(50) });
    let history = play(&["l1"], commands);
    let state = crate::decider::fold::<OrderDecider, _>(&history);
    let OrderState::Cancelled(order) = &state else {
        panic!("every line was cancelled: {state:?}")
    };
    let planned: Vec<(Purpose, Option<CompensationOutcome>)> = order.lines[0]
        .compensations
        .iter()
        .map(|c| (c.purpose, c.outcome))
        .collect();
    assert_eq!(planned, [(Purpose::Cancel, None), (Purpose::Release, None)]);
    let release = order.lines[0].compensations[1].handoff_id.clone();
    let record = |outcome| OrderCommand::RecordCompensation {
        handoff_id: release.clone(),
        outcome,
        at: at(60),
    };
    let failed = CompensationOutcome::Failed {
        reason: FalloutReason::BusinessRejected,
    };
    let after = Given::<OrderDecider>::events(history.clone())
        .when(record(failed))
        .then(vec![OrderEvent::CompensationSettled {
            line_id: LineId::new("l1"),
            handoff_id: release.clone(),
            purpose: Purpose::Release,
            outcome: failed,
            at: at(60),
        }]);
    let OrderState::Cancelled(order) = after else {
        panic!("still cancelled")
    };
    assert_eq!(order.lines[0].compensations[1].outcome, Some(failed));
    let mut settled = history;
    settled.push(OrderEvent::CompensationSettled {
        line_id: LineId::new("l1"),
        handoff_id: release.clone(),
        purpose: Purpose::Release,
        outcome: failed,
        at: at(60),
    });
    Given::<OrderDecider>::events(settled)
        .when(record(failed))
        .then(vec![]);
    Given::<OrderDecider>::events(play(&["l1"], vec![]))
        .when(record(CompensationOutcome::Done))
        .then_err(OrderError::CompensationNotPlanned);
}

/// The plan undoes the furthest effect first, one compensation at a time:
/// a probe saw the reservation released while the provisioning cancel was
/// rejected and the service stayed live (ADR 0064).
#[test]
fn a_lines_compensations_run_one_at_a_time_furthest_effect_first() {
    let history = play(&["l1"], cancelled_after_provisioning_fell_out());
    let OrderState::Open(order) = crate::decider::fold::<OrderDecider, _>(&history) else {
        panic!("one line cancelled, the order open until completed")
    };
    let planned: Vec<(Purpose, bool)> = order.lines[0]
        .compensations
        .iter()
        .map(|c| (c.purpose, c.requested))
        .collect();
    assert_eq!(
        planned,
        [(Purpose::Cancel, true), (Purpose::Release, false)]
    );
    let cancel = order.lines[0].compensations[0].handoff_id.clone();
    let release = order.lines[0].compensations[1].handoff_id.clone();
    let record = |handoff_id: &crate::ids::HandoffId, outcome| OrderCommand::RecordCompensation {
        handoff_id: handoff_id.clone(),
        outcome,
        at: at(60),
    };
    let settled =
        |handoff_id: &crate::ids::HandoffId, purpose, outcome| OrderEvent::CompensationSettled {
            line_id: LineId::new("l1"),
            handoff_id: handoff_id.clone(),
            purpose,
            outcome,
            at: at(60),
        };
    let failed = CompensationOutcome::Failed {
        reason: FalloutReason::BusinessRejected,
    };
    // A failed cancel keeps the release back: the service may still be live.
    Given::<OrderDecider>::events(history.clone())
        .when(record(&cancel, failed))
        .then(vec![settled(&cancel, Purpose::Cancel, failed)]);
    // Undone, or its case closed by an operator: the release is requested,
    // under the handoff the plan named.
    for outcome in [CompensationOutcome::Done, CompensationOutcome::Closed] {
        let mut before = history.clone();
        if outcome == CompensationOutcome::Closed {
            before.push(settled(&cancel, Purpose::Cancel, failed));
        }
        let events = <OrderDecider as crate::decider::Decider>::decide(
            &crate::decider::fold::<OrderDecider, _>(&before),
            &record(&cancel, outcome),
        )
        .expect("accepted");
        let [first, OrderEvent::CompensationRequested {
            line_id,
            handoff,
            at: requested_at,
        }] = events.as_slice()
        else {
            panic!("{outcome:?}: settled then the next requested: {events:?}");
        };
        assert_eq!(first, &settled(&cancel, Purpose::Cancel, outcome));
        assert_eq!(line_id, &LineId::new("l1"));
        assert_eq!(handoff.handoff_id, release);
        assert_eq!(handoff.subject.purpose, Purpose::Release);
        assert_eq!(*requested_at, at(60));
        // Requested once: a later outcome of the cancel asks nothing more,
        // and the release's own outcome is the last of the line.
        let mut after = before;
        after.extend(events.iter().cloned());
        let state = crate::decider::fold::<OrderDecider, _>(&after);
        let OrderState::Open(order) = &state else {
            panic!("{state:?}")
        };
        assert!(order.lines[0].compensations[1].requested);
        Given::<OrderDecider>::events(after.clone())
            .when(record(&cancel, failed))
            .then(vec![settled(&cancel, Purpose::Cancel, failed)]);
        Given::<OrderDecider>::events(after)
            .when(record(&release, CompensationOutcome::Done))
            .then(vec![settled(
                &release,
                Purpose::Release,
                CompensationOutcome::Done,
            )]);
    }
}

#[test]
fn a_completed_or_cancelled_order_refuses_further_commands() {
    let cancelled = vec![
        order_captured(&["l1"]),
        OrderEvent::OrderCancelled {
            reason: "x".to_owned(),
            plan: CompensationPlan::default(),
            at: at(1),
        },
    ];
    assert_eq!(progress_of(&cancelled, "l1"), LineProgress::Cancelled);
    Given::<OrderDecider>::events(cancelled)
        .when(request("l1", Step::Reservation))
        .then_err(OrderError::Cancelled);
    Given::<OrderDecider>::events(vec![
        order_captured(&["l1"]),
        OrderEvent::OrderCompleted { at: at(1) },
    ])
    .when(request("l1", Step::Reservation))
    .then_err(OrderError::Completed);
}

#[test]
fn an_order_that_was_never_captured_refuses_everything_else() {
    Given::<OrderDecider>::nothing()
        .when(request("l1", Step::Reservation))
        .then_err(OrderError::NotCaptured);
}

#[test]
fn an_unknown_line_is_refused() {
    Given::<OrderDecider>::events(vec![order_captured(&["l1"])])
        .when(request("l9", Step::Reservation))
        .then_err(OrderError::LineNotFound);
}

fn notify(milestone: crate::notification::Milestone) -> OrderCommand {
    OrderCommand::RequestNotification {
        milestone,
        at: at(50),
    }
}

#[test]
fn a_milestone_is_notified_once() {
    use crate::notification::Milestone;
    let history = play(&["l1"], vec![notify(Milestone::OrderCaptured)]);
    let requested: Vec<&OrderEvent> = history
        .iter()
        .filter(|e| matches!(e, OrderEvent::NotificationRequested { .. }))
        .collect();
    assert_eq!(requested.len(), 1);
    let OrderEvent::NotificationRequested { key, handoff, .. } = requested[0] else {
        unreachable!()
    };
    assert_eq!(
        key,
        "notification:ORDER_CONFIRMATION:o1:customer_primary:captured_v1"
    );
    assert_eq!(handoff.subject.purpose, Purpose::Notify);
    // A second request for the same milestone records nothing.
    Given::<OrderDecider>::events(history.clone())
        .when(notify(Milestone::OrderCaptured))
        .then_nothing();
    // Another milestone is its own notification.
    let state = crate::decider::fold::<OrderDecider, _>(&history);
    let decided = run::<OrderDecider>(state, &notify(Milestone::OrderCompleted))
        .expect("another milestone is recorded");
    assert_eq!(decided.events.len(), 1);
}

#[test]
fn a_cancelled_order_is_never_notified() {
    use crate::notification::Milestone;
    let history = play(
        &["l1"],
        vec![OrderCommand::Cancel {
            reason: "customer changed their mind".to_owned(),
            at: at(45),
        }],
    );
    for milestone in [Milestone::OrderCaptured, Milestone::OrderCompleted] {
        Given::<OrderDecider>::events(history.clone())
            .when(notify(milestone))
            .then_err(OrderError::Cancelled);
    }
}

#[test]
fn a_completed_order_is_notified_of_its_completion() {
    use crate::notification::Milestone;
    let mut commands = provisioned("l1");
    commands.push(request("l1", Step::BillingActivation));
    commands.push(succeed("l1", Step::BillingActivation, 1));
    commands.push(OrderCommand::Complete { at: at(60) });
    commands.push(notify(Milestone::OrderCompleted));
    let history = play(&["l1"], commands);
    assert!(matches!(
        history.last(),
        Some(OrderEvent::NotificationRequested {
            milestone: Milestone::OrderCompleted,
            ..
        })
    ));
}
