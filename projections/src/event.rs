//! Recorded events decoded once for every projector.
//!
//! Each record goes through the one decode, [`domain::events::decode`],
//! with the log's payload codec ([`eventlog::codec::decode_payload`]): the
//! stream prefix names the aggregate (`quote-`, `order-`, `handoff-`), the
//! schema version must be one this build reads, and the payload's
//! `event_type()` must match the envelope's. A payload that fails any of
//! these is kept as [`Payload::Undecodable`]: every projector that needs the
//! payload stops there, visibly, while those that only need the envelope
//! (the audit trail) go on. Streams of other aggregates are
//! [`Payload::Other`] and are ignored by the domain read models.

use domain::events::{self, AnyEvent, DecodeError, PayloadCodec, StoredEvent};
use domain::handoff::HandoffEvent;
use domain::ids::StreamKind;
use domain::order::OrderEvent;
use domain::quote::QuoteEvent;
use eventlog::{CodecError, RecordedEvent};
use serde::de::DeserializeOwned;

/// The decoded domain event of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    /// A `quote-` stream event.
    Quote(QuoteEvent),
    /// An `order-` stream event.
    Order(OrderEvent),
    /// A `handoff-` stream event.
    Handoff(HandoffEvent),
    /// A stream of an aggregate no read model follows.
    Other,
    /// A followed stream whose payload could not be decoded.
    Undecodable {
        /// The stream's aggregate.
        kind: StreamKind,
        /// Why (the decode error's message).
        why: String,
    },
}

/// A recorded event with its payload decoded (the payload bytes dropped).
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    /// The envelope (its `payload` field is emptied).
    pub(crate) record: RecordedEvent,
    /// The decoded payload.
    pub(crate) payload: Payload,
}

/// The log's payload codec as the domain's decode takes it.
struct LogCodec;

impl PayloadCodec for LogCodec {
    type Error = CodecError;

    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, CodecError> {
        eventlog::codec::decode_payload(payload)
    }
}

/// The domain event `record` holds: [`domain::events::decode`] over the
/// log's record and codec.
///
/// # Errors
/// [`DecodeError`] for a stream of no known aggregate, an unknown schema
/// version or event type, or bytes that do not decode.
pub fn decode_record(record: &RecordedEvent) -> Result<AnyEvent, DecodeError> {
    events::decode(
        &StoredEvent {
            position: record.position,
            stream_id: &record.stream_id,
            event_type: &record.event_type,
            schema_version: record.schema_version,
            payload: &record.payload,
        },
        &LogCodec,
    )
}

/// Decodes the payload of `record` by its stream, and drops its bytes.
pub(crate) fn decode(mut record: RecordedEvent) -> Decoded {
    let payload = match decode_record(&record) {
        Ok(AnyEvent::Quote(e)) => Payload::Quote(e),
        Ok(AnyEvent::Order(e)) => Payload::Order(e),
        Ok(AnyEvent::Handoff(e)) => Payload::Handoff(e),
        // The catalog has no read model: `catalogVersions` folds its stream.
        Ok(AnyEvent::Catalog(_)) => Payload::Other,
        Err(e) => match e.kind() {
            Some(kind) => Payload::Undecodable {
                kind,
                why: e.to_string(),
            },
            None => Payload::Other,
        },
    };
    record.payload = Vec::new();
    Decoded { record, payload }
}
