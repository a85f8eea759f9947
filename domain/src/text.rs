//! Text that crosses the platform's edges: which characters no free text
//! takes, and how an external system's words are kept as evidence.

/// Longest piece of evidence (a raw code, label or external reference)
/// kept from an external system's answer, in bytes.
pub const MAX_EVIDENCE_BYTES: usize = 256;

/// A code point no free text takes: it is invisible and changes how the
/// text around it reads, breaks or sorts (`U+202E` shows `abc` as `cba`;
/// the line and paragraph separators break a line as a newline does), or
/// it is a deprecated format character, an interlinear annotation mark or
/// a noncharacter. Zero-width joiners and directional marks stay: scripts
/// and bidirectional text need them. Tag characters stay only inside an
/// emoji flag's sequence, which takes more than one character to tell
/// (see [`has_stray_tags`]).
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FDD0}'..='\u{FDEF}'
    ) || (u32::from(c) & 0xFFFE) == 0xFFFE
}

/// A code point that shows nothing on its own: white space, zero-width
/// joiners and directional marks, the soft hyphen, filler characters
/// (Hangul fillers, the blank Braille pattern), variation selectors and
/// combining marks. Text of only these is blank.
pub fn shows_nothing(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200C}'..='\u{200F}'
                | '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FFA0}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{0300}'..='\u{036F}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// A code point an identifier-like text (a credential name, an external
/// system's code or reference) never needs: a control or hidden character,
/// or one that shows nothing other than the plain space and combining
/// marks (which accents need).
pub fn is_invisible(c: char) -> bool {
    c.is_control() || is_hidden(c) || (c != ' ' && !is_accent(c) && shows_nothing(c))
}

/// Whether `text` holds a tag character (`U+E0000` to `U+E007F`) that is
/// not part of an emoji flag's tag sequence: the black flag `U+1F3F4`,
/// one to [`MAX_FLAG_TAGS`] tags of a lower-case letter or digit, then
/// the cancel tag `U+E007F` (as the flag of Scotland is written). Tag
/// characters show nothing, and outside such a sequence they carry text a
/// reader cannot see (each is an ASCII character moved by `U+E0000`).
pub fn has_stray_tags(text: &str) -> bool {
    const FLAG: char = '\u{1F3F4}';
    const CANCEL: char = '\u{E007F}';
    let is_tag = |c: char| ('\u{E0000}'..='\u{E007F}').contains(&c);
    let is_flag_tag = |c: char| {
        ('\u{E0030}'..='\u{E0039}').contains(&c) || ('\u{E0061}'..='\u{E007A}').contains(&c)
    };
    // Tags read since the black flag, or None outside a sequence.
    let mut tags: Option<usize> = None;
    let mut previous = None;
    for c in text.chars() {
        match tags {
            Some(n) if is_flag_tag(c) && n < MAX_FLAG_TAGS => tags = Some(n + 1),
            Some(n) if c == CANCEL && n > 0 => tags = None,
            Some(_) => return true,
            None if is_tag(c) => {
                if previous != Some(FLAG) || !is_flag_tag(c) {
                    return true;
                }
                tags = Some(1);
            }
            None => {}
        }
        previous = Some(c);
    }
    tags.is_some_and(|n| n > 0)
}

/// Most tags an emoji flag's tag sequence takes (a region's code and a
/// subdivision's: `gbsct` for Scotland).
pub const MAX_FLAG_TAGS: usize = 8;

/// A code point that changes how the character before it shows (a
/// combining accent, a variation selector such as the emoji one after
/// `❤`): it shows nothing on its own, yet may end a name.
pub fn marks_the_previous(c: char) -> bool {
    is_accent(c)
        || ('\u{FE00}'..='\u{FE0F}').contains(&c)
        || ('\u{E0100}'..='\u{E01EF}').contains(&c)
}

/// A combining accent (the grapheme joiner U+034F, which shows nothing
/// and joins nothing a reader sees, is not one).
fn is_accent(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c) && c != '\u{034F}'
}

