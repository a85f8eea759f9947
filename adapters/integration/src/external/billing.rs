//! Billing: activate the charges of an order line from the order's charge
//! snapshot (never recalculated here), read the activation's status.
//! Billing detects duplicates by idempotency key: the same key with the same
//! charges is answered `DUPLICATE` (idempotent success), the same key with
//! other charges is a 409 conflict.
//!
//! | external result | class |
//! | --- | --- |
//! | `PENDING` | `Accepted` |
//! | `ACTIVE` | `Succeeded` |
//! | `DUPLICATE` | `IdempotentSuccess` |
//! | `REJECTED` | by its code (below), `BusinessRejected` without one |
//! | anything else | `Unclassified` |
//!
//! | vendor code | class |
//! | --- | --- |
//! | `BIL-NOT-ELIGIBLE`, `BIL-CREDIT-HOLD` | `BusinessRejected` |
//! | `BIL-ACCT-INVALID`, `BIL-CHARGE-UNKNOWN` | `ValidationRejected` |
//! | `BIL-DUP-CONFLICT` | `DuplicateConflict` |
//! | anything else | `Unclassified` |

use domain::idempotency::Purpose;
use domain::outcome::OutcomeClass;
use serde::{Deserialize, Serialize};

use super::{field, Body, ErrorBody, ExternalCall, ParsedCallback};

/// The billing system's path for `activate` (`/bss/charges/activate`), shared with the simulators.
pub const ACTIVATE_PATH: &str = "/bss/charges/activate";
/// The billing system's path for `status` (`/bss/charges/activations`), shared with the simulators.
pub const STATUS_PATH: &str = "/bss/charges/activations";

/// The answer to an activation, and to a status query.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationAnswer {
    /// The wire field `activationId`.
    pub activation_id: Option<String>,
    /// The wire field `result`.
    pub result: String,
    /// The wire field `code`.
    pub code: Option<String>,
}

/// An error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingError {
    /// The wire field `code`.
    pub code: String,
    /// The wire field `detail`.
    pub detail: String,
}

/// A callback.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingEvent {
    /// The wire field `notificationId`.
    pub notification_id: String,
    /// The wire field `tenant`.
    pub tenant: String,
    /// The wire field `requestKey`.
    pub request_key: String,
    /// The wire field `result`.
    pub result: String,
    /// The wire field `code`.
    pub code: Option<String>,
    /// The wire field `activationId`.
    pub activation_id: Option<String>,
}

pub(crate) fn execute_request(call: &ExternalCall) -> Option<(&'static str, serde_json::Value)> {
    if call.purpose != Purpose::ActivateBilling {
        return None;
    }
    let r = &call.request;
    let charges: Vec<serde_json::Value> = (0..)
        .map_while(|i| {
            let code = r.fields.get(&format!("charge.{i}.code"))?;
            let kind = match field(r, &format!("charge.{i}.kind")) {
                "OneTime" => "ONE_TIME",
                "RecurringMonthly" => "RECURRING_MONTHLY",
                _ => "UNSPECIFIED",
            };
            Some(serde_json::json!({
                "chargeCode": code,
                "chargeType": kind,
                "amount": field(r, &format!("charge.{i}.amount")),
            }))
        })
        .collect();
    Some((
        ACTIVATE_PATH,
        serde_json::json!({
            "requestKey": call.idempotency_key,
            "accountRef": field(r, "billing_account"),
            "customerRef": field(r, "customer_id"),
            "orderRef": field(r, "order_id"),
            "lineRef": field(r, "line_id"),
            "termMonths": field(r, "term_months"),
            "charges": charges,
        }),
    ))
}

/// Maps a billing result and code (see the module tables).
pub fn map_state(result: &str, code: Option<&str>) -> OutcomeClass {
    match result {
        "PENDING" => OutcomeClass::Accepted,
        "ACTIVE" => OutcomeClass::Succeeded,
        "DUPLICATE" => OutcomeClass::IdempotentSuccess,
        "REJECTED" => code.map_or(OutcomeClass::BusinessRejected, map_error_code),
        _ => OutcomeClass::Unclassified,
    }
}

/// Maps a billing code (see the module table).
pub fn map_error_code(code: &str) -> OutcomeClass {
    match code {
        "BIL-NOT-ELIGIBLE" | "BIL-CREDIT-HOLD" => OutcomeClass::BusinessRejected,
        "BIL-ACCT-INVALID" | "BIL-CHARGE-UNKNOWN" => OutcomeClass::ValidationRejected,
        "BIL-DUP-CONFLICT" => OutcomeClass::DuplicateConflict,
        _ => OutcomeClass::Unclassified,
    }
}

pub(crate) fn parse_body(body: &[u8]) -> Option<Body> {
    let answer: ActivationAnswer = serde_json::from_slice(body).ok()?;
    Some(Body {
        state: answer.result,
        code: answer.code,
        reference: answer.activation_id,
    })
}

pub(crate) fn parse_error(body: &[u8]) -> Option<ErrorBody> {
    let error: BillingError = serde_json::from_slice(body).ok()?;
    Some(ErrorBody {
        code: Some(error.code),
        message: Some(error.detail),
    })
}

pub(crate) fn parse_callback(body: &[u8]) -> Result<ParsedCallback, String> {
    let event: BillingEvent =
        serde_json::from_slice(body).map_err(|e| super::malformed_body("billing", &e))?;
    Ok(ParsedCallback {
        message_id: event.notification_id,
        tenant: event.tenant,
        idempotency_key: event.request_key,
        raw_state: event.result,
        raw_code: event.code,
        external_reference: event.activation_id,
    })
}
