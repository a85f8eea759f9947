//! Hardening limits: depth 12 (introspection 16), complexity 10,000 (a page weighing its
//! size), batches of at most 8,
//! bodies of at most 256 KiB, a request timeout, no field suggestions.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::{Server, ServerOptions};

/// A selection `depth` levels deep (the operation's root field counts 1).
fn nested(depth: usize) -> String {
    // __type(1) > fields(2) > type(3) > ofType(4..) > name(depth)
    let of_types = depth.saturating_sub(4);
    let mut query = String::from("{ __type(name: \"Query\") { fields { type { ");
    for _ in 0..of_types {
        query.push_str("ofType { ");
    }
    query.push_str("name ");
    for _ in 0..of_types + 3 {
        query.push_str("} ");
    }
    query.push('}');
    query
}

/// 5,000 `me { tenant }` through fragments (complexity 10,000), then
/// `more` at the root.
fn spread_5000(more: &str) -> String {
    let times = |text: &str, n: usize| vec![text; n].join(" ");
    format!(
        "fragment A on Query {{ {} }} fragment B on Query {{ {} }} \
         fragment C on Query {{ {} }} query {{ {} {more} }}",
        times("me { tenant }", 10),
        times("...A", 10),
        times("...B", 10),
        times("...C", 5),
    )
}

fn first_error(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn depth_and_complexity_are_limited() {
    let server = Server::start();
    let (client, viewer) = (&server.client, server.token("viewer"));

    // Only introspection nests this deep; its bound is 16 levels (the
    // standard introspection query needs 15).
    let (status, body) = client.raw(&viewer, &nested(16), json!({})).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "depth 16 is allowed: {body}");
    let (_, body) = client.raw(&viewer, &nested(17), json!({})).await;
    assert!(body["data"].is_null(), "{body}");
    assert!(
        first_error(&body).contains("nested too deep"),
        "depth 17 is refused: {body}"
    );

    // `me { tenant }` costs 2; fragments spread 5 x 10 x 10 x 10 times keep
    // the text under its 32 KiB bound.
    let (_, body) = client.raw(&viewer, &spread_5000(""), json!({})).await;
    assert!(
        body.get("errors").is_none(),
        "complexity 10,000 is allowed: {}",
        first_error(&body)
    );
    let (_, body) = client
        .raw(&viewer, &spread_5000("one: me { tenant }"), json!({}))
        .await;
    assert!(body["data"].is_null());
    assert!(first_error(&body).contains("too complex"), "{body}");
}

