//! Proposal generation over the real binary and its simulated document
//! service: a proposal is rendered from the revision's immutable snapshot,
//! the same snapshot and template give the same artifact hash, the
//! signature must match that hash, and a service that does not answer
//! records nothing and is retried with the same command. An order's
//! confirmation is rendered as a handoff, and a refused one is a fallout
//! case closed on its handoff.

use serde_json::json;
use tests::{ops, unique, GqlError, Server};

const PROPOSAL: &str = r#"query Proposal($id: String!) {
  quote(id: $id) { status revision proposal { revision current artifactId artifactHash templateVersion } }
}"#;

async fn proposal(server: &Server, token: &str, quote: &str) -> serde_json::Value {
    let (status, body) = server
        .client
        .raw(token, PROPOSAL, json!({ "id": quote }))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["quote"].clone()
}

async fn generate(
    server: &Server,
    token: &str,
    quote: &str,
    command_id: &str,
    template: &str,
) -> Result<ops::generate_proposal::ResponseData, GqlError> {
    server
        .client
        .run::<ops::GenerateProposal>(
            token,
            ops::generate_proposal::Variables {
                command_id: command_id.to_owned(),
                quote_id: quote.to_owned(),
                expected_version: None,
                template_version: template.to_owned(),
                locale: Some("en".to_owned()),
            },
        )
        .await
}

