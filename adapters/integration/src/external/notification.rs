//! Notification: send a customer e-mail for an order milestone from the
//! curated fields of the notification's handoff
//! ([`domain::notification`]), and read a message's delivery status by its
//! key. The provider answers synchronously (no callbacks) and, like many
//! real providers, does not deduplicate: the platform never resends a
//! message whose fate is unknown before a status query says it was not
//! received.
//!
//! | external status | class |
//! | --- | --- |
//! | `QUEUED` | `Accepted` |
//! | `SENT`, `DELIVERED` | `Succeeded` |
//! | `DUPLICATE` | `IdempotentSuccess` |
//! | `BOUNCED`, `SUPPRESSED` | `BusinessRejected` |
//! | `INVALID` | `ValidationRejected` |
//! | anything else | `Unclassified` |
//!
//! | vendor code | class |
//! | --- | --- |
//! | `NTF-OPTED-OUT`, `NTF-BOUNCED` | `BusinessRejected` |
//! | `NTF-RECIPIENT-INVALID`, `NTF-TEMPLATE-UNKNOWN` | `ValidationRejected` |
//! | `NTF-DUP-CONFLICT` | `DuplicateConflict` |
//! | anything else | `Unclassified` |

use domain::idempotency::Purpose;
use domain::outcome::OutcomeClass;
use serde::{Deserialize, Serialize};

use super::{field, Body, ErrorBody, ExternalCall};

/// The provider's path for sending a message, shared with the simulators.
pub const SEND_PATH: &str = "/notify/v1/messages";
/// The provider's path for a message's status (the key follows as one
/// path segment), shared with the simulators.
pub const STATUS_PATH: &str = "/notify/v1/messages";

/// The answer to a send, and to a status query.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageAnswer {
    /// The wire field `messageId`.
    pub message_id: Option<String>,
    /// The wire field `deliveryStatus`.
    pub delivery_status: String,
}

/// An error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationError {
    /// The wire field `errorCode`.
    pub error_code: String,
    /// The wire field `description`.
    pub description: String,
}

pub(crate) fn execute_request(call: &ExternalCall) -> Option<(&'static str, serde_json::Value)> {
    if call.purpose != Purpose::Notify {
        return None;
    }
    let r = &call.request;
    let mut data = serde_json::json!({
        "orderNumber": field(r, "order_id"),
        "customerRef": field(r, "customer_id"),
        "milestone": field(r, "milestone"),
        "message": field(r, "message"),
    });
    if let Some(line) = r.fields.get("line_id") {
        data["lineRef"] = serde_json::Value::String(line.clone());
    }
    Some((
        SEND_PATH,
        serde_json::json!({
            "messageKey": call.idempotency_key,
            "dedupeKey": field(r, "notification_key"),
            "templateCode": field(r, "template"),
            "recipient": field(r, "recipient"),
            "locale": field(r, "locale"),
            "data": data,
        }),
    ))
}

/// Maps a delivery status (see the module table).
pub fn map_state(status: &str) -> OutcomeClass {
    match status {
        "QUEUED" => OutcomeClass::Accepted,
        "SENT" | "DELIVERED" => OutcomeClass::Succeeded,
        "DUPLICATE" => OutcomeClass::IdempotentSuccess,
        "BOUNCED" | "SUPPRESSED" => OutcomeClass::BusinessRejected,
        "INVALID" => OutcomeClass::ValidationRejected,
        _ => OutcomeClass::Unclassified,
    }
}

/// Maps a vendor code (see the module table).
pub fn map_error_code(code: &str) -> OutcomeClass {
    match code {
        "NTF-OPTED-OUT" | "NTF-BOUNCED" => OutcomeClass::BusinessRejected,
        "NTF-RECIPIENT-INVALID" | "NTF-TEMPLATE-UNKNOWN" => OutcomeClass::ValidationRejected,
        "NTF-DUP-CONFLICT" => OutcomeClass::DuplicateConflict,
        _ => OutcomeClass::Unclassified,
    }
}

pub(crate) fn parse_body(body: &[u8]) -> Option<Body> {
    let answer: MessageAnswer = serde_json::from_slice(body).ok()?;
    Some(Body {
        state: answer.delivery_status,
        code: None,
        reference: answer.message_id,
    })
}

pub(crate) fn parse_error(body: &[u8]) -> Option<ErrorBody> {
    let error: NotificationError = serde_json::from_slice(body).ok()?;
    Some(ErrorBody {
        code: Some(error.error_code),
        message: Some(error.description),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use domain::idempotency::TargetSystem;
    use domain::ids::{CustomerId, OrderId, TenantId};
    use domain::notification::{handoff, Milestone};

    #[test]
    fn the_request_carries_only_the_curated_fields_and_both_keys() {
        let request = handoff(
            &TenantId::new("t1"),
            &OrderId::new("o1"),
            &CustomerId::new("c1"),
            &Milestone::OrderCaptured,
        );
        let call = ExternalCall {
            tenant: TenantId::new("t1"),
            system: TargetSystem::Notification,
            purpose: Purpose::Notify,
            handoff_id: request.handoff_id.clone(),
            idempotency_key: request.subject.idempotency_key(),
            request: request.request,
            correlation_id: "c".to_owned(),
        };
        let (path, body) = execute_request(&call).unwrap();
        assert_eq!(path, SEND_PATH);
        assert_eq!(body["messageKey"], call.idempotency_key.as_str());
        assert_eq!(
            body["dedupeKey"],
            "notification:ORDER_CONFIRMATION:o1:customer_primary:captured_v1"
        );
        assert_eq!(body["templateCode"], "ORDER_CONFIRMATION");
        let data: Vec<&String> = body["data"].as_object().unwrap().keys().collect();
        assert_eq!(data, ["customerRef", "message", "milestone", "orderNumber"]);
        let other = ExternalCall {
            purpose: Purpose::Reserve,
            ..call
        };
        assert!(execute_request(&other).is_none());
    }

    #[test]
    fn statuses_and_codes_map_by_the_tables() {
        assert_eq!(map_state("SENT"), OutcomeClass::Succeeded);
        assert_eq!(map_state("QUEUED"), OutcomeClass::Accepted);
        assert_eq!(map_state("BOUNCED"), OutcomeClass::BusinessRejected);
        assert_eq!(map_state("WHATEVER"), OutcomeClass::Unclassified);
        assert_eq!(
            map_error_code("NTF-RECIPIENT-INVALID"),
            OutcomeClass::ValidationRejected
        );
        assert_eq!(map_error_code("NTF-9"), OutcomeClass::Unclassified);
    }
}
