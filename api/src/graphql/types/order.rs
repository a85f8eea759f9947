//! The order node: an order of the list (its summary) or in detail (its
//! quote evidence, lines with their steps, handoffs, history and fallout),
//! linked to its quote, its handoffs, its fallout cases and its audit
//! trail. A list node reads its detail on first use through the request's
//! batched links ([`crate::graphql::links`]).

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject};
use domain::ids::{order_stream, HandoffId};
use domain::order::Step;
use projections::{
    OrderDetail, OrderHandoffView, OrderLineRecord, OrderSummary, StepChange, StepHistoryEntry,
};
use tokio::sync::OnceCell;

use super::audit::AuditEntryNode;
use super::enums::{FalloutReason, HandoffStatus, LineStage, OrderStatus, Purpose, TargetSystem};
use super::fallout::{FalloutCaseNode, FalloutResolutionHow};
use super::handoff::HandoffNode;
use super::quote::QuoteNode;
use super::scalars::DateTime;
use super::Connection;
use crate::graphql::error::ApiResult;
use crate::graphql::links;

/// The handoff `id` as a node (batched), or null for `None`.
async fn linked_handoff(
    ctx: &Context<'_>,
    id: Option<&String>,
) -> async_graphql::Result<Option<HandoffNode>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(HandoffNode::linked(ctx, HandoffId::new(id.clone())).await?)
}

/// A step of an order line's fulfillment plan, in plan order.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::order::Step")]
pub(crate) enum FulfillmentStep {
    /// Reserve inventory capacity.
    Reservation,
    /// Provision the service.
    Provisioning,
    /// Activate billing; only once the service is active.
    BillingActivation,
}

/// Where one step of an order line stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum OrderStepState {
    /// Not requested yet (or never: the line was cancelled before).
    NotRequested,
    /// Requested; its current handoff awaits its outcome.
    InFlight,
    /// Done (by the target, or resolved externally by an operator).
    Succeeded,
    /// Fell out; waits for an operator.
    Fallout,
    /// The line was cancelled while this step was in flight or in fallout.
    Cancelled,
}

/// What happened to an order line, in its history.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum OrderLineChange {
    /// A step was requested as a handoff.
    Requested,
    /// A step succeeded.
    Succeeded,
    /// A step fell out.
    FalloutRaised,
    /// An operator resolved the fallout.
    FalloutResolved,
    /// Billing became active: the line is done.
    Activated,
    /// The line was cancelled.
    Cancelled,
    /// A compensation handoff (release, cancel) was opened: a line's
    /// first with its cancellation, each next one once the one before it
    /// was undone or its case closed.
    CompensationRequested,
    /// A compensation handoff ended.
    CompensationSettled,
}

/// How a compensation handoff ended.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum CompensationOutcome {
    /// The target undid the effect.
    Done,
    /// The target refused, or the handoff fell out: an operator must act,
    /// and the line's next compensation waits for the case to be closed.
    Failed,
    /// An operator closed the failed compensation's case
    /// (`resolveHandoffFallout`): the line's next compensation may go.
    Closed,
}

/// The evidence of the accepted quote an order was captured from.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct OrderQuoteEvidence {
    /// The accepted quote.
    quote_id: String,
    /// The accepted revision.
    revision: u32,
    /// The accepted price's input hash.
    price_input_hash: String,
    /// The hash of the signed proposal.
    signed_artifact_hash: String,
}

impl From<&domain::order::QuoteEvidence> for OrderQuoteEvidence {
    fn from(e: &domain::order::QuoteEvidence) -> Self {
        Self {
            quote_id: e.quote_id.to_string(),
            revision: e.revision,
            price_input_hash: e.price_input_hash.clone(),
            signed_artifact_hash: e.signed_artifact_hash.clone(),
        }
    }
}

/// Something a cancellation could not compensate, reported for a human.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct OrderUncompensated {
    /// The line.
    line_id: String,
    /// The step whose effect stays (billing activation is owned by
    /// billing: a requested or active charge is reported, never reversed).
    step: FulfillmentStep,
}

impl From<&domain::order::Uncompensated> for OrderUncompensated {
    fn from(u: &domain::order::Uncompensated) -> Self {
        Self {
            line_id: u.line_id.to_string(),
            step: u.step.into(),
        }
    }
}

