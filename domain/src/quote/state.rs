//! The quote's lifecycle state and how each event changes it.
//!
//! The state types derive `Serialize` (not `Deserialize`) so that tools can
//! show a folded state (`oms-replay as-of --json`); a state is never stored,
//! it is always folded from the events.

use serde::Serialize;

use super::event::QuoteEvent;
use super::model::{
    ApprovalReason, CustomerSnapshot, PriceResult, ProposalArtifact, QuoteLine, SignatureEvidence,
};
use crate::ids::{QuoteId, TenantId, Timestamp};

/// Where a quote is in its lifecycle. Only an `Open` quote changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum QuoteState {
    /// No event yet.
    Empty,
    /// Being configured, priced, approved and signed.
    Open(Quote),
    /// Accepted at `accepted_at`; final.
    Accepted {
        /// The quote as it was accepted.
        quote: Quote,
        /// When it was accepted.
        accepted_at: Timestamp,
    },
    /// Expired; final.
    Expired(Quote),
    /// Withdrawn; final.
    Withdrawn(Quote),
}

/// The state of the pending or settled approval for the current price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Approval {
    /// No rule demanded approval (or nothing is priced in this revision).
    NotRequired,
    /// A rule demanded approval and nobody decided yet.
    Pending(ApprovalReason),
    /// The customer's account is suspended, so the price needs approval,
    /// and nobody decided yet.
    PendingForCustomer {
        /// The CRM status.
        status: String,
    },
    /// Approval was granted.
    Granted {
        /// Who approved.
        approver: String,
    },
    /// Approval was refused.
    Rejected {
        /// Who refused.
        approver: String,
    },
}

/// A proposal tagged with the revision it renders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedProposal {
    /// The revision.
    pub revision: u32,
    /// The document.
    pub artifact: ProposalArtifact,
}

/// Signature evidence tagged with the revision the provider named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedSignature {
    /// The revision.
    pub revision: u32,
    /// The evidence.
    pub evidence: SignatureEvidence,
}

/// Whether a signature of `revision` takes the place of the one kept (of
/// `kept`, if any): a late signature of an earlier revision is evidence
/// only and never replaces a later revision's (ADR 0053). The quote's state
/// and the quotes read model both keep signatures by this rule.
pub fn signature_replaces(kept: Option<u32>, revision: u32) -> bool {
    kept.is_none_or(|kept| kept <= revision)
}

/// Whether a new proposal of `proposal_hash` for `revision` voids a kept
/// signature of `signed_revision` over `signed_hash`: one over another
/// document of the same revision no longer counts (ADR 0053).
pub fn proposal_voids_signature(
    signed_revision: u32,
    signed_hash: &str,
    revision: u32,
    proposal_hash: &str,
) -> bool {
    signed_revision == revision && signed_hash != proposal_hash
}

/// The quote's content. Price, proposal and signature of an older revision are kept
/// as evidence; their revision tag no longer matching `revision` is what makes them
/// invalid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// The quote id.
    pub id: QuoteId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The adopted customer snapshot.
    pub customer: CustomerSnapshot,
    /// The catalog version.
    pub catalog_version: String,
    /// The current revision, starting at 1.
    pub revision: u32,
    /// The current lines, in the order they were added.
    pub lines: Vec<QuoteLine>,
    /// The latest price result, for whichever revision it was computed.
    pub price: Option<PriceResult>,
    /// The approval state of the latest price in the current revision.
    pub approval: Approval,
    /// The latest proposal.
    pub proposal: Option<RecordedProposal>,
    /// The signature evidence of the latest revision signed (a late
    /// signature of an earlier revision does not replace it).
    pub signature: Option<RecordedSignature>,
    /// A reported, unresolved customer drift.
    pub drift: Option<CustomerSnapshot>,
    /// The CRM status of a suspended customer account: every price then
    /// needs approval. Never cleared on this quote.
    pub customer_suspension: Option<String>,
    /// Why the last customer check failed (CRM answered a shape nobody
    /// mapped): the quote is in integration fallout until revalidated.
    pub customer_check_failure: Option<String>,
}

impl Quote {
    /// A quote just created: revision 1, no lines, nothing priced,
    /// proposed or signed, no drift.
    pub fn new(
        id: QuoteId,
        tenant_id: TenantId,
        customer: CustomerSnapshot,
        catalog_version: String,
    ) -> Self {
        Self {
            id,
            tenant_id,
            customer,
            catalog_version,
            revision: 1,
            lines: Vec::new(),
            price: None,
            approval: Approval::NotRequired,
            proposal: None,
            signature: None,
            drift: None,
            customer_suspension: None,
            customer_check_failure: None,
        }
    }

    /// The price, if it was computed for the current revision.
    pub fn current_price(&self) -> Option<&PriceResult> {
        self.price
            .as_ref()
            .filter(|price| price.revision == self.revision)
    }

