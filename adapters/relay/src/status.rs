//! What the relay reports: its checkpoint, lag, counters and connection,
//! for `/metrics` and the consumer list.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use application::metrics::encode_metric;

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
    /// relayed (it does not decode, or its message is over what the
    /// stream takes); `None` while running.
    pub stopped_at: Option<u64>,
}

impl RelayStatus {
    /// Writes the status as the `oms_relay_*` families. The relay's
    /// `oms_consumer_lag_events{consumer="relay"}` sample is not among
    /// them: that family is shared with the other consumers, and its one
    /// owner (the server's runtime) writes it whole.
    ///
    /// # Errors
    /// When the writer fails.
    pub fn encode_metrics(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let gauge = |n: u64| ConstGauge::new(n);
        encode_metric(
            encoder,
            "oms_relay_checkpoint",
            "The relay's committed checkpoint: every event below it is in JetStream.",
            gauge(self.checkpoint),
        )?;
        encode_metric(
            encoder,
            "oms_relay_lag_events",
            "Events not yet known to be in JetStream.",
            gauge(self.lag),
        )?;
        encode_metric(
            encoder,
            "oms_relay_published",
            "Events JetStream acknowledged since start, duplicates included.",
            ConstCounter::new(self.published),
        )?;
        encode_metric(
            encoder,
            "oms_relay_duplicates",
            "Publishes JetStream acknowledged as duplicates since start.",
            ConstCounter::new(self.duplicates),
        )?;
        encode_metric(
            encoder,
            "oms_relay_skipped",
            "Events not published because of their tenant's publish mode since start.",
            ConstCounter::new(self.skipped),
        )?;
        encode_metric(
            encoder,
            "oms_relay_connected",
            "1 while the NATS connection is up.",
            gauge(u64::from(self.connected)),
        )?;
        encode_metric(
            encoder,
            "oms_relay_stopped",
            "1 when the relay stopped at an event it cannot relay.",
            gauge(u64::from(self.stopped_at.is_some())),
        )
    }

    /// The status alone in the Prometheus text format, as the server's
    /// registry renders it (for tests and tools; the server itself writes
    /// it with [`RelayStatus::encode_metrics`] into its one registry).
    pub fn prometheus_text(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// A snapshot as a collector: what it held when taken.
impl Collector for RelayStatus {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.encode_metrics(&mut encoder)
    }
}

/// Counters the worker writes and [`crate::Relay::status`] reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) connected: AtomicBool,
    pub(crate) stopped: AtomicBool,
    pub(crate) stopped_at: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    /// Set with `last_error`, so an acknowledgement clears it cheaply.
    pub(crate) errored: AtomicBool,
}

impl Counters {
    pub(crate) fn set_error(&self, error: Option<String>) {
        self.errored.store(error.is_some(), Ordering::Release);
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts an acknowledged publish (a duplicate when the stream's
    /// window dropped it); an acknowledgement clears the last error.
    /// Counts an acknowledged publish; it clears the last error when
    /// `clears` (no publish of its session failed) and the relay has not
    /// stopped, so neither a cause nor a stop is hidden by the acks of
    /// publishes in flight beside it.
    pub(crate) fn acknowledged(&self, duplicate: bool, clears: bool) {
        Self::add(&self.published, 1);
        if clears
            && !self.stopped.load(Ordering::Acquire)
            && self.errored.swap(false, Ordering::AcqRel)
        {
            self.set_error(None);
        }
        if duplicate {
            Self::add(&self.duplicates, 1);
        }
    }

    /// Records that the relay stopped at `position` (an event it cannot
    /// relay).
    pub(crate) fn stop_at(&self, position: u64) {
        self.stopped_at.store(position, Ordering::Release);
        self.stopped.store(true, Ordering::Release);
    }

    pub(crate) fn snapshot(&self, checkpoint: u64, head: u64) -> RelayStatus {
        RelayStatus {
            name: crate::CONSUMER_NAME.to_owned(),
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
        Counters::add(&counters.published, 40);
        let status = counters.snapshot(40, 100);
        assert_eq!(
            (status.lag, status.stopped_at, status.name.as_str()),
            (60, None, "relay")
        );
        let text = status.prometheus_text();
        assert!(text.contains("oms_relay_lag_events 60\n"), "{text}");
        assert!(text
            .contains("# TYPE oms_relay_published_total counter\noms_relay_published_total 40\n"));
        assert!(
            text.contains("# TYPE oms_relay_lag_events gauge\n"),
            "{text}"
        );
        assert!(!text.contains("_total_total"), "{text}");
    }
}
