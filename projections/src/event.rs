//! Recorded events decoded once for every projector.
//!
//! The stream prefix names the aggregate (`quote-`, `order-`, `handoff-`);
//! the payload is decoded with [`eventlog::codec::decode_payload`] and its
//! `event_type()` must match the envelope's. A payload that does not decode,
//! or a schema version this build has no upcaster for, is kept as
//! [`Payload::Undecodable`]: every projector that needs the payload stops
//! there, visibly, while those that only need the envelope (the audit trail)
//! go on. Streams of other aggregates are [`Payload::Other`] and are ignored
//! by the domain read models.

use domain::handoff::HandoffEvent;
use domain::order::OrderEvent;
use domain::quote::QuoteEvent;
use domain::DomainEvent;
use eventlog::RecordedEvent;

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
    Undecodable(String),
}

/// A recorded event with its payload decoded (the payload bytes dropped).
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    /// The envelope (its `payload` field is emptied).
    pub(crate) record: RecordedEvent,
    /// The decoded payload.
    pub(crate) payload: Payload,
}

/// The only payload schema version this build reads.
const SCHEMA_VERSION: u16 = 1;

fn decode_as<E>(record: &RecordedEvent, wrap: fn(E) -> Payload) -> Payload
where
    E: serde::de::DeserializeOwned + DomainEvent,
{
    if record.schema_version != SCHEMA_VERSION {
        return Payload::Undecodable(format!(
            "{} has schema version {}, this build reads {SCHEMA_VERSION}",
            record.event_type, record.schema_version
        ));
    }
    match eventlog::codec::decode_payload::<E>(&record.payload) {
        Ok(event) if event.event_type() == record.event_type => wrap(event),
        Ok(event) => Payload::Undecodable(format!(
            "envelope says {} but the payload is {}",
            record.event_type,
            event.event_type()
        )),
        Err(e) => Payload::Undecodable(format!("{} does not decode: {e}", record.event_type)),
    }
}

/// Decodes the payload of `record` by its stream prefix, and drops its bytes.
pub(crate) fn decode(mut record: RecordedEvent) -> Decoded {
    let payload = if record.stream_id.starts_with("quote-") {
        decode_as(&record, Payload::Quote)
    } else if record.stream_id.starts_with("order-") {
        decode_as(&record, Payload::Order)
    } else if record.stream_id.starts_with("handoff-") {
        decode_as(&record, Payload::Handoff)
    } else {
        Payload::Other
    };
    record.payload = Vec::new();
    Decoded { record, payload }
}
