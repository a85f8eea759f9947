//! Quotes: list by tenant (status, customer, updated since) and detail.
//!
//! Keys (after the tenant prefix), newest quote first:
//! - `0x01 | quote id` → [`QuoteDetail`]
//! - `0x02 | created desc | quote id` → quote id
//! - `0x03 | status | created desc | quote id` → quote id
//! - `0x04 | customer id | created desc | quote id` → quote id
//!
//! Lists are ordered by creation time, which never changes, so only the
//! status index moves as a quote advances; `updated since` is a filter.

use domain::ids::{
    BillingAccountId, CustomerId, OrderId, QuoteId, StreamKind, TenantId, Timestamp,
};
use domain::money::Money;
use domain::quote::{
    proposal_voids_signature, signature_replaces, AcceptedLine, ApprovalReason, CustomerSnapshot,
    PriceResult, ProposalArtifact, QuoteEvent, QuoteLine, SignatureEvidence,
};
use serde::{Deserialize, Serialize};

use super::{decode_row, missing, same_tenant, stream_id_part};
use crate::commit::Writes;
use crate::error::{FoldError, QueryError};
use crate::event::{Decoded, Payload};
use crate::keys::{self, KeyBuf};
use crate::page::{List, Page, Scan};
use crate::projector::Projector;
use crate::store::{Row, RowCache};

const ROW: u8 = 0x01;
const BY_CREATED: u8 = 0x02;
const BY_STATUS: u8 = 0x03;
const BY_CUSTOMER: u8 = 0x04;
const NAME: &str = "quotes";

/// Where a quote stands, as the list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuoteStatus {
    /// Being configured (or reconfigured in a new revision); no valid price.
    Draft,
    /// Priced for the current revision; no approval needed or not yet asked.
    Priced,
    /// The price waits for a human approval.
    PendingApproval,
    /// The price was approved.
    Approved,
    /// The approval was refused.
    ApprovalRejected,
    /// A proposal document was generated.
    Proposed,
    /// Signature evidence was recorded.
    Signed,
    /// Accepted (final).
    Accepted,
    /// Expired (final).
    Expired,
    /// Withdrawn (final).
    Withdrawn,
}

impl QuoteStatus {
    fn code(self) -> u8 {
        match self {
            Self::Draft => 0,
            Self::Priced => 1,
            Self::PendingApproval => 2,
            Self::Approved => 3,
            Self::ApprovalRejected => 4,
            Self::Proposed => 5,
            Self::Signed => 6,
            Self::Accepted => 7,
            Self::Expired => 8,
            Self::Withdrawn => 9,
        }
    }
}

/// Where the approval of a revision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalState {
    /// A rule demanded approval; nobody decided yet.
    Required,
    /// Granted.
    Granted,
    /// Refused.
    Rejected,
}

/// The approval of the current price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    /// The revision it is for.
    pub revision: u32,
    /// Where it stands.
    pub state: ApprovalState,
    /// The rule that demanded it.
    pub reason: Option<ApprovalReason>,
    /// Who granted or refused it.
    pub decided_by: Option<String>,
    /// Why it was refused.
    pub rejection_reason: Option<String>,
    /// When it was demanded.
    pub required_at: Timestamp,
    /// When it was decided.
    pub decided_at: Option<Timestamp>,
}

impl ApprovalView {
    /// An approval of `revision` demanded at `at` (for `reason`, when a
    /// discount rule demanded it), not decided yet.
    fn required(revision: u32, reason: Option<ApprovalReason>, at: Timestamp) -> Self {
        Self {
            revision,
            state: ApprovalState::Required,
            reason,
            decided_by: None,
            rejection_reason: None,
            required_at: at,
            decided_at: None,
        }
    }
}

/// A generated proposal, tagged with the revision it renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    /// The revision.
    pub revision: u32,
    /// The document.
    pub artifact: ProposalArtifact,
    /// When it was generated.
    pub at: Timestamp,
}

/// Signature evidence, tagged with the revision the provider named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureView {
    /// The revision.
    pub revision: u32,
    /// The provider's evidence.
    pub evidence: SignatureEvidence,
    /// When it was recorded.
    pub at: Timestamp,
}

