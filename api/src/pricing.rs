//! Prices a quote's current lines from the configured price book.
//!
//! The price is a snapshot: per-line one-time and monthly components,
//! totals after the discount, a validity window from `now`, the price book
//! version as the policy version, and a deterministic hash of everything
//! the price was computed from.

use std::collections::BTreeMap;

use domain::ids::{Segment, Timestamp};
use domain::money::{Currency, Money, Percent};
use domain::quote::{
    ApprovalPolicy, ChargeKind, Discount, LinePrice, PriceComponent, PriceResult, PriceTotals,
    QuoteLine,
};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, PriceBookConfig};

/// A pricing refusal, for the caller's input.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// An offering on the quote is not in the price book.
    #[error("offering `{0}` is not in the price book")]
    UnknownOffering(String),
    /// The discount is negative or above 100 %.
    #[error("discount must be between 0 and 100 percent")]
    BadDiscount,
    /// The quote has no lines to price.
    #[error("the quote has no lines")]
    NoLines,
}

/// Why a text is not a decimal of the one grammar ([`parse_decimal`]).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not of the grammar.
    #[error(
        "must be a plain decimal such as `5` or `12.5`: digits without sign, exponent, \
         separators or leading zeros, at most {MAX_INTEGER_DIGITS} digits before and \
         {MAX_FRACTION_DIGITS} after the point"
    )]
    Malformed,
    /// Of the grammar, but above the field's maximum.
    #[error("must be at most {0}")]
    TooLarge(Decimal),
}

/// Most digits before the decimal point [`parse_decimal`] accepts.
pub const MAX_INTEGER_DIGITS: usize = 12;
/// Most digits after the decimal point [`parse_decimal`] accepts.
pub const MAX_FRACTION_DIGITS: usize = 4;

/// Parses the one decimal grammar of every decimal the platform reads
/// (client input and the configured price book):
///
/// ```text
/// decimal = ( "0" | [1-9] [0-9]{0,11} ) ( "." [0-9]{1,4} )?
/// ```
///
/// No sign, exponent, `_` or `,` separators, whitespace, leading zeros or
/// bare point: `"1_0"`, `"1e2"`, `"+5"`, `"-0"`, `"05"`, `".5"`, `"5."`
/// are refused, so one value has exactly one spelling up to trailing
/// fractional zeros.
///
/// # Errors
/// [`DecimalError::Malformed`] for anything else.
pub fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let (integer, fraction) = match text.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let integer_ok = digits(integer)
        && integer.len() <= MAX_INTEGER_DIGITS
        && (integer == "0" || !integer.starts_with('0'));
    let fraction_ok =
        fraction.is_none_or(|fraction| digits(fraction) && fraction.len() <= MAX_FRACTION_DIGITS);
    if !(integer_ok && fraction_ok) {
        return Err(DecimalError::Malformed);
    }
    Decimal::from_str_exact(text).map_err(|_| DecimalError::Malformed)
}

/// A percentage: [`parse_decimal`]'s grammar, at most 100.
///
/// # Errors
/// [`DecimalError`] when malformed or above 100.
pub fn parse_percent(text: &str) -> Result<Decimal, DecimalError> {
    let value = parse_decimal(text)?;
    if value > Decimal::ONE_HUNDRED {
        return Err(DecimalError::TooLarge(Decimal::ONE_HUNDRED));
    }
    Ok(value)
}

/// The configured price book, parsed once at start-up.
#[derive(Clone, Debug)]
pub struct PriceBook {
    version: String,
    currency: Currency,
    validity_ms: u64,
    offerings: BTreeMap<String, (Decimal, Decimal)>,
}

impl PriceBook {
    /// Parses the configured price book.
    ///
    /// # Errors
    /// The key of a bad currency or amount.
    pub fn from_config(config: &PriceBookConfig) -> Result<Self, ConfigError> {
        let currency = Currency::new(&config.currency).map_err(|_| ConfigError::Invalid {
            key: "price_book.currency".to_owned(),
            problem: "expected three upper-case letters".to_owned(),
        })?;
        let mut offerings = BTreeMap::new();
        for (id, price) in &config.offerings {
            let parse = |field: &str, text: &str| {
                parse_decimal(text).map_err(|e| ConfigError::Invalid {
                    key: format!("price_book.offerings.{id}.{field}"),
                    problem: e.to_string(),
                })
            };
            offerings.insert(
                id.clone(),
                (
                    parse("one_time", &price.one_time)?,
                    parse("monthly", &price.monthly)?,
                ),
            );
        }
        Ok(Self {
            version: config.version.clone(),
            currency,
            validity_ms: u64::from(config.validity_hours) * 3_600_000,
            offerings,
        })
    }

    /// The book's version: stamped on every price it computes as its
    /// `price_book` (and as its `policy_version`: the book is the only
    /// pricing policy this engine has), and the only book under which a
    /// price is fresh (acceptance refuses others: `price_book_superseded`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The approval rule in force: up to 10 % without approval, 15 % for
    /// the `smb` segment.
    pub fn approval_policy(&self) -> ApprovalPolicy {
        ApprovalPolicy {
            policy_version: format!("approval-{}", self.version),
            default_max_discount: Percent(Decimal::from(10)),
            max_discount_by_segment: BTreeMap::from([(
                Segment::new("smb"),
                Percent(Decimal::from(15)),
            )]),
        }
    }

