//! Orders: list (status, has fallout) and detail with every line's current
//! step, its step history and the handoffs of each step.
//!
//! Keys (after the tenant prefix), newest order first:
//! - `0x01 | order id` → [`OrderRecord`]
//! - `0x02 | created desc | order id` → order id
//! - `0x04 | has fallout | created desc | order id` → order id
//!
//! Lists are ordered by capture time, which never changes, so index keys
//! change only when the fallout flag does, not on every event. A status
//! filter reads the first index and skips other statuses.
//!
//! The detail joins, at query time, each handoff the order opened with the
//! handoffs read model (stage, sends, overdue); ages come from `now_ms`.

use domain::handoff::HandoffRequest;
use domain::idempotency::{Purpose, TargetSystem};
use domain::ids::{
    BillingAccountId, CustomerId, HandoffId, LineId, OfferingId, OrderId, StreamKind, TenantId,
    Timestamp,
};
use domain::order::{CompensationPlan, OrderEvent, QuoteEvidence, Resolution, Step, Uncompensated};
use domain::outcome::FalloutReason;
use serde::{Deserialize, Serialize};

use super::handoffs::{self, HandoffStage, SlaPolicy};
use super::{decode_row, missing, same_tenant, stream_id_part};
use crate::commit::Writes;
use crate::error::{FoldError, QueryError};
use crate::event::{Decoded, Payload};
use crate::keys::{self, KeyBuf};
use crate::page::{List, Page, Scan};
use crate::projector::Projector;
use crate::store::{Row, RowCache};

const ROW: u8 = 0x01;
const BY_CREATED: u8 = 0x02;
const BY_FALLOUT: u8 = 0x04;
const NAME: &str = "orders";

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Lines are being fulfilled.
    Open,
    /// Every line is active or cancelled.
    Completed,
    /// Cancelled with compensations.
    Cancelled,
}

/// Where a line is in its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineStage {
    /// Nothing requested yet.
    Captured,
    /// The current step's handoff awaits its outcome.
    InFlight,
    /// The current step succeeded; the next is not requested yet.
    StepDone,
    /// The current step fell out and waits for an operator.
    Fallout,
    /// Billing is active: done.
    Active,
    /// Cancelled.
    Cancelled,
}

/// What happened to a line, in its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepChange {
    /// The step was requested as a handoff.
    Requested,
    /// The step succeeded.
    Succeeded {
        /// The target's reference.
        external_reference: Option<String>,
    },
    /// The step fell out.
    FalloutRaised {
        /// Why.
        reason: FalloutReason,
    },
    /// An operator resolved the fallout.
    FalloutResolved {
        /// How.
        resolution: Resolution,
        /// Who.
        operator: String,
    },
    /// Billing became active.
    Activated,
    /// The line was cancelled.
    Cancelled,
    /// A compensation handoff was opened.
    CompensationRequested {
        /// What it asks.
        purpose: Purpose,
    },
    /// A compensation handoff ended (done, or failed with its reason).
    CompensationSettled {
        /// What it asked.
        purpose: Purpose,
        /// How it ended.
        outcome: domain::order::CompensationOutcome,
    },
}

/// One entry of a line's step history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepHistoryEntry {
    /// When.
    pub at: Timestamp,
    /// The step concerned (`None` for line-level changes).
    pub step: Option<Step>,
    /// The attempt concerned (0 when none).
    pub attempt: u32,
    /// The handoff concerned.
    pub handoff_id: Option<HandoffId>,
    /// What happened.
    pub change: StepChange,
}

/// A handoff a line opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineHandoff {
    /// The handoff.
    pub handoff_id: HandoffId,
    /// The forward step (`None` for compensations).
    pub step: Option<Step>,
    /// What it asks.
    pub purpose: Purpose,
    /// The target system.
    pub target: TargetSystem,
    /// The business attempt.
    pub attempt: u32,
    /// When the order requested it.
    pub requested_at: Timestamp,
}