/// One step of a line's plan, with its current handoff.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub(crate) struct OrderLineStep {
    /// Which step.
    kind: FulfillmentStep,
    /// Where it stands.
    state: OrderStepState,
    /// The business attempt of its current handoff (0 before the first
    /// request).
    attempt: u32,
    /// Its current handoff: the latest one requested for this step (null
    /// before the first request).
    handoff_id: Option<String>,
    /// The current handoff's status in the handoffs read model (null before
    /// the first request, or until that model has seen the handoff).
    handoff_status: Option<HandoffStatus>,
    /// When the current handoff was requested (null before the first
    /// request).
    requested_at: Option<DateTime>,
}

impl OrderLineStep {
    /// The step `kind` of `line`: its state from the line's history, its
    /// current handoff from the line's handoffs, joined with `live`.
    fn of(kind: Step, line: &OrderLineRecord, live: &[&OrderHandoffView]) -> Self {
        let state = line.history.iter().filter(|e| e.step == Some(kind)).fold(
            OrderStepState::NotRequested,
            |state, e| match &e.change {
                StepChange::Requested => OrderStepState::InFlight,
                StepChange::Succeeded { .. } | StepChange::Activated => OrderStepState::Succeeded,
                StepChange::FalloutRaised { .. } => OrderStepState::Fallout,
                StepChange::Cancelled
                    if matches!(state, OrderStepState::InFlight | OrderStepState::Fallout) =>
                {
                    OrderStepState::Cancelled
                }
                _ => state,
            },
        );
        let current = line.handoffs.iter().rev().find(|h| h.step == Some(kind));
        let handoff_status = current
            .and_then(|h| live.iter().find(|v| v.handoff.handoff_id == h.handoff_id))
            .and_then(|v| v.stage)
            .map(Into::into);
        Self {
            kind: kind.into(),
            state,
            attempt: current.map_or(0, |h| h.attempt),
            handoff_id: current.map(|h| h.handoff_id.to_string()),
            handoff_status,
            requested_at: current.map(|h| h.requested_at.into()),
        }
    }
}

#[ComplexObject]
impl OrderLineStep {
    /// The current handoff itself (null before the first request).
    async fn handoff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<HandoffNode>> {
        linked_handoff(ctx, self.handoff_id.as_ref()).await
    }
}

/// A handoff an order line opened (a step's, or a compensation's), with its
/// live status.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub(crate) struct OrderLineHandoff {
    /// The handoff.
    handoff_id: String,
    /// The forward step it carries out (null for compensations).
    step: Option<FulfillmentStep>,
    /// What it asks.
    purpose: Purpose,
    /// The target system.
    target: TargetSystem,
    /// The business attempt.
    attempt: u32,
    /// When the order requested it.
    requested_at: DateTime,
    /// Its status in the handoffs read model (null until that model has
    /// seen it).
    status: Option<HandoffStatus>,
    /// How many times it was sent.
    sends: u32,
    /// Milliseconds since the order requested it.
    age_ms: i64,
    /// Pending and older than its target's SLA.
    overdue: bool,
}

impl From<&OrderHandoffView> for OrderLineHandoff {
    fn from(v: &OrderHandoffView) -> Self {
        Self {
            handoff_id: v.handoff.handoff_id.to_string(),
            step: v.handoff.step.map(Into::into),
            purpose: v.handoff.purpose.into(),
            target: v.handoff.target.into(),
            attempt: v.handoff.attempt,
            requested_at: v.handoff.requested_at.into(),
            status: v.stage.map(Into::into),
            sends: v.sends,
            age_ms: v.age_ms,
            overdue: v.overdue,
        }
    }
}

#[ComplexObject]
impl OrderLineHandoff {
    /// The handoff itself: keys, evidence, calls, observations.
    async fn handoff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<HandoffNode>> {
        linked_handoff(ctx, Some(&self.handoff_id)).await
    }
}

