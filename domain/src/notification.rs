//! Customer notifications (seed 001 §16): a domain event, then a
//! notification record on the order, then a handoff to the notification
//! provider, then sent or failed.
//!
//! Nothing is sent inside an order's transaction: the order records
//! `NotificationRequested` (refused for a cancelled order, recorded once per
//! milestone), and the fulfillment policy opens the notification's handoff
//! from that committed event. The handoff carries the UNKNOWN /
//! reconciliation / fallout treatment of every other handoff, so an
//! ambiguous provider answer is settled by a status query, never by a blind
//! resend.
//!
//! The data sent to the template is curated: the order's id, the customer's
//! id, the milestone and, for a line that needs attention, a fixed
//! customer-facing text chosen by the fallout's class. Never the aggregate,
//! never the external system's raw error.

use serde::{Deserialize, Serialize};

use crate::handoff::{HandoffRequest, HandoffSubject, RequestSnapshot};
use crate::idempotency::{Purpose, TargetSystem};
use crate::ids::{CustomerId, LineId, OrderId, TenantId};
use crate::order::Step;
use crate::outcome::FalloutReason;

/// Who receives the order's notifications: the customer's primary contact,
/// resolved by the provider from the customer id (the platform holds no
/// address).
pub const RECIPIENT: &str = "customer_primary";

/// The locale of the curated texts.
pub const LOCALE: &str = "en";

/// A business milestone a customer is told about.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Milestone {
    /// The order was captured from the accepted quote.
    OrderCaptured,
    /// Every line is settled and at least one is active.
    OrderCompleted,
    /// A line's step fell out and waits for the team.
    LineNeedsAttention {
        /// The line.
        line_id: LineId,
        /// The step that fell out.
        step: Step,
        /// The attempt that fell out.
        attempt: u32,
        /// Why, to choose the curated text (never sent itself).
        reason: FalloutReason,
    },
}

impl Milestone {
    /// The template the provider renders.
    pub fn template(&self) -> &'static str {
        match self {
            Milestone::OrderCaptured => "ORDER_CONFIRMATION",
            Milestone::OrderCompleted => "ORDER_COMPLETED",
            Milestone::LineNeedsAttention { .. } => "ORDER_LINE_ATTENTION",
        }
    }

    /// The milestone's stable name in keys: `captured_v1`, `completed_v1`,
    /// `attention_<step>_<attempt>_<line>_v1`.
    pub fn name(&self) -> String {
        match self {
            Milestone::OrderCaptured => "captured_v1".to_owned(),
            Milestone::OrderCompleted => "completed_v1".to_owned(),
            Milestone::LineNeedsAttention {
                line_id,
                step,
                attempt,
                ..
            } => format!(
                "attention_{}_{attempt}_{line_id}_v1",
                step.purpose().as_str()
            ),
        }
    }

    /// The customer-facing text: fixed per milestone and fallout class,
    /// never the external error.
    pub fn message(&self) -> &'static str {
        match self {
            Milestone::OrderCaptured => "We have received your order and started fulfilling it.",
            Milestone::OrderCompleted => "Your order is complete and your services are active.",
            Milestone::LineNeedsAttention { reason, .. } if reason.is_rejection() => {
                "One item of your order needs a change before we can continue. Our team will contact you."
            }
            Milestone::LineNeedsAttention { .. } => {
                "One item of your order is delayed. Our team is on it; you do not need to do anything."
            }
        }
    }
}

/// The notification's business key, the seeds' dedupe rule:
/// `notification:<template>:<order>:<recipient>:<milestone>`. One key, one
/// notification: the order records each milestone once.
pub fn notification_key(order_id: &OrderId, milestone: &Milestone) -> String {
    format!(
        "notification:{}:{order_id}:{RECIPIENT}:{}",
        milestone.template(),
        milestone.name()
    )
}

/// The handoff that sends the notification. Its subject names the
/// milestone in the line slot (the handoff id derives from it), so each
/// milestone of an order is exactly one handoff; the request holds only
/// curated fields.
pub fn handoff(
    tenant_id: &TenantId,
    order_id: &OrderId,
    customer_id: &CustomerId,
    milestone: &Milestone,
) -> HandoffRequest {
    let subject = HandoffSubject {
        tenant_id: tenant_id.clone(),
        order_id: order_id.clone(),
        line_id: LineId::new(milestone.name()),
        target: TargetSystem::Notification,
        purpose: Purpose::Notify,
        attempt: 1,
    };
    let mut fields = std::collections::BTreeMap::new();
    let mut put = |name: &str, value: &str| {
        fields.insert(name.to_owned(), value.to_owned());
    };
    put("notification_key", &notification_key(order_id, milestone));
    put("template", milestone.template());
    put("recipient", RECIPIENT);
    put("locale", LOCALE);
    put("order_id", order_id.as_str());
    put("customer_id", customer_id.as_str());
    put("milestone", &milestone.name());
    put("message", milestone.message());
    if let Milestone::LineNeedsAttention { line_id, .. } = milestone {
        put("line_id", line_id.as_str());
    }
    HandoffRequest::new(subject, RequestSnapshot { fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attention(reason: FalloutReason) -> Milestone {
        Milestone::LineNeedsAttention {
            line_id: LineId::new("l1"),
            step: Step::Provisioning,
            attempt: 2,
            reason,
        }
    }

    #[test]
    fn the_key_follows_the_seed_rule_and_names_one_milestone() {
        let order = OrderId::new("o1");
        assert_eq!(
            notification_key(&order, &Milestone::OrderCaptured),
            "notification:ORDER_CONFIRMATION:o1:customer_primary:captured_v1"
        );
        assert_eq!(
            notification_key(&order, &attention(FalloutReason::SlaBreach)),
            "notification:ORDER_LINE_ATTENTION:o1:customer_primary:attention_activate_2_l1_v1"
        );
        let a = handoff(
            &TenantId::new("t"),
            &order,
            &CustomerId::new("c"),
            &Milestone::OrderCaptured,
        );
        let b = handoff(
            &TenantId::new("t"),
            &order,
            &CustomerId::new("c"),
            &Milestone::OrderCompleted,
        );
        assert_ne!(a.handoff_id, b.handoff_id);
        assert_eq!(a.subject.purpose.target(), TargetSystem::Notification);
    }

    #[test]
    fn template_data_is_curated_and_never_carries_the_external_error() {
        let request = handoff(
            &TenantId::new("t"),
            &OrderId::new("o1"),
            &CustomerId::new("c"),
            &attention(FalloutReason::BusinessRejected),
        )
        .request;
        let names: Vec<&str> = request.fields.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "customer_id",
                "line_id",
                "locale",
                "message",
                "milestone",
                "notification_key",
                "order_id",
                "recipient",
                "template"
            ]
        );
        let message = &request.fields["message"];
        assert!(message.contains("needs a change"), "{message}");
        for reason in [
            FalloutReason::SchemaMismatch,
            FalloutReason::SecurityConfiguration,
            FalloutReason::Unclassified,
        ] {
            let text = attention(reason).message();
            assert!(!text.to_lowercase().contains("error"), "{text}");
            assert!(!text.contains(&format!("{reason:?}")), "{text}");
        }
    }
}
