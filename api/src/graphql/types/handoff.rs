//! The handoff node: one request to an external system, its status, keys
//! and hashes, SLA, latest evidence and resolution from the handoffs read
//! model, and its redacted request, dispatches and observations from its
//! own stream in the log.

use std::sync::{Arc, OnceLock};

use async_graphql::{Context, Object, SimpleObject};
use domain::events::AnyEvent;
use domain::handoff::HandoffEvent;
use domain::ids::handoff_stream;
use integration::evidence::EvidenceRecord;
use projections::{HandoffView, ObservationRecord};

use super::audit::AuditEntryNode;
use super::enums::{
    FalloutReason, HandoffStatus, ObservationSource, OutcomeClass, Purpose, TargetSystem,
};
use super::fallout::FalloutCaseNode;
use super::order::FulfillmentStep;
use super::order::OrderNode;
use super::scalars::DateTime;
use super::Connection;
use crate::auth::Role;
use crate::graphql::caller;
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::links;

/// One call to the target system for a handoff, as the adapter recorded it
/// before appending the outcome it led to: the redacted exchange, the HTTP
/// status, the latency, and the normalized class with the raw code.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct HandoffCall {
    /// When the call ended.
    at: DateTime,
    /// Who made it: `dispatch` (a send of the request) or `reconciliation`
    /// (a status question).
    source: String,
    /// The system's operation: `execute` or `status`.
    operation: String,
    /// The HTTP status, when a response came (null on a timeout or a
    /// refused connection).
    http_status: Option<u16>,
    /// How long the call took, in milliseconds.
    latency_ms: u64,
    /// The request body as sent, sensitive fields redacted.
    request: String,
    /// The response body, redacted and cut to 512 bytes (null without a
    /// response).
    response: Option<String>,
    /// The class the adapter mapped the answer to (null if the recorded
    /// name is not one this server knows).
    class: Option<OutcomeClass>,
    /// The raw external code, as evidence.
    raw_code: Option<String>,
    /// The raw external label or message, as evidence.
    raw_label: Option<String>,
    /// The target's reference for the request, when it gave one.
    external_reference: Option<String>,
}

impl From<EvidenceRecord> for HandoffCall {
    fn from(r: EvidenceRecord) -> Self {
        Self {
            at: domain::ids::Timestamp(r.at_ms).into(),
            source: r.source,
            class: r
                .class
                .parse::<domain::outcome::OutcomeClass>()
                .ok()
                .map(Into::into),
            operation: r.evidence.operation,
            http_status: r.evidence.http_status,
            latency_ms: r.evidence.latency_ms,
            request: r.evidence.request,
            response: r.evidence.response,
            raw_code: r.raw_code,
            raw_label: r.raw_label,
            external_reference: r.external_reference,
        }
    }
}

/// Every recorded call of the handoff `id`, oldest first.
///
/// # Errors
/// `INTERNAL` when the evidence cannot be read.
pub(crate) fn calls(ctx: &Context<'_>, id: &domain::ids::HandoffId) -> ApiResult<Vec<HandoffCall>> {
    let (platform, _) = caller(ctx, Role::Viewer, "read")?;
    Ok(platform
        .evidence
        .for_handoff(id)
        .map_err(ApiError::internal)?
        .into_iter()
        .map(HandoffCall::from)
        .collect())
}

/// One observation of a handoff's outcome: the normalized class and the
/// raw answer as evidence.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct HandoffObservation {
    /// The normalized class the adapter mapped the answer to.
    class: OutcomeClass,
    /// The raw external code (HTTP status, vendor code such as `ERR2`), as
    /// evidence.
    raw_code: Option<String>,
    /// The raw external label or message, as evidence.
    raw_label: Option<String>,
    /// The target's reference for the request, when it gave one.
    external_reference: Option<String>,
    /// Which channel delivered it: the dispatch's response, a callback or a
    /// reconciliation.
    source: ObservationSource,
    /// When it was observed, by the edge's clock.
    observed_at: DateTime,
}

impl From<&ObservationRecord> for HandoffObservation {
    fn from(o: &ObservationRecord) -> Self {
        Self {
            class: o.class.into(),
            raw_code: o.raw_code.clone(),
            raw_label: o.raw_label.clone(),
            external_reference: o.external_reference.clone(),
            source: o.source.into(),
            observed_at: o.observed_at.into(),
        }
    }
}

