//! The fulfillment policy: each reaction, and determinism of the issued commands.

use domain::capability::{Capabilities, Capability};
use domain::decider::{fold, Decider};
use domain::handoff::{HandoffCommand, HandoffEvent};
use domain::idempotency::{derive_id, Purpose};
use domain::ids::{handoff_stream, order_stream, OrderId};
use domain::notification::Milestone;
use domain::order::{OrderCommand, OrderDecider, OrderEvent, Resolution, Step};
use domain::outcome::{FalloutReason, ObservationSource, OutcomeClass};
use domain::policy::{react, IssuedCommand, PolicyCommand, PolicyInput, TriggerEvent};
use domain::quote::{QuoteCommand, QuoteDecider};
use domain::testing::fixtures::*;

static ALL: std::sync::LazyLock<Capabilities> = std::sync::LazyLock::new(Capabilities::all);

fn input(event: TriggerEvent<'_>) -> PolicyInput<'_> {
    PolicyInput {
        event_id: "01EVENT",
        stream_id: "order-o1",
        recorded_at: at(99),
        event,
        capabilities: &ALL,
    }
}

fn order_commands(commands: &[PolicyCommand]) -> Vec<&OrderCommand> {
    commands
        .iter()
        .filter_map(|c| match &c.command {
            IssuedCommand::Order(command) => Some(command),
            IssuedCommand::Handoff(_) => None,
        })
        .collect()
}

#[test]
fn an_accepted_quote_captures_an_order_with_an_id_derived_from_the_event() {
    let accept = QuoteCommand::Accept {
        billing_account: billing_account(),
        price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
        capabilities: domain::capability::Capabilities::all(),
        at: at(10_000),
    };
    let accepted =
        QuoteDecider::decide(&fold::<QuoteDecider, _>(&quote_ready_to_accept()), &accept)
            .expect("the quote is ready");
    let event = accepted.first().expect("one event");
    let commands = react(&input(TriggerEvent::Quote(event)));
    let order_id = OrderId::new(derive_id("01EVENT", "order"));
    let [PolicyCommand {
        stream_id,
        command:
            IssuedCommand::Order(OrderCommand::Capture {
                order_id: id,
                lines,
                evidence,
                ..
            }),
        ..
    }] = commands.as_slice()
    else {
        panic!("expected one capture, got {commands:?}");
    };
    assert_eq!(stream_id, &order_stream(&order_id));
    assert_eq!(id, &order_id);
    assert_eq!(lines, &vec![accepted_line("l1")]);
    assert_eq!(evidence, &quote_evidence());
}

#[test]
fn running_the_policy_twice_on_one_event_issues_identical_commands() {
    let event = order_captured(&["l1", "l2"]);
    let first = react(&input(TriggerEvent::Order(&event)));
    let second = react(&input(TriggerEvent::Order(&event)));
    assert_eq!(first, second);
    let ids: std::collections::BTreeSet<&str> =
        first.iter().map(|c| c.command_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        first.len(),
        "each command of one event has its own id"
    );
}

#[test]
fn a_captured_order_requests_every_line_reservation() {
    let event = order_captured(&["l1", "l2"]);
    let commands = react(&input(TriggerEvent::Order(&event)));
    assert_eq!(
        order_commands(&commands),
        [
            &OrderCommand::RequestStep {
                line_id: line_id("l1"),
                step: Step::Reservation,
                at: at(99)
            },
            &OrderCommand::RequestStep {
                line_id: line_id("l2"),
                step: Step::Reservation,
                at: at(99)
            },
            &OrderCommand::RequestNotification {
                milestone: Milestone::OrderCaptured,
                at: at(99)
            },
            &OrderCommand::RequestConfirmation { at: at(99) },
        ]
    );
    assert!(commands.iter().all(|c| c.stream_id == "order-o1"));
}

#[test]
fn a_requested_step_opens_its_handoff_with_the_business_key() {
    let state = fold::<OrderDecider, _>(&[order_captured(&["l1"])]);
    let command = OrderCommand::RequestStep {
        line_id: line_id("l1"),
        step: Step::Reservation,
        at: at(1),
    };
    let events = OrderDecider::decide(&state, &command).expect("first step");
    let event = events.first().expect("one event");
    let commands = react(&input(TriggerEvent::Order(event)));
    let reserve = subject("l1", Purpose::Reserve, 1);
    let [PolicyCommand {
        stream_id,
        command: IssuedCommand::Handoff(HandoffCommand::Request { subject, .. }),
        ..
    }] = commands.as_slice()
    else {
        panic!("expected one handoff request, got {commands:?}");
    };
    assert_eq!(stream_id, &handoff_stream(&reserve.handoff_id()));
    assert_eq!(subject, &reserve);
}

#[test]
fn a_succeeded_step_requests_the_next_one_and_billing_ends_the_plan() {
    let succeeded = |step| OrderEvent::StepSucceeded {
        line_id: line_id("l1"),
        step,
        handoff_id: subject("l1", Purpose::Reserve, 1).handoff_id(),
        attempt: 1,
        external_reference: None,
        at: at(1),
    };
    let reserved = succeeded(Step::Reservation);
    assert_eq!(
        order_commands(&react(&input(TriggerEvent::Order(&reserved)))),
        [&OrderCommand::RequestStep {
            line_id: line_id("l1"),
            step: Step::Provisioning,
            at: at(99)
        }]
    );
    let provisioned = succeeded(Step::Provisioning);
    assert_eq!(
        order_commands(&react(&input(TriggerEvent::Order(&provisioned)))),
        [&OrderCommand::RequestStep {
            line_id: line_id("l1"),
            step: Step::BillingActivation,
            at: at(99)
        }]
    );
    let billed = succeeded(Step::BillingActivation);
    assert!(react(&input(TriggerEvent::Order(&billed))).is_empty());
}

#[test]
fn the_last_line_settling_completes_the_order() {
    let last = OrderEvent::LineActivated {
        line_id: line_id("l1"),
        lines_open: 0,
        at: at(1),
    };
    assert_eq!(
        order_commands(&react(&input(TriggerEvent::Order(&last)))),
        [&OrderCommand::Complete { at: at(99) }]
    );
    let not_last = OrderEvent::LineActivated {
        line_id: line_id("l1"),
        lines_open: 1,
        at: at(1),
    };
    assert!(react(&input(TriggerEvent::Order(&not_last))).is_empty());
}

#[test]
fn a_handoff_success_is_recorded_on_its_order_line() {
    let reserve = subject("l1", Purpose::Reserve, 1);
    let observation = observation(
        &reserve,
        OutcomeClass::Succeeded,
        ObservationSource::Callback,
    );
    let event = HandoffEvent::HandoffSucceeded {
        subject: reserve.clone(),
        observation,
    };
    let commands = react(&input(TriggerEvent::Handoff(&event)));
    assert_eq!(
        commands.first().map(|c| c.stream_id.clone()),
        Some(order_stream(&order_id()))
    );
    assert_eq!(
        order_commands(&commands),
        [&OrderCommand::RecordStepSucceeded {
            line_id: line_id("l1"),
            handoff_id: reserve.handoff_id(),
            attempt: 1,
            external_reference: Some("ext-1".to_owned()),
            at: at(99),
        }]
    );
}

#[test]
fn a_rejected_handoff_raises_fallout_on_its_order_line() {
    let reserve = subject("l1", Purpose::Reserve, 1);
    let event = HandoffEvent::HandoffRejected {
        subject: reserve.clone(),
        reason: FalloutReason::ValidationRejected,
        observation: observation(
            &reserve,
            OutcomeClass::ValidationRejected,
            ObservationSource::Callback,
        ),
    };
    assert_eq!(
        order_commands(&react(&input(TriggerEvent::Handoff(&event)))),
        [&OrderCommand::RaiseFallout {
            line_id: line_id("l1"),
            handoff_id: reserve.handoff_id(),
            attempt: 1,
            reason: FalloutReason::ValidationRejected,
            at: at(99),
        }]
    );
}

#[test]
fn an_unknown_outcome_of_a_forward_step_issues_nothing() {
    let reserve = subject("l1", Purpose::Reserve, 1);
    let unknown = HandoffEvent::HandoffOutcomeUnknown {
        observation: observation(&reserve, OutcomeClass::Unknown, ObservationSource::Dispatch),
    };
    assert!(react(&input(TriggerEvent::Handoff(&unknown))).is_empty());
}

#[test]
fn local_impossible_fallout_of_a_forward_step_is_raised_on_its_line_for_the_order_to_decide() {
    // A callback that never matched a sent request leaves the line waiting
    // on a closed handoff: the line must fall out, or the order is stuck.
    // When the line has moved on, the order refuses the command.
    let reserve = subject("l1", Purpose::Reserve, 1);
    let impossible = HandoffEvent::HandoffFalloutRaised {
        subject: reserve.clone(),
        reason: FalloutReason::LocalImpossible,
        observation: None,
        at: at(1),
    };
    assert_eq!(
        order_commands(&react(&input(TriggerEvent::Handoff(&impossible)))),
        [&OrderCommand::RaiseFallout {
            line_id: line_id("l1"),
            handoff_id: reserve.handoff_id(),
            attempt: 1,
            reason: FalloutReason::LocalImpossible,
            at: at(99),
        }]
    );
}

#[test]
fn a_compensation_handoff_reports_how_it_ended_to_its_order() {
    let release = subject("l1", Purpose::Release, 1);
    let released = HandoffEvent::HandoffSucceeded {
        subject: release.clone(),
        observation: observation(
            &release,
            OutcomeClass::Succeeded,
            ObservationSource::Callback,
        ),
    };
    let cancel = subject("l1", Purpose::Cancel, 1);
    let refused = HandoffEvent::HandoffFalloutRaised {
        subject: cancel.clone(),
        reason: FalloutReason::RetriesExhausted,
        observation: None,
        at: at(1),
    };
    assert_eq!(
        order_commands(&react(&input(TriggerEvent::Handoff(&released)))),
        [&OrderCommand::RecordCompensation {
            handoff_id: release.handoff_id(),
            outcome: domain::order::CompensationOutcome::Done,
            at: at(99),
        }]
    );
    assert_eq!(
        order_commands(&react(&input(TriggerEvent::Handoff(&refused)))),
        [&OrderCommand::RecordCompensation {
            handoff_id: cancel.handoff_id(),
            outcome: domain::order::CompensationOutcome::Failed {
                reason: FalloutReason::RetriesExhausted
            },
            at: at(99),
        }]
    );
}

#[test]
fn a_resolved_line_fallout_resolves_its_handoff() {
    let handoff_id = subject("l1", Purpose::Reserve, 1).handoff_id();
    let event = OrderEvent::LineFalloutResolved {
        line_id: line_id("l1"),
        step: Step::Reservation,
        handoff_id: handoff_id.clone(),
        resolution: Resolution::NewAttempt,
        operator: "ops".to_owned(),
        at: at(1),
    };
    let commands = react(&input(TriggerEvent::Order(&event)));
    let [PolicyCommand {
        stream_id,
        command: IssuedCommand::Handoff(HandoffCommand::Resolve { operator, .. }),
        ..
    }] = commands.as_slice()
    else {
        panic!("expected one resolve, got {commands:?}");
    };
    assert_eq!(stream_id, &handoff_stream(&handoff_id));
    assert_eq!(operator, "ops");
}

/// An external resolution's note (what the operator checked) reaches the
/// handoff's resolution beside the reference, as `resolveHandoffFallout`
/// records it: it used to keep the reference only.
#[test]
fn an_external_resolution_resolves_its_handoff_with_the_reference_and_the_note() {
    let handoff_id = subject("l1", Purpose::Reserve, 1).handoff_id();
    let event = OrderEvent::LineFalloutResolved {
        line_id: line_id("l1"),
        step: Step::Reservation,
        handoff_id,
        resolution: Resolution::ResolvedExternally {
            reference: "INC-1".to_owned(),
            note: "reserved by hand in the WMS".to_owned(),
        },
        operator: "ops".to_owned(),
        at: at(1),
    };
    let commands = react(&input(TriggerEvent::Order(&event)));
    let [PolicyCommand {
        command: IssuedCommand::Handoff(HandoffCommand::Resolve { note, .. }),
        ..
    }] = commands.as_slice()
    else {
        panic!("expected one resolve, got {commands:?}");
    };
    assert_eq!(
        note,
        "resolved externally: INC-1: reserved by hand in the WMS"
    );
}

#[test]
fn a_cancelled_order_opens_its_compensation_handoffs() {
    let history = [order_captured(&["l1"])];
    let mut state = fold::<OrderDecider, _>(&history);
    let mut last = Vec::new();
    for command in [
        OrderCommand::RequestStep {
            line_id: line_id("l1"),
            step: Step::Reservation,
            at: at(1),
        },
        OrderCommand::Cancel {
            reason: "changed mind".to_owned(),
            at: at(2),
        },
    ] {
        let decision = domain::run::<OrderDecider>(state, &command).expect("accepted");
        state = decision.state;
        last = decision.events;
    }
    // The cancellation, the line's plan, the withdrawal of its step.
    let [cancelled, planned, withdrawal] = last.as_slice() else {
        panic!("expected the cancellation, one plan and one withdrawal, got {last:?}");
    };
    assert!(react(&input(TriggerEvent::Order(cancelled))).is_empty());
    let commands = react(&input(TriggerEvent::Order(planned)));
    let release = subject("l1", Purpose::Release, 1);
    assert_eq!(
        commands
            .iter()
            .map(|c| c.stream_id.clone())
            .collect::<Vec<_>>(),
        [handoff_stream(&release.handoff_id())]
    );
    // The reservation was in flight: its handoff is withdrawn, so no send
    // of it follows the cancellation.
    let reserve = subject("l1", Purpose::Reserve, 1);
    let commands = react(&input(TriggerEvent::Order(withdrawal)));
    let [PolicyCommand {
        stream_id,
        command: IssuedCommand::Handoff(HandoffCommand::Withdraw { at: when, .. }),
        ..
    }] = commands.as_slice()
    else {
        panic!("expected one withdrawal, got {commands:?}");
    };
    assert_eq!(stream_id, &handoff_stream(&reserve.handoff_id()));
    assert_eq!(*when, at(99));
}

/// A plan opens each line's first compensation only; the next one is
/// opened from the order's `CompensationRequested`, and an operator's close
/// of a failed compensation's case reaches the order (ADR 0064).
#[test]
fn compensations_open_one_at_a_time_and_a_closed_case_lets_the_next_go() {
    let request = |line: &str, purpose| {
        domain::handoff::HandoffRequest::new(subject(line, purpose, 1), Default::default())
    };
    let plan = domain::order::CompensationPlan {
        compensations: vec![
            request("l1", Purpose::Cancel),
            request("l1", Purpose::Release),
            request("l2", Purpose::Release),
        ],
        uncompensated: Vec::new(),
    };
    let opened = |event: &OrderEvent| -> Vec<String> {
        react(&input(TriggerEvent::Order(event)))
            .iter()
            .filter(|c| {
                matches!(
                    c.command,
                    IssuedCommand::Handoff(HandoffCommand::Request { .. })
                )
            })
            .map(|c| c.stream_id.clone())
            .collect()
    };
    let stream = |line: &str, purpose| handoff_stream(&subject(line, purpose, 1).handoff_id());
    let first = [
        stream("l1", Purpose::Cancel),
        stream("l2", Purpose::Release),
    ];
    for event in [
        OrderEvent::CancellationPlanned {
            line_id: line_id("l1"),
            plan: plan.clone(),
            at: at(1),
        },
        OrderEvent::OrderCancelled {
            reason: "x".to_owned(),
            plan: plan.clone(),
            at: at(1),
        },
        OrderEvent::LineCancelled {
            line_id: line_id("l1"),
            plan: plan.clone(),
            lines_open: 1,
            at: at(1),
        },
    ] {
        assert_eq!(opened(&event), first, "{event:?}");
    }
    let next = OrderEvent::CompensationRequested {
        line_id: line_id("l1"),
        handoff: request("l1", Purpose::Release),
        at: at(2),
    };
    assert_eq!(opened(&next), [stream("l1", Purpose::Release)]);

    // An operator closes a failed compensation's case: the order hears of it.
    let cancel = subject("l1", Purpose::Cancel, 1);
    let closed = |subject| HandoffEvent::HandoffResolved {
        operator: "ops".to_owned(),
        note: "cancelled by hand".to_owned(),
        at: at(3),
        subject,
    };
    assert_eq!(
        order_commands(&react(&input(TriggerEvent::Handoff(&closed(Some(
            cancel.clone()
        )))))),
        [&OrderCommand::RecordCompensation {
            handoff_id: cancel.handoff_id(),
            outcome: domain::order::CompensationOutcome::Closed,
            at: at(99),
        }]
    );
    // A forward step's close, or one stored before it named its subject,
    // issues nothing.
    let reserve = subject("l1", Purpose::Reserve, 1);
    assert!(react(&input(TriggerEvent::Handoff(&closed(Some(reserve))))).is_empty());
    assert!(react(&input(TriggerEvent::Handoff(&closed(None)))).is_empty());
}

#[test]
fn milestones_are_recorded_on_the_order_and_sent_only_from_the_committed_record() {
    let completed = OrderEvent::OrderCompleted { at: at(5) };
    let commands = react(&input(TriggerEvent::Order(&completed)));
    assert_eq!(
        order_commands(&commands),
        [&OrderCommand::RequestNotification {
            milestone: Milestone::OrderCompleted,
            at: at(99)
        }]
    );
    let fallout = OrderEvent::LineFalloutRaised {
        line_id: line_id("l1"),
        step: Step::Provisioning,
        handoff_id: subject("l1", Purpose::Activate, 1).handoff_id(),
        attempt: 1,
        reason: FalloutReason::SlaBreach,
        at: at(6),
    };
    let off = Capabilities::all().without(Capability::NotificationSendEmail);
    let quiet = PolicyInput {
        capabilities: &off,
        ..input(TriggerEvent::Order(&fallout))
    };
    assert!(react(&quiet).is_empty(), "no notification while disabled");
    let commands = react(&input(TriggerEvent::Order(&fallout)));
    assert!(matches!(
        order_commands(&commands)[..],
        [OrderCommand::RequestNotification {
            milestone: Milestone::LineNeedsAttention { .. },
            ..
        }]
    ));
    // The committed record opens the handoff; its outcome concerns no line.
    let milestone = Milestone::OrderCaptured;
    let handoff = domain::notification::handoff(
        &tenant(),
        &order_id(),
        &domain::ids::CustomerId::new("c1"),
        &milestone,
    );
    let requested = OrderEvent::NotificationRequested {
        key: domain::notification::notification_key(&order_id(), &milestone),
        handoff: handoff.clone(),
        milestone,
        at: at(7),
    };
    let commands = react(&input(TriggerEvent::Order(&requested)));
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].stream_id, handoff_stream(&handoff.handoff_id));
    for event in [
        HandoffEvent::HandoffSucceeded {
            subject: handoff.subject.clone(),
            observation: observation(
                &handoff.subject,
                OutcomeClass::Succeeded,
                ObservationSource::Dispatch,
            ),
        },
        HandoffEvent::HandoffRejected {
            subject: handoff.subject.clone(),
            reason: FalloutReason::BusinessRejected,
            observation: observation(
                &handoff.subject,
                OutcomeClass::BusinessRejected,
                ObservationSource::Dispatch,
            ),
        },
    ] {
        assert!(react(&input(TriggerEvent::Handoff(&event))).is_empty());
    }
}

