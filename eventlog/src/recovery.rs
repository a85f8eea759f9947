//! Opening a log after a clean stop or a crash.
//!
//! The head is found from the records themselves (the last record of the
//! last page) and
//! checked against the meta record and the chain link into the head (each
//! stream's head is its last run in the stream index, read when an append
//! names the stream: see [`crate::heads`]). sled writes each group commit
//! atomically, so after any crash these agree; if they do not, the log has
//! been damaged and opening refuses with [`LogError::Inconsistent`] instead
//! of serving it. The full walk is [`crate::verify`].

use crate::error::LogError;
use crate::keyspace;
use crate::record::{Hash, RecordedEvent, GENESIS_HASH};

/// What recovery found: where the log continues.
pub(crate) struct Recovered {
    pub(crate) next_position: u64,
    pub(crate) head_hash: Hash,
    pub(crate) fresh: bool,
}

/// Reads the meta record, if any, of a log in this build's layout.
///
/// # Errors
/// [`LogError::NeedsUpgrade`] for a log in layout 1 (see
/// [`crate::upgrade`]), [`LogError::UnsupportedFormat`] for any other
/// layout, [`LogError::Inconsistent`] for a malformed meta record.
pub fn read_meta(tree: &sled::Tree) -> Result<Option<keyspace::Meta>, LogError> {
    match read_meta_any_layout(tree)? {
        Some(meta) if meta.layout == keyspace::LAYOUT_V1 => Err(LogError::NeedsUpgrade {
            layout: meta.layout,
        }),
        Some(meta) if meta.layout != keyspace::LAYOUT_VERSION => {
            Err(LogError::UnsupportedFormat(meta.layout))
        }
        meta => Ok(meta),
    }
}

/// Refuses a log whose meta record names a layout other than this build's
/// (layout 1 with [`LogError::NeedsUpgrade`]); a missing, malformed or
/// unreadable meta record passes, for the caller's own checks to name.
///
/// # Errors
/// [`LogError::NeedsUpgrade`] or [`LogError::UnsupportedFormat`].
pub fn check_layout(tree: &sled::Tree) -> Result<(), LogError> {
    match read_meta(tree) {
        Err(e @ (LogError::NeedsUpgrade { .. } | LogError::UnsupportedFormat(_))) => Err(e),
        _ => Ok(()),
    }
}

/// What a directory an import did not finish writing is refused with:
/// what happened, and the way on.
pub(crate) const UNFINISHED_RESTORE: &str = "a restore into this directory did not finish \
     (nothing in it was ever acknowledged): remove the directory and import again";

/// Refuses a directory that a restore ([`crate::restore`]) wrote into
/// and did not finish, however little it wrote (what it holds is a
/// prefix of another log, without its idempotency records).
///
/// # Errors
/// [`LogError::Inconsistent`] at position 0 naming the unfinished restore.
pub fn check_restore_finished(tree: &sled::Tree) -> Result<(), LogError> {
    if tree.contains_key(keyspace::RESTORE_MARKER)? {
        return Err(inconsistent(0, UNFINISHED_RESTORE));
    }
    Ok(())
}

/// Reads the meta record, if any, whatever its layout byte says.
pub(crate) fn read_meta_any_layout(tree: &sled::Tree) -> Result<Option<keyspace::Meta>, LogError> {
    let Some(bytes) = tree.get(keyspace::META)? else {
        return Ok(None);
    };
    let Some(meta) = keyspace::parse_meta_value(&bytes) else {
        return Err(inconsistent(
            0,
            format!(
                "meta record has {} bytes, expected {}",
                bytes.len(),
                keyspace::META_LEN
            ),
        ));
    };
    Ok(Some(meta))
}

fn inconsistent(position: u64, problem: impl Into<String>) -> LogError {
    LogError::Inconsistent {
        position,
        problem: problem.into(),
    }
}

fn decode_at(position: u64, bytes: &[u8]) -> Result<RecordedEvent, LogError> {
    RecordedEvent::decode(bytes).map_err(|source| LogError::Decode { position, source })
}

/// Finds the head, refusing an inconsistent log.
pub(crate) fn recover(tree: &sled::Tree) -> Result<Recovered, LogError> {
    check_restore_finished(tree)?;
    let meta = read_meta(tree)?;
    let last = last_record(tree)?;
    let (next_position, head_hash) = match (meta, last) {
        (None, None) => {
            return Ok(Recovered {
                next_position: 0,
                head_hash: GENESIS_HASH,
                fresh: true,
            })
        }
        (None, Some(_)) => {
            return Err(inconsistent(
                0,
                "records exist but the meta record is missing",
            ))
        }
        (Some(meta), None) if meta.next_position == 0 => (0, GENESIS_HASH),
        (Some(meta), None) => {
            return Err(inconsistent(
                0,
                format!(
                    "meta record says {} events but the log holds none",
                    meta.next_position
                ),
            ))
        }
        (Some(meta), Some((position, bytes))) => check_head(tree, &meta, position, &bytes)?,
    };
    Ok(Recovered {
        next_position,
        head_hash,
        fresh: false,
    })
}

/// The position and stored bytes of the last record: the last record of
/// the last page.
fn last_record(tree: &sled::Tree) -> Result<Option<(u64, sled::IVec)>, LogError> {
    let Some((key, value)) = tree.scan_prefix([keyspace::PAGE]).next_back().transpose()? else {
        return Ok(None);
    };
    let first = crate::pages::position_of_page_key(&key)
        .ok_or_else(|| inconsistent(0, "malformed page key at the head"))?;
    let ranges = crate::pages::record_ranges(&value)
        .map_err(|(_, why)| inconsistent(first, format!("the last record page: {why}")))?;
    let count = u64::try_from(ranges.len()).unwrap_or(u64::MAX);
    let Some(range) = ranges.last() else {
        return Err(inconsistent(first, "the last record page is empty"));
    };
    Ok(Some((
        first + count - 1,
        value.subslice(range.start, range.len()),
    )))
}

/// Checks the last record against the meta record and its predecessor.
fn check_head(
    tree: &sled::Tree,
    meta: &keyspace::Meta,
    position: u64,
    bytes: &[u8],
) -> Result<(u64, Hash), LogError> {
    let record = decode_at(position, bytes)?;
    let valid = RecordedEvent::hash_is_valid(bytes)
        .map_err(|source| LogError::Decode { position, source })?;
    if !valid || record.position != position {
        return Err(inconsistent(
            position,
            "head record's hash or position does not match its bytes",
        ));
    }
    if meta.next_position != position + 1 || meta.head_hash != record.hash {
        return Err(inconsistent(
            position,
            format!(
                "meta record (next position {}) disagrees with the last record (position {position})",
                meta.next_position
            ),
        ));
    }
    let expected_prev = if position == 0 {
        GENESIS_HASH
    } else {
        let prev = crate::pages::record_at(tree, position - 1)?
            .ok_or_else(|| inconsistent(position - 1, "record before the head is missing"))?;
        decode_at(position - 1, &prev)?.hash
    };
    if record.prev_hash != expected_prev {
        return Err(inconsistent(
            position,
            "head record does not chain to its predecessor",
        ));
    }
    match tree
        .scan_prefix([keyspace::PAGE])
        .keys()
        .next()
        .transpose()?
    {
        Some(first) if crate::pages::position_of_page_key(&first) == Some(0) => {}
        _ => return Err(inconsistent(0, "the record at position 0 is missing")),
    }
    Ok((position + 1, record.hash))
}