/// How an operator closed a handoff.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct HandoffResolution {
    /// Who (the operator's credential name).
    operator: String,
    /// What was done.
    note: String,
    /// When.
    at: DateTime,
}

/// One send of the request (every send carries the same idempotency key).
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub(crate) struct HandoffDispatch {
    /// Which send this was, from 1.
    send: u32,
    /// When it left.
    at: DateTime,
}

/// One field of the request, as recorded (sensitive values redacted).
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub(crate) struct HandoffRequestField {
    /// The field's name.
    name: String,
    /// Its value, or the redaction marker for a sensitive field.
    value: String,
}

/// What a handoff's own stream records: its request, sends and
/// observations, in order.
#[derive(Clone, Debug, Default)]
struct HandoffLog {
    request: Vec<HandoffRequestField>,
    dispatches: Vec<HandoffDispatch>,
    observations: Vec<HandoffObservation>,
}

impl HandoffLog {
    /// Folds the handoff's events, oldest first.
    fn from_events<'a>(events: impl IntoIterator<Item = &'a HandoffEvent>) -> Self {
        let mut log = Self::default();
        for event in events {
            match event {
                HandoffEvent::HandoffRequested {
                    request_snapshot, ..
                } => {
                    log.request = request_snapshot
                        .redacted()
                        .fields
                        .into_iter()
                        .map(|(name, value)| HandoffRequestField { name, value })
                        .collect();
                }
                HandoffEvent::HandoffSent { send, at } => log.dispatches.push(HandoffDispatch {
                    send: *send,
                    at: (*at).into(),
                }),
                HandoffEvent::HandoffAccepted { observation }
                | HandoffEvent::HandoffSucceeded { observation, .. }
                | HandoffEvent::HandoffRejected { observation, .. }
                | HandoffEvent::HandoffOutcomeUnknown { observation }
                | HandoffEvent::HandoffRetryScheduled { observation, .. }
                | HandoffEvent::HandoffObservationNoted { observation }
                | HandoffEvent::HandoffFalloutRaised {
                    observation: Some(observation),
                    ..
                } => log
                    .observations
                    .push((&ObservationRecord::from(observation)).into()),
                HandoffEvent::HandoffFalloutRaised {
                    observation: None, ..
                }
                | HandoffEvent::HandoffResolved { .. }
                | HandoffEvent::HandoffWithdrawn { .. } => {}
            }
        }
        log
    }
}

/// A handoff to an external system.
#[derive(Clone)]
pub struct HandoffNode {
    /// The read model's view.
    view: Arc<HandoffView>,
    /// The handoff's stream, read once on the first field that needs it.
    log: OnceLock<Box<HandoffLog>>,
}

impl HandoffNode {
    /// The node of a handoff's view.
    pub fn from_view(view: HandoffView) -> ApiResult<Self> {
        Ok(Self::from_shared(Arc::new(view)))
    }

    /// The handoff `id` of the caller's tenant through the request's
    /// batched links (`None` when there is none).
    pub(crate) async fn linked(
        ctx: &Context<'_>,
        id: domain::ids::HandoffId,
    ) -> ApiResult<Option<Self>> {
        Ok(links::handoff(ctx, id).await?.map(Self::from_shared))
    }

    /// The node of a handoff's view, shared with the links loader.
    pub fn from_shared(view: Arc<HandoffView>) -> Self {
        Self {
            view,
            log: OnceLock::new(),
        }
    }

    /// The handoff's stream, read from the log and decoded (the caller's
    /// tenant's events only).
    fn log(&self, ctx: &Context<'_>) -> ApiResult<&HandoffLog> {
        if let Some(log) = self.log.get() {
            return Ok(log);
        }
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        let stream = handoff_stream(&self.view.handoff.handoff_id);
        let mut events = Vec::new();
        for record in platform.log.iter_stream(&stream, 1) {
            let record = record.map_err(ApiError::internal)?;
            if record.tenant_id != principal.tenant.as_str() {
                continue;
            }
            if let AnyEvent::Handoff(event) =
                projections::decode_record(&record).map_err(ApiError::internal)?
            {
                events.push(event);
            }
        }
        Ok(self
            .log
            .get_or_init(|| Box::new(HandoffLog::from_events(&events))))
    }
}

