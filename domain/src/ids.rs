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

/// The stream holding one quote's events: `quote-<id>`.
pub fn quote_stream(id: &QuoteId) -> String {
    format!("quote-{id}")
}

/// The stream holding one order's events: `order-<id>`.
pub fn order_stream(id: &OrderId) -> String {
    format!("order-{id}")
}

/// The stream holding one handoff's events: `handoff-<id>`.
pub fn handoff_stream(id: &HandoffId) -> String {
    format!("handoff-{id}")
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
    fn adding_millis_saturates_instead_of_overflowing() {
        assert_eq!(
            Timestamp(i64::MAX - 1).plus_millis(u64::MAX),
            Timestamp(i64::MAX)
        );
        assert_eq!(Timestamp(1_000).plus_millis(500), Timestamp(1_500));
    }
}
