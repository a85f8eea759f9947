//! One test per handoff transition and per outcome class, named as the rule reads.

use super::*;
use crate::idempotency::Purpose;
use crate::ids::Timestamp;
use crate::outcome::{
    FalloutReason, Observation, ObservationSource as Source, OutcomeClass as Class,
};
use crate::testing::fixtures::*;
use crate::testing::Given;

fn reserve() -> HandoffSubject {
    subject("l1", Purpose::Reserve, 1)
}

fn seen(class: Class, source: Source) -> Observation {
    observation(&reserve(), class, source)
}

fn observe(class: Class, source: Source) -> HandoffCommand {
    HandoffCommand::Observe {
        observation: seen(class, source),
        retry_policy: retry_policy(),
    }
}

fn sent() -> Vec<HandoffEvent> {
    vec![
        handoff_requested(&reserve()),
        HandoffEvent::HandoffSent {
            send: 1,
            at: at(1_000),
        },
    ]
}

fn after(events: Vec<HandoffEvent>, more: HandoffEvent) -> Vec<HandoffEvent> {
    let mut events = events;
    events.push(more);
    events
}

fn unknown() -> Vec<HandoffEvent> {
    after(
        sent(),
        HandoffEvent::HandoffOutcomeUnknown {
            observation: seen(Class::Unknown, Source::Dispatch),
        },
    )
}

fn succeeded() -> Vec<HandoffEvent> {
    after(
        sent(),
        HandoffEvent::HandoffSucceeded {
            subject: reserve(),
            observation: seen(Class::Succeeded, Source::Callback),
        },
    )
}

fn rejected() -> Vec<HandoffEvent> {
    after(
        sent(),
        HandoffEvent::HandoffRejected {
            subject: reserve(),
            reason: FalloutReason::BusinessRejected,
            observation: seen(Class::BusinessRejected, Source::Callback),
        },
    )
}

fn fallout(reason: FalloutReason, observation: Option<Observation>, at: Timestamp) -> HandoffEvent {
    HandoffEvent::HandoffFalloutRaised {
        subject: reserve(),
        reason,
        observation,
        at,
    }
}

fn status_after(events: &[HandoffEvent]) -> HandoffStatus {
    match crate::decider::fold::<HandoffDecider, _>(events) {
        HandoffState::Open(handoff) => handoff.status,
        HandoffState::Empty => panic!("handoff should exist"),
    }
}

/// The handoff keeps the request it sends: a probe saw provisioning
/// receive `<redacted>` for the line options `wildcardDns` (it holds
/// "card") and `sessionTimeoutMin`, and a target the literal `<redacted>`
/// for a credential it needed, because the snapshot kept was the shown
/// one. Where a request is shown (the handoff's request, call evidence),
/// it is redacted (ADR 0065).
#[test]
fn a_request_records_the_business_key_the_request_hash_and_the_request_as_sent() {
    let mut sent = request();
    for (name, value) in [
        ("api_token", "s3cr3t"),
        ("option.wildcardDns", "enabled"),
        ("option.sessionTimeoutMin", "30"),
    ] {
        sent.fields.insert(name.to_owned(), value.to_owned());
    }
    let state = Given::<HandoffDecider>::nothing()
        .when(HandoffCommand::Request {
            subject: reserve(),
            request: sent.clone(),
            at: T0,
        })
        .then(vec![HandoffEvent::HandoffRequested {
            handoff_id: reserve().handoff_id(),
            subject: reserve(),
            idempotency_key: "t1:o1:l1:inventory:reserve:1".to_owned(),
            request_hash: sent.hash(),
            request_snapshot: sent.clone(),
            at: T0,
        }]);
    let HandoffState::Open(handoff) = state else {
        panic!("opened")
    };
    assert_eq!(handoff.request_snapshot, sent, "what the dispatcher sends");
    assert_eq!(
        sent.redacted().fields.get("api_token").map(String::as_str),
        Some(REDACTED),
        "what is shown"
    );
}

