//! Domain payloads: which aggregate a stream belongs to, and decoding its
//! stored payload into the domain's event enum (so it prints as JSON).

use domain::handoff::HandoffEvent;
use domain::order::OrderEvent;
use domain::quote::QuoteEvent;
use eventlog::{decode_payload, RecordedEvent};
use serde::Serialize;

/// The three aggregates, told apart by stream prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Aggregate {
    /// Streams `quote-<id>`.
    Quote,
    /// Streams `order-<id>`.
    Order,
    /// Streams `handoff-<id>`.
    Handoff,
}

impl Aggregate {
    /// The aggregate of a stream id, from its prefix.
    pub fn of_stream(stream_id: &str) -> Option<Self> {
        if stream_id.starts_with("quote-") {
            Some(Self::Quote)
        } else if stream_id.starts_with("order-") {
            Some(Self::Order)
        } else if stream_id.starts_with("handoff-") {
            Some(Self::Handoff)
        } else {
            None
        }
    }

    /// The lowercase name (`quote`, `order`, `handoff`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quote => "quote",
            Self::Order => "order",
            Self::Handoff => "handoff",
        }
    }
}

/// A decoded domain event of any aggregate. Serialises as the domain event
/// itself (externally tagged by variant, as serde derives it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    /// A quote event.
    Quote(QuoteEvent),
    /// An order event.
    Order(OrderEvent),
    /// A handoff event.
    Handoff(HandoffEvent),
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The stream has no known aggregate prefix.
    #[error("stream {0} has no known aggregate prefix (quote-, order-, handoff-)")]
    UnknownStream(String),
    /// The bytes do not decode as that aggregate's event.
    #[error("payload does not decode as a {aggregate} event: {message}")]
    Undecodable {
        /// The aggregate tried.
        aggregate: &'static str,
        /// The codec's message.
        message: String,
    },
}

/// Decodes a record's payload by its stream prefix.
pub fn decode(record: &RecordedEvent) -> Result<Payload, PayloadError> {
    let aggregate = Aggregate::of_stream(&record.stream_id)
        .ok_or_else(|| PayloadError::UnknownStream(record.stream_id.clone()))?;
    let fail = |e: eventlog::CodecError| PayloadError::Undecodable {
        aggregate: aggregate.as_str(),
        message: e.to_string(),
    };
    Ok(match aggregate {
        Aggregate::Quote => Payload::Quote(decode_payload(&record.payload).map_err(fail)?),
        Aggregate::Order => Payload::Order(decode_payload(&record.payload).map_err(fail)?),
        Aggregate::Handoff => Payload::Handoff(decode_payload(&record.payload).map_err(fail)?),
    })
}
