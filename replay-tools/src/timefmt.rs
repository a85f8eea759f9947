//! Times on the command line and in output: Unix milliseconds or RFC 3339.

use std::time::{Duration, UNIX_EPOCH};

use crate::error::ReplayError;

/// Parses a time given as Unix milliseconds (`1700000000000`), an RFC 3339
/// instant (`2023-11-14T22:13:20Z`, `2023-11-14T22:13:20.5Z`) or a day
/// (`2023-11-14`, meaning its midnight UTC), into Unix milliseconds.
pub fn parse_time(text: &str) -> Result<i64, ReplayError> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| ReplayError::Usage(format!("time {text} is out of range")));
    }
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
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
        .map_err(|_| ReplayError::Usage(format!("time {text} is out of range")))
}

/// Formats Unix milliseconds as RFC 3339 with milliseconds, UTC
/// (`1970-01-01T00:00:00.000Z` for values before the epoch).
pub fn format_ms(ms: i64) -> String {
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
    fn millis_format_as_rfc3339_and_days() {
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(day_of_ms(1_700_000_000_123), "2023-11-14");
    }
}
