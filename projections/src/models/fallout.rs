//! The fallout queue: open cases ordered by age, with their evidence and the
//! actions an operator may take; resolved cases leave the queue and keep who
//! resolved them, how and when.
//!
//! A case is one handoff that a human must look at, keyed by the handoff id.
//! It opens on `HandoffRejected` / `HandoffFalloutRaised` (handoff stream) or
//! `LineFalloutRaised` (order stream), whichever comes first, and closes on
//! `LineFalloutResolved` or `HandoffResolved`, whichever comes first; the
//! later one only adds to the record. The dashboard counts cases with the
//! same rules ([`case_change`]). When its line or order is cancelled
//! (`LineCancelled`, `OrderCancelled`), a case the line held stays open
//! (the handoff is still in fallout) but the line no longer holds it: the
//! only action left is to record how it was resolved, on the handoff.
//!
//! Keys (after the tenant prefix), oldest first:
//! - `0x01 | handoff id` → [`FalloutCaseRecord`]
//! - `0x02 | opened at | handoff id` → id (open cases)
//! - `0x03 | target | opened at | handoff id` → id (open cases)
//! - `0x04 | reason | opened at | handoff id` → id (open cases)
//! - `0x05 | target | reason | opened at | handoff id` → id (open cases)
//! - `0x06 | resolved at desc | handoff id` → id (resolved cases, newest first)
//! - `0x07 | order id` → the handoff ids of the cases its lines hold
//!   (bincode list, absent when none)
//! - `0x08 | order id` → its cancelled line ids (bincode list; `*` when the
//!   whole order was cancelled), so a case opened afterwards (a step's
//!   rejection that arrives after the cancellation) is not the line's
//!   either
//! - `0x10 | hour start | 0 opened, 1 resolved` → cases (u64, for the dashboard)
//! - `0x11` → open cases (u64, for the dashboard)
//!
//! Hours are those of the events' own times. The counters are written in the
//! same batch as the cases, so the dashboard agrees with the queue.

use domain::handoff::HandoffEvent;
use domain::idempotency::{Purpose, TargetSystem};
use domain::ids::{HandoffId, LineId, OrderId, StreamKind, TenantId, Timestamp};
use domain::order::{OrderEvent, Resolution, Step};
use domain::outcome::{FalloutReason, Observation, ObservationSource};
use serde::{Deserialize, Serialize};

use super::{decode_row, missing, reason_code, same_tenant, stream_id_part, target_code};
use crate::commit::Writes;
use crate::error::{FoldError, QueryError};
use crate::event::{Decoded, Payload};
use crate::keys::{self, KeyBuf};
use crate::page::{List, Page, Scan};
use crate::projector::Projector;
use crate::store::{KvCache, Row, RowCache};

const ROW: u8 = 0x01;
const OPEN_ALL: u8 = 0x02;
const OPEN_TARGET: u8 = 0x03;
const OPEN_REASON: u8 = 0x04;
const OPEN_TARGET_REASON: u8 = 0x05;
const RESOLVED: u8 = 0x06;
const HELD_BY_ORDER: u8 = 0x07;
const CANCELLED_LINES: u8 = 0x08;
/// The cancelled-lines entry of a cancelled order.
const EVERY_LINE: &str = "*";
const NAME: &str = "fallout";
/// Key kind of the hourly opened/resolved counters.
pub(crate) const HOURLY: u8 = 0x10;
/// Key kind of the open-cases gauge.
pub(crate) const OPEN_COUNT: u8 = 0x11;
/// One hour in ms.
pub(crate) const HOUR_MS: i64 = 60 * 60 * 1000;

/// The start of the hour `at` falls in.
pub(crate) fn hour_of(at: Timestamp) -> i64 {
    at.0.div_euclid(HOUR_MS) * HOUR_MS
}

/// Whether a case is in the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseStatus {
    /// In the queue.
    #[default]
    Open,
    /// Resolved; out of the queue.
    Resolved,
}

/// What an operator may do with an open case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FalloutAction {
    /// Request the step again under the next attempt (order `ResolveFallout`
    /// with `NewAttempt`).
    NewAttempt,
    /// Record that the work was done outside the platform (order
    /// `ResolvedExternally`, or handoff `Resolve` for compensations and
    /// local-impossible cases).
    RecordExternalResolution,
    /// Give up the line and compensate (order `CancelLine`).
    CancelLine,
}

