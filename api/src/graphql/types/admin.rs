//! Typed results of the operator and admin mutations.

use async_graphql::{Enum, SimpleObject};

use super::scalars::DateTime;

/// What reconciliation concluded about one handoff.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "integration::reconciliation::ReconciliationResult")]
pub enum ReconciliationResult {
    /// Local and external agree (both still pending, or already settled).
    Matched,
    /// External completed; the success was applied (missed callback).
    ExternalSuccess,
    /// External failed; the failure was applied.
    ExternalFailure,
    /// External never received the request: a resend with the same key
    /// was scheduled.
    NotFoundResent,
    /// External does not know either: stays UNKNOWN, checked again later.
    StillUnknown,
    /// The local state cannot take the external result: fallout.
    LocalImpossible,
    /// Pending longer than the system's `fallout_after_ms`: fallout.
    SlaBreach,
}

/// One handoff a reconciliation run checked.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationEntry {
    /// The handoff.
    pub handoff_id: String,
    /// The external system.
    pub system: String,
    /// The handoff's status before the check (`sent`, `unknown`, ...).
    pub status_before: String,
    /// What was concluded.
    pub result: ReconciliationResult,
    /// The outcome class of the external answer, if one came.
    pub external_class: Option<String>,
    /// The raw external code, as evidence.
    pub raw_code: Option<String>,
    /// The rule that refused the observation, if one did.
    pub rule: Option<String>,
}

/// How many handoffs came to one result.
#[derive(SimpleObject, Clone, Debug)]
pub struct ResultCount {
    /// The result's name.
    pub result: String,
    /// How many.
    pub count: u64,
}

/// What one reconciliation run checked and changed.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationReport {
    /// The run's id.
    pub run_id: String,
    /// Who started it (`operator`, `scheduled`).
    pub trigger: String,
    /// When it started.
    pub started_at: DateTime,
    /// When it finished.
    pub finished_at: DateTime,
    /// Open handoffs when it started.
    pub open_handoffs: u64,
    /// Handoffs checked.
    pub checked: u64,
    /// Handoffs whose state it changed.
    pub changed: u64,
    /// Handoffs per result.
    pub results: Vec<ResultCount>,
    /// The handoffs checked.
    pub entries: Vec<ReconciliationEntry>,
}

impl From<integration::ReconciliationReport> for ReconciliationReport {
    fn from(r: integration::ReconciliationReport) -> Self {
        Self {
            run_id: r.run_id,
            trigger: r.trigger,
            started_at: DateTime::from_ms(r.started_at_ms),
            finished_at: DateTime::from_ms(r.finished_at_ms),
            open_handoffs: r.open_handoffs as u64,
            checked: r.checked as u64,
            changed: r.changed as u64,
            results: r
                .results
                .into_iter()
                .map(|(result, count)| ResultCount {
                    result,
                    count: count as u64,
                })
                .collect(),
            entries: r
                .entries
                .into_iter()
                .map(|e| ReconciliationEntry {
                    handoff_id: e.handoff_id,
                    system: e.system,
                    status_before: e.status_before,
                    result: e.result.into(),
                    external_class: e.external_class,
                    raw_code: e.raw_code,
                    rule: e.rule,
                })
                .collect(),
        }
    }
}

/// What verifying the live log found.
#[derive(SimpleObject, Clone, Debug)]
pub struct LogVerification {
    /// True when every record, the chain, the index and the heads check.
    pub ok: bool,
    /// Events verified.
    pub events: Option<u64>,
    /// Streams verified.
    pub streams: Option<u64>,
    /// The position of the last event.
    pub head_position: Option<u64>,
    /// The chain's head hash (hex).
    pub head_hash: Option<String>,
    /// The first problem found, when not ok.
    pub problem: Option<String>,
}

/// One projector rebuilt.
#[derive(SimpleObject, Clone, Debug)]
pub struct RebuildReport {
    /// The projector.
    pub name: String,
    /// The generation now serving.
    pub generation: u64,
    /// Events replayed.
    pub events: u64,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
    /// The replay rate.
    pub events_per_s: f64,
}

impl From<projections::RebuildReport> for RebuildReport {
    fn from(r: projections::RebuildReport) -> Self {
        Self {
            name: r.name,
            generation: r.generation,
            events: r.events,
            elapsed_ms: r.elapsed_ms,
            events_per_s: r.events_per_s,
        }
    }
}

/// What moving a consumer's checkpoint did.
#[derive(SimpleObject, Clone, Debug)]
pub struct ConsumerReset {
    /// The consumer.
    pub consumer: String,
    /// Its checkpoint before.
    pub previous_checkpoint: u64,
    /// Its checkpoint now.
    pub checkpoint: u64,
    /// The recovery bound: no external call for events below it.
    pub recovery_until: Option<u64>,
    /// Whether it makes external calls.
    pub side_effects: bool,
}

impl From<crate::platform::ConsumerReset> for ConsumerReset {
    fn from(r: crate::platform::ConsumerReset) -> Self {
        Self {
            consumer: r.consumer,
            previous_checkpoint: r.previous_checkpoint,
            checkpoint: r.checkpoint,
            recovery_until: r.recovery_until,
            side_effects: r.side_effects,
        }
    }
}
