//! The facts an order records.

use super::model::{CompensationOutcome, CompensationPlan, QuoteEvidence, Resolution, Step};
use crate::decider::DomainEvent;
use crate::handoff::HandoffRequest;
use crate::idempotency::Purpose;
use crate::ids::{BillingAccountId, CustomerId, HandoffId, LineId, OrderId, TenantId, Timestamp};
use crate::notification::Milestone;
use crate::outcome::FalloutReason;
use crate::quote::AcceptedLine;
use serde::{Deserialize, Serialize};

/// Something that happened to an order.
///
/// APPEND-ONLY: bincode encodes the variant index, so never reorder, rename or remove
/// a variant or a field; add new variants at the end. When a variant's shape must
/// change, freeze the old shape, bump the type's version in
/// [`crate::upcast::CURRENT_VERSIONS`] and add its upcaster (`docs/adr/0013-upcasting.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// The order was captured from an accepted quote.
    OrderCaptured {
        /// The order.
        order_id: OrderId,
        /// The tenant.
        tenant_id: TenantId,
        /// The quote evidence.
        evidence: QuoteEvidence,
        /// The customer.
        customer_id: CustomerId,
        /// The billing account.
        billing_account: BillingAccountId,
        /// The lines with their charge snapshots.
        lines: Vec<AcceptedLine>,
        /// When.
        at: Timestamp,
    },
    /// A step of a line was requested as a handoff.
    StepRequested {
        /// The step.
        step: Step,
        /// The handoff to open (its subject names the line and attempt).
        handoff: HandoffRequest,
        /// When.
        at: Timestamp,
    },
    /// A step of a line succeeded (observed, or resolved externally with evidence).
    StepSucceeded {
        /// The line.
        line_id: LineId,
        /// The step.
        step: Step,
        /// The handoff.
        handoff_id: HandoffId,
        /// Its attempt.
        attempt: u32,
        /// The target's reference, if any.
        external_reference: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// The line's plan is done: billing is active.
    LineActivated {
        /// The line.
        line_id: LineId,
        /// How many lines are still neither active nor cancelled.
        lines_open: u32,
        /// When.
        at: Timestamp,
    },
    /// A line's step went to fallout.
    LineFalloutRaised {
        /// The line.
        line_id: LineId,
        /// The step.
        step: Step,
        /// The handoff.
        handoff_id: HandoffId,
        /// Its attempt.
        attempt: u32,
        /// Why.
        reason: FalloutReason,
        /// When.
        at: Timestamp,
    },
    /// An operator resolved a line's fallout.
    LineFalloutResolved {
        /// The line.
        line_id: LineId,
        /// The step that was in fallout.
        step: Step,
        /// The handoff that fell out.
        handoff_id: HandoffId,
        /// How.
        resolution: Resolution,
        /// Who.
        operator: String,
        /// When.
        at: Timestamp,
    },
    /// A line was cancelled, with its compensations.
    LineCancelled {
        /// The line.
        line_id: LineId,
        /// Compensations and leftovers.
        plan: CompensationPlan,
        /// How many lines are still neither active nor cancelled.
        lines_open: u32,
        /// When.
        at: Timestamp,
    },
    /// The order was cancelled. Since ADR 0049 its plan is empty and each
    /// line's compensations follow in their own `CancellationPlanned`;
    /// earlier logs hold every open line's plan here.
    OrderCancelled {
        /// Why.
        reason: String,
        /// Compensations and leftovers (empty since ADR 0049).
        plan: CompensationPlan,
        /// When.
        at: Timestamp,
    },
    /// Every line is active or cancelled.
    OrderCompleted {
        /// When.
        at: Timestamp,
    },
    /// A compensation handoff of a cancelled line ended (recorded in any
    /// state of the order, since compensation outlives the cancellation).
    CompensationSettled {
        /// The cancelled line.
        line_id: LineId,
        /// The compensation handoff.
        handoff_id: HandoffId,
        /// Release or cancel.
        purpose: Purpose,
        /// How it ended.
        outcome: CompensationOutcome,
        /// When.
        at: Timestamp,
    },
    /// A milestone's customer notification is due: the policy opens its
    /// handoff from this committed event (never inside the order's own
    /// transaction). Recorded once per key, never for a cancelled order.
    NotificationRequested {
        /// The milestone.
        milestone: Milestone,
        /// `notification:<template>:<order>:<recipient>:<milestone>`.
        key: String,
        /// The handoff that sends it.
        handoff: HandoffRequest,
        /// When.
        at: Timestamp,
    },
    /// The order's confirmation document is due: the policy opens its
    /// handoff from this committed event. Recorded once per key, never
    /// for a cancelled order ([`crate::confirmation`]).
    ConfirmationRequested {
        /// `document:ORDER_CONFIRMATION:<order>:<template>:<locale>`.
        key: String,
        /// The sha256 of the order's snapshot the document is rendered from.
        snapshot_id: String,
        /// The handoff that renders it.
        handoff: HandoffRequest,
        /// When.
        at: Timestamp,
    },
    /// The order was cancelled while this line's step was in flight or in
    /// fallout: the policy withdraws the step's handoff, so no send follows
    /// the cancellation (the cancellation's compensation undoes what a send
    /// already did) and a fallout case closes. Recorded with the
    /// `OrderCancelled` it follows.
    StepWithdrawn {
        /// The line.
        line_id: LineId,
        /// The step.
        step: Step,
        /// The handoff.
        handoff_id: HandoffId,
        /// Its attempt.
        attempt: u32,
        /// When.
        at: Timestamp,
    },
    /// What cancelling the order does for one of its lines: the
    /// compensations it opens and the steps it leaves for a human. One per
    /// line with anything to undo, recorded with the `OrderCancelled` it
    /// follows, so no event carries every line's requests (ADR 0049).
    CancellationPlanned {
        /// The line.
        line_id: LineId,
        /// The line's compensations and leftovers.
        plan: CompensationPlan,
        /// When.
        at: Timestamp,
    },
    /// The line's next compensation is due: the one before it in the plan
    /// (furthest effect first) was undone or its case closed. The policy
    /// opens its handoff from this event (ADR 0064).
    CompensationRequested {
        /// The cancelled line.
        line_id: LineId,
        /// The compensation's handoff, as the plan named it.
        handoff: HandoffRequest,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::OrderCaptured { .. } => "OrderCaptured",
            OrderEvent::StepRequested { .. } => "StepRequested",
            OrderEvent::StepSucceeded { .. } => "StepSucceeded",
            OrderEvent::LineActivated { .. } => "LineActivated",
            OrderEvent::LineFalloutRaised { .. } => "LineFalloutRaised",
            OrderEvent::LineFalloutResolved { .. } => "LineFalloutResolved",
            OrderEvent::LineCancelled { .. } => "LineCancelled",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::OrderCompleted { .. } => "OrderCompleted",
            OrderEvent::CompensationSettled { .. } => "CompensationSettled",
            OrderEvent::NotificationRequested { .. } => "NotificationRequested",
            OrderEvent::ConfirmationRequested { .. } => "ConfirmationRequested",
            OrderEvent::StepWithdrawn { .. } => "StepWithdrawn",
            OrderEvent::CancellationPlanned { .. } => "CancellationPlanned",
            OrderEvent::CompensationRequested { .. } => "CompensationRequested",
        }
    }

    /// The current version of the event's type ([`crate::upcast::CURRENT_VERSIONS`]).
    fn schema_version(&self) -> u16 {
        crate::upcast::current_version(self.event_type())
    }
}
