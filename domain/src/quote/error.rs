//! The rules a quote can refuse a command by, one variant per rule.

use crate::decider::RuleViolation;

/// Why a quote refused a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// The quote does not exist yet.
    #[error("quote does not exist")]
    NotCreated,
    /// The quote already exists.
    #[error("quote already exists")]
    AlreadyCreated,
    /// The quote is accepted and can no longer change.
    #[error("quote is already accepted")]
    AlreadyAccepted,
    /// The quote is expired.
    #[error("quote is expired")]
    Expired,
    /// The quote is withdrawn.
    #[error("quote is withdrawn")]
    Withdrawn,
    /// A line with this id already exists.
    #[error("line already exists")]
    LineAlreadyExists,
    /// No line has this id.
    #[error("line not found")]
    LineNotFound,
    /// A line's quantity must be 1 to [`super::limits::MAX_QUANTITY`].
    #[error("quantity must be 1 to {max}", max = super::limits::MAX_QUANTITY)]
    InvalidQuantity,
    /// A line's term must be 1 to [`super::limits::MAX_TERM_MONTHS`] months.
    #[error("term must be 1 to {max} months", max = super::limits::MAX_TERM_MONTHS)]
    InvalidTerm,
    /// A quote without lines cannot be priced.
    #[error("quote has no lines")]
    NoLines,
    /// The price result does not price exactly the quote's current lines.
    #[error("price does not cover the quote lines")]
    PriceDoesNotCoverLines,
    /// The price's validity window is empty.
    #[error("price validity window is empty")]
    InvalidValidityWindow,
    /// There is no price.
    #[error("price is missing")]
    PriceMissing,
    /// The price is outside its validity window.
    #[error("price is stale")]
    PriceStale,
    /// The price was computed under a price book that is no longer in force.
    #[error("price was computed under price book `{priced_under}`, and `{in_force}` is in force")]
    PriceBookSuperseded {
        /// The book the price was computed under.
        priced_under: String,
        /// The book in force.
        in_force: String,
    },
    /// The price was computed for another revision.
    #[error("price is for another revision")]
    PriceForAnotherRevision,
    /// No approval is pending.
    #[error("no approval is pending")]
    ApprovalNotPending,
    /// An approval is required and has not been granted.
    #[error("approval is required and missing")]
    ApprovalMissing,
    /// The required approval was refused.
    #[error("approval was rejected")]
    ApprovalRejected,
    /// The proposal was rendered from another revision.
    #[error("proposal is for another revision")]
    ProposalForAnotherRevision,
    /// There is no proposal for the current revision.
    #[error("proposal is missing")]
    ProposalMissing,
    /// There is no signature.
    #[error("signature is missing")]
    SignatureMissing,
    /// The signature is for a document other than the current proposal.
    #[error("signature is for another artifact")]
    SignatureForAnotherArtifact,
    /// The signature is for another revision.
    #[error("signature is for another revision")]
    SignatureForAnotherRevision,
    /// Customer drift was reported and not revalidated.
    #[error("customer drift is unresolved")]
    CustomerDriftUnresolved,
    /// CRM's last answer to the customer check could not be read: the
    /// quote is in integration fallout until someone revalidates.
    #[error(
        "the customer check failed (CRM answered an unreadable record); revalidate the customer"
    )]
    CustomerCheckFailed,
    /// A line's fulfillment needs a capability the tenant has disabled:
    /// the order would be captured with a step nothing may send.
    #[error("line `{line_id}` needs capability {capability}, which is disabled for this tenant")]
    CapabilityDisabled {
        /// The first line that needs it.
        line_id: String,
        /// The disabled capability.
        capability: crate::capability::Capability,
    },
    /// A line's offering is not in the price book in force.
    #[error("offering `{0}` is not in the price book")]
    OfferingNotPriced(String),
    /// A discount is negative or above 100 %.
    #[error("discount must be between 0 and 100 percent")]
    InvalidDiscount,
    /// A line has more options than a line may carry.
    #[error("a line carries at most {max} options", max = super::limits::MAX_OPTIONS_PER_LINE)]
    TooManyOptions,
    /// The quote's lines, with this one, would weigh more than the events
    /// that carry them to the order can hold
    /// ([`super::limits::MAX_LINES_WEIGHT`]).
    #[error(
        "with this line the quote's lines would weigh {weight} bytes, over the {max} its acceptance and order can carry: split the quote, or shorten the lines' options",
        max = super::limits::MAX_LINES_WEIGHT
    )]
    QuoteTooLarge {
        /// The lines' weight with the line ([`super::limits::line_weight`]).
        weight: usize,
    },
    /// The snapshot describes another customer.
    #[error("snapshot is for another customer")]
    CustomerMismatch,
    /// There is no drift and no failed customer check to revalidate.
    #[error("no customer drift or failed customer check to revalidate")]
    NoDriftToRevalidate,
    /// The quote's catalog version was retired: no new quote and no new
    /// price against it (an accepted quote keeps it).
    #[error("catalog version `{version}` is retired; quote against an active version")]
    CatalogVersionRetired {
        /// The retired version.
        version: String,
    },
    /// The tenant's catalog is managed and never activated this version.
    #[error("catalog version `{version}` is not active in this tenant's catalog")]
    CatalogVersionNotActive {
        /// The version.
        version: String,
    },
    /// The quote's price is still valid: it cannot expire yet.
    #[error("the quote is valid until {until_ms} (ms since the epoch)")]
    StillValid {
        /// The end of the current price's validity.
        until_ms: i64,
    },
}