/// One order line as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLineRecord {
    /// The line.
    pub line_id: LineId,
    /// The offering.
    pub offering_id: OfferingId,
    /// The offering's catalog version.
    pub offering_version: u32,
    /// Units.
    pub quantity: u32,
    /// Term in months (the accepted charges are on the quote's acceptance
    /// evidence).
    pub term_months: u32,
    /// Where the line stands.
    pub stage: LineStage,
    /// The step in progress, done or fallen out.
    pub current_step: Option<Step>,
    /// The current step's attempt.
    pub attempt: u32,
    /// The current step's handoff.
    pub handoff_id: Option<HandoffId>,
    /// True while a fallout of this line waits for an operator.
    pub open_fallout: bool,
    /// Why the open fallout was raised.
    pub fallout_reason: Option<FalloutReason>,
    /// Every change, oldest first.
    pub history: Vec<StepHistoryEntry>,
    /// Every handoff the line opened, oldest first.
    pub handoffs: Vec<LineHandoff>,
}

/// One order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The order.
    pub order_id: OrderId,
    /// The tenant (from the log envelope).
    pub tenant_id: TenantId,
    /// Where it stands.
    pub status: OrderStatus,
    /// The accepted quote's evidence.
    pub quote: QuoteEvidence,
    /// The customer.
    pub customer_id: CustomerId,
    /// The billing account.
    pub billing_account: BillingAccountId,
    /// The lines, in quote order.
    pub lines: Vec<OrderLineRecord>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// What cancellations could not compensate.
    pub uncompensated: Vec<Uncompensated>,
    /// When it was captured.
    pub created_at: Timestamp,
    /// The time of its latest event.
    pub updated_at: Timestamp,
    /// When it completed.
    pub completed_at: Option<Timestamp>,
    /// Its stream version.
    pub version: u64,
}

impl OrderRecord {
    /// Whether the order is still open with every line settled (active or
    /// cancelled): the fulfillment process is about to record its end.
    pub fn awaits_its_end(&self) -> bool {
        self.status == OrderStatus::Open
            && !self.lines.is_empty()
            && self
                .lines
                .iter()
                .all(|l| matches!(l.stage, LineStage::Active | LineStage::Cancelled))
    }

    /// How many lines wait for an operator.
    pub fn open_fallouts(&self) -> u32 {
        u32::try_from(self.lines.iter().filter(|l| l.open_fallout).count()).unwrap_or(u32::MAX)
    }

    fn line_mut(
        &mut self,
        id: &LineId,
        event: &Decoded,
    ) -> Result<&mut OrderLineRecord, FoldError> {
        let order = self.order_id.clone();
        self.lines
            .iter_mut()
            .find(|l| &l.line_id == id)
            .ok_or_else(|| {
                FoldError(format!(
                    "{} names line {id} that order {order} does not have",
                    event.record.event_type
                ))
            })
    }
}

/// One line of the order list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderSummary {
    /// The order.
    pub order_id: OrderId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Where it stands.
    pub status: OrderStatus,
    /// The quote it was captured from.
    pub quote_id: domain::ids::QuoteId,
    /// The customer.
    pub customer_id: CustomerId,
    /// Lines.
    pub line_count: u32,
    /// Active lines.
    pub lines_active: u32,
    /// Lines waiting for an operator.
    pub lines_in_fallout: u32,
    /// True when any line waits for an operator.
    pub has_fallout: bool,
    /// When it was captured.
    pub created_at: Timestamp,
    /// The time of its latest event.
    pub updated_at: Timestamp,
}

