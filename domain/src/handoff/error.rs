//! The rules a handoff can refuse a command by, one variant per rule.

use crate::decider::RuleViolation;

/// Why a handoff refused a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandoffError {
    /// The handoff has not been requested.
    #[error("handoff does not exist")]
    NotRequested,
    /// Attempts are numbered from 1.
    #[error("attempt must be positive")]
    InvalidAttempt,
    /// The command names a subject whose key is not this handoff's key.
    #[error("command is for another handoff")]
    KeyMismatch,
    /// The same key was requested again with a different request.
    #[error("same key with a different request")]
    IdempotencyConflict,
    /// An outcome arrived before the request was recorded as sent.
    #[error("handoff was never sent")]
    NotDispatched,
    /// The request is already out and awaiting its outcome.
    #[error("handoff is already in flight")]
    AlreadyInFlight,
    /// The scheduled retry is not due yet.
    #[error("retry is not due")]
    RetryNotDue,
    /// An UNKNOWN handoff moves only on a reconciliation observation.
    #[error("unknown outcome awaits reconciliation")]
    UnknownAwaitsReconciliation,
    /// The handoff has a final outcome and cannot be sent or escalated.
    #[error("handoff is closed")]
    Closed,
    /// The observation is about another handoff.
    #[error("observation is for another handoff")]
    ObservationForAnotherHandoff,
    /// The observation is about another attempt.
    #[error("observation is for another attempt")]
    ObservationForAnotherAttempt,
    /// Only a rejected or fallen-out handoff can be resolved.
    #[error("handoff is not in fallout")]
    NotInFallout,
    /// A forward step's case is its order line's (raised on the line, or
    /// about to be): closing it on the handoff would leave the line in
    /// fallout under a closed case.
    #[error(
        "line `{line_id}` of order `{order_id}` holds this case: resolve it with resolveFallout"
    )]
    LineHoldsFallout {
        /// The order.
        order_id: crate::ids::OrderId,
        /// Its line.
        line_id: crate::ids::LineId,
    },
}

impl RuleViolation for HandoffError {
    fn rule(&self) -> &'static str {
        match self {
            HandoffError::NotRequested => "handoff_not_requested",
            HandoffError::InvalidAttempt => "invalid_attempt",
            HandoffError::KeyMismatch => "key_mismatch",
            HandoffError::IdempotencyConflict => "idempotency_conflict",
            HandoffError::NotDispatched => "not_dispatched",
            HandoffError::AlreadyInFlight => "already_in_flight",
            HandoffError::RetryNotDue => "retry_not_due",
            HandoffError::UnknownAwaitsReconciliation => "unknown_awaits_reconciliation",
            HandoffError::Closed => "handoff_closed",
            HandoffError::ObservationForAnotherHandoff => "observation_for_another_handoff",
            HandoffError::ObservationForAnotherAttempt => "observation_for_another_attempt",
            HandoffError::NotInFallout => "not_in_fallout",
            HandoffError::LineHoldsFallout { .. } => "line_holds_fallout",
        }
    }
}
