//! What a command mutation answers: the command's result, its correlation
//! id, and the changed objects as the read models show them once they
//! include the command (read your writes).

use std::time::Duration;

use async_graphql::{ComplexObject, Context, SimpleObject};
use domain::ids::{OrderId, QuoteId, StreamKind};

use super::audit::AuditEntryNode;
use super::order::OrderNode;
use super::quote::QuoteNode;
use super::Connection;
use crate::auth::Role;
use crate::graphql::caller;
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::links;

/// How often `order` looks again for an order a quote's acceptance is
/// capturing, or for an order's end.
const ORDER_POLL: Duration = Duration::from_millis(5);

/// What a command did, and the object it changed.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
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
    /// The correlation id every event of the command carries, and every
    /// event the platform appended in reaction to it (order capture,
    /// handoffs, outcomes). `auditTrail(commandId:)` finds them by the
    /// client's own `commandId`.
    pub correlation_id: String,
}

impl From<crate::platform::CommandReceipt> for CommandResult {
    fn from(receipt: crate::platform::CommandReceipt) -> Self {
        Self {
            id: receipt.id,
            stream_id: receipt.stream_id,
            version: receipt.version,
            positions: receipt.positions,
            deduplicated: receipt.deduplicated,
            correlation_id: receipt.correlation_id,
        }
    }
}

impl CommandResult {
    fn kind(&self) -> Option<StreamKind> {
        StreamKind::split(&self.stream_id)
            .ok()
            .map(|(kind, _)| kind)
    }
}

/// The changed objects. The server waits briefly after a command until the
/// read models include it (`readYourWritesMs`), so these show the command's
/// effect; a retried command (`deduplicated: true`) waits the same way for
/// its first outcome's events, then shows the objects as they are now.
#[ComplexObject]
impl CommandResult {
    /// The quote, for a quote command; null otherwise.
    async fn quote(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<QuoteNode>> {
        if self.kind() != Some(StreamKind::Quote) {
            return Ok(None);
        }
        Ok(QuoteNode::linked(ctx, QuoteId::new(self.id.clone())).await?)
    }

    /// The order: the order commanded, for an order command; for a quote
    /// command, the order the quote's acceptance captured (`acceptQuote`
    /// waits up to `readYourWritesMs` for the capture). A command that
    /// settled the order's last line waits as long for the order's end
    /// (completed, or cancelled when every line was), which the
    /// fulfillment process records right after. Null otherwise.
    async fn order(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<OrderNode>> {
        let order_id = match self.kind() {
            Some(StreamKind::Order) => {
                let order_id = OrderId::new(self.id.clone());
                wait_for_order(ctx, &order_id, |order| {
                    order.is_none_or(|o| !o.order.awaits_its_end())
                })
                .await?;
                order_id
            }
            Some(StreamKind::Quote) => {
                let quote = links::quote(ctx, QuoteId::new(self.id.clone())).await?;
                let Some(acceptance) = quote.as_ref().and_then(|q| q.acceptance.as_ref()) else {
                    return Ok(None);
                };
                let order_id = acceptance.order_id.clone();
                wait_for_order(ctx, &order_id, |order| order.is_some()).await?;
                order_id
            }
            _ => return Ok(None),
        };
        Ok(OrderNode::linked(ctx, order_id).await?)
    }

    /// The events of this command and of every reaction to it, in log
    /// order.
    #[graphql(complexity = "crate::graphql::page_weight(first) * child_complexity")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<AuditEntryNode>> {
        Ok(AuditEntryNode::of_correlation(
            ctx,
            &self.correlation_id,
            first,
            after,
        )?)
    }
}

/// Waits up to the server's read-your-writes bound until the orders read
/// model's view of `order_id` satisfies `settled`: an order a quote's
/// acceptance is capturing, or an order's end, which the process manager
/// records right after the acceptance or the last line's settlement. Never
/// an error when that does not happen in time: the order shows as it is.
async fn wait_for_order(
    ctx: &Context<'_>,
    order_id: &OrderId,
    settled: impl Fn(Option<&projections::OrderDetail>) -> bool,
) -> ApiResult<()> {
    let (platform, principal) = caller(ctx, Role::Viewer, "read")?;
    let deadline = tokio::time::Instant::now() + platform.read_your_writes;
    loop {
        let order = platform
            .read
            .order(&principal.tenant, order_id, platform.now_ms())
            .map_err(ApiError::from)?;
        if settled(order.as_ref()) || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(ORDER_POLL).await;
    }
}
