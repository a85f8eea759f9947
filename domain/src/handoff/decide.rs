//! The handoff's rules: one arm per (command, status) pair.

use super::command::HandoffCommand;
use super::error::HandoffError;
use super::event::HandoffEvent;
use super::model::{HandoffSubject, RequestSnapshot, RetryPolicy};
use super::state::{Handoff, HandoffState, HandoffStatus as S};
use crate::ids::Timestamp;
use crate::outcome::{FalloutReason, Impact, Observation, ObservationSource};

/// Who closes a fallout case its order's cancellation withdrew.
pub const WITHDRAWN_BY: &str = "order cancellation";

/// Decides a handoff command.
pub(super) fn decide(
    state: &HandoffState,
    command: &HandoffCommand,
) -> Result<Vec<HandoffEvent>, HandoffError> {
    use HandoffCommand as C;
    match (command, state) {
        (
            C::Request {
                subject,
                request,
                at,
            },
            HandoffState::Empty,
        ) => open(subject, request, *at),
        (
            C::Request {
                subject, request, ..
            },
            HandoffState::Open(handoff),
        ) => request_again(handoff, subject, request),
        (_, HandoffState::Empty) => Err(HandoffError::NotRequested),
        (C::RecordDispatch { at }, HandoffState::Open(handoff)) => dispatch(handoff, *at),
        (
            C::Observe {
                observation,
                retry_policy,
            },
            HandoffState::Open(handoff),
        ) => observe(handoff, &observation.as_evidence(), retry_policy),
        (C::DeclareSlaBreach { at }, HandoffState::Open(handoff)) => match handoff.status {
            S::Unknown => Err(HandoffError::UnknownAwaitsReconciliation),
            ref status if status.is_pending() => {
                Ok(vec![fallout(handoff, FalloutReason::SlaBreach, None, *at)])
            }
            _ => Err(HandoffError::Closed),
        },
        (C::CallbackUnmatched { observation, at }, HandoffState::Open(handoff)) => {
            let observation = &observation.as_evidence();
            if observation.handoff_id != handoff.id {
                return Err(HandoffError::ObservationForAnotherHandoff);
            }
            if handoff.status.is_pending() {
                Ok(vec![fallout(
                    handoff,
                    FalloutReason::LocalImpossible,
                    Some(observation),
                    *at,
                )])
            } else {
                Err(HandoffError::Closed)
            }
        }
        // Every fallout of a forward step but a local impossibility is
        // raised on its line, which the order process records after the
        // handoff's own event: the line's case, whether or not the line
        // shows it yet (a cancelled line withdrew it already).
        (C::ResolveItsOwnCase { .. }, HandoffState::Open(handoff))
            if matches!(handoff.status, S::Rejected | S::Fallout { .. })
                && held_by_its_line(handoff) =>
        {
            Err(HandoffError::LineHoldsFallout {
                order_id: handoff.subject.order_id.clone(),
                line_id: handoff.subject.line_id.clone(),
            })
        }
        (
            C::Resolve { operator, note, at } | C::ResolveItsOwnCase { operator, note, at },
            HandoffState::Open(handoff),
        ) => match handoff.status {
            S::Rejected | S::Fallout { .. } => Ok(vec![HandoffEvent::HandoffResolved {
                operator: operator.clone(),
                note: note.clone(),
                at: *at,
                subject: Some(handoff.subject.clone()),
            }]),
            _ => Err(HandoffError::NotInFallout),
        },
        (C::Withdraw { reason, at }, HandoffState::Open(handoff)) => Ok(match handoff.status {
            ref status if status.is_pending() => vec![HandoffEvent::HandoffWithdrawn {
                reason: reason.clone(),
                at: *at,
            }],
            // The case waited for a human to decide the step; the order
            // that wanted it is cancelled, and its plan undoes or reports
            // what the step did: the case is closed.
            S::Rejected | S::Fallout { .. } => vec![HandoffEvent::HandoffResolved {
                operator: WITHDRAWN_BY.to_owned(),
                note: reason.clone(),
                at: *at,
                subject: Some(handoff.subject.clone()),
            }],
            // Already closed: nothing to withdraw.
            _ => Vec::new(),
        }),
    }
}

/// Whether the case of a rejected or fallen-out handoff is its order
/// line's: a forward step's (reserve, activate, bill), unless it fell out
/// as a local impossibility, which stays on the handoff.
fn held_by_its_line(handoff: &Handoff) -> bool {
    crate::order::Step::of_purpose(handoff.subject.purpose).is_some()
        && !matches!(
            handoff.status,
            S::Fallout {
                reason: FalloutReason::LocalImpossible
            }
        )
}

fn open(
    subject: &HandoffSubject,
    request: &RequestSnapshot,
    at: Timestamp,
) -> Result<Vec<HandoffEvent>, HandoffError> {
    if subject.attempt == 0 {
        return Err(HandoffError::InvalidAttempt);
    }
    Ok(vec![HandoffEvent::HandoffRequested {
        handoff_id: subject.handoff_id(),
        subject: subject.clone(),
        idempotency_key: subject.idempotency_key(),
        request_hash: request.hash(),
        // The request as it is sent: the dispatcher sends this copy.
        // Every place that shows it redacts it (ADR 0065).
        request_snapshot: request.clone(),
        at,
    }])
}

