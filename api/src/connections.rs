//! Serving HTTP connections with the limits `axum::serve` does not set
//! (ADR 0050).
//!
//! - **Header read timeout.** hyper enforces HTTP/1's header read timeout
//!   only with a timer, which `axum::serve` does not give it: a client that
//!   opened a connection and never finished its request head held it (and
//!   a file descriptor) forever, and a few thousand such connections
//!   starved `accept`. Here a connection whose request head has not
//!   arrived within the limit is closed, whether it sent part of one or
//!   nothing at all. Connections are HTTP/1 only: the version detection
//!   of HTTP/2 waited for its first bytes without a limit, and HTTP/2
//!   connections have no idle limit.
//! - **Bounded drain.** At stop, no connection is accepted, each open one
//!   finishes its request in flight and closes; one still open after the
//!   drain limit is dropped, so a stop never waits on a client.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// What an HTTP/2 connection starts with (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits until `stream` has sent enough to tell its version: bytes that
/// are not the start of the HTTP/2 preface, or the whole preface (which
/// is then refused as unsupported). hyper's version detection waits for
/// that with no limit and its header read timeout starts only after it,
/// so a client that sent nothing, or a prefix of the preface, held its
/// connection for good; the caller bounds this wait. False when the
/// client closed or the socket failed.
async fn begins_a_request(stream: &tokio::net::TcpStream) -> bool {
    let mut start = [0u8; H2_PREFACE.len()];
    loop {
        match stream.peek(&mut start).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n == H2_PREFACE.len() || start[..n] != H2_PREFACE[..n] => return true,
            // A prefix of the preface: wait for more (peek returns at once
            // while those bytes are unread).
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// How connections are served.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Longest a connection may take to send a request head (also while
    /// it waits, idle, for the next one).
    pub header_read: Duration,
    /// Longest a stop waits for open connections to finish.
    pub drain: Duration,
}

/// Serves `app` on `listener` until `stop` resolves, then drains the open
/// connections (at most `limits.drain`). WebSocket upgrades are served;
/// an upgraded connection is the WebSocket handler's to close.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    // HTTP/1 only: telling HTTP/1 from HTTP/2 reads the first bytes with no
    // timeout, and an HTTP/2 connection has no idle limit, so a client
    // that sent nothing, one byte or half the HTTP/2 preface held its
    // connection for good. Browsers speak HTTP/2 only over TLS, which this
    // server leaves to a proxy in front of it.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before it
                    // was taken: wait a little rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|request: hyper::Request<Incoming>| request.map(Body::new)),
        );
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            // hyper's header read timeout starts with the first byte: a
            // connection that sends none is closed here.
            if !tokio::time::timeout(limits.header_read, begins_a_request(&stream))
                .await
                .unwrap_or(false)
            {
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_ms = limits.drain.as_millis(),
            "connections still open after the drain limit are dropped"
        );
    }
}