/// A handoff to an external system: one business attempt of one step (or
/// compensation) of an order line, sent with one idempotency key however
/// often it is resent. Status, SLA and the latest evidence come from the
/// handoffs read model; `redactedRequest`, `dispatches` and `observations`
/// are read from the handoff's own stream and may be a little ahead of it.
#[Object]
impl HandoffNode {
    /// The handoff id.
    async fn id(&self) -> &str {
        self.view.handoff.handoff_id.as_str()
    }

    /// The order that opened it.
    async fn order_id(&self) -> &str {
        self.view.handoff.order_id.as_str()
    }

    /// The order line it serves.
    async fn line_id(&self) -> &str {
        self.view.handoff.line_id.as_str()
    }

    /// Where it stands.
    async fn status(&self) -> HandoffStatus {
        self.view.handoff.stage.into()
    }

    /// True while its outcome is open (requested, sent, accepted, unknown,
    /// retry scheduled).
    async fn pending(&self) -> bool {
        self.view.handoff.stage.is_pending()
    }

    /// The external system.
    async fn target(&self) -> TargetSystem {
        self.view.handoff.target.into()
    }

    /// What is asked of it.
    async fn purpose(&self) -> Purpose {
        self.view.handoff.purpose.into()
    }

    /// The forward step it carries out; null for a compensation, a
    /// notification or a document (`purpose` says which).
    async fn step(&self) -> Option<FulfillmentStep> {
        self.view.handoff.step.map(Into::into)
    }

    /// The business attempt, from 1.
    async fn attempt(&self) -> u32 {
        self.view.handoff.attempt
    }

    /// The business idempotency key, the same for every send.
    async fn idempotency_key(&self) -> &str {
        &self.view.handoff.idempotency_key
    }

    /// The sha256 (hex) of the unredacted request.
    async fn request_hash(&self) -> &str {
        &self.view.handoff.request_hash
    }

    /// How many times the request was sent.
    async fn sends(&self) -> u32 {
        self.view.handoff.sends
    }

    /// How many technical retries were scheduled.
    async fn retries(&self) -> u32 {
        self.view.handoff.retries
    }

    /// When the scheduled resend is due (null when none is scheduled).
    async fn retry_due_at(&self) -> Option<DateTime> {
        self.view.handoff.retry_due_at.map(Into::into)
    }

    /// Why it is rejected or in fallout (null otherwise).
    async fn fallout_reason(&self) -> Option<FalloutReason> {
        self.view.handoff.fallout_reason.map(Into::into)
    }

    /// When it was requested.
    async fn requested_at(&self) -> DateTime {
        self.view.handoff.requested_at.into()
    }

    /// When it was last sent (null before the first send).
    async fn last_sent_at(&self) -> Option<DateTime> {
        self.view.handoff.last_sent_at.map(Into::into)
    }

    /// The time of its latest event.
    async fn updated_at(&self) -> DateTime {
        self.view.handoff.updated_at.into()
    }

    /// The latest observation (null before the first).
    async fn last_observation(&self) -> Option<HandoffObservation> {
        self.view.handoff.last_observation.as_ref().map(Into::into)
    }

    /// How many observations were recorded.
    async fn observation_count(&self) -> u32 {
        self.view.handoff.observations
    }

    /// How an operator closed it (null unless resolved).
    async fn resolution(&self) -> Option<HandoffResolution> {
        self.view
            .handoff
            .resolution
            .as_ref()
            .map(|r| HandoffResolution {
                operator: r.operator.clone(),
                note: r.note.clone(),
                at: r.at.into(),
            })
    }

    /// Milliseconds since it was requested.
    async fn age_ms(&self) -> i64 {
        self.view.age_ms
    }

    /// Milliseconds since its latest observation (null before the first).
    async fn since_last_observation_ms(&self) -> Option<i64> {
        self.view.since_last_observation_ms
    }

    /// Its target's SLA for this tenant, in milliseconds.
    async fn sla_ms(&self) -> u64 {
        self.view.sla_ms
    }

    /// When its SLA runs out (request time plus SLA).
    async fn sla_due_at(&self) -> DateTime {
        self.view
            .handoff
            .requested_at
            .plus_millis(self.view.sla_ms)
            .into()
    }

    /// Pending and older than its SLA.
    async fn overdue(&self) -> bool {
        self.view.overdue
    }

    /// Its stream's version.
    async fn version(&self) -> u64 {
        self.view.handoff.version
    }