/// The acceptance evidence the order is captured from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceView {
    /// The order the acceptance captures
    /// ([`domain::policy::order_captured_by`] of the event's id).
    pub order_id: OrderId,
    /// The accepted revision.
    pub revision: u32,
    /// The customer.
    pub customer_id: CustomerId,
    /// The billing account to charge.
    pub billing_account: BillingAccountId,
    /// The accepted price's input hash.
    pub price_input_hash: String,
    /// The hash of the signed document.
    pub signed_artifact_hash: String,
    /// The accepted lines with their charges.
    pub lines: Vec<AcceptedLine>,
    /// When.
    pub at: Timestamp,
}

/// Everything known about one quote. Price, proposal, signature and approval
/// carry the revision they belong to: one whose revision differs from
/// `revision` is kept as evidence and no longer counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteDetail {
    /// The quote.
    pub quote_id: QuoteId,
    /// The owning tenant (from the log envelope).
    pub tenant_id: TenantId,
    /// Where it stands.
    pub status: QuoteStatus,
    /// The current revision.
    pub revision: u32,
    /// The adopted customer snapshot.
    pub customer: CustomerSnapshot,
    /// The catalog version.
    pub catalog_version: String,
    /// The configured lines of the current revision.
    pub lines: Vec<QuoteLine>,
    /// The latest price snapshot.
    pub price: Option<PriceResult>,
    /// The approval of the latest price, if one was demanded.
    pub approval: Option<ApprovalView>,
    /// The latest proposal.
    pub proposal: Option<ProposalView>,
    /// The latest signature evidence.
    pub signature: Option<SignatureView>,
    /// The acceptance evidence, once accepted.
    pub acceptance: Option<AcceptanceView>,
    /// A CRM snapshot that differs from the adopted one (needs revalidation).
    pub customer_drift: Option<CustomerSnapshot>,
    /// The CRM status when CRM reported the customer's account suspended
    /// (every price then needs approval).
    pub customer_suspension: Option<String>,
    /// Why the last customer check failed (CRM answered a record nobody
    /// could read): the quote is in integration fallout until revalidated.
    pub customer_check_failure: Option<String>,
    /// Why it was withdrawn.
    pub withdrawal_reason: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// The time of its latest event.
    pub updated_at: Timestamp,
    /// Its stream version after the latest applied event.
    pub version: u64,
}

/// One line of the quote list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuoteSummary {
    /// The quote.
    pub quote_id: QuoteId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Where it stands.
    pub status: QuoteStatus,
    /// The current revision.
    pub revision: u32,
    /// The customer.
    pub customer_id: CustomerId,
    /// The customer's name.
    pub customer_name: String,
    /// How many lines.
    pub line_count: u32,
    /// One-time total of the latest price.
    pub one_time_total: Option<Money>,
    /// Monthly recurring total of the latest price.
    pub recurring_monthly_total: Option<Money>,
    /// True when CRM drift or a failed customer check awaits revalidation.
    pub needs_revalidation: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// The time of its latest event.
    pub updated_at: Timestamp,
    /// Its stream version.
    pub version: u64,
}

impl From<&QuoteDetail> for QuoteSummary {
    fn from(q: &QuoteDetail) -> Self {
        Self {
            quote_id: q.quote_id.clone(),
            tenant_id: q.tenant_id.clone(),
            status: q.status,
            revision: q.revision,
            customer_id: q.customer.customer_id.clone(),
            customer_name: q.customer.name.clone(),
            line_count: u32::try_from(q.lines.len()).unwrap_or(u32::MAX),
            one_time_total: q.price.as_ref().map(|p| p.totals.one_time.clone()),
            recurring_monthly_total: q.price.as_ref().map(|p| p.totals.recurring_monthly.clone()),
            needs_revalidation: q.customer_drift.is_some() || q.customer_check_failure.is_some(),
            created_at: q.created_at,
            updated_at: q.updated_at,
            version: q.version,
        }
    }
}

/// Filters of the quote list (all optional, combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteFilter {
    /// Only quotes in this status.
    pub status: Option<QuoteStatus>,
    /// Only quotes of this customer.
    pub customer_id: Option<CustomerId>,
    /// Only quotes whose latest event is at or after this time (ms).
    pub updated_since: Option<i64>,
}

impl QuoteFilter {
    /// Whether a page under this filter may skip rows its index walks
    /// (a filter checked row by row, up to [`crate::MAX_EXAMINED`] rows a
    /// page) rather than read only the rows it returns.
    pub fn may_skip_rows(&self) -> bool {
        // Kept by customer, else by status: a status beside a customer
        // and the time of the last update are checked row by row.
        self.updated_since.is_some() || (self.customer_id.is_some() && self.status.is_some())
    }
}

