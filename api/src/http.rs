//! The HTTP surface: GraphQL over POST, GraphiQL, the WebSocket endpoint,
//! health, readiness and metrics, with body-size and time limits.
//!
//! Every 4xx answer is a JSON GraphQL error body
//! (`{"errors":[{"message":...,"extensions":{"code":...}}]}`), never a
//! plain-text or `Debug` rendering. WebSocket messages are capped at the
//! same size as HTTP bodies; [`crate::websocket`] holds each connection to
//! graphql-transport-ws.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{BatchRequest, Data, Executor, ParseRequestError};
use async_graphql_axum::GraphQLResponse;
use axum::body::{Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Query, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;

use crate::auth::{Authenticator, Role};
use crate::graphql::error::ApiError;
use crate::graphql::limits::LimitedSchema;
use crate::metrics;
use crate::platform::Platform;
use crate::websocket;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The schema (with the platform attached), behind the per-operation
    /// limits.
    pub schema: LimitedSchema,
    /// The platform.
    pub platform: Arc<Platform>,
    /// Credentials.
    pub auth: Arc<Authenticator>,
    /// Most operations in one batched request.
    pub max_batch: usize,
    /// Largest WebSocket message (and frame) in bytes: the HTTP body limit.
    pub max_message_bytes: usize,
    /// How long a WebSocket may stay open without its `connection_init`.
    pub ws_init_wait: Duration,
    /// Open WebSocket connections per credential, bounded.
    pub ws_connections: Arc<websocket::ConnectionCounts>,
    /// Readiness bound: projector lag at most this many events.
    pub ready_max_lag: u64,
    /// The external-system runtime's figures (the adapters' counters, the
    /// relay, consumer lag), read into `/metrics`' one registry at each
    /// scrape.
    pub extra_metrics: Arc<dyn Collector>,
    /// Turns true when the server starts stopping: every WebSocket is then
    /// closed with 1012 (service restart) so its client reconnects.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// The router, with limits. `extra` routes (callbacks) are merged as-is.
pub fn router(state: AppState, max_body_bytes: usize, timeout: Duration, extra: Router) -> Router {
    let app = Router::new()
        .route("/", get(graphql_get).post(graphql))
        .route("/graphql", get(graphql_get).post(graphql))
        .route("/ws", get(websocket))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(crate::graphiql::routes())
        .merge(crate::console::routes())
        .with_state(state);
    app.merge(extra)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                within_deadline(request, next, timeout, max_body_bytes)
            },
        ))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(axum::middleware::from_fn(client_errors))
}

/// The path under which external systems post callbacks
/// (`/callbacks/{system}`); a refusal there, or at the path itself, is
/// worded in the callback answer's shape.
const CALLBACK_PATH: &str = "/callbacks";

/// Words every client error as JSON once ([`json_client_errors`]); on the
/// callback path in the callback answer's own shape, `{"error": "<reason>"}`
/// (what a sender parses), never a GraphQL envelope: a body over the
/// server's limit, a body that does not arrive, a wrong method or path.
async fn client_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path();
    let callback = path
        .strip_prefix(CALLBACK_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    let response = json_client_errors(next.run(request).await).await;
    if callback {
        callback_shape(response).await
    } else {
        response
    }
}

/// A GraphQL error envelope answered on the callback path, reworded as the
/// callback answer's shape with a reason named by its status. The inbox's
/// own answers (receipts, `{"error": ...}`) pass unchanged.
async fn callback_shape(response: Response) -> Response {
    let status = response.status();
    if status.is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return refused_callback(status);
    };
    let is_envelope = serde_json::from_slice::<serde_json::Value>(&bytes)
        .is_ok_and(|v| v.get("errors").is_some());
    if is_envelope {
        refused_callback(status)
    } else {
        Response::from_parts(parts, axum::body::Body::from(bytes))
    }
}

/// `{"error": "<reason>"}` of `status`, for the callback path.
fn refused_callback(status: StatusCode) -> Response {
    let reason = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        s if s.is_server_error() => "unavailable",
        _ => "malformed",
    };
    (status, axum::Json(serde_json::json!({ "error": reason }))).into_response()
}

