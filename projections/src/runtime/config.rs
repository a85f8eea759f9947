//! How the runtime runs: batch size, commit pace, channel depth, SLA policy.

use std::time::Duration;

use crate::models::handoffs::SlaPolicy;
use crate::worker::Pace;

/// How the runtime runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionConfig {
    /// Most events per decoded batch handed to the projectors.
    pub batch_size: usize,
    /// A projector commits once this many events are applied and not yet
    /// committed, once `commit_interval` has passed since its last commit,
    /// and whenever it has applied everything up to the log's head (so live
    /// appends are visible at once). Larger values write hot rows less often.
    pub commit_every: u64,
    /// Longest time applied events wait for their commit during a catch-up.
    pub commit_interval: Duration,
    /// Batches buffered between the reader and each runner.
    pub channel_depth: usize,
    /// SLA policy for the handoffs' overdue flag.
    pub sla: SlaPolicy,
}

impl ProjectionConfig {
    pub(crate) fn pace(&self) -> Pace {
        Pace {
            batch: self.batch_size.max(1),
            commit_every: self.commit_every.max(1),
        }
    }
}

impl Default for ProjectionConfig {
    /// Batches of 4,096 events, commits every 50,000 events or every 500 ms
    /// (and at the head), 2 batches buffered, the default SLA policy.
    fn default() -> Self {
        Self {
            batch_size: 4096,
            commit_every: 50_000,
            commit_interval: Duration::from_millis(500),
            channel_depth: 2,
            sla: SlaPolicy::default(),
        }
    }
}
