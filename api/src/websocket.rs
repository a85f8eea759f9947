//! GraphQL over WebSocket: one connection's session, with the protocol's
//! rules async-graphql leaves to the server.
//!
//! async-graphql runs the subscriptions; this module stands between it and
//! the socket and holds the connection to graphql-transport-ws:
//! - a message that is not a protocol message closes with 4400;
//! - a `subscribe` whose id is empty or longer than [`MAX_ID_BYTES`]
//!   closes with 4400 (async-graphql repeats the id in every message it sends);
//! - a `subscribe` whose id is already in use closes with 4409
//!   (async-graphql would silently replace the running subscription);
//! - a message over the size limit closes with 1009 (the socket would
//!   otherwise just drop);
//! - a `subscribe` beyond [`MAX_SUBSCRIPTIONS`] running on the connection
//!   is answered with an `error` for its id (`VALIDATION`) and not run;
//! - a `connection_init` beyond the credential's open connections
//!   ([`ConnectionCounts`]) closes with 1013 (try again later);
//! - a refused `connection_init` closes with 4401 or 4403, and a
//!   `subscribe` before the handshake with 4401;
//! - a connection that sends no `connection_init` within the configured
//!   wait closes with 4408 (an idle socket that never authenticates holds a
//!   task and a buffer for nobody);
//! - every error sent for a refused `subscribe` carries a code.
//!
//! Only graphql-transport-ws is spoken: an upgrade that does not offer it
//! is refused with 400 (the legacy subscriptions-transport-ws protocol,
//! `graphql-ws`, would bypass every rule above, and a client offering both
//! would be answered in one and served in the other).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_graphql::http::{ClientMessage, WebSocket as Session, WebSocketProtocols, WsMessage};
use async_graphql::{Data, Executor};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use futures_util::{SinkExt, StreamExt};

use crate::auth::{Authenticator, Principal};

/// graphql-transport-ws close code: a message that is not a protocol message.
pub const CLOSE_BAD_MESSAGE: u16 = 4400;
/// graphql-transport-ws close code: the connection is not authenticated.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// graphql-transport-ws close code: the credential may not subscribe.
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// graphql-transport-ws close code: no `connection_init` came in time.
pub const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// graphql-transport-ws close code: a `subscribe` reused a running id.
pub const CLOSE_DUPLICATE_ID: u16 = 4409;
/// WebSocket close code (RFC 6455): try again later; the credential has
/// as many connections open as it may.
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// The reason a `connection_init` refusal carries when the credential has
/// as many connections open as it may.
pub const TOO_MANY_CONNECTIONS_REASON: &str =
    "Too many open connections for this credential; close one and retry";
/// WebSocket close code (IANA registry): the server is restarting; the
/// client should reconnect. Every connection is closed with it when the
/// server stops, instead of its subscriptions ending with `complete`.
pub const CLOSE_SERVICE_RESTART: u16 = 1012;
/// WebSocket close code (RFC 6455): a message too big to process.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// The reason async-graphql's `connection_init` refusal carries when the
/// connection has no valid credential.
pub const UNAUTHORIZED_REASON: &str = "Unauthorized";
/// The reason async-graphql's `connection_init` refusal carries when the
/// credential's role may not subscribe.
pub const FORBIDDEN_REASON: &str = "Forbidden";

/// The most subscriptions one connection runs at once: each holds a
/// reader of the log's live feed, so a client cannot open them without
/// bound; a `subscribe` beyond it is refused with an `error` for its id.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// The longest `subscribe` id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// The longest close reason a WebSocket close frame carries (RFC 6455:
/// 125 bytes of payload, two of them the code).
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// The one subprotocol this server speaks, as `Sec-WebSocket-Protocol`
/// names it.
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// Proof that an upgrade offered graphql-transport-ws in
/// `Sec-WebSocket-Protocol` (among others or alone): [`serve`] speaks only
/// that. An upgrade that does not is refused with 400 naming it.
#[derive(Clone, Copy, Debug)]
pub struct Protocol;

