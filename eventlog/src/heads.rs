//! The writer's view of stream heads: the version each stream has reached,
//! which every append's expected version is checked against.
//!
//! A head is derived from the stream's last run in the index (ADR 0028),
//! so the writer need not hold every stream's head: it keeps the recently
//! used ones (a bounded LRU) and reads the others from sled when an append
//! names them (one reverse range lookup). Memory then no longer grows with
//! the number of streams in the history (ADR 0062).
//!
//! sled holds what has been applied to it, not what the writer has
//! accepted: a group commit waits for its journal frame before it is
//! applied (ADR 0035). The heads such a group commit moved are kept apart,
//! outside the bound, until its frame is in sled; only then may they be
//! forgotten and read back.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use lru::LruCache;

use crate::error::LogError;

/// How many stream heads the writer keeps by default beyond those not
/// yet applied ([`crate::LogConfig::stream_heads_kept`]).
pub(crate) const DEFAULT_HEADS_KEPT: usize = 65_536;

/// The version of every stream, as the writer has accepted appends.
pub(crate) struct StreamHeads {
    /// Heads that sled holds too, most recently used first.
    recent: LruCache<String, u64>,
    /// Heads moved by group commits not yet in sled: stream -> (version,
    /// number of the last frame that moved it).
    unapplied: HashMap<String, (u64, u64)>,
}

impl StreamHeads {
    /// No head known yet; up to `kept` applied heads are kept (at least one).
    pub(crate) fn new(kept: usize) -> Self {
        Self {
            recent: LruCache::new(NonZeroUsize::new(kept).unwrap_or(NonZeroUsize::MIN)),
            unapplied: HashMap::new(),
        }
    }

    /// The version `stream` has reached (0 for a stream never written).
    ///
    /// # Errors
    /// The stream index could not be read, or one of its entries is
    /// malformed.
    pub(crate) fn version(&mut self, tree: &sled::Tree, stream: &str) -> Result<u64, LogError> {
        if let Some((version, _)) = self.unapplied.get(stream) {
            return Ok(*version);
        }
        if let Some(version) = self.recent.get(stream) {
            return Ok(*version);
        }
        let version = crate::index::last_run_below(tree, stream, u64::MAX)?
            .map_or(0, |run| run.last_version());
        self.recent.put(stream.to_owned(), version);
        Ok(version)
    }

    /// Heads moved by a group commit that is in sled already.
    pub(crate) fn applied(&mut self, heads: HashMap<String, u64>) {
        for (stream, version) in heads {
            // An earlier frame still unapplied named this stream: this
            // later one supersedes it.
            self.unapplied.remove(&stream);
            self.recent.put(stream, version);
        }
    }

    /// Heads moved by the group commit sealed in frame `frame`, which is
    /// not in sled yet; returns the streams, for [`Self::frame_applied`].
    pub(crate) fn pending(&mut self, frame: u64, heads: HashMap<String, u64>) -> Vec<String> {
        let mut streams = Vec::with_capacity(heads.len());
        for (stream, version) in heads {
            self.recent.pop(&stream);
            self.unapplied.insert(stream.clone(), (version, frame));
            streams.push(stream);
        }
        streams
    }

    /// Frame `frame`, which moved `streams`, is in sled: their heads join
    /// the bounded ones, unless a later frame still unapplied moved them
    /// again.
    pub(crate) fn frame_applied(&mut self, frame: u64, streams: Vec<String>) {
        for stream in streams {
            if let Some((version, last_frame)) = self.unapplied.get(&stream).copied() {
                if last_frame == frame {
                    self.unapplied.remove(&stream);
                    self.recent.put(stream, version);
                }
            }
        }
    }

    /// The writer is fenced: nothing unapplied will be applied.
    pub(crate) fn forget_unapplied(&mut self) {
        self.unapplied.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tree_with_run(stream: &str, first_version: u64, count: u64) -> (sled::Db, sled::Tree) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("log").unwrap();
        tree.insert(
            crate::keyspace::run_key(stream, first_version),
            &crate::keyspace::run_value(10, count)[..],
        )
        .unwrap();
        (db, tree)
    }

    /// A head forgotten by the bound is read back from the stream index.
    #[test]
    fn a_forgotten_head_is_read_from_the_index() {
        let (_db, tree) = tree_with_run("s-1", 1, 3);
        let mut heads = StreamHeads::new(1);
        assert_eq!(heads.version(&tree, "s-1").unwrap(), 3);
        assert_eq!(heads.version(&tree, "s-2").unwrap(), 0);
        // s-1 was pushed out by s-2; sled still answers for it.
        assert_eq!(heads.recent.len(), 1);
        assert_eq!(heads.version(&tree, "s-1").unwrap(), 3);
    }

    /// A head not yet in sled is never forgotten, however small the bound,
    /// until its frame is applied; a later frame's head outlives an
    /// earlier frame's application.
    #[test]
    fn an_unapplied_head_is_kept_until_its_own_frame_is_applied() {
        let (_db, tree) = tree_with_run("s-1", 1, 3);
        let mut heads = StreamHeads::new(1);
        let first = heads.pending(7, HashMap::from([("s-1".to_owned(), 5)]));
        let second = heads.pending(8, HashMap::from([("s-1".to_owned(), 6)]));
        for other in 0..10 {
            heads.version(&tree, &format!("other-{other}")).unwrap();
        }
        assert_eq!(heads.version(&tree, "s-1").unwrap(), 6);
        heads.frame_applied(7, first);
        assert_eq!(heads.version(&tree, "s-1").unwrap(), 6);
        heads.frame_applied(8, second);
        assert!(heads.unapplied.is_empty());
        assert_eq!(heads.version(&tree, "s-1").unwrap(), 6);
    }
}
