//! The fallout case node: a handoff a human must look at, with its order,
//! line and step, the evidence, what an operator may do, and how it was
//! resolved.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, SimpleObject};
use domain::order::Resolution;
use projections::{CaseResolution, FalloutCaseView, ResolutionHow};

use super::enums::{
    FalloutAction, FalloutCaseStatus, FalloutReason, ObservationSource, Purpose, TargetSystem,
};
use super::handoff::{calls, HandoffCall, HandoffNode};
use super::order::{FulfillmentStep, OrderNode};
use super::scalars::DateTime;
use crate::graphql::error::ApiResult;
use crate::graphql::links;

/// How a fallout was resolved.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum FalloutResolutionKind {
    /// The step was requested again under a new attempt.
    NewAttempt,
    /// Done outside the platform, with evidence (`reference`, `note`).
    ResolvedExternally,
    /// The line was cancelled (`reason`).
    CancelLine,
    /// The handoff itself was closed (compensations, local-impossible
    /// cases; `note`).
    HandoffClosed,
}

/// How a fallout was resolved, with the operator's evidence. Fields that
/// do not belong to `kind` are null.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct FalloutResolutionHow {
    /// How.
    kind: FalloutResolutionKind,
    /// `RESOLVED_EXTERNALLY`: the external system's reference.
    reference: Option<String>,
    /// `RESOLVED_EXTERNALLY`: what the operator checked; `HANDOFF_CLOSED`:
    /// what was done.
    note: Option<String>,
    /// `CANCEL_LINE`: why.
    reason: Option<String>,
}

impl From<&ResolutionHow> for FalloutResolutionHow {
    fn from(how: &ResolutionHow) -> Self {
        let with = |kind| Self {
            kind,
            reference: None,
            note: None,
            reason: None,
        };
        match how {
            ResolutionHow::NewAttempt => with(FalloutResolutionKind::NewAttempt),
            ResolutionHow::ResolvedExternally { reference, note } => Self {
                reference: Some(reference.clone()),
                note: Some(note.clone()),
                ..with(FalloutResolutionKind::ResolvedExternally)
            },
            ResolutionHow::CancelLine { reason } => Self {
                reason: Some(reason.clone()),
                ..with(FalloutResolutionKind::CancelLine)
            },
            ResolutionHow::HandoffClosed { note } => Self {
                note: Some(note.clone()),
                ..with(FalloutResolutionKind::HandoffClosed)
            },
        }
    }
}

impl From<&Resolution> for FalloutResolutionHow {
    fn from(resolution: &Resolution) -> Self {
        Self::from(&ResolutionHow::from(resolution))
    }
}

/// Who resolved a case, how and when.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct FalloutResolution {
    /// Who (the operator's credential name).
    resolved_by: String,
    /// How.
    how: FalloutResolutionHow,
    /// When.
    at: DateTime,
    /// The note recorded when the handoff itself was closed afterwards.
    handoff_note: Option<String>,
}

impl From<&CaseResolution> for FalloutResolution {
    fn from(r: &CaseResolution) -> Self {
        Self {
            resolved_by: r.resolved_by.clone(),
            how: (&r.how).into(),
            at: r.at.into(),
            handoff_note: r.handoff_note.clone(),
        }
    }
}

/// The external evidence of a case, as the target answered (every field is
/// null when the case has no observation, e.g. an SLA breach).
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct FalloutEvidence {
    /// The raw external code (HTTP status, vendor code such as `ERR2`).
    raw_code: Option<String>,
    /// The raw external label or message.
    raw_label: Option<String>,
    /// The target's reference for the request.
    external_reference: Option<String>,
    /// Which channel delivered the evidence.
    source: Option<ObservationSource>,
}

/// A fallout case.
#[derive(Clone)]
pub struct FalloutCaseNode {
    /// The read model's case.
    view: Arc<FalloutCaseView>,
}

impl FalloutCaseNode {
    /// The node of a fallout case's view.
    pub fn from_view(view: FalloutCaseView) -> ApiResult<Self> {
        Ok(Self::from_shared(Arc::new(view)))
    }

