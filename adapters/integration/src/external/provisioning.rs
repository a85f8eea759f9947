//! Provisioning: activate the service, cancel it, read its status. The
//! provisioning system owns the service's technical state.
//!
//! | external status | `Activate` | `Cancel` |
//! | --- | --- | --- |
//! | `NEW`, `SENT`, `ACK`, `INPROG` | `Accepted` (pending) | `Accepted` |
//! | `DONE` | `Succeeded` | `Succeeded` |
//! | `CANCELLED` | `Unclassified` | `Succeeded` |
//! | `ERR`, `ERR2` | `BusinessRejected` (failed) | `BusinessRejected` |
//! | `CANCEL_PENDING` | `Unclassified` (cancellation under way: investigate) | `Accepted` |
//! | anything else | `Unclassified` (requires investigation) | `Unclassified` |
//!
//! | vendor error code | class |
//! | --- | --- |
//! | `PV-REJ-*` | `BusinessRejected` |
//! | `PV-400-*` | `ValidationRejected` |
//! | anything else | `Unclassified` |

use domain::idempotency::Purpose;
use domain::outcome::OutcomeClass;
use serde::{Deserialize, Serialize};

use super::{field, Body, ErrorBody, ExternalCall, ParsedCallback};

/// The provisioning system's path for `activate` (`/prov/api/service-orders`), shared with the simulators.
pub const ACTIVATE_PATH: &str = "/prov/api/service-orders";
/// The provisioning system's path for `cancel` (`/prov/api/service-cancellations`), shared with the simulators.
pub const CANCEL_PATH: &str = "/prov/api/service-cancellations";
/// The provisioning system's path for `status` (`/prov/api/service-orders`), shared with the simulators.
pub const STATUS_PATH: &str = "/prov/api/service-orders";

/// The answer to an activation or cancellation, and to a status query.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOrderAnswer {
    /// The wire field `provTxnRef`.
    pub prov_txn_ref: Option<String>,
    /// The wire field `status`.
    pub status: String,
}

/// An error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvError {
    /// The wire field `errCd`.
    pub err_cd: String,
    /// The wire field `errMsg`.
    pub err_msg: String,
}

/// A callback.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvEvent {
    /// The wire field `msgId`.
    pub msg_id: String,
    /// The wire field `tenantId`.
    pub tenant_id: String,
    /// The wire field `idemKey`.
    pub idem_key: String,
    /// The wire field `status`.
    pub status: String,
    /// The wire field `errCd`.
    pub err_cd: Option<String>,
    /// The wire field `provTxnRef`.
    pub prov_txn_ref: Option<String>,
}

pub(crate) fn execute_request(call: &ExternalCall) -> Option<(&'static str, serde_json::Value)> {
    let (path, kind) = match call.purpose {
        Purpose::Activate => (ACTIVATE_PATH, "ADD"),
        Purpose::Cancel => (CANCEL_PATH, "CEASE"),
        _ => return None,
    };
    let r = &call.request;
    let params: serde_json::Map<String, serde_json::Value> = r
        .fields
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("option.")
                .map(|name| (name.to_owned(), serde_json::Value::String(v.clone())))
        })
        .collect();
    Some((
        path,
        serde_json::json!({
            "idemKey": call.idempotency_key,
            "svcOrderType": kind,
            "orderRef": field(r, "order_id"),
            "lineRef": field(r, "line_id"),
            "svcSpecCode": field(r, "offering_id"),
            "svcSpecVersion": field(r, "offering_version"),
            "termMonths": field(r, "term_months"),
            "params": params,
        }),
    ))
}

/// Maps a provisioning status for a purpose (see the module table).
pub fn map_state(purpose: Purpose, status: &str) -> OutcomeClass {
    match (status, purpose) {
        ("NEW" | "SENT" | "ACK" | "INPROG", _) => OutcomeClass::Accepted,
        ("DONE", _) | ("CANCELLED", Purpose::Cancel) => OutcomeClass::Succeeded,
        ("ERR" | "ERR2", _) => OutcomeClass::BusinessRejected,
        ("CANCEL_PENDING", Purpose::Cancel) => OutcomeClass::Accepted,
        _ => OutcomeClass::Unclassified,
    }
}

/// Maps a provisioning error code (see the module table).
pub fn map_error_code(code: &str) -> OutcomeClass {
    if code.starts_with("PV-REJ-") {
        OutcomeClass::BusinessRejected
    } else if code.starts_with("PV-400-") {
        OutcomeClass::ValidationRejected
    } else {
        OutcomeClass::Unclassified
    }
}

pub(crate) fn parse_body(body: &[u8]) -> Option<Body> {
    let answer: ServiceOrderAnswer = serde_json::from_slice(body).ok()?;
    Some(Body {
        state: answer.status,
        code: None,
        reference: answer.prov_txn_ref,
    })
}

pub(crate) fn parse_error(body: &[u8]) -> Option<ErrorBody> {
    let error: ProvError = serde_json::from_slice(body).ok()?;
    Some(ErrorBody {
        code: Some(error.err_cd),
        message: Some(error.err_msg),
    })
}

pub(crate) fn parse_callback(body: &[u8]) -> Result<ParsedCallback, String> {
    let event: ProvEvent =
        serde_json::from_slice(body).map_err(|e| super::malformed_body("provisioning", &e))?;
    Ok(ParsedCallback {
        message_id: event.msg_id,
        tenant: event.tenant_id,
        idempotency_key: event.idem_key,
        raw_state: event.status,
        raw_code: event.err_cd,
        external_reference: event.prov_txn_ref,
    })
}
