//! The facts a quote records.

use super::model::{
    AcceptedLine, ApprovalReason, CustomerSnapshot, PriceResult, ProposalArtifact, QuoteLine,
    SignatureEvidence,
};
use crate::decider::DomainEvent;
use crate::ids::{BillingAccountId, CustomerId, LineId, QuoteId, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

/// Something that happened to a quote.
///
/// APPEND-ONLY: bincode encodes the variant index, so never reorder, rename or remove
/// a variant or a field; add new variants at the end. When a variant's shape must
/// change, freeze the old shape, bump the type's version in
/// [`crate::upcast::CURRENT_VERSIONS`] and add its upcaster (`docs/adr/0013-upcasting.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuoteEvent {
    /// The quote was opened at revision 1.
    QuoteCreated {
        /// The quote.
        quote_id: QuoteId,
        /// The owning tenant.
        tenant_id: TenantId,
        /// The customer snapshot.
        customer: CustomerSnapshot,
        /// The catalog version.
        catalog_version: String,
        /// When.
        at: Timestamp,
    },
    /// A line was added in `revision`.
    LineAdded {
        /// The revision the change belongs to.
        revision: u32,
        /// The line.
        line: QuoteLine,
        /// When.
        at: Timestamp,
    },
    /// A line's configuration was replaced in `revision`.
    LineChanged {
        /// The revision the change belongs to.
        revision: u32,
        /// The new configuration.
        line: QuoteLine,
        /// When.
        at: Timestamp,
    },
    /// A line was removed in `revision`.
    LineRemoved {
        /// The revision the change belongs to.
        revision: u32,
        /// The removed line.
        line_id: LineId,
        /// When.
        at: Timestamp,
    },
    /// A new revision started: price, approval, proposal and signature of earlier
    /// revisions no longer count.
    RevisionStarted {
        /// The new revision number.
        revision: u32,
        /// When.
        at: Timestamp,
    },
    /// The current revision was priced; any earlier approval, proposal and signature
    /// for this revision are void.
    ///
    /// Schema version 2: the price carries its own `price_book`. Version 1 payloads
    /// are upcast by [`crate::quote::legacy::v1::upcast`].
    QuotePriced {
        /// The price result snapshot.
        price: Box<PriceResult>,
        /// When.
        at: Timestamp,
    },
    /// The price needs a human approval before the quote can be accepted.
    ApprovalRequired {
        /// The revision.
        revision: u32,
        /// The rule that fired.
        reason: ApprovalReason,
        /// When.
        at: Timestamp,
    },
    /// The pending approval was granted.
    ApprovalGranted {
        /// The revision.
        revision: u32,
        /// Who approved.
        approver: String,
        /// When.
        at: Timestamp,
    },
    /// The pending approval was refused.
    ApprovalRejected {
        /// The revision.
        revision: u32,
        /// Who refused.
        approver: String,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// A proposal document was generated for `revision`.
    ProposalGenerated {
        /// The revision it renders.
        revision: u32,
        /// The document.
        artifact: ProposalArtifact,
        /// When.
        at: Timestamp,
    },
    /// Signature evidence was received, for the revision the provider named.
    SignatureRecorded {
        /// The revision the provider says was signed.
        revision: u32,
        /// The evidence.
        signature: SignatureEvidence,
        /// When.
        at: Timestamp,
    },
    /// The quote was accepted; carries all evidence the order is captured from.
    QuoteAccepted {
        /// The quote.
        quote_id: QuoteId,
        /// The owning tenant.
        tenant_id: TenantId,
        /// The accepted revision.
        revision: u32,
        /// The customer.
        customer_id: CustomerId,
        /// The billing account to charge.
        billing_account: BillingAccountId,
        /// The accepted price's input hash.
        price_input_hash: String,
        /// The hash of the signed document.
        signed_artifact_hash: String,
        /// The accepted lines with their charges.
        lines: Vec<AcceptedLine>,
        /// When.
        at: Timestamp,
    },
    /// The quote expired.
    QuoteExpired {
        /// When.
        at: Timestamp,
    },
    /// The quote was withdrawn.
    QuoteWithdrawn {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// CRM describes the customer differently; the quote needs revalidation.
    CustomerDriftReported {
        /// The fresh CRM snapshot (not adopted).
        observed: CustomerSnapshot,
        /// When.
        at: Timestamp,
    },
    /// A fresh customer snapshot was adopted; drift is resolved.
    CustomerRevalidated {
        /// The adopted snapshot.
        customer: CustomerSnapshot,
        /// When.
        at: Timestamp,
    },
    /// CRM says the customer's account is suspended: from now on every
    /// price of the quote needs a human's approval (seed 001 §11.2).
    CustomerSuspended {
        /// The CRM status, as received (`SUSPENDED`).
        status: String,
        /// When.
        at: Timestamp,
    },
    /// A revision's price needs approval because the customer's account
    /// is suspended (the discount rule's approval is `ApprovalRequired`).
    CustomerApprovalRequired {
        /// The revision.
        revision: u32,
        /// The CRM status that asks for it.
        status: String,
        /// When.
        at: Timestamp,
    },
    /// CRM answered the customer check in a shape nobody mapped (a schema
    /// mismatch): the quote is held in integration fallout, and may not be
    /// accepted until someone revalidates the customer (seed 001 §11.2).
    CustomerCheckFailed {
        /// What CRM answered, as evidence (never the raw body).
        evidence: String,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for QuoteEvent {
    fn event_type(&self) -> &'static str {
        match self {
            QuoteEvent::QuoteCreated { .. } => "QuoteCreated",
            QuoteEvent::LineAdded { .. } => "LineAdded",
            QuoteEvent::LineChanged { .. } => "LineChanged",
            QuoteEvent::LineRemoved { .. } => "LineRemoved",
            QuoteEvent::RevisionStarted { .. } => "RevisionStarted",
            QuoteEvent::QuotePriced { .. } => "QuotePriced",
            QuoteEvent::ApprovalRequired { .. } => "ApprovalRequired",
            QuoteEvent::ApprovalGranted { .. } => "ApprovalGranted",
            QuoteEvent::ApprovalRejected { .. } => "ApprovalRejected",
            QuoteEvent::ProposalGenerated { .. } => "ProposalGenerated",
            QuoteEvent::SignatureRecorded { .. } => "SignatureRecorded",
            QuoteEvent::QuoteAccepted { .. } => "QuoteAccepted",
            QuoteEvent::QuoteExpired { .. } => "QuoteExpired",
            QuoteEvent::QuoteWithdrawn { .. } => "QuoteWithdrawn",
            QuoteEvent::CustomerDriftReported { .. } => "CustomerDriftReported",
            QuoteEvent::CustomerRevalidated { .. } => "CustomerRevalidated",
            QuoteEvent::CustomerSuspended { .. } => "CustomerSuspended",
            QuoteEvent::CustomerApprovalRequired { .. } => "CustomerApprovalRequired",
            QuoteEvent::CustomerCheckFailed { .. } => "CustomerCheckFailed",
        }
    }

    /// The current version of the event's type ([`crate::upcast::CURRENT_VERSIONS`]).
    fn schema_version(&self) -> u16 {
        crate::upcast::current_version(self.event_type())
    }
}
