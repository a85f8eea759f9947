//! The handoff aggregate (stream `handoff-<id>`): one request to one external system
//! for one order line, purpose and attempt, from request to a normalized outcome.
//!
//! The key `tenant:order:line:target:purpose:attempt` names the handoff (its id is
//! derived from the key) and is reused by every resend. A timeout after sending is
//! UNKNOWN and only a reconciliation observation moves it on. A duplicate outcome
//! changes nothing; a contradicting one raises "local impossible" fallout.

mod command;
mod decide;
mod error;
mod event;
pub mod legacy;
mod model;
mod state;
#[cfg(test)]
mod tests;

pub use command::{resolved_externally, HandoffCommand};
pub use decide::WITHDRAWN_BY;
pub use error::HandoffError;
pub use event::HandoffEvent;
pub use model::{
    HandoffRequest, HandoffSubject, RequestSnapshot, RetryPolicy, REDACTED, SENSITIVE_FIELD_MARKERS,
};
pub use state::{late_outcome_key, Handoff, HandoffState, HandoffStatus, MAX_LATE_OBSERVATIONS};

use crate::decider::Decider;

/// The handoff decider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandoffDecider;

impl Decider for HandoffDecider {
    type State = HandoffState;
    type Command = HandoffCommand;
    type Event = HandoffEvent;
    type Error = HandoffError;

    fn initial() -> HandoffState {
        HandoffState::Empty
    }

    fn decide(
        state: &HandoffState,
        command: &HandoffCommand,
    ) -> Result<Vec<HandoffEvent>, HandoffError> {
        decide::decide(state, command)
    }

    fn evolve(state: HandoffState, event: &HandoffEvent) -> HandoffState {
        state::evolve(state, event)
    }

    /// Only a resolved or withdrawn handoff is final: a succeeded one can
    /// still meet a contradicting observation and fall out.
    fn is_terminal(state: &HandoffState) -> bool {
        matches!(
            state,
            HandoffState::Open(handoff)
                if matches!(handoff.status, HandoffStatus::Resolved | HandoffStatus::Withdrawn)
        )
    }
}
