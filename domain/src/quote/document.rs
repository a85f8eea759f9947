//! The proposal document's input (seed 001 §17.1): an immutable snapshot
//! of one priced quote revision, never the latest mutable data.
//!
//! The snapshot is a sorted list of named fields (customer, catalog
//! version, lines, priced totals, price evidence, template version,
//! locale); its id is the sha256 of their canonical bytes. The same
//! revision rendered with the same template and locale has the same
//! snapshot id, so the document service renders the same artifact, whose
//! hash the signature must then match (rule
//! `signature_for_another_artifact` at acceptance).

use std::collections::BTreeMap;

use super::error::QuoteError;
use super::model::QuoteLine;
use super::state::Quote;
use crate::handoff::RequestSnapshot;

/// The document type of a proposal.
pub const QUOTE_PDF: &str = "QUOTE_PDF";

/// What the document service is asked to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentRequest {
    /// `QUOTE_PDF`.
    pub document_type: &'static str,
    /// The revision rendered.
    pub revision: u32,
    /// The template version.
    pub template_version: String,
    /// The locale.
    pub locale: String,
    /// The sha256 of the snapshot's canonical bytes.
    pub snapshot_id: String,
    /// The snapshot's fields, sorted by name.
    pub snapshot: RequestSnapshot,
}

/// The proposal request for the quote's current revision.
///
/// # Errors
/// The rule a proposal of this revision would be refused by: no price for
/// the current revision (`price_missing`), or
/// an approval not granted (`approval_missing`, `approval_rejected`).
pub fn proposal_request(
    quote: &Quote,
    template_version: &str,
    locale: &str,
) -> Result<DocumentRequest, QuoteError> {
    let price = super::decide::current_price(quote)?;
    // Nothing is rendered that the proposal's own rule would refuse.
    super::decide::approval_settled(quote)?;
    let mut lines = BTreeMap::new();
    for (i, line) in quote.lines.iter().enumerate() {
        put_line_fields(&mut lines, i, line);
    }
    let mut fields = BTreeMap::new();
    let mut put = |name: String, value: String| {
        fields.insert(name, value);
    };
    put("document_type".into(), QUOTE_PDF.into());
    put("quote_id".into(), quote.id.to_string());
    put("revision".into(), quote.revision.to_string());
    put("template_version".into(), template_version.into());
    put("locale".into(), locale.into());
    put("customer.id".into(), quote.customer.customer_id.to_string());
    put("customer.name".into(), quote.customer.name.clone());
    put(
        "customer.segment".into(),
        quote.customer.segment.to_string(),
    );
    put(
        "customer.authority_reference".into(),
        quote.customer.authority_reference.clone(),
    );
    put("catalog_version".into(), quote.catalog_version.clone());
    put("price.input_hash".into(), price.input_hash.clone());
    put("price.price_book".into(), price.price_book.clone());
    put("price.one_time".into(), price.totals.one_time.to_string());
    put(
        "price.recurring_monthly".into(),
        price.totals.recurring_monthly.to_string(),
    );
    put("price.discount".into(), price.discount.percent.to_string());
    put(
        "price.valid_until_ms".into(),
        price.valid_until.0.to_string(),
    );
    fields.extend(lines);
    let snapshot = RequestSnapshot { fields };
    Ok(DocumentRequest {
        document_type: QUOTE_PDF,
        revision: quote.revision,
        template_version: template_version.to_owned(),
        locale: locale.to_owned(),
        snapshot_id: snapshot.hash(),
        snapshot,
    })
}

/// Puts a configured line into a document's snapshot fields under
/// `line.<i>.`: id, offering, offering version, quantity, term and each
/// option. The one shape of a line in every document (proposals, order
/// confirmations).
pub fn put_line_fields(fields: &mut BTreeMap<String, String>, i: usize, line: &QuoteLine) {
    let mut put = |name: String, value: String| {
        fields.insert(name, value);
    };
    put(format!("line.{i}.id"), line.line_id.to_string());
    put(format!("line.{i}.offering"), line.offering_id.to_string());
    put(
        format!("line.{i}.offering_version"),
        line.offering_version.to_string(),
    );
    put(format!("line.{i}.quantity"), line.quantity.to_string());
    put(
        format!("line.{i}.term_months"),
        line.term_months.to_string(),
    );
    for (name, value) in &line.options {
        put(format!("line.{i}.option.{name}"), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::fold;
    use crate::quote::{QuoteDecider, QuoteEvent, QuoteState};
    use crate::testing::fixtures::*;

    fn quote(events: &[QuoteEvent]) -> Quote {
        match fold::<QuoteDecider, _>(events) {
            QuoteState::Open(quote) => quote,
            other => panic!("{other:?}"),
        }
    }

    fn priced(revision: u32) -> Vec<QuoteEvent> {
        vec![
            quote_created(),
            QuoteEvent::LineAdded {
                revision: 1,
                line: line("l1"),
                at: T0,
            },
            QuoteEvent::QuotePriced {
                price: Box::new(price(revision, &["l1"], percent(5))),
                at: T0,
            },
        ]
    }

    #[test]
    fn the_same_revision_and_template_give_the_same_snapshot_id() {
        let a = proposal_request(&quote(&priced(1)), "t-1", "en").expect("priced");
        let b = proposal_request(&quote(&priced(1)), "t-1", "en").expect("priced");
        assert_eq!(a, b);
        let other_template = proposal_request(&quote(&priced(1)), "t-2", "en").expect("priced");
        assert_ne!(a.snapshot_id, other_template.snapshot_id);
        let mut changed = priced(1);
        changed.push(QuoteEvent::LineChanged {
            revision: 1,
            line: QuoteLine {
                quantity: 2,
                ..line("l1")
            },
            at: T0,
        });
        let changed = proposal_request(&quote(&changed), "t-1", "en").expect("priced");
        assert_ne!(a.snapshot_id, changed.snapshot_id);
    }

    #[test]
    fn an_unpriced_revision_has_no_proposal() {
        let unpriced = &priced(1)[..2];
        assert_eq!(
            proposal_request(&quote(unpriced), "t-1", "en"),
            Err(QuoteError::PriceMissing)
        );
    }

    #[test]
    fn a_revision_waiting_for_approval_has_no_proposal() {
        let mut pending = priced(1);
        pending.push(QuoteEvent::CustomerApprovalRequired {
            revision: 1,
            status: "SUSPENDED".to_owned(),
            at: T0,
        });
        assert_eq!(
            proposal_request(&quote(&pending), "t-1", "en"),
            Err(QuoteError::ApprovalMissing)
        );
    }
}
