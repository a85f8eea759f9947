//! The read models: each module holds its stored rows, its fold and its
//! queries.

pub mod audit;
pub mod dashboard;
pub mod fallout;
pub mod handoffs;
pub mod orders;
pub mod quotes;

use domain::handoff::HandoffEvent;
use domain::idempotency::TargetSystem;
use domain::ids::StreamKind;
use domain::outcome::{FalloutReason, OutcomeClass};

use crate::error::{FoldError, QueryError};
use crate::event::Decoded;

/// The id part of the event's stream, which must be a `kind` stream
/// (`quote-q1` → `q1`).
pub(crate) fn stream_id_part(event: &Decoded, kind: StreamKind) -> Result<&str, FoldError> {
    match StreamKind::split(&event.record.stream_id) {
        Ok((found, id)) if found == kind => Ok(id),
        _ => Err(FoldError(format!(
            "stream {} is not a {} stream",
            event.record.stream_id,
            kind.prefix()
        ))),
    }
}

/// Refuses a payload whose tenant differs from the envelope's: keys are
/// built from the envelope's tenant, so the two must agree.
pub(crate) fn same_tenant(event: &Decoded, payload_tenant: &str) -> Result<(), FoldError> {
    if event.record.tenant_id == payload_tenant {
        Ok(())
    } else {
        Err(FoldError(format!(
            "payload tenant {payload_tenant} differs from envelope tenant {}",
            event.record.tenant_id
        )))
    }
}

/// Refuses an event that opens a row (`QuoteCreated`, `OrderCaptured`,
/// `HandoffRequested`) anywhere but first in its stream: the row it opens
/// is then new, so it is stored without reading the tree
/// ([`crate::store::RowCache::put_first`]).
pub(crate) fn first_of_stream(event: &Decoded, what: &str, id: &str) -> Result<(), FoldError> {
    if event.record.stream_version == 1 {
        Ok(())
    } else {
        Err(FoldError(format!(
            "{} at version {} of {what} {id}: it opens the stream",
            event.record.event_type, event.record.stream_version
        )))
    }
}

/// The error of an event that needs a row that does not exist.
pub(crate) fn missing(what: &str, id: &str, event: &Decoded) -> FoldError {
    FoldError(format!(
        "{} on {what} {id} that was never opened",
        event.record.event_type
    ))
}

/// Decodes a stored row for a query.
pub(crate) fn decode_row<T: serde::de::DeserializeOwned>(
    projector: &'static str,
    bytes: &[u8],
) -> Result<T, QueryError> {
    crate::store::decode(bytes).map_err(|message| QueryError::Corrupt { projector, message })
}

/// Stable one-byte codes of persisted enums used inside keys. They are part
/// of the row layout: changing one needs a layout version bump.
pub(crate) fn target_code(t: TargetSystem) -> u8 {
    match t {
        TargetSystem::Inventory => 0,
        TargetSystem::Provisioning => 1,
        TargetSystem::Billing => 2,
        TargetSystem::Crm => 3,
        TargetSystem::Document => 4,
        TargetSystem::Notification => 5,
    }
}

/// Stable code of a fallout reason.
pub(crate) fn reason_code(r: FalloutReason) -> u8 {
    match r {
        FalloutReason::BusinessRejected => 0,
        FalloutReason::ValidationRejected => 1,
        FalloutReason::DuplicateConflict => 2,
        FalloutReason::SecurityConfiguration => 3,
        FalloutReason::SchemaMismatch => 4,
        FalloutReason::Unclassified => 5,
        FalloutReason::RetriesExhausted => 6,
        FalloutReason::SlaBreach => 7,
        FalloutReason::LocalImpossible => 8,
    }
}

/// Stable code of an outcome class.
pub(crate) fn class_code(c: OutcomeClass) -> u8 {
    match c {
        OutcomeClass::Succeeded => 0,
        OutcomeClass::Accepted => 1,
        OutcomeClass::BusinessRejected => 2,
        OutcomeClass::ValidationRejected => 3,
        OutcomeClass::IdempotentSuccess => 4,
        OutcomeClass::DuplicateConflict => 5,
        OutcomeClass::Unknown => 6,
        OutcomeClass::TechnicalRetryable => 7,
        OutcomeClass::SecurityConfiguration => 8,
        OutcomeClass::SchemaMismatch => 9,
        OutcomeClass::Unclassified => 10,
    }
}

/// The observation a handoff event carries, if any.
pub(crate) fn observation_of(event: &HandoffEvent) -> Option<&domain::outcome::Observation> {
    match event {
        HandoffEvent::HandoffAccepted { observation }
        | HandoffEvent::HandoffSucceeded { observation, .. }
        | HandoffEvent::HandoffRejected { observation, .. }
        | HandoffEvent::HandoffOutcomeUnknown { observation }
        | HandoffEvent::HandoffRetryScheduled { observation, .. }
        | HandoffEvent::HandoffObservationNoted { observation } => Some(observation),
        HandoffEvent::HandoffFalloutRaised { observation, .. } => observation.as_ref(),
        HandoffEvent::HandoffRequested { .. }
        | HandoffEvent::HandoffSent { .. }
        | HandoffEvent::HandoffResolved { .. }
        | HandoffEvent::HandoffWithdrawn { .. } => None,
    }
}
