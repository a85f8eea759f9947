//! Signed callbacks and the inbox.
//!
//! `POST /callbacks/{system}` ([`router`]) hands the raw bytes to
//! [`CallbackInbox::receive`], which:
//!
//! 1. authenticates: HMAC-SHA256 over `timestamp "." body` with each secret
//!    configured for that system (current and previous, for every tenant),
//!    compared in constant time; the tenants whose secret matched are the
//!    only tenants the message may speak for;
//! 2. refuses a signing time more than 5 minutes away from now, either way;
//! 3. parses the body in the system's own dialect (external names stay in
//!    [`crate::external`]) and checks that the tenant, the idempotency key,
//!    the handoff and the system all agree;
//! 4. turns the callback into an observation command on the handoff through
//!    the command path, with `cb:<system>:<tenant>:<message id>` as the
//!    command id and the sha256 of the raw body as the request hash. The
//!    log's idempotent append is the inbox: the inbox record and the events
//!    the callback causes are written in one atomic batch, a redelivery
//!    returns the first outcome and writes nothing, and the same message id
//!    with another payload is refused (`duplicate_conflict`) and logged,
//!    also when both arrive at once. A delivery that changed nothing (the
//!    handoff already had that outcome, answered `no_change`) is recorded
//!    too, by its command id alone: a redelivery answers `duplicate`, and
//!    the same message id with another payload `duplicate_conflict`;
//! 5. parks a callback whose handoff does not exist yet (or was not sent
//!    yet) in the `adapters/parked-callbacks` tree, flushed before the
//!    answer, and applies it when the handoff appears.
//!
//! The callback never decides state: the handoff's decider does.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use domain::handoff::{HandoffCommand, HandoffError, HandoffState};
use domain::idempotency::{handoff_id_for_key, CommandKey, Purpose, TargetSystem};
use domain::ids::{handoff_stream, HandoffId, TenantId, Timestamp};
use domain::outcome::{Observation, ObservationSource};
use domain::HandoffDecider;
use eventlog::{Hash, LogError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{parse_system, sends_callbacks, SystemsConfig};
use crate::external::{map_state, parse_callback, ParsedCallback};
use crate::metrics::Metrics;
use crate::signing::{self, Skew};
use application::clock::SharedClock;
use application::command::{CommandContext, CommandError, CommandPath};

const PARKED_TREE: &str = "adapters/parked-callbacks";
/// Largest callback body accepted.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;
const MAX_MESSAGE_ID_LEN: usize = 128;

/// Whether `id` can be a callback's message id: 1 to 128 bytes, with no
/// control or invisible character (it becomes part of the inbox's key, the
/// log and the logs, where a `U+202E` or a line break would mislead a
/// reader).
fn is_message_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_MESSAGE_ID_LEN && !id.chars().any(domain::text::is_invisible)
}

/// Why a callback was refused; each has a stable name and an HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionReason {
    /// No signature header.
    MissingSignature,
    /// The timestamp header is missing or not a number of seconds.
    BadTimestamp,
    /// No configured secret produces the signature (wrong secret, tampered
    /// body or timestamp).
    BadSignature,
    /// Signed more than 5 minutes ago.
    StaleTimestamp,
    /// Signed more than 5 minutes in the future.
    FutureTimestamp,
    /// No such system, or it sends no callbacks, or no tenant configures it.
    UnknownSystem,
    /// The authenticated body is not a callback of this system.
    Malformed,
    /// The message speaks for a tenant its signature does not, or the
    /// handoff belongs to another tenant.
    TenantMismatch,
    /// The key does not name the handoff it claims.
    HandoffMismatch,
    /// The handoff is with another system.
    SystemMismatch,
    /// The message id was already used with a different payload.
    DuplicateConflict,
    /// The inbox could not be written; the sender should retry.
    Unavailable,
    /// The body is over [`MAX_CALLBACK_BYTES`].
    TooLarge,
}

impl RejectionReason {
    /// How many reasons there are.
    pub const COUNT: usize = 13;

