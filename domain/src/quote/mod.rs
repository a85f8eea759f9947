//! The quote aggregate (stream `quote-<id>`): configure lines, price, approve,
//! propose, sign, accept; expire or withdraw; revalidate after customer drift.
//!
//! Any line change (or customer revalidation) after pricing starts a new revision;
//! the old revision's price, approval, proposal and signature then no longer count.

mod command;
mod decide;
pub mod document;
mod error;
mod event;
pub mod legacy;
pub mod limits;
mod model;
pub mod pricing;
mod state;
#[cfg(test)]
mod tests;

pub use command::QuoteCommand;
pub use error::QuoteError;
pub use event::QuoteEvent;
pub use model::{
    AcceptedLine, ApprovalPolicy, ApprovalReason, ChargeKind, CustomerSnapshot, Discount,
    LinePrice, PriceComponent, PriceResult, PriceTotals, ProposalArtifact, QuoteLine,
    SignatureEvidence,
};
pub use pricing::{price_command, OfferingPrice, PriceBook};
pub use state::{
    proposal_voids_signature, signature_replaces, Approval, Quote, QuoteState, RecordedProposal,
    RecordedSignature,
};

use crate::decider::Decider;

/// The quote decider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuoteDecider;

impl Decider for QuoteDecider {
    type State = QuoteState;
    type Command = QuoteCommand;
    type Event = QuoteEvent;
    type Error = QuoteError;

    fn initial() -> QuoteState {
        QuoteState::Empty
    }

    fn decide(state: &QuoteState, command: &QuoteCommand) -> Result<Vec<QuoteEvent>, QuoteError> {
        decide::decide(state, command)
    }

    fn evolve(state: QuoteState, event: &QuoteEvent) -> QuoteState {
        state::evolve(state, event)
    }

    fn is_terminal(state: &QuoteState) -> bool {
        matches!(
            state,
            QuoteState::Accepted { .. } | QuoteState::Expired(_) | QuoteState::Withdrawn(_)
        )
    }
}
