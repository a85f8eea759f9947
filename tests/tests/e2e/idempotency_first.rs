//! Idempotency comes first, for every command mutation: a retry of an
//! acknowledged command (same `commandId`, same arguments) returns its
//! first outcome with `deduplicated: true` whatever happened since (the
//! quote accepted or withdrawn, the order moved on, CRM down); the same
//! `commandId` with other arguments is `IDEMPOTENCY_CONFLICT`.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::{unique, Client, Server};

const RESULT: &str = "fragment R on CommandResult { id streamId version positions deduplicated }";

/// One acknowledged command: how to send it again, and a variant of its
/// arguments that must conflict.
struct Acked {
    mutation: &'static str,
    token: String,
    document: String,
    variables: Value,
    conflicting: Value,
    first: Value,
}

fn document(mutation: &str, parameters: &str, arguments: &str) -> String {
    format!("mutation({parameters}) {{ {mutation}({arguments}) {{ ...R }} }} {RESULT}")
}

/// Sends `document`; the mutation's result object, or the first error.
async fn send(
    client: &Client,
    token: &str,
    mutation: &str,
    document: &str,
    variables: &Value,
) -> Result<Value, Value> {
    let (_, body) = client.raw(token, document, variables.clone()).await;
    match body.get("errors").and_then(|e| e.get(0)) {
        Some(error) => Err(error.clone()),
        None => Ok(body["data"][mutation].clone()),
    }
}