fn row_key(tenant: &[u8; 16], id: &str) -> Vec<u8> {
    KeyBuf::new(tenant, ROW).str(id).done()
}

impl Row for QuoteDetail {
    fn index_entries(&self, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        let t = keys::tenant_prefix(self.tenant_id.as_str());
        let id = self.quote_id.as_str();
        let ts = keys::ts_desc(self.created_at.0);
        let value = id.as_bytes().to_vec();
        out.push((
            KeyBuf::new(&t, BY_CREATED).u64(ts).str(id).done(),
            value.clone(),
        ));
        out.push((
            KeyBuf::new(&t, BY_STATUS)
                .byte(self.status.code())
                .u64(ts)
                .str(id)
                .done(),
            value.clone(),
        ));
        out.push((
            KeyBuf::new(&t, BY_CUSTOMER)
                .str(self.customer.customer_id.as_str())
                .u64(ts)
                .str(id)
                .done(),
            value,
        ));
    }
}

/// The quotes projector.
#[derive(Default)]
pub(crate) struct QuotesProjector {
    rows: RowCache<QuoteDetail>,
    tenants: keys::TenantCache,
}

fn at_of(event: &QuoteEvent) -> Timestamp {
    match event {
        QuoteEvent::QuoteCreated { at, .. }
        | QuoteEvent::LineAdded { at, .. }
        | QuoteEvent::LineChanged { at, .. }
        | QuoteEvent::LineRemoved { at, .. }
        | QuoteEvent::RevisionStarted { at, .. }
        | QuoteEvent::QuotePriced { at, .. }
        | QuoteEvent::ApprovalRequired { at, .. }
        | QuoteEvent::ApprovalGranted { at, .. }
        | QuoteEvent::ApprovalRejected { at, .. }
        | QuoteEvent::ProposalGenerated { at, .. }
        | QuoteEvent::SignatureRecorded { at, .. }
        | QuoteEvent::QuoteAccepted { at, .. }
        | QuoteEvent::QuoteExpired { at }
        | QuoteEvent::QuoteWithdrawn { at, .. }
        | QuoteEvent::CustomerDriftReported { at, .. }
        | QuoteEvent::CustomerRevalidated { at, .. }
        | QuoteEvent::CustomerSuspended { at, .. }
        | QuoteEvent::CustomerApprovalRequired { at, .. }
        | QuoteEvent::CustomerCheckFailed { at, .. } => *at,
    }
}