#[test]
fn the_same_request_again_changes_nothing() {
    Given::<HandoffDecider>::events(sent())
        .when(HandoffCommand::Request {
            subject: reserve(),
            request: request(),
            at: at(9),
        })
        .then_nothing();
}

#[test]
fn the_same_key_with_another_request_is_an_idempotency_conflict() {
    let mut other = request();
    other.fields.insert("quantity".to_owned(), "2".to_owned());
    Given::<HandoffDecider>::events(sent())
        .when(HandoffCommand::Request {
            subject: reserve(),
            request: other,
            at: at(9),
        })
        .then_err(HandoffError::IdempotencyConflict);
}

#[test]
fn a_request_for_another_subject_is_refused_on_this_stream() {
    Given::<HandoffDecider>::events(sent())
        .when(HandoffCommand::Request {
            subject: subject("l1", Purpose::Reserve, 2),
            request: request(),
            at: T0,
        })
        .then_err(HandoffError::KeyMismatch);
}

#[test]
fn attempts_are_numbered_from_one() {
    Given::<HandoffDecider>::nothing()
        .when(HandoffCommand::Request {
            subject: subject("l1", Purpose::Reserve, 0),
            request: request(),
            at: T0,
        })
        .then_err(HandoffError::InvalidAttempt);
}

#[test]
fn a_requested_handoff_is_sent_once_recorded() {
    Given::<HandoffDecider>::events(vec![handoff_requested(&reserve())])
        .when(HandoffCommand::RecordDispatch { at: at(1_000) })
        .then(vec![HandoffEvent::HandoffSent {
            send: 1,
            at: at(1_000),
        }]);
}

#[test]
fn a_handoff_in_flight_is_not_sent_twice() {
    Given::<HandoffDecider>::events(sent())
        .when(HandoffCommand::RecordDispatch { at: at(1_500) })
        .then_err(HandoffError::AlreadyInFlight);
}

#[test]
fn an_outcome_before_the_send_is_recorded_is_refused() {
    Given::<HandoffDecider>::events(vec![handoff_requested(&reserve())])
        .when(observe(Class::Succeeded, Source::Callback))
        .then_err(HandoffError::NotDispatched);
}

#[test]
fn an_outcome_for_another_handoff_or_attempt_is_refused() {
    let other_handoff = Observation {
        handoff_id: crate::ids::HandoffId::new("h-other"),
        ..seen(Class::Succeeded, Source::Callback)
    };
    Given::<HandoffDecider>::events(sent())
        .when(HandoffCommand::Observe {
            observation: other_handoff,
            retry_policy: retry_policy(),
        })
        .then_err(HandoffError::ObservationForAnotherHandoff);
    let other_attempt = Observation {
        attempt: 2,
        ..seen(Class::Succeeded, Source::Callback)
    };
    Given::<HandoffDecider>::events(sent())
        .when(HandoffCommand::Observe {
            observation: other_attempt,
            retry_policy: retry_policy(),
        })
        .then_err(HandoffError::ObservationForAnotherAttempt);
}

#[test]
fn a_success_completes_a_sent_handoff() {
    Given::<HandoffDecider>::events(sent())
        .when(observe(Class::Succeeded, Source::Dispatch))
        .then(vec![HandoffEvent::HandoffSucceeded {
            subject: reserve(),
            observation: seen(Class::Succeeded, Source::Dispatch),
        }]);
}

#[test]
fn an_acknowledgement_waits_for_the_callback_and_a_repeated_one_changes_nothing() {
    let accepted = Given::<HandoffDecider>::events(sent())
        .when(observe(Class::Accepted, Source::Dispatch))
        .then(vec![HandoffEvent::HandoffAccepted {
            observation: seen(Class::Accepted, Source::Dispatch),
        }]);
    Given::<HandoffDecider>::state(accepted.clone())
        .when(observe(Class::Accepted, Source::Callback))
        .then_nothing();
    Given::<HandoffDecider>::state(accepted)
        .when(observe(Class::Succeeded, Source::Callback))
        .then(vec![HandoffEvent::HandoffSucceeded {
            subject: reserve(),
            observation: seen(Class::Succeeded, Source::Callback),
        }]);
}

