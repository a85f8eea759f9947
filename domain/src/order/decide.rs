//! The order's rules: one arm per (command, state) pair, then per line progress.

use super::command::OrderCommand;
use super::error::OrderError;
use super::event::OrderEvent;
use super::model::{CompensationOutcome, CompensationPlan, Resolution, Step, Uncompensated};
use super::state::{Compensation, LineProgress, Order, OrderLine, OrderState};
use crate::confirmation;
use crate::handoff::{HandoffRequest, HandoffSubject, RequestSnapshot};
use crate::idempotency::Purpose;
use crate::ids::{HandoffId, LineId, Timestamp};
use crate::notification::{self, Milestone};
use crate::outcome::FalloutReason;
use std::collections::BTreeSet;

/// The reason of the cancellation an order ends with when every one of its
/// lines was cancelled.
pub const EVERY_LINE_CANCELLED: &str = "every line was cancelled";

/// Decides an order command.
pub(super) fn decide(
    state: &OrderState,
    command: &OrderCommand,
) -> Result<Vec<OrderEvent>, OrderError> {
    use OrderCommand as C;
    match (command, state) {
        (
            C::Capture {
                order_id,
                tenant_id,
                evidence,
                customer_id,
                billing_account,
                lines,
                at,
            },
            OrderState::Empty,
        ) => {
            let ids: BTreeSet<&LineId> = lines.iter().map(|line| &line.line.line_id).collect();
            if lines.is_empty() {
                Err(OrderError::NoLines)
            } else if ids.len() != lines.len() {
                Err(OrderError::DuplicateLine)
            } else {
                Ok(vec![OrderEvent::OrderCaptured {
                    order_id: order_id.clone(),
                    tenant_id: tenant_id.clone(),
                    evidence: evidence.clone(),
                    customer_id: customer_id.clone(),
                    billing_account: billing_account.clone(),
                    lines: lines.clone(),
                    at: *at,
                }])
            }
        }
        (C::Capture { .. }, _) => Err(OrderError::AlreadyCaptured),
        (_, OrderState::Empty) => Err(OrderError::NotCaptured),
        (
            C::RecordCompensation {
                handoff_id,
                outcome,
                at,
            },
            OrderState::Open(order) | OrderState::Completed(order) | OrderState::Cancelled(order),
        ) => record_compensation(order, handoff_id, *outcome, *at),
        (
            C::RequestNotification { milestone, at },
            OrderState::Open(order) | OrderState::Completed(order),
        ) => Ok(request_notification(order, milestone, *at)),
        (C::RequestConfirmation { at }, OrderState::Open(order) | OrderState::Completed(order)) => {
            Ok(request_confirmation(order, *at))
        }
        (_, OrderState::Completed(_)) => Err(OrderError::Completed),
        (_, OrderState::Cancelled(_)) => Err(OrderError::Cancelled),
        (C::RequestStep { line_id, step, at }, OrderState::Open(order)) => {
            request_step(order, line(order, line_id)?, *step, *at)
        }
        (
            C::RecordStepSucceeded {
                line_id,
                handoff_id,
                attempt,
                external_reference,
                at,
            },
            OrderState::Open(order),
        ) => {
            let line = line(order, line_id)?;
            let step = in_flight_step(line, handoff_id, *attempt)?;
            Ok(step_succeeded(
                order,
                line,
                step,
                handoff_id,
                *attempt,
                external_reference.clone(),
                *at,
            ))
        }
        (
            C::RaiseFallout {
                line_id,
                handoff_id,
                attempt,
                reason,
                at,
            },
            OrderState::Open(order),
        ) => {
            let step = match raised_again(line(order, line_id)?, handoff_id, *attempt, *reason) {
                Some(step) => step,
                None => in_flight_step(line(order, line_id)?, handoff_id, *attempt)?,
            };
            Ok(vec![OrderEvent::LineFalloutRaised {
                line_id: line_id.clone(),
                step,
                handoff_id: handoff_id.clone(),
                attempt: *attempt,
                reason: *reason,
                at: *at,
            }])
        }
        (
            C::ResolveFallout {
                line_id,
                resolution,
                operator,
                at,
            },
            OrderState::Open(order),
        ) => resolve_fallout(order, line(order, line_id)?, resolution, operator, *at),
        (C::Cancel { reason, at }, OrderState::Open(order)) => {
            let cancelled = OrderEvent::OrderCancelled {
                reason: reason.clone(),
                plan: CompensationPlan::default(),
                at: *at,
            };
            // Each line's plan in its own event: one event of every
            // line's requests outgrows the log's payload limit.
            let planned = order.lines.iter().filter_map(|line| {
                let plan = compensation_plan(order, &[line]);
                (plan != CompensationPlan::default()).then(|| OrderEvent::CancellationPlanned {
                    line_id: line.line_id().clone(),
                    plan,
                    at: *at,
                })
            });
            Ok(std::iter::once(cancelled)
                .chain(planned)
                .chain(withdrawals(order, *at))
                .collect())
        }
        (C::Complete { at }, OrderState::Open(order)) => {
            if !order.lines.iter().all(|line| line.progress.is_settled()) {
                Err(OrderError::LinesStillOpen)
            } else if order
                .lines
                .iter()
                .all(|line| line.progress == LineProgress::Cancelled)
            {
                // Nothing was delivered: the order ends cancelled, never
                // completed. Each line's compensation was planned when it
                // was cancelled, so nothing is left to undo.
                Ok(vec![OrderEvent::OrderCancelled {
                    reason: EVERY_LINE_CANCELLED.to_owned(),
                    plan: CompensationPlan::default(),
                    at: *at,
                }])
            } else {
                Ok(vec![OrderEvent::OrderCompleted { at: *at }])
            }
        }
    }
}

