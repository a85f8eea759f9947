//! Committing a projector's writes without stalling every other user of
//! sled in the process.
//!
//! sled 0.34 orders every `apply_batch` of the process against every read
//! and write of every tree and database (its `CONCURRENCY_CONTROL` lock: a
//! batch takes it exclusively, a single-key read or write shares it): while
//! one batch of N keys is applied, the log's writer, the command path's
//! reads, the subscription reader and the other projectors all wait about
//! N x 10 us. A catch-up commit can hold tens of thousands of keys, so one
//! batch would stall the log for a fraction of a second.
//!
//! `apply_batch` also writes sled's I/O buffer to its file (a `pwrite` and
//! a waiting `sync_file_range` by sled's I/O pool) on every call, and costs
//! about 90 us for a handful of keys where single-key inserts cost about
//! 5 us each (measured in the log's writer, ADR 0035). So no commit uses it:
//!
//! # The commit
//! - A commit without writes is one insert of the checkpoint.
//! - Any other first inserts a **pending record** under [`PENDING_KEY`]
//!   (one key: the new checkpoint and every write, encoded), then writes
//!   each key on its own (sharing the lock, so reads, the log and the other
//!   projectors go on), then sets the checkpoint and, last, removes the
//!   record.
//!
//! # Exactly once
//! Every write is a final value (a put of the row's new bytes or a removal),
//! never a delta, so applying it twice is the same as once. sled recovers a
//! prefix of the writes it was given, so if any write of a commit survives a
//! crash, the pending record that precedes it does too; [`finish_pending`]
//! (run by every opener of a generation, before anything reads it) applies
//! the record again and sets its checkpoint. After a crash either no write
//! landed and the checkpoint is the old one, or the record finishes the
//! commit: no event is applied twice or skipped.
//!
//! Queries may see part of a commit in progress (some rows new, some
//! not yet); [`crate::Projections::wait_for`] waits for the checkpoint,
//! which is published after the last write, so read-your-writes sees all of
//! it.

use crate::error::FoldError;
use crate::store::CHECKPOINT_KEY;

/// The key of a commit in progress (shorter than a tenant prefix, so no
/// tenant scan can reach it).
pub(crate) const PENDING_KEY: &[u8] = b"\x00pending";

/// Largest pending record [`finish_pending`] decodes.
const MAX_PENDING_BYTES: usize = 1 << 30;