#[test]
fn a_rejection_ends_the_handoff_as_rejected() {
    for (class, reason) in [
        (Class::BusinessRejected, FalloutReason::BusinessRejected),
        (Class::ValidationRejected, FalloutReason::ValidationRejected),
    ] {
        Given::<HandoffDecider>::events(sent())
            .when(observe(class, Source::Callback))
            .then(vec![HandoffEvent::HandoffRejected {
                subject: reserve(),
                reason,
                observation: seen(class, Source::Callback),
            }]);
    }
}

#[test]
fn a_timeout_after_sending_is_unknown_never_a_failure() {
    Given::<HandoffDecider>::events(sent())
        .when(observe(Class::Unknown, Source::Dispatch))
        .then(vec![HandoffEvent::HandoffOutcomeUnknown {
            observation: seen(Class::Unknown, Source::Dispatch),
        }]);
}

#[test]
fn an_unknown_handoff_is_not_sent_again_before_reconciliation() {
    Given::<HandoffDecider>::events(unknown())
        .when(HandoffCommand::RecordDispatch { at: at(5_000) })
        .then_err(HandoffError::UnknownAwaitsReconciliation);
}

#[test]
fn an_unknown_handoff_moves_only_on_a_reconciliation_observation() {
    for source in [Source::Dispatch, Source::Callback] {
        Given::<HandoffDecider>::events(unknown())
            .when(observe(Class::Succeeded, source))
            .then_err(HandoffError::UnknownAwaitsReconciliation);
    }
    Given::<HandoffDecider>::events(unknown())
        .when(observe(Class::Succeeded, Source::Reconciliation))
        .then(vec![HandoffEvent::HandoffSucceeded {
            subject: reserve(),
            observation: seen(Class::Succeeded, Source::Reconciliation),
        }]);
}

#[test]
fn an_inconclusive_reconciliation_keeps_the_handoff_unknown_and_keeps_the_evidence() {
    let state = Given::<HandoffDecider>::events(unknown())
        .when(observe(Class::Unknown, Source::Reconciliation))
        .then(vec![HandoffEvent::HandoffObservationNoted {
            observation: seen(Class::Unknown, Source::Reconciliation),
        }]);
    assert!(matches!(state, HandoffState::Open(ref h) if h.status == HandoffStatus::Unknown));
}

#[test]
fn a_reconciliation_that_finds_nothing_arrived_schedules_a_resend_with_the_same_key() {
    let state = Given::<HandoffDecider>::events(unknown())
        .when(observe(Class::TechnicalRetryable, Source::Reconciliation))
        .then(vec![HandoffEvent::HandoffRetryScheduled {
            retry: 1,
            due_at: at(3_000),
            observation: seen(Class::TechnicalRetryable, Source::Reconciliation),
        }]);
    let state = Given::<HandoffDecider>::state(state)
        .when(HandoffCommand::RecordDispatch { at: at(3_000) })
        .then(vec![HandoffEvent::HandoffSent {
            send: 2,
            at: at(3_000),
        }]);
    assert!(
        matches!(state, HandoffState::Open(ref h) if h.idempotency_key == reserve().idempotency_key())
    );
}

