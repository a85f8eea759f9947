//! Counters of the external-systems side, as atomics the server exports.
//!
//! Calls are counted by system and normalized outcome class; callback
//! refusals by their stable reason; reconciliation by runs, checks and
//! corrections; recovery by suppressed side effects.
//!
//! The server's one Prometheus registry (prometheus-client) reads them at
//! each scrape through [`Metrics`]'s [`Collector`] (or
//! [`MetricsSnapshot::encode_metrics`]), written with `application::metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use domain::idempotency::TargetSystem;
use domain::outcome::OutcomeClass;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use serde::Serialize;

use application::metrics::{encode_family, encode_metric};
use application::process::PolicyCounters;

use crate::callbacks::RejectionReason;

const SYSTEMS: usize = TargetSystem::ALL.len();
const CLASSES: usize = OutcomeClass::ALL.len();

fn system_index(system: TargetSystem) -> usize {
    TargetSystem::ALL
        .iter()
        .position(|s| *s == system)
        .unwrap_or(0)
}

fn class_index(class: OutcomeClass) -> usize {
    OutcomeClass::ALL
        .iter()
        .position(|c| *c == class)
        .unwrap_or(0)
}

/// The counters. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: [[AtomicU64; CLASSES]; SYSTEMS],
    status_queries: [AtomicU64; SYSTEMS],
    circuit_fast_fails: [AtomicU64; SYSTEMS],
    callback_rejections: [AtomicU64; RejectionReason::COUNT],
    /// Callbacks whose observation was appended.
    pub callbacks_applied: AtomicU64,
    /// Redelivered callbacks (same message id, same payload): no-ops.
    pub callbacks_duplicate: AtomicU64,
    /// Callbacks that changed nothing (stale or repeated outcome).
    pub callbacks_no_change: AtomicU64,
    /// Callbacks the domain refused (for example while UNKNOWN).
    pub callbacks_refused_by_domain: AtomicU64,
    /// Callbacks parked because their handoff was not there yet.
    pub callbacks_parked: AtomicU64,
    /// Parked callbacks applied later.
    pub callbacks_unparked: AtomicU64,
    /// Parked callbacks given up after their expiry (their handoff fell
    /// out, or never appeared).
    pub callbacks_expired: AtomicU64,
    /// Reconciliation runs.
    pub reconciliation_runs: AtomicU64,
    /// Handoffs checked by reconciliation.
    pub reconciliation_checked: AtomicU64,
    /// Handoffs whose state reconciliation changed.
    pub reconciliation_corrections: AtomicU64,
    /// Dispatches not sent because the dispatcher was recovering.
    pub suppressed_side_effects: AtomicU64,
    /// Dispatches found interrupted by a crash and marked UNKNOWN.
    pub interrupted_dispatches: AtomicU64,
    /// The process manager's commands, executed and refused (the policy
    /// runner counts them).
    pub policy: Arc<PolicyCounters>,
}

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Counts one call to `system` that ended as `class`.
    pub fn record_call(&self, system: TargetSystem, class: OutcomeClass) {
        inc(&self.calls[system_index(system)][class_index(class)]);
    }

    /// Counts one status query.
    pub fn record_status_query(&self, system: TargetSystem) {
        inc(&self.status_queries[system_index(system)]);
    }

    /// Counts one call refused by an open circuit.
    pub fn record_circuit_fast_fail(&self, system: TargetSystem) {
        inc(&self.circuit_fast_fails[system_index(system)]);
    }

    /// Counts one refused callback.
    pub fn record_callback_rejection(&self, reason: RejectionReason) {
        inc(&self.callback_rejections[reason.index()]);
    }

    /// Calls to `system` that ended as `class`.
    pub fn calls(&self, system: TargetSystem, class: OutcomeClass) -> u64 {
        self.calls[system_index(system)][class_index(class)].load(Ordering::Relaxed)
    }

    /// Refused callbacks with `reason`.
    pub fn callback_rejections(&self, reason: RejectionReason) -> u64 {
        self.callback_rejections[reason.index()].load(Ordering::Relaxed)
    }

    /// A consistent-enough copy for export.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut calls = BTreeMap::new();
        let mut status_queries = BTreeMap::new();
        let mut circuit_fast_fails = BTreeMap::new();
        for (i, system) in TargetSystem::ALL.iter().enumerate() {
            let by_class: BTreeMap<&'static str, u64> = OutcomeClass::ALL
                .iter()
                .enumerate()
                .map(|(j, class)| (class.as_str(), load(&self.calls[i][j])))
                .filter(|(_, n)| *n > 0)
                .collect();
            if !by_class.is_empty() {
                calls.insert(system.as_str(), by_class);
            }
            let q = load(&self.status_queries[i]);
            if q > 0 {
                status_queries.insert(system.as_str(), q);
            }
            let f = load(&self.circuit_fast_fails[i]);
            if f > 0 {
                circuit_fast_fails.insert(system.as_str(), f);
            }
        }
        let callback_rejections = RejectionReason::ALL
            .iter()
            .map(|r| (r.as_str(), load(&self.callback_rejections[r.index()])))
            .filter(|(_, n)| *n > 0)
            .collect();
        MetricsSnapshot {
            calls,
            status_queries,
            circuit_fast_fails,
            callback_rejections,
            callbacks_applied: load(&self.callbacks_applied),
            callbacks_duplicate: load(&self.callbacks_duplicate),
            callbacks_no_change: load(&self.callbacks_no_change),
            callbacks_refused_by_domain: load(&self.callbacks_refused_by_domain),
            callbacks_parked: load(&self.callbacks_parked),
            callbacks_unparked: load(&self.callbacks_unparked),
            callbacks_expired: load(&self.callbacks_expired),
            reconciliation_runs: load(&self.reconciliation_runs),
            reconciliation_checked: load(&self.reconciliation_checked),
            reconciliation_corrections: load(&self.reconciliation_corrections),
            suppressed_side_effects: load(&self.suppressed_side_effects),
            interrupted_dispatches: load(&self.interrupted_dispatches),
            policy_commands: load(&self.policy.commands),
            policy_refusals: load(&self.policy.refusals),
        }
    }
}

