//! The quote's rules: one arm per (command, state) pair.

use super::command::QuoteCommand;
use super::error::QuoteError;
use super::event::QuoteEvent;
use super::limits;
use super::model::{
    AcceptedLine, ApprovalPolicy, CustomerSnapshot, PriceResult, ProposalArtifact, QuoteLine,
    SignatureEvidence,
};
use super::state::{Approval, Quote, QuoteState};
use crate::capability::Capabilities;
use crate::catalog::VersionStanding;
use crate::ids::{BillingAccountId, LineId, Timestamp};
use std::collections::BTreeSet;

/// Decides a quote command.
pub(super) fn decide(
    state: &QuoteState,
    command: &QuoteCommand,
) -> Result<Vec<QuoteEvent>, QuoteError> {
    use QuoteCommand as C;
    match (command, state) {
        (
            C::Create {
                quote_id,
                tenant_id,
                customer,
                catalog_version,
                customer_suspension,
                catalog,
                at,
            },
            QuoteState::Empty,
        ) => {
            catalog_admits(*catalog, catalog_version)?;
            let mut events = vec![QuoteEvent::QuoteCreated {
                quote_id: quote_id.clone(),
                tenant_id: tenant_id.clone(),
                customer: customer.clone(),
                catalog_version: catalog_version.clone(),
                at: *at,
            }];
            if let Some(status) = customer_suspension {
                events.push(QuoteEvent::CustomerSuspended {
                    status: status.clone(),
                    at: *at,
                });
            }
            Ok(events)
        }
        (C::Create { .. }, _) => Err(QuoteError::AlreadyCreated),
        (_, QuoteState::Empty | QuoteState::Accepted { .. })
        | (_, QuoteState::Expired(_) | QuoteState::Withdrawn(_)) => open(state).map(|_| Vec::new()),
        (C::AddLine { line, at }, QuoteState::Open(quote)) => add_line(quote, line, *at),
        (C::ChangeLine { line, at }, QuoteState::Open(quote)) => change_line(quote, line, *at),
        (C::RemoveLine { line_id, at }, QuoteState::Open(quote)) => {
            remove_line(quote, line_id, *at)
        }
        (C::Price { price, policy, at }, QuoteState::Open(quote)) => {
            price_quote(quote, price, policy, *at)
        }
        (C::Approve { approver, at }, QuoteState::Open(quote)) => match quote.approval {
            Approval::Pending(_) | Approval::PendingForCustomer { .. } => {
                Ok(vec![QuoteEvent::ApprovalGranted {
                    revision: quote.revision,
                    approver: approver.clone(),
                    at: *at,
                }])
            }
            _ => Err(QuoteError::ApprovalNotPending),
        },
        (
            C::RejectApproval {
                approver,
                reason,
                at,
            },
            QuoteState::Open(quote),
        ) => match quote.approval {
            Approval::Pending(_) | Approval::PendingForCustomer { .. } => {
                Ok(vec![QuoteEvent::ApprovalRejected {
                    revision: quote.revision,
                    approver: approver.clone(),
                    reason: reason.clone(),
                    at: *at,
                }])
            }
            _ => Err(QuoteError::ApprovalNotPending),
        },
        (
            C::RecordProposal {
                revision,
                artifact,
                price_book,
                at,
            },
            QuoteState::Open(quote),
        ) => record_proposal(quote, *revision, artifact, price_book, *at),
        (
            C::RecordSignature {
                revision,
                signature,
                at,
            },
            QuoteState::Open(quote),
        ) => record_signature(quote, *revision, signature, *at),
        (
            C::Accept {
                billing_account,
                price_book,
                capabilities,
                at,
            },
            QuoteState::Open(quote),
        ) => accept(quote, billing_account, price_book, capabilities, *at),
        (C::Expire { at }, QuoteState::Open(quote)) => expire(quote, *at),
        (C::Withdraw { reason, at }, QuoteState::Open(_)) => Ok(vec![QuoteEvent::QuoteWithdrawn {
            reason: reason.clone(),
            at: *at,
        }]),
        (C::ReportCustomerDrift { observed, at }, QuoteState::Open(quote)) => {
            report_drift(quote, observed, *at)
        }
        (C::Revalidate { customer, at }, QuoteState::Open(quote)) => {
            revalidate(quote, customer, *at)
        }
        (C::ReportCustomerSuspended { status, at }, QuoteState::Open(quote)) => {
            Ok(report_suspension(quote, status, *at))
        }
        (C::ReportCustomerCheckFailed { evidence, at }, QuoteState::Open(quote)) => Ok(quote
            .customer_check_failure
            .is_none()
            .then(|| QuoteEvent::CustomerCheckFailed {
                evidence: evidence.clone(),
                at: *at,
            })
            .into_iter()
            .collect()),
    }
}

