//! What one relayed event looks like on the wire: subject, headers and a
//! JSON body (the envelope with the domain event under `data`).
//!
//! The body of every message is a [`RelayedEvent`] serialized as JSON. Its
//! `data` is the domain event as serde writes it, externally tagged:
//! `{"OrderCaptured": {...}}` (decode it into `domain::order::OrderEvent`
//! and friends, or read it as plain JSON). Headers carry the ids a consumer
//! deduplicates and traces by (event id, position, correlation, causation)
//! without parsing the body; the subject carries tenant, aggregate type and
//! event type. Few headers on purpose: each one costs on every message.

use async_nats::HeaderMap;
use bytes::Bytes;
use domain::decider::DomainEvent;
use domain::events::DecodeError;
use eventlog::RecordedEvent;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::subject::{aggregate_of, subject};

/// `Nats-Msg-Id`: the event id (ULID), JetStream's deduplication key.
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
/// The event's global position in the source log.
pub const HEADER_POSITION: &str = "Oms-Position";
/// The correlation id.
pub const HEADER_CORRELATION_ID: &str = "Oms-Correlation-Id";
/// The causation id (absent when the event has none).
pub const HEADER_CAUSATION_ID: &str = "Oms-Causation-Id";

/// The JSON body of a relayed message. `D` is the domain event
/// (`serde_json::Value` to read any, or `OrderEvent` etc. when the
/// aggregate type is known); it is `null` for a stream the relay does not
/// know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayedEvent<D> {
    /// Unique event id (ULID), also the `Nats-Msg-Id`.
    pub event_id: Ulid,
    /// Stable event type name.
    pub event_type: String,
    /// The schema version of `data` (the current one: an event stored at
    /// an older version is sent upcast).
    pub schema_version: u16,
    /// Tenant that owns the event.
    pub tenant_id: String,
    /// `quote`, `order` or `handoff`.
    pub aggregate_type: String,
    /// The aggregate's id (the stream id after the type).
    pub aggregate_id: String,
    /// Source stream id.
    pub stream_id: String,
    /// Version of the stream after this event.
    pub stream_version: u64,
    /// Global position in the source node's log (per node, not global
    /// across nodes).
    pub position: u64,
    /// Correlation id.
    pub correlation_id: String,
    /// Causation id.
    pub causation_id: Option<String>,
    /// When the source log recorded the event (ms since the Unix epoch).
    pub recorded_at_ms: i64,
    /// The domain event.
    pub data: D,
}

/// The envelope as written: borrowed, so building a message copies each
/// string once (into the JSON).
#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    event_id: Ulid,
    event_type: &'a str,
    schema_version: u16,
    tenant_id: &'a str,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    stream_id: &'a str,
    stream_version: u64,
    position: u64,
    correlation_id: &'a str,
    causation_id: Option<&'a str>,
    recorded_at_ms: i64,
    data: D,
}

/// One message ready for JetStream.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) subject: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Bytes of the expectation header a publish carries in exclusive mode
/// (`Nats-Expected-Last-Msg-Id: <event id>` and its line end).
const EXPECTATION_HEADER_BYTES: usize = "Nats-Expected-Last-Msg-Id: ".len() + 26 + 2;

impl Outgoing {
    /// The bytes JetStream counts against a stream's `max_msg_size`: the
    /// headers as NATS encodes them (with room for the expectation
    /// header) and the body.
    pub(crate) fn stored_size(&self) -> usize {
        let lines: usize = self
            .headers
            .iter()
            .map(|(name, values)| {
                values
                    .iter()
                    .map(|v| AsRef::<str>::as_ref(name).len() + 2 + v.as_str().len() + 2)
                    .sum::<usize>()
            })
            .sum();
        "NATS/1.0\r\n".len() + lines + EXPECTATION_HEADER_BYTES + 2 + self.body.len()
    }
}

/// What a stream's `max_msg_size` must allow for `record`'s message
/// under `prefix`, or `None` for a record that cannot become one.
pub fn message_size(record: &RecordedEvent, prefix: &str) -> Option<usize> {
    build(record, prefix).ok().map(|out| out.stored_size())
}

