//! The `handoff-index` consumer: one row per open handoff (status and time
//! of its last change), its rows committed with its checkpoint. Runs read
//! it to find the handoffs to check.

use std::collections::HashMap;

use domain::handoff::HandoffEvent;
use domain::ids::StreamKind;
use eventlog::{ConsumerBatch, ConsumerStore, RecordedEvent};
use serde::{Deserialize, Serialize};

use application::consumer::{Consumer, Halt, Session};
use application::events::decode_handoff;

/// The index consumer's name.
pub const INDEX_NAME: &str = "handoff-index";

/// Where an open handoff stands in the index. Stored (JSON) by these
/// snake_case names, and reported as `status_before`: never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IndexStatus {
    /// Recorded, not sent yet.
    Requested,
    /// Sent; no outcome yet.
    Sent,
    /// Acknowledged by the target; awaiting the callback.
    Accepted,
    /// The outcome is ambiguous.
    Unknown,
    /// A resend is scheduled.
    RetryScheduled,
}

impl IndexStatus {
    /// The stored name (`requested`, `sent`, `accepted`, `unknown`,
    /// `retry_scheduled`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::Unknown => "unknown",
            Self::RetryScheduled => "retry_scheduled",
        }
    }
}

/// One open handoff in the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexRow {
    pub(crate) tenant: String,
    pub(crate) system: String,
    pub(crate) purpose: String,
    pub(crate) key: String,
    pub(crate) status: IndexStatus,
    pub(crate) since_ms: i64,
}

/// The index consumer: its rows are committed with its checkpoint by the
/// one consumer loop.
pub(crate) struct HandoffIndex {
    pub(crate) store: ConsumerStore,
}

impl Consumer for HandoffIndex {
    async fn handle(
        &mut self,
        batch: Vec<RecordedEvent>,
        _session: &mut Session,
    ) -> Result<ConsumerBatch, Halt> {
        let mut rows = ConsumerBatch::default();
        for (id, row) in self.overlay(&batch) {
            match row.and_then(|r| serde_json::to_vec(&r).ok()) {
                Some(bytes) => rows.insert(id.as_bytes(), bytes),
                None => rows.remove(id.as_bytes()),
            }
        }
        Ok(rows)
    }
}

impl HandoffIndex {
    /// The rows `batch` leaves, by handoff id (`None`: the row is removed).
    fn overlay(&self, batch: &[RecordedEvent]) -> HashMap<String, Option<IndexRow>> {
        let mut overlay: HashMap<String, Option<IndexRow>> = HashMap::new();
        for record in batch {
            let event = match decode_handoff(record) {
                Ok(Some(event)) => event,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(position = record.position, error = %e, "handoff index skips an undecodable event");
                    continue;
                }
            };
            // decode_handoff answered a handoff event: the stream is a
            // handoff stream.
            let Ok((_, id)) = StreamKind::split(&record.stream_id) else {
                continue;
            };
            let id = id.to_owned();
            let current = match overlay.get(&id) {
                Some(row) => row.clone(),
                None => self.row(&id),
            };
            let updated = next_row(current, &event, record.recorded_at_ms);
            overlay.insert(id, updated);
        }
        overlay
    }

    fn row(&self, id: &str) -> Option<IndexRow> {
        self.store
            .get(id.as_bytes())
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }
}

/// The row a handoff event leaves, given the current one (`None`: no row,
/// the handoff is closed); `at` is when the event was recorded.
fn next_row(current: Option<IndexRow>, event: &HandoffEvent, at: i64) -> Option<IndexRow> {
    let moved = |status: IndexStatus| {
        current.clone().map(|mut row| {
            row.status = status;
            row.since_ms = at;
            row
        })
    };
    match event {
        HandoffEvent::HandoffRequested {
            subject,
            idempotency_key,
            ..
        } => Some(IndexRow {
            tenant: subject.tenant_id.to_string(),
            system: subject.target.as_str().to_owned(),
            purpose: subject.purpose.as_str().to_owned(),
            key: idempotency_key.clone(),
            status: IndexStatus::Requested,
            since_ms: at,
        }),
        HandoffEvent::HandoffSent { .. } => moved(IndexStatus::Sent),
        HandoffEvent::HandoffAccepted { .. } => moved(IndexStatus::Accepted),
        HandoffEvent::HandoffOutcomeUnknown { .. } => moved(IndexStatus::Unknown),
        HandoffEvent::HandoffRetryScheduled { .. } => moved(IndexStatus::RetryScheduled),
        HandoffEvent::HandoffObservationNoted { .. } => current.clone(),
        HandoffEvent::HandoffSucceeded { .. }
        | HandoffEvent::HandoffRejected { .. }
        | HandoffEvent::HandoffFalloutRaised { .. }
        | HandoffEvent::HandoffResolved { .. }
        | HandoffEvent::HandoffWithdrawn { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_statuses_keep_their_stored_names() {
        for (status, name) in [
            (IndexStatus::Requested, "requested"),
            (IndexStatus::Sent, "sent"),
            (IndexStatus::Accepted, "accepted"),
            (IndexStatus::Unknown, "unknown"),
            (IndexStatus::RetryScheduled, "retry_scheduled"),
        ] {
            assert_eq!(status.as_str(), name);
            let json = serde_json::to_string(&status).expect("encode");
            assert_eq!(json, format!("\"{name}\""));
            let back: IndexStatus = serde_json::from_str(&json).expect("decode");
            assert_eq!(back, status);
        }
        let stored = r#"{"tenant":"t1","system":"inventory","purpose":"reserve","key":"k","status":"retry_scheduled","since_ms":5}"#;
        let row: IndexRow = serde_json::from_str(stored).expect("a row stored before");
        assert_eq!(row.status, IndexStatus::RetryScheduled);
    }
}
