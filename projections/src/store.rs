//! Projection storage: one sled tree per projector and generation, written
//! one batch at a time.
//!
//! # Layout
//! - `proj/<name>/<generation>` (generation as 20 decimal digits): every row
//!   of the projector, plus its checkpoint under [`CHECKPOINT_KEY`] (the
//!   position of the next event to apply, u64 BE). Rows and checkpoint are
//!   committed together (the `commit` module: single-key writes behind a
//!   pending record that every opener finishes), so after a crash the rows always match the checkpoint: no
//!   event is applied twice and none is skipped.
//! - `proj/meta`: `gen/<name>` is the generation queries read (u64 BE; 0 when
//!   absent), `ver/<name>` the row layout version that generation was built
//!   with (u32 BE), `fail/<name>` the event a projector stopped at (u64 BE
//!   position then the UTF-8 message).
//!
//! # Rows and indexes
//! A [`RowCache`] reads a row once, lets the fold change it in memory any
//! number of times, keeps the most recently used between commits, and at
//! [`RowCache::flush`] writes its final
//! encoding and the difference between the index entries it had when read
//! and those it has now. Every stored value is a canonical function of the
//! logical state (a zero counter or a deleted row is an absent key), so the
//! tree's bytes do not depend on where batch boundaries fell: an
//! incrementally built tree and a rebuilt one are byte-for-byte equal.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::commit::Writes;
use crate::error::FoldError;
use crate::keys;

/// The checkpoint key of a generation tree (shorter than a tenant prefix,
/// so no tenant scan can reach it).
pub(crate) const CHECKPOINT_KEY: &[u8] = b"\x00checkpoint";

/// The tree holding generation pointers, layout versions and failures.
pub(crate) const META_TREE: &str = "proj/meta";

/// Largest stored row the decoder accepts.
const MAX_ROW_BYTES: usize = 8 << 20;

fn codec() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_ROW_BYTES>()
}

/// Encodes a row.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FoldError> {
    bincode::serde::encode_to_vec(value, codec()).map_err(|e| FoldError(format!("encode: {e}")))
}

/// Decodes a stored row (untrusted bytes: bounded, trailing bytes refused).
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, codec()).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

/// The checkpoint stored in a generation tree (0 when new).
pub(crate) fn checkpoint(tree: &sled::Tree) -> Result<u64, FoldError> {
    match tree.get(CHECKPOINT_KEY)? {
        None => Ok(0),
        Some(v) => keys::read_u64(&v, 0)
            .filter(|_| v.len() == 8)
            .ok_or_else(|| FoldError("malformed checkpoint".into())),
    }
}

/// A stored row with the index entries it maintains.
pub(crate) trait Row: Serialize + DeserializeOwned {
    /// Appends every `(key, value)` index entry this row puts in the tree
    /// (the row's own key excluded).
    fn index_entries(&self, out: &mut Vec<(Vec<u8>, Vec<u8>)>);
}

/// Most rows (or values) a cache keeps between commits. Rows a projector
/// touched recently stay decoded in memory, so a row that many events change
/// is read from sled once, not once per commit; the least recently used are
/// forgotten beyond this bound.
const CACHED_ENTRIES: usize = 4096;

/// Forgets the least recently used entries of `map` once it holds more than
/// `cap`, down to three quarters of that.
fn evict<V>(map: &mut HashMap<Vec<u8>, V>, cap: usize, used: impl Fn(&V) -> u64) {
    if map.len() <= cap {
        return;
    }
    let keep = (cap * 3 / 4).max(1);
    let mut ticks: Vec<u64> = map.values().map(&used).collect();
    let cut = ticks.len() - keep;
    let (_, threshold, newer) = ticks.select_nth_unstable(cut);
    let threshold = *threshold;
    // Keep every entry newer than the threshold tick, and as many of those
    // at it as fit (a commit may touch more rows than the cache holds).
    let mut at_threshold = keep - newer.iter().filter(|t| **t > threshold).count();
    map.retain(|_, v| match used(v).cmp(&threshold) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal if at_threshold > 0 => {
            at_threshold -= 1;
            true
        }
        _ => false,
    });
}

struct Slot<R> {
    /// The index entries the stored row has.
    before: Vec<(Vec<u8>, Vec<u8>)>,
    row: Option<R>,
    dirty: bool,
    /// The commit count when it was last touched.
    used: u64,
}

