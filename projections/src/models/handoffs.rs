//! Handoffs: by stage and target system, oldest unknown and pending first,
//! with ages, attempt counts and an overdue flag against the target's SLA.
//!
//! Keys (after the tenant prefix), timestamps ascending (oldest first):
//! - `0x01 | handoff id` → [`HandoffRecord`]
//! - `0x02 | rank | requested at | handoff id` → handoff id
//!
//! - `0x10 | target | outcome class` → observations seen (u64, for the dashboard)
//! - `0x11 | target | stage` → handoffs now in that stage (u64, for the dashboard)
//!
//! The counters are written in the same batch as the rows, so the dashboard
//! can never disagree with the list; a counter at zero is removed.
//!
//! The rank puts unknown outcomes first (0), then every other pending stage
//! (1), then handoffs waiting for a human (2), then closed ones (3). Index
//! keys change only when the rank does (a few times in a handoff's life), not
//! on every stage change: a stage filter scans its rank's section, a target
//! filter reads the same index and skips other targets.

use std::collections::BTreeMap;

use domain::handoff::HandoffEvent;
use domain::idempotency::{Purpose, TargetSystem};
use domain::ids::{HandoffId, LineId, OrderId, StreamKind, TenantId, Timestamp};
use domain::order::Step;
use domain::outcome::{FalloutReason, Observation, ObservationSource, OutcomeClass};
use serde::{Deserialize, Serialize};

use super::{class_code, decode_row, missing, same_tenant, stream_id_part, target_code};
use crate::commit::Writes;
use crate::error::{FoldError, QueryError};
use crate::event::{Decoded, Payload};
use crate::keys::{self, KeyBuf};
use crate::page::{List, Page, Scan};
use crate::projector::Projector;
use crate::store::{KvCache, Row, RowCache};

const ROW: u8 = 0x01;
const BY_RANK: u8 = 0x02;
const NAME: &str = "handoffs";
/// Key kind of the outcome counters.
pub(crate) const OUTCOME_COUNT: u8 = 0x10;
/// Key kind of the stage gauges.
pub(crate) const STAGE_COUNT: u8 = 0x11;
/// Key kind of the rank index (the dashboard reads its oldest pending entry).
pub(crate) const RANK_INDEX: u8 = BY_RANK;

/// Where a handoff stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HandoffStage {
    /// Recorded, not sent yet.
    Requested,
    /// Sent; no outcome yet.
    Sent,
    /// Acknowledged; the result comes by callback.
    Accepted,
    /// Done.
    Succeeded,
    /// Refused by the target; waits for an operator.
    Rejected,
    /// Ambiguous; waits for reconciliation.
    Unknown,
    /// A technical failure; a resend is scheduled.
    RetryScheduled,
    /// Needs a human.
    Fallout,
    /// Closed by an operator.
    Resolved,
    /// Withdrawn: its order was cancelled while it was pending; nothing is
    /// sent again.
    Withdrawn,
}

/// Every stage, in code order.
pub const STAGES: [HandoffStage; 10] = [
    HandoffStage::Requested,
    HandoffStage::Sent,
    HandoffStage::Accepted,
    HandoffStage::Succeeded,
    HandoffStage::Rejected,
    HandoffStage::Unknown,
    HandoffStage::RetryScheduled,
    HandoffStage::Fallout,
    HandoffStage::Resolved,
    HandoffStage::Withdrawn,
];

impl HandoffStage {
    /// True while the outcome is open (requested, sent, accepted, unknown,
    /// retry scheduled).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Self::Requested | Self::Sent | Self::Accepted | Self::Unknown | Self::RetryScheduled
        )
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Requested => 0,
            Self::Sent => 1,
            Self::Accepted => 2,
            Self::Succeeded => 3,
            Self::Rejected => 4,
            Self::Unknown => 5,
            Self::RetryScheduled => 6,
            Self::Fallout => 7,
            Self::Resolved => 8,
            Self::Withdrawn => 9,
        }
    }

    pub(crate) fn rank(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Requested | Self::Sent | Self::Accepted | Self::RetryScheduled => 1,
            Self::Rejected | Self::Fallout => 2,
            Self::Succeeded | Self::Resolved | Self::Withdrawn => 3,
        }
    }
}

