//! What the relay reports: its checkpoint, lag, counters and connection,
//! for `/metrics` and the consumer list.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// A snapshot of the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayStatus {
    /// The consumer name in the log's consumer list (`relay`).
    pub name: String,
    /// Committed checkpoint: every event below it is acknowledged by
    /// JetStream (or deliberately skipped). A restart resumes here.
    pub checkpoint: u64,
    /// The log's next position.
    pub head: u64,
    /// `head - checkpoint`: events not yet known to be in JetStream.
    pub lag: u64,
    /// Events JetStream acknowledged since start (duplicates included).
    pub published: u64,
    /// Of those, acknowledged as duplicates (a re-publish after a crash or
    /// an error that JetStream's duplicate window dropped).
    pub duplicates: u64,
    /// Events not published because of their tenant's publish mode (or a
    /// recovery bound) since start.
    pub skipped: u64,
    /// True while the NATS connection is up.
    pub connected: bool,
    /// The last error (connection, stream, publish), cleared by the next
    /// acknowledged publish.
    pub last_error: Option<String>,
    /// The position the relay stopped at because its event cannot be
    /// relayed (it does not decode); `None` while running.
    pub stopped_at: Option<u64>,
}

impl RelayStatus {
    /// The status as Prometheus text (`oms_relay_*` series, plus the relay's
    /// `oms_consumer_lag_events{consumer="relay"}` sample, without `# TYPE`
    /// lines for that shared family).
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, value: u64| {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
        };
        line("oms_relay_checkpoint", "gauge", self.checkpoint);
        line("oms_relay_lag_events", "gauge", self.lag);
        line("oms_relay_published_total", "counter", self.published);
        line("oms_relay_duplicates_total", "counter", self.duplicates);
        line("oms_relay_skipped_total", "counter", self.skipped);
        line("oms_relay_connected", "gauge", u64::from(self.connected));
        line(
            "oms_relay_stopped",
            "gauge",
            u64::from(self.stopped_at.is_some()),
        );
        out
    }
}

/// Counters the worker writes and [`super::Relay::status`] reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) checkpoint: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) connected: AtomicBool,
    pub(crate) stopped: AtomicBool,
    pub(crate) stopped_at: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn set_error(&self, error: Option<String>) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, head: u64) -> RelayStatus {
        let checkpoint = self.checkpoint.load(Ordering::Acquire);
        RelayStatus {
            name: super::CONSUMER_NAME.to_owned(),
            checkpoint,
            head,
            lag: head.saturating_sub(checkpoint),
            published: self.published.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
            stopped_at: self
                .stopped
                .load(Ordering::Acquire)
                .then(|| self.stopped_at.load(Ordering::Acquire)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_head_minus_checkpoint_and_renders_as_prometheus() {
        let counters = Counters::default();
        counters.checkpoint.store(40, Ordering::Release);
        Counters::add(&counters.published, 40);
        let status = counters.snapshot(100);
        assert_eq!(
            (status.lag, status.stopped_at, status.name.as_str()),
            (60, None, "relay")
        );
        let text = status.prometheus_text();
        assert!(text.contains("oms_relay_lag_events 60\n"), "{text}");
        assert!(text
            .contains("# TYPE oms_relay_published_total counter\noms_relay_published_total 40\n"));
    }
}