/// The request timeout, counted from the request's head: the body must
/// arrive within it, or the answer is a 408 `TIMEOUT` that says nothing
/// was run (the request was never read whole, so no command can have
/// started); the answer must be made within what is left, or it is an
/// empty 503 (which [`json_client_errors`] words). The body is read whole
/// here, before any handler, so a handler never waits on a client.
async fn within_deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    timeout: Duration,
    max_body_bytes: usize,
) -> Response {
    let started = tokio::time::Instant::now();
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(timeout, axum::body::to_bytes(body, max_body_bytes)).await
    {
        Ok(Ok(body)) => body,
        Ok(Err(error)) if over_limit(&error) => {
            return refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body is over the server's limit of {max_body_bytes} bytes"),
            )
        }
        Ok(Err(_)) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "the request body ended before its declared length or was malformed; nothing \
                 was run",
            )
        }
        Err(_) => {
            return refused(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive within the server's request timeout; nothing \
                 was run: send the request again",
            )
        }
    };
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(body));
    match tokio::time::timeout_at(started + timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Whether a body read failed on a length limit (the declared length was
/// within it, the body was not).
fn over_limit(error: &axum::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = next {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        next = error.source();
    }
    false
}

/// A GraphQL-shaped error body: `data: null` and one error of `message`
/// with `extensions.code` = `code`.
pub(crate) fn error_body(message: &str, code: &str) -> serde_json::Value {
    serde_json::json!({
        "data": null,
        "errors": [{"message": message, "extensions": {"code": code}}],
    })
}

/// The `extensions.code` of a 4xx status.
fn client_error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::REQUEST_TIMEOUT => "TIMEOUT",
        _ => "VALIDATION",
    }
}

/// Rewrites every 4xx answer that is not already JSON (axum's and
/// tower-http's rejections: 400, 404, 405, 413, 415, ...) into a JSON error
/// body whose message is the status's reason, so no plain-text or `Debug`
/// rendering of an internal type reaches a client; the request timeout's
/// empty 503 becomes a `TIMEOUT` error that says a retry is safe.
async fn json_client_errors(response: Response) -> Response {
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE && response.body().size_hint().exact() == Some(0) {
        // The request timeout's answer (health endpoints say why in text).
        let body = error_body(crate::graphql::limits::TIMED_OUT, "TIMEOUT");
        return (status, axum::Json(body)).into_response();
    }
    if !status.is_client_error() {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with(GRAPHQL_RESPONSE_JSON)
        });
    if is_json {
        return response;
    }
    let message = status
        .canonical_reason()
        .unwrap_or("client error")
        .to_ascii_lowercase();
    let body = error_body(&message, client_error_code(status));
    (status, axum::Json(body)).into_response()
}

/// A JSON error answer of `status` that says why (its code from the status).
fn refused(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(error_body(message, client_error_code(status))),
    )
        .into_response()
}

/// The rejection of a GraphQL request body that does not parse: 400 (413
/// when too large) with a JSON error naming what is wrong, in the error's
/// `Display` form (never its `Debug` form).
struct RequestRejection(ParseRequestError);

impl IntoResponse for RequestRejection {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            ParseRequestError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        let message = request_problem(&self.0);
        (status, axum::Json(error_body(&message, "VALIDATION"))).into_response()
    }
}

/// What is wrong with a request body, in the protocol's words: serde's
/// refusal of a body of another shape names the engine's Rust type
/// (`untagged enum BatchRequest`), so that one is said in full.
fn request_problem(error: &ParseRequestError) -> String {
    let said = error.to_string();
    if said.contains("untagged enum") {
        "malformed GraphQL request: the body is a JSON object with a string \"query\" \
         (an object \"variables\" and a string \"operationName\" optional), or an array of them"
            .to_owned()
    } else {
        format!("malformed GraphQL request: {said}")
    }
}

/// A 415 for a body the client says is encoded: the server does not
/// decode request bodies, so a compressed one would be read as bytes that
/// are not JSON and a plain one labelled compressed read as if unlabelled.
/// `identity` is no encoding.
fn encoded_body(headers: &HeaderMap) -> Option<Response> {
    let encoded = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("?").split(','))
        .any(|coding| !coding.trim().eq_ignore_ascii_case("identity"));
    encoded.then(|| {
        refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request bodies are not decoded: send the body without a Content-Encoding",
        )
    })
}

/// The request's one `Authorization` header; none when it has several
/// (a request carries one credential: which of two counts is not the
/// server's guess, and a proxy that checked the other must not be
/// bypassed).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut given = headers.get_all(header::AUTHORIZATION).iter();
    let first = given.next()?;
    if given.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