    /// Every reason.
    pub const ALL: [RejectionReason; Self::COUNT] = [
        Self::MissingSignature,
        Self::BadTimestamp,
        Self::BadSignature,
        Self::StaleTimestamp,
        Self::FutureTimestamp,
        Self::UnknownSystem,
        Self::Malformed,
        Self::TenantMismatch,
        Self::HandoffMismatch,
        Self::SystemMismatch,
        Self::DuplicateConflict,
        Self::Unavailable,
        Self::TooLarge,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::BadTimestamp => "bad_timestamp",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::FutureTimestamp => "future_timestamp",
            Self::UnknownSystem => "unknown_system",
            Self::Malformed => "malformed",
            Self::TenantMismatch => "tenant_mismatch",
            Self::HandoffMismatch => "handoff_mismatch",
            Self::SystemMismatch => "system_mismatch",
            Self::DuplicateConflict => "duplicate_conflict",
            Self::Unavailable => "unavailable",
            Self::TooLarge => "too_large",
        }
    }

    /// The HTTP status to answer with. Only `unavailable` invites a retry.
    pub fn http_status(self) -> u16 {
        match self {
            Self::MissingSignature
            | Self::BadTimestamp
            | Self::BadSignature
            | Self::StaleTimestamp
            | Self::FutureTimestamp => 401,
            Self::UnknownSystem => 404,
            Self::Malformed => 400,
            Self::TenantMismatch | Self::HandoffMismatch | Self::SystemMismatch => 403,
            Self::DuplicateConflict => 409,
            Self::Unavailable => 503,
            Self::TooLarge => 413,
        }
    }

    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// A refused callback.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("callback refused ({}): {detail}", reason.as_str())]
pub struct CallbackRejection {
    reason: RejectionReason,
    detail: String,
}

impl CallbackRejection {
    fn new(reason: RejectionReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    /// The stable reason name (`bad_signature`, `stale_timestamp`, ...).
    pub fn reason(&self) -> &'static str {
        self.reason.as_str()
    }

    /// The reason.
    pub fn kind(&self) -> RejectionReason {
        self.reason
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        self.reason.http_status()
    }

    /// A short description without secrets or payload.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// What became of an accepted callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// The observation was appended.
    Applied,
    /// A redelivery of a message already applied: nothing written.
    Duplicate,
    /// The handoff already had this outcome (or a later one): nothing written.
    NoChange,
    /// The handoff is not there (or not sent) yet: kept and applied later.
    Parked,
    /// The handoff's rules refused the observation (for example while its
    /// outcome is UNKNOWN, only reconciliation moves it).
    RefusedByDomain {
        /// The rule.
        rule: String,
    },
}

/// The answer to an accepted callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallbackReceipt {
    /// The sender's message id.
    pub message_id: String,
    /// The handoff it is about.
    pub handoff_id: String,
    /// What became of it.
    #[serde(flatten)]
    pub status: ReceiptStatus,
}

