//! What a handoff is about, what it sends, and how it backs off.

use crate::idempotency::{
    handoff_id_for_key, idempotency_key, request_hash, Purpose, TargetSystem,
};
use crate::ids::{HandoffId, LineId, OrderId, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The business facts that identify one handoff: one per order line, target system,
/// purpose and attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffSubject {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The order.
    pub order_id: OrderId,
    /// The order line.
    pub line_id: LineId,
    /// The external system.
    pub target: TargetSystem,
    /// What is asked of it.
    pub purpose: Purpose,
    /// The business attempt, from 1; a resend keeps it, only a new attempt raises it.
    pub attempt: u32,
}

impl HandoffSubject {
    /// The business idempotency key `tenant:order:line:target:purpose:attempt`.
    pub fn idempotency_key(&self) -> String {
        idempotency_key(
            &self.tenant_id,
            &self.order_id,
            &self.line_id,
            self.target,
            self.purpose,
            self.attempt,
        )
    }

    /// The handoff id, derived from the key: one key, one handoff.
    pub fn handoff_id(&self) -> HandoffId {
        handoff_id_for_key(&self.idempotency_key())
    }
}

/// Field-name fragments (matched in the lowercased name) whose values
/// never leave a request snapshot or an answer's evidence in clear.
pub const SENSITIVE_FIELD_MARKERS: [&str; 13] = [
    "authorization",
    "password",
    "secret",
    "token",
    "card",
    "apikey",
    "api_key",
    "api-key",
    "credential",
    "session",
    "privatekey",
    "private_key",
    "private-key",
];

/// The text placed instead of a sensitive value.
pub const REDACTED: &str = "<redacted>";

/// The domain-level request a handoff sends, as sorted name/value fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSnapshot {
    /// The fields, sorted by name.
    pub fields: BTreeMap<String, String>,
}

impl RequestSnapshot {
    /// An unambiguous byte form: each field as `len:name=len:value;` in name order.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        self.fields
            .iter()
            .map(|(name, value)| format!("{}:{name}={}:{value};", name.len(), value.len()))
            .collect::<String>()
            .into_bytes()
    }

    /// The sha256 hex of the canonical bytes, computed over the unredacted request.
    pub fn hash(&self) -> String {
        request_hash(&self.canonical_bytes())
    }

    /// A copy with every sensitive value replaced by [`REDACTED`].
    pub fn redacted(&self) -> RequestSnapshot {
        let fields = self
            .fields
            .iter()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                let sensitive = SENSITIVE_FIELD_MARKERS
                    .iter()
                    .any(|marker| lower.contains(marker));
                let shown = if sensitive {
                    REDACTED.to_owned()
                } else {
                    value.clone()
                };
                (name.clone(), shown)
            })
            .collect();
        RequestSnapshot { fields }
    }
}

/// Everything needed to open a handoff stream: its id, subject and request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRequest {
    /// The handoff id (derived from the subject's key).
    pub handoff_id: HandoffId,
    /// The subject.
    pub subject: HandoffSubject,
    /// The request to send.
    pub request: RequestSnapshot,
}

impl HandoffRequest {
    /// A request for `subject`, with the id derived from its key.
    pub fn new(subject: HandoffSubject, request: RequestSnapshot) -> Self {
        HandoffRequest {
            handoff_id: subject.handoff_id(),
            subject,
            request,
        }
    }
}

/// The capped exponential backoff for technical retries, supplied with each
/// observation so the policy can change without touching history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RetryPolicy {
    /// The delay before the first retry, in milliseconds.
    pub base_ms: u64,
    /// The largest delay, in milliseconds.
    pub max_ms: u64,
    /// The most sends one handoff may make (first send included).
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0 for the first): `min(base * 2^retry, max)`.
    pub fn delay_ms(&self, retry: u32) -> u64 {
        let factor = 2u64.checked_pow(retry).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.max_ms)
    }

    /// When retry number `retry` is due, counted from `observed_at`.
    pub fn due_at(&self, observed_at: Timestamp, retry: u32) -> Timestamp {
        observed_at.plus_millis(self.delay_ms(retry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_is_capped() {
        let policy = RetryPolicy {
            base_ms: 1_000,
            max_ms: 30_000,
            max_attempts: 10,
        };
        let delays: Vec<u64> = (0..7).map(|retry| policy.delay_ms(retry)).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(policy.delay_ms(200), 30_000);
        assert_eq!(policy.due_at(Timestamp(5_000), 1), Timestamp(7_000));
    }

    #[test]
    fn redaction_hides_sensitive_values_but_the_hash_covers_the_real_request() {
        let mut request = RequestSnapshot::default();
        request.fields.insert("order_id".into(), "o1".into());
        request
            .fields
            .insert("Authorization".into(), "Bearer abc".into());
        let redacted = request.redacted();
        assert_eq!(
            redacted.fields.get("Authorization").map(String::as_str),
            Some(REDACTED)
        );
        assert_eq!(
            redacted.fields.get("order_id").map(String::as_str),
            Some("o1")
        );
        assert_ne!(redacted.hash(), request.hash());
    }

    #[test]
    fn canonical_bytes_are_unambiguous() {
        let mut one = RequestSnapshot::default();
        one.fields.insert("a".into(), "b;1:c=d".into());
        let mut two = RequestSnapshot::default();
        two.fields.insert("a".into(), "b".into());
        two.fields.insert("c".into(), "d".into());
        assert_ne!(one.canonical_bytes(), two.canonical_bytes());
    }
}