/// How a case was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResolutionHow {
    /// The step was requested again under a new attempt.
    NewAttempt,
    /// Done outside the platform, with evidence.
    ResolvedExternally {
        /// The external system's reference.
        reference: String,
        /// What the operator checked.
        note: String,
    },
    /// The line was cancelled.
    CancelLine {
        /// Why.
        reason: String,
    },
    /// The handoff was closed directly (compensations, local impossible).
    HandoffClosed {
        /// What was done.
        note: String,
    },
}

impl From<&Resolution> for ResolutionHow {
    fn from(r: &Resolution) -> Self {
        match r {
            Resolution::NewAttempt => Self::NewAttempt,
            Resolution::ResolvedExternally { reference, note } => Self::ResolvedExternally {
                reference: reference.clone(),
                note: note.clone(),
            },
            Resolution::CancelLine { reason } => Self::CancelLine {
                reason: reason.clone(),
            },
        }
    }
}

/// Who resolved a case, how and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResolution {
    /// Who.
    pub resolved_by: String,
    /// How.
    pub how: ResolutionHow,
    /// When.
    pub at: Timestamp,
    /// The note recorded when the handoff itself was closed afterwards.
    pub handoff_note: Option<String>,
}

/// One fallout case as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FalloutCaseRecord {
    /// The handoff that fell out (the case id).
    pub handoff_id: HandoffId,
    /// The tenant (from the log envelope).
    pub tenant_id: TenantId,
    /// The order.
    pub order_id: OrderId,
    /// The order line.
    pub line_id: LineId,
    /// The forward step (`None` for compensations).
    pub step: Option<Step>,
    /// What the handoff asked.
    pub purpose: Purpose,
    /// The external system.
    pub target: TargetSystem,
    /// The normalized reason.
    pub reason: FalloutReason,
    /// The raw external code, as evidence.
    pub raw_code: Option<String>,
    /// The raw external label, as evidence.
    pub raw_label: Option<String>,
    /// The target's reference, as evidence.
    pub external_reference: Option<String>,
    /// Which channel delivered the evidence.
    pub observation_source: Option<ObservationSource>,
    /// The business attempt that fell out (attempts made for this step).
    pub attempt: u32,
    /// When the case opened.
    pub opened_at: Timestamp,
    /// True while the order line is recorded in fallout.
    pub line_fallout: bool,
    /// True once its line (or order) was cancelled: the line can no longer
    /// take it back, only the handoff can be closed.
    pub line_cancelled: bool,
    /// In the queue or resolved.
    pub status: CaseStatus,
    /// What an operator may do now (empty once resolved).
    pub allowed_actions: Vec<FalloutAction>,
    /// Who resolved it, how and when.
    pub resolution: Option<CaseResolution>,
    /// The time of its latest event.
    pub updated_at: Timestamp,
}

/// A case with its age at `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FalloutCaseView {
    /// The stored case.
    #[serde(flatten)]
    pub case: FalloutCaseRecord,
    /// Milliseconds since it opened.
    pub age_ms: i64,
}

/// Filters of the fallout queue (combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FalloutFilter {
    /// Open cases (the queue, oldest first) or resolved ones (newest
    /// resolution first).
    pub status: CaseStatus,
    /// Only this target system.
    pub target: Option<TargetSystem>,
    /// Only this reason.
    pub reason: Option<FalloutReason>,
    /// Only cases at least this old (ms).
    pub min_age_ms: Option<u64>,
    /// Only cases at most this old (ms).
    pub max_age_ms: Option<u64>,
}

impl FalloutFilter {
    /// Whether a page under this filter may skip rows its index walks
    /// (a filter checked row by row, up to [`crate::MAX_EXAMINED`] rows a
    /// page) rather than read only the rows it returns.
    pub fn may_skip_rows(&self) -> bool {
        // Open cases are kept by target, reason and age; resolved ones by
        // time alone.
        self.status == CaseStatus::Resolved
            && (self.target.is_some()
                || self.reason.is_some()
                || self.min_age_ms.is_some()
                || self.max_age_ms.is_some())
    }
}