/// The stage a handoff event moves its handoff to (`None`: unchanged).
pub(crate) fn stage_after(event: &HandoffEvent) -> Option<HandoffStage> {
    Some(match event {
        HandoffEvent::HandoffRequested { .. } => HandoffStage::Requested,
        HandoffEvent::HandoffSent { .. } => HandoffStage::Sent,
        HandoffEvent::HandoffAccepted { .. } => HandoffStage::Accepted,
        HandoffEvent::HandoffSucceeded { .. } => HandoffStage::Succeeded,
        HandoffEvent::HandoffRejected { .. } => HandoffStage::Rejected,
        HandoffEvent::HandoffOutcomeUnknown { .. } => HandoffStage::Unknown,
        HandoffEvent::HandoffRetryScheduled { .. } => HandoffStage::RetryScheduled,
        HandoffEvent::HandoffFalloutRaised { .. } => HandoffStage::Fallout,
        HandoffEvent::HandoffResolved { .. } => HandoffStage::Resolved,
        HandoffEvent::HandoffWithdrawn { .. } => HandoffStage::Withdrawn,
        HandoffEvent::HandoffObservationNoted { .. } => return None,
    })
}

/// The time a handoff event happened at (its observation's time when it
/// carries one).
pub(crate) fn time_of(event: &HandoffEvent) -> Timestamp {
    match event {
        HandoffEvent::HandoffRequested { at, .. }
        | HandoffEvent::HandoffSent { at, .. }
        | HandoffEvent::HandoffFalloutRaised { at, .. }
        | HandoffEvent::HandoffResolved { at, .. }
        | HandoffEvent::HandoffWithdrawn { at, .. } => *at,
        HandoffEvent::HandoffAccepted { observation }
        | HandoffEvent::HandoffSucceeded { observation, .. }
        | HandoffEvent::HandoffRejected { observation, .. }
        | HandoffEvent::HandoffOutcomeUnknown { observation }
        | HandoffEvent::HandoffRetryScheduled { observation, .. }
        | HandoffEvent::HandoffObservationNoted { observation } => observation.observed_at,
    }
}

/// An observation's evidence, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservationRecord {
    /// The normalized class.
    pub class: OutcomeClass,
    /// The raw external code, as evidence.
    pub raw_code: Option<String>,
    /// The raw external label, as evidence.
    pub raw_label: Option<String>,
    /// The target's reference.
    pub external_reference: Option<String>,
    /// Which channel delivered it.
    pub source: ObservationSource,
    /// When it was observed.
    pub observed_at: Timestamp,
}

impl From<&Observation> for ObservationRecord {
    fn from(o: &Observation) -> Self {
        Self {
            class: o.class,
            raw_code: o.raw_code.clone(),
            raw_label: o.raw_label.clone(),
            external_reference: o.external_reference.clone(),
            source: o.source,
            observed_at: o.observed_at,
        }
    }
}

/// How an operator closed a handoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffResolution {
    /// Who.
    pub operator: String,
    /// What was done.
    pub note: String,
    /// When.
    pub at: Timestamp,
}

