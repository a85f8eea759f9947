//! Catch-up then live subscriptions.
//!
//! A subscription reads stored records in pages up to the published durable
//! head, then waits for the head to move. The writer publishes a new head
//! only after its batch is in sled, so reading "everything below the head"
//! from the store hands over from catch-up to live with no gap and no
//! duplicate, even while appends race. A slow subscriber holds nothing but
//! its position: it never blocks the writer or other subscribers.

use std::collections::VecDeque;

use tokio::sync::watch;

use crate::error::LogError;
use crate::log::read_range;
use crate::record::RecordedEvent;
use crate::writer::Head;

const PAGE: u64 = 512;

/// A stream of every event from a start position on.
pub struct Subscription {
    tree: sled::Tree,
    head: watch::Receiver<Head>,
    next: u64,
    buffer: VecDeque<RecordedEvent>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("next", &self.next)
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(tree: sled::Tree, head: watch::Receiver<Head>, from: u64) -> Self {
        Self {
            tree,
            head,
            next: from,
            buffer: VecDeque::new(),
        }
    }

    /// Position of the next event this subscription will deliver.
    pub fn position(&self) -> u64 {
        self.next - u64::try_from(self.buffer.len()).unwrap_or(0)
    }

    /// The next event, waiting for one to be appended if caught up.
    /// `Ok(None)` once the log is closed and every event was delivered.
    pub async fn next(&mut self) -> Result<Option<RecordedEvent>, LogError> {
        if self.buffer.is_empty() && !self.fill_async().await? {
            return Ok(None);
        }
        Ok(self.buffer.pop_front())
    }

    /// Up to `max` events (at least one), waiting if caught up.
    /// An empty vector once the log is closed and every event was delivered.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        if self.buffer.is_empty() && !self.fill_async().await? {
            return Ok(Vec::new());
        }
        let take = max.max(1).min(self.buffer.len());
        Ok(self.buffer.drain(..take).collect())
    }

    /// Events already stored and not yet delivered, without waiting.
    pub fn try_next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        if self.buffer.is_empty() {
            let head = self.head.borrow().next_position;
            if self.next < head {
                self.read_page(head)?;
            }
        }
        let take = max.min(self.buffer.len());
        Ok(self.buffer.drain(..take).collect())
    }

    async fn fill_async(&mut self) -> Result<bool, LogError> {
        loop {
            let head = *self.head.borrow_and_update();
            if self.next < head.next_position {
                // A page of a backlog is read here, on the caller's task:
                // let the runtime's other tasks run between pages, or many
                // subscribers catching up hold its workers (a probe's 200
                // `events(from: 0)` delayed another tenant's query 30 s).
                tokio::task::yield_now().await;
                self.read_page(head.next_position)?;
                return Ok(true);
            }
            if !head.open || self.head.changed().await.is_err() {
                // Closed: deliver whatever became durable before the close.
                let head = *self.head.borrow();
                if self.next < head.next_position {
                    self.read_page(head.next_position)?;
                    return Ok(true);
                }
                return Ok(false);
            }
        }
    }

    fn read_page(&mut self, head: u64) -> Result<(), LogError> {
        let end = head.min(self.next.saturating_add(PAGE));
        for record in read_range(&self.tree, self.next, end) {
            let record = record?;
            if record.position != self.next {
                return Err(LogError::Inconsistent {
                    position: self.next,
                    problem: format!(
                        "subscription expected position {} but read {}",
                        self.next, record.position
                    ),
                });
            }
            self.next += 1;
            self.buffer.push_back(record);
        }
        if self.next < end {
            return Err(LogError::Inconsistent {
                position: self.next,
                problem: "durable record is missing".into(),
            });
        }
        Ok(())
    }
}
