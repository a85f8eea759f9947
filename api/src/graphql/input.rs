//! Validation of client input at the edge: one id grammar, one decimal
//! grammar, and a documented limit for every free-text argument. Every
//! refusal is `VALIDATION` naming the argument, so no client input can
//! reach the log (whose limits would answer `INTERNAL`) unchecked.
//!
//! | argument | rule |
//! | --- | --- |
//! | every id (`commandId`, `customerId`, `quoteId`, `orderId`, `lineId`, `offeringId`, `billingAccount`, `artifactId`, query ids, `streamId`) | [`domain::ids::validate_id`] |
//! | `discountPercent` | [`crate::pricing::parse_percent`] |
//! | `reason`, `note` | at most [`MAX_REASON_BYTES`] |
//! | `signer`, `providerReference`, `reference`, `templateVersion`, `catalogVersion`, `artifactHash`, option values | at most [`MAX_LABEL_BYTES`] |
//! | option names | at most [`MAX_OPTION_NAME_BYTES`] |
//! | `correlationId` (a lookup key, `<tenant>:<commandId>`) | at most [`MAX_KEY_BYTES`] |
//! | whole numbers (`quantity`, `termMonths`, `offeringVersion`, `revision`, `expectedVersion`, positions, ages) | [`whole`]: taken as any GraphQL number, then refused outside its range naming the argument (the engine's own refusal of a negative number named none) |
//!
//! Free text may contain any character but control characters (tab, line
//! feed and carriage return are allowed in `reason` and `note`), the invisible ones that
//! change how the rest reads (bidirectional overrides and isolates, the
//! zero-width space, word joiners, a byte-order mark) and noncharacters.
//! Text of only whitespace and invisible joiners or marks is blank.

use super::error::{ApiError, ApiResult};

/// Longest `reason` or `note`, in bytes.
pub const MAX_REASON_BYTES: usize = 2_000;
/// Longest short label (`signer`, `providerReference`, `reference`,
/// `templateVersion`, `catalogVersion`, `artifactHash`, an option value),
/// in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Longest option name, in bytes.
pub const MAX_OPTION_NAME_BYTES: usize = 64;
/// Longest lookup key (`correlationId`), in bytes: the log's text limit.
pub const MAX_KEY_BYTES: usize = 256;

/// `value` within `min..=max`, as the argument's own type. Whole-number
/// arguments are declared `i64`, so a negative or oversized number reaches
/// this check (and its refusal names the argument) instead of failing the
/// engine's parse of an unsigned type with a message that names nothing.
///
/// # Errors
/// `VALIDATION` naming `field` and the range.
pub fn whole<T: TryFrom<i64>>(field: &str, value: i64, min: i64, max: i64) -> ApiResult<T> {
    if (min..=max).contains(&value) {
        if let Ok(v) = T::try_from(value) {
            return Ok(v);
        }
    }
    Err(ApiError::validation(
        field,
        format!("must be {min} to {max}"),
    ))
}

/// An optional whole-number argument of 0 or more (a position, a version,
/// an age).
///
/// # Errors
/// `VALIDATION` naming `field` when negative.
pub fn optional_count(field: &str, value: Option<i64>) -> ApiResult<Option<u64>> {
    value.map(|v| whole(field, v, 0, i64::MAX)).transpose()
}

/// An optional `expectedVersion`: a stream version, 0 (no stream yet) or
/// more.
///
/// # Errors
/// `VALIDATION` naming `expectedVersion` when negative.
pub fn expected_version(value: Option<i64>) -> ApiResult<Option<u64>> {
    optional_count("expectedVersion", value)
}

/// `value` follows the id grammar ([`domain::ids::validate_id`]).
///
/// # Errors
/// `VALIDATION` naming `field` and the violation.
pub fn id(field: &str, value: &str) -> ApiResult<()> {
    domain::ids::validate_id(value).map_err(|problem| {
        ApiError::validation(
            field,
            format!(
                "an id {problem} (1-128 of A-Z a-z 0-9 . _ ~ -, starting with a letter or digit)"
            ),
        )
    })
}