/// Whether a quote may be created or priced against `version`, standing
/// as `standing` in the tenant's catalog.
///
/// # Errors
/// [`QuoteError::CatalogVersionRetired`] or
/// [`QuoteError::CatalogVersionNotActive`].
pub(super) fn catalog_admits(standing: VersionStanding, version: &str) -> Result<(), QuoteError> {
    match standing {
        VersionStanding::Unmanaged | VersionStanding::Active => Ok(()),
        VersionStanding::Retired => Err(QuoteError::CatalogVersionRetired {
            version: version.to_owned(),
        }),
        VersionStanding::Unknown => Err(QuoteError::CatalogVersionNotActive {
            version: version.to_owned(),
        }),
    }
}

/// A change to a priced revision starts the next revision first; the change then
/// belongs to the new revision. Unpriced revisions are changed in place.
fn in_revision(
    quote: &Quote,
    at: Timestamp,
    change: impl FnOnce(u32) -> QuoteEvent,
) -> Vec<QuoteEvent> {
    if quote.current_price().is_some() {
        let revision = quote.revision.saturating_add(1);
        vec![
            QuoteEvent::RevisionStarted { revision, at },
            change(revision),
        ]
    } else {
        vec![change(quote.revision)]
    }
}

/// The open quote of `state`, or why a quote in `state` takes no command
/// but `Create`: not created yet, accepted, expired or withdrawn.
pub(super) fn open(state: &QuoteState) -> Result<&Quote, QuoteError> {
    match state {
        QuoteState::Open(quote) => Ok(quote),
        QuoteState::Empty => Err(QuoteError::NotCreated),
        QuoteState::Accepted { .. } => Err(QuoteError::AlreadyAccepted),
        QuoteState::Expired(_) => Err(QuoteError::Expired),
        QuoteState::Withdrawn(_) => Err(QuoteError::Withdrawn),
    }
}

fn validate_line(line: &QuoteLine) -> Result<(), QuoteError> {
    if line.quantity == 0 || line.quantity > limits::MAX_QUANTITY {
        return Err(QuoteError::InvalidQuantity);
    }
    if line.term_months == 0 || line.term_months > limits::MAX_TERM_MONTHS {
        return Err(QuoteError::InvalidTerm);
    }
    if line.options.len() > limits::MAX_OPTIONS_PER_LINE {
        return Err(QuoteError::TooManyOptions);
    }
    Ok(())
}

fn find_line<'a>(quote: &'a Quote, line_id: &LineId) -> Option<&'a QuoteLine> {
    quote.lines.iter().find(|line| &line.line_id == line_id)
}

/// Refuses `line` (new, or replacing the line with its id) when the
/// quote's lines would then outweigh what its acceptance and order carry.
fn check_weight(quote: &Quote, line: &QuoteLine) -> Result<(), QuoteError> {
    let others = quote.lines.iter().filter(|l| l.line_id != line.line_id);
    let weight = limits::lines_weight(others) + limits::line_weight(line);
    if weight > limits::MAX_LINES_WEIGHT {
        return Err(QuoteError::QuoteTooLarge { weight });
    }
    Ok(())
}

