//! What each simulated system says, in its own words (the same wire shapes
//! the adapters parse).

use domain::idempotency::{Purpose, TargetSystem};
use sha2::{Digest, Sha256};

use integration::external::billing::{ActivationAnswer, BillingError, BillingEvent};
use integration::external::document::{DocumentAnswer, DocumentErrorBody};
use integration::external::inventory::{InventoryError, ReservationAnswer, ReservationEvent};
use integration::external::notification::{MessageAnswer, NotificationError};
use integration::external::provisioning::{ProvError, ProvEvent, ServiceOrderAnswer};

/// The state a system reports once the side effect is done.
pub(super) fn final_state(system: TargetSystem, purpose: Purpose) -> &'static str {
    match (system, purpose) {
        (TargetSystem::Inventory, Purpose::Release) => "RELEASED",
        (TargetSystem::Inventory, _) => "CONFIRMED",
        (TargetSystem::Provisioning, Purpose::Cancel) => "CANCELLED",
        (TargetSystem::Provisioning, _) => "DONE",
        (TargetSystem::Notification, _) => "SENT",
        (TargetSystem::Document, _) => "RENDERED",
        _ => "ACTIVE",
    }
}

/// The state a system answers with when the result comes by callback.
pub(super) fn pending_state(system: TargetSystem, purpose: Purpose) -> &'static str {
    match (system, purpose) {
        (TargetSystem::Inventory, _) => "PENDING",
        (TargetSystem::Provisioning, Purpose::Cancel) => "CANCEL_PENDING",
        (TargetSystem::Provisioning, _) => "ACK",
        (TargetSystem::Notification, _) => "QUEUED",
        (TargetSystem::Document, _) => "RENDERING",
        _ => "PENDING",
    }
}

/// An intermediate state, sent late to play an out-of-order callback.
pub(super) fn stale_state(system: TargetSystem, purpose: Purpose) -> &'static str {
    match (system, purpose) {
        (TargetSystem::Provisioning, Purpose::Activate) => "INPROG",
        _ => pending_state(system, purpose),
    }
}

/// The state of a refused request.
pub(super) fn rejected_state(system: TargetSystem, business: bool) -> &'static str {
    match (system, business) {
        (TargetSystem::Provisioning, _) => "ERR",
        (TargetSystem::Notification, true) => "BOUNCED",
        (_, true) => "REJECTED",
        (_, false) => "INVALID",
    }
}

/// A status word nobody mapped.
pub(super) fn unknown_state(system: TargetSystem) -> &'static str {
    match system {
        TargetSystem::Inventory => "ON_HOLD",
        TargetSystem::Provisioning => "ZZ_HOLD",
        TargetSystem::Notification => "DEFERRED_BY_CARRIER",
        TargetSystem::Document => "ARCHIVED_OFFSITE",
        _ => "SUSPENDED",
    }
}

/// The body of a 2xx answer (execute or status).
pub(super) fn answer(system: TargetSystem, state: &str, reference: &str) -> serde_json::Value {
    let reference = Some(reference.to_owned());
    let value = match system {
        TargetSystem::Inventory => serde_json::to_value(ReservationAnswer {
            reservation_id: reference,
            state: state.to_owned(),
        }),
        TargetSystem::Provisioning => serde_json::to_value(ServiceOrderAnswer {
            prov_txn_ref: reference,
            status: state.to_owned(),
        }),
        TargetSystem::Notification => serde_json::to_value(MessageAnswer {
            message_id: reference,
            delivery_status: state.to_owned(),
        }),
        // The stored artifact's hash: a function of the reference, which
        // is a function of the request.
        TargetSystem::Document => serde_json::to_value(DocumentAnswer {
            sha256: reference
                .as_ref()
                .map(|r| hex::encode(Sha256::digest(r.as_bytes()))),
            document_id: reference,
            status: state.to_owned(),
        }),
        _ => serde_json::to_value(ActivationAnswer {
            activation_id: reference,
            result: state.to_owned(),
            code: (state == "REJECTED").then(|| "BIL-NOT-ELIGIBLE".to_owned()),
        }),
    };
    value.unwrap_or_default()
}