/// A copy of [`Metrics`] with labels, for `/metrics` and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Calls by system, then by outcome class (zero counts left out).
    pub calls: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Status queries by system.
    pub status_queries: BTreeMap<&'static str, u64>,
    /// Calls refused by an open circuit, by system.
    pub circuit_fast_fails: BTreeMap<&'static str, u64>,
    /// Refused callbacks by reason.
    pub callback_rejections: BTreeMap<&'static str, u64>,
    /// See [`Metrics::callbacks_applied`].
    pub callbacks_applied: u64,
    /// See [`Metrics::callbacks_duplicate`].
    pub callbacks_duplicate: u64,
    /// See [`Metrics::callbacks_no_change`].
    pub callbacks_no_change: u64,
    /// See [`Metrics::callbacks_refused_by_domain`].
    pub callbacks_refused_by_domain: u64,
    /// See [`Metrics::callbacks_parked`].
    pub callbacks_parked: u64,
    /// See [`Metrics::callbacks_unparked`].
    pub callbacks_unparked: u64,
    /// See [`Metrics::callbacks_expired`].
    pub callbacks_expired: u64,
    /// See [`Metrics::reconciliation_runs`].
    pub reconciliation_runs: u64,
    /// See [`Metrics::reconciliation_checked`].
    pub reconciliation_checked: u64,
    /// See [`Metrics::reconciliation_corrections`].
    pub reconciliation_corrections: u64,
    /// See [`Metrics::suppressed_side_effects`].
    pub suppressed_side_effects: u64,
    /// See [`Metrics::interrupted_dispatches`].
    pub interrupted_dispatches: u64,
    /// See [`PolicyCounters::commands`].
    pub policy_commands: u64,
    /// See [`PolicyCounters::refusals`].
    pub policy_refusals: u64,
}

fn by_label<'a>(
    label: &'static str,
    values: &'a BTreeMap<&'static str, u64>,
) -> impl Iterator<Item = ([(&'static str, &'a str); 1], ConstCounter<u64>)> + 'a {
    values
        .iter()
        .map(move |(value, n)| ([(label, *value)], ConstCounter::new(*n)))
}