impl From<&OrderRecord> for OrderSummary {
    fn from(o: &OrderRecord) -> Self {
        let count = |f: &dyn Fn(&OrderLineRecord) -> bool| {
            u32::try_from(o.lines.iter().filter(|l| f(l)).count()).unwrap_or(u32::MAX)
        };
        Self {
            order_id: o.order_id.clone(),
            tenant_id: o.tenant_id.clone(),
            status: o.status,
            quote_id: o.quote.quote_id.clone(),
            customer_id: o.customer_id.clone(),
            line_count: count(&|_| true),
            lines_active: count(&|l| l.stage == LineStage::Active),
            lines_in_fallout: o.open_fallouts(),
            has_fallout: o.open_fallouts() > 0,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A handoff of an order, with its live stage and age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderHandoffView {
    /// The line that opened it.
    pub line_id: LineId,
    /// The handoff as the order requested it.
    #[serde(flatten)]
    pub handoff: LineHandoff,
    /// Milliseconds since the order requested it.
    pub age_ms: i64,
    /// Its stage in the handoffs read model (`None` until that model has
    /// seen it).
    pub stage: Option<HandoffStage>,
    /// How many times it was sent.
    pub sends: u32,
    /// Pending and older than its target's SLA.
    pub overdue: bool,
}

/// One order with its lines and every handoff it opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderDetail {
    /// The stored order (lines with current step and history).
    #[serde(flatten)]
    pub order: OrderRecord,
    /// Lines waiting for an operator.
    pub open_fallouts: u32,
    /// Every handoff of every line, per line then in request order.
    pub handoffs: Vec<OrderHandoffView>,
}

/// Filters of the order list (combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFilter {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only orders with (true) or without (false) a line in fallout.
    pub has_fallout: Option<bool>,
}

impl OrderFilter {
    /// Whether a page under this filter may skip rows its index walks
    /// (a filter checked row by row, up to [`crate::MAX_EXAMINED`] rows a
    /// page) rather than read only the rows it returns.
    pub fn may_skip_rows(&self) -> bool {
        // Kept by fallout and by capture time: the status is checked row by row.
        self.status.is_some()
    }
}

fn row_key(tenant: &[u8; 16], id: &str) -> Vec<u8> {
    KeyBuf::new(tenant, ROW).str(id).done()
}

impl Row for OrderRecord {
    fn index_entries(&self, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        let t = keys::tenant_prefix(self.tenant_id.as_str());
        let id = self.order_id.as_str();
        let ts = keys::ts_desc(self.created_at.0);
        let fallout = u8::from(self.open_fallouts() > 0);
        let v = id.as_bytes().to_vec();
        out.push((
            KeyBuf::new(&t, BY_CREATED).u64(ts).str(id).done(),
            v.clone(),
        ));
        out.push((
            KeyBuf::new(&t, BY_FALLOUT)
                .byte(fallout)
                .u64(ts)
                .str(id)
                .done(),
            v,
        ));
    }
}

/// The orders projector.
#[derive(Default)]
pub(crate) struct OrdersProjector {
    rows: RowCache<OrderRecord>,
    tenants: keys::TenantCache,
}

fn at_of(event: &OrderEvent) -> Timestamp {
    match event {
        OrderEvent::OrderCaptured { at, .. }
        | OrderEvent::StepRequested { at, .. }
        | OrderEvent::StepSucceeded { at, .. }
        | OrderEvent::LineActivated { at, .. }
        | OrderEvent::LineFalloutRaised { at, .. }
        | OrderEvent::LineFalloutResolved { at, .. }
        | OrderEvent::LineCancelled { at, .. }
        | OrderEvent::OrderCancelled { at, .. }
        | OrderEvent::OrderCompleted { at }
        | OrderEvent::CompensationSettled { at, .. }
        | OrderEvent::NotificationRequested { at, .. }
        | OrderEvent::ConfirmationRequested { at, .. }
        | OrderEvent::StepWithdrawn { at, .. }
        | OrderEvent::CancellationPlanned { at, .. }
        | OrderEvent::CompensationRequested { at, .. } => *at,
    }
}

/// A plan's compensations join their lines' handoffs at once (their ids
/// are known); each line's first is requested with the plan, and each
/// later one when its `CompensationRequested` is recorded (ADR 0064).
fn add_compensations(
    row: &mut OrderRecord,
    plan: &CompensationPlan,
    at: Timestamp,
    event: &Decoded,
) -> Result<(), FoldError> {
    for (c, first_of_its_line) in plan.with_first_of_each_line() {
        let line = row.line_mut(&c.subject.line_id, event)?;
        line.handoffs.push(LineHandoff {
            handoff_id: c.handoff_id.clone(),
            step: Step::of_purpose(c.subject.purpose),
            purpose: c.subject.purpose,
            target: c.subject.target,
            attempt: c.subject.attempt,
            requested_at: at,
        });
        if first_of_its_line {
            line.history.push(compensation_requested(c, at));
        }
    }
    Ok(())
}

fn compensation_requested(c: &HandoffRequest, at: Timestamp) -> StepHistoryEntry {
    StepHistoryEntry {
        at,
        step: None,
        attempt: c.subject.attempt,
        handoff_id: Some(c.handoff_id.clone()),
        change: StepChange::CompensationRequested {
            purpose: c.subject.purpose,
        },
    }
}

fn evolve(row: &mut OrderRecord, event: &OrderEvent, decoded: &Decoded) -> Result<(), FoldError> {
    match event {
        // A notification is a handoff of its own (the handoffs read model
        // lists it under the order); it changes no line.
        // A withdrawn step's handoff shows it (stage WITHDRAWN); the line
        // is cancelled by the `OrderCancelled` recorded with it.
        OrderEvent::OrderCaptured { .. }
        | OrderEvent::NotificationRequested { .. }
        | OrderEvent::ConfirmationRequested { .. }
        | OrderEvent::StepWithdrawn { .. } => {}
        OrderEvent::CompensationRequested {
            line_id,
            handoff,
            at,
        } => {
            let line = row.line_mut(line_id, decoded)?;
            line.history.push(compensation_requested(handoff, *at));
        }
        OrderEvent::CompensationSettled {
            line_id,
            handoff_id,
            purpose,
            outcome,
            at,
        } => {
            let line = row.line_mut(line_id, decoded)?;
            // The attempt of the compensation's handoff, as its request
            // showed it (the plan named every compensation's handoff).
            let attempt = line
                .handoffs
                .iter()
                .find(|h| &h.handoff_id == handoff_id)
                .map_or(0, |h| h.attempt);
            line.history.push(StepHistoryEntry {
                at: *at,
                step: None,
                attempt,
                handoff_id: Some(handoff_id.clone()),
                change: StepChange::CompensationSettled {
                    purpose: *purpose,
                    outcome: *outcome,
                },
            });
        }
        OrderEvent::StepRequested { step, handoff, at } => {
            let line = row.line_mut(&handoff.subject.line_id, decoded)?;
            line.stage = LineStage::InFlight;
            line.current_step = Some(*step);
            line.attempt = handoff.subject.attempt;
            line.handoff_id = Some(handoff.handoff_id.clone());
            line.handoffs.push(LineHandoff {
                handoff_id: handoff.handoff_id.clone(),
                step: Some(*step),
                purpose: handoff.subject.purpose,
                target: handoff.subject.target,
                attempt: handoff.subject.attempt,
                requested_at: *at,
            });
            line.history.push(StepHistoryEntry {
                at: *at,
                step: Some(*step),
                attempt: handoff.subject.attempt,
                handoff_id: Some(handoff.handoff_id.clone()),
                change: StepChange::Requested,
            });
        }
        OrderEvent::StepSucceeded {
            line_id,
            step,
            handoff_id,
            attempt,
            external_reference,
            at,
        } => {
            let line = row.line_mut(line_id, decoded)?;
            line.stage = LineStage::StepDone;
            line.current_step = Some(*step);
            line.history.push(StepHistoryEntry {
                at: *at,
                step: Some(*step),
                attempt: *attempt,
                handoff_id: Some(handoff_id.clone()),
                change: StepChange::Succeeded {
                    external_reference: external_reference.clone(),
                },
            });
        }
        OrderEvent::LineActivated { line_id, at, .. } => {
            let line = row.line_mut(line_id, decoded)?;
            line.stage = LineStage::Active;
            line.history.push(StepHistoryEntry {
                at: *at,
                step: line.current_step,
                attempt: line.attempt,
                handoff_id: None,
                change: StepChange::Activated,
            });
        }
        OrderEvent::LineFalloutRaised {
            line_id,
            step,
            handoff_id,
            attempt,
            reason,
            at,
        } => {
            let line = row.line_mut(line_id, decoded)?;
            line.stage = LineStage::Fallout;
            line.current_step = Some(*step);
            line.attempt = *attempt;
            line.handoff_id = Some(handoff_id.clone());
            line.open_fallout = true;
            line.fallout_reason = Some(*reason);
            line.history.push(StepHistoryEntry {
                at: *at,
                step: Some(*step),
                attempt: *attempt,
                handoff_id: Some(handoff_id.clone()),
                change: StepChange::FalloutRaised { reason: *reason },
            });
        }
        OrderEvent::LineFalloutResolved {
            line_id,
            step,
            handoff_id,
            resolution,
            operator,
            at,
        } => {
            let line = row.line_mut(line_id, decoded)?;
            line.open_fallout = false;
            line.fallout_reason = None;
            let attempt = line.attempt;
            line.history.push(StepHistoryEntry {
                at: *at,
                step: Some(*step),
                attempt,
                handoff_id: Some(handoff_id.clone()),
                change: StepChange::FalloutResolved {
                    resolution: resolution.clone(),
                    operator: operator.clone(),
                },
            });
        }
        OrderEvent::LineCancelled {
            line_id, plan, at, ..
        } => {
            let line = row.line_mut(line_id, decoded)?;
            line.stage = LineStage::Cancelled;
            line.open_fallout = false;
            line.fallout_reason = None;
            line.history.push(StepHistoryEntry {
                at: *at,
                step: line.current_step,
                attempt: line.attempt,
                handoff_id: None,
                change: StepChange::Cancelled,
            });
            add_compensations(row, plan, *at, decoded)?;
            row.uncompensated.extend(plan.uncompensated.iter().cloned());
        }
        OrderEvent::OrderCancelled { reason, plan, at } => {
            row.status = OrderStatus::Cancelled;
            row.cancel_reason = Some(reason.clone());
            // An active line is cancelled too: its plan (in the
            // `CancellationPlanned` that follows) undoes its steps, and
            // what cannot be undone is listed in `uncompensated`.
            for line in row
                .lines
                .iter_mut()
                .filter(|l| l.stage != LineStage::Cancelled)
            {
                line.stage = LineStage::Cancelled;
                line.open_fallout = false;
                line.fallout_reason = None;
                line.history.push(StepHistoryEntry {
                    at: *at,
                    step: line.current_step,
                    attempt: line.attempt,
                    handoff_id: None,
                    change: StepChange::Cancelled,
                });
            }
            add_compensations(row, plan, *at, decoded)?;
            row.uncompensated.extend(plan.uncompensated.iter().cloned());
        }
        OrderEvent::CancellationPlanned { plan, at, .. } => {
            add_compensations(row, plan, *at, decoded)?;
            row.uncompensated.extend(plan.uncompensated.iter().cloned());
        }
        OrderEvent::OrderCompleted { at } => {
            row.status = OrderStatus::Completed;
            row.completed_at = Some(*at);
        }
    }
    Ok(())
}

impl Projector for OrdersProjector {
    fn apply(&mut self, tree: &sled::Tree, event: &Decoded) -> Result<(), FoldError> {
        let order = match &event.payload {
            Payload::Order(o) => o,
            Payload::Undecodable {
                kind: StreamKind::Order,
                why,
            } => return Err(FoldError(why.clone())),
            _ => return Ok(()),
        };
        let id = stream_id_part(event, StreamKind::Order)?;
        let tenant = self.tenants.prefix(&event.record.tenant_id);
        let key = row_key(&tenant, id);
        if let OrderEvent::OrderCaptured {
            order_id,
            tenant_id,
            evidence,
            customer_id,
            billing_account,
            lines,
            at,
        } = order
        {
            same_tenant(event, tenant_id.as_str())?;
            if order_id.as_str() != id {
                return Err(FoldError(format!(
                    "OrderCaptured for {order_id} on stream {}",
                    event.record.stream_id
                )));
            }
            super::first_of_stream(event, "order", id)?;
            let row = OrderRecord {
                order_id: order_id.clone(),
                tenant_id: TenantId::new(event.record.tenant_id.clone()),
                status: OrderStatus::Open,
                quote: evidence.clone(),
                customer_id: customer_id.clone(),
                billing_account: billing_account.clone(),
                lines: lines
                    .iter()
                    .map(|l| OrderLineRecord {
                        line_id: l.line.line_id.clone(),
                        offering_id: l.line.offering_id.clone(),
                        offering_version: l.line.offering_version,
                        quantity: l.line.quantity,
                        term_months: l.line.term_months,
                        stage: LineStage::Captured,
                        current_step: None,
                        attempt: 0,
                        handoff_id: None,
                        open_fallout: false,
                        fallout_reason: None,
                        history: Vec::new(),
                        handoffs: Vec::new(),
                    })
                    .collect(),
                cancel_reason: None,
                uncompensated: Vec::new(),
                created_at: *at,
                updated_at: *at,
                completed_at: None,
                version: event.record.stream_version,
            };
            return self.rows.put_first(&key, row);
        }
        let row = self
            .rows
            .get_mut(tree, &key)?
            .ok_or_else(|| missing("order", id, event))?;
        evolve(row, order, event)?;
        row.updated_at = row.updated_at.max(at_of(order));
        row.version = event.record.stream_version;
        Ok(())
    }