/// One entry of a line's history. The fields after `handoffId` are set by
/// the kinds of change they belong to and null otherwise.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct OrderLineEvent {
    /// When.
    at: DateTime,
    /// What happened.
    kind: OrderLineChange,
    /// The step concerned (null for compensations and changes before the
    /// first step).
    step: Option<FulfillmentStep>,
    /// The attempt concerned (0 when none).
    attempt: u32,
    /// The handoff concerned.
    handoff_id: Option<String>,
    /// `SUCCEEDED`: the target's reference.
    external_reference: Option<String>,
    /// `FALLOUT_RAISED`: why; `COMPENSATION_SETTLED` when `FAILED`: why.
    fallout_reason: Option<FalloutReason>,
    /// `FALLOUT_RESOLVED`: how.
    resolution: Option<FalloutResolutionHow>,
    /// `FALLOUT_RESOLVED`: who.
    operator: Option<String>,
    /// `COMPENSATION_REQUESTED` and `COMPENSATION_SETTLED`: what the
    /// compensation asks.
    purpose: Option<Purpose>,
    /// `COMPENSATION_SETTLED`: how it ended.
    compensation_outcome: Option<CompensationOutcome>,
}

impl From<&StepHistoryEntry> for OrderLineEvent {
    fn from(e: &StepHistoryEntry) -> Self {
        let mut out = Self {
            at: e.at.into(),
            kind: OrderLineChange::Requested,
            step: e.step.map(Into::into),
            attempt: e.attempt,
            handoff_id: e.handoff_id.as_ref().map(ToString::to_string),
            external_reference: None,
            fallout_reason: None,
            resolution: None,
            operator: None,
            purpose: None,
            compensation_outcome: None,
        };
        match &e.change {
            StepChange::Requested => {}
            StepChange::Succeeded { external_reference } => {
                out.kind = OrderLineChange::Succeeded;
                out.external_reference.clone_from(external_reference);
            }
            StepChange::FalloutRaised { reason } => {
                out.kind = OrderLineChange::FalloutRaised;
                out.fallout_reason = Some((*reason).into());
            }
            StepChange::FalloutResolved {
                resolution,
                operator,
            } => {
                out.kind = OrderLineChange::FalloutResolved;
                out.resolution = Some(resolution.into());
                out.operator = Some(operator.clone());
            }
            StepChange::Activated => out.kind = OrderLineChange::Activated,
            StepChange::Cancelled => out.kind = OrderLineChange::Cancelled,
            StepChange::CompensationRequested { purpose } => {
                out.kind = OrderLineChange::CompensationRequested;
                out.purpose = Some((*purpose).into());
            }
            StepChange::CompensationSettled { purpose, outcome } => {
                out.kind = OrderLineChange::CompensationSettled;
                out.purpose = Some((*purpose).into());
                match outcome {
                    domain::order::CompensationOutcome::Done => {
                        out.compensation_outcome = Some(CompensationOutcome::Done);
                    }
                    domain::order::CompensationOutcome::Failed { reason } => {
                        out.compensation_outcome = Some(CompensationOutcome::Failed);
                        out.fallout_reason = Some((*reason).into());
                    }
                    domain::order::CompensationOutcome::Closed => {
                        out.compensation_outcome = Some(CompensationOutcome::Closed);
                    }
                }
            }
        }
        out
    }
}

/// A line's open fallout: the step that fell out waits for an operator
/// (the case is in the fallout queue under `handoffId`).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub(crate) struct OrderLineFallout {
    /// Why it fell out.
    reason: FalloutReason,
    /// The step that fell out.
    step: Option<FulfillmentStep>,
    /// Its attempt.
    attempt: u32,
    /// Its handoff: the fallout case's id.
    handoff_id: Option<String>,
}

#[ComplexObject]
impl OrderLineFallout {
    /// The fallout case in the queue, with its evidence and allowed
    /// actions (null while the fallout read model has not seen it).
    async fn case(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FalloutCaseNode>> {
        let Some(id) = &self.handoff_id else {
            return Ok(None);
        };
        Ok(FalloutCaseNode::linked(ctx, HandoffId::new(id.clone())).await?)
    }
}

/// One order line: what was ordered, where it stands in its plan, each
/// step with its current handoff, every handoff it opened, its history
/// and its open fallout.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct OrderLine {
    /// The line id.
    id: String,
    /// The offering.
    offering_id: String,
    /// The offering's catalog version.
    offering_version: u32,
    /// Units.
    quantity: u32,
    /// Term in months.
    term_months: u32,
    /// Where the line stands.
    stage: LineStage,
    /// The step in progress, done or fallen out (null before the first).
    current_step: Option<FulfillmentStep>,
    /// The current step's attempt (0 before the first step).
    attempt: u32,
    /// The current step's handoff (null before the first step).
    handoff_id: Option<String>,
    /// Whether the line waits for an operator.
    in_fallout: bool,
    /// The open fallout (null when the line is not in fallout).
    fallout: Option<OrderLineFallout>,
    /// Every step of the plan, in plan order, including those not
    /// requested yet.
    steps: Vec<OrderLineStep>,
    /// Every handoff the line opened, oldest first, with live status.
    handoffs: Vec<OrderLineHandoff>,
    /// Every change, oldest first.
    history: Vec<OrderLineEvent>,
}