#[test]
fn a_technical_failure_schedules_a_retry_after_capped_exponential_backoff() {
    let history = vec![
        handoff_requested(&reserve()),
        HandoffEvent::HandoffSent {
            send: 1,
            at: at(1_000),
        },
        HandoffEvent::HandoffRetryScheduled {
            retry: 1,
            due_at: at(3_000),
            observation: seen(Class::TechnicalRetryable, Source::Dispatch),
        },
        HandoffEvent::HandoffSent {
            send: 2,
            at: at(3_000),
        },
    ];
    Given::<HandoffDecider>::events(history)
        .when(observe(Class::TechnicalRetryable, Source::Dispatch))
        .then(vec![HandoffEvent::HandoffRetryScheduled {
            retry: 2,
            due_at: at(2_000 + 2_000),
            observation: seen(Class::TechnicalRetryable, Source::Dispatch),
        }]);
}

#[test]
fn a_retry_is_not_sent_before_it_is_due() {
    let history = after(
        sent(),
        HandoffEvent::HandoffRetryScheduled {
            retry: 1,
            due_at: at(3_000),
            observation: seen(Class::TechnicalRetryable, Source::Dispatch),
        },
    );
    Given::<HandoffDecider>::events(history)
        .when(HandoffCommand::RecordDispatch { at: at(2_999) })
        .then_err(HandoffError::RetryNotDue);
}

#[test]
fn retries_that_run_out_raise_fallout() {
    let policy = RetryPolicy {
        max_attempts: 1,
        ..retry_policy()
    };
    let failure = seen(Class::TechnicalRetryable, Source::Dispatch);
    Given::<HandoffDecider>::events(sent())
        .when(HandoffCommand::Observe {
            observation: failure.clone(),
            retry_policy: policy,
        })
        .then(vec![fallout(
            FalloutReason::RetriesExhausted,
            Some(failure),
            at(2_000),
        )]);
}

#[test]
fn every_failure_class_that_needs_a_human_raises_fallout_with_its_reason() {
    for (class, reason) in [
        (Class::DuplicateConflict, FalloutReason::DuplicateConflict),
        (
            Class::SecurityConfiguration,
            FalloutReason::SecurityConfiguration,
        ),
        (Class::SchemaMismatch, FalloutReason::SchemaMismatch),
        (Class::Unclassified, FalloutReason::Unclassified),
    ] {
        Given::<HandoffDecider>::events(sent())
            .when(observe(class, Source::Callback))
            .then(vec![fallout(
                reason,
                Some(seen(class, Source::Callback)),
                at(2_000),
            )]);
    }
}

#[test]
fn an_idempotent_success_from_the_target_counts_as_success() {
    Given::<HandoffDecider>::events(sent())
        .when(observe(Class::IdempotentSuccess, Source::Dispatch))
        .then(vec![HandoffEvent::HandoffSucceeded {
            subject: reserve(),
            observation: seen(Class::IdempotentSuccess, Source::Dispatch),
        }]);
}

#[test]
fn each_outcome_class_moves_a_sent_handoff_to_the_status_of_its_impact() {
    let table = [
        (Class::Succeeded, HandoffStatus::Succeeded),
        (Class::Accepted, HandoffStatus::Accepted),
        (Class::BusinessRejected, HandoffStatus::Rejected),
        (Class::ValidationRejected, HandoffStatus::Rejected),
        (Class::IdempotentSuccess, HandoffStatus::Succeeded),
        (
            Class::DuplicateConflict,
            HandoffStatus::Fallout {
                reason: FalloutReason::DuplicateConflict,
            },
        ),
        (Class::Unknown, HandoffStatus::Unknown),
        (
            Class::TechnicalRetryable,
            HandoffStatus::RetryScheduled { due_at: at(3_000) },
        ),
        (
            Class::SecurityConfiguration,
            HandoffStatus::Fallout {
                reason: FalloutReason::SecurityConfiguration,
            },
        ),
        (
            Class::SchemaMismatch,
            HandoffStatus::Fallout {
                reason: FalloutReason::SchemaMismatch,
            },
        ),
        (
            Class::Unclassified,
            HandoffStatus::Fallout {
                reason: FalloutReason::Unclassified,
            },
        ),
    ];
    for (class, status) in table {
        let events = Given::<HandoffDecider>::events(sent())
            .when(observe(class, Source::Dispatch))
            .result()
            .expect("a sent handoff accepts every class");
        let mut history = sent();
        history.extend(events);
        assert_eq!(status_after(&history), status, "{class:?}");
    }
}