/// Compensation outlives the order's end, so it is recorded in any state;
/// the same outcome twice records nothing.
fn record_compensation(
    order: &Order,
    handoff_id: &HandoffId,
    outcome: CompensationOutcome,
    at: Timestamp,
) -> Result<Vec<OrderEvent>, OrderError> {
    let (line, compensation) = order
        .compensation(handoff_id)
        .ok_or(OrderError::CompensationNotPlanned)?;
    if compensation.outcome == Some(outcome) {
        return Ok(Vec::new());
    }
    let settled = OrderEvent::CompensationSettled {
        line_id: line.line_id().clone(),
        handoff_id: handoff_id.clone(),
        purpose: compensation.purpose,
        outcome,
        at,
    };
    let next = outcome
        .lets_the_next_go()
        .then(|| next_compensation(line, handoff_id))
        .flatten()
        .map(|next| OrderEvent::CompensationRequested {
            line_id: line.line_id().clone(),
            handoff: handoff_request(order, line, next.purpose, 1),
            at,
        });
    Ok(std::iter::once(settled).chain(next).collect())
}

/// The compensation after `handoff_id` in its line's plan, when it was
/// neither requested nor settled yet: one undo at a time, furthest effect
/// first (ADR 0064).
fn next_compensation<'a>(line: &'a OrderLine, handoff_id: &HandoffId) -> Option<&'a Compensation> {
    let at = line
        .compensations
        .iter()
        .position(|c| &c.handoff_id == handoff_id)?;
    line.compensations
        .get(at + 1)
        .filter(|next| !next.requested && next.outcome.is_none())
}

/// A milestone is notified once: a second request records nothing.
fn request_notification(order: &Order, milestone: &Milestone, at: Timestamp) -> Vec<OrderEvent> {
    let key = notification::notification_key(&order.id, milestone);
    if order.notified.contains(&key) {
        return Vec::new();
    }
    let handoff = notification::handoff(&order.tenant_id, &order.id, &order.customer_id, milestone);
    vec![OrderEvent::NotificationRequested {
        milestone: milestone.clone(),
        key,
        handoff,
        at,
    }]
}

/// A document is requested once: a second request records nothing.
fn request_confirmation(order: &Order, at: Timestamp) -> Vec<OrderEvent> {
    if order
        .documents
        .contains(&confirmation::confirmation_key(order))
    {
        return Vec::new();
    }
    let request = confirmation::request(order);
    vec![OrderEvent::ConfirmationRequested {
        key: request.key,
        snapshot_id: request.snapshot_id,
        handoff: request.handoff,
        at,
    }]
}

fn line<'a>(order: &'a Order, line_id: &LineId) -> Result<&'a OrderLine, OrderError> {
    order.line(line_id).ok_or(OrderError::LineNotFound)
}

