//! Subjects: `<prefix>.<tenant>.<aggregate type>.<event type>`, with every
//! token escaped so a tenant id can never add a token or a wildcard.

use std::fmt::Write as _;

use domain::ids::StreamKind;

/// The aggregate type and id of a stream id: `order-o1` is
/// `("order", "o1")` (parsed by [`StreamKind::split`]). A stream of no
/// known aggregate is split at its first dash, and one without a dash is
/// its own type with an empty id.
pub fn aggregate_of(stream_id: &str) -> (&str, &str) {
    match StreamKind::split(stream_id) {
        Ok((kind, id)) => (kind.as_str(), id),
        Err(_) => stream_id.split_once('-').unwrap_or((stream_id, "")),
    }
}

/// One subject token for an arbitrary string. `%`, `.`, `*`, `>`,
/// whitespace and control characters become `%XX` (their bytes in hex), so
/// the mapping is injective and the result is a single literal token; the
/// empty string becomes `%`, which no escaped string can be.
pub fn escape_token(raw: &str) -> String {
    if raw.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '.' | '*' | '>') || c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The subject of one event.
pub fn subject(prefix: &str, tenant: &str, aggregate_type: &str, event_type: &str) -> String {
    format!(
        "{prefix}.{}.{}.{}",
        escape_token(tenant),
        escape_token(aggregate_type),
        escape_token(event_type)
    )
}

/// True for a subject prefix of one or more non-empty literal tokens.
pub(crate) fn is_valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && !token
                    .chars()
                    .any(|c| matches!(c, '*' | '>') || c.is_whitespace() || c.is_control())
        })
}

/// True for a JetStream stream name the server accepts.
pub(crate) fn is_valid_stream_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && !name.chars().any(|c| {
            matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace() || c.is_control()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_through() {
        assert_eq!(
            subject("oms", "tenant-1", "order", "OrderCaptured"),
            "oms.tenant-1.order.OrderCaptured"
        );
        assert_eq!(aggregate_of("handoff-h-1"), ("handoff", "h-1"));
        assert_eq!(aggregate_of("odd"), ("odd", ""));
    }

    #[test]
    fn dots_wildcards_and_whitespace_cannot_add_tokens() {
        let s = subject("oms", "a.b *>\tc%", "quote", "X");
        assert_eq!(s, "oms.a%2Eb%20%2A%3E%09c%25.quote.X");
        assert_eq!(s.split('.').count(), 4);
        assert_eq!(escape_token(""), "%");
        assert_eq!(escape_token("\u{3000}"), "%E3%80%80");
    }

    #[test]
    fn escaping_is_injective() {
        let inputs = ["a.b", "a_b", "a%2Eb", "a%b", "", "%", " ", "a b", "ü"];
        let mut escaped: Vec<_> = inputs.iter().map(|i| escape_token(i)).collect();
        escaped.sort();
        escaped.dedup();
        assert_eq!(escaped.len(), inputs.len());
    }

    #[test]
    fn prefixes_and_stream_names_are_checked() {
        assert!(is_valid_prefix("oms"));
        assert!(is_valid_prefix("acme.oms"));
        assert!(!is_valid_prefix(""));
        assert!(!is_valid_prefix("oms."));
        assert!(!is_valid_prefix("oms.*"));
        assert!(!is_valid_prefix("o ms"));
        assert!(is_valid_stream_name("OMS_EU-1"));
        assert!(!is_valid_stream_name("OMS.EU"));
        assert!(!is_valid_stream_name(""));
    }
}