#[test]
fn raw_external_codes_are_evidence_and_never_state() {
    let mut other_codes = seen(Class::Succeeded, Source::Callback);
    other_codes.raw_code = Some("ERR2".to_owned());
    other_codes.raw_label = Some("vendor specific".to_owned());
    let with_codes = after(
        sent(),
        HandoffEvent::HandoffSucceeded {
            subject: reserve(),
            observation: other_codes,
        },
    );
    assert_eq!(
        crate::decider::fold::<HandoffDecider, _>(&with_codes),
        crate::decider::fold::<HandoffDecider, _>(&succeeded())
    );
}

#[test]
fn a_duplicate_outcome_is_accepted_and_changes_nothing() {
    Given::<HandoffDecider>::events(succeeded())
        .when(observe(Class::Succeeded, Source::Callback))
        .then_nothing();
    Given::<HandoffDecider>::events(succeeded())
        .when(observe(Class::IdempotentSuccess, Source::Reconciliation))
        .then_nothing();
    Given::<HandoffDecider>::events(rejected())
        .when(observe(Class::ValidationRejected, Source::Callback))
        .then_nothing();
}

#[test]
fn an_outcome_that_contradicts_a_terminal_one_raises_local_impossible_fallout() {
    let contradiction = seen(Class::BusinessRejected, Source::Callback);
    Given::<HandoffDecider>::events(succeeded())
        .when(observe(Class::BusinessRejected, Source::Callback))
        .then(vec![fallout(
            FalloutReason::LocalImpossible,
            Some(contradiction),
            at(2_000),
        )]);
    Given::<HandoffDecider>::events(rejected())
        .when(observe(Class::Succeeded, Source::Reconciliation))
        .then(vec![fallout(
            FalloutReason::LocalImpossible,
            Some(seen(Class::Succeeded, Source::Reconciliation)),
            at(2_000),
        )]);
}

#[test]
fn a_late_acknowledgement_or_transient_error_after_the_outcome_changes_nothing() {
    for class in [Class::Accepted, Class::Unknown, Class::TechnicalRetryable] {
        Given::<HandoffDecider>::events(succeeded())
            .when(observe(class, Source::Callback))
            .then_nothing();
    }
}

#[test]
fn outcomes_after_fallout_are_noted_as_evidence_only() {
    let history = after(
        sent(),
        fallout(FalloutReason::SchemaMismatch, None, at(1_500)),
    );
    Given::<HandoffDecider>::events(history)
        .when(observe(Class::Succeeded, Source::Callback))
        .then(vec![HandoffEvent::HandoffObservationNoted {
            observation: seen(Class::Succeeded, Source::Callback),
        }]);
}

/// A success after a fallout that says the step took no effect (technical
/// retries ran out, credentials refused) proves the opposite: the fallout
/// is raised again as "local impossible", which may have taken effect, so
/// no new attempt doubles it and a cancellation compensates it. A failure
/// after such a fallout, or a success after one that already allows for
/// an effect, is evidence only.
#[test]
fn a_success_after_a_fallout_without_effect_raises_it_again_as_local_impossible() {
    for reason in [
        FalloutReason::RetriesExhausted,
        FalloutReason::SecurityConfiguration,
    ] {
        let history = after(sent(), fallout(reason, None, at(1_500)));
        for class in [Class::Succeeded, Class::IdempotentSuccess] {
            Given::<HandoffDecider>::events(history.clone())
                .when(observe(class, Source::Callback))
                .then(vec![fallout(
                    FalloutReason::LocalImpossible,
                    Some(seen(class, Source::Callback)),
                    at(2_000),
                )]);
        }
        Given::<HandoffDecider>::events(history)
            .when(observe(Class::BusinessRejected, Source::Callback))
            .then(vec![HandoffEvent::HandoffObservationNoted {
                observation: seen(Class::BusinessRejected, Source::Callback),
            }]);
    }
}

