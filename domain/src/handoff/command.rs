//! What the order policy, the dispatcher, the callback inbox, the reconciler and
//! operators ask of a handoff.

use super::model::{HandoffSubject, RequestSnapshot, RetryPolicy};
use crate::ids::Timestamp;
use crate::outcome::Observation;

/// A request to change a handoff.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum HandoffCommand {
    /// Open the handoff for a subject with the request it will send.
    Request {
        /// The subject (its key names the handoff).
        subject: HandoffSubject,
        /// The unredacted request; only its hash and a redacted copy are stored.
        request: RequestSnapshot,
        /// When.
        at: Timestamp,
    },
    /// The dispatcher is about to send (or resend, with the same key).
    RecordDispatch {
        /// When.
        at: Timestamp,
    },
    /// A normalized external outcome arrived.
    Observe {
        /// The observation with its raw evidence.
        observation: Observation,
        /// The backoff to use if the outcome is a retryable failure.
        retry_policy: RetryPolicy,
    },
    /// The handoff waited longer than its service level allows.
    DeclareSlaBreach {
        /// When.
        at: Timestamp,
    },
    /// A callback about this handoff could not be applied for longer than
    /// parking allows (it reports on a request the handoff never recorded
    /// sending): the handoff falls out as "local impossible", carrying the
    /// callback's observation as evidence, for an operator to decide.
    CallbackUnmatched {
        /// The callback as an observation (raw state and code as evidence).
        observation: Observation,
        /// When.
        at: Timestamp,
    },
    /// The case of the rejected or fallen-out handoff was closed: by the
    /// order process after the line that held it was resolved (a new
    /// attempt, an external resolution, the line cancelled), or by
    /// [`HandoffCommand::ResolveItsOwnCase`]'s rule.
    Resolve {
        /// Who.
        operator: String,
        /// What was done, as evidence.
        note: String,
        /// When.
        at: Timestamp,
    },
    /// Its order no longer wants the step: a pending handoff is withdrawn
    /// (no send follows), a rejected or fallen-out one is resolved (its
    /// case closed), a closed one is left as it is.
    Withdraw {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// An operator closes the case of the rejected or fallen-out handoff
    /// on the handoff itself: refused when the case is its order line's
    /// (a forward step's, but a local impossibility), which only the
    /// order's `resolveFallout` closes. (Last, so the encodings of the
    /// commands before it, hashed into the order process's idempotency
    /// records, stay as they were.)
    ResolveItsOwnCase {
        /// Who.
        operator: String,
        /// What was done, as evidence.
        note: String,
        /// When.
        at: Timestamp,
    },
}

/// The note of a handoff an operator resolved externally: the external
/// system's `reference` for the work, then what the operator checked.
pub fn resolved_externally(reference: &str, note: &str) -> String {
    format!("resolved externally: {reference}: {note}")
}