impl<S: Send + Sync> FromRequestParts<S> for Protocol {
    type Rejection = (StatusCode, axum::Json<serde_json::Value>);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let offered = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|list| list.split(','))
            .any(|p| p.trim() == SUBPROTOCOL);
        if offered {
            Ok(Self)
        } else {
            Err((
                StatusCode::BAD_REQUEST,
                axum::Json(crate::http::error_body(
                    "GET /ws is a WebSocket upgrade that offers `Sec-WebSocket-Protocol: \
graphql-transport-ws`, the only subprotocol this server speaks",
                    "VALIDATION",
                )),
            ))
        }
    }
}

/// Serves one upgraded connection until either side ends it: client
/// messages pass the [`Guard`] into async-graphql's session (`executor`
/// runs the operations, `on_init` answers `connection_init` with the
/// connection's data or a refusal), and the session's messages go back
/// with the close codes and error codes above. A connection whose client
/// sends no `connection_init` within `init_wait` is closed with 4408; when
/// `stopped` resolves (the server is stopping) the connection is closed
/// with [`CLOSE_SERVICE_RESTART`] and its subscriptions dropped without a
/// `complete`.
pub async fn serve<E, F, R>(
    socket: WebSocket,
    executor: E,
    _offered: Protocol,
    init_wait: std::time::Duration,
    stopped: impl Future<Output = ()>,
    on_init: F,
) where
    E: Executor,
    F: FnOnce(serde_json::Value) -> R + Send + 'static,
    R: Future<Output = async_graphql::Result<Data>> + Send + 'static,
{
    let (replies, mut refusals) = tokio::sync::mpsc::unbounded_channel();
    let guard = Arc::new(Mutex::new(Guard::new(replies)));
    let (mut sink, incoming) = socket.split();
    let admitted = guard.clone();
    let input = incoming
        .map(move |received| match admitted.lock() {
            Ok(mut guard) => guard.admit(received),
            Err(_) => Admit::End,
        })
        .take_while(|admit| futures_util::future::ready(!matches!(admit, Admit::End)))
        .filter_map(|admit| {
            futures_util::future::ready(match admit {
                Admit::Forward(message) => Some(Ok(*message)),
                Admit::Skip | Admit::End => None,
            })
        });
    let session = Session::from_message_stream(executor, input, WebSocketProtocols::GraphQLWS)
        .on_connection_init(on_init);
    futures_util::pin_mut!(session);
    let init_deadline = tokio::time::sleep(init_wait);
    futures_util::pin_mut!(init_deadline);
    futures_util::pin_mut!(stopped);
    let mut awaiting_init = true;
    loop {
        let message = tokio::select! {
            biased;
            () = &mut stopped => {
                if let Ok(mut guard) = guard.lock() {
                    guard.closing(CLOSE_SERVICE_RESTART, "The server is stopping; reconnect");
                }
                break;
            }
            Some(refusal) = refusals.recv() => Message::Text(refusal.into()),
            () = &mut init_deadline, if awaiting_init => {
                awaiting_init = false;
                match guard.lock() {
                    Ok(guard) if guard.initialised => continue,
                    Ok(mut guard) => {
                        guard.closing(CLOSE_INIT_TIMEOUT, "Connection initialisation timeout");
                        break;
                    }
                    Err(_) => break,
                }
            }
            message = session.next() => match message {
                None => break,
                Some(message) => to_socket(message, &guard),
            },
        };
        if sink.send(message).await.is_err() {
            return;
        }
    }
    let closing = guard.lock().ok().and_then(|mut guard| guard.close.take());
    if let Some(frame) = closing {
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
}

/// A session message as it goes to the socket: ended subscriptions noted,
/// errors labelled, close codes mapped.
fn to_socket(message: WsMessage, guard: &Mutex<Guard>) -> Message {
    match message {
        WsMessage::Text(text) => {
            if let Ok(mut guard) = guard.lock() {
                guard.sent(&text);
            }
            label_errors(Message::Text(text.into()))
        }
        WsMessage::Close(code, reason) => close_code(code, &reason),
    }
}

/// What becomes of one thing read from the socket.
enum Admit {
    /// A protocol message for the session.
    Forward(Box<ClientMessage>),
    /// Nothing for the session (a WebSocket ping, pong or close frame).
    Skip,
    /// The connection ends here, with [`Guard::close`] sent if set.
    End,
}

/// The message types a client may send in graphql-transport-ws.
const CLIENT_TYPES: [&str; 5] = ["connection_init", "ping", "pong", "subscribe", "complete"];

/// A client's message, if it is one of graphql-transport-ws: the legacy
/// protocol's `start`, `stop` and `connection_terminate` (which
/// async-graphql's parser also takes) are refused like any unknown type,
/// and a refusal names the type in the protocol's words, never the
/// parser's Rust types.
fn client_message(bytes: &[u8]) -> Result<ClientMessage, String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    let kind = serde_json::from_slice::<Typed>(bytes)
        .map_err(|_| "a message is a JSON object with a string \"type\"".to_owned())?
        .kind;
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        return Err(format!(
            "unknown type \"{}\" ({})",
            domain::text::escaped(&kind),
            CLIENT_TYPES.join(", ")
        ));
    }
    ClientMessage::from_bytes(bytes).map_err(|_| match kind.as_str() {
        "subscribe" => {
            "a subscribe message has a string \"id\" and a \"payload\" with a \"query\"".to_owned()
        }
        "complete" => "a complete message has a string \"id\"".to_owned(),
        other => format!("a {other} message's \"payload\" is an object if present"),
    })
}

