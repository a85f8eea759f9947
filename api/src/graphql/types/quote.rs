//! The quote node: a quote of the list or in detail, fully typed.
//!
//! A node wraps either the list's [`QuoteSummary`] or the detail's
//! [`QuoteDetail`]. The summary fields answer from either; the detail
//! fields of a list node are read on first use through the request's
//! batched links ([`crate::graphql::links`]), one read for every quote of
//! the page that asks.
//!
//! The read model keeps only the latest price, approval, proposal and
//! signature (a late signature of an earlier revision does not replace a
//! later one; a new price drops its revision's proposal and signature),
//! each tagged with the revision it was for. The node shows each
//! under `price`, `approval`, `proposal` and `signature` only while it is for
//! the quote's current revision; once the quote moved to a later revision it
//! shows under `earlierRevisions` instead, as evidence that no longer counts.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, SimpleObject};
use domain::ids::{quote_stream, QuoteId};
use projections::{
    AcceptanceView, ApprovalView, ProposalView, QuoteDetail, QuoteSummary, SignatureView,
};
use tokio::sync::OnceCell;

use super::audit::AuditEntryNode;
use super::enums::{ApprovalState, QuoteStatus};
use super::order::OrderNode;
use super::scalars::{DateTime, Decimal, Money};
use super::Connection;
use crate::graphql::error::ApiResult;
use crate::graphql::links;

/// What a node was read from.
#[derive(Clone)]
enum Source {
    /// A quote of the list.
    Summary(Box<QuoteSummary>),
    /// A quote asked for by id, or linked from another node.
    Detail(Arc<QuoteDetail>),
}

/// A quote: its summary fields, and its detail fields read by id or, on a
/// list node, through the batched links.
#[derive(Clone)]
pub struct QuoteNode {
    source: Source,
    /// A list node's detail, read on the first detail field asked.
    loaded: OnceCell<Option<Arc<QuoteDetail>>>,
}

impl QuoteNode {
    /// The node of a quote's detail view.
    pub fn from_detail(view: QuoteDetail) -> ApiResult<Self> {
        Ok(Self::from_shared(Arc::new(view)))
    }

    /// The quote `id` of the caller's tenant through the request's batched
    /// links (`None` when there is none).
    pub(crate) async fn linked(ctx: &Context<'_>, id: QuoteId) -> ApiResult<Option<Self>> {
        Ok(links::quote(ctx, id).await?.map(Self::from_shared))
    }

    /// The node of a quote's detail view, shared with the links loader.
    pub fn from_shared(view: Arc<QuoteDetail>) -> Self {
        Self {
            source: Source::Detail(view),
            loaded: OnceCell::new(),
        }
    }

    /// The node of a quote of the list.
    pub fn from_summary(view: QuoteSummary) -> ApiResult<Self> {
        Ok(Self {
            source: Source::Summary(Box::new(view)),
            loaded: OnceCell::new(),
        })
    }

    /// The quote's id.
    fn quote_id(&self) -> &QuoteId {
        match &self.source {
            Source::Summary(s) => &s.quote_id,
            Source::Detail(d) => &d.quote_id,
        }
    }

    /// The detail view: the node's own, or a list node's read through the
    /// batched links (`None` if the quote left the read model meanwhile,
    /// as during a rebuild's swap).
    async fn detail(&self, ctx: &Context<'_>) -> ApiResult<Option<&QuoteDetail>> {
        match &self.source {
            Source::Detail(detail) => Ok(Some(detail)),
            Source::Summary(summary) => Ok(self
                .loaded
                .get_or_try_init(|| links::quote(ctx, summary.quote_id.clone()))
                .await?
                .as_deref()),
        }
    }

    /// The detail's revision-tagged evidence of the current revision
    /// (`current == true`) or of earlier ones (`current == false`).
    async fn evidence(&self, ctx: &Context<'_>, current: bool) -> ApiResult<Option<Evidence<'_>>> {
        let Some(detail) = self.detail(ctx).await? else {
            return Ok(None);
        };
        let keep = |revision: u32| (revision == detail.revision) == current;
        Ok(Some(Evidence {
            quote_revision: detail.revision,
            price: detail.price.as_ref().filter(|p| keep(p.revision)),
            approval: detail.approval.as_ref().filter(|a| keep(a.revision)),
            proposal: detail.proposal.as_ref().filter(|p| keep(p.revision)),
            signature: detail.signature.as_ref().filter(|s| keep(s.revision)),
        }))
    }
}

/// The price, approval, proposal and signature of one side of the
/// current/earlier split.
struct Evidence<'a> {
    quote_revision: u32,
    price: Option<&'a domain::quote::PriceResult>,
    approval: Option<&'a ApprovalView>,
    proposal: Option<&'a ProposalView>,
    signature: Option<&'a SignatureView>,
}