impl MetricsSnapshot {
    /// Writes the counters as `oms_*` counter families (the names the
    /// server has always exposed: `oms_external_calls_total{system,outcome}`,
    /// `oms_callback_rejections_total{reason}`, ...). Labelled families
    /// carry only their non-zero label sets.
    ///
    /// # Errors
    /// When the writer fails.
    pub fn encode_metrics(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        encode_family(
            encoder,
            "oms_external_calls",
            "External calls by system and outcome class.",
            self.calls.iter().flat_map(|(system, classes)| {
                classes.iter().map(move |(class, n)| {
                    (
                        [("system", *system), ("outcome", *class)],
                        ConstCounter::new(*n),
                    )
                })
            }),
        )?;
        encode_family(
            encoder,
            "oms_status_queries",
            "Reconciliation status queries by system.",
            by_label("system", &self.status_queries),
        )?;
        encode_family(
            encoder,
            "oms_circuit_fast_fails",
            "Calls refused by an open circuit, by system.",
            by_label("system", &self.circuit_fast_fails),
        )?;
        encode_family(
            encoder,
            "oms_callback_rejections",
            "Refused callbacks by reason.",
            by_label("reason", &self.callback_rejections),
        )?;
        for (name, help, n) in [
            (
                "oms_callbacks_applied",
                "Callbacks whose observation was appended.",
                self.callbacks_applied,
            ),
            (
                "oms_callbacks_duplicate",
                "Redelivered callbacks (no-ops).",
                self.callbacks_duplicate,
            ),
            (
                "oms_callbacks_no_change",
                "Callbacks that changed nothing.",
                self.callbacks_no_change,
            ),
            (
                "oms_callbacks_refused_by_domain",
                "Callbacks the handoff's rules refused.",
                self.callbacks_refused_by_domain,
            ),
            (
                "oms_callbacks_parked",
                "Callbacks parked until their handoff appears.",
                self.callbacks_parked,
            ),
            (
                "oms_callbacks_unparked",
                "Parked callbacks applied later.",
                self.callbacks_unparked,
            ),
            (
                "oms_callbacks_expired",
                "Parked callbacks given up after their expiry.",
                self.callbacks_expired,
            ),
            (
                "oms_reconciliation_runs",
                "Reconciliation runs.",
                self.reconciliation_runs,
            ),
            (
                "oms_reconciliation_checked",
                "Handoffs checked by reconciliation.",
                self.reconciliation_checked,
            ),
            (
                "oms_reconciliation_corrections",
                "Handoffs whose state reconciliation changed.",
                self.reconciliation_corrections,
            ),
            (
                "oms_suppressed_side_effects",
                "Calls not made while recovering.",
                self.suppressed_side_effects,
            ),
            (
                "oms_interrupted_dispatches",
                "Dispatches found interrupted and marked unknown.",
                self.interrupted_dispatches,
            ),
            (
                "oms_policy_commands",
                "Commands executed by the process manager.",
                self.policy_commands,
            ),
            (
                "oms_policy_refusals",
                "Process manager commands refused by a rule.",
                self.policy_refusals,
            ),
        ] {
            encode_metric(encoder, name, help, ConstCounter::new(n))?;
        }
        Ok(())
    }
}

/// The counters as read at each scrape.
impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.snapshot().encode_metrics(&mut encoder)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prometheus_client::encoding::prometheus_text::encode;
    use prometheus_client::registry::Registry;

    #[test]
    fn the_counters_are_labelled_families_in_the_registry() {
        let metrics = std::sync::Arc::new(Metrics::default());
        metrics.record_call(TargetSystem::Billing, OutcomeClass::Unknown);
        metrics.record_callback_rejection(RejectionReason::BadSignature);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(metrics));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("# TYPE oms_external_calls_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("oms_external_calls_total{system=\"billing\",outcome=\"unknown\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("oms_callback_rejections_total{reason=\"bad_signature\"} 1\n"));
        assert!(text.contains("oms_reconciliation_runs_total 0\n"));
        assert!(!text.contains("_total_total"), "{text}");
    }
}
