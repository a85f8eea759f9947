//! The relay as a consumer on the one consumer loop
//! (`application::consumer`): each session makes sure the stream exists
//! and finds where to start; each batch is published in log order, and
//! each publish's acknowledgement is a job, so the loop moves the
//! checkpoint only over acknowledged (or deliberately skipped) events and
//! backs off while NATS is unreachable.
//!
//! Invariant: the committed checkpoint never passes an event that should
//! be published and that JetStream has not acknowledged. A failed
//! acknowledgement keeps its event below the checkpoint and halts the
//! session, which restarts from the checkpoint after a backoff.
//!
//! Ordering across a connection loss (exclusive mode): the NATS client
//! keeps publishes queued while it reconnects and sends them afterwards,
//! while the ones that were in the dead socket are gone. Re-publishing the
//! lost ones would store them after later ones. So every publish but a
//! session's first carries `Nats-Expected-Last-Msg-Id` (the event id the
//! relay published just before it): a publish whose predecessor is missing
//! is refused by the server instead of stored out of order. A session
//! starts after reading the stream's last message: when it is one of this
//! log's events, the relay resumes right after it (nothing before it can be
//! missing, by the same rule), so its first publish needs no expectation.

use std::sync::Arc;
use std::time::Duration;

use application::consumer::{Consumer, ConsumerOptions, Halt, JobEnd, Session};
use async_nats::connection::State;
use async_nats::jetstream::context::{Context, ContextBuilder};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType, Stream};
use async_nats::{Client, ConnectOptions};
use eventlog::{ConsumerBatch, EventLog, RecordedEvent};

use crate::config::RelayConfig;
use crate::error::RelayError;
use crate::message::{self, HEADER_POSITION};
use crate::status::Counters;

/// The client's delay before reconnect attempt `attempts`.
fn reconnect_delay(min_ms: u64, max_ms: u64, attempts: usize) -> Duration {
    let shift = u32::try_from(attempts.min(20)).unwrap_or(20);
    Duration::from_millis(min_ms.saturating_mul(1u64 << shift).min(max_ms))
}

/// A NATS client that connects (and reconnects, forever) in the
/// background with the relay's backoff.
pub(crate) async fn connect(config: &RelayConfig) -> Result<Client, RelayError> {
    let (min, max) = (config.backoff_min_ms, config.backoff_max_ms);
    ConnectOptions::new()
        .name("oms-relay")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(move |attempts| reconnect_delay(min, max, attempts))
        // A comma-separated list names several servers of one cluster, as
        // the configuration allows: each is a server to try.
        .connect(config.url.split(',').map(str::trim).collect::<Vec<_>>())
        .await
        .map_err(|e| RelayError::Connect {
            url: config.shown_url(),
            message: config.redacted(&e.to_string()),
        })
}

/// The relay's consumer: the JetStream context of the current session
/// and the event id it published last (exclusive mode).
pub(crate) struct Worker {
    pub(crate) log: EventLog,
    pub(crate) config: RelayConfig,
    pub(crate) counters: Arc<Counters>,
    pub(crate) client: Client,
    pub(crate) js: Context,
    pub(crate) previous_id: Option<String>,
    /// The largest message the session's stream and server take (the
    /// stream's `max_msg_size`, the server's `max_payload`).
    pub(crate) max_message_bytes: usize,
    /// The lowest position whose publish failed in this session: its error
    /// is the one shown, not the knock-on refusals of later publishes.
    pub(crate) first_failure: Arc<std::sync::atomic::AtomicU64>,
}

impl Worker {
    /// The relay's consumer on `client`.
    pub(crate) fn new(
        log: EventLog,
        config: RelayConfig,
        counters: Arc<Counters>,
        client: Client,
    ) -> Self {
        let js = ContextBuilder::new()
            .timeout(Duration::from_millis(config.ack_timeout_ms))
            .max_ack_inflight(config.max_in_flight)
            .backpressure_on_inflight(true)
            .build(client.clone());
        Self {
            log,
            config,
            counters,
            client,
            js,
            previous_id: None,
            max_message_bytes: usize::MAX,
            first_failure: Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
        }
    }

