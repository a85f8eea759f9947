//! Anti-corruption layers for the systems that carry out handoffs:
//! inventory, provisioning, billing, notification and document generation.
//!
//! The port ([`HandoffPort`]) speaks the domain's language: an
//! [`ExternalCall`] (tenant, system, purpose, idempotency key, the handoff's
//! request snapshot) in, a [`CallOutcome`] (a normalized
//! [`OutcomeClass`] with the raw code, label and reference kept as
//! evidence) out, and a status query by idempotency key for
//! reconciliation. Each system's module holds its request mapper, its
//! response and error mapper and its callback parser; external field names
//! and status words never leave those modules.
//!
//! | port operation (purpose) | inventory | provisioning | billing | notification | document |
//! | --- | --- | --- | --- | --- | --- |
//! | execute (`Reserve` / `Activate` / `ActivateBilling` / `Notify` / `GenerateDocument`) | reserve | activate | activate charges | send message | render |
//! | execute (`Release` / `Cancel`) | release | cancel | n/a | n/a | n/a |
//! | status by key | reservation status | service order status | activation status | delivery status | render status |
//!
//! HTTP-level mapping shared by every system (the seeds' error table):
//!
//! | condition | class |
//! | --- | --- |
//! | 2xx with a known external status | the system's status table |
//! | 2xx with an unknown status | `Unclassified` |
//! | 2xx with an unreadable body | `SchemaMismatch` |
//! | 400 / 422 with a known vendor code | `ValidationRejected` / `BusinessRejected` |
//! | 400 / 422 with an unknown vendor code | `Unclassified` |
//! | 401 / 403 | `SecurityConfiguration` |
//! | 409 | `DuplicateConflict` |
//! | 408 / 504, read timeout, connection lost after sending | `Unknown` |
//! | 429 / 500 / 502 / 503, connection refused | `TechnicalRetryable` |
//! | any other status | `Unclassified` |

pub mod billing;
mod breaker;
pub mod document;
pub(crate) mod http;
pub mod inventory;
pub mod notification;
pub mod provisioning;

use std::future::Future;
use std::pin::Pin;

use domain::handoff::RequestSnapshot;
use domain::idempotency::{Purpose, TargetSystem};
use domain::ids::{HandoffId, TenantId};
use domain::outcome::OutcomeClass;
use serde::{Deserialize, Serialize};

pub use breaker::CircuitBreaker;
pub use http::{HttpSystems, CORRELATION_HEADER, IDEMPOTENCY_HEADER};

/// A boxed future, so ports can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request to an external system, in domain terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalCall {
    /// The tenant whose system is called.
    pub tenant: TenantId,
    /// The system.
    pub system: TargetSystem,
    /// What is asked.
    pub purpose: Purpose,
    /// The handoff this call belongs to.
    pub handoff_id: HandoffId,
    /// The business idempotency key, the same for every send of the handoff.
    pub idempotency_key: String,
    /// The handoff's request.
    pub request: RequestSnapshot,
    /// Correlation id, sent as a header for the system's own traces.
    pub correlation_id: String,
}

/// A status query by idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusQuery {
    /// The tenant.
    pub tenant: TenantId,
    /// The system.
    pub system: TargetSystem,
    /// What was asked.
    pub purpose: Purpose,
    /// The key the request was sent with.
    pub idempotency_key: String,
}

/// What was sent and received, redacted: kept as evidence, never as state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// `execute` or `status`.
    pub operation: String,
    /// The HTTP status, when a response came.
    pub http_status: Option<u16>,
    /// The request body with sensitive fields redacted.
    pub request: String,
    /// The response body, redacted and cut to 512 bytes.
    pub response: Option<String>,
    /// How long the call took.
    pub latency_ms: u64,
}

/// A normalized answer with its raw evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// The class the domain decides on.
    pub class: OutcomeClass,
    /// The raw external code (`ERR2`, `HTTP-500`, `TIMEOUT`), as evidence.
    pub raw_code: Option<String>,
    /// The raw label or message, as evidence.
    pub raw_label: Option<String>,
    /// The system's reference for the request.
    pub external_reference: Option<String>,
    /// What went over the wire.
    pub evidence: Evidence,
}

