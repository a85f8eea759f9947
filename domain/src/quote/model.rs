//! The snapshots and value objects a quote is made of.
//!
//! Everything here is a *snapshot* of a fact owned by another authority (CRM for the
//! customer, the catalog for offerings, the pricing engine for prices, the document
//! service for proposals, the e-signature provider for signatures), taken at a known
//! time and carried into the quote by a command.

use crate::ids::{ArtifactId, CustomerId, LineId, OfferingId, Segment, Timestamp};
use crate::money::{Money, Percent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the CRM said about the customer when the snapshot was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerSnapshot {
    /// The CRM's customer id.
    pub customer_id: CustomerId,
    /// The customer's legal or display name.
    pub name: String,
    /// The segment that selects approval thresholds.
    pub segment: Segment,
    /// The CRM's reference for the record version the snapshot was read from.
    pub authority_reference: String,
    /// When the snapshot was read.
    pub taken_at: Timestamp,
}

impl CustomerSnapshot {
    /// True when `other` describes the same customer with different business facts
    /// (name, segment or authority record); the read time alone is not drift.
    pub fn drifted_to(&self, other: &CustomerSnapshot) -> bool {
        self.name != other.name
            || self.segment != other.segment
            || self.authority_reference != other.authority_reference
    }
}

/// One configured line of a quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteLine {
    /// The line id, unique within the quote and kept on the order line.
    pub line_id: LineId,
    /// The catalog offering.
    pub offering_id: OfferingId,
    /// The catalog version of the offering.
    pub offering_version: u32,
    /// How many units; at least one.
    pub quantity: u32,
    /// The contract term in months; at least one.
    pub term_months: u32,
    /// Configured options, sorted by name so encoding is canonical.
    pub options: BTreeMap<String, String>,
}

/// Whether a charge is paid once or every month.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeKind {
    /// Charged once (installation, hardware).
    OneTime,
    /// Charged every month of the term.
    RecurringMonthly,
}

/// One priced component of a line, as the pricing engine computed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceComponent {
    /// The charge code billing knows the component by.
    pub charge_code: String,
    /// One-time or recurring.
    pub kind: ChargeKind,
    /// The net amount of the component.
    pub amount: Money,
}

/// The priced components of one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinePrice {
    /// The line these components price.
    pub line_id: LineId,
    /// The components, in the pricing engine's order.
    pub components: Vec<PriceComponent>,
}

/// The quote's totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTotals {
    /// The sum of one-time components.
    pub one_time: Money,
    /// The sum of monthly recurring components.
    pub recurring_monthly: Money,
}

/// The discount the price grants against list price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    /// The discount as a percentage of list price.
    pub percent: Percent,
    /// The discount amount.
    pub amount: Money,
}

/// The pricing engine's result, kept whole as a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceResult {
    /// The quote revision the price was computed for.
    pub revision: u32,
    /// Per-line components.
    pub lines: Vec<LinePrice>,
    /// The totals.
    pub totals: PriceTotals,
    /// The granted discount.
    pub discount: Discount,
    /// The first instant the price is valid.
    pub valid_from: Timestamp,
    /// The first instant the price is no longer valid.
    pub valid_until: Timestamp,
    /// The deterministic hash of every pricing input, for evidence and replay.
    pub input_hash: String,
    /// The version of the pricing policy (the rules and their configuration) that
    /// produced the price; evidence only, no rule reads it.
    pub policy_version: String,
    /// The price book the price was computed under. Acceptance requires it to be the
    /// book in force (rule `price_book_superseded`). Since `QuotePriced` schema
    /// version 2; a version 1 price is upcast with the book its `policy_version`
    /// named (see [`crate::quote::legacy::v1`]).
    pub price_book: String,
}

impl PriceResult {
    /// True when the price can be relied on at `at`: `valid_from <= at < valid_until`.
    pub fn is_valid_at(&self, at: Timestamp) -> bool {
        self.valid_from <= at && at < self.valid_until
    }

    /// The components priced for `line`, if the price covers it.
    pub fn components_of(&self, line: &LineId) -> Option<&[PriceComponent]> {
        self.lines
            .iter()
            .find(|priced| &priced.line_id == line)
            .map(|priced| priced.components.as_slice())
    }
}

/// The approval rule, supplied with the pricing command: a discount above the
/// segment's threshold needs a human approval.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApprovalPolicy {
    /// The version of the approval policy, recorded as evidence.
    pub policy_version: String,
    /// The highest discount that needs no approval, for segments not listed below.
    pub default_max_discount: Percent,
    /// The highest discount that needs no approval, per segment.
    pub max_discount_by_segment: BTreeMap<Segment, Percent>,
}

impl ApprovalPolicy {
    /// Why approval is needed for `discount` in `segment`, or `None` when it is not.
    pub fn approval_needed(&self, segment: &Segment, discount: Percent) -> Option<ApprovalReason> {
        let threshold = self
            .max_discount_by_segment
            .get(segment)
            .copied()
            .unwrap_or(self.default_max_discount);
        (discount > threshold).then(|| ApprovalReason {
            segment: segment.clone(),
            discount,
            threshold,
            policy_version: self.policy_version.clone(),
        })
    }
}

/// Why an approval is required: the rule that fired, with its inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalReason {
    /// The customer segment the threshold was read for.
    pub segment: Segment,
    /// The discount that was asked for.
    pub discount: Percent,
    /// The threshold it exceeded.
    pub threshold: Percent,
    /// The approval policy version.
    pub policy_version: String,
}

/// A generated proposal document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalArtifact {
    /// The document store's id.
    pub artifact_id: ArtifactId,
    /// The sha256 of the rendered document.
    pub artifact_hash: String,
    /// The template version it was rendered with.
    pub template_version: String,
}

/// The e-signature provider's evidence that a document was signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureEvidence {
    /// Who signed.
    pub signer: String,
    /// When they signed.
    pub signed_at: Timestamp,
    /// The provider's envelope or transaction reference.
    pub provider_reference: String,
    /// The sha256 of the document that was signed.
    pub artifact_hash: String,
}

/// A quote line with the charges that were accepted for it: what the order captures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedLine {
    /// The configured line.
    pub line: QuoteLine,
    /// The charges of the accepted price for this line.
    pub charges: Vec<PriceComponent>,
}
