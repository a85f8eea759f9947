//! Sample values for tests: one customer, offering, price and handoff that the
//! domain's own tests and other crates' tests share. Deterministic: no clock, no RNG.

use crate::handoff::{HandoffEvent, HandoffSubject, RequestSnapshot, RetryPolicy};
use crate::idempotency::Purpose;
use crate::ids::{
    ArtifactId, BillingAccountId, CustomerId, LineId, OfferingId, OrderId, QuoteId, Segment,
    TenantId, Timestamp,
};
use crate::money::{Currency, Money, Percent};
use crate::order::{OrderEvent, QuoteEvidence};
use crate::outcome::{Observation, ObservationSource, OutcomeClass};
use crate::quote::{
    AcceptedLine, ApprovalPolicy, ChargeKind, CustomerSnapshot, Discount, LinePrice,
    PriceComponent, PriceResult, PriceTotals, ProposalArtifact, QuoteEvent, QuoteLine,
    SignatureEvidence,
};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// The scenarios' start: 2023-11-14T22:13:20Z.
pub const T0: Timestamp = Timestamp(1_700_000_000_000);

/// How long sample prices stay valid: 30 days.
pub const PRICE_VALIDITY_MS: u64 = 30 * 24 * 60 * 60 * 1_000;

/// `T0` plus `millis`.
pub fn at(millis: u64) -> Timestamp {
    T0.plus_millis(millis)
}

/// The sample tenant `t1`.
pub fn tenant() -> TenantId {
    TenantId::new("t1")
}

/// The sample quote `q1`.
pub fn quote_id() -> QuoteId {
    QuoteId::new("q1")
}

/// The sample order `o1`.
pub fn order_id() -> OrderId {
    OrderId::new("o1")
}

/// A line id.
pub fn line_id(id: &str) -> LineId {
    LineId::new(id)
}

/// The sample billing account.
pub fn billing_account() -> BillingAccountId {
    BillingAccountId::new("ba-1")
}

/// An amount in euros, from exact minor units (`1999` is 19.99 EUR).
///
/// # Panics
/// Never: `EUR` is a valid code.
pub fn eur(minor_units: i64) -> Money {
    let currency = Currency::new("EUR").expect("EUR is a valid currency code");
    Money::new(Decimal::new(minor_units, 2), currency)
}

/// A whole-number percentage.
pub fn percent(value: i64) -> Percent {
    Percent(Decimal::new(value, 0))
}

/// The sample customer `c1` in segment `smb`.
pub fn customer() -> CustomerSnapshot {
    CustomerSnapshot {
        customer_id: CustomerId::new("c1"),
        name: "Acme Ltd".to_owned(),
        segment: Segment::new("smb"),
        authority_reference: "crm-rev-7".to_owned(),
        taken_at: T0,
    }
}

/// The sample customer after CRM moved it to segment `enterprise`.
pub fn customer_in_enterprise_segment() -> CustomerSnapshot {
    CustomerSnapshot {
        segment: Segment::new("enterprise"),
        authority_reference: "crm-rev-8".to_owned(),
        taken_at: at(1_000),
        ..customer()
    }
}

/// A one-unit, 24-month fibre line.
pub fn line(id: &str) -> QuoteLine {
    QuoteLine {
        line_id: line_id(id),
        offering_id: OfferingId::new("fiber-1g"),
        offering_version: 3,
        quantity: 1,
        term_months: 24,
        options: BTreeMap::from([("bandwidth".to_owned(), "1g".to_owned())]),
    }
}

/// The components of a sample line: 99.00 once and 49.90 a month.
pub fn charges() -> Vec<PriceComponent> {
    vec![
        PriceComponent {
            charge_code: "INSTALL".to_owned(),
            kind: ChargeKind::OneTime,
            amount: eur(9_900),
        },
        PriceComponent {
            charge_code: "MRC-FIBER".to_owned(),
            kind: ChargeKind::RecurringMonthly,
            amount: eur(4_990),
        },
    ]
}