impl OrderLine {
    /// The line `line`, joined with the order's live handoff views.
    fn new(line: &OrderLineRecord, views: &[OrderHandoffView]) -> Self {
        let live: Vec<&OrderHandoffView> =
            views.iter().filter(|v| v.line_id == line.line_id).collect();
        let mut steps = Vec::new();
        let mut next = Some(Step::FIRST);
        while let Some(kind) = next {
            steps.push(OrderLineStep::of(kind, line, &live));
            next = kind.next();
        }
        let fallout = line
            .fallout_reason
            .filter(|_| line.open_fallout)
            .map(|reason| OrderLineFallout {
                reason: reason.into(),
                step: line.current_step.map(Into::into),
                attempt: line.attempt,
                handoff_id: line.handoff_id.as_ref().map(ToString::to_string),
            });
        Self {
            id: line.line_id.to_string(),
            offering_id: line.offering_id.to_string(),
            offering_version: line.offering_version,
            quantity: line.quantity,
            term_months: line.term_months,
            stage: line.stage.into(),
            current_step: line.current_step.map(Into::into),
            attempt: line.attempt,
            handoff_id: line.handoff_id.as_ref().map(ToString::to_string),
            in_fallout: line.open_fallout,
            fallout,
            steps,
            handoffs: live.into_iter().map(OrderLineHandoff::from).collect(),
            history: line.history.iter().map(OrderLineEvent::from).collect(),
        }
    }
}

/// An order.
#[derive(Clone)]
pub struct OrderNode {
    /// The list's fields (computed from the detail for a detail node).
    summary: Box<OrderSummary>,
    /// The detail view, when the node was asked by id or linked; a list
    /// node's, read on the first detail field asked.
    detail: OnceCell<Option<Arc<OrderDetail>>>,
}

impl OrderNode {
    /// The node of an order of the list.
    pub fn from_summary(view: OrderSummary) -> ApiResult<Self> {
        Ok(Self {
            summary: Box::new(view),
            detail: OnceCell::new(),
        })
    }

    /// The node of an order's detail view.
    pub fn from_detail(view: OrderDetail) -> ApiResult<Self> {
        Ok(Self::from_shared(Arc::new(view)))
    }

    /// The order `id` of the caller's tenant through the request's batched
    /// links (`None` when there is none).
    pub(crate) async fn linked(
        ctx: &Context<'_>,
        id: domain::ids::OrderId,
    ) -> ApiResult<Option<Self>> {
        Ok(links::order(ctx, id).await?.map(Self::from_shared))
    }

    /// The node of an order's detail view, shared with the links loader.
    pub fn from_shared(view: Arc<OrderDetail>) -> Self {
        Self {
            summary: Box::new(OrderSummary::from(&view.order)),
            detail: OnceCell::new_with(Some(Some(view))),
        }
    }

    /// The detail view: the node's own, or a list node's read through the
    /// batched links (`None` if the order left the read model meanwhile,
    /// as during a rebuild's swap).
    async fn detail(&self, ctx: &Context<'_>) -> ApiResult<Option<&OrderDetail>> {
        Ok(self
            .detail
            .get_or_try_init(|| links::order(ctx, self.summary.order_id.clone()))
            .await?
            .as_deref())
    }
}

/// An order: its summary fields, and its detail fields (quote evidence,
/// lines with their steps, handoffs, history and fallout, cancellation)
/// read by id or, on a list node, through the batched links. Linked to
/// its quote and its audit trail; its lines link to their handoffs and
/// fallout cases.
#[Object]
impl OrderNode {
    /// The order id.
    async fn id(&self) -> &str {
        self.summary.order_id.as_str()
    }

    /// Where the order stands.
    async fn status(&self) -> OrderStatus {
        self.summary.status.into()
    }

    /// Whether any line is in fallout.
    async fn has_fallout(&self) -> bool {
        self.summary.has_fallout
    }