    /// The relay's options on the consumer loop.
    pub(crate) fn options(config: &RelayConfig) -> ConsumerOptions {
        ConsumerOptions {
            batch_size: config.batch_size,
            max_in_flight: config.max_in_flight,
            backoff_min: Duration::from_millis(config.backoff_min_ms),
            backoff_max: Duration::from_millis(config.backoff_max_ms),
            ..ConsumerOptions::default()
        }
    }

    /// Stops the relay at `position`, whose event cannot be relayed for
    /// `why`: the failure is its last error and its stop.
    fn stop(&self, position: u64, why: String) -> Halt {
        let error = RelayError::Poison {
            position,
            message: why,
        };
        self.counters.set_error(Some(error.to_string()));
        self.counters.stop_at(position);
        Halt::Poison {
            position,
            message: error.to_string(),
            rows: ConsumerBatch::default(),
        }
    }

    fn fail(&self, error: RelayError) -> Halt {
        tracing::warn!(%error, "relay paused");
        self.counters.set_error(Some(error.to_string()));
        Halt::Retry(error.to_string())
    }

    /// Makes sure the stream exists and finds where to start: after the
    /// stream's last event when it is one of this log's (exclusive mode),
    /// else at the checkpoint.
    async fn open_stream(&mut self, checkpoint: u64) -> Result<u64, RelayError> {
        let stream_error = |e: &dyn std::fmt::Display| RelayError::Stream {
            stream: self.config.stream.clone(),
            message: e.to_string(),
        };
        let mut stream = self
            .js
            .get_or_create_stream(StreamConfig {
                name: self.config.stream.clone(),
                subjects: vec![format!("{}.>", self.config.subject_prefix)],
                duplicate_window: Duration::from_secs(self.config.duplicate_window_s),
                num_replicas: self.config.replicas,
                storage: StorageType::File,
                ..StreamConfig::default()
            })
            .await
            .map_err(|e| stream_error(&e))?;
        let stream_limit = usize::try_from(stream.cached_info().config.max_message_size)
            .ok()
            .filter(|limit| *limit > 0)
            .unwrap_or(usize::MAX);
        self.max_message_bytes = stream_limit.min(self.client.server_info().max_payload);
        if !self.config.exclusive {
            return Ok(checkpoint);
        }
        let Some(tail) = self.tail(&mut stream).await.map_err(|e| stream_error(&e))? else {
            return Ok(checkpoint);
        };
        if tail < checkpoint {
            return Ok(checkpoint);
        }
        let start = tail + 1;
        tracing::info!(
            checkpoint,
            start,
            "relay: resuming after the stream's last event"
        );
        Ok(start)
    }

    /// The position of the stream's last message when it is this log's
    /// event (same event id at that position).
    async fn tail(&self, stream: &mut Stream) -> Result<Option<u64>, String> {
        let info = stream.info().await.map_err(|e| e.to_string())?;
        if info.state.messages == 0 {
            return Ok(None);
        }
        let last = info.state.last_sequence;
        let Ok(message) = stream.get_raw_message(last).await else {
            return Ok(None);
        };
        let headers = &message.headers;
        let (Some(id), Some(position)) = (
            headers.get(async_nats::header::NATS_MESSAGE_ID),
            headers
                .get(HEADER_POSITION)
                .and_then(|p| p.as_str().parse::<u64>().ok()),
        ) else {
            return Ok(None);
        };
        let ours = self
            .log
            .read_at(position)
            .map_err(|e| e.to_string())?
            .is_some_and(|record| record.event_id.to_string() == id.as_str());
        Ok(ours.then_some(position))
    }