/// A change to a case, as both the queue and the dashboard see it.
pub(crate) enum CaseChange<'a> {
    Open {
        handoff_id: &'a str,
        /// `None` when the event is on the order stream (the id is the stream's).
        order_id: Option<&'a OrderId>,
        line_id: &'a LineId,
        target: TargetSystem,
        purpose: Purpose,
        attempt: u32,
        reason: FalloutReason,
        observation: Option<&'a Observation>,
        at: Timestamp,
        from_line: bool,
    },
    Resolve {
        handoff_id: &'a str,
        by: &'a str,
        how: ResolutionHow,
        at: Timestamp,
        from_line: bool,
    },
}

impl CaseChange<'_> {
    pub(crate) fn handoff_id(&self) -> &str {
        match self {
            Self::Open { handoff_id, .. } | Self::Resolve { handoff_id, .. } => handoff_id,
        }
    }
}

/// Every event type that opens, changes or closes a fallout case: the
/// ones [`case_change`] reads and the cancellations the projector closes
/// cases on. The `falloutChanges` subscription delivers exactly these, so
/// a client that re-reads the queue on each sees every change.
pub const CASE_EVENT_TYPES: [&str; 7] = [
    "HandoffRejected",
    "HandoffFalloutRaised",
    "HandoffResolved",
    "LineFalloutRaised",
    "LineFalloutResolved",
    "LineCancelled",
    "OrderCancelled",
];

/// The case change an event makes, if any.
pub(crate) fn case_change(event: &Decoded) -> Result<Option<CaseChange<'_>>, FoldError> {
    match &event.payload {
        Payload::Handoff(h) => {
            let id = stream_id_part(event, StreamKind::Handoff)?;
            Ok(match h {
                HandoffEvent::HandoffRejected {
                    subject,
                    reason,
                    observation,
                } => {
                    same_tenant(event, subject.tenant_id.as_str())?;
                    Some(CaseChange::Open {
                        handoff_id: id,
                        order_id: Some(&subject.order_id),
                        line_id: &subject.line_id,
                        target: subject.target,
                        purpose: subject.purpose,
                        attempt: subject.attempt,
                        reason: *reason,
                        observation: Some(observation),
                        at: observation.observed_at,
                        from_line: false,
                    })
                }
                HandoffEvent::HandoffFalloutRaised {
                    subject,
                    reason,
                    observation,
                    at,
                } => {
                    same_tenant(event, subject.tenant_id.as_str())?;
                    Some(CaseChange::Open {
                        handoff_id: id,
                        order_id: Some(&subject.order_id),
                        line_id: &subject.line_id,
                        target: subject.target,
                        purpose: subject.purpose,
                        attempt: subject.attempt,
                        reason: *reason,
                        observation: observation.as_ref(),
                        at: *at,
                        from_line: false,
                    })
                }
                HandoffEvent::HandoffResolved {
                    operator, note, at, ..
                } => Some(CaseChange::Resolve {
                    handoff_id: id,
                    by: operator,
                    how: ResolutionHow::HandoffClosed { note: note.clone() },
                    at: *at,
                    from_line: false,
                }),
                _ => None,
            })
        }
        Payload::Order(o) => {
            // Validates the stream; the id itself is read when a case opens.
            stream_id_part(event, StreamKind::Order)?;
            Ok(match o {
                OrderEvent::LineFalloutRaised {
                    line_id,
                    step,
                    handoff_id,
                    attempt,
                    reason,
                    at,
                } => Some(CaseChange::Open {
                    handoff_id: handoff_id.as_str(),
                    order_id: None,
                    line_id,
                    target: step.target(),
                    purpose: step.purpose(),
                    attempt: *attempt,
                    reason: *reason,
                    observation: None,
                    at: *at,
                    from_line: true,
                }),
                OrderEvent::LineFalloutResolved {
                    handoff_id,
                    resolution,
                    operator,
                    at,
                    ..
                } => Some(CaseChange::Resolve {
                    handoff_id: handoff_id.as_str(),
                    by: operator,
                    how: ResolutionHow::from(resolution),
                    at: *at,
                    from_line: true,
                }),
                _ => None,
            })
        }
        Payload::Undecodable {
            kind: StreamKind::Order | StreamKind::Handoff,
            why,
        } => Err(FoldError(why.clone())),
        Payload::Undecodable { .. } | Payload::Quote(_) | Payload::Other => Ok(None),
    }
}

