//! Text that crosses the platform's edges: which characters no free text
//! takes, and how an external system's words are kept as evidence.

/// Longest piece of evidence (a raw code, label or external reference)
/// kept from an external system's answer, in bytes.
pub const MAX_EVIDENCE_BYTES: usize = 256;

/// A code point no free text takes: it is invisible and changes how the
/// text around it reads or sorts (`U+202E` shows `abc` as `cba`), or it is
/// a noncharacter. Zero-width joiners and directional marks stay: scripts
/// and emoji sequences need them.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FDD0}'..='\u{FDEF}'
    ) || (u32::from(c) & 0xFFFE) == 0xFFFE
}

/// `raw`, from an external system, as evidence a screen, a log line or a
/// fallout page can show: every control or hidden character
/// ([`is_hidden`]) becomes `U+FFFD`, and text over [`MAX_EVIDENCE_BYTES`]
/// is cut at a character boundary and ends with `…`. Text that needs
/// neither is returned unchanged.
pub fn evidence(raw: &str) -> String {
    let clean = |c: char| {
        if c.is_control() || is_hidden(c) {
            '\u{FFFD}'
        } else {
            c
        }
    };
    if raw.len() <= MAX_EVIDENCE_BYTES && !raw.chars().any(|c| clean(c) != c) {
        return raw.to_owned();
    }
    let ellipsis = '…';
    let room = MAX_EVIDENCE_BYTES - ellipsis.len_utf8();
    let mut out = String::with_capacity(MAX_EVIDENCE_BYTES);
    let mut cut = false;
    for c in raw.chars().map(clean) {
        if out.len() + c.len_utf8() > room {
            cut = true;
            break;
        }
        out.push(c);
    }
    if cut {
        out.push(ellipsis);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