async fn sign(server: &Server, token: &str, quote: &str, hash: &str) {
    server
        .client
        .run::<ops::RecordSignature>(
            token,
            ops::record_signature::Variables {
                command_id: unique("signature"),
                quote_id: quote.to_owned(),
                expected_version: None,
                revision: 1,
                signer: "Jane Customer".to_owned(),
                provider_reference: format!("esign-{quote}"),
                artifact_hash: hash.to_owned(),
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_is_rendered_from_its_snapshot_and_the_signature_must_match_it() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    let quote = client
        .create_quote(&sales, &unique("create"), "cust-doc")
        .await
        .unwrap();
    // Unpriced: nothing to render.
    let refused = generate(&server, &sales, &quote, &unique("gen"), "t-1")
        .await
        .unwrap_err();
    assert_eq!(refused.extensions["rule"], "price_missing", "{refused:?}");
    client
        .add_line(&sales, &quote, "line-1", "fiber-1g")
        .await
        .unwrap();
    client.price(&sales, &quote, "5").await.unwrap();

    generate(&server, &sales, &quote, &unique("gen"), "t-1")
        .await
        .unwrap();
    let first = proposal(&server, &sales, &quote).await["proposal"].clone();
    let hash = first["artifactHash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64, "{first}");
    assert_eq!(first["templateVersion"], "t-1");
    assert_eq!(first["current"], true);
    // The same snapshot and template render the same artifact; another
    // template another one.
    generate(&server, &sales, &quote, &unique("gen"), "t-2")
        .await
        .unwrap();
    let other = proposal(&server, &sales, &quote).await["proposal"].clone();
    assert_ne!(other["artifactHash"], first["artifactHash"], "{other}");
    generate(&server, &sales, &quote, &unique("gen"), "t-1")
        .await
        .unwrap();
    let again = proposal(&server, &sales, &quote).await["proposal"].clone();
    assert_eq!(again["artifactHash"], first["artifactHash"], "{again}");
    assert_eq!(again["artifactId"], first["artifactId"], "{again}");

    // A signature of another document is refused when it is recorded
    // (ADR 0053), and the quote stays unsigned.
    let refused = client
        .run::<ops::RecordSignature>(
            &sales,
            ops::record_signature::Variables {
                command_id: unique("signature"),
                quote_id: quote.clone(),
                expected_version: None,
                revision: 1,
                signer: "Jane Customer".to_owned(),
                provider_reference: format!("esign-{quote}"),
                artifact_hash: "0".repeat(64),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.extensions["rule"], "signature_for_another_artifact",
        "{refused:?}"
    );
    let unsigned = client.accept(&sales, &quote).await.unwrap_err();
    assert_eq!(
        unsigned.extensions["rule"], "signature_missing",
        "{unsigned:?}"
    );
    sign(&server, &sales, &quote, &hash).await;
    client.accept(&sales, &quote).await.unwrap();
    assert_eq!(
        proposal(&server, &sales, &quote).await["status"],
        "ACCEPTED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_service_that_does_not_answer_records_nothing_and_the_same_command_succeeds() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    let quote = client
        .create_quote(&sales, &unique("create"), "cust-doc-down")
        .await
        .unwrap();
    client
        .add_line(&sales, &quote, "line-1", "fiber-1g")
        .await
        .unwrap();
    client.price(&sales, &quote, "5").await.unwrap();
    server.script_simulator("document", &["ServerError"]).await;
    let command = unique("gen");
    let down = generate(&server, &sales, &quote, &command, "t-1")
        .await
        .unwrap_err();
    assert_eq!(down.code(), "UNAVAILABLE", "{down:?}");
    assert!(proposal(&server, &sales, &quote).await["proposal"].is_null());
    let done = generate(&server, &sales, &quote, &command, "t-1")
        .await
        .unwrap();
    assert!(!tests::answered(done.generate_proposal.as_ref()).deduplicated);
    assert!(!proposal(&server, &sales, &quote).await["proposal"].is_null());
}

/// Polls `query` until `pick` finds a node at `path` (a list), or panics
/// after 60 s with the last answer.
async fn node(
    server: &Server,
    token: &str,
    query: &str,
    path: &[&str],
    pick: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let (_, body) = server.client.raw(token, query, json!({})).await;
        let list = path.iter().fold(&body["data"], |v, key| &v[*key]);
        if let Some(found) = list.as_array().into_iter().flatten().find(|n| pick(n)) {
            return found.clone();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "not found; last answer {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

const DOCUMENT_HANDOFFS: &str =
    "{ handoffs(targetSystem: DOCUMENT, first: 100) { nodes { id orderId status purpose } } }";
const DOCUMENT_CASES: &str = "{ fallout(targetSystem: DOCUMENT, first: 100) {
  nodes { handoffId orderId purpose lineInFallout allowedActions status } } }";

/// An order's confirmation is a handoff of its own to the document service:
/// a refused render is a fallout case no line holds, closed on its handoff,
/// and the order is fulfilled all the same; the next order's confirmation
/// is rendered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_confirmation_is_a_handoff_and_a_refused_one_is_closed_on_its_handoff() {
    let server = Server::start();
    let client = &server.client;
    let (sales, operator) = (server.token("sales"), server.token("operator"));
    server
        .script_simulator("document", &["ValidationReject"])
        .await;
    client
        .accepted_quote(&sales, "cust-confirm-refused", &["fiber-1g"])
        .await
        .unwrap();
    let case = node(
        &server,
        &operator,
        DOCUMENT_CASES,
        &["fallout", "nodes"],
        |_| true,
    )
    .await;
    assert_eq!(case["purpose"], "GENERATE_DOCUMENT", "{case}");
    assert_eq!(case["lineInFallout"], false, "{case}");
    assert_eq!(
        case["allowedActions"],
        json!(["EXTERNAL_RESOLUTION"]),
        "{case}"
    );
    let order = case["orderId"].as_str().unwrap_or_default().to_owned();
    let status = "query($id: String!) { order(id: $id) { status } }";
    let started = std::time::Instant::now();
    loop {
        let (_, body) = client.raw(&operator, status, json!({ "id": order })).await;
        if body["data"]["order"]["status"] == "COMPLETED" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the order did not complete: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, closed) = client
        .raw(
            &operator,
            "mutation($c: String!, $h: String!) { resolveHandoffFallout(commandId: $c,
               handoffId: $h, reference: \"DOC-MANUAL-1\", note: \"confirmation sent by hand\") {
               correlationId } }",
            json!({ "c": unique("close"), "h": case["handoffId"] }),
        )
        .await;
    assert!(closed["errors"].is_null(), "{closed}");

    // With the service answering, the next order's confirmation is rendered.
    client
        .accepted_quote(&sales, "cust-confirm", &["fiber-1g"])
        .await
        .unwrap();
    let rendered = node(
        &server,
        &operator,
        DOCUMENT_HANDOFFS,
        &["handoffs", "nodes"],
        |h| h["orderId"] != order.as_str() && h["status"] == "SUCCEEDED",
    )
    .await;
    assert_eq!(rendered["purpose"], "GENERATE_DOCUMENT", "{rendered}");
}

/// A signature of an earlier revision is kept as evidence but does not
/// make the current revision `SIGNED`: the quote's status says what
/// acceptance would find (it refuses a signature of another revision).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_of_an_earlier_revision_does_not_mark_the_current_one_signed() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    let quote = client
        .create_quote(&sales, &unique("create"), "cust-old-signature")
        .await
        .unwrap();
    client
        .add_line(&sales, &quote, "line-1", "fiber-1g")
        .await
        .unwrap();
    client.price(&sales, &quote, "0").await.unwrap();
    client.propose_and_sign(&sales, &quote, 1).await.unwrap();
    let status = |body: &serde_json::Value| body["data"]["quote"]["status"].clone();
    let read = || async {
        client
            .raw(
                &sales,
                "query($id: String!) { quote(id: $id) { status revision } }",
                json!({ "id": quote }),
            )
            .await
            .1
    };
    assert_eq!(status(&read().await), "SIGNED");
    client
        .add_line(&sales, &quote, "line-2", "fiber-1g")
        .await
        .unwrap();
    let revised = read().await;
    assert_eq!(revised["data"]["quote"]["revision"], 2, "{revised}");
    let (_, body) = client
        .raw(
            &sales,
            "mutation($c: String!, $q: String!) { recordSignature(commandId: $c, quoteId: $q,
               revision: 1, signer: \"Jane Customer\", providerReference: \"esign-late\",
               artifactHash: \"sha256-late\") { version } }",
            json!({ "c": unique("late-signature"), "q": quote }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let after = read().await;
    assert_eq!(status(&after), status(&revised), "{after}");
    assert_ne!(status(&after), "SIGNED", "{after}");
}

/// A signature of the current revision needs that revision's proposal, and
/// a revision the quote never had is refused: an unpriced, unproposed quote
/// used to read SIGNED after one `recordSignature`, and a signature of
/// revision 7 showed among its earlier revisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_needs_its_revisions_proposal_and_a_revision_the_quote_had() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    let quote = client
        .create_quote(&sales, &unique("create"), "cust-unproposed")
        .await
        .unwrap();
    client
        .add_line(&sales, &quote, "line-1", "fiber-1g")
        .await
        .unwrap();
    let sign = |revision: i64| {
        client.run::<ops::RecordSignature>(
            &sales,
            ops::record_signature::Variables {
                command_id: unique("signature"),
                quote_id: quote.clone(),
                expected_version: None,
                revision,
                signer: "Jane Customer".to_owned(),
                provider_reference: "esign-1".to_owned(),
                artifact_hash: "sha256-any".to_owned(),
            },
        )
    };
    for (revision, rule) in [
        (1, "proposal_missing"),
        (7, "signature_for_another_revision"),
    ] {
        let refused = sign(revision).await.unwrap_err();
        assert_eq!(refused.code(), "RULE_VIOLATION", "{}", refused.body);
        assert_eq!(refused.extensions["rule"], rule, "{}", refused.body);
    }
    let read = client
        .raw(
            &sales,
            "query($id: String!) { quote(id: $id) { status signature { revision } } }",
            json!({ "id": quote }),
        )
        .await
        .1;
    assert_ne!(read["data"]["quote"]["status"], "SIGNED", "{read}");
    assert!(read["data"]["quote"]["signature"].is_null(), "{read}");
}
