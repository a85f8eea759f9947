//! What the fulfillment policy and operators ask of an order.

use super::model::{CompensationOutcome, QuoteEvidence, Resolution, Step};
use crate::ids::{BillingAccountId, CustomerId, HandoffId, LineId, OrderId, TenantId, Timestamp};
use crate::notification::Milestone;
use crate::outcome::FalloutReason;
use crate::quote::AcceptedLine;

/// A request to change an order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum OrderCommand {
    /// Capture an order from an accepted quote's evidence.
    Capture {
        /// The new order's id.
        order_id: OrderId,
        /// The tenant.
        tenant_id: TenantId,
        /// The quote evidence.
        evidence: QuoteEvidence,
        /// The customer.
        customer_id: CustomerId,
        /// The billing account.
        billing_account: BillingAccountId,
        /// The accepted lines with their charge snapshots.
        lines: Vec<AcceptedLine>,
        /// When.
        at: Timestamp,
    },
    /// Request the given step of a line as a handoff.
    RequestStep {
        /// The line.
        line_id: LineId,
        /// The step, which must be the line's next one.
        step: Step,
        /// When.
        at: Timestamp,
    },
    /// The line's in-flight handoff succeeded.
    RecordStepSucceeded {
        /// The line.
        line_id: LineId,
        /// The handoff that succeeded.
        handoff_id: HandoffId,
        /// Its attempt.
        attempt: u32,
        /// The target's reference, if any.
        external_reference: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// The line's in-flight handoff was rejected, failed or breached its SLA.
    RaiseFallout {
        /// The line.
        line_id: LineId,
        /// The handoff.
        handoff_id: HandoffId,
        /// Its attempt.
        attempt: u32,
        /// Why.
        reason: FalloutReason,
        /// When.
        at: Timestamp,
    },
    /// An operator resolves a line's open fallout.
    ResolveFallout {
        /// The line.
        line_id: LineId,
        /// How.
        resolution: Resolution,
        /// Who.
        operator: String,
        /// When.
        at: Timestamp,
    },
    /// Cancel the whole order, compensating what can be compensated.
    Cancel {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Close the order once every line is active or cancelled.
    Complete {
        /// When.
        at: Timestamp,
    },
    /// Record that a milestone's notification is due (once per milestone;
    /// refused for a cancelled order, rule `cancelled`).
    RequestNotification {
        /// The milestone.
        milestone: Milestone,
        /// When.
        at: Timestamp,
    },
    /// Record that the order's confirmation document is due (once per
    /// key; refused for a cancelled order, rule `cancelled`).
    RequestConfirmation {
        /// When.
        at: Timestamp,
    },
    /// Record how a compensation handoff of a cancelled line ended.
    RecordCompensation {
        /// The compensation handoff.
        handoff_id: HandoffId,
        /// How it ended.
        outcome: CompensationOutcome,
        /// When.
        at: Timestamp,
    },
}
