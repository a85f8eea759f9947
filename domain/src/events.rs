//! The one decode of a stored event into the domain's event enums.
//!
//! A stored record carries its stream name, its event type, its payload
//! schema version and the payload bytes. [`decode`] checks them against
//! what this build knows, in this order: the stream names a quote, an order
//! or a handoff ([`StreamKind::split`]); the schema version is the current
//! one of the event type ([`current_version`]), and the payload decodes as
//! that aggregate's event enum, or the version is an older one with an
//! upcaster chain ([`crate::upcast`]), and the payload decodes in that
//! version's frozen shape and is upcast step by step to the current shape;
//! and the event's own type equals the envelope's and its version is the
//! current one. Any other version is refused. Every refusal is a
//! [`DecodeError`] naming the position, the type and the version.
//!
//! So every reader of the log (projections, the command path, `oms-replay`)
//! sees every event in its current shape, whatever version it was stored
//! at; the stored bytes are never rewritten.
//!
//! The domain stays free of storage: the payload bytes are turned into an
//! event by a [`PayloadCodec`] the caller passes (the crates that read the
//! log pass the log's codec, `eventlog::decode_payload`, in a few lines),
//! so the codec keeps its one home next to the log and the vocabulary of
//! streams, types and versions keeps its one home here.
//!
//! ```
//! use domain::events::{decode, AnyEvent, PayloadCodec, StoredEvent};
//! # use serde::de::DeserializeOwned;
//! # struct NoBytes;
//! # impl PayloadCodec for NoBytes {
//! #     type Error = String;
//! #     fn decode<T: DeserializeOwned>(&self, _: &[u8]) -> Result<T, String> {
//! #         Err("no bytes".to_owned())
//! #     }
//! # }
//! let stored = StoredEvent {
//!     position: 7,
//!     stream_id: "audit-1",
//!     event_type: "Audited",
//!     schema_version: 1,
//!     payload: &[],
//! };
//! let error = decode(&stored, &NoBytes).unwrap_err();
//! assert!(error.is_foreign_stream());
//! ```

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::catalog::CatalogEvent;
use crate::decider::DomainEvent;
use crate::handoff::HandoffEvent;
use crate::ids::{StreamKind, StreamParseError};
use crate::order::OrderEvent;
use crate::policy::TriggerEvent;
use crate::quote::QuoteEvent;
use crate::upcast::{current_version, OldEvent, UpcastError};

/// The metadata key of a stored event naming the event that caused it (the
/// event a policy or the dispatcher reacted to): written by the command
/// path, read by the audit trail.
pub const CAUSATION_EVENT_ID: &str = "causation_event_id";

/// A domain event of any aggregate. Serializes as the domain event itself
/// (externally tagged by variant, as serde derives it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AnyEvent {
    /// An event of a `quote-` stream.
    Quote(QuoteEvent),
    /// An event of an `order-` stream.
    Order(OrderEvent),
    /// An event of a `handoff-` stream.
    Handoff(HandoffEvent),
    /// An event of a `catalog-` stream.
    Catalog(CatalogEvent),
}

impl AnyEvent {
    /// The kind of stream the event belongs to.
    pub fn kind(&self) -> StreamKind {
        match self {
            Self::Quote(_) => StreamKind::Quote,
            Self::Order(_) => StreamKind::Order,
            Self::Handoff(_) => StreamKind::Handoff,
            Self::Catalog(_) => StreamKind::Catalog,
        }
    }

    /// The event borrowed as the policy's trigger.
    pub fn as_trigger(&self) -> TriggerEvent<'_> {
        match self {
            Self::Quote(e) => TriggerEvent::Quote(e),
            Self::Order(e) => TriggerEvent::Order(e),
            Self::Handoff(e) => TriggerEvent::Handoff(e),
            Self::Catalog(e) => TriggerEvent::Catalog(e),
        }
    }
}

impl DomainEvent for AnyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Quote(e) => e.event_type(),
            Self::Order(e) => e.event_type(),
            Self::Handoff(e) => e.event_type(),
            Self::Catalog(e) => e.event_type(),
        }
    }

    fn schema_version(&self) -> u16 {
        match self {
            Self::Quote(e) => e.schema_version(),
            Self::Order(e) => e.schema_version(),
            Self::Handoff(e) => e.schema_version(),
            Self::Catalog(e) => e.schema_version(),
        }
    }
}