/// The writes of one commit: final values (puts and removals).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Writes {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Writes {
    /// Sets `key` to `value`.
    pub(crate) fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), Some(value.into())));
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }

    /// How many keys it writes.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// One `sled::Batch` of every write (what a commit must be equal to).
    #[cfg(test)]
    fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (key, value) in self.ops {
            match value {
                Some(v) => batch.insert(key, v),
                None => batch.remove(key),
            }
        }
        batch
    }

    /// The pending record: checkpoint u64 BE, op count u64 BE, then each op
    /// as key length u32 BE, key, tag (0 removal, 1 put), and for a put the
    /// value length u32 BE and value.
    fn encode(&self, checkpoint: u64) -> Result<Vec<u8>, FoldError> {
        let size: usize = self
            .ops
            .iter()
            .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, |v| 4 + v.len()))
            .sum();
        let mut out = Vec::with_capacity(16 + size);
        out.extend_from_slice(&checkpoint.to_be_bytes());
        out.extend_from_slice(&(self.ops.len() as u64).to_be_bytes());
        let len32 = |n: usize| {
            u32::try_from(n)
                .map(u32::to_be_bytes)
                .map_err(|_| FoldError("a projection key or row over 4 GiB".into()))
        };
        for (key, value) in &self.ops {
            out.extend_from_slice(&len32(key.len())?);
            out.extend_from_slice(key);
            match value {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(&len32(v.len())?);
                    out.extend_from_slice(v);
                }
            }
        }
        Ok(out)
    }

    /// Decodes a pending record (bytes from disk: every length is checked).
    fn decode(bytes: &[u8]) -> Result<(u64, Self), FoldError> {
        let bad = || FoldError("malformed pending commit record".into());
        let mut cursor = Cursor { bytes, at: 0 };
        let checkpoint = u64::from_be_bytes(cursor.array().ok_or_else(bad)?);
        let count = u64::from_be_bytes(cursor.array().ok_or_else(bad)?);
        let mut writes = Self::default();
        for _ in 0..count {
            let key_len = u32::from_be_bytes(cursor.array().ok_or_else(bad)?);
            let key = cursor.take(key_len as usize).ok_or_else(bad)?.to_vec();
            match cursor.take(1).ok_or_else(bad)? {
                [0] => writes.remove(key),
                [1] => {
                    let len = u32::from_be_bytes(cursor.array().ok_or_else(bad)?);
                    let value = cursor.take(len as usize).ok_or_else(bad)?.to_vec();
                    writes.put(key, value);
                }
                _ => return Err(bad()),
            }
        }
        if cursor.at != bytes.len() {
            return Err(bad());
        }
        Ok((checkpoint, writes))
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

/// Commits `writes` and moves the checkpoint of `tree` to `checkpoint`
/// (see the module docs for why this is exactly once and never holds sled's
/// process-wide lock exclusively).
///
/// # Errors
/// sled errors; a commit cut short is finished by [`finish_pending`].
pub(crate) fn commit(tree: &sled::Tree, writes: Writes, checkpoint: u64) -> Result<(), FoldError> {
    if writes.len() == 0 {
        tree.insert(CHECKPOINT_KEY, &checkpoint.to_be_bytes())?;
        return Ok(());
    }
    // Invariant: the record lands before any write of the commit.
    tree.insert(PENDING_KEY, writes.encode(checkpoint)?)?;
    apply_pending(tree, writes, checkpoint)
}

fn apply_pending(tree: &sled::Tree, mut writes: Writes, checkpoint: u64) -> Result<(), FoldError> {
    // In key order: consecutive writes then land in the same or the next
    // leaf, which sled still holds, instead of a random walk over the tree
    // (a catch-up over 1M events ran about 10 % faster). The sort is
    // stable, so writes to one key keep their order and the result is the
    // same as in the order given.
    writes.ops.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in writes.ops {
        match value {
            Some(v) => tree.insert(key, v)?,
            None => tree.remove(key)?,
        };
    }
    // Invariant: the checkpoint lands before the record goes (a crash
    // between the two finishes the commit again, harmlessly).
    tree.insert(CHECKPOINT_KEY, &checkpoint.to_be_bytes())?;
    tree.remove(PENDING_KEY)?;
    Ok(())
}

/// Finishes a commit a crash cut short, if `tree` holds one: applies its
/// writes again and sets its checkpoint. Returns whether there was one.
///
/// # Errors
/// sled errors, or a damaged record.
pub(crate) fn finish_pending(tree: &sled::Tree) -> Result<bool, FoldError> {
    let Some(bytes) = tree.get(PENDING_KEY)? else {
        return Ok(false);
    };
    if bytes.len() > MAX_PENDING_BYTES {
        return Err(FoldError(format!(
            "pending commit record of {} bytes",
            bytes.len()
        )));
    }
    let (checkpoint, writes) = Writes::decode(&bytes)?;
    tracing::warn!(
        checkpoint,
        keys = writes.len(),
        "finishing a projection commit cut short"
    );
    apply_pending(tree, writes, checkpoint)?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Writes {
        let mut w = Writes::default();
        for i in 0u32..10 {
            w.put(format!("row{i}"), vec![1; i as usize]);
            w.put(format!("idx{i}"), Vec::new());
            if i % 3 == 0 {
                w.remove(format!("row{}", i + 1));
            }
        }
        w
    }

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        let w = sample();
        let bytes = w.encode(42).unwrap();
        let (checkpoint, back) = Writes::decode(&bytes).unwrap();
        assert_eq!(checkpoint, 42);
        assert_eq!(back.ops, w.ops);
    }

    #[test]
    fn a_damaged_record_is_refused_not_a_panic() {
        let bytes = sample().encode(7).unwrap();
        for cut in 0..bytes.len() {
            assert!(Writes::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Writes::decode(&longer).is_err());
        let mut bad_tag = bytes;
        bad_tag[16 + 4 + 4] = 9;
        assert!(Writes::decode(&bad_tag).is_err());
    }

    fn dump(t: &sled::Tree) -> Vec<(sled::IVec, sled::IVec)> {
        t.iter().collect::<Result<Vec<_>, _>>().unwrap()
    }

    /// The writes and checkpoint as one atomic batch: what a commit must
    /// leave.
    fn as_one_batch(tree: &sled::Tree, writes: Writes, checkpoint: u64) {
        let mut batch = writes.into_batch();
        batch.insert(CHECKPOINT_KEY, &checkpoint.to_be_bytes());
        tree.apply_batch(batch).unwrap();
    }

    #[test]
    fn a_commit_writes_what_one_batch_would() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (committed, batched) = (db.open_tree("a").unwrap(), db.open_tree("b").unwrap());
        commit(&committed, sample(), 5).unwrap();
        as_one_batch(&batched, sample(), 5);
        assert_eq!(dump(&committed), dump(&batched));
        assert_eq!(crate::store::checkpoint(&committed).unwrap(), 5);
        assert!(committed.get(PENDING_KEY).unwrap().is_none());
        commit(&committed, Writes::default(), 9).unwrap();
        assert_eq!(crate::store::checkpoint(&committed).unwrap(), 9);
    }

    #[test]
    fn a_commit_cut_short_is_finished_on_open() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let w = sample();
        // A crash after the record and the first writes, at each point.
        for landed in 0..w.len() {
            let tree = db.open_tree(format!("cut{landed}")).unwrap();
            tree.insert(PENDING_KEY, w.encode(99).unwrap()).unwrap();
            for (key, value) in w.ops.iter().take(landed) {
                match value {
                    Some(v) => tree.insert(key, v.as_slice()).unwrap(),
                    None => tree.remove(key).unwrap(),
                };
            }
            assert!(finish_pending(&tree).unwrap());
            assert!(!finish_pending(&tree).unwrap());
            let whole = db.open_tree(format!("whole{landed}")).unwrap();
            as_one_batch(&whole, w.clone(), 99);
            assert_eq!(dump(&tree), dump(&whole), "cut after {landed} writes");
            assert_eq!(crate::store::checkpoint(&tree).unwrap(), 99);
        }
    }
}