/// Only the line's next step may be requested; billing never before provisioning.
fn request_step(
    order: &Order,
    line: &OrderLine,
    step: Step,
    at: Timestamp,
) -> Result<Vec<OrderEvent>, OrderError> {
    match (&line.progress, step) {
        (LineProgress::Active | LineProgress::Cancelled, _) => Err(OrderError::LineSettled),
        (LineProgress::Fallout { .. }, _) => Err(OrderError::LineInFallout),
        (LineProgress::InFlight { .. }, _) => Err(OrderError::StepInFlight),
        (progress, step) if progress.next_step() == Some(step) => {
            Ok(vec![step_requested(order, line, step, 1, at)])
        }
        (_, Step::BillingActivation) => Err(OrderError::BillingBeforeServiceActive),
        (_, _) => Err(OrderError::StepOutOfOrder),
    }
}

/// The step the observation may move: the line's in-flight step, for that very
/// handoff and attempt.
/// The step of `line` when its fallout on `handoff_id`'s `attempt` said the
/// step took no effect and `reason` says it may have (a success arrived
/// after the fallout): the fallout is raised again with `reason`, so a new
/// attempt is refused and a cancellation compensates the step.
fn raised_again(
    line: &OrderLine,
    handoff_id: &HandoffId,
    attempt: u32,
    reason: FalloutReason,
) -> Option<Step> {
    match &line.progress {
        LineProgress::Fallout {
            step,
            attempt: current,
            handoff_id: current_handoff,
            reason: current_reason,
        } if *current == attempt
            && current_handoff == handoff_id
            && !current_reason.may_have_taken_effect()
            && reason.may_have_taken_effect() =>
        {
            Some(*step)
        }
        _ => None,
    }
}

fn in_flight_step(
    line: &OrderLine,
    handoff_id: &HandoffId,
    attempt: u32,
) -> Result<Step, OrderError> {
    match &line.progress {
        LineProgress::InFlight {
            attempt: current, ..
        } if *current != attempt => Err(OrderError::ObservationForAnotherAttempt),
        LineProgress::InFlight {
            handoff_id: current,
            ..
        } if current != handoff_id => Err(OrderError::ObservationForAnotherHandoff),
        LineProgress::InFlight { step, .. } => Ok(*step),
        LineProgress::Captured
        | LineProgress::StepDone { .. }
        | LineProgress::Fallout { .. }
        | LineProgress::Active
        | LineProgress::Cancelled => Err(OrderError::StepNotInFlight),
    }
}

fn step_succeeded(
    order: &Order,
    line: &OrderLine,
    step: Step,
    handoff_id: &HandoffId,
    attempt: u32,
    external_reference: Option<String>,
    at: Timestamp,
) -> Vec<OrderEvent> {
    let line_id = line.line_id().clone();
    let mut events = vec![OrderEvent::StepSucceeded {
        line_id: line_id.clone(),
        step,
        handoff_id: handoff_id.clone(),
        attempt,
        external_reference,
        at,
    }];
    if step.next().is_none() {
        let lines_open = order.lines_open_besides(&line_id);
        events.push(OrderEvent::LineActivated {
            line_id,
            lines_open,
            at,
        });
    }
    events
}

fn resolve_fallout(
    order: &Order,
    line: &OrderLine,
    resolution: &Resolution,
    operator: &str,
    at: Timestamp,
) -> Result<Vec<OrderEvent>, OrderError> {
    let LineProgress::Fallout {
        step,
        attempt,
        handoff_id,
        reason,
        ..
    } = &line.progress
    else {
        return Err(OrderError::NoOpenFallout);
    };
    if matches!(resolution, Resolution::NewAttempt) && reason.may_have_taken_effect() {
        return Err(OrderError::StepMayHaveTakenEffect);
    }
    let resolved = OrderEvent::LineFalloutResolved {
        line_id: line.line_id().clone(),
        step: *step,
        handoff_id: handoff_id.clone(),
        resolution: resolution.clone(),
        operator: operator.to_owned(),
        at,
    };
    let mut events = vec![resolved];
    match resolution {
        Resolution::NewAttempt => {
            events.push(step_requested(
                order,
                line,
                *step,
                attempt.saturating_add(1),
                at,
            ));
        }
        Resolution::ResolvedExternally { reference, .. } => events.extend(step_succeeded(
            order,
            line,
            *step,
            handoff_id,
            *attempt,
            Some(reference.clone()),
            at,
        )),
        Resolution::CancelLine { .. } => events.push(OrderEvent::LineCancelled {
            line_id: line.line_id().clone(),
            plan: compensation_plan(order, &[line]),
            lines_open: order.lines_open_besides(line.line_id()),
            at,
        }),
    }
    Ok(events)
}

