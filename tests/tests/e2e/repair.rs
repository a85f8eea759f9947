//! Every open fallout case can be closed by an operator. A case the
//! order's line holds (a forward step) is resolved on the order
//! (`resolveFallout`); a case no line holds (a failed compensation, or an
//! outcome contradicting a recorded one) is resolved on its handoff
//! (`resolveHandoffFallout`), which refuses a case the line holds.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::{unique, Server, ServerOptions};

const CASES: &str = "query($resolved: Boolean) { fallout(resolved: $resolved, first: 50) {
  nodes { handoffId orderId lineId purpose reason lineInFallout allowedActions status
          resolution { resolvedBy handoffNote how { kind note } } } } }";

/// The event types `falloutChanges(from: 0)` delivers, read until none
/// comes for two seconds: every event that opened, changed or closed a
/// case, from the start of the log (stored events first, so no timing).
async fn fallout_changes_from_start(server: &Server) -> Vec<String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let token = server.token("operator");
    for frame in [
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { falloutChanges(from: 0) { eventType } }"}}),
    ] {
        socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }
    let mut types = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(2), socket.next()).await
    {
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
        assert_ne!(frame["type"], "error", "{frame}");
        if let Some(event_type) = frame["payload"]["data"]["falloutChanges"]["eventType"].as_str() {
            types.push(event_type.to_owned());
        }
    }
    types
}

