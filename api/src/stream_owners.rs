//! The tenant that owns each stream, remembered.
//!
//! A stream's owner is the tenant of its first event, which never changes
//! once appended, so an owner read from the log once is the answer for
//! good. The command path asks it on every command that targets an
//! existing quote or order (the tenant check); reading it from the log each
//! time costs an index range scan and a record decode. A missing stream is
//! never remembered: it may be created a moment later.
//!
//! Bounded: at most [`REMEMBERED_STREAMS`] streams, the least recently
//! asked going first.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use eventlog::{EventLog, LogError};
use lru::LruCache;

/// Streams whose owner is remembered at most (a few MB).
pub const REMEMBERED_STREAMS: usize = 16 * 1024;

/// Stream owners read from the log, remembered (see the module docs).
#[derive(Debug)]
pub struct StreamOwners {
    owners: Mutex<LruCache<String, String>>,
}

impl Default for StreamOwners {
    fn default() -> Self {
        let capacity = NonZeroUsize::new(REMEMBERED_STREAMS).unwrap_or(NonZeroUsize::MIN);
        Self {
            owners: Mutex::new(LruCache::new(capacity)),
        }
    }
}

impl StreamOwners {
    /// The tenant that owns `stream_id` in `log` (the tenant of its first
    /// event), or `None` when the stream does not exist.
    ///
    /// # Errors
    /// The log's error reading the first event.
    pub fn owner(&self, log: &EventLog, stream_id: &str) -> Result<Option<String>, LogError> {
        if let Some(owner) = self.lock().get(stream_id) {
            return Ok(Some(owner.clone()));
        }
        let Some(first) = log.iter_stream(stream_id, 1).next().transpose()? else {
            return Ok(None);
        };
        self.lock()
            .put(stream_id.to_owned(), first.tenant_id.clone());
        Ok(Some(first.tenant_id))
    }

    /// Streams remembered now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no stream is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, String>> {
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use eventlog::{AppendRequest, ExpectedVersion, LogConfig, NewEvent};

    #[test]
    fn an_owner_is_the_first_events_tenant_and_a_missing_stream_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(LogConfig::new(dir.path())).unwrap();
        let owners = StreamOwners::default();
        assert_eq!(owners.owner(&log, "quote-q1").unwrap(), None);
        assert!(owners.is_empty());

        let created = NewEvent::new("QuoteCreated", "tenant-a", "corr", b"{}".to_vec());
        log.append_blocking(AppendRequest::new(
            "quote-q1",
            ExpectedVersion::NoStream,
            vec![created],
        ))
        .unwrap();
        assert_eq!(
            owners.owner(&log, "quote-q1").unwrap().as_deref(),
            Some("tenant-a")
        );
        assert_eq!(owners.len(), 1);
        // A later event of another tenant (which the command path never
        // appends) does not change the owner: the first event decides.
        let later = NewEvent::new("QuoteChanged", "tenant-b", "corr", b"{}".to_vec());
        log.append_blocking(AppendRequest::new(
            "quote-q1",
            ExpectedVersion::Exact(1),
            vec![later],
        ))
        .unwrap();
        let fresh = StreamOwners::default();
        assert_eq!(
            fresh.owner(&log, "quote-q1").unwrap(),
            owners.owner(&log, "quote-q1").unwrap()
        );
    }
}