    /// The fallout case opened by the handoff `id`, through the request's
    /// batched links (`None` when there is none).
    pub(crate) async fn linked(
        ctx: &Context<'_>,
        id: domain::ids::HandoffId,
    ) -> ApiResult<Option<Self>> {
        Ok(links::fallout_case(ctx, id).await?.map(Self::from_shared))
    }

    /// The node of a fallout case's view, shared with the links loader.
    pub fn from_shared(view: Arc<FalloutCaseView>) -> Self {
        Self { view }
    }
}

/// A fallout case: one handoff a human must look at (its id is the
/// handoff's), with its order, line and step, the normalized reason, the
/// raw evidence, what an operator may do now, and, once resolved, who
/// resolved it, how and when.
#[Object]
impl FalloutCaseNode {
    /// The handoff the case is about (the case's id).
    async fn handoff_id(&self) -> &str {
        self.view.case.handoff_id.as_str()
    }

    /// The order.
    async fn order_id(&self) -> &str {
        self.view.case.order_id.as_str()
    }

    /// The order line; for a handoff about the whole order (a customer
    /// notification, the confirmation document) the name of what it is
    /// about, e.g. `captured_v1` or `document_order-confirmation-v1`.
    async fn line_id(&self) -> &str {
        self.view.case.line_id.as_str()
    }

    /// The forward step that fell out; null for a compensation, a
    /// notification or a document (`purpose` says which).
    async fn step(&self) -> Option<FulfillmentStep> {
        self.view.case.step.map(Into::into)
    }

    /// What the handoff asked.
    async fn purpose(&self) -> Purpose {
        self.view.case.purpose.into()
    }

    /// The external system.
    async fn target(&self) -> TargetSystem {
        self.view.case.target.into()
    }

    /// The normalized reason.
    async fn reason(&self) -> FalloutReason {
        self.view.case.reason.into()
    }

    /// The raw evidence the target gave.
    async fn evidence(&self) -> FalloutEvidence {
        let case = &self.view.case;
        FalloutEvidence {
            raw_code: case.raw_code.clone(),
            raw_label: case.raw_label.clone(),
            external_reference: case.external_reference.clone(),
            source: case.observation_source.map(Into::into),
        }
    }

    /// The business attempt that fell out (attempts made for this step).
    async fn attempt(&self) -> u32 {
        self.view.case.attempt
    }

    /// When the case opened.
    async fn opened_at(&self) -> DateTime {
        self.view.case.opened_at.into()
    }

    /// Milliseconds since it opened.
    async fn age_ms(&self) -> i64 {
        self.view.age_ms
    }

    /// True while the order line is recorded in fallout.
    async fn line_in_fallout(&self) -> bool {
        self.view.case.line_fallout
    }

    /// In the queue or resolved.
    async fn status(&self) -> FalloutCaseStatus {
        self.view.case.status.into()
    }

    /// What an operator may do now (empty once resolved).
    async fn allowed_actions(&self) -> Vec<FalloutAction> {
        self.view
            .case
            .allowed_actions
            .iter()
            .map(|a| (*a).into())
            .collect()
    }

    /// Who resolved it, how and when (null while open).
    async fn resolution(&self) -> Option<FalloutResolution> {
        self.view.case.resolution.as_ref().map(Into::into)
    }

    /// The time of its latest event.
    async fn updated_at(&self) -> DateTime {
        self.view.case.updated_at.into()
    }

