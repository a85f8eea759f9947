//! The catalog as a control plane (seed 000 §10), over the real binary: an
//! admin activates and retires catalog versions (events on the tenant's
//! `catalog-<tenant>` stream); a quote records the version it is created
//! against; a retired version gets no new quote and no new price; an
//! accepted quote keeps its version; and all of it survives a restart.

use serde_json::json;
use tests::{ops, unique, GqlError, Server};

const QUOTE: &str = r#"query Q($id: String!) {
  quote(id: $id) { status catalogVersion order { id status } }
}"#;

async fn quote(server: &Server, token: &str, id: &str) -> serde_json::Value {
    let (status, body) = server.client.raw(token, QUOTE, json!({ "id": id })).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["quote"].clone()
}

async fn catalog(server: &Server, token: &str) -> ops::catalog::CatalogCatalog {
    server
        .client
        .run::<ops::Catalog>(token, ops::catalog::Variables {})
        .await
        .unwrap()
        .catalog
}

async fn activate(
    server: &Server,
    token: &str,
    command_id: &str,
    version: &str,
) -> Result<ops::activate_catalog_version::ResponseData, GqlError> {
    server
        .client
        .run::<ops::ActivateCatalogVersion>(
            token,
            ops::activate_catalog_version::Variables {
                command_id: command_id.to_owned(),
                version: version.to_owned(),
            },
        )
        .await
}

async fn retire(
    server: &Server,
    token: &str,
    version: &str,
) -> Result<ops::retire_catalog_version::ResponseData, GqlError> {
    server
        .client
        .run::<ops::RetireCatalogVersion>(
            token,
            ops::retire_catalog_version::Variables {
                command_id: unique("retire"),
                version: version.to_owned(),
                reason: "superseded by 2026.12".to_owned(),
            },
        )
        .await
}

async fn create(server: &Server, token: &str, version: Option<&str>) -> Result<String, GqlError> {
    server
        .client
        .run::<ops::CreateQuote>(
            token,
            ops::create_quote::Variables {
                command_id: unique("create"),
                customer_id: "cust-catalog".to_owned(),
                catalog_version: version.map(str::to_owned),
            },
        )
        .await
        .map(|data| tests::answered(data.create_quote).id)
}

fn rule(error: &GqlError) -> &str {
    assert_eq!(error.code(), "RULE_VIOLATION", "{error:?}");
    error.extensions["rule"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_catalog_versions_get_no_new_quote_or_price_and_accepted_quotes_keep_theirs() {
    let mut server = Server::start();
    let admin = server.token("admin");
    let sales = server.token("sales");

    // Unmanaged until the first activation: any version may be quoted.
    let before = catalog(&server, &sales).await;
    assert!(!before.managed && before.versions.is_empty(), "{before:?}");
    create(&server, &sales, Some("legacy-7")).await.unwrap();

    // Only an admin changes the catalog; a retried activation answers its
    // first outcome.
    let denied = activate(&server, &sales, &unique("act"), "2026.11").await;
    assert_eq!(denied.unwrap_err().code(), "FORBIDDEN");
    let command = unique("act");
    let first = activate(&server, &admin, &command, "2026.11")
        .await
        .unwrap();
    let again = activate(&server, &admin, &command, "2026.11")
        .await
        .unwrap();
    assert!(tests::answered(again.activate_catalog_version.as_ref()).deduplicated);
    assert_eq!(
        tests::answered(again.activate_catalog_version.as_ref()).positions,
        tests::answered(first.activate_catalog_version.as_ref()).positions
    );
    assert!(tests::answered(first.activate_catalog_version.as_ref())
        .stream_id
        .starts_with("catalog-"));
    let managed = catalog(&server, &sales).await;
    assert!(managed.managed, "{managed:?}");
    assert_eq!(managed.current_version.as_deref(), Some("2026.11"));

    // Managed: a version never activated is refused; none named means the
    // current one.
    let unknown = create(&server, &sales, Some("legacy-7")).await.unwrap_err();
    assert_eq!(rule(&unknown), "catalog_version_not_active");
    let client = &server.client;
    let accepted = client
        .accepted_quote(&sales, "cust-catalog", &["fiber-1g"])
        .await
        .unwrap();
    assert_eq!(
        quote(&server, &sales, &accepted).await["catalogVersion"],
        "2026.11"
    );
    let open = create(&server, &sales, None).await.unwrap();
    client
        .add_line(&sales, &open, "line-1", "fiber-1g")
        .await
        .unwrap();
    client.price(&sales, &open, "0").await.unwrap();

    // Retire it: no new price for the open quote, no new quote against it,
    // and with no active version left no default either.
    retire(&server, &admin, "2026.11").await.unwrap();
    client
        .add_line(&sales, &open, "line-2", "fiber-1g")
        .await
        .unwrap();
    let repriced = client.price(&sales, &open, "0").await.unwrap_err();
    assert_eq!(rule(&repriced), "catalog_version_retired");
    let named = create(&server, &sales, Some("2026.11")).await.unwrap_err();
    assert_eq!(rule(&named), "catalog_version_retired");
    let defaulted = create(&server, &sales, None).await.unwrap_err();
    assert_eq!(rule(&defaulted), "catalog_version_not_active");
    // Retirement is final; only an activated version can be retired.
    let back = activate(&server, &admin, &unique("act"), "2026.11")
        .await
        .unwrap_err();
    assert_eq!(rule(&back), "catalog_version_retired");
    let never = retire(&server, &admin, "2099.01").await.unwrap_err();
    assert_eq!(rule(&never), "catalog_version_not_activated");
    let blank = activate(&server, &admin, &unique("act"), " ")
        .await
        .unwrap_err();
    assert_eq!(blank.code(), "VALIDATION", "{blank:?}");

    // The accepted quote keeps its version, and its order was captured.
    let kept = quote(&server, &sales, &accepted).await;
    assert_eq!(kept["status"], "ACCEPTED", "{kept}");
    assert_eq!(kept["catalogVersion"], "2026.11", "{kept}");
    assert!(kept["order"]["id"].is_string(), "{kept}");

    // Everything above is events: a restart changes nothing.
    server = server.restart();
    let sales = server.token("sales");
    let admin = server.token("admin");
    let after = catalog(&server, &sales).await;
    assert_eq!(after.versions.len(), 1, "{after:?}");
    assert_eq!(
        after.versions[0].status,
        ops::catalog::CatalogVersionStatus::RETIRED
    );
    assert_eq!(
        after.versions[0].retired_reason.as_deref(),
        Some("superseded by 2026.12")
    );
    assert_eq!(after.current_version, None);
    let refused = server.client.price(&sales, &open, "0").await.unwrap_err();
    assert_eq!(rule(&refused), "catalog_version_retired");
    // A new version brings quoting back.
    activate(&server, &admin, &unique("act"), "2026.12")
        .await
        .unwrap();
    let fresh = create(&server, &sales, None).await.unwrap();
    assert_eq!(
        quote(&server, &sales, &fresh).await["catalogVersion"],
        "2026.12"
    );
}