/// Every event type this build knows, of every aggregate, in the order
/// the aggregates' enums declare them. An event's type
/// ([`DomainEvent::event_type`]) is its variant's name, so the list is read
/// from the enums themselves (what serde derives for them names every
/// variant), never kept by hand.
pub fn event_types() -> Vec<&'static str> {
    [
        variant_names::<QuoteEvent>(),
        variant_names::<OrderEvent>(),
        variant_names::<HandoffEvent>(),
        variant_names::<CatalogEvent>(),
    ]
    .concat()
}

/// Why a name is not an event type ([`check_event_type`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventTypeError {
    /// The name of one, in another case.
    #[error("not an event type: did you mean {0}?")]
    Miscased(&'static str),
    /// No event type has the name.
    #[error("not an event type: the event types are {}", event_types().join(", "))]
    Unknown,
}

/// Checks that `name` is one of [`event_types`], for a filter by type
/// (which would otherwise match nothing, for ever).
///
/// # Errors
/// [`EventTypeError`]: the type meant when only the case differs.
pub fn check_event_type(name: &str) -> Result<(), EventTypeError> {
    let known = event_types();
    if known.contains(&name) {
        return Ok(());
    }
    match known.into_iter().find(|k| k.eq_ignore_ascii_case(name)) {
        Some(meant) => Err(EventTypeError::Miscased(meant)),
        None => Err(EventTypeError::Unknown),
    }
}

/// The variant names of an enum that derives `Deserialize`: a deserializer
/// that only records the names serde hands to `deserialize_enum`.
fn variant_names<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor};

    struct Names<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for Names<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("only an enum's variant names are read"))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = variants;
            Err(Self::Error::custom("only an enum's variant names are read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            struct identifier ignored_any
        }
    }

    let mut names: &'static [&'static str] = &[];
    // The error is the point: the names were recorded on the way.
    let _ = T::deserialize(Names(&mut names));
    names
}

macro_rules! unwrap_variant {
    ($event:ident, $variant:ident) => {
        impl TryFrom<AnyEvent> for $event {
            type Error = AnyEvent;

            /// The event when it is of this aggregate; otherwise the event
            /// back.
            fn try_from(any: AnyEvent) -> Result<Self, AnyEvent> {
                match any {
                    AnyEvent::$variant(e) => Ok(e),
                    other => Err(other),
                }
            }
        }
    };
}

unwrap_variant!(QuoteEvent, Quote);
unwrap_variant!(OrderEvent, Order);
unwrap_variant!(HandoffEvent, Handoff);
unwrap_variant!(CatalogEvent, Catalog);

/// The facts of a stored event that decoding needs, borrowed from the
/// record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredEvent<'a> {
    /// The event's position in the log (named in errors).
    pub position: u64,
    /// The stream it was recorded on.
    pub stream_id: &'a str,
    /// The envelope's event type.
    pub event_type: &'a str,
    /// The envelope's payload schema version.
    pub schema_version: u16,
    /// The encoded payload.
    pub payload: &'a [u8],
}

/// The payload codec the events were encoded with (the log's), seen from
/// the domain: bytes in, a serde value out. An implementation must bound
/// what untrusted bytes can make it allocate (the log's codec stops at the
/// 64 KiB payload limit): [`decode`]'s promise of no panic rests on it, as
/// bincode is not self-describing and a payload read in another shape than
/// it was written in can claim any length.
pub trait PayloadCodec {
    /// The codec's refusal; only its message is kept.
    type Error: fmt::Display;

    /// Decodes `payload` as a `T`.
    ///
    /// # Errors
    /// The codec's error when the bytes are not a `T`.
    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, Self::Error>;
}

