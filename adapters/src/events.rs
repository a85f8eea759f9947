//! Decoding recorded events into the domain's event enums, by stream.

use domain::handoff::HandoffEvent;
use domain::order::OrderEvent;
use domain::quote::QuoteEvent;
use eventlog::{decode_payload, CodecError, RecordedEvent};

/// A decoded domain event.
#[derive(Debug, Clone)]
pub(crate) enum AnyEvent {
    Quote(QuoteEvent),
    Order(OrderEvent),
    Handoff(HandoffEvent),
}

/// The domain event a record holds; `None` for streams that are not a
/// quote, an order or a handoff.
pub(crate) fn decode_any(record: &RecordedEvent) -> Result<Option<AnyEvent>, CodecError> {
    let stream = record.stream_id.as_str();
    if stream.starts_with("handoff-") {
        decode_payload(&record.payload).map(|e| Some(AnyEvent::Handoff(e)))
    } else if stream.starts_with("order-") {
        decode_payload(&record.payload).map(|e| Some(AnyEvent::Order(e)))
    } else if stream.starts_with("quote-") {
        decode_payload(&record.payload).map(|e| Some(AnyEvent::Quote(e)))
    } else {
        Ok(None)
    }
}

/// The handoff event a record holds, if it is on a handoff stream.
pub(crate) fn decode_handoff(record: &RecordedEvent) -> Result<Option<HandoffEvent>, CodecError> {
    if record.stream_id.starts_with("handoff-") {
        decode_payload(&record.payload).map(Some)
    } else {
        Ok(None)
    }
}
