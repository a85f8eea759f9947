//! The CRM failure policy at acceptance (seed 001 §11.2), over the real
//! binary and its simulated CRM: CRM is asked again before a quote is
//! accepted; a changed customer is recorded as drift and the acceptance
//! refused until the seller revalidates; a CRM that does not answer holds
//! the quote (nothing recorded, the same command retried later succeeds);
//! a record nobody can read puts the quote in integration fallout until
//! it is revalidated.

use serde_json::json;
use tests::{ops, unique, Server};

const DRIFT: &str = r#"query Drift($id: String!) {
  quote(id: $id) { status revision needsRevalidation customer { segment authorityReference } customerDrift { segment authorityReference } }
}"#;

async fn drift_of(server: &Server, token: &str, quote: &str) -> serde_json::Value {
    let (status, body) = server
        .client
        .raw(token, DRIFT, json!({ "id": quote }))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["quote"].clone()
}

/// `revalidateQuoteCustomer` on `quote` as the holder of `token`.
async fn revalidate(
    server: &Server,
    token: &str,
    quote: &str,
) -> Result<ops::revalidate_quote_customer::ResponseData, tests::GqlError> {
    server
        .client
        .run::<ops::RevalidateQuoteCustomer>(
            token,
            ops::revalidate_quote_customer::Variables {
                command_id: unique("revalidate"),
                quote_id: quote.to_owned(),
                expected_version: None,
            },
        )
        .await
}

/// A quote up to its signature, for `customer`.
async fn signed(server: &Server, token: &str, customer: &str) -> String {
    let client = &server.client;
    let quote = client
        .create_quote(token, &unique("create"), customer)
        .await
        .unwrap();
    client
        .add_line(token, &quote, "line-1", "fiber-1g")
        .await
        .unwrap();
    client.price(token, &quote, "5").await.unwrap();
    client.propose_and_sign(token, &quote, 1).await.unwrap();
    quote
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_changed_in_crm_is_recorded_as_drift_and_blocks_acceptance_until_revalidated() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    // The simulated CRM moves `drift-*` customers to another segment and
    // record after their first lookup.
    let quote = signed(&server, &sales, "drift-acme").await;
    let refused = client.accept(&sales, &quote).await.unwrap_err();
    assert_eq!(refused.code(), "RULE_VIOLATION", "{refused:?}");
    assert_eq!(refused.extensions["rule"], "customer_drift_unresolved");
    let seen = drift_of(&server, &sales, &quote).await;
    assert_eq!(seen["status"], "SIGNED", "{seen}");
    assert_eq!(seen["needsRevalidation"], true, "{seen}");
    assert_eq!(seen["customer"]["authorityReference"], "crm-rev-1");
    assert_eq!(seen["customerDrift"]["authorityReference"], "crm-rev-2");
    assert_eq!(seen["customerDrift"]["segment"], "enterprise");

    // A viewer may not revalidate; the seller does, and the quote starts a
    // new revision on the fresh snapshot.
    let denied = revalidate(&server, &server.token("viewer"), &quote)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), "FORBIDDEN");
    revalidate(&server, &sales, &quote).await.unwrap();
    let seen = drift_of(&server, &sales, &quote).await;
    assert_eq!(seen["needsRevalidation"], false, "{seen}");
    assert_eq!(seen["customer"]["segment"], "enterprise", "{seen}");
    assert_eq!(seen["revision"], 2, "{seen}");
    // Priced, proposed and signed again, it is accepted.
    client.price(&sales, &quote, "5").await.unwrap();
    client.propose_and_sign(&sales, &quote, 2).await.unwrap();
    client.accept(&sales, &quote).await.unwrap();
    assert_eq!(
        drift_of(&server, &sales, &quote).await["status"],
        "ACCEPTED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_that_does_not_answer_holds_the_quote_and_the_same_command_later_succeeds() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    let quote = signed(&server, &sales, "cust-held").await;
    server.script_simulator("crm", &["ServerError"]).await;
    let variables = ops::accept_quote::Variables {
        command_id: unique("accept"),
        quote_id: quote.clone(),
        expected_version: None,
        billing_account: "ba-1".to_owned(),
    };
    let held = client
        .run::<ops::AcceptQuote>(&sales, variables.clone())
        .await
        .unwrap_err();
    assert_eq!(held.code(), "UNAVAILABLE", "{held:?}");
    assert_eq!(drift_of(&server, &sales, &quote).await["status"], "SIGNED");
    let accepted = client
        .run::<ops::AcceptQuote>(&sales, variables)
        .await
        .unwrap();
    assert!(!tests::answered(accepted.accept_quote.as_ref()).deduplicated);
    assert_eq!(
        drift_of(&server, &sales, &quote).await["status"],
        "ACCEPTED"
    );
}

