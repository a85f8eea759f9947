//! GraphQL output types. Each node exposes the fields a screen filters and
//! sorts on, typed, and the whole read-model view as `document` (JSON), so
//! the schema stays small while every projected fact is reachable.

use async_graphql::{Json, SimpleObject};
use serde::Serialize;

use super::error::{ApiError, ApiResult};

/// Relay-style page information.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Whether another page follows.
    pub has_next_page: bool,
    /// Pass as `after` to get the next page.
    pub end_cursor: Option<String>,
}

/// A page of nodes.
#[derive(SimpleObject)]
#[graphql(concrete(name = "QuoteConnection", params(QuoteNode)))]
#[graphql(concrete(name = "OrderConnection", params(OrderNode)))]
#[graphql(concrete(name = "HandoffConnection", params(HandoffNode)))]
#[graphql(concrete(name = "FalloutConnection", params(FalloutCaseNode)))]
#[graphql(concrete(name = "AuditConnection", params(AuditEntryNode)))]
pub struct Connection<T: async_graphql::OutputType> {
    /// The nodes of this page, in the query's order.
    pub nodes: Vec<T>,
    /// Where the next page starts.
    pub page_info: PageInfo,
}

impl<T: async_graphql::OutputType> Connection<T> {
    /// Converts a read-model page.
    pub fn from_page<V>(
        page: projections::Page<V>,
        convert: impl Fn(V) -> ApiResult<T>,
    ) -> ApiResult<Self> {
        Ok(Self {
            nodes: page
                .items
                .into_iter()
                .map(convert)
                .collect::<ApiResult<Vec<_>>>()?,
            page_info: PageInfo {
                has_next_page: page.has_more,
                end_cursor: page.next_cursor,
            },
        })
    }
}

/// Serializes a view for `document`.
pub fn document<V: Serialize>(view: &V) -> ApiResult<Json<serde_json::Value>> {
    serde_json::to_value(view)
        .map(Json)
        .map_err(ApiError::internal)
}

/// The text name of a serde unit enum value (e.g. a status).
pub fn enum_name<V: Serialize>(value: &V) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A quote (summary fields, and the detail view as `document` when asked
/// by id).
#[derive(SimpleObject, Clone)]
pub struct QuoteNode {
    /// The quote id.
    pub id: String,
    /// Lifecycle status, e.g. `Draft`, `Priced`, `Accepted`.
    pub status: String,
    /// The current revision.
    pub revision: u32,
    /// The customer's id.
    pub customer_id: String,
    /// The read model's view.
    pub document: Json<serde_json::Value>,
}

/// An order.
#[derive(SimpleObject, Clone)]
pub struct OrderNode {
    /// The order id.
    pub id: String,
    /// `Open`, `Completed` or `Cancelled`.
    pub status: String,
    /// Whether any line is in fallout.
    pub has_fallout: bool,
    /// The read model's view (lines, steps, handoffs per step).
    pub document: Json<serde_json::Value>,
}

/// A handoff to an external system.
#[derive(SimpleObject, Clone)]
pub struct HandoffNode {
    /// The handoff id.
    pub id: String,
    /// Milliseconds since it was requested.
    pub age_ms: i64,
    /// Past its SLA.
    pub overdue: bool,
    /// The read model's view.
    pub document: Json<serde_json::Value>,
}

/// A fallout case.
#[derive(SimpleObject, Clone)]
pub struct FalloutCaseNode {
    /// The handoff the case is about.
    pub handoff_id: String,
    /// Milliseconds since it opened.
    pub age_ms: i64,
    /// The case (order, line, step, target, reason, evidence, attempts,
    /// allowed actions, resolution).
    pub document: Json<serde_json::Value>,
}

/// One event of the audit trail.
#[derive(SimpleObject, Clone)]
pub struct AuditEntryNode {
    /// Global position.
    pub position: u64,
    /// The stream.
    pub stream_id: String,
    /// The event type.
    pub event_type: String,
    /// The correlation id.
    pub correlation_id: String,
    /// The causing event's id, if any.
    pub causation_id: Option<String>,
    /// The full entry (hashes, links).
    pub document: Json<serde_json::Value>,
}

/// What a command did.
#[derive(SimpleObject, Clone, Debug)]
pub struct CommandResult {
    /// The aggregate's id (a new quote's id on create).
    pub id: String,
    /// The stream written.
    pub stream_id: String,
    /// The stream's version after the command.
    pub version: u64,
    /// Global positions of the events appended (empty when none).
    pub positions: Vec<u64>,
    /// True when the command id had been seen: nothing new was appended.
    pub deduplicated: bool,
}

/// One projector's progress.
#[derive(SimpleObject, Clone)]
pub struct ProjectorStatusNode {
    /// Projector name.
    pub name: String,
    /// Next position it will apply.
    pub checkpoint: u64,
    /// Head of the log.
    pub head: u64,
    /// Events behind.
    pub lag: u64,
    /// Recent rate.
    pub events_per_s: f64,
    /// The event it stopped at and why, if it failed.
    pub failure: Option<String>,
}

/// One event as stored (admin reads and the live stream).
#[derive(SimpleObject, Clone)]
pub struct EventNode {
    /// Global position.
    pub position: u64,
    /// The stream.
    pub stream_id: String,
    /// Version within the stream (1-based).
    pub stream_version: u64,
    /// The event id.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The correlation id.
    pub correlation_id: String,
    /// The causing event's id.
    pub causation_id: Option<String>,
    /// When it was recorded.
    pub recorded_at_ms: i64,
    /// The chain hash (hex).
    pub hash: String,
}

impl From<&eventlog::RecordedEvent> for EventNode {
    fn from(event: &eventlog::RecordedEvent) -> Self {
        Self {
            position: event.position,
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            event_id: event.event_id.to_string(),
            event_type: event.event_type.clone(),
            correlation_id: event.correlation_id.clone(),
            causation_id: event.causation_id.clone(),
            recorded_at_ms: event.recorded_at_ms,
            hash: hex::encode(event.hash),
        }
    }
}

/// The caller's identity.
#[derive(SimpleObject, Clone)]
pub struct Me {
    /// The tenant of every read and write.
    pub tenant: String,
    /// The role.
    pub role: String,
    /// The credential's name.
    pub name: String,
}
