//! Proposal generation over the real binary and its simulated document
//! service: a proposal is rendered from the revision's immutable snapshot,
//! the same snapshot and template give the same artifact hash, the
//! signature must match that hash, and a service that does not answer
//! records nothing and is retried with the same command.

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

    // A signature of another document is refused at acceptance.
    sign(&server, &sales, &quote, &"0".repeat(64)).await;
    let refused = client.accept(&sales, &quote).await.unwrap_err();
    assert_eq!(
        refused.extensions["rule"], "signature_for_another_artifact",
        "{refused:?}"
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
    assert!(!done.generate_proposal.deduplicated);
    assert!(!proposal(&server, &sales, &quote).await["proposal"].is_null());
}
