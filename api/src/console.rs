//! The operations console at `/console`: one HTML page, one ES module,
//! one stylesheet and an icon, embedded in the binary (no build step, no vendored
//! library: ADR 0017). It is a client of the public GraphQL API only, with
//! the token the user enters; the server gives it nothing else.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("../assets/console/index.html");
const STYLE: &str = include_str!("../assets/console/style.css");
const ICON: &str = include_str!("../assets/console/icon.svg");

/// The console's JavaScript (also read by the test that checks its GraphQL
/// operations against the schema).
pub const SCRIPT: &str = include_str!("../assets/console/app.js");

/// `GET /console` (the page) and its three assets.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(|| asset(PAGE, "text/html; charset=utf-8")))
        .route("/console/", get(|| asset(PAGE, "text/html; charset=utf-8")))
        .route(
            "/console/app.js",
            get(|| asset(SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route(
            "/console/style.css",
            get(|| asset(STYLE, "text/css; charset=utf-8")),
        )
        .route("/console/icon.svg", get(|| asset(ICON, "image/svg+xml")))
}

/// The console's content security policy: scripts, styles and API calls
/// (HTTP and the WebSocket) from this server only, no inline script or
/// style attribute, no plugin, no framing, no form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The assets change with the binary; a page load revalidates.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Only the console's own script, style and API: an injected
            // script or a framing page gets nothing to run or to show in.
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}