#[test]
fn a_confirmation_is_recorded_on_capture_and_rendered_only_from_the_committed_record() {
    let captured = order_captured(&["l1"]);
    let off = Capabilities::all().without(Capability::DocumentGenerateOrderConfirmation);
    let without = PolicyInput {
        capabilities: &off,
        ..input(TriggerEvent::Order(&captured))
    };
    assert!(
        !order_commands(&react(&without))
            .iter()
            .any(|c| matches!(c, OrderCommand::RequestConfirmation { .. })),
        "no confirmation while disabled"
    );
    // The order records it once, and never for a cancelled order.
    let state = fold::<OrderDecider, _>(std::slice::from_ref(&captured));
    let request = OrderCommand::RequestConfirmation { at: at(2) };
    let events = OrderDecider::decide(&state, &request).expect("first request");
    let [requested @ OrderEvent::ConfirmationRequested { handoff, .. }] = events.as_slice() else {
        panic!("expected one ConfirmationRequested, got {events:?}");
    };
    let again = fold::<OrderDecider, _>(&[captured.clone(), requested.clone()]);
    assert_eq!(OrderDecider::decide(&again, &request), Ok(Vec::new()));
    let cancelled = OrderDecider::decide(
        &state,
        &OrderCommand::Cancel {
            reason: "customer withdrew".to_owned(),
            at: at(3),
        },
    )
    .expect("cancel");
    let mut history = vec![captured.clone()];
    history.extend(cancelled);
    let cancelled = fold::<OrderDecider, _>(&history);
    assert_eq!(
        OrderDecider::decide(&cancelled, &request),
        Err(domain::order::OrderError::Cancelled)
    );
    // The committed record opens the handoff; its outcome concerns no line.
    let commands = react(&input(TriggerEvent::Order(requested)));
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].stream_id, handoff_stream(&handoff.handoff_id));
    assert_eq!(handoff.subject.purpose, Purpose::GenerateDocument);
    let done = HandoffEvent::HandoffSucceeded {
        subject: handoff.subject.clone(),
        observation: observation(
            &handoff.subject,
            OutcomeClass::Succeeded,
            ObservationSource::Dispatch,
        ),
    };
    assert!(react(&input(TriggerEvent::Handoff(&done))).is_empty());
}
