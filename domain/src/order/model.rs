//! The fulfillment plan of an order line and the evidence an order is captured with.

use crate::handoff::HandoffRequest;
use crate::idempotency::{Purpose, TargetSystem};
use crate::ids::{LineId, QuoteId};
use crate::outcome::FalloutReason;
use serde::{Deserialize, Serialize};

/// A step of a line's fulfillment plan, run in this order.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// Reserve inventory capacity.
    Reservation,
    /// Provision the service.
    Provisioning,
    /// Activate billing; only once the service is active.
    BillingActivation,
}

impl Step {
    /// The plan's first step.
    pub const FIRST: Step = Step::Reservation;

    /// The step after this one, or `None` after billing activation.
    pub fn next(self) -> Option<Step> {
        match self {
            Step::Reservation => Some(Step::Provisioning),
            Step::Provisioning => Some(Step::BillingActivation),
            Step::BillingActivation => None,
        }
    }

    /// The step before this one, or `None` for the first.
    pub fn previous(self) -> Option<Step> {
        match self {
            Step::Reservation => None,
            Step::Provisioning => Some(Step::Reservation),
            Step::BillingActivation => Some(Step::Provisioning),
        }
    }

    /// What the step's handoff asks for.
    pub fn purpose(self) -> Purpose {
        match self {
            Step::Reservation => Purpose::Reserve,
            Step::Provisioning => Purpose::Activate,
            Step::BillingActivation => Purpose::ActivateBilling,
        }
    }

    /// The compensation that undoes this step's effect, if an automatic
    /// one exists: a reservation is released, provisioning is cancelled;
    /// active billing is not undone automatically.
    pub fn compensation(self) -> Option<Purpose> {
        match self {
            Step::Reservation => Some(Purpose::Release),
            Step::Provisioning => Some(Purpose::Cancel),
            Step::BillingActivation => None,
        }
    }

    /// The system the step's handoff goes to.
    pub fn target(self) -> TargetSystem {
        self.purpose().target()
    }

    /// The forward step a handoff purpose belongs to; `None` for
    /// compensations, notifications and documents.
    pub fn of_purpose(purpose: Purpose) -> Option<Step> {
        match purpose {
            Purpose::Reserve => Some(Step::Reservation),
            Purpose::Activate => Some(Step::Provisioning),
            Purpose::ActivateBilling => Some(Step::BillingActivation),
            Purpose::Release | Purpose::Cancel | Purpose::Notify | Purpose::GenerateDocument => {
                None
            }
        }
    }
}

/// The hashes that tie an order to the exact quote revision that was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteEvidence {
    /// The accepted quote.
    pub quote_id: QuoteId,
    /// The accepted revision.
    pub revision: u32,
    /// The accepted price's input hash.
    pub price_input_hash: String,
    /// The hash of the signed proposal.
    pub signed_artifact_hash: String,
}

/// How an operator resolves a line's fallout.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// Request the same step again under the next attempt number (a new key).
    NewAttempt,
    /// The step was completed outside the platform; the evidence is recorded.
    ResolvedExternally {
        /// The external system's reference for the completed work.
        reference: String,
        /// What the operator checked.
        note: String,
    },
    /// Give up the line and compensate what it did.
    CancelLine {
        /// Why.
        reason: String,
    },
}

/// Something the platform cannot undo itself, reported for a human.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uncompensated {
    /// The line.
    pub line_id: LineId,
    /// A step whose effect stays: billing activation is owned by billing, so
    /// a requested or active charge is reported, never reversed by the
    /// order, and so are the reservation and the activation under it (one
    /// entry each, the charge first).
    pub step: Step,
}

/// How a compensation handoff (release, cancel) ended.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompensationOutcome {
    /// The target undid the effect.
    Done,
    /// The target refused, or the handoff fell out: an operator must act,
    /// and the line's next compensation waits until the case is closed.
    Failed {
        /// Why.
        reason: FalloutReason,
    },
    /// An operator closed the failed compensation's case (undone by hand,
    /// or found to need no undoing): the line's next compensation may go.
    Closed,
}

impl CompensationOutcome {
    /// Whether the line's next compensation may be sent after this one:
    /// once it is undone, or its case was closed by an operator; never
    /// while it failed with the effect it was to undo still in place
    /// (ADR 0064).
    pub fn lets_the_next_go(self) -> bool {
        matches!(self, Self::Done | Self::Closed)
    }
}

/// The compensations and leftovers of cancelling some lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationPlan {
    /// Handoffs to open (release a reservation, cancel provisioning), each
    /// line's furthest effect first. They run one at a time per line: the
    /// first is opened with the plan, each next one when the one before it
    /// lets it go ([`CompensationOutcome::lets_the_next_go`], ADR 0064).
    pub compensations: Vec<HandoffRequest>,
    /// What could not be compensated.
    pub uncompensated: Vec<Uncompensated>,
}

impl CompensationPlan {
    /// Each compensation with whether it is the first of its line: the
    /// one the plan opens at once (the line's furthest effect's undo); a
    /// later one waits for its `CompensationRequested` (ADR 0064).
    pub fn with_first_of_each_line(&self) -> impl Iterator<Item = (&HandoffRequest, bool)> {
        self.compensations.iter().enumerate().map(|(i, handoff)| {
            let line = &handoff.subject.line_id;
            let first = !self.compensations[..i]
                .iter()
                .any(|earlier| &earlier.subject.line_id == line);
            (handoff, first)
        })
    }
}
