//! GraphiQL on `/` loads in headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) and runs a query whose result shows on the page.
//!
//! The test stores the query and the bearer header where GraphiQL keeps
//! them (`localStorage`), reloads, clicks the execute button and reads the
//! response pane.

use std::time::Duration;

use serde_json::json;
use tests::Server;

use tests::browser::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_loads_in_chromium_and_runs_a_query() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let browser = Browser::launch().await;
    let page = format!("{}/", server.base_url());

    browser.navigate(&page).await;
    let title = browser.eval("document.title").await;
    assert_eq!(title, "CPQ/OMS platform");
    // GraphiQL keeps the editors' contents in localStorage, and saves its
    // own default query there soon after it renders: seed the storage from
    // another page of the same origin, where no GraphiQL can overwrite it.
    browser
        .navigate(&format!("{}/healthz", server.base_url()))
        .await;
    let setup = format!(
        "localStorage.setItem('graphiql:query', {query}); \
         localStorage.setItem('graphiql:headers', {headers}); return true;",
        query = json!("{ me { tenant role name } }"),
        headers = json!(json!({"Authorization": format!("Bearer {viewer}")}).to_string()),
    );
    assert_eq!(browser.run(&setup).await, true);
    browser.navigate(&page).await;

    let rendered = browser
        .wait_for(
            "!!document.querySelector('.graphiql-container .graphiql-execute-button')",
            Duration::from_secs(15),
        )
        .await;
    if rendered != true {
        let body = browser
            .eval("document.body ? document.body.innerText : ''")
            .await;
        let scripts = browser
            .eval("Array.from(document.scripts).map(s => s.src).filter(s => s).join(' ')")
            .await;
        panic!(
            "GraphiQL did not render on {page}: the page shows {body:?}. \
             It loads its scripts from {scripts}; none may depend on a host \
             other than the server itself (CI has no internet)."
        );
    }
    let editor = browser
        .eval("document.querySelector('.graphiql-query-editor').innerText")
        .await;
    assert!(
        editor
            .as_str()
            .is_some_and(|e| e.contains("tenant role name")),
        "the stored query is in the editor: {editor}"
    );
    browser
        .run("document.querySelector('.graphiql-execute-button').click(); return true;")
        .await;
    let response = browser
        .wait_for(
            "(() => { const r = document.querySelector('.graphiql-response'); \
             const t = r ? r.innerText : ''; return t.includes('\"role\"') ? t : ''; })()",
            Duration::from_secs(20),
        )
        .await;
    let text = response.as_str().unwrap_or_default();
    assert!(
        text.contains("\"tenant\": \"demo\"") && text.contains("\"role\": \"viewer\""),
        "the result shows on the page: {response}"
    );
    assert!(text.contains("\"name\": \"demo-viewer\""), "{text}");
}

/// The page users paste tokens into is never framed and its type is never
/// sniffed (it had none of these headers; the console had them all).
#[tokio::test]
async fn the_graphiql_page_refuses_framing() {
    let server = Server::start();
    for path in ["/", "/graphql"] {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", server.base_url()))
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let headers = response.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert!(
            header("content-security-policy").contains("frame-ancestors 'none'"),
            "{path}: {headers:?}"
        );
    }
}
