//! The GraphQL schema: queries over the read models, command mutations,
//! live subscriptions, and the hardening every request passes through.

pub mod documents;
pub mod empty_objects;
pub mod enum_literals;
pub mod enum_values;
pub mod error;
pub mod field_errors;
pub mod input;
pub mod limits;
pub mod links;
pub mod mutation;
pub mod query;
pub mod subscription;
pub mod types;
pub mod variables;

use std::sync::Arc;

use async_graphql::{Context, Schema};
use domain::ids::{
    catalog_stream, handoff_stream, order_stream, quote_stream, HandoffId, OrderId, QuoteId,
    TenantId,
};

use crate::auth::{Principal, Role};
use crate::config::GraphqlLimits;
use crate::platform::Platform;
use error::{ApiError, ApiResult};

/// The schema type.
pub type OmsSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Largest page a query returns.
pub const MAX_PAGE: usize = 200;

/// Builds the schema with the complexity limit and field suggestions off.
/// The platform is attached per server; the principal per request. Depth,
/// introspection and mutation-count limits are [`limited`]'s.
pub fn build(platform: Option<Arc<Platform>>, limits: &GraphqlLimits) -> OmsSchema {
    let mut builder = Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(32)
        .disable_suggestions();
    if let Some(platform) = platform {
        builder = builder.data(platform);
    }
    builder.finish()
}

/// The schema as served: [`build`] behind the per-operation limits of
/// [`limits`] (depth, introspection, mutations per operation).
pub fn limited(platform: Option<Arc<Platform>>, limits: &GraphqlLimits) -> limits::LimitedSchema {
    limits::LimitedSchema::new(
        build(platform, limits),
        limits::OperationLimits::for_complexity(
            limits.max_depth,
            limits.max_mutations,
            limits.max_complexity,
        ),
    )
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build(None, &GraphqlLimits::default()).sdl()
}

/// The platform and the caller, if the caller's role allows `needed`.
///
/// # Errors
/// `UNAUTHENTICATED` without a principal, `FORBIDDEN` for a weaker role.
pub fn caller<'a>(
    ctx: &'a Context<'_>,
    needed: Role,
    action: &'static str,
) -> ApiResult<(&'a Platform, &'a Principal)> {
    let principal = ctx
        .data_opt::<Principal>()
        .ok_or(ApiError::Unauthenticated)?;
    if !principal.role.allows(needed) {
        return Err(ApiError::Forbidden {
            role: principal.role.as_str(),
            action,
        });
    }
    let platform = ctx
        .data_opt::<Arc<Platform>>()
        .ok_or_else(|| ApiError::internal("schema built without a platform"))?;
    Ok((platform.as_ref(), principal))
}

/// The platform and the caller, if the caller may run `action`, an
/// operation that touches every tenant of the server (the whole log, every
/// tenant's projections, a consumer of every tenant's events): a
/// `platform` credential, or an `admin` of the server's only tenant
/// ([`Principal::every_tenant`]).
///
/// # Errors
/// `UNAUTHENTICATED` without a principal; `FORBIDDEN` for a role below
/// admin, and for an admin of one of several tenants.
pub fn every_tenant_caller<'a>(
    ctx: &'a Context<'_>,
    action: &'static str,
) -> ApiResult<(&'a Platform, &'a Principal)> {
    let (platform, principal) = caller(ctx, Role::Admin, action)?;
    if !principal.every_tenant {
        return Err(ApiError::Forbidden {
            role: principal.role.as_str(),
            action,
        });
    }
    Ok((platform, principal))
}

/// What a caller reads of why a projector or consumer stopped at
/// `position`: `position N: <cause>` for a caller of every tenant
/// ([`Principal::every_tenant`]); for any other, only where. These run over
/// every tenant's events, so the cause may quote another tenant's data
/// (ADR 0045).
pub fn stopped_at(principal: &Principal, position: u64, cause: &str) -> String {
    if principal.every_tenant {
        format!("position {position}: {cause}")
    } else {
        format!("position {position}: {CAUSE_WITHHELD}")
    }
}

/// The last error a consumer or the relay retried after, as a caller reads
/// it: the error for a caller of every tenant, a note that there was one
/// for any other (see [`stopped_at`]).
pub fn retried_after(principal: &Principal, error: Option<String>) -> Option<String> {
    error.map(|e| {
        if principal.every_tenant {
            e
        } else {
            format!("a failure; {CAUSE_WITHHELD}")
        }
    })
}

/// What a tenant's caller reads in place of a cause that may quote another
/// tenant's data.
const CAUSE_WITHHELD: &str =
    "the cause is shown to platform callers only (it may quote another tenant's events)";

