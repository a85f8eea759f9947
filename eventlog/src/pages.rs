//! Record pages: the stored records of consecutive positions packed into
//! one sled value, so a group commit pays sled's per-key cost once per
//! page, not once per record (ADR 0028).
//!
//! A page is keyed by the position of its first record (`p` + position,
//! see [`crate::keyspace`]) and holds `count (u32 BE)` then, per record,
//! `length (u32 BE) || stored record`. Pages are written whole, in one
//! `apply_batch` with the rest of their group commit, and never rewritten:
//! the writer starts a new page for every group commit and whenever the
//! next record would take the page past [`MAX_PAGE_BYTES`] (a record larger
//! than that alone gets a page of its own), so every page is bounded and
//! stays inline in sled's `db` file (see [`crate::storage`]).
//!
//! Every reader of records goes through [`raw_range`] (stored bytes, for
//! verify and export) or [`record_at`]; a page whose lengths do not add up
//! is reported at the first position it cannot account for.
//!
//! A walk looks each page up [`WALK_TOUCHES`] more times after reading it,
//! so that sled's cache counts it and lets it go behind the walk (ADR 0037).

use std::ops::Range;

use crate::keyspace;

/// Bytes of records a page takes before the writer starts the next one.
pub const MAX_PAGE_BYTES: usize = 16 * 1024;

/// Length of a page's header (its record count).
const HEADER: usize = 4;
/// Length of each record's length prefix.
const PREFIX: usize = 4;

/// Largest value a page can have: a full page, or one record of the
/// largest size the log accepts alone.
pub const MAX_PAGE_VALUE_BYTES: usize = HEADER
    + if MAX_PAGE_BYTES > PREFIX + crate::storage::MAX_STORED_RECORD_BYTES {
        MAX_PAGE_BYTES
    } else {
        PREFIX + crate::storage::MAX_STORED_RECORD_BYTES
    };

/// How many more times [`raw_range`] looks up each page after the first,
/// once it has read it.
///
/// sled 0.34 counts a page against its cache only once the page's LRU
/// shard (one of 256, by page id) has queued 64 accesses. A walk that reads
/// each page once leaves up to 256 × 63 pages read but not yet counted,
/// resident beyond the cache: about 150 MB over a log of a million events.
/// Each touch is one more access in the page's own shard, so with 3 a
/// shard is counted every 16 pages and the backlog is a quarter, for about
/// 8 % of a walk's time (ADR 0037).
pub const WALK_TOUCHES: usize = 3;

/// Looks the page at `key` up `times` more times, only so that sled's LRU
/// counts it (see [`WALK_TOUCHES`]); the page itself is already in hand,
/// so a failed lookup is ignored.
pub(crate) fn touch(tree: &sled::Tree, key: &[u8], times: usize) {
    for _ in 0..times {
        let _ = tree.get(key);
    }
}

/// Key of the page whose first record is at `first_position`.
pub fn page_key(first_position: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = keyspace::PAGE;
    key[1..].copy_from_slice(&first_position.to_be_bytes());
    key
}

