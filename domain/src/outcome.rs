//! The normalized outcome taxonomy and the observations that carry it.
//!
//! Adapters classify every external answer (status, error code, timeout, callback,
//! reconciliation result) into one [`OutcomeClass`]. The domain decides only on the
//! class; the raw external code and label travel on the event as evidence and never
//! become state. The table below is the seeds' error-mapping table, one row per class:
//!
//! | class | external condition | impact |
//! | --- | --- | --- |
//! | `Succeeded` | the side effect is done | succeed |
//! | `Accepted` | acknowledged, result comes by callback | await callback |
//! | `BusinessRejected` | a business rule of the target refuses | reject (fallout / rework) |
//! | `ValidationRejected` | the request content is invalid | reject (fallout / fix data) |
//! | `IdempotentSuccess` | duplicate of the same request (same hash) | succeed |
//! | `DuplicateConflict` | duplicate key with a different payload | fallout |
//! | `Unknown` | timeout after sending, ambiguous | reconcile before any resend |
//! | `TechnicalRetryable` | 5xx, connection failure, 429 | retry with backoff |
//! | `SecurityConfiguration` | 401 / 403, bad credentials | stop and alert (fallout) |
//! | `SchemaMismatch` | unexpected response shape | fallout (fix the contract) |
//! | `Unclassified` | an unmapped code | fallout + mapping update |

use crate::ids::{HandoffId, Timestamp};
use crate::names::stable_names;
use serde::{Deserialize, Serialize};

/// The normalized class of an external outcome.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutcomeClass {
    /// The target completed the side effect.
    Succeeded,
    /// The target acknowledged the request; the result will come by callback.
    Accepted,
    /// The target's business rules refused the request (e.g. customer not eligible).
    BusinessRejected,
    /// The target refused the request's content (e.g. invalid billing account).
    ValidationRejected,
    /// The target already processed this exact request (same key, same hash).
    IdempotentSuccess,
    /// The target holds the key with a different payload.
    DuplicateConflict,
    /// Nobody knows whether the side effect happened (timeout after sending).
    Unknown,
    /// A transient technical failure: 5xx, connection refused, rate limited.
    TechnicalRetryable,
    /// Credentials or permissions are wrong (401 / 403); retrying will not help.
    SecurityConfiguration,
    /// The response did not have the expected shape.
    SchemaMismatch,
    /// The adapter could not map the response to any class.
    Unclassified,
}

// The stable snake_case names of the classes (metrics labels, evidence,
// reconciliation reports).
stable_names!(OutcomeClass, "outcome class", 11, [
    Succeeded => "succeeded",
    Accepted => "accepted",
    BusinessRejected => "business_rejected",
    ValidationRejected => "validation_rejected",
    IdempotentSuccess => "idempotent_success",
    DuplicateConflict => "duplicate_conflict",
    Unknown => "unknown",
    TechnicalRetryable => "technical_retryable",
    SecurityConfiguration => "security_configuration",
    SchemaMismatch => "schema_mismatch",
    Unclassified => "unclassified",
]);

/// What an outcome class means for the handoff that observed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Impact {
    /// The step is done.
    Succeed,
    /// Keep waiting for the callback.
    AwaitCallback,
    /// The target refused: terminal rejection, the order line goes to fallout for rework.
    Reject,
    /// The outcome is ambiguous: reconcile (status query) before anything is resent.
    Reconcile,
    /// Schedule a resend with the same key after a capped exponential backoff.
    Retry,
    /// Stop; a human repairs it from the fallout queue.
    Fallout,
    /// Stop, raise fallout and alert operations: configuration must be fixed first.
    StopAndAlert,
}

impl Impact {
    /// True for the impacts that end an attempt: succeed, reject, fallout, stop.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Impact::Succeed | Impact::Reject | Impact::Fallout | Impact::StopAndAlert
        )
    }
}

/// Why a handoff or an order line went to fallout.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FalloutReason {
    /// The target's business rules refused.
    BusinessRejected,
    /// The target refused the request's content.
    ValidationRejected,
    /// Same key, different payload at the target.
    DuplicateConflict,
    /// Credentials or permissions are wrong.
    SecurityConfiguration,
    /// The target answered in an unexpected shape.
    SchemaMismatch,
    /// The target answered something nobody mapped.
    Unclassified,
    /// Technical retries ran out.
    RetriesExhausted,
    /// The step took longer than its service level allows.
    SlaBreach,
    /// An observation contradicts a terminal local state.
    LocalImpossible,
}

impl FalloutReason {
    /// True when the target refused the request, so the step had no effect there.
    pub fn is_rejection(self) -> bool {
        matches!(
            self,
            FalloutReason::BusinessRejected | FalloutReason::ValidationRejected
        )
    }

    /// True when the step may have taken effect at the target: it answered
    /// in a shape nobody reads or maps, it holds the idempotency key with
    /// another payload, the step outran its service level (it may still
    /// complete), or an observation says it took effect after the line
    /// settled. A new attempt (a new idempotency key) could then double
    /// the effect (bill twice), so only an external resolution or a
    /// cancellation (whose compensation undoes what took effect) may close
    /// such a case. Refusals, credential failures and exhausted technical
    /// retries (the target said "try again") took no effect.
    pub fn may_have_taken_effect(self) -> bool {
        matches!(
            self,
            FalloutReason::SchemaMismatch
                | FalloutReason::Unclassified
                | FalloutReason::DuplicateConflict
                | FalloutReason::SlaBreach
                | FalloutReason::LocalImpossible
        )
    }
}

