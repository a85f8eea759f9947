//! Cursor pagination over a tenant-scoped index.
//!
//! A cursor is opaque to callers: the hex of the list it pages (quotes,
//! orders, handoffs, fallout, audit trails), one tag byte (which index of
//! that list it belongs to), the key suffix (after the tenant prefix and
//! index kind) of the last entry the page examined, and a check of those
//! bytes and of the scan's scope (the tenant and the filter values its
//! index is keyed by), so an edited cursor, or one another query or
//! tenant was given, is refused rather than resumed from. A page
//! resumes strictly after that key: a row whose key moves ahead of the
//! cursor while a client pages is seen again, one that moves behind it is
//! seen on the next pass. A cursor is only ever appended to the caller's
//! own tenant prefix: a forged cursor can move a scan, never leave the
//! tenant.

use std::ops::Bound;

use serde::Serialize;

use crate::error::QueryError;
use crate::keys;

/// Most items one page returns; larger limits are clamped to it.
pub const MAX_PAGE_SIZE: usize = 500;

/// Most index entries one page examines. A filter the index does not
/// cover (a target system, `overdueOnly`, `updatedSince`) may skip most
/// of a tenant's rows; a page that has examined this many entries ends
/// there, short or even empty, with `has_more` set and a cursor after the
/// last entry examined, so one request costs a bounded read however few
/// rows match, and a client pages on until `has_more` is false.
pub const MAX_EXAMINED: usize = 4096;

const _: () = assert!(MAX_EXAMINED > MAX_PAGE_SIZE);

/// One page of a list query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items, in the query's order.
    pub items: Vec<T>,
    /// Pass this back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// True when more items follow this page.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// An empty last page.
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            next_cursor: None,
            has_more: false,
        }
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub(crate) fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < u8::MAX {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// Which list a cursor pages: one list's cursor is refused by another,
/// even where their index tags are alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum List {
    Quotes = 1,
    Orders = 2,
    Handoffs = 3,
    Fallout = 4,
    /// An audit trail (of a correlation id, or of a stream).
    Audit = 5,
}

/// What to scan: an index prefix plus optional bounds on the suffix.
pub(crate) struct Scan<'a> {
    /// The list the scan pages.
    pub(crate) list: List,
    /// The tenant prefix, index kind and fixed filter fields.
    pub(crate) prefix: Vec<u8>,
    /// Tag written into cursors of this scan.
    pub(crate) tag: u8,
    /// Inclusive lower bound on the suffix after `prefix`.
    pub(crate) from: Option<Vec<u8>>,
    /// Exclusive upper bound on the suffix after `prefix`.
    pub(crate) until: Option<Vec<u8>>,
    /// The caller's cursor.
    pub(crate) cursor: Option<&'a str>,
    /// Requested page size.
    pub(crate) limit: usize,
}

/// Bytes of the check that ends a cursor.
const CHECK_BYTES: usize = 4;

/// The first bytes of the sha256 of a cursor's scope (bytes the cursor
/// does not carry: the tenant and the filter values the scan's index is
/// keyed by), list, tag and suffix: an edit of any of them (a cursor cut
/// short, lengthened, mistyped) fails it, as does a cursor given to
/// another tenant or to the same list under another filter. A check, not
/// a seal: a cursor forged with a matching check still only moves a scan
/// inside the caller's tenant.
fn check(scope: &[u8], body: &[u8]) -> [u8; CHECK_BYTES] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update((scope.len() as u64).to_be_bytes());
    hasher.update(scope);
    hasher.update(body);
    let digest = hasher.finalize();
    let mut out = [0u8; CHECK_BYTES];
    out.copy_from_slice(&digest[..CHECK_BYTES]);
    out
}

/// The key suffix a cursor of `list`, `tag` and `scope` carries
/// ([`encode_cursor`]).
///
/// # Errors
/// [`QueryError::InvalidCursor`] for a cursor of another list, tag or
/// scope, or one edited, cut short or lengthened.
pub(crate) fn decode_cursor(
    cursor: &str,
    list: List,
    tag: u8,
    scope: &[u8],
) -> Result<Vec<u8>, QueryError> {
    let bytes = keys::from_hex(cursor).ok_or(QueryError::InvalidCursor)?;
    let (body, sum) = bytes
        .split_at_checked(bytes.len().saturating_sub(CHECK_BYTES))
        .ok_or(QueryError::InvalidCursor)?;
    if sum.len() != CHECK_BYTES || check(scope, body) != sum {
        return Err(QueryError::InvalidCursor);
    }
    match body {
        [l, t, rest @ ..] if *l == list as u8 && *t == tag && rest.len() <= 1024 => {
            Ok(rest.to_vec())
        }
        _ => Err(QueryError::InvalidCursor),
    }
}