/// Applies one quote event to its row (`None` before `QuoteCreated`).
fn evolve(row: &mut QuoteDetail, event: &QuoteEvent) {
    match event {
        QuoteEvent::QuoteCreated { .. } => {}
        QuoteEvent::LineAdded { revision, line, .. } => {
            row.revision = *revision;
            row.lines.retain(|l| l.line_id != line.line_id);
            row.lines.push(line.clone());
            row.status = QuoteStatus::Draft;
        }
        QuoteEvent::LineChanged { revision, line, .. } => {
            row.revision = *revision;
            match row.lines.iter_mut().find(|l| l.line_id == line.line_id) {
                Some(existing) => *existing = line.clone(),
                None => row.lines.push(line.clone()),
            }
            row.status = QuoteStatus::Draft;
        }
        QuoteEvent::LineRemoved {
            revision, line_id, ..
        } => {
            row.revision = *revision;
            row.lines.retain(|l| &l.line_id != line_id);
            row.status = QuoteStatus::Draft;
        }
        QuoteEvent::RevisionStarted { revision, .. } => {
            row.revision = *revision;
            row.status = QuoteStatus::Draft;
        }
        QuoteEvent::QuotePriced { price, .. } => {
            // A new price voids the proposal and signature of its revision
            // (the domain drops them); those of an earlier revision stay as
            // evidence.
            if row
                .proposal
                .as_ref()
                .is_some_and(|p| p.revision == price.revision)
            {
                row.proposal = None;
            }
            if row
                .signature
                .as_ref()
                .is_some_and(|s| s.revision == price.revision)
            {
                row.signature = None;
            }
            row.price = Some((**price).clone());
            row.approval = None;
            row.status = QuoteStatus::Priced;
        }
        QuoteEvent::ApprovalRequired {
            revision,
            reason,
            at,
        } => {
            row.approval = Some(ApprovalView::required(*revision, Some(reason.clone()), *at));
            row.status = QuoteStatus::PendingApproval;
        }
        QuoteEvent::ApprovalGranted {
            revision,
            approver,
            at,
        } => {
            let approval = row
                .approval
                .get_or_insert_with(|| ApprovalView::required(*revision, None, *at));
            approval.state = ApprovalState::Granted;
            approval.decided_by = Some(approver.clone());
            approval.decided_at = Some(*at);
            // An approval asked for after the proposal or the signature
            // (an account suspended since) leaves them standing.
            let current = |revision: Option<u32>| revision == Some(row.revision);
            row.status = if current(row.signature.as_ref().map(|s| s.revision)) {
                QuoteStatus::Signed
            } else if current(row.proposal.as_ref().map(|p| p.revision)) {
                QuoteStatus::Proposed
            } else {
                QuoteStatus::Approved
            };
        }
        QuoteEvent::ApprovalRejected {
            revision,
            approver,
            reason,
            at,
        } => {
            let approval = row
                .approval
                .get_or_insert_with(|| ApprovalView::required(*revision, None, *at));
            approval.state = ApprovalState::Rejected;
            approval.decided_by = Some(approver.clone());
            approval.rejection_reason = Some(reason.clone());
            approval.decided_at = Some(*at);
            row.status = QuoteStatus::ApprovalRejected;
        }
        QuoteEvent::ProposalGenerated {
            revision,
            artifact,
            at,
        } => {
            // As the domain: a signature over another document of this
            // revision no longer counts.
            if row.signature.as_ref().is_some_and(|s| {
                proposal_voids_signature(
                    s.revision,
                    &s.evidence.artifact_hash,
                    *revision,
                    &artifact.artifact_hash,
                )
            }) {
                row.signature = None;
            }
            row.proposal = Some(ProposalView {
                revision: *revision,
                artifact: artifact.clone(),
                at: *at,
            });
            row.status = QuoteStatus::Proposed;
        }
        QuoteEvent::SignatureRecorded {
            revision,
            signature,
            at,
        } => {
            // A late signature of an earlier revision is evidence only: it
            // never replaces the signature of a later revision, and the
            // current revision is not signed by it.
            if signature_replaces(row.signature.as_ref().map(|s| s.revision), *revision) {
                row.signature = Some(SignatureView {
                    revision: *revision,
                    evidence: signature.clone(),
                    at: *at,
                });
            }
            if *revision == row.revision {
                row.status = QuoteStatus::Signed;
            }
        }
        QuoteEvent::QuoteAccepted {
            revision,
            customer_id,
            billing_account,
            price_input_hash,
            signed_artifact_hash,
            lines,
            at,
            ..
        } => {
            row.acceptance = Some(AcceptanceView {
                // Set by `apply`, which knows the event's id.
                order_id: OrderId::new(String::new()),
                revision: *revision,
                customer_id: customer_id.clone(),
                billing_account: billing_account.clone(),
                price_input_hash: price_input_hash.clone(),
                signed_artifact_hash: signed_artifact_hash.clone(),
                lines: lines.clone(),
                at: *at,
            });
            row.status = QuoteStatus::Accepted;
        }
        QuoteEvent::QuoteExpired { .. } => row.status = QuoteStatus::Expired,
        QuoteEvent::QuoteWithdrawn { reason, .. } => {
            row.withdrawal_reason = Some(reason.clone());
            row.status = QuoteStatus::Withdrawn;
        }
        QuoteEvent::CustomerDriftReported { observed, .. } => {
            row.customer_drift = Some(observed.clone())
        }
        QuoteEvent::CustomerRevalidated { customer, .. } => {
            row.customer = customer.clone();
            row.customer_drift = None;
            row.customer_check_failure = None;
        }
        QuoteEvent::CustomerCheckFailed { evidence, .. } => {
            row.customer_check_failure = Some(evidence.clone());
        }
        QuoteEvent::CustomerSuspended { status, .. } => {
            row.customer_suspension = Some(status.clone());
        }
        QuoteEvent::CustomerApprovalRequired { revision, at, .. } => {
            // The approval has no discount reason: the customer's
            // suspension (`customer_suspension`) asks for it.
            row.approval = Some(ApprovalView::required(*revision, None, *at));
            row.status = QuoteStatus::PendingApproval;
        }
    }
}