/// Why a stored event is not a domain event this build reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The stream is not a quote, an order or a handoff stream. Readers
    /// that follow only those streams skip such an event
    /// ([`DecodeError::is_foreign_stream`]).
    #[error("event at position {position}: {source}")]
    ForeignStream {
        /// Position of the event.
        position: u64,
        /// Why the stream name was not recognised.
        #[source]
        source: StreamParseError,
    },
    /// The schema version is neither the event type's current one nor an
    /// older one with an upcaster chain.
    #[error("event at position {position}: {event_type} has schema version {schema_version}, this build reads version {current} and upcasts only the older versions it has upcasters for")]
    UnsupportedVersion {
        /// Position of the event.
        position: u64,
        /// The stream's kind.
        kind: StreamKind,
        /// The envelope's event type.
        event_type: String,
        /// The envelope's schema version.
        schema_version: u16,
        /// The event type's current version in this build.
        current: u16,
    },
    /// The payload does not decode as the stream's event enum (an unknown
    /// event type, or damaged bytes).
    #[error("event at position {position}: {event_type} (schema version {schema_version}) does not decode as a {kind} event: {message}")]
    Undecodable {
        /// Position of the event.
        position: u64,
        /// The stream's kind.
        kind: StreamKind,
        /// The envelope's event type.
        event_type: String,
        /// The envelope's schema version.
        schema_version: u16,
        /// The codec's message.
        message: String,
    },
    /// The payload decodes (or upcasts), but as another type or version
    /// than the envelope names.
    #[error("event at position {position}: envelope says {event_type} (schema version {schema_version}) but the payload is {decoded_type} (schema version {decoded_version})")]
    Mismatch {
        /// Position of the event.
        position: u64,
        /// The stream's kind.
        kind: StreamKind,
        /// The envelope's event type.
        event_type: String,
        /// The envelope's schema version.
        schema_version: u16,
        /// The decoded event's type.
        decoded_type: &'static str,
        /// The decoded event's schema version (the stored one when the old
        /// shape already held another type).
        decoded_version: u16,
    },
}

impl DecodeError {
    /// True when the stream is not a quote, an order or a handoff stream
    /// (nothing was wrong with an event of a known stream).
    pub fn is_foreign_stream(&self) -> bool {
        matches!(self, Self::ForeignStream { .. })
    }

    /// The kind of the event's stream, when it is a known one.
    pub fn kind(&self) -> Option<StreamKind> {
        match self {
            Self::ForeignStream { .. } => None,
            Self::UnsupportedVersion { kind, .. }
            | Self::Undecodable { kind, .. }
            | Self::Mismatch { kind, .. } => Some(*kind),
        }
    }
}

