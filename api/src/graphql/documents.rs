//! Checked documents by query text.
//!
//! A client sends the same few operations again and again with new
//! variables (a typed client's documents are constants), so each query
//! text is parsed and checked against the [`OperationLimits`] once and the
//! parsed document is reused: a later request with the same text gets a
//! copy of it and the same verdict, and the engine does not parse it
//! again. The verdict depends on the text only (the limits are the
//! schema's, fixed at start), so a cached verdict is the one a fresh check
//! would give.
//!
//! Bounded: at most [`CACHED_DOCUMENTS`] texts of at most
//! [`MAX_CACHED_QUERY_BYTES`] each, the least recently used one going
//! first; a longer text or one that does not parse is checked every time
//! and never kept.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::Request;
use lru::LruCache;

use super::empty_objects::keep_objects;
use super::limits::{OperationLimits, Refusal};

/// Query texts kept at most.
pub const CACHED_DOCUMENTS: usize = 256;

/// Longest query text a request may send, in bytes: a longer one is
/// refused before it is parsed ([`Refusal::QueryTooLong`]). Parsing runs
/// on the threads that answer every client, and its cost grows with the
/// text; values belong in variables, which are not bounded by this.
pub const MAX_QUERY_BYTES: usize = 32 * 1024;

/// Longest query text kept, in bytes: with [`CACHED_DOCUMENTS`], bounds
/// the texts to 2 MiB (and their parsed documents to a small multiple).
pub const MAX_CACHED_QUERY_BYTES: usize = 8 * 1024;

/// A parsed document (with [`keep_objects`]' fields when admitted) and
/// its verdict under the limits.
#[derive(Debug)]
struct Checked {
    document: ExecutableDocument,
    verdict: Result<Admitted, Refusal>,
}

/// What a document the limits admit runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// Root mutation fields of its largest mutation operation.
    pub mutation_fields: usize,
    /// Whether [`keep_objects`] added fields that the answer must lose
    /// ([`super::empty_objects::strip_kept`]).
    pub kept: bool,
}

/// Parsed documents and verdicts by query text (see the module docs).
#[derive(Debug)]
pub struct DocumentCache {
    limits: OperationLimits,
    entries: Mutex<LruCache<String, Arc<Checked>>>,
}

impl DocumentCache {
    /// An empty cache checking against `limits`.
    pub fn new(limits: OperationLimits) -> Self {
        let capacity = NonZeroUsize::new(CACHED_DOCUMENTS).unwrap_or(NonZeroUsize::MIN);
        Self {
            limits,
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The limits documents are checked against.
    pub fn limits(&self) -> OperationLimits {
        self.limits
    }

    /// [`OperationLimits::check`] of `request`'s query, from the cache
    /// when its text was checked before: the number of root mutation
    /// fields of its largest mutation operation.
    ///
    /// # Errors
    /// As [`DocumentCache::admit`].
    pub fn check(&self, request: &mut Request) -> Result<usize, Refusal> {
        self.admit(request).map(|admitted| admitted.mutation_fields)
    }

    /// Checks `request`'s query against the limits, from the cache when
    /// its text was checked before, and leaves the document to run in the
    /// request (with [`keep_objects`]' fields), so the engine does not
    /// parse it again.
    ///
    /// # Errors
    /// [`Refusal::QueryTooLong`] for a text past [`MAX_QUERY_BYTES`],
    /// before anything else; [`Refusal::Syntax`] for a text that does not
    /// parse (so the engine does not parse it again); else the first limit
    /// exceeded.
    pub fn admit(&self, request: &mut Request) -> Result<Admitted, Refusal> {
        if request.query.len() > MAX_QUERY_BYTES {
            return Err(Refusal::QueryTooLong);
        }
        if request.query.len() <= MAX_CACHED_QUERY_BYTES {
            let hit = self
                .entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(request.query.as_str())
                .cloned();
            if let Some(checked) = hit {
                request.set_parsed_query(checked.document.clone());
                return checked.verdict.clone();
            }
        }
        let query = (request.query.len() <= MAX_CACHED_QUERY_BYTES).then(|| request.query.clone());
        let document = match request.parsed_query() {
            Ok(document) => document,
            Err(error) => {
                return Err(Refusal::Syntax {
                    message: super::limits::syntax_message(&error.message),
                    at: error.locations.first().copied(),
                })
            }
        };
        let mut document = document.clone();
        let verdict = self
            .limits
            .check_document(&document)
            .map(|mutation_fields| {
                let kept = keep_objects(&mut document);
                Admitted {
                    mutation_fields,
                    kept,
                }
            });
        if verdict.as_ref().is_ok_and(|admitted| admitted.kept) {
            request.set_parsed_query(document.clone());
        }
        if let Some(query) = query {
            let checked = Arc::new(Checked {
                document,
                verdict: verdict.clone(),
            });
            self.entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .put(query, checked);
        }
        verdict
    }

    /// Query texts kept now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no query text is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits() -> OperationLimits {
        OperationLimits::for_complexity(3, 2, 2_000)
    }

    fn check(cache: &DocumentCache, query: &str) -> Result<usize, Refusal> {
        cache.check(&mut Request::new(query))
    }

    #[test]
    fn a_cached_verdict_is_the_one_a_fresh_check_gives() {
        let cache = DocumentCache::new(limits());
        let queries = [
            "mutation { a: acceptQuote(id: 1) { ok } b: acceptQuote(id: 2) { ok } }",
            "mutation { a: x b: x c: x }",
            "{ a { b { c { d } } } }",
            "{ a { b { c } } }",
            "{ __schema { types { fields { args { name } } } } }",
            "not graphql {",
        ];
        for query in queries {
            let fresh = limits().check(query);
            assert_eq!(check(&cache, query), fresh, "first check of {query}");
            assert_eq!(check(&cache, query), fresh, "cached check of {query}");
        }
        // Every text that parses is kept; the one that does not is not.
        assert_eq!(cache.len(), queries.len() - 1);
    }

    #[test]
    fn a_request_from_the_cache_carries_the_parsed_document() {
        let cache = DocumentCache::new(limits());
        let query = "query Q($id: ID!) { quote(id: $id) { id } }";
        check(&cache, query).unwrap();
        let mut request = Request::new(query);
        cache.check(&mut request).unwrap();
        // The second check was a hit: one text kept, its document handed on.
        assert_eq!(cache.len(), 1);
        let document = request.parsed_query().unwrap();
        let fresh = async_graphql::parser::parse_query(query).unwrap();
        assert_eq!(format!("{document:?}"), format!("{fresh:?}"));
    }

    #[test]
    fn the_cache_stays_within_its_bounds() {
        let cache = DocumentCache::new(limits());
        for i in 0..CACHED_DOCUMENTS + 10 {
            check(&cache, &format!("{{ f{i} }}")).unwrap();
        }
        assert_eq!(cache.len(), CACHED_DOCUMENTS);
        // A text over the size bound is checked and not kept.
        let cache = DocumentCache::new(limits());
        let long = format!("{{ {} }}", "f ".repeat(MAX_CACHED_QUERY_BYTES));
        assert_eq!(check(&cache, &long), limits().check(&long));
        assert!(cache.is_empty());
    }
}