/// One handoff as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRecord {
    /// The handoff.
    pub handoff_id: HandoffId,
    /// The tenant (from the log envelope).
    pub tenant_id: TenantId,
    /// The order.
    pub order_id: OrderId,
    /// The order line.
    pub line_id: LineId,
    /// The external system.
    pub target: TargetSystem,
    /// What is asked of it.
    pub purpose: Purpose,
    /// The forward step it carries out (`None` for compensations).
    pub step: Option<Step>,
    /// The business attempt, from 1.
    pub attempt: u32,
    /// The business idempotency key.
    pub idempotency_key: String,
    /// The sha256 of the unredacted request.
    pub request_hash: String,
    /// Where it stands.
    pub stage: HandoffStage,
    /// How many times the request was sent.
    pub sends: u32,
    /// How many retries were scheduled.
    pub retries: u32,
    /// When the scheduled resend is due.
    pub retry_due_at: Option<Timestamp>,
    /// Why it is rejected or in fallout.
    pub fallout_reason: Option<FalloutReason>,
    /// When it was requested.
    pub requested_at: Timestamp,
    /// When it was last sent.
    pub last_sent_at: Option<Timestamp>,
    /// The latest observation.
    pub last_observation: Option<ObservationRecord>,
    /// How many observations were recorded.
    pub observations: u32,
    /// How an operator closed it.
    pub resolution: Option<HandoffResolution>,
    /// The time of its latest event.
    pub updated_at: Timestamp,
    /// Its stream version.
    pub version: u64,
}

/// Service levels per target system: a pending handoff older than its
/// target's SLA is overdue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicy {
    /// SLA of targets not listed below, in ms.
    pub default_ms: u64,
    /// SLA per target, in ms.
    pub by_target: BTreeMap<TargetSystem, u64>,
    /// SLA per tenant and target, in ms, as the tenant's external systems
    /// are configured; wins over `by_target`.
    #[serde(default)]
    pub by_tenant: BTreeMap<String, BTreeMap<TargetSystem, u64>>,
}

impl Default for SlaPolicy {
    /// Inventory 15 min, provisioning 4 h, billing 1 h, others 1 h.
    fn default() -> Self {
        Self {
            default_ms: 60 * 60 * 1000,
            by_target: BTreeMap::from([
                (TargetSystem::Inventory, 15 * 60 * 1000),
                (TargetSystem::Provisioning, 4 * 60 * 60 * 1000),
                (TargetSystem::Billing, 60 * 60 * 1000),
            ]),
            by_tenant: BTreeMap::new(),
        }
    }
}

impl SlaPolicy {
    /// The SLA of `target` for `tenant`, in ms: the tenant's configured
    /// SLA, else the target's, else the default.
    pub fn sla_ms(&self, tenant: &str, target: TargetSystem) -> u64 {
        self.by_tenant
            .get(tenant)
            .and_then(|targets| targets.get(&target))
            .or_else(|| self.by_target.get(&target))
            .copied()
            .unwrap_or(self.default_ms)
    }
}

/// A handoff with ages computed at `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandoffView {
    /// The stored handoff.
    #[serde(flatten)]
    pub handoff: HandoffRecord,
    /// Milliseconds since it was requested.
    pub age_ms: i64,
    /// Milliseconds since its latest observation.
    pub since_last_observation_ms: Option<i64>,
    /// Its target's SLA, in ms.
    pub sla_ms: u64,
    /// Pending and older than its SLA.
    pub overdue: bool,
}

impl HandoffView {
    pub(crate) fn new(handoff: HandoffRecord, sla: &SlaPolicy, now_ms: i64) -> Self {
        let age_ms = now_ms.saturating_sub(handoff.requested_at.0);
        let sla_ms = sla.sla_ms(handoff.tenant_id.as_str(), handoff.target);
        let overdue = handoff.stage.is_pending() && i128::from(age_ms) > i128::from(sla_ms);
        Self {
            since_last_observation_ms: handoff
                .last_observation
                .as_ref()
                .map(|o| now_ms.saturating_sub(o.observed_at.0)),
            age_ms,
            sla_ms,
            overdue,
            handoff,
        }
    }
}

/// Filters of the handoff list (combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffFilter {
    /// Only this stage.
    pub stage: Option<HandoffStage>,
    /// Only this target system.
    pub target: Option<TargetSystem>,
    /// Only pending handoffs (unknown first, then the others, oldest first).
    pub pending_only: bool,
    /// Only pending handoffs older than their SLA.
    pub overdue_only: bool,
}

