//! Metrics: one Prometheus registry (the `prometheus-client` crate) that
//! `/metrics` renders in the Prometheus text format 0.0.4.
//!
//! Every figure keeps one owner. The server's own series (request and
//! append histograms, conflict and auth-failure counters) are metric
//! families registered from [`Metrics`]; the log's and the projectors'
//! figures are read from them at scrape time by [`LogMetrics`]; the
//! external-system runtime (the adapters' counters, the relay, consumer
//! lag) is one more [`Collector`], `runtime::External::metrics`. The
//! registry is assembled from those handles at each scrape ([`registry`]),
//! which costs a few reference-count increments.
//!
//! Counter families are named without `_total`; the encoder appends it
//! (`oms_auth_failures` is exposed as `oms_auth_failures_total`).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use application::metrics::{encode_family, encode_metric};
use eventlog::EventLog;
use projections::Projections;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::platform::Platform;

/// The content type of the exposition `/metrics` answers with.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Latency bucket bounds in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Longest operation name kept as a label value.
const MAX_OPERATION_LABEL: usize = 64;

/// Most distinct operation names kept as label values: operation names
/// come from clients, so each new one would otherwise add a histogram
/// kept for the process's life. Names first seen once this many are kept
/// are counted under [`OTHER_OPERATIONS`].
pub const MAX_OPERATION_LABELS: usize = 256;

/// Most operation names one credential adds to those kept, so that no
/// one caller fills the table (a viewer's 260 names of its own left every
/// later operation counted as `other`).
pub const MAX_LABELS_PER_CREDENTIAL: usize = 32;

/// The label value of operations named after [`MAX_OPERATION_LABELS`]
/// names were kept, or after their credential added its
/// [`MAX_LABELS_PER_CREDENTIAL`].
pub const OTHER_OPERATIONS: &str = "other";

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// A constructor for histogram families (a `fn` pointer, so the family is
/// `Clone` and `Debug`).
type NewHistogram = fn() -> Histogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: &'static str,
}

/// The server's own series. Cheap to update from any task; cloning shares
/// the series.
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Histogram, NewHistogram>,
    appends: Family<PathLabels, Histogram, NewHistogram>,
    /// The one `path="graphql"` member of `appends`.
    graphql_appends: Histogram,
    idempotency_conflicts: Counter,
    version_conflicts: Counter,
    auth_failures: Counter,
    /// The operation names kept as labels (at most [`MAX_OPERATION_LABELS`]).
    operations: Arc<Mutex<KeptOperations>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let appends: Family<PathLabels, Histogram, NewHistogram> =
            Family::new_with_constructor(latency_histogram);
        // Created up front, so the series is there (count 0) before the
        // first command.
        let graphql_appends = appends.get_or_create_owned(&PathLabels { path: "graphql" });
        Self {
            requests: Family::new_with_constructor(latency_histogram),
            appends,
            graphql_appends,
            idempotency_conflicts: Counter::default(),
            version_conflicts: Counter::default(),
            auth_failures: Counter::default(),
            operations: Arc::default(),
        }
    }
}

/// The operation names kept as label values, and how many each
/// credential added.
#[derive(Debug, Default)]
struct KeptOperations {
    names: HashSet<String>,
    added_by: std::collections::HashMap<String, usize>,
}

/// The operation as a label value: bounded in length and free of
/// characters the exposition would have to escape (`"`, `\`, control
/// characters), or `anonymous`. GraphQL operation names and `batch[N]`
/// pass unchanged.
fn operation_label(operation: &str) -> String {
    let plain = operation
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if !operation.is_empty() && operation.len() <= MAX_OPERATION_LABEL && plain {
        operation.to_owned()
    } else {
        "anonymous".to_owned()
    }
}

