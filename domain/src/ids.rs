//! Identifiers, the timestamp type and the stream-name helpers.
//!
//! Every id is a newtype over `String` that serializes as a bare string, so ids of
//! different kinds cannot be mixed up while the encoded events stay plain. Ids are
//! made at the edge (or derived deterministically by the policy) and carried in
//! commands: the domain never generates one at random.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier that was made or validated at the edge.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The tenant that owns a quote, an order or a handoff.
    TenantId
);
string_id!(
    /// Identifies a quote (stream `quote-<id>`).
    QuoteId
);
string_id!(
    /// Identifies an order (stream `order-<id>`).
    OrderId
);
string_id!(
    /// Identifies a line of a quote, kept as the same id on the order line.
    LineId
);
string_id!(
    /// Identifies a handoff to an external system (stream `handoff-<id>`).
    HandoffId
);
string_id!(
    /// The CRM's identifier of the customer; CRM is its authority.
    CustomerId
);
string_id!(
    /// The billing system's identifier of the account to charge.
    BillingAccountId
);
string_id!(
    /// A catalog offering; its version is carried separately.
    OfferingId
);
string_id!(
    /// A generated document (a proposal) in the document store.
    ArtifactId
);
string_id!(
    /// The customer segment as the CRM names it; approval thresholds are keyed by it.
    Segment
);

/// A point in time as Unix milliseconds. Always supplied by the caller, never read
/// from a clock inside the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// This instant plus `millis`, saturating at the end of representable time.
    pub fn plus_millis(self, millis: u64) -> Timestamp {
        let delta = i64::try_from(millis).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(delta))
    }
}

/// The longest identifier [`validate_id`] accepts, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why a text is not an identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is empty.
    #[error("must not be empty")]
    Empty,
    /// The text is longer than [`MAX_ID_LEN`] bytes.
    #[error("must be at most {MAX_ID_LEN} characters")]
    TooLong,
    /// The first character is not an ASCII letter or digit.
    #[error("must start with an ASCII letter (A-Z, a-z) or digit (0-9)")]
    BadFirst,
    /// A character outside the grammar: the first such, counted from 1,
    /// and shown escaped (a control character or a non-ASCII look-alike is
    /// named, not printed).
    #[error("character {position} (`{}`) is not one of A-Z a-z 0-9 . _ ~ -", .found.escape_default())]
    BadCharacter {
        /// Its position among the characters, counted from 1.
        position: usize,
        /// The character itself.
        found: char,
    },
}

/// Checks the one grammar every identifier that crosses the edge follows:
///
/// ```text
/// id = [A-Za-z0-9] [A-Za-z0-9._~-]{0,127}
/// ```
///
/// that is 1 to [`MAX_ID_LEN`] ASCII characters, letters, digits and the
/// URL-unreserved punctuation `.`, `_`, `~`, `-`, starting with a letter or a
/// digit. So an identifier is always one path segment that needs no
/// encoding (no `/`, `?`, `#`, `%`, no `.` or `..` segment), contains no `:`
/// (the separator of composite keys and correlation ids), no whitespace,
/// no control character and no non-ASCII look-alike, and fits every text
/// field of the log. Client command ids, customer, quote, order, line,
/// offering, billing account and artifact ids, and tenant ids all obey it.
///
/// # Errors
/// [`IdError`] naming the first violation.
pub fn validate_id(value: &str) -> Result<(), IdError> {
    let bytes = value.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(IdError::Empty);
    };
    if bytes.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !first.is_ascii_alphanumeric() {
        return Err(IdError::BadFirst);
    }
    match value
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-')))
    {
        Some((index, found)) => Err(IdError::BadCharacter {
            position: index + 1,
            found,
        }),
        None => Ok(()),
    }
}

/// The kind of aggregate a stream holds, named by the stream's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamKind {
    /// Streams `quote-<id>`.
    Quote,
    /// Streams `order-<id>`.
    Order,
    /// Streams `handoff-<id>`.
    Handoff,
    /// Streams `catalog-<tenant>`: one per tenant.
    Catalog,
}