    fn flush(&mut self, out: &mut Writes) -> Result<(), FoldError> {
        self.rows.flush(out)
    }

    fn discard(&mut self) {
        self.rows.clear();
    }
}

fn load(tree: &sled::Tree, tenant: &TenantId, id: &str) -> Result<Option<OrderRecord>, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let Some(bytes) = tree.get(row_key(&t, id))? else {
        return Ok(None);
    };
    let row: OrderRecord = decode_row(NAME, &bytes)?;
    Ok((row.tenant_id == *tenant).then_some(row))
}

/// One order's detail, joined with the handoffs read model.
pub(crate) fn order(
    tree: &sled::Tree,
    handoff_tree: &sled::Tree,
    sla: &SlaPolicy,
    tenant: &TenantId,
    id: &OrderId,
    now_ms: i64,
) -> Result<Option<OrderDetail>, QueryError> {
    let Some(order) = load(tree, tenant, id.as_str())? else {
        return Ok(None);
    };
    let mut views = Vec::new();
    for line in &order.lines {
        for h in &line.handoffs {
            let live = handoffs::load(handoff_tree, tenant, h.handoff_id.as_str())?;
            let (stage, sends, overdue) = match &live {
                Some(r) => {
                    let v = handoffs::HandoffView::new(r.clone(), sla, now_ms);
                    (Some(r.stage), r.sends, v.overdue)
                }
                None => (None, 0, false),
            };
            views.push(OrderHandoffView {
                line_id: line.line_id.clone(),
                handoff: h.clone(),
                age_ms: now_ms.saturating_sub(h.requested_at.0),
                stage,
                sends,
                overdue,
            });
        }
    }
    Ok(Some(OrderDetail {
        open_fallouts: order.open_fallouts(),
        order,
        handoffs: views,
    }))
}

/// The order list, newest capture first.
pub(crate) fn orders(
    tree: &sled::Tree,
    tenant: &TenantId,
    filter: &OrderFilter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<OrderSummary>, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let (prefix, tag) = match filter.has_fallout {
        Some(f) => (
            KeyBuf::new(&t, BY_FALLOUT).byte(u8::from(f)).done(),
            BY_FALLOUT,
        ),
        None => (KeyBuf::new(&t, BY_CREATED).done(), BY_CREATED),
    };
    Scan {
        list: List::Orders,
        prefix,
        tag,
        from: None,
        until: None,
        cursor,
        limit,
    }
    .run(tree, |_, value| {
        let id = String::from_utf8_lossy(value);
        let Some(row) = load(tree, tenant, &id)? else {
            return Ok(None);
        };
        let summary = OrderSummary::from(&row);
        let keep = filter.status.is_none_or(|s| s == summary.status)
            && filter.has_fallout.is_none_or(|f| f == summary.has_fallout);
        Ok(keep.then_some(summary))
    })
}