impl HandoffFilter {
    /// Whether a page under this filter may skip rows its index walks
    /// (a filter checked row by row, up to [`crate::MAX_EXAMINED`] rows a
    /// page) rather than read only the rows it returns.
    pub fn may_skip_rows(&self) -> bool {
        // Kept by rank: statuses share ranks, and the target and the
        // SLA are checked row by row.
        self.stage.is_some() || self.target.is_some() || self.overdue_only
    }
}

pub(crate) fn row_key(tenant: &[u8; 16], id: &str) -> Vec<u8> {
    KeyBuf::new(tenant, ROW).str(id).done()
}

impl Row for HandoffRecord {
    fn index_entries(&self, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        let t = keys::tenant_prefix(self.tenant_id.as_str());
        let id = self.handoff_id.as_str();
        let ts = keys::ts_asc(self.requested_at.0);
        let rank = self.stage.rank();
        out.push((
            KeyBuf::new(&t, BY_RANK).byte(rank).u64(ts).str(id).done(),
            id.as_bytes().to_vec(),
        ));
    }
}

/// The handoffs projector.
#[derive(Default)]
pub(crate) struct HandoffsProjector {
    rows: RowCache<HandoffRecord>,
    counters: KvCache,
    tenants: keys::TenantCache,
}

impl Projector for HandoffsProjector {
    fn apply(&mut self, tree: &sled::Tree, event: &Decoded) -> Result<(), FoldError> {
        let handoff = match &event.payload {
            Payload::Handoff(h) => h,
            Payload::Undecodable {
                kind: StreamKind::Handoff,
                why,
            } => return Err(FoldError(why.clone())),
            _ => return Ok(()),
        };
        let id = stream_id_part(event, StreamKind::Handoff)?;
        let tenant = self.tenants.prefix(&event.record.tenant_id);
        let key = row_key(&tenant, id);
        let at = time_of(handoff);
        if let HandoffEvent::HandoffRequested {
            handoff_id,
            subject,
            idempotency_key,
            request_hash,
            at,
            ..
        } = handoff
        {
            same_tenant(event, subject.tenant_id.as_str())?;
            if handoff_id.as_str() != id {
                return Err(FoldError(format!(
                    "HandoffRequested for {handoff_id} on stream {}",
                    event.record.stream_id
                )));
            }
            super::first_of_stream(event, "handoff", id)?;
            let row = HandoffRecord {
                handoff_id: handoff_id.clone(),
                tenant_id: TenantId::new(event.record.tenant_id.clone()),
                order_id: subject.order_id.clone(),
                line_id: subject.line_id.clone(),
                target: subject.target,
                purpose: subject.purpose,
                step: Step::of_purpose(subject.purpose),
                attempt: subject.attempt,
                idempotency_key: idempotency_key.clone(),
                request_hash: request_hash.clone(),
                stage: HandoffStage::Requested,
                sends: 0,
                retries: 0,
                retry_due_at: None,
                fallout_reason: None,
                requested_at: *at,
                last_sent_at: None,
                last_observation: None,
                observations: 0,
                resolution: None,
                updated_at: *at,
                version: event.record.stream_version,
            };
            let stage_key = KeyBuf::new(&tenant, STAGE_COUNT)
                .byte(target_code(row.target))
                .byte(row.stage.code())
                .done();
            self.counters.add(tree, stage_key, 1)?;
            return self.rows.put_first(&key, row);
        }
        let row = self
            .rows
            .get_mut(tree, &key)?
            .ok_or_else(|| missing("handoff", id, event))?;
        let target = target_code(row.target);
        if let Some(stage) = stage_after(handoff).filter(|s| *s != row.stage) {
            let old = KeyBuf::new(&tenant, STAGE_COUNT)
                .byte(target)
                .byte(row.stage.code())
                .done();
            let new = KeyBuf::new(&tenant, STAGE_COUNT)
                .byte(target)
                .byte(stage.code())
                .done();
            self.counters.add(tree, old, -1)?;
            self.counters.add(tree, new, 1)?;
            row.stage = stage;
        }
        if let Some(o) = super::observation_of(handoff) {
            let outcome = KeyBuf::new(&tenant, OUTCOME_COUNT)
                .byte(target)
                .byte(class_code(o.class))
                .done();
            self.counters.add(tree, outcome, 1)?;
            row.last_observation = Some(ObservationRecord::from(o));
            row.observations = row.observations.saturating_add(1);
        }
        match handoff {
            HandoffEvent::HandoffSent { send, at } => {
                row.sends = *send;
                row.last_sent_at = Some(*at);
                row.retry_due_at = None;
            }
            HandoffEvent::HandoffRetryScheduled { retry, due_at, .. } => {
                row.retries = *retry;
                row.retry_due_at = Some(*due_at);
            }
            HandoffEvent::HandoffRejected { reason, .. }
            | HandoffEvent::HandoffFalloutRaised { reason, .. } => {
                row.fallout_reason = Some(*reason);
            }
            HandoffEvent::HandoffResolved {
                operator, note, at, ..
            } => {
                row.resolution = Some(HandoffResolution {
                    operator: operator.clone(),
                    note: note.clone(),
                    at: *at,
                });
            }
            _ => {}
        }
        row.updated_at = row.updated_at.max(at);
        row.version = event.record.stream_version;
        Ok(())
    }

