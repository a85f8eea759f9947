//! The dispatcher: a checkpointed consumer that turns each handoff request
//! (and each scheduled retry) into exactly one external call.
//!
//! For every `HandoffRequested` and `HandoffRetryScheduled` event:
//!
//! 1. a scheduled retry waits for its due time (from the handoff);
//! 2. the port is asked whether a call could go now: an open circuit fails
//!    fast and the job waits, nothing is recorded or marked failed; a
//!    missing or disabled system becomes a security/configuration outcome;
//! 3. `RecordDispatch` is appended to the handoff **before** the call, with
//!    a command id derived from the event id. If that command id was
//!    already recorded, an earlier run recorded the dispatch and may have
//!    called: no second call is made; a handoff still `Sent` is marked
//!    UNKNOWN and reconciliation resolves it;
//! 4. the call carries the handoff's idempotency key;
//! 5. the outcome becomes an `Observe` command on the handoff.
//!
//! Calls run concurrently. The checkpoint is the lowest position whose job
//! is not finished, so a crash replays only unfinished jobs, and step 3
//! makes replaying them safe. In recovery mode (an operator rewound the
//! checkpoint with a recovery bound), events below the bound never cause a
//! call: a handoff left `Sent` is marked UNKNOWN and the suppression is
//! counted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use domain::handoff::{
    Handoff, HandoffCommand, HandoffError, HandoffEvent, HandoffState, HandoffStatus,
};
use domain::idempotency::CommandKey;
use domain::ids::Timestamp;
use domain::outcome::{Observation, ObservationSource, OutcomeClass};
use domain::HandoffDecider;
use eventlog::{ConsumerBatch, ConsumerStore, RecordedEvent};
use tokio::sync::{watch, Semaphore};

use crate::config::{RetryProfile, SystemsConfig};
use crate::evidence::{EvidenceRecord, EvidenceStore};
use crate::external::{CallOutcome, Evidence, ExternalCall, HandoffPort, PortError};
use crate::metrics::Metrics;
use application::clock::SharedClock;
use application::command::{CommandContext, CommandError, CommandPath};
use application::consumer::{Consumer, ConsumerOptions, Halt, JobEnd, Session};
use application::events::decode_handoff;

/// The consumer's name (its checkpoint lives in `consumer/<name>`).
pub const NAME: &str = domain::consumers::HANDOFF_DISPATCHER;

/// Most jobs read ahead of the checkpoint.
const MAX_IN_FLIGHT: usize = 8_192;

/// The dispatcher consumer: one job per request or retry, run on the one
/// consumer loop (which keeps the checkpoint below unfinished jobs and
/// reports recovery mode).
pub(crate) struct Dispatcher {
    pub(crate) shared: Arc<DispatchShared>,
    pub(crate) store: ConsumerStore,
    /// Calls at once.
    pub(crate) permits: Arc<Semaphore>,
}

/// The dispatcher's options on the consumer loop.
pub(crate) fn consumer_options(batch_size: usize) -> ConsumerOptions {
    ConsumerOptions {
        batch_size,
        max_in_flight: MAX_IN_FLIGHT,
        side_effects: true,
        ..ConsumerOptions::default()
    }
}

pub(crate) struct DispatchShared {
    pub(crate) path: CommandPath,
    pub(crate) port: Arc<dyn HandoffPort>,
    pub(crate) config: Arc<SystemsConfig>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: SharedClock,
    pub(crate) evidence: EvidenceStore,
}

#[derive(Clone, Debug)]
enum Trigger {
    Requested,
    Retry { due_at: Timestamp },
}

#[derive(Clone, Debug)]
struct Job {
    position: u64,
    event_id: String,
    stream_id: String,
    tenant: String,
    correlation: String,
    trigger: Trigger,
}

fn job_of(record: &RecordedEvent) -> Option<Job> {
    let trigger = match decode_handoff(record) {
        Ok(Some(HandoffEvent::HandoffRequested { .. })) => Trigger::Requested,
        Ok(Some(HandoffEvent::HandoffRetryScheduled { due_at, .. })) => Trigger::Retry { due_at },
        Ok(_) => return None,
        Err(e) => {
            tracing::error!(position = record.position, error = %e, "dispatcher cannot decode a handoff event; skipped");
            return None;
        }
    };
    Some(Job {
        position: record.position,
        event_id: record.event_id.to_string(),
        stream_id: record.stream_id.clone(),
        tenant: record.tenant_id.clone(),
        correlation: record.correlation_id.clone(),
        trigger,
    })
}

