//! A price is fresh only under the price book in force: a quote priced
//! under `pb-1` is not accepted once `pb-2` is configured
//! (`price_book_superseded`); priced again under `pb-2`, it is.

use tests::{unique, Server, ServerOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_book_superseded_a_price_is_fresh_only_under_the_book_in_force() {
    let book = |version: &str| format!("[price_book]\nversion = \"{version}\"\n");
    let mut first = Server::start_with(ServerOptions {
        config: book("pb-1"),
        ..ServerOptions::default()
    });
    let sales = first.token("sales");
    let quote = first
        .client
        .create_quote(&sales, &unique("create"), "cust-1")
        .await
        .unwrap();
    first
        .client
        .add_line(&sales, &quote, "l1", "fiber-1g")
        .await
        .unwrap();
    first.client.price(&sales, &quote, "5").await.unwrap();
    first
        .client
        .propose_and_sign(&sales, &quote, 1)
        .await
        .unwrap();
    first.stop();

    // The book changes: same data, `pb-2` in force.
    let second = Server::start_with(ServerOptions {
        config: book("pb-2"),
        data_dir: Some(first.data_dir.clone()),
        ..ServerOptions::default()
    });
    let client = &second.client;
    let error = client.accept(&sales, &quote).await.unwrap_err();
    assert_eq!(error.code(), "RULE_VIOLATION", "{error:?}");
    assert_eq!(error.extensions["rule"], "price_book_superseded");
    assert!(
        error.message.contains("pb-1") && error.message.contains("pb-2"),
        "{}",
        error.message
    );

    // Nor is that price proposed again: the customer would sign what
    // acceptance refuses.
    let error = client
        .propose_and_sign(&sales, &quote, 1)
        .await
        .unwrap_err();
    assert_eq!(
        error.extensions["rule"], "price_book_superseded",
        "{error:?}"
    );

    // Priced again under the book in force, it is accepted.
    client.price(&sales, &quote, "5").await.unwrap();
    client.propose_and_sign(&sales, &quote, 1).await.unwrap();
    client.accept(&sales, &quote).await.unwrap();
    drop(second);
    drop(first);
}