/// What a status query found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusAnswer {
    /// The system knows the key; its state is mapped.
    Known(CallOutcome),
    /// The system never received (or never applied) the request: a resend
    /// with the same key is safe.
    NotFound(Evidence),
    /// The status could not be read (timeout, 5xx, bad body): still unknown.
    Unavailable(CallOutcome),
}

/// Why a port did not make the call at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The circuit of this system is open: fail fast, retry later. Nothing
    /// is marked failed.
    #[error("circuit open for {system}; retry in {retry_in_ms} ms")]
    CircuitOpen {
        /// The system.
        system: TargetSystem,
        /// When a probe may go through.
        retry_in_ms: u64,
    },
    /// The tenant has no configuration for this system.
    #[error("{system} is not configured for tenant {tenant}")]
    NotConfigured {
        /// The tenant.
        tenant: String,
        /// The system.
        system: TargetSystem,
    },
    /// The system is disabled for this tenant.
    #[error("{system} is disabled for tenant {tenant}")]
    Disabled {
        /// The tenant.
        tenant: String,
        /// The system.
        system: TargetSystem,
    },
    /// The tenant's capability registry turns this purpose off.
    #[error("{capability} is disabled for tenant {tenant}")]
    CapabilityDisabled {
        /// The tenant.
        tenant: String,
        /// The capability.
        capability: domain::capability::Capability,
    },
    /// The system does not offer this purpose.
    #[error("{system} does not support {purpose}")]
    Unsupported {
        /// The system.
        system: TargetSystem,
        /// The purpose.
        purpose: Purpose,
    },
}

/// The port the dispatcher and reconciliation call.
pub trait HandoffPort: Send + Sync {
    /// Sends the request (or resends it, with the same key).
    ///
    /// # Errors
    /// [`PortError`] when no call was made; every answer, timeout and
    /// transport failure of a call that was made is a [`CallOutcome`].
    fn execute<'a>(
        &'a self,
        call: &'a ExternalCall,
    ) -> BoxFuture<'a, Result<CallOutcome, PortError>>;

    /// `Ok` when a call to `tenant`'s `system` may go now (configured,
    /// enabled, circuit closed, or this is the half-open probe), checked
    /// before a dispatch is recorded; `execute` itself does not consult the
    /// circuit, so a recorded dispatch always makes its call.
    ///
    /// # Errors
    /// Why no call would be made.
    fn ready(&self, tenant: &str, system: TargetSystem) -> Result<(), PortError>;

    /// Asks the system what it knows about a key.
    ///
    /// # Errors
    /// [`PortError`] when no query was made.
    fn status<'a>(
        &'a self,
        query: &'a StatusQuery,
    ) -> BoxFuture<'a, Result<StatusAnswer, PortError>>;
}

/// A system's answer before the HTTP layer adds evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mapped {
    pub(crate) class: OutcomeClass,
    pub(crate) raw_code: Option<String>,
    pub(crate) raw_label: Option<String>,
    pub(crate) external_reference: Option<String>,
}

impl Mapped {
    pub(crate) fn new(class: OutcomeClass, raw_code: impl Into<String>) -> Self {
        Self {
            class,
            raw_code: Some(raw_code.into()),
            raw_label: None,
            external_reference: None,
        }
    }

    fn label(mut self, label: Option<String>) -> Self {
        self.raw_label = label;
        self
    }

    fn reference(mut self, reference: Option<String>) -> Self {
        self.external_reference = reference;
        self
    }
}

/// A callback as a system sent it, parsed by the system's own dialect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCallback {
    /// The sender's message id (the inbox key).
    pub message_id: String,
    /// The tenant the sender says it is for.
    pub tenant: String,
    /// The idempotency key of the request it reports on.
    pub idempotency_key: String,
    /// The raw external state, as evidence.
    pub raw_state: String,
    /// The raw error code, if any.
    pub raw_code: Option<String>,
    /// The system's reference.
    pub external_reference: Option<String>,
}

/// Parses a callback body in `system`'s dialect.
///
/// # Errors
/// A short description of what is malformed (never the body itself).
pub fn parse_callback(system: TargetSystem, body: &[u8]) -> Result<ParsedCallback, String> {
    match system {
        TargetSystem::Inventory => inventory::parse_callback(body),
        TargetSystem::Provisioning => provisioning::parse_callback(body),
        TargetSystem::Billing => billing::parse_callback(body),
        other => Err(format!("{other} does not send callbacks")),
    }
}