    /// Publishes one event; its acknowledgement becomes a job of the
    /// session.
    async fn publish(
        &mut self,
        position: u64,
        event_id: String,
        out: message::Outgoing,
        session: &mut Session,
    ) -> Result<(), RelayError> {
        let mut publish = PublishMessage::build()
            .payload(out.body)
            .headers(out.headers);
        if self.config.exclusive {
            if let Some(previous) = self.previous_id.as_deref() {
                publish = publish.expected_last_message_id(previous);
            }
            self.previous_id = Some(event_id);
        }
        let ack = self
            .js
            .send_publish(out.subject, publish)
            .await
            .map_err(|e| RelayError::Publish {
                position,
                message: e.to_string(),
            })?;
        let counters = self.counters.clone();
        let first_failure = self.first_failure.clone();
        session.spawn(position, async move {
            match ack.await {
                Ok(ack) => {
                    let clean = first_failure.load(std::sync::atomic::Ordering::SeqCst) == u64::MAX;
                    counters.acknowledged(ack.duplicate, clean);
                    JobEnd::Done
                }
                Err(e) => {
                    let error = RelayError::Publish {
                        position,
                        message: e.to_string(),
                    };
                    // A later publish refused because this one was (its
                    // expected predecessor missing) does not hide the cause.
                    let earlier =
                        first_failure.fetch_min(position, std::sync::atomic::Ordering::SeqCst);
                    if position <= earlier {
                        counters.set_error(Some(error.to_string()));
                    }
                    JobEnd::Failed(error.to_string())
                }
            }
        });
        Ok(())
    }
}

/// How long a session's start waits for the client's connection, which
/// async-nats makes in the background after `connect` returns: a start
/// with NATS up reported it unreachable, the symptom of an outage.
const CONNECT_GRACE: Duration = Duration::from_secs(2);

impl Worker {
    /// Whether the client is connected, or connects within `grace`.
    async fn connected_within(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            if self.client.connection_state() == State::Connected {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Consumer for Worker {
    async fn begin(&mut self, session: &Session) -> Result<u64, Halt> {
        self.previous_id = None;
        self.first_failure
            .store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
        if !self.connected_within(CONNECT_GRACE).await {
            return Err(self.fail(RelayError::Connect {
                url: self.config.shown_url(),
                message: "not connected".to_owned(),
            }));
        }
        match self.open_stream(session.checkpoint()).await {
            Ok(start) => {
                // Connected, with the stream open: an earlier session's
                // connection error is no longer the state of things.
                self.counters.set_error(None);
                Ok(start)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn handle(
        &mut self,
        batch: Vec<RecordedEvent>,
        session: &mut Session,
    ) -> Result<ConsumerBatch, Halt> {
        for record in batch {
            let position = record.position;
            if session.suppressed(position)
                || !self
                    .config
                    .mode_for(&record.tenant_id)
                    .admits(&record.event_type)
            {
                Counters::add(&self.counters.skipped, 1);
                continue;
            }
            let out = match message::build(&record, &self.config.subject_prefix) {
                Ok(out) => out,
                Err(e) => return Err(self.stop(position, e.to_string())),
            };
            let size = out.stored_size();
            if size > self.max_message_bytes {
                // JetStream would refuse it at every try: it cannot be
                // relayed, and nothing after it is published ahead of it.
                return Err(self.stop(
                    position,
                    format!(
                        "its message of {size} bytes is over the {} bytes the stream {} \
                         takes (its max_msg_size, or the server's max_payload)",
                        self.max_message_bytes, self.config.stream
                    ),
                ));
            }
            let event_id = record.event_id.to_string();
            if let Err(error) = self.publish(position, event_id, out, session).await {
                return Err(self.fail(error));
            }
        }
        Ok(ConsumerBatch::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_double_up_to_their_cap() {
        assert_eq!(reconnect_delay(100, 10_000, 0), Duration::from_millis(100));
        assert_eq!(reconnect_delay(100, 10_000, 3), Duration::from_millis(800));
        assert_eq!(
            reconnect_delay(100, 10_000, usize::MAX),
            Duration::from_millis(10_000)
        );
    }
}