/// The body of a 400/409/422 answer.
pub(super) fn error(system: TargetSystem, kind: ErrorKind) -> serde_json::Value {
    let value = match (system, kind) {
        (TargetSystem::Inventory, kind) => serde_json::to_value(InventoryError {
            error_code: match kind {
                ErrorKind::Business => "NO_CAPACITY",
                ErrorKind::Validation => "BAD_SKU",
                ErrorKind::Conflict => "KEY_CONFLICT",
                ErrorKind::NotFound => "NOT_FOUND",
            }
            .to_owned(),
            message: "simulated".to_owned(),
        }),
        (TargetSystem::Provisioning, kind) => serde_json::to_value(ProvError {
            err_cd: match kind {
                ErrorKind::Business => "PV-REJ-NO-PORT",
                ErrorKind::Validation => "PV-400-PARAM",
                ErrorKind::Conflict => "PV-409-DUP",
                ErrorKind::NotFound => "PV-404",
            }
            .to_owned(),
            err_msg: "simulated".to_owned(),
        }),
        (TargetSystem::Notification, kind) => serde_json::to_value(NotificationError {
            error_code: match kind {
                ErrorKind::Business => "NTF-OPTED-OUT",
                ErrorKind::Validation => "NTF-RECIPIENT-INVALID",
                ErrorKind::Conflict => "NTF-DUP-CONFLICT",
                ErrorKind::NotFound => "NTF-NOT-FOUND",
            }
            .to_owned(),
            description: "simulated".to_owned(),
        }),
        (TargetSystem::Document, kind) => serde_json::to_value(DocumentErrorBody {
            error_code: match kind {
                ErrorKind::Business => "DOC-DATA-REFUSED",
                ErrorKind::Validation => "DOC-TEMPLATE-REFUSED",
                ErrorKind::Conflict => "DOC-DUP-CONFLICT",
                ErrorKind::NotFound => "DOC-NOT-FOUND",
            }
            .to_owned(),
            detail: "simulated".to_owned(),
        }),
        (_, kind) => serde_json::to_value(BillingError {
            code: match kind {
                ErrorKind::Business => "BIL-NOT-ELIGIBLE",
                ErrorKind::Validation => "BIL-ACCT-INVALID",
                ErrorKind::Conflict => "BIL-DUP-CONFLICT",
                ErrorKind::NotFound => "BIL-NOT-FOUND",
            }
            .to_owned(),
            detail: "simulated".to_owned(),
        }),
    };
    value.unwrap_or_default()
}

/// Kinds of error answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ErrorKind {
    Business,
    Validation,
    Conflict,
    NotFound,
}

/// The body of a callback.
pub(super) fn callback(
    system: TargetSystem,
    message_id: &str,
    tenant: &str,
    key: &str,
    state: &str,
    reference: &str,
) -> serde_json::Value {
    let reference = Some(reference.to_owned());
    let value = match system {
        TargetSystem::Inventory => serde_json::to_value(ReservationEvent {
            event_id: message_id.to_owned(),
            tenant: tenant.to_owned(),
            reservation_key: key.to_owned(),
            state: state.to_owned(),
            reservation_id: reference,
        }),
        TargetSystem::Provisioning => serde_json::to_value(ProvEvent {
            msg_id: message_id.to_owned(),
            tenant_id: tenant.to_owned(),
            idem_key: key.to_owned(),
            status: state.to_owned(),
            err_cd: None,
            prov_txn_ref: reference,
        }),
        _ => serde_json::to_value(BillingEvent {
            notification_id: message_id.to_owned(),
            tenant: tenant.to_owned(),
            request_key: key.to_owned(),
            result: state.to_owned(),
            code: None,
            activation_id: reference,
        }),
    };
    value.unwrap_or_default()
}
