//! The running platform as the API sees it: the log, the command path, the
//! read models, the external-system runtime and the server's counters.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use application::{CommandContext, CommandPath};
use domain::decider::{Decider, RuleViolation};
use domain::idempotency::CommandKey;
use domain::ids::{TenantId, Timestamp};
use eventlog::EventLog;
use projections::{Projections, ReadModels};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::input;
use crate::graphql::CommandTarget;
use crate::metrics::Metrics;

pub use integration::external::BoxFuture;

/// Every consumer of the log the runtime runs.
#[derive(Debug, Clone, Default)]
pub struct ConsumerReport {
    /// The fulfillment process's consumers (`None` while it is stopped).
    pub fulfillment: Option<integration::FulfillmentStatus>,
    /// The relay, when enabled.
    pub relay: Option<relay::RelayStatus>,
}

/// The external-system runtime's operator controls.
pub trait FulfillmentControl: Send + Sync {
    /// Runs reconciliation now over `tenant`'s open handoffs; the report
    /// of what it checked and changed (that tenant's handoffs only).
    fn reconcile<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> BoxFuture<'a, ApiResult<integration::ReconciliationReport>>;

    /// Every consumer of the fulfillment process and the relay, with
    /// state, checkpoint, lag and failure.
    fn consumers(&self) -> ConsumerReport;

    /// Scripts the next answers of one in-process simulator to `tenant`'s
    /// requests (embedded default only): `faults` are names such as
    /// `BusinessReject`. Another tenant's requests never take them.
    fn script_simulator<'a>(
        &'a self,
        tenant: &'a TenantId,
        system: &'a str,
        faults: &'a [String],
    ) -> BoxFuture<'a, ApiResult<()>>;

    /// Moves a side-effecting consumer's checkpoint (recovery mode), or
    /// `None` when the consumer is not one of the runtime's.
    fn reset_consumer<'a>(
        &'a self,
        name: &'a str,
        to: u64,
        recovery: bool,
    ) -> BoxFuture<'a, Option<ApiResult<ConsumerReset>>>;
}

/// What moving a consumer's checkpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerReset {
    /// The consumer.
    pub consumer: String,
    /// Its checkpoint before.
    pub previous_checkpoint: u64,
    /// Its checkpoint now.
    pub checkpoint: u64,
    /// The recovery bound (side-effecting consumers): no external call for
    /// events below it.
    pub recovery_until: Option<u64>,
    /// Whether it makes external calls.
    pub side_effects: bool,
}

/// The correlation id of a client's command: its tenant and its
/// `commandId`. Every event the command appends carries it, and so does
/// every event the platform appends in reaction (order capture, handoffs,
/// outcomes), so `auditTrail(commandId:)` finds the whole story.
pub fn correlation_id(tenant: &domain::ids::TenantId, command_id: &str) -> String {
    format!("{tenant}:{command_id}")
}

/// A client's command as received: what [`Platform::execute`] needs
/// before the command itself is built.
pub struct ClientCommand<'a> {
    /// The client's `commandId` (validated by `execute`).
    pub command_id: &'a str,
    /// The stream it is for.
    pub target: CommandTarget,
    /// The version the client saw, if it sent one.
    pub expected_version: Option<u64>,
    /// The client's arguments, hashed as the request: the same arguments
    /// always give the same JSON.
    pub request: serde_json::Value,
}

/// What a client's command did: the platform's answer, shown by the API
/// as its `CommandResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandReceipt {
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
    /// The correlation id of the command's events and of its reactions.
    pub correlation_id: String,
}

/// What [`Platform::admit`] decided.
enum Admission {
    /// A retry of an acknowledged command: its first outcome.
    Answered(CommandReceipt),
    /// A new command, checked, to build and run (boxed: its context is
    /// much larger than a receipt).
    Admitted(Box<Admitted>),
}

/// A command admitted to the command path.
struct Admitted {
    command_id: String,
    tenant: String,
    target: CommandTarget,
    context: CommandContext,
}