    fn flush(&mut self, out: &mut Writes) -> Result<(), FoldError> {
        self.counters.flush(out);
        self.rows.flush(out)
    }

    fn discard(&mut self) {
        self.rows.clear();
        self.counters.clear();
    }
}

/// The stored handoff `id` of `tenant`.
pub(crate) fn load(
    tree: &sled::Tree,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<HandoffRecord>, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let Some(bytes) = tree.get(row_key(&t, id))? else {
        return Ok(None);
    };
    let row: HandoffRecord = decode_row(NAME, &bytes)?;
    Ok((row.tenant_id == *tenant).then_some(row))
}

/// One handoff.
pub(crate) fn handoff(
    tree: &sled::Tree,
    sla: &SlaPolicy,
    tenant: &TenantId,
    id: &HandoffId,
    now_ms: i64,
) -> Result<Option<HandoffView>, QueryError> {
    Ok(load(tree, tenant, id.as_str())?.map(|h| HandoffView::new(h, sla, now_ms)))
}

/// The handoff list.
pub(crate) fn handoffs(
    tree: &sled::Tree,
    sla: &SlaPolicy,
    tenant: &TenantId,
    filter: &HandoffFilter,
    cursor: Option<&str>,
    limit: usize,
    now_ms: i64,
) -> Result<Page<HandoffView>, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let pending_only = filter.pending_only || filter.overdue_only;
    let (prefix, until) = match filter.stage {
        Some(s) => (KeyBuf::new(&t, BY_RANK).byte(s.rank()).done(), None),
        None => (
            KeyBuf::new(&t, BY_RANK).done(),
            pending_only.then(|| vec![2u8]),
        ),
    };
    // A stage filter scans a narrower prefix: give its cursors their own tag.
    let tag = if filter.stage.is_some() {
        BY_RANK | 0x80
    } else {
        BY_RANK
    };
    Scan {
        list: List::Handoffs,
        prefix,
        tag,
        from: None,
        until,
        cursor,
        limit,
    }
    .run(tree, |_, value| {
        let id = String::from_utf8_lossy(value);
        let Some(row) = load(tree, tenant, &id)? else {
            return Ok(None);
        };
        let view = HandoffView::new(row, sla, now_ms);
        let keep = filter.stage.is_none_or(|s| s == view.handoff.stage)
            && filter.target.is_none_or(|t| t == view.handoff.target)
            && (!pending_only || view.handoff.stage.is_pending())
            && (!filter.overdue_only || view.overdue);
        Ok(keep.then_some(view))
    })
}
