//! Order confirmation documents (seed 001 §17, seed 000 §15): a document
//! rendered from an immutable snapshot of the captured order, never from
//! the latest mutable data, and generated as a handoff like any other.
//!
//! The order records `ConfirmationRequested` (refused for a cancelled
//! order, recorded once per key) and the fulfillment policy opens the
//! handoff from that committed event. The handoff carries the UNKNOWN /
//! reconciliation / fallout treatment of every handoff: a lost answer is
//! settled by a status query by key, never by a blind re-render, and a
//! refused render is the handoff's own fallout case. A confirmation never
//! moves the order.
//!
//! The snapshot holds what the order was captured with (the accepted
//! quote's evidence, the customer, the billing account, each line with its
//! options and charges) plus the template version and locale; its id is
//! the sha256 of its canonical bytes, so the same order and template give
//! the same snapshot id, and the document service the same artifact.

use std::collections::BTreeMap;

use crate::handoff::{HandoffRequest, HandoffSubject, RequestSnapshot};
use crate::idempotency::{Purpose, TargetSystem};
use crate::ids::LineId;
use crate::order::Order;
use crate::quote::document::put_line_fields;

/// The document type of an order confirmation.
pub const ORDER_CONFIRMATION: &str = "ORDER_CONFIRMATION";

/// The template version the platform renders confirmations with.
pub const TEMPLATE_VERSION: &str = "order-confirmation-v1";

/// The locale of the confirmation.
pub const LOCALE: &str = crate::notification::LOCALE;

/// What the order records when its confirmation is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmationRequest {
    /// `document:ORDER_CONFIRMATION:<order>:<template>:<locale>`: one
    /// confirmation per order, template and locale.
    pub key: String,
    /// The sha256 of the snapshot's canonical bytes.
    pub snapshot_id: String,
    /// The handoff that renders it: the snapshot's fields, its id and the key.
    pub handoff: HandoffRequest,
}

/// The confirmation's business key.
pub fn confirmation_key(order: &Order) -> String {
    format!(
        "document:{ORDER_CONFIRMATION}:{}:{TEMPLATE_VERSION}:{LOCALE}",
        order.id
    )
}

/// The immutable snapshot of the captured order, sorted by field name.
pub fn snapshot(order: &Order) -> RequestSnapshot {
    let mut lines = BTreeMap::new();
    for (i, order_line) in order.lines.iter().enumerate() {
        put_line_fields(&mut lines, i, &order_line.accepted.line);
        for (j, charge) in order_line.accepted.charges.iter().enumerate() {
            let mut put = |name: &str, value: String| {
                lines.insert(format!("line.{i}.charge.{j}.{name}"), value);
            };
            put("code", charge.charge_code.clone());
            put("kind", format!("{:?}", charge.kind));
            put("amount", charge.amount.to_string());
        }
    }
    let mut fields = BTreeMap::new();
    let mut put = |name: String, value: String| {
        fields.insert(name, value);
    };
    put("document_type".into(), ORDER_CONFIRMATION.into());
    put("template_version".into(), TEMPLATE_VERSION.into());
    put("locale".into(), LOCALE.into());
    put("order_id".into(), order.id.to_string());
    put("customer.id".into(), order.customer_id.to_string());
    put("billing_account".into(), order.billing_account.to_string());
    put("quote.id".into(), order.evidence.quote_id.to_string());
    put("quote.revision".into(), order.evidence.revision.to_string());
    put(
        "quote.price_input_hash".into(),
        order.evidence.price_input_hash.clone(),
    );
    put(
        "quote.signed_artifact_hash".into(),
        order.evidence.signed_artifact_hash.clone(),
    );
    fields.extend(lines);
    RequestSnapshot { fields }
}

/// The confirmation of `order`: its key, snapshot id and handoff. The
/// handoff's subject names the template in its line slot, so an order's
/// confirmation is exactly one handoff id.
pub fn request(order: &Order) -> ConfirmationRequest {
    let key = confirmation_key(order);
    let mut fields = snapshot(order);
    let snapshot_id = fields.hash();
    fields
        .fields
        .insert("snapshot_id".into(), snapshot_id.clone());
    fields.fields.insert("document_key".into(), key.clone());
    let subject = HandoffSubject {
        tenant_id: order.tenant_id.clone(),
        order_id: order.id.clone(),
        line_id: LineId::new(format!("document_{TEMPLATE_VERSION}")),
        target: TargetSystem::Document,
        purpose: Purpose::GenerateDocument,
        attempt: 1,
    };
    ConfirmationRequest {
        key,
        snapshot_id,
        handoff: HandoffRequest::new(subject, fields),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::fold;
    use crate::order::{OrderDecider, OrderEvent, OrderState};
    use crate::testing::fixtures::order_captured;

    fn captured(events: &[OrderEvent]) -> Order {
        match fold::<OrderDecider, _>(events) {
            OrderState::Open(order) => order,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_same_order_gives_the_same_snapshot_and_one_handoff() {
        let order = captured(&[order_captured(&["l1", "l2"])]);
        let a = request(&order);
        let b = request(&order);
        assert_eq!(a, b);
        assert_eq!(a.snapshot_id, snapshot(&order).hash());
        assert_eq!(
            a.key,
            format!(
                "document:ORDER_CONFIRMATION:{}:order-confirmation-v1:en",
                order.id
            )
        );
        assert_eq!(a.handoff.subject.purpose.target(), TargetSystem::Document);
        let fields = &a.handoff.request.fields;
        assert_eq!(fields["snapshot_id"], a.snapshot_id);
        assert_eq!(fields["line.1.id"], "l2");
        assert!(fields.keys().any(|k| k.starts_with("line.0.charge.0.")));
    }

    #[test]
    fn another_order_has_another_snapshot() {
        let a = captured(&[order_captured(&["l1"])]);
        let b = captured(&[order_captured(&["l1", "l2"])]);
        assert_ne!(request(&a).snapshot_id, request(&b).snapshot_id);
    }
}