/// Decodes a stored event into the domain event it holds, in its current
/// shape: directly at the event type's current version, through the
/// upcaster chain at an older version that has one (see the module docs for
/// the checks, in order).
///
/// # Errors
/// [`DecodeError`] naming the position, the type and the version; never a
/// panic, whatever the bytes.
pub fn decode<C: PayloadCodec>(
    stored: &StoredEvent<'_>,
    codec: &C,
) -> Result<AnyEvent, DecodeError> {
    let (kind, _) =
        StreamKind::split(stored.stream_id).map_err(|source| DecodeError::ForeignStream {
            position: stored.position,
            source,
        })?;
    let current = current_version(stored.event_type);
    let undecodable = |message: String| DecodeError::Undecodable {
        position: stored.position,
        kind,
        event_type: stored.event_type.to_owned(),
        schema_version: stored.schema_version,
        message,
    };
    let mismatch = |decoded_type: &'static str, decoded_version: u16| DecodeError::Mismatch {
        position: stored.position,
        kind,
        event_type: stored.event_type.to_owned(),
        schema_version: stored.schema_version,
        decoded_type,
        decoded_version,
    };
    let event = if stored.schema_version == current {
        match kind {
            StreamKind::Quote => codec.decode(stored.payload).map(AnyEvent::Quote),
            StreamKind::Order => codec.decode(stored.payload).map(AnyEvent::Order),
            StreamKind::Handoff => codec.decode(stored.payload).map(AnyEvent::Handoff),
            StreamKind::Catalog => codec.decode(stored.payload).map(AnyEvent::Catalog),
        }
        .map_err(|e| undecodable(e.to_string()))?
    } else {
        let old = OldEvent::read(
            kind,
            stored.event_type,
            stored.schema_version,
            stored.payload,
            codec,
        )
        .ok_or_else(|| DecodeError::UnsupportedVersion {
            position: stored.position,
            kind,
            event_type: stored.event_type.to_owned(),
            schema_version: stored.schema_version,
            current,
        })?
        .map_err(undecodable)?;
        old.upcast().map_err(|e| match e {
            UpcastError::OtherEventType { decoded_type } => {
                mismatch(decoded_type, stored.schema_version)
            }
            UpcastError::NoProgress { .. } => undecodable(e.to_string()),
        })?
    };
    if event.event_type() != stored.event_type || event.schema_version() != current {
        return Err(mismatch(event.event_type(), event.schema_version()));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures;

    /// bincode's standard configuration, as the log's codec uses it.
    struct Bincode;

    impl PayloadCodec for Bincode {
        type Error = String;

        fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, String> {
            bincode::serde::decode_from_slice(payload, bincode::config::standard())
                .map(|(value, _)| value)
                .map_err(|e| e.to_string())
        }
    }

    fn encode<E: Serialize>(event: &E) -> Vec<u8> {
        bincode::serde::encode_to_vec(event, bincode::config::standard()).expect("encode")
    }

    fn stored<'a>(
        stream_id: &'a str,
        event_type: &'a str,
        schema_version: u16,
        payload: &'a [u8],
    ) -> StoredEvent<'a> {
        StoredEvent {
            position: 9,
            stream_id,
            event_type,
            schema_version,
            payload,
        }
    }

    #[test]
    fn it_decodes_an_event_of_a_known_stream() {
        let event = fixtures::order_captured(&["l1"]);
        let bytes = encode(&event);
        let decoded = decode(&stored("order-o1", "OrderCaptured", 1, &bytes), &Bincode);
        assert_eq!(decoded, Ok(AnyEvent::Order(event.clone())));
        assert_eq!(
            decoded.ok().and_then(|e| OrderEvent::try_from(e).ok()),
            Some(event)
        );
    }

    #[test]
    fn rejects_a_foreign_stream() {
        let error = decode(&stored("audit-1", "Audited", 1, &[]), &Bincode).expect_err("refused");
        assert!(error.is_foreign_stream());
        assert_eq!(error.kind(), None);
    }

    #[test]
    fn rejects_an_unknown_schema_version_naming_position_type_and_version() {
        let bytes = encode(&fixtures::order_captured(&["l1"]));
        let error =
            decode(&stored("order-o1", "OrderCaptured", 2, &bytes), &Bincode).expect_err("refused");
        assert_eq!(
            error,
            DecodeError::UnsupportedVersion {
                position: 9,
                kind: StreamKind::Order,
                event_type: "OrderCaptured".to_owned(),
                schema_version: 2,
                current: 1,
            }
        );
        let text = error.to_string();
        assert!(
            text.contains("position 9") && text.contains("OrderCaptured") && text.contains('2'),
            "{text}"
        );
    }

    #[test]
    fn rejects_an_event_type_the_payload_does_not_hold() {
        let bytes = encode(&fixtures::order_captured(&["l1"]));
        let error =
            decode(&stored("order-o1", "OrderShipped", 1, &bytes), &Bincode).expect_err("refused");
        assert!(matches!(
            error,
            DecodeError::Mismatch { position: 9, ref event_type, decoded_type: "OrderCaptured", .. }
                if event_type == "OrderShipped"
        ));
    }

    /// Every event type of every aggregate, and nothing else: a filter by
    /// type (`oms-replay dump --type`, the `events` subscription) checks
    /// its names against these.
    #[test]
    fn the_event_types_are_every_aggregate_s_and_only_those() {
        let types = event_types();
        let mut samples: Vec<AnyEvent> = fixtures::quote_ready_to_accept()
            .into_iter()
            .map(AnyEvent::Quote)
            .collect();
        samples.push(AnyEvent::Quote(fixtures::quote_priced()));
        samples.push(AnyEvent::Order(fixtures::order_captured(&["l1"])));
        let subject = fixtures::subject("l1", crate::idempotency::Purpose::Reserve, 1);
        samples.push(AnyEvent::Handoff(fixtures::handoff_requested(&subject)));
        for event in &samples {
            assert!(
                types.contains(&event.event_type()),
                "{}",
                event.event_type()
            );
        }
        // 19 quote, 15 order, 11 handoff and 2 catalog event types.
        assert_eq!(types.len(), 47, "{types:?}");
        assert!(types.contains(&"CatalogVersionRetired"));
        for wrong in ["quotecreated", "NoSuchEvent", ""] {
            assert!(!types.contains(&wrong), "{wrong}");
        }
    }

    #[test]
    fn rejects_bytes_that_are_not_the_stream_s_event() {
        let error = decode(&stored("quote-q1", "QuoteCreated", 1, &[0xff; 3]), &Bincode)
            .expect_err("refused");
        assert!(matches!(
            error,
            DecodeError::Undecodable {
                position: 9,
                kind: StreamKind::Quote,
                schema_version: 1,
                ..
            }
        ));
    }
}