/// Runs a command that must be acknowledged; records it for the retries.
async fn acknowledged(
    client: &Client,
    acked: &mut Vec<Acked>,
    token: &str,
    (mutation, parameters, arguments): (&'static str, &str, &str),
    variables: Value,
    conflicting: Value,
) -> Value {
    let document = document(mutation, parameters, arguments);
    let first = send(client, token, mutation, &document, &variables)
        .await
        .unwrap_or_else(|e| panic!("{mutation} {variables}: {e}"));
    assert_eq!(first["deduplicated"], false, "{mutation}: {first}");
    acked.push(Acked {
        mutation,
        token: token.to_owned(),
        document,
        variables,
        conflicting,
        first: first.clone(),
    });
    first
}

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The order captured from `quote`, once it has a line in fallout.
async fn order_in_fallout(client: &Client, viewer: &str, quote: &str) -> String {
    eventually(&format!("the order of {quote} in fallout"), || async {
        let (_, body) = client
            .raw(
                viewer,
                "{ orders(first: 200) { nodes { id hasFallout quoteId } } }",
                json!({}),
            )
            .await;
        body["data"]["orders"]["nodes"]
            .as_array()?
            .iter()
            .find(|o| o["quoteId"] == quote && o["hasFallout"] == true)
            .and_then(|o| o["id"].as_str().map(str::to_owned))
    })
    .await
}

fn line(id: &str, quantity: i64) -> Value {
    json!({"lineId": id, "offeringId": "fiber-1g", "offeringVersion": 1, "quantity": quantity, "termMonths": 24})
}

const CREATE: (&str, &str, &str) = (
    "createQuote",
    "$c: String!, $customer: String!",
    "commandId: $c, customerId: $customer",
);
const ADD: (&str, &str, &str) = (
    "addQuoteLine",
    "$c: String!, $q: String!, $line: LineInput!",
    "commandId: $c, quoteId: $q, line: $line",
);
const CHANGE: (&str, &str, &str) = (
    "changeQuoteLine",
    "$c: String!, $q: String!, $line: LineInput!",
    "commandId: $c, quoteId: $q, line: $line",
);
const REMOVE: (&str, &str, &str) = (
    "removeQuoteLine",
    "$c: String!, $q: String!, $line: String!",
    "commandId: $c, quoteId: $q, lineId: $line",
);
const PRICE: (&str, &str, &str) = (
    "priceQuote",
    "$c: String!, $q: String!, $d: String",
    "commandId: $c, quoteId: $q, discountPercent: $d",
);
const APPROVE: (&str, &str, &str) = (
    "approveQuote",
    "$c: String!, $q: String!, $v: Int",
    "commandId: $c, quoteId: $q, expectedVersion: $v",
);
const REJECT: (&str, &str, &str) = (
    "rejectQuoteApproval",
    "$c: String!, $q: String!, $reason: String!",
    "commandId: $c, quoteId: $q, reason: $reason",
);
const PROPOSAL: (&str, &str, &str) = (
    "recordProposal",
    "$c: String!, $q: String!, $hash: String!",
    "commandId: $c, quoteId: $q, revision: 1, artifactId: \"doc-1\", artifactHash: $hash, templateVersion: \"t-1\"",
);
const SIGNATURE: (&str, &str, &str) = (
    "recordSignature",
    "$c: String!, $q: String!, $hash: String!",
    "commandId: $c, quoteId: $q, revision: 1, signer: \"Jane\", providerReference: \"esign-1\", artifactHash: $hash",
);
const ACCEPT: (&str, &str, &str) = (
    "acceptQuote",
    "$c: String!, $q: String!, $ba: String!",
    "commandId: $c, quoteId: $q, billingAccount: $ba",
);
const WITHDRAW: (&str, &str, &str) = (
    "withdrawQuote",
    "$c: String!, $q: String!, $reason: String!",
    "commandId: $c, quoteId: $q, reason: $reason",
);
const CANCEL: (&str, &str, &str) = (
    "cancelOrder",
    "$c: String!, $o: String!, $reason: String!",
    "commandId: $c, orderId: $o, reason: $reason",
);
const RESOLVE: (&str, &str, &str) = (
    "resolveFallout",
    "$c: String!, $o: String!, $line: String!, $action: FalloutAction!, $note: String",
    "commandId: $c, orderId: $o, lineId: $line, action: $action, note: $note",
);

/// Opens, prices (20 %: approval needed), approves (`admin`: an approval
/// is an admin's), proposes, signs and accepts a one-line quote, recording
/// each command when `acked` is given.
async fn accepted_quote(
    client: &Client,
    sales: &str,
    admin: &str,
    acked: &mut Vec<Acked>,
) -> String {
    let c = || unique("c");
    let created = acknowledged(
        client,
        acked,
        sales,
        CREATE,
        json!({"c": c(), "customer": "cust-1"}),
        json!({"customer": "cust-2"}),
    )
    .await;
    let q = created["id"].as_str().unwrap().to_owned();
    acknowledged(
        client,
        acked,
        sales,
        ADD,
        json!({"c": c(), "q": q, "line": line("l1", 1)}),
        json!({"line": line("l1", 2)}),
    )
    .await;
    acknowledged(
        client,
        acked,
        sales,
        ADD,
        json!({"c": c(), "q": q, "line": line("l2", 1)}),
        json!({"line": line("l3", 1)}),
    )
    .await;
    acknowledged(
        client,
        acked,
        sales,
        CHANGE,
        json!({"c": c(), "q": q, "line": line("l2", 2)}),
        json!({"line": line("l2", 3)}),
    )
    .await;
    acknowledged(
        client,
        acked,
        sales,
        REMOVE,
        json!({"c": c(), "q": q, "line": "l2"}),
        json!({"line": "l1"}),
    )
    .await;
    acknowledged(
        client,
        acked,
        sales,
        PRICE,
        json!({"c": c(), "q": q, "d": "20"}),
        json!({"d": "21"}),
    )
    .await;
    acknowledged(
        client,
        acked,
        admin,
        APPROVE,
        json!({"c": c(), "q": q, "v": null}),
        json!({"v": 99}),
    )
    .await;
    let hash = format!("sha256-{q}");
    acknowledged(
        client,
        acked,
        sales,
        PROPOSAL,
        json!({"c": c(), "q": q, "hash": hash}),
        json!({"hash": "other"}),
    )
    .await;
    acknowledged(
        client,
        acked,
        sales,
        SIGNATURE,
        json!({"c": c(), "q": q, "hash": hash}),
        json!({"hash": "other"}),
    )
    .await;
    acknowledged(
        client,
        acked,
        sales,
        ACCEPT,
        json!({"c": c(), "q": q, "ba": "ba-1"}),
        json!({"ba": "ba-2"}),
    )
    .await;
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_comes_first_for_every_mutation_whatever_happened_since() {
    let server = Server::start();
    let client = &server.client;
    let (sales, operator, viewer, admin) = (
        server.token("sales"),
        server.token("operator"),
        server.token("viewer"),
        server.token("admin"),
    );
    // Two orders fall out at their first reservation.
    client
        .raw(
            &admin,
            "mutation { scriptSimulator(system: \"inventory\", faults: [\"BusinessReject\", \"BusinessReject\"]) }",
            json!({}),
        )
        .await;
    let mut acked = Vec::new();
    let first = accepted_quote(client, &sales, &admin, &mut acked).await;
    let second = accepted_quote(client, &sales, &admin, &mut Vec::new()).await;

    // A quote whose approval is rejected, then withdrawn.
    let c = || unique("c");
    let created = acknowledged(
        client,
        &mut acked,
        &sales,
        CREATE,
        json!({"c": c(), "customer": "cust-w"}),
        json!({"customer": "cust-x"}),
    )
    .await;
    let w = created["id"].as_str().unwrap().to_owned();
    acknowledged(
        client,
        &mut acked,
        &sales,
        ADD,
        json!({"c": c(), "q": w, "line": line("l1", 1)}),
        json!({"q": first}),
    )
    .await;
    acknowledged(
        client,
        &mut acked,
        &sales,
        PRICE,
        json!({"c": c(), "q": w, "d": "20"}),
        json!({"d": null}),
    )
    .await;
    acknowledged(
        client,
        &mut acked,
        &admin,
        REJECT,
        json!({"c": c(), "q": w, "reason": "too deep"}),
        json!({"reason": "other"}),
    )
    .await;
    acknowledged(
        client,
        &mut acked,
        &sales,
        WITHDRAW,
        json!({"c": c(), "q": w, "reason": "lost"}),
        json!({"reason": "won"}),
    )
    .await;

    // One order is cancelled, the other's fallout resolved.
    let cancelled = order_in_fallout(client, &viewer, &first).await;
    let resolved = order_in_fallout(client, &viewer, &second).await;
    acknowledged(
        client,
        &mut acked,
        &operator,
        CANCEL,
        json!({"c": c(), "o": cancelled, "reason": "customer left"}),
        json!({"reason": "other"}),
    )
    .await;
    acknowledged(
        client,
        &mut acked,
        &operator,
        RESOLVE,
        json!({"c": c(), "o": resolved, "line": "l1", "action": "NEW_ATTEMPT"}),
        json!({"action": "CANCEL_LINE", "note": "customer left"}),
    )
    .await;
    let covered: std::collections::BTreeSet<_> = acked.iter().map(|a| a.mutation).collect();
    assert_eq!(
        covered.len(),
        13,
        "every command mutation is covered: {covered:?}"
    );

    // Since then: both quotes accepted or withdrawn, orders moved on. Every
    // retry answers its first outcome; a fresh decision would be refused.
    for a in &acked {
        let again = send(client, &a.token, a.mutation, &a.document, &a.variables)
            .await
            .unwrap_or_else(|e| panic!("retried {} {}: {e}", a.mutation, a.variables));
        assert_eq!(again["deduplicated"], true, "{}: {again}", a.mutation);
        for field in ["id", "streamId", "version", "positions"] {
            assert_eq!(again[field], a.first[field], "{} {field}", a.mutation);
        }
        let mut other = a.variables.clone();
        for (key, value) in a.conflicting.as_object().unwrap() {
            other[key] = value.clone();
        }
        let error = send(client, &a.token, a.mutation, &a.document, &other)
            .await
            .expect_err("other arguments under the same commandId");
        assert_eq!(
            error["extensions"]["code"], "IDEMPOTENCY_CONFLICT",
            "{}: {error}",
            a.mutation
        );
        let id = a.variables["c"].as_str().unwrap();
        assert!(error["message"].as_str().unwrap().contains(id), "{error}");
    }
}

#[tokio::test]
async fn idempotency_comes_first_a_retried_create_does_not_ask_crm_again() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    let first = client
        .create_quote(&sales, "create-once", "cust-1")
        .await
        .unwrap();
    // CRM now answers 500 to the next two lookups.
    let (_, body) = client
        .raw(
            &server.token("admin"),
            "mutation { scriptSimulator(system: \"crm\", faults: [\"ServerError\", \"ServerError\"]) }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["scriptSimulator"], true, "{body}");
    let document = document(CREATE.0, CREATE.1, CREATE.2);
    let retry = send(
        client,
        &sales,
        CREATE.0,
        &document,
        &json!({"c": "create-once", "customer": "cust-1"}),
    )
    .await
    .unwrap_or_else(|e| panic!("the retry asked CRM: {e}"));
    assert_eq!(retry["deduplicated"], true);
    assert_eq!(retry["id"], first.as_str());
    // The retry consumed no scripted answer: both still fail a new create.
    for _ in 0..2 {
        let error = client
            .create_quote(&sales, &unique("create"), "cust-1")
            .await
            .expect_err("CRM is failing");
        assert_eq!(error.code(), "UNAVAILABLE", "{error:?}");
    }
    client
        .create_quote(&sales, &unique("create"), "cust-1")
        .await
        .unwrap();
}

/// A client that got no answer retries at once, often while its first
/// attempt is still being projected: every retry answers as the first
/// did, with the object the command changed, never a null `quote`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_comes_first_a_retry_racing_its_first_attempt_shows_the_object() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    let document = "mutation($c: String!) { createQuote(commandId: $c, customerId: \"cust-1\") \
                    { id deduplicated quote { id version } } }";
    let mut answers = Vec::new();
    for round in 0..60 {
        let command_id = unique(&format!("race-{round}"));
        let variables = json!({"c": command_id});
        let first = client.raw(&sales, document, variables.clone());
        // Retries one after another for as long as the first is unanswered:
        // some land after its append and before its projection.
        let retries = (0..8).map(|_| async {
            let mut retried = Vec::new();
            for _ in 0..10 {
                retried.push(client.raw(&sales, document, variables.clone()).await);
            }
            retried
        });
        let (first, retried) = tokio::join!(first, futures_util::future::join_all(retries));
        let round: Vec<_> = std::iter::once(first)
            .chain(retried.into_iter().flatten())
            .collect();
        let ids: std::collections::BTreeSet<String> = round
            .iter()
            .map(|(status, body)| {
                assert_eq!(*status, 200, "{body}");
                let result = &body["data"]["createQuote"];
                result["id"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1, "one quote per command id: {ids:?}");
        answers.extend(round);
    }
    let without_quote: Vec<_> = answers
        .iter()
        .filter(|(_, body)| {
            let result = &body["data"]["createQuote"];
            result["quote"]["id"] != result["id"] || result["quote"]["version"] != 1
        })
        .collect();
    assert!(
        without_quote.is_empty(),
        "{} of {} answers lack the quote, e.g. {:?}",
        without_quote.len(),
        answers.len(),
        without_quote.first()
    );
}