/// An optional id: [`id`] when present.
///
/// # Errors
/// As [`id`].
pub fn optional_id(field: &str, value: Option<&str>) -> ApiResult<()> {
    value.map_or(Ok(()), |value| id(field, value))
}

/// A one-line label of at most `max` bytes without control characters.
///
/// # Errors
/// `VALIDATION` naming `field`.
pub fn label(field: &str, value: &str, max: usize) -> ApiResult<()> {
    text(field, value, max, false)
}

/// A [`label`] that is not blank (not empty, not only whitespace): a key
/// the caller looks something up by (a correlation id) or evidence the
/// platform records (a signer, an artifact hash, a template version).
///
/// # Errors
/// `VALIDATION` naming `field`.
pub fn required_label(field: &str, value: &str, max: usize) -> ApiResult<()> {
    label(field, value, max)?;
    not_blank(field, value)
}

/// A free text the platform records (`reason`, `note`): not blank, at
/// most [`MAX_REASON_BYTES`] bytes; tab and newline allowed, other control
/// characters not.
///
/// # Errors
/// `VALIDATION` naming `field`.
pub fn reason(field: &str, value: &str) -> ApiResult<()> {
    text(field, value, MAX_REASON_BYTES, true)?;
    not_blank(field, value)
}

fn not_blank(field: &str, value: &str) -> ApiResult<()> {
    if value.chars().all(domain::text::shows_nothing) {
        return Err(ApiError::validation(field, "must not be blank"));
    }
    Ok(())
}

/// A name something is matched by (an option of a line, a catalog
/// version): a [`label`] of at most `max` bytes that is not blank and
/// neither starts nor ends with a character that shows nothing (an
/// accent or a variation selector may end it: it marks the character
/// before), so two names that look alike are the same name; names are
/// compared by [`name_key`].
///
/// # Errors
/// `VALIDATION` naming `field`.
pub fn name(field: &str, value: &str, max: usize) -> ApiResult<()> {
    label(field, value, max)?;
    not_blank(field, value)?;
    let padded = |c: Option<char>, at_end: bool| {
        c.is_some_and(|c| {
            domain::text::shows_nothing(c) && !(at_end && domain::text::marks_the_previous(c))
        })
    };
    if padded(value.chars().next(), false) || padded(value.chars().next_back(), true) {
        return Err(ApiError::validation(
            field,
            "must not start or end with white space or an invisible character",
        ));
    }
    Ok(())
}

/// What two [`name`]s are compared by: their canonical composition
/// (Unicode NFC), so `café` typed with `é` and with `e` + U+0301 is one
/// name.
pub fn name_key(value: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    value.nfc().collect()
}

fn text(field: &str, value: &str, max: usize, multiline: bool) -> ApiResult<()> {
    if value.len() > max {
        return Err(ApiError::validation(
            field,
            format!("at most {max} bytes (got {})", value.len()),
        ));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(ApiError::validation(
            field,
            "must not contain control characters",
        ));
    }
    if value.chars().any(domain::text::is_hidden) || domain::text::has_stray_tags(value) {
        return Err(ApiError::validation(
            field,
            "must not contain invisible formatting characters (bidirectional overrides, \
             zero-width spaces, byte-order marks, tag characters outside an emoji flag) \
             or noncharacters",
        ));
    }
    Ok(())
}