/// A paginated list weighs its page size times its selection (as
/// docs/graphql.md says: "lists weighted by their size"). A probe found
/// every list costing 1 whatever its `first`: 330 aliases of
/// `quotes(first: 200)` passed, ran 22 s past the 10 s timeout and
/// answered 44 MB, stalling other tenants while two ran (it weighs
/// 330,000 now).
#[tokio::test]
async fn a_paginated_list_weighs_its_page_size() {
    let server = Server::start();
    let (client, viewer) = (&server.client, server.token("viewer"));
    let lists = |count: usize, first: usize| {
        let fields: Vec<String> = (0..count)
            .map(|i| format!("a{i}: quotes(first: {first}) {{ nodes {{ id status version }} }}"))
            .collect();
        format!("{{ {} }}", fields.join(" "))
    };
    // 4 per node (nodes, id, status, version): 200 x 4 = 800; twelve
    // weigh 9,600.
    let (_, body) = client.raw(&viewer, &lists(12, 200), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    // Thirteen weigh 10,400: over 10,000.
    let (_, body) = client.raw(&viewer, &lists(13, 200), json!({})).await;
    assert!(body["data"].is_null(), "{body}");
    assert!(first_error(&body).contains("too complex"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION");
    // The default page (50) weighs 50, so fifty of them pass (the lists
    // are empty: the weight is the page asked for, not the rows found).
    let (_, body) = client
        .raw(
            &viewer,
            &lists(50, 50).replace("(first: 50)", ""),
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    // A nested page multiplies: 200 quotes x 200 audit entries is refused.
    let (_, body) = client
        .raw(
            &viewer,
            "{ quotes(first: 200) { nodes { auditTrail(first: 200) { nodes { position } } } } }",
            json!({}),
        )
        .await;
    assert!(first_error(&body).contains("too complex"), "{body}");
    // A page size given as a variable counts too; one out of range is the
    // field's own refusal, naming it.
    let query = format!(
        "query($n: Int) {}",
        lists(13, 0).replace("(first: 0)", "(first: $n)")
    );
    let (_, body) = client.raw(&viewer, &query, json!({ "n": 200 })).await;
    assert!(first_error(&body).contains("too complex"), "{body}");
    let (_, body) = client.raw(&viewer, &query, json!({ "n": 100 })).await;
    assert!(body.get("errors").is_none(), "{body}");
    let one = "query($n: Int) { quotes(first: $n) { nodes { id } } }";
    let (_, body) = client.raw(&viewer, one, json!({ "n": 100_000 })).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "first", "{body}");
}

/// A list whose filter skips rows may examine thousands of them for one
/// node, so it weighs 1,000 more than its page: a probe aliased 400
/// `quotes(first: 1, updatedSince:)` (weighing 800 before) and held the
/// server for 38 s past its 10 s timeout, other tenants' requests too.
#[tokio::test]
async fn a_list_whose_filter_skips_rows_weighs_its_scan() {
    let server = Server::start();
    let client = &server.client;
    let (viewer, admin) = (server.token("viewer"), server.token("admin"));
    let aliased = |count: usize, field: &str| {
        let fields: Vec<String> = (0..count).map(|i| format!("a{i}: {field}")).collect();
        format!("{{ {} }}", fields.join(" "))
    };
    let cases = [
        (
            &viewer,
            r#"quotes(first: 1, updatedSince: "2099-01-01T00:00:00Z") { nodes { id } }"#,
        ),
        (&viewer, "orders(first: 1, status: OPEN) { nodes { id } }"),
        (
            &viewer,
            "handoffs(first: 1, targetSystem: BILLING) { nodes { id } }",
        ),
        // Statuses share a rank of the index (SUCCEEDED, RESOLVED and
        // WITHDRAWN): the status itself is filtered row by row.
        (
            &viewer,
            "handoffs(first: 1, status: RESOLVED) { nodes { id } }",
        ),
        (
            &viewer,
            "fallout(first: 1, resolved: true, reason: SLA_BREACH) { nodes { handoffId } }",
        ),
        (&admin, "events(first: 1) { position }"),
    ];
    for (token, field) in cases {
        // Nine weigh 9 x (1,000 + the page): under 10,000.
        let (_, body) = client.raw(token, &aliased(9, field), json!({})).await;
        assert!(body.get("errors").is_none(), "{field}: {body}");
        for count in [10, 100] {
            let (_, body) = client.raw(token, &aliased(count, field), json!({})).await;
            assert!(body["data"].is_null(), "{count} x {field}: {body}");
            assert!(first_error(&body).contains("too complex"), "{body}");
        }
    }
    // The same lists by an index they are kept in weigh their page only.
    for field in [
        "quotes(first: 1, status: PRICED) { nodes { id } }",
        "orders(first: 1, hasFallout: true) { nodes { id } }",
        "handoffs(first: 1, pendingOnly: true) { nodes { id } }",
        "fallout(first: 1, reason: SLA_BREACH) { nodes { handoffId } }",
    ] {
        let (_, body) = client.raw(&viewer, &aliased(100, field), json!({})).await;
        assert!(body.get("errors").is_none(), "{field}: {body}");
    }
    let (_, body) = client
        .raw(
            &admin,
            &aliased(
                100,
                r#"events(first: 1, streamId: "quote-q1") { position }"#,
            ),
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn graphql_validation_errors_carry_a_code() {
    // Every refusal is documented to carry `extensions.code`; the ones
    // async-graphql raises itself (parse, unknown field, depth, complexity)
    // must too.
    let server = Server::start();
    let (client, viewer) = (&server.client, server.token("viewer"));
    let mut missing = Vec::new();
    for (what, query) in [
        ("depth", nested(17)),
        ("complexity", spread_5000("one: me { tenant }")),
        ("unknown field", "{ me { tenantt } }".to_owned()),
        ("parse", "{ me { ".to_owned()),
    ] {
        let (_, body) = client.raw(&viewer, &query, json!({})).await;
        let code = &body["errors"][0]["extensions"]["code"];
        if code != "VALIDATION" {
            missing.push(format!("{what}: {}", body["errors"][0]));
        }
    }
    assert!(
        missing.is_empty(),
        "errors without extensions.code VALIDATION:\n{}",
        missing.join("\n")
    );
}

#[tokio::test]
async fn field_suggestions_are_off() {
    let server = Server::start();
    let (_, body) = server
        .client
        .raw(&server.token("viewer"), "{ me { tenantt } }", json!({}))
        .await;
    let message = first_error(&body);
    assert!(message.contains("tenantt"), "{body}");
    assert!(!message.contains("Did you mean"), "{message}");
}

#[tokio::test]
async fn at_most_eight_operations_per_batch() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let one = json!({"query": "{ me { tenant } }"});
    let (status, body) = server
        .client
        .post(Some(&viewer), &Value::Array(vec![one.clone(); 8]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(8));
    let (status, body) = server
        .client
        .post(Some(&viewer), &Value::Array(vec![one; 9]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION");
    let (status, body) = server.client.post(Some(&viewer), &json!([])).await;
    assert_eq!(status, 400, "an empty batch: {body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION");
}

/// An answer is `application/json` unless the client accepts
/// `application/graphql-response+json` (GraphQL over HTTP): it was the
/// latter whatever the client asked for. For such a client a request
/// error is a 400; it was a 200 with `data: null`.
#[tokio::test]
async fn an_answer_has_the_media_type_the_client_accepts() {
    let server = Server::start();
    // The status, media type and body of `query` sent with `accept`.
    let ask = |accept: Option<&'static str>, query: &'static str| {
        let request = server
            .client
            .http()
            .post(&server.client.endpoint)
            .bearer_auth(server.token("viewer"))
            .json(&json!({ "query": query }));
        let request = match accept {
            Some(accept) => request.header("accept", accept),
            None => request,
        };
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let media_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, media_type, body)
        }
    };
    for (accept, expected) in [
        (None, "application/json"),
        (Some("application/json"), "application/json"),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            "application/graphql-response+json",
        ),
    ] {
        let (status, media_type, body) = ask(accept, "{ me { tenant } }").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(media_type, expected, "Accept: {accept:?}");
    }
    // A request error (nothing ran: an unknown field) is a 400 for a
    // client of `application/graphql-response+json`, a 200 for one of
    // `application/json`; a field error is a 200 for both.
    for (accept, query, expected) in [
        ("application/graphql-response+json", "{ nope }", 400),
        ("application/json", "{ nope }", 200),
        (
            "application/graphql-response+json",
            "{ quotes(first: 0) { nodes { id } } }",
            200,
        ),
    ] {
        let (status, media_type, body) = ask(Some(accept), query).await;
        assert_eq!(status, expected, "{accept} {query}: {body}");
        assert_eq!(media_type, accept, "{query}: {body}");
        assert!(
            body["errors"][0]["extensions"]["code"].is_string(),
            "{body}"
        );
        // The engine's own message, not the status's reason.
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("nope") || expected == 200, "{body}");
    }
}

#[tokio::test]
async fn malformed_json_is_a_client_error() {
    let server = Server::start();
    let response = server
        .client
        .http()
        .post(&server.client.endpoint)
        .bearer_auth(server.token("viewer"))
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let padding = |bytes: usize| {
        json!({
            "query": "query Q($pad: String) { me { tenant } }",
            "variables": {"pad": "x".repeat(bytes)},
        })
    };
    let (status, body) = server
        .client
        .post(Some(&viewer), &padding(200 * 1024))
        .await;
    assert_eq!(status, 200, "200 KiB is under the limit: {body}");
    // Over the limit the server answers 413 from the Content-Length alone,
    // before reading the body (a client still writing then sees the
    // connection close, so the status is read from a raw request).
    for bytes in [300 * 1024, 4 * 1024 * 1024] {
        let status = status_for_declared_length(server.addr, &viewer, bytes).await;
        assert_eq!(status, 413, "a body of {bytes} bytes must be refused");
    }
    // Sent chunked (no Content-Length), the limit is met while reading:
    // the same 413, as a JSON error.
    let status = status_for_chunked_body(server.addr, &viewer, 300 * 1024).await;
    assert_eq!(status, 413, "a chunked body over the limit must be refused");
}

/// A POST to `/graphql` as `token` with `framing` (a Content-Length or
/// Transfer-Encoding header line) and no body yet.
async fn post_head(
    addr: std::net::SocketAddr,
    token: &str,
    framing: &str,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// The status code of the answer read from `stream` within 5 s.
async fn answered_status(stream: &mut tokio::net::TcpStream) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("the server answers")
        .unwrap();
    let line = String::from_utf8_lossy(&answer[..read]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {line:?}"))
}

/// The status code for a POST whose `length` body bytes (a JSON query
/// padded with spaces) are sent in 16 KiB chunks.
async fn status_for_chunked_body(addr: std::net::SocketAddr, token: &str, length: usize) -> u16 {
    use tokio::io::AsyncWriteExt;
    let mut stream = post_head(addr, token, "Transfer-Encoding: chunked").await;
    let mut body = br#"{"query": "{ me { tenant } }"}"#.to_vec();
    body.resize(length, b' ');
    for chunk in body.chunks(16 * 1024) {
        let framed = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.to_vec(),
            b"\r\n".to_vec(),
        ]
        .concat();
        // The server may answer and close before the last chunk.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    answered_status(&mut stream).await
}

/// The status code for a POST that declares `length` body bytes and sends
/// none of them: the server answers before the body arrives.
async fn status_for_declared_length(addr: std::net::SocketAddr, token: &str, length: usize) -> u16 {
    let mut stream = post_head(addr, token, &format!("Content-Length: {length}")).await;
    answered_status(&mut stream).await
}

/// A connection that never finishes its request head is closed after the
/// request timeout, and a stop does not wait on such connections. Found
/// by holding half-sent heads: each was held for good (130 s and more),
/// a few thousand starved `accept` (`Too many open files`), and SIGTERM
/// waited until the client let go.
/// A server whose request timeout is one second.
fn with_one_second_timeout() -> Server {
    Server::start_with(ServerOptions {
        config: "request_timeout_ms = 1000\n".to_owned(),
        ..ServerOptions::default()
    })
}

/// A connection to `addr` whose reads give up after 20 s.
fn connected(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// A connection that sends nothing, one byte, or the start of the HTTP/2
/// preface is closed within the request timeout like a half-sent HTTP/1
/// head: each was held for good (the version detection waited for bytes
/// without a limit), and 420 of them made the server unreachable.
#[tokio::test]
async fn a_connection_that_sends_nothing_or_a_preface_is_closed_within_the_timeout() {
    let server = with_one_second_timeout();
    let addr = server.addr;
    for sent in ["", "P", "PRI * HTTP/2.0\r\n"] {
        let started = Instant::now();
        let ended = tokio::task::spawn_blocking(move || {
            let mut stream = connected(addr);
            stream.write_all(sent.as_bytes()).unwrap();
            stream.flush().unwrap();
            let mut answer = Vec::new();
            let ended = stream.read_to_end(&mut answer);
            ended.is_ok() || ended.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset)
        })
        .await
        .unwrap();
        let elapsed = started.elapsed();
        assert!(
            ended && elapsed < Duration::from_secs(8),
            "{sent:?}: held open {elapsed:?}"
        );
    }
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off_and_never_holds_a_stop() {
    let mut server = with_one_second_timeout();
    let addr = server.addr;
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = connected(addr);
        write!(stream, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\n").unwrap();
        stream.flush().unwrap();
        let mut answer = Vec::new();
        let ended = stream.read_to_end(&mut answer);
        (ended.is_ok(), String::from_utf8_lossy(&answer).into_owned())
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert!(
        answer.0 && elapsed < Duration::from_secs(8),
        "a half-sent request head was held open {elapsed:?}: {answer:?}"
    );
    assert!(
        answer.1.is_empty() || answer.1.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    // Twenty more half-sent heads, held by the client across a stop.
    let held: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            write!(stream, "GET /healthz HTTP/1.1\r\n").unwrap();
            stream
        })
        .collect();
    let stopping = Instant::now();
    let status = server.stop();
    assert!(
        status.success() && stopping.elapsed() < Duration::from_secs(10),
        "SIGTERM with half-sent requests open: {status} after {:?}; {}",
        stopping.elapsed(),
        server.stderr_tail()
    );
    drop(held);
}

/// A request whose body stalls is answered 408 `TIMEOUT` within the
/// request timeout, with or without a credential, and says nothing was
/// run: it was never read whole. It was a 503 that said a mutation may
/// have been applied, for a client that had sent none.
#[tokio::test]
async fn a_request_that_stalls_times_out() {
    let server = with_one_second_timeout();
    for credential in [
        format!("Authorization: Bearer {}\r\n", server.token("viewer")),
        String::new(),
    ] {
        let addr = server.addr;
        let started = Instant::now();
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = connected(addr);
            // Promise 100 bytes, send 10, then stall.
            write!(
                stream,
                "POST /graphql HTTP/1.1\r\nHost: {addr}\r\n{credential}\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"query\":"
            )
            .unwrap();
            stream.flush().unwrap();
            let mut response = Vec::new();
            let mut buffer = [0u8; 1024];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                response.extend_from_slice(&buffer[..n]);
                if response.ends_with(b"}]}") {
                    break;
                }
            }
            String::from_utf8_lossy(&response).into_owned()
        })
        .await
        .unwrap();
        let elapsed = started.elapsed();
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a stalled request body gets 408: {answer:?}"
        );
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-type: application/json")
                && answer.contains("\"TIMEOUT\"")
                && answer.contains("nothing was run"),
            "the timeout is a JSON error that says nothing ran: {answer:?}"
        );
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(8),
            "{elapsed:?}"
        );
    }
}