/// Why a callback body of `system` did not parse, short and quoting none
/// of the body (the refusal's detail is logged).
fn malformed_body(system: &str, error: &serde_json::Error) -> String {
    format!(
        "{system} callback: {}",
        domain::text::parser_message(&error.to_string())
    )
}

/// Maps a raw external state (from a response, a status query or a
/// callback) of `system` for `purpose` to its outcome class.
pub fn map_state(
    system: TargetSystem,
    purpose: Purpose,
    state: &str,
    code: Option<&str>,
) -> OutcomeClass {
    match system {
        TargetSystem::Inventory => inventory::map_state(purpose, state),
        TargetSystem::Provisioning => provisioning::map_state(purpose, state),
        TargetSystem::Billing => billing::map_state(state, code),
        TargetSystem::Notification => notification::map_state(state),
        TargetSystem::Document => document::map_state(state),
        _ => OutcomeClass::Unclassified,
    }
}

/// A parsed 2xx body: state, code, reference.
pub(crate) struct Body {
    pub(crate) state: String,
    pub(crate) code: Option<String>,
    pub(crate) reference: Option<String>,
}

/// A parsed error body: vendor code and message.
pub(crate) struct ErrorBody {
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
}

/// Maps an HTTP answer of `system` to a class, with the seeds' HTTP table
/// and the system's own status and code tables.
pub(crate) fn map_http(system: TargetSystem, purpose: Purpose, status: u16, body: &[u8]) -> Mapped {
    match status {
        200..=299 => match parse_body(system, body) {
            Some(parsed) => {
                let class = map_state(system, purpose, &parsed.state, parsed.code.as_deref());
                Mapped::new(class, parsed.code.clone().unwrap_or(parsed.state.clone()))
                    .label(Some(parsed.state))
                    .reference(parsed.reference)
            }
            None => Mapped::new(OutcomeClass::SchemaMismatch, format!("HTTP-{status}"))
                .label(Some("unreadable response body".into())),
        },
        400 | 422 => {
            let error = parse_error(system, body);
            let class = match error.code.as_deref() {
                Some(code) => map_error_code(system, code),
                None => OutcomeClass::Unclassified,
            };
            Mapped::new(class, error.code.unwrap_or(format!("HTTP-{status}"))).label(error.message)
        }
        401 | 403 => Mapped::new(
            OutcomeClass::SecurityConfiguration,
            format!("HTTP-{status}"),
        ),
        409 => {
            let error = parse_error(system, body);
            Mapped::new(
                OutcomeClass::DuplicateConflict,
                error.code.unwrap_or(format!("HTTP-{status}")),
            )
            .label(error.message)
        }
        408 | 504 => Mapped::new(OutcomeClass::Unknown, format!("HTTP-{status}")),
        429 | 500 | 502 | 503 => {
            Mapped::new(OutcomeClass::TechnicalRetryable, format!("HTTP-{status}"))
        }
        other => Mapped::new(OutcomeClass::Unclassified, format!("HTTP-{other}")),
    }
}

fn parse_body(system: TargetSystem, body: &[u8]) -> Option<Body> {
    match system {
        TargetSystem::Inventory => inventory::parse_body(body),
        TargetSystem::Provisioning => provisioning::parse_body(body),
        TargetSystem::Billing => billing::parse_body(body),
        TargetSystem::Notification => notification::parse_body(body),
        TargetSystem::Document => document::parse_body(body),
        _ => None,
    }
}

fn parse_error(system: TargetSystem, body: &[u8]) -> ErrorBody {
    let parsed = match system {
        TargetSystem::Inventory => inventory::parse_error(body),
        TargetSystem::Provisioning => provisioning::parse_error(body),
        TargetSystem::Billing => billing::parse_error(body),
        TargetSystem::Notification => notification::parse_error(body),
        TargetSystem::Document => document::parse_error(body),
        _ => None,
    };
    parsed.unwrap_or(ErrorBody {
        code: None,
        message: None,
    })
}

