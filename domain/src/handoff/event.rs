//! The facts a handoff records. Raw external codes live only here, inside the
//! observation evidence.

use super::model::{HandoffSubject, RequestSnapshot};
use crate::decider::DomainEvent;
use crate::ids::{HandoffId, Timestamp};
use crate::outcome::{FalloutReason, Observation};
use serde::{Deserialize, Serialize};

/// Something that happened to a handoff.
///
/// APPEND-ONLY: bincode encodes the variant index, so never reorder, rename or remove
/// a variant or a field; add new variants at the end. When a variant's shape must
/// change, freeze the old shape, bump the type's version in
/// [`crate::upcast::CURRENT_VERSIONS`] and add its upcaster (`docs/adr/0013-upcasting.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandoffEvent {
    /// The handoff was opened and its request recorded before anything was sent.
    HandoffRequested {
        /// The handoff.
        handoff_id: HandoffId,
        /// The subject.
        subject: HandoffSubject,
        /// The business idempotency key, the same for every send.
        idempotency_key: String,
        /// The sha256 of the unredacted request.
        request_hash: String,
        /// The request as the dispatcher sends it. Where it is shown (the
        /// handoff's request in GraphQL, call evidence) its sensitive
        /// values are redacted ([`RequestSnapshot::redacted`]); events
        /// recorded before ADR 0065 hold it redacted, and are sent so.
        request_snapshot: RequestSnapshot,
        /// When.
        at: Timestamp,
    },
    /// The request left (send number `send`, from 1) with the same key.
    HandoffSent {
        /// How many sends this is.
        send: u32,
        /// When.
        at: Timestamp,
    },
    /// The target acknowledged; the result comes by callback.
    HandoffAccepted {
        /// The evidence.
        observation: Observation,
    },
    /// The target completed the side effect.
    HandoffSucceeded {
        /// The subject, so reactions need not load the stream.
        subject: HandoffSubject,
        /// The evidence.
        observation: Observation,
    },
    /// The target refused.
    HandoffRejected {
        /// The subject.
        subject: HandoffSubject,
        /// The normalized reason.
        reason: FalloutReason,
        /// The evidence.
        observation: Observation,
    },
    /// The outcome is ambiguous; nothing is sent again before reconciliation.
    HandoffOutcomeUnknown {
        /// The evidence (e.g. the timeout after sending).
        observation: Observation,
    },
    /// A technical failure; retry number `retry` is due at `due_at`.
    HandoffRetryScheduled {
        /// The retry number, from 1.
        retry: u32,
        /// When the resend is due.
        due_at: Timestamp,
        /// The evidence.
        observation: Observation,
    },
    /// The handoff needs a human.
    HandoffFalloutRaised {
        /// The subject.
        subject: HandoffSubject,
        /// Why.
        reason: FalloutReason,
        /// The observation that caused it, if one did.
        observation: Option<Observation>,
        /// When.
        at: Timestamp,
    },
    /// An operator (or its order's cancellation) closed the case.
    /// Schema version 2 names the subject, so the order process can route
    /// the close of a compensation's case to its order (ADR 0064); an
    /// event stored at version 1 reads with `None`
    /// ([`crate::handoff::legacy::v1`]).
    HandoffResolved {
        /// Who.
        operator: String,
        /// What was done.
        note: String,
        /// When.
        at: Timestamp,
        /// Whose handoff it is; `None` only for an event stored before
        /// version 2.
        subject: Option<HandoffSubject>,
    },
    /// Evidence that changed nothing: an inconclusive reconciliation, or an outcome
    /// that arrived after the case was handed to a human.
    HandoffObservationNoted {
        /// The evidence.
        observation: Observation,
    },
    /// The order no longer wants the step (it was cancelled while the step
    /// was pending): nothing is sent again, and a late outcome is only
    /// noted. Whatever a send already did is undone by the compensation
    /// planned with the cancellation (ADR 0048).
    HandoffWithdrawn {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for HandoffEvent {
    fn event_type(&self) -> &'static str {
        match self {
            HandoffEvent::HandoffRequested { .. } => "HandoffRequested",
            HandoffEvent::HandoffSent { .. } => "HandoffSent",
            HandoffEvent::HandoffAccepted { .. } => "HandoffAccepted",
            HandoffEvent::HandoffSucceeded { .. } => "HandoffSucceeded",
            HandoffEvent::HandoffRejected { .. } => "HandoffRejected",
            HandoffEvent::HandoffOutcomeUnknown { .. } => "HandoffOutcomeUnknown",
            HandoffEvent::HandoffRetryScheduled { .. } => "HandoffRetryScheduled",
            HandoffEvent::HandoffFalloutRaised { .. } => "HandoffFalloutRaised",
            HandoffEvent::HandoffResolved { .. } => "HandoffResolved",
            HandoffEvent::HandoffObservationNoted { .. } => "HandoffObservationNoted",
            HandoffEvent::HandoffWithdrawn { .. } => "HandoffWithdrawn",
        }
    }

    /// The current version of the event's type ([`crate::upcast::CURRENT_VERSIONS`]).
    fn schema_version(&self) -> u16 {
        crate::upcast::current_version(self.event_type())
    }
}
