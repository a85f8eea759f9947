//! The live subscription over WebSocket (graphql-transport-ws): a tenant
//! receives its own events, filtered, and nothing of another tenant's.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use graphql_client::GraphQLQuery;
use serde_json::{json, Value};
use tests::ops::{self, live_events, LiveEvents};
use tests::{Server, ServerOptions, Tenants};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `/ws` with graphql-transport-ws; `header_token` goes in the
/// Authorization header, `init` is the connection_init payload.
async fn open(server: &Server, header_token: Option<&str>) -> Socket {
    open_offering(server, header_token, "graphql-transport-ws").await
}

/// Opens `/ws` offering the subprotocols `offered`; the server must answer
/// graphql-transport-ws.
async fn open_offering(server: &Server, header_token: Option<&str>, offered: &str) -> Socket {
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", offered.parse().unwrap());
    if let Some(token) = header_token {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    socket
}

/// The next protocol message (answering pings), or `None` on close or
/// after `wait`.
async fn receive(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(wait, socket.next()).await.ok()??;
        match message.ok()? {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                if value["type"] == "ping" {
                    send(socket, json!({"type": "pong"})).await;
                    continue;
                }
                return Some(value);
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// connection_init with `payload`; whether it was acknowledged.
async fn init(socket: &mut Socket, payload: Value) -> bool {
    send(
        socket,
        json!({"type": "connection_init", "payload": payload}),
    )
    .await;
    matches!(
        receive(socket, Duration::from_secs(5)).await,
        Some(v) if v["type"] == "connection_ack"
    )
}

async fn subscribe(socket: &mut Socket, id: &str, variables: live_events::Variables) {
    let payload = serde_json::to_value(LiveEvents::build_query(variables)).unwrap();
    send(
        socket,
        json!({"id": id, "type": "subscribe", "payload": payload}),
    )
    .await;
    // Let the server register the subscription before anything is appended.
    tokio::time::sleep(Duration::from_millis(400)).await;
}

type Seen = Vec<(String, live_events::LiveEventsEvents)>;

/// `(subscription id, event)` pairs until `until` holds for what was seen
/// (or 10 s pass), then anything else arriving within 300 ms.
async fn events_until(socket: &mut Socket, until: impl Fn(&Seen) -> bool) -> Seen {
    let mut seen = Vec::new();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut done = false;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(message) = receive(socket, left).await else {
            break;
        };
        assert_ne!(message["type"], "error", "{message}");
        if message["type"] != "next" {
            continue;
        }
        let id = message["id"].as_str().unwrap_or_default().to_owned();
        let data: live_events::ResponseData =
            serde_json::from_value(message["payload"]["data"].clone()).unwrap();
        seen.push((id, data.events));
        if !done && until(&seen) {
            done = true;
            deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        }
    }
    seen
}

/// Creates a quote and waits until `socket` delivers its event.
async fn sees_a_new_quote(server: &Server, socket: &mut Socket) {
    let quote = server
        .client
        .create_quote(&server.token("sales"), &tests::unique("c"), "cust-1")
        .await
        .unwrap();
    let seen = events_until(socket, |seen| !seen.is_empty()).await;
    assert_eq!(seen.last().unwrap().1.stream_id, format!("quote-{quote}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_subscription_receives_the_tenants_events_only() {
    let server = Server::start_with(ServerOptions {
        tenants: Some(Tenants::new(&["acme", "globex"])),
        ..ServerOptions::default()
    });
    let mut socket = open(&server, None).await;
    let viewer = server.tenant_token("acme", "viewer");
    assert!(
        init(
            &mut socket,
            json!({"Authorization": format!("Bearer {viewer}")})
        )
        .await
    );
    subscribe(
        &mut socket,
        "all",
        live_events::Variables {
            stream_prefix: Some("quote-".to_owned()),
            event_types: None,
            after: None,
            from: None,
        },
    )
    .await;
    subscribe(
        &mut socket,
        "lines",
        live_events::Variables {
            stream_prefix: None,
            event_types: Some(vec!["LineAdded".to_owned()]),
            after: None,
            from: None,
        },
    )
    .await;

    let client = &server.client;
    let (acme, globex) = (
        server.tenant_token("acme", "sales"),
        server.tenant_token("globex", "sales"),
    );
    let foreign = client.create_quote(&globex, "g-1", "cust-g").await.unwrap();
    client
        .add_line(&globex, &foreign, "l-1", "fiber-1g")
        .await
        .unwrap();
    let own = client.create_quote(&acme, "a-1", "cust-a").await.unwrap();
    client
        .add_line(&acme, &own, "l-1", "fiber-1g")
        .await
        .unwrap();

    let own_stream = format!("quote-{own}");
    let seen = events_until(&mut socket, |seen| seen.len() >= 3).await;
    let foreign_stream = format!("quote-{foreign}");
    assert!(
        seen.iter().all(|(_, e)| e.stream_id != foreign_stream),
        "a foreign event leaked: {seen:?}"
    );
    let all: Vec<_> = seen
        .iter()
        .filter(|(id, _)| id == "all")
        .map(|(_, e)| {
            (
                e.stream_id.as_str(),
                e.event_type.as_str(),
                e.stream_version,
            )
        })
        .collect();
    assert_eq!(
        all,
        vec![
            (own_stream.as_str(), "QuoteCreated", 1),
            (own_stream.as_str(), "LineAdded", 2)
        ]
    );
    let lines: Vec<_> = seen
        .iter()
        .filter(|(id, _)| id == "lines")
        .map(|(_, e)| (e.stream_id.as_str(), e.event_type.as_str()))
        .collect();
    assert_eq!(lines, vec![(own_stream.as_str(), "LineAdded")]);
    let created = &seen[0].1;
    assert_eq!(created.correlation_id, "acme:a-1");

    // `complete` ends one subscription; the other goes on.
    send(&mut socket, json!({"id": "all", "type": "complete"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    client
        .add_line(&acme, &own, "l-2", "fiber-10g")
        .await
        .unwrap();
    let seen = events_until(&mut socket, |seen| !seen.is_empty()).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "lines");
}

#[tokio::test]
async fn the_websocket_takes_the_token_from_the_header_too() {
    let server = Server::start();
    let mut socket = open(&server, Some(&server.token("viewer"))).await;
    assert!(init(&mut socket, json!({})).await);
    subscribe(
        &mut socket,
        "1",
        live_events::Variables {
            stream_prefix: None,
            event_types: None,
            after: None,
            from: None,
        },
    )
    .await;
    sees_a_new_quote(&server, &mut socket).await;
}

#[tokio::test]
async fn the_websocket_without_a_valid_token_is_refused() {
    let server = Server::start();
    for payload in [json!({}), json!({"Authorization": "Bearer wrong"})] {
        let mut socket = open(&server, None).await;
        assert!(
            !init(&mut socket, payload.clone()).await,
            "acknowledged without credentials: {payload}"
        );
    }
    // Nor can a subscription be started without connection_init.
    let mut socket = open(&server, None).await;
    let payload = serde_json::to_value(ops::FalloutChanges::build_query(
        ops::fallout_changes::Variables {},
    ))
    .unwrap();
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": payload}),
    )
    .await;
    let answer = receive(&mut socket, Duration::from_secs(5)).await;
    assert!(
        answer.as_ref().is_none_or(|v| v["type"] != "next"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_stream_prefix_no_stream_can_have_or_no_event_type_is_refused_as_validation() {
    let server = Server::start();
    let mut socket = open(&server, Some(&server.token("viewer"))).await;
    assert!(init(&mut socket, json!({})).await);
    // An empty `eventTypes` would match nothing: refused, as a prefix no
    // stream can have is.
    let cases = [
        ("1", Some("../x"), None, "streamPrefix"),
        ("2", Some("quote-/"), None, "streamPrefix"),
        ("3", Some(""), None, "streamPrefix"),
        ("5", None, Some(Vec::new()), "eventTypes"),
        // A type no event has would deliver nothing, for ever: refused,
        // with the one meant when only its case is wrong.
        (
            "6",
            None,
            Some(vec!["NoSuchEvent".to_owned()]),
            "eventTypes",
        ),
        (
            "7",
            None,
            Some(vec!["QuoteCreated".to_owned(), "quoteaccepted".to_owned()]),
            "did you mean QuoteAccepted",
        ),
    ];
    for (id, prefix, event_types, field) in cases {
        subscribe(
            &mut socket,
            id,
            live_events::Variables {
                stream_prefix: prefix.map(str::to_owned),
                event_types,
                after: None,
                from: None,
            },
        )
        .await;
        // An execution error: graphql-transport-ws allows it as `error`
        // or as a `next` carrying errors.
        let answer = receive(&mut socket, Duration::from_secs(5)).await.unwrap();
        assert_eq!(answer["id"], id, "{answer}");
        let error = match answer["type"].as_str() {
            Some("error") => &answer["payload"][0],
            Some("next") => &answer["payload"]["errors"][0],
            _ => panic!("{prefix:?}: {answer}"),
        };
        assert_eq!(
            error["extensions"]["code"], "VALIDATION",
            "{prefix:?}: {answer}"
        );
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
        if answer["type"] == "next" {
            let ended = receive(&mut socket, Duration::from_secs(5)).await.unwrap();
            assert_eq!(ended, json!({"id": id, "type": "complete"}));
        }
    }
    // The start of a kind's prefix is a prefix some stream has.
    subscribe(
        &mut socket,
        "4",
        live_events::Variables {
            stream_prefix: Some("quo".to_owned()),
            event_types: None,
            after: None,
            from: None,
        },
    )
    .await;
    sees_a_new_quote(&server, &mut socket).await;
}

/// Only graphql-transport-ws is spoken: an upgrade offering only the legacy
/// `graphql-ws` is refused with a message naming the subprotocol, and one
/// offering both is answered and served in graphql-transport-ws (`next`
/// messages, 4409 on a running id). It used to be answered in one and
/// served in the other, where no per-connection limit applied.
#[tokio::test]
async fn the_socket_speaks_the_subprotocol_its_handshake_names() {
    let server = Server::start();
    let viewer = server.token("viewer");
    let mut legacy = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    legacy
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-ws".parse().unwrap());
    match tokio_tungstenite::connect_async(legacy).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION");
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains("graphql-transport-ws"), "{message}");
        }
        other => panic!("a graphql-ws-only upgrade was not refused: {other:?}"),
    }

    let mut socket =
        open_offering(&server, Some(&viewer), "graphql-ws, graphql-transport-ws").await;
    assert!(init(&mut socket, json!({})).await);
    let subscription = live_events::Variables {
        stream_prefix: None,
        event_types: None,
        after: None,
        from: None,
    };
    subscribe(&mut socket, "s", subscription).await;
    server
        .client
        .create_quote(&server.token("sales"), &tests::unique("c"), "cust-1")
        .await
        .unwrap();
    let message = receive(&mut socket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    let payload = serde_json::to_value(LiveEvents::build_query(live_events::Variables {
        stream_prefix: None,
        event_types: None,
        after: None,
        from: None,
    }))
    .unwrap();
    send(
        &mut socket,
        json!({"id": "s", "type": "subscribe", "payload": payload}),
    )
    .await;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(closed, Some(4409));
}

/// A subscriber that reconnects with `after` (the last position it
/// received) gets every event of its tenant it missed, in order, then the
/// live ones: nothing lost, nothing twice. The subscription used to start
/// at the head only, so whatever was appended while the client was away
/// (a server restart closes every socket with 1012) never reached it. A
/// position no event ever had is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_resumes_after_its_last_position_misses_nothing() {
    let server = Server::start();
    let (viewer, sales) = (server.token("viewer"), server.token("sales"));
    let all = live_events::Variables {
        stream_prefix: None,
        event_types: None,
        after: None,
        from: None,
    };
    let mut socket = open(&server, Some(&viewer)).await;
    assert!(init(&mut socket, json!({})).await);
    subscribe(&mut socket, "1", all.clone()).await;
    sees_a_new_quote(&server, &mut socket).await;
    drop(socket);
    // The last position the subscriber received: the log's last event.
    let (_, body) = server
        .client
        .raw(
            &server.token("admin"),
            "{ events(first: 200) { position } }",
            json!({}),
        )
        .await;
    let last = body["data"]["events"]
        .as_array()
        .and_then(|events| events.last())
        .and_then(|event| event["position"].as_i64())
        .unwrap();
    // Appended while nobody listens.
    let mut missed = Vec::new();
    for _ in 0..3 {
        let quote = server
            .client
            .create_quote(&sales, &tests::unique("away"), "cust-1")
            .await
            .unwrap();
        missed.push(format!("quote-{quote}"));
    }
    let mut socket = open(&server, Some(&viewer)).await;
    assert!(init(&mut socket, json!({})).await);
    subscribe(
        &mut socket,
        "2",
        live_events::Variables {
            after: Some(last),
            ..all.clone()
        },
    )
    .await;
    let resumed = events_until(&mut socket, |seen| {
        missed
            .iter()
            .all(|stream| seen.iter().any(|(_, e)| &e.stream_id == stream))
    })
    .await;
    let positions: Vec<i64> = resumed.iter().map(|(_, e)| e.position).collect();
    assert_eq!(positions.first(), Some(&(last + 1)), "{positions:?}");
    assert!(
        positions.windows(2).all(|w| w[1] == w[0] + 1),
        "one tenant's events, every position once, in order: {positions:?}"
    );
    for stream in &missed {
        assert!(
            resumed.iter().any(|(_, e)| &e.stream_id == stream),
            "{stream} missed"
        );
    }
    // Then live ones on the same subscription.
    sees_a_new_quote(&server, &mut socket).await;
    // A position past the log is refused.
    let mut socket = open(&server, Some(&viewer)).await;
    assert!(init(&mut socket, json!({})).await);
    let payload = serde_json::to_value(LiveEvents::build_query(live_events::Variables {
        after: Some(1_000_000_000),
        ..all.clone()
    }))
    .unwrap();
    send(
        &mut socket,
        json!({"id": "3", "type": "subscribe", "payload": payload}),
    )
    .await;
    let refused = receive(&mut socket, Duration::from_secs(10)).await.unwrap();
    // A field error of a subscription comes as its one `next`.
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "VALIDATION",
        "{refused}"
    );
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["field"],
        "after"
    );
    // A client that received nothing yet starts `from` a position: 0 is
    // the whole log, the tenant's first event first.
    let (_, body) = server
        .client
        .raw(
            &server.token("admin"),
            "{ events(first: 1) { position } }",
            json!({}),
        )
        .await;
    let first = body["data"]["events"][0]["position"].as_i64().unwrap();
    let mut socket = open(&server, Some(&viewer)).await;
    assert!(init(&mut socket, json!({})).await);
    subscribe(
        &mut socket,
        "4",
        live_events::Variables {
            from: Some(0),
            ..all
        },
    )
    .await;
    let whole = events_until(&mut socket, |seen| !seen.is_empty()).await;
    assert_eq!(whole.first().map(|(_, e)| e.position), Some(first));
}