impl Metrics {
    /// Records one GraphQL operation (`name`, ok or error) and its latency.
    pub fn observe_request(&self, credential: &str, operation: &str, ok: bool, elapsed: Duration) {
        let labels = RequestLabels {
            // Bound the label set: unnamed or odd names collapse, and so do
            // new names once enough are kept, or once their credential
            // added its share.
            operation: self.kept(credential, operation_label(operation)),
            outcome: if ok { "ok" } else { "error" },
        };
        self.requests
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// `label` if it is kept, or if there is room to keep it and
    /// `credential` has not added its share; else [`OTHER_OPERATIONS`].
    fn kept(&self, credential: &str, label: String) -> String {
        let Ok(mut kept) = self.operations.lock() else {
            return OTHER_OPERATIONS.to_owned();
        };
        if kept.names.contains(&label) {
            return label;
        }
        let added = kept.added_by.get(credential).copied().unwrap_or(0);
        if kept.names.len() >= MAX_OPERATION_LABELS || added >= MAX_LABELS_PER_CREDENTIAL {
            return OTHER_OPERATIONS.to_owned();
        }
        kept.names.insert(label.clone());
        kept.added_by.insert(credential.to_owned(), added + 1);
        label
    }

    /// Records the latency of one command's append.
    pub fn observe_append(&self, elapsed: Duration) {
        self.graphql_appends.observe(elapsed.as_secs_f64());
    }

    /// Counts a command refused because its id was reused with other input.
    pub fn idempotency_conflict(&self) {
        self.idempotency_conflicts.inc();
    }

    /// Counts a command refused because the client's expected version was stale.
    pub fn version_conflict(&self) {
        self.version_conflicts.inc();
    }

    /// Counts a request without a valid credential.
    pub fn auth_failure(&self) {
        self.auth_failures.inc();
    }

    /// Registers the server's series in `registry` (sharing them: later
    /// updates show in it).
    pub fn register(&self, registry: &mut Registry) {
        // The registry appends a full stop to each help text.
        registry.register(
            "oms_graphql_request_seconds",
            "GraphQL operations by operation name and outcome, in seconds",
            self.requests.clone(),
        );
        registry.register(
            "oms_command_append_seconds",
            "Appends of commands to the log, in seconds",
            self.appends.clone(),
        );
        registry.register(
            "oms_idempotency_conflicts",
            "Commands refused because their id was reused with other input",
            self.idempotency_conflicts.clone(),
        );
        registry.register(
            "oms_version_conflicts",
            "Commands refused because the expected version was stale",
            self.version_conflicts.clone(),
        );
        registry.register(
            "oms_auth_failures",
            "Requests without a valid credential",
            self.auth_failures.clone(),
        );
    }
}

/// The log's and the projectors' figures, read from them at each scrape.
#[derive(Clone)]
pub struct LogMetrics {
    log: EventLog,
    projections: Arc<Projections>,
    commands: application::CommandPath,
}

impl LogMetrics {
    /// Reads `log`, `projections` and the stream-state cache of
    /// `commands` at each scrape.
    pub fn new(
        log: EventLog,
        projections: Arc<Projections>,
        commands: application::CommandPath,
    ) -> Self {
        Self {
            log,
            projections,
            commands,
        }
    }
}

impl fmt::Debug for LogMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogMetrics").finish_non_exhaustive()
    }
}

impl Collector for LogMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let stats = self.log.writer_stats();
        encode_metric(
            &mut encoder,
            "oms_log_events_written",
            "Events the log has written since start.",
            ConstCounter::new(stats.events_written),
        )?;
        encode_metric(
            &mut encoder,
            "oms_log_group_commits",
            "Group commits of the log since start.",
            ConstCounter::new(stats.group_commits),
        )?;
        encode_metric(
            &mut encoder,
            "oms_log_fenced",
            "1 when the log refuses appends after a storage failure (until a restart).",
            ConstGauge::new(u64::from(self.log.fenced().is_some())),
        )?;
        encode_metric(
            &mut encoder,
            "oms_log_head_position",
            "The log's next position.",
            ConstGauge::new(self.log.next_position()),
        )?;
        encode_metric(
            &mut encoder,
            "oms_read_model_reads",
            "Read-model reads served since start: one per page, object, batch \
             of linked objects by id, or dashboard (links are batched per query level).",
            ConstCounter::new(self.projections.read_models().reads()),
        )?;
        let cache = self.commands.state_cache_stats();
        encode_metric(
            &mut encoder,
            "oms_state_cache_hits",
            "Command loads that started from the stream-state cache's fold.",
            ConstCounter::new(cache.hits),
        )?;
        encode_metric(
            &mut encoder,
            "oms_state_cache_misses",
            "Command loads that folded their stream from its first event.",
            ConstCounter::new(cache.misses),
        )?;
        encode_metric(
            &mut encoder,
            "oms_state_cache_streams",
            "Streams whose folded state the command path keeps.",
            ConstGauge::new(cache.streams),
        )?;
        let statuses = self.projections.status();
        encode_family(
            &mut encoder,
            "oms_projector_lag_events",
            "Events each projector is behind the log.",
            statuses
                .iter()
                .map(|s| ([("projector", s.name.as_str())], ConstGauge::new(s.lag))),
        )?;
        encode_family(
            &mut encoder,
            "oms_projector_failed",
            "1 when the projector stopped on a failure.",
            statuses.iter().map(|s| {
                (
                    [("projector", s.name.as_str())],
                    ConstGauge::new(u64::from(s.failure.is_some())),
                )
            }),
        )
    }
}

/// A shared collector registered in a registry without giving it away.
#[derive(Debug)]
struct Shared(Arc<dyn Collector>);

impl Collector for Shared {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        self.0.encode(encoder)
    }
}

/// The one registry `/metrics` renders: the server's series, the log and
/// the projectors, and `external` (the external-system runtime).
pub fn registry(platform: &Platform, external: Arc<dyn Collector>) -> Registry {
    let mut registry = Registry::default();
    platform.metrics.register(&mut registry);
    registry.register_collector(Box::new(LogMetrics::new(
        platform.log.clone(),
        platform.projections.clone(),
        platform.commands.clone(),
    )));
    registry.register_collector(Box::new(Shared(external)));
    registry
}