/// Everything a resolver needs.
pub struct Platform {
    /// The event log.
    pub log: EventLog,
    /// The one command path.
    pub commands: CommandPath,
    /// The projector runtime.
    pub projections: Arc<Projections>,
    /// The read-model query API.
    pub read: ReadModels,
    /// The server's counters.
    pub metrics: Arc<Metrics>,
    /// The price book in force, for `priceQuote` and `acceptQuote`.
    pub price_book: domain::quote::PriceBook,
    /// The approval policy in force, for `priceQuote`.
    pub approval: domain::quote::ApprovalPolicy,
    /// CRM lookups for `createQuote`.
    pub customers: Arc<dyn integration::CustomerDirectory>,
    /// Proposal rendering for `generateProposal`.
    pub documents: Arc<dyn integration::DocumentGenerator>,
    /// The systems table in force: each tenant's capability registry.
    pub systems: Arc<integration::SystemsConfig>,
    /// Reconciliation and consumer controls.
    pub fulfillment: Arc<dyn FulfillmentControl>,
    /// The recorded calls to external systems (handoff and fallout views).
    pub evidence: integration::evidence::EvidenceStore,
    /// How long a command waits for the read models to include it.
    pub read_your_writes: Duration,
    /// Each stream's owning tenant, remembered for the tenant check.
    pub owners: crate::stream_owners::StreamOwners,
    /// How many long reads each tenant may run at once.
    pub read_slots: crate::graphql::ReadSlots,
}

impl Platform {
    /// Wall-clock milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// The capabilities `tenant` may use now (the registry's enabled rows).
    pub fn capabilities(&self, tenant: &domain::ids::TenantId) -> domain::capability::Capabilities {
        self.systems.capabilities(tenant.as_str())
    }

    /// The tenant's catalog as its stream (`catalog-<tenant>`) folds now:
    /// the input of the quote's catalog rules.
    ///
    /// # Errors
    /// `INTERNAL` when the log fails or the stream does not decode.
    pub fn catalog(
        &self,
        tenant: &domain::ids::TenantId,
    ) -> ApiResult<domain::catalog::CatalogState> {
        self.commands
            .load::<domain::CatalogDecider>(&domain::ids::catalog_stream(tenant))
            .map(|loaded| loaded.state)
            .map_err(ApiError::from_command)
    }

    /// Now, as a domain timestamp for commands.
    pub fn timestamp(&self) -> Timestamp {
        Timestamp(self.now_ms())
    }

    /// The tenant that owns `stream_id`, from its first event, or `None`
    /// when the stream does not exist.
    pub fn stream_tenant(&self, stream_id: &str) -> ApiResult<Option<String>> {
        self.owners
            .owner(&self.log, stream_id)
            .map_err(ApiError::from_log)
    }

    /// Runs a client's command: the idempotency check first, then the
    /// target's tenant check, then `build` (which may call CRM, price, or
    /// read the aggregate), then the command path, then a brief wait until
    /// the read models include it.
    ///
    /// The idempotency key is the client's `commandId` scoped by tenant;
    /// the request hash is the hash of the target stream, the expected
    /// version and the client's `request` (its arguments, not the derived
    /// command, which carries the server's clock and external answers). A
    /// retry of an acknowledged command with the same arguments returns its
    /// first outcome with `deduplicated: true` before anything is built,
    /// whatever happened since (the quote accepted, CRM down, the price book
    /// changed); the same `commandId` with other arguments is
    /// `IDEMPOTENCY_CONFLICT`. Nothing is decided again either way.
    ///
    /// # Errors
    /// `VALIDATION` for a malformed `commandId`, `IDEMPOTENCY_CONFLICT`,
    /// `NOT_FOUND` for a target that is missing or another tenant's,
    /// `build`'s error, or the command path's refusal, each mapped once to
    /// [`ApiError`].
    pub async fn execute<D, F, Fut>(
        &self,
        principal: &Principal,
        command: ClientCommand<'_>,
        build: F,
    ) -> ApiResult<CommandReceipt>
    where
        D: Decider,
        D::Command: Serialize,
        D::Error: RuleViolation + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<D::Command>>,
    {
        let admitted = match self.admit(principal, command)? {
            Admission::Answered(receipt) => return Ok(self.answer_retry(receipt).await),
            Admission::Admitted(admitted) => *admitted,
        };
        let built = build().await?;
        let started = Instant::now();
        let outcome = self
            .commands
            .execute::<D>(&admitted.target.stream_id, &built, &admitted.context)
            .await;
        self.finish(admitted, outcome, started).await
    }

