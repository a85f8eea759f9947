//! GraphQL output types: one file per read model's node (quote, order,
//! handoff, fallout case, audit entry), the schema's enums and scalars,
//! and the shared page type.

pub mod admin;
mod audit;
mod capability;
mod catalog;
mod command;
pub mod enums;
mod fallout;
mod handoff;
mod order;
mod price_book;
mod quote;
pub mod scalars;
pub mod status;

pub use audit::{may_read_payload, AuditEntryNode};
pub use capability::CapabilityNode;
pub use catalog::CatalogNode;
pub use command::CommandResult;
pub use fallout::FalloutCaseNode;
pub use handoff::HandoffNode;
pub use order::OrderNode;
pub use price_book::PriceBookNode;
pub use quote::QuoteNode;

use async_graphql::SimpleObject;

use super::error::ApiResult;

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
    /// The event it stopped at and, for a caller of every tenant, why
    /// (the cause may quote another tenant's events), if it failed.
    pub failure: Option<String>,
    /// The online rebuild in progress (null when none is).
    pub rebuild: Option<RebuildProgressNode>,
}

/// How far an online rebuild has folded the log into the projector's new
/// generation; the current generation serves queries until the swap.
#[derive(SimpleObject, Clone)]
pub struct RebuildProgressNode {
    /// Events folded so far.
    pub done: u64,
    /// The log head the rebuild folds towards.
    pub total: u64,
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
    /// Whether you may run the operations that touch every tenant
    /// (`verifyLog`, `rebuildProjection`, `resetConsumer`): a `platform`
    /// credential, or an `admin` of the server's only tenant.
    pub every_tenant: bool,
}
