//! The order's lifecycle, each line's progress through its plan, and `evolve`.
//!
//! The state types derive `Serialize` (not `Deserialize`) so that tools can
//! show a folded state (`oms-replay as-of --json`); a state is never stored,
//! it is always folded from the events.

use serde::Serialize;

use super::event::OrderEvent;
use super::model::{CompensationOutcome, CompensationPlan, QuoteEvidence, Step};
use crate::idempotency::Purpose;
use crate::ids::{BillingAccountId, CustomerId, HandoffId, LineId, OrderId, TenantId};
use crate::outcome::FalloutReason;
use crate::quote::AcceptedLine;

/// Where an order is in its lifecycle. Only an `Open` order changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum OrderState {
    /// No event yet.
    Empty,
    /// Captured; lines are being fulfilled.
    Open(Order),
    /// Every line is active or cancelled; final.
    Completed(Order),
    /// Cancelled with compensations; final.
    Cancelled(Order),
}

/// Where one line is in its plan (reservation, provisioning, billing activation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LineProgress {
    /// Nothing requested yet.
    Captured,
    /// `step` was requested as `handoff_id` and awaits its outcome.
    InFlight {
        /// The step.
        step: Step,
        /// The attempt.
        attempt: u32,
        /// The handoff.
        handoff_id: HandoffId,
    },
    /// `step` succeeded; the next step is not requested yet.
    StepDone {
        /// The step.
        step: Step,
    },
    /// `step` fell out and waits for an operator.
    Fallout {
        /// The step.
        step: Step,
        /// The attempt that fell out.
        attempt: u32,
        /// The handoff that fell out.
        handoff_id: HandoffId,
        /// Why.
        reason: FalloutReason,
    },
    /// Billing is active: the line is done.
    Active,
    /// The line was cancelled.
    Cancelled,
}

impl LineProgress {
    /// The only step that may be requested now, if any.
    pub fn next_step(&self) -> Option<Step> {
        match self {
            LineProgress::Captured => Some(Step::FIRST),
            LineProgress::StepDone { step } => step.next(),
            LineProgress::InFlight { .. }
            | LineProgress::Fallout { .. }
            | LineProgress::Active
            | LineProgress::Cancelled => None,
        }
    }

    /// True when the line is active or cancelled.
    pub fn is_settled(&self) -> bool {
        matches!(self, LineProgress::Active | LineProgress::Cancelled)
    }

    /// The furthest step that may have had an effect outside, which is what
    /// compensation must undo. A step that fell out without effect (refused,
    /// credentials refused, retries run out: whatever
    /// [`FalloutReason::may_have_taken_effect`] denies, the same rule that
    /// offers it a new attempt) had none.
    pub fn furthest_effect(&self) -> Option<Step> {
        match self {
            LineProgress::Captured | LineProgress::Cancelled => None,
            LineProgress::InFlight { step, .. } | LineProgress::StepDone { step } => Some(*step),
            LineProgress::Fallout { step, reason, .. } if !reason.may_have_taken_effect() => {
                step.previous()
            }
            LineProgress::Fallout { step, .. } => Some(*step),
            LineProgress::Active => Some(Step::BillingActivation),
        }
    }
}

/// An order line: what was accepted and how far its plan got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    /// The accepted line with its charge snapshot.
    pub accepted: AcceptedLine,
    /// Its progress.
    pub progress: LineProgress,
    /// The compensations planned when it was cancelled, with how each ended.
    pub compensations: Vec<Compensation>,
}

/// One compensation handoff of a cancelled line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Compensation {
    /// The handoff.
    pub handoff_id: HandoffId,
    /// Release or cancel.
    pub purpose: Purpose,
    /// How it ended; `None` while it is pending or not yet requested.
    pub outcome: Option<CompensationOutcome>,
    /// Whether its handoff was asked for: the first of its line's plan
    /// with the plan, each later one by a `CompensationRequested`.
    pub requested: bool,
}

