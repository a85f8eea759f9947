//! An admin's consumer reset stops the fulfillment process, moves the
//! checkpoint and starts the process again. Requests that reach the
//! process meanwhile wait for the restart or are refused as retryable;
//! none is answered `INTERNAL`, and none is told a consumer that exists
//! does not.

use serde_json::{json, Value};
use tests::Server;

const RESET: &str = "mutation($name: String!, $to: Int!) {
  resetConsumer(name: $name, toPosition: $to, recovery: true) { consumer checkpoint } }";
const RECONCILE: &str = "mutation { triggerReconciliation { runId } }";

/// The error codes in a GraphQL answer, or `ok`.
fn outcome(body: &Value) -> String {
    match body["errors"].as_array() {
        Some(errors) => errors
            .iter()
            .map(|e| e["extensions"]["code"].as_str().unwrap_or("?").to_owned())
            .collect::<Vec<_>>()
            .join(","),
        None => "ok".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_racing_a_consumer_reset_wait_for_the_restart_or_are_retryable() {
    let server = Server::start();
    let admin = server.token("admin");
    let operator = server.token("operator");
    let mut tasks = Vec::new();
    for round in 0..4 {
        for name in ["handoff-dispatcher", "handoff-index"] {
            let client = server.client.clone();
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                let (_, body) = client
                    .raw(&admin, RESET, json!({ "name": name, "to": 0 }))
                    .await;
                (format!("reset {name} #{round}"), body)
            }));
        }
        for _ in 0..4 {
            let client = server.client.clone();
            let operator = operator.clone();
            tasks.push(tokio::spawn(async move {
                let (_, body) = client.raw(&operator, RECONCILE, json!({})).await;
                (format!("reconcile #{round}"), body)
            }));
        }
    }
    for task in tasks {
        let (what, body) = task.await.unwrap();
        let outcome = outcome(&body);
        assert!(
            outcome == "ok" || outcome == "UNAVAILABLE",
            "{what} answered {outcome}: {body}"
        );
    }
    // Once the resets are done, both consumers run again.
    let (_, body) = server.client.raw(&operator, RECONCILE, json!({})).await;
    assert_eq!(outcome(&body), "ok", "{body}");
}
