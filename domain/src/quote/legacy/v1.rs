//! `QuotePriced` at schema version 1, before the price snapshot had its own
//! `price_book`: FROZEN, never change this module.
//!
//! In version 1, [`PriceResult::policy_version`] named the price book the
//! price was computed under (acceptance compared it with the book in
//! force). Version 2 keeps `policy_version` for the pricing policy and adds
//! [`crate::quote::PriceResult::price_book`]; [`upcast`] fills the book from
//! the version 1 `policy_version`, which is what version 1 meant by it.
//!
//! # Technique: a frozen mirror of the enum up to the changed variant
//!
//! Payloads are the whole aggregate enum encoded with bincode, which is not
//! self-describing: an enum is its variant index followed by the variant's
//! fields in declaration order, so an old payload can only be read with its
//! old shape at the same index. [`QuoteEvent`] mirrors the version 1
//! `QuoteEvent` up to `QuotePriced` (index 5):
//! - the five variants before it are unit placeholders that only hold their
//!   indexes (those event types are still at version 1 and are decoded as
//!   the current enum; a payload of theirs never reaches this mirror except
//!   under a wrong envelope, which [`upcast`] refuses by naming it);
//! - the variants after it are left out (their indexes are never read here);
//! - `QuotePriced` has its version 1 fields: a frozen copy of the one type
//!   whose shape changed ([`PriceResult`]), and today's types for the parts
//!   whose shape has not changed ([`LinePrice`], [`PriceTotals`],
//!   [`Discount`], [`Timestamp`]). Should one of those ever change, its old
//!   shape is frozen here first, in the same change; the golden bytes in
//!   `domain/tests/golden/quote_priced_v1.hex` fail otherwise.

use serde::{Deserialize, Serialize};

use crate::ids::Timestamp;
use crate::quote::{Discount, LinePrice, PriceTotals};

/// The pricing engine's result as version 1 recorded it. FROZEN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceResult {
    /// The quote revision the price was computed for.
    pub revision: u32,
    /// Per-line components.
    pub lines: Vec<LinePrice>,
    /// The totals.
    pub totals: PriceTotals,
    /// The granted discount.
    pub discount: Discount,
    /// The first instant the price is valid.
    pub valid_from: Timestamp,
    /// The first instant the price is no longer valid.
    pub valid_until: Timestamp,
    /// The deterministic hash of every pricing input.
    pub input_hash: String,
    /// The price book the price was computed under (version 1 called it the
    /// pricing policy version; acceptance compared it with the book in
    /// force).
    pub policy_version: String,
}

/// The version 1 quote event enum, up to `QuotePriced` (see the module docs
/// for why the other variants are placeholders or absent). FROZEN: the
/// order of the variants is the version 1 variant order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuoteEvent {
    /// Index 0 (`QuoteCreated`): placeholder, its fields are never read here.
    QuoteCreated,
    /// Index 1 (`LineAdded`): placeholder.
    LineAdded,
    /// Index 2 (`LineChanged`): placeholder.
    LineChanged,
    /// Index 3 (`LineRemoved`): placeholder.
    LineRemoved,
    /// Index 4 (`RevisionStarted`): placeholder.
    RevisionStarted,
    /// Index 5: the current revision was priced.
    QuotePriced {
        /// The price result snapshot, in its version 1 shape.
        price: Box<PriceResult>,
        /// When.
        at: Timestamp,
    },
}

impl QuoteEvent {
    /// The event type the variant stands for (a placeholder names the type
    /// whose index it holds).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::QuoteCreated => "QuoteCreated",
            Self::LineAdded => "LineAdded",
            Self::LineChanged => "LineChanged",
            Self::LineRemoved => "LineRemoved",
            Self::RevisionStarted => "RevisionStarted",
            Self::QuotePriced { .. } => "QuotePriced",
        }
    }
}

/// The upcaster from version 1 to version 2: a version 1 `QuotePriced`
/// becomes the version 2 one, with `price_book` and `policy_version` both
/// set from the version 1 `policy_version`; every other field is kept.
///
/// # Errors
/// The event type of a placeholder, when the payload was not a
/// `QuotePriced` at all.
pub fn upcast(event: QuoteEvent) -> Result<crate::quote::QuoteEvent, &'static str> {
    let QuoteEvent::QuotePriced { price, at } = event else {
        return Err(event.event_type());
    };
    let PriceResult {
        revision,
        lines,
        totals,
        discount,
        valid_from,
        valid_until,
        input_hash,
        policy_version,
    } = *price;
    Ok(crate::quote::QuoteEvent::QuotePriced {
        price: Box::new(crate::quote::PriceResult {
            revision,
            lines,
            totals,
            discount,
            valid_from,
            valid_until,
            input_hash,
            price_book: policy_version.clone(),
            policy_version,
        }),
        at,
    })
}
