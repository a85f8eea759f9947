//! The quote's size limits: what one line may carry, and what all of its
//! lines may weigh together. The decider refuses a line beyond them
//! (`invalid_quantity`, `invalid_term`, `too_many_options`,
//! `quote_too_large`); the API states them in its input errors.

use super::QuoteLine;

/// The most units one line orders. It keeps every quantity inside a
/// GraphQL `Int` (signed 32 bits), which client code generators map to a
/// 32-bit integer.
pub const MAX_QUANTITY: u32 = 1_000_000;

/// The longest contract term of a line, in months (ten years).
pub const MAX_TERM_MONTHS: u32 = 120;

/// The most configured options one line carries.
pub const MAX_OPTIONS_PER_LINE: usize = 32;

/// The most a quote's lines may weigh together ([`line_weight`]). The
/// events that carry every line with its charges to the order
/// (`QuoteAccepted`, and the order's `OrderCaptured`) then stay within the
/// log's 64 KiB payload, with 4 KiB left for their other fields (ids and
/// hashes, each at most a few hundred bytes). The application's tests
/// check that bound against the log's own codec.
pub const MAX_LINES_WEIGHT: usize = 60 * 1024;

/// The bytes the charges of one line may take per charge, beyond its
/// code: the amount as decimal text and the currency.
const CHARGE_AMOUNT_BYTES: usize = 48;

/// The longest prefix the price book puts before an offering id in a
/// charge code (`INSTALL-`).
const CHARGE_CODE_PREFIX_BYTES: usize = 8;

/// The charges the price book gives each line (one-time and monthly).
const CHARGES_PER_LINE: usize = 2;

/// An upper bound of the bytes one line adds to an event that carries it
/// with its charges, in the log's encoding (bincode's standard
/// configuration: each text and collection prefixed by its length as a
/// variable-length integer): its ids, numbers and options as they are,
/// and its charges at the widest amount.
pub fn line_weight(line: &QuoteLine) -> usize {
    let options: usize = line
        .options
        .iter()
        .map(|(name, value)| text(name.len()) + text(value.len()))
        .sum();
    let charge =
        text(CHARGE_CODE_PREFIX_BYTES + line.offering_id.as_str().len()) + 1 + CHARGE_AMOUNT_BYTES;
    text(line.line_id.as_str().len())
        + text(line.offering_id.as_str().len())
        + varint(u64::from(line.offering_version))
        + varint(u64::from(line.quantity))
        + varint(u64::from(line.term_months))
        + varint(line.options.len() as u64)
        + options
        + varint(CHARGES_PER_LINE as u64)
        + CHARGES_PER_LINE * charge
}

/// The weight of `lines` together.
pub fn lines_weight<'a>(lines: impl IntoIterator<Item = &'a QuoteLine>) -> usize {
    lines.into_iter().map(line_weight).sum()
}

/// A text of `len` bytes with its length prefix.
fn text(len: usize) -> usize {
    varint(len as u64) + len
}

/// The bytes of `n` as bincode's variable-length integer.
fn varint(n: u64) -> usize {
    match n {
        0..=250 => 1,
        251..=0xFFFF => 3,
        0x1_0000..=0xFFFF_FFFF => 5,
        _ => 9,
    }
}