impl Projector for QuotesProjector {
    fn apply(&mut self, tree: &sled::Tree, event: &Decoded) -> Result<(), FoldError> {
        let quote = match &event.payload {
            Payload::Quote(q) => q,
            Payload::Undecodable {
                kind: StreamKind::Quote,
                why,
            } => return Err(FoldError(why.clone())),
            _ => return Ok(()),
        };
        let id = stream_id_part(event, StreamKind::Quote)?;
        let tenant = self.tenants.prefix(&event.record.tenant_id);
        let key = row_key(&tenant, id);
        let at = at_of(quote);
        if let QuoteEvent::QuoteCreated {
            quote_id,
            tenant_id,
            customer,
            catalog_version,
            at,
        } = quote
        {
            same_tenant(event, tenant_id.as_str())?;
            if quote_id.as_str() != id {
                return Err(FoldError(format!(
                    "QuoteCreated for {quote_id} on stream {}",
                    event.record.stream_id
                )));
            }
            super::first_of_stream(event, "quote", id)?;
            let row = QuoteDetail {
                quote_id: quote_id.clone(),
                tenant_id: TenantId::new(event.record.tenant_id.clone()),
                status: QuoteStatus::Draft,
                revision: 1,
                customer: customer.clone(),
                catalog_version: catalog_version.clone(),
                lines: Vec::new(),
                price: None,
                approval: None,
                proposal: None,
                signature: None,
                acceptance: None,
                customer_drift: None,
                customer_suspension: None,
                customer_check_failure: None,
                withdrawal_reason: None,
                created_at: *at,
                updated_at: *at,
                version: event.record.stream_version,
            };
            return self.rows.put_first(&key, row);
        }
        let row = self
            .rows
            .get_mut(tree, &key)?
            .ok_or_else(|| missing("quote", id, event))?;
        evolve(row, quote);
        if let (QuoteEvent::QuoteAccepted { .. }, Some(acceptance)) = (quote, &mut row.acceptance) {
            acceptance.order_id =
                domain::policy::order_captured_by(&event.record.event_id.to_string());
        }
        row.updated_at = row.updated_at.max(at);
        row.version = event.record.stream_version;
        Ok(())
    }

    fn flush(&mut self, out: &mut Writes) -> Result<(), FoldError> {
        self.rows.flush(out)
    }

    fn discard(&mut self) {
        self.rows.clear();
    }
}

fn load(tree: &sled::Tree, tenant: &TenantId, id: &str) -> Result<Option<QuoteDetail>, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let Some(bytes) = tree.get(row_key(&t, id))? else {
        return Ok(None);
    };
    let row: QuoteDetail = decode_row(NAME, &bytes)?;
    // Defence in depth: the key is tenant-scoped, and so is the row.
    Ok((row.tenant_id == *tenant).then_some(row))
}

/// One quote's detail.
pub(crate) fn quote(
    tree: &sled::Tree,
    tenant: &TenantId,
    id: &QuoteId,
) -> Result<Option<QuoteDetail>, QueryError> {
    load(tree, tenant, id.as_str())
}

/// The quote list, newest creation first.
pub(crate) fn quotes(
    tree: &sled::Tree,
    tenant: &TenantId,
    filter: &QuoteFilter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<QuoteSummary>, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let (prefix, tag) = match (&filter.customer_id, filter.status) {
        (Some(c), _) => (
            KeyBuf::new(&t, BY_CUSTOMER).str(c.as_str()).done(),
            BY_CUSTOMER,
        ),
        (None, Some(s)) => (KeyBuf::new(&t, BY_STATUS).byte(s.code()).done(), BY_STATUS),
        (None, None) => (KeyBuf::new(&t, BY_CREATED).done(), BY_CREATED),
    };
    Scan {
        list: List::Quotes,
        prefix,
        tag,
        from: None,
        until: None,
        cursor,
        limit,
    }
    .run(tree, |_, value| {
        let id = String::from_utf8_lossy(value);
        let Some(row) = load(tree, tenant, &id)? else {
            return Ok(None);
        };
        let keep = filter.status.is_none_or(|s| s == row.status)
            && filter
                .updated_since
                .is_none_or(|since| row.updated_at.0 >= since)
            && filter
                .customer_id
                .as_ref()
                .is_none_or(|c| *c == row.customer.customer_id);
        Ok(keep.then(|| QuoteSummary::from(&row)))
    })
}