/// What an operator may do with a case: a forward step's case the line
/// holds (or will hold: every fallout but "local impossible" is raised on
/// the line) takes a new attempt, an external resolution or the line's
/// cancellation; any other case (a failed compensation, a contradicted
/// outcome) only an external resolution, recorded on the handoff.
fn allowed(
    purpose: Purpose,
    reason: FalloutReason,
    line_fallout: bool,
    line_cancelled: bool,
) -> Vec<FalloutAction> {
    let line_holds = !line_cancelled && (line_fallout || reason != FalloutReason::LocalImpossible);
    if Step::of_purpose(purpose).is_some() && line_holds {
        // A new attempt only where the step took no effect: the order's
        // decider refuses it otherwise (`step_may_have_taken_effect`).
        let new_attempt = (!reason.may_have_taken_effect()).then_some(FalloutAction::NewAttempt);
        new_attempt
            .into_iter()
            .chain([
                FalloutAction::RecordExternalResolution,
                FalloutAction::CancelLine,
            ])
            .collect()
    } else {
        vec![FalloutAction::RecordExternalResolution]
    }
}

fn row_key(tenant: &[u8; 16], id: &str) -> Vec<u8> {
    KeyBuf::new(tenant, ROW).str(id).done()
}

impl Row for FalloutCaseRecord {
    fn index_entries(&self, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        let t = keys::tenant_prefix(self.tenant_id.as_str());
        let id = self.handoff_id.as_str();
        let v = id.as_bytes().to_vec();
        match (&self.status, &self.resolution) {
            (CaseStatus::Open, _) => {
                let ts = keys::ts_asc(self.opened_at.0);
                let (target, reason) = (target_code(self.target), reason_code(self.reason));
                out.push((KeyBuf::new(&t, OPEN_ALL).u64(ts).str(id).done(), v.clone()));
                out.push((
                    KeyBuf::new(&t, OPEN_TARGET)
                        .byte(target)
                        .u64(ts)
                        .str(id)
                        .done(),
                    v.clone(),
                ));
                out.push((
                    KeyBuf::new(&t, OPEN_REASON)
                        .byte(reason)
                        .u64(ts)
                        .str(id)
                        .done(),
                    v.clone(),
                ));
                out.push((
                    KeyBuf::new(&t, OPEN_TARGET_REASON)
                        .byte(target)
                        .byte(reason)
                        .u64(ts)
                        .str(id)
                        .done(),
                    v,
                ));
            }
            (CaseStatus::Resolved, Some(r)) => {
                out.push((
                    KeyBuf::new(&t, RESOLVED)
                        .u64(keys::ts_desc(r.at.0))
                        .str(id)
                        .done(),
                    v,
                ));
            }
            (CaseStatus::Resolved, None) => {}
        }
    }
}

/// The fallout projector.
#[derive(Default)]
pub(crate) struct FalloutProjector {
    rows: RowCache<FalloutCaseRecord>,
    counters: KvCache,
    /// The cases each order's lines hold ([`HELD_BY_ORDER`]) and its
    /// cancelled lines ([`CANCELLED_LINES`]).
    by_order: KvCache,
    tenants: keys::TenantCache,
}

impl FalloutProjector {
    /// The ids stored at `key` (an order's held cases or cancelled lines;
    /// empty when absent).
    fn ids_at(&mut self, tree: &sled::Tree, key: &[u8]) -> Result<Vec<String>, FoldError> {
        match self.by_order.get(tree, key)? {
            None => Ok(Vec::new()),
            Some(bytes) => crate::store::decode(bytes)
                .map_err(|e| FoldError(format!("stored ids of an order: {e}"))),
        }
    }

    /// Stores `ids` at `key` (an empty list is an absent key).
    fn set_ids(&mut self, key: Vec<u8>, ids: &[String]) -> Result<(), FoldError> {
        if ids.is_empty() {
            self.by_order.remove(key);
        } else {
            self.by_order.put(key, crate::store::encode(&ids)?);
        }
        Ok(())
    }