/// One connection's protocol state: the subscription ids in use, and the
/// close frame that ends the connection when a client message broke the
/// protocol.
struct Guard {
    running: HashSet<String>,
    close: Option<CloseFrame>,
    /// Whether the client sent its `connection_init`.
    initialised: bool,
    /// Answers the guard gives itself (a refused `subscribe`).
    replies: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Guard {
    fn new(replies: tokio::sync::mpsc::UnboundedSender<String>) -> Self {
        Self {
            running: HashSet::new(),
            close: None,
            initialised: false,
            replies,
        }
    }

    fn closing(&mut self, code: u16, reason: &str) -> Admit {
        self.close = Some(CloseFrame {
            code,
            reason: close_reason(reason).into(),
        });
        Admit::End
    }

    /// Checks one thing read from the socket against the protocol.
    fn admit(&mut self, received: Result<Message, axum::Error>) -> Admit {
        let bytes = match received {
            Ok(Message::Text(text)) => axum::body::Bytes::from(text),
            Ok(Message::Binary(bytes)) => bytes,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_)) => return Admit::Skip,
            Err(error) if too_big(&error) => {
                return self.closing(CLOSE_TOO_BIG, "the message is over the size limit")
            }
            Err(_) => return Admit::End,
        };
        let message = match client_message(&bytes) {
            Ok(message) => message,
            Err(problem) => {
                return self.closing(
                    CLOSE_BAD_MESSAGE,
                    &format!("Invalid message received: {problem}"),
                )
            }
        };
        if let ClientMessage::ConnectionInit { .. } = &message {
            self.initialised = true;
        }
        match &message {
            ClientMessage::Start { id, .. } => {
                if id.is_empty() || id.len() > MAX_ID_BYTES {
                    return self.closing(
                        CLOSE_BAD_MESSAGE,
                        &format!("A subscribe id is 1 to {MAX_ID_BYTES} bytes"),
                    );
                }
                if self.running.contains(id) {
                    return self.closing(
                        CLOSE_DUPLICATE_ID,
                        &format!("Subscriber for {id} already exists"),
                    );
                }
                if self.running.len() >= MAX_SUBSCRIPTIONS {
                    let refusal = serde_json::json!({
                        "id": id,
                        "type": "error",
                        "payload": [{
                            "message": format!("at most {MAX_SUBSCRIPTIONS} subscriptions run on one connection: complete one first"),
                            "extensions": {"code": "VALIDATION"},
                        }],
                    });
                    let _ = self.replies.send(refusal.to_string());
                    return Admit::Skip;
                }
                self.running.insert(id.clone());
            }
            ClientMessage::Stop { id } => {
                self.running.remove(id);
            }
            _ => {}
        }
        Admit::Forward(Box::new(message))
    }

    /// Notes a message the session sends: a `complete` or an `error` ends
    /// its subscription, so its id may be used again.
    fn sent(&mut self, text: &str) {
        if !(text.contains("\"complete\"") || text.contains("\"error\"")) {
            return;
        }
        #[derive(serde::Deserialize)]
        struct Ending {
            #[serde(rename = "type")]
            kind: String,
            id: Option<String>,
        }
        if let Ok(Ending { kind, id: Some(id) }) = serde_json::from_str::<Ending>(text) {
            if kind == "complete" || kind == "error" {
                self.running.remove(&id);
            }
        }
    }
}

