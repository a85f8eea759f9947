//! Times on the command line and in output: Unix milliseconds or RFC 3339.

use std::time::{Duration, UNIX_EPOCH};

use crate::error::ReplayError;

/// The latest instant RFC 3339 writes (`9999-12-31T23:59:59.999Z`), in
/// Unix milliseconds.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// Parses a time given as Unix milliseconds (`1700000000000`), an RFC 3339
/// instant (`2023-11-14T22:13:20Z`, `2023-11-14T22:13:20.5Z`,
/// `2023-11-14T23:13:20+01:00`) or a day (`2023-11-14`, meaning its
/// midnight UTC), into Unix milliseconds, from 1970 to [`MAX_MS`].
pub fn parse_time(text: &str) -> Result<i64, ReplayError> {
    let ms = parse_unbounded(text.trim())?;
    if ms > MAX_MS {
        return Err(ReplayError::Usage(format!(
            "time {} is after 9999-12-31T23:59:59.999Z, the latest RFC 3339 instant",
            text.trim()
        )));
    }
    Ok(ms)
}

/// `text`'s offset from UTC in minutes and the text before it, when it
/// ends with one (`+01:00`, `-05:30`).
fn split_offset(text: &str) -> Option<(&str, i64)> {
    let at = text.len().checked_sub(6)?;
    let (instant, offset) = (text.get(..at)?, text.get(at..)?.as_bytes());
    let sign = match offset[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |i: usize| {
        offset[i]
            .is_ascii_digit()
            .then(|| i64::from(offset[i] - b'0'))
    };
    if offset[3] != b':' || !instant.contains('T') {
        return None;
    }
    let hours = digit(1)? * 10 + digit(2)?;
    let minutes = digit(4)? * 10 + digit(5)?;
    (hours < 24 && minutes < 60).then_some((instant, sign * (hours * 60 + minutes)))
}

fn parse_unbounded(text: &str) -> Result<i64, ReplayError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| ReplayError::Usage(format!("time {text} is out of range")));
    }
    let (full, offset_minutes) = if text.len() == 10 {
        (format!("{text}T00:00:00Z"), 0)
    } else if let Some((instant, minutes)) = split_offset(text) {
        (format!("{instant}Z"), minutes)
    } else {
        (text.to_owned(), 0)
    };
    let at = humantime::parse_rfc3339_weak(&full).map_err(|e| {
        ReplayError::Usage(format!(
            "time {text:?} is not Unix milliseconds (1700000000000), an RFC 3339 instant \
             (2023-11-14T22:13:20Z) or a day (2023-11-14): {e}"
        ))
    })?;
    let since = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| ReplayError::Usage(format!("time {text} is before 1970")))?;
    i64::try_from(since.as_millis())
        .ok()
        .and_then(|ms| ms.checked_sub(offset_minutes * 60_000))
        .filter(|ms| *ms >= 0)
        .ok_or_else(|| ReplayError::Usage(format!("time {text} is out of range")))
}

/// Formats Unix milliseconds as RFC 3339 with milliseconds, UTC
/// (`1970-01-01T00:00:00.000Z` for values before the epoch, and
/// `9999-12-31T23:59:59.999Z` for values after [`MAX_MS`], which RFC 3339
/// cannot write).
pub fn format_ms(ms: i64) -> String {
    let ms = ms.clamp(0, MAX_MS);
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// The UTC day (`YYYY-MM-DD`) of Unix milliseconds.
pub fn day_of_ms(ms: i64) -> String {
    let mut text = format_ms(ms);
    text.truncate(10);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_from_millis_rfc3339_and_days() {
        assert_eq!(parse_time("1700000000000").ok(), Some(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_time("2023-11-14").ok(), Some(1_699_920_000_000));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn an_offset_is_taken_off_and_times_past_year_9999_are_refused_not_panicked_on() {
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00").ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T17:13:20.5-05:00").ok(),
            Some(1_700_000_000_500)
        );
        assert!(parse_time("2023-11-14T23:13:20+25:00").is_err());
        assert_eq!(parse_time("253402300799999").ok(), Some(MAX_MS));
        for late in [
            "253402300800000",
            "9223372036854775807",
            "99999999999999999999",
        ] {
            assert!(
                matches!(parse_time(late), Err(ReplayError::Usage(_))),
                "{late}"
            );
        }
        assert_eq!(format_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn millis_format_as_rfc3339_and_days() {
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(day_of_ms(1_700_000_000_123), "2023-11-14");
    }
}