/// The system named in a callback's path is the client's: it is logged as
/// a known system's name or `unknown`, never as it came. Found by posting
/// to `/callbacks/foo%0A<time> ERROR forged line`: the server's log got a
/// forged ERROR line, raw escape sequences, and 60 KB for one request.
#[tokio::test]
async fn a_callback_path_cannot_forge_or_flood_the_log() {
    let server = Server::start();
    let http = reqwest::Client::new();
    let long = "x".repeat(20_000);
    for path in [
        "foo%0A2026-12-04T00:00:00Z%20ERROR%20forged%20line",
        "a%1B%5B31mRED",
        long.as_str(),
    ] {
        let status = http
            .post(format!("{}/callbacks/{path}", server.base_url()))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 404, "{path:.40}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = server.stderr_tail();
    assert!(log.contains("callback refused"), "{log}");
    assert!(!log.contains("forged line"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
    assert!(!log.contains(&long[..1_000]), "the whole path was logged");
}

/// A callback over the callback size bound is refused in the callback
/// answer's own shape, `{"error": "too_large"}` with 413, before its
/// signature is checked; so is every refusal of the server on that path. Found by posting 70 KB to `/callbacks/inventory`:
/// the answer was a GraphQL error envelope, unlike every other refusal of
/// that path.
#[tokio::test]
async fn a_callback_over_its_size_bound_is_refused_in_the_callback_shape() {
    let server = Server::start();
    let http = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let answer = http
        .post(format!("{}/callbacks/inventory", server.base_url()))
        .header("x-callback-timestamp", now.to_string())
        .header("x-callback-signature", "v1=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 413);
    let json: Value = answer.json().await.unwrap();
    assert_eq!(json, json!({ "error": "too_large" }));
    // The server's own refusals on that path too (a re-probe): a body over
    // the server's limit, a wrong method, a path no system has.
    let base = server.base_url();
    // Declared over the limit, head only: the server answers before any
    // body (a client still writing one may see its pipe closed instead).
    let (status, body) = raw_answer(
        server.addr,
        "POST /callbacks/inventory HTTP/1.1\r\nHost: x\r\nContent-Length: 307200\r\n\
         Connection: close\r\n\r\n",
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).ok(),
        Some(json!({ "error": "too_large" })),
        "{body}"
    );
    let get = http
        .get(format!("{base}/callbacks/inventory"))
        .send()
        .await
        .unwrap();
    let slash = http
        .post(format!("{base}/callbacks/inventory/"))
        .body("{}")
        .send()
        .await
        .unwrap();
    // A sender whose URL lacks the system's name (a probe).
    let bare = http
        .post(format!("{base}/callbacks"))
        .body("{}")
        .send()
        .await
        .unwrap();
    for (answer, status, reason) in [
        (get, 405, "method_not_allowed"),
        (slash, 404, "not_found"),
        (bare, 404, "not_found"),
    ] {
        assert_eq!(answer.status().as_u16(), status, "{reason}");
        let json: Value = answer.json().await.unwrap();
        assert_eq!(json, json!({ "error": reason }));
    }
}

/// Sends `request` as raw bytes to `addr` and returns the answer's status
/// and body (the request asks for the connection to be closed).
fn raw_answer(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut stream = connected(addr);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A body that is JSON but not a GraphQL request is told what a request
/// is; the answer named the engine's Rust type (`data did not match any
/// variant of untagged enum BatchRequest`).
#[tokio::test]
async fn a_body_that_is_not_a_request_is_told_what_one_is() {
    let server = Server::start();
    let viewer = server.token("viewer");
    for body in [
        json!("hi"),
        json!({ "query": null }),
        json!({ "query": 5 }),
        json!({ "query": "{ me { tenant } }", "variables": "{}" }),
    ] {
        let (status, answer) = server.client.post(Some(&viewer), &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = first_error(&answer);
        assert!(
            message.contains("a JSON object with a string \"query\""),
            "{body}: {answer}"
        );
        assert!(!message.contains("enum"), "{body}: {answer}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "VALIDATION");
    }
}

/// A query text past 32 KiB is refused before it is parsed (parsing runs on
/// the threads that answer every client: a few 250 KB documents stalled
/// `/healthz` for seconds), with a short answer that says to pass values
/// as variables; the same value as a variable is not refused for its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_text_past_its_bound_is_refused_before_it_is_parsed() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let long_id = "q".repeat(40 * 1024);
    let inline = format!("{{ quote(id: \"{long_id}\") {{ id }} }}");
    // A document that does not parse: its error used to quote the whole line.
    let broken = format!("{{ me {{{} }}", " role".repeat(50_000));
    for query in [&inline, &broken] {
        let (status, answer) = server
            .client
            .post(Some(&viewer), &json!({ "query": query }))
            .await;
        assert_eq!(status, 200, "{}", &answer.to_string()[..200]);
        let text = answer.to_string();
        assert!(text.len() < 4096, "an answer of {} bytes", text.len());
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "VALIDATION",
            "{text}"
        );
        let message = first_error(&answer);
        assert!(
            message.contains("32 KiB") && message.contains("variables"),
            "{message}"
        );
    }
    let (status, answer) = server
        .client
        .raw(
            &viewer,
            "query($id: String!) { quote(id: $id) { id } }",
            json!({ "id": long_id }),
        )
        .await;
    assert_eq!(status, 200);
    assert!(!first_error(&answer).contains("32 KiB"), "{answer}");
}

/// A body the client says is encoded (`Content-Encoding: gzip`, `br`, ...)
/// is refused with 415 naming the header: the server does not decode
/// bodies, and read a gzip body as raw bytes ("expected value at line 1
/// column 1") and a plain one labelled `br` as if it were not labelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoded_body_is_refused_naming_the_encoding() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let url = format!("{}/graphql", server.base_url());
    let post = |encoding: &'static str| {
        server
            .client
            .http()
            .post(&url)
            .bearer_auth(&viewer)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(r#"{"query":"{ me { tenant } }"}"#)
            .send()
    };
    for encoding in ["gzip", "br", "zstd, gzip"] {
        let answer = post(encoding).await.unwrap();
        assert_eq!(answer.status().as_u16(), 415, "{encoding}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "VALIDATION",
            "{body}"
        );
        assert!(first_error(&body).contains("Content-Encoding"), "{body}");
    }
    // `identity` is no encoding.
    assert_eq!(post("identity").await.unwrap().status().as_u16(), 200);
}

/// A value that is not a `DateTime` is refused naming its argument, inline
/// or as a variable, in a fragment too: a probe found the message named
/// only the type ("Failed to parse \"DateTime\"") and no `field`.
#[tokio::test]
async fn an_unparsable_date_time_names_its_argument() {
    let server = Server::start();
    let (client, viewer) = (&server.client, server.token("viewer"));
    for (query, variables) in [
        (
            r#"{ quotes(updatedSince: "x") { nodes { id } } }"#,
            json!({}),
        ),
        (
            r#"{ a: quotes(status: PRICED, updatedSince: "2026-01-01T00:00:00") { nodes { id } } }"#,
            json!({}),
        ),
        (
            "query($t: DateTime) { quotes(updatedSince: $t) { nodes { id } } }",
            json!({ "t": "yesterday" }),
        ),
        (
            r#"query { ...F } fragment F on Query { quotes(updatedSince: "x") { nodes { id } } }"#,
            json!({}),
        ),
    ] {
        let (_, body) = client.raw(&viewer, query, variables).await;
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["code"], "VALIDATION", "{body}");
        assert_eq!(
            error["extensions"]["field"], "updatedSince",
            "{query}: {body}"
        );
    }
}

/// An empty `operationName` (some clients send `""` for none) names no
/// operation, over GET and POST alike: a probe read "Unknown operation
/// named \"\"".
#[tokio::test]
async fn an_empty_operation_name_names_no_operation() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let http = server.client.http();
    let url = format!("{}/graphql", server.base_url());
    let get = http
        .get(&url)
        .query(&[("query", "{ me { role } }"), ("operationName", "")]);
    let post = http
        .post(&url)
        .json(&json!({ "query": "{ me { role } }", "operationName": "" }));
    for request in [get, post] {
        let response = request.bearer_auth(&viewer).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["me"]["role"], "viewer", "{body}");
    }
}