/// A retry after an infrastructure failure (the log), not an external one.
struct Again(Duration);

impl Consumer for Dispatcher {
    async fn handle(
        &mut self,
        batch: Vec<RecordedEvent>,
        session: &mut Session,
    ) -> Result<ConsumerBatch, Halt> {
        for record in batch {
            let Some(job) = job_of(&record) else { continue };
            let suppressed = session.suppressed(job.position);
            let shared = self.shared.clone();
            let permits = self.permits.clone();
            let stop = session.stop_signal();
            let store = self.store.clone();
            session.spawn(job.position, async move {
                if shared.run_job(job, suppressed, permits, stop, store).await {
                    JobEnd::Done
                } else {
                    JobEnd::Unfinished
                }
            });
        }
        Ok(ConsumerBatch::default())
    }
}

impl DispatchShared {
    /// Runs one job; true when it is finished (false only when stopped).
    #[tracing::instrument(
        name = "dispatch_job",
        skip_all,
        fields(
            stream_id = %job.stream_id,
            event_id = %job.event_id,
            position = job.position,
            correlation_id = %job.correlation,
            suppressed,
        )
    )]
    async fn run_job(
        &self,
        job: Job,
        suppressed: bool,
        permits: Arc<Semaphore>,
        mut stop: watch::Receiver<bool>,
        store: ConsumerStore,
    ) -> bool {
        if let Trigger::Retry { due_at } = job.trigger {
            loop {
                let wait = due_at.0.saturating_sub(self.clock.now_ms());
                if wait <= 0 {
                    break;
                }
                let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0).min(1_000));
                tokio::select! {
                    _ = stop.changed() => return false,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
        let _permit = if suppressed {
            self.metrics
                .suppressed_side_effects
                .fetch_add(1, Ordering::Relaxed);
            if let Err(e) = store.record_suppressed(1) {
                tracing::warn!(error = %e, "cannot count a suppressed call");
            }
            None
        } else {
            match permits.acquire_owned().await {
                Ok(permit) => Some(permit),
                Err(_) => return false,
            }
        };
        loop {
            let step = if suppressed {
                self.mark_interrupted(&job, "RECOVERY_REPLAY", None, &stop)
                    .await
            } else {
                self.dispatch(&job, &stop).await
            };
            match step {
                Ok(()) => return true,
                Err(Again(wait)) => {
                    if *stop.borrow() {
                        return false;
                    }
                    tokio::select! {
                        _ = stop.changed() => return false,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    fn context(&self, job: &Job, action: &str) -> CommandContext {
        CommandContext::new(
            CommandKey::reaction(job.event_id.clone(), action),
            job.tenant.clone(),
            job.correlation.clone(),
        )
        .caused_by_event(job.event_id.clone())
    }

    fn load(&self, job: &Job) -> Result<Option<Handoff>, Again> {
        match self.shared_load(&job.stream_id) {
            Ok(HandoffState::Open(handoff)) => Ok(Some(handoff)),
            Ok(HandoffState::Empty) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "dispatcher cannot load a handoff; retrying");
                Err(Again(Duration::from_millis(200)))
            }
        }
    }

    fn shared_load(&self, stream: &str) -> Result<HandoffState, CommandError<HandoffError>> {
        self.path.load::<HandoffDecider>(stream).map(|l| l.state)
    }

    fn retry_profile(&self, handoff: &Handoff) -> RetryProfile {
        self.config
            .system(handoff.subject.tenant_id.as_str(), handoff.subject.target)
            .map(|c| c.retry)
            .unwrap_or_default()
    }

    async fn dispatch(&self, job: &Job, stop: &watch::Receiver<bool>) -> Result<(), Again> {
        let Some(handoff) = self.load(job)? else {
            return Ok(());
        };
        if !matches!(
            handoff.status,
            HandoffStatus::Requested | HandoffStatus::RetryScheduled { .. } | HandoffStatus::Sent
        ) {
            // Already past this send (a replay, or reconciliation moved it on).
            return Ok(());
        }
        let target = handoff.subject.target;
        let local_refusal = match self.port.ready(handoff.subject.tenant_id.as_str(), target) {
            Ok(()) => None,
            Err(PortError::CircuitOpen { retry_in_ms, .. }) => {
                // Fail fast without touching the handoff: nothing is marked failed.
                self.metrics.record_circuit_fast_fail(target);
                return Err(Again(Duration::from_millis(retry_in_ms.clamp(10, 5_000))));
            }
            Err(other) => Some(other),
        };
        let at = Timestamp(self.clock.now_ms());
        let recorded = self
            .path
            .execute::<HandoffDecider>(
                &job.stream_id,
                &HandoffCommand::RecordDispatch { at },
                &self.context(job, "dispatch"),
            )
            .await;
        match recorded {
            Ok(outcome) if outcome.deduplicated => {
                // An earlier run recorded this dispatch and may have called:
                // never a blind second call.
                let send = outcome
                    .positions
                    .and_then(|p| self.path.log().read_at(*p.start()).ok().flatten())
                    .and_then(|record| match decode_handoff(&record) {
                        Ok(Some(HandoffEvent::HandoffSent { send, .. })) => Some(send),
                        _ => None,
                    });
                return self
                    .mark_interrupted(job, "DISPATCH_INTERRUPTED", send, stop)
                    .await;
            }
            Ok(_) => {}
            Err(CommandError::Rejected {
                source: HandoffError::RetryNotDue,
            }) => {
                return Err(Again(Duration::from_millis(50)));
            }
            Err(CommandError::Rejected { .. }) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "dispatcher cannot record a dispatch; retrying");
                return Err(Again(Duration::from_millis(200)));
            }
        }
        let outcome = match local_refusal {
            Some(refusal) => local_outcome(&refusal),
            None => {
                let call = ExternalCall {
                    tenant: handoff.subject.tenant_id.clone(),
                    system: target,
                    purpose: handoff.subject.purpose,
                    handoff_id: handoff.id.clone(),
                    idempotency_key: handoff.idempotency_key.clone(),
                    request: handoff.request_snapshot.clone(),
                    correlation_id: job.correlation.clone(),
                };
                tokio::select! {
                    answered = self.port.execute(&call) => match answered {
                        Ok(outcome) => outcome,
                        Err(refusal) => local_outcome(&refusal),
                    },
                    () = stopped_for(stop.clone(), CALL_GRACE_AT_STOP) => {
                        // As a crash leaves it: dispatched, outcome unknown;
                        // the next start marks it so and reconciliation asks.
                        tracing::warn!(
                            handoff_id = handoff.id.as_str(),
                            system = target.as_str(),
                            "stopping: an external call still in flight is left to reconciliation after the restart"
                        );
                        return Err(Again(Duration::ZERO));
                    }
                }
            }
        };
        self.metrics.record_call(target, outcome.class);
        let now = self.clock.now_ms();
        let evidence = EvidenceRecord::of(now, &handoff.id, target.as_str(), "dispatch", &outcome);
        tracing::debug!(
            handoff_id = handoff.id.as_str(),
            system = target.as_str(),
            class = outcome.class.as_str(),
            raw_code = outcome.raw_code.as_deref().unwrap_or(""),
            "external call finished"
        );
        let observed = Observed {
            outcome,
            at: now,
            evidence: Some(evidence),
        };
        self.observe(job, &handoff, observed, "observe", stop).await
    }

    /// Records the outcome of a call, with the call's `evidence` attached
    /// (stored on its own when the outcome is not appended: refused, or
    /// recorded before by a retry), retrying while the log refuses it:
    /// a call that was made keeps its outcome through a passing failure.
    /// A stop ends the retries with the job unfinished, as a crash would:
    /// the next start finds the dispatch recorded without its outcome and
    /// marks the handoff UNKNOWN for reconciliation. (A log that is fenced
    /// or closed refuses every append until a restart, so without the stop
    /// this would hold the shutdown for good.)
    async fn observe(
        &self,
        job: &Job,
        handoff: &Handoff,
        observed: Observed,
        action: &str,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Again> {
        let Observed {
            outcome,
            at: now,
            evidence,
        } = observed;
        let command = HandoffCommand::Observe {
            observation: Observation {
                handoff_id: handoff.id.clone(),
                attempt: handoff.subject.attempt,
                class: outcome.class,
                raw_code: outcome.raw_code,
                raw_label: outcome.raw_label,
                external_reference: outcome.external_reference,
                observed_at: Timestamp(now),
                source: ObservationSource::Dispatch,
            },
            retry_policy: self.retry_profile(handoff).policy(),
        };
        // The observation carries the time it was made; the context hashes
        // only the key (trigger event and action), so a retry matches.
        let mut context = self.context(job, action);
        if let Some(record) = &evidence {
            let (key, value) = self.evidence.attachment(record);
            context = context.attach(key, value);
        }
        // Evidence of a call whose outcome this did not append.
        let on_its_own = || {
            if let Some(record) = &evidence {
                self.evidence.keep_unattached(record);
            }
        };
        loop {
            let executed = self
                .path
                .execute::<HandoffDecider>(&job.stream_id, &command, &context)
                .await;
            match &executed {
                Ok(_)
                | Err(CommandError::Rejected { .. })
                | Err(CommandError::IdempotencyConflict { .. }) => {
                    if !EvidenceStore::attached(&executed) {
                        on_its_own();
                    }
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dispatcher cannot record an observation; retrying");
                    let mut stop = stop.clone();
                    if *stop.borrow_and_update() {
                        on_its_own();
                        return Err(Again(Duration::ZERO));
                    }
                    tokio::select! {
                        changed = stop.changed() => {
                            if changed.is_err() || *stop.borrow() {
                                on_its_own();
                                return Err(Again(Duration::ZERO));
                            }
                        }
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    }

    /// A dispatch was recorded but its outcome was not: the call may or may
    /// not have happened. A handoff still `Sent` (by this job's send, when
    /// known, not a later one in flight) becomes UNKNOWN.
    async fn mark_interrupted(
        &self,
        job: &Job,
        code: &str,
        send: Option<u32>,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Again> {
        let Some(handoff) = self.load(job)? else {
            return Ok(());
        };
        if handoff.status != HandoffStatus::Sent || send.is_some_and(|s| s != handoff.sends) {
            return Ok(());
        }
        self.metrics
            .interrupted_dispatches
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            handoff_id = handoff.id.as_str(),
            code,
            "dispatch outcome unknown; reconciliation will resolve it"
        );
        let outcome = CallOutcome {
            class: OutcomeClass::Unknown,
            raw_code: Some(code.to_owned()),
            raw_label: Some("dispatch recorded, outcome not recorded".to_owned()),
            external_reference: None,
            evidence: Evidence::default(),
        };
        let now = self.clock.now_ms();
        let observed = Observed {
            outcome,
            at: now,
            evidence: None,
        };
        self.observe(
            job,
            &handoff,
            observed,
            &format!("interrupted:{}", handoff.sends),
            stop,
        )
        .await
    }
}

/// How long a stopping server still waits for an external call in flight
/// before it leaves the call to reconciliation after the restart: a call
/// may hang up to its system's read timeout, which may be configured far
/// longer than a stop should take.
pub const CALL_GRACE_AT_STOP: Duration = Duration::from_secs(3);

/// Resolves `grace` after `stop` turned true (never, while it stays false).
async fn stopped_for(mut stop: watch::Receiver<bool>, grace: Duration) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        // The sender is gone: the process is ending too.
    }
    tokio::time::sleep(grace).await;
}

/// What the dispatcher observed of a call: its outcome, when (Unix ms),
/// and the call's evidence (none for an outcome made up without a call).
struct Observed {
    outcome: CallOutcome,
    at: i64,
    evidence: Option<EvidenceRecord>,
}

/// The outcome of a call the adapter refused to make after the dispatch was
/// recorded.
fn local_outcome(refusal: &PortError) -> CallOutcome {
    let (class, code) = match refusal {
        PortError::CircuitOpen { .. } => (OutcomeClass::TechnicalRetryable, "CIRCUIT_OPEN"),
        PortError::NotConfigured { .. } => {
            (OutcomeClass::SecurityConfiguration, "SYSTEM_NOT_CONFIGURED")
        }
        PortError::Disabled { .. } => (OutcomeClass::SecurityConfiguration, "SYSTEM_DISABLED"),
        PortError::CapabilityDisabled { .. } => {
            (OutcomeClass::SecurityConfiguration, "CAPABILITY_DISABLED")
        }
        PortError::Unsupported { .. } => (OutcomeClass::Unclassified, "PURPOSE_NOT_SUPPORTED"),
    };
    CallOutcome {
        class,
        raw_code: Some(code.to_owned()),
        raw_label: Some(refusal.to_string()),
        external_reference: None,
        evidence: Evidence::default(),
    }
}