impl OrderLine {
    /// The line id.
    pub fn line_id(&self) -> &LineId {
        &self.accepted.line.line_id
    }
}

/// The order's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Order {
    /// The order id.
    pub id: OrderId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The accepted quote's evidence.
    pub evidence: QuoteEvidence,
    /// The customer.
    pub customer_id: CustomerId,
    /// The billing account.
    pub billing_account: BillingAccountId,
    /// The lines, in quote order.
    pub lines: Vec<OrderLine>,
    /// The notification keys recorded ([`crate::notification::notification_key`]):
    /// each milestone is notified once.
    pub notified: std::collections::BTreeSet<String>,
    /// The document keys recorded ([`crate::confirmation::confirmation_key`]):
    /// each document is requested once.
    pub documents: std::collections::BTreeSet<String>,
}

impl Order {
    /// The line with this id.
    pub fn line(&self, line_id: &LineId) -> Option<&OrderLine> {
        self.lines.iter().find(|line| line.line_id() == line_id)
    }

    /// The planned compensation with this handoff, and its line.
    pub fn compensation(&self, handoff_id: &HandoffId) -> Option<(&OrderLine, &Compensation)> {
        self.lines.iter().find_map(|line| {
            line.compensations
                .iter()
                .find(|c| &c.handoff_id == handoff_id)
                .map(|c| (line, c))
        })
    }

    fn plan_compensations(&mut self, plan: &CompensationPlan) {
        for request in &plan.compensations {
            if let Some(line) = self
                .lines
                .iter_mut()
                .find(|line| line.line_id() == &request.subject.line_id)
            {
                let requested = line.compensations.is_empty();
                line.compensations.push(Compensation {
                    handoff_id: request.handoff_id.clone(),
                    purpose: request.subject.purpose,
                    outcome: None,
                    requested,
                });
            }
        }
    }

    fn request_compensation(&mut self, handoff_id: &HandoffId) {
        for line in &mut self.lines {
            for compensation in &mut line.compensations {
                if &compensation.handoff_id == handoff_id {
                    compensation.requested = true;
                }
            }
        }
    }

    fn settle_compensation(&mut self, handoff_id: &HandoffId, outcome: CompensationOutcome) {
        for line in &mut self.lines {
            for compensation in &mut line.compensations {
                if &compensation.handoff_id == handoff_id {
                    compensation.outcome = Some(outcome);
                }
            }
        }
    }

    /// How many lines other than `settling` are neither active nor cancelled.
    pub fn lines_open_besides(&self, settling: &LineId) -> u32 {
        let open = self
            .lines
            .iter()
            .filter(|line| line.line_id() != settling && !line.progress.is_settled())
            .count();
        u32::try_from(open).unwrap_or(u32::MAX)
    }

    fn set_progress(&mut self, line_id: &LineId, progress: LineProgress) {
        if let Some(line) = self.lines.iter_mut().find(|line| line.line_id() == line_id) {
            line.progress = progress;
        }
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::StepRequested { step, handoff, .. } => self.set_progress(
                &handoff.subject.line_id,
                LineProgress::InFlight {
                    step: *step,
                    attempt: handoff.subject.attempt,
                    handoff_id: handoff.handoff_id.clone(),
                },
            ),
            OrderEvent::StepSucceeded { line_id, step, .. } => {
                self.set_progress(line_id, LineProgress::StepDone { step: *step });
            }
            OrderEvent::LineActivated { line_id, .. } => {
                self.set_progress(line_id, LineProgress::Active)
            }
            OrderEvent::LineFalloutRaised {
                line_id,
                step,
                handoff_id,
                attempt,
                reason,
                ..
            } => self.set_progress(
                line_id,
                LineProgress::Fallout {
                    step: *step,
                    attempt: *attempt,
                    handoff_id: handoff_id.clone(),
                    reason: *reason,
                },
            ),
            OrderEvent::LineCancelled { line_id, plan, .. } => {
                self.set_progress(line_id, LineProgress::Cancelled);
                self.plan_compensations(plan);
            }
            OrderEvent::CompensationSettled {
                handoff_id,
                outcome,
                ..
            } => self.settle_compensation(handoff_id, *outcome),
            OrderEvent::CompensationRequested { handoff, .. } => {
                self.request_compensation(&handoff.handoff_id)
            }
            OrderEvent::NotificationRequested { key, .. } => {
                self.notified.insert(key.clone());
            }
            OrderEvent::ConfirmationRequested { key, .. } => {
                self.documents.insert(key.clone());
            }
            // The resolution's effect is the event decided with it (a new request,
            // a success or a cancellation); the resolution itself is the audit record.
            OrderEvent::LineFalloutResolved { .. }
            | OrderEvent::OrderCaptured { .. }
            | OrderEvent::OrderCancelled { .. }
            | OrderEvent::StepWithdrawn { .. }
            | OrderEvent::CancellationPlanned { .. }
            | OrderEvent::OrderCompleted { .. } => {}
        }
    }
}

