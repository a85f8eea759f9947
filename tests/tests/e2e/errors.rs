//! Every error code of `errors[].extensions.code`, with its extra fields.

use serde_json::json;
use tests::ops::{self, add_quote_line, create_quote, price_quote};
use tests::{line, unique, Server};

#[tokio::test]
async fn validation_names_the_offending_field() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let quote = client.create_quote(&sales, "c-1", "cust-1").await.unwrap();

    let mut bad = line("l-1", "fiber-1g", 0);
    bad.quantity = 0;
    let error = client
        .run::<ops::AddQuoteLine>(
            &sales,
            add_quote_line::Variables {
                command_id: unique("c"),
                quote_id: quote.clone(),
                expected_version: None,
                line: bad,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "VALIDATION", "{error:?}");
    assert_eq!(error.extensions["field"], "line.quantity");

    let error = client
        .run::<ops::PriceQuote>(
            &sales,
            price_quote::Variables {
                command_id: unique("c"),
                quote_id: quote.clone(),
                expected_version: None,
                discount_percent: Some("a lot".to_owned()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "VALIDATION", "{error:?}");
    assert_eq!(error.extensions["field"], "discountPercent");

    let error = client
        .run::<ops::CreateQuote>(
            &sales,
            create_quote::Variables {
                command_id: String::new(),
                customer_id: "cust-1".to_owned(),
                catalog_version: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "VALIDATION", "{error:?}");
    assert_eq!(error.extensions["field"], "commandId");

    let error = client
        .run::<ops::Quotes>(
            &sales,
            ops::quotes::Variables {
                status: None,
                customer_id: None,
                first: Some(0),
                after: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "VALIDATION", "{error:?}");
    assert_eq!(error.extensions["field"], "first");

    let error = client
        .run::<ops::Quotes>(
            &sales,
            ops::quotes::Variables {
                status: Some(ops::quotes::QuoteStatus::Other("Sleeping".to_owned())),
                customer_id: None,
                first: None,
                after: None,
            },
        )
        .await
        .unwrap_err();
    // A status outside the schema's enum is refused by the schema itself,
    // naming the argument and the enum.
    assert_eq!(error.code(), "VALIDATION", "{error:?}");
    assert!(
        error.message.contains("\"status\"") && error.message.contains("QuoteStatus"),
        "{error:?}"
    );

    let error = client
        .run::<ops::Quotes>(
            &sales,
            ops::quotes::Variables {
                status: None,
                customer_id: None,
                first: None,
                after: Some("not-a-cursor".to_owned()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "VALIDATION", "{error:?}");
    assert_eq!(error.extensions["field"], "after");
}

#[tokio::test]
async fn rule_violations_name_the_rule() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let quote = client.create_quote(&sales, "c-1", "cust-1").await.unwrap();

    let error = client.accept(&sales, &quote).await.unwrap_err();
    assert_eq!(error.code(), "RULE_VIOLATION", "{error:?}");
    assert_eq!(error.extensions["rule"], "price_missing");

    client
        .add_line(&sales, &quote, "l-1", "fiber-1g")
        .await
        .unwrap();
    // Above 10 % needs an approval first.
    client.price(&sales, &quote, "20").await.unwrap();
    let error = client
        .propose_and_sign(&sales, &quote, 1)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "RULE_VIOLATION", "{error:?}");
    assert_eq!(error.extensions["rule"], "approval_missing");

    // The seller who priced may not approve (ADR 0059); an admin may.
    let approve = |token: String| {
        let quote_id = quote.clone();
        async move {
            client
                .run::<ops::ApproveQuote>(
                    &token,
                    ops::approve_quote::Variables {
                        command_id: unique("approve"),
                        quote_id,
                        expected_version: None,
                    },
                )
                .await
        }
    };
    let error = approve(sales.clone()).await.unwrap_err();
    assert_eq!(error.code(), "FORBIDDEN", "{error:?}");
    let admin = server.token("admin");
    let data = approve(admin.clone()).await.unwrap();
    assert!(!tests::answered(data.approve_quote.as_ref()).deduplicated);
    let error = client
        .run::<ops::ApproveQuote>(
            &admin,
            ops::approve_quote::Variables {
                command_id: unique("approve"),
                quote_id: quote.clone(),
                expected_version: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "RULE_VIOLATION", "{error:?}");
    assert_eq!(error.extensions["rule"], "approval_not_pending");

    client.propose_and_sign(&sales, &quote, 1).await.unwrap();
    client.accept(&sales, &quote).await.unwrap();
    let error = client.accept(&sales, &quote).await.unwrap_err();
    assert_eq!(error.code(), "RULE_VIOLATION", "{error:?}");
    assert_eq!(error.extensions["rule"], "quote_already_accepted");
}

#[tokio::test]
async fn a_stale_expected_version_is_a_version_conflict_with_both_versions() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let quote = client.create_quote(&sales, "c-1", "cust-1").await.unwrap();
    let added = client
        .run::<ops::AddQuoteLine>(
            &sales,
            add_quote_line::Variables {
                command_id: unique("c"),
                quote_id: quote.clone(),
                expected_version: Some(1),
                line: line("l-1", "fiber-1g", 1),
            },
        )
        .await
        .unwrap();
    assert_eq!(tests::answered(added.add_quote_line.as_ref()).version, 2);
    let error = client
        .run::<ops::AddQuoteLine>(
            &sales,
            add_quote_line::Variables {
                command_id: unique("c"),
                quote_id: quote.clone(),
                expected_version: Some(1),
                line: line("l-2", "fiber-1g", 1),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "VERSION_CONFLICT", "{error:?}");
    assert_eq!(error.extensions["expected"], 1);
    assert_eq!(error.extensions["actual"], 2);
    // Nothing was appended.
    let detail = client
        .run::<ops::Quote>(&sales, ops::quote::Variables { id: quote })
        .await
        .unwrap()
        .quote
        .unwrap();
    assert_eq!(detail.version, 2, "{detail:?}");
}

#[tokio::test]
async fn a_command_id_is_idempotent_and_conflicts_with_other_input() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let vars = |customer: &str| create_quote::Variables {
        command_id: "create-once".to_owned(),
        customer_id: customer.to_owned(),
        catalog_version: None,
    };
    let first = client
        .run::<ops::CreateQuote>(&sales, vars("cust-1"))
        .await
        .unwrap()
        .create_quote
        .expect("answered");
    assert!(!first.deduplicated);
    assert_eq!(first.version, 1);
    assert_eq!(first.positions.len(), 1);
    let again = client
        .run::<ops::CreateQuote>(&sales, vars("cust-1"))
        .await
        .unwrap()
        .create_quote
        .expect("answered");
    assert!(again.deduplicated);
    assert_eq!(
        (&again.id, &again.stream_id, again.version, &again.positions),
        (&first.id, &first.stream_id, first.version, &first.positions)
    );
    let error = client
        .run::<ops::CreateQuote>(&sales, vars("cust-2"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "IDEMPOTENCY_CONFLICT", "{error:?}");
    assert!(error.message.contains("create-once"), "{}", error.message);

    // The same for a command on an existing stream, under concurrency: one
    // append, every answer the same.
    let add = |command_id: &str| add_quote_line::Variables {
        command_id: command_id.to_owned(),
        quote_id: first.id.clone(),
        expected_version: None,
        line: line("l-1", "fiber-1g", 1),
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let sales = sales.clone();
            let vars = add("add-once");
            tokio::spawn(async move { client.run::<ops::AddQuoteLine>(&sales, vars).await })
        })
        .collect();
    let mut fresh = 0;
    let mut versions = Vec::new();
    for task in tasks {
        let result = task
            .await
            .unwrap()
            .unwrap()
            .add_quote_line
            .expect("answered");
        fresh += usize::from(!result.deduplicated);
        versions.push((result.version, result.positions));
    }
    assert_eq!(fresh, 1, "exactly one attempt appends");
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    let error = client
        .run::<ops::AddQuoteLine>(&sales, {
            let mut vars = add("add-once");
            vars.line.quantity = 3;
            vars
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), "IDEMPOTENCY_CONFLICT", "{error:?}");
}

#[tokio::test]
async fn missing_objects_are_not_found() {
    let server = Server::start();
    let client = &server.client;
    let (sales, operator, admin) = (
        server.token("sales"),
        server.token("operator"),
        server.token("admin"),
    );
    let error = client
        .add_line(&sales, "q-does-not-exist", "l-1", "fiber-1g")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "NOT_FOUND", "{error:?}");
    let error = client
        .run::<ops::CancelOrder>(
            &operator,
            ops::cancel_order::Variables {
                command_id: unique("c"),
                order_id: "o-does-not-exist".to_owned(),
                expected_version: None,
                reason: "test".to_owned(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "NOT_FOUND", "{error:?}");
    let error = client
        .run::<ops::ResetConsumer>(
            &admin,
            ops::reset_consumer::Variables {
                name: "no-such-consumer".to_owned(),
                to_position: 0,
                recovery: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "NOT_FOUND", "{error:?}");
    // A consumer that exists but is reset offline says so (found by a
    // probe: `quote-expiry` answered NOT_FOUND, though `oms-replay` lists
    // and resets it).
    let error = client
        .run::<ops::ResetConsumer>(
            &admin,
            ops::reset_consumer::Variables {
                name: "quote-expiry".to_owned(),
                to_position: 0,
                recovery: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "VALIDATION", "{error:?}");
    assert!(format!("{error:?}").contains("oms-replay"), "{error:?}");
    // A blank name is input, refused alike by both (resetConsumer said
    // NOT_FOUND "consumer `` not found", rebuildProjection VALIDATION);
    // an unknown projector is told the projectors there are.
    let error = client
        .run::<ops::ResetConsumer>(
            &admin,
            ops::reset_consumer::Variables {
                name: " ".to_owned(),
                to_position: 0,
                recovery: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "VALIDATION", "{error:?}");
    for (name, said) in [("", "blank"), ("nope", "quotes")] {
        let error = client
            .run::<ops::RebuildProjection>(
                &admin,
                ops::rebuild_projection::Variables {
                    name: name.to_owned(),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), "VALIDATION", "{name:?}: {error:?}");
        assert!(error.message.contains(said), "{name:?}: {error:?}");
    }
    let quote = client
        .run::<ops::Quote>(
            &sales,
            ops::quote::Variables {
                id: "q-does-not-exist".to_owned(),
            },
        )
        .await
        .unwrap();
    assert!(quote.quote.is_none());
}

#[tokio::test]
async fn missing_or_bad_credentials_are_unauthenticated_with_401() {
    let server = Server::start();
    let client = &server.client;
    let body = json!({"query": "{ me { tenant } }"});
    for token in [None, Some("wrong-token"), Some("")] {
        let (status, body) = client.post(token, &body).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert!(body["data"].is_null());
    }
    // Not a bearer scheme.
    let viewer = server.token("viewer");
    let response = client
        .http()
        .post(&client.endpoint)
        .header("Authorization", format!("Basic {viewer}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // A batch is refused as a whole.
    let (status, _) = client.post(None, &json!([body, body])).await;
    assert_eq!(status, 401);
    // The WebSocket without credentials: see live.rs.
}

#[tokio::test]
async fn a_weaker_role_is_forbidden() {
    let server = Server::start();
    let client = &server.client;
    let error = client
        .create_quote(&server.token("viewer"), &unique("c"), "cust-1")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "FORBIDDEN", "{error:?}");
    assert!(error.message.contains("viewer"), "{}", error.message);
}

#[tokio::test]
async fn crm_failures_follow_the_failure_policy_and_are_never_internal() {
    // CRM answering 5xx (after the adapter's own tries) is UNAVAILABLE:
    // nothing was recorded, and the same command succeeds once CRM is back.
    let server = Server::start();
    let sales = server.token("sales");
    server.script_simulator("crm", &["ServerError"; 8]).await;
    let command_id = unique("create");
    let error = server
        .client
        .create_quote(&sales, &command_id, "cust-1")
        .await
        .expect_err("CRM answered 500, so createQuote must fail");
    assert_eq!(error.code(), "UNAVAILABLE", "{error:?}");
    assert_eq!(error.extensions["retryable"], true);
    assert_eq!(error.extensions["system"], "crm");
    assert!(
        error.message.contains("retry the same command"),
        "{}",
        error.message
    );
    // The scripted failures run out: CRM is back.
    let mut created = None;
    for _ in 0..40 {
        match server
            .client
            .create_quote(&sales, &command_id, "cust-1")
            .await
        {
            Ok(quote) => {
                created = Some(quote);
                break;
            }
            Err(e) if e.code() == "UNAVAILABLE" => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(created.is_some(), "the retried command created the quote");

    // An answer CRM should never give is UPSTREAM_ERROR, not retryable,
    // with a correlation id for operations and no detail for the client.
    server.script_simulator("crm", &["MalformedBody"; 8]).await;
    let error = server
        .client
        .create_quote(&sales, &unique("create"), "cust-1")
        .await
        .expect_err("CRM answered garbage");
    assert_eq!(error.code(), "UPSTREAM_ERROR", "{error:?}");
    assert_eq!(error.extensions["retryable"], false);
    assert_eq!(
        error.extensions["correlationId"].as_str().map(str::len),
        Some(26)
    );
}

#[tokio::test]
async fn a_value_an_enum_does_not_have_is_refused_with_the_allowed_values() {
    let server = Server::start();
    let viewer = server.token("viewer");
    for (query, variables) in [
        (
            "{ orders(status: DONE) { nodes { id } } }",
            serde_json::json!({}),
        ),
        (
            "query($s: OrderStatus) { orders(status: $s) { nodes { id } } }",
            serde_json::json!({ "s": "DONE" }),
        ),
    ] {
        let (status, body) = server.client.raw(&viewer, query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "VALIDATION",
            "{body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("OrderStatus")
                && message.ends_with("allowed values: OPEN, COMPLETED, CANCELLED"),
            "{message}"
        );
    }
}

/// An enum value a document writes as a string is refused, naming the
/// argument and the bare value to write; a variable still takes the
/// string, as JSON writes it. async-graphql ran `status: "OPEN"` as if
/// it were `status: OPEN` (a probe), and a mutation with one ran too.
#[tokio::test]
async fn an_enum_value_written_as_a_string_in_the_document_is_refused() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let (status, body) = server
        .client
        .raw(
            &viewer,
            r#"{ orders(status: "OPEN") { nodes { id } } }"#,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], serde_json::Value::Null, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "VALIDATION",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["field"], "status", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("OrderStatus is an enum") && message.contains("`OPEN`"),
        "{message}"
    );
    for (query, variables) in [
        (
            "{ orders(status: OPEN) { nodes { id } } }",
            serde_json::json!({}),
        ),
        (
            "query($s: OrderStatus) { orders(status: $s) { nodes { id } } }",
            serde_json::json!({ "s": "OPEN" }),
        ),
    ] {
        let (_, body) = server.client.raw(&viewer, query, variables).await;
        assert!(body["errors"].is_null(), "{query}: {body}");
    }
}

/// A request whose operation declares a non-null variable and gives it no
/// value (or null) runs nothing: async-graphql reported the variable only
/// at the field that read it, after running the mutations before it.
#[tokio::test]
async fn a_request_missing_a_required_variable_runs_nothing() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    for variables in [json!({}), json!({ "c": null })] {
        let (status, body) = client
            .post(
                Some(&sales),
                &json!({
                    "query": r#"mutation($c: String!) {
                        a: createQuote(commandId: "mv1", customerId: "cust-1") { id }
                        b: createQuote(commandId: "mv2", customerId: $c) { id } }"#,
                    "variables": variables,
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "VALIDATION",
            "{body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("$c"), "{body}");
    }
    // Had the first mutation run, its command id would now name other
    // arguments (IDEMPOTENCY_CONFLICT).
    let created = client.create_quote(&sales, "mv1", "cust-2").await;
    assert!(created.is_ok(), "{created:?}");
}

/// A field that failed answers as the GraphQL specification has it: null
/// where its type allows it, else at its nearest nullable parent. A
/// mutation field is nullable, so one that failed answers null beside the
/// others of its request, which keep their answers.
#[tokio::test]
async fn a_failed_field_never_answers_null_where_the_schema_says_non_null() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let quote = client
        .create_quote(&sales, "c-null", "cust-1")
        .await
        .unwrap();

    // `auditTrail: AuditConnection!` fails on its `first`: the mutation
    // field (nullable) answers null, not a result whose non-null field is
    // null. The line was added all the same.
    let (status, body) = client
        .post(
            Some(&sales),
            &json!({ "query": format!(
                "mutation {{ addQuoteLine(commandId: \"x1\", quoteId: \"{quote}\", line: \
                 {{lineId: \"l1\", offeringId: \"fiber-1g\", offeringVersion: 1, quantity: 1, \
                 termMonths: 12}}) {{ version auditTrail(first: 0) {{ nodes {{ position }} }} }} }}"
            ) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({ "addQuoteLine": null }), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "VALIDATION",
        "{body}"
    );

    // The answer to `query` and its first error's code.
    let answer = |query: &'static str| {
        let sales = sales.clone();
        async move {
            let (_, body) = client.post(Some(&sales), &json!({ "query": query })).await;
            let code = body["errors"][0]["extensions"]["code"].clone();
            (body, code)
        }
    };

    // Two mutations, one of which fails: the other keeps its answer.
    let (body, code) = answer(
        "mutation { a0: priceQuote(commandId: \"k1\", quoteId: \"nope\") { version } \
         a1: createQuote(commandId: \"k2\", customerId: \"cust-1\") { version } }",
    )
    .await;
    assert!(body["data"]["a0"].is_null(), "{body}");
    assert_eq!(body["data"]["a1"]["version"], 1, "{body}");
    assert_eq!(code, "NOT_FOUND", "{body}");

    // One mutation that fails alone answers its field null, not `data:
    // null` (async-graphql's answer when every root field failed).
    let (body, code) =
        answer("mutation { priceQuote(commandId: \"k3\", quoteId: \"nope\") { version } }").await;
    assert_eq!(body["data"], json!({ "priceQuote": null }), "{body}");
    assert_eq!(code, "NOT_FOUND", "{body}");

    // In a query, the non-null `auditTrail` of a quote in a non-null list
    // of a non-null connection nulls the whole answer.
    let (body, code) =
        answer("{ quotes(first: 1) { nodes { id auditTrail(first: 0) { nodes { position } } } } }")
            .await;
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(code, "VALIDATION", "{body}");
}

/// An object whose every selected field is skipped (`@skip`, `@include`,
/// through fragments too) answers `{}`, as the specification has it, not
/// `null`: async-graphql answered `null` for an empty object, so
/// `me: Me!`, `capabilities: [CapabilityNode!]!` and a whole `data` came
/// back null without an error, and an existing quote read as not found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_whose_every_field_is_skipped_answers_an_empty_object() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let quote = client
        .create_quote(&sales, &tests::unique("skip"), "cust-1")
        .await
        .unwrap();
    let ask = |query: &'static str, variables: serde_json::Value| {
        let sales = sales.clone();
        async move {
            let (status, body) = client.raw(&sales, query, variables).await;
            assert_eq!(status, 200, "{body}");
            assert!(body.get("errors").is_none(), "{query}: {body}");
            body["data"].clone()
        }
    };
    let data = ask(
        "query($s: Boolean!) { me { role @skip(if: $s) } capabilities { code @skip(if: $s) } }",
        json!({ "s": true }),
    )
    .await;
    assert_eq!(data["me"], json!({}), "{data}");
    let capabilities = data["capabilities"].as_array().unwrap();
    assert!(!capabilities.is_empty(), "{data}");
    assert!(capabilities.iter().all(|c| *c == json!({})), "{data}");

    let data = ask(
        "query($q: String!, $show: Boolean!) { quote(id: $q) { ...Q } } \
         fragment Q on QuoteNode { id @include(if: $show) }",
        json!({ "q": quote, "show": false }),
    )
    .await;
    assert_eq!(data["quote"], json!({}), "an existing quote: {data}");
    let data = ask(
        "query($show: Boolean!) { quote(id: \"no-such-quote\") { id @include(if: $show) } }",
        json!({ "show": false }),
    )
    .await;
    assert_eq!(data["quote"], json!(null), "no such quote: {data}");

    // Every root field skipped: an empty `data`, not `null`.
    let data = ask("{ me @skip(if: true) { role } }", json!({})).await;
    assert_eq!(data, json!({}));
    // Fields that are selected keep their answers beside skipped ones.
    let data = ask("{ me { role tenant @skip(if: true) } }", json!({})).await;
    assert_eq!(data, json!({ "me": { "role": "sales" } }));
}

/// A named operation sent without `operationName` is checked like any
/// other: a non-null variable given no value refuses the request before
/// anything runs (its first mutation field used to be applied), and a
/// variable left out takes its declared default in `@skip`/`@include` too
/// (it used to read as false, so a field skipped by default was answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_operation_is_checked_and_defaulted_without_operation_name() {
    let server = Server::start();
    let sales = server.token("sales");
    let command = unique("named");
    let mutation = format!(
        "mutation M($c: String!) {{ a: createQuote(commandId: \"{command}\", customerId: \"cust-1\") {{ version }} \
         b: createQuote(commandId: $c, customerId: \"cust-1\") {{ version }} }}"
    );
    let (status, body) = server.client.raw(&sales, &mutation, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!(null), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing was run")),
        "{body}"
    );
    // Nothing was recorded under the first field's command id.
    let (_, trail) = server
        .client
        .raw(
            &sales,
            "query($c: String!) { auditTrail(commandId: $c, first: 5) { nodes { eventType } } }",
            json!({ "c": command }),
        )
        .await;
    assert_eq!(trail["data"]["auditTrail"]["nodes"], json!([]), "{trail}");

    let (_, body) = server
        .client
        .raw(
            &sales,
            "query Me($s: Boolean = true, $i: Boolean = false) { me { role @skip(if: $s) tenant @include(if: $i) name } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let me = body["data"]["me"].as_object().unwrap();
    assert!(
        !me.contains_key("role") && !me.contains_key("tenant"),
        "{body}"
    );
    assert!(me.contains_key("name"), "{body}");
}