/// Whether a read failed because the message (or a frame) is over the
/// configured size limit.
fn too_big(error: &axum::Error) -> bool {
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        if let Some(error) = error.downcast_ref::<tungstenite::Error>() {
            return matches!(error, tungstenite::Error::Capacity(_));
        }
        cause = error.source();
    }
    false
}

/// `reason` cut to what a close frame carries, at a character boundary.
fn close_reason(reason: &str) -> String {
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// async-graphql closes a refused `connection_init` with 1002 and the
/// callback's message, and a `subscribe` before the handshake with 1011;
/// graphql-transport-ws wants 4401 (unauthorized) and 4403 (forbidden).
fn close_code(code: u16, reason: &str) -> Message {
    let (code, reason) = match (code, reason) {
        (1002, UNAUTHORIZED_REASON) | (1011, "The handshake is not completed.") => {
            (CLOSE_UNAUTHORIZED, UNAUTHORIZED_REASON)
        }
        (1002, FORBIDDEN_REASON) => (CLOSE_FORBIDDEN, FORBIDDEN_REASON),
        (1002, TOO_MANY_CONNECTIONS_REASON) => (CLOSE_TRY_AGAIN_LATER, TOO_MANY_CONNECTIONS_REASON),
        other => other,
    };
    Message::Close(Some(CloseFrame {
        code,
        reason: close_reason(reason).into(),
    }))
}

/// An `error` message (a refused `subscribe`: parse errors, unknown
/// fields, depth and complexity limits) gets `VALIDATION` on each error
/// without a code, as the same operation over HTTP does.
fn label_errors(message: Message) -> Message {
    let Message::Text(text) = &message else {
        return message;
    };
    if !text.as_str().contains("\"error\"") {
        return message;
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
        return message;
    };
    if value.get("type").and_then(serde_json::Value::as_str) != Some("error") {
        return message;
    }
    let Some(errors) = value
        .get_mut("payload")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return message;
    };
    for error in errors
        .iter_mut()
        .filter_map(serde_json::Value::as_object_mut)
    {
        let extensions = error
            .entry("extensions")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(extensions) = extensions.as_object_mut() {
            extensions
                .entry("code")
                .or_insert_with(|| serde_json::Value::from("VALIDATION"));
        }
    }
    Message::Text(value.to_string().into())
}

/// The open, acknowledged WebSocket connections of each credential
/// (tenant and credential name), each bounded: every connection runs up to
/// [`MAX_SUBSCRIPTIONS`] readers of the log, so one credential must not
/// open them without bound.
#[derive(Debug)]
pub struct ConnectionCounts {
    open: Mutex<HashMap<(String, String), usize>>,
    per_credential: usize,
}