    /// Records that the line of the order at `order_key` holds (or no
    /// longer holds) the case of `handoff_id`.
    fn hold(
        &mut self,
        tree: &sled::Tree,
        order_key: Vec<u8>,
        handoff_id: &str,
        holds: bool,
    ) -> Result<(), FoldError> {
        let mut ids = self.ids_at(tree, &order_key)?;
        let at = ids.iter().position(|id| id == handoff_id);
        match (holds, at) {
            (true, None) => ids.push(handoff_id.to_owned()),
            (false, Some(i)) => {
                ids.remove(i);
            }
            _ => return Ok(()),
        }
        self.set_ids(order_key, &ids)
    }

    /// Whether `line` of `order` (or the whole order) was cancelled.
    fn line_cancelled(
        &mut self,
        tree: &sled::Tree,
        tenant: &[u8; 16],
        order: &OrderId,
        line: &LineId,
    ) -> Result<bool, FoldError> {
        let key = KeyBuf::new(tenant, CANCELLED_LINES)
            .str(order.as_str())
            .done();
        Ok(self
            .ids_at(tree, &key)?
            .iter()
            .any(|l| l == EVERY_LINE || l == line.as_str()))
    }

    /// A line (`Some`) or order (`None`) cancelled `at` no longer holds its
    /// cases: each stays open with only the handoff's resolution left.
    fn release(
        &mut self,
        tree: &sled::Tree,
        event: &Decoded,
        line: Option<&LineId>,
        at: Timestamp,
    ) -> Result<(), FoldError> {
        let tenant = self.tenants.prefix(&event.record.tenant_id);
        let order = stream_id_part(event, StreamKind::Order)?;
        let cancelled_key = KeyBuf::new(&tenant, CANCELLED_LINES).str(order).done();
        let mut cancelled = self.ids_at(tree, &cancelled_key)?;
        match line {
            Some(line)
                if !cancelled
                    .iter()
                    .any(|l| l == line.as_str() || l == EVERY_LINE) =>
            {
                cancelled.push(line.as_str().to_owned());
            }
            Some(_) => {}
            None => cancelled = vec![EVERY_LINE.to_owned()],
        }
        self.set_ids(cancelled_key, &cancelled)?;
        let order_key = KeyBuf::new(&tenant, HELD_BY_ORDER).str(order).done();
        let mut kept = Vec::new();
        for handoff_id in self.ids_at(tree, &order_key)? {
            let key = row_key(&tenant, &handoff_id);
            let Some(case) = self.rows.get_mut(tree, &key)? else {
                continue;
            };
            if line.is_some_and(|line| *line != case.line_id) {
                kept.push(handoff_id);
                continue;
            }
            case.line_fallout = false;
            case.line_cancelled = true;
            if case.status == CaseStatus::Open {
                case.allowed_actions = allowed(case.purpose, case.reason, false, true);
            }
            case.updated_at = case.updated_at.max(at);
        }
        self.set_ids(order_key, &kept)
    }

    fn count(
        &mut self,
        tree: &sled::Tree,
        tenant: &[u8; 16],
        at: Timestamp,
        resolved: bool,
    ) -> Result<(), FoldError> {
        let hourly = KeyBuf::new(tenant, HOURLY)
            .u64(keys::ts_asc(hour_of(at)))
            .byte(u8::from(resolved))
            .done();
        self.counters.add(tree, hourly, 1)?;
        self.counters.add(
            tree,
            KeyBuf::new(tenant, OPEN_COUNT).done(),
            if resolved { -1 } else { 1 },
        )
    }
}