/// A price for `revision` covering `lines`, valid from `T0` for 30 days.
pub fn price(revision: u32, lines: &[&str], discount: Percent) -> PriceResult {
    let count = i64::try_from(lines.len()).unwrap_or(i64::MAX);
    PriceResult {
        revision,
        lines: lines
            .iter()
            .map(|id| LinePrice {
                line_id: line_id(id),
                components: charges(),
            })
            .collect(),
        totals: PriceTotals {
            one_time: eur(9_900 * count),
            recurring_monthly: eur(4_990 * count),
        },
        discount: Discount {
            percent: discount,
            amount: eur(500),
        },
        valid_from: T0,
        valid_until: T0.plus_millis(PRICE_VALIDITY_MS),
        input_hash: format!("price-input-r{revision}"),
        policy_version: PRICE_BOOK.to_owned(),
        price_book: PRICE_BOOK.to_owned(),
    }
}

/// The price book [`price`] prices under (and acceptance must name); also its
/// pricing policy version, as version 1 prices had only that one name.
pub const PRICE_BOOK: &str = "pricing-2024.1";

/// A realistic `QuotePriced`: two lines, 5 % off, priced a minute after `T0`. Its
/// schema version 1 bytes are committed in `domain/tests/golden/quote_priced_v1.hex`,
/// its current ones in `quote_priced_v2.hex`.
pub fn quote_priced() -> QuoteEvent {
    QuoteEvent::QuotePriced {
        price: Box::new(price(1, &["l1", "l2"], percent(5))),
        at: at(60_000),
    }
}

/// The schema version 1 shape of a current `QuotePriced`, for tests that write old
/// logs. `None` for any other event, and when version 1 cannot say it: its
/// `price_book` differs from its `policy_version`, a distinction version 1 did not
/// have (upcasting the result gives `event` back).
pub fn quote_priced_v1(event: &QuoteEvent) -> Option<crate::quote::legacy::v1::QuoteEvent> {
    use crate::quote::legacy::v1;
    let QuoteEvent::QuotePriced { price, at } = event else {
        return None;
    };
    let PriceResult {
        revision,
        lines,
        totals,
        discount,
        valid_from,
        valid_until,
        input_hash,
        policy_version,
        price_book,
    } = (**price).clone();
    (price_book == policy_version).then(|| v1::QuoteEvent::QuotePriced {
        price: Box::new(v1::PriceResult {
            revision,
            lines,
            totals,
            discount,
            valid_from,
            valid_until,
            input_hash,
            policy_version,
        }),
        at: *at,
    })
}

/// The schema version 1 shape of a current `HandoffResolved`, for tests that
/// write old logs: its subject dropped, which version 1 did not record.
/// `None` for any other event.
pub fn handoff_resolved_v1(
    event: &crate::handoff::HandoffEvent,
) -> Option<crate::handoff::legacy::v1::HandoffEvent> {
    use crate::handoff::legacy::v1;
    let crate::handoff::HandoffEvent::HandoffResolved {
        operator, note, at, ..
    } = event
    else {
        return None;
    };
    Some(v1::HandoffEvent::HandoffResolved {
        operator: operator.clone(),
        note: note.clone(),
        at: *at,
    })
}

/// Up to 10 % discount without approval, 15 % for `smb`.
pub fn approval_policy() -> ApprovalPolicy {
    ApprovalPolicy {
        policy_version: "approval-v2".to_owned(),
        default_max_discount: percent(10),
        max_discount_by_segment: BTreeMap::from([(Segment::new("smb"), percent(15))]),
    }
}

/// A proposal document with the given hash.
pub fn proposal(hash: &str) -> ProposalArtifact {
    ProposalArtifact {
        artifact_id: ArtifactId::new(format!("doc-{hash}")),
        artifact_hash: hash.to_owned(),
        template_version: "proposal-v5".to_owned(),
    }
}