/// What an external system says is kept as evidence, bounded and without
/// control or invisible characters: a 60 KB reference full of them no
/// longer reaches the event, the order and every fallout page verbatim.
#[test]
fn an_outcomes_words_are_recorded_bounded_and_clean() {
    let mut hostile = seen(Class::Succeeded, Source::Callback);
    hostile.external_reference = Some(format!("R\u{202E}\0{}", "x\n".repeat(30_000)));
    hostile.raw_code = Some("S".repeat(30_000));
    let events = Given::<HandoffDecider>::events(sent())
        .when(HandoffCommand::Observe {
            observation: hostile,
            retry_policy: retry_policy(),
        })
        .result()
        .expect("a success is recorded");
    let [HandoffEvent::HandoffSucceeded { observation, .. }] = events.as_slice() else {
        panic!("{events:?}");
    };
    for text in [&observation.external_reference, &observation.raw_code] {
        let text = text.as_deref().expect("kept");
        assert!(
            text.len() <= crate::text::MAX_EVIDENCE_BYTES,
            "{}",
            text.len()
        );
        assert!(!text
            .chars()
            .any(|c| c.is_control() || crate::text::is_hidden(c)));
    }
    assert!(observation
        .external_reference
        .as_deref()
        .expect("kept")
        .starts_with("R\u{FFFD}\u{FFFD}x"));
}

#[test]
fn an_sla_breach_raises_fallout_on_a_pending_handoff() {
    Given::<HandoffDecider>::events(sent())
        .when(HandoffCommand::DeclareSlaBreach { at: at(9_000) })
        .then(vec![fallout(FalloutReason::SlaBreach, None, at(9_000))]);
}

#[test]
fn a_callback_left_unmatched_past_parking_raises_local_impossible_fallout_with_its_evidence() {
    let callback = seen(Class::Succeeded, Source::Callback);
    Given::<HandoffDecider>::events(vec![handoff_requested(&reserve())])
        .when(HandoffCommand::CallbackUnmatched {
            observation: callback.clone(),
            at: at(9_000),
        })
        .then(vec![fallout(
            FalloutReason::LocalImpossible,
            Some(callback.clone()),
            at(9_000),
        )]);
    Given::<HandoffDecider>::events(succeeded())
        .when(HandoffCommand::CallbackUnmatched {
            observation: callback,
            at: at(9_000),
        })
        .then_err(HandoffError::Closed);
}

#[test]
fn an_sla_breach_on_an_unknown_handoff_waits_for_reconciliation() {
    Given::<HandoffDecider>::events(unknown())
        .when(HandoffCommand::DeclareSlaBreach { at: at(9_000) })
        .then_err(HandoffError::UnknownAwaitsReconciliation);
}

#[test]
fn a_closed_handoff_is_neither_sent_nor_escalated() {
    Given::<HandoffDecider>::events(succeeded())
        .when(HandoffCommand::DeclareSlaBreach { at: at(9_000) })
        .then_err(HandoffError::Closed);
    Given::<HandoffDecider>::events(succeeded())
        .when(HandoffCommand::RecordDispatch { at: at(9_000) })
        .then_err(HandoffError::Closed);
}