const STANDING: &str = r#"query Standing($id: String!) {
  quote(id: $id) { status customerSuspension approval { state reason { discount } } }
}"#;

async fn standing(server: &Server, token: &str, quote: &str) -> serde_json::Value {
    let (status, body) = server
        .client
        .raw(token, STANDING, json!({ "id": quote }))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["quote"].clone()
}

async fn approve(server: &Server, token: &str, quote: &str) {
    server
        .client
        .run::<ops::ApproveQuote>(
            token,
            ops::approve_quote::Variables {
                command_id: unique("approve"),
                quote_id: quote.to_owned(),
                expected_version: None,
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_account_is_quoted_only_with_approval_and_a_closed_one_not_at_all() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");

    // Closed: a business rejection, nothing recorded.
    let closed = client
        .create_quote(&sales, &unique("create"), "closed-9")
        .await
        .unwrap_err();
    assert_eq!(closed.code(), "RULE_VIOLATION", "{closed:?}");
    assert_eq!(closed.extensions["rule"], "customer_not_eligible");

    // Suspended at creation: the quote is made, and even a price without
    // discount needs an approver before a proposal or an acceptance.
    let quote = client
        .create_quote(&sales, &unique("create"), "suspended-acme")
        .await
        .unwrap();
    client
        .add_line(&sales, &quote, "line-1", "fiber-1g")
        .await
        .unwrap();
    client.price(&sales, &quote, "0").await.unwrap();
    let seen = standing(&server, &sales, &quote).await;
    assert_eq!(seen["customerSuspension"], "SUSPENDED", "{seen}");
    assert_eq!(seen["status"], "PENDING_APPROVAL", "{seen}");
    assert_eq!(seen["approval"]["state"], "REQUIRED", "{seen}");
    assert!(seen["approval"]["reason"].is_null(), "{seen}");
    let early = client
        .propose_and_sign(&sales, &quote, 1)
        .await
        .unwrap_err();
    assert_eq!(early.extensions["rule"], "approval_missing", "{early:?}");
    approve(&server, &server.token("admin"), &quote).await;
    client.propose_and_sign(&sales, &quote, 1).await.unwrap();
    client.accept(&sales, &quote).await.unwrap();
    assert_eq!(
        standing(&server, &sales, &quote).await["status"],
        "ACCEPTED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_suspended_before_acceptance_needs_a_new_approval() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    // `lapsing-*` is active at creation and suspended when asked again.
    let quote = signed(&server, &sales, "lapsing-acme").await;
    let command = unique("accept");
    let accept = |command_id: String| {
        client.run::<ops::AcceptQuote>(
            &sales,
            ops::accept_quote::Variables {
                command_id,
                quote_id: quote.clone(),
                expected_version: None,
                billing_account: "ba-1".to_owned(),
            },
        )
    };
    let refused = accept(command.clone()).await.unwrap_err();
    assert_eq!(
        refused.extensions["rule"], "approval_missing",
        "{refused:?}"
    );
    let seen = standing(&server, &sales, &quote).await;
    assert_eq!(seen["customerSuspension"], "SUSPENDED", "{seen}");
    assert_eq!(seen["status"], "PENDING_APPROVAL", "{seen}");
    // The same command again reports nothing twice and is refused alike.
    let again = accept(command).await.unwrap_err();
    assert_eq!(again.extensions["rule"], "approval_missing", "{again:?}");
    approve(&server, &server.token("admin"), &quote).await;
    accept(unique("accept")).await.unwrap();
    assert_eq!(
        standing(&server, &sales, &quote).await["status"],
        "ACCEPTED"
    );
}

/// CRM schema mismatch -> integration fallout (seed 001 §11.2): the
/// acceptance's customer check gets a record nobody can read; the quote
/// records it and refuses acceptance until someone revalidates once CRM
/// answers properly. The customer did not change, so the priced revision
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_crm_record_puts_the_quote_in_integration_fallout_until_revalidated() {
    let server = Server::start();
    let client = &server.client;
    let (sales, operator) = (server.token("sales"), server.token("operator"));
    let quote = signed(&server, &sales, "cust-schema").await;
    server.script_simulator("crm", &["MalformedBody"]).await;
    let command = unique("accept");
    let accept = |command_id: String| {
        let quote = quote.clone();
        let sales = sales.clone();
        async move {
            client
                .run::<ops::AcceptQuote>(
                    &sales,
                    ops::accept_quote::Variables {
                        command_id,
                        quote_id: quote,
                        expected_version: None,
                        billing_account: "ba-1".to_owned(),
                    },
                )
                .await
        }
    };
    let refused = accept(command.clone()).await.unwrap_err();
    assert_eq!(refused.code(), "RULE_VIOLATION", "{refused:?}");
    assert_eq!(refused.extensions["rule"], "customer_check_failed");
    let held = r#"query Held($id: String!) {
      quote(id: $id) { status revision needsRevalidation customerCheckFailure }
    }"#;
    let (_, body) = client.raw(&sales, held, json!({ "id": quote })).await;
    let seen = &body["data"]["quote"];
    assert_eq!(seen["status"], "SIGNED", "{body}");
    assert_eq!(seen["needsRevalidation"], true, "{body}");
    assert!(
        seen["customerCheckFailure"]
            .as_str()
            .is_some_and(|f| f.contains("unexpected shape")),
        "{body}"
    );
    // CRM answers properly again, but the fallout holds until revalidated.
    let still = accept(unique("accept")).await.unwrap_err();
    assert_eq!(
        still.extensions["rule"], "customer_check_failed",
        "{still:?}"
    );
    revalidate(&server, &operator, &quote).await.unwrap();
    let (_, body) = client.raw(&sales, held, json!({ "id": quote })).await;
    let seen = &body["data"]["quote"];
    assert_eq!(seen["needsRevalidation"], false, "{body}");
    assert!(seen["customerCheckFailure"].is_null(), "{body}");
    assert_eq!(seen["revision"], 1, "the customer did not change: {body}");
    accept(unique("accept")).await.unwrap();
    let (_, body) = client.raw(&sales, held, json!({ "id": quote })).await;
    assert_eq!(body["data"]["quote"]["status"], "ACCEPTED", "{body}");
}

/// The customer check runs again whenever an acceptance is decided: the
/// acceptance refused for an unreadable record, sent again with its own
/// command id after a revalidation while CRM answers unreadably again,
/// is refused again (the check's report is keyed by the quote's state,
/// not only by the client's command id, which once let it through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptance_sent_again_after_a_revalidation_is_checked_against_crm_again() {
    let server = Server::start();
    let client = &server.client;
    let (sales, operator) = (server.token("sales"), server.token("operator"));
    let quote = signed(&server, &sales, "cust-again").await;
    let command = unique("accept");
    let accept = || {
        client.run::<ops::AcceptQuote>(
            &sales,
            ops::accept_quote::Variables {
                command_id: command.clone(),
                quote_id: quote.clone(),
                expected_version: None,
                billing_account: "ba-1".to_owned(),
            },
        )
    };
    server.script_simulator("crm", &["MalformedBody"]).await;
    let refused = accept().await.unwrap_err();
    assert_eq!(refused.extensions["rule"], "customer_check_failed");
    revalidate(&server, &operator, &quote).await.unwrap();
    server.script_simulator("crm", &["MalformedBody"]).await;
    let again = accept().await.unwrap_err();
    assert_eq!(
        again.extensions["rule"], "customer_check_failed",
        "{again:?}"
    );
    let held = r#"query Held($id: String!) { quote(id: $id) { status customerCheckFailure } }"#;
    let (_, body) = client.raw(&sales, held, json!({ "id": quote })).await;
    assert_eq!(body["data"]["quote"]["status"], "SIGNED", "{body}");
    assert!(
        body["data"]["quote"]["customerCheckFailure"].is_string(),
        "{body}"
    );
}

/// A fault the CRM or document simulator cannot play (a lookup has
/// nothing to reject or call back) is refused naming what it plays; a
/// probe had `BusinessReject` for CRM answered `true` and used up by the
/// next lookup with no effect.
#[tokio::test]
async fn a_fault_a_simulator_cannot_play_is_refused_naming_what_it_plays() {
    let server = Server::start();
    let admin = server.token("admin");
    let script = |system: &str, fault: &str| {
        format!("mutation {{ scriptSimulator(system: \"{system}\", faults: [\"{fault}\"]) }}")
    };
    for (system, fault) in [
        ("crm", "BusinessReject"),
        ("crm", "DropCallback"),
        ("document", "CallbackTwice"),
        // Notification answers each request itself (a re-probe had
        // `DropCallback` used up by a notification that succeeded).
        ("notification", "DropCallback"),
    ] {
        let (_, body) = server
            .client
            .raw(&admin, &script(system, fault), json!({}))
            .await;
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["code"], "VALIDATION", "{body}");
        assert_eq!(error["extensions"]["field"], "faults", "{body}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("cannot play `{fault}`")) && message.contains("ServerError"),
            "{message}"
        );
    }
    for (system, fault) in [
        ("crm", "UnknownExternalStatus"),
        ("document", "BusinessReject"),
        // The document service's generated documents play these (a
        // re-probe found them refused).
        ("document", "NeverCompletes"),
        ("document", "UnknownExternalStatus"),
        ("notification", "BusinessReject"),
        ("inventory", "DropCallback"),
    ] {
        let (_, body) = server
            .client
            .raw(&admin, &script(system, fault), json!({}))
            .await;
        assert_eq!(
            body["data"]["scriptSimulator"], true,
            "{system} {fault}: {body}"
        );
    }
}
