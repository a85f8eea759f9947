//! Reconciliation: find handoffs whose outcome is UNKNOWN, or that are sent
//! or accepted past their SLA, ask the external system's status by
//! idempotency key, and apply the answer through domain commands.
//!
//! The handoffs to look at come from the `handoff-index` consumer, which
//! keeps one row per open handoff (status and time of its last change), its
//! rows committed with its checkpoint.
//!
//! | external answer | command | result in the report |
//! | --- | --- | --- |
//! | same as local (still pending) | observation, no change | `matched` (next check after the SLA) |
//! | success (the callback was missed) | success observation | `external_success` |
//! | failure | failure observation (rejection / fallout) | `external_failure` |
//! | not found (never received) | retryable observation: resend, same key | `not_found_resent` |
//! | status unavailable | noted while UNKNOWN | `still_unknown` (next check scheduled) |
//! | local state cannot take it | fallout "local impossible", or refused | `local_impossible` |
//! | still pending (or unreadable) past `fallout_after_ms` | SLA breach (fallout) | `sla_breach` |
//!
//! Every run is returned as a [`ReconciliationReport`] and stored in the
//! `adapters/reconciliation-runs` tree (its first 200 entries). When each
//! handoff is next due lives in the `adapters/reconciliation-schedule` tree,
//! so a restart keeps the schedule.
//!
//! A scheduled run ([`Scope::Scheduled`]) checks UNKNOWN handoffs when their
//! next check is due and sent or accepted ones past their SLA, of every
//! tenant. An operator's run ([`Scope::Tenant`]) checks at once every
//! UNKNOWN and accepted handoff of the operator's tenant, and every sent one
//! whose call can no longer be in flight (older than its connect plus read
//! timeout): a status query while the call may still be on its way could
//! answer "not found" and cause a second send. Its report names only that
//! tenant's handoffs.

mod check;
mod index;

pub(crate) use index::HandoffIndex;
pub use index::INDEX_NAME;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use domain::idempotency::Purpose;
use eventlog::{ConsumerStore, LogError};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{parse_system, SystemsConfig};
use crate::evidence::EvidenceStore;
use crate::external::HandoffPort;
use crate::metrics::Metrics;
use application::clock::SharedClock;
use application::command::CommandPath;
use check::Due;
use index::{IndexRow, IndexStatus};

const RUNS_TREE: &str = "adapters/reconciliation-runs";
const SCHEDULE_TREE: &str = "adapters/reconciliation-schedule";

/// Which open handoffs a run checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The scheduled loop: UNKNOWN handoffs when their next check is due,
    /// sent or accepted ones past their SLA, of every tenant.
    Scheduled,
    /// An operator of this tenant asked: every handoff of the tenant whose
    /// status can be asked safely, now, whatever the SLA or the schedule
    /// says. No other tenant's handoff is checked, counted or reported.
    Tenant(&'a str),
}
const STORED_ENTRIES: usize = 200;
const CHECK_CONCURRENCY: usize = 16;

/// What reconciliation concluded about one handoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconciliationResult {
    /// Local and external agree (both still pending, or already settled).
    Matched,
    /// External completed; the success was applied (missed callback).
    ExternalSuccess,
    /// External failed; the failure was applied.
    ExternalFailure,
    /// External never received the request: a resend with the same key
    /// was scheduled.
    NotFoundResent,
    /// External does not know either: stays UNKNOWN, checked again later.
    StillUnknown,
    /// The local state cannot take the external result: fallout.
    LocalImpossible,
    /// Pending longer than the system's `fallout_after_ms`: fallout.
    SlaBreach,
}

impl ReconciliationResult {
    fn changes_state(self) -> bool {
        !matches!(self, Self::Matched | Self::StillUnknown)
    }
}

/// One checked handoff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReconciliationEntry {
    /// The handoff.
    pub handoff_id: String,
    /// The system.
    pub system: String,
    /// The local status before the check.
    pub status_before: String,
    /// What was concluded.
    pub result: ReconciliationResult,
    /// The class of the external answer, if one came.
    pub external_class: Option<String>,
    /// The raw external code, as evidence.
    pub raw_code: Option<String>,
    /// The rule that refused the observation, if one did.
    pub rule: Option<String>,
}

