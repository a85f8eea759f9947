//! An event as one JSON object: the envelope, the hashes and the decoded
//! domain payload. Used by `dump`, `as-of` and `trace`.
//!
//! Payloads are decoded by `domain::events::decode`, so an event stored at
//! an older schema version shows upcast to its current shape, with
//! `upcast_to_version` saying so.

use std::collections::BTreeMap;

use domain::decider::DomainEvent;
use eventlog::RecordedEvent;
use serde::Serialize;

use crate::payload::{self, Payload};
use crate::timefmt;

/// The JSON shape of one event (one line of `dump`).
#[derive(Debug, Serialize)]
pub struct EventJson<'a> {
    /// Global position.
    pub position: u64,
    /// Stream id.
    pub stream_id: &'a str,
    /// Version of the stream after this event.
    pub stream_version: u64,
    /// Event id (ULID).
    pub event_id: String,
    /// Event type.
    pub event_type: &'a str,
    /// Payload schema version, as stored.
    pub schema_version: u16,
    /// The schema version the payload was upcast to, when it was stored at
    /// an older one: `payload` then shows the event in that current shape
    /// (the stored bytes are unchanged; see `domain::upcast`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upcast_to_version: Option<u16>,
    /// Tenant.
    pub tenant_id: &'a str,
    /// Correlation id.
    pub correlation_id: &'a str,
    /// Causation id (the command id that produced it).
    pub causation_id: Option<&'a str>,
    /// Recording time, RFC 3339 UTC.
    pub recorded_at: String,
    /// Recording time, Unix milliseconds.
    pub recorded_at_ms: i64,
    /// Metadata map.
    pub metadata: &'a BTreeMap<String, String>,
    /// Hash of the previous record, hex.
    pub prev_hash: String,
    /// Hash of this record, hex.
    pub hash: String,
    /// The decoded domain event (absent when it does not decode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Why the payload did not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_error: Option<String>,
    /// Raw payload bytes in hex, only when they did not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_hex: Option<String>,
}

impl<'a> EventJson<'a> {
    /// The JSON view of `record`, with its payload decoded.
    pub fn of(record: &'a RecordedEvent) -> Self {
        let (payload, payload_error, payload_hex) = match payload::decode(record) {
            Ok(p) => (Some(p), None, None),
            Err(e) => (
                None,
                Some(e.to_string()),
                Some(hex::encode(&record.payload)),
            ),
        };
        Self {
            position: record.position,
            stream_id: &record.stream_id,
            stream_version: record.stream_version,
            event_id: record.event_id.to_string(),
            event_type: &record.event_type,
            schema_version: record.schema_version,
            upcast_to_version: payload
                .as_ref()
                .map(DomainEvent::schema_version)
                .filter(|current| *current != record.schema_version),
            tenant_id: &record.tenant_id,
            correlation_id: &record.correlation_id,
            causation_id: record.causation_id.as_deref(),
            recorded_at: timefmt::format_ms(record.recorded_at_ms),
            recorded_at_ms: record.recorded_at_ms,
            metadata: &record.metadata,
            prev_hash: hex::encode(record.prev_hash),
            hash: hex::encode(record.hash),
            payload,
            payload_error,
            payload_hex,
        }
    }
}

/// One short human line for an event: `#pos stream vN Type (time)`.
pub fn event_line(record: &RecordedEvent) -> String {
    format!(
        "#{} {} v{} {} ({})",
        record.position,
        record.stream_id,
        record.stream_version,
        record.event_type,
        timefmt::format_ms(record.recorded_at_ms)
    )
}