impl StreamKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 4] = [Self::Quote, Self::Order, Self::Handoff, Self::Catalog];

    /// The lowercase name (`quote`, `order`, `handoff`); stable, shown in
    /// tools and relay subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quote => "quote",
            Self::Order => "order",
            Self::Handoff => "handoff",
            Self::Catalog => "catalog",
        }
    }

    /// The stream-name prefix of this kind, dash included (`quote-`).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Quote => "quote-",
            Self::Order => "order-",
            Self::Handoff => "handoff-",
            Self::Catalog => "catalog-",
        }
    }

    /// Splits a stream name into its kind and its (non-empty) id, borrowing:
    /// `order-o1` is `(Order, "o1")`. The one parser of stream names;
    /// [`StreamRef::parse`] is the owning form.
    ///
    /// # Errors
    /// [`StreamParseError::UnknownKind`] when no known prefix starts the
    /// name, [`StreamParseError::EmptyId`] when nothing follows it.
    pub fn split(stream_id: &str) -> Result<(StreamKind, &str), StreamParseError> {
        let (kind, id) = Self::ALL
            .iter()
            .find_map(|kind| stream_id.strip_prefix(kind.prefix()).map(|id| (*kind, id)))
            .ok_or_else(|| StreamParseError::UnknownKind(stream_id.to_owned()))?;
        if id.is_empty() {
            return Err(StreamParseError::EmptyId(kind));
        }
        Ok((kind, id))
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks that some stream name can start with `prefix` (a live-events
/// filter): a non-empty start of a kind's prefix (`quo`, `order-`), or a
/// kind's prefix followed by the start of an id under [`validate_id`]'s
/// grammar (`quote-q1`). A prefix no stream can have (`../x`, `quote-/`)
/// is refused rather than accepted as a filter that never matches.
///
/// # Errors
/// [`StreamParseError::UnknownKind`] when it starts no kind's prefix,
/// [`StreamParseError::BadId`] when the id part breaks the id grammar.
pub fn validate_stream_prefix(prefix: &str) -> Result<(), StreamParseError> {
    if prefix.is_empty() {
        return Err(StreamParseError::UnknownKind(String::new()));
    }
    if StreamKind::ALL
        .iter()
        .any(|kind| kind.prefix().starts_with(prefix))
    {
        return Ok(());
    }
    let (kind, id) = StreamKind::split(prefix)?;
    validate_id(id).map_err(|error| StreamParseError::BadId { kind, error })
}

/// Why a text is not the name of a quote, order, handoff or catalog stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamParseError {
    /// The id after the kind's prefix breaks the id grammar.
    #[error("the id after {} {error}", .kind.prefix())]
    BadId {
        /// The kind whose prefix starts the name.
        kind: StreamKind,
        /// What is wrong with the id.
        error: IdError,
    },
    /// The name does not start with `quote-`, `order-`, `handoff-` or `catalog-`.
    #[error("stream {0:?} has no known aggregate prefix (quote-, order-, handoff-, catalog-)")]
    UnknownKind(String),
    /// The name is only a prefix: the id is empty.
    #[error("stream name {}<id> has an empty id", .0.prefix())]
    EmptyId(StreamKind),
}

/// A typed reference to one aggregate's stream. `Display` writes the
/// stream name the log uses (`quote-<id>`, `order-<id>`, `handoff-<id>`)
/// and [`StreamRef::parse`] (or `FromStr`) reads it back.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamRef {
    /// The stream of one quote.
    Quote(QuoteId),
    /// The stream of one order.
    Order(OrderId),
    /// The stream of one handoff.
    Handoff(HandoffId),
    /// The catalog stream of one tenant.
    Catalog(TenantId),
}

impl StreamRef {
    /// Parses a stream name (see [`StreamKind::split`]).
    ///
    /// # Errors
    /// [`StreamParseError`] for an unknown prefix or an empty id.
    pub fn parse(stream_id: &str) -> Result<StreamRef, StreamParseError> {
        let (kind, id) = StreamKind::split(stream_id)?;
        Ok(match kind {
            StreamKind::Quote => Self::Quote(QuoteId::new(id)),
            StreamKind::Order => Self::Order(OrderId::new(id)),
            StreamKind::Handoff => Self::Handoff(HandoffId::new(id)),
            StreamKind::Catalog => Self::Catalog(TenantId::new(id)),
        })
    }

    /// The kind of aggregate the stream holds.
    pub fn kind(&self) -> StreamKind {
        match self {
            Self::Quote(_) => StreamKind::Quote,
            Self::Order(_) => StreamKind::Order,
            Self::Handoff(_) => StreamKind::Handoff,
            Self::Catalog(_) => StreamKind::Catalog,
        }
    }

    /// The aggregate's id (the stream name after its prefix).
    pub fn id(&self) -> &str {
        match self {
            Self::Quote(id) => id.as_str(),
            Self::Order(id) => id.as_str(),
            Self::Handoff(id) => id.as_str(),
            Self::Catalog(tenant) => tenant.as_str(),
        }
    }
}

impl fmt::Display for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind().prefix(), self.id())
    }
}

