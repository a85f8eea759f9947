//! Input hygiene at the edge: one id grammar, one decimal grammar, a limit
//! on every free text, at most eight mutation fields per request, WebSocket
//! messages no larger than HTTP bodies, clean JSON 4xx bodies, the standard
//! introspection query answered, and graphql-transport-ws close codes.
//! Client input never produces `INTERNAL`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tests::{line, unique, Server, ServerOptions};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn error_of(body: &Value) -> (&str, &str) {
    let error = &body["errors"][0];
    (
        error["extensions"]["code"].as_str().unwrap_or("-"),
        error["extensions"]["field"].as_str().unwrap_or("-"),
    )
}

#[tokio::test]
async fn ids_follow_one_grammar_a_hostile_customer_id_never_reaches_crm() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let create = "mutation($c: String!, $customer: String!) { createQuote(commandId: $c, customerId: $customer) { id } }";
    let (_, body) = client
        .raw(
            &sales,
            create,
            json!({"c": unique("c"), "customer": "../../../admin/purge?confirm=yes"}),
        )
        .await;
    assert_eq!(error_of(&body), ("VALIDATION", "customerId"), "{body}");

    // The same commandId grammar for every mutation.
    let quote = client
        .create_quote(&sales, &unique("c"), "cust-1")
        .await
        .unwrap();
    let add = "mutation($c: String!, $q: String!, $line: LineInput!) { addQuoteLine(commandId: $c, quoteId: $q, line: $line) { id } }";
    for bad in ["a:b", "a\u{0}b", "a/b", ""] {
        let (_, body) = client
            .raw(&sales, create, json!({"c": bad, "customer": "cust-1"}))
            .await;
        assert_eq!(
            error_of(&body),
            ("VALIDATION", "commandId"),
            "create {bad:?}: {body}"
        );
        let (_, body) = client
            .raw(
                &sales,
                add,
                json!({"c": bad, "q": quote, "line": serde_json::to_value(line("l1", "fiber-1g", 1)).unwrap()}),
            )
            .await;
        assert_eq!(
            error_of(&body),
            ("VALIDATION", "commandId"),
            "add {bad:?}: {body}"
        );
    }
    // Ids of queries too.
    let (_, body) = client
        .raw(
            &sales,
            "query($id: String!) { quote(id: $id) { id } }",
            json!({"id": "../x"}),
        )
        .await;
    assert_eq!(error_of(&body), ("VALIDATION", "id"), "{body}");
}

#[tokio::test]
async fn an_empty_or_control_character_correlation_id_is_validation_not_an_empty_trail() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let trail = "query($c: String!) { auditTrail(correlationId: $c) { nodes { position } } }";
    for bad in ["", "a\u{7}b"] {
        let (_, body) = server.client.raw(&viewer, trail, json!({"c": bad})).await;
        assert_eq!(
            error_of(&body),
            ("VALIDATION", "correlationId"),
            "{bad:?}: {body}"
        );
    }
}