/// `raw` with every invisible character ([`is_invisible`]) written as its
/// escape (`\u{202e}`), for a message that must show a person where such a
/// character is (a configuration key, an operator's own file). Text with
/// none is returned unchanged.
pub fn escaped(raw: &str) -> String {
    if !raw.chars().any(is_invisible) {
        return raw.to_owned();
    }
    raw.chars()
        .map(|c| {
            if is_invisible(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `raw`, from an external system, as evidence a screen, a log line or a
/// fallout page can show: every invisible character ([`is_invisible`])
/// becomes `U+FFFD`, and text over [`MAX_EVIDENCE_BYTES`] is cut at a
/// character boundary and ends with `…`. Text that needs neither is
/// returned unchanged.
pub fn evidence(raw: &str) -> String {
    bounded_evidence(raw, MAX_EVIDENCE_BYTES)
}

/// [`evidence`] within `max` bytes (at least 4: the `…` takes 3).
pub fn bounded_evidence(raw: &str, max: usize) -> String {
    let clean = |c: char| if is_invisible(c) { '\u{FFFD}' } else { c };
    if raw.len() <= max && !raw.chars().any(is_invisible) {
        return raw.to_owned();
    }
    let ellipsis = '…';
    let room = max.saturating_sub(ellipsis.len_utf8());
    let mut out = String::with_capacity(max);
    let mut chars = raw.chars().map(clean).peekable();
    while let Some(c) = chars.next() {
        let last = chars.peek().is_none();
        let limit = if last { max } else { room };
        if out.len() + c.len_utf8() > limit {
            out.push(ellipsis);
            return out;
        }
        out.push(c);
    }
    out
}

/// Most bytes [`parser_message`] keeps.
pub const MAX_PARSER_MESSAGE_BYTES: usize = 240;

/// The words after which a parser quotes a value of the input in
/// backticks (serde's `Unexpected`): the value is left out.
const VALUE_QUOTED_AFTER: [&str; 4] = ["integer", "floating point", "boolean", "character"];

/// The words after which a parser quotes a name the input used (a field,
/// a variant): the name is kept, cut to [`MAX_QUOTED_NAME_CHARS`], since
/// it tells an operator which key of their file is wrong.
const NAME_QUOTED_AFTER: [&str; 2] = ["unknown field", "unknown variant"];

/// Longest name of the input that [`parser_message`] keeps whole.
const MAX_QUOTED_NAME_CHARS: usize = 64;

/// A parser's message (serde's, TOML's) fit for an answer or a log line,
/// whatever the input it failed on: the values of the input it quotes
/// (`invalid type: string "<the value>"`, ``integer `<the value>` ``) are
/// left out, since a value may be a secret or a whole payload; a name the
/// input used (an unknown field) is kept, cut past 64 characters; what the
/// parser expected, which the schema names, is kept. The message is
/// bounded by [`MAX_PARSER_MESSAGE_BYTES`] and shown as
/// [`bounded_evidence`].
pub fn parser_message(message: &str) -> String {
    // A parser's message may run over lines (`invalid table header` then
    // `duplicate key ...`): one line, its parts joined as a sentence, not
    // a line break shown as U+FFFD.
    let joined: String = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    let mut out = String::with_capacity(joined.len().min(1024));
    let mut rest = joined.as_str();
    let after = |rest: &str, at: usize, words: &[&str]| {
        let before = rest[..at].trim_end();
        words.iter().any(|word| before.ends_with(word))
    };
    loop {
        let string = rest.find("string \"");
        let quoted = rest.match_indices('`').map(|(at, _)| at).find(|at| {
            after(rest, *at, &VALUE_QUOTED_AFTER) || after(rest, *at, &NAME_QUOTED_AFTER)
        });
        match (string, quoted) {
            (Some(at), other) if other.is_none_or(|q| at < q) => {
                out.push_str(&rest[..at + "string".len()]);
                rest = after_closing(&rest[at + "string \"".len()..], '"');
            }
            (_, Some(at)) if after(rest, at, &VALUE_QUOTED_AFTER) => {
                out.push_str(rest[..at].trim_end());
                rest = after_closing(&rest[at + 1..], '`');
            }
            (_, Some(at)) => {
                out.push_str(&rest[..=at]);
                let name_and_rest = &rest[at + 1..];
                let end = name_and_rest.find('`').unwrap_or(name_and_rest.len());
                let name = &name_and_rest[..end];
                if name.chars().count() > MAX_QUOTED_NAME_CHARS {
                    out.extend(name.chars().take(MAX_QUOTED_NAME_CHARS / 2));
                    out.push('…');
                } else {
                    out.push_str(name);
                }
                out.push('`');
                rest = name_and_rest.get(end + 1..).unwrap_or("");
            }
            _ => break,
        }
    }
    out.push_str(rest);
    bounded_evidence(&out, MAX_PARSER_MESSAGE_BYTES)
}

/// What follows the first `close` of `text` that no backslash escapes (the
/// end of a quoted value); nothing when it never closes.
fn after_closing(text: &str, close: char) -> &str {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == close => return &text[at + c.len_utf8()..],
            _ => {}
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parser's message keeps what went wrong and where, never the value
    /// it failed on, and stays short whatever the input.
    #[test]
    fn a_parser_message_quotes_no_value_and_is_bounded() {
        assert_eq!(
            parser_message("invalid type: string \"s\\\"x\", expected a sequence"),
            "invalid type: string, expected a sequence"
        );
        // A value holding the words that follow it, and values quoted in
        // backticks (a re-probe).
        assert_eq!(
            parser_message(
                "invalid type: string \"abc\\\", expected TOPSECRET\", expected a sequence"
            ),
            "invalid type: string, expected a sequence"
        );
        assert_eq!(
            parser_message("invalid type: integer `4111111111111111`, expected a string"),
            "invalid type: integer, expected a string"
        );
        let long_name = "B".repeat(5_000);
        let message = parser_message(&format!(
            "unknown field `{long_name}`, expected one of `event_id`, `tenant`"
        ));
        assert!(message.len() <= MAX_PARSER_MESSAGE_BYTES, "{message}");
        assert!(message.starts_with("unknown field `BBBB"), "{message}");
        assert!(
            message.ends_with("…`, expected one of `event_id`, `tenant`"),
            "{message}"
        );
        // A name of the operator's own file is kept: it says which key.
        assert_eq!(
            parser_message("unknown field `roles`, expected one of `name`, `role`"),
            "unknown field `roles`, expected one of `name`, `role`"
        );
        let long = format!("expected value at line 1 column 1 {}", "é".repeat(500));
        let message = parser_message(&long);
        assert!(message.len() <= MAX_PARSER_MESSAGE_BYTES && message.ends_with('…'));
        assert_eq!(
            parser_message("missing field `tenant`"),
            "missing field `tenant`"
        );
        // A message over lines reads as one (a line break was shown as
        // U+FFFD between its parts).
        assert_eq!(
            parser_message("invalid table header\nduplicate key `tenants` in document root\n"),
            "invalid table header: duplicate key `tenants` in document root"
        );
    }

    fn tags(text: &str) -> String {
        text.chars()
            .map(|c| char::from_u32(u32::from(c) + 0xE0000).unwrap_or(c))
            .collect()
    }

    #[test]
    fn tag_characters_are_stray_outside_an_emoji_flag() {
        let scotland = format!("\u{1F3F4}{}\u{E007F}", tags("gbsct"));
        for kept in [
            "plain".to_owned(),
            format!("flag {scotland} ok"),
            format!("{scotland}{scotland}"),
            scotland.clone(),
        ] {
            assert!(!has_stray_tags(&kept), "{kept:?}");
        }
        for stray in [
            format!("Withdrawn{}", tags("wire money to acct 666")),
            format!("\u{1F3F4}{}\u{E007F}", tags("wire money to acct 666")),
            format!("\u{1F3F4}{}", tags("gbsct")),
            format!("\u{1F3F4}{} x", tags("gbsct")),
            format!("\u{1F3F4}{}\u{E007F}", tags("GBSCT")),
            "\u{1F3F4}\u{E007F}".to_owned(),
            "x\u{E007F}".to_owned(),
            format!("\u{1F3F4}\u{E0001}{}\u{E007F}", tags("gb")),
            format!("a{}", tags("b")),
        ] {
            assert!(has_stray_tags(&stray), "{stray:?}");
        }
    }

    #[test]
    fn escaped_shows_where_each_invisible_character_is() {
        assert_eq!(escaped("acme-1 é"), "acme-1 é");
        assert_eq!(escaped("a\u{202e}b\n"), "a\\u{202e}b\\u{a}");
        assert_eq!(escaped("\u{200b}"), "\\u{200b}");
    }

    #[test]
    fn evidence_keeps_plain_text_and_bounds_and_cleans_the_rest() {
        assert_eq!(evidence("RES-42"), "RES-42");
        assert_eq!(evidence("a\u{202E}b\0c\nd"), "a\u{FFFD}b\u{FFFD}c\u{FFFD}d");
        let long = "é".repeat(1_000);
        let kept = evidence(&long);
        assert!(kept.len() <= MAX_EVIDENCE_BYTES, "{}", kept.len());
        assert!(kept.ends_with('…'));
        assert!(kept.starts_with("éé"));
        let exact = "x".repeat(MAX_EVIDENCE_BYTES);
        assert_eq!(evidence(&exact), exact);
        // Replaced, then at most the bound: three-byte U+FFFD for each.
        let marks = "\u{200F}".repeat(200);
        assert!(evidence(&marks).len() <= MAX_EVIDENCE_BYTES);
        for c in [
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            '\u{200C}',
            '\u{200D}',
            '\u{2028}',
            '\u{2029}',
            '\u{00AD}',
            '\u{180E}',
            '\u{206A}',
            '\u{FFF9}',
            '\u{034F}',
            '\u{115F}',
            '\u{3164}',
            '\u{E0041}',
            '\u{FE0F}',
            '\u{00A0}',
        ] {
            assert_eq!(evidence(&format!("A{c}B")), "A\u{FFFD}B", "{c:?}");
        }
        assert_eq!(evidence("Cafe\u{0301} 1"), "Cafe\u{0301} 1");
    }
}