/// Applies one event; an event that does not fit the state leaves it unchanged.
pub(super) fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
    match (state, event) {
        (
            OrderState::Empty,
            OrderEvent::OrderCaptured {
                order_id,
                tenant_id,
                evidence,
                customer_id,
                billing_account,
                lines,
                ..
            },
        ) => OrderState::Open(Order {
            id: order_id.clone(),
            tenant_id: tenant_id.clone(),
            evidence: evidence.clone(),
            customer_id: customer_id.clone(),
            billing_account: billing_account.clone(),
            lines: lines
                .iter()
                .map(|accepted| OrderLine {
                    accepted: accepted.clone(),
                    progress: LineProgress::Captured,
                    compensations: Vec::new(),
                })
                .collect(),
            notified: std::collections::BTreeSet::new(),
            documents: std::collections::BTreeSet::new(),
        }),
        (OrderState::Open(order), OrderEvent::OrderCompleted { .. }) => {
            OrderState::Completed(order)
        }
        (OrderState::Open(mut order), OrderEvent::OrderCancelled { plan, .. }) => {
            for line in order
                .lines
                .iter_mut()
                .filter(|line| !line.progress.is_settled())
            {
                line.progress = LineProgress::Cancelled;
            }
            order.plan_compensations(plan);
            OrderState::Cancelled(order)
        }
        (OrderState::Cancelled(mut order), OrderEvent::CancellationPlanned { plan, .. }) => {
            order.plan_compensations(plan);
            OrderState::Cancelled(order)
        }
        // Compensation outlives the order's end.
        (
            OrderState::Completed(mut order),
            OrderEvent::CompensationSettled {
                handoff_id,
                outcome,
                ..
            },
        ) => {
            order.settle_compensation(handoff_id, *outcome);
            OrderState::Completed(order)
        }
        (OrderState::Completed(mut order), OrderEvent::CompensationRequested { handoff, .. }) => {
            order.request_compensation(&handoff.handoff_id);
            OrderState::Completed(order)
        }
        // The completion's own notification is recorded once completed.
        (OrderState::Completed(mut order), OrderEvent::NotificationRequested { key, .. }) => {
            order.notified.insert(key.clone());
            OrderState::Completed(order)
        }
        (OrderState::Completed(mut order), OrderEvent::ConfirmationRequested { key, .. }) => {
            order.documents.insert(key.clone());
            OrderState::Completed(order)
        }
        (
            OrderState::Cancelled(mut order),
            OrderEvent::CompensationSettled {
                handoff_id,
                outcome,
                ..
            },
        ) => {
            order.settle_compensation(handoff_id, *outcome);
            OrderState::Cancelled(order)
        }
        (OrderState::Cancelled(mut order), OrderEvent::CompensationRequested { handoff, .. }) => {
            order.request_compensation(&handoff.handoff_id);
            OrderState::Cancelled(order)
        }
        (OrderState::Open(mut order), event) => {
            order.apply(event);
            OrderState::Open(order)
        }
        (state, _) => state,
    }
}
