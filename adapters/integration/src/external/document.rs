//! Document generation as a handoff: render an order's confirmation from
//! the snapshot fields of its handoff ([`domain::confirmation`]), and read
//! a render's status by its key. The same wire shapes answer the
//! synchronous proposal renders of [`crate::document`].
//!
//! The service answers synchronously (no callbacks). Like many real
//! document stores it does not deduplicate by key: every render it applies
//! stores another artifact, so the platform never renders again a document
//! whose fate is unknown before a status query says it was not received.
//!
//! | external status | class |
//! | --- | --- |
//! | `QUEUED`, `RENDERING` | `Accepted` |
//! | `RENDERED` | `Succeeded` |
//! | `DUPLICATE` | `IdempotentSuccess` |
//! | `REJECTED` | `BusinessRejected` |
//! | `INVALID` | `ValidationRejected` |
//! | anything else | `Unclassified` |
//!
//! | vendor code | class |
//! | --- | --- |
//! | `DOC-DATA-REFUSED` | `BusinessRejected` |
//! | `DOC-TEMPLATE-REFUSED`, `DOC-FIELD-INVALID` | `ValidationRejected` |
//! | `DOC-DUP-CONFLICT` | `DuplicateConflict` |
//! | anything else | `Unclassified` |

use domain::idempotency::Purpose;
use domain::outcome::OutcomeClass;
use serde::{Deserialize, Serialize};

use super::{field, Body, ErrorBody, ExternalCall};

/// The service's path for document renders by key, shared with the
/// simulators.
pub const DOCUMENTS_PATH: &str = "/docs/v1/documents";
/// The service's path for a render's status (the key follows as one path
/// segment), shared with the simulators.
pub const STATUS_PATH: &str = "/docs/v1/documents";

/// The answer to a render, and to a status query.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentAnswer {
    /// The wire field `documentId`: the stored artifact's id.
    pub document_id: Option<String>,
    /// The wire field `sha256`: the stored artifact's hash.
    pub sha256: Option<String>,
    /// The wire field `status`.
    pub status: String,
}

/// An error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentErrorBody {
    /// The wire field `errorCode`.
    pub error_code: String,
    /// The wire field `detail`.
    #[serde(default)]
    pub detail: String,
}

pub(crate) fn execute_request(call: &ExternalCall) -> Option<(&'static str, serde_json::Value)> {
    if call.purpose != Purpose::GenerateDocument {
        return None;
    }
    let r = &call.request;
    let data: serde_json::Map<String, serde_json::Value> = r
        .fields
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "snapshot_id" | "document_key"))
        .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
        .collect();
    Some((
        DOCUMENTS_PATH,
        serde_json::json!({
            "documentKey": call.idempotency_key,
            "businessKey": field(r, "document_key"),
            "documentType": field(r, "document_type"),
            "templateVersion": field(r, "template_version"),
            "locale": field(r, "locale"),
            "snapshotId": field(r, "snapshot_id"),
            "data": data,
        }),
    ))
}

/// Maps a render status (see the module table).
pub fn map_state(status: &str) -> OutcomeClass {
    match status {
        "QUEUED" | "RENDERING" => OutcomeClass::Accepted,
        "RENDERED" => OutcomeClass::Succeeded,
        "DUPLICATE" => OutcomeClass::IdempotentSuccess,
        "REJECTED" => OutcomeClass::BusinessRejected,
        "INVALID" => OutcomeClass::ValidationRejected,
        _ => OutcomeClass::Unclassified,
    }
}

/// Maps a vendor code (see the module table).
pub fn map_error_code(code: &str) -> OutcomeClass {
    match code {
        "DOC-DATA-REFUSED" => OutcomeClass::BusinessRejected,
        "DOC-TEMPLATE-REFUSED" | "DOC-FIELD-INVALID" => OutcomeClass::ValidationRejected,
        "DOC-DUP-CONFLICT" => OutcomeClass::DuplicateConflict,
        _ => OutcomeClass::Unclassified,
    }
}

pub(crate) fn parse_body(body: &[u8]) -> Option<Body> {
    let answer: DocumentAnswer = serde_json::from_slice(body).ok()?;
    Some(Body {
        state: answer.status,
        code: None,
        reference: answer.document_id,
    })
}

pub(crate) fn parse_error(body: &[u8]) -> Option<ErrorBody> {
    let error: DocumentErrorBody = serde_json::from_slice(body).ok()?;
    Some(ErrorBody {
        code: Some(error.error_code),
        message: Some(error.detail),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use domain::decider::fold;
    use domain::idempotency::TargetSystem;
    use domain::ids::TenantId;
    use domain::order::{OrderDecider, OrderState};
    use domain::testing::fixtures::order_captured;

    #[test]
    fn the_request_carries_the_snapshot_its_id_and_both_keys() {
        let OrderState::Open(order) = fold::<OrderDecider, _>(&[order_captured(&["l1"])]) else {
            panic!("captured");
        };
        let request = domain::confirmation::request(&order);
        let call = ExternalCall {
            tenant: TenantId::new("t1"),
            system: TargetSystem::Document,
            purpose: Purpose::GenerateDocument,
            handoff_id: request.handoff.handoff_id.clone(),
            idempotency_key: request.handoff.subject.idempotency_key(),
            request: request.handoff.request.clone(),
            correlation_id: "c".to_owned(),
        };
        let (path, body) = execute_request(&call).unwrap();
        assert_eq!(path, DOCUMENTS_PATH);
        assert_eq!(body["documentKey"], call.idempotency_key.as_str());
        assert_eq!(body["businessKey"], request.key.as_str());
        assert_eq!(body["snapshotId"], request.snapshot_id.as_str());
        assert_eq!(
            body["templateVersion"],
            domain::confirmation::TEMPLATE_VERSION
        );
        assert_eq!(body["data"]["line.0.id"], "l1");
        assert!(body["data"].get("snapshot_id").is_none());
        let other = ExternalCall {
            purpose: Purpose::Notify,
            ..call
        };
        assert!(execute_request(&other).is_none());
    }

    #[test]
    fn statuses_and_codes_map_by_the_tables() {
        assert_eq!(map_state("RENDERED"), OutcomeClass::Succeeded);
        assert_eq!(map_state("RENDERING"), OutcomeClass::Accepted);
        assert_eq!(map_state("REJECTED"), OutcomeClass::BusinessRejected);
        assert_eq!(map_state("SHREDDED"), OutcomeClass::Unclassified);
        assert_eq!(
            map_error_code("DOC-TEMPLATE-REFUSED"),
            OutcomeClass::ValidationRejected
        );
        assert_eq!(map_error_code("DOC-9"), OutcomeClass::Unclassified);
    }
}