impl ConnectionCounts {
    /// Counts allowing `per_credential` connections to each credential.
    pub fn new(per_credential: usize) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(HashMap::new()),
            per_credential,
        })
    }

    /// A permit for one more connection of `principal`'s credential, held
    /// for as long as the connection is open (dropping it gives the place
    /// back), or `None` when the credential has as many as it may.
    pub fn admit(self: &Arc<Self>, principal: &Principal) -> Option<ConnectionPermit> {
        let key = (principal.tenant.as_str().to_owned(), principal.name.clone());
        let mut open = self.open.lock().ok()?;
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.per_credential {
            return None;
        }
        *count += 1;
        Some(ConnectionPermit {
            counts: self.clone(),
            key,
        })
    }

    /// Connections `principal`'s credential has open.
    pub fn open(&self, principal: &Principal) -> usize {
        let key = (principal.tenant.as_str().to_owned(), principal.name.clone());
        self.open
            .lock()
            .map_or(0, |open| open.get(&key).copied().unwrap_or(0))
    }
}

/// One open connection's place in [`ConnectionCounts`], given back on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    counts: Arc<ConnectionCounts>,
    key: (String, String),
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        if let Ok(mut open) = self.counts.open.lock() {
            if let Some(count) = open.get_mut(&self.key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(&self.key);
                }
            }
        }
    }
}