fn unauthenticated() -> Response {
    let error = ApiError::Unauthenticated;
    let body = error_body(&error.message(), error.code());
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

/// The operation a request runs, as metrics and logs name it: its
/// `operationName` when its document defines an operation of that name,
/// `undefined` when it does not (the name is the client's: any string
/// could otherwise take a metrics label), empty when none is given. The
/// document comes from the schema's document cache (which the execution
/// then finds already parsed), so a request is parsed once.
/// Reads an empty `operationName` as none.
fn drop_empty_operation_name(request: &mut async_graphql::Request) {
    if request.operation_name.as_deref() == Some("") {
        request.operation_name = None;
    }
}

fn operation_name(schema: &LimitedSchema, request: &mut BatchRequest) -> String {
    match request {
        BatchRequest::Single(r) => match r.operation_name.clone() {
            None => String::new(),
            Some(name) => {
                // Sets the request's parsed document (a refusal is the
                // execution's to answer).
                let _ = schema.mutation_fields(r);
                let defined = r.parsed_query().is_ok_and(|document| {
                    document
                        .operations
                        .iter()
                        .any(|(defined, _)| defined.is_some_and(|n| n.as_str() == name))
                });
                if defined {
                    name
                } else {
                    "undefined".to_owned()
                }
            }
        },
        BatchRequest::Batch(rs) => format!("batch[{}]", rs.len()),
    }
}

/// A 400 with a `VALIDATION` error saying `message`.
fn refuse(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(error_body(&message, "VALIDATION")),
    )
        .into_response()
}

/// The parameters of a GraphQL request sent with GET (GraphQL over HTTP):
/// `query`, `operationName`, and `variables` as JSON text.
#[derive(serde::Deserialize)]
pub struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
}

/// Whether `query` declares a mutation or a subscription (a document that
/// does not parse declares neither: running it reports why).
fn declares_a_write(query: &str) -> bool {
    async_graphql::parser::parse_query(query).is_ok_and(|document| {
        document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty != async_graphql::parser::types::OperationType::Query)
    })
}

/// `GET /graphql` (and `/`): with a `query` parameter, runs it as `POST`
/// would (same credential, limits and answers); a document that declares a
/// mutation or a subscription is refused with 405, as GET must change
/// nothing. A browser (`Accept: text/html`), or a request without a
/// `query` parameter, gets the GraphiQL page.
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let Some(query) = params.query.filter(|_| !browser) else {
        return crate::graphiql::page().await.into_response();
    };
    let Some(principal) = state.auth.authenticate_header(bearer(&headers)) else {
        state.platform.metrics.auth_failure();
        return unauthenticated();
    };
    if query.trim().is_empty() {
        return refuse("the request holds no query".to_owned());
    }
    if declares_a_write(&query) {
        let body = error_body(
            "a mutation or subscription is sent with POST (or over /ws), never with GET",
            "VALIDATION",
        );
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            axum::Json(body),
        )
            .into_response();
    }
    let variables = match params.variables.as_deref().map(serde_json::from_str) {
        None => async_graphql::Variables::default(),
        Some(Ok(value @ serde_json::Value::Object(_))) => {
            async_graphql::Variables::from_json(value)
        }
        Some(Ok(serde_json::Value::Null)) => async_graphql::Variables::default(),
        Some(Ok(_)) => return refuse("variables: expected a JSON object".to_owned()),
        Some(Err(e)) => return refuse(format!("variables: not JSON: {e}")),
    };
    let mut request = async_graphql::Request::new(query).variables(variables);
    if let Some(name) = params.operation_name.filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    let media_type = answer_media_type(&headers);
    execute(&state, principal, BatchRequest::Single(request), media_type).await
}

