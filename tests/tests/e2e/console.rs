//! The operations console at `/console` in headless Chromium, as an
//! operator uses it: sign in, watch a scripted rejection appear in the
//! fallout queue without a reload, open the case, resolve it with a new
//! attempt, see the case leave the queue and the order's journey reach
//! Completed. A viewer sees the same case without any action. Each page's
//! screenshot is saved under `target/tmp/console/`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tests::{ops, unique, Server};

use tests::browser::Browser;

/// Where the screenshots go (a test artifact).
fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("console")
        .join(format!("{name}.png"))
}

/// Signs in with `token` through the console's form.
async fn sign_in(browser: &Browser, base: &str, token: &str) {
    browser.navigate(&format!("{base}/console")).await;
    let form = browser
        .wait_for(
            "!!document.getElementById('sign-in')",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(form, true, "the sign-in form shows");
    let submit = format!(
        "document.getElementById('token').value = {token}; \
         document.getElementById('sign-in').requestSubmit(); return true;",
        token = json!(token)
    );
    assert_eq!(browser.run(&submit).await, true);
    assert_signed_in(browser).await;
}

/// Waits until the header names the demo tenant's signed-in user.
async fn assert_signed_in(browser: &Browser) {
    let who = browser
        .wait_for(
            "document.getElementById('who').textContent",
            Duration::from_secs(15),
        )
        .await;
    assert!(
        who.as_str().is_some_and(|w| w.contains("tenant demo")),
        "{who}"
    );
}

/// Waits until the page's text contains `text`; the text either way.
async fn wait_for_text(browser: &Browser, text: &str) -> String {
    let expression = format!(
        "document.body.innerText.includes({text}) ? document.body.innerText : ''",
        text = json!(text)
    );
    let shown = browser.wait_for(&expression, Duration::from_secs(30)).await;
    let shown = shown.as_str().unwrap_or_default().to_owned();
    if shown.is_empty() {
        let body = browser.eval("document.body.innerText").await;
        panic!("the page never showed {text:?}; it shows {body}");
    }
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_repairs_fallout_in_the_console_and_a_viewer_only_looks() {
    let server = Server::start();
    let base = server.base_url();
    let client = server.client.clone();
    let browser = Browser::launch().await;
    browser.viewport(1280, 800).await;

    // A viewer first: the queue is empty.
    sign_in(&browser, &base, &server.token("viewer")).await;
    wait_for_text(&browser, "No open fallout").await;

    // A scripted rejection of the next reservation; the order's line falls
    // out, and the queue shows it without a reload (falloutChanges).
    server
        .script_simulator("inventory", &["BusinessReject"])
        .await;
    let quote = client
        .accepted_quote(&server.token("sales"), "cust-console", &["fiber-1g"])
        .await
        .unwrap();
    let case = browser
        .wait_for(
            "(() => { const a = document.querySelector('#fallout-list a[href^=\"#/case/\"]'); \
             return a ? a.textContent : ''; })()",
            Duration::from_secs(30),
        )
        .await;
    let case = case.as_str().unwrap_or_default().to_owned();
    assert!(!case.is_empty(), "the case appeared without a reload");
    wait_for_text(&browser, "BUSINESS_REJECTED").await;
    browser.screenshot(&artifact("fallout-queue")).await;

    // The viewer opens it and sees no action.
    browser
        .run(&format!("location.hash = '#/case/{case}'; return true;"))
        .await;
    wait_for_text(&browser, "Your role may not act on cases").await;
    let forms = browser
        .eval("document.querySelectorAll('form[data-action]').length")
        .await;
    assert_eq!(forms, 0, "a viewer sees no action controls");

    // The operator acts.
    browser.run("sessionStorage.clear(); return true;").await;
    sign_in(&browser, &base, &server.token("operator")).await;
    browser
        .run(&format!("location.hash = '#/case/{case}'; return true;"))
        .await;
    let actions = browser
        .wait_for(
            "Array.from(document.querySelectorAll('form[data-action]')).map(f => f.dataset.action).join(',')",
            Duration::from_secs(15),
        )
        .await;
    if actions != "NEW_ATTEMPT,EXTERNAL_RESOLUTION,CANCEL_LINE" {
        let body = browser.eval("document.body.innerText").await;
        panic!("the allowed actions are not offered ({actions}); the page shows {body}");
    }
    wait_for_text(&browser, "Calls").await;
    browser.screenshot(&artifact("fallout-case")).await;
    let acted = browser
        .run(
            "window.confirm = (m) => { window.asked = m; return true; }; \
             document.querySelector('form[data-action=NEW_ATTEMPT]').requestSubmit(); return true;",
        )
        .await;
    assert_eq!(acted, true);
    let shown = wait_for_text(&browser, "Events the action caused").await;
    assert!(
        shown.contains("FalloutResolved") || shown.contains("StepRequested"),
        "{shown}"
    );
    let asked = browser.eval("window.asked || ''").await;
    assert!(
        asked.as_str().is_some_and(|m| m.contains("NEW_ATTEMPT")),
        "the action asked for a confirmation first: {asked}"
    );
    // The page shows the case as it is now: resolved, by whom and how,
    // with no action left to take on it (the stale page offered them
    // again, and an action there resolved a newer case).
    assert!(shown.contains("Resolved by"), "{shown}");
    let forms = browser
        .eval("document.querySelectorAll('form[data-action]').length")
        .await;
    assert_eq!(forms, 0, "a resolved case offers no action");

    // The case left the queue.
    browser
        .run("location.hash = '#/fallout'; return true;")
        .await;
    wait_for_text(&browser, "No open fallout").await;

    // The order's journey reaches Completed.
    let (_, body) = client
        .raw(
            &server.token("viewer"),
            "query($id: String!) { handoff(id: $id) { orderId order { quoteId } } }",
            json!({ "id": case }),
        )
        .await;
    let order_id = body["data"]["handoff"]["orderId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        body["data"]["handoff"]["order"]["quoteId"],
        quote.as_str(),
        "{body}"
    );
    let mut status = serde_json::Value::Null;
    for _ in 0..60 {
        browser
            .run(&format!(
                "location.hash = '#/order/{order_id}?t=' + Date.now(); return true;"
            ))
            .await;
        status = browser
            .wait_for(
                "(() => { const s = document.getElementById('order-status'); return s ? s.textContent : ''; })()",
                Duration::from_secs(10),
            )
            .await;
        if status == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        status, "COMPLETED",
        "the order's journey shows it completed"
    );
    wait_for_text(&browser, "Causal chains").await;
    // The reservation's rejected first attempt stays on the timeline
    // beside the attempt that succeeded; the acceptance and the
    // operator's action are two causal trees.
    let attempts = browser
        .eval("Array.from(document.querySelectorAll('.timeline .attempt')).map(a => a.textContent)")
        .await;
    let attempts: Vec<String> = serde_json::from_value(attempts).unwrap_or_default();
    assert!(
        attempts
            .iter()
            .any(|a| a.starts_with(&format!("Attempt 1: {case} RESOLVED"))
                && a.contains("dispatch answer: BUSINESS_REJECTED")),
        "the rejected first attempt is shown: {attempts:?}"
    );
    assert!(
        attempts
            .iter()
            .any(|a| a.starts_with("Attempt 2: ") && a.contains(" SUCCEEDED (INVENTORY")),
        "the new attempt is shown: {attempts:?}"
    );
    let chains = browser
        .eval("document.querySelectorAll('.chain').length")
        .await;
    assert!(
        chains.as_u64() >= Some(2),
        "one causal tree per correlation: {chains}"
    );
    browser.screenshot(&artifact("order-journey")).await;

    // The other pages render with data, at both sizes.
    for (hash, text, name) in [
        ("#/handoffs", "Reconcile now", "handoffs"),
        ("#/dashboard", "Outcomes by target", "dashboard"),
        ("#/consumers", "Projectors", "consumers"),
        ("#/quotes", "ACCEPTED", "quotes"),
    ] {
        browser
            .run(&format!("location.hash = '{hash}'; return true;"))
            .await;
        wait_for_text(&browser, text).await;
        browser.screenshot(&artifact(name)).await;
    }
    // Only an admin gets the checkpoint reset, behind a confirmation.
    browser
        .run("location.hash = '#/consumers'; return true;")
        .await;
    wait_for_text(&browser, "Fulfillment consumers").await;
    let reset = browser
        .eval("!!document.getElementById('reset-consumer')")
        .await;
    assert_eq!(reset, false, "an operator has no reset form");
    browser.run("sessionStorage.clear(); return true;").await;
    sign_in(&browser, &base, &server.token("admin")).await;
    browser
        .run("location.hash = '#/consumers'; return true;")
        .await;
    let reset = browser
        .wait_for(
            "!!document.getElementById('reset-consumer')",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(reset, true, "an admin has the reset form");
    // A refused action shows the server's message and code.
    browser
        .run(
            "window.confirm = () => true; \
             const form = document.getElementById('reset-consumer'); \
             form.querySelector('[name=to]').value = '999999999'; \
             form.requestSubmit(); return true;",
        )
        .await;
    let refusal = wait_for_text(&browser, "beyond the head of the log").await;
    assert!(refusal.contains("(VALIDATION)"), "{refusal}");
    // The tables refresh while shown, with each projector's rebuild state.
    let rows = browser
        .eval("document.querySelectorAll('#projectors tbody tr').length")
        .await;
    assert!(rows.as_u64() > Some(0), "projectors listed: {rows}");
    browser.viewport(1920, 1080).await;
    browser
        .run("location.hash = '#/dashboard'; return true;")
        .await;
    wait_for_text(&browser, "Pending by target").await;
    // The charts carry the figures: the case opened and resolved this
    // hour, and the inventory's rejection among its outcomes.
    let hourly = browser
        .eval(
            "Array.from(document.querySelectorAll('#fallout-by-hour rect title')).map(t => t.textContent)",
        )
        .await;
    let hourly: Vec<String> = serde_json::from_value(hourly).unwrap_or_default();
    assert!(
        hourly.iter().any(|t| t.ends_with(": 1 opened"))
            && hourly.iter().any(|t| t.ends_with(": 1 resolved")),
        "the hourly chart shows the case opened and resolved: {hourly:?}"
    );
    let outcomes = browser
        .eval(
            "Array.from(document.querySelectorAll('#outcomes-by-target rect title')).map(t => t.textContent)",
        )
        .await;
    let outcomes: Vec<String> = serde_json::from_value(outcomes).unwrap_or_default();
    assert!(
        outcomes
            .iter()
            .any(|t| t == "INVENTORY BUSINESS_REJECTED: 1"),
        "the outcomes chart shows the rejection: {outcomes:?}"
    );
    browser.screenshot(&artifact("dashboard-1080p")).await;
}

/// The console's page and assets carry a content security policy that
/// allows only the server's own script, style and API (the live queue
/// above runs under it), and refuse to be framed.
#[tokio::test]
async fn the_console_is_served_with_a_policy_that_runs_only_its_own_code() {
    let server = Server::start();
    for path in [
        "/console",
        "/console/app.js",
        "/console/style.css",
        "/console/icon.svg",
    ] {
        let response = server
            .client
            .http()
            .get(format!("{}{path}", server.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let policy = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
}

/// The open cases of the operator's tenant: (handoff id, order id, line id).
async fn open_cases(server: &Server) -> Vec<(String, String, String)> {
    let (_, body) = server
        .client
        .raw(
            &server.token("operator"),
            "{ fallout(first: 50) { nodes { handoffId orderId lineId } } }",
            json!({}),
        )
        .await;
    body["data"]["fallout"]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| {
                    let text = |key: &str| n[key].as_str().unwrap_or_default().to_owned();
                    (text("handoffId"), text("orderId"), text("lineId"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A reservation of a new order of `customer` scripted to be rejected,
/// and the fallout case it opens: (handoff, order, line).
async fn fallen_out_case(server: &Server, customer: &str) -> (String, String, String) {
    server
        .script_simulator("inventory", &["BusinessReject"])
        .await;
    server
        .client
        .accepted_quote(&server.token("sales"), customer, &["fiber-1g"])
        .await
        .unwrap();
    for _ in 0..100 {
        if let Some(case) = open_cases(server).await.first() {
            return case.clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the line of {customer}'s order never fell out");
}

/// An action taken on a case page that is out of date (the order moved on
/// since: another operator's new attempt fell out again, as a new case)
/// is refused and says to reload; it used to resolve the new case, which
/// the operator had never seen, with what they typed for the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_on_an_out_of_date_case_page_is_refused_not_applied_to_a_newer_case() {
    let server = Server::start();
    let base = server.base_url();
    let browser = Browser::launch().await;
    browser.viewport(1280, 800).await;
    let (first, order, line) = fallen_out_case(&server, "cust-stale").await;
    sign_in(&browser, &base, &server.token("operator")).await;
    browser
        .run(&format!("location.hash = '#/case/{first}'; return true;"))
        .await;
    browser
        .wait_for(
            "document.querySelector('form[data-action=CANCEL_LINE]') ? true : false",
            Duration::from_secs(30),
        )
        .await;
    // Meanwhile another operator sends a new attempt, which falls out too.
    server
        .script_simulator("inventory", &["BusinessReject"])
        .await;
    server
        .client
        .run::<ops::ResolveFallout>(
            &server.token("operator"),
            ops::resolve_fallout::Variables {
                command_id: unique("other-operator"),
                order_id: order.clone(),
                expected_version: None,
                line_id: line.clone(),
                action: ops::resolve_fallout::FalloutAction::NEW_ATTEMPT,
                reference: None,
                note: None,
            },
        )
        .await
        .unwrap();
    let mut newer = None;
    for _ in 0..100 {
        newer = open_cases(&server)
            .await
            .into_iter()
            .find(|(handoff, _, _)| *handoff != first);
        if newer.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (newer, _, _) = newer.expect("the new attempt fell out as a new case");
    // The first operator acts on the page they still have open.
    browser
        .run(
            "window.confirm = () => true; \
             const form = document.querySelector('form[data-action=CANCEL_LINE]'); \
             form.querySelector('input[name=note]').value = 'typed for the first case'; \
             form.requestSubmit(); return true;",
        )
        .await;
    wait_for_text(&browser, "The order changed since this page was loaded").await;
    let still_open = open_cases(&server)
        .await
        .into_iter()
        .any(|(handoff, _, _)| handoff == newer);
    assert!(still_open, "the newer case was left as it was");
}

/// Wraps the page's `fetch` so that operations named in `slow` answer
/// `delay_ms` late, and its `WebSocket` so that every socket opened from
/// here on is kept in `window.__sockets` (to count those left open).
async fn slow_operations(browser: &Browser, slow: &[&str], delay_ms: u64) {
    let script = format!(
        "const slow = {slow}; const real = window.fetch; \
         window.fetch = async (url, init) => {{ \
           const body = init && init.body ? String(init.body) : ''; \
           if (slow.some((name) => body.includes(name))) \
             await new Promise((done) => setTimeout(done, {delay_ms})); \
           return real(url, init); }}; \
         window.__sockets = []; const RealSocket = window.WebSocket; \
         window.WebSocket = function (...args) {{ \
           const socket = new RealSocket(...args); window.__sockets.push(socket); return socket; }}; \
         window.WebSocket.prototype = RealSocket.prototype; return true;",
        slow = json!(slow)
    );
    assert_eq!(browser.run(&script).await, true);
}

/// The heading the page shows now.
async fn heading(browser: &Browser) -> String {
    browser
        .eval("(document.querySelector('main h1') || {}).textContent || ''")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A page the operator left before it finished loading neither replaces
/// the page they went to when its answer comes, nor opens its live
/// subscription (or its polling) behind it. Both used to happen: a slow
/// order page took over the quotes list, and each quick pass through the
/// fallout queue left one more socket open for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_left_while_it_loads_never_replaces_the_next_one_nor_stays_live() {
    let server = Server::start();
    let base = server.base_url();
    let browser = Browser::launch().await;
    sign_in(&browser, &base, &server.token("admin")).await;
    wait_for_text(&browser, "Fallout queue").await;
    slow_operations(
        &browser,
        &["query Order(", "query Fallout(", "consumers {"],
        1500,
    )
    .await;

    for leave in ["#/order/ord-slow", "#/fallout", "#/consumers"] {
        browser
            .run(&format!(
                "location.hash = {leave}; setTimeout(() => {{ location.hash = '#/quotes'; }}, 50); \
                 return true;",
                leave = json!(leave)
            ))
            .await;
        wait_for_text(&browser, "No quotes yet.").await;
        // Past the slow answer of the page that was left.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(heading(&browser).await, "Quotes", "after leaving {leave}");
        let open = browser
            .eval("window.__sockets.filter((s) => s.readyState <= 1).length")
            .await;
        assert_eq!(open, 0, "sockets left open after leaving {leave}");
    }
    // The consumers page polls while shown only.
    let polls = "performance.getEntriesByType('resource').length";
    let before = browser.eval(polls).await.as_u64().unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let after = browser.eval(polls).await.as_u64().unwrap_or_default();
    assert_eq!(after, before, "requests sent from pages no longer shown");
}

/// The lists page past their first fifty; a handoff that is not in
/// fallout (the pending list and the order page link every handoff)
/// shows as itself instead of "No such case"; and what "Reconcile now"
/// found stays shown after the list reloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_past_fifty_a_handoff_outside_fallout_shows_and_a_result_stays_shown() {
    let server = Server::start();
    let base = server.base_url();
    let sales = server.token("sales");
    for i in 0..51 {
        server
            .client
            .create_quote(&sales, &unique("page"), &format!("cust-page-{i}"))
            .await
            .unwrap();
    }
    server
        .client
        .accepted_quote(&sales, "cust-handoff", &["fiber-1g"])
        .await
        .unwrap();
    let mut handoff = None;
    for _ in 0..100 {
        let (_, body) = server
            .client
            .raw(
                &server.token("operator"),
                "{ handoffs(first: 1) { nodes { id } } }",
                json!({}),
            )
            .await;
        handoff = body["data"]["handoffs"]["nodes"][0]["id"]
            .as_str()
            .map(str::to_owned);
        if handoff.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let handoff = handoff.expect("the order has a handoff");

    let browser = Browser::launch().await;
    sign_in(&browser, &base, &server.token("operator")).await;
    let rows = "document.querySelectorAll('main tbody tr').length";
    browser
        .run("location.hash = '#/quotes'; return true;")
        .await;
    wait_for_text(&browser, "Next page").await;
    assert_eq!(browser.eval(rows).await, 50);
    browser
        .run(
            "[...document.querySelectorAll('main a')].find((a) => a.textContent === 'Next page')\
             .click(); return true;",
        )
        .await;
    let second = browser
        .wait_for(&format!("{rows} === 2"), Duration::from_secs(15))
        .await;
    assert_eq!(second, true, "the second page holds the other two quotes");

    browser
        .run(&format!(
            "location.hash = {hash}; return true;",
            hash = json!(format!("#/case/{handoff}"))
        ))
        .await;
    let shown = wait_for_text(&browser, "not in fallout").await;
    assert!(shown.contains(&handoff), "{shown}");
    assert!(!shown.contains("No such case"), "{shown}");

    browser
        .run("location.hash = '#/handoffs'; return true;")
        .await;
    wait_for_text(&browser, "Pending handoffs").await;
    browser
        .run("document.getElementById('reconcile').click(); return true;")
        .await;
    wait_for_text(&browser, "Reconciliation checked").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = browser.eval("document.body.innerText").await;
    assert!(
        text.as_str()
            .is_some_and(|t| t.contains("Reconciliation checked")),
        "the result stays shown after the list reloads: {text}"
    );
}

/// What an action did shows on its own case's page only: an operator who
/// moved on to another case before the answer came used to see "Done" and
/// the first case's events on the second, still open, case. The queue
/// shows no stray "null" under a one-page list, and a live queue whose
/// token the server now refuses (4401 on reconnect) goes to the sign-in
/// page instead of going stale without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_result_shows_on_its_own_case_only_and_a_refused_token_signs_out() {
    let server = Server::start();
    let base = server.base_url();
    server
        .script_simulator("inventory", &["BusinessReject", "BusinessReject"])
        .await;
    for customer in ["cust-first", "cust-second"] {
        server
            .client
            .accepted_quote(&server.token("sales"), customer, &["fiber-1g"])
            .await
            .unwrap();
    }
    let mut cases = Vec::new();
    for _ in 0..150 {
        cases = open_cases(&server).await;
        if cases.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(cases.len(), 2, "both lines fell out: {cases:?}");
    let (first, second) = (cases[0].0.clone(), cases[1].0.clone());

    let browser = Browser::launch().await;
    sign_in(&browser, &base, &server.token("operator")).await;
    wait_for_text(&browser, "Fallout queue").await;
    let stray_null = "[...document.getElementById('fallout-list').childNodes]\
                      .some((n) => n.nodeType === 3 && n.textContent === 'null')";
    assert_eq!(browser.eval(stray_null).await, false);

    slow_operations(&browser, &["mutation Resolve("], 1500).await;
    browser
        .run(&format!(
            "location.hash = {hash}; return true;",
            hash = json!(format!("#/case/{first}"))
        ))
        .await;
    browser
        .wait_for(
            "document.querySelector('form[data-action=NEW_ATTEMPT]') ? true : false",
            Duration::from_secs(30),
        )
        .await;
    browser
        .run(&format!(
            "window.confirm = () => true; \
             document.querySelector('form[data-action=NEW_ATTEMPT]').requestSubmit(); \
             setTimeout(() => {{ location.hash = {hash}; }}, 200); return true;",
            hash = json!(format!("#/case/{second}"))
        ))
        .await;
    wait_for_text(&browser, &format!("Fallout case {second}")).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let shown = browser.eval("document.body.innerText").await;
    let shown = shown.as_str().unwrap_or_default();
    assert!(shown.contains(&format!("Fallout case {second}")), "{shown}");
    assert!(!shown.contains("Done"), "the other case's result: {shown}");

    // The live queue, then a token the server refuses on reconnect.
    browser
        .run("location.hash = '#/fallout'; return true;")
        .await;
    let open = browser
        .wait_for(
            "window.__sockets.some((s) => s.readyState === 1)",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(open, true, "the queue is live");
    browser
        .run(
            "sessionStorage.setItem('oms-console-token', 'no-longer-valid'); \
             window.__sockets.forEach((s) => s.close()); return true;",
        )
        .await;
    let signed_out = browser
        .wait_for(
            "!!document.getElementById('sign-in')",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(
        signed_out, true,
        "the refused token leads to the sign-in page"
    );
    wait_for_text(&browser, "refused").await;

    // A page that polls (consumers) goes to the sign-in page too, and
    // stops polling, at its first refused read.
    sign_in(&browser, &base, &server.token("operator")).await;
    browser
        .run("location.hash = '#/consumers'; return true;")
        .await;
    wait_for_text(&browser, "Fulfillment consumers").await;
    browser
        .run("sessionStorage.setItem('oms-console-token', 'no-longer-valid'); return true;")
        .await;
    let signed_out = browser
        .wait_for(
            "!!document.getElementById('sign-in')",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(signed_out, true, "the polling page signs out on a refusal");
    // The refused read's own timing entry lands after its answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let polls = "performance.getEntriesByType('resource').length";
    let before = browser.eval(polls).await.as_u64().unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let after = browser.eval(polls).await.as_u64().unwrap_or_default();
    assert_eq!(after, before, "no polling after the sign-out");
}

/// A long word in what an operator typed (a note of 1,900 letters without
/// a space) wraps inside the case page: it widened the whole page to about
/// 20,000 px, so every page of the case scrolled sideways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_unbroken_note_wraps_inside_the_case_page() {
    let server = Server::start();
    let base = server.base_url();
    let browser = Browser::launch().await;
    browser.viewport(1280, 800).await;
    let (case, order, line) = fallen_out_case(&server, "cust-long-note").await;
    server
        .client
        .run::<ops::ResolveFallout>(
            &server.token("operator"),
            ops::resolve_fallout::Variables {
                command_id: unique("long-note"),
                order_id: order,
                expected_version: None,
                line_id: line,
                action: ops::resolve_fallout::FalloutAction::EXTERNAL_RESOLUTION,
                reference: Some(format!("ref-{}", "R".repeat(200))),
                note: Some("A".repeat(1_900)),
            },
        )
        .await
        .unwrap();
    sign_in(&browser, &base, &server.token("operator")).await;
    browser
        .run(&format!("location.hash = '#/case/{case}'; return true;"))
        .await;
    wait_for_text(&browser, "AAAAAAAAAA").await;
    let widths = browser
        .eval("[document.documentElement.scrollWidth, window.innerWidth]")
        .await;
    let (scroll, inner) = (
        widths[0].as_i64().unwrap_or(0),
        widths[1].as_i64().unwrap_or(0),
    );
    browser
        .screenshot(&artifact("fallout-case-long-note"))
        .await;
    assert!(
        scroll <= inner,
        "the case page is {scroll} px wide in a window of {inner} px"
    );
}

/// A minimum age the fallout filter cannot use (negative, not a number) is
/// refused in the filter's own words: `-5` answered with the API's
/// `minAgeMs: must be 0 to ...` (a field and unit the operator never
/// typed), and `abc` was dropped without a word, listing every case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimum_age_the_filter_cannot_use_is_refused_in_its_own_words() {
    let server = Server::start();
    let base = server.base_url();
    let browser = Browser::launch().await;
    sign_in(&browser, &base, &server.token("operator")).await;
    for value in ["-5", "abc", "1e400"] {
        browser
            .run(&format!(
                "location.hash = '#/fallout?minAgeMin={value}'; return true;"
            ))
            .await;
        let shown = wait_for_text(&browser, "Older than (min): give a number of minutes").await;
        assert!(!shown.contains("minAgeMs"), "{value}: {shown}");
        assert!(!shown.contains("No open fallout"), "{value}: {shown}");
    }
    browser
        .run("location.hash = '#/fallout?minAgeMin=5'; return true;")
        .await;
    wait_for_text(&browser, "No open fallout").await;
}

/// A customer notification that fell out is shown as a notification, not
/// as a compensation: the queue and the case page used to label every
/// case without a forward step "compensation", so an operator read a
/// failed e-mail as a failed release of resources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_in_fallout_is_labelled_by_its_purpose() {
    let server = Server::start();
    let base = server.base_url();
    server
        .script_simulator("notification", &["BusinessReject"])
        .await;
    server
        .client
        .accepted_quote(&server.token("sales"), "cust-notify", &["fiber-1g"])
        .await
        .unwrap();
    let mut case = None;
    for _ in 0..150 {
        case = open_cases(&server).await.into_iter().next();
        if case.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (handoff, _, _) = case.expect("the notification fell out");
    let browser = Browser::launch().await;
    sign_in(&browser, &base, &server.token("operator")).await;
    let queue = wait_for_text(&browser, "customer notification").await;
    assert!(!queue.contains("compensation"), "{queue}");
    browser
        .run(&format!(
            "location.hash = {hash}; return true;",
            hash = json!(format!("#/case/{handoff}"))
        ))
        .await;
    wait_for_text(&browser, &format!("Fallout case {handoff}")).await;
    // The case's own table (the queue has no raw label column).
    let page = wait_for_text(&browser, "Raw label").await;
    assert!(page.contains("customer notification"), "{page}");
    assert!(!page.contains("compensation"), "{page}");
}

/// A sign-in whose first request cannot reach the server (a restart, a
/// proxy's error page) keeps the token and offers to try again; it used
/// to forget the token and show only "Failed to fetch".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_out_of_reach_at_sign_in_keeps_the_token() {
    let server = Server::start();
    let base = server.base_url();
    let browser = Browser::launch().await;
    browser.navigate(&format!("{base}/console")).await;
    browser
        .wait_for(
            "!!document.getElementById('sign-in')",
            Duration::from_secs(15),
        )
        .await;
    // The first request fails as an unreachable server does; later ones pass.
    let script = format!(
        "const real = window.fetch; let failed = false; \
         window.fetch = async (url, init) => {{ \
           if (!failed) {{ failed = true; throw new TypeError('Failed to fetch'); }} \
           return real(url, init); }}; \
         document.getElementById('token').value = {token}; \
         document.getElementById('sign-in').requestSubmit(); return true;",
        token = json!(server.token("operator"))
    );
    assert_eq!(browser.run(&script).await, true);
    let shown = wait_for_text(&browser, "cannot be reached").await;
    assert!(!shown.contains("Failed to fetch"), "{shown}");
    let kept = browser
        .eval("sessionStorage.getItem('oms-console-token') !== null")
        .await;
    assert_eq!(kept, true, "the token was forgotten");
    browser
        .run("document.getElementById('retry').click(); return true;")
        .await;
    assert_signed_in(&browser).await;
}

/// A live queue whose socket the server refuses (here: the credential's 64
/// connections are taken, close 1013) says its updates are interrupted
/// and that it retries, and says nothing once it is live again; it used to
/// go on showing a queue that no longer updated, with no sign of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_queue_that_cannot_connect_says_so_until_it_is_live_again() {
    let server = Server::start();
    let base = server.base_url();
    let browser = Browser::launch().await;
    sign_in(&browser, &base, &server.token("operator")).await;
    browser
        .run("location.hash = '#/quotes'; return true;")
        .await;
    wait_for_text(&browser, "Quotes").await;
    // Take every connection the credential may open.
    let hold = "window.__hold = []; const token = sessionStorage.getItem('oms-console-token'); \
        const url = new URL('/ws', location.href); url.protocol = 'ws:'; \
        for (let i = 0; i < 64; i++) { \
          const s = new WebSocket(url, 'graphql-transport-ws'); \
          s.onopen = () => s.send(JSON.stringify({ type: 'connection_init', \
            payload: { Authorization: `Bearer ${token}` } })); \
          s.onmessage = (m) => { if (JSON.parse(m.data).type === 'connection_ack') s.acked = true; }; \
          window.__hold.push(s); } return true;";
    assert_eq!(browser.run(hold).await, true);
    let held = browser
        .wait_for(
            "window.__hold.filter((s) => s.acked).length === 64",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(held, true, "64 connections held");
    browser
        .run("location.hash = '#/fallout'; return true;")
        .await;
    let said = wait_for_text(&browser, "Live updates interrupted").await;
    assert!(said.contains("retrying"), "{said}");
    browser
        .run("window.__hold.forEach((s) => s.close()); return true;")
        .await;
    let live_again = browser
        .wait_for(
            "document.getElementById('live-status').hidden",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(live_again, true, "the notice goes once the queue is live");
}
