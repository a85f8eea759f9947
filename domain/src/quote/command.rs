//! What callers ask a quote to do. Time and external facts come in the command.

use super::model::{
    ApprovalPolicy, CustomerSnapshot, PriceResult, ProposalArtifact, QuoteLine, SignatureEvidence,
};
use crate::capability::Capabilities;
use crate::catalog::VersionStanding;
use crate::ids::{BillingAccountId, LineId, QuoteId, TenantId, Timestamp};

/// A request to change a quote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum QuoteCommand {
    /// Open a quote for a customer snapshot against a catalog version.
    Create {
        /// The new quote's id.
        quote_id: QuoteId,
        /// The owning tenant.
        tenant_id: TenantId,
        /// The customer as CRM described it at creation.
        customer: CustomerSnapshot,
        /// The catalog version the quote is configured against.
        catalog_version: String,
        /// The CRM status when the customer's account is suspended (quoted
        /// only with approval); `None` for an active account.
        customer_suspension: Option<String>,
        /// Where that version stands in the tenant's catalog now: only a
        /// version that may be quoted is (rules `catalog_version_retired`,
        /// `catalog_version_not_active`).
        catalog: VersionStanding,
        /// When.
        at: Timestamp,
    },
    /// Add a configured line.
    AddLine {
        /// The line; its id must be new.
        line: QuoteLine,
        /// When.
        at: Timestamp,
    },
    /// Replace a line's configuration (same line id).
    ChangeLine {
        /// The line's new configuration.
        line: QuoteLine,
        /// When.
        at: Timestamp,
    },
    /// Remove a line.
    RemoveLine {
        /// The line to remove.
        line_id: LineId,
        /// When.
        at: Timestamp,
    },
    /// Record the pricing engine's result; the approval rule comes with it.
    Price {
        /// The price result snapshot.
        price: PriceResult,
        /// The approval thresholds in force.
        policy: ApprovalPolicy,
        /// When.
        at: Timestamp,
    },
    /// Grant the pending approval.
    Approve {
        /// Who approved.
        approver: String,
        /// When.
        at: Timestamp,
    },
    /// Refuse the pending approval.
    RejectApproval {
        /// Who refused.
        approver: String,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Record the proposal document generated for a revision.
    RecordProposal {
        /// The revision the document was rendered from.
        revision: u32,
        /// The document.
        artifact: ProposalArtifact,
        /// The version of the price book in force when the command is
        /// made: a revision priced under another is not proposed (rule
        /// `price_book_superseded`, as acceptance would refuse it).
        price_book: String,
        /// When.
        at: Timestamp,
    },
    /// Record the provider's signature evidence, as received.
    RecordSignature {
        /// The revision the provider says was signed.
        revision: u32,
        /// The evidence.
        signature: SignatureEvidence,
        /// When it was recorded.
        at: Timestamp,
    },
    /// Accept the quote; the order will bill to `billing_account`. The
    /// price must have been computed under `price_book`, the price book in
    /// force now: a price is fresh only inside its validity window *and*
    /// under the book in force (rule `price_book_superseded`).
    Accept {
        /// The billing account the order will be charged to (validated at the edge).
        billing_account: BillingAccountId,
        /// The version of the price book in force when the command is made.
        price_book: String,
        /// The tenant's capabilities now: every line's fulfillment plan
        /// must be able to run (rule `capability_disabled`).
        capabilities: Capabilities,
        /// When.
        at: Timestamp,
    },
    /// Close the quote because it ran out of time.
    Expire {
        /// When.
        at: Timestamp,
    },
    /// Close the quote at the seller's or customer's request.
    Withdraw {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// CRM now describes the customer differently from the quote's snapshot.
    ReportCustomerDrift {
        /// The fresh CRM snapshot.
        observed: CustomerSnapshot,
        /// When.
        at: Timestamp,
    },
    /// CRM answered the customer check in a shape nobody mapped.
    ReportCustomerCheckFailed {
        /// What CRM answered, as evidence.
        evidence: String,
        /// When.
        at: Timestamp,
    },
    /// CRM now says the customer's account is suspended.
    ReportCustomerSuspended {
        /// The CRM status.
        status: String,
        /// When.
        at: Timestamp,
    },
    /// Adopt a fresh customer snapshot after drift or a failed customer
    /// check.
    Revalidate {
        /// The snapshot the seller confirmed.
        customer: CustomerSnapshot,
        /// When.
        at: Timestamp,
    },
}