impl Evidence<'_> {
    fn is_empty(&self) -> bool {
        self.price.is_none()
            && self.approval.is_none()
            && self.proposal.is_none()
            && self.signature.is_none()
    }

    fn price(&self) -> Option<PriceResult> {
        self.price.map(|p| PriceResult::new(p, self.quote_revision))
    }

    fn approval(&self) -> Option<QuoteApproval> {
        self.approval
            .map(|a| QuoteApproval::new(a, self.quote_revision))
    }

    fn proposal(&self) -> Option<QuoteProposal> {
        self.proposal
            .map(|p| QuoteProposal::new(p, self.quote_revision))
    }

    fn signature(&self) -> Option<QuoteSignature> {
        self.signature
            .map(|s| QuoteSignature::new(s, self.quote_revision))
    }
}

/// A quote: its status, revision, customer, lines, price and the evidence
/// of its approval, proposal, signature and acceptance, linked to the
/// order it captured and to its audit trail. On a quote of the list the
/// detail fields are read through the batched links.
#[Object]
impl QuoteNode {
    /// The quote id.
    async fn id(&self) -> String {
        self.quote_id().to_string()
    }

    /// Where the quote stands.
    async fn status(&self) -> QuoteStatus {
        match &self.source {
            Source::Summary(s) => s.status.into(),
            Source::Detail(d) => d.status.into(),
        }
    }

    /// The current revision (1 at creation; a line change after pricing
    /// starts the next one).
    async fn revision(&self) -> u32 {
        match &self.source {
            Source::Summary(s) => s.revision,
            Source::Detail(d) => d.revision,
        }
    }

    /// The quote stream's version after the latest event the read model
    /// applied: pass it as `expectedVersion` of the next command.
    async fn version(&self) -> u64 {
        match &self.source {
            Source::Summary(s) => s.version,
            Source::Detail(d) => d.version,
        }
    }

    /// The CRM's customer id.
    async fn customer_id(&self) -> String {
        match &self.source {
            Source::Summary(s) => s.customer_id.to_string(),
            Source::Detail(d) => d.customer.customer_id.to_string(),
        }
    }

    /// The customer's name, from the adopted customer snapshot.
    async fn customer_name(&self) -> &str {
        match &self.source {
            Source::Summary(s) => &s.customer_name,
            Source::Detail(d) => &d.customer.name,
        }
    }

    /// When the quote was created.
    async fn created_at(&self) -> DateTime {
        match &self.source {
            Source::Summary(s) => s.created_at.into(),
            Source::Detail(d) => d.created_at.into(),
        }
    }

    /// The time of the quote's latest event.
    async fn updated_at(&self) -> DateTime {
        match &self.source {
            Source::Summary(s) => s.updated_at.into(),
            Source::Detail(d) => d.updated_at.into(),
        }
    }

    /// How many lines the current revision has.
    async fn line_count(&self) -> u32 {
        match &self.source {
            Source::Summary(s) => s.line_count,
            Source::Detail(d) => u32::try_from(d.lines.len()).unwrap_or(u32::MAX),
        }
    }

    /// The one-time total of the latest price, null before the first
    /// pricing. The latest price may be for an earlier revision: in detail,
    /// `price` (null then) and `earlierRevisions.price` tell which.
    async fn one_time_total(&self) -> Option<Money> {
        match &self.source {
            Source::Summary(s) => s.one_time_total.as_ref().map(Money::from),
            Source::Detail(d) => d.price.as_ref().map(|p| Money::from(&p.totals.one_time)),
        }
    }

