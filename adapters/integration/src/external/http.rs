//! The HTTP client side of the ports: one pooled client per tenant and
//! system with the configured connect and read timeouts, the bearer token,
//! the idempotency key header, and the mapping of transport failures.
//!
//! | transport condition | class |
//! | --- | --- |
//! | connection refused / connect timeout (never sent) | `TechnicalRetryable` |
//! | read timeout (sent, answer lost) | `Unknown` |
//! | connection lost after sending, body unreadable | `Unknown` |

use domain::capability::{Capabilities, Capability};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::idempotency::TargetSystem;
use domain::outcome::OutcomeClass;

use super::breaker::CircuitBreaker;
use super::{
    execute_request, map_http, redact_json, response_evidence, status_path, BoxFuture, CallOutcome,
    Evidence, ExternalCall, HandoffPort, Mapped, PortError, StatusAnswer, StatusQuery,
};
use crate::config::{ConfigError, SystemsConfig};
use application::clock::SharedClock;

/// Header carrying the business idempotency key on every execute call.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Header carrying the correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

struct Endpoint {
    client: reqwest::Client,
    base_url: reqwest::Url,
    token: Option<String>,
    enabled: bool,
    breaker: CircuitBreaker,
}

/// Every configured system of every tenant, reachable over HTTP.
pub struct HttpSystems {
    endpoints: HashMap<(String, TargetSystem), Endpoint>,
    capabilities: HashMap<String, Capabilities>,
    clock: SharedClock,
}

impl std::fmt::Debug for HttpSystems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSystems")
            .field("endpoints", &self.endpoints.len())
            .finish()
    }
}

/// Parses a configured base URL once, at start-up.
/// One tenant's client for a synchronous system (CRM, documents): the
/// pooled client with its timeouts, the base URL and the bearer token.
pub(crate) struct SyncEndpoint {
    pub(crate) client: reqwest::Client,
    pub(crate) base_url: reqwest::Url,
    pub(crate) token: Option<String>,
}

/// The endpoints of one synchronous system, by tenant: every tenant that
/// configures it enabled.
pub(crate) struct TenantEndpoints(std::collections::HashMap<String, SyncEndpoint>);

impl TenantEndpoints {
    /// Validates `config` and builds a client per tenant with `system`
    /// enabled.
    pub(crate) fn from_config(
        config: &SystemsConfig,
        system: TargetSystem,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut endpoints = std::collections::HashMap::new();
        for (tenant, c) in config.tenants_with(system) {
            if !c.enabled {
                continue;
            }
            let key = format!("tenants.{tenant}.systems.{system}");
            endpoints.insert(
                tenant.to_owned(),
                SyncEndpoint {
                    client: build_client(&key, c.connect_timeout_ms, c.read_timeout_ms)?,
                    base_url: parse_base_url(&key, &c.base_url)?,
                    token: c.outbound_token.clone(),
                },
            );
        }
        Ok(Self(endpoints))
    }

    /// The tenant's endpoint, if configured and enabled.
    pub(crate) fn get(&self, tenant: &str) -> Option<&SyncEndpoint> {
        self.0.get(tenant)
    }

    /// How many tenants have one.
    pub(crate) fn tenants(&self) -> usize {
        self.0.len()
    }
}

pub(crate) fn parse_base_url(key: &str, text: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(text).map_err(|e| ConfigError {
        key: format!("{key}.base_url"),
        problem: format!("not a URL: {e}"),
    })?;
    let refused = |problem: &str| ConfigError {
        key: format!("{key}.base_url"),
        problem: problem.to_owned(),
    };
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(refused("must be an http:// or https:// URL"));
    }
    if text.ends_with('/') {
        return Err(refused("must have no trailing slash"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // A secret here would be in every log line that shows the URL.
        return Err(refused(
            "must carry no user or password: use outbound_token for credentials",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refused(
            "must have no query or fragment: each call's path is added to it",
        ));
    }
    Ok(url)
}

/// An id that cannot be one path segment: empty, `.` or `..` (which URL
/// normalisation would drop or resolve, changing the resource addressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotASegment;

/// The URL of `path` (a fixed route of ours, e.g. `/crm/v2/accounts`) under
/// `base`, followed by each of `ids` as exactly one percent-encoded path
/// segment. Outbound URLs are only ever built here, never by formatting
/// strings: an id such as `../../admin/purge?confirm=yes` becomes the one
/// segment `..%2F..%2Fadmin%2Fpurge%3Fconfirm=yes`, never a path or query.
///
/// # Errors
/// [`NotASegment`] for an empty, `.` or `..` id.
pub(crate) fn endpoint_url(
    base: &reqwest::Url,
    path: &str,
    ids: &[&str],
) -> Result<reqwest::Url, NotASegment> {
    if ids.iter().any(|id| matches!(*id, "" | "." | "..")) {
        return Err(NotASegment);
    }
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments
            .pop_if_empty()
            .extend(path.split('/').filter(|part| !part.is_empty()))
            .extend(ids);
    }
    Ok(url)
}

/// Builds a client with the given timeouts.
pub(crate) fn build_client(
    key: &str,
    connect_timeout_ms: u64,
    read_timeout_ms: u64,
) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(connect_timeout_ms))
        .timeout(Duration::from_millis(read_timeout_ms))
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| ConfigError {
            key: key.to_owned(),
            problem: format!("cannot build an HTTP client: {e}"),
        })
}

