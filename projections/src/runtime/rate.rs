//! Events applied per second over a sliding window, for
//! [`ProjectorStatus::events_per_s`](super::ProjectorStatus::events_per_s).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const RATE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(super) struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
    total: u64,
}

impl RateMeter {
    pub(super) fn new() -> Self {
        Self {
            samples: VecDeque::from([(Instant::now(), 0)]),
            total: 0,
        }
    }

    pub(super) fn record(&mut self, applied: u64) {
        let now = Instant::now();
        self.total += applied;
        match self.samples.back_mut() {
            Some(last) if now.duration_since(last.0) < Duration::from_millis(100) => {
                last.1 = self.total
            }
            _ => self.samples.push_back((now, self.total)),
        }
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|s| now.duration_since(s.0) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    pub(super) fn rate(&self) -> f64 {
        let now = Instant::now();
        let Some(oldest) = self
            .samples
            .iter()
            .find(|s| now.duration_since(s.0) <= RATE_WINDOW)
        else {
            return 0.0;
        };
        let secs = now.duration_since(oldest.0).as_secs_f64();
        if secs < 0.001 {
            return 0.0;
        }
        // Precision: counts stay far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        let events = (self.total - oldest.1) as f64;
        events / secs
    }
}
