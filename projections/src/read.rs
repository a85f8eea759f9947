//! The read query API: a cheap, cloneable handle over the current generation
//! of every read model.
//!
//! Every query takes the tenant first; keys are tenant-prefixed and every row
//! read back is checked against the tenant, so a query of tenant A never
//! returns anything of tenant B. Ages are computed from the caller's
//! `now_ms`. Queries read the generation that is current when they start; a
//! rebuild's swap is atomic for each query.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use domain::ids::{HandoffId, OrderId, QuoteId, TenantId};
use eventlog::EventLog;

use crate::error::{ProjectionError, QueryError};
use crate::models::audit::{self, AuditEntry};
use crate::models::dashboard::{self, Dashboard};
use crate::models::fallout::{self, FalloutCaseView, FalloutFilter};
use crate::models::handoffs::{self, HandoffFilter, HandoffView, SlaPolicy};
use crate::models::orders::{self, OrderDetail, OrderFilter, OrderSummary};
use crate::models::quotes::{self, QuoteDetail, QuoteFilter, QuoteSummary};
use crate::page::Page;
use crate::projector::PROJECTOR_NAMES;
use crate::store::{self, Meta, TreeDigest};

/// The tree queries of one projector read, swapped atomically by a rebuild.
#[derive(Debug)]
pub(crate) struct Handle {
    pub(crate) name: &'static str,
    tree: RwLock<sled::Tree>,
    generation: AtomicU64,
}

impl Handle {
    pub(crate) fn new(name: &'static str, generation: u64, tree: sled::Tree) -> Self {
        Self {
            name,
            tree: RwLock::new(tree),
            generation: AtomicU64::new(generation),
        }
    }

    /// The current tree.
    pub(crate) fn tree(&self) -> sled::Tree {
        match self.tree.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Makes `tree` the one queries read; returns the old one.
    pub(crate) fn swap(&self, generation: u64, tree: sled::Tree) -> sled::Tree {
        let mut guard = match self.tree.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.generation.store(generation, Ordering::Release);
        std::mem::replace(&mut *guard, tree)
    }
}

pub(crate) struct ReadInner {
    pub(crate) log: EventLog,
    pub(crate) handles: Vec<Arc<Handle>>,
    pub(crate) sla: SlaPolicy,
    /// Queries served (see [`ReadModels::reads`]).
    pub(crate) reads: AtomicU64,
    /// The audit trail's cause links, shared by its queries.
    pub(crate) links: audit::LinkCache,
}

/// The views `read` finds for `ids`, in order; ids without one are left out.
fn each<I, V>(
    ids: &[I],
    mut read: impl FnMut(&I) -> Result<Option<V>, QueryError>,
) -> Result<Vec<V>, QueryError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(read(id)?);
    }
    Ok(out)
}

/// The read query API over every read model. Cheap to clone; every clone
/// reads the same trees.
#[derive(Clone)]
pub struct ReadModels {
    pub(crate) inner: Arc<ReadInner>,
}

impl std::fmt::Debug for ReadModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModels")
            .field("path", &self.inner.log.path())
            .finish()
    }
}

impl ReadModels {
    /// Opens the current generation of every read model of `log` (creating
    /// empty ones), without running any projector.
    ///
    /// # Errors
    /// Storage errors, or a damaged generation pointer.
    pub fn open(log: &EventLog, sla: SlaPolicy) -> Result<Self, ProjectionError> {
        let meta = Meta::open(&log.projection_db()?)?;
        let mut handles = Vec::new();
        for name in PROJECTOR_NAMES {
            let (generation, tree) = meta
                .open_current(
                    name,
                    crate::projector::layout_version(name),
                    log.next_position(),
                )
                .map_err(|e| ProjectionError::Corrupt {
                    projector: name.to_owned(),
                    message: e.0,
                })?;
            handles.push(Arc::new(Handle::new(name, generation, tree)));
        }
        Ok(Self {
            inner: Arc::new(ReadInner {
                log: log.clone(),
                handles,
                sla,
                reads: AtomicU64::new(0),
                links: audit::LinkCache::default(),
            }),
        })
    }

    pub(crate) fn handle(&self, name: &str) -> Option<&Arc<Handle>> {
        self.inner.handles.iter().find(|h| h.name == name)
    }

    /// How many read-model reads this handle (and its clones) has served:
    /// one per query method called, whether it answers a page, one object,
    /// a batch of objects by id, or the dashboard. A caller that resolves
    /// links object by object pays one read per object; one that batches
    /// them (`*_by_ids`) pays one per batch. Benchmarks and tests count
    /// them; nothing else depends on the figure.
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(Ordering::Relaxed)
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, QueryError> {
        self.inner.reads.fetch_add(1, Ordering::Relaxed);
        self.tree_uncounted(name)
    }