impl HttpSystems {
    /// Clients for every system of every tenant in `config`.
    ///
    /// # Errors
    /// A [`ConfigError`] when the table is invalid.
    pub fn from_config(config: &SystemsConfig, clock: SharedClock) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut endpoints = HashMap::new();
        for (tenant, systems) in &config.tenants {
            for (name, c) in &systems.systems {
                let Some(system) = crate::config::parse_system(name) else {
                    continue;
                };
                let key = format!("tenants.{tenant}.systems.{name}");
                endpoints.insert(
                    (tenant.clone(), system),
                    Endpoint {
                        client: build_client(&key, c.connect_timeout_ms, c.read_timeout_ms)?,
                        base_url: parse_base_url(&key, &c.base_url)?,
                        token: c.outbound_token.clone(),
                        enabled: c.enabled,
                        breaker: CircuitBreaker::new(
                            c.retry.circuit_failure_threshold,
                            c.retry.circuit_open_ms,
                        ),
                    },
                );
            }
        }
        let capabilities = config
            .tenants
            .keys()
            .map(|tenant| (tenant.clone(), config.capabilities(tenant)))
            .collect();
        Ok(Self {
            endpoints,
            capabilities,
            clock,
        })
    }

    fn endpoint(&self, tenant: &str, system: TargetSystem) -> Result<&Endpoint, PortError> {
        let endpoint = self
            .endpoints
            .get(&(tenant.to_owned(), system))
            .ok_or_else(|| PortError::NotConfigured {
                tenant: tenant.to_owned(),
                system,
            })?;
        if !endpoint.enabled {
            return Err(PortError::Disabled {
                tenant: tenant.to_owned(),
                system,
            });
        }
        Ok(endpoint)
    }

    /// True while the circuit of `tenant`'s `system` is open.
    pub fn circuit_open(&self, tenant: &str, system: TargetSystem) -> bool {
        self.endpoints
            .get(&(tenant.to_owned(), system))
            .is_some_and(|e| e.breaker.is_open(self.clock.now_ms()))
    }

    async fn execute_call(&self, call: &ExternalCall) -> Result<CallOutcome, PortError> {
        let endpoint = self.endpoint(call.tenant.as_str(), call.system)?;
        // A request is never sent for a capability the registry turns off
        // (acceptance refuses such lines; this covers a change since).
        let capability = Capability::of_purpose(call.purpose);
        if !self
            .capabilities
            .get(call.tenant.as_str())
            .is_some_and(|c| c.enabled(capability))
        {
            return Err(PortError::CapabilityDisabled {
                tenant: call.tenant.to_string(),
                capability,
            });
        }
        let (path, body) = execute_request(call)?;
        // The breaker was consulted by `ready` before the dispatch was
        // recorded; a recorded dispatch always makes its one call.
        let mut shown = body.clone();
        redact_json(&mut shown);
        let started = Instant::now();
        let url = endpoint_url(&endpoint.base_url, path, &[]).map_err(|NotASegment| {
            PortError::Unsupported {
                system: call.system,
                purpose: call.purpose,
            }
        })?;
        let mut request = endpoint
            .client
            .post(url)
            .header(IDEMPOTENCY_HEADER, &call.idempotency_key)
            .header(CORRELATION_HEADER, &call.correlation_id)
            .json(&body);
        if let Some(token) = &endpoint.token {
            request = request.bearer_auth(token);
        }
        let (mapped, http_status, response) = match request.send().await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                match answer.bytes().await {
                    Ok(bytes) => (
                        map_http(call.system, call.purpose, status, &bytes),
                        Some(status),
                        Some(response_evidence(&bytes)),
                    ),
                    Err(e) => (transport(&e), Some(status), None),
                }
            }
            Err(e) => (transport(&e), None, None),
        };
        endpoint.breaker.record(mapped.class, self.clock.now_ms());
        Ok(outcome(
            mapped,
            Evidence {
                operation: "execute".into(),
                http_status,
                request: shown.to_string(),
                response,
                latency_ms: elapsed_ms(started),
            },
        ))
    }

    async fn status_call(&self, query: &StatusQuery) -> Result<StatusAnswer, PortError> {
        let endpoint = self.endpoint(query.tenant.as_str(), query.system)?;
        // The key is one encoded segment; a key that cannot be one (never
        // the case for derived keys) is a status this port cannot ask.
        let url = status_path(query)
            .and_then(|path| endpoint_url(&endpoint.base_url, path, &[&query.idempotency_key]).ok())
            .ok_or(PortError::Unsupported {
                system: query.system,
                purpose: query.purpose,
            })?;
        let started = Instant::now();
        let mut evidence = Evidence {
            operation: "status".into(),
            request: format!("GET {}", url.path()),
            ..Evidence::default()
        };
        let mut request = endpoint.client.get(url);
        if let Some(token) = &endpoint.token {
            request = request.bearer_auth(token);
        }
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(e) => {
                evidence.latency_ms = elapsed_ms(started);
                return Ok(StatusAnswer::Unavailable(outcome(transport(&e), evidence)));
            }
        };
        let status = answer.status().as_u16();
        evidence.http_status = Some(status);
        let bytes = match answer.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                evidence.latency_ms = elapsed_ms(started);
                return Ok(StatusAnswer::Unavailable(outcome(transport(&e), evidence)));
            }
        };
        evidence.latency_ms = elapsed_ms(started);
        evidence.response = Some(response_evidence(&bytes));
        if status == 404 {
            return Ok(StatusAnswer::NotFound(evidence));
        }
        let mapped = map_http(query.system, query.purpose, status, &bytes);
        if (200..300).contains(&status) && mapped.class != OutcomeClass::SchemaMismatch {
            Ok(StatusAnswer::Known(outcome(mapped, evidence)))
        } else {
            Ok(StatusAnswer::Unavailable(outcome(mapped, evidence)))
        }
    }
}

