//! The rules an order can refuse a command by, one variant per rule.

use crate::decider::RuleViolation;

/// Why an order refused a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order has not been captured.
    #[error("order does not exist")]
    NotCaptured,
    /// The order already exists.
    #[error("order already exists")]
    AlreadyCaptured,
    /// An order needs at least one line.
    #[error("order has no lines")]
    NoLines,
    /// Two lines share an id.
    #[error("duplicate line id")]
    DuplicateLine,
    /// The order is completed.
    #[error("order is completed")]
    Completed,
    /// The order is cancelled.
    #[error("order is cancelled")]
    Cancelled,
    /// No line has this id.
    #[error("line not found")]
    LineNotFound,
    /// Billing is only requested once provisioning succeeded.
    #[error("billing requested before the service is active")]
    BillingBeforeServiceActive,
    /// The step is not the line's next one.
    #[error("step is out of order")]
    StepOutOfOrder,
    /// A step of the line is awaiting its outcome.
    #[error("a step is already in flight")]
    StepInFlight,
    /// The line has open fallout; an operator must resolve it first.
    #[error("line is in fallout")]
    LineInFallout,
    /// The line is active or cancelled.
    #[error("line is settled")]
    LineSettled,
    /// No step of the line is awaiting an outcome.
    #[error("no step is in flight")]
    StepNotInFlight,
    /// The observation is for another handoff than the line's in-flight one.
    #[error("observation is for another handoff")]
    ObservationForAnotherHandoff,
    /// The observation is for another attempt than the line's in-flight one.
    #[error("observation is for another attempt")]
    ObservationForAnotherAttempt,
    /// The line has no open fallout.
    #[error("line has no open fallout")]
    NoOpenFallout,
    /// A new attempt of a step that may have taken effect at the target
    /// ([`crate::outcome::FalloutReason::may_have_taken_effect`]).
    #[error(
        "the step may have taken effect at the target, so a new attempt could double it: \
         confirm it with an external resolution, or cancel the line"
    )]
    StepMayHaveTakenEffect,
    /// Some line is neither active nor cancelled.
    #[error("lines are still open")]
    LinesStillOpen,
    /// No cancelled line planned a compensation with this handoff.
    #[error("no compensation with this handoff was planned")]
    CompensationNotPlanned,
}

impl RuleViolation for OrderError {
    fn rule(&self) -> &'static str {
        match self {
            OrderError::NotCaptured => "order_not_captured",
            OrderError::AlreadyCaptured => "order_already_captured",
            OrderError::NoLines => "no_lines",
            OrderError::DuplicateLine => "duplicate_line",
            OrderError::Completed => "order_completed",
            OrderError::Cancelled => "order_cancelled",
            OrderError::LineNotFound => "line_not_found",
            OrderError::BillingBeforeServiceActive => "billing_before_service_active",
            OrderError::StepOutOfOrder => "step_out_of_order",
            OrderError::StepInFlight => "step_in_flight",
            OrderError::LineInFallout => "line_in_fallout",
            OrderError::LineSettled => "line_settled",
            OrderError::StepNotInFlight => "step_not_in_flight",
            OrderError::ObservationForAnotherHandoff => "observation_for_another_handoff",
            OrderError::ObservationForAnotherAttempt => "observation_for_another_attempt",
            OrderError::NoOpenFallout => "no_open_fallout",
            OrderError::StepMayHaveTakenEffect => "step_may_have_taken_effect",
            OrderError::LinesStillOpen => "lines_still_open",
            OrderError::CompensationNotPlanned => "compensation_not_planned",
        }
    }
}