impl std::str::FromStr for StreamRef {
    type Err = StreamParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The stream holding one quote's events: `quote-<id>`.
pub fn quote_stream(id: &QuoteId) -> String {
    format!("{}{id}", StreamKind::Quote.prefix())
}

/// The stream holding one order's events: `order-<id>`.
pub fn order_stream(id: &OrderId) -> String {
    format!("{}{id}", StreamKind::Order.prefix())
}

/// The stream holding one handoff's events: `handoff-<id>`.
pub fn handoff_stream(id: &HandoffId) -> String {
    format!("{}{id}", StreamKind::Handoff.prefix())
}

/// The stream holding one tenant's catalog: `catalog-<tenant>`.
pub fn catalog_stream(tenant: &TenantId) -> String {
    format!("{}{tenant}", StreamKind::Catalog.prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_prefixed_by_aggregate() {
        assert_eq!(quote_stream(&QuoteId::new("q1")), "quote-q1");
        assert_eq!(order_stream(&OrderId::new("o1")), "order-o1");
        assert_eq!(handoff_stream(&HandoffId::new("h1")), "handoff-h1");
    }

    #[test]
    fn a_stream_ref_round_trips_through_its_name() {
        for (name, expected) in [
            ("quote-q1", StreamRef::Quote(QuoteId::new("q1"))),
            ("order-o-1", StreamRef::Order(OrderId::new("o-1"))),
            ("handoff-h.1", StreamRef::Handoff(HandoffId::new("h.1"))),
            ("catalog-t1", StreamRef::Catalog(TenantId::new("t1"))),
        ] {
            let parsed: StreamRef = name.parse().expect("a known stream");
            assert_eq!(parsed, expected);
            assert_eq!(parsed.to_string(), name);
        }
        assert_eq!(
            StreamRef::Order(OrderId::new("o1")).to_string(),
            order_stream(&OrderId::new("o1"))
        );
        assert_eq!(
            StreamKind::split("handoff-h1"),
            Ok((StreamKind::Handoff, "h1"))
        );
    }

    #[test]
    fn rejects_an_unknown_prefix_or_an_empty_id() {
        for unknown in ["audit-x", "quote", "Quote-q1", "", "orders-o1"] {
            assert_eq!(
                StreamRef::parse(unknown),
                Err(StreamParseError::UnknownKind(unknown.to_owned())),
                "{unknown}"
            );
        }
        assert_eq!(
            StreamRef::parse("order-"),
            Err(StreamParseError::EmptyId(StreamKind::Order))
        );
    }

    #[test]
    fn a_stream_prefix_is_a_start_of_some_stream_name() {
        for name in ["quote-q.1", "order-o1", "handoff-h~1", "catalog-t1"] {
            for end in 1..=name.len() {
                assert_eq!(validate_stream_prefix(&name[..end]), Ok(()), "{name}");
            }
        }
        for unknown in ["", "../x", "x", "quote_", "Quote-", "quotes"] {
            assert_eq!(
                validate_stream_prefix(unknown),
                Err(StreamParseError::UnknownKind(unknown.to_owned())),
                "{unknown}"
            );
        }
        for (bad, error) in [
            ("quote-/", IdError::BadFirst),
            ("order-..", IdError::BadFirst),
            (
                "handoff-h/1",
                IdError::BadCharacter {
                    position: 2,
                    found: '/',
                },
            ),
        ] {
            let Err(StreamParseError::BadId { error: found, .. }) = validate_stream_prefix(bad)
            else {
                panic!("{bad} accepted");
            };
            assert_eq!(found, error, "{bad}");
        }
    }

    #[test]
    fn the_id_grammar_admits_plain_ids_and_nothing_that_could_leave_a_path_segment() {
        for ok in [
            "c1",
            "q-0123abcd",
            "cust.1",
            "a_b~c-d",
            "9",
            &"x".repeat(MAX_ID_LEN),
        ] {
            assert_eq!(validate_id(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_id(""), Err(IdError::Empty));
        assert_eq!(
            validate_id(&"x".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong)
        );
        for bad_first in ["-a", ".", "..", "~x", "_x"] {
            assert_eq!(
                validate_id(bad_first),
                Err(IdError::BadFirst),
                "{bad_first}"
            );
        }
        for (bad, at) in [
            ("../../../admin/purge?confirm=yes", 0),
            ("a/b", 2),
            ("a?b", 2),
            ("a#b", 2),
            ("a%2Fb", 2),
            ("t:c", 2),
            ("a b", 2),
            ("a\u{0}b", 2),
            ("caf\u{e9}", 4),
            ("a\u{430}", 2),
        ] {
            let expected = if at == 0 {
                IdError::BadFirst
            } else {
                IdError::BadCharacter {
                    position: at,
                    found: bad.chars().nth(at - 1).unwrap_or_default(),
                }
            };
            assert_eq!(validate_id(bad), Err(expected), "{bad:?}");
        }
    }

    /// The message counts characters from 1 and names an invisible or
    /// look-alike character by its escape, so a user can find it.
    #[test]
    fn a_bad_character_is_named_by_position_and_escape() {
        let message = |id: &str| {
            validate_id(id)
                .map_err(|e| e.to_string())
                .expect_err("an id outside the grammar")
        };
        assert_eq!(
            message("q\u{0}1"),
            "character 2 (`\\u{0}`) is not one of A-Z a-z 0-9 . _ ~ -"
        );
        assert_eq!(
            message("caf\u{e9}-1"),
            "character 4 (`\\u{e9}`) is not one of A-Z a-z 0-9 . _ ~ -"
        );
        assert_eq!(
            message("a/b"),
            "character 2 (`/`) is not one of A-Z a-z 0-9 . _ ~ -"
        );
    }

    #[test]
    fn adding_millis_saturates_instead_of_overflowing() {
        assert_eq!(
            Timestamp(i64::MAX - 1).plus_millis(u64::MAX),
            Timestamp(i64::MAX)
        );
        assert_eq!(Timestamp(1_000).plus_millis(500), Timestamp(1_500));
    }
}
