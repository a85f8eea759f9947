//! HMAC-SHA256 signatures of callbacks.
//!
//! A sender signs `timestamp || "." || body` (the raw bytes, never a
//! re-serialisation) with the system's secret and sends
//! [`TIMESTAMP_HEADER`] (Unix seconds) and [`SIGNATURE_HEADER`]
//! (`v1=<hex>`, several comma-separated values allowed, at most
//! [`MAX_SIGNATURE_ENTRIES`]). The receiver
//! recomputes the MAC for each configured secret (current and previous,
//! during a rotation) and compares in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the signing time, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-callback-timestamp";
/// Header carrying the signature(s), `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-callback-signature";
/// The largest accepted distance between the signing time and now, either way.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1_000;

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable_key_length());
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cold]
fn unreachable_key_length() -> HmacSha256 {
    // `Hmac::new_from_slice` only fails for fixed-size-key MACs.
    #[allow(clippy::unwrap_used)]
    <HmacSha256 as Mac>::new_from_slice(&[0u8; 32]).unwrap()
}

/// The signature header value for `body` signed at `timestamp` with `secret`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Most comma-separated entries a signature header may hold: a sender
/// signs with its current secret and, during a rotation, its previous one,
/// so a few are plenty. A header of more is refused unread, so an
/// unauthenticated request costs at most one MAC per configured secret
/// however long its header.
pub const MAX_SIGNATURE_ENTRIES: usize = 8;

/// Length of an HMAC-SHA256 signature in bytes.
const SIGNATURE_BYTES: usize = 32;

/// The `v1=` signatures of a header: entries that are not `v1=` followed by
/// 64 hex digits are skipped; `None` when the header holds more than
/// [`MAX_SIGNATURE_ENTRIES`] entries.
fn signatures(signature_header: &str) -> Option<Vec<[u8; SIGNATURE_BYTES]>> {
    let mut out = Vec::new();
    for (n, entry) in signature_header.split(',').enumerate() {
        if n >= MAX_SIGNATURE_ENTRIES {
            return None;
        }
        let Some(hex_sig) = entry.trim().strip_prefix("v1=") else {
            continue;
        };
        let mut bytes = [0u8; SIGNATURE_BYTES];
        if hex::decode_to_slice(hex_sig, &mut bytes).is_ok() {
            out.push(bytes);
        }
    }
    Some(out)
}

/// True when one of the header's `v1=` signatures is the MAC of `body` at
/// `timestamp` under `secret` (constant-time comparison). The MAC is
/// computed once, whatever the header holds; a header of more than
/// [`MAX_SIGNATURE_ENTRIES`] entries never verifies.
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], signature_header: &str) -> bool {
    let Some(candidates) = signatures(signature_header) else {
        return false;
    };
    if candidates.is_empty() {
        return false;
    }
    let expected = mac(secret, timestamp, body);
    let mut ok = false;
    for candidate in &candidates {
        // `verify_slice` compares in constant time.
        ok |= expected.clone().verify_slice(candidate).is_ok();
    }
    ok
}

/// Where a signing time stands against now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skew {
    /// Within [`MAX_SKEW_MS`] either way.
    Fresh,
    /// Older than the window.
    Stale,
    /// Further in the future than the window.
    Future,
}

/// Parses a timestamp header (Unix seconds) into milliseconds.
pub fn parse_timestamp_ms(header: &str) -> Option<i64> {
    let seconds: i64 = header.trim().parse().ok()?;
    seconds.checked_mul(1_000)
}

/// Classifies a signing time against `now_ms`.
pub fn skew(timestamp_ms: i64, now_ms: i64) -> Skew {
    if timestamp_ms < now_ms.saturating_sub(MAX_SKEW_MS) {
        Skew::Stale
    } else if timestamp_ms > now_ms.saturating_add(MAX_SKEW_MS) {
        Skew::Future
    } else {
        Skew::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_secret_time_and_body() {
        let sig = sign(b"secret-one-0123456", "1700000000", b"{\"a\":1}");
        assert!(verify(
            b"secret-one-0123456",
            "1700000000",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify(
            b"secret-two-0123456",
            "1700000000",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify(
            b"secret-one-0123456",
            "1700000001",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify(
            b"secret-one-0123456",
            "1700000000",
            b"{\"a\":2}",
            &sig
        ));
        let both = format!("v1=00ff, {sig}");
        assert!(verify(
            b"secret-one-0123456",
            "1700000000",
            b"{\"a\":1}",
            &both
        ));
        assert!(!verify(
            b"secret-one-0123456",
            "1700000000",
            b"{\"a\":1}",
            "garbage"
        ));
    }

    #[test]
    fn a_header_of_too_many_entries_never_verifies_even_with_the_right_signature() {
        let sig = sign(b"secret-one-0123456", "1700000000", b"{}");
        let filler = ["v1=00"; MAX_SIGNATURE_ENTRIES - 1].join(",");
        let within = format!("{filler},{sig}");
        assert!(verify(b"secret-one-0123456", "1700000000", b"{}", &within));
        let beyond = format!("v1=00,{within}");
        assert!(!verify(b"secret-one-0123456", "1700000000", b"{}", &beyond));
        // A signature of the wrong length is skipped, not compared.
        let short = format!("{},{sig}", &sig[..sig.len() - 2]);
        assert!(verify(b"secret-one-0123456", "1700000000", b"{}", &short));
    }

    #[test]
    fn skew_is_five_minutes_either_way() {
        let now = 1_700_000_000_000;
        assert_eq!(skew(now - MAX_SKEW_MS, now), Skew::Fresh);
        assert_eq!(skew(now - MAX_SKEW_MS - 1, now), Skew::Stale);
        assert_eq!(skew(now + MAX_SKEW_MS, now), Skew::Fresh);
        assert_eq!(skew(now + MAX_SKEW_MS + 1, now), Skew::Future);
        assert_eq!(parse_timestamp_ms("1700000000"), Some(now));
        assert_eq!(parse_timestamp_ms("x"), None);
    }
}