fn add_line(quote: &Quote, line: &QuoteLine, at: Timestamp) -> Result<Vec<QuoteEvent>, QuoteError> {
    validate_line(line)?;
    if find_line(quote, &line.line_id).is_some() {
        return Err(QuoteError::LineAlreadyExists);
    }
    check_weight(quote, line)?;
    Ok(in_revision(quote, at, |revision| QuoteEvent::LineAdded {
        revision,
        line: line.clone(),
        at,
    }))
}

fn change_line(
    quote: &Quote,
    line: &QuoteLine,
    at: Timestamp,
) -> Result<Vec<QuoteEvent>, QuoteError> {
    validate_line(line)?;
    match find_line(quote, &line.line_id) {
        None => Err(QuoteError::LineNotFound),
        Some(existing) if existing == line => Ok(Vec::new()),
        Some(_) => {
            check_weight(quote, line)?;
            Ok(in_revision(quote, at, |revision| QuoteEvent::LineChanged {
                revision,
                line: line.clone(),
                at,
            }))
        }
    }
}

fn remove_line(
    quote: &Quote,
    line_id: &LineId,
    at: Timestamp,
) -> Result<Vec<QuoteEvent>, QuoteError> {
    if find_line(quote, line_id).is_none() {
        return Err(QuoteError::LineNotFound);
    }
    Ok(in_revision(quote, at, |revision| QuoteEvent::LineRemoved {
        revision,
        line_id: line_id.clone(),
        at,
    }))
}

/// True when the price prices every current line exactly once and nothing else.
fn covers_exactly(price: &PriceResult, lines: &[QuoteLine]) -> bool {
    let priced: BTreeSet<&LineId> = price.lines.iter().map(|line| &line.line_id).collect();
    let quoted: BTreeSet<&LineId> = lines.iter().map(|line| &line.line_id).collect();
    priced.len() == price.lines.len() && priced == quoted
}

fn price_quote(
    quote: &Quote,
    price: &PriceResult,
    policy: &ApprovalPolicy,
    at: Timestamp,
) -> Result<Vec<QuoteEvent>, QuoteError> {
    if quote.lines.is_empty() {
        return Err(QuoteError::NoLines);
    }
    if price.revision != quote.revision {
        return Err(QuoteError::PriceForAnotherRevision);
    }
    if !covers_exactly(price, &quote.lines) {
        return Err(QuoteError::PriceDoesNotCoverLines);
    }
    if price.valid_until <= price.valid_from {
        return Err(QuoteError::InvalidValidityWindow);
    }
    if !price.is_valid_at(at) {
        return Err(QuoteError::PriceStale);
    }
    let mut events = vec![QuoteEvent::QuotePriced {
        price: Box::new(price.clone()),
        at,
    }];
    if let Some(reason) = policy.approval_needed(&quote.customer.segment, price.discount.percent) {
        events.push(QuoteEvent::ApprovalRequired {
            revision: quote.revision,
            reason,
            at,
        });
    }
    if let Some(status) = &quote.customer_suspension {
        events.push(QuoteEvent::CustomerApprovalRequired {
            revision: quote.revision,
            status: status.clone(),
            at,
        });
    }
    Ok(events)
}

/// The current revision's price. A revision started after the last price
/// has none: `price_missing`, as for a quote never priced (the schema
/// promises that rule for an unpriced revision; `price_for_another_revision`
/// is `priceQuote`'s, for a price computed for another revision).
pub(super) fn current_price(quote: &Quote) -> Result<&PriceResult, QuoteError> {
    match &quote.price {
        Some(price) if price.revision == quote.revision => Ok(price),
        _ => Err(QuoteError::PriceMissing),
    }
}