#[test]
fn an_operator_resolves_a_rejected_or_fallen_out_handoff_whose_case_is_its_own() {
    let resolve = || HandoffCommand::ResolveItsOwnCase {
        operator: "ops".to_owned(),
        note: "fixed".to_owned(),
        at: at(9),
    };
    let resolved = |subject: &HandoffSubject| HandoffEvent::HandoffResolved {
        operator: "ops".to_owned(),
        note: "fixed".to_owned(),
        at: at(9),
        subject: Some(subject.clone()),
    };
    // A compensation's case is the handoff's own; its close names the
    // subject, so the order process can route it to the order.
    let release = subject("l1", Purpose::Release, 1);
    let release_rejected = vec![
        handoff_requested(&release),
        HandoffEvent::HandoffSent {
            send: 1,
            at: at(1_000),
        },
        HandoffEvent::HandoffRejected {
            subject: release.clone(),
            reason: FalloutReason::BusinessRejected,
            observation: observation(&release, Class::BusinessRejected, Source::Callback),
        },
    ];
    let state = Given::<HandoffDecider>::events(release_rejected)
        .when(resolve())
        .then(vec![resolved(&release)]);
    assert!(HandoffDecider::is_terminal(&state));
    // So is a forward step's local impossibility (never raised on the line).
    Given::<HandoffDecider>::events(after(
        sent(),
        fallout(FalloutReason::LocalImpossible, None, at(5)),
    ))
    .when(resolve())
    .then(vec![resolved(&reserve())]);
    Given::<HandoffDecider>::events(succeeded())
        .when(resolve())
        .then_err(HandoffError::NotInFallout);
}

/// A forward step's rejection or fallout is its line's case, raised on the
/// order after the handoff's own event: a probe closed it on the handoff
/// in that window, which left the line in fallout under a closed case,
/// out of the queue and the dashboard.
#[test]
fn a_forward_steps_case_is_refused_on_the_handoff_as_its_lines() {
    let resolve = HandoffCommand::ResolveItsOwnCase {
        operator: "ops".to_owned(),
        note: "fixed".to_owned(),
        at: at(9),
    };
    let lines = HandoffError::LineHoldsFallout {
        order_id: reserve().order_id,
        line_id: reserve().line_id,
    };
    Given::<HandoffDecider>::events(rejected())
        .when(resolve.clone())
        .then_err(lines.clone());
    // The order process closes it once the line was resolved.
    Given::<HandoffDecider>::events(rejected())
        .when(HandoffCommand::Resolve {
            operator: "ops".to_owned(),
            note: "order line retried under a new attempt".to_owned(),
            at: at(9),
        })
        .then(vec![HandoffEvent::HandoffResolved {
            operator: "ops".to_owned(),
            note: "order line retried under a new attempt".to_owned(),
            at: at(9),
            subject: Some(reserve()),
        }]);
    for reason in [
        FalloutReason::SlaBreach,
        FalloutReason::RetriesExhausted,
        FalloutReason::Unclassified,
    ] {
        Given::<HandoffDecider>::events(after(sent(), fallout(reason, None, at(5))))
            .when(resolve.clone())
            .then_err(lines.clone());
    }
}

fn withdraw() -> HandoffCommand {
    HandoffCommand::Withdraw {
        reason: "order cancelled".to_owned(),
        at: at(7_000),
    }
}

fn withdrawn() -> HandoffEvent {
    HandoffEvent::HandoffWithdrawn {
        reason: "order cancelled".to_owned(),
        at: at(7_000),
    }
}

