//! Money and percentages as exact decimals, never floats.
//!
//! Amounts are `rust_decimal::Decimal` paired with an ISO-4217-style currency code.
//! On the wire a decimal is its canonical text (`"1234.50"`): the text keeps the
//! scale, and it decodes with formats such as bincode that cannot ask the encoded
//! data what type it holds.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A three-letter upper-case currency code such as `EUR` or `IDR`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

/// Why a currency code was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("currency must be three upper-case ascii letters, got {0:?}")]
pub struct InvalidCurrency(pub String);

impl Currency {
    /// Accepts exactly three upper-case ASCII letters.
    ///
    /// # Errors
    /// Returns [`InvalidCurrency`] for anything else.
    pub fn new(code: &str) -> Result<Self, InvalidCurrency> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code.to_owned()))
        } else {
            Err(InvalidCurrency(code.to_owned()))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = InvalidCurrency;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::new(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An exact amount in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// The amount, exact; its scale is preserved through encoding.
    #[serde(with = "decimal_text")]
    pub amount: Decimal,
    /// The currency the amount is in.
    pub currency: Currency,
}

impl Money {
    /// An amount in a currency.
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// A percentage such as a discount (`12.5` means 12.5 %), exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Percent(#[serde(with = "decimal_text")] pub Decimal);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// Serde for `Decimal` as canonical text, readable by non-self-describing formats.
mod decimal_text {
    use rust_decimal::Decimal;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use std::str::FromStr;

    pub(super) fn serialize<S: Serializer>(
        value: &Decimal,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Decimal, D::Error> {
        let text = String::deserialize(deserializer)?;
        Decimal::from_str(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_currency_is_three_upper_case_letters() {
        assert!(Currency::new("EUR").is_ok());
        assert_eq!(Currency::new("eur"), Err(InvalidCurrency("eur".to_owned())));
        assert_eq!(
            Currency::new("EURO"),
            Err(InvalidCurrency("EURO".to_owned()))
        );
    }

    #[test]
    fn money_displays_amount_with_its_scale_and_currency() {
        let eur = Currency::new("EUR").expect("valid code");
        assert_eq!(
            Money::new(Decimal::new(123_450, 2), eur).to_string(),
            "1234.50 EUR"
        );
    }
}