/// Why a record could not become a message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error(transparent)]
    Payload(#[from] DecodeError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// A header value with control characters (CR, LF, ...) written as `%XX`,
/// so an id can never inject a header line. The body carries it exactly.
fn header_value(raw: &str) -> String {
    if !raw.chars().any(char::is_control) {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for c in raw.chars() {
        if c.is_control() {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The JSON envelope of `record` with `data` (`null` when `None`), saying
/// `schema_version`: the version of `data` as sent (an event stored at an
/// older version is sent upcast, at the current one).
fn envelope<D: Serialize>(
    record: &RecordedEvent,
    schema_version: u16,
    data: Option<&D>,
) -> Result<Vec<u8>, serde_json::Error> {
    let (aggregate_type, aggregate_id) = aggregate_of(&record.stream_id);
    let mut out = Vec::with_capacity(512 + record.payload.len() * 4);
    serde_json::to_writer(
        &mut out,
        &Envelope {
            event_id: record.event_id,
            event_type: &record.event_type,
            schema_version,
            tenant_id: &record.tenant_id,
            aggregate_type,
            aggregate_id,
            stream_id: &record.stream_id,
            stream_version: record.stream_version,
            position: record.position,
            correlation_id: &record.correlation_id,
            causation_id: record.causation_id.as_deref(),
            recorded_at_ms: record.recorded_at_ms,
            data,
        },
    )?;
    Ok(out)
}

/// The message for `record` under `prefix`: a quote, order or handoff
/// event with its domain event under `data`, an event of any other stream
/// with `data: null`.
pub(crate) fn build(record: &RecordedEvent, prefix: &str) -> Result<Outgoing, BuildError> {
    let (aggregate_type, _) = aggregate_of(&record.stream_id);
    let bytes = match application::events::decode(record) {
        Ok(data) => envelope(record, data.schema_version(), Some(&data))?,
        Err(e) if e.is_foreign_stream() => envelope::<()>(record, record.schema_version, None)?,
        Err(e) => return Err(e.into()),
    };
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_MSG_ID, record.event_id.to_string().as_str());
    headers.insert(HEADER_POSITION, record.position.to_string().as_str());
    headers.insert(
        HEADER_CORRELATION_ID,
        header_value(&record.correlation_id).as_str(),
    );
    if let Some(causation) = &record.causation_id {
        headers.insert(HEADER_CAUSATION_ID, header_value(causation).as_str());
    }
    Ok(Outgoing {
        subject: subject(
            prefix,
            &record.tenant_id,
            aggregate_type,
            &record.event_type,
        ),
        headers,
        body: Bytes::from(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::order::OrderEvent;
    use domain::quote::QuoteEvent;
    use domain::testing::fixtures;

    fn record(stream: &str, payload: Vec<u8>, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            position: 41,
            stream_id: stream.to_owned(),
            stream_version: 1,
            event_id: Ulid::from_parts(1, 2),
            event_type: event_type.to_owned(),
            schema_version: 1,
            tenant_id: "t.1".to_owned(),
            correlation_id: "corr\r\nX-Evil: 1".to_owned(),
            causation_id: Some("cmd-1".to_owned()),
            recorded_at_ms: 7,
            metadata: Default::default(),
            payload,
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn an_order_event_becomes_an_envelope_with_its_ids_in_headers() {
        let event = fixtures::order_captured(&["l1"]);
        let payload = eventlog::encode_payload(&event).expect("encode");
        let out = build(&record("order-o1", payload, event.event_type()), "oms").expect("build");
        assert_eq!(out.subject, "oms.t%2E1.order.OrderCaptured");
        let body: RelayedEvent<OrderEvent> = serde_json::from_slice(&out.body).expect("json");
        assert_eq!(body.data, event);
        assert_eq!(
            (body.aggregate_type.as_str(), body.aggregate_id.as_str()),
            ("order", "o1")
        );
        assert_eq!((body.position, body.tenant_id.as_str()), (41, "t.1"));
        let header = |name: &str| out.headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(
            header(HEADER_MSG_ID),
            Some(Ulid::from_parts(1, 2).to_string())
        );
        assert_eq!(header(HEADER_POSITION).as_deref(), Some("41"));
        assert_eq!(header(HEADER_CAUSATION_ID).as_deref(), Some("cmd-1"));
        assert_eq!(
            header(HEADER_CORRELATION_ID).as_deref(),
            Some("corr%0D%0AX-Evil: 1")
        );
        assert_eq!(body.correlation_id, "corr\r\nX-Evil: 1");
    }

    #[test]
    fn an_unknown_stream_is_relayed_without_data_and_a_bad_payload_is_refused() {
        let out = build(&record("audit-x", vec![1, 2, 3], "Something"), "oms").expect("build");
        let body: RelayedEvent<serde_json::Value> =
            serde_json::from_slice(&out.body).expect("json");
        assert_eq!(body.data, serde_json::Value::Null);
        assert!(build(&record("quote-q1", vec![0xff; 3], "QuoteCreated"), "oms").is_err());
    }

    #[test]
    fn an_event_stored_at_an_older_schema_version_is_sent_upcast_at_the_current_one() {
        let current = fixtures::quote_priced();
        let old = fixtures::quote_priced_v1(&current).expect("version 1 can say it");
        let payload = eventlog::encode_payload(&old).expect("encode");
        let stored = record("quote-q1", payload, "QuotePriced");
        assert_eq!(stored.schema_version, 1);
        let out = build(&stored, "oms").expect("build");
        let body: RelayedEvent<QuoteEvent> = serde_json::from_slice(&out.body).expect("json");
        assert_eq!(body.schema_version, current.schema_version());
        assert_eq!(body.data, current);
    }
}
