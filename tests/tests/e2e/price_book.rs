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

    // The prices change under the same version: refused at start (exit 2
    // naming `price_book.version`), or the price signed under the old
    // prices would still count as fresh (it was accepted at 99.00 EUR
    // while new quotes priced at 1.00 USD).
    let changed = first.data_dir.join("changed-prices.toml");
    std::fs::write(
        &changed,
        "[price_book]\nversion = \"pb-1\"\ncurrency = \"USD\"\n",
    )
    .unwrap();
    let mut child = tests::serve_command(&tests::server_binary(), &first.data_dir)
        .arg("--config")
        .arg(&changed)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started with other prices under version pb-1");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let refused = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("price_book.version") && stderr.contains("new version"),
        "{stderr}"
    );
    // A refused start announces no credentials.
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(!stdout.contains("bearer tokens"), "{stdout}");

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

/// An offering the price book in force does not price is refused when a
/// line is added or changed to it, naming the rule pricing would name
/// later: the seller learns it while configuring, not when the quote is
/// full of lines that cannot be priced. Nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_whose_offering_the_price_book_does_not_price_is_refused() {
    let server = Server::start();
    let sales = server.token("sales");
    let client = &server.client;
    let quote = client
        .create_quote(&sales, &unique("create"), "cust-1")
        .await
        .unwrap();
    // The offerings a line may name are the price book's.
    let (status, book) = client
        .raw(
            &server.token("viewer"),
            "{ priceBook { version currency validityHours offerings { offeringId monthly { amount currency } } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{book}");
    let offerings: Vec<&str> = book["data"]["priceBook"]["offerings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["offeringId"].as_str().unwrap())
        .collect();
    assert!(offerings.contains(&"fiber-1g"), "{book}");
    assert!(!offerings.contains(&"fiber-100g"), "{book}");
    assert_eq!(book["data"]["priceBook"]["validityHours"], 720, "{book}");
    let version = client
        .add_line(&sales, &quote, "l1", "fiber-1g")
        .await
        .unwrap();

    let error = client
        .add_line(&sales, &quote, "l2", "fiber-100g")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "RULE_VIOLATION", "{error:?}");
    assert_eq!(error.extensions["rule"], "offering_not_in_price_book");
    assert!(error.message.contains("fiber-100g"), "{}", error.message);

    let change = r#"mutation($c: String!, $q: String!) {
        changeQuoteLine(commandId: $c, quoteId: $q, line: {lineId: "l1", offeringId: "fiber-100g",
            offeringVersion: 1, quantity: 1, termMonths: 12}) { version }
    }"#;
    let (status, body) = client
        .raw(
            &sales,
            change,
            serde_json::json!({"c": unique("change"), "q": quote}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["rule"], "offering_not_in_price_book",
        "{body}"
    );

    // Neither was recorded: the quote is at the version of its one line,
    // and it prices.
    let priced = client.price(&sales, &quote, "0").await.unwrap();
    assert_eq!(priced, version + 1);
}
