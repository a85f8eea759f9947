//! The JetStream relay: a checkpointed consumer of the log that publishes
//! committed events to a NATS JetStream stream, for consumers on other
//! machines (analytics, other services, other regions).
//!
//! - Subject `<prefix>.<tenant>.<aggregate type>.<event type>` (tokens
//!   escaped, see [`subject`]); body a JSON [`RelayedEvent`]; the event id
//!   as `Nats-Msg-Id` and the ids and position as `Oms-*` headers (see
//!   [`message`]).
//! - The checkpoint (consumer `relay` in the log's consumer list) moves
//!   only over events JetStream acknowledged (or that the tenant's
//!   [`PublishMode`] skips). A crash re-publishes at most the unconfirmed
//!   tail, which the stream's duplicate window drops; in exclusive mode a
//!   restart first resumes after the stream's last event.
//! - Publishes are pipelined (`max_in_flight` unacknowledged at most, read
//!   `batch_size` at a time); while NATS is unreachable the relay backs off
//!   between `backoff_min_ms` and `backoff_max_ms` and keeps its place.
//! - [`Relay::status`] reports checkpoint, head, lag and counters for
//!   `/metrics` ([`RelayStatus::prometheus_text`]) and the consumer list.
//!
//! Off by default ([`RelayConfig::enabled`]); see `docs/scaling.md` and
//! `docs/adr/0009-jetstream-relay.md`.

use std::sync::{Arc, Mutex};

use application::consumer::{self, ConsumerProbe};
use eventlog::EventLog;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod config;
mod error;
pub mod message;
mod status;
pub mod subject;
mod worker;

pub use config::{PublishMode, RelayConfig, RelayConfigError};
pub use error::RelayError;
pub use message::{message_size, RelayedEvent};
pub use status::RelayStatus;

use status::Counters;

/// The relay's consumer name in the log's consumer list.
pub const CONSUMER_NAME: &str = "relay";

/// A running relay. Dropping it asks the task to stop; call
/// [`Relay::shutdown`] to wait for it.
#[derive(Debug)]
pub struct Relay {
    log: EventLog,
    config: RelayConfig,
    counters: Arc<Counters>,
    probe: ConsumerProbe,
    client: async_nats::Client,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Relay {
    /// Starts the relay on the current tokio runtime, whatever
    /// `config.enabled` says (see [`Relay::start_if_enabled`]). It returns
    /// at once: NATS is connected to in the background, and an unreachable
    /// server shows as `connected: false` with `last_error` set.
    ///
    /// # Errors
    /// [`RelayError::Config`] naming the bad key, [`RelayError::NoRuntime`]
    /// outside a tokio runtime, [`RelayError::Log`] when the consumer's
    /// checkpoint cannot be read.
    pub async fn start(log: EventLog, config: RelayConfig) -> Result<Self, RelayError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RelayError::NoRuntime)?;
        let store = log.consumer(CONSUMER_NAME)?;
        store.checkpoint()?;
        let probe = ConsumerProbe::new(store);
        let counters = Arc::new(Counters::default());
        let client = worker::connect(&config).await?;
        let (stop, shutdown) = watch::channel(false);
        let task = runtime.spawn(consumer::run(
            log.clone(),
            probe.clone(),
            worker::Worker::new(
                log.clone(),
                config.clone(),
                counters.clone(),
                client.clone(),
            ),
            worker::Worker::options(&config),
            shutdown,
        ));
        tracing::info!(url = %config.shown_url(), stream = %config.stream, "relay started");
        Ok(Self {
            log,
            config,
            counters,
            probe,
            client,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// [`Relay::start`] when `config.enabled`, else `Ok(None)` (the
    /// configuration is still validated, so a typo is found while off).
    ///
    /// # Errors
    /// As [`Relay::start`].
    pub async fn start_if_enabled(
        log: EventLog,
        config: RelayConfig,
    ) -> Result<Option<Self>, RelayError> {
        config.validate()?;
        if !config.enabled {
            return Ok(None);
        }
        Self::start(log, config).await.map(Some)
    }

    /// The relay's checkpoint, the log's head, lag and counters now.
    pub fn status(&self) -> RelayStatus {
        let head = self.log.next_position();
        let mut status = self
            .counters
            .snapshot(self.probe.status(head).checkpoint, head);
        status.connected =
            self.client.connection_state() == async_nats::connection::State::Connected;
        status
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Stops reading, waits for the acknowledgements of what is in flight
    /// (each at most `ack_timeout_ms`), commits the checkpoint over the
    /// acknowledged prefix, and returns when the task has ended. Never
    /// advances past an unacknowledged event. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            if let Err(error) = task.await {
                tracing::error!(%error, "relay task ended abnormally");
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
