//! Commands on one stream take turns within one [`crate::CommandPath`]
//! (and its clones): a command holds its stream's turn from its load to
//! its append's acknowledgement, so two commands of this process never
//! decide on the same version and retry each other into exhaustion. A
//! writer outside the path (another process, another path) can still move
//! the stream; the path's optimistic retry covers that.
//!
//! The turns are a fixed set of async mutexes, a stream's chosen by the
//! hash of its id: bounded memory whatever the number of streams, at the
//! price of two streams that share a mutex taking turns too.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

/// How many mutexes the streams share.
const STRIPES: usize = 1024;

/// The turns of every stream, shared by clones.
#[derive(Clone)]
pub(crate) struct StreamTurns(Arc<[Mutex<()>]>);

impl std::fmt::Debug for StreamTurns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTurns")
            .field("stripes", &self.0.len())
            .finish()
    }
}

impl StreamTurns {
    /// Turns for any number of streams.
    pub(crate) fn new() -> Self {
        Self((0..STRIPES).map(|_| Mutex::new(())).collect())
    }

    /// Waits for `stream_id`'s turn; it lasts while the guard lives.
    pub(crate) async fn take(&self, stream_id: &str) -> MutexGuard<'_, ()> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(stream_id);
        // The remainder is below STRIPES, so it fits a usize.
        let stripe = usize::try_from(hash % STRIPES as u64).unwrap_or(0);
        self.0[stripe].lock().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_waits_for_its_own_turn_and_not_for_a_free_one() {
        let turns = StreamTurns::new();
        let held = turns.take("quote-q-1").await;
        let same = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            turns.take("quote-q-1"),
        )
        .await;
        assert!(same.is_err(), "the same stream got a second turn");
        // Some stream of the next few maps to another stripe.
        let mut free = false;
        for i in 0..8 {
            let other = format!("quote-q-other-{i}");
            if let Ok(guard) =
                tokio::time::timeout(std::time::Duration::from_millis(50), turns.take(&other)).await
            {
                drop(guard);
                free = true;
                break;
            }
        }
        assert!(free, "every other stream waited");
        drop(held);
        let _again = turns.take("quote-q-1").await;
    }
}