/// Whether the current revision's approval allows a proposal or an
/// acceptance.
pub(super) fn approval_settled(quote: &Quote) -> Result<(), QuoteError> {
    match quote.approval {
        Approval::NotRequired | Approval::Granted { .. } => Ok(()),
        Approval::Pending(_) | Approval::PendingForCustomer { .. } => {
            Err(QuoteError::ApprovalMissing)
        }
        Approval::Rejected { .. } => Err(QuoteError::ApprovalRejected),
    }
}

/// A price counts only under the price book in force (rule
/// `price_book_superseded`): for a proposal as for an acceptance.
fn priced_under(price: &PriceResult, book_in_force: &str) -> Result<(), QuoteError> {
    if book_in_force == price.price_book {
        Ok(())
    } else {
        Err(QuoteError::PriceBookSuperseded {
            priced_under: price.price_book.clone(),
            in_force: book_in_force.to_owned(),
        })
    }
}

fn record_proposal(
    quote: &Quote,
    revision: u32,
    artifact: &ProposalArtifact,
    book_in_force: &str,
    at: Timestamp,
) -> Result<Vec<QuoteEvent>, QuoteError> {
    if revision != quote.revision {
        return Err(QuoteError::ProposalForAnotherRevision);
    }
    let price = current_price(quote)?;
    // A document of a price acceptance would refuse is not sent to be
    // signed: the seller reprices first.
    priced_under(price, book_in_force)?;
    approval_settled(quote)?;
    Ok(vec![QuoteEvent::ProposalGenerated {
        revision,
        artifact: artifact.clone(),
        at,
    }])
}

/// A signature of the current revision needs that revision's proposal and
/// its artifact hash; a revision the quote never had is refused. A
/// signature of an earlier revision is kept as evidence (it arrived late)
/// and marks nothing signed.
fn record_signature(
    quote: &Quote,
    revision: u32,
    signature: &SignatureEvidence,
    at: Timestamp,
) -> Result<Vec<QuoteEvent>, QuoteError> {
    if revision > quote.revision {
        return Err(QuoteError::SignatureForAnotherRevision);
    }
    if revision == quote.revision {
        // The current revision is signed over its proposal, or not at all.
        let proposal = quote
            .current_proposal()
            .ok_or(QuoteError::ProposalMissing)?;
        if signature.artifact_hash != proposal.artifact_hash {
            return Err(QuoteError::SignatureForAnotherArtifact);
        }
    }
    Ok(vec![QuoteEvent::SignatureRecorded {
        revision,
        signature: signature.clone(),
        at,
    }])
}