/// Rows of one kind read through to a tree, changed in memory, and written
/// with their index differences at each commit; between commits the most
/// recently used stay decoded (bounded by [`CACHED_ENTRIES`]).
///
/// Only the projector's worker writes its tree, so a kept row is what the
/// tree holds. A commit visits only the rows changed since the last one,
/// however many stay cached.
pub(crate) struct RowCache<R> {
    map: HashMap<Vec<u8>, Slot<R>>,
    /// Keys of the dirty slots, each once, in the order first changed.
    dirty: Vec<Vec<u8>>,
    tick: u64,
    cap: usize,
}

impl<R> Default for RowCache<R> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            dirty: Vec::new(),
            tick: 0,
            cap: CACHED_ENTRIES,
        }
    }
}

impl<R: Row> RowCache<R> {
    fn slot<'a>(
        map: &'a mut HashMap<Vec<u8>, Slot<R>>,
        tick: u64,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<&'a mut Slot<R>, FoldError> {
        let slot = match map.entry(key.to_vec()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let row: Option<R> = match tree.get(key)? {
                    None => None,
                    Some(bytes) => {
                        Some(decode(&bytes).map_err(|e| FoldError(format!("stored row: {e}")))?)
                    }
                };
                let mut before = Vec::new();
                if let Some(r) = &row {
                    r.index_entries(&mut before);
                }
                v.insert(Slot {
                    before,
                    row,
                    dirty: false,
                    used: tick,
                })
            }
        };
        slot.used = tick;
        Ok(slot)
    }

    /// The slot at `key`, marked dirty (written at the next flush).
    fn slot_to_change(&mut self, tree: &sled::Tree, key: &[u8]) -> Result<&mut Slot<R>, FoldError> {
        let slot = Self::slot(&mut self.map, self.tick, tree, key)?;
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(key.to_vec());
        }
        Ok(slot)
    }

    /// The row at `key`, to change (it will be written at flush).
    pub(crate) fn get_mut(
        &mut self,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<&mut R>, FoldError> {
        Ok(self.slot_to_change(tree, key)?.row.as_mut())
    }

    /// Sets the row at `key`.
    pub(crate) fn put(&mut self, tree: &sled::Tree, key: &[u8], row: R) -> Result<(), FoldError> {
        self.slot_to_change(tree, key)?.row = Some(row);
        Ok(())
    }

    /// Sets the row at `key` of a stream's first event, without reading the
    /// tree: the log's streams start at version 1 and run without gaps, and a
    /// commit is applied whole or not at all, so no stored row can reflect a
    /// later event of a stream whose first event is being applied. A row
    /// already cached at `key` is an error (the stream was opened twice).
    pub(crate) fn put_first(&mut self, key: &[u8], row: R) -> Result<(), FoldError> {
        match self.map.entry(key.to_vec()) {
            Entry::Occupied(o) if o.get().row.is_some() => {
                Err(FoldError("a stream's first event found its row".into()))
            }
            Entry::Occupied(o) => {
                let slot = o.into_mut();
                slot.row = Some(row);
                slot.used = self.tick;
                if !slot.dirty {
                    slot.dirty = true;
                    self.dirty.push(key.to_vec());
                }
                Ok(())
            }
            Entry::Vacant(v) => {
                v.insert(Slot {
                    before: Vec::new(),
                    row: Some(row),
                    dirty: true,
                    used: self.tick,
                });
                self.dirty.push(key.to_vec());
                Ok(())
            }
        }
    }

    /// Writes every changed row and its index differences; the rows stay
    /// cached as written.
    pub(crate) fn flush(&mut self, out: &mut Writes) -> Result<(), FoldError> {
        let mut after = Vec::new();
        for key in std::mem::take(&mut self.dirty) {
            // A dirty slot stays cached until this flush has written it:
            // eviction runs only below, after every listed key is written.
            let Some(slot) = self.map.get_mut(&key) else {
                debug_assert!(false, "a changed row left the cache before its flush");
                continue;
            };
            after.clear();
            match &slot.row {
                Some(row) => {
                    row.index_entries(&mut after);
                    out.put(key.as_slice(), encode(row)?);
                }
                None => out.remove(key.as_slice()),
            }
            for (k, _) in &slot.before {
                if !after.iter().any(|(a, _)| a == k) {
                    out.remove(k.as_slice());
                }
            }
            for (k, v) in &after {
                if !slot.before.iter().any(|(b, bv)| b == k && bv == v) {
                    out.put(k.as_slice(), v.as_slice());
                }
            }
            std::mem::swap(&mut slot.before, &mut after);
            slot.dirty = false;
        }
        self.tick += 1;
        evict(&mut self.map, self.cap, |s| s.used);
        Ok(())
    }

    /// Forgets every row, staged changes included.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.dirty.clear();
    }
}

