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
    execute_request, observed, redact_json, status_path, BoxFuture, CallOutcome, Evidence,
    ExternalCall, HandoffPort, Mapped, PortError, StatusAnswer, StatusQuery,
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

/// Most bytes of an external system's answer the platform reads: what
/// it needs of an answer is a few fields, so a longer body is unusable and
/// the rest of it is never read (a 2 GiB or endless body held the whole of
/// itself in memory).
pub(crate) const MAX_ANSWER_BYTES: usize = 1 << 20;

/// An answer's body, read up to [`MAX_ANSWER_BYTES`].
pub(crate) enum Body {
    /// The whole body.
    Whole(Vec<u8>),
    /// A body longer than [`MAX_ANSWER_BYTES`]: not read past them.
    TooLong,
}

impl Body {
    /// The bytes to map and keep as evidence: none for a body too long to
    /// use, which then maps as an answer without a usable body.
    pub(crate) fn usable(&self) -> &[u8] {
        match self {
            Self::Whole(bytes) => bytes,
            Self::TooLong => &[],
        }
    }

    /// What the evidence shows of the body ([`super::response_evidence`],
    /// with `secret` masked, or that it was too long to read).
    pub(crate) fn evidence(&self, secret: Option<&str>) -> String {
        match self {
            Self::Whole(bytes) => super::response_evidence(bytes, secret),
            Self::TooLong => format!("<more than {MAX_ANSWER_BYTES} bytes: not read>"),
        }
    }
}

/// Reads `answer`'s body up to [`MAX_ANSWER_BYTES`], chunk by chunk.
///
/// # Errors
/// The transport's error while reading (a reset, the read timeout).
pub(crate) async fn read_body(mut answer: reqwest::Response) -> Result<Body, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Ok(Body::TooLong);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body::Whole(bytes))
}

/// Builds a client with the given timeouts. It follows no redirect: a
/// request goes to the configured system only, and is sent once per send
/// (a redirect loop resent one request eleven times under one key; a
/// redirect to another host was answered for the system); a 3xx answer is
/// mapped like any other status.
pub(crate) fn build_client(
    key: &str,
    connect_timeout_ms: u64,
    read_timeout_ms: u64,
) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(connect_timeout_ms))
        .timeout(Duration::from_millis(read_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
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
                match read_body(answer).await {
                    Ok(body) => (
                        observed(
                            call.system,
                            call.purpose,
                            status,
                            body.usable(),
                            endpoint.token.as_deref(),
                        ),
                        Some(status),
                        Some(body.evidence(endpoint.token.as_deref())),
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
        let body = match read_body(answer).await {
            Ok(body) => body,
            Err(e) => {
                evidence.latency_ms = elapsed_ms(started);
                return Ok(StatusAnswer::Unavailable(outcome(transport(&e), evidence)));
            }
        };
        let bytes = body.usable();
        evidence.latency_ms = elapsed_ms(started);
        evidence.response = Some(body.evidence(endpoint.token.as_deref()));
        if status == 404 {
            return Ok(StatusAnswer::NotFound(evidence));
        }
        let mapped = observed(
            query.system,
            query.purpose,
            status,
            bytes,
            endpoint.token.as_deref(),
        );
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod answer_tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fake system on loopback: each connection gets `head`, then `body`
    /// repeated `repeat` times (`usize::MAX`: until the client goes);
    /// counts the requests it read.
    async fn fake(head: String, body: Vec<u8>, repeat: usize) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let (head, body) = (head.clone(), body.clone());
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..repeat {
                        if socket.write_all(&body).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (address, requests)
    }

    /// A redirect is an answer, not a hop: the other host hears nothing and
    /// the request is sent once (a loop sent it eleven times, a redirect
    /// elsewhere was answered for the system).
    #[tokio::test]
    async fn a_redirect_is_answered_not_followed() {
        let (elsewhere, heard) = fake(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n".into(),
            b"{}".to_vec(),
            1,
        )
        .await;
        let (system, sent) = fake(
            format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/x\r\ncontent-length: 0\r\n\r\n"),
            Vec::new(),
            1,
        )
        .await;
        let client = build_client("k", 1_000, 5_000).unwrap();
        let answer = client
            .post(format!("{system}/x"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 307);
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        assert_eq!(heard.load(Ordering::SeqCst), 0, "the redirect was followed");
    }

    /// A body past the bound is not read on (an endless one used to be read
    /// until the read timeout, into memory); one within it is read whole.
    #[tokio::test]
    async fn a_body_past_the_bound_is_not_read_on() {
        let chunk = vec![b'x'; 64 * 1024];
        let (endless, _) = fake(
            "HTTP/1.1 200 OK\r\ncontent-length: 2147483648\r\n\r\n".into(),
            chunk,
            usize::MAX,
        )
        .await;
        let client = build_client("k", 1_000, 60_000).unwrap();
        let answer = client.get(&endless).send().await.unwrap();
        let body = read_body(answer).await.unwrap();
        assert!(matches!(body, Body::TooLong));
        assert!(body.usable().is_empty());
        assert!(
            body.evidence(None).contains("not read"),
            "{}",
            body.evidence(None)
        );

        let (small, _) = fake(
            "HTTP/1.1 200 OK\r\ncontent-length: 14\r\n\r\n".into(),
            br#"{"state":"OK"}"#.to_vec(),
            1,
        )
        .await;
        let body = read_body(client.get(&small).send().await.unwrap())
            .await
            .unwrap();
        assert_eq!(body.usable(), br#"{"state":"OK"}"#);
    }
}