    /// The proposal, if it renders the current revision.
    pub fn current_proposal(&self) -> Option<&ProposalArtifact> {
        self.proposal
            .as_ref()
            .filter(|proposal| proposal.revision == self.revision)
            .map(|proposal| &proposal.artifact)
    }

    /// Applies an event that keeps the quote open.
    fn apply(&mut self, event: &QuoteEvent) {
        match event {
            QuoteEvent::LineAdded { line, .. } => self.lines.push(line.clone()),
            QuoteEvent::LineChanged { line, .. } => {
                if let Some(existing) = self.lines.iter_mut().find(|l| l.line_id == line.line_id) {
                    *existing = line.clone();
                }
            }
            QuoteEvent::LineRemoved { line_id, .. } => self.lines.retain(|l| &l.line_id != line_id),
            QuoteEvent::RevisionStarted { revision, .. } => {
                self.revision = *revision;
                self.approval = Approval::NotRequired;
            }
            QuoteEvent::QuotePriced { price, .. } => {
                self.price = Some(price.as_ref().clone());
                self.approval = Approval::NotRequired;
                self.proposal = None;
                self.signature = None;
            }
            QuoteEvent::ApprovalRequired { reason, .. } => {
                self.approval = Approval::Pending(reason.clone());
            }
            QuoteEvent::ApprovalGranted { approver, .. } => {
                self.approval = Approval::Granted {
                    approver: approver.clone(),
                };
            }
            QuoteEvent::ApprovalRejected { approver, .. } => {
                self.approval = Approval::Rejected {
                    approver: approver.clone(),
                };
            }
            QuoteEvent::ProposalGenerated {
                revision, artifact, ..
            } => {
                // A signature over another document of this revision no
                // longer counts: the new proposal is to be signed.
                if self.signature.as_ref().is_some_and(|kept| {
                    proposal_voids_signature(
                        kept.revision,
                        &kept.evidence.artifact_hash,
                        *revision,
                        &artifact.artifact_hash,
                    )
                }) {
                    self.signature = None;
                }
                self.proposal = Some(RecordedProposal {
                    revision: *revision,
                    artifact: artifact.clone(),
                });
            }
            QuoteEvent::SignatureRecorded {
                revision,
                signature,
                ..
            } => {
                // A late signature of an earlier revision is evidence only:
                // it never replaces the signature of a later one.
                if signature_replaces(self.signature.as_ref().map(|kept| kept.revision), *revision)
                {
                    self.signature = Some(RecordedSignature {
                        revision: *revision,
                        evidence: signature.clone(),
                    });
                }
            }
            QuoteEvent::CustomerDriftReported { observed, .. } => {
                self.drift = Some(observed.clone())
            }
            QuoteEvent::CustomerRevalidated { customer, .. } => {
                self.customer = customer.clone();
                self.drift = None;
                self.customer_check_failure = None;
            }
            QuoteEvent::CustomerCheckFailed { evidence, .. } => {
                self.customer_check_failure = Some(evidence.clone());
            }
            QuoteEvent::CustomerSuspended { status, .. } => {
                self.customer_suspension = Some(status.clone());
            }
            QuoteEvent::CustomerApprovalRequired { status, .. } => {
                self.approval = Approval::PendingForCustomer {
                    status: status.clone(),
                };
            }
            QuoteEvent::QuoteCreated { .. }
            | QuoteEvent::QuoteAccepted { .. }
            | QuoteEvent::QuoteExpired { .. }
            | QuoteEvent::QuoteWithdrawn { .. } => {}
        }
    }
}

/// Applies one event. An event that does not fit the state leaves it unchanged:
/// `decide` never emits one, so it can only come from a foreign or corrupted stream.
pub(super) fn evolve(state: QuoteState, event: &QuoteEvent) -> QuoteState {
    match (state, event) {
        (
            QuoteState::Empty,
            QuoteEvent::QuoteCreated {
                quote_id,
                tenant_id,
                customer,
                catalog_version,
                ..
            },
        ) => QuoteState::Open(Quote::new(
            quote_id.clone(),
            tenant_id.clone(),
            customer.clone(),
            catalog_version.clone(),
        )),
        (QuoteState::Open(quote), QuoteEvent::QuoteAccepted { at, .. }) => QuoteState::Accepted {
            quote,
            accepted_at: *at,
        },
        (QuoteState::Open(quote), QuoteEvent::QuoteExpired { .. }) => QuoteState::Expired(quote),
        (QuoteState::Open(quote), QuoteEvent::QuoteWithdrawn { .. }) => {
            QuoteState::Withdrawn(quote)
        }
        (QuoteState::Open(mut quote), event) => {
            quote.apply(event);
            QuoteState::Open(quote)
        }
        (state, _) => state,
    }
}

impl QuoteState {
    /// The open quote, or the rule that refuses every command but `Create`
    /// on a quote in this state (not created, accepted, expired, withdrawn).
    ///
    /// # Errors
    /// That rule's [`super::QuoteError`].
    pub fn open(&self) -> Result<&Quote, super::QuoteError> {
        super::decide::open(self)
    }
}