/// Raw values (counters, markers, small indexes) read through to a tree.
/// A value set back to what it was when first read is not written at all;
/// between commits the most recently used stay (bounded by
/// [`CACHED_ENTRIES`]). A commit visits only the values set since the
/// last one, however many stay cached.
pub(crate) struct KvCache {
    map: HashMap<Vec<u8>, KvSlot>,
    /// Keys of the slots set since the last flush, each once.
    touched: Vec<Vec<u8>>,
    tick: u64,
    cap: usize,
}

impl Default for KvCache {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            touched: Vec::new(),
            tick: 0,
            cap: CACHED_ENTRIES,
        }
    }
}

struct KvSlot {
    /// What the tree holds, when known.
    original: Option<Option<Vec<u8>>>,
    current: Option<Vec<u8>>,
    used: u64,
    /// Set since the last flush (its key is in `touched`).
    touched: bool,
}

impl KvCache {
    /// The value at `key`.
    pub(crate) fn get(
        &mut self,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<&[u8]>, FoldError> {
        let tick = self.tick;
        let slot = match self.map.entry(key.to_vec()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let stored = tree.get(key)?.map(|iv| iv.to_vec());
                v.insert(KvSlot {
                    original: Some(stored.clone()),
                    current: stored,
                    used: tick,
                    touched: false,
                })
            }
        };
        slot.used = tick;
        Ok(slot.current.as_deref())
    }

    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let tick = self.tick;
        match self.map.entry(key) {
            Entry::Occupied(mut o) => {
                let slot = o.get_mut();
                slot.current = value;
                slot.used = tick;
                if !slot.touched {
                    slot.touched = true;
                    self.touched.push(o.key().clone());
                }
            }
            Entry::Vacant(v) => {
                self.touched.push(v.key().clone());
                v.insert(KvSlot {
                    original: None,
                    current: value,
                    used: tick,
                    touched: true,
                });
            }
        }
    }
    /// Sets `key`.
    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.set(key, Some(value));
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.set(key, None);
    }

    /// Adds `delta` to the u64 counter at `key`; a counter that reaches zero
    /// is removed (so the bytes do not depend on batch boundaries).
    ///
    /// # Errors
    /// A counter that would go below zero: the history contradicts itself.
    pub(crate) fn add(
        &mut self,
        tree: &sled::Tree,
        key: Vec<u8>,
        delta: i64,
    ) -> Result<(), FoldError> {
        let current = match self.get(tree, &key)? {
            None => 0,
            Some(v) => keys::read_u64(v, 0).ok_or_else(|| FoldError("malformed counter".into()))?,
        };
        let next = i128::from(current) + i128::from(delta);
        if next < 0 {
            return Err(FoldError(format!(
                "counter {} would go below zero",
                keys::to_hex(&key)
            )));
        }
        match u64::try_from(next) {
            Ok(0) => self.remove(key),
            Ok(n) => self.put(key, n.to_be_bytes().to_vec()),
            Err(_) => return Err(FoldError("counter overflow".into())),
        }
        Ok(())
    }

    /// Writes every change; the values stay cached as written.
    pub(crate) fn flush(&mut self, out: &mut Writes) {
        for key in std::mem::take(&mut self.touched) {
            // A touched slot stays cached until this flush has visited it:
            // eviction runs only below, after every listed key is visited.
            let Some(slot) = self.map.get_mut(&key) else {
                debug_assert!(false, "a changed value left the cache before its flush");
                continue;
            };
            slot.touched = false;
            if slot.original.as_ref() == Some(&slot.current) {
                continue;
            }
            match &slot.current {
                Some(v) => out.put(key.as_slice(), v.as_slice()),
                None => out.remove(key),
            }
            slot.original = Some(slot.current.clone());
        }
        self.tick += 1;
        evict(&mut self.map, self.cap, |s| s.used);
    }

    /// Forgets every value, staged changes included.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.touched.clear();
    }
}

/// A stable digest of a generation tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TreeDigest {
    /// The projector.
    pub name: String,
    /// Its generation.
    pub generation: u64,
    /// Its checkpoint (not part of the digest).
    pub checkpoint: u64,
    /// How many keys the digest covers.
    pub rows: u64,
    /// Lower-case hex sha256 over every row, in key order, as
    /// `len(key) u32 BE || key || len(value) u32 BE || value`; the checkpoint
    /// key is excluded, so equal digests mean equal rows whatever position
    /// each tree stopped at.
    pub sha256: String,
}

