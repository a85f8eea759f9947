//! The schema's enums: one per status, target system, purpose, outcome
//! class, fallout reason and action. Each mirrors a domain or read-model
//! enum (`remote`), so a wrong value in a filter is a validation error that
//! lists the allowed values, and a new variant there fails to compile here.

use async_graphql::Enum;

/// Where a quote stands, as the list shows it.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "projections::QuoteStatus")]
pub enum QuoteStatus {
    /// Being configured (or reconfigured in a new revision); no valid price.
    Draft,
    /// Priced for the current revision; no approval needed or not yet asked.
    Priced,
    /// The price waits for a human approval.
    PendingApproval,
    /// The price was approved.
    Approved,
    /// The approval was refused.
    ApprovalRejected,
    /// A proposal document was generated.
    Proposed,
    /// Signature evidence was recorded.
    Signed,
    /// Accepted (final).
    Accepted,
    /// Expired (final).
    Expired,
    /// Withdrawn (final).
    Withdrawn,
}

/// Where the approval of a revision stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "projections::ApprovalState")]
pub enum ApprovalState {
    /// A rule demanded approval; nobody decided yet.
    Required,
    /// Granted.
    Granted,
    /// Refused.
    Rejected,
}

/// Where an order stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "projections::OrderStatus")]
pub enum OrderStatus {
    /// Lines are being fulfilled.
    Open,
    /// Every line is active or cancelled.
    Completed,
    /// Cancelled with compensations.
    Cancelled,
}

/// Where a line is in its plan.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "projections::LineStage")]
pub enum LineStage {
    /// Nothing requested yet.
    Captured,
    /// The current step's handoff awaits its outcome.
    InFlight,
    /// The current step succeeded; the next is not requested yet.
    StepDone,
    /// The current step fell out and waits for an operator.
    Fallout,
    /// Billing is active: done.
    Active,
    /// Cancelled.
    Cancelled,
}

/// Where a handoff stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "projections::HandoffStage")]
pub enum HandoffStatus {
    /// Recorded, not sent yet.
    Requested,
    /// Sent; no outcome yet.
    Sent,
    /// Acknowledged; the result comes by callback.
    Accepted,
    /// Done.
    Succeeded,
    /// Refused by the target; waits for an operator.
    Rejected,
    /// Ambiguous; waits for reconciliation.
    Unknown,
    /// A technical failure; a resend is scheduled.
    RetryScheduled,
    /// Needs a human.
    Fallout,
    /// Closed by an operator.
    Resolved,
    /// Withdrawn: its order was cancelled while it was pending; nothing is
    /// sent again.
    Withdrawn,
}

/// Whether a case is in the queue.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "projections::CaseStatus")]
pub enum FalloutCaseStatus {
    /// In the queue.
    Open,
    /// Resolved; out of the queue.
    Resolved,
}

/// How an operator resolves a fallout case: the `resolveFallout` input,
/// and the actions a case allows.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, serde::Serialize)]
pub enum FalloutAction {
    /// Request the step again under the next attempt (a new idempotency
    /// key): only where the step took no effect at the target (otherwise
    /// `step_may_have_taken_effect`).
    NewAttempt,
    /// The step was completed outside the platform (reference and note required).
    ExternalResolution,
    /// Give up the line and compensate.
    CancelLine,
}

impl From<projections::FalloutAction> for FalloutAction {
    fn from(action: projections::FalloutAction) -> Self {
        match action {
            projections::FalloutAction::NewAttempt => Self::NewAttempt,
            projections::FalloutAction::RecordExternalResolution => Self::ExternalResolution,
            projections::FalloutAction::CancelLine => Self::CancelLine,
        }
    }
}

/// The normalized class of an external outcome.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::outcome::OutcomeClass")]
pub enum OutcomeClass {
    /// The target completed the side effect.
    Succeeded,
    /// The target acknowledged the request; the result will come by callback.
    Accepted,
    /// The target's business rules refused the request (e.g. customer not eligible).
    BusinessRejected,
    /// The target refused the request's content (e.g. invalid billing account).
    ValidationRejected,
    /// The target already processed this exact request (same key, same hash).
    IdempotentSuccess,
    /// The target holds the key with a different payload.
    DuplicateConflict,
    /// Nobody knows whether the side effect happened (timeout after sending).
    Unknown,
    /// A transient technical failure: 5xx, connection refused, rate limited.
    TechnicalRetryable,
    /// Credentials or permissions are wrong (401 / 403); retrying will not help.
    SecurityConfiguration,
    /// The response did not have the expected shape.
    SchemaMismatch,
    /// The adapter could not map the response to any class.
    Unclassified,
}

/// Why a handoff or an order line went to fallout.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::outcome::FalloutReason")]
pub enum FalloutReason {
    /// The target's business rules refused.
    BusinessRejected,
    /// The target refused the request's content.
    ValidationRejected,
    /// Same key, different payload at the target.
    DuplicateConflict,
    /// Credentials or permissions are wrong.
    SecurityConfiguration,
    /// The target answered in an unexpected shape.
    SchemaMismatch,
    /// The target answered something nobody mapped.
    Unclassified,
    /// Technical retries ran out.
    RetriesExhausted,
    /// The step took longer than its service level allows.
    SlaBreach,
    /// An observation contradicts a terminal local state.
    LocalImpossible,
}

/// Where an observation came from.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::outcome::ObservationSource")]
pub enum ObservationSource {
    /// The synchronous answer (or timeout) of the call that sent the request.
    Dispatch,
    /// A signed callback from the target system.
    Callback,
    /// A status query made to reconcile an ambiguous or stuck handoff.
    Reconciliation,
}

/// The external system a handoff talks to.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::idempotency::TargetSystem")]
pub enum TargetSystem {
    /// Holds capacity and owns reservation truth.
    Inventory,
    /// Activates the technical service or resource.
    Provisioning,
    /// Owns billing accounts, charges and their activation.
    Billing,
    /// Owns customers and accounts.
    Crm,
    /// Generates and stores documents.
    Document,
    /// Sends e-mails and messages.
    Notification,
}

/// What a handoff asks the target system to do.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::idempotency::Purpose")]
pub enum Purpose {
    /// Hold inventory capacity for an order line.
    Reserve,
    /// Give back a held reservation (compensation).
    Release,
    /// Provision (activate) the service.
    Activate,
    /// Cancel provisioning that is in flight or done (compensation).
    Cancel,
    /// Activate the charges in billing, only once the service is active.
    ActivateBilling,
    /// Send a customer notification for an order milestone.
    Notify,
    /// Render and store the order's confirmation document from its snapshot.
    GenerateDocument,
}
