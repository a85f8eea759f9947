//! The API's scalars and value objects: `DateTime` (RFC 3339 instants),
//! `Decimal` (exact decimal text) and `Money { amount, currency }`.
//!
//! The domain keeps instants as Unix milliseconds and amounts as exact
//! decimals; these types are how the schema shows them, so a UI can
//! generate types and format them without guessing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use domain::ids::Timestamp;

/// An instant, shown as RFC 3339 in UTC with milliseconds
/// (`2026-11-30T10:34:01.123Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime(pub Timestamp);

impl DateTime {
    /// The instant `ms` milliseconds after the Unix epoch.
    pub fn from_ms(ms: i64) -> Self {
        Self(Timestamp(ms))
    }

    /// Milliseconds since the Unix epoch.
    pub fn ms(self) -> i64 {
        self.0 .0
    }

    /// The RFC 3339 text of the instant. RFC 3339 has four-digit years:
    /// instants before the epoch show as the epoch and instants past
    /// 9999-12-31T23:59:59.999Z as that instant (neither is recorded by
    /// this platform's own rules, but a log may hold one written under an
    /// older configuration, and reading it must not fail).
    pub fn to_rfc3339(self) -> String {
        let ms = u64::try_from(self.ms()).unwrap_or(0).min(LAST_RFC3339_MS);
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    }
}

impl From<Timestamp> for DateTime {
    fn from(at: Timestamp) -> Self {
        Self(at)
    }
}

/// 9999-12-31T23:59:59.999Z in milliseconds since the epoch: the last
/// instant RFC 3339 can write.
pub const LAST_RFC3339_MS: u64 = 253_402_300_799_999;

/// `text`'s UTC offset in seconds east, and `text` with `Z` in its place,
/// when it ends with one (`+14:00`, `-05:30`); RFC 3339 allows any.
fn utc_offset(text: &str) -> Option<(i64, String)> {
    let split = text.len().checked_sub(6)?;
    let (base, offset) = (text.get(..split)?, text.get(split..)?);
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset.get(1..)?.split_once(':')?;
    let digits = |t: &str| (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit())).then_some(());
    digits(hours)?;
    digits(minutes)?;
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23
        || minutes > 59
        || !base.contains('T')
        || !base.ends_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    Some((sign * (hours * 3_600 + minutes * 60), format!("{base}Z")))
}

/// Whether `text` is `YYYY-MM-DD`, `T` or a space, `HH:MM:SS`, an optional
/// fraction of one or more digits, and `Z`: the shape of an RFC 3339
/// date-time in UTC (its offset already taken off), nothing before or
/// after it (a second offset, `ZZ` and `.Z` were read as if valid).
fn rfc3339_shape(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let fixed = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !fixed || b.last() != Some(&b'Z') {
        return false;
    }
    match &b[19..b.len() - 1] {
        [] => true,
        [b'.', fraction @ ..] => !fraction.is_empty() && fraction.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// RFC 3339 date-time, e.g. `2026-11-30T10:34:01.123Z`. An input with an
/// offset (`2026-11-30T11:34:01+01:00`) is the same instant; answers are
/// always in UTC.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        // RFC 3339 allows a lower-case `t` and `z`.
        let text = text.to_ascii_uppercase();
        let (offset_s, utc) = utc_offset(&text).unwrap_or((0, text));
        if !rfc3339_shape(&utc) {
            let basic_offset = utc.len() > 5
                && utc.get(utc.len() - 5..).is_some_and(|o| {
                    o.starts_with(['+', '-']) && o[1..].bytes().all(|b| b.is_ascii_digit())
                });
            return Err(InputValueError::custom(if basic_offset {
                "an RFC 3339 offset has a colon: `+01:00`, not `+0100`"
            } else if utc.ends_with(|c: char| c.is_ascii_digit()) {
                // Without an offset the instant is unknown: a parser would
                // read it as UTC, which the client's clock may not be.
                "an RFC 3339 date-time ends with its UTC offset: `Z` or e.g. `+01:00`"
            } else {
                "not an RFC 3339 date-time (e.g. `2026-11-30T10:34:01.123Z`)"
            }));
        }
        // The last day of 1969 behind UTC may be an instant of 1970
        // (`1969-12-31T23:59:59-01:00`), but the parser knows no year
        // before 1970: read it a day later and take the day back.
        let (utc, day_back_ms) = match utc.strip_prefix("1969-12-31T") {
            Some(time) if offset_s < 0 => (format!("1970-01-01T{time}"), 86_400_000),
            _ => (utc, 0),
        };
        // The parser knows no year before 1970 and calls one "out of
        // range": say what is out of range.
        if utc
            .get(..4)
            .and_then(|year| year.parse::<u16>().ok())
            .is_some_and(|year| year < 1970)
            && utc.get(4..5) == Some("-")
        {
            return Err(InputValueError::custom(
                "before 1970-01-01T00:00:00Z, the earliest time the platform records",
            ));
        }
        let at: SystemTime = humantime::parse_rfc3339_weak(&utc)
            .map_err(|e| InputValueError::custom(format!("not an RFC 3339 date-time: {e}")))?;
        let ms = at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| InputValueError::custom("before 1970-01-01T00:00:00Z"))?
            .as_millis();
        i64::try_from(ms)
            .ok()
            .and_then(|ms| ms.checked_sub(offset_s * 1_000))
            .and_then(|ms| ms.checked_sub(day_back_ms))
            .filter(|ms| (0..=LAST_RFC3339_MS as i64).contains(ms))
            .map(Self::from_ms)
            .ok_or_else(|| InputValueError::custom("outside 1970 to 9999 in UTC"))
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_rfc3339())
    }
}