    /// The request as recorded before anything was sent, field by field
    /// in name order, sensitive values redacted (read from the handoff's
    /// stream; null, with an error, if it cannot be read).
    async fn redacted_request(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<&[HandoffRequestField]>> {
        Ok(Some(&self.log(ctx)?.request))
    }

    /// Every send of the request, oldest first (read from the handoff's
    /// stream; null, with an error, if it cannot be read).
    async fn dispatches(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<&[HandoffDispatch]>> {
        Ok(Some(&self.log(ctx)?.dispatches))
    }

    /// Every observation of its outcome, oldest first: response, callback
    /// or reconciliation, with the raw code as evidence (read from the
    /// handoff's stream; null, with an error, if it cannot be read).
    async fn observations(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<&[HandoffObservation]>> {
        Ok(Some(&self.log(ctx)?.observations))
    }

    /// Every call made to the target for this handoff, oldest first: each
    /// send and each reconciliation question, with the redacted request and
    /// response, HTTP status, latency and time (the evidence behind each
    /// observation).
    async fn calls(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HandoffCall>> {
        Ok(calls(ctx, &self.view.handoff.handoff_id)?)
    }

    /// The order that opened it.
    async fn order(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<OrderNode>> {
        Ok(OrderNode::linked(ctx, self.view.handoff.order_id.clone()).await?)
    }

    /// Its fallout case, open or resolved (null when it never fell out).
    async fn fallout_case(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<FalloutCaseNode>> {
        Ok(FalloutCaseNode::linked(ctx, self.view.handoff.handoff_id.clone()).await?)
    }

    /// The handoff's events, oldest first, from the audit trail (its
    /// stream).
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<AuditEntryNode>> {
        let stream = handoff_stream(&self.view.handoff.handoff_id);
        Ok(AuditEntryNode::of_stream(ctx, &stream, first, after)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_graphql::{EmptyMutation, EmptySubscription, Schema};
    use domain::handoff::{HandoffSubject, RequestSnapshot, REDACTED};
    use domain::idempotency::{Purpose, TargetSystem};
    use domain::ids::{HandoffId, LineId, OrderId, TenantId, Timestamp};
    use domain::order::Step;
    use domain::outcome::{Observation, ObservationSource, OutcomeClass};
    use projections::{HandoffRecord, HandoffStage};
    use serde_json::{json, Value};

    use super::*;

    const T0: i64 = 1_764_498_841_123;

    fn observation(class: OutcomeClass, code: &str, source: ObservationSource) -> Observation {
        Observation {
            handoff_id: HandoffId::new("h-1"),
            attempt: 1,
            class,
            raw_code: Some(code.into()),
            raw_label: None,
            external_reference: None,
            observed_at: Timestamp(T0 + 2_000),
            source,
        }
    }

    fn view() -> HandoffView {
        let last = observation(
            OutcomeClass::Unknown,
            "timeout",
            ObservationSource::Dispatch,
        );
        HandoffView {
            handoff: HandoffRecord {
                handoff_id: HandoffId::new("h-1"),
                tenant_id: TenantId::new("t-1"),
                order_id: OrderId::new("o-1"),
                line_id: LineId::new("l-1"),
                target: TargetSystem::Inventory,
                purpose: Purpose::Reserve,
                step: Some(Step::Reservation),
                attempt: 1,
                idempotency_key: "o-1:l-1:reserve:1".into(),
                request_hash: "ab12".into(),
                stage: HandoffStage::Unknown,
                sends: 1,
                retries: 0,
                retry_due_at: None,
                fallout_reason: None,
                requested_at: Timestamp(T0),
                last_sent_at: Some(Timestamp(T0 + 1_000)),
                last_observation: Some(ObservationRecord::from(&last)),
                observations: 1,
                resolution: None,
                updated_at: Timestamp(T0 + 2_000),
                version: 3,
            },
            age_ms: 20 * 60 * 1000,
            since_last_observation_ms: Some(60_000),
            sla_ms: 15 * 60 * 1000,
            overdue: true,
        }
    }

    fn events() -> Vec<HandoffEvent> {
        let subject = HandoffSubject {
            tenant_id: TenantId::new("t-1"),
            order_id: OrderId::new("o-1"),
            line_id: LineId::new("l-1"),
            target: TargetSystem::Inventory,
            purpose: Purpose::Reserve,
            attempt: 1,
        };
        vec![
            HandoffEvent::HandoffRequested {
                handoff_id: HandoffId::new("h-1"),
                subject,
                idempotency_key: "o-1:l-1:reserve:1".into(),
                request_hash: "ab12".into(),
                request_snapshot: RequestSnapshot {
                    fields: BTreeMap::from([
                        ("quantity".to_owned(), "1".to_owned()),
                        ("api_token".to_owned(), "s3cret".to_owned()),
                    ]),
                },
                at: Timestamp(T0),
            },
            HandoffEvent::HandoffSent {
                send: 1,
                at: Timestamp(T0 + 1_000),
            },
            HandoffEvent::HandoffOutcomeUnknown {
                observation: observation(
                    OutcomeClass::Unknown,
                    "timeout",
                    ObservationSource::Dispatch,
                ),
            },
            HandoffEvent::HandoffObservationNoted {
                observation: observation(
                    OutcomeClass::Succeeded,
                    "200",
                    ObservationSource::Reconciliation,
                ),
            },
        ]
    }

    struct Query(HandoffNode);

    #[Object]
    impl Query {
        async fn handoff(&self) -> &HandoffNode {
            &self.0
        }
    }

    async fn run(node: HandoffNode, selection: &str) -> async_graphql::Response {
        let schema = Schema::new(Query(node), EmptyMutation, EmptySubscription);
        schema.execute(format!("{{ handoff {selection} }}")).await
    }

    fn data(response: async_graphql::Response) -> Value {
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        response
            .data
            .into_json()
            .map(|data| data["handoff"].clone())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_handoff_has_typed_status_keys_sla_and_evidence() {
        let node = HandoffNode::from_view(view()).expect("node");
        let handoff = data(
            run(
                node,
                "{ id status pending target purpose step attempt idempotencyKey requestHash
                   requestedAt slaMs slaDueAt ageMs overdue resolution { at }
                   lastObservation { class rawCode source observedAt } }",
            )
            .await,
        );
        assert_eq!(
            handoff,
            json!({
                "id": "h-1", "status": "UNKNOWN", "pending": true, "target": "INVENTORY",
                "purpose": "RESERVE", "step": "RESERVATION", "attempt": 1,
                "idempotencyKey": "o-1:l-1:reserve:1", "requestHash": "ab12",
                "requestedAt": "2025-11-30T10:34:01.123Z", "slaMs": 900_000,
                "slaDueAt": "2025-11-30T10:49:01.123Z", "ageMs": 1_200_000, "overdue": true,
                "resolution": null,
                "lastObservation": {"class": "UNKNOWN", "rawCode": "timeout",
                                    "source": "DISPATCH",
                                    "observedAt": "2025-11-30T10:34:03.123Z"},
            })
        );
    }

    #[tokio::test]
    async fn the_stream_gives_the_redacted_request_dispatches_and_observations() {
        let node = HandoffNode::from_view(view()).expect("node");
        assert!(node
            .log
            .set(Box::new(HandoffLog::from_events(&events())))
            .is_ok());
        let handoff = data(
            run(
                node,
                "{ redactedRequest { name value } dispatches { send at }
                   observations { class rawCode source } }",
            )
            .await,
        );
        assert_eq!(
            handoff["redactedRequest"][1],
            json!({"name": "quantity", "value": "1"})
        );
        assert_eq!(
            handoff["redactedRequest"][0],
            json!({"name": "api_token", "value": REDACTED})
        );
        assert_eq!(
            handoff["dispatches"],
            json!([{"send": 1, "at": "2025-11-30T10:34:02.123Z"}])
        );
        assert_eq!(
            handoff["observations"],
            json!([
                {"class": "UNKNOWN", "rawCode": "timeout", "source": "DISPATCH"},
                {"class": "SUCCEEDED", "rawCode": "200", "source": "RECONCILIATION"},
            ])
        );
    }

    #[tokio::test]
    async fn without_a_platform_the_stream_fields_are_null_with_an_error() {
        let node = HandoffNode::from_view(view()).expect("node");
        let response = run(node, "{ id dispatches { send } }").await;
        assert_eq!(response.errors.len(), 1);
        let handoff = response
            .data
            .into_json()
            .map(|data| data["handoff"].clone())
            .unwrap_or_default();
        // async-graphql leaves a failed nullable field out of `data`.
        assert_eq!(handoff["id"], "h-1");
        assert_eq!(handoff["dispatches"], Value::Null);
    }
}