fn step_requested(
    order: &Order,
    line: &OrderLine,
    step: Step,
    attempt: u32,
    at: Timestamp,
) -> OrderEvent {
    OrderEvent::StepRequested {
        step,
        handoff: handoff_request(order, line, step.purpose(), attempt),
        at,
    }
}

fn handoff_request(
    order: &Order,
    line: &OrderLine,
    purpose: Purpose,
    attempt: u32,
) -> HandoffRequest {
    let subject = HandoffSubject {
        tenant_id: order.tenant_id.clone(),
        order_id: order.id.clone(),
        line_id: line.line_id().clone(),
        target: purpose.target(),
        purpose,
        attempt,
    };
    HandoffRequest::new(subject, request_snapshot(order, line, purpose))
}

/// The domain request for a line: the line and the quote evidence, plus the
/// customer, billing account and charge snapshot when billing is asked.
fn request_snapshot(order: &Order, line: &OrderLine, purpose: Purpose) -> RequestSnapshot {
    let accepted = &line.accepted.line;
    let mut request = RequestSnapshot::default();
    let mut put = |name: String, value: String| {
        request.fields.insert(name, value);
    };
    put("order_id".into(), order.id.to_string());
    put("line_id".into(), accepted.line_id.to_string());
    put("purpose".into(), purpose.to_string());
    put("offering_id".into(), accepted.offering_id.to_string());
    put(
        "offering_version".into(),
        accepted.offering_version.to_string(),
    );
    put("quantity".into(), accepted.quantity.to_string());
    put("term_months".into(), accepted.term_months.to_string());
    put("quote_id".into(), order.evidence.quote_id.to_string());
    put("quote_revision".into(), order.evidence.revision.to_string());
    put(
        "price_input_hash".into(),
        order.evidence.price_input_hash.clone(),
    );
    put(
        "signed_artifact_hash".into(),
        order.evidence.signed_artifact_hash.clone(),
    );
    for (name, value) in &accepted.options {
        put(format!("option.{name}"), value.clone());
    }
    if purpose == Purpose::ActivateBilling {
        put("customer_id".into(), order.customer_id.to_string());
        put("billing_account".into(), order.billing_account.to_string());
        for (index, charge) in line.accepted.charges.iter().enumerate() {
            put(format!("charge.{index}.code"), charge.charge_code.clone());
            put(format!("charge.{index}.kind"), format!("{:?}", charge.kind));
            put(format!("charge.{index}.amount"), charge.amount.to_string());
        }
    }
    request
}

/// Every step in flight or in fallout, withdrawn: a handoff in flight must
/// not be sent again once the order is cancelled, and a fallout case no
/// longer waits for a human (the cancellation's plan undoes or reports
/// what the step did).
fn withdrawals(order: &Order, at: Timestamp) -> impl Iterator<Item = OrderEvent> + '_ {
    order
        .lines
        .iter()
        .filter_map(move |line| match &line.progress {
            LineProgress::InFlight {
                step,
                attempt,
                handoff_id,
            }
            | LineProgress::Fallout {
                step,
                attempt,
                handoff_id,
                ..
            } => Some(OrderEvent::StepWithdrawn {
                line_id: line.line_id().clone(),
                step: *step,
                handoff_id: handoff_id.clone(),
                attempt: *attempt,
                at,
            }),
            _ => None,
        })
}

/// What cancelling `lines` undoes: from the furthest step that may have
/// taken effect back to the first, each step's compensation (provisioning
/// cancelled, the reservation released); a step that has none (billing
/// activation: billing owns the charge) is reported as uncompensated, for
/// a human to stop in billing (ADR 0054).
fn compensation_plan(order: &Order, lines: &[&OrderLine]) -> CompensationPlan {
    let mut plan = CompensationPlan::default();
    for line in lines {
        let mut undo: Vec<Purpose> = Vec::new();
        // Undo the furthest effect first, then each step before it.
        let mut step = line.progress.furthest_effect();
        while let Some(s) = step {
            match s.compensation() {
                Some(purpose) => undo.push(purpose),
                None => plan.uncompensated.push(Uncompensated {
                    line_id: line.line_id().clone(),
                    step: s,
                }),
            }
            step = s.previous();
        }
        plan.compensations.extend(
            undo.iter()
                .map(|purpose| handoff_request(order, line, *purpose, 1)),
        );
    }
    plan
}
