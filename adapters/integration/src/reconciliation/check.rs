//! One handoff's check, in steps: load the handoff, query the external
//! system's status, read the answer (and keep it as evidence), apply it
//! through a domain command, decide the result (an SLA breach if overdue),
//! and schedule the next check.

use domain::handoff::{
    Handoff, HandoffCommand, HandoffError, HandoffEvent, HandoffState, HandoffStatus,
};
use domain::idempotency::{handoff_id_for_key, CommandKey, Purpose, TargetSystem};
use domain::ids::{handoff_stream, TenantId, Timestamp};
use domain::outcome::{FalloutReason, Observation, ObservationSource, OutcomeClass};
use domain::{HandoffDecider, RuleViolation};

use super::index::IndexRow;
use super::{Reconciler, ReconciliationEntry, ReconciliationResult};
use crate::config::SystemConfig;
use crate::evidence::{EvidenceRecord, EvidenceStore};
use crate::external::{CallOutcome, PortError, StatusAnswer, StatusQuery};
use application::command::{CommandContext, CommandError, CommandOutcome};
use application::events::decode_handoff;

/// An open handoff a run checks.
pub(super) struct Due {
    pub(super) id: String,
    pub(super) row: IndexRow,
    pub(super) system: TargetSystem,
    pub(super) purpose: Purpose,
}

/// What a status answer says, as the observation and the report carry it.
struct Reading {
    class: OutcomeClass,
    raw_code: Option<String>,
    raw_label: Option<String>,
    reference: Option<String>,
    /// The system has no record of the key.
    not_found: bool,
}

impl Reading {
    fn of(answer: &StatusAnswer) -> Self {
        match answer {
            StatusAnswer::Known(o) => Self {
                class: o.class,
                raw_code: o.raw_code.clone(),
                raw_label: o.raw_label.clone(),
                reference: o.external_reference.clone(),
                not_found: false,
            },
            StatusAnswer::NotFound(_) => Self {
                class: OutcomeClass::TechnicalRetryable,
                raw_code: Some("NOT_FOUND".to_owned()),
                raw_label: Some("the system has no record of the key".to_owned()),
                reference: None,
                not_found: true,
            },
            StatusAnswer::Unavailable(o) => Self {
                class: OutcomeClass::Unknown,
                raw_code: o.raw_code.clone(),
                raw_label: o.raw_label.clone(),
                reference: None,
                not_found: false,
            },
        }
    }

    /// The answer as evidence (a not-found answer carries only its own).
    fn evidence(&self, answer: &StatusAnswer) -> CallOutcome {
        match answer {
            StatusAnswer::Known(o) | StatusAnswer::Unavailable(o) => o.clone(),
            StatusAnswer::NotFound(evidence) => CallOutcome {
                class: self.class,
                raw_code: self.raw_code.clone(),
                raw_label: self.raw_label.clone(),
                external_reference: None,
                evidence: evidence.clone(),
            },
        }
    }
}

