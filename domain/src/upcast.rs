//! Upcasting: reading an event stored in an older shape of its type.
//!
//! Every event type has a current payload schema version, read from one
//! table, [`CURRENT_VERSIONS`] (every type not listed there is at
//! [`FIRST_VERSION`]); [`crate::decider::DomainEvent::schema_version`] answers from it, so
//! what is written and what is read agree by construction.
//!
//! A record stored at an older version is read through the upcaster chain
//! of its type, keyed by (event type, stored version):
//! 1. [`OldEvent::read`] decodes the payload in the frozen shape of that
//!    version (for example [`crate::quote::legacy::v1`]);
//! 2. each step ([`OldEvent::upcast`] runs them) lifts it one version up,
//!    until it is the current event.
//!
//! [`crate::events::decode`] uses the chain for every version below the
//! current one that has a reader; any other version is refused as
//! [`crate::events::DecodeError::UnsupportedVersion`].
//!
//! Anchors: cqrs-es (`persist/upcaster.rs`: an upcaster per event type and
//! version, applied on load), Axon (a chain of single-revision steps) and
//! Marten (typed old-to-new transformations). Unlike cqrs-es, which upcasts
//! JSON values, our payloads are bincode, which is not self-describing: an
//! old payload can only be read with its old shape, so every version left
//! behind keeps a frozen Rust mirror of its shape. The procedure for the
//! next shape change is in `docs/adr/0013-upcasting.md`.
//!
//! ```
//! use domain::upcast::current_version;
//!
//! assert_eq!(current_version("QuotePriced"), 2);
//! assert_eq!(current_version("OrderCaptured"), 1);
//! ```

use crate::events::{AnyEvent, PayloadCodec};
use crate::handoff::legacy as handoff_legacy;
use crate::ids::StreamKind;
use crate::quote::legacy;

/// The schema version every event type starts at.
pub const FIRST_VERSION: u16 = 1;

/// The event types whose shape has changed, with their current schema
/// version; every other event type is at [`FIRST_VERSION`]. This is the
/// only place a version is bumped, and each bump comes with a frozen old
/// shape and an upcaster in [`OldEvent`].
pub const CURRENT_VERSIONS: &[(&str, u16)] = &[
    // 2: the price snapshot has its own `price_book` (v1 kept the book in
    // `policy_version`); upcaster `quote::legacy::v1::upcast`.
    ("QuotePriced", 2),
    // 2: a closed case names its handoff's subject (ADR 0064); upcaster
    // `handoff::legacy::v1::upcast`.
    ("HandoffResolved", 2),
];

/// The current schema version of `event_type`: what this build writes and
/// decodes directly. [`FIRST_VERSION`] for a type not in
/// [`CURRENT_VERSIONS`] (including names that are no event type).
pub fn current_version(event_type: &str) -> u16 {
    CURRENT_VERSIONS
        .iter()
        .find(|(name, _)| *name == event_type)
        .map_or(FIRST_VERSION, |(_, version)| *version)
}

/// A payload decoded in a frozen old shape, on its way up to the current
/// one: one variant per (event type, version) an upcaster chain starts
/// from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OldEvent {
    /// `QuotePriced` at schema version 1 ([`legacy::v1`]).
    QuotePricedV1(legacy::v1::QuoteEvent),
    /// `HandoffResolved` at schema version 1 ([`handoff_legacy::v1`]).
    HandoffResolvedV1(handoff_legacy::v1::HandoffEvent),
}

/// What one upcaster step produced.
enum Lifted {
    /// The event one version up, still older than the current version.
    #[expect(
        dead_code,
        reason = "no chain has an intermediate version yet; the step of the first one does"
    )]
    Old(OldEvent),
    /// The event in its current shape: the chain ends.
    Current(AnyEvent),
}

/// Why an old payload could not be upcast.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    /// The payload decoded in the old shape, but as another event type than
    /// the envelope names.
    #[error("the payload is a {decoded_type} event")]
    OtherEventType {
        /// The event type the payload holds.
        decoded_type: &'static str,
    },
    /// A step did not move the event to a later version (a registry bug;
    /// refused rather than looped on).
    #[error("the upcaster of {event_type} version {from} did not lift it to a later version")]
    NoProgress {
        /// The event type.
        event_type: &'static str,
        /// The version the step started from.
        from: u16,
    },
}

impl OldEvent {
    /// The registry of upcaster chains, keyed by (stream kind, event type,
    /// stored version): decodes `payload` in the frozen shape of that
    /// version. `None` when no chain starts there (the version is the
    /// current one, unknown, or of an unknown type).
    ///
    /// # Errors
    /// Inside the `Some`, the codec's message when the bytes are not that
    /// shape.
    pub fn read<C: PayloadCodec>(
        kind: StreamKind,
        event_type: &str,
        version: u16,
        payload: &[u8],
        codec: &C,
    ) -> Option<Result<Self, String>> {
        let decoded = match (kind, event_type, version) {
            (StreamKind::Quote, "QuotePriced", 1) => codec.decode(payload).map(Self::QuotePricedV1),
            (StreamKind::Handoff, "HandoffResolved", 1) => {
                codec.decode(payload).map(Self::HandoffResolvedV1)
            }
            _ => return None,
        };
        Some(decoded.map_err(|e| e.to_string()))
    }

    /// The event type and schema version of this shape.
    pub fn version(&self) -> (&'static str, u16) {
        match self {
            Self::QuotePricedV1(_) => ("QuotePriced", 1),
            Self::HandoffResolvedV1(_) => ("HandoffResolved", 1),
        }
    }

    /// One step: the event one version up. Each old shape has exactly one
    /// step, to the next version.
    fn step(self) -> Result<Lifted, UpcastError> {
        match self {
            Self::QuotePricedV1(event) => legacy::v1::upcast(event)
                .map(|current| Lifted::Current(AnyEvent::Quote(current)))
                .map_err(|decoded_type| UpcastError::OtherEventType { decoded_type }),
            Self::HandoffResolvedV1(event) => handoff_legacy::v1::upcast(event)
                .map(|current| Lifted::Current(AnyEvent::Handoff(current)))
                .map_err(|decoded_type| UpcastError::OtherEventType { decoded_type }),
        }
    }

    /// Runs the chain: steps until the event is in its current shape.
    ///
    /// # Errors
    /// [`UpcastError`]; never a panic, and never a loop (every step must
    /// reach a later version).
    pub fn upcast(self) -> Result<AnyEvent, UpcastError> {
        let mut event = self;
        loop {
            let (event_type, from) = event.version();
            match event.step()? {
                Lifted::Current(current) => return Ok(current),
                Lifted::Old(next) if next.version().1 > from => event = next,
                Lifted::Old(_) => return Err(UpcastError::NoProgress { event_type, from }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_version_is_above_the_first_and_listed_once() {
        for (i, (name, version)) in CURRENT_VERSIONS.iter().enumerate() {
            assert!(*version > FIRST_VERSION, "{name}");
            assert!(
                CURRENT_VERSIONS[..i].iter().all(|(other, _)| other != name),
                "{name} listed twice"
            );
        }
    }

    #[test]
    fn unknown_and_unbumped_types_are_at_the_first_version() {
        assert_eq!(current_version("QuoteCreated"), FIRST_VERSION);
        assert_eq!(current_version("NoSuchEvent"), FIRST_VERSION);
        assert_eq!(current_version("QuotePriced"), 2);
        assert_eq!(current_version("HandoffResolved"), 2);
    }
}
