//! Inventory: reserve capacity for an order line, release it, read its
//! status. The inventory system owns reservation truth.
//!
//! | external state | `Reserve` | `Release` |
//! | --- | --- | --- |
//! | `PENDING` | `Accepted` | `Accepted` |
//! | `CONFIRMED` | `Succeeded` | `Unclassified` |
//! | `RELEASED` | `Unclassified` | `Succeeded` |
//! | `REJECTED` | `BusinessRejected` | `BusinessRejected` |
//! | `INVALID` | `ValidationRejected` | `ValidationRejected` |
//! | anything else | `Unclassified` | `Unclassified` |
//!
//! | vendor error code | class |
//! | --- | --- |
//! | `NO_CAPACITY`, `SKU_BLOCKED` | `BusinessRejected` |
//! | `BAD_SKU`, `BAD_QUANTITY`, `MISSING_KEY` | `ValidationRejected` |
//! | anything else | `Unclassified` |

use domain::idempotency::Purpose;
use domain::outcome::OutcomeClass;
use serde::{Deserialize, Serialize};

use super::{field, Body, ErrorBody, ExternalCall, ParsedCallback};

/// The inventory system's path for `reserve` (`/inventory/v1/reservations`), shared with the simulators.
pub const RESERVE_PATH: &str = "/inventory/v1/reservations";
/// The inventory system's path for `release` (`/inventory/v1/releases`), shared with the simulators.
pub const RELEASE_PATH: &str = "/inventory/v1/releases";
/// The inventory system's path for `status` (`/inventory/v1/reservation-status`), shared with the simulators.
pub const STATUS_PATH: &str = "/inventory/v1/reservation-status";

/// The answer to a reserve or release, and to a status query.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationAnswer {
    /// The wire field `reservationId`.
    pub reservation_id: Option<String>,
    /// The wire field `state`.
    pub state: String,
}

/// An error answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryError {
    /// The wire field `errorCode`.
    pub error_code: String,
    /// The wire field `message`.
    pub message: String,
}

/// A callback.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationEvent {
    /// The wire field `eventId`.
    pub event_id: String,
    /// The wire field `tenant`.
    pub tenant: String,
    /// The wire field `reservationKey`.
    pub reservation_key: String,
    /// The wire field `state`.
    pub state: String,
    /// The wire field `reservationId`.
    pub reservation_id: Option<String>,
}

pub(crate) fn execute_request(call: &ExternalCall) -> Option<(&'static str, serde_json::Value)> {
    let path = match call.purpose {
        Purpose::Reserve => RESERVE_PATH,
        Purpose::Release => RELEASE_PATH,
        _ => return None,
    };
    let r = &call.request;
    Some((
        path,
        serde_json::json!({
            "reservationKey": call.idempotency_key,
            "orderRef": field(r, "order_id"),
            "lineRef": field(r, "line_id"),
            "sku": field(r, "offering_id"),
            "skuVersion": field(r, "offering_version"),
            "qty": field(r, "quantity"),
        }),
    ))
}

/// Maps an inventory state for a purpose (see the module table).
pub fn map_state(purpose: Purpose, state: &str) -> OutcomeClass {
    match (state, purpose) {
        ("PENDING", _) => OutcomeClass::Accepted,
        ("CONFIRMED", Purpose::Reserve) | ("RELEASED", Purpose::Release) => OutcomeClass::Succeeded,
        ("REJECTED", _) => OutcomeClass::BusinessRejected,
        ("INVALID", _) => OutcomeClass::ValidationRejected,
        _ => OutcomeClass::Unclassified,
    }
}

/// Maps an inventory error code (see the module table).
pub fn map_error_code(code: &str) -> OutcomeClass {
    match code {
        "NO_CAPACITY" | "SKU_BLOCKED" => OutcomeClass::BusinessRejected,
        "BAD_SKU" | "BAD_QUANTITY" | "MISSING_KEY" => OutcomeClass::ValidationRejected,
        _ => OutcomeClass::Unclassified,
    }
}

pub(crate) fn parse_body(body: &[u8]) -> Option<Body> {
    let answer: ReservationAnswer = serde_json::from_slice(body).ok()?;
    Some(Body {
        state: answer.state,
        code: None,
        reference: answer.reservation_id,
    })
}

pub(crate) fn parse_error(body: &[u8]) -> Option<ErrorBody> {
    let error: InventoryError = serde_json::from_slice(body).ok()?;
    Some(ErrorBody {
        code: Some(error.error_code),
        message: Some(error.message),
    })
}

pub(crate) fn parse_callback(body: &[u8]) -> Result<ParsedCallback, String> {
    let event: ReservationEvent =
        serde_json::from_slice(body).map_err(|e| super::malformed_body("inventory", &e))?;
    Ok(ParsedCallback {
        message_id: event.event_id,
        tenant: event.tenant,
        idempotency_key: event.reservation_key,
        raw_state: event.state,
        raw_code: None,
        external_reference: event.reservation_id,
    })
}