    /// The accepted quote the order was captured from.
    async fn quote_id(&self) -> &str {
        self.summary.quote_id.as_str()
    }

    /// The customer.
    async fn customer_id(&self) -> &str {
        self.summary.customer_id.as_str()
    }

    /// How many lines the order has.
    async fn line_count(&self) -> u32 {
        self.summary.line_count
    }

    /// How many lines are active (billing active: done).
    async fn lines_active(&self) -> u32 {
        self.summary.lines_active
    }

    /// How many lines wait for an operator.
    async fn lines_in_fallout(&self) -> u32 {
        self.summary.lines_in_fallout
    }

    /// When the order was captured.
    async fn created_at(&self) -> DateTime {
        self.summary.created_at.into()
    }

    /// The time of its latest event.
    async fn updated_at(&self) -> DateTime {
        self.summary.updated_at.into()
    }

    /// The accepted quote's evidence (revision, price input hash, signed
    /// proposal hash).
    async fn quote_evidence(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<OrderQuoteEvidence>> {
        Ok(self
            .detail(ctx)
            .await?
            .map(|d| OrderQuoteEvidence::from(&d.order.quote)))
    }

    /// The accepted quote itself.
    async fn quote(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<QuoteNode>> {
        Ok(QuoteNode::linked(ctx, self.summary.quote_id.clone()).await?)
    }

    /// The order's events, oldest first, from the audit trail (the order's
    /// stream).
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<AuditEntryNode>> {
        let stream = order_stream(&self.summary.order_id);
        Ok(AuditEntryNode::of_stream(ctx, &stream, first, after)?)
    }

    /// The billing account.
    async fn billing_account_id(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(self
            .detail(ctx)
            .await?
            .map(|d| d.order.billing_account.as_str()))
    }

    /// The lines, in quote order, with their steps, handoffs, history and
    /// fallout.
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Vec<OrderLine>>> {
        Ok(self.detail(ctx).await?.map(|d| {
            d.order
                .lines
                .iter()
                .map(|line| OrderLine::new(line, &d.handoffs))
                .collect()
        }))
    }

    /// Why the order was cancelled (null when it was not).
    async fn cancel_reason(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(self
            .detail(ctx)
            .await?
            .and_then(|d| d.order.cancel_reason.as_deref()))
    }

    /// What cancellations could not compensate.
    async fn uncompensated(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Vec<OrderUncompensated>>> {
        Ok(self
            .detail(ctx)
            .await?
            .map(|d| d.order.uncompensated.iter().map(Into::into).collect()))
    }

    /// When the order completed (null until it does).
    async fn completed_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime>> {
        Ok(self
            .detail(ctx)
            .await?
            .and_then(|d| d.order.completed_at)
            .map(Into::into))
    }

    /// The order stream's version: pass it as `expectedVersion` of the
    /// next command.
    async fn version(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<u64>> {
        Ok(self.detail(ctx).await?.map(|d| d.order.version))
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Schema};
    use domain::idempotency::Purpose;
    use domain::ids::{
        BillingAccountId, CustomerId, HandoffId, LineId, OfferingId, OrderId, QuoteId, TenantId,
        Timestamp,
    };
    use domain::order::{QuoteEvidence, Resolution};
    use domain::outcome::FalloutReason;
    use projections::{
        HandoffStage, LineHandoff, LineStage, OrderRecord, OrderStatus, StepChange,
        StepHistoryEntry,
    };
    use serde_json::{json, Value};

    use super::*;

    const T0: i64 = 1_764_498_841_123;

    fn handoff(id: &str, step: Step, attempt: u32, at: i64) -> LineHandoff {
        LineHandoff {
            handoff_id: HandoffId::new(id),
            step: Some(step),
            purpose: step.purpose(),
            target: step.target(),
            attempt,
            requested_at: Timestamp(at),
        }
    }

    fn entry(at: i64, step: Step, attempt: u32, id: &str, change: StepChange) -> StepHistoryEntry {
        StepHistoryEntry {
            at: Timestamp(at),
            step: Some(step),
            attempt,
            handoff_id: Some(HandoffId::new(id)),
            change,
        }
    }

    /// An order whose line reserved, then fell out at provisioning and
    /// got a new attempt that is in flight.
    fn detail() -> OrderDetail {
        let reserve = handoff("h-1", Step::Reservation, 1, T0);
        let provision = handoff("h-2", Step::Provisioning, 1, T0 + 10);
        let again = handoff("h-3", Step::Provisioning, 2, T0 + 30);
        let line = OrderLineRecord {
            line_id: LineId::new("l-1"),
            offering_id: OfferingId::new("fiber-1g"),
            offering_version: 3,
            quantity: 1,
            term_months: 24,
            stage: LineStage::InFlight,
            current_step: Some(Step::Provisioning),
            attempt: 2,
            handoff_id: Some(HandoffId::new("h-3")),
            open_fallout: false,
            fallout_reason: None,
            history: vec![
                entry(T0, Step::Reservation, 1, "h-1", StepChange::Requested),
                entry(
                    T0 + 5,
                    Step::Reservation,
                    1,
                    "h-1",
                    StepChange::Succeeded {
                        external_reference: Some("INV-9".into()),
                    },
                ),
                entry(T0 + 10, Step::Provisioning, 1, "h-2", StepChange::Requested),
                entry(
                    T0 + 20,
                    Step::Provisioning,
                    1,
                    "h-2",
                    StepChange::FalloutRaised {
                        reason: FalloutReason::BusinessRejected,
                    },
                ),
                entry(
                    T0 + 30,
                    Step::Provisioning,
                    1,
                    "h-2",
                    StepChange::FalloutResolved {
                        resolution: Resolution::NewAttempt,
                        operator: "ops-1".into(),
                    },
                ),
                entry(T0 + 30, Step::Provisioning, 2, "h-3", StepChange::Requested),
            ],
            handoffs: vec![reserve.clone(), provision.clone(), again.clone()],
        };
        let view = |h: LineHandoff, stage| OrderHandoffView {
            line_id: LineId::new("l-1"),
            handoff: h,
            age_ms: 1_000,
            stage,
            sends: 1,
            overdue: false,
        };
        let order = OrderRecord {
            order_id: OrderId::new("o-1"),
            tenant_id: TenantId::new("t-1"),
            status: OrderStatus::Open,
            quote: QuoteEvidence {
                quote_id: QuoteId::new("q-1"),
                revision: 2,
                price_input_hash: "aa11".into(),
                signed_artifact_hash: "bb22".into(),
            },
            customer_id: CustomerId::new("c-1"),
            billing_account: BillingAccountId::new("ba-1"),
            lines: vec![line],
            cancel_reason: None,
            uncompensated: Vec::new(),
            created_at: Timestamp(T0),
            updated_at: Timestamp(T0 + 30),
            completed_at: None,
            version: 7,
        };
        OrderDetail {
            open_fallouts: 0,
            handoffs: vec![
                view(reserve, Some(HandoffStage::Succeeded)),
                view(provision, Some(HandoffStage::Resolved)),
                view(again, None),
            ],
            order,
        }
    }

    struct Query(OrderNode);

    #[Object]
    impl Query {
        async fn order(&self) -> &OrderNode {
            &self.0
        }
    }

    async fn run(node: OrderNode, selection: &str) -> Value {
        let schema = Schema::new(Query(node), EmptyMutation, EmptySubscription);
        let response = schema.execute(format!("{{ order {selection} }}")).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        response
            .data
            .into_json()
            .map(|data| data["order"].clone())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_detail_node_has_typed_lines_steps_handoffs_and_history() {
        let node = OrderNode::from_detail(detail()).expect("node");
        let order = run(
            node,
            "{ id status hasFallout quoteId lineCount createdAt version
               quoteEvidence { revision priceInputHash signedArtifactHash }
               lines { stage currentStep attempt inFallout fallout { reason }
                 steps { kind state attempt handoffId handoffStatus requestedAt }
                 handoffs { handoffId step purpose target status }
                 history { at kind step externalReference falloutReason operator
                   resolution { kind } } } }",
        )
        .await;
        assert_eq!(order["status"], "OPEN");
        assert_eq!(order["hasFallout"], false);
        assert_eq!(order["quoteId"], "q-1");
        assert_eq!(order["lineCount"], 1);
        assert_eq!(order["createdAt"], "2025-11-30T10:34:01.123Z");
        assert_eq!(order["version"], 7);
        assert_eq!(order["quoteEvidence"]["signedArtifactHash"], "bb22");
        let line = &order["lines"][0];
        assert_eq!(line["stage"], "IN_FLIGHT");
        assert_eq!(line["currentStep"], "PROVISIONING");
        assert_eq!(line["fallout"], Value::Null);
        assert_eq!(
            line["steps"],
            json!([
                {"kind": "RESERVATION", "state": "SUCCEEDED", "attempt": 1, "handoffId": "h-1",
                 "handoffStatus": "SUCCEEDED", "requestedAt": "2025-11-30T10:34:01.123Z"},
                {"kind": "PROVISIONING", "state": "IN_FLIGHT", "attempt": 2, "handoffId": "h-3",
                 "handoffStatus": null, "requestedAt": "2025-11-30T10:34:01.153Z"},
                {"kind": "BILLING_ACTIVATION", "state": "NOT_REQUESTED", "attempt": 0,
                 "handoffId": null, "handoffStatus": null, "requestedAt": null},
            ])
        );
        assert_eq!(
            line["handoffs"][1],
            json!({"handoffId": "h-2", "step": "PROVISIONING", "purpose": "ACTIVATE",
                   "target": "PROVISIONING", "status": "RESOLVED"})
        );
        let history = line["history"].as_array().expect("history");
        assert_eq!(history.len(), 6);
        assert_eq!(history[1]["externalReference"], "INV-9");
        assert_eq!(history[3]["kind"], "FALLOUT_RAISED");
        assert_eq!(history[3]["falloutReason"], "BUSINESS_REJECTED");
        assert_eq!(history[4]["operator"], "ops-1");
        assert_eq!(history[4]["resolution"]["kind"], "NEW_ATTEMPT");
    }

    #[tokio::test]
    async fn a_list_node_answers_its_summary_without_reading() {
        let mut with_fallout = detail();
        if let Some(line) = with_fallout.order.lines.first_mut() {
            line.stage = LineStage::Fallout;
            line.open_fallout = true;
            line.fallout_reason = Some(FalloutReason::RetriesExhausted);
        }
        let summary = OrderSummary::from(&with_fallout.order);
        let order = run(
            OrderNode::from_summary(summary).expect("node"),
            "{ status hasFallout linesInFallout lineCount quoteId }",
        )
        .await;
        assert_eq!(order["hasFallout"], true);
        assert_eq!(order["linesInFallout"], 1);
        assert_eq!(order["lineCount"], 1);
        assert_eq!(order["status"], "OPEN");

        let detail = run(
            OrderNode::from_detail(with_fallout).expect("node"),
            "{ lines { fallout { reason step attempt handoffId } } }",
        )
        .await;
        assert_eq!(
            detail["lines"][0]["fallout"],
            json!({"reason": "RETRIES_EXHAUSTED", "step": "PROVISIONING", "attempt": 2,
                   "handoffId": "h-3"})
        );
    }

    #[test]
    fn a_cancelled_in_flight_step_is_cancelled_and_compensations_have_no_step() {
        let mut d = detail();
        let Some(line) = d.order.lines.first_mut() else {
            panic!("a line");
        };
        line.history.push(StepHistoryEntry {
            at: Timestamp(T0 + 40),
            step: Some(Step::Provisioning),
            attempt: 2,
            handoff_id: None,
            change: StepChange::Cancelled,
        });
        line.history.push(StepHistoryEntry {
            at: Timestamp(T0 + 40),
            step: None,
            attempt: 1,
            handoff_id: Some(HandoffId::new("h-4")),
            change: StepChange::CompensationSettled {
                purpose: Purpose::Release,
                outcome: domain::order::CompensationOutcome::Failed {
                    reason: FalloutReason::RetriesExhausted,
                },
            },
        });
        let line = OrderLine::new(line, &d.handoffs);
        let states: Vec<_> = line.steps.iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                OrderStepState::Succeeded,
                OrderStepState::Cancelled,
                OrderStepState::NotRequested
            ]
        );
        let settled = line.history.last().expect("settled");
        assert_eq!(settled.kind, OrderLineChange::CompensationSettled);
        assert_eq!(settled.step, None);
        assert_eq!(settled.purpose, Some(super::Purpose::Release));
        assert_eq!(
            settled.compensation_outcome,
            Some(CompensationOutcome::Failed)
        );
        assert_eq!(
            settled.fallout_reason,
            Some(super::FalloutReason::RetriesExhausted)
        );
    }
}