impl OutcomeClass {
    /// The domain impact of this class, as in the module's table.
    pub fn impact(&self) -> Impact {
        match self {
            OutcomeClass::Succeeded | OutcomeClass::IdempotentSuccess => Impact::Succeed,
            OutcomeClass::Accepted => Impact::AwaitCallback,
            OutcomeClass::BusinessRejected | OutcomeClass::ValidationRejected => Impact::Reject,
            OutcomeClass::Unknown => Impact::Reconcile,
            OutcomeClass::TechnicalRetryable => Impact::Retry,
            OutcomeClass::DuplicateConflict
            | OutcomeClass::SchemaMismatch
            | OutcomeClass::Unclassified => Impact::Fallout,
            OutcomeClass::SecurityConfiguration => Impact::StopAndAlert,
        }
    }

    /// The fallout reason this class raises, if its impact is a rejection or a fallout.
    pub fn fallout_reason(&self) -> Option<FalloutReason> {
        match self {
            OutcomeClass::BusinessRejected => Some(FalloutReason::BusinessRejected),
            OutcomeClass::ValidationRejected => Some(FalloutReason::ValidationRejected),
            OutcomeClass::DuplicateConflict => Some(FalloutReason::DuplicateConflict),
            OutcomeClass::SecurityConfiguration => Some(FalloutReason::SecurityConfiguration),
            OutcomeClass::SchemaMismatch => Some(FalloutReason::SchemaMismatch),
            OutcomeClass::Unclassified => Some(FalloutReason::Unclassified),
            OutcomeClass::Succeeded
            | OutcomeClass::Accepted
            | OutcomeClass::IdempotentSuccess
            | OutcomeClass::Unknown
            | OutcomeClass::TechnicalRetryable => None,
        }
    }
}

/// Where an observation came from.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObservationSource {
    /// The synchronous answer (or timeout) of the call that sent the request.
    Dispatch,
    /// A signed callback from the target system.
    Callback,
    /// A status query made to reconcile an ambiguous or stuck handoff.
    Reconciliation,
}

/// A normalized external outcome for one handoff attempt. The raw fields are
/// evidence: they are recorded on events and never drive state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The handoff the outcome is about.
    pub handoff_id: HandoffId,
    /// The attempt the outcome is about.
    pub attempt: u32,
    /// The normalized class the adapter mapped the answer to.
    pub class: OutcomeClass,
    /// The raw external code (HTTP status, vendor code such as `ERR2`), as evidence.
    pub raw_code: Option<String>,
    /// The raw external label or message, as evidence.
    pub raw_label: Option<String>,
    /// The target's reference for the request, when it gave one.
    pub external_reference: Option<String>,
    /// When the outcome was observed, by the edge's clock.
    pub observed_at: Timestamp,
    /// Which channel delivered the outcome.
    pub source: ObservationSource,
}

impl Observation {
    /// The same observation with its raw code, raw label and external
    /// reference kept as evidence ([`crate::text::evidence`]): bounded, and
    /// without control or hidden characters. Every observation a handoff
    /// records passes through here, so no external system's answer can
    /// grow an event, a fallout case or a page without bound.
    pub fn as_evidence(&self) -> Self {
        let keep = |text: &Option<String>| text.as_deref().map(crate::text::evidence);
        Self {
            raw_code: keep(&self.raw_code),
            raw_label: keep(&self.raw_label),
            external_reference: keep(&self.external_reference),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_the_impact_of_the_error_mapping_table() {
        let table = [
            (OutcomeClass::Succeeded, Impact::Succeed),
            (OutcomeClass::Accepted, Impact::AwaitCallback),
            (OutcomeClass::BusinessRejected, Impact::Reject),
            (OutcomeClass::ValidationRejected, Impact::Reject),
            (OutcomeClass::IdempotentSuccess, Impact::Succeed),
            (OutcomeClass::DuplicateConflict, Impact::Fallout),
            (OutcomeClass::Unknown, Impact::Reconcile),
            (OutcomeClass::TechnicalRetryable, Impact::Retry),
            (OutcomeClass::SecurityConfiguration, Impact::StopAndAlert),
            (OutcomeClass::SchemaMismatch, Impact::Fallout),
            (OutcomeClass::Unclassified, Impact::Fallout),
        ];
        for (class, impact) in table {
            assert_eq!(class.impact(), impact, "{class:?}");
        }
    }

    #[test]
    fn only_rejections_and_fallouts_carry_a_fallout_reason() {
        for class in [
            OutcomeClass::Succeeded,
            OutcomeClass::Accepted,
            OutcomeClass::IdempotentSuccess,
            OutcomeClass::Unknown,
            OutcomeClass::TechnicalRetryable,
        ] {
            assert_eq!(class.fallout_reason(), None, "{class:?}");
        }
        assert_eq!(
            OutcomeClass::SecurityConfiguration.fallout_reason(),
            Some(FalloutReason::SecurityConfiguration)
        );
        assert_eq!(
            OutcomeClass::Unclassified.fallout_reason(),
            Some(FalloutReason::Unclassified)
        );
    }
}