/// The cursor of `list`, `tag` and `scope` that resumes after `suffix`:
/// hex of the list, the tag, the suffix and a check of them and `scope`.
pub(crate) fn encode_cursor(list: List, tag: u8, scope: &[u8], suffix: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(suffix.len() + 2 + CHECK_BYTES);
    bytes.push(list as u8);
    bytes.push(tag);
    bytes.extend_from_slice(suffix);
    let sum = check(scope, &bytes);
    bytes.extend_from_slice(&sum);
    keys::to_hex(&bytes)
}

impl Scan<'_> {
    /// Walks the index in key order from the cursor, mapping entries with
    /// `accept` (`None` skips an entry) until a page is full or
    /// [`MAX_EXAMINED`] entries have been examined.
    pub(crate) fn run<T>(
        self,
        tree: &sled::Tree,
        mut accept: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, QueryError>,
    ) -> Result<Page<T>, QueryError> {
        let limit = self.limit.clamp(1, MAX_PAGE_SIZE);
        let with = |suffix: &[u8]| {
            let mut k = self.prefix.clone();
            k.extend_from_slice(suffix);
            k
        };
        let lower_incl = self.from.as_deref().map(with);
        let cursor_key = match self.cursor {
            Some(c) => Some(with(&decode_cursor(c, self.list, self.tag, &self.prefix)?)),
            None => None,
        };
        let lower = match (cursor_key, lower_incl) {
            (Some(c), Some(l)) if l > c => Bound::Included(l),
            (Some(c), _) => Bound::Excluded(c),
            (None, Some(l)) => Bound::Included(l),
            (None, None) => Bound::Included(self.prefix.clone()),
        };
        let upper = match self
            .until
            .as_deref()
            .map(with)
            .or_else(|| successor(&self.prefix))
        {
            Some(u) => Bound::Excluded(u),
            None => Bound::Unbounded,
        };
        let mut items = Vec::with_capacity(limit);
        let mut last_suffix: Vec<u8> = Vec::new();
        let mut has_more = false;
        for (examined, entry) in tree.range::<Vec<u8>, _>((lower, upper)).enumerate() {
            let (key, value) = entry?;
            if !key.starts_with(&self.prefix) {
                break;
            }
            if examined == MAX_EXAMINED {
                // Budget spent: resume after the last entry examined.
                has_more = true;
                break;
            }
            if let Some(item) = accept(&key, &value)? {
                if items.len() == limit {
                    has_more = true;
                    break;
                }
                items.push(item);
            }
            last_suffix = key[self.prefix.len()..].to_vec();
        }
        let next_cursor =
            has_more.then(|| encode_cursor(self.list, self.tag, &self.prefix, &last_suffix));
        Ok(Page {
            items,
            next_cursor,
            has_more,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_carries() {
        assert_eq!(successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff, 0xff]), None);
    }

    #[test]
    fn cursors_of_another_index_or_list_are_refused() {
        let c = encode_cursor(List::Orders, 2, b"t1/s1", b"abc");
        assert_eq!(
            decode_cursor(&c, List::Orders, 2, b"t1/s1").ok(),
            Some(b"abc".to_vec())
        );
        assert!(decode_cursor(&c, List::Orders, 4, b"t1/s1").is_err());
        assert!(decode_cursor(&c, List::Quotes, 2, b"t1/s1").is_err());
        assert!(decode_cursor("zz", List::Orders, 2, b"t1/s1").is_err());
        assert!(decode_cursor("", List::Orders, 2, b"t1/s1").is_err());
    }

    /// A probe paged `quotes(status: PRICED)` after a cursor of
    /// `quotes(status: ACCEPTED)`, and another tenant's cursor: both were
    /// resumed from, silently skipping rows. The scope (tenant and the
    /// filter values the index is keyed by) is in the check now.
    #[test]
    fn a_cursor_of_another_tenant_or_filter_is_refused() {
        let c = encode_cursor(List::Quotes, 2, b"tenant-a/status-3", b"abc");
        for scope in [
            b"tenant-b/status-3".as_slice(),
            b"tenant-a/status-4",
            b"tenant-a/status-",
            b"",
        ] {
            assert!(decode_cursor(&c, List::Quotes, 2, scope).is_err());
        }
        assert!(decode_cursor(&c, List::Quotes, 2, b"tenant-a/status-3").is_ok());
    }

    /// A cursor cut short, lengthened or with a byte changed is malformed
    /// (as docs/graphql.md says), not a place to resume from: only the
    /// list and tag bytes used to be checked.
    #[test]
    fn an_edited_cursor_is_refused() {
        let c = encode_cursor(List::Quotes, 2, b"t", b"\x7f\xff\xfe\x5d-quote-q1");
        assert!(decode_cursor(&c, List::Quotes, 2, b"t").is_ok());
        let cut = &c[..c.len() - 2];
        let longer = format!("{c}00");
        let mut flipped = c.clone().into_bytes();
        flipped[8] = if flipped[8] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap_or_default();
        for edited in [cut, &longer, &flipped, &c[..4], "0102"] {
            assert!(
                decode_cursor(edited, List::Quotes, 2, b"t").is_err(),
                "accepted {edited}"
            );
        }
    }

    /// A filter that matches almost nothing used to walk the whole index
    /// in one request; now each page examines at most [`MAX_EXAMINED`]
    /// entries and a client that follows the cursors still sees every
    /// match, once, in order.
    #[test]
    fn a_sparse_filter_pages_in_bounded_steps_and_misses_nothing() {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary sled");
        let tree = db.open_tree("t").expect("tree");
        let total = MAX_EXAMINED * 2 + 100;
        for i in 0..total {
            let i = u32::try_from(i).expect("small");
            let key = [b"p/".as_slice(), &i.to_be_bytes()].concat();
            tree.insert(key, &i.to_be_bytes()).expect("insert");
        }
        let wanted = [7usize, MAX_EXAMINED + 3, total - 1];
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut examined = 0;
            let page = Scan {
                list: List::Orders,
                prefix: b"p/".to_vec(),
                tag: 1,
                from: None,
                until: None,
                cursor: cursor.as_deref(),
                limit: 50,
            }
            .run(&tree, |_, value| {
                examined += 1;
                let n = u32::from_be_bytes(value.try_into().expect("4 bytes")) as usize;
                Ok(wanted.contains(&n).then_some(n))
            })
            .expect("page");
            pages += 1;
            assert!(examined <= MAX_EXAMINED, "page {pages} examined {examined}");
            seen.extend(page.items);
            assert_eq!(page.has_more, page.next_cursor.is_some());
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
            assert!(pages < 10, "paging does not end");
        }
        assert_eq!(seen, wanted.to_vec());
        assert_eq!(pages, 3);
    }

    /// A full page stops before the next match, so it is the first item
    /// of the next page, and skipped entries before it are not examined
    /// twice.
    #[test]
    fn a_full_page_resumes_at_the_next_match() {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary sled");
        let tree = db.open_tree("t").expect("tree");
        for i in 0u32..20 {
            tree.insert(
                [b"p/".as_slice(), &i.to_be_bytes()].concat(),
                &i.to_be_bytes(),
            )
            .expect("insert");
        }
        let run = |cursor: Option<&str>| {
            Scan {
                list: List::Orders,
                prefix: b"p/".to_vec(),
                tag: 1,
                from: None,
                until: None,
                cursor,
                limit: 2,
            }
            .run(&tree, |_, value| {
                let n = u32::from_be_bytes(value.try_into().expect("4 bytes"));
                Ok((n % 5 == 0).then_some(n))
            })
            .expect("page")
        };
        let first = run(None);
        assert_eq!(first.items, vec![0, 5]);
        assert!(first.has_more);
        let second = run(first.next_cursor.as_deref());
        assert_eq!(second.items, vec![10, 15]);
        assert!(!second.has_more);
    }
}
