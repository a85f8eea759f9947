//! Request and command metrics, rendered in the Prometheus text format.
//!
//! The server's own counters live here; the log, projector and adapter
//! figures are read from their owners when `/metrics` is scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket bounds in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_s: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, bucket) in BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum_s += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, bucket) in BUCKETS.iter().zip(self.buckets.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {bucket}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum_s);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The server's counters. Cheap to update from any task.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    appends: Mutex<Histogram>,
    idempotency_conflicts: AtomicU64,
    version_conflicts: AtomicU64,
    auth_failures: AtomicU64,
}

impl Metrics {
    /// Records one GraphQL operation (`name`, ok or error) and its latency.
    pub fn observe_request(&self, operation: &str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        if let Ok(mut requests) = self.requests.lock() {
            // Bound the label set: unnamed or odd names collapse.
            let name = if operation.len() <= 64 && !operation.is_empty() {
                operation.to_owned()
            } else {
                "anonymous".to_owned()
            };
            requests
                .entry((name, outcome))
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Records the latency of one command's append.
    pub fn observe_append(&self, elapsed: Duration) {
        if let Ok(mut appends) = self.appends.lock() {
            appends.observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a command refused because its id was reused with other input.
    pub fn idempotency_conflict(&self) {
        self.idempotency_conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a command refused because the client's expected version was stale.
    pub fn version_conflict(&self) {
        self.version_conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request without a valid credential.
    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The server's own series in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# TYPE oms_graphql_request_seconds histogram");
        if let Ok(requests) = self.requests.lock() {
            for ((operation, outcome), histogram) in requests.iter() {
                let labels = format!("operation=\"{}\",outcome=\"{outcome}\"", escape(operation));
                histogram.render(out, "oms_graphql_request_seconds", &labels);
            }
        }
        let _ = writeln!(out, "# TYPE oms_command_append_seconds histogram");
        if let Ok(appends) = self.appends.lock() {
            appends.render(out, "oms_command_append_seconds", "path=\"graphql\"");
        }
        counter(
            out,
            "oms_idempotency_conflicts_total",
            self.idempotency_conflicts.load(Ordering::Relaxed),
        );
        counter(
            out,
            "oms_version_conflicts_total",
            self.version_conflicts.load(Ordering::Relaxed),
        );
        counter(
            out,
            "oms_auth_failures_total",
            self.auth_failures.load(Ordering::Relaxed),
        );
    }
}

/// Writes one counter without labels.
pub fn counter(out: &mut String, name: &str, value: u64) {
    let _ = writeln!(out, "# TYPE {name} counter\n{name} {value}");
}

/// Writes one gauge sample with labels (`labels` may be empty).
pub fn gauge(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let labels = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",");
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_render_as_a_histogram_per_operation_and_outcome() {
        let metrics = Metrics::default();
        metrics.observe_request("CreateQuote", true, Duration::from_millis(2));
        metrics.observe_request("CreateQuote", false, Duration::from_millis(200));
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains(
            "oms_graphql_request_seconds_count{operation=\"CreateQuote\",outcome=\"ok\"} 1"
        ));
        assert!(out.contains(
            "oms_graphql_request_seconds_bucket{operation=\"CreateQuote\",outcome=\"error\",le=\"0.1\"} 0"
        ));
    }
}
