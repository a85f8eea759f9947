//! The order aggregate (stream `order-<id>`): captured from an accepted quote, each
//! line runs reservation, then provisioning, then billing activation, every step as a
//! handoff that moves only on an observation for that handoff and attempt.
//!
//! Rejections, security or schema failures and SLA breaches put the line in fallout;
//! an operator resolves it by a new attempt, by external resolution with evidence,
//! or by cancelling the line. Cancelling compensates what can be compensated and
//! records what cannot. The order completes when every line is active or cancelled.

mod command;
mod decide;
mod error;
mod event;
mod model;
mod state;
#[cfg(test)]
mod tests;

pub use command::OrderCommand;
pub use decide::EVERY_LINE_CANCELLED;
pub use error::OrderError;
pub use event::OrderEvent;
pub use model::{
    CompensationOutcome, CompensationPlan, QuoteEvidence, Resolution, Step, Uncompensated,
};
pub use state::{Compensation, LineProgress, Order, OrderLine, OrderState};

use crate::decider::Decider;

/// The order decider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderDecider;

impl Decider for OrderDecider {
    type State = OrderState;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn initial() -> OrderState {
        OrderState::Empty
    }

    fn decide(state: &OrderState, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        decide::decide(state, command)
    }

    fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
        state::evolve(state, event)
    }

    fn is_terminal(state: &OrderState) -> bool {
        matches!(state, OrderState::Completed(_) | OrderState::Cancelled(_))
    }
}