    fn tree_uncounted(&self, name: &str) -> Result<sled::Tree, QueryError> {
        self.handle(name)
            .map(|h| h.tree())
            .ok_or_else(|| QueryError::Corrupt {
                projector: "read models",
                message: format!("no projector {name}"),
            })
    }

    /// The SLA policy handoff ages are judged against.
    pub fn sla(&self) -> &SlaPolicy {
        &self.inner.sla
    }

    /// Quotes of `tenant`, newest first (by creation), filtered.
    ///
    /// # Errors
    /// [`QueryError::InvalidCursor`] for a cursor this query did not make;
    /// storage and decoding errors.
    pub fn quotes(
        &self,
        tenant: &TenantId,
        filter: &QuoteFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<QuoteSummary>, QueryError> {
        quotes::quotes(&self.tree("quotes")?, tenant, filter, cursor, limit)
    }

    /// One quote with revision, lines, price, approval, proposal, signature
    /// and acceptance evidence; `None` if `tenant` has no such quote.
    ///
    /// # Errors
    /// Storage and decoding errors.
    pub fn quote(
        &self,
        tenant: &TenantId,
        id: &QuoteId,
    ) -> Result<Option<QuoteDetail>, QueryError> {
        quotes::quote(&self.tree("quotes")?, tenant, id)
    }

    /// Orders of `tenant`, newest first (by capture), filtered.
    ///
    /// # Errors
    /// As [`ReadModels::quotes`].
    pub fn orders(
        &self,
        tenant: &TenantId,
        filter: &OrderFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<OrderSummary>, QueryError> {
        orders::orders(&self.tree("orders")?, tenant, filter, cursor, limit)
    }

    /// One order with every line's current step and history and every
    /// handoff it opened (live stage, age at `now_ms`).
    ///
    /// # Errors
    /// Storage and decoding errors.
    pub fn order(
        &self,
        tenant: &TenantId,
        id: &OrderId,
        now_ms: i64,
    ) -> Result<Option<OrderDetail>, QueryError> {
        orders::order(
            &self.tree("orders")?,
            &self.tree_uncounted("handoffs")?,
            &self.inner.sla,
            tenant,
            id,
            now_ms,
        )
    }

    /// Handoffs of `tenant`: unknown first, then the other pending ones, then
    /// those waiting for a human, then closed ones, each oldest first (with
    /// a stage filter: that stage, oldest first).
    ///
    /// # Errors
    /// As [`ReadModels::quotes`].
    pub fn handoffs(
        &self,
        tenant: &TenantId,
        filter: &HandoffFilter,
        cursor: Option<&str>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page<HandoffView>, QueryError> {
        handoffs::handoffs(
            &self.tree("handoffs")?,
            &self.inner.sla,
            tenant,
            filter,
            cursor,
            limit,
            now_ms,
        )
    }

    /// One handoff with ages at `now_ms`.
    ///
    /// # Errors
    /// Storage and decoding errors.
    pub fn handoff(
        &self,
        tenant: &TenantId,
        id: &HandoffId,
        now_ms: i64,
    ) -> Result<Option<HandoffView>, QueryError> {
        handoffs::handoff(&self.tree("handoffs")?, &self.inner.sla, tenant, id, now_ms)
    }

    /// The fallout queue of `tenant` (open cases, oldest first), or its
    /// resolved cases (newest resolution first), filtered.
    ///
    /// # Errors
    /// As [`ReadModels::quotes`].
    pub fn fallout(
        &self,
        tenant: &TenantId,
        filter: &FalloutFilter,
        cursor: Option<&str>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page<FalloutCaseView>, QueryError> {
        fallout::fallout(
            &self.tree("fallout")?,
            tenant,
            filter,
            cursor,
            limit,
            now_ms,
        )
    }

    /// One fallout case (keyed by the handoff that fell out), open or
    /// resolved.
    ///
    /// # Errors
    /// Storage and decoding errors.
    pub fn fallout_case(
        &self,
        tenant: &TenantId,
        handoff_id: &HandoffId,
        now_ms: i64,
    ) -> Result<Option<FalloutCaseView>, QueryError> {
        fallout::fallout_case(&self.tree("fallout")?, tenant, handoff_id, now_ms)
    }

    /// Every event of `tenant` with this correlation id, in log order.
    ///
    /// # Errors
    /// As [`ReadModels::quotes`].
    pub fn audit_by_correlation(
        &self,
        tenant: &TenantId,
        correlation_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditEntry>, QueryError> {
        audit::by_correlation(
            &self.tree("audit")?,
            &self.inner.log,
            &self.inner.links,
            tenant,
            correlation_id,
            cursor,
            limit,
        )
    }

    /// Every event of `tenant` on this stream (`quote-<id>`, …), in order.
    /// Served from the log's own stream index (every record's tenant is
    /// checked), so it is never behind the log.
    ///
    /// # Errors
    /// As [`ReadModels::quotes`].
    pub fn audit_by_stream(
        &self,
        tenant: &TenantId,
        stream_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditEntry>, QueryError> {
        audit::by_stream(
            &self.tree("audit")?,
            &self.inner.log,
            &self.inner.links,
            tenant,
            stream_id,
            cursor,
            limit,
        )
    }

    /// The quotes of `tenant` among `ids` (detail views), in one read;
    /// ids that are not the tenant's quotes are absent from the answer.
    ///
    /// # Errors
    /// Storage and decoding errors.
    pub fn quotes_by_ids(
        &self,
        tenant: &TenantId,
        ids: &[QuoteId],
    ) -> Result<Vec<QuoteDetail>, QueryError> {
        let tree = self.tree("quotes")?;
        each(ids, |id| quotes::quote(&tree, tenant, id))
    }

    /// The orders of `tenant` among `ids` (detail views with their handoffs
    /// joined, ages at `now_ms`), in one read; ids that are not the
    /// tenant's orders are absent from the answer.
    ///
    /// # Errors
    /// Storage and decoding errors.
    pub fn orders_by_ids(
        &self,
        tenant: &TenantId,
        ids: &[OrderId],
        now_ms: i64,
    ) -> Result<Vec<OrderDetail>, QueryError> {
        let tree = self.tree("orders")?;
        let handoff_tree = self.tree_uncounted("handoffs")?;
        each(ids, |id| {
            orders::order(&tree, &handoff_tree, &self.inner.sla, tenant, id, now_ms)
        })
    }

    /// The handoffs of `tenant` among `ids` (ages at `now_ms`), in one read;
    /// ids that are not the tenant's handoffs are absent from the answer.
    ///
    /// # Errors
    /// Storage and decoding errors.
    pub fn handoffs_by_ids(
        &self,
        tenant: &TenantId,
        ids: &[HandoffId],
        now_ms: i64,
    ) -> Result<Vec<HandoffView>, QueryError> {
        let tree = self.tree("handoffs")?;
        each(ids, |id| {
            handoffs::handoff(&tree, &self.inner.sla, tenant, id, now_ms)
        })
    }

    /// The fallout cases (open or resolved) of `tenant` opened by the
    /// handoffs `handoff_ids`, in one read; handoffs without a case are
    /// absent from the answer.
    ///
    /// # Errors
    /// Storage and decoding errors.
    pub fn fallout_cases_by_ids(
        &self,
        tenant: &TenantId,
        handoff_ids: &[HandoffId],
        now_ms: i64,
    ) -> Result<Vec<FalloutCaseView>, QueryError> {
        let tree = self.tree("fallout")?;
        each(handoff_ids, |id| {
            fallout::fallout_case(&tree, tenant, id, now_ms)
        })
    }

    /// The operations dashboard of `tenant` at `now_ms`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn dashboard(&self, tenant: &TenantId, now_ms: i64) -> Result<Dashboard, QueryError> {
        dashboard::dashboard(
            &self.tree("handoffs")?,
            &self.tree_uncounted("fallout")?,
            tenant,
            now_ms,
        )
    }

    /// The failure recorded for `name` the last time it stopped (by a live
    /// runtime or an offline catch-up), if it is recorded as stopped.
    ///
    /// # Errors
    /// [`ProjectionError::UnknownProjector`]; storage errors.
    pub fn recorded_failure(
        &self,
        name: &str,
    ) -> Result<Option<crate::store::ProjectorFailure>, ProjectionError> {
        if self.handle(name).is_none() {
            return Err(ProjectionError::UnknownProjector(name.to_owned()));
        }
        Meta::open(&self.inner.log.projection_db()?)?
            .failure(name)
            .map_err(|e| ProjectionError::Corrupt {
                projector: name.to_owned(),
                message: e.0,
            })
    }

    /// The digest of one projector's current tree (see [`TreeDigest`]).
    ///
    /// # Errors
    /// [`ProjectionError::UnknownProjector`]; storage errors.
    pub fn digest(&self, name: &str) -> Result<TreeDigest, ProjectionError> {
        let handle = self
            .handle(name)
            .ok_or_else(|| ProjectionError::UnknownProjector(name.to_owned()))?;
        let tree = handle.tree();
        let (rows, sha256) = store::digest(&tree)?;
        Ok(TreeDigest {
            name: name.to_owned(),
            generation: handle.generation(),
            checkpoint: crate::projector::read_checkpoint(name, &tree)?,
            rows,
            sha256,
        })
    }

    /// The digests of every projector, in [`PROJECTOR_NAMES`] order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn digests(&self) -> Result<Vec<TreeDigest>, ProjectionError> {
        PROJECTOR_NAMES.iter().map(|n| self.digest(n)).collect()
    }
}