/// Acceptance: every refusal has its own rule, checked in this order. With
/// `book_in_force`, a price computed under another price book is not fresh.
fn accept(
    quote: &Quote,
    billing_account: &BillingAccountId,
    book_in_force: &str,
    capabilities: &Capabilities,
    at: Timestamp,
) -> Result<Vec<QuoteEvent>, QuoteError> {
    if quote.drift.is_some() {
        return Err(QuoteError::CustomerDriftUnresolved);
    }
    if quote.customer_check_failure.is_some() {
        return Err(QuoteError::CustomerCheckFailed);
    }
    // Every line runs the same plan today: the first line names the rule.
    if let (Some(capability), Some(line)) =
        (capabilities.missing_for_fulfillment(), quote.lines.first())
    {
        return Err(QuoteError::CapabilityDisabled {
            line_id: line.line_id.to_string(),
            capability,
        });
    }
    let price = current_price(quote)?;
    if !price.is_valid_at(at) {
        return Err(QuoteError::PriceStale);
    }
    priced_under(price, book_in_force)?;
    approval_settled(quote)?;
    let signature = quote
        .signature
        .as_ref()
        .ok_or(QuoteError::SignatureMissing)?;
    if signature.revision != quote.revision {
        return Err(QuoteError::SignatureForAnotherRevision);
    }
    let proposal = quote
        .current_proposal()
        .ok_or(QuoteError::ProposalMissing)?;
    if signature.evidence.artifact_hash != proposal.artifact_hash {
        return Err(QuoteError::SignatureForAnotherArtifact);
    }
    let lines = quote
        .lines
        .iter()
        .map(|line| {
            price
                .components_of(&line.line_id)
                .map(|charges| AcceptedLine {
                    line: line.clone(),
                    charges: charges.to_vec(),
                })
                .ok_or(QuoteError::PriceDoesNotCoverLines)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![QuoteEvent::QuoteAccepted {
        quote_id: quote.id.clone(),
        tenant_id: quote.tenant_id.clone(),
        revision: quote.revision,
        customer_id: quote.customer.customer_id.clone(),
        billing_account: billing_account.clone(),
        price_input_hash: price.input_hash.clone(),
        signed_artifact_hash: signature.evidence.artifact_hash.clone(),
        lines,
        at,
    }])
}

/// A quote expires when its validity ends: the latest price's window
/// (refused before, rule `quote_still_valid`, so a timer racing a re-price
/// never closes a freshly priced quote). An unpriced quote promises
/// nothing and may be expired at any time.
fn expire(quote: &Quote, at: Timestamp) -> Result<Vec<QuoteEvent>, QuoteError> {
    match &quote.price {
        Some(price) if at < price.valid_until => Err(QuoteError::StillValid {
            until_ms: price.valid_until.0,
        }),
        _ => Ok(vec![QuoteEvent::QuoteExpired { at }]),
    }
}

fn report_drift(
    quote: &Quote,
    observed: &CustomerSnapshot,
    at: Timestamp,
) -> Result<Vec<QuoteEvent>, QuoteError> {
    if observed.customer_id != quote.customer.customer_id {
        return Err(QuoteError::CustomerMismatch);
    }
    let already_reported = quote
        .drift
        .as_ref()
        .is_some_and(|drift| !drift.drifted_to(observed));
    if !quote.customer.drifted_to(observed) || already_reported {
        return Ok(Vec::new());
    }
    Ok(vec![QuoteEvent::CustomerDriftReported {
        observed: observed.clone(),
        at,
    }])
}

/// A suspension is recorded once; when the current revision is already
/// priced, its price now needs approval too (granted or not before: the
/// suspension is news to whoever approved).
fn report_suspension(quote: &Quote, status: &str, at: Timestamp) -> Vec<QuoteEvent> {
    if quote.customer_suspension.is_some() {
        return Vec::new();
    }
    let mut events = vec![QuoteEvent::CustomerSuspended {
        status: status.to_owned(),
        at,
    }];
    if quote.current_price().is_some() {
        events.push(QuoteEvent::CustomerApprovalRequired {
            revision: quote.revision,
            status: status.to_owned(),
            at,
        });
    }
    events
}

/// Adopting a new snapshot changes a pricing input, so a priced revision is left
/// behind exactly as a line change would.
fn revalidate(
    quote: &Quote,
    customer: &CustomerSnapshot,
    at: Timestamp,
) -> Result<Vec<QuoteEvent>, QuoteError> {
    if quote.drift.is_none() && quote.customer_check_failure.is_none() {
        return Err(QuoteError::NoDriftToRevalidate);
    }
    if customer.customer_id != quote.customer.customer_id {
        return Err(QuoteError::CustomerMismatch);
    }
    // A failed check that CRM now answers with the same customer changes
    // no pricing input: the quote keeps its snapshot and its revision.
    if quote.drift.is_none() && !quote.customer.drifted_to(customer) {
        return Ok(vec![QuoteEvent::CustomerRevalidated {
            customer: quote.customer.clone(),
            at,
        }]);
    }
    let revalidated = QuoteEvent::CustomerRevalidated {
        customer: customer.clone(),
        at,
    };
    Ok(in_revision(quote, at, |_| revalidated))
}