/// `POST /graphql`. The body is buffered by axum's `Bytes` first, so a body
/// over the limit is a 413 whether it declared its length or came chunked
/// (async-graphql's own extractor turns the chunked case into a 400).
async fn graphql(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(principal) = state.auth.authenticate_header(bearer(&headers)) else {
        state.platform.metrics.auth_failure();
        return unauthenticated();
    };
    if let Some(refusal) = encoded_body(&headers) {
        return refusal;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let mut request = match async_graphql::http::receive_batch_body(
        content_type,
        body.as_ref(),
        async_graphql::http::MultipartOptions::default(),
    )
    .await
    {
        Ok(request) => request,
        Err(error) => return RequestRejection(error).into_response(),
    };
    // An empty `operationName` (some clients send `""` for none) names no
    // operation: "Unknown operation named \"\"" helped nobody.
    match &mut request {
        BatchRequest::Single(r) => drop_empty_operation_name(r),
        BatchRequest::Batch(requests) => requests.iter_mut().for_each(drop_empty_operation_name),
    }
    // `[]` and `{}` both parse as one request with an empty query.
    let no_query = |r: &async_graphql::Request| r.query.trim().is_empty();
    match &request {
        BatchRequest::Single(r) if no_query(r) => {
            return refuse("the request holds no query".to_owned());
        }
        BatchRequest::Batch(requests) if requests.iter().any(no_query) => {
            return refuse("every operation of a batch needs a query".to_owned());
        }
        _ => {}
    }
    if let BatchRequest::Batch(requests) = &mut request {
        if requests.len() > state.max_batch {
            return refuse(format!("at most {} operations per batch", state.max_batch));
        }
        // Mutation fields per request in total: a batch of operations under
        // the per-operation limit must not multiply it. An operation over
        // its own limit is refused in its own response.
        let limit = state.schema.limits().max_mutations;
        let total: usize = requests
            .iter_mut()
            .filter_map(|r| state.schema.mutation_fields(r).ok())
            .sum();
        if total > limit {
            return refuse(format!(
                "at most {limit} mutation fields per request, over all operations of a batch"
            ));
        }
    }
    execute(&state, principal, request, answer_media_type(&headers)).await
}

/// The GraphQL-over-HTTP media type.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The media type of a GraphQL answer: `application/graphql-response+json`
/// when the request's `Accept` lists it, else `application/json`, which
/// a client sending no `Accept`, or `Accept: application/json`, reads
/// (GraphQL over HTTP).
fn answer_media_type(headers: &HeaderMap) -> &'static str {
    let listed = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media_type = parts.next()?;
            // A range the client refuses (`q=0`) is not one it accepts.
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (!refused).then_some(media_type)
        })
        .any(|media_type| media_type.eq_ignore_ascii_case(GRAPHQL_RESPONSE_JSON));
    if listed {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    }
}

/// Runs an authenticated, checked request: in a span naming the tenant,
/// role and operation, with the request metrics.
async fn execute(
    state: &AppState,
    principal: crate::auth::Principal,
    mut request: BatchRequest,
    media_type: &'static str,
) -> Response {
    let operation = operation_name(&state.schema, &mut request);
    let span = tracing::info_span!(
        "graphql",
        tenant = %principal.tenant,
        role = %principal.role,
        operation = %operation,
    );
    let started = Instant::now();
    let credential = format!("{}/{}", principal.tenant, principal.name);
    let links =
        crate::graphql::links::for_request(state.platform.clone(), principal.tenant.clone());
    let response = state
        .schema
        .execute_batch(request.data(principal).data(links))
        .instrument(span)
        .await;
    let ok = response.is_ok();
    state
        .platform
        .metrics
        .observe_request(&credential, &operation, ok, started.elapsed());
    let refused = media_type == GRAPHQL_RESPONSE_JSON && is_request_error(&response);
    let mut answer = GraphQLResponse::from(response).into_response();
    answer
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    if refused {
        *answer.status_mut() = StatusCode::BAD_REQUEST;
    }
    answer
}

/// Whether `response` is a request error: one operation that ran nothing
/// (no data) because the request was invalid (every error `VALIDATION`,
/// none at a field's path). GraphQL over HTTP answers such a response
/// with a 4xx status to a client that accepts
/// `application/graphql-response+json`; a client of `application/json`
/// reads it with 200, as before.
fn is_request_error(response: &async_graphql::BatchResponse) -> bool {
    let async_graphql::BatchResponse::Single(response) = response else {
        return false;
    };
    let validation = |error: &async_graphql::ServerError| {
        error.path.is_empty()
            && error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .is_some_and(|code| *code == async_graphql::Value::from("VALIDATION"))
    };
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(validation)
}

async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    protocol: websocket::Protocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = headers
        .contains_key(header::AUTHORIZATION)
        .then(|| state.auth.authenticate_header(bearer(&headers)));
    let auth = state.auth.clone();
    let schema = state.schema.clone();
    let platform = state.platform.clone();
    let init_wait = state.ws_init_wait;
    let connections = state.ws_connections.clone();
    let mut stopping = state.stopping.clone();
    let stopped = async move {
        // A dropped sender also means the server is stopping.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    upgrade
        .max_message_size(state.max_message_bytes)
        .max_frame_size(state.max_message_bytes)
        .protocols([websocket::SUBPROTOCOL])
        .on_upgrade(move |socket| {
            websocket::serve(
                socket,
                schema,
                protocol,
                init_wait,
                stopped,
                move |payload| async move {
                    let principal =
                        websocket::principal_of_connection(&auth, from_header, &payload)
                            .ok_or_else(|| {
                                async_graphql::Error::new(websocket::UNAUTHORIZED_REASON)
                            })?;
                    if !principal.role.allows(Role::Viewer) {
                        return Err(async_graphql::Error::new(websocket::FORBIDDEN_REASON));
                    }
                    let permit = connections.admit(&principal).ok_or_else(|| {
                        async_graphql::Error::new(websocket::TOO_MANY_CONNECTIONS_REASON)
                    })?;
                    let mut data = Data::default();
                    // Held by the session: the place is given back when
                    // the connection ends.
                    data.insert(permit);
                    data.insert(crate::graphql::links::for_request(
                        platform,
                        principal.tenant.clone(),
                    ));
                    data.insert(principal);
                    Ok(data)
                },
            )
        })
}

