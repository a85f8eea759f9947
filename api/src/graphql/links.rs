//! Links between nodes (quote → order → handoffs → fallout case), resolved
//! in batches: every link a query's level asks for is collected by one
//! per-request [`DataLoader`] and read with one batched read-model query
//! per kind (`ReadModels::*_by_ids`), so a page of 50 orders with their
//! lines, steps and handoffs costs a handful of read-model reads, not one
//! per object.
//!
//! The loader is per request (it is bound to the caller's tenant) and keeps
//! no cache: a subscription that resolves links on every event reads them
//! fresh each time.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::Context;
use domain::ids::{HandoffId, OrderId, QuoteId, TenantId};
use projections::{FalloutCaseView, HandoffView, OrderDetail, QuoteDetail};

use super::error::{ApiError, ApiResult};
use crate::platform::Platform;

/// The per-request batch reader of linked objects, for one tenant.
pub struct LinkReader {
    platform: Arc<Platform>,
    tenant: TenantId,
}

/// The request data that resolves links: one per request (or WebSocket
/// connection), bound to the caller's tenant.
pub type Links = Arc<DataLoader<LinkReader>>;

/// The links of `tenant`'s objects, for one request.
pub fn for_request(platform: Arc<Platform>, tenant: TenantId) -> Links {
    Arc::new(DataLoader::new(
        LinkReader { platform, tenant },
        tokio::spawn,
    ))
}

/// The key of a fallout case: the handoff that fell out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CaseOf(pub HandoffId);

/// A loader failure: storage or decoding, shared by every waiting field.
type LoadError = Arc<str>;

fn load_error(error: projections::QueryError) -> LoadError {
    Arc::from(error.to_string())
}

impl Loader<QuoteId> for LinkReader {
    type Value = Arc<QuoteDetail>;
    type Error = LoadError;

    async fn load(&self, ids: &[QuoteId]) -> Result<HashMap<QuoteId, Self::Value>, Self::Error> {
        let views = self
            .platform
            .read
            .quotes_by_ids(&self.tenant, ids)
            .map_err(load_error)?;
        Ok(views
            .into_iter()
            .map(|view| (view.quote_id.clone(), Arc::new(view)))
            .collect())
    }
}

impl Loader<OrderId> for LinkReader {
    type Value = Arc<OrderDetail>;
    type Error = LoadError;

    async fn load(&self, ids: &[OrderId]) -> Result<HashMap<OrderId, Self::Value>, Self::Error> {
        let views = self
            .platform
            .read
            .orders_by_ids(&self.tenant, ids, self.platform.now_ms())
            .map_err(load_error)?;
        Ok(views
            .into_iter()
            .map(|view| (view.order.order_id.clone(), Arc::new(view)))
            .collect())
    }
}

impl Loader<HandoffId> for LinkReader {
    type Value = Arc<HandoffView>;
    type Error = LoadError;

    async fn load(
        &self,
        ids: &[HandoffId],
    ) -> Result<HashMap<HandoffId, Self::Value>, Self::Error> {
        let views = self
            .platform
            .read
            .handoffs_by_ids(&self.tenant, ids, self.platform.now_ms())
            .map_err(load_error)?;
        Ok(views
            .into_iter()
            .map(|view| (view.handoff.handoff_id.clone(), Arc::new(view)))
            .collect())
    }
}

impl Loader<CaseOf> for LinkReader {
    type Value = Arc<FalloutCaseView>;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseOf]) -> Result<HashMap<CaseOf, Self::Value>, Self::Error> {
        let ids: Vec<HandoffId> = keys.iter().map(|key| key.0.clone()).collect();
        let views = self
            .platform
            .read
            .fallout_cases_by_ids(&self.tenant, &ids, self.platform.now_ms())
            .map_err(load_error)?;
        Ok(views
            .into_iter()
            .map(|view| (CaseOf(view.case.handoff_id.clone()), Arc::new(view)))
            .collect())
    }
}

/// The linked object `key` of the caller's tenant, batched with every other
/// link of its kind the query asks for at the same time; `None` when the
/// tenant has no such object.
///
/// # Errors
/// `INTERNAL` when the request carries no links (a schema executed without
/// [`for_request`]) or the read models cannot be read.
async fn load<K, V>(ctx: &Context<'_>, key: K) -> ApiResult<Option<V>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    V: Send + Sync + Clone + 'static,
    LinkReader: Loader<K, Value = V, Error = LoadError>,
{
    let links = ctx
        .data_opt::<Links>()
        .ok_or_else(|| ApiError::internal("request executed without links"))?;
    links.load_one(key).await.map_err(ApiError::internal)
}

/// The quote `id` of the caller's tenant (batched; see [`load`]).
///
/// # Errors
/// As [`load`].
pub async fn quote(ctx: &Context<'_>, id: QuoteId) -> ApiResult<Option<Arc<QuoteDetail>>> {
    load(ctx, id).await
}

/// The order `id` of the caller's tenant, its handoffs joined (batched).
///
/// # Errors
/// As [`load`].
pub async fn order(ctx: &Context<'_>, id: OrderId) -> ApiResult<Option<Arc<OrderDetail>>> {
    load(ctx, id).await
}

/// The handoff `id` of the caller's tenant (batched).
///
/// # Errors
/// As [`load`].
pub async fn handoff(ctx: &Context<'_>, id: HandoffId) -> ApiResult<Option<Arc<HandoffView>>> {
    load(ctx, id).await
}

/// The fallout case opened by the handoff `id`, open or resolved (batched).
///
/// # Errors
/// As [`load`].
pub async fn fallout_case(
    ctx: &Context<'_>,
    id: HandoffId,
) -> ApiResult<Option<Arc<FalloutCaseView>>> {
    load(ctx, CaseOf(id)).await
}