impl Reconciler {
    /// Checks one due handoff: what was concluded, with the evidence.
    #[tracing::instrument(
        name = "reconciliation_check",
        skip_all,
        fields(handoff_id = %due.id, run_id = %run_id, system = %due.row.system)
    )]
    pub(super) async fn check(&self, run_id: &str, due: Due) -> ReconciliationEntry {
        let inner = &self.inner;
        let mut entry = ReconciliationEntry {
            handoff_id: due.id.clone(),
            system: due.row.system.clone(),
            status_before: due.row.status.as_str().to_owned(),
            result: ReconciliationResult::Matched,
            external_class: None,
            raw_code: None,
            rule: None,
        };
        let interval = i64::try_from(inner.config.reconciliation.interval_ms).unwrap_or(i64::MAX);
        let handoff_id = handoff_id_for_key(&due.row.key);
        let stream = handoff_stream(&handoff_id);
        let handoff = match inner.path.load::<HandoffDecider>(&stream) {
            Ok(loaded) => match loaded.state {
                HandoffState::Open(h) => h,
                HandoffState::Empty => return entry,
            },
            Err(e) => {
                entry.result = ReconciliationResult::StillUnknown;
                entry.rule = Some(format!("load failed: {e}"));
                return entry;
            }
        };
        let unknown = handoff.status == HandoffStatus::Unknown;
        if !matches!(
            handoff.status,
            HandoffStatus::Sent | HandoffStatus::Accepted | HandoffStatus::Unknown
        ) {
            // The index lags: the handoff already moved on.
            return entry;
        }
        let now = inner.clock.now_ms();
        let config = inner.config.system(&due.row.tenant, due.system);
        let correlation = inner
            .path
            .log()
            .read_stream(&stream, 1, 1)
            .ok()
            .and_then(|r| r.into_iter().next())
            .map_or_else(|| handoff_id.to_string(), |r| r.correlation_id);
        let context = |action: &str| {
            CommandContext::new(
                CommandKey::job(format!("{run_id}:{handoff_id}"), action),
                due.row.tenant.clone(),
                correlation.clone(),
            )
        };
        let answer = match self.query(&due).await {
            Ok(answer) => answer,
            Err(e) => {
                entry.result = ReconciliationResult::StillUnknown;
                entry.rule = Some(e.to_string());
                self.schedule(&due.id, now.saturating_add(interval));
                return entry;
            }
        };
        let reading = Reading::of(&answer);
        let evidence = EvidenceRecord::of(
            now,
            &handoff.id,
            due.system.as_str(),
            "reconciliation",
            &reading.evidence(&answer),
        );
        entry.external_class = Some(reading.class.as_str().to_owned());
        entry.raw_code = reading.raw_code.clone();
        if matches!(answer, StatusAnswer::Unavailable(_)) && !unknown {
            // A failed status read says nothing: leave a pending handoff
            // alone (its evidence is kept on its own).
            inner.evidence.keep_unattached(&evidence);
            entry.result = ReconciliationResult::StillUnknown;
            if let Some(breached) = self
                .breach_if_overdue(&due, &entry, unknown, now, config, &stream, &context("sla"))
                .await
            {
                entry.result = breached;
                return entry;
            }
            self.schedule(&due.id, now.saturating_add(interval));
            return entry;
        }
        let not_found = reading.not_found;
        let command = HandoffCommand::Observe {
            observation: observation(&handoff, reading, now),
            retry_policy: config.map(|c| c.retry).unwrap_or_default().policy(),
        };
        // The answer's evidence travels with the observation it explains.
        let (key, value) = inner.evidence.attachment(&evidence);
        let executed = inner
            .path
            .execute::<HandoffDecider>(&stream, &command, &context("observe").attach(key, value))
            .await;
        if !EvidenceStore::attached(&executed) {
            inner.evidence.keep_unattached(&evidence);
        }
        entry.result = self.result_of(executed, not_found, &mut entry.rule);
        if let Some(breached) = self
            .breach_if_overdue(&due, &entry, unknown, now, config, &stream, &context("sla"))
            .await
        {
            entry.result = breached;
        }
        self.schedule_next(&due.id, entry.result, now, interval, config);
        entry
    }

    /// Asks the external system the handoff's status by idempotency key.
    async fn query(&self, due: &Due) -> Result<StatusAnswer, PortError> {
        let query = StatusQuery {
            tenant: TenantId::new(due.row.tenant.clone()),
            system: due.system,
            purpose: due.purpose,
            idempotency_key: due.row.key.clone(),
        };
        self.inner.metrics.record_status_query(due.system);
        self.inner.port.status(&query).await
    }

    /// What applying the observation concluded, from the first event it
    /// wrote (none: the handoff already agreed); a refused observation
    /// leaves its rule in `rule`.
    fn result_of(
        &self,
        executed: Result<CommandOutcome, CommandError<HandoffError>>,
        not_found: bool,
        rule: &mut Option<String>,
    ) -> ReconciliationResult {
        match executed {
            Err(CommandError::Rejected { source }) => {
                *rule = Some(source.rule().to_owned());
                ReconciliationResult::LocalImpossible
            }
            Err(e) => {
                *rule = Some(e.to_string());
                ReconciliationResult::StillUnknown
            }
            Ok(outcome) => match outcome
                .positions
                .and_then(|p| self.inner.path.log().read_at(*p.start()).ok().flatten())
            {
                None => ReconciliationResult::Matched,
                Some(record) => match decode_handoff(&record) {
                    Ok(Some(HandoffEvent::HandoffSucceeded { .. })) => {
                        ReconciliationResult::ExternalSuccess
                    }
                    Ok(Some(HandoffEvent::HandoffRejected { .. })) => {
                        ReconciliationResult::ExternalFailure
                    }
                    Ok(Some(HandoffEvent::HandoffFalloutRaised {
                        reason: FalloutReason::LocalImpossible,
                        ..
                    })) => ReconciliationResult::LocalImpossible,
                    Ok(Some(HandoffEvent::HandoffFalloutRaised { .. })) => {
                        ReconciliationResult::ExternalFailure
                    }
                    Ok(Some(HandoffEvent::HandoffRetryScheduled { .. })) if not_found => {
                        ReconciliationResult::NotFoundResent
                    }
                    Ok(Some(HandoffEvent::HandoffRetryScheduled { .. })) => {
                        ReconciliationResult::ExternalFailure
                    }
                    Ok(Some(HandoffEvent::HandoffAccepted { .. })) => ReconciliationResult::Matched,
                    _ => ReconciliationResult::StillUnknown,
                },
            },
        }
    }

    /// A handoff still pending (not UNKNOWN: that one waits for an answer)
    /// past its system's `fallout_after_ms` is declared an SLA breach.
    #[allow(clippy::too_many_arguments)]
    async fn breach_if_overdue(
        &self,
        due: &Due,
        entry: &ReconciliationEntry,
        unknown: bool,
        now: i64,
        config: Option<&SystemConfig>,
        stream: &str,
        context: &CommandContext,
    ) -> Option<ReconciliationResult> {
        let after = i64::try_from(config?.fallout_after_ms?).unwrap_or(i64::MAX);
        let pending = matches!(
            entry.result,
            ReconciliationResult::Matched | ReconciliationResult::StillUnknown
        );
        if unknown || !pending || now.saturating_sub(due.row.since_ms) < after {
            return None;
        }
        let command = HandoffCommand::DeclareSlaBreach { at: Timestamp(now) };
        match self
            .inner
            .path
            .execute::<HandoffDecider>(stream, &command, context)
            .await
        {
            Ok(outcome) if outcome.positions.is_some() => Some(ReconciliationResult::SlaBreach),
            _ => None,
        }
    }

    /// When the handoff is checked next: after `interval` while still
    /// unknown, after its SLA when it matched, never once it changed.
    fn schedule_next(
        &self,
        id: &str,
        result: ReconciliationResult,
        now: i64,
        interval: i64,
        config: Option<&SystemConfig>,
    ) {
        match result {
            ReconciliationResult::StillUnknown => self.schedule(id, now.saturating_add(interval)),
            ReconciliationResult::Matched => {
                let sla = config.map_or(interval, |c| i64::try_from(c.sla_ms).unwrap_or(i64::MAX));
                self.schedule(id, now.saturating_add(sla));
            }
            _ => self.unschedule(id),
        }
    }
}

/// The observation a status answer makes on the handoff's current attempt.
fn observation(handoff: &Handoff, reading: Reading, now: i64) -> Observation {
    Observation {
        handoff_id: handoff.id.clone(),
        attempt: handoff.subject.attempt,
        class: reading.class,
        raw_code: reading.raw_code,
        raw_label: reading.raw_label,
        external_reference: reading.reference,
        observed_at: Timestamp(now),
        source: ObservationSource::Reconciliation,
    }
}