/// What one reconciliation run checked and changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconciliationReport {
    /// The run's id.
    pub run_id: String,
    /// `scheduled` or `operator`.
    pub trigger: String,
    /// Start (Unix ms).
    pub started_at_ms: i64,
    /// End (Unix ms).
    pub finished_at_ms: i64,
    /// Open handoffs in the index when the run started.
    pub open_handoffs: usize,
    /// Handoffs checked.
    pub checked: usize,
    /// Handoffs whose state the run changed.
    pub changed: usize,
    /// Count per result.
    pub results: BTreeMap<String, usize>,
    /// Every check (all of them in the returned report; the first 200 in
    /// the stored copy).
    pub entries: Vec<ReconciliationEntry>,
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The index could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The reconciler. Cheap to clone; runs are serialized.
#[derive(Clone)]
pub struct Reconciler {
    inner: Arc<Inner>,
}

struct Inner {
    path: CommandPath,
    port: Arc<dyn HandoffPort>,
    config: Arc<SystemsConfig>,
    metrics: Arc<Metrics>,
    clock: SharedClock,
    index: ConsumerStore,
    evidence: EvidenceStore,
    runs: sled::Tree,
    /// Handoff id -> when it is next due (ms, big-endian i64).
    schedule: sled::Tree,
    run_lock: tokio::sync::Mutex<u64>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler").finish_non_exhaustive()
    }
}

