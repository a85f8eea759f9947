//! Queries over the read models, scoped to the caller's tenant.

use async_graphql::{Context, Object, Union};
use domain::ids::{HandoffId, OrderId, QuoteId};

use super::error::ApiError;
use super::input;
use super::types::enums::{FalloutReason, HandoffStatus, OrderStatus, QuoteStatus, TargetSystem};
use super::types::scalars::DateTime;
use super::types::status::{ConsumerStatus, Consumers, Dashboard, RelayStatus};
use super::types::{
    AuditEntryNode, CapabilityNode, CatalogNode, Connection, EventNode, FalloutCaseNode,
    HandoffNode, Me, OrderNode, PriceBookNode, ProjectorStatusNode, QuoteNode, RebuildProgressNode,
};
use super::{caller, off_worker, page_size, stopped_at};
use crate::auth::Role;

/// The query root.
pub struct Query;

/// One page of a list of the caller's tenant, `first` items long: `read`
/// gets the read models, the tenant and the page size. A page whose filter
/// may skip rows (`scans`: up to [`projections::MAX_EXAMINED`] of them) is
/// read off the async workers in one of the tenant's read slots
/// ([`off_worker`]); any other reads at most `first` rows, in place (a
/// slot for every page cost one busy tenant 7-12% of its detail queries
/// and 40% on their p99, measured).
async fn list_page<T: Send + 'static>(
    platform: &crate::platform::Platform,
    principal: &crate::auth::Principal,
    first: Option<i64>,
    scans: bool,
    read: impl FnOnce(
            &projections::ReadModels,
            &domain::ids::TenantId,
            usize,
        ) -> Result<projections::Page<T>, projections::QueryError>
        + Send
        + 'static,
) -> Result<projections::Page<T>, ApiError> {
    let (models, tenant, size) = (
        platform.read.clone(),
        principal.tenant.clone(),
        page_size(first)?,
    );
    if !scans {
        return read(&models, &tenant, size).map_err(ApiError::from);
    }
    let in_tenant = tenant.clone();
    off_worker(&platform.read_slots, &in_tenant, move |_| {
        read(&models, &tenant, size)
    })
    .await?
    .map_err(ApiError::from)
}

/// Anything with a global id (`Quote:<id>`, `Order:<id>`, `Handoff:<id>`).
#[derive(Union)]
pub enum Node {
    /// A quote.
    Quote(QuoteNode),
    /// An order.
    Order(OrderNode),
    /// A handoff.
    Handoff(HandoffNode),
}

