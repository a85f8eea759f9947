//! GraphiQL, served from vendored assets (see `api/assets/graphiql/`), so
//! the IDE loads without internet access.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const REACT: &[u8] = include_bytes!("../assets/graphiql/react.production.min.js");
const REACT_DOM: &[u8] = include_bytes!("../assets/graphiql/react-dom.production.min.js");
const GRAPHIQL_JS: &[u8] = include_bytes!("../assets/graphiql/graphiql.min.js");
const GRAPHIQL_CSS: &[u8] = include_bytes!("../assets/graphiql/graphiql.min.css");

/// The IDE page: queries go to `/graphql`, subscriptions to `/ws`. Paste
/// `{"Authorization": "Bearer <token>"}` into the Headers pane.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>CPQ/OMS platform</title>
    <style>
      body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
    <script src="/assets/graphiql/react.production.min.js"></script>
    <script src="/assets/graphiql/react-dom.production.min.js"></script>
    <link rel="stylesheet" href="/assets/graphiql/graphiql.min.css" />
  </head>
  <body>
    <div id="graphiql">Loading...</div>
    <script src="/assets/graphiql/graphiql.min.js"></script>
    <script>
      const origin = new URL('/', window.location.origin);
      const ws = new URL('/ws', window.location.origin);
      ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
      ReactDOM.createRoot(document.getElementById('graphiql')).render(
        React.createElement(GraphiQL, {
          fetcher: GraphiQL.createFetcher({
            url: new URL('/graphql', origin).toString(),
            subscriptionUrl: ws.toString(),
          }),
          defaultEditorToolsVisibility: true,
          defaultHeaders: '{"Authorization": "Bearer <paste a token from demo-tokens.txt>"}',
        })
      );
    </script>
  </body>
</html>"#;

/// `GET /` (and `/graphql`) with the IDE, and `/assets/graphiql/*`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/assets/graphiql/react.production.min.js",
            get(|| asset(REACT, "text/javascript")),
        )
        .route(
            "/assets/graphiql/react-dom.production.min.js",
            get(|| asset(REACT_DOM, "text/javascript")),
        )
        .route(
            "/assets/graphiql/graphiql.min.js",
            get(|| asset(GRAPHIQL_JS, "text/javascript")),
        )
        .route(
            "/assets/graphiql/graphiql.min.css",
            get(|| asset(GRAPHIQL_CSS, "text/css")),
        )
}

/// What the IDE page may be embedded in and send to: nothing frames it
/// (users paste tokens into it), no base or form target elsewhere. Scripts
/// and styles are not restricted: the page's own are inline.
pub const CONTENT_SECURITY_POLICY: &str =
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";

/// The IDE page, with headers that keep it out of frames and its type
/// from being sniffed.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(PAGE),
    )
        .into_response()
}

async fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