impl CallbackReceipt {
    /// The HTTP status: 202 for a parked callback, 200 otherwise.
    pub fn http_status(&self) -> u16 {
        if self.status == ReceiptStatus::Parked {
            202
        } else {
            200
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ParkedCallback {
    system: String,
    received_at_ms: i64,
    body: String,
}

/// The callback inbox. Cheap to clone.
#[derive(Clone)]
pub struct CallbackInbox {
    inner: Arc<Inner>,
}

struct Inner {
    path: CommandPath,
    config: Arc<SystemsConfig>,
    metrics: Arc<Metrics>,
    parked: sled::Tree,
    clock: SharedClock,
}

impl std::fmt::Debug for CallbackInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackInbox").finish_non_exhaustive()
    }
}

/// Parts of a business idempotency key (its purpose must name one, and
/// is checked against the handoff's through the whole key).
struct KeyParts {
    tenant: String,
    target: String,
}

/// The parts of a key the platform could have derived: ids of the one
/// grammar, an attempt from 1, a purpose of the system the key names.
/// Anything else can never match a handoff and is malformed (it was
/// parked for ten minutes, hiding the sender's bug: a probe).
fn parse_key(key: &str) -> Option<KeyParts> {
    let parts: Vec<&str> = key.split(':').collect();
    let [tenant, order, line, target, purpose, attempt] = parts.as_slice() else {
        return None;
    };
    for id in [tenant, order, line] {
        domain::ids::validate_id(id).ok()?;
    }
    if attempt.parse::<u32>().ok()? == 0 || attempt.starts_with('0') {
        return None;
    }
    if purpose.parse::<Purpose>().ok()?.target().as_str() != *target {
        return None;
    }
    Some(KeyParts {
        tenant: (*tenant).to_owned(),
        target: (*target).to_owned(),
    })
}

fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

impl CallbackInbox {
    /// An inbox writing through `path`, verifying with `config`'s secrets.
    ///
    /// # Errors
    /// A storage error opening the parking tree.
    pub fn new(
        path: CommandPath,
        config: Arc<SystemsConfig>,
        metrics: Arc<Metrics>,
        clock: SharedClock,
    ) -> Result<Self, LogError> {
        let parked = path.log().db().open_tree(PARKED_TREE)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                config,
                metrics,
                parked,
                clock,
            }),
        })
    }

    /// The clock this inbox reads.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Verifies, checks and applies one callback.
    ///
    /// # Errors
    /// A [`CallbackRejection`] naming the reason; nothing was written.
    #[tracing::instrument(
        name = "callback",
        skip_all,
        fields(system = logged_system(system), message_id = tracing::field::Empty)
    )]
    pub async fn receive(
        &self,
        system: &str,
        timestamp_header: &str,
        signature_header: &str,
        raw_body: &[u8],
        now_ms: i64,
    ) -> Result<CallbackReceipt, CallbackRejection> {
        let result = self
            .receive_checked(system, timestamp_header, signature_header, raw_body, now_ms)
            .await;
        let m = &self.inner.metrics;
        let count = |c: &std::sync::atomic::AtomicU64| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        match &result {
            Ok(receipt) => match &receipt.status {
                ReceiptStatus::Applied => count(&m.callbacks_applied),
                ReceiptStatus::Duplicate => count(&m.callbacks_duplicate),
                ReceiptStatus::NoChange => count(&m.callbacks_no_change),
                ReceiptStatus::Parked => count(&m.callbacks_parked),
                ReceiptStatus::RefusedByDomain { .. } => count(&m.callbacks_refused_by_domain),
            },
            Err(rejection) => {
                m.record_callback_rejection(rejection.kind());
                tracing::warn!(
                    system = logged_system(system),
                    reason = rejection.reason(),
                    detail = rejection.detail(),
                    "callback refused"
                );
            }
        }
        result
    }

    async fn receive_checked(
        &self,
        system_name: &str,
        timestamp_header: &str,
        signature_header: &str,
        raw_body: &[u8],
        now_ms: i64,
    ) -> Result<CallbackReceipt, CallbackRejection> {
        use RejectionReason as R;
        let system = parse_system(system_name)
            .filter(|s| sends_callbacks(*s))
            .ok_or_else(|| CallbackRejection::new(R::UnknownSystem, "no such callback system"))?;
        if raw_body.len() > MAX_CALLBACK_BYTES {
            return Err(CallbackRejection::new(R::TooLarge, "body too large"));
        }
        let config = &self.inner.config;
        let candidates: Vec<(&str, &crate::config::SystemConfig)> = config
            .tenants_with(system)
            .filter(|(_, c)| c.enabled && !c.callback_secrets.is_empty())
            .collect();
        if candidates.is_empty() {
            return Err(CallbackRejection::new(
                R::UnknownSystem,
                "no tenant configures this system",
            ));
        }
        if signature_header.trim().is_empty() {
            return Err(CallbackRejection::new(R::MissingSignature, "no signature"));
        }
        let timestamp_ms = signing::parse_timestamp_ms(timestamp_header)
            .ok_or_else(|| CallbackRejection::new(R::BadTimestamp, "timestamp is not seconds"))?;
        let authenticated: Vec<&str> = candidates
            .iter()
            .filter(|(_, c)| {
                // Every secret is tried, so the time taken does not depend
                // on which one matched.
                c.callback_secrets
                    .iter()
                    .map(|secret| {
                        signing::verify(
                            secret.as_bytes(),
                            timestamp_header.trim(),
                            raw_body,
                            signature_header,
                        )
                    })
                    .fold(false, |any, ok| any | ok)
            })
            .map(|(tenant, _)| *tenant)
            .collect();
        if authenticated.is_empty() {
            return Err(CallbackRejection::new(
                R::BadSignature,
                "no configured secret matches",
            ));
        }
        match signing::skew(timestamp_ms, now_ms) {
            Skew::Fresh => {}
            Skew::Stale => {
                return Err(CallbackRejection::new(
                    R::StaleTimestamp,
                    "signed too long ago",
                ))
            }
            Skew::Future => {
                return Err(CallbackRejection::new(
                    R::FutureTimestamp,
                    "signed in the future",
                ))
            }
        }
        let parsed = parse_callback(system, raw_body)
            .map_err(|e| CallbackRejection::new(R::Malformed, e))?;
        // Known only once the body is authenticated and parsed; an id
        // refused below is not recorded.
        if is_message_id(&parsed.message_id) {
            tracing::Span::current().record("message_id", parsed.message_id.as_str());
        }
        if !authenticated.contains(&parsed.tenant.as_str()) {
            return Err(CallbackRejection::new(
                R::TenantMismatch,
                "the signature does not speak for this tenant",
            ));
        }
        let status = self
            .apply(system, &parsed, sha256(raw_body), now_ms)
            .await?;
        if status == ReceiptStatus::Parked {
            self.park(system, &parsed, raw_body, now_ms).await?;
        }
        Ok(CallbackReceipt {
            message_id: parsed.message_id.clone(),
            handoff_id: handoff_id_for_key(&parsed.idempotency_key).to_string(),
            status,
        })
    }

    /// Checks the message against its handoff and applies it.
    async fn apply(
        &self,
        system: TargetSystem,
        parsed: &ParsedCallback,
        body_hash: Hash,
        now_ms: i64,
    ) -> Result<ReceiptStatus, CallbackRejection> {
        use RejectionReason as R;
        if !is_message_id(&parsed.message_id) {
            return Err(CallbackRejection::new(R::Malformed, "bad message id"));
        }
        let parts = parse_key(&parsed.idempotency_key)
            .ok_or_else(|| CallbackRejection::new(R::Malformed, "bad idempotency key"))?;
        if parts.tenant != parsed.tenant {
            return Err(CallbackRejection::new(
                R::TenantMismatch,
                "the key belongs to another tenant",
            ));
        }
        if parts.target != system.as_str() {
            return Err(CallbackRejection::new(
                R::SystemMismatch,
                "the key names another system",
            ));
        }
        let handoff_id = handoff_id_for_key(&parsed.idempotency_key);
        let stream = handoff_stream(&handoff_id);
        let path = &self.inner.path;
        let unavailable = |e: &dyn std::fmt::Display| {
            CallbackRejection::new(R::Unavailable, format!("inbox unavailable: {e}"))
        };
        let loaded = path
            .load::<HandoffDecider>(&stream)
            .map_err(|e| unavailable(&e))?;
        let HandoffState::Open(handoff) = loaded.state else {
            return Ok(ReceiptStatus::Parked);
        };
        if handoff.subject.tenant_id.as_str() != parsed.tenant {
            return Err(CallbackRejection::new(
                R::TenantMismatch,
                "the handoff belongs to another tenant",
            ));
        }
        if handoff.idempotency_key != parsed.idempotency_key {
            return Err(CallbackRejection::new(
                R::HandoffMismatch,
                "the key does not name this handoff",
            ));
        }
        if handoff.subject.target != system {
            return Err(CallbackRejection::new(
                R::SystemMismatch,
                "the handoff is with another system",
            ));
        }
        let observation = observation_of(system, parsed, &handoff, now_ms);
        let retry_policy = self
            .inner
            .config
            .system(&parsed.tenant, system)
            .map(|c| c.retry.policy())
            .unwrap_or_else(|| crate::config::RetryProfile::default().policy());
        let correlation_id = path
            .log()
            .read_stream(&stream, 1, 1)
            .ok()
            .and_then(|records| records.into_iter().next())
            .map_or_else(|| handoff.id.to_string(), |r| r.correlation_id);
        let context = CommandContext {
            key: CommandKey::callback(
                &TenantId::new(parsed.tenant.clone()),
                system,
                parsed.message_id.clone(),
            ),
            tenant_id: parsed.tenant.clone(),
            correlation_id,
            expected_version: None,
            request_hash: Some(body_hash),
            causation_event_id: None,
            attachments: Vec::new(),
        };
        let command = HandoffCommand::Observe {
            observation,
            retry_policy,
        };
        let status = match path
            .execute::<HandoffDecider>(&stream, &command, &context)
            .await
        {
            Ok(outcome) if outcome.deduplicated => ReceiptStatus::Duplicate,
            Ok(outcome) if outcome.positions.is_none() => ReceiptStatus::NoChange,
            Ok(_) => ReceiptStatus::Applied,
            Err(CommandError::IdempotencyConflict { .. }) => {
                tracing::warn!(
                    system = system.as_str(),
                    message_id = parsed.message_id.as_str(),
                    handoff_id = handoff.id.as_str(),
                    "callback message id reused with a different payload"
                );
                return Err(CallbackRejection::new(
                    R::DuplicateConflict,
                    "message id reused with a different payload",
                ));
            }
            Err(CommandError::Rejected {
                source: HandoffError::NotDispatched,
            }) => ReceiptStatus::Parked,
            Err(CommandError::Rejected { source }) => ReceiptStatus::RefusedByDomain {
                rule: domain::RuleViolation::rule(&source).to_owned(),
            },
            Err(other) => return Err(unavailable(&other)),
        };
        Ok(status)
    }

    async fn park(
        &self,
        system: TargetSystem,
        parsed: &ParsedCallback,
        raw_body: &[u8],
        now_ms: i64,
    ) -> Result<(), CallbackRejection> {
        let unavailable = |e: &dyn std::fmt::Display| {
            CallbackRejection::new(RejectionReason::Unavailable, e.to_string())
        };
        let body = std::str::from_utf8(raw_body).map_err(|e| unavailable(&e))?;
        let record = ParkedCallback {
            system: system.as_str().to_owned(),
            received_at_ms: now_ms,
            body: body.to_owned(),
        };
        let value = serde_json::to_vec(&record).map_err(|e| unavailable(&e))?;
        let key = parked_key(
            &handoff_id_for_key(&parsed.idempotency_key),
            system,
            &parsed.message_id,
        );
        // First come, first kept: a redelivery parks nothing new, and the
        // same message id with another payload is refused, as it is once
        // the handoff exists.
        let swapped = self
            .inner
            .parked
            .compare_and_swap(&key, None as Option<&[u8]>, Some(value))
            .map_err(|e| unavailable(&e))?;
        if let Err(existing) = swapped {
            let first = existing
                .current
                .as_deref()
                .and_then(|v| serde_json::from_slice::<ParkedCallback>(v).ok());
            match first {
                // An unreadable record is replaced (`apply_parked` would
                // drop it).
                None => {
                    if let Some(proposed) = existing.proposed {
                        self.inner
                            .parked
                            .insert(&key, proposed)
                            .map_err(|e| unavailable(&e))?;
                    }
                }
                Some(first) if first.body != body => {
                    tracing::warn!(
                        system = system.as_str(),
                        message_id = parsed.message_id.as_str(),
                        "parked callback message id reused with a different payload"
                    );
                    return Err(CallbackRejection::new(
                        RejectionReason::DuplicateConflict,
                        "message id reused with a different payload",
                    ));
                }
                Some(_) => {}
            }
        }
        // The sender is told "accepted" only once the parked copy is durable.
        self.inner
            .parked
            .flush_async()
            .await
            .map_err(|e| unavailable(&e))?;
        tracing::info!(
            system = system.as_str(),
            message_id = parsed.message_id.as_str(),
            "callback parked until its handoff appears"
        );
        Ok(())
    }

    /// Tries every parked callback again; applies those whose handoff is now
    /// there and drops those that are refused. Returns how many were applied.
    ///
    /// # Errors
    /// A storage error reading the parking tree.
    pub async fn apply_parked(&self) -> Result<usize, LogError> {
        let mut applied = 0;
        let entries: Vec<(sled::IVec, sled::IVec)> =
            self.inner.parked.iter().collect::<Result<_, _>>()?;
        for (key, value) in entries {
            let Some((record, system, parsed)) = read_parked(&value) else {
                self.inner.parked.remove(&key)?;
                continue;
            };
            let now = self.inner.clock.now_ms();
            let expiry = self.inner.config.reconciliation.parked_callback_expiry_ms;
            if now.saturating_sub(record.received_at_ms) > i64::try_from(expiry).unwrap_or(i64::MAX)
            {
                match self.expire(system, &parsed, &record, now).await {
                    Ok(()) => self.inner.parked.remove(&key).map(|_| ())?,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot expire a parked callback; will retry")
                    }
                }
                continue;
            }
            match self
                .apply(system, &parsed, sha256(record.body.as_bytes()), now)
                .await
            {
                Ok(ReceiptStatus::Parked) => {}
                Err(rejection) if rejection.kind() == RejectionReason::Unavailable => {}
                Ok(status) => {
                    self.inner.parked.remove(&key)?;
                    applied += 1;
                    self.inner
                        .metrics
                        .callbacks_unparked
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(
                        system = system.as_str(),
                        message_id = parsed.message_id.as_str(),
                        ?status,
                        "parked callback applied"
                    );
                }
                Err(rejection) => {
                    self.inner.parked.remove(&key)?;
                    self.inner
                        .metrics
                        .record_callback_rejection(rejection.kind());
                    tracing::warn!(
                        system = system.as_str(),
                        reason = rejection.reason(),
                        "parked callback refused"
                    );
                }
            }
        }
        Ok(applied)
    }

    /// Gives up a parked callback: its handoff, if it exists and is still
    /// open, falls out as "local impossible" with the callback's state and
    /// code as the evidence; a callback whose handoff never appeared is
    /// dropped. Either way it is counted and logged (without its body).
    async fn expire(
        &self,
        system: TargetSystem,
        parsed: &ParsedCallback,
        record: &ParkedCallback,
        now_ms: i64,
    ) -> Result<(), CommandError<HandoffError>> {
        let handoff_id = handoff_id_for_key(&parsed.idempotency_key);
        let stream = handoff_stream(&handoff_id);
        let path = &self.inner.path;
        let loaded = path.load::<HandoffDecider>(&stream)?;
        let outcome = match loaded.state {
            HandoffState::Open(handoff) if handoff.subject.tenant_id.as_str() == parsed.tenant => {
                let observation = observation_of(system, parsed, &handoff, record.received_at_ms);
                let mut context = CommandContext::new(
                    CommandKey::callback(
                        &TenantId::new(parsed.tenant.clone()),
                        system,
                        parsed.message_id.clone(),
                    ),
                    parsed.tenant.clone(),
                    handoff.id.to_string(),
                );
                context.request_hash = Some(sha256(record.body.as_bytes()));
                match path
                    .execute::<HandoffDecider>(
                        &stream,
                        &HandoffCommand::CallbackUnmatched {
                            observation,
                            at: Timestamp(now_ms),
                        },
                        &context,
                    )
                    .await
                {
                    Ok(_) => "fallout",
                    Err(
                        CommandError::Rejected { .. } | CommandError::IdempotencyConflict { .. },
                    ) => "handoff closed",
                    Err(other) => return Err(other),
                }
            }
            _ => "no such handoff",
        };
        self.inner
            .metrics
            .callbacks_expired
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            system = system.as_str(),
            message_id = parsed.message_id.as_str(),
            handoff_id = handoff_id.as_str(),
            outcome,
            "parked callback expired"
        );
        Ok(())
    }

    /// True when a callback for `handoff_id` is parked.
    pub fn has_parked(&self, handoff_id: &HandoffId) -> bool {
        let mut prefix = handoff_id.as_str().as_bytes().to_vec();
        prefix.push(0);
        self.inner.parked.scan_prefix(prefix).next().is_some()
    }

    /// How many callbacks are parked.
    pub fn parked_count(&self) -> usize {
        self.inner.parked.len()
    }

    /// How many callbacks wait for their handoff, by the tenant each is for
    /// (checked against its key's tenant when it was parked). A record that
    /// no longer parses counts for no tenant; [`CallbackInbox::apply_parked`]
    /// drops it. A damaged page ends the count (sled's scan repeats its
    /// error, so skipping errors would never end).
    pub fn parked_by_tenant(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for (_, value) in self.inner.parked.iter().map_while(Result::ok) {
            if let Some((_, _, parsed)) = read_parked(&value) {
                *counts.entry(parsed.tenant).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// A parked record with its system and its parsed callback; `None` when
/// any of them no longer reads (the record is then dropped by
/// [`CallbackInbox::apply_parked`]).
fn read_parked(value: &[u8]) -> Option<(ParkedCallback, TargetSystem, ParsedCallback)> {
    let record = serde_json::from_slice::<ParkedCallback>(value).ok()?;
    let system = parse_system(&record.system)?;
    let parsed = parse_callback(system, record.body.as_bytes()).ok()?;
    Some((record, system, parsed))
}

/// A callback as an observation of `handoff`: its state mapped to an
/// outcome class, the raw state and code kept as evidence.
fn observation_of(
    system: TargetSystem,
    parsed: &ParsedCallback,
    handoff: &domain::handoff::Handoff,
    at_ms: i64,
) -> Observation {
    Observation {
        handoff_id: handoff.id.clone(),
        attempt: handoff.subject.attempt,
        class: map_state(
            system,
            handoff.subject.purpose,
            &parsed.raw_state,
            parsed.raw_code.as_deref(),
        ),
        raw_code: Some(parsed.raw_code.clone().unwrap_or(parsed.raw_state.clone())),
        raw_label: Some(parsed.raw_state.clone()),
        external_reference: parsed.external_reference.clone(),
        observed_at: Timestamp(at_ms),
        source: ObservationSource::Callback,
    }
}

fn parked_key(handoff_id: &HandoffId, system: TargetSystem, message_id: &str) -> Vec<u8> {
    let mut key = handoff_id.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(system.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(message_id.as_bytes());
    key
}

/// `POST /callbacks/{system}` over `inbox`, for the server to `merge`.
pub fn router(inbox: CallbackInbox) -> Router {
    Router::new()
        .route("/callbacks/{system}", post(handle))
        .with_state(inbox)
}

async fn handle(
    State(inbox): State<CallbackInbox>,
    Path(system): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let timestamp = header(signing::TIMESTAMP_HEADER);
    let signature = header(signing::SIGNATURE_HEADER);
    let now = inbox.clock().now_ms();
    match inbox
        .receive(&system, &timestamp, &signature, &body, now)
        .await
    {
        Ok(receipt) => {
            let status = StatusCode::from_u16(receipt.http_status()).unwrap_or(StatusCode::OK);
            (status, Json(receipt)).into_response()
        }
        Err(rejection) => {
            let status =
                StatusCode::from_u16(rejection.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            (
                status,
                Json(serde_json::json!({ "error": rejection.reason() })),
            )
                .into_response()
        }
    }
}

/// The callback path's system as logged: its name when it is a system
/// that sends callbacks, else `unknown`. The path is the client's: logged
/// as it came, it could forge log lines (a newline, escape sequences) and
/// make one request write 60 KB of log.
fn logged_system(name: &str) -> &'static str {
    parse_system(name)
        .filter(|s| sends_callbacks(*s))
        .map_or("unknown", |s| s.as_str())
}

#[cfg(test)]
mod key_tests {
    use super::parse_key;

    #[test]
    fn a_key_the_platform_could_not_have_derived_is_malformed() {
        assert!(parse_key("demo:01ORDER:l1:inventory:reserve:1").is_some());
        assert!(parse_key("demo:o-1:line_2:billing:activate_billing:12").is_some());
        let long = format!("demo:{}:l0:inventory:reserve:1", "o".repeat(5_000));
        for bad in [
            "demo::l0:inventory:reserve:1",
            long.as_str(),
            "demo:ab\u{e9}:l0:inventory:reserve:1",
            "demo:a/../b:l0:inventory:reserve:1",
            "demo:o1:l0:inventory:reserve:0",
            "demo:o1:l0:inventory:reserve:01",
            "demo:o1:l0:inventory:activate:1",
            "demo:o1:l0:inventory:reserve",
            "demo:o1:l0:inventory:reserve:1:x",
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
    }
}
