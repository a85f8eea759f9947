//! The configured pricing, parsed once at start-up into the domain's
//! types (the price book, the approval policy), and the one decimal
//! grammar every decimal the platform reads goes through. Pricing itself
//! is a rule of the quote: `domain::quote::pricing`.

use std::collections::BTreeMap;

use domain::ids::Segment;
use domain::money::{Currency, Percent};
use domain::quote::{ApprovalPolicy, OfferingPrice, PriceBook};
use rust_decimal::Decimal;

use crate::config::{ApprovalConfig, ConfigError, PriceBookConfig};

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

/// The configured price book, parsed once at start-up into the domain's
/// [`PriceBook`] (pricing is a rule of the quote: `domain::quote::pricing`).
///
/// # Errors
/// The key of a bad currency or amount.
pub fn price_book(config: &PriceBookConfig) -> Result<PriceBook, ConfigError> {
    let currency = Currency::new(&config.currency).map_err(|_| ConfigError::Invalid {
        key: "price_book.currency".to_owned(),
        problem: "expected three upper-case letters".to_owned(),
    })?;
    if let Err(problem) = domain::ids::validate_id(&config.version) {
        return Err(ConfigError::Invalid {
            key: "price_book.version".to_owned(),
            problem: format!(
                "a price book version {problem} (the id grammar: it is stamped on every price)"
            ),
        });
    }
    let mut offerings = BTreeMap::new();
    for (id, price) in &config.offerings {
        if let Err(problem) = domain::ids::validate_id(id) {
            return Err(ConfigError::Invalid {
                key: format!("price_book.offerings.{id}"),
                problem: format!(
                    "an offering id {problem} (the id grammar: `addQuoteLine` takes no other)"
                ),
            });
        }
        let parse = |field: &str, text: &str| {
            parse_decimal(text).map_err(|e| ConfigError::Invalid {
                key: format!("price_book.offerings.{id}.{field}"),
                problem: e.to_string(),
            })
        };
        offerings.insert(
            id.clone(),
            OfferingPrice {
                one_time: parse("one_time", &price.one_time)?,
                monthly: parse("monthly", &price.monthly)?,
            },
        );
    }
    Ok(PriceBook {
        version: config.version.clone(),
        currency,
        validity_ms: u64::from(config.validity_hours) * 3_600_000,
        offerings,
    })
}

/// The configured approval policy, versioned after the price book it
/// applies with (`approval-<book version>`).
///
/// # Errors
/// The key of a threshold that is not a percent of the decimal grammar.
pub fn approval_policy(
    config: &ApprovalConfig,
    book_version: &str,
) -> Result<ApprovalPolicy, ConfigError> {
    let percent = |key: String, text: &str| {
        parse_percent(text)
            .map(Percent)
            .map_err(|e| ConfigError::Invalid {
                key,
                problem: format!("`{text}` {e}"),
            })
    };
    let mut by_segment = BTreeMap::new();
    for (segment, text) in &config.segments {
        if segment.trim().is_empty() || segment.chars().any(domain::text::is_invisible) {
            return Err(ConfigError::invalid(
                format!("approval.segments.{segment}"),
                "a segment is named as CRM names it: not blank, no control or invisible character",
            ));
        }
        by_segment.insert(
            Segment::new(segment.clone()),
            percent(format!("approval.segments.{segment}"), text)?,
        );
    }
    Ok(ApprovalPolicy {
        policy_version: format!("approval-{book_version}"),
        default_max_discount: percent(
            "approval.default_max_discount".to_owned(),
            &config.default_max_discount,
        )?,
        max_discount_by_segment: by_segment,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_the_documented_policy() {
        let book = price_book(&PriceBookConfig::default()).unwrap();
        assert_eq!(book.offerings.len(), 3);
        let policy = approval_policy(&ApprovalConfig::default(), &book.version).unwrap();
        assert_eq!(policy.default_max_discount, Percent(Decimal::from(10)));
        assert_eq!(
            policy.max_discount_by_segment.get(&Segment::new("smb")),
            Some(&Percent(Decimal::from(15)))
        );
        let bad = ApprovalConfig {
            default_max_discount: "101".to_owned(),
            ..ApprovalConfig::default()
        };
        assert!(matches!(
            approval_policy(&bad, "v"),
            Err(ConfigError::Invalid { key, .. }) if key == "approval.default_max_discount"
        ));
    }

    /// A segment or offering key with a line break or U+202E is shown
    /// escaped (it was printed raw: a forged log line, a reversed key); a
    /// blank segment, which no customer has, is refused.
    #[test]
    fn keys_of_segments_and_offerings_are_shown_escaped_and_a_blank_segment_is_refused() {
        let mut segments = ApprovalConfig::default();
        segments.segments.insert(
            "a\noms-server: listening\u{202e}".to_owned(),
            "x".to_owned(),
        );
        let mut offerings = PriceBookConfig::default();
        let mut price = offerings.offerings.values().next().cloned().unwrap();
        price.monthly = "x".to_owned();
        offerings.offerings.insert("o\u{202e}n".to_owned(), price);
        for shown in [
            approval_policy(&segments, "v").err().map(|e| e.to_string()),
            price_book(&offerings).err().map(|e| e.to_string()),
        ] {
            let shown = shown.unwrap_or_default();
            assert!(shown.contains("\\u{202e}"), "{shown}");
            assert!(
                !shown.contains('\u{202e}') && !shown.contains('\n'),
                "{shown}"
            );
        }
        for blank in ["", " ", "\u{200b}"] {
            let mut config = ApprovalConfig::default();
            config.segments.insert(blank.to_owned(), "5".to_owned());
            assert!(approval_policy(&config, "v").is_err(), "{blank:?}");
        }
    }

    #[test]
    fn a_price_book_version_or_offering_id_outside_the_id_grammar_is_refused() {
        let key_of = |config: &PriceBookConfig| match price_book(config) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        let blank = PriceBookConfig {
            version: String::new(),
            ..PriceBookConfig::default()
        };
        assert_eq!(key_of(&blank), "price_book.version");
        let mut spaced = PriceBookConfig::default();
        let price = spaced.offerings.values().next().cloned().unwrap();
        spaced.offerings.insert("a b".to_owned(), price);
        assert_eq!(key_of(&spaced), "price_book.offerings.a b");
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
}
