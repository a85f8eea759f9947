//! The HTTP surface: GraphQL over POST, GraphiQL, the WebSocket endpoint,
//! health, readiness and metrics, with body-size and time limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{BatchRequest, Data};
use async_graphql_axum::{GraphQLBatchRequest, GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use crate::auth::{Authenticator, Principal, Role};
use crate::graphql::error::ApiError;
use crate::graphql::OmsSchema;
use crate::metrics;
use crate::platform::Platform;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The schema (with the platform attached).
    pub schema: OmsSchema,
    /// The platform.
    pub platform: Arc<Platform>,
    /// Credentials.
    pub auth: Arc<Authenticator>,
    /// Most operations in one batched request.
    pub max_batch: usize,
    /// Readiness bound: projector lag at most this many events.
    pub ready_max_lag: u64,
    /// Extra series appended to `/metrics` (the adapters' counters).
    pub extra_metrics: Arc<dyn Fn(&mut String) + Send + Sync>,
}

/// The router, with limits. `extra` routes (callbacks) are merged as-is.
pub fn router(state: AppState, max_body_bytes: usize, timeout: Duration, extra: Router) -> Router {
    let app = Router::new()
        .route("/", get(crate::graphiql::page).post(graphql))
        .route("/graphql", get(crate::graphiql::page).post(graphql))
        .route("/ws", get(websocket))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(crate::graphiql::routes())
        .with_state(state);
    app.merge(extra)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()
}

fn unauthenticated() -> Response {
    let error = ApiError::Unauthenticated;
    let body = serde_json::json!({
        "data": null,
        "errors": [{"message": error.message(), "extensions": {"code": error.code()}}],
    });
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

fn operation_name(request: &BatchRequest) -> String {
    match request {
        BatchRequest::Single(r) => r.operation_name.clone().unwrap_or_default(),
        BatchRequest::Batch(rs) => format!("batch[{}]", rs.len()),
    }
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLBatchRequest,
) -> Response {
    let Some(principal) = state.auth.authenticate_header(bearer(&headers)) else {
        state.platform.metrics.auth_failure();
        return unauthenticated();
    };
    let request = request.into_inner();
    if let BatchRequest::Batch(requests) = &request {
        if requests.len() > state.max_batch {
            let body = serde_json::json!({
                "data": null,
                "errors": [{
                    "message": format!("at most {} operations per batch", state.max_batch),
                    "extensions": {"code": "VALIDATION"},
                }],
            });
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    }
    let operation = operation_name(&request);
    let span = tracing::info_span!(
        "graphql",
        tenant = %principal.tenant,
        role = %principal.role,
        operation = %operation,
    );
    let started = Instant::now();
    let mut response = state
        .schema
        .execute_batch(request.data(principal))
        .instrument(span)
        .await;
    label_engine_errors(&mut response);
    let ok = response.is_ok();
    state
        .platform
        .metrics
        .observe_request(&operation, ok, started.elapsed());
    GraphQLResponse::from(response).into_response()
}

/// Errors raised by the GraphQL engine itself (parse errors, unknown
/// fields, depth and complexity limits) carry no code; they are the
/// client's request being invalid, so they get `VALIDATION`.
fn label_engine_errors(response: &mut async_graphql::BatchResponse) {
    let responses: Vec<&mut async_graphql::Response> = match response {
        async_graphql::BatchResponse::Single(r) => vec![r],
        async_graphql::BatchResponse::Batch(rs) => rs.iter_mut().collect(),
    };
    for r in responses {
        for error in &mut r.errors {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", "VALIDATION");
            }
        }
    }
}

/// Authenticates a WebSocket from its `connection_init` payload
/// (`{"Authorization": "Bearer ..."}` or `{"authToken": "..."}`).
fn principal_from_init(auth: &Authenticator, payload: &serde_json::Value) -> Option<Principal> {
    let header = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or_else(|| {
            payload
                .get("authToken")
                .and_then(|v| v.as_str())
                .map(|token| format!("Bearer {token}"))
        })?;
    auth.authenticate_header(Some(&header))
}

async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = state.auth.authenticate_header(bearer(&headers));
    let auth = state.auth.clone();
    let schema = state.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let principal = from_header
                        .or_else(|| principal_from_init(&auth, &payload))
                        .ok_or_else(|| async_graphql::Error::new("UNAUTHENTICATED"))?;
                    let mut data = Data::default();
                    data.insert(principal);
                    Ok(data)
                })
                .serve()
        })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    let statuses = state.platform.projections.status();
    let behind: Vec<String> = statuses
        .iter()
        .filter(|s| s.failure.is_some() || s.lag > state.ready_max_lag)
        .map(|s| format!("{} lag {}", s.name, s.lag))
        .collect();
    if behind.is_empty() {
        (StatusCode::OK, "ready\n".to_owned()).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", behind.join(", ")),
        )
            .into_response()
    }
}

async fn metrics_text(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.auth.authenticate_header(bearer(&headers)) {
        Some(p) if p.role.allows(Role::Operator) => {}
        Some(_) => {
            return (StatusCode::FORBIDDEN, "operator or admin role required\n").into_response()
        }
        None => {
            state.platform.metrics.auth_failure();
            return (StatusCode::UNAUTHORIZED, "bearer token required\n").into_response();
        }
    }
    let platform = &state.platform;
    let mut out = String::new();
    platform.metrics.render(&mut out);
    let stats = platform.log.writer_stats();
    metrics::counter(
        &mut out,
        "oms_log_events_written_total",
        stats.events_written,
    );
    metrics::counter(&mut out, "oms_log_group_commits_total", stats.group_commits);
    metrics::gauge(
        &mut out,
        "oms_log_head_position",
        &[],
        platform.log.next_position() as f64,
    );
    out.push_str("# TYPE oms_projector_lag_events gauge\n");
    for status in platform.projections.status() {
        metrics::gauge(
            &mut out,
            "oms_projector_lag_events",
            &[("projector", &status.name)],
            status.lag as f64,
        );
        metrics::gauge(
            &mut out,
            "oms_projector_failed",
            &[("projector", &status.name)],
            if status.failure.is_some() { 1.0 } else { 0.0 },
        );
    }
    (state.extra_metrics)(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
