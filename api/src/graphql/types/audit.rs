//! The audit entry node: one event of the audit trail with its envelope,
//! hash chain link, cause link and decoded payload.

use async_graphql::{Context, Json, Object, SimpleObject};
use domain::ids::StreamKind;
use eventlog::RecordedEvent;
use projections::AuditEntry;

use super::scalars::DateTime;
use super::Connection;
use crate::auth::Role;
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::{caller, input, page_size};

/// Whether `role` may read the decoded payloads of `kind`'s events. The
/// typed nodes show every role what it may read; a payload is the whole
/// event, including what the nodes leave out or redact (a handoff's
/// request as sent, a quote's customer data). Viewers read no payloads;
/// sales read quote payloads (the quotes they work on); operators,
/// admins and platform operators, who repair and audit fulfillment, read all.
pub fn may_read_payload(role: Role, kind: StreamKind) -> bool {
    match role {
        Role::Viewer => false,
        Role::Sales => kind == StreamKind::Quote,
        Role::Operator | Role::Admin | Role::Platform => true,
    }
}

/// One metadata entry of an event.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuditMetadataEntry {
    /// The key.
    key: String,
    /// The value.
    value: String,
}

/// The domain event `record` holds, as JSON (externally tagged by event
/// type, as the domain serializes it); `None` for a stream of no aggregate
/// the platform decodes.
fn decoded_payload(record: &RecordedEvent) -> ApiResult<Option<serde_json::Value>> {
    match projections::decode_record(record) {
        Ok(event) => serde_json::to_value(&event)
            .map(Some)
            .map_err(ApiError::internal),
        Err(e) if e.kind().is_none() => Ok(None),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// One event of the audit trail.
#[derive(Clone)]
pub struct AuditEntryNode {
    /// The read model's entry.
    entry: Box<AuditEntry>,
}

impl AuditEntryNode {
    /// The node of an audit entry.
    pub fn from_entry(entry: AuditEntry) -> ApiResult<Self> {
        Ok(Self {
            entry: Box::new(entry),
        })
    }

    /// A page of the events of `stream_id` (the caller's tenant's), oldest
    /// first.
    ///
    /// # Errors
    /// `VALIDATION` for a bad page size or cursor; storage errors.
    pub fn of_stream(
        ctx: &Context<'_>,
        stream_id: &str,
        first: Option<i64>,
        after: Option<String>,
    ) -> ApiResult<Connection<Self>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        let limit = page_size(first)?;
        let page = platform
            .read
            .audit_by_stream(&principal.tenant, stream_id, after.as_deref(), limit)
            .map_err(ApiError::from)?;
        Connection::from_page(page, Self::from_entry)
    }

    /// A page of the events of one correlation id (the caller's tenant's),
    /// in log order.
    ///
    /// # Errors
    /// `VALIDATION` for a bad id, page size or cursor; storage errors.
    pub fn of_correlation(
        ctx: &Context<'_>,
        correlation_id: &str,
        first: Option<i64>,
        after: Option<String>,
    ) -> ApiResult<Connection<Self>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        input::required_label("correlationId", correlation_id, input::MAX_KEY_BYTES)?;
        let limit = page_size(first)?;
        let page = platform
            .read
            .audit_by_correlation(&principal.tenant, correlation_id, after.as_deref(), limit)
            .map_err(ApiError::from)?;
        Connection::from_page(page, Self::from_entry)
    }
}

/// One event of the audit trail: where it is in the log and its stream,
/// what it is, what caused it, its link in the hash chain, and its payload.
#[Object]
impl AuditEntryNode {
    /// Global position in the log.
    async fn position(&self) -> u64 {
        self.entry.position
    }

    /// The aggregate's stream (`quote-…`, `order-…`, `handoff-…`).
    async fn stream_id(&self) -> &str {
        &self.entry.stream_id
    }

    /// Version of the stream after the event (from 1).
    async fn stream_version(&self) -> u64 {
        self.entry.stream_version
    }

    /// The event id (ULID).
    async fn event_id(&self) -> &str {
        &self.entry.event_id
    }

    /// The event type, e.g. `HandoffSent`.
    async fn event_type(&self) -> &str {
        &self.entry.event_type
    }

    /// The payload's schema version as recorded (`payload` shows the
    /// current version, upcast).
    async fn schema_version(&self) -> u16 {
        self.entry.schema_version
    }

    /// The correlation id.
    async fn correlation_id(&self) -> &str {
        &self.entry.correlation_id
    }

    /// The causation id (the command id that produced it), if any.
    async fn causation_id(&self) -> Option<&str> {
        self.entry.causation_id.as_deref()
    }

    /// Position of the event that caused it, when known.
    async fn caused_by_position(&self) -> Option<u64> {
        self.entry.caused_by_position
    }

    /// When the log recorded it.
    async fn recorded_at(&self) -> DateTime {
        DateTime::from_ms(self.entry.recorded_at_ms)
    }

    /// Its chain hash (hex): sha256 of the previous hash and its body.
    async fn hash(&self) -> &str {
        &self.entry.hash
    }