impl RuleViolation for QuoteError {
    fn rule(&self) -> &'static str {
        match self {
            QuoteError::NotCreated => "quote_not_created",
            QuoteError::AlreadyCreated => "quote_already_created",
            QuoteError::AlreadyAccepted => "quote_already_accepted",
            QuoteError::Expired => "quote_expired",
            QuoteError::Withdrawn => "quote_withdrawn",
            QuoteError::LineAlreadyExists => "line_already_exists",
            QuoteError::LineNotFound => "line_not_found",
            QuoteError::InvalidQuantity => "invalid_quantity",
            QuoteError::InvalidTerm => "invalid_term",
            QuoteError::NoLines => "no_lines",
            QuoteError::PriceDoesNotCoverLines => "price_does_not_cover_lines",
            QuoteError::InvalidValidityWindow => "invalid_validity_window",
            QuoteError::PriceMissing => "price_missing",
            QuoteError::PriceStale => "price_stale",
            QuoteError::PriceBookSuperseded { .. } => "price_book_superseded",
            QuoteError::PriceForAnotherRevision => "price_for_another_revision",
            QuoteError::ApprovalNotPending => "approval_not_pending",
            QuoteError::ApprovalMissing => "approval_missing",
            QuoteError::ApprovalRejected => "approval_rejected",
            QuoteError::ProposalForAnotherRevision => "proposal_for_another_revision",
            QuoteError::ProposalMissing => "proposal_missing",
            QuoteError::SignatureMissing => "signature_missing",
            QuoteError::SignatureForAnotherArtifact => "signature_for_another_artifact",
            QuoteError::SignatureForAnotherRevision => "signature_for_another_revision",
            QuoteError::CustomerDriftUnresolved => "customer_drift_unresolved",
            QuoteError::CustomerCheckFailed => "customer_check_failed",
            QuoteError::CapabilityDisabled { .. } => "capability_disabled",
            QuoteError::OfferingNotPriced(_) => "offering_not_in_price_book",
            QuoteError::InvalidDiscount => "invalid_discount",
            QuoteError::TooManyOptions => "too_many_options",
            QuoteError::QuoteTooLarge { .. } => "quote_too_large",
            QuoteError::CustomerMismatch => "customer_mismatch",
            QuoteError::NoDriftToRevalidate => "no_drift_to_revalidate",
            QuoteError::StillValid { .. } => "quote_still_valid",
            QuoteError::CatalogVersionRetired { .. } => "catalog_version_retired",
            QuoteError::CatalogVersionNotActive { .. } => "catalog_version_not_active",
        }
    }
}