    /// The order whose line fell out.
    async fn order(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<OrderNode>> {
        Ok(OrderNode::linked(ctx, self.view.case.order_id.clone()).await?)
    }

    /// The handoff that fell out: keys, dispatches, observations.
    async fn handoff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<HandoffNode>> {
        Ok(HandoffNode::linked(ctx, self.view.case.handoff_id.clone()).await?)
    }

    /// Every call made to the target for the handoff, oldest first, with
    /// the redacted request and response, HTTP status, latency and time:
    /// what the operator judges the case by.
    async fn calls(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HandoffCall>> {
        Ok(calls(ctx, &self.view.case.handoff_id)?)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Schema};
    use domain::idempotency::{Purpose, TargetSystem};
    use domain::ids::{HandoffId, LineId, OrderId, TenantId, Timestamp};
    use domain::order::Step;
    use domain::outcome::{FalloutReason, ObservationSource};
    use projections::{CaseStatus, FalloutAction, FalloutCaseRecord};
    use serde_json::{json, Value};

    use super::*;

    fn case() -> FalloutCaseView {
        FalloutCaseView {
            case: FalloutCaseRecord {
                handoff_id: HandoffId::new("h-2"),
                tenant_id: TenantId::new("t-1"),
                order_id: OrderId::new("o-1"),
                line_id: LineId::new("l-1"),
                step: Some(Step::Provisioning),
                purpose: Purpose::Activate,
                target: TargetSystem::Provisioning,
                reason: FalloutReason::BusinessRejected,
                raw_code: Some("ERR2".into()),
                raw_label: Some("not eligible".into()),
                external_reference: None,
                observation_source: Some(ObservationSource::Callback),
                attempt: 1,
                opened_at: Timestamp(1_764_498_841_123),
                line_fallout: true,
                line_cancelled: false,
                status: CaseStatus::Open,
                allowed_actions: vec![FalloutAction::NewAttempt, FalloutAction::CancelLine],
                resolution: None,
                updated_at: Timestamp(1_764_498_841_123),
            },
            age_ms: 60_000,
        }
    }

    struct Query(FalloutCaseNode);

    #[Object]
    impl Query {
        async fn case(&self) -> &FalloutCaseNode {
            &self.0
        }
    }

    async fn run(view: FalloutCaseView, selection: &str) -> Value {
        let node = FalloutCaseNode::from_view(view).expect("node");
        let schema = Schema::new(Query(node), EmptyMutation, EmptySubscription);
        let response = schema.execute(format!("{{ case {selection} }}")).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        response
            .data
            .into_json()
            .map(|data| data["case"].clone())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn an_open_case_has_typed_reason_evidence_and_actions() {
        let case = run(
            case(),
            "{ handoffId orderId lineId step purpose target reason attempt openedAt ageMs
               status allowedActions resolution { at }
               evidence { rawCode rawLabel externalReference source } }",
        )
        .await;
        assert_eq!(
            case,
            json!({
                "handoffId": "h-2", "orderId": "o-1", "lineId": "l-1",
                "step": "PROVISIONING", "purpose": "ACTIVATE", "target": "PROVISIONING",
                "reason": "BUSINESS_REJECTED", "attempt": 1,
                "openedAt": "2025-11-30T10:34:01.123Z", "ageMs": 60_000,
                "status": "OPEN", "allowedActions": ["NEW_ATTEMPT", "CANCEL_LINE"],
                "resolution": null,
                "evidence": {"rawCode": "ERR2", "rawLabel": "not eligible",
                             "externalReference": null, "source": "CALLBACK"},
            })
        );
    }

    #[tokio::test]
    async fn a_resolved_case_has_its_resolution() {
        let mut view = case();
        view.case.status = CaseStatus::Resolved;
        view.case.allowed_actions.clear();
        view.case.resolution = Some(CaseResolution {
            resolved_by: "ops-1".into(),
            how: ResolutionHow::ResolvedExternally {
                reference: "PRV-7".into(),
                note: "checked in the portal".into(),
            },
            at: Timestamp(1_764_498_901_123),
            handoff_note: None,
        });
        let case = run(
            view,
            "{ status allowedActions handoffId
               resolution { resolvedBy at handoffNote how { kind reference note reason } } }",
        )
        .await;
        assert_eq!(case["status"], "RESOLVED");
        assert_eq!(case["allowedActions"], json!([]));
        assert_eq!(
            case["resolution"],
            json!({
                "resolvedBy": "ops-1", "at": "2025-11-30T10:35:01.123Z", "handoffNote": null,
                "how": {"kind": "RESOLVED_EXTERNALLY", "reference": "PRV-7",
                        "note": "checked in the portal", "reason": null},
            })
        );
        assert_eq!(case["handoffId"], "h-2");
    }
}
