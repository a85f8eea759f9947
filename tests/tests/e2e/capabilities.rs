//! The capability registry: a tenant's capabilities come from its
//! configuration, the `capabilities` query shows the matrix, a quote whose
//! lines need a disabled capability is refused at acceptance by the rule
//! `capability_disabled` (nothing is captured or sent), and with account
//! validation off no quote is created.

use serde_json::{json, Value};
use tests::{unique, Server, ServerOptions};

const BILLING_OFF: &str = r#"
[systems.tenants.demo.capabilities]
BILLING_ACTIVATE_SUBSCRIPTION = { enabled = false, settings = { plan = "monthly" } }
"#;

async fn matrix(server: &Server) -> Vec<Value> {
    let (_, body) = server
        .client
        .raw(
            &server.token("viewer"),
            "{ capabilities { code system enabled state settings { name value } } }",
            json!({}),
        )
        .await;
    body["data"]["capabilities"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{body}"))
}

fn row<'a>(matrix: &'a [Value], code: &str) -> &'a Value {
    matrix
        .iter()
        .find(|r| r["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {matrix:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_disabled_refuses_acceptance_until_the_registry_enables_it() {
    let mut server = Server::start_with(ServerOptions {
        config: BILLING_OFF.to_owned(),
        ..ServerOptions::default()
    });
    let rows = matrix(&server).await;
    let billing = row(&rows, "BILLING_ACTIVATE_SUBSCRIPTION");
    assert_eq!(billing["enabled"], false, "{billing}");
    assert_eq!(billing["state"], "DISABLED_BY_CONFIGURATION");
    assert_eq!(billing["system"], "BILLING");
    assert_eq!(
        billing["settings"],
        json!([{ "name": "plan", "value": "monthly" }])
    );
    let reserve = row(&rows, "INVENTORY_RESERVE");
    assert_eq!(reserve["enabled"], true, "{reserve}");
    assert_eq!(reserve["state"], "ENABLED");
    assert_eq!(row(&rows, "CRM_VALIDATE_ACCOUNT")["enabled"], true);

    let sales = server.token("sales");
    let client = server.client.clone();
    let quote = client
        .create_quote(&sales, &unique("create"), "cust-cap")
        .await
        .unwrap();
    client
        .add_line(&sales, &quote, "l1", "fiber-1g")
        .await
        .unwrap();
    client.price(&sales, &quote, "0").await.unwrap();
    client.propose_and_sign(&sales, &quote, 1).await.unwrap();
    let error = client.accept(&sales, &quote).await.unwrap_err();
    assert_eq!(error.code(), "RULE_VIOLATION", "{error:?}");
    assert_eq!(error.extensions["rule"], "capability_disabled");
    assert!(
        error.message.contains("BILLING_ACTIVATE_SUBSCRIPTION") && error.message.contains("l1"),
        "{}",
        error.message
    );
    let (_, orders) = client
        .raw(&sales, "{ orders(first: 5) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(orders["data"]["orders"]["nodes"], json!([]), "{orders}");

    // The registry changes (configuration, read at start): the same quote
    // is accepted and its order captured.
    server.stop();
    let server = Server::start_with(ServerOptions {
        data_dir: Some(server.data_dir.clone()),
        ..ServerOptions::default()
    });
    assert_eq!(
        row(&matrix(&server).await, "BILLING_ACTIVATE_SUBSCRIPTION")["state"],
        "ENABLED"
    );
    server
        .client
        .accept(&server.token("sales"), &quote)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_account_validation_no_quote_is_created() {
    let server = Server::start_with(ServerOptions {
        config: "[systems.tenants.demo.capabilities]\nCRM_VALIDATE_ACCOUNT = { enabled = false }\n"
            .to_owned(),
        ..ServerOptions::default()
    });
    let error = server
        .client
        .create_quote(&server.token("sales"), &unique("create"), "cust-cap")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "RULE_VIOLATION", "{error:?}");
    assert_eq!(error.extensions["rule"], "capability_disabled");
    assert!(
        error.message.contains("CRM_VALIDATE_ACCOUNT"),
        "{}",
        error.message
    );
}