/// `registry` in the Prometheus text format 0.0.4.
///
/// # Errors
/// When a collector fails to write.
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rendered(metrics: &Metrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        render(&registry).unwrap()
    }

    #[test]
    fn requests_render_as_a_histogram_per_operation_and_outcome() {
        let metrics = Metrics::default();
        metrics.observe_request("t/c", "CreateQuote", true, Duration::from_millis(2));
        metrics.observe_request("t/c", "CreateQuote", false, Duration::from_millis(200));
        let out = rendered(&metrics);
        assert!(
            out.contains("# TYPE oms_graphql_request_seconds histogram\n"),
            "{out}"
        );
        assert!(out.contains(
            "oms_graphql_request_seconds_count{operation=\"CreateQuote\",outcome=\"ok\"} 1\n"
        ));
        assert!(
            out.contains(
                "oms_graphql_request_seconds_bucket{operation=\"CreateQuote\",outcome=\"error\",le=\"0.1\"} 0\n"
            ),
            "{out}"
        );
        assert!(out.contains(
            "oms_graphql_request_seconds_bucket{operation=\"CreateQuote\",outcome=\"error\",le=\"1\"} 1\n"
        ));
    }

    #[test]
    fn counters_keep_their_names_and_appends_show_before_the_first_command() {
        let metrics = Metrics::default();
        metrics.auth_failure();
        metrics.auth_failure();
        metrics.idempotency_conflict();
        let out = rendered(&metrics);
        assert!(
            out.contains("# TYPE oms_auth_failures_total counter\noms_auth_failures_total 2\n"),
            "{out}"
        );
        assert!(out.contains("oms_idempotency_conflicts_total 1\n"));
        assert!(out.contains("oms_version_conflicts_total 0\n"));
        assert!(out.contains("oms_command_append_seconds_count{path=\"graphql\"} 0\n"));
        assert!(!out.contains("_total_total"), "{out}");
    }

    #[test]
    fn operation_names_past_the_bound_are_counted_as_other() {
        let metrics = Metrics::default();
        for i in 0..MAX_OPERATION_LABELS + 50 {
            // Many credentials, so only the bound of the whole applies.
            let credential = format!("t/c{}", i / MAX_LABELS_PER_CREDENTIAL);
            metrics.observe_request(
                &credential,
                &format!("Op{i}"),
                true,
                Duration::from_millis(1),
            );
        }
        metrics.observe_request("t/c0", "Op0", false, Duration::from_millis(1));
        let out = rendered(&metrics);
        let series: HashSet<&str> = out
            .lines()
            .filter(|l| l.starts_with("oms_graphql_request_seconds_count{"))
            .filter_map(|l| l.split("operation=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(series.len(), MAX_OPERATION_LABELS + 1, "{series:?}");
        assert!(series.contains(OTHER_OPERATIONS));
        assert!(series.contains("Op0"));
        assert!(!series.contains(format!("Op{MAX_OPERATION_LABELS}").as_str()));
        assert!(
            out.contains(
                "oms_graphql_request_seconds_count{operation=\"other\",outcome=\"ok\"} 50\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn odd_operation_names_collapse_to_anonymous() {
        assert_eq!(operation_label("CreateQuote"), "CreateQuote");
        assert_eq!(operation_label("batch[3]"), "batch[3]");
        for odd in ["", "a\"b", "a\\b", "a\nb", "a b", &"x".repeat(65)] {
            assert_eq!(operation_label(odd), "anonymous", "{odd:?}");
        }
    }

    /// One credential cannot fill the table: any viewer sending 260 names
    /// of its own left every real operation named after them counted as
    /// `other` until a restart. A credential introduces at most
    /// [`MAX_LABELS_PER_CREDENTIAL`] names; names kept stay usable by all.
    #[test]
    fn one_credential_keeps_a_bounded_share_of_the_operation_names() {
        let metrics = Metrics::default();
        for i in 0..300 {
            metrics.observe_request(
                "demo/viewer",
                &format!("Junk{i}"),
                true,
                Duration::from_millis(1),
            );
        }
        metrics.observe_request(
            "demo/operator",
            "FalloutQueue",
            true,
            Duration::from_millis(1),
        );
        metrics.observe_request(
            "demo/viewer",
            "FalloutQueue",
            true,
            Duration::from_millis(1),
        );
        metrics.observe_request("demo/operator", "Junk0", true, Duration::from_millis(1));
        let out = rendered(&metrics);
        assert!(
            out.contains(
                "oms_graphql_request_seconds_count{operation=\"FalloutQueue\",outcome=\"ok\"} 2\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "oms_graphql_request_seconds_count{operation=\"Junk0\",outcome=\"ok\"} 2\n"
            ),
            "{out}"
        );
        let junk = out
            .lines()
            .filter(|l| l.starts_with("oms_graphql_request_seconds_count{operation=\"Junk"))
            .count();
        assert_eq!(junk, MAX_LABELS_PER_CREDENTIAL, "{out}");
    }
}