impl HandoffPort for HttpSystems {
    fn ready(&self, tenant: &str, system: TargetSystem) -> Result<(), PortError> {
        let endpoint = self.endpoint(tenant, system)?;
        endpoint
            .breaker
            .admit(self.clock.now_ms())
            .map_err(|retry_in_ms| PortError::CircuitOpen {
                system,
                retry_in_ms,
            })
    }

    fn execute<'a>(
        &'a self,
        call: &'a ExternalCall,
    ) -> BoxFuture<'a, Result<CallOutcome, PortError>> {
        Box::pin(self.execute_call(call))
    }

    fn status<'a>(
        &'a self,
        query: &'a StatusQuery,
    ) -> BoxFuture<'a, Result<StatusAnswer, PortError>> {
        Box::pin(self.status_call(query))
    }
}

fn outcome(mapped: Mapped, evidence: Evidence) -> CallOutcome {
    CallOutcome {
        class: mapped.class,
        raw_code: mapped.raw_code,
        raw_label: mapped.raw_label,
        external_reference: mapped.external_reference,
        evidence,
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A transport failure: never sent is retryable, anything after sending is
/// ambiguous.
pub(crate) fn transport(error: &reqwest::Error) -> Mapped {
    if error.is_connect() {
        Mapped::new(OutcomeClass::TechnicalRetryable, "CONNECT_FAILED")
    } else if error.is_timeout() {
        Mapped::new(OutcomeClass::Unknown, "TIMEOUT")
    } else {
        Mapped::new(OutcomeClass::Unknown, "TRANSPORT")
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    fn base(text: &str) -> reqwest::Url {
        parse_base_url("tenants.t.systems.crm", text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_hostile_id_becomes_one_encoded_path_segment() {
        let url = endpoint_url(
            &base("http://127.0.0.1:9000"),
            "/crm/v2/accounts",
            &["../../../admin/purge?confirm=yes"],
        );
        let url = url.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/crm/v2/accounts/..%2F..%2F..%2Fadmin%2Fpurge%3Fconfirm=yes"
        );
        assert_eq!(url.query(), None);
        assert_eq!(url.path_segments().map(Iterator::count), Some(4));
        for hostile in ["a#frag", "a b", "a%2Fb", "\u{0}", "caf\u{e9}"] {
            let url = endpoint_url(&base("http://h:1/p"), "/s", &[hostile])
                .unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(url.query(), None, "{hostile:?}");
            assert_eq!(url.fragment(), None, "{hostile:?}");
            assert_eq!(url.path_segments().map(Iterator::count), Some(3), "{url}");
        }
        for dots in ["", ".", ".."] {
            assert_eq!(
                endpoint_url(&base("http://h:1"), "/s", &[dots]),
                Err(NotASegment)
            );
        }
    }

    #[test]
    fn plain_keys_and_base_paths_are_kept() {
        let url = endpoint_url(
            &base("https://crm.example/api"),
            "/inventory/v1/reservation-status",
            &["t1:o1:l1:inventory:reserve:1"],
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            url.as_str(),
            "https://crm.example/api/inventory/v1/reservation-status/t1:o1:l1:inventory:reserve:1"
        );
        for refused in [
            "mailto:x@y",
            "not a url",
            "http://exa mple.com",
            "https://user:secret@crm.example",
            "https://user@crm.example",
            "https://crm.example/api?tenant=x",
            "https://crm.example/api#x",
            "https://crm.example/api/",
        ] {
            assert!(parse_base_url("k", refused).is_err(), "{refused}");
        }
    }
}