/// First position encoded in a page key, if the key is one.
pub fn position_of_page_key(key: &[u8]) -> Option<u64> {
    match key {
        [keyspace::PAGE, rest @ ..] => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// Builds the pages of one group commit (or of a restore).
#[derive(Debug, Default)]
pub struct PageBuilder {
    first: u64,
    count: u32,
    bytes: Vec<u8>,
    done: Vec<([u8; 9], Vec<u8>)>,
}

impl PageBuilder {
    /// A builder whose first record will be at `first_position`.
    pub fn new(first_position: u64) -> Self {
        Self {
            first: first_position,
            count: 0,
            bytes: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Adds the next record (the one at the position after the last one
    /// added), starting a new page first when it would not fit.
    pub fn push(&mut self, record: &[u8]) {
        let full = self.count > 0 && self.bytes.len() + PREFIX + record.len() > MAX_PAGE_BYTES;
        if full {
            self.seal();
        }
        if self.count == 0 {
            self.bytes.clear();
            self.bytes.extend_from_slice(&[0; HEADER]);
        }
        // Records are bounded far below 4 GiB (see `record`).
        let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&len.to_be_bytes());
        self.bytes.extend_from_slice(record);
        self.count += 1;
    }

    fn seal(&mut self) {
        if self.count == 0 {
            return;
        }
        self.bytes[..HEADER].copy_from_slice(&self.count.to_be_bytes());
        let key = page_key(self.first);
        self.first += u64::from(self.count);
        self.count = 0;
        self.done.push((key, std::mem::take(&mut self.bytes)));
    }

    /// Takes the pages sealed so far (the page being filled stays), as
    /// (key, value) pairs in position order.
    pub fn take_sealed(&mut self) -> Vec<([u8; 9], Vec<u8>)> {
        std::mem::take(&mut self.done)
    }

    /// Seals the page being filled and returns every page.
    pub fn finish(mut self) -> Vec<([u8; 9], Vec<u8>)> {
        self.seal();
        self.done
    }
}

fn count_of(value: &[u8]) -> u32 {
    value
        .get(..HEADER)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

/// Where each record of a page is in its value: `Ok` with every record's
/// byte range, or `Err((ranges so far, why))` for a page whose header or
/// lengths do not add up (the records before the problem are still good).
#[allow(clippy::type_complexity)]
pub fn record_ranges(value: &[u8]) -> Result<Vec<Range<usize>>, (Vec<Range<usize>>, String)> {
    let Some(count) = value.get(..HEADER).map(|_| count_of(value)) else {
        return Err((Vec::new(), "page shorter than its header".into()));
    };
    let mut ranges = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(4096));
    let mut at = HEADER;
    for _ in 0..count {
        let len = value
            .get(at..at + PREFIX)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .and_then(|len| usize::try_from(len).ok());
        let Some(len) = len else {
            return Err((ranges, "record length cut off".into()));
        };
        let start = at + PREFIX;
        let Some(end) = start.checked_add(len).filter(|end| *end <= value.len()) else {
            return Err((ranges, "record runs past the end of its page".into()));
        };
        ranges.push(start..end);
        at = end;
    }
    if count == 0 {
        return Err((ranges, "empty page".into()));
    }
    if at != value.len() {
        return Err((ranges, "bytes after the page's last record".into()));
    }
    Ok(ranges)
}

/// The records of a page value, as slices (for tools and tests).
///
/// # Errors
/// Why the page's header or lengths do not add up.
pub fn page_records(value: &[u8]) -> Result<Vec<&[u8]>, String> {
    let ranges = record_ranges(value).map_err(|(_, why)| why)?;
    Ok(ranges.into_iter().map(|r| &value[r]).collect())
}

/// Encodes records as one page value, whatever their sizes (for tools
/// and tests that rewrite a page).
pub fn encode_page(records: &[&[u8]]) -> Vec<u8> {
    let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
    let mut out = count.to_be_bytes().to_vec();
    for record in records {
        let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(record);
    }
    out
}

/// Why a record could not be read from its page.
#[derive(Debug)]
pub enum RawError {
    /// sled failed reading the page that holds `position` (or the next
    /// position the reader expected).
    Storage {
        /// The position being read.
        position: u64,
        /// What sled reported.
        error: sled::Error,
    },
    /// The page holding `position` does not decode.
    Malformed {
        /// The first position the page cannot account for.
        position: u64,
        /// Why.
        why: String,
    },
}

/// The key of the page that holds `position`, or `position`'s own page key
/// when no page starts at or before it.
fn start_key(tree: &sled::Tree, position: u64) -> Result<[u8; 9], sled::Error> {
    let before = tree
        .range(page_key(0)..=page_key(position))
        .keys()
        .next_back()
        .transpose()?;
    Ok(before
        .and_then(|key| position_of_page_key(&key))
        .map_or(page_key(position), page_key))
}

/// Lazily reads the stored bytes of every record in `[from, limit)`, in
/// position order, as (position, bytes) with each record's position
/// counted from its page's key. Holds one page at a time, and touches each
/// page after the first [`WALK_TOUCHES`] more times so that sled's cache
/// lets it go (a read of one page, such as a live tail's, pays nothing).
pub fn raw_range(
    tree: &sled::Tree,
    from: u64,
    limit: u64,
) -> impl Iterator<Item = Result<(u64, sled::IVec), RawError>> + Send + 'static {
    raw_range_touching(tree, from, limit, WALK_TOUCHES)
}

/// [`raw_range`] with `touches` more lookups of each page read: 0 for a
/// walk that is timed and holds little beside (`verify`).
pub(crate) fn raw_range_touching(
    tree: &sled::Tree,
    from: u64,
    limit: u64,
    touches: usize,
) -> impl Iterator<Item = Result<(u64, sled::IVec), RawError>> + Send + 'static {
    let touched = tree.clone();
    let pages = match start_key(tree, from) {
        Ok(start) => Ok(tree.range(start..page_key(limit.max(from)))),
        Err(error) => Err(RawError::Storage {
            position: from,
            error,
        }),
    };
    let mut expected = from;
    let mut failed = false;
    let mut first_page = true;
    let (first_error, pages) = match pages {
        Ok(pages) => (None, Some(pages)),
        Err(e) => (Some(Err(e)), None),
    };
    first_error.into_iter().chain(
        pages
            .into_iter()
            .flatten()
            .map_while(move |entry| {
                if failed {
                    return None;
                }
                if let Ok((key, _)) = &entry {
                    touch(&touched, key, if first_page { 0 } else { touches });
                }
                first_page = false;
                let out = expand(entry, expected, from, limit);
                if let Some(Ok((position, _))) = out.last() {
                    expected = position + 1;
                }
                failed = out.iter().any(Result::is_err);
                Some(out)
            })
            .flatten(),
    )
}

type Expanded = Vec<Result<(u64, sled::IVec), RawError>>;

/// The records of one page entry within `[from, limit)`.
fn expand(
    entry: Result<(sled::IVec, sled::IVec), sled::Error>,
    expected: u64,
    from: u64,
    limit: u64,
) -> Expanded {
    let (key, value) = match entry {
        Ok(entry) => entry,
        Err(error) => {
            return vec![Err(RawError::Storage {
                position: expected,
                error,
            })]
        }
    };
    let Some(first) = position_of_page_key(&key) else {
        return vec![Err(RawError::Malformed {
            position: expected,
            why: "malformed page key".into(),
        })];
    };
    let (ranges, problem) = match record_ranges(&value) {
        Ok(ranges) => (ranges, None),
        Err((ranges, why)) => (ranges, Some(why)),
    };
    let mut out: Expanded = Vec::with_capacity(ranges.len());
    let mut next = first;
    for range in ranges {
        let position = next;
        next += 1;
        if position < from {
            continue;
        }
        if position >= limit {
            return out;
        }
        out.push(Ok((position, value.subslice(range.start, range.len()))));
    }
    if let Some(why) = problem {
        if next < limit {
            out.push(Err(RawError::Malformed {
                position: next,
                why,
            }));
        }
    }
    out
}

/// The stored bytes of the record at `position`, if a page holds it.
///
/// # Errors
/// As [`raw_range`].
pub fn record_at(tree: &sled::Tree, position: u64) -> Result<Option<sled::IVec>, RawError> {
    match raw_range(tree, position, position.saturating_add(1)).next() {
        Some(Ok((p, bytes))) if p == position => Ok(Some(bytes)),
        Some(Err(e)) => Err(e),
        _ => Ok(None),
    }
}

/// One past the last position the last page holds (0 without pages).
///
/// # Errors
/// As [`raw_range`].
pub fn next_position(tree: &sled::Tree) -> Result<u64, RawError> {
    let Some(last) = tree.scan_prefix([keyspace::PAGE]).next_back() else {
        return Ok(0);
    };
    let (key, value) = last.map_err(|error| RawError::Storage { position: 0, error })?;
    let first = position_of_page_key(&key).ok_or_else(|| RawError::Malformed {
        position: 0,
        why: "malformed page key".into(),
    })?;
    Ok(first + u64::from(count_of(&value)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_packs_records_into_bounded_pages_in_position_order() {
        let mut builder = PageBuilder::new(10);
        let small = vec![1u8; 1000];
        let big = vec![2u8; crate::storage::MAX_STORED_RECORD_BYTES];
        for _ in 0..150 {
            builder.push(&small);
        }
        builder.push(&big);
        builder.push(&small);
        let pages = builder.finish();
        let mut position = 10;
        let mut seen = Vec::new();
        for (key, value) in &pages {
            assert_eq!(position_of_page_key(key), Some(position));
            assert!(value.len() <= MAX_PAGE_VALUE_BYTES, "{}", value.len());
            let records = page_records(value).unwrap();
            position += records.len() as u64;
            seen.extend(records.into_iter().map(<[u8]>::len));
        }
        assert_eq!(position, 10 + 152);
        assert_eq!(seen.len(), 152);
        assert_eq!(seen[150], crate::storage::MAX_STORED_RECORD_BYTES);
        assert!(pages.len() >= 9, "1000-byte records fill about 16 per page");
    }

    #[test]
    fn damaged_pages_say_how_far_they_can_be_read() {
        let page = encode_page(&[b"abc", b"defg"]);
        assert_eq!(page_records(&page).unwrap(), [&b"abc"[..], b"defg"]);
        let cut = &page[..page.len() - 2];
        let (good, why) = record_ranges(cut).unwrap_err();
        assert_eq!(good.len(), 1);
        assert!(why.contains("past the end"), "{why}");
        assert!(record_ranges(&[0, 0]).is_err());
        assert!(record_ranges(&[0, 0, 0, 0]).is_err(), "empty page");
        let mut extra = page.clone();
        extra.push(9);
        assert!(record_ranges(&extra).is_err());
    }
}