/// The weight of a paginated list in the complexity limit: the page
/// `first` asks for (default 50), within 1..=[`MAX_PAGE`] (a size out of
/// range is refused by [`page_size`] when the field runs), so a list of
/// 200 weighs 200 times its selection.
pub fn page_weight(first: Option<i64>) -> usize {
    let max = i64::try_from(MAX_PAGE).unwrap_or(i64::MAX);
    usize::try_from(first.map_or(50, |n| n.clamp(1, max))).unwrap_or(MAX_PAGE)
}

/// What a list weighs on top of its page in the complexity limit when its
/// filter may skip rows: it may examine up to
/// [`projections::MAX_EXAMINED`] rows (or, for `events` of the whole log,
/// read until its page is full), so the default limit of 10,000 admits at
/// most ten such reads per request, however they are aliased.
pub const SCAN_WEIGHT: usize = 1_000;

/// [`SCAN_WEIGHT`] where a list's filter may skip rows, else nothing.
pub fn scan_weight(skips: bool) -> usize {
    if skips {
        SCAN_WEIGHT
    } else {
        0
    }
}

/// Set when the request a read runs for is gone (answered `TIMEOUT`, or
/// its connection closed): a read that walks many rows checks it and
/// stops, rather than run on for nobody.
#[derive(Clone, Default)]
pub struct Abandoned(Arc<std::sync::atomic::AtomicBool>);

impl Abandoned {
    /// Whether the request is gone.
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Sets [`Abandoned`] when the future awaiting the read is dropped.
struct AbandonOnDrop(Abandoned);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0 .0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Long reads each tenant may run at once on the blocking pool.
pub const READS_PER_TENANT: usize = 2;

/// Each tenant's slots for long reads: a tenant's flood of list or
/// `events` reads queues for its own slots (as async waits, which the
/// request timeout ends) instead of starting a thread per read, which
/// crowded the async workers off the two cores and stalled every other
/// tenant for a minute (a probe).
#[derive(Default)]
pub struct ReadSlots {
    tenants: std::sync::Mutex<std::collections::HashMap<TenantId, Arc<tokio::sync::Semaphore>>>,
}

impl ReadSlots {
    /// Waits for one of `tenant`'s slots.
    ///
    /// # Errors
    /// `INTERNAL` if the tenant's slots were closed (they never are).
    async fn take(&self, tenant: &TenantId) -> ApiResult<tokio::sync::OwnedSemaphorePermit> {
        let slots = {
            let mut tenants = self
                .tenants
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tenants
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(READS_PER_TENANT)))
                .clone()
        };
        slots.acquire_owned().await.map_err(ApiError::internal)
    }
}

/// Runs a read of the read models or the log on tokio's blocking pool, in
/// one of the caller's tenant's [`ReadSlots`]: a read that walks many rows
/// holds no async worker, so other requests (other tenants' too) go on
/// meanwhile and the request's deadline can answer `TIMEOUT` while it runs
/// or waits for a slot; the slot is held until the read ends, even when
/// nobody waits for it any more, and `read` is told through [`Abandoned`]
/// so it can stop early.
///
/// # Errors
/// `INTERNAL` if the read panicked.
pub async fn off_worker<T: Send + 'static>(
    slots: &ReadSlots,
    tenant: &TenantId,
    read: impl FnOnce(&Abandoned) -> T + Send + 'static,
) -> ApiResult<T> {
    let slot = slots.take(tenant).await?;
    let abandoned = Abandoned::default();
    let guard = AbandonOnDrop(abandoned.clone());
    let ran = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        read(&abandoned)
    })
    .await;
    drop(guard);
    ran.map_err(|e| ApiError::internal(format!("a read stopped: {e}")))
}

/// The page size for `first` (default 50, at most [`MAX_PAGE`]).
///
/// # Errors
/// `VALIDATION` for zero, negative or too large.
pub fn page_size(first: Option<i64>) -> ApiResult<usize> {
    match first {
        None => Ok(50),
        Some(n) => input::whole("first", n, 1, i64::try_from(MAX_PAGE).unwrap_or(i64::MAX)),
    }
}

/// The stream a command is for. An existing aggregate's target is checked
/// to belong to the caller's tenant by [`Platform::execute`], after the
/// idempotency check.
pub struct CommandTarget {
    /// The aggregate id returned to the client.
    pub id: String,
    /// The stream.
    pub stream_id: String,
    /// `Some(kind)` when the stream must exist and be the caller's tenant's
    /// (`NOT_FOUND` naming `kind` otherwise); `None` for a new aggregate.
    pub existing: Option<&'static str>,
}