/// A percentage of the one decimal grammar ([`crate::pricing::parse_percent`]).
///
/// # Errors
/// `VALIDATION` naming `field`.
pub fn percent(field: &str, value: &str) -> ApiResult<rust_decimal::Decimal> {
    crate::pricing::parse_percent(value)
        .map_err(|problem| ApiError::validation(field, problem.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: ApiResult<()>) -> Option<String> {
        match result {
            Err(ApiError::Validation { field, .. }) => Some(field),
            _ => None,
        }
    }

    /// A name may end with an accent or a variation selector (it marks
    /// the character before: `café` typed decomposed, `❤️`), not start
    /// with one; names that differ only in composition are one name.
    #[test]
    fn a_name_may_end_with_a_mark_and_is_compared_composed() {
        for fine in ["cafe\u{301}", "2026.12\u{301}", "\u{2764}\u{FE0F}", "speed"] {
            assert!(name("line.options.name", fine, 64).is_ok(), "{fine:?}");
        }
        for padded in [
            "\u{301}cafe",
            "speed ",
            " speed",
            "speed\u{200B}",
            "speed\u{034F}",
        ] {
            assert_eq!(
                field_of(name("line.options.name", padded, 64)),
                Some("line.options.name".to_owned()),
                "{padded:?}"
            );
        }
        assert_eq!(name_key("caf\u{e9}x"), name_key("cafe\u{301}x"));
        assert_ne!(name_key("cafe"), name_key("caf\u{e9}"));
    }

    #[test]
    fn invisible_text_is_refused_and_text_of_only_joiners_is_blank() {
        for hostile in [
            "a\u{200B}b",
            "\u{202E}abc",
            "x\u{2066}y",
            "\u{FEFF}v1",
            "\u{10FFFF}",
            "a\u{FDD0}",
            // "hi" in tag characters, which show nothing.
            "ok\u{E0068}\u{E0069}",
        ] {
            assert_eq!(
                field_of(label("catalogVersion", hostile, MAX_LABEL_BYTES)),
                Some("catalogVersion".to_owned()),
                "{hostile:?}"
            );
        }
        assert_eq!(
            field_of(reason("reason", "\u{200D} \u{200C}")),
            Some("reason".to_owned())
        );
        // Joiners and marks inside real text stay.
        assert!(reason("reason", "family \u{1F468}\u{200D}\u{1F469} moved").is_ok());
        assert!(label("signer", "\u{0645}\u{200C}\u{0627}", MAX_LABEL_BYTES).is_ok());
        assert!(label("signer", "Zo\u{00EB} M\u{00FC}ller", MAX_LABEL_BYTES).is_ok());
        // The flag of Scotland is written with tag characters.
        let scotland = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        assert!(reason("reason", &format!("moved to {scotland}")).is_ok());
    }

    #[test]
    fn every_free_text_has_a_limit_and_names_its_field() {
        assert!(reason("reason", &"x".repeat(MAX_REASON_BYTES)).is_ok());
        assert_eq!(
            field_of(reason("reason", &"x".repeat(200_000))),
            Some("reason".to_owned())
        );
        assert!(reason("note", "line one\nline two\tend").is_ok());
        // A client on Windows ends its lines with CR LF.
        assert!(reason("note", "line one\r\nline two\r\n").is_ok());
        assert_eq!(
            field_of(label("signer", "Jane\rCustomer", MAX_LABEL_BYTES)),
            Some("signer".to_owned())
        );
        assert_eq!(field_of(reason("note", "a\u{0}b")), Some("note".to_owned()));
        assert!(label("signer", "Jane Customer", MAX_LABEL_BYTES).is_ok());
        assert_eq!(
            field_of(label("signer", "Jane\nCustomer", MAX_LABEL_BYTES)),
            Some("signer".to_owned())
        );
        assert_eq!(
            field_of(label(
                "signer",
                &"x".repeat(MAX_LABEL_BYTES + 1),
                MAX_LABEL_BYTES
            )),
            Some("signer".to_owned())
        );
    }

    #[test]
    fn ids_use_the_one_grammar() {
        assert!(id("commandId", "c-1").is_ok());
        for bad in ["a:b", "a\u{0}b", "", "../../../admin/purge?confirm=yes"] {
            assert_eq!(
                field_of(id("commandId", bad)),
                Some("commandId".to_owned()),
                "{bad:?}"
            );
        }
    }
}