/// An exact decimal number, as text (`"1234.50"`): never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal(pub rust_decimal::Decimal);

/// An exact decimal number as text, e.g. `"1234.50"`; its scale is kept.
#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        text.parse::<rust_decimal::Decimal>()
            .map(Self)
            .map_err(|e| InputValueError::custom(format!("not a decimal: {e}")))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// An amount of money.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// The exact amount.
    pub amount: Decimal,
    /// The ISO 4217 currency code, e.g. `EUR`.
    pub currency: String,
}

/// Decimal places every amount shows at least (the currencies' minor
/// unit): `0.00`, `49.90`; an amount more precise keeps its places.
const MONEY_PLACES: u32 = 2;

impl From<&domain::money::Money> for Money {
    fn from(money: &domain::money::Money) -> Self {
        let mut amount = money.amount;
        if amount.scale() < MONEY_PLACES {
            amount.rescale(MONEY_PLACES);
        }
        Self {
            amount: Decimal(amount),
            currency: money.currency.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every amount shows the currency's two places, whatever scale the
    /// arithmetic left (a 100 % discount priced `0`, beside `49.90`).
    #[test]
    #[allow(clippy::unwrap_used)]
    fn amounts_show_at_least_two_places_and_keep_more() {
        let shown = |text: &str| {
            let amount: rust_decimal::Decimal = text.parse().unwrap();
            let money = domain::money::Money {
                amount,
                currency: domain::money::Currency::new("EUR").unwrap(),
            };
            Money::from(&money).amount.0.to_string()
        };
        assert_eq!(shown("0"), "0.00");
        assert_eq!(shown("49.9"), "49.90");
        assert_eq!(shown("120"), "120.00");
        assert_eq!(shown("1.2345"), "1.2345");
    }

    #[test]
    fn instants_show_as_rfc3339_and_parse_back() {
        let at = DateTime::from_ms(1_764_498_841_123);
        let text = at.to_rfc3339();
        assert_eq!(text, "2025-11-30T10:34:01.123Z");
        assert_eq!(DateTime::parse(Value::String(text)).ok(), Some(at));
        assert!(DateTime::parse(Value::String("yesterday".into())).is_err());
        // The same instant with an offset, or in lower case (RFC 3339
        // allows both; a probe had `+14:00` refused as "not RFC 3339").
        for same in [
            "2025-11-30T11:34:01.123+01:00",
            "2025-11-29T20:04:01.123-14:30",
            "2025-11-30t10:34:01.123z",
            "2025-11-30T10:34:01.123+00:00",
        ] {
            assert_eq!(
                DateTime::parse(Value::String(same.into())).ok(),
                Some(at),
                "{same}"
            );
        }
        for bad in [
            "2025-11-30T10:34:01+24:00",
            "2025-11-30T10:34:01+01:60",
            "2025-11-30T10:34:01+1:00",
            "1970-01-01T00:00:00+01:00",
            // No offset: which instant is meant is unknown.
            "2025-11-30T10:34:01.123",
            "2025-11-30T10:34:01",
            "2025-11-30 10:34:01",
            // A second offset, a doubled `Z`, an empty fraction (a
            // re-probe had them read as if valid), a basic-format offset,
            // a UTC instant past 9999.
            "2025-11-30T10:34:01Z+01:00",
            "2025-11-30T10:34:01ZZ",
            "2025-11-30T10:34:01.Z",
            "2025-11-30T10:34:01+0100",
            "9999-12-31T23:59:59-01:00",
        ] {
            assert!(DateTime::parse(Value::String(bad.into())).is_err(), "{bad}");
        }
        assert!(DateTime::parse(Value::Number(5.into())).is_err());
        // A year before 1970 is named as such, not as "not RFC 3339".
        for early in ["1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z"] {
            let error = DateTime::parse(Value::String(early.into()))
                .err()
                .map(|e| e.into_server_error(async_graphql::Pos::default()).message)
                .unwrap_or_default();
            assert!(error.contains("before 1970"), "{early}: {error}");
        }
        // The last day of 1969 behind UTC is of 1970 once in UTC (a probe
        // had it refused as before 1970); earlier on that day it is not.
        assert_eq!(
            DateTime::parse(Value::String("1969-12-31T23:59:59.250-01:00".into())).ok(),
            Some(DateTime::from_ms(3_599_250))
        );
        assert_eq!(
            DateTime::parse(Value::String("1969-12-31T20:00:00-05:00".into())).ok(),
            Some(DateTime::from_ms(3_600_000))
        );
        for still_early in ["1969-12-31T22:59:59-01:00", "1969-12-31T23:59:59+01:00"] {
            assert!(
                DateTime::parse(Value::String(still_early.into())).is_err(),
                "{still_early}"
            );
        }
    }

    #[test]
    fn instants_past_year_9999_show_as_its_last_millisecond_not_a_panic() {
        for ms in [LAST_RFC3339_MS as i64 + 1, 2_209_000_000_000_000, i64::MAX] {
            assert_eq!(
                DateTime::from_ms(ms).to_rfc3339(),
                "9999-12-31T23:59:59.999Z"
            );
        }
        assert_eq!(
            DateTime::from_ms(-5).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn decimals_keep_their_scale_and_refuse_floats() {
        let d = Decimal::parse(Value::String("1234.50".into())).expect("decimal");
        assert_eq!(d.to_value(), Value::String("1234.50".into()));
        assert!(Decimal::parse(Value::Number(
            serde_json::Number::from_f64(1.5).map_or(1.into(), Into::into)
        ))
        .is_err());
    }
}