/// Digest of every row of `tree` (checkpoint excluded).
pub(crate) fn digest(tree: &sled::Tree) -> Result<(u64, String), sled::Error> {
    let mut hasher = Sha256::new();
    let mut rows = 0u64;
    for entry in tree.iter() {
        let (k, v) = entry?;
        if &*k == CHECKPOINT_KEY || &*k == crate::commit::PENDING_KEY {
            continue;
        }
        rows += 1;
        hasher.update(u32::try_from(k.len()).unwrap_or(u32::MAX).to_be_bytes());
        hasher.update(&k);
        hasher.update(u32::try_from(v.len()).unwrap_or(u32::MAX).to_be_bytes());
        hasher.update(&v);
    }
    Ok((rows, keys::to_hex(&hasher.finalize())))
}

/// Generation pointers, layout versions and failures in `proj/meta`.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    db: sled::Db,
    meta: sled::Tree,
}

/// A projector's failure as stored and reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProjectorFailure {
    /// Position of the event the projector could not apply (it stopped
    /// there: its checkpoint equals this position).
    pub position: u64,
    /// What went wrong.
    pub message: String,
}

impl Meta {
    pub(crate) fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(Self {
            db: db.clone(),
            meta: db.open_tree(META_TREE)?,
        })
    }

    pub(crate) fn tree_name(name: &str, generation: u64) -> String {
        format!("proj/{name}/{generation:020}")
    }

    /// The generation queries read.
    pub(crate) fn generation(&self, name: &str) -> Result<u64, FoldError> {
        match self.meta.get(format!("gen/{name}"))? {
            None => Ok(0),
            Some(v) => {
                keys::read_u64(&v, 0).ok_or_else(|| FoldError("malformed generation".into()))
            }
        }
    }

    fn version(&self, name: &str) -> Result<Option<u32>, FoldError> {
        match self.meta.get(format!("ver/{name}"))? {
            None => Ok(None),
            Some(v) => {
                let bytes: [u8; 4] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| FoldError("malformed layout version".into()))?;
                Ok(Some(u32::from_be_bytes(bytes)))
            }
        }
    }

    /// Opens the current generation of `name`, after dropping leftovers of
    /// interrupted rebuilds or swaps. A generation built with another row
    /// layout version, or one whose checkpoint is past `log_head` (the
    /// log's next position: the log lost acknowledged appends by design,
    /// or was restored without its projections), is replaced by a fresh,
    /// empty one (it refills from position 0).
    pub(crate) fn open_current(
        &self,
        name: &str,
        version: u32,
        log_head: u64,
    ) -> Result<(u64, sled::Tree), FoldError> {
        let mut generation = self.generation(name)?;
        match self.version(name)? {
            Some(v) if v == version => {}
            None if generation == 0 => {
                self.meta
                    .insert(format!("ver/{name}"), &version.to_be_bytes())?;
            }
            _ => {
                tracing::warn!(
                    projector = name,
                    "row layout changed: the projector refills from position 0"
                );
                generation += 1;
                self.set_generation(name, generation, version)?;
            }
        }
        self.drop_others(name, generation)?;
        let tree = self.db.open_tree(Self::tree_name(name, generation))?;
        crate::commit::finish_pending(&tree)?;
        let reflects = checkpoint(&tree)?;
        if reflects <= log_head {
            return Ok((generation, tree));
        }
        tracing::warn!(
            projector = name,
            checkpoint = reflects,
            log_head,
            "read model is ahead of the log: the projector refills from position 0"
        );
        let generation = generation + 1;
        let tree = self.fresh_tree(name, generation)?;
        self.set_generation(name, generation, version)?;
        self.drop_others(name, generation)?;
        Ok((generation, tree))
    }

    /// Drops every tree of `name` but `keep`.
    pub(crate) fn drop_others(&self, name: &str, keep: u64) -> Result<(), FoldError> {
        let prefix = format!("proj/{name}/");
        let keep_name = Self::tree_name(name, keep);
        for tree_name in self.db.tree_names() {
            let Ok(text) = std::str::from_utf8(&tree_name) else {
                continue;
            };
            if text.starts_with(&prefix) && text != keep_name {
                self.drop_emptied(&tree_name)?;
            }
        }
        Ok(())
    }

    /// A fresh, empty tree for generation `generation` of `name` (a tree
    /// of that generation left by a rebuild that stopped is dropped first).
    pub(crate) fn fresh_tree(&self, name: &str, generation: u64) -> Result<sled::Tree, FoldError> {
        self.drop_generation(name, generation)?;
        Ok(self.db.open_tree(Self::tree_name(name, generation))?)
    }

    /// Makes `generation` the one queries read: everything written before is
    /// flushed first, then the pointer is set with one insert and flushed.
    pub(crate) fn set_generation(
        &self,
        name: &str,
        generation: u64,
        version: u32,
    ) -> Result<(), FoldError> {
        self.db.flush()?;
        let mut batch = sled::Batch::default();
        batch.insert(format!("gen/{name}").as_bytes(), &generation.to_be_bytes());
        batch.insert(format!("ver/{name}").as_bytes(), &version.to_be_bytes());
        self.meta.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Drops the tree of an old generation ([`Self::drop_emptied`]); a
    /// missing tree is not created.
    pub(crate) fn drop_generation(&self, name: &str, generation: u64) -> Result<(), FoldError> {
        let tree_name = Self::tree_name(name, generation);
        if self
            .db
            .tree_names()
            .iter()
            .any(|n| n == tree_name.as_bytes())
        {
            self.drop_emptied(tree_name.as_bytes())?;
        }
        Ok(())
    }

    /// Drops the tree `tree_name`, emptying it row by row first.
    ///
    /// sled 0.34's `drop_tree` reads every node of the tree and holds
    /// them all (under one epoch guard) until it returns: dropping a
    /// 343k-row read model held 87 MB more at once. Removing the rows
    /// first goes through the bounded page cache instead, at about 8 µs a
    /// row, and leaves `drop_tree` an empty tree (ADR 0038).
    fn drop_emptied(&self, tree_name: &[u8]) -> Result<(), FoldError> {
        self.db.open_tree(tree_name)?.clear()?;
        self.db.drop_tree(tree_name)?;
        Ok(())
    }

    /// Records where `name` stopped.
    pub(crate) fn set_failure(
        &self,
        name: &str,
        failure: Option<&ProjectorFailure>,
    ) -> Result<(), FoldError> {
        let key = format!("fail/{name}");
        match failure {
            None => {
                self.meta.remove(key)?;
            }
            Some(f) => {
                let mut value = f.position.to_be_bytes().to_vec();
                value.extend_from_slice(f.message.as_bytes());
                self.meta.insert(key, value)?;
            }
        }
        Ok(())
    }

    /// Where `name` last stopped, if it is recorded as stopped.
    pub(crate) fn failure(&self, name: &str) -> Result<Option<ProjectorFailure>, FoldError> {
        Ok(self.meta.get(format!("fail/{name}"))?.and_then(|v| {
            Some(ProjectorFailure {
                position: keys::read_u64(&v, 0)?,
                message: String::from_utf8_lossy(v.get(8..)?).into_owned(),
            })
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A row indexed by its colour.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Thing {
        colour: u8,
        count: u32,
    }

    impl Row for Thing {
        fn index_entries(&self, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
            out.push((vec![b'i', self.colour], Vec::new()));
        }
    }

    fn row_key(i: u8) -> Vec<u8> {
        vec![b'r', i]
    }

    /// Applies a commit's writes the way the worker does.
    fn write(tree: &sled::Tree, writes: Writes, checkpoint: u64) {
        crate::commit::commit(tree, writes, checkpoint).unwrap();
    }

    /// Many commits through a cache of 4 rows give the same tree as through
    /// an unbounded one: an evicted row is read back with its stored index
    /// entries, and a kept row is what the tree holds.
    #[test]
    fn a_bounded_row_cache_writes_what_an_unbounded_one_does() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (small_tree, big_tree) = (db.open_tree("s").unwrap(), db.open_tree("b").unwrap());
        let mut small = RowCache::<Thing> {
            cap: 4,
            ..RowCache::default()
        };
        let mut big = RowCache::<Thing>::default();
        let mut seed = 7u32;
        for commit in 0..200u64 {
            for _ in 0..5 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let id = u8::try_from((seed >> 8) % 24).unwrap();
                let colour = u8::try_from((seed >> 16) % 3).unwrap();
                for (cache, tree) in [(&mut small, &small_tree), (&mut big, &big_tree)] {
                    let key = row_key(id);
                    match cache.get_mut(tree, &key).unwrap() {
                        Some(row) => {
                            row.colour = colour;
                            row.count += 1;
                        }
                        None => cache.put(tree, &key, Thing { colour, count: 1 }).unwrap(),
                    }
                }
            }
            let (mut a, mut b) = (Writes::default(), Writes::default());
            small.flush(&mut a).unwrap();
            big.flush(&mut b).unwrap();
            write(&small_tree, a, commit);
            write(&big_tree, b, commit);
            assert!(small.map.len() <= 4, "{} rows kept", small.map.len());
        }
        let dump = |t: &sled::Tree| t.iter().collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(dump(&small_tree), dump(&big_tree));
        assert!(big.map.len() > 4);
        // Every index entry points at a row of that colour.
        for entry in small_tree.scan_prefix(b"i") {
            let (k, _) = entry.unwrap();
            assert!(small_tree
                .iter()
                .values()
                .any(|v| { decode::<Thing>(&v.unwrap()).is_ok_and(|t| t.colour == k[1]) }));
        }
    }

    /// A first row is written with its index entries without a read of the
    /// tree, and a second first row at a cached key is refused.
    #[test]
    fn a_first_row_is_written_whole_and_a_second_is_refused() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let mut cache = RowCache::<Thing>::default();
        cache
            .put_first(
                &row_key(1),
                Thing {
                    colour: 2,
                    count: 1,
                },
            )
            .unwrap();
        assert!(cache
            .put_first(
                &row_key(1),
                Thing {
                    colour: 0,
                    count: 1
                }
            )
            .is_err());
        let mut w = Writes::default();
        cache.flush(&mut w).unwrap();
        write(&tree, w, 1);
        let stored: Thing = decode(&tree.get(row_key(1)).unwrap().unwrap()).unwrap();
        assert_eq!((stored.colour, stored.count), (2, 1));
        let mut entries = Vec::new();
        stored.index_entries(&mut entries);
        for (k, _) in entries {
            assert!(tree.get(k).unwrap().is_some());
        }
    }

    /// A commit writes what changed since the last one, however many rows
    /// and values stay cached: a row changed twice once, a counter moved
    /// and moved back not at all, and nothing when nothing changed.
    #[test]
    fn a_flush_writes_only_what_changed_since_the_last() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let (mut rows, mut values) = (RowCache::<Thing>::default(), KvCache::default());
        let mut w = Writes::default();
        for i in 0..50u8 {
            rows.put(
                &tree,
                &row_key(i),
                Thing {
                    colour: i,
                    count: 1,
                },
            )
            .unwrap();
            values.add(&tree, vec![b'c', i], 1).unwrap();
        }
        rows.flush(&mut w).unwrap();
        values.flush(&mut w);
        assert_eq!(w.len(), 150, "50 rows, their index entries, 50 counters");
        write(&tree, w, 1);

        for _ in 0..2 {
            rows.get_mut(&tree, &row_key(7)).unwrap().unwrap().count += 1;
        }
        values.add(&tree, vec![b'c', 3], 1).unwrap();
        values.add(&tree, vec![b'c', 4], 1).unwrap();
        values.add(&tree, vec![b'c', 4], -1).unwrap();
        let mut w = Writes::default();
        rows.flush(&mut w).unwrap();
        values.flush(&mut w);
        assert_eq!(w.len(), 2, "row 7 and counter 3");
        write(&tree, w, 2);
        let row: Thing = decode(&tree.get(row_key(7)).unwrap().unwrap()).unwrap();
        assert_eq!(row.count, 3);

        let mut w = Writes::default();
        rows.flush(&mut w).unwrap();
        values.flush(&mut w);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn a_bounded_value_cache_keeps_counters_exact() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("c").unwrap();
        let mut cache = KvCache {
            cap: 2,
            ..KvCache::default()
        };
        let mut expected = [0u64; 10];
        for commit in 0..50u64 {
            for k in 0..10u8 {
                if (commit + u64::from(k)) % 3 == 0 {
                    cache.add(&tree, vec![k], 1).unwrap();
                    expected[usize::from(k)] += 1;
                }
            }
            let mut w = Writes::default();
            cache.flush(&mut w);
            write(&tree, w, commit);
            assert!(cache.map.len() <= 2);
        }
        for (k, want) in expected.iter().enumerate() {
            let got = tree
                .get([u8::try_from(k).unwrap()])
                .unwrap()
                .map_or(0, |v| keys::read_u64(&v, 0).unwrap());
            assert_eq!(got, *want, "counter {k}");
        }
    }
}
