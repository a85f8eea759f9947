//! The handoff's lifecycle and how each event changes it.
//!
//! The state types derive `Serialize` (not `Deserialize`) so that tools can
//! show a folded state (`oms-replay as-of --json`); a state is never stored,
//! it is always folded from the events.

use serde::Serialize;

use super::event::HandoffEvent;
use super::model::{HandoffSubject, RequestSnapshot};
use crate::ids::{HandoffId, Timestamp};
use crate::outcome::FalloutReason;

/// Where a handoff stands. Raw external codes are never part of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum HandoffStatus {
    /// Recorded, not sent yet.
    Requested,
    /// Sent; no outcome yet.
    Sent,
    /// Acknowledged by the target; awaiting the callback.
    Accepted,
    /// The side effect is done (terminal outcome).
    Succeeded,
    /// The target refused (terminal outcome, awaiting an operator).
    Rejected,
    /// The outcome is ambiguous; only reconciliation moves it on.
    Unknown,
    /// A technical failure; the resend (same key) is due at `due_at`.
    RetryScheduled {
        /// When the resend is due.
        due_at: Timestamp,
    },
    /// A human must act.
    Fallout {
        /// Why.
        reason: FalloutReason,
    },
    /// An operator closed the case (final).
    Resolved,
    /// Its order withdrew the step while it was pending (final): no send
    /// follows, a late outcome is only noted.
    Withdrawn,
}

impl HandoffStatus {
    /// True while the outcome is still open: something may be or has been sent.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            HandoffStatus::Requested
                | HandoffStatus::Sent
                | HandoffStatus::Accepted
                | HandoffStatus::Unknown
                | HandoffStatus::RetryScheduled { .. }
        )
    }
}

/// A handoff's durable integration state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Handoff {
    /// The handoff id.
    pub id: HandoffId,
    /// The subject.
    pub subject: HandoffSubject,
    /// The key every send uses.
    pub idempotency_key: String,
    /// The sha256 of the unredacted request.
    pub request_hash: String,
    /// The request as the dispatcher sends it (redacted where shown,
    /// ADR 0065).
    pub request_snapshot: RequestSnapshot,
    /// The lifecycle status.
    pub status: HandoffStatus,
    /// How many times the request was sent.
    pub sends: u32,
    /// How many retries were scheduled.
    pub retries: u32,
    /// The late outcomes noted once the handoff was closed (in fallout,
    /// resolved or withdrawn), each by what it says
    /// ([`late_outcome_key`]): a closed handoff notes each once, and at
    /// most [`MAX_LATE_OBSERVATIONS`].
    pub late_outcomes: std::collections::BTreeSet<String>,
}

/// Most late outcomes a closed handoff notes: beyond them an external
/// system that keeps answering (under new message ids) adds nothing to
/// the log.
pub const MAX_LATE_OBSERVATIONS: usize = 16;

/// What a late outcome says, as a closed handoff tells one from another:
/// its class, raw code, external reference and channel (not its time,
/// label or message id, which a repeat changes).
pub fn late_outcome_key(observation: &crate::outcome::Observation) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        observation.class, observation.raw_code, observation.external_reference, observation.source
    )
}

impl HandoffStatus {
    /// True once an operator or the order closed the case or is to
    /// (fallout, resolved, withdrawn): a late outcome is then noted only.
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            HandoffStatus::Fallout { .. } | HandoffStatus::Resolved | HandoffStatus::Withdrawn
        )
    }
}

/// A handoff stream's state.
// One state is folded per command and none is kept in bulk: boxing the
// handoff would buy nothing for the indirection it costs every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum HandoffState {
    /// No event yet.
    Empty,
    /// Requested; see its status.
    Open(Handoff),
}

/// Applies one event; an event that does not fit the state leaves it unchanged.
pub(super) fn evolve(state: HandoffState, event: &HandoffEvent) -> HandoffState {
    match (state, event) {
        (
            HandoffState::Empty,
            HandoffEvent::HandoffRequested {
                handoff_id,
                subject,
                idempotency_key,
                request_hash,
                request_snapshot,
                ..
            },
        ) => HandoffState::Open(Handoff {
            id: handoff_id.clone(),
            subject: subject.clone(),
            idempotency_key: idempotency_key.clone(),
            request_hash: request_hash.clone(),
            request_snapshot: request_snapshot.clone(),
            status: HandoffStatus::Requested,
            sends: 0,
            retries: 0,
            late_outcomes: std::collections::BTreeSet::new(),
        }),
        (HandoffState::Open(mut handoff), event) => {
            match event {
                HandoffEvent::HandoffSent { send, .. } => {
                    handoff.sends = *send;
                    handoff.status = HandoffStatus::Sent;
                }
                HandoffEvent::HandoffAccepted { .. } => handoff.status = HandoffStatus::Accepted,
                HandoffEvent::HandoffSucceeded { .. } => handoff.status = HandoffStatus::Succeeded,
                HandoffEvent::HandoffRejected { .. } => handoff.status = HandoffStatus::Rejected,
                HandoffEvent::HandoffOutcomeUnknown { .. } => {
                    handoff.status = HandoffStatus::Unknown
                }
                HandoffEvent::HandoffRetryScheduled { retry, due_at, .. } => {
                    handoff.retries = *retry;
                    handoff.status = HandoffStatus::RetryScheduled { due_at: *due_at };
                }
                HandoffEvent::HandoffFalloutRaised { reason, .. } => {
                    handoff.status = HandoffStatus::Fallout { reason: *reason };
                }
                HandoffEvent::HandoffResolved { .. } => handoff.status = HandoffStatus::Resolved,
                HandoffEvent::HandoffWithdrawn { .. } => handoff.status = HandoffStatus::Withdrawn,
                HandoffEvent::HandoffObservationNoted { observation } => {
                    if handoff.status.is_closed() {
                        handoff.late_outcomes.insert(late_outcome_key(observation));
                    }
                }
                HandoffEvent::HandoffRequested { .. } => {}
            }
            HandoffState::Open(handoff)
        }
        (state, _) => state,
    }
}