    /// The monthly recurring total of the latest price, null before the
    /// first pricing. Same rule as `oneTimeTotal` for earlier revisions.
    async fn recurring_monthly_total(&self) -> Option<Money> {
        match &self.source {
            Source::Summary(s) => s.recurring_monthly_total.as_ref().map(Money::from),
            Source::Detail(d) => d
                .price
                .as_ref()
                .map(|p| Money::from(&p.totals.recurring_monthly)),
        }
    }

    /// True when the CRM reported a customer that differs from the adopted
    /// snapshot (see `customerDrift`), or answered the customer check with
    /// a record nobody could read (see `customerCheckFailure`): the quote
    /// must be revalidated.
    async fn needs_revalidation(&self) -> bool {
        match &self.source {
            Source::Summary(s) => s.needs_revalidation,
            Source::Detail(d) => d.customer_drift.is_some() || d.customer_check_failure.is_some(),
        }
    }

    /// The customer snapshot the quote adopted.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CustomerSnapshot>> {
        Ok(self
            .detail(ctx)
            .await?
            .map(|d| CustomerSnapshot::from(&d.customer)))
    }

    /// The catalog version the quote is configured against.
    async fn catalog_version(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(self.detail(ctx).await?.map(|d| d.catalog_version.as_str()))
    }

    /// The configured lines of the current revision.
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Vec<QuoteLine>>> {
        Ok(self
            .detail(ctx)
            .await?
            .map(|d| d.lines.iter().map(QuoteLine::from).collect()))
    }

    /// The price of the current revision; null before pricing
    /// and when the latest price is for an earlier revision (it shows under
    /// `earlierRevisions` then). A price also has a validity window
    /// (`validFrom`, `validUntil`) to compare with the time of use.
    async fn price(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<PriceResult>> {
        Ok(self.evidence(ctx, true).await?.and_then(|e| e.price()))
    }

    /// The approval of the current revision's price; null when
    /// none was demanded, and when the latest approval is for an earlier
    /// revision.
    async fn approval(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<QuoteApproval>> {
        Ok(self.evidence(ctx, true).await?.and_then(|e| e.approval()))
    }

    /// The proposal of the current revision; null when none was
    /// generated for it.
    async fn proposal(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<QuoteProposal>> {
        Ok(self.evidence(ctx, true).await?.and_then(|e| e.proposal()))
    }

    /// The signature of the current revision; null when none
    /// was recorded for it.
    async fn signature(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<QuoteSignature>> {
        Ok(self.evidence(ctx, true).await?.and_then(|e| e.signature()))
    }

    /// The latest price, approval, proposal and signature that
    /// were recorded for a revision before the current one, kept as evidence
    /// (they no longer count). Null when there is none.
    async fn earlier_revisions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<QuoteEarlierRevisions>> {
        let Some(earlier) = self.evidence(ctx, false).await? else {
            return Ok(None);
        };
        Ok((!earlier.is_empty()).then(|| QuoteEarlierRevisions {
            price: earlier.price(),
            approval: earlier.approval(),
            proposal: earlier.proposal(),
            signature: earlier.signature(),
        }))
    }

    /// The acceptance evidence the order is captured from;
    /// null until accepted.
    async fn acceptance(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<QuoteAcceptance>> {
        Ok(self
            .detail(ctx)
            .await?
            .and_then(|d| d.acceptance.as_ref())
            .map(QuoteAcceptance::from))
    }

    /// The order the acceptance captured; null until the quote is accepted
    /// and while the order is not yet in the orders read model (the capture
    /// follows the acceptance within moments).
    async fn order(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<OrderNode>> {
        let Some(acceptance) = self.detail(ctx).await?.and_then(|d| d.acceptance.as_ref()) else {
            return Ok(None);
        };
        Ok(OrderNode::linked(ctx, acceptance.order_id.clone()).await?)
    }

    /// The quote's events, oldest first, from the audit trail (the quote's
    /// stream).
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<AuditEntryNode>> {
        Ok(AuditEntryNode::of_stream(
            ctx,
            &quote_stream(self.quote_id()),
            first,
            after,
        )?)
    }

    /// What the CRM reported last when it differs from the
    /// adopted snapshot; null when there is no drift (also on a list node:
    /// see `needsRevalidation` there).
    async fn customer_drift(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<CustomerSnapshot>> {
        Ok(self
            .detail(ctx)
            .await?
            .and_then(|d| d.customer_drift.as_ref())
            .map(CustomerSnapshot::from))
    }

    /// The CRM status (`SUSPENDED`) when CRM reported the customer's
    /// account suspended: the quote may still be sold, but every price
    /// needs an approver (`approval.state` `REQUIRED` without a discount
    /// reason). Null for an active account.
    async fn customer_suspension(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(self
            .detail(ctx)
            .await?
            .and_then(|d| d.customer_suspension.as_deref()))
    }

    /// Why the acceptance's customer check failed, when CRM answered a
    /// record nobody could read (a schema mismatch): the quote is in
    /// integration fallout and refuses acceptance
    /// (`customer_check_failed`) until someone revalidates the customer
    /// (`revalidateQuoteCustomer`) once CRM answers properly. Null
    /// otherwise.
    async fn customer_check_failure(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<&str>> {
        Ok(self
            .detail(ctx)
            .await?
            .and_then(|d| d.customer_check_failure.as_deref()))
    }

    /// Why the quote was withdrawn; null unless withdrawn.
    async fn withdrawal_reason(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(self
            .detail(ctx)
            .await?
            .and_then(|d| d.withdrawal_reason.as_deref()))
    }
}

/// What the CRM said about the customer when the snapshot was taken.
#[derive(SimpleObject)]
pub(crate) struct CustomerSnapshot {
    /// The CRM's customer id.
    customer_id: String,
    /// The customer's legal or display name.
    name: String,
    /// The segment that selects approval thresholds.
    segment: String,
    /// The CRM's reference for the record version the snapshot was read from.
    authority_reference: String,
    /// When the snapshot was read.
    taken_at: DateTime,
}

impl From<&domain::quote::CustomerSnapshot> for CustomerSnapshot {
    fn from(c: &domain::quote::CustomerSnapshot) -> Self {
        Self {
            customer_id: c.customer_id.to_string(),
            name: c.name.clone(),
            segment: c.segment.to_string(),
            authority_reference: c.authority_reference.clone(),
            taken_at: c.taken_at.into(),
        }
    }
}

/// One configured line of a quote.
#[derive(SimpleObject)]
pub(crate) struct QuoteLine {
    /// The line id, unique within the quote and kept on the order line.
    line_id: String,
    /// The catalog offering.
    offering_id: String,
    /// The catalog version of the offering.
    offering_version: u32,
    /// How many units; at least one.
    quantity: u32,
    /// The contract term in months; at least one.
    term_months: u32,
    /// The configured options, sorted by name.
    options: Vec<QuoteLineOption>,
}

impl From<&domain::quote::QuoteLine> for QuoteLine {
    fn from(line: &domain::quote::QuoteLine) -> Self {
        Self {
            line_id: line.line_id.to_string(),
            offering_id: line.offering_id.to_string(),
            offering_version: line.offering_version,
            quantity: line.quantity,
            term_months: line.term_months,
            options: line
                .options
                .iter()
                .map(|(name, value)| QuoteLineOption {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

/// One configured option of a line, e.g. `bandwidth` = `1g`.
#[derive(SimpleObject)]
pub(crate) struct QuoteLineOption {
    /// The option's name.
    name: String,
    /// The chosen value.
    value: String,
}

/// Whether a charge is paid once or every month.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::quote::ChargeKind")]
pub(crate) enum ChargeKind {
    /// Charged once (installation, hardware).
    OneTime,
    /// Charged every month of the term.
    RecurringMonthly,
}

/// One priced component of a line, as the pricing engine computed it.
#[derive(SimpleObject)]
pub(crate) struct PriceComponent {
    /// The charge code billing knows the component by.
    charge_code: String,
    /// One-time or recurring.
    kind: ChargeKind,
    /// The net amount of the component.
    amount: Money,
}

impl From<&domain::quote::PriceComponent> for PriceComponent {
    fn from(c: &domain::quote::PriceComponent) -> Self {
        Self {
            charge_code: c.charge_code.clone(),
            kind: c.kind.into(),
            amount: Money::from(&c.amount),
        }
    }
}

/// The priced components of one line.
#[derive(SimpleObject)]
pub(crate) struct LinePrice {
    /// The line these components price.
    line_id: String,
    /// The components, in the pricing engine's order.
    components: Vec<PriceComponent>,
}

/// The quote's totals.
#[derive(SimpleObject)]
pub(crate) struct PriceTotals {
    /// The sum of one-time components.
    one_time: Money,
    /// The sum of monthly recurring components.
    recurring_monthly: Money,
}

/// The discount the price grants against list price.
#[derive(SimpleObject)]
pub(crate) struct Discount {
    /// The discount as a percentage of list price (`12.5` is 12.5 %).
    percent: Decimal,
    /// The discount amount.
    amount: Money,
}

/// The pricing engine's result for one revision of the quote.
#[derive(SimpleObject)]
pub(crate) struct PriceResult {
    /// The quote revision the price was computed for.
    revision: u32,
    /// True when `revision` is the quote's current revision. Whether the
    /// price is still valid at a given time is `validFrom <= t < validUntil`.
    current: bool,
    /// Per-line components.
    lines: Vec<LinePrice>,
    /// The totals.
    totals: PriceTotals,
    /// The granted discount.
    discount: Discount,
    /// The first instant the price is valid.
    valid_from: DateTime,
    /// The first instant the price is no longer valid.
    valid_until: DateTime,
    /// The deterministic hash of every pricing input, for evidence and
    /// replay.
    input_hash: String,
    /// The version of the pricing policy that produced the price (evidence).
    policy_version: String,
    /// The price book the price was computed under; acceptance requires it
    /// to be the book in force.
    price_book: String,
}

impl PriceResult {
    fn new(p: &domain::quote::PriceResult, quote_revision: u32) -> Self {
        Self {
            revision: p.revision,
            current: p.revision == quote_revision,
            lines: p
                .lines
                .iter()
                .map(|l| LinePrice {
                    line_id: l.line_id.to_string(),
                    components: l.components.iter().map(PriceComponent::from).collect(),
                })
                .collect(),
            totals: PriceTotals {
                one_time: Money::from(&p.totals.one_time),
                recurring_monthly: Money::from(&p.totals.recurring_monthly),
            },
            discount: Discount {
                percent: Decimal(p.discount.percent.0),
                amount: Money::from(&p.discount.amount),
            },
            valid_from: p.valid_from.into(),
            valid_until: p.valid_until.into(),
            input_hash: p.input_hash.clone(),
            policy_version: p.policy_version.clone(),
            price_book: p.price_book.clone(),
        }
    }
}

/// Why an approval is required: the rule that fired, with its inputs.
#[derive(SimpleObject)]
pub(crate) struct ApprovalReason {
    /// The customer segment the threshold was read for.
    segment: String,
    /// The discount that was asked for, in percent.
    discount: Decimal,
    /// The threshold it exceeded, in percent.
    threshold: Decimal,
    /// The approval policy version.
    policy_version: String,
}

impl From<&domain::quote::ApprovalReason> for ApprovalReason {
    fn from(r: &domain::quote::ApprovalReason) -> Self {
        Self {
            segment: r.segment.to_string(),
            discount: Decimal(r.discount.0),
            threshold: Decimal(r.threshold.0),
            policy_version: r.policy_version.clone(),
        }
    }
}

/// The approval a revision's price needed.
#[derive(SimpleObject)]
pub(crate) struct QuoteApproval {
    /// The revision it is for.
    revision: u32,
    /// True when `revision` is the quote's current revision.
    current: bool,
    /// Where it stands.
    state: ApprovalState,
    /// The rule that demanded it (null when the decision was recorded
    /// without a recorded demand).
    reason: Option<ApprovalReason>,
    /// Who granted or refused it.
    decided_by: Option<String>,
    /// Why it was refused.
    rejection_reason: Option<String>,
    /// When it was demanded.
    required_at: DateTime,
    /// When it was decided.
    decided_at: Option<DateTime>,
}

impl QuoteApproval {
    fn new(a: &ApprovalView, quote_revision: u32) -> Self {
        Self {
            revision: a.revision,
            current: a.revision == quote_revision,
            state: a.state.into(),
            reason: a.reason.as_ref().map(ApprovalReason::from),
            decided_by: a.decided_by.clone(),
            rejection_reason: a.rejection_reason.clone(),
            required_at: a.required_at.into(),
            decided_at: a.decided_at.map(DateTime::from),
        }
    }
}

/// A generated proposal document for one revision.
#[derive(SimpleObject)]
pub(crate) struct QuoteProposal {
    /// The revision it renders.
    revision: u32,
    /// True when `revision` is the quote's current revision.
    current: bool,
    /// The document store's id.
    artifact_id: String,
    /// The sha256 of the rendered document.
    artifact_hash: String,
    /// The template version it was rendered with.
    template_version: String,
    /// When it was generated.
    at: DateTime,
}

impl QuoteProposal {
    fn new(p: &ProposalView, quote_revision: u32) -> Self {
        Self {
            revision: p.revision,
            current: p.revision == quote_revision,
            artifact_id: p.artifact.artifact_id.to_string(),
            artifact_hash: p.artifact.artifact_hash.clone(),
            template_version: p.artifact.template_version.clone(),
            at: p.at.into(),
        }
    }
}

/// The e-signature provider's evidence that a revision's document was
/// signed.
#[derive(SimpleObject)]
pub(crate) struct QuoteSignature {
    /// The revision the provider named.
    revision: u32,
    /// True when `revision` is the quote's current revision.
    current: bool,
    /// Who signed.
    signer: String,
    /// When they signed (the provider's time).
    signed_at: DateTime,
    /// The provider's envelope or transaction reference.
    provider_reference: String,
    /// The sha256 of the document that was signed.
    artifact_hash: String,
    /// When the evidence was recorded.
    at: DateTime,
}

impl QuoteSignature {
    fn new(s: &SignatureView, quote_revision: u32) -> Self {
        Self {
            revision: s.revision,
            current: s.revision == quote_revision,
            signer: s.evidence.signer.clone(),
            signed_at: s.evidence.signed_at.into(),
            provider_reference: s.evidence.provider_reference.clone(),
            artifact_hash: s.evidence.artifact_hash.clone(),
            at: s.at.into(),
        }
    }
}

/// The latest price, approval, proposal and signature recorded for a
/// revision before the current one. Each carries its own revision: they
/// need not be the same one.
#[derive(SimpleObject)]
pub(crate) struct QuoteEarlierRevisions {
    /// The latest price, when it is for an earlier revision.
    price: Option<PriceResult>,
    /// The latest approval, when it is for an earlier revision.
    approval: Option<QuoteApproval>,
    /// The latest proposal, when it is for an earlier revision.
    proposal: Option<QuoteProposal>,
    /// The latest signature, when it is for an earlier revision.
    signature: Option<QuoteSignature>,
}

/// A quote line with the charges that were accepted for it: what the order
/// captures.
#[derive(SimpleObject)]
pub(crate) struct AcceptedLine {
    /// The configured line.
    line: QuoteLine,
    /// The charges of the accepted price for this line.
    charges: Vec<PriceComponent>,
}

/// The acceptance evidence the order is captured from.
#[derive(SimpleObject)]
pub(crate) struct QuoteAcceptance {
    /// The order the acceptance captures (see `QuoteNode.order` for the
    /// order itself).
    order_id: String,
    /// The accepted revision.
    revision: u32,
    /// The customer.
    customer_id: String,
    /// The billing account to charge.
    billing_account: String,
    /// The accepted price's input hash.
    price_input_hash: String,
    /// The hash of the signed document.
    signed_artifact_hash: String,
    /// The accepted lines with their charges.
    lines: Vec<AcceptedLine>,
    /// When the quote was accepted.
    at: DateTime,
}

impl From<&AcceptanceView> for QuoteAcceptance {
    fn from(a: &AcceptanceView) -> Self {
        Self {
            order_id: a.order_id.to_string(),
            revision: a.revision,
            customer_id: a.customer_id.to_string(),
            billing_account: a.billing_account.to_string(),
            price_input_hash: a.price_input_hash.clone(),
            signed_artifact_hash: a.signed_artifact_hash.clone(),
            lines: a
                .lines
                .iter()
                .map(|l| AcceptedLine {
                    line: QuoteLine::from(&l.line),
                    charges: l.charges.iter().map(PriceComponent::from).collect(),
                })
                .collect(),
            at: a.at.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Schema};
    use domain::testing::fixtures as fx;
    use projections::{ProposalView, QuoteDetail, QuoteStatus, QuoteSummary};
    use serde_json::{json, Value};

    use super::QuoteNode;

    struct TestQuery(QuoteNode);

    #[async_graphql::Object]
    impl TestQuery {
        async fn quote(&self) -> QuoteNode {
            self.0.clone()
        }
    }

    /// The sample quote: one line, priced and proposed for revision 1.
    fn detail() -> QuoteDetail {
        QuoteDetail {
            quote_id: fx::quote_id(),
            tenant_id: fx::tenant(),
            status: QuoteStatus::Proposed,
            revision: 1,
            customer: fx::customer(),
            catalog_version: "catalog-2024.06".to_owned(),
            lines: vec![fx::line("l1")],
            price: Some(fx::price(1, &["l1"], fx::percent(5))),
            approval: None,
            proposal: Some(ProposalView {
                revision: 1,
                artifact: fx::proposal("art-1"),
                at: fx::at(1_000),
            }),
            signature: None,
            acceptance: None,
            customer_drift: None,
            customer_suspension: None,
            customer_check_failure: None,
            withdrawal_reason: None,
            created_at: fx::T0,
            updated_at: fx::at(1_000),
            version: 4,
        }
    }

    async fn run(node: QuoteNode, query: &str) -> Value {
        let schema = Schema::build(TestQuery(node), EmptyMutation, EmptySubscription).finish();
        let response = schema.execute(query).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        response.data.into_json().unwrap_or(Value::Null)
    }

    const QUERY: &str = "{ quote { status createdAt oneTimeTotal { amount currency }
        lines { offeringId options { name value } }
        price { revision current discount { percent } lines { components { chargeCode kind } } }
        proposal { artifactHash }
        earlierRevisions { price { revision current } proposal { revision current } } } }";

    #[tokio::test]
    async fn a_detail_shows_its_current_revision_apart_from_earlier_ones() -> Result<(), String> {
        let node = QuoteNode::from_detail(detail()).map_err(|e| format!("{e:?}"))?;
        let data = run(node, QUERY).await;
        let quote = &data["quote"];
        assert_eq!(quote["status"], "PROPOSED");
        assert_eq!(quote["createdAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(
            quote["oneTimeTotal"],
            json!({"amount": "99.00", "currency": "EUR"})
        );
        assert_eq!(
            quote["lines"][0]["options"],
            json!([{"name": "bandwidth", "value": "1g"}])
        );
        assert_eq!(quote["price"]["current"], true);
        assert_eq!(quote["price"]["discount"]["percent"], "5");
        assert_eq!(
            quote["price"]["lines"][0]["components"][1]["kind"],
            "RECURRING_MONTHLY"
        );
        assert_eq!(quote["proposal"]["artifactHash"], "art-1");
        assert_eq!(quote["earlierRevisions"], Value::Null);

        // A line change starts revision 2: the old price and proposal move.
        let bumped = QuoteDetail {
            revision: 2,
            status: QuoteStatus::Draft,
            ..detail()
        };
        let node = QuoteNode::from_detail(bumped).map_err(|e| format!("{e:?}"))?;
        let data = run(node, QUERY).await;
        let quote = &data["quote"];
        assert_eq!(quote["price"], Value::Null);
        assert_eq!(quote["proposal"], Value::Null);
        assert_eq!(
            quote["earlierRevisions"]["price"],
            json!({"revision": 1, "current": false})
        );
        assert_eq!(
            quote["earlierRevisions"]["proposal"],
            json!({"revision": 1, "current": false})
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_list_node_answers_its_summary_without_reading_and_its_detail_through_links(
    ) -> Result<(), String> {
        let summary = QuoteSummary::from(&detail());
        let node = QuoteNode::from_summary(summary).map_err(|e| format!("{e:?}"))?;
        let data = run(
            node.clone(),
            "{ quote { status revision oneTimeTotal { amount } lineCount } }",
        )
        .await;
        let quote = &data["quote"];
        assert_eq!(quote["status"], "PROPOSED");
        assert_eq!(quote["oneTimeTotal"]["amount"], "99.00");
        assert_eq!(quote["lineCount"], 1);
        // Detail fields go through the request's links: a schema run
        // without them says so instead of answering a silent null.
        let schema = Schema::build(TestQuery(node), EmptyMutation, EmptySubscription).finish();
        let response = schema.execute("{ quote { lines { offeringId } } }").await;
        assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
        Ok(())
    }
}