impl CommandTarget {
    /// A quote about to be created.
    pub fn new_quote(id: QuoteId) -> Self {
        Self {
            stream_id: quote_stream(&id),
            id: id.to_string(),
            existing: None,
        }
    }

    /// An existing quote of the caller's tenant.
    pub fn existing_quote(id: QuoteId) -> Self {
        Self {
            existing: Some("quote"),
            ..Self::new_quote(id)
        }
    }

    /// An existing order of the caller's tenant.
    pub fn existing_order(id: OrderId) -> Self {
        Self {
            stream_id: order_stream(&id),
            id: id.to_string(),
            existing: Some("order"),
        }
    }

    /// An existing handoff of the caller's tenant.
    pub fn existing_handoff(id: HandoffId) -> Self {
        Self {
            stream_id: handoff_stream(&id),
            id: id.to_string(),
            existing: Some("handoff"),
        }
    }

    /// The caller's tenant's catalog (its stream is named by the tenant,
    /// so it is always the caller's own).
    pub fn catalog(tenant: &TenantId) -> Self {
        Self {
            stream_id: catalog_stream(tenant),
            id: tenant.to_string(),
            existing: None,
        }
    }

    /// Checks that an existing target's stream exists and belongs to
    /// `principal`'s tenant.
    ///
    /// # Errors
    /// `NOT_FOUND` when it does not exist or belongs to another tenant
    /// (both answer alike).
    pub fn check_owner(&self, platform: &Platform, principal: &Principal) -> ApiResult<()> {
        let Some(kind) = self.existing else {
            return Ok(());
        };
        match platform.stream_tenant(&self.stream_id)? {
            Some(tenant) if tenant == principal.tenant.as_str() => Ok(()),
            // Another tenant's id answers exactly like a missing one.
            _ => Err(ApiError::NotFound(format!("{kind} `{}`", self.id))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tenant's reads beyond its two slots wait (as async waits) and
    /// another tenant's read runs meanwhile: a probe's flood of reads
    /// started a thread each and stalled every tenant for a minute.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_runs_at_most_two_long_reads_and_another_tenant_is_not_held() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let slots = Arc::new(ReadSlots::default());
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (release, held) = tokio::sync::watch::channel(false);
        let flood: Vec<_> = (0..6)
            .map(|_| {
                let (slots, running, most) = (slots.clone(), running.clone(), most.clone());
                let mut held = held.clone();
                let handle = tokio::runtime::Handle::current();
                tokio::spawn(async move {
                    off_worker(&slots, &TenantId::new("a"), move |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        handle.block_on(async {
                            while !*held.borrow_and_update() {
                                if held.changed().await.is_err() {
                                    break;
                                }
                            }
                        });
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        // Tenant a's two slots are taken and held; tenant b reads.
        while running.load(Ordering::SeqCst) < READS_PER_TENANT {
            tokio::task::yield_now().await;
        }
        let other = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            off_worker(&slots, &TenantId::new("b"), |_| 7),
        )
        .await;
        assert!(matches!(other, Ok(Ok(7))), "tenant b was held: {other:?}");
        assert_eq!(running.load(Ordering::SeqCst), READS_PER_TENANT);
        release.send(true).expect("readers wait");
        for read in flood {
            assert!(matches!(read.await, Ok(Ok(()))));
        }
        assert_eq!(most.load(Ordering::SeqCst), READS_PER_TENANT);
    }

    fn principal(role: Role, every_tenant: bool) -> Principal {
        Principal {
            tenant: TenantId::new("acme"),
            role,
            name: "acme-x".to_owned(),
            every_tenant,
        }
    }

    #[test]
    fn only_a_caller_of_every_tenant_reads_why_a_consumer_stopped_or_retried() {
        let cause = "handoff h-globex-secret is missing";
        let platform = principal(Role::Platform, true);
        assert_eq!(
            stopped_at(&platform, 7, cause),
            format!("position 7: {cause}")
        );
        assert_eq!(
            retried_after(&platform, Some(cause.to_owned())).as_deref(),
            Some(cause)
        );
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            let tenant_caller = principal(role, false);
            let stopped = stopped_at(&tenant_caller, 7, cause);
            assert!(stopped.starts_with("position 7: "), "{stopped}");
            assert!(!stopped.contains("globex"), "{stopped}");
            let retried = retried_after(&tenant_caller, Some(cause.to_owned()));
            let retried = retried.unwrap_or_default();
            assert!(retried.starts_with("a failure"), "{retried}");
            assert!(!retried.contains("globex"), "{retried}");
            assert_eq!(retried_after(&tenant_caller, None), None);
        }
    }
}