    /// Runs a client's command whose content depends on the aggregate
    /// (pricing the quote's current lines): as [`Platform::execute`], but
    /// `build` makes the command from the stream's state as the command
    /// path loads it, so the stream is read once, with the decision.
    /// `prepare` reads what else the command needs (the tenant's catalog)
    /// once the command is admitted: a retry answered by its first outcome
    /// reads nothing.
    ///
    /// # Errors
    /// As [`Platform::execute`]; `prepare`'s error; `build`'s domain
    /// refusal is `RULE_VIOLATION`.
    pub async fn execute_on_state<D, T, P, B>(
        &self,
        principal: &Principal,
        command: ClientCommand<'_>,
        prepare: P,
        mut build: B,
    ) -> ApiResult<CommandReceipt>
    where
        D: Decider,
        D::Error: RuleViolation + 'static,
        P: FnOnce() -> ApiResult<T>,
        B: FnMut(&D::State, &T) -> Result<D::Command, D::Error>,
    {
        let admitted = match self.admit(principal, command)? {
            Admission::Answered(receipt) => return Ok(self.answer_retry(receipt).await),
            Admission::Admitted(admitted) => *admitted,
        };
        let prepared = prepare()?;
        let started = Instant::now();
        let outcome = self
            .commands
            .execute_with::<D>(&admitted.target.stream_id, &admitted.context, |state| {
                build(state, &prepared)
            })
            .await;
        self.finish(admitted, outcome, started).await
    }

    /// The checks before a command is built: `commandId`'s grammar, the
    /// idempotency record (a retry is answered here), the target's tenant.
    fn admit(&self, principal: &Principal, command: ClientCommand<'_>) -> ApiResult<Admission> {
        let ClientCommand {
            command_id,
            target,
            expected_version,
            request,
        } = command;
        input::id("commandId", command_id)?;
        let key = CommandKey::client(&principal.tenant, command_id);
        let fingerprint = serde_json::json!({
            "stream": target.stream_id,
            "expectedVersion": expected_version,
            "request": request,
        });
        let request_hash: [u8; 32] = Sha256::digest(fingerprint.to_string().as_bytes()).into();
        // 1. Idempotency first: a retry meets its first outcome, and
        //    nothing below (tenant check, CRM, pricing, rules) runs again.
        let recorded = self
            .log
            .idempotency_record(&key.encode())
            .map_err(ApiError::from_log)?;
        if let Some((seen_hash, first)) = recorded {
            if seen_hash != request_hash {
                self.metrics.idempotency_conflict();
                return Err(ApiError::IdempotencyConflict(command_id.to_owned()));
            }
            return Ok(Admission::Answered(CommandReceipt {
                id: target.id,
                stream_id: target.stream_id,
                version: first.stream_version,
                positions: first.positions().collect(),
                deduplicated: true,
                correlation_id: correlation_id(&principal.tenant, command_id),
            }));
        }
        // 2. The target is the caller's tenant's.
        target.check_owner(self, principal)?;
        // 3. The command path checks idempotency again, atomically with
        //    the append, for concurrent first attempts.
        let mut context = CommandContext::new(
            key,
            principal.tenant.as_str(),
            correlation_id(&principal.tenant, command_id),
        );
        context.expected_version = expected_version;
        context.request_hash = Some(request_hash);
        Ok(Admission::Admitted(Box::new(Admitted {
            command_id: command_id.to_owned(),
            tenant: principal.tenant.to_string(),
            target,
            context,
        })))
    }