    /// The previous record's chain hash (hex).
    async fn prev_hash(&self) -> &str {
        &self.entry.prev_hash
    }

    /// Its metadata, by key.
    async fn metadata(&self) -> Vec<AuditMetadataEntry> {
        self.entry
            .metadata
            .iter()
            .map(|(key, value)| AuditMetadataEntry {
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    }

    /// The decoded domain event (upcast to its current schema), as JSON
    /// keyed by event type: the raw payload, untyped on purpose. Read from
    /// the log; null for streams the platform does not decode, and null
    /// with an error when the payload cannot be decoded. Payloads are the
    /// whole event, so roles see only some: sales the payloads of quote
    /// events, operators and admins all; anyone else gets null with a
    /// `FORBIDDEN` error.
    async fn payload(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Json<serde_json::Value>>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        let kind = StreamKind::split(&self.entry.stream_id).map(|(kind, _)| kind);
        if let Ok(kind) = kind {
            if !may_read_payload(principal.role, kind) {
                return Err(ApiError::Forbidden {
                    role: principal.role.as_str(),
                    action: "read the payloads of these events",
                }
                .into());
            }
        }
        let record = platform
            .log
            .read_at(self.entry.position)
            .map_err(ApiError::internal)?
            .filter(|r| {
                r.tenant_id == principal.tenant.as_str()
                    && r.event_id.to_string() == self.entry.event_id
            });
        let Some(record) = record else {
            return Ok(None);
        };
        Ok(decoded_payload(&record)?.map(Json))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_graphql::{EmptyMutation, EmptySubscription, Schema};
    use domain::decider::DomainEvent;
    use domain::handoff::HandoffEvent;
    use domain::ids::Timestamp;
    use serde_json::{json, Value};

    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            position: 41,
            stream_id: "handoff-h-1".into(),
            stream_version: 2,
            event_id: "01JDQ7Z8X9K2M3N4P5Q6R7S8T9".into(),
            event_type: "HandoffSent".into(),
            schema_version: 1,
            tenant_id: "t-1".into(),
            correlation_id: "corr-1".into(),
            causation_id: Some("cmd-1".into()),
            caused_by_position: Some(40),
            recorded_at_ms: 1_764_498_841_123,
            hash: "ab".repeat(32),
            prev_hash: "cd".repeat(32),
            metadata: BTreeMap::from([("actor".to_owned(), "dispatcher".to_owned())]),
        }
    }

    struct Query(AuditEntryNode);

    #[Object]
    impl Query {
        async fn entry(&self) -> &AuditEntryNode {
            &self.0
        }
    }

    #[tokio::test]
    async fn an_entry_has_typed_envelope_fields() {
        let node = AuditEntryNode::from_entry(entry()).expect("node");
        let schema = Schema::new(Query(node), EmptyMutation, EmptySubscription);
        let response = schema
            .execute(
                "{ entry { position streamId streamVersion eventType schemaVersion
                   causationId causedByPosition recordedAt metadata { key value } payload } }",
            )
            .await;
        // No platform in this schema: only `payload` fails, and alone.
        assert_eq!(response.errors.len(), 1);
        let mut entry = response
            .data
            .into_json()
            .map(|data| data["entry"].clone())
            .unwrap_or_default();
        // async-graphql leaves a failed nullable field out of `data`.
        let payload = entry.as_object_mut().and_then(|e| e.remove("payload"));
        assert_eq!(payload.unwrap_or_default(), Value::Null);
        assert_eq!(
            entry,
            json!({
                "position": 41, "streamId": "handoff-h-1", "streamVersion": 2,
                "eventType": "HandoffSent", "schemaVersion": 1, "causationId": "cmd-1",
                "causedByPosition": 40, "recordedAt": "2025-11-30T10:34:01.123Z",
                "metadata": [{"key": "actor", "value": "dispatcher"}],
            })
        );
    }

    fn record(stream_id: &str, event: &HandoffEvent, payload: Vec<u8>) -> RecordedEvent {
        RecordedEvent {
            position: 41,
            stream_id: stream_id.into(),
            stream_version: 2,
            event_id: ulid::Ulid::nil(),
            event_type: event.event_type().into(),
            schema_version: event.schema_version(),
            tenant_id: "t-1".into(),
            correlation_id: "corr-1".into(),
            causation_id: None,
            recorded_at_ms: 0,
            metadata: BTreeMap::new(),
            payload,
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn the_payload_is_the_decoded_domain_event() {
        let event = HandoffEvent::HandoffSent {
            send: 2,
            at: Timestamp(1_764_498_841_123),
        };
        let bytes = eventlog::encode_payload(&event).expect("encode");
        let payload = decoded_payload(&record("handoff-h-1", &event, bytes)).expect("decode");
        assert_eq!(
            payload,
            Some(json!({"HandoffSent": {"send": 2, "at": 1_764_498_841_123_i64}}))
        );
        let foreign = decoded_payload(&record("other-x", &event, Vec::new())).expect("foreign");
        assert_eq!(foreign, None::<Value>);
        assert!(decoded_payload(&record("handoff-h-1", &event, vec![0xff])).is_err());
    }
}
