//! Read your writes: waiting until every projector has passed a position.

use std::time::{Duration, Instant};

use super::Projections;
use crate::error::ProjectionError;

impl Projections {
    fn check(&self, position: u64) -> Option<Result<(), ProjectionError>> {
        let slots = self.inner.shared.slots();
        for (slot, handle) in slots.iter().zip(&self.inner.read.inner.handles) {
            if let Some(f) = slot.failure.as_ref().filter(|f| f.position < position) {
                return Some(Err(ProjectionError::Failed {
                    projector: handle.name.to_owned(),
                    position: f.position,
                    message: f.message.clone(),
                }));
            }
        }
        if slots.iter().all(|s| s.checkpoint >= position) {
            return Some(Ok(()));
        }
        if slots.iter().any(|s| !s.running) {
            return Some(Err(ProjectionError::Stopped));
        }
        None
    }

    fn timeout_error(&self, position: u64) -> ProjectionError {
        let slots = self.inner.shared.slots();
        let slowest = slots
            .iter()
            .zip(&self.inner.read.inner.handles)
            .min_by_key(|(s, _)| s.checkpoint);
        ProjectionError::Timeout {
            position,
            slowest: slowest.map(|(_, h)| h.name.to_owned()).unwrap_or_default(),
            checkpoint: slowest.map(|(s, _)| s.checkpoint).unwrap_or(0),
        }
    }

    /// Blocks until every projector has applied every event below
    /// `position` (pass an append's `last_position + 1` to read your writes).
    ///
    /// # Errors
    /// [`ProjectionError::Failed`] as soon as a projector is stopped below
    /// `position`; [`ProjectionError::Timeout`]; [`ProjectionError::Stopped`].
    pub fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), ProjectionError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(result) = self.check(position) {
                return result;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timeout_error(position));
            }
            let slots = self.inner.shared.slots();
            let _ = self
                .inner
                .shared
                .changed
                .wait_timeout(slots, (deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// [`Projections::wait_for`] for async callers (needs a tokio runtime
    /// with the time driver).
    ///
    /// # Errors
    /// As [`Projections::wait_for`].
    pub async fn wait_for_async(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(result) = self.check(position) {
                return result;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(self.timeout_error(position));
            }
        }
    }
}