/// The credential of a WebSocket: the upgrade's `Authorization` header
/// or the `connection_init` payload's (`{"Authorization": "Bearer ..."}`
/// or `{"authToken": "..."}`). A connection carries one credential: every
/// one given must be valid and name the same principal, so a credential
/// that does not authenticate is never passed over for another (a proxy
/// that checked one of them cannot be bypassed with the other).
///
/// `header` is `None` when the upgrade had no `Authorization` header,
/// `Some(None)` when it had one that does not authenticate (or several).
pub fn principal_of_connection(
    auth: &Authenticator,
    header: Option<Option<Principal>>,
    payload: &serde_json::Value,
) -> Option<Principal> {
    let text = |key: &str| payload.get(key).map(|value| value.as_str());
    let given = [
        text("Authorization").map(|value| value.map(str::to_owned)),
        text("authorization").map(|value| value.map(str::to_owned)),
        text("authToken").map(|value| value.map(|token| format!("Bearer {token}"))),
    ];
    let mut principals = header.into_iter().collect::<Vec<_>>();
    for value in given.into_iter().flatten() {
        principals.push(value.and_then(|header| auth.authenticate_header(Some(&header))));
    }
    let first = principals.first()?.clone()?;
    principals
        .iter()
        .all(|other| other.as_ref() == Some(&first))
        .then_some(first)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::auth::Role;
    use domain::ids::TenantId;

    fn principal(tenant: &str, name: &str) -> Principal {
        Principal {
            tenant: TenantId::new(tenant),
            role: Role::Viewer,
            name: name.to_owned(),
            every_tenant: false,
        }
    }

    #[test]
    fn a_credential_holds_at_most_its_connections_and_a_dropped_permit_frees_one() {
        let counts = ConnectionCounts::new(2);
        let ann = principal("acme", "ann");
        let first = counts.admit(&ann).unwrap();
        let _second = counts.admit(&ann).unwrap();
        assert!(counts.admit(&ann).is_none());
        // Another credential, and the same name in another tenant, count
        // on their own.
        assert!(counts.admit(&principal("acme", "bob")).is_some());
        let _other = counts.admit(&principal("globex", "ann")).unwrap();
        drop(first);
        assert_eq!(counts.open(&ann), 1);
        assert!(counts.admit(&ann).is_some());
        assert_eq!(counts.open(&principal("acme", "bob")), 0);
    }

    use super::*;

    #[test]
    fn a_refused_subscription_over_websocket_carries_a_code() {
        let refused =
            r#"{"type":"error","id":"1","payload":[{"message":"Query is too complex."}]}"#;
        let Message::Text(text) = label_errors(Message::Text(refused.into())) else {
            panic!("not text");
        };
        let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        assert_eq!(
            value["payload"][0]["extensions"]["code"], "VALIDATION",
            "{value}"
        );
        assert_eq!(value["id"], "1");
        let coded = r#"{"type":"error","id":"2","payload":[{"message":"no","extensions":{"code":"FORBIDDEN"}}]}"#;
        let Message::Text(text) = label_errors(Message::Text(coded.into())) else {
            panic!("not text");
        };
        let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        assert_eq!(value["payload"][0]["extensions"]["code"], "FORBIDDEN");
        let next = r#"{"type":"next","id":"3","payload":{"data":{"x":"\"error\""}}}"#;
        let Message::Text(text) = label_errors(Message::Text(next.into())) else {
            panic!("not text");
        };
        assert_eq!(text.as_str(), next, "other messages pass unchanged");
    }

    fn text(value: &serde_json::Value) -> Result<Message, axum::Error> {
        Ok(Message::Text(value.to_string().into()))
    }

    fn closed_with(admit: Admit, guard: &Guard) -> Option<u16> {
        matches!(admit, Admit::End).then(|| guard.close.as_ref().map_or(0, |frame| frame.code))
    }

    #[test]
    fn an_id_in_use_closes_with_4409_and_is_free_again_once_completed() {
        let mut guard = Guard::new(tokio::sync::mpsc::unbounded_channel().0);
        let subscribe = serde_json::json!({"type": "subscribe", "id": "a", "payload": {"query": "subscription { x }"}});
        assert_eq!(closed_with(guard.admit(text(&subscribe)), &guard), None);
        // The client completes it: the id is free.
        let complete = serde_json::json!({"type": "complete", "id": "a"});
        assert_eq!(closed_with(guard.admit(text(&complete)), &guard), None);
        assert_eq!(closed_with(guard.admit(text(&subscribe)), &guard), None);
        // The server ends it: free again.
        guard.sent(r#"{"type":"error","id":"a","payload":[]}"#);
        assert_eq!(closed_with(guard.admit(text(&subscribe)), &guard), None);
        // A `next` ends nothing.
        guard.sent(r#"{"type":"next","id":"a","payload":{"data":{"complete":"error"}}}"#);
        assert_eq!(
            closed_with(guard.admit(text(&subscribe)), &guard),
            Some(CLOSE_DUPLICATE_ID)
        );
    }

    #[test]
    fn a_subscribe_id_over_its_bound_closes_with_4400() {
        let mut guard = Guard::new(tokio::sync::mpsc::unbounded_channel().0);
        let subscribe = |id: String| {
            text(
                &serde_json::json!({"type": "subscribe", "id": id, "payload": {"query": "subscription { x }"}}),
            )
        };
        assert_eq!(
            closed_with(guard.admit(subscribe("i".repeat(MAX_ID_BYTES))), &guard),
            None
        );
        assert_eq!(
            closed_with(guard.admit(subscribe("j".repeat(MAX_ID_BYTES + 1))), &guard),
            Some(CLOSE_BAD_MESSAGE)
        );
        let mut guard = Guard::new(tokio::sync::mpsc::unbounded_channel().0);
        assert_eq!(
            closed_with(guard.admit(subscribe(String::new())), &guard),
            Some(CLOSE_BAD_MESSAGE)
        );
    }

    #[test]
    fn a_subscribe_past_the_cap_is_answered_with_an_error_and_not_run() {
        let (replies, mut refusals) = tokio::sync::mpsc::unbounded_channel();
        let mut guard = Guard::new(replies);
        let subscribe = |id: String| {
            text(
                &serde_json::json!({"type": "subscribe", "id": id, "payload": {"query": "subscription { x }"}}),
            )
        };
        for i in 0..MAX_SUBSCRIPTIONS {
            assert!(matches!(
                guard.admit(subscribe(format!("s{i}"))),
                Admit::Forward(_)
            ));
        }
        assert!(matches!(guard.admit(subscribe("over".into())), Admit::Skip));
        let refusal: serde_json::Value =
            serde_json::from_str(&refusals.try_recv().expect("a refusal is queued"))
                .expect("the refusal is JSON");
        assert_eq!(refusal["type"], "error");
        assert_eq!(refusal["id"], "over");
        assert_eq!(refusal["payload"][0]["extensions"]["code"], "VALIDATION");
        // One ends: there is room again.
        guard.sent(r#"{"type":"complete","id":"s0"}"#);
        assert!(matches!(
            guard.admit(subscribe("over".into())),
            Admit::Forward(_)
        ));
    }

    #[test]
    fn a_message_that_is_not_a_protocol_message_closes_with_4400() {
        for bad in [
            Ok(Message::Text("not json".into())),
            Ok(Message::Text("{\"type\":\"subscribe\"}".into())),
            Ok(Message::Text("{\"type\":\"launch\",\"id\":\"1\"}".into())),
            Ok(Message::Binary(vec![0xff, 0x00].into())),
        ] {
            let mut guard = Guard::new(tokio::sync::mpsc::unbounded_channel().0);
            assert_eq!(
                closed_with(guard.admit(bad), &guard),
                Some(CLOSE_BAD_MESSAGE)
            );
        }
    }

    /// The legacy protocol's messages are refused on a graphql-transport-ws
    /// connection (a probe's `start` ran a subscription), and no refusal
    /// names the parser's Rust types (`expected struct Request`, `unknown
    /// variant`).
    #[test]
    fn legacy_messages_are_refused_in_the_protocols_words() {
        for (bad, said) in [
            (
                r#"{"type":"start","id":"1","payload":{"query":"subscription { events { position } }"}}"#,
                "unknown type \"start\"",
            ),
            (r#"{"type":"stop","id":"1"}"#, "unknown type \"stop\""),
            (
                r#"{"type":"connection_terminate"}"#,
                "unknown type \"connection_terminate\"",
            ),
            (
                r#"{"type":"wat"}"#,
                "(connection_init, ping, pong, subscribe, complete)",
            ),
            (
                r#"{"type":"subscribe","id":"1","payload":null}"#,
                "a subscribe message has",
            ),
            (r#"{"type":"complete"}"#, "a complete message has"),
            (r#""hi""#, "a JSON object"),
        ] {
            let mut guard = Guard::new(tokio::sync::mpsc::unbounded_channel().0);
            let admitted = guard.admit(Ok(Message::Text(bad.into())));
            assert_eq!(
                closed_with(admitted, &guard),
                Some(CLOSE_BAD_MESSAGE),
                "{bad}"
            );
            let reason = guard
                .close
                .as_ref()
                .map(|c| c.reason.to_string())
                .unwrap_or_default();
            assert!(reason.contains(said), "{bad}: {reason}");
            // Whole, not cut at the close frame's limit.
            assert!(reason.len() < MAX_CLOSE_REASON_BYTES, "{bad}: {reason}");
            for leak in ["struct", "variant", "Request"] {
                assert!(!reason.contains(leak), "{bad}: {reason}");
            }
        }
        // The protocol's own messages still pass.
        for good in [
            r#"{"type":"connection_init"}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { events { position } }"}}"#,
            r#"{"type":"complete","id":"1"}"#,
        ] {
            let mut guard = Guard::new(tokio::sync::mpsc::unbounded_channel().0);
            let admitted = guard.admit(Ok(Message::Text(good.into())));
            assert_eq!(closed_with(admitted, &guard), None, "{good}");
        }
    }

    #[test]
    fn a_close_reason_fits_a_close_frame_at_a_character_boundary() {
        let long = format!("Subscriber for {} already exists", "é".repeat(200));
        let reason = close_reason(&long);
        assert!(reason.len() <= MAX_CLOSE_REASON_BYTES);
        assert!(long.starts_with(&reason));
        assert_eq!(close_reason("short"), "short");
    }

    #[test]
    fn refused_handshakes_get_the_protocols_codes() {
        for (code, reason, expected) in [
            (1002, UNAUTHORIZED_REASON, CLOSE_UNAUTHORIZED),
            (1011, "The handshake is not completed.", CLOSE_UNAUTHORIZED),
            (1002, FORBIDDEN_REASON, CLOSE_FORBIDDEN),
            (4429, "Too many initialisation requests.", 4429),
        ] {
            let Message::Close(Some(frame)) = close_code(code, reason) else {
                panic!("not a close");
            };
            assert_eq!(frame.code, expected, "{reason}");
        }
    }
}
