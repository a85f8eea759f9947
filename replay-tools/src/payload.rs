//! Domain payloads: which aggregate a stream belongs to, and decoding its
//! stored payload into the domain's event enum (so it prints as JSON).
//!
//! Both are the domain's: stream names are parsed by
//! [`domain::ids::StreamKind::split`], payloads decoded by
//! [`domain::events::decode`] (through [`projections::decode_record`], the
//! one adapter from the log's record), so an event stored at an older schema
//! version is upcast to its current shape on the way (`domain::upcast`).
//! This module only adds the command-line spelling of the aggregates.

use domain::ids::StreamKind;
use eventlog::RecordedEvent;

/// A decoded domain event of any aggregate; serialises as the domain event
/// itself.
pub use domain::events::AnyEvent as Payload;
/// Why a payload could not be decoded (names position, type and version).
pub use domain::events::DecodeError as PayloadError;

/// The aggregates, told apart by stream prefix, as the command line
/// names them (`--aggregate quote`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Aggregate {
    /// Streams `quote-<id>`.
    Quote,
    /// Streams `order-<id>`.
    Order,
    /// Streams `handoff-<id>`.
    Handoff,
    /// Streams `catalog-<tenant>`.
    Catalog,
}

impl Aggregate {
    /// The aggregate of a stream id, from its prefix.
    pub fn of_stream(stream_id: &str) -> Option<Self> {
        StreamKind::split(stream_id)
            .ok()
            .map(|(kind, _)| kind.into())
    }

    /// The lowercase name (`quote`, `order`, `handoff`, `catalog`).
    pub fn as_str(self) -> &'static str {
        StreamKind::from(self).as_str()
    }
}

impl From<StreamKind> for Aggregate {
    fn from(kind: StreamKind) -> Self {
        match kind {
            StreamKind::Quote => Self::Quote,
            StreamKind::Order => Self::Order,
            StreamKind::Handoff => Self::Handoff,
            StreamKind::Catalog => Self::Catalog,
        }
    }
}

impl From<Aggregate> for StreamKind {
    fn from(aggregate: Aggregate) -> Self {
        match aggregate {
            Aggregate::Quote => Self::Quote,
            Aggregate::Order => Self::Order,
            Aggregate::Handoff => Self::Handoff,
            Aggregate::Catalog => Self::Catalog,
        }
    }
}

/// Decodes a record's payload by its stream.
///
/// # Errors
/// [`PayloadError`] for a stream of no known aggregate, an unknown schema
/// version or event type, or bytes that do not decode.
pub fn decode(record: &RecordedEvent) -> Result<Payload, PayloadError> {
    projections::decode_record(record)
}
