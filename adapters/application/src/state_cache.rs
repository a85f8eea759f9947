//! The command path's stream-state cache: a bounded LRU of
//! `stream -> (version, folded state)`.
//!
//! An entry is only ever a fold of a stream's first `version` events, put
//! there after a load folded them or after an acknowledged append of the
//! events the state was evolved with. A load starts from the cached state
//! and folds the stream's events after `version`, which it reads from the
//! log like any load: events appended by another writer are never missed,
//! so a cached decision is the decision an uncached load would make
//! (`tests/state_cache.rs` checks this on random command sequences). A
//! version conflict forgets the stream's entry.

use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// How many streams the command path keeps folded, by default.
pub const DEFAULT_CAPACITY: usize = 4_096;

struct Entry {
    version: u64,
    state: Arc<dyn Any + Send + Sync>,
}

/// What the cache did since start, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCacheStats {
    /// Loads that started from a cached fold.
    pub hits: u64,
    /// Loads that folded the stream from its first event.
    pub misses: u64,
    /// Streams kept now.
    pub streams: u64,
}

/// A bounded, shared cache of folded stream states; capacity 0 disables it.
#[derive(Clone)]
pub(crate) struct StateCache {
    entries: Option<Arc<Mutex<LruCache<String, Entry>>>>,
    counts: Arc<[AtomicU64; 2]>,
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self
            .entries
            .as_ref()
            .and_then(|e| e.lock().ok().map(|e| e.len()));
        f.debug_struct("StateCache").field("entries", &len).finish()
    }
}

impl StateCache {
    /// A cache of at most `capacity` streams (0: no cache).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity).map(|c| Arc::new(Mutex::new(LruCache::new(c)))),
            counts: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
        }
    }

    /// Hits, misses and streams kept.
    pub(crate) fn stats(&self) -> StateCacheStats {
        StateCacheStats {
            hits: self.counts[0].load(Ordering::Relaxed),
            misses: self.counts[1].load(Ordering::Relaxed),
            streams: self
                .entries
                .as_ref()
                .and_then(|e| e.lock().ok().map(|e| e.len() as u64))
                .unwrap_or(0),
        }
    }

    /// The cached version and a copy of the state of `stream_id`, if its
    /// entry holds a state of type `S`.
    pub(crate) fn get<S: Clone + 'static>(&self, stream_id: &str) -> Option<(u64, S)> {
        let found = self.find::<S>(stream_id);
        let counter = if found.is_some() { 0 } else { 1 };
        self.counts[counter].fetch_add(1, Ordering::Relaxed);
        found
    }

    fn find<S: Clone + 'static>(&self, stream_id: &str) -> Option<(u64, S)> {
        let entries = self.entries.as_ref()?;
        let (version, state) = {
            let mut entries = entries.lock().ok()?;
            let entry = entries.get(stream_id)?;
            (entry.version, Arc::clone(&entry.state))
        };
        state
            .downcast_ref::<S>()
            .map(|state| (version, state.clone()))
    }

    /// Keeps `state` as the fold of the first `version` events of
    /// `stream_id`, unless a later version is kept already.
    pub(crate) fn put<S: Send + Sync + 'static>(&self, stream_id: &str, version: u64, state: S) {
        let Some(entries) = self.entries.as_ref() else {
            return;
        };
        let Ok(mut entries) = entries.lock() else {
            return;
        };
        if entries
            .peek(stream_id)
            .is_some_and(|kept| kept.version > version)
        {
            return;
        }
        entries.put(
            stream_id.to_owned(),
            Entry {
                version,
                state: Arc::new(state),
            },
        );
    }

    /// Forgets `stream_id` (after a version conflict).
    pub(crate) fn forget(&self, stream_id: &str) {
        if let Some(Ok(mut entries)) = self.entries.as_ref().map(|e| e.lock()) {
            entries.pop(stream_id);
        }
    }

    /// Whether the cache keeps anything at all.
    pub(crate) fn enabled(&self) -> bool {
        self.entries.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_version_wins_and_a_full_cache_drops_the_least_recent() {
        let cache = StateCache::new(2);
        cache.put("a", 2, "two".to_owned());
        cache.put("a", 1, "one".to_owned());
        assert_eq!(cache.get::<String>("a"), Some((2, "two".to_owned())));
        assert_eq!(cache.get::<u32>("a"), None, "another type is a miss");
        cache.put("b", 1, "b".to_owned());
        cache.get::<String>("a");
        cache.put("c", 1, "c".to_owned());
        assert_eq!(cache.get::<String>("b"), None, "b was least recently used");
        assert!(cache.get::<String>("a").is_some());
        cache.forget("a");
        assert_eq!(cache.get::<String>("a"), None);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.streams), (3, 1), "{stats:?}");
        assert_eq!(stats.misses, 3, "{stats:?}");
        let off = StateCache::new(0);
        off.put("a", 1, 1u32);
        assert_eq!(off.get::<u32>("a"), None);
        assert!(!off.enabled());
    }
}