fn map_error_code(system: TargetSystem, code: &str) -> OutcomeClass {
    match system {
        TargetSystem::Inventory => inventory::map_error_code(code),
        TargetSystem::Provisioning => provisioning::map_error_code(code),
        TargetSystem::Billing => billing::map_error_code(code),
        TargetSystem::Notification => notification::map_error_code(code),
        TargetSystem::Document => document::map_error_code(code),
        _ => OutcomeClass::Unclassified,
    }
}

/// The HTTP route of an execute call, and its JSON body.
pub(crate) fn execute_request(
    call: &ExternalCall,
) -> Result<(&'static str, serde_json::Value), PortError> {
    let unsupported = || PortError::Unsupported {
        system: call.system,
        purpose: call.purpose,
    };
    match call.system {
        TargetSystem::Inventory => inventory::execute_request(call).ok_or_else(unsupported),
        TargetSystem::Provisioning => provisioning::execute_request(call).ok_or_else(unsupported),
        TargetSystem::Billing => billing::execute_request(call).ok_or_else(unsupported),
        TargetSystem::Notification => notification::execute_request(call).ok_or_else(unsupported),
        TargetSystem::Document => document::execute_request(call).ok_or_else(unsupported),
        _ => Err(unsupported()),
    }
}

/// The fixed HTTP route of a status query; the idempotency key follows as
/// one encoded path segment (`http::endpoint_url`).
pub(crate) fn status_path(query: &StatusQuery) -> Option<&'static str> {
    match query.system {
        TargetSystem::Inventory => Some(inventory::STATUS_PATH),
        TargetSystem::Provisioning => Some(provisioning::STATUS_PATH),
        TargetSystem::Billing => Some(billing::STATUS_PATH),
        TargetSystem::Notification => Some(notification::STATUS_PATH),
        TargetSystem::Document => Some(document::STATUS_PATH),
        _ => None,
    }
}

/// The request field, or an empty string.
pub(crate) fn field<'a>(request: &'a RequestSnapshot, name: &str) -> &'a str {
    request.fields.get(name).map_or("", String::as_str)
}