/// Same key and same request: nothing to do. Same key, other request: a conflict.
fn request_again(
    handoff: &Handoff,
    subject: &HandoffSubject,
    request: &RequestSnapshot,
) -> Result<Vec<HandoffEvent>, HandoffError> {
    if subject.idempotency_key() != handoff.idempotency_key {
        Err(HandoffError::KeyMismatch)
    } else if request.hash() != handoff.request_hash {
        Err(HandoffError::IdempotencyConflict)
    } else {
        Ok(Vec::new())
    }
}

/// Every send, first or resend, keeps the key recorded at request time.
fn dispatch(handoff: &Handoff, at: Timestamp) -> Result<Vec<HandoffEvent>, HandoffError> {
    let sent = HandoffEvent::HandoffSent {
        send: handoff.sends.saturating_add(1),
        at,
    };
    match handoff.status {
        S::Requested => Ok(vec![sent]),
        S::RetryScheduled { due_at } if at >= due_at => Ok(vec![sent]),
        S::RetryScheduled { .. } => Err(HandoffError::RetryNotDue),
        S::Unknown => Err(HandoffError::UnknownAwaitsReconciliation),
        S::Sent | S::Accepted => Err(HandoffError::AlreadyInFlight),
        S::Succeeded | S::Rejected | S::Fallout { .. } | S::Resolved | S::Withdrawn => {
            Err(HandoffError::Closed)
        }
    }
}

fn fallout(
    handoff: &Handoff,
    reason: FalloutReason,
    observation: Option<&Observation>,
    at: Timestamp,
) -> HandoffEvent {
    HandoffEvent::HandoffFalloutRaised {
        subject: handoff.subject.clone(),
        reason,
        observation: observation.cloned(),
        at,
    }
}

/// The outcome table. The class decides through its impact; raw codes ride along.
fn observe(
    handoff: &Handoff,
    observation: &Observation,
    retry_policy: &RetryPolicy,
) -> Result<Vec<HandoffEvent>, HandoffError> {
    if observation.handoff_id != handoff.id {
        return Err(HandoffError::ObservationForAnotherHandoff);
    }
    if observation.attempt != handoff.subject.attempt {
        return Err(HandoffError::ObservationForAnotherAttempt);
    }
    let evidence = observation.clone();
    let at = observation.observed_at;
    let reason = observation.class.fallout_reason();
    match (&handoff.status, observation.class.impact()) {
        (S::Requested, _) => Err(HandoffError::NotDispatched),
        (S::Unknown, _) if observation.source != ObservationSource::Reconciliation => {
            Err(HandoffError::UnknownAwaitsReconciliation)
        }
        // A duplicate of the outcome already recorded is accepted and changes nothing.
        (S::Succeeded, Impact::Succeed) | (S::Rejected, Impact::Reject) => Ok(Vec::new()),
        // A final outcome that contradicts the recorded one is "local impossible".
        (S::Succeeded | S::Rejected, impact) if impact.is_final() => Ok(vec![fallout(
            handoff,
            FalloutReason::LocalImpossible,
            Some(observation),
            at,
        )]),
        // An acknowledgement, timeout or transient error after the outcome is stale.
        (S::Succeeded | S::Rejected, _) => Ok(Vec::new()),
        // A success proves an effect the fallout said the step did not
        // take: raised again, the case allows for it (no new attempt; a
        // cancellation compensates).
        (S::Fallout { reason }, Impact::Succeed) if !reason.may_have_taken_effect() => {
            Ok(vec![fallout(
                handoff,
                FalloutReason::LocalImpossible,
                Some(observation),
                at,
            )])
        }
        // A closed handoff notes what a late outcome says once, and a
        // bounded number of them in all.
        (S::Fallout { .. } | S::Resolved | S::Withdrawn, _) => {
            let known = &handoff.late_outcomes;
            if known.len() >= super::MAX_LATE_OBSERVATIONS
                || known.contains(&super::late_outcome_key(&evidence))
            {
                return Ok(Vec::new());
            }
            Ok(vec![HandoffEvent::HandoffObservationNoted {
                observation: evidence,
            }])
        }
        (_, Impact::Succeed) => Ok(vec![HandoffEvent::HandoffSucceeded {
            subject: handoff.subject.clone(),
            observation: evidence,
        }]),
        (_, Impact::Reject) => Ok(vec![HandoffEvent::HandoffRejected {
            subject: handoff.subject.clone(),
            reason: reason.unwrap_or(FalloutReason::BusinessRejected),
            observation: evidence,
        }]),
        (_, Impact::Fallout | Impact::StopAndAlert) => Ok(vec![fallout(
            handoff,
            reason.unwrap_or(FalloutReason::Unclassified),
            Some(observation),
            at,
        )]),
        (_, Impact::Retry) if handoff.sends >= retry_policy.max_attempts => Ok(vec![fallout(
            handoff,
            FalloutReason::RetriesExhausted,
            Some(observation),
            at,
        )]),
        (_, Impact::Retry) => Ok(vec![HandoffEvent::HandoffRetryScheduled {
            retry: handoff.retries.saturating_add(1),
            due_at: retry_policy.due_at(at, handoff.retries),
            observation: evidence,
        }]),
        (S::Accepted, Impact::AwaitCallback) => Ok(Vec::new()),
        (_, Impact::AwaitCallback) => Ok(vec![HandoffEvent::HandoffAccepted {
            observation: evidence,
        }]),
        (S::Unknown, Impact::Reconcile) => Ok(vec![HandoffEvent::HandoffObservationNoted {
            observation: evidence,
        }]),
        (_, Impact::Reconcile) => Ok(vec![HandoffEvent::HandoffOutcomeUnknown {
            observation: evidence,
        }]),
    }
}