/// Polls the fallout queue until `pick` finds a case; panics after 60 s.
async fn case(server: &Server, resolved: bool, pick: impl Fn(&Value) -> bool) -> Value {
    let token = server.token("operator");
    let started = Instant::now();
    loop {
        let (_, body) = server
            .client
            .raw(&token, CASES, json!({ "resolved": resolved }))
            .await;
        let nodes = body["data"]["fallout"]["nodes"].as_array().cloned();
        if let Some(found) = nodes.iter().flatten().find(|c| pick(c)) {
            return found.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no such case; the queue shows {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An order of one line for `customer` whose step of `purpose` at
/// `system` meets `fault`: the case its line holds.
async fn line_case_after(
    server: &Server,
    system: &str,
    fault: &str,
    purpose: &str,
    customer: &str,
) -> Value {
    server.script_simulator(system, &[fault]).await;
    server
        .client
        .accepted_quote(&server.token("sales"), customer, &["fiber-1g"])
        .await
        .unwrap();
    case(server, false, |c| {
        c["purpose"] == purpose && c["lineInFallout"] == true
    })
    .await
}

/// An order of one line whose provisioning the target rejects: the case
/// its line holds.
async fn case_a_line_holds(server: &Server, customer: &str) -> Value {
    line_case_after(
        server,
        "provisioning",
        "BusinessReject",
        "ACTIVATE",
        customer,
    )
    .await
}

/// The order and line a case names.
fn order_and_line(case: &Value) -> (String, String) {
    let text = |key: &str| case[key].as_str().unwrap_or_default().to_owned();
    (text("orderId"), text("lineId"))
}

/// The operator cancels the line held by a case (`CANCEL_LINE`); panics
/// when refused.
async fn cancel_line(server: &Server, order_id: &str, line_id: &str) {
    let (_, body) = server
        .client
        .raw(
            &server.token("operator"),
            "mutation($c: String!, $o: String!, $l: String!) { resolveFallout(commandId: $c,
               orderId: $o, lineId: $l, action: CANCEL_LINE, note: \"customer withdrew\") {
               correlationId } }",
            json!({ "c": unique("cancel"), "o": order_id, "l": line_id }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

async fn resolve_on_handoff(server: &Server, command_id: &str, handoff_id: &str) -> Value {
    let (_, body) = server
        .client
        .raw(
            &server.token("operator"),
            "mutation($c: String!, $h: String!) { resolveHandoffFallout(commandId: $c,
               handoffId: $h, reference: \"INC-42\", note: \"released by hand in inventory\") {
               correlationId } }",
            json!({ "c": command_id, "h": handoff_id }),
        )
        .await;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_compensation_is_closed_on_its_handoff_and_a_line_case_only_on_the_order() {
    let server = Server::start();
    let operator = server.token("operator");
    // Provisioning rejects: the line holds the case.
    let held = case_a_line_holds(&server, "cust-repair").await;
    let (order_id, line_id) = order_and_line(&held);
    let refused = resolve_on_handoff(
        &server,
        &unique("held"),
        held["handoffId"].as_str().unwrap_or_default(),
    )
    .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["rule"], "line_holds_fallout",
        "{refused}"
    );

    // The operator cancels the line; the reservation's release is rejected.
    server
        .script_simulator("inventory", &["BusinessReject"])
        .await;
    cancel_line(&server, &order_id, &line_id).await;
    let release = case(&server, false, |c| c["purpose"] == "RELEASE").await;
    assert_eq!(release["lineInFallout"], false, "{release}");
    assert_eq!(release["allowedActions"], json!(["EXTERNAL_RESOLUTION"]));
    let release_id = release["handoffId"].as_str().unwrap_or_default().to_owned();

    // The order has no fallout left to resolve...
    let (_, body) = server
        .client
        .raw(
            &operator,
            "mutation($c: String!, $o: String!, $l: String!) { resolveFallout(commandId: $c,
               orderId: $o, lineId: $l, action: EXTERNAL_RESOLUTION, reference: \"INC-42\",
               note: \"x\") { correlationId } }",
            json!({ "c": unique("order"), "o": order_id, "l": line_id }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RULE_VIOLATION",
        "{body}"
    );

    // ...so the case is closed on its handoff, once, whatever the retries.
    let command_id = unique("release");
    let first = resolve_on_handoff(&server, &command_id, &release_id).await;
    assert!(first["errors"].is_null(), "{first}");
    let again = resolve_on_handoff(&server, &command_id, &release_id).await;
    assert_eq!(
        again["data"], first["data"],
        "a retry gets the first outcome"
    );
    let closed = case(&server, true, |c| c["handoffId"] == release_id.as_str()).await;
    assert_eq!(closed["status"], "RESOLVED", "{closed}");
    assert_eq!(closed["resolution"]["resolvedBy"], "demo-operator");
    assert!(
        closed["resolution"].to_string().contains("INC-42")
            && closed["resolution"]
                .to_string()
                .contains("released by hand"),
        "{closed}"
    );
    let (_, open) = server
        .client
        .raw(&operator, CASES, json!({ "resolved": false }))
        .await;
    assert_eq!(open["data"]["fallout"]["nodes"], json!([]), "{open}");
    // Nothing repeated: a second, new command is refused by the handoff.
    let twice = resolve_on_handoff(&server, &unique("twice"), &release_id).await;
    assert_eq!(
        twice["errors"][0]["extensions"]["code"], "RULE_VIOLATION",
        "{twice}"
    );
    // A live queue hears of each case opening and closing: the failed
    // release's (on its handoff) as much as the line's. It used to hear of
    // the line's alone.
    let changes = fallout_changes_from_start(&server).await;
    for expected in [
        "LineFalloutRaised",
        "LineCancelled",
        "HandoffRejected",
        "HandoffResolved",
    ] {
        assert!(
            changes.iter().any(|t| t == expected),
            "{expected} in {changes:?}"
        );
    }
}

/// Cancelling an order whose line is in fallout closes the case: the
/// cancellation withdraws the line's step (ADR 0048), which resolves its
/// handoff, and the queue and dashboard empty. Before, the case stayed
/// open offering only the handoff's resolution, for an operator to close
/// by hand (and earlier still, a case nobody could close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_whose_order_was_cancelled_is_closed_with_it() {
    let server = Server::start();
    let operator = server.token("operator");
    let held = case_a_line_holds(&server, "cust-cancelled").await;
    let order_id = held["orderId"].as_str().unwrap_or_default().to_owned();
    let handoff_id = held["handoffId"].as_str().unwrap_or_default().to_owned();
    let (_, body) = server
        .client
        .raw(
            &operator,
            "mutation($c: String!, $o: String!) { cancelOrder(commandId: $c, orderId: $o,
               reason: \"customer withdrew\") { correlationId } }",
            json!({ "c": unique("cancel"), "o": order_id }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let resolved = case(&server, true, |c| c["handoffId"] == handoff_id.as_str()).await;
    assert_eq!(resolved["status"], "RESOLVED", "{resolved}");
    let (_, body) = server
        .client
        .raw(&operator, "{ dashboard { openFallout } }", json!({}))
        .await;
    assert_eq!(body["data"]["dashboard"]["openFallout"], 0, "{body}");
    let changes = fallout_changes_from_start(&server).await;
    assert!(
        changes.iter().any(|t| t == "OrderCancelled"),
        "the cancellation closed the case: {changes:?}"
    );
}

/// A step the target may have applied gets no new attempt: billing
/// activated the subscription but answered 200 with a body that is not its
/// contract. A new attempt (a new idempotency key) used to activate it a
/// second time; now the case offers only the external resolution and the
/// cancellation, `NEW_ATTEMPT` is refused by rule, and the external
/// resolution completes the order with the one activation billing made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_may_have_taken_effect_gets_no_new_attempt() {
    let server = Server::start();
    let operator = server.token("operator");
    let held = line_case_after(
        &server,
        "billing",
        "MalformedBody",
        "ACTIVATE_BILLING",
        "cust-malformed",
    )
    .await;
    assert_eq!(
        held["allowedActions"],
        json!(["EXTERNAL_RESOLUTION", "CANCEL_LINE"]),
        "{held}"
    );
    let (order_id, line_id) = order_and_line(&held);
    let resolve = |action: &'static str| {
        let (operator, order_id, line_id) = (operator.clone(), order_id.clone(), line_id.clone());
        // A new attempt records no evidence; an external resolution does.
        let evidence = if action == "EXTERNAL_RESOLUTION" {
            ", reference: \"BILL-7\", note: \"active in billing\""
        } else {
            ""
        };
        let client = server.client.clone();
        async move {
            client
                .raw(
                    &operator,
                    &format!(
                        "mutation($c: String!, $o: String!, $l: String!) {{ resolveFallout(
                           commandId: $c, orderId: $o, lineId: $l, action: {action}{evidence})
                           {{ correlationId }} }}"
                    ),
                    json!({ "c": unique("resolve"), "o": order_id, "l": line_id }),
                )
                .await
                .1
        }
    };
    let refused = resolve("NEW_ATTEMPT").await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "RULE_VIOLATION",
        "{refused}"
    );
    assert_eq!(
        refused["errors"][0]["extensions"]["rule"], "step_may_have_taken_effect",
        "{refused}"
    );
    let resolved = resolve("EXTERNAL_RESOLUTION").await;
    assert!(resolved["errors"].is_null(), "{resolved}");
    let started = Instant::now();
    loop {
        let (_, body) = server
            .client
            .raw(
                &operator,
                "query($o: String!) { order(id: $o) { status } }",
                json!({ "o": order_id }),
            )
            .await;
        if body["data"]["order"]["status"] == "COMPLETED" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let journal = std::fs::read_to_string(server.data_dir.join("simulators/journal.jsonl"))
        .unwrap_or_default();
    // The effects billing keeps for this order, by idempotency key.
    let activations: std::collections::BTreeSet<String> = journal
        .lines()
        .filter(|line| line.contains(order_id.as_str()))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["kind"] == "effect" && entry["system"] == "billing")
        .filter_map(|entry| entry["key"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(activations.len(), 1, "{journal}");
}

/// A step that never completes becomes an SLA breach once it has been
/// pending past `[simulator] fallout_after_ms` (the simulated systems had no
/// such key, so it only ever showed as overdue), and the case offers no new
/// attempt: the step may still complete at the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_never_completes_breaches_its_sla_and_gets_no_new_attempt() {
    let server = Server::start_with(ServerOptions {
        config: "reconciliation_interval_ms = 200\n[simulator]\nread_timeout_ms = 500\n\
                 sla_ms = 2000\nfallout_after_ms = 3000\n"
            .to_owned(),
        ..ServerOptions::default()
    });
    let breached = line_case_after(
        &server,
        "provisioning",
        "NeverCompletes",
        "ACTIVATE",
        "cust-never",
    )
    .await;
    assert_eq!(breached["reason"], "SLA_BREACH", "{breached}");
    assert_eq!(
        breached["allowedActions"],
        json!(["EXTERNAL_RESOLUTION", "CANCEL_LINE"]),
        "{breached}"
    );
}