#[Object]
impl Query {
    /// Who the caller is: tenant, role, credential name and whether it may
    /// run the operations that touch every tenant.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let (_, principal) = caller(ctx, Role::Viewer, "read")?;
        Ok(Me {
            tenant: principal.tenant.to_string(),
            role: principal.role.to_string(),
            name: principal.name.clone(),
            every_tenant: principal.every_tenant,
        })
    }

    /// Quotes, newest first, filtered by status, customer and last update.
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity \
                            + crate::graphql::scan_weight(updated_since.is_some() \
                            || (customer_id.is_some() && status.is_some()))")]
    async fn quotes(
        &self,
        ctx: &Context<'_>,
        status: Option<QuoteStatus>,
        customer_id: Option<String>,
        updated_since: Option<DateTime>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<QuoteNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        input::optional_id("customerId", customer_id.as_deref())?;
        let filter = projections::QuoteFilter {
            status: status.map(Into::into),
            customer_id: customer_id.map(domain::ids::CustomerId::new),
            updated_since: updated_since.map(DateTime::ms),
        };
        let scans = filter.may_skip_rows();
        let page = list_page(
            platform,
            principal,
            first,
            scans,
            move |read, tenant, size| read.quotes(tenant, &filter, after.as_deref(), size),
        )
        .await?;
        Ok(Connection::from_page(page, QuoteNode::from_summary)?)
    }

    /// One quote with revision, lines, price, approval, proposal,
    /// signature and acceptance evidence.
    async fn quote(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<QuoteNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        input::id("id", &id)?;
        let view = platform
            .read
            .quote(&principal.tenant, &QuoteId::new(id))
            .map_err(ApiError::from)?;
        Ok(view.map(QuoteNode::from_detail).transpose()?)
    }

    /// Orders, filtered by status and whether a line is in fallout.
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity \
                            + crate::graphql::scan_weight(status.is_some())")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        status: Option<OrderStatus>,
        has_fallout: Option<bool>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<OrderNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        let filter = projections::OrderFilter {
            status: status.map(Into::into),
            has_fallout,
        };
        let scans = filter.may_skip_rows();
        let page = list_page(
            platform,
            principal,
            first,
            scans,
            move |read, tenant, size| read.orders(tenant, &filter, after.as_deref(), size),
        )
        .await?;
        Ok(Connection::from_page(page, OrderNode::from_summary)?)
    }

    /// One order with every line's step, step history and handoffs.
    async fn order(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<OrderNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        input::id("id", &id)?;
        let view = platform
            .read
            .order(&principal.tenant, &OrderId::new(id), platform.now_ms())
            .map_err(ApiError::from)?;
        Ok(view.map(OrderNode::from_detail).transpose()?)
    }

    /// Handoffs by status and target system, the oldest unknown and
    /// pending first.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity \
                            + crate::graphql::scan_weight(status.is_some() \
                            || target_system.is_some() || overdue_only == Some(true))")]
    async fn handoffs(
        &self,
        ctx: &Context<'_>,
        status: Option<HandoffStatus>,
        target_system: Option<TargetSystem>,
        pending_only: Option<bool>,
        overdue_only: Option<bool>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<HandoffNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        let filter = projections::HandoffFilter {
            stage: status.map(Into::into),
            target: target_system.map(Into::into),
            pending_only: pending_only.unwrap_or(false),
            overdue_only: overdue_only.unwrap_or(false),
        };
        let now_ms = platform.now_ms();
        let scans = filter.may_skip_rows();
        let page = list_page(
            platform,
            principal,
            first,
            scans,
            move |read, tenant, size| {
                read.handoffs(tenant, &filter, after.as_deref(), size, now_ms)
            },
        )
        .await?;
        Ok(Connection::from_page(page, HandoffNode::from_view)?)
    }

    /// One handoff.
    async fn handoff(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<HandoffNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        input::id("id", &id)?;
        let view = platform
            .read
            .handoff(&principal.tenant, &HandoffId::new(id), platform.now_ms())
            .map_err(ApiError::from)?;
        Ok(view.map(HandoffNode::from_view).transpose()?)
    }

    /// The tenant's capability matrix (seed 001 §10): every capability,
    /// the system that offers it, whether the platform may use it now and
    /// why not, and its settings. Configured per tenant under
    /// `[systems.tenants.<tenant>.capabilities]`.
    async fn capabilities(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CapabilityNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        Ok(platform
            .systems
            .capability_matrix(principal.tenant.as_str())
            .into_iter()
            .map(CapabilityNode::from)
            .collect())
    }

    /// The tenant's catalog control plane: which catalog versions may be
    /// quoted against, and the one a new quote gets by default.
    async fn catalog(&self, ctx: &Context<'_>) -> async_graphql::Result<CatalogNode> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        Ok(CatalogNode::from(&platform.catalog(&principal.tenant)?))
    }

    /// The price book in force: the offerings a quote line may be
    /// configured with and their unit prices, under the version every new
    /// price carries.
    async fn price_book(&self, ctx: &Context<'_>) -> async_graphql::Result<PriceBookNode> {
        let (platform, _) = caller(ctx, Role::Viewer, "read")?;
        Ok(PriceBookNode::from(&platform.price_book))
    }

    /// The fallout queue, oldest first: open cases by default, filtered by
    /// target system, normalized reason and age.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity \
                            + crate::graphql::scan_weight(resolved == Some(true) \
                            && (target_system.is_some() || reason.is_some() \
                            || min_age_ms.is_some() || max_age_ms.is_some()))")]
    async fn fallout(
        &self,
        ctx: &Context<'_>,
        resolved: Option<bool>,
        target_system: Option<TargetSystem>,
        reason: Option<FalloutReason>,
        min_age_ms: Option<i64>,
        max_age_ms: Option<i64>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<FalloutCaseNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        let min_age_ms = input::optional_count("minAgeMs", min_age_ms)?;
        let max_age_ms = input::optional_count("maxAgeMs", max_age_ms)?;
        let filter = projections::FalloutFilter {
            status: if resolved.unwrap_or(false) {
                projections::CaseStatus::Resolved
            } else {
                projections::CaseStatus::Open
            },
            target: target_system.map(Into::into),
            reason: reason.map(Into::into),
            min_age_ms,
            max_age_ms,
        };
        let now_ms = platform.now_ms();
        let scans = filter.may_skip_rows();
        let page = list_page(
            platform,
            principal,
            first,
            scans,
            move |read, tenant, size| read.fallout(tenant, &filter, after.as_deref(), size, now_ms),
        )
        .await?;
        Ok(Connection::from_page(page, FalloutCaseNode::from_view)?)
    }

    /// Every event of one correlation id, of one client command, or of one
    /// stream, in order, with hashes and cause links. Give exactly one of
    /// `correlationId`, `commandId` (the `commandId` your client sent with
    /// a mutation: its events and every reaction they caused) and
    /// `streamId`.
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        correlation_id: Option<String>,
        command_id: Option<String>,
        stream_id: Option<String>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<AuditEntryNode>> {
        let (_, principal) = caller(ctx, Role::Viewer, "read")?;
        let page = match (correlation_id, command_id, stream_id) {
            (Some(correlation), None, None) => {
                AuditEntryNode::of_correlation(ctx, &correlation, first, after)
            }
            (None, Some(command), None) => {
                input::id("commandId", &command)?;
                let correlation = crate::platform::correlation_id(&principal.tenant, &command);
                AuditEntryNode::of_correlation(ctx, &correlation, first, after)
            }
            (None, None, Some(stream)) => {
                input::id("streamId", &stream)?;
                AuditEntryNode::of_stream(ctx, &stream, first, after)
            }
            _ => Err(ApiError::validation(
                "correlationId",
                "give exactly one of correlationId, commandId and streamId",
            )),
        };
        Ok(page?)
    }

    /// Counts by target system and outcome, pending and unknown counts,
    /// oldest pending age, fallout opened and resolved per hour.
    async fn dashboard(&self, ctx: &Context<'_>) -> async_graphql::Result<Dashboard> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        let view = platform
            .read
            .dashboard(&principal.tenant, platform.now_ms())
            .map_err(ApiError::from)?;
        Ok(view.into())
    }

    /// Every projector's checkpoint, lag, rate and failure.
    async fn projectors(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ProjectorStatusNode>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        Ok(platform
            .projections
            .status()
            .into_iter()
            .map(|status| ProjectorStatusNode {
                name: status.name,
                checkpoint: status.checkpoint,
                head: status.head,
                lag: status.lag,
                events_per_s: status.events_per_s,
                failure: status
                    .failure
                    .map(|f| stopped_at(principal, f.position, &f.message)),
                rebuild: status.rebuild.map(|r| RebuildProgressNode {
                    done: r.done,
                    total: r.total,
                }),
            })
            .collect())
    }

    /// The fulfillment consumers (process, dispatcher, handoff index) and
    /// the JetStream relay: checkpoint, lag, failure, recovery state.
    async fn consumers(&self, ctx: &Context<'_>) -> async_graphql::Result<Consumers> {
        let (platform, principal) = caller(ctx, Role::Operator, "read consumer status")?;
        let report = platform.fulfillment.consumers();
        let (fulfillment, parked_callbacks, running) = match report.fulfillment {
            Some(status) => (
                status
                    .consumers
                    .into_iter()
                    .map(|c| ConsumerStatus::seen_by(c, principal))
                    .collect(),
                // The whole server's count only to a caller of every
                // tenant (ADR 0045); anyone else counts their tenant's.
                if principal.every_tenant {
                    status.parked_callbacks as u64
                } else {
                    status
                        .parked_by_tenant
                        .get(principal.tenant.as_str())
                        .map_or(0, |n| *n as u64)
                },
                status.running,
            ),
            None => (Vec::new(), 0, false),
        };
        Ok(Consumers {
            fulfillment,
            parked_callbacks,
            running,
            relay: report.relay.map(|r| RelayStatus::seen_by(r, principal)),
        })
    }

    /// A quote, order or handoff by global id (`Quote:q-1`, `Order:o-1`,
    /// `Handoff:h-1`).
    async fn node(
        &self,
        ctx: &Context<'_>,
        id: async_graphql::ID,
    ) -> async_graphql::Result<Option<Node>> {
        let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
        let Some((kind, key)) = id.split_once(':') else {
            return Err(ApiError::validation("id", "expected Kind:id").into());
        };
        input::id("id", key)?;
        let tenant = &principal.tenant;
        let node = match kind {
            "Quote" => platform
                .read
                .quote(tenant, &QuoteId::new(key))
                .map_err(ApiError::from)?
                .map(QuoteNode::from_detail)
                .transpose()?
                .map(Node::Quote),
            "Order" => platform
                .read
                .order(tenant, &OrderId::new(key), platform.now_ms())
                .map_err(ApiError::from)?
                .map(OrderNode::from_detail)
                .transpose()?
                .map(Node::Order),
            "Handoff" => platform
                .read
                .handoff(tenant, &HandoffId::new(key), platform.now_ms())
                .map_err(ApiError::from)?
                .map(HandoffNode::from_view)
                .transpose()?
                .map(Node::Handoff),
            _ => {
                return Err(
                    ApiError::validation("id", "kind must be Quote, Order or Handoff").into(),
                )
            }
        };
        Ok(node)
    }

    /// Admin: raw events of one stream (from a version) or of the whole
    /// log (from a position), this tenant's only. Over the whole log of a
    /// server of several tenants, the others' events are read and passed
    /// over: such a read weighs [`crate::graphql::SCAN_WEIGHT`] more, and
    /// stops when the request times out.
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity \
                            + crate::graphql::scan_weight(stream_id.is_none())")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        stream_id: Option<String>,
        from: Option<i64>,
        first: Option<i64>,
    ) -> async_graphql::Result<Vec<EventNode>> {
        let (platform, principal) = caller(ctx, Role::Admin, "read raw events")?;
        let from = input::optional_count("from", from)?;
        let limit = page_size(first)?;
        input::optional_id("streamId", stream_id.as_deref())?;
        let (log, tenant) = (platform.log.clone(), principal.tenant.to_string());
        let read = off_worker(
            &platform.read_slots,
            &principal.tenant,
            move |abandoned| -> Result<Vec<EventNode>, ApiError> {
                let mut out = Vec::new();
                match stream_id {
                    Some(stream) => {
                        for event in log.iter_stream(&stream, from.unwrap_or(1).max(1)) {
                            let event = event.map_err(ApiError::from_log_read)?;
                            if event.tenant_id != tenant {
                                break;
                            }
                            out.push(EventNode::from(&event));
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                    None => {
                        for (read, event) in log.iter_all(from.unwrap_or(0)).enumerate() {
                            if read % 4096 == 0 && abandoned.is_set() {
                                break;
                            }
                            let event = event.map_err(ApiError::from_log_read)?;
                            if event.tenant_id == tenant {
                                out.push(EventNode::from(&event));
                                if out.len() >= limit {
                                    break;
                                }
                            }
                        }
                    }
                }
                Ok(out)
            },
        );
        Ok(read.await??)
    }
}