#[test]
fn a_pending_handoff_is_withdrawn_and_never_sent_again() {
    let retry_scheduled = after(
        sent(),
        HandoffEvent::HandoffRetryScheduled {
            retry: 1,
            due_at: at(3_000),
            observation: seen(Class::TechnicalRetryable, Source::Dispatch),
        },
    );
    let accepted = after(
        sent(),
        HandoffEvent::HandoffAccepted {
            observation: seen(Class::Accepted, Source::Dispatch),
        },
    );
    for pending in [
        vec![handoff_requested(&reserve())],
        sent(),
        accepted,
        unknown(),
        retry_scheduled,
    ] {
        let state = Given::<HandoffDecider>::events(pending.clone())
            .when(withdraw())
            .then(vec![withdrawn()]);
        assert!(HandoffDecider::is_terminal(&state));
        let history = after(pending, withdrawn());
        assert_eq!(status_after(&history), HandoffStatus::Withdrawn);
        // The resend that was due, and a resend a reconciliation asks for,
        // are refused; a second withdrawal records nothing.
        Given::<HandoffDecider>::events(history.clone())
            .when(HandoffCommand::RecordDispatch { at: at(9_000) })
            .then_err(HandoffError::Closed);
        Given::<HandoffDecider>::events(history.clone())
            .when(HandoffCommand::DeclareSlaBreach { at: at(9_000) })
            .then_err(HandoffError::Closed);
        Given::<HandoffDecider>::events(history.clone())
            .when(withdraw())
            .then(vec![]);
        // A late outcome is evidence only: no success, no fallout.
        Given::<HandoffDecider>::events(history)
            .when(observe(Class::Succeeded, Source::Reconciliation))
            .then(vec![HandoffEvent::HandoffObservationNoted {
                observation: seen(Class::Succeeded, Source::Reconciliation),
            }]);
    }
}

/// A closed handoff notes a late outcome once: the same outcome again
/// (an external system that sends its callback under new message ids)
/// notes nothing, and past [`MAX_LATE_OBSERVATIONS`] distinct ones
/// nothing more is noted. Each used to add an event for ever.
#[test]
fn a_closed_handoff_notes_each_late_outcome_once_and_a_bounded_number_in_all() {
    let mut history = after(sent(), withdrawn());
    let late = |reference: usize| Observation {
        external_reference: Some(format!("ref-{reference}")),
        ..seen(Class::Succeeded, Source::Callback)
    };
    let observe_late = |reference: usize| HandoffCommand::Observe {
        observation: late(reference),
        retry_policy: retry_policy(),
    };
    for reference in 0..MAX_LATE_OBSERVATIONS {
        let noted = HandoffEvent::HandoffObservationNoted {
            observation: late(reference),
        };
        Given::<HandoffDecider>::events(history.clone())
            .when(observe_late(reference))
            .then(vec![noted.clone()]);
        history.push(noted);
        // The same outcome again notes nothing.
        Given::<HandoffDecider>::events(history.clone())
            .when(observe_late(reference))
            .then(vec![]);
    }
    Given::<HandoffDecider>::events(history)
        .when(observe_late(MAX_LATE_OBSERVATIONS))
        .then(vec![]);
}

#[test]
fn a_handoff_in_fallout_is_resolved_by_a_withdrawal_and_a_closed_one_is_left() {
    for case in [
        rejected(),
        after(sent(), fallout(FalloutReason::SlaBreach, None, at(5))),
    ] {
        let state = Given::<HandoffDecider>::events(case)
            .when(withdraw())
            .then(vec![HandoffEvent::HandoffResolved {
                operator: WITHDRAWN_BY.to_owned(),
                note: "order cancelled".to_owned(),
                at: at(7_000),
                subject: Some(reserve()),
            }]);
        assert!(HandoffDecider::is_terminal(&state));
    }
    let resolved = after(
        rejected(),
        HandoffEvent::HandoffResolved {
            operator: "ops".to_owned(),
            note: "fixed".to_owned(),
            at: at(9),
            subject: Some(reserve()),
        },
    );
    for closed in [succeeded(), resolved] {
        let before = status_after(&closed);
        let state = Given::<HandoffDecider>::events(closed)
            .when(withdraw())
            .then(vec![]);
        let HandoffState::Open(handoff) = state else {
            panic!("handoff should exist")
        };
        assert_eq!(handoff.status, before);
    }
}

#[test]
fn a_handoff_that_was_never_requested_refuses_everything_else() {
    Given::<HandoffDecider>::nothing()
        .when(HandoffCommand::RecordDispatch { at: T0 })
        .then_err(HandoffError::NotRequested);
}