/// Replaces the value of every JSON object key that looks sensitive.
pub(crate) fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if domain::handoff::SENSITIVE_FIELD_MARKERS
                    .iter()
                    .any(|m| lower.contains(m))
                {
                    *v = serde_json::Value::String(domain::handoff::REDACTED.into());
                } else {
                    redact_json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// Shortest outbound token masked wherever it appears in evidence: a
/// shorter one would mask ordinary words too.
const MIN_MASKED_SECRET: usize = 8;

/// What an answer says, as an observation keeps it: [`map_http`], with
/// `secret` (the outbound token the call carried) masked wherever the
/// answer echoed it into its code, label or reference. A probe's system
/// echoed `Bearer <token>` into its error code: every viewer of the tenant
/// read it, and the log kept it, while the response evidence beside it
/// was masked.
pub(crate) fn observed(
    system: TargetSystem,
    purpose: Purpose,
    status: u16,
    body: &[u8],
    secret: Option<&str>,
) -> Mapped {
    let mut mapped = map_http(system, purpose, status, body);
    for text in [
        &mut mapped.raw_code,
        &mut mapped.raw_label,
        &mut mapped.external_reference,
    ]
    .into_iter()
    .flatten()
    {
        *text = masked(text, secret);
    }
    mapped
}

/// `text` with `secret` masked wherever it appears; a secret shorter than
/// [`MIN_MASKED_SECRET`] is not looked for.
fn masked(text: &str, secret: Option<&str>) -> String {
    match secret.filter(|s| s.len() >= MIN_MASKED_SECRET) {
        Some(secret) if text.contains(secret) => text.replace(secret, domain::handoff::REDACTED),
        _ => text.to_owned(),
    }
}

/// A redacted, bounded copy of a response body for evidence. `secret`,
/// the outbound token the call carried, is masked wherever the answer
/// echoes it (in a `note`, a `detail`), not only under a sensitive name: a
/// probe's system echoed `Bearer <token>` and it was shown to viewers.
pub(crate) fn response_evidence(body: &[u8], secret: Option<&str>) -> String {
    const MAX: usize = 512;
    let mut text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            redact_json(&mut value);
            value.to_string()
        }
        Err(_) => format!("<{} bytes, not JSON>", body.len()),
    };
    text = masked(&text, secret);
    // Bounded and without invisible characters, as every external word
    // kept as evidence (ADR 0052).
    domain::text::bounded_evidence(&text, MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token the target echoes into its code, label or reference is
    /// masked in the observation (it was kept as echoed).
    #[test]
    fn an_echoed_token_is_masked_in_what_the_observation_keeps() {
        let token = "OUTBOUND-TOKEN-acme-inventory-abcdef";
        let sys = TargetSystem::Inventory;
        let p = Purpose::Reserve;
        let rejected = format!(
            r#"{{"errorCode":"NO_CAPACITY Bearer {token}","message":"rejected token Bearer {token}"}}"#
        );
        let echoed = format!(r#"{{"state":"REJECTED","reservationId":"Bearer {token}"}}"#);
        for (status, body) in [(400, rejected), (200, echoed)] {
            let raw = map_http(sys, p, status, body.as_bytes());
            let kept = observed(sys, p, status, body.as_bytes(), Some(token));
            assert_eq!(kept.class, raw.class, "{body}");
            let said = format!(
                "{:?} {:?} {:?}",
                kept.raw_code, kept.raw_label, kept.external_reference
            );
            assert!(!said.contains(token), "{said}");
            assert!(said.contains(domain::handoff::REDACTED), "{said}");
        }
    }

    #[test]
    fn the_http_table_maps_every_transport_condition() {
        let sys = TargetSystem::Inventory;
        let p = Purpose::Reserve;
        let class = |status: u16| map_http(sys, p, status, b"{}").class;
        assert_eq!(class(401), OutcomeClass::SecurityConfiguration);
        assert_eq!(class(403), OutcomeClass::SecurityConfiguration);
        assert_eq!(class(409), OutcomeClass::DuplicateConflict);
        assert_eq!(class(408), OutcomeClass::Unknown);
        assert_eq!(class(504), OutcomeClass::Unknown);
        assert_eq!(class(429), OutcomeClass::TechnicalRetryable);
        assert_eq!(class(500), OutcomeClass::TechnicalRetryable);
        assert_eq!(class(502), OutcomeClass::TechnicalRetryable);
        assert_eq!(class(503), OutcomeClass::TechnicalRetryable);
        assert_eq!(class(418), OutcomeClass::Unclassified);
        assert_eq!(class(302), OutcomeClass::Unclassified);
        assert_eq!(class(422), OutcomeClass::Unclassified);
        assert_eq!(
            map_http(sys, p, 200, b"not json").class,
            OutcomeClass::SchemaMismatch
        );
    }

    #[test]
    fn evidence_is_redacted_and_bounded() {
        let body = br#"{"token":"abc","nested":{"password":"p"},"ok":"yes"}"#;
        let shown = response_evidence(body, None);
        assert!(
            !shown.contains("abc") && !shown.contains("\"p\""),
            "{shown}"
        );
        assert!(shown.contains("yes"));
        // Other common names of secrets (an `apiKey` was shown in clear).
        let body = br#"{"apiKey":"k1","api_key":"k2","X-Api-Key":"k3","credentials":"c","sessionId":"s","privateKey":"pk","private_network":"vlan-7","reservationKey":"r-1"}"#;
        let shown = response_evidence(body, None);
        for secret in ["k1", "k2", "k3", "\"c\"", "\"s\"", "pk"] {
            assert!(!shown.contains(secret), "{secret}: {shown}");
        }
        assert!(
            shown.contains("r-1"),
            "an idempotency key is no secret: {shown}"
        );
        assert!(
            shown.contains("vlan-7"),
            "a private network is no secret: {shown}"
        );
        let long = format!("{{\"x\":\"{}\"}}", "a".repeat(2_000));
        assert!(response_evidence(long.as_bytes(), None).len() < 600);
        // The call's own token, echoed anywhere in the answer.
        let body = br#"{"state":"PENDING","note":"Bearer OUTBOUND-INV-TOKEN-1","detail":["OUTBOUND-INV-TOKEN-1"]}"#;
        let shown = response_evidence(body, Some("OUTBOUND-INV-TOKEN-1"));
        assert!(!shown.contains("OUTBOUND-INV"), "{shown}");
        assert!(shown.contains("PENDING"), "{shown}");
    }
}