    /// Prices `lines` of `revision` with `discount` percent off, valid from
    /// `now` for the book's validity.
    ///
    /// # Errors
    /// [`PricingError`] for an unknown offering, a bad discount or no lines.
    pub fn price(
        &self,
        revision: u32,
        lines: &[QuoteLine],
        discount: Decimal,
        now: Timestamp,
    ) -> Result<PriceResult, PricingError> {
        if lines.is_empty() {
            return Err(PricingError::NoLines);
        }
        if discount.is_sign_negative() || discount > Decimal::from(100) {
            return Err(PricingError::BadDiscount);
        }
        let money = |amount: Decimal| Money::new(amount.round_dp(2), self.currency.clone());
        let mut hasher = Sha256::new();
        hasher.update(self.version.as_bytes());
        hasher.update(revision.to_be_bytes());
        hasher.update(discount.to_string().as_bytes());
        let mut priced = Vec::with_capacity(lines.len());
        let (mut one_time, mut monthly) = (Decimal::ZERO, Decimal::ZERO);
        for line in lines {
            let (unit_once, unit_monthly) = self
                .offerings
                .get(line.offering_id.as_str())
                .copied()
                .ok_or_else(|| PricingError::UnknownOffering(line.offering_id.to_string()))?;
            let quantity = Decimal::from(line.quantity);
            one_time += unit_once * quantity;
            monthly += unit_monthly * quantity;
            for part in [
                line.line_id.as_str(),
                line.offering_id.as_str(),
                &line.offering_version.to_string(),
                &line.quantity.to_string(),
                &line.term_months.to_string(),
            ] {
                hasher.update(part.as_bytes());
                hasher.update([0]);
            }
            priced.push(LinePrice {
                line_id: line.line_id.clone(),
                components: vec![
                    PriceComponent {
                        charge_code: format!("INSTALL-{}", line.offering_id),
                        kind: ChargeKind::OneTime,
                        amount: money(unit_once * quantity),
                    },
                    PriceComponent {
                        charge_code: format!("MRC-{}", line.offering_id),
                        kind: ChargeKind::RecurringMonthly,
                        amount: money(unit_monthly * quantity),
                    },
                ],
            });
        }
        let factor = Decimal::ONE - discount / Decimal::from(100);
        let discount_amount = monthly - monthly * factor;
        Ok(PriceResult {
            revision,
            lines: priced,
            totals: PriceTotals {
                one_time: money(one_time),
                recurring_monthly: money(monthly * factor),
            },
            discount: Discount {
                percent: Percent(discount),
                amount: money(discount_amount),
            },
            valid_from: now,
            valid_until: now.plus_millis(self.validity_ms),
            input_hash: hex::encode(hasher.finalize()),
            policy_version: self.version.clone(),
            price_book: self.version.clone(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use domain::testing::fixtures::line;

    #[test]
    fn a_price_is_deterministic_and_covers_every_line() {
        let book = PriceBook::from_config(&PriceBookConfig::default()).unwrap();
        let lines = [line("l1"), line("l2")];
        let a = book.price(1, &lines, Decimal::from(5), Timestamp(1_000));
        let b = book.price(1, &lines, Decimal::from(5), Timestamp(1_000));
        assert_eq!(a, b);
        let price = a.ok();
        assert_eq!(price.as_ref().map(|p| p.lines.len()), Some(2));
        assert_eq!(
            price.map(|p| p.totals.one_time.amount),
            Some(Decimal::from(198))
        );
    }

    #[test]
    fn one_strict_decimal_grammar_for_every_decimal_input() {
        for (text, value) in [
            ("0", "0"),
            ("5", "5"),
            ("12.5", "12.5"),
            ("100", "100"),
            ("99.9999", "99.9999"),
            ("0.05", "0.05"),
            ("499.00", "499.00"),
        ] {
            assert_eq!(
                parse_decimal(text),
                Ok(Decimal::from_str_exact(value).unwrap()),
                "{text}"
            );
        }
        for text in [
            "",
            "1_0",
            "1e2",
            "+5",
            "-0",
            "-5",
            "05",
            "00",
            ".5",
            "5.",
            "5.12345",
            " 5",
            "5 ",
            "1,5",
            "0x10",
            "NaN",
            "inf",
            "1.2.3",
            "٥",
            "1234567890123",
        ] {
            assert_eq!(
                parse_decimal(text),
                Err(DecimalError::Malformed),
                "{text:?}"
            );
        }
        assert_eq!(parse_percent("100"), Ok(Decimal::ONE_HUNDRED));
        assert_eq!(
            parse_percent("100.0001"),
            Err(DecimalError::TooLarge(Decimal::ONE_HUNDRED))
        );
        assert_eq!(parse_percent("1e2"), Err(DecimalError::Malformed));
    }

    #[test]
    fn unknown_offerings_and_bad_discounts_are_refused() {
        let book = PriceBook::from_config(&PriceBookConfig {
            offerings: BTreeMap::new(),
            ..PriceBookConfig::default()
        })
        .unwrap();
        assert_eq!(
            book.price(1, &[line("l1")], Decimal::ZERO, Timestamp(0)),
            Err(PricingError::UnknownOffering("fiber-1g".to_owned()))
        );
        let book = PriceBook::from_config(&PriceBookConfig::default()).unwrap();
        assert_eq!(
            book.price(1, &[line("l1")], Decimal::from(101), Timestamp(0)),
            Err(PricingError::BadDiscount)
        );
        assert_eq!(
            book.price(1, &[], Decimal::ZERO, Timestamp(0)),
            Err(PricingError::NoLines)
        );
    }
}