/// Cancelling a line whose billing activation may have taken effect (its
/// answer unreadable) undoes the steps before billing, cancelling
/// provisioning and releasing the reservation at the simulated targets,
/// and reports billing alone as uncompensated (ADR 0054). Found by a
/// black-box probe: the order was cancelled with nothing undone and all
/// three steps reported, the capacity held and the service left active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_after_billing_may_have_taken_effect_undoes_the_steps_before_it() {
    let server = Server::start();
    let operator = server.token("operator");
    let held = line_case_after(
        &server,
        "billing",
        "UnknownStatusCode",
        "ACTIVATE_BILLING",
        "cust-unknown-bill",
    )
    .await;
    let (order_id, line_id) = order_and_line(&held);
    cancel_line(&server, &order_id, &line_id).await;

    let started = Instant::now();
    let order = loop {
        let (_, body) = server
            .client
            .raw(
                &operator,
                "query($id: String!) { order(id: $id) { status
                   uncompensated { lineId step }
                   lines { history { kind purpose compensationOutcome } } } }",
                json!({ "id": order_id }),
            )
            .await;
        let order = body["data"]["order"].clone();
        let settled = order["lines"][0]["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["kind"] == "COMPENSATION_SETTLED")
            .count();
        if settled == 2 {
            break order;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the compensations did not settle: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(order["status"], "CANCELLED", "{order}");
    let mut undone: Vec<(String, String)> = order["lines"][0]["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["kind"] == "COMPENSATION_SETTLED")
        .map(|h| {
            (
                h["purpose"].as_str().unwrap_or_default().to_owned(),
                h["compensationOutcome"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    undone.sort();
    assert_eq!(
        undone,
        [
            ("CANCEL".to_owned(), "DONE".to_owned()),
            ("RELEASE".to_owned(), "DONE".to_owned())
        ],
        "{order}"
    );
    assert_eq!(
        order["uncompensated"],
        json!([{ "lineId": line_id, "step": "BILLING_ACTIVATION" }]),
        "{order}"
    );
}

/// A line's compensations run one at a time, furthest effect first: when
/// provisioning refuses to cancel the service, the reservation is not
/// released under the live service; it is once an operator closes the
/// cancel's case (ADR 0064). Found by a probe: both went out at once, and
/// the release was done while the cancel was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_compensation_holds_back_the_one_before_it_until_its_case_is_closed() {
    let server = Server::start();
    let operator = server.token("operator");
    // Billing refuses: provisioning and the reservation took effect.
    let held = line_case_after(
        &server,
        "billing",
        "BusinessReject",
        "ACTIVATE_BILLING",
        "cust-sequenced",
    )
    .await;
    let (order_id, line_id) = order_and_line(&held);
    server
        .script_simulator("provisioning", &["BusinessReject"])
        .await;
    cancel_line(&server, &order_id, &line_id).await;
    let cancel = case(&server, false, |c| c["purpose"] == "CANCEL").await;
    assert_eq!(cancel["lineInFallout"], false, "{cancel}");

    let order_of = || async {
        let (_, body) = server
            .client
            .raw(
                &operator,
                "query($id: String!) { order(id: $id) { lines {
                   handoffs { handoffId purpose }
                   history { kind purpose compensationOutcome } } } }",
                json!({ "id": order_id }),
            )
            .await;
        body["data"]["order"]["lines"][0].clone()
    };
    let line = order_of().await;
    let release_id = line["handoffs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["purpose"] == "RELEASE")
        .and_then(|h| h["handoffId"].as_str())
        .unwrap_or_else(|| panic!("the plan names a release: {line}"))
        .to_owned();
    let release_opened = || async {
        let (_, body) = server
            .client
            .raw(
                &operator,
                "query($id: String!) { handoff(id: $id) { id } }",
                json!({ "id": release_id }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        !body["data"]["handoff"].is_null()
    };
    // The cancel was refused; the release waits, however long.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !release_opened().await,
        "the release went out while the service may be live"
    );

    // The operator cancels the service by hand and closes the case: the
    // release goes out and is done.
    let closed = resolve_on_handoff(
        &server,
        &unique("cancelled-by-hand"),
        cancel["handoffId"].as_str().unwrap_or_default(),
    )
    .await;
    assert!(closed["errors"].is_null(), "{closed}");
    let started = Instant::now();
    let history = loop {
        let line = order_of().await;
        let history: Vec<(String, String, String)> = line["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["purpose"].is_string())
            .map(|h| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                (
                    text(&h["kind"]),
                    text(&h["purpose"]),
                    text(&h["compensationOutcome"]),
                )
            })
            .collect();
        if history.iter().any(|(kind, purpose, outcome)| {
            kind == "COMPENSATION_SETTLED" && purpose == "RELEASE" && outcome == "DONE"
        }) {
            break history;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the release never settled: {line}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(release_opened().await);
    let entry = |kind: &str, purpose: &str, outcome: &str| {
        (kind.to_owned(), purpose.to_owned(), outcome.to_owned())
    };
    let compensations: Vec<_> = history
        .into_iter()
        .filter(|(kind, _, _)| kind.starts_with("COMPENSATION"))
        .collect();
    assert_eq!(
        compensations,
        [
            entry("COMPENSATION_REQUESTED", "CANCEL", ""),
            entry("COMPENSATION_SETTLED", "CANCEL", "FAILED"),
            entry("COMPENSATION_SETTLED", "CANCEL", "CLOSED"),
            entry("COMPENSATION_REQUESTED", "RELEASE", ""),
            entry("COMPENSATION_SETTLED", "RELEASE", "DONE"),
        ]
    );
}
