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
/// events that carry every line to the order and its documents
/// (`QuoteAccepted`, the order's `OrderCaptured` and `ConfirmationRequested`,
/// and the confirmation's `HandoffRequested`) then stay within the log's
/// 64 KiB payload, with 4 KiB left for their other fields (ids and hashes,
/// each at most a few hundred bytes). The application's tests check that
/// bound against the log's own codec.
pub const MAX_LINES_WEIGHT: usize = 60 * 1024;

/// The bytes the charges of one line may take per charge, beyond its
/// code: the amount as decimal text and the currency.
const CHARGE_AMOUNT_BYTES: usize = 48;

/// The longest prefix the price book puts before an offering id in a
/// charge code (`INSTALL-`).
const CHARGE_CODE_PREFIX_BYTES: usize = 8;

/// The charges the price book gives each line (one-time and monthly).
const CHARGES_PER_LINE: usize = 2;

/// Digits of the largest line index a document names (`line.<i>.`): a
/// quote holds fewer than 1,000 lines, since every line weighs over 60
/// bytes against [`MAX_LINES_WEIGHT`] (a unit test checks it).
const LINE_INDEX_DIGITS: usize = 3;

/// A document's field name before the field's own name: `line.<i>.`.
const LINE_FIELD_PREFIX_BYTES: usize = "line.".len() + LINE_INDEX_DIGITS + 1;

/// The longest decimal text of a charge's place in its line
/// (`charge.<j>.`): a line has [`CHARGES_PER_LINE`] charges.
const CHARGE_INDEX_DIGITS: usize = 1;

/// The longest name of a charge kind (`RecurringMonthly`).
const CHARGE_KIND_BYTES: usize = 16;

/// An upper bound of the bytes one line adds to any event that carries it:
/// the larger of what it adds to the events that carry it with its charges
/// (`QuoteAccepted`, `OrderCaptured`) and what it adds to a document's
/// snapshot of named fields (the order confirmation's `line.<i>.` fields,
/// charges included, in `ConfirmationRequested` and its handoff's
/// `HandoffRequested`; the proposal's are a subset). Both in the log's
/// encoding (bincode's standard configuration: each text and collection
/// prefixed by its length as a variable-length integer), with ids, numbers
/// and options as they are and the charges at the widest amount.
pub fn line_weight(line: &QuoteLine) -> usize {
    carried_weight(line).max(document_weight(line))
}

/// What `line` adds to `QuoteAccepted` and `OrderCaptured`.
fn carried_weight(line: &QuoteLine) -> usize {
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

/// What `line` adds to a document snapshot: one (name, value) entry per
/// field, option and charge part (`confirmation::snapshot`), names and
/// numbers as they are, charges at the widest.
fn document_weight(line: &QuoteLine) -> usize {
    let field = |name: usize, value: usize| text(LINE_FIELD_PREFIX_BYTES + name) + text(value);
    let number = |n: u32| n.to_string().len();
    let options: usize = line
        .options
        .iter()
        .map(|(name, value)| field("option.".len() + name.len(), value.len()))
        .sum();
    let charge_field = |name: &str, value: usize| {
        field(
            "charge.".len() + CHARGE_INDEX_DIGITS + 1 + name.len(),
            value,
        )
    };
    let charge = charge_field(
        "code",
        CHARGE_CODE_PREFIX_BYTES + line.offering_id.as_str().len(),
    ) + charge_field("kind", CHARGE_KIND_BYTES)
        + charge_field("amount", CHARGE_AMOUNT_BYTES);
    field("id".len(), line.line_id.as_str().len())
        + field("offering".len(), line.offering_id.as_str().len())
        + field("offering_version".len(), number(line.offering_version))
        + field("quantity".len(), number(line.quantity))
        + field("term_months".len(), number(line.term_months))
        + options
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{LineId, OfferingId};

    #[test]
    fn the_lightest_line_leaves_room_for_fewer_lines_than_the_index_digits_name() {
        let lightest = QuoteLine {
            line_id: LineId::new("l"),
            offering_id: OfferingId::new("o"),
            offering_version: 0,
            quantity: 1,
            term_months: 1,
            options: Default::default(),
        };
        let most_lines = MAX_LINES_WEIGHT / line_weight(&lightest);
        assert!(
            (most_lines - 1).to_string().len() <= LINE_INDEX_DIGITS,
            "{most_lines} lines would need longer indexes"
        );
    }
}
