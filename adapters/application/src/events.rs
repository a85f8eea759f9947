//! Decoding recorded events into the domain's event enums: the log's
//! record handed to the one decode, [`domain::events::decode`], with the
//! log's payload codec.

use domain::events::{self, AnyEvent, DecodeError, PayloadCodec, StoredEvent};
use domain::handoff::HandoffEvent;
use domain::ids::StreamKind;
use eventlog::{decode_payload, CodecError, RecordedEvent};
use serde::de::DeserializeOwned;

/// The log's payload codec ([`eventlog::decode_payload`]) as the domain's
/// decode takes it.
struct LogCodec;

impl PayloadCodec for LogCodec {
    type Error = CodecError;

    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, CodecError> {
        decode_payload(payload)
    }
}

/// The domain event `record` holds.
///
/// # Errors
/// [`DecodeError`]: a stream that is not a quote, order or handoff stream
/// ([`DecodeError::is_foreign_stream`]), an unknown schema version or event
/// type, or bytes that do not decode.
pub fn decode(record: &RecordedEvent) -> Result<AnyEvent, DecodeError> {
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

/// The domain event a record holds; `None` for streams that are not a
/// quote, an order or a handoff.
pub fn decode_any(record: &RecordedEvent) -> Result<Option<AnyEvent>, DecodeError> {
    match decode(record) {
        Ok(event) => Ok(Some(event)),
        Err(e) if e.is_foreign_stream() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The handoff event a record holds, if it is on a handoff stream.
pub fn decode_handoff(record: &RecordedEvent) -> Result<Option<HandoffEvent>, DecodeError> {
    if !matches!(
        StreamKind::split(&record.stream_id),
        Ok((StreamKind::Handoff, _))
    ) {
        return Ok(None);
    }
    decode(record).map(|event| HandoffEvent::try_from(event).ok())
}