impl Projector for FalloutProjector {
    fn apply(&mut self, tree: &sled::Tree, event: &Decoded) -> Result<(), FoldError> {
        match &event.payload {
            Payload::Order(OrderEvent::LineCancelled { line_id, at, .. }) => {
                return self.release(tree, event, Some(line_id), *at);
            }
            Payload::Order(OrderEvent::OrderCancelled { at, .. }) => {
                return self.release(tree, event, None, *at);
            }
            _ => {}
        }
        let Some(change) = case_change(event)? else {
            return Ok(());
        };
        let tenant = self.tenants.prefix(&event.record.tenant_id);
        let key = row_key(&tenant, change.handoff_id());
        if let CaseChange::Open {
            handoff_id,
            from_line: true,
            ..
        }
        | CaseChange::Resolve {
            handoff_id,
            from_line: true,
            ..
        } = &change
        {
            let order = stream_id_part(event, StreamKind::Order)?;
            let order_key = KeyBuf::new(&tenant, HELD_BY_ORDER).str(order).done();
            let holds = matches!(change, CaseChange::Open { .. });
            self.hold(tree, order_key, handoff_id, holds)?;
        }
        match change {
            CaseChange::Open {
                handoff_id,
                order_id,
                line_id,
                target,
                purpose,
                attempt,
                reason,
                observation,
                at,
                from_line,
            } => {
                let existing = self.rows.get_mut(tree, &key)?;
                match existing {
                    Some(case) if case.status == CaseStatus::Open => {
                        if from_line {
                            case.line_fallout = true;
                        } else {
                            case.reason = reason;
                            if let Some(o) = observation {
                                set_evidence(case, o);
                            }
                        }
                        case.allowed_actions = allowed(
                            case.purpose,
                            case.reason,
                            case.line_fallout,
                            case.line_cancelled,
                        );
                        case.updated_at = case.updated_at.max(at);
                    }
                    _ => {
                        let order_id = match order_id {
                            Some(o) => o.clone(),
                            None => OrderId::new(stream_id_part(event, StreamKind::Order)?),
                        };
                        let cancelled = self.line_cancelled(tree, &tenant, &order_id, line_id)?;
                        let mut case = FalloutCaseRecord {
                            handoff_id: HandoffId::new(handoff_id),
                            tenant_id: TenantId::new(event.record.tenant_id.clone()),
                            order_id,
                            line_id: line_id.clone(),
                            step: Step::of_purpose(purpose),
                            purpose,
                            target,
                            reason,
                            raw_code: None,
                            raw_label: None,
                            external_reference: None,
                            observation_source: None,
                            attempt,
                            opened_at: at,
                            line_fallout: from_line,
                            line_cancelled: cancelled,
                            status: CaseStatus::Open,
                            allowed_actions: allowed(purpose, reason, from_line, cancelled),
                            resolution: None,
                            updated_at: at,
                        };
                        if let Some(o) = observation {
                            set_evidence(&mut case, o);
                        }
                        self.rows.put(tree, &key, case)?;
                        self.count(tree, &tenant, at, false)?;
                    }
                }
            }
            CaseChange::Resolve {
                handoff_id,
                by,
                how,
                at,
                from_line,
            } => {
                let case = self
                    .rows
                    .get_mut(tree, &key)?
                    .ok_or_else(|| missing("fallout case", handoff_id, event))?;
                if from_line {
                    case.line_fallout = false;
                }
                let was_open = case.status == CaseStatus::Open;
                match (&case.status, &mut case.resolution) {
                    (CaseStatus::Open, _) => {
                        case.status = CaseStatus::Resolved;
                        case.allowed_actions.clear();
                        case.resolution = Some(CaseResolution {
                            resolved_by: by.to_owned(),
                            how,
                            at,
                            handoff_note: None,
                        });
                    }
                    (CaseStatus::Resolved, Some(r)) => {
                        if let ResolutionHow::HandoffClosed { note } = how {
                            r.handoff_note = Some(note);
                        }
                    }
                    (CaseStatus::Resolved, None) => {}
                }
                case.updated_at = case.updated_at.max(at);
                if was_open {
                    self.count(tree, &tenant, at, true)?;
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Writes) -> Result<(), FoldError> {
        self.counters.flush(out);
        self.by_order.flush(out);
        self.rows.flush(out)
    }

    fn discard(&mut self) {
        self.rows.clear();
        self.counters.clear();
        self.by_order.clear();
    }
}

fn set_evidence(case: &mut FalloutCaseRecord, o: &Observation) {
    case.raw_code = o.raw_code.clone();
    case.raw_label = o.raw_label.clone();
    case.external_reference = o.external_reference.clone();
    case.observation_source = Some(o.source);
}

fn load(
    tree: &sled::Tree,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<FalloutCaseRecord>, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let Some(bytes) = tree.get(row_key(&t, id))? else {
        return Ok(None);
    };
    let row: FalloutCaseRecord = decode_row(NAME, &bytes)?;
    Ok((row.tenant_id == *tenant).then_some(row))
}

/// One case, open or resolved.
pub(crate) fn fallout_case(
    tree: &sled::Tree,
    tenant: &TenantId,
    id: &HandoffId,
    now_ms: i64,
) -> Result<Option<FalloutCaseView>, QueryError> {
    Ok(
        load(tree, tenant, id.as_str())?.map(|case| FalloutCaseView {
            age_ms: now_ms.saturating_sub(case.opened_at.0),
            case,
        }),
    )
}

/// The queue (or the resolved cases).
pub(crate) fn fallout(
    tree: &sled::Tree,
    tenant: &TenantId,
    filter: &FalloutFilter,
    cursor: Option<&str>,
    limit: usize,
    now_ms: i64,
) -> Result<Page<FalloutCaseView>, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let min_opened = filter
        .max_age_ms
        .map(|a| now_ms.saturating_sub(i64::try_from(a).unwrap_or(i64::MAX)));
    let max_opened = filter
        .min_age_ms
        .map(|a| now_ms.saturating_sub(i64::try_from(a).unwrap_or(i64::MAX)));
    let scan = match filter.status {
        CaseStatus::Open => {
            let (prefix, tag) = match (filter.target, filter.reason) {
                (Some(tg), Some(r)) => (
                    KeyBuf::new(&t, OPEN_TARGET_REASON)
                        .byte(target_code(tg))
                        .byte(reason_code(r))
                        .done(),
                    OPEN_TARGET_REASON,
                ),
                (Some(tg), None) => (
                    KeyBuf::new(&t, OPEN_TARGET).byte(target_code(tg)).done(),
                    OPEN_TARGET,
                ),
                (None, Some(r)) => (
                    KeyBuf::new(&t, OPEN_REASON).byte(reason_code(r)).done(),
                    OPEN_REASON,
                ),
                (None, None) => (KeyBuf::new(&t, OPEN_ALL).done(), OPEN_ALL),
            };
            // Oldest first: the age bounds are bounds on the key's time.
            Scan {
                list: List::Fallout,
                prefix,
                tag,
                from: min_opened.map(|m| keys::ts_asc(m).to_be_bytes().to_vec()),
                until: max_opened
                    .and_then(|m| keys::ts_asc(m).checked_add(1))
                    .map(|u| u.to_be_bytes().to_vec()),
                cursor,
                limit,
            }
        }
        CaseStatus::Resolved => Scan {
            list: List::Fallout,
            prefix: KeyBuf::new(&t, RESOLVED).done(),
            tag: RESOLVED,
            from: None,
            until: None,
            cursor,
            limit,
        },
    };
    scan.run(tree, |_, value| {
        let id = String::from_utf8_lossy(value);
        let Some(case) = load(tree, tenant, &id)? else {
            return Ok(None);
        };
        let keep = case.status == filter.status
            && filter.target.is_none_or(|t| t == case.target)
            && filter.reason.is_none_or(|r| r == case.reason)
            && min_opened.is_none_or(|m| case.opened_at.0 >= m)
            && max_opened.is_none_or(|m| case.opened_at.0 <= m);
        Ok(keep.then(|| FalloutCaseView {
            age_ms: now_ms.saturating_sub(case.opened_at.0),
            case,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_offers_a_new_attempt_only_where_the_step_took_no_effect() {
        use FalloutReason as R;
        for reason in [
            R::BusinessRejected,
            R::ValidationRejected,
            R::DuplicateConflict,
            R::SecurityConfiguration,
            R::SchemaMismatch,
            R::Unclassified,
            R::RetriesExhausted,
            R::SlaBreach,
            R::LocalImpossible,
        ] {
            let actions = allowed(Purpose::Activate, reason, true, false);
            assert_eq!(
                actions.contains(&FalloutAction::NewAttempt),
                !reason.may_have_taken_effect(),
                "{reason:?}: {actions:?}"
            );
            assert!(actions.contains(&FalloutAction::RecordExternalResolution));
            assert!(actions.contains(&FalloutAction::CancelLine), "{reason:?}");
        }
    }
}
