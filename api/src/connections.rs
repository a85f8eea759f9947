//! Serving HTTP connections with the limits `axum::serve` does not set
//! (ADR 0050).
//!
//! - **Header read timeout.** hyper enforces HTTP/1's header read timeout
//!   only with a timer, which `axum::serve` does not give it: a client that
//!   opened a connection and never finished its request head held it (and
//!   a file descriptor) forever, and a few thousand such connections
//!   starved `accept`. Here a connection whose request head has not
//!   arrived within the limit is closed.
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
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    builder.http2().timer(TokioTimer::new());
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
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
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