#[tokio::test]
async fn blank_proposal_and_signature_evidence_is_validation_naming_the_field() {
    let server = Server::start();
    let sales = server.token("sales");
    let quote = server
        .client
        .create_quote(&sales, &unique("c"), "cust-1")
        .await
        .unwrap();
    let sign = "mutation($c: String!, $q: String!, $signer: String!, $reference: String!, $hash: String!) { recordSignature(commandId: $c, quoteId: $q, revision: 1, signer: $signer, providerReference: $reference, artifactHash: $hash) { id } }";
    let record = "mutation($c: String!, $q: String!, $hash: String!, $template: String!) { recordProposal(commandId: $c, quoteId: $q, revision: 1, artifactId: \"a-1\", artifactHash: $hash, templateVersion: $template) { id } }";
    let generate = "mutation($c: String!, $q: String!, $template: String!, $locale: String) { generateProposal(commandId: $c, quoteId: $q, templateVersion: $template, locale: $locale) { id } }";
    for blank in ["", " \t "] {
        let cases = [
            (
                sign,
                json!({"signer": blank, "reference": "r", "hash": "h"}),
                "signer",
            ),
            (
                sign,
                json!({"signer": "s", "reference": blank, "hash": "h"}),
                "providerReference",
            ),
            (
                sign,
                json!({"signer": "s", "reference": "r", "hash": blank}),
                "artifactHash",
            ),
            (
                record,
                json!({"hash": blank, "template": "t"}),
                "artifactHash",
            ),
            (
                record,
                json!({"hash": "h", "template": blank}),
                "templateVersion",
            ),
            (generate, json!({"template": blank}), "templateVersion"),
            (
                generate,
                json!({"template": "t", "locale": blank}),
                "locale",
            ),
        ];
        for (mutation, mut variables, field) in cases {
            variables["c"] = json!(unique("c"));
            variables["q"] = json!(quote);
            let (_, body) = server.client.raw(&sales, mutation, variables).await;
            assert_eq!(
                error_of(&body),
                ("VALIDATION", field),
                "{field} {blank:?}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn a_blank_reason_note_or_reference_is_validation_naming_the_field() {
    let server = Server::start();
    let quote = server
        .client
        .create_quote(&server.token("sales"), &unique("c"), "cust-1")
        .await
        .unwrap();
    let reject = "mutation($c: String!, $q: String!, $r: String!) { rejectQuoteApproval(commandId: $c, quoteId: $q, reason: $r) { id } }";
    let withdraw = "mutation($c: String!, $q: String!, $r: String!) { withdrawQuote(commandId: $c, quoteId: $q, reason: $r) { id } }";
    let cancel = "mutation($c: String!, $r: String!) { cancelOrder(commandId: $c, orderId: \"o-1\", reason: $r) { id } }";
    let retire = "mutation($c: String!, $r: String!) { retireCatalogVersion(commandId: $c, version: \"v1\", reason: $r) { __typename } }";
    let resolve = "mutation($c: String!, $ref: String, $note: String) { resolveFallout(commandId: $c, orderId: \"o-1\", lineId: \"l1\", action: EXTERNAL_RESOLUTION, reference: $ref, note: $note) { id } }";
    for blank in ["", " \n\t "] {
        let cases = [
            ("admin", reject, json!({"r": blank}), "reason"),
            ("sales", withdraw, json!({"r": blank}), "reason"),
            ("operator", cancel, json!({"r": blank}), "reason"),
            ("admin", retire, json!({"r": blank}), "reason"),
            (
                "operator",
                resolve,
                json!({"ref": blank, "note": "n"}),
                "reference",
            ),
            (
                "operator",
                resolve,
                json!({"ref": "INC-1", "note": blank}),
                "note",
            ),
        ];
        for (role, mutation, mut variables, field) in cases {
            variables["c"] = json!(unique("c"));
            variables["q"] = json!(quote);
            let (_, body) = server
                .client
                .raw(&server.token(role), mutation, variables)
                .await;
            assert_eq!(
                error_of(&body),
                ("VALIDATION", field),
                "{field} {blank:?}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn free_text_over_its_limit_is_validation_naming_the_field_never_internal() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let quote = client
        .create_quote(&sales, &unique("c"), "cust-1")
        .await
        .unwrap();
    let withdraw = "mutation($c: String!, $q: String!, $r: String!) { withdrawQuote(commandId: $c, quoteId: $q, reason: $r) { id } }";
    let (status, body) = client
        .raw(
            &sales,
            withdraw,
            json!({"c": unique("c"), "q": quote, "r": "x".repeat(200_000)}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(error_of(&body), ("VALIDATION", "reason"), "{body}");
    let sign = "mutation($c: String!, $q: String!, $s: String!) { recordSignature(commandId: $c, quoteId: $q, revision: 1, signer: $s, providerReference: \"p\", artifactHash: \"h\") { id } }";
    let (_, body) = client
        .raw(
            &sales,
            sign,
            json!({"c": unique("c"), "q": quote, "s": "x".repeat(5_000)}),
        )
        .await;
    assert_eq!(error_of(&body), ("VALIDATION", "signer"), "{body}");
    let mut long_option = serde_json::to_value(line("l1", "fiber-1g", 1)).unwrap();
    long_option["options"] = json!([{"name": "colour", "value": "x".repeat(100_000)}]);
    let add = "mutation($c: String!, $q: String!, $line: LineInput!) { addQuoteLine(commandId: $c, quoteId: $q, line: $line) { id } }";
    let (_, body) = client
        .raw(
            &sales,
            add,
            json!({"c": unique("c"), "q": quote, "line": long_option}),
        )
        .await;
    assert_eq!(
        error_of(&body),
        ("VALIDATION", "line.options.value"),
        "{body}"
    );
    // Within the limit it is accepted.
    let (_, body) = client
        .raw(
            &sales,
            withdraw,
            json!({"c": unique("c"), "q": quote, "r": "x".repeat(2_000)}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn decimals_follow_one_strict_grammar() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let quote = client
        .create_quote(&sales, &unique("c"), "cust-1")
        .await
        .unwrap();
    client
        .add_line(&sales, &quote, "l1", "fiber-1g")
        .await
        .unwrap();
    for bad in [
        "1_0", "1e2", "+5", "-0", "05", ".5", "5.", " 5", "100.5", "1,5",
    ] {
        let error = client.price(&sales, &quote, bad).await.unwrap_err();
        assert_eq!(error.code(), "VALIDATION", "{bad:?}: {error:?}");
        assert_eq!(error.extensions["field"], "discountPercent", "{bad:?}");
    }
    client.price(&sales, &quote, "5").await.unwrap();
    client.price(&sales, &quote, "12.5").await.unwrap();
}

async fn quote_count(server: &Server) -> usize {
    let (_, body) = server
        .client
        .raw(
            &server.token("viewer"),
            "{ quotes(first: 200) { nodes { id } } }",
            json!({}),
        )
        .await;
    body["data"]["quotes"]["nodes"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn at_most_eight_mutation_fields_per_request() {
    let server = Server::start();
    let (client, sales) = (&server.client, server.token("sales"));
    let aliased = |n: usize| {
        let fields: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "a{i}: createQuote(commandId: \"{}\", customerId: \"cust-1\") {{ id }}",
                    unique("c")
                )
            })
            .collect();
        json!({"query": format!("mutation {{ {} }}", fields.join(" "))})
    };
    let (status, body) = client.post(Some(&sales), &aliased(9)).await;
    assert_eq!(status, 200);
    assert_eq!(error_of(&body).0, "VALIDATION", "{body}");
    assert!(body["data"].is_null(), "{body}");
    // A batch may not multiply the limit.
    let batch = Value::Array(vec![aliased(5), aliased(5)]);
    let (status, body) = client.post(Some(&sales), &batch).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_of(&body).0, "VALIDATION", "{body}");
    assert_eq!(quote_count(&server).await, 0, "nothing was written");
    let (_, body) = client.post(Some(&sales), &aliased(8)).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(quote_count(&server).await, 8);
}

#[tokio::test]
async fn client_errors_are_clean_json_without_debug_text() {
    let server = Server::start();
    let http = server.client.http();
    let viewer = server.token("viewer");
    let base = server.base_url();
    let requests = [
        (
            "malformed JSON",
            http.post(format!("{base}/graphql"))
                .bearer_auth(&viewer)
                .header("content-type", "application/json")
                .body("{ not json"),
            400,
        ),
        ("a plain GET of /ws", http.get(format!("{base}/ws")), 400),
        ("an unknown route", http.get(format!("{base}/nope")), 404),
        (
            "a wrong method",
            http.delete(format!("{base}/graphql")),
            405,
        ),
        (
            "metrics without a token",
            http.get(format!("{base}/metrics")),
            401,
        ),
    ];
    for (what, request, expected) in requests {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.unwrap();
        assert!(
            (400..500).contains(&status) && (status == expected || expected == 400),
            "{what}: {status} {text}"
        );
        assert!(
            content_type.starts_with("application/json"),
            "{what}: {content_type} {text}"
        );
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: {text}");
        assert!(
            body["errors"][0]["extensions"]["code"].is_string(),
            "{what}: {text}"
        );
        for debug in ["Error(", "InvalidRequest(", "line: ", "column: ", "{ "] {
            assert!(!text.contains(debug), "{what}: Debug text in {text}");
        }
    }
}

/// graphql-js 16's `getIntrospectionQuery()`, as GraphiQL's documentation
/// pane sends it (`ofType` nine levels deep).
const INTROSPECTION_QUERY: &str = r"
    query IntrospectionQuery {
      __schema {
        description
        queryType { name kind }
        mutationType { name kind }
        subscriptionType { name kind }
        types {
          ...FullType
        }
        directives {
          name
          description
          isRepeatable
          locations
          args(includeDeprecated: true) {
            ...InputValue
          }
        }
      }
    }

    fragment FullType on __Type {
      kind
      name
      description
      specifiedByURL
      fields(includeDeprecated: true) {
        name
        description
        args(includeDeprecated: true) {
          ...InputValue
        }
        type {
          ...TypeRef
        }
        isDeprecated
        deprecationReason
      }
      inputFields(includeDeprecated: true) {
        ...InputValue
      }
      interfaces {
        ...TypeRef
      }
      enumValues(includeDeprecated: true) {
        name
        description
        isDeprecated
        deprecationReason
      }
      possibleTypes {
        ...TypeRef
      }
    }

    fragment InputValue on __InputValue {
      name
      description
      type { ...TypeRef }
      defaultValue
      isDeprecated
      deprecationReason
    }

    fragment TypeRef on __Type {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                    ofType {
                      kind
                      name
                      ofType {
                        kind
                        name
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
";

#[tokio::test]
async fn the_standard_introspection_query_is_answered_and_fanning_out_is_not() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let (status, body) = server
        .client
        .post(
            Some(&viewer),
            &json!({"query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{}", body["errors"]);
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "CommandResult"));
    assert_eq!(body["data"]["__schema"]["mutationType"]["name"], "Mutation");
    // Nesting lists multiplies the answer: refused.
    let fan_out = "{ __type(name: \"Query\") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }";
    let (_, body) = server.client.raw(&viewer, fan_out, json!({})).await;
    assert_eq!(error_of(&body).0, "VALIDATION", "{body}");
    assert!(body["data"].is_null(), "{body}");
}

/// Text that reads differently from what it holds (a right-to-left
/// override, a zero-width space) is refused where it is given, as is an
/// offering version the quote could not answer back as a GraphQL `Int`.
#[tokio::test]
async fn invisible_formatting_and_a_version_past_a_graphql_int_are_validation() {
    let server = Server::start();
    let admin = server.token("admin");
    for hostile in ["\u{202E}1v", "v\u{200B}2"] {
        let (status, body) = server
            .client
            .raw(
                &admin,
                "mutation($c: String!, $v: String!) { activateCatalogVersion(commandId: $c, version: $v) { version } }",
                json!({ "c": unique("catalog"), "v": hostile }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            error_of(&body),
            ("VALIDATION", "version"),
            "{hostile:?}: {body}"
        );
    }
    let sales = server.token("sales");
    let quote = server
        .client
        .create_quote(&sales, &unique("create"), "cust-int")
        .await
        .unwrap();
    let (_, body) = server
        .client
        .raw(
            &sales,
            "mutation($c: String!, $q: String!, $line: LineInput!) { addQuoteLine(commandId: $c, quoteId: $q, line: $line) { version } }",
            json!({ "c": unique("line"), "q": quote, "line": {
                "lineId": "l1", "offeringId": "fiber-1g", "offeringVersion": 2_147_483_648u64,
                "quantity": 1, "termMonths": 12 } }),
        )
        .await;
    assert_eq!(
        error_of(&body),
        ("VALIDATION", "line.offeringVersion"),
        "{body}"
    );
}

/// A cursor pages the list it came from: another list refuses it as
/// `VALIDATION` (the quotes' and orders' cursors once paged each other,
/// their index tags being alike).
#[tokio::test]
async fn a_cursor_of_one_list_is_refused_by_another() {
    let server = Server::start();
    let sales = server.token("sales");
    for n in 0..2 {
        server
            .client
            .create_quote(&sales, &unique("create"), &format!("cust-cursor-{n}"))
            .await
            .unwrap();
    }
    let (_, body) = server
        .client
        .raw(
            &sales,
            "{ quotes(first: 1) { pageInfo { endCursor hasNextPage } } }",
            json!({}),
        )
        .await;
    let cursor = body["data"]["quotes"]["pageInfo"]["endCursor"].clone();
    assert!(cursor.is_string(), "{body}");
    let (_, body) = server
        .client
        .raw(
            &sales,
            "query($a: String) { quotes(first: 1, after: $a) { nodes { id } } }",
            json!({ "a": cursor }),
        )
        .await;
    assert!(body["errors"].is_null(), "its own list takes it: {body}");
    let operator = server.token("operator");
    for list in ["orders", "handoffs", "fallout"] {
        let query = format!(
            "query($a: String) {{ {list}(first: 1, after: $a) {{ pageInfo {{ hasNextPage }} }} }}"
        );
        let (_, body) = server
            .client
            .raw(&operator, &query, json!({ "a": cursor }))
            .await;
        assert_eq!(error_of(&body).0, "VALIDATION", "{list}: {body}");
    }
}

/// A body of tens of thousands of fields (within the 256 KiB body limit)
/// is refused before async-graphql validates every one of them: it once
/// took seconds of the request path's CPU per request, and a dozen at once
/// starved every other caller. Such a text is past the 32 KiB bound of a
/// query text; within it, fragments spread again and again reach as many
/// selections, and are refused by counting them. A document within the
/// bounds still runs.
#[tokio::test]
async fn a_document_of_more_selections_than_its_complexity_allows_is_refused_by_count() {
    let server = Server::start();
    let sales = server.token("sales");
    let flood = format!("{{ {} }}", "me{role} ".repeat(28_000));
    assert!(flood.len() < 255 * 1024);
    let spread = format!(
        "fragment F on Query {{ {} }} query {{ {} }}",
        "me{role} ".repeat(100),
        "...F ".repeat(120)
    );
    for (query, refusal) in [(flood, "32 KiB"), (spread, "too many fields")] {
        let (status, body) = server.client.raw(&sales, &query, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(error_of(&body).0, "VALIDATION", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(refusal), "{message}");
        assert!(body["data"].is_null(), "{body}");
    }
    let within = format!("{{ {} }}", "me { role } ".repeat(100));
    let (status, body) = server.client.raw(&sales, &within, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["me"]["role"], "sales", "{body}");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(server: &Server, token: Option<&str>) -> Socket {
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    if let Some(token) = token {
        headers.insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

async fn send(socket: &mut Socket, value: Value) {
    // The server may already have closed the socket.
    let _ = socket.send(Message::Text(value.to_string().into())).await;
}

/// What the server does next: a protocol message, a close (with its code),
/// or the connection ending.
#[derive(Debug)]
enum Next {
    Message(Value),
    Closed(Option<u16>),
}

async fn next(socket: &mut Socket) -> Next {
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
        match read.expect("the server answers within 10 s") {
            Some(Ok(Message::Text(text))) => {
                return Next::Message(serde_json::from_str(text.as_str()).unwrap())
            }
            Some(Ok(Message::Close(frame))) => {
                return Next::Closed(frame.map(|f| u16::from(f.code)))
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Next::Closed(None),
        }
    }
}

#[tokio::test]
async fn websocket_messages_are_capped_at_the_http_body_limit() {
    let server = Server::start();
    let mut socket = open(&server, Some(&server.token("viewer"))).await;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {}}),
    )
    .await;
    assert!(matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "connection_ack"));
    let subscribe = |id: &str, pad: usize| {
        json!({"id": id, "type": "subscribe", "payload": {
            "query": "query($pad: String) { me { tenant } }",
            "variables": {"pad": "x".repeat(pad)},
        }})
    };
    send(&mut socket, subscribe("small", 1_000)).await;
    assert!(matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "next"));
    assert!(matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "complete"));
    // 2 MB, over the 256 KiB limit: never executed, the socket is closed
    // with 1009 (message too big).
    send(&mut socket, subscribe("large", 2 * 1024 * 1024)).await;
    match next(&mut socket).await {
        Next::Closed(code) => assert_eq!(code, Some(1009)),
        Next::Message(message) => panic!("a 2 MB message was executed: {message}"),
    }
}

/// A `subscribe` to the live events under `id`.
fn live(id: &str) -> Value {
    json!({"id": id, "type": "subscribe", "payload": {
        "query": "subscription { events { streamId } }"}})
}

/// An acknowledged graphql-transport-ws connection for a viewer.
async fn acknowledged(server: &Server) -> Socket {
    let mut socket = open(server, Some(&server.token("viewer"))).await;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {}}),
    )
    .await;
    assert!(matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "connection_ack"));
    socket
}

/// Checks that `socket` is still open: a query sent over it is answered.
async fn answers_a_query(socket: &mut Socket) {
    send(
        socket,
        json!({"id": "q", "type": "subscribe", "payload": {"query": "{ me { tenant } }"}}),
    )
    .await;
    assert!(
        matches!(next(socket).await, Next::Message(m) if m["type"] == "next" && m["id"] == "q")
    );
}

#[tokio::test]
async fn a_subscribe_reusing_a_running_id_closes_with_4409_and_a_completed_id_is_free() {
    let server = Server::start();
    let mut socket = acknowledged(&server).await;
    send(&mut socket, live("a")).await;
    // Completed by the client, the id is free again.
    send(&mut socket, json!({"id": "a", "type": "complete"})).await;
    assert!(
        matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "complete" && m["id"] == "a")
    );
    send(&mut socket, live("a")).await;
    // The connection is still open: a query over it is answered.
    send(
        &mut socket,
        json!({"id": "b", "type": "subscribe", "payload": {"query": "{ me { tenant } }"}}),
    )
    .await;
    assert!(
        matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "next" && m["id"] == "b")
    );
    assert!(
        matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "complete" && m["id"] == "b")
    );
    // `a` still runs: subscribing with its id again closes the connection.
    send(&mut socket, live("a")).await;
    match next(&mut socket).await {
        Next::Closed(code) => assert_eq!(code, Some(4409)),
        other => panic!("{other:?}"),
    }
}

/// A socket that never sends `connection_init` is closed with 4408 once the
/// configured wait is over, with or without a credential in its header;
/// one that sent it in time stays open past that wait.
#[tokio::test]
async fn a_connection_without_connection_init_in_time_closes_with_4408() {
    let server = Server::start_with(ServerOptions {
        config: "[graphql]\nws_init_timeout_ms = 300\n".to_owned(),
        ..ServerOptions::default()
    });
    let viewer = server.token("viewer");
    for token in [None, Some(viewer.as_str())] {
        let mut idle = open(&server, token).await;
        let started = std::time::Instant::now();
        match next(&mut idle).await {
            Next::Closed(code) => assert_eq!(code, Some(4408), "token {token:?}"),
            other => panic!("an idle socket got {other:?}"),
        }
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "closed before the wait was over: {:?}",
            started.elapsed()
        );
    }
    let mut socket = acknowledged(&server).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    answers_a_query(&mut socket).await;
}

/// A credential keeps at most the configured number of WebSocket
/// connections open: one more `connection_init` closes with 1013 (try
/// again later), other credentials are not affected, and a closed
/// connection gives its place back.
#[tokio::test]
async fn a_credential_opens_at_most_its_websocket_connections_and_a_closed_one_frees_a_place() {
    let server = Server::start_with(ServerOptions {
        config: "[graphql]\nws_connections_per_credential = 2\n".to_owned(),
        ..ServerOptions::default()
    });
    let mut first = acknowledged(&server).await;
    let _second = acknowledged(&server).await;
    let init = || json!({"type": "connection_init", "payload": {}});
    let mut third = open(&server, Some(&server.token("viewer"))).await;
    send(&mut third, init()).await;
    match next(&mut third).await {
        Next::Closed(code) => assert_eq!(code, Some(1013)),
        other => panic!("a third connection of the credential got {other:?}"),
    }
    // The token in connection_init's payload counts the same.
    let mut by_payload = open(&server, None).await;
    send(
        &mut by_payload,
        json!({"type": "connection_init", "payload": {"authToken": server.token("viewer")}}),
    )
    .await;
    assert!(matches!(
        next(&mut by_payload).await,
        Next::Closed(Some(1013))
    ));
    // Another credential of the tenant connects.
    let mut sales = open(&server, Some(&server.token("sales"))).await;
    send(&mut sales, init()).await;
    assert!(matches!(next(&mut sales).await, Next::Message(m) if m["type"] == "connection_ack"));
    // A closed connection gives its place back (once the server has seen
    // the close).
    first.close(None).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = open(&server, Some(&server.token("viewer"))).await;
        send(&mut again, init()).await;
        match next(&mut again).await {
            Next::Message(m) if m["type"] == "connection_ack" => break,
            other => assert!(
                std::time::Instant::now() < deadline,
                "the closed connection's place never came back: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_message_that_is_not_a_protocol_message_closes_with_4400() {
    let server = Server::start();
    for bad in [
        "not json",
        r#"{"type":"subscribe"}"#,
        r#"{"type":"launch","id":"1"}"#,
    ] {
        let mut socket = acknowledged(&server).await;
        let _ = socket.send(Message::Text(bad.into())).await;
        match next(&mut socket).await {
            Next::Closed(code) => assert_eq!(code, Some(4400), "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_auth_failures_close_with_4401() {
    let server = Server::start();
    for payload in [
        json!({}),
        json!({"Authorization": "Bearer wrong"}),
        json!({"authToken": "wrong"}),
    ] {
        let mut socket = open(&server, None).await;
        send(
            &mut socket,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        match next(&mut socket).await {
            Next::Closed(Some(code)) => assert_eq!(code, 4401, "{payload}"),
            other => panic!("{payload}: {other:?}"),
        }
    }
    // A subscribe before the handshake is unauthorized too.
    let mut socket = open(&server, None).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { falloutChanges { eventType } }"}}),
    )
    .await;
    match next(&mut socket).await {
        Next::Closed(Some(code)) => assert_eq!(code, 4401),
        other => panic!("{other:?}"),
    }
    // A valid token is still acknowledged.
    let mut socket = open(&server, None).await;
    let viewer = server.token("viewer");
    send(&mut socket, json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {viewer}")}})).await;
    assert!(matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "connection_ack"));
}

/// A connection carries one credential. When the upgrade's header and
/// `connection_init` both carry one, both must be valid and the same: a
/// token that does not authenticate is never passed over for another,
/// and two different valid ones are refused (the header's once won and
/// the payload's was dropped without a word).
#[tokio::test]
async fn a_websocket_with_two_credentials_is_refused_unless_they_agree() {
    let server = Server::start();
    let (viewer, admin) = (server.token("viewer"), server.token("admin"));
    let cases = [
        (
            Some(viewer.as_str()),
            json!({"Authorization": format!("Bearer {admin}")}),
        ),
        (
            Some(viewer.as_str()),
            json!({"Authorization": "Bearer nope"}),
        ),
        (
            Some("nope"),
            json!({"Authorization": format!("Bearer {admin}")}),
        ),
        (
            None,
            json!({"Authorization": format!("Bearer {admin}"), "authToken": viewer}),
        ),
        (None, json!({"Authorization": 7})),
    ];
    for (header, payload) in cases {
        let mut socket = open(&server, header).await;
        send(
            &mut socket,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        match next(&mut socket).await {
            Next::Closed(Some(code)) => assert_eq!(code, 4401, "{header:?} {payload}"),
            other => panic!("{header:?} {payload}: {other:?}"),
        }
    }
    // The same credential twice is one credential.
    let mut socket = open(&server, Some(&viewer)).await;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"authToken": viewer}}),
    )
    .await;
    assert!(matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "connection_ack"));
}

/// A request with two `Authorization` headers is refused 401, whichever
/// they name: it was run as the first one's holder.
#[tokio::test]
async fn a_request_with_two_authorization_headers_is_refused() {
    let server = Server::start();
    let (viewer, admin) = (server.token("viewer"), server.token("admin"));
    let http = reqwest::Client::new();
    for second in [&admin, &viewer] {
        let response = http
            .post(format!("http://{}/graphql", server.addr))
            .header("Authorization", format!("Bearer {viewer}"))
            .header("Authorization", format!("Bearer {second}"))
            .json(&json!({"query": "{ me { tenant name } }"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_connection_runs_at_most_100_subscriptions_and_refuses_more_by_id() {
    let server = Server::start();
    let mut socket = acknowledged(&server).await;
    for i in 0..100 {
        send(&mut socket, live(&format!("s{i}"))).await;
    }
    send(&mut socket, live("over")).await;
    match next(&mut socket).await {
        Next::Message(m) => {
            assert_eq!(m["type"], "error", "{m}");
            assert_eq!(m["id"], "over", "{m}");
            assert_eq!(m["payload"][0]["extensions"]["code"], "VALIDATION", "{m}");
        }
        other => panic!("{other:?}"),
    }
    // One completed makes room; the connection stays open.
    send(&mut socket, json!({"id": "s0", "type": "complete"})).await;
    assert!(
        matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "complete" && m["id"] == "s0")
    );
    answers_a_query(&mut socket).await;
}

/// SIGTERM with a subscription open: the server exits 0 and closes the
/// socket with 1012 (service restart) before anything else.
#[tokio::test]
async fn sigterm_stops_a_server_with_a_live_subscription_open() {
    let mut server = Server::start();
    let mut socket = acknowledged(&server).await;
    send(&mut socket, live("held-open")).await;
    // The subscription is running: another id is still free beside it.
    send(
        &mut socket,
        json!({"id": "me", "type": "subscribe", "payload": {"query": "{ me { tenant } }"}}),
    )
    .await;
    assert!(matches!(next(&mut socket).await, Next::Message(m) if m["id"] == "me"));
    let stopping = std::time::Instant::now();
    let status = server.stop();
    assert!(
        status.success(),
        "SIGTERM with a subscription open: {status} after {:?}; {}",
        stopping.elapsed(),
        server.stderr_tail()
    );
    // The client learns that the server is restarting: a close frame of
    // 1012, so it reconnects, and no `complete`, which would tell it the
    // subscription ended for good (it used to get `complete`, then a socket
    // dropped without a close frame).
    loop {
        match next(&mut socket).await {
            Next::Closed(code) => break assert_eq!(code, Some(1012)),
            // The end of the one-shot query above.
            Next::Message(message) if message["id"] == "me" => {}
            Next::Message(message) => panic!("before the close: {message}"),
        }
    }
}

/// GraphQL over HTTP with GET: a query in the URL runs as over POST (same
/// credential and answers); a mutation or subscription is 405 with
/// `Allow: POST` and nothing is recorded; bad variables are `VALIDATION`;
/// a browser, or a GET without a query, gets the GraphiQL page.
#[tokio::test]
async fn a_query_sent_with_get_runs_and_a_mutation_sent_with_get_is_405() {
    let server = Server::start();
    let sales = server.token("sales");
    let http = reqwest::Client::new();
    let url = format!("{}/graphql", server.base_url());
    let get = |params: Vec<(&'static str, String)>, token: Option<&str>| {
        let mut request = http
            .get(&url)
            .query(&params)
            .header("Accept", "application/json");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        (status, allow, body)
    };

    let (status, _, body) = answer(
        get(
            vec![
                (
                    "query",
                    "query Me($id: String!) { quote(id: $id) { id } me { tenant role } }"
                        .to_owned(),
                ),
                ("operationName", "Me".to_owned()),
                ("variables", json!({"id": "q-none"}).to_string()),
            ],
            Some(&sales),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["role"], "sales", "{body}");
    assert!(body["data"]["quote"].is_null(), "{body}");

    let (status, _, body) = answer(
        get(vec![("query", "{ me { tenant } }".to_owned())], None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_of(&body).0), (401, "UNAUTHENTICATED"));

    let create = format!(
        "mutation {{ createQuote(commandId: \"{}\", customerId: \"c-get\") {{ streamId }} }}",
        unique("get")
    );
    for query in [
        create.clone(),
        format!(
            "query A {{ me {{ tenant }} }} {}",
            create.replacen("mutation", "mutation B", 1)
        ),
        "subscription { events { streamId } }".to_owned(),
    ] {
        let (status, allow, body) = answer(
            get(vec![("query", query.clone())], Some(&sales))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 405, "{query}: {body}");
        assert_eq!(allow.as_deref(), Some("POST"));
        assert_eq!(error_of(&body).0, "VALIDATION", "{body}");
    }
    let (_, body) = server
        .client
        .raw(&sales, "{ quotes(first: 10) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["quotes"]["nodes"],
        json!([]),
        "a GET recorded a quote: {body}"
    );

    for variables in ["not json", "[1]"] {
        let (status, _, body) = answer(
            get(
                vec![
                    ("query", "{ me { tenant } }".to_owned()),
                    ("variables", variables.to_owned()),
                ],
                Some(&sales),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!((status, error_of(&body).0), (400, "VALIDATION"), "{body}");
    }

    for (query, accept) in [
        (None, "application/json"),
        (Some("{ me { tenant } }"), "text/html"),
    ] {
        let mut request = http.get(&url).header("Accept", accept);
        if let Some(query) = query {
            request = request.query(&[("query", query)]);
        }
        let page = request.send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200);
        assert!(page.text().await.unwrap().contains("graphiql"));
    }
}

/// An invalid subscription document answered over the WebSocket carries
/// the same `extensions.code` as over HTTP: the engine's own errors
/// (unknown field, parse error, variable of the wrong type) arrive in a
/// `next` message, and used to carry no code there. A subscription of more
/// than one root field is refused the same way.
#[tokio::test]
async fn engine_errors_over_the_websocket_carry_validation() {
    let server = Server::start();
    let mut socket = acknowledged(&server).await;
    let documents = [
        json!({"query": "subscription { events { nope } }"}),
        json!({"query": "subscription { events { "}),
        json!({"query": "subscription($p: String) { events(streamPrefix: $p) { position } }",
               "variables": {"p": 5}}),
        // Two root fields would run as two streams under one id, past the
        // per-connection bound.
        json!({"query": "subscription { a: events(from: 0) { position } b: events(from: 0) { position } }"}),
    ];
    for (i, payload) in documents.into_iter().enumerate() {
        let id = format!("bad{i}");
        send(
            &mut socket,
            json!({"id": id, "type": "subscribe", "payload": payload}),
        )
        .await;
        let Next::Message(message) = next(&mut socket).await else {
            panic!("the socket closed on document {i}");
        };
        assert_eq!(message["id"], id.as_str(), "{message}");
        let errors = match message["type"].as_str() {
            Some("next") => &message["payload"]["errors"],
            Some("error") => &message["payload"],
            _ => panic!("{message}"),
        };
        let errors = errors.as_array().unwrap_or_else(|| panic!("{message}"));
        assert!(!errors.is_empty(), "{message}");
        for error in errors {
            assert_eq!(error["extensions"]["code"], "VALIDATION", "{message}");
        }
        if message["type"] == "next" {
            assert!(matches!(next(&mut socket).await, Next::Message(m) if m["type"] == "complete"));
        }
    }
    answers_a_query(&mut socket).await;
}

/// Found by a probe: a negative `quantity`, `termMonths`,
/// `offeringVersion`, `revision` or `expectedVersion` was refused by the
/// engine as `Failed to parse "Int": Invalid number`, naming no field,
/// where `quantity: 0` named `line.quantity`. Every whole-number argument
/// now names itself, given inline or as a variable.
#[tokio::test]
async fn a_negative_whole_number_is_validation_naming_the_argument() {
    let server = Server::start();
    let (sales, operator, admin) = (
        server.token("sales"),
        server.token("operator"),
        server.token("admin"),
    );
    let quote = server
        .client
        .create_quote(&sales, &unique("c"), "cust-neg")
        .await
        .unwrap();
    let add = "mutation($c: String!, $q: String!, $line: LineInput!) { addQuoteLine(commandId: $c, quoteId: $q, line: $line) { id } }";
    for (key, field) in [
        ("quantity", "line.quantity"),
        ("termMonths", "line.termMonths"),
        ("offeringVersion", "line.offeringVersion"),
    ] {
        let mut line = json!({"lineId": "l1", "offeringId": "fiber-1g", "offeringVersion": 1, "quantity": 1, "termMonths": 12});
        line[key] = json!(-1);
        let (_, body) = server
            .client
            .raw(
                &sales,
                add,
                json!({"c": unique("c"), "q": quote, "line": line}),
            )
            .await;
        assert_eq!(error_of(&body), ("VALIDATION", field), "{body}");
    }
    let inline = [
        (
            &sales,
            format!("mutation {{ recordSignature(commandId: \"{}\", quoteId: \"{quote}\", revision: -1, signer: \"a\", providerReference: \"b\", artifactHash: \"c\") {{ id }} }}", unique("c")),
            "revision",
        ),
        (
            &sales,
            format!("mutation {{ recordProposal(commandId: \"{}\", quoteId: \"{quote}\", revision: -2, artifactId: \"d1\", artifactHash: \"h\", templateVersion: \"t\") {{ id }} }}", unique("c")),
            "revision",
        ),
        (
            &sales,
            format!("mutation {{ withdrawQuote(commandId: \"{}\", quoteId: \"{quote}\", expectedVersion: -3, reason: \"r\") {{ id }} }}", unique("c")),
            "expectedVersion",
        ),
        (
            &operator,
            format!("mutation {{ cancelOrder(commandId: \"{}\", orderId: \"o-1\", expectedVersion: -1, reason: \"r\") {{ id }} }}", unique("c")),
            "expectedVersion",
        ),
        (
            &operator,
            "{ fallout(minAgeMs: -5) { nodes { handoffId } } }".to_owned(),
            "minAgeMs",
        ),
        (
            &admin,
            "{ events(from: -1) { position } }".to_owned(),
            "from",
        ),
        // Past a 32-bit Int, and not a whole number at all (a re-probe).
        (
            &admin,
            "{ events(first: 2147483648) { position } }".to_owned(),
            "first",
        ),
        (
            &sales,
            "{ quotes(first: -2147483649) { nodes { id } } }".to_owned(),
            "first",
        ),
        (
            &sales,
            format!("mutation {{ recordSignature(commandId: \"{}\", quoteId: \"{quote}\", revision: 1.0, signer: \"a\", providerReference: \"b\", artifactHash: \"c\") {{ id }} }}", unique("c")),
            "revision",
        ),
    ];
    for (token, document, field) in inline {
        let (_, body) = server.client.raw(token, &document, json!({})).await;
        assert_eq!(error_of(&body), ("VALIDATION", field), "{document}: {body}");
    }
}

/// Found by a probe: `resolveFallout` with `NEW_ATTEMPT` took a
/// `reference` and a `note` and recorded neither (and `CANCEL_LINE` a
/// `reference`), though both counted for the command's idempotency. What
/// an action does not record is refused, naming it.
#[tokio::test]
async fn a_fallout_action_refuses_the_words_it_does_not_record() {
    let server = Server::start();
    let operator = server.token("operator");
    let resolve = "mutation($c: String!, $a: FalloutAction!, $ref: String, $note: String) { resolveFallout(commandId: $c, orderId: \"o-1\", lineId: \"l1\", action: $a, reference: $ref, note: $note) { id } }";
    for (action, reference, note, field) in [
        ("NEW_ATTEMPT", Some("INC-1"), None, "reference"),
        ("NEW_ATTEMPT", None, Some("retrying"), "note"),
        (
            "CANCEL_LINE",
            Some("INC-1"),
            Some("customer asked"),
            "reference",
        ),
        // Its note is the reason, which it records: required, as
        // `cancelOrder`'s reason is (a probe saw it default silently).
        ("CANCEL_LINE", None, None, "note"),
        ("CANCEL_LINE", None, Some(""), "note"),
    ] {
        let (_, body) = server
            .client
            .raw(
                &operator,
                resolve,
                json!({"c": unique("c"), "a": action, "ref": reference, "note": note}),
            )
            .await;
        assert_eq!(error_of(&body), ("VALIDATION", field), "{action}: {body}");
    }
    // Without them, the action reaches the order (none here).
    let (_, body) = server
        .client
        .raw(
            &operator,
            resolve,
            json!({"c": unique("c"), "a": "NEW_ATTEMPT", "ref": null, "note": null}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{body}"
    );
}