/// `/healthz`: the process is alive unless its event log is fenced (a
/// write, flush or checkpoint failed), which only a restart lifts. The
/// reason is in the server's log, not here: this endpoint is
/// unauthenticated.
async fn healthz(State(state): State<AppState>) -> Response {
    liveness(state.platform.log.fenced().is_some()).into_response()
}

/// `/readyz`: ready while the log takes appends and every projector runs
/// within `ready_max_lag` events of the head.
async fn readyz(State(state): State<AppState>) -> Response {
    readiness(
        state.platform.log.fenced().is_some(),
        &state.platform.projections.status(),
        state.ready_max_lag,
    )
    .into_response()
}

/// What `/healthz` answers.
fn liveness(log_fenced: bool) -> (StatusCode, &'static str) {
    if log_fenced {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not live: the event log refuses appends after a storage failure; \
             restart the server (acknowledged events are kept)\n",
        )
    } else {
        (StatusCode::OK, "ok\n")
    }
}

/// What `/readyz` answers.
fn readiness(
    log_fenced: bool,
    statuses: &[projections::ProjectorStatus],
    max_lag: u64,
) -> (StatusCode, String) {
    let mut behind: Vec<String> = statuses
        .iter()
        .filter(|s| s.failure.is_some() || s.lag > max_lag)
        .map(|s| format!("{} lag {}", s.name, s.lag))
        .collect();
    if log_fenced {
        behind.insert(0, "event log refuses appends".to_owned());
    }
    if behind.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", behind.join(", ")),
        )
    }
}

async fn metrics_text(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.auth.authenticate_header(bearer(&headers)) {
        // The figures are the whole server's (every tenant's requests,
        // appends and lags): with several tenants, a platform credential's.
        Some(p)
            if p.role.allows(Role::Operator)
                && (p.role == Role::Platform || state.auth.single_tenant()) => {}
        Some(_) if state.auth.single_tenant() => {
            return refused(
                StatusCode::FORBIDDEN,
                "/metrics needs an operator, admin or platform credential",
            );
        }
        Some(_) => {
            return refused(
                StatusCode::FORBIDDEN,
                "/metrics needs a platform credential: the figures cover every tenant",
            );
        }
        None => {
            state.platform.metrics.auth_failure();
            return refused(
                StatusCode::UNAUTHORIZED,
                "/metrics needs a bearer token (Authorization: Bearer <token>)",
            );
        }
    }
    let registry = metrics::registry(&state.platform, state.extra_metrics.clone());
    match metrics::render(&registry) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "metrics exposition failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics exposition failed\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{answer_media_type, header, liveness, readiness, HeaderMap, StatusCode};

    #[test]
    fn an_answer_is_graphql_response_json_only_for_a_client_that_accepts_it() {
        let with = |accept: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in accept {
                headers.append(
                    header::ACCEPT,
                    value.parse().unwrap_or_else(|_| unreachable!()),
                );
            }
            answer_media_type(&headers)
        };
        assert_eq!(with(&[]), "application/json");
        assert_eq!(with(&["application/json"]), "application/json");
        assert_eq!(with(&["*/*"]), "application/json");
        for accepts in [
            &["application/graphql-response+json"][..],
            &["application/json;q=0.9, Application/GraphQL-Response+JSON"],
            &["text/html", "application/graphql-response+json; q=1"],
        ] {
            assert_eq!(
                with(accepts),
                "application/graphql-response+json",
                "{accepts:?}"
            );
        }
        assert_eq!(
            with(&["application/graphql-response+json;q=0, application/json"]),
            "application/json"
        );
    }

    #[test]
    fn a_fenced_log_fails_liveness_and_readiness() {
        assert_eq!(liveness(false).0, StatusCode::OK);
        assert_eq!(liveness(true).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(false, &[], 10).0, StatusCode::OK);
        let (status, body) = readiness(true, &[], 10);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("event log refuses appends"), "{body}");
    }
}
