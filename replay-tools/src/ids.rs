//! The ids an auditor types on the command line: checked before anything
//! is read, so an id no event can carry is a usage error (exit 2) rather
//! than "not found", and shown escaped and cut short in every message, so
//! an argument's escape sequences or U+202E never reach the terminal.

use crate::error::ReplayError;

/// Most characters of an argument a message repeats.
const SHOWN_CHARS: usize = 80;

/// `value` as a message shows it: invisible characters as escapes
/// ([`domain::text::escaped`]), quoted, and cut after [`SHOWN_CHARS`]
/// characters with `…`.
pub fn shown(value: &str) -> String {
    let escaped = domain::text::escaped(value);
    match escaped.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("\"{}…\"", &escaped[..cut]),
        None => format!("\"{escaped}\""),
    }
}

/// Refuses a stream id no event can carry: a known kind's prefix
/// (`quote-`, `order-`, `handoff-`, `catalog-`) and an id of the
/// platform's one grammar ([`domain::ids::validate_id`]). `what` names
/// the argument (`--stream`, `STREAM`).
///
/// # Errors
/// [`ReplayError::Usage`] saying what is wrong.
pub fn check_stream(what: &str, stream: &str) -> Result<(), ReplayError> {
    let refused = |why: String| {
        ReplayError::Usage(format!(
            "{what} {} is not a stream id (quote-, order-, handoff- or catalog- and an id): {why}",
            shown(stream)
        ))
    };
    let (_, id) = domain::ids::StreamKind::split(stream).map_err(|e| refused(e.to_string()))?;
    domain::ids::validate_id(id).map_err(|e| refused(e.to_string()))
}

/// Refuses a correlation id no event can carry: empty, longer than a
/// field of the log ([`eventlog::record::MAX_FIELD_LEN`] bytes), or with a
/// control or invisible character ([`domain::text::is_invisible`]).
///
/// # Errors
/// [`ReplayError::Usage`] saying what is wrong.
pub fn check_correlation(what: &str, correlation: &str) -> Result<(), ReplayError> {
    let why = if correlation.is_empty() {
        "it is empty".to_owned()
    } else if correlation.len() > eventlog::record::MAX_FIELD_LEN {
        format!(
            "it is longer than {} bytes, the most the log holds",
            eventlog::record::MAX_FIELD_LEN
        )
    } else if correlation.chars().any(domain::text::is_invisible) {
        "it holds a control or invisible character".to_owned()
    } else {
        return Ok(());
    };
    Err(ReplayError::Usage(format!(
        "{what} {} is not a correlation id: {why}",
        shown(correlation)
    )))
}

/// Refuses an event type no event can have
/// ([`domain::events::check_event_type`]), naming the one meant when only
/// its case differs, else listing them.
///
/// # Errors
/// [`ReplayError::Usage`] saying what is wrong.
pub fn check_event_type(what: &str, event_type: &str) -> Result<(), ReplayError> {
    domain::events::check_event_type(event_type)
        .map_err(|e| ReplayError::Usage(format!("{what} {} is {e}", shown(event_type))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_or_invisible_argument_is_shown_escaped_and_cut() {
        assert_eq!(shown("q-1"), "\"q-1\"");
        assert_eq!(shown("a\u{202e}b"), "\"a\\u{202e}b\"");
        let long = shown(&"x".repeat(10_000));
        assert!(long.ends_with("…\"") && long.chars().count() == SHOWN_CHARS + 3);
    }
}