    /// After the command path: errors mapped once, the append observed and
    /// logged, then a brief wait until the read models include it.
    async fn finish<E>(
        &self,
        admitted: Admitted,
        outcome: Result<application::CommandOutcome, application::CommandError<E>>,
        started: Instant,
    ) -> ApiResult<CommandReceipt>
    where
        E: std::error::Error + RuleViolation + 'static,
    {
        let Admitted {
            command_id,
            tenant,
            target,
            context,
        } = admitted;
        let outcome = outcome.map_err(|error| match error {
            application::CommandError::IdempotencyConflict { .. } => {
                self.metrics.idempotency_conflict();
                ApiError::IdempotencyConflict(command_id.clone())
            }
            other => {
                if let application::CommandError::VersionConflict { .. } = &other {
                    self.metrics.version_conflict();
                }
                // What the mapping logs (a store that failed: "may or may
                // not have been recorded") names the command it was, for
                // the operator the client asks; at the error level, so a
                // filter that lets the line through keeps its span.
                let _command = tracing::error_span!(
                    "command",
                    correlation_id = %context.correlation_id,
                    aggregate = %target.stream_id
                )
                .entered();
                ApiError::from_command(other)
            }
        })?;
        self.metrics.observe_append(started.elapsed());
        tracing::info!(
            correlation_id = %context.correlation_id,
            tenant = %tenant,
            aggregate = %target.stream_id,
            version = outcome.stream_version,
            deduplicated = outcome.deduplicated,
            "command applied"
        );
        let positions: Vec<u64> = outcome
            .positions
            .clone()
            .map(|range| range.collect())
            .unwrap_or_default();
        self.await_read_models(&outcome).await;
        Ok(CommandReceipt {
            id: target.id,
            stream_id: target.stream_id,
            version: outcome.stream_version,
            positions,
            deduplicated: outcome.deduplicated,
            correlation_id: context.correlation_id,
        })
    }

    /// A retry answered from its first outcome: it waits for that
    /// outcome's events as the first attempt did, since it may arrive
    /// between their append and their projection (the first answer may
    /// have been lost before its caller read it). When they are projected
    /// already, nothing is waited for.
    async fn answer_retry(&self, receipt: CommandReceipt) -> CommandReceipt {
        self.await_position(receipt.positions.last().copied()).await;
        receipt
    }

    /// Read your writes: waits, up to the server's bound and never failing,
    /// until the read models include what `outcome` appended (a command
    /// the command path found already done included).
    pub async fn await_read_models(&self, outcome: &application::CommandOutcome) {
        self.await_position(outcome.positions.as_ref().map(|range| *range.end()))
            .await;
    }

    /// Waits, up to the server's bound and never failing, until the read
    /// models include position `last` (nothing to wait for when `None`).
    async fn await_position(&self, last: Option<u64>) {
        if let Some(last) = last.filter(|_| !self.read_your_writes.is_zero()) {
            let _ = self
                .projections
                .wait_for_async(last + 1, self.read_your_writes)
                .await;
        }
    }

    /// Runs reconciliation now over `tenant`'s open handoffs.
    pub async fn trigger_reconciliation(
        &self,
        tenant: &TenantId,
    ) -> ApiResult<integration::ReconciliationReport> {
        self.fulfillment.reconcile(tenant).await
    }

    /// Moves a consumer's checkpoint: the runtime's side-effecting
    /// consumers through the runtime (recovery mode required), projectors
    /// by a rebuild.
    pub async fn reset_consumer(
        &self,
        name: &str,
        to: u64,
        recovery: bool,
    ) -> ApiResult<ConsumerReset> {
        if let Some(result) = self.fulfillment.reset_consumer(name, to, recovery).await {
            return result;
        }
        if projections::PROJECTOR_NAMES.contains(&name) {
            return Err(ApiError::validation(
                "name",
                "projectors are reset by rebuildProjection, which replays from 0 and swaps",
            ));
        }
        if name == application::expiry::NAME {
            // Its timers run beside the fulfillment process, not in it: the
            // server does not stop them to move their checkpoint.
            return Err(ApiError::validation(
                "name",
                "`quote-expiry` is reset offline: stop the server, then run `oms-replay \
                 reset-consumer quote-expiry --to <position>`",
            ));
        }
        Err(ApiError::NotFound(format!("consumer `{name}`")))
    }
}