impl Reconciler {
    pub(crate) fn new(
        path: CommandPath,
        port: Arc<dyn HandoffPort>,
        config: Arc<SystemsConfig>,
        metrics: Arc<Metrics>,
        clock: SharedClock,
        evidence: EvidenceStore,
    ) -> Result<Self, LogError> {
        let index = path.log().consumer(INDEX_NAME)?;
        let runs = path.log().db().open_tree(RUNS_TREE)?;
        let schedule = path.log().db().open_tree(SCHEDULE_TREE)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                port,
                config,
                metrics,
                clock,
                index,
                evidence,
                runs,
                schedule,
                run_lock: tokio::sync::Mutex::new(0),
            }),
        })
    }

    /// Runs once now over `scope` (waiting for a run in progress to finish
    /// first).
    ///
    /// # Errors
    /// [`ReconcileError`] when the index cannot be read.
    pub async fn run(
        &self,
        trigger: &str,
        scope: Scope<'_>,
    ) -> Result<ReconciliationReport, ReconcileError> {
        let mut counter = self.inner.run_lock.lock().await;
        *counter += 1;
        let inner = &self.inner;
        let started = inner.clock.now_ms();
        let run_id = format!("{}", ulid::Ulid::new());
        let (mut due, open) = self.due(scope, started)?;
        due.sort_by_key(|d| d.row.since_ms);
        due.truncate(inner.config.reconciliation.max_checks_per_run);
        let mut tasks = JoinSet::new();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(CHECK_CONCURRENCY));
        for item in due {
            let this = self.clone();
            let run_id = run_id.clone();
            let semaphore = semaphore.clone();
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await.ok();
                this.check(&run_id, item).await
            });
        }
        let mut entries = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(entry) = done {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.handoff_id.cmp(&b.handoff_id));
        let mut results: BTreeMap<String, usize> = BTreeMap::new();
        for entry in &entries {
            let name = serde_json::to_value(entry.result)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            *results.entry(name).or_default() += 1;
        }
        let changed = entries.iter().filter(|e| e.result.changes_state()).count();
        let report = ReconciliationReport {
            run_id,
            trigger: trigger.to_owned(),
            started_at_ms: started,
            finished_at_ms: inner.clock.now_ms(),
            open_handoffs: open,
            checked: entries.len(),
            changed,
            results,
            entries,
        };
        let m = &inner.metrics;
        m.reconciliation_runs.fetch_add(1, Ordering::Relaxed);
        m.reconciliation_checked
            .fetch_add(report.checked as u64, Ordering::Relaxed);
        m.reconciliation_corrections
            .fetch_add(report.changed as u64, Ordering::Relaxed);
        self.store(&report, *counter);
        if report.checked > 0 {
            tracing::info!(
                run_id = report.run_id.as_str(),
                trigger,
                checked = report.checked,
                changed = report.changed,
                "reconciliation run"
            );
        }
        Ok(report)
    }

    /// The open handoffs `scope` checks in a run started at `started`, and
    /// how many handoffs in `scope` are open; forgets the schedule of
    /// closed ones.
    fn due(&self, scope: Scope<'_>, started: i64) -> Result<(Vec<Due>, usize), LogError> {
        let inner = &self.inner;
        let mut due = Vec::new();
        let mut open = 0;
        let next_check = self.scheduled()?;
        let mut stale: Vec<String> = next_check.keys().cloned().collect();
        for entry in inner.index.scan_prefix(b"") {
            let (key, value) = entry?;
            let id = String::from_utf8_lossy(&key).into_owned();
            if let Ok(i) = stale.binary_search(&id) {
                stale.remove(i);
            }
            let row = serde_json::from_slice::<IndexRow>(&value);
            // An operator's run sees its own tenant's rows only (a row that
            // does not decode names no tenant, so it is not theirs).
            match (scope, &row) {
                (Scope::Tenant(tenant), Ok(row)) if row.tenant != tenant => continue,
                (Scope::Tenant(_), Err(_)) => continue,
                _ => {}
            }
            open += 1;
            let Ok(row) = row else {
                continue;
            };
            let (Some(system), Ok(purpose)) =
                (parse_system(&row.system), row.purpose.parse::<Purpose>())
            else {
                continue;
            };
            let Some(config) = inner.config.system(&row.tenant, system) else {
                continue;
            };
            let not_before = next_check.get(&id).copied().unwrap_or(i64::MIN);
            let sla = i64::try_from(config.sla_ms).unwrap_or(i64::MAX);
            let in_flight_at_most = i64::try_from(
                config
                    .connect_timeout_ms
                    .saturating_add(config.read_timeout_ms),
            )
            .unwrap_or(i64::MAX);
            let age = started.saturating_sub(row.since_ms);
            let is_due = match (scope, row.status) {
                (Scope::Scheduled, IndexStatus::Unknown) => started >= not_before,
                (Scope::Scheduled, IndexStatus::Sent | IndexStatus::Accepted) => {
                    age >= sla && started >= not_before
                }
                (Scope::Tenant(_), IndexStatus::Unknown | IndexStatus::Accepted) => true,
                (Scope::Tenant(_), IndexStatus::Sent) => age > in_flight_at_most,
                _ => false,
            };
            if is_due {
                due.push(Due {
                    id,
                    row,
                    system,
                    purpose,
                });
            }
        }
        // Handoffs that left the index (closed) need no schedule.
        for id in stale {
            self.unschedule(&id);
        }
        Ok((due, open))
    }

    fn store(&self, report: &ReconciliationReport, counter: u64) {
        let mut stored = report.clone();
        stored.entries.truncate(STORED_ENTRIES);
        let mut key = report.started_at_ms.to_be_bytes().to_vec();
        key.extend_from_slice(&counter.to_be_bytes());
        match serde_json::to_vec(&stored) {
            Ok(bytes) => {
                if let Err(e) = self.inner.runs.insert(key, bytes) {
                    tracing::warn!(error = %e, "cannot store a reconciliation report");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode a reconciliation report"),
        }
    }

    /// The stored reports of the last `limit` runs, newest first.
    ///
    /// # Errors
    /// A storage error.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<serde_json::Value>, LogError> {
        let mut out = Vec::new();
        for entry in self.inner.runs.iter().rev().take(limit) {
            let (_, value) = entry?;
            if let Ok(v) = serde_json::from_slice(&value) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Every scheduled next check, by handoff id (sorted).
    fn scheduled(&self) -> Result<BTreeMap<String, i64>, LogError> {
        let mut out = BTreeMap::new();
        for entry in self.inner.schedule.iter() {
            let (key, value) = entry?;
            let at = <[u8; 8]>::try_from(value.as_ref()).map_or(i64::MIN, i64::from_be_bytes);
            out.insert(String::from_utf8_lossy(&key).into_owned(), at);
        }
        Ok(out)
    }

    fn schedule(&self, id: &str, at: i64) {
        if let Err(e) = self.inner.schedule.insert(id.as_bytes(), &at.to_be_bytes()) {
            tracing::warn!(error = %e, "cannot store a reconciliation schedule");
        }
    }

    fn unschedule(&self, id: &str) {
        if let Err(e) = self.inner.schedule.remove(id.as_bytes()) {
            tracing::warn!(error = %e, "cannot remove a reconciliation schedule");
        }
    }
}

/// Runs the reconciler every `interval_ms` until stopped.
pub(crate) async fn run_loop(
    reconciler: Reconciler,
    interval_ms: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                if let Err(e) = reconciler.run("scheduled", Scope::Scheduled).await {
                    tracing::error!(error = %e, "reconciliation run failed");
                }
            }
        }
    }
}
