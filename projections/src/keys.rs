//! Key building blocks shared by every read model.
//!
//! Every row key starts with the tenant prefix: the first
//! [`TENANT_PREFIX_LEN`] bytes of `sha256(tenant id)`, then one byte naming
//! the kind of row, then the kind's own fields. Variable-length text inside a
//! key is length-prefixed (u16 BE), so no field can run into the next one and
//! no prefix scan can match a longer id by accident. Timestamps are stored so
//! that byte order is time order ([`ts_asc`]) or reverse time order
//! ([`ts_desc`]).
//!
//! Internal keys (the checkpoint) are shorter than a tenant prefix, so no
//! tenant-scoped scan can ever reach them.

use sha2::{Digest, Sha256};

/// Length of the tenant prefix every row key starts with.
pub const TENANT_PREFIX_LEN: usize = 16;

/// The fixed-length prefix of every key of `tenant`.
pub fn tenant_prefix(tenant: &str) -> [u8; TENANT_PREFIX_LEN] {
    let digest = Sha256::digest(tenant.as_bytes());
    let mut out = [0u8; TENANT_PREFIX_LEN];
    out.copy_from_slice(&digest[..TENANT_PREFIX_LEN]);
    out
}

/// A key under construction: tenant prefix, kind byte, then fields.
#[derive(Debug, Clone)]
pub(crate) struct KeyBuf(Vec<u8>);

impl KeyBuf {
    /// Starts a key of `kind` for the tenant whose prefix is `tenant`.
    pub(crate) fn new(tenant: &[u8; TENANT_PREFIX_LEN], kind: u8) -> Self {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(tenant);
        v.push(kind);
        Self(v)
    }

    /// Appends one byte.
    pub(crate) fn byte(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }

    /// Appends a length-prefixed string.
    pub(crate) fn str(mut self, s: &str) -> Self {
        let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0
            .extend_from_slice(&s.as_bytes()[..usize::from(len).min(s.len())]);
        self
    }

    /// Appends a u64 big-endian.
    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends raw bytes (fixed-length fields only).
    pub(crate) fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    /// The finished key.
    pub(crate) fn done(self) -> Vec<u8> {
        self.0
    }
}

/// A millisecond timestamp as a u64 whose byte order is time order.
pub(crate) fn ts_asc(ms: i64) -> u64 {
    // Flipping the sign bit maps i64 order onto u64 order.
    u64::from_be_bytes(ms.to_be_bytes()) ^ (1 << 63)
}

/// A millisecond timestamp as a u64 whose byte order is reverse time order.
pub(crate) fn ts_desc(ms: i64) -> u64 {
    !ts_asc(ms)
}

/// Inverse of [`ts_asc`].
pub(crate) fn ts_from_asc(v: u64) -> i64 {
    i64::from_be_bytes((v ^ (1 << 63)).to_be_bytes())
}

/// Reads a big-endian u64 at `at`.
pub(crate) fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let slice = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes(slice.try_into().ok()?))
}

/// Lower-case hex of bytes.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Bytes of lower-case (or upper-case) hex; `None` if malformed.
pub(crate) fn from_hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// The first 16 bytes of `sha256(text)`: a fixed-length key field for long
/// or free-form ids (correlation ids, stream ids). Rows keep the full text,
/// which queries compare, so a collision can never mix two ids.
pub(crate) fn short_hash(text: &str) -> [u8; 16] {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Caches tenant prefixes (one sha256 per tenant, not per event).
#[derive(Debug, Default)]
pub(crate) struct TenantCache {
    map: std::collections::HashMap<String, [u8; TENANT_PREFIX_LEN]>,
}

impl TenantCache {
    /// The prefix of `tenant`.
    pub(crate) fn prefix(&mut self, tenant: &str) -> [u8; TENANT_PREFIX_LEN] {
        if let Some(p) = self.map.get(tenant) {
            return *p;
        }
        let p = tenant_prefix(tenant);
        if self.map.len() > 100_000 {
            self.map.clear();
        }
        self.map.insert(tenant.to_owned(), p);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_in_time_order() {
        let times = [i64::MIN, -5, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for pair in times.windows(2) {
            assert!(ts_asc(pair[0]).to_be_bytes() < ts_asc(pair[1]).to_be_bytes());
            assert!(ts_desc(pair[0]).to_be_bytes() > ts_desc(pair[1]).to_be_bytes());
            assert_eq!(ts_from_asc(ts_asc(pair[0])), pair[0]);
        }
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes.to_vec()));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn length_prefixed_strings_never_run_into_each_other() {
        let t = tenant_prefix("t1");
        let a = KeyBuf::new(&t, 1).str("ab").str("c").done();
        let b = KeyBuf::new(&t, 1).str("a").str("bc").done();
        assert_ne!(a, b);
        assert_eq!(tenant_prefix("t1").len(), TENANT_PREFIX_LEN);
        assert_ne!(tenant_prefix("t1"), tenant_prefix("t2"));
    }
}