/// Signature evidence for the document with the given hash.
pub fn signature(hash: &str) -> SignatureEvidence {
    SignatureEvidence {
        signer: "jane@acme.example".to_owned(),
        signed_at: at(5_000),
        provider_reference: "esign-env-42".to_owned(),
        artifact_hash: hash.to_owned(),
    }
}

/// `QuoteCreated` for the sample quote.
pub fn quote_created() -> QuoteEvent {
    QuoteEvent::QuoteCreated {
        quote_id: quote_id(),
        tenant_id: tenant(),
        customer: customer(),
        catalog_version: "catalog-2024.06".to_owned(),
        at: T0,
    }
}

/// The sample quote with one line `l1`, priced without approval, proposed as `art-1`
/// and signed: ready to accept.
pub fn quote_ready_to_accept() -> Vec<QuoteEvent> {
    vec![
        quote_created(),
        QuoteEvent::LineAdded {
            revision: 1,
            line: line("l1"),
            at: T0,
        },
        QuoteEvent::QuotePriced {
            price: Box::new(price(1, &["l1"], percent(5))),
            at: T0,
        },
        QuoteEvent::ProposalGenerated {
            revision: 1,
            artifact: proposal("art-1"),
            at: at(1_000),
        },
        QuoteEvent::SignatureRecorded {
            revision: 1,
            signature: signature("art-1"),
            at: at(5_000),
        },
    ]
}

/// An accepted line with the sample charges.
pub fn accepted_line(id: &str) -> AcceptedLine {
    AcceptedLine {
        line: line(id),
        charges: charges(),
    }
}

/// The evidence of the sample quote's revision 1.
pub fn quote_evidence() -> QuoteEvidence {
    QuoteEvidence {
        quote_id: quote_id(),
        revision: 1,
        price_input_hash: "price-input-r1".to_owned(),
        signed_artifact_hash: "art-1".to_owned(),
    }
}

/// `OrderCaptured` for order `o1` with the given lines.
pub fn order_captured(lines: &[&str]) -> OrderEvent {
    OrderEvent::OrderCaptured {
        order_id: order_id(),
        tenant_id: tenant(),
        evidence: quote_evidence(),
        customer_id: CustomerId::new("c1"),
        billing_account: billing_account(),
        lines: lines.iter().map(|id| accepted_line(id)).collect(),
        at: T0,
    }
}

/// The subject of a handoff of order `o1` line `line`.
pub fn subject(line: &str, purpose: Purpose, attempt: u32) -> HandoffSubject {
    HandoffSubject {
        tenant_id: tenant(),
        order_id: order_id(),
        line_id: line_id(line),
        target: purpose.target(),
        purpose,
        attempt,
    }
}

/// A small request.
pub fn request() -> RequestSnapshot {
    RequestSnapshot {
        fields: BTreeMap::from([
            ("order_id".to_owned(), "o1".to_owned()),
            ("line_id".to_owned(), "l1".to_owned()),
        ]),
    }
}

/// `HandoffRequested` for `subject` with [`request`].
pub fn handoff_requested(subject: &HandoffSubject) -> HandoffEvent {
    HandoffEvent::HandoffRequested {
        handoff_id: subject.handoff_id(),
        subject: subject.clone(),
        idempotency_key: subject.idempotency_key(),
        request_hash: request().hash(),
        request_snapshot: request().redacted(),
        at: T0,
    }
}

/// An observation about `subject`'s handoff.
pub fn observation(
    subject: &HandoffSubject,
    class: OutcomeClass,
    source: ObservationSource,
) -> Observation {
    Observation {
        handoff_id: subject.handoff_id(),
        attempt: subject.attempt,
        class,
        raw_code: Some("HTTP-200".to_owned()),
        raw_label: Some("raw label".to_owned()),
        external_reference: Some("ext-1".to_owned()),
        observed_at: at(2_000),
        source,
    }
}

/// 1 s base, 60 s cap, at most 3 sends.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        base_ms: 1_000,
        max_ms: 60_000,
        max_attempts: 3,
    }
}
