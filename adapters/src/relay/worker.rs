//! The relay's loop: read the log from the checkpoint, publish in log
//! order with a bounded window of unacknowledged publishes, move the
//! checkpoint only over acknowledged (or deliberately skipped) events, and
//! back off while NATS is unreachable.
//!
//! Invariant: the committed checkpoint never passes an event that should
//! be published and that JetStream has not acknowledged. Acknowledgements
//! are consumed in publish order ([`FuturesOrdered`]); the first failure
//! freezes the checkpoint for the rest of the session, whatever later acks
//! say.
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

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{Context, ContextBuilder};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType, Stream};
use async_nats::{Client, ConnectOptions};
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, StreamExt};
use futures_util::FutureExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use eventlog::{ConsumerBatch, ConsumerStore, EventLog};
use tokio::sync::watch;

use super::config::RelayConfig;
use super::error::RelayError;
use super::message::{self, HEADER_POSITION};
use super::status::Counters;

/// What one event came to.
enum Outcome {
    /// JetStream acknowledged it (`duplicate` when its window dropped it).
    Published { duplicate: bool },
    /// Not published (tenant mode or recovery bound).
    Skipped,
}

type Done = (u64, Result<Outcome, String>);

/// Why a session ended.
enum End {
    Shutdown,
    LogClosed,
    Failed(RelayError),
    Poisoned { position: u64, message: String },
}

/// Doubling delays between `min` and `max`.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(min_ms: u64, max_ms: u64) -> Self {
        let min = Duration::from_millis(min_ms);
        Self {
            min,
            max: Duration::from_millis(max_ms),
            current: min,
        }
    }

    fn next(&mut self) -> Duration {
        let now = self.current;
        self.current = (self.current * 2).min(self.max);
        now
    }

    fn reset(&mut self) {
        self.current = self.min;
    }
}

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
        .connect(config.url.as_str())
        .await
        .map_err(|e| RelayError::Connect {
            url: config.url.clone(),
            message: e.to_string(),
        })
}

/// Resolves once shutdown is asked (or the relay handle is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// The worker task's state.
pub(crate) struct Worker {
    pub(crate) log: EventLog,
    pub(crate) config: RelayConfig,
    pub(crate) store: ConsumerStore,
    pub(crate) counters: Arc<Counters>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) client: Client,
}

impl Worker {
    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Sleeps `delay`; true when shutdown was asked meanwhile.
    async fn pause(&mut self, delay: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(&mut self.shutdown) => {}
        }
        self.stopping()
    }

    fn fail(&self, error: &RelayError) {
        tracing::warn!(%error, "relay paused");
        self.counters.set_error(Some(error.to_string()));
    }

    /// Runs until shutdown (or until the log closes).
    pub(crate) async fn run(mut self) {
        let js = ContextBuilder::new()
            .timeout(Duration::from_millis(self.config.ack_timeout_ms))
            .max_ack_inflight(self.config.max_in_flight)
            .backpressure_on_inflight(true)
            .build(self.client.clone());
        let mut backoff = Backoff::new(self.config.backoff_min_ms, self.config.backoff_max_ms);
        while !self.stopping() {
            if self.client.connection_state() != State::Connected {
                self.fail(&RelayError::Connect {
                    url: self.config.url.clone(),
                    message: "not connected".to_owned(),
                });
                if self.pause(backoff.next()).await {
                    break;
                }
                continue;
            }
            let start = match self.open_stream(&js).await {
                Ok(start) => start,
                Err(error) => {
                    self.fail(&error);
                    if self.pause(backoff.next()).await {
                        break;
                    }
                    continue;
                }
            };
            let (end, progressed) = self.session(&js, start).await;
            if progressed {
                backoff.reset();
            }
            match end {
                End::Shutdown | End::LogClosed => break,
                End::Failed(error) => {
                    self.fail(&error);
                    if self.pause(backoff.next()).await {
                        break;
                    }
                }
                End::Poisoned { position, message } => {
                    let error = RelayError::Poison { position, message };
                    self.fail(&error);
                    if let Err(e) = self.store.record_failure(position, &error.to_string()) {
                        tracing::error!(error = %e, "relay: cannot record its failure");
                    }
                    self.counters.stopped_at.store(position, Ordering::Release);
                    self.counters.stopped.store(true, Ordering::Release);
                    stopped(&mut self.shutdown).await;
                    break;
                }
            }
        }
        let log = self.log.clone();
        match tokio::task::spawn_blocking(move || log.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "relay: flushing the checkpoint failed"),
            Err(error) => tracing::warn!(%error, "relay: flushing the checkpoint failed"),
        }
    }

    /// Makes sure the stream exists and finds where to start.
    async fn open_stream(&self, js: &Context) -> Result<u64, RelayError> {
        let stream_error = |e: &dyn std::fmt::Display| RelayError::Stream {
            stream: self.config.stream.clone(),
            message: e.to_string(),
        };
        let mut stream = js
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
        let checkpoint = self.store.checkpoint()?;
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
        self.commit(start, self.store.recovery_until()?)?;
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

    /// Commits `next` as the checkpoint (clearing a recovery bound it passed).
    fn commit(&self, next: u64, recovery_until: Option<u64>) -> Result<(), RelayError> {
        let mut batch = ConsumerBatch::default();
        if recovery_until.is_some_and(|bound| next >= bound) {
            batch.clear_recovery();
        }
        self.store.commit(batch, next)?;
        self.counters.checkpoint.store(next, Ordering::Release);
        Ok(())
    }

    /// Publishes from `start` until shutdown, the log closing, a failure or
    /// an event that cannot be relayed. Returns why it ended and whether
    /// any event was acknowledged.
    ///
    /// Two stages, so the relay uses two cores: a reader task reads the log
    /// and builds the messages ([`prepare`]); this task publishes them in
    /// order and consumes the acknowledgements.
    async fn session(&mut self, js: &Context, start: u64) -> (End, bool) {
        let recovery_until = match self.store.recovery_until() {
            Ok(bound) => bound,
            Err(e) => return (End::Failed(e.into()), false),
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(PREPARED_BATCHES);
        let reader = tokio::spawn(prepare(
            self.log.clone(),
            self.config.clone(),
            start,
            recovery_until,
            tx,
        ));
        let mut ready: VecDeque<Prepared> = VecDeque::new();
        let mut pending: FuturesOrdered<BoxFuture<'static, Done>> = FuturesOrdered::new();
        let (mut next, mut committed) = (start, start);
        let mut previous_id: Option<String> = None;
        let mut end: Option<End> = None;
        let mut failed = false;
        let mut progressed = false;
        let mut shutdown = self.shutdown.clone();
        let batch_size = self.config.batch_size as u64;
        loop {
            while end.is_none() && pending.len() < self.config.max_in_flight {
                let Some(item) = ready.pop_front() else { break };
                if let Err(stop) = self
                    .dispatch(js, item, &mut pending, &mut previous_id)
                    .await
                {
                    end = Some(stop);
                }
            }
            let reading = end.is_none();
            if !reading && pending.is_empty() {
                break;
            }
            tokio::select! {
                () = stopped(&mut shutdown), if reading => {
                    end = Some(End::Shutdown);
                }
                Some((position, result)) = pending.next(), if !pending.is_empty() => {
                    match result {
                        _ if failed => {}
                        Ok(outcome) => {
                            next = position + 1;
                            self.count(outcome, &mut progressed);
                        }
                        Err(message) => {
                            failed = true;
                            if !matches!(end, Some(End::Shutdown)) {
                                end = Some(End::Failed(RelayError::Publish { position, message }));
                            }
                        }
                    }
                }
                batch = rx.recv(), if reading && ready.is_empty() => {
                    match batch {
                        None => end = Some(End::LogClosed),
                        Some(Err(e)) => end = Some(End::Failed(e.into())),
                        Some(Ok(batch)) => ready.extend(batch),
                    }
                }
            }
            if next > committed && (pending.is_empty() || next - committed >= batch_size) {
                if let Err(e) = self.commit(next, recovery_until) {
                    reader.abort();
                    return (End::Failed(e), progressed);
                }
                committed = next;
            }
        }
        reader.abort();
        if next > committed {
            if let Err(e) = self.commit(next, recovery_until) {
                return (End::Failed(e), progressed);
            }
        }
        (end.unwrap_or(End::Shutdown), progressed)
    }

    fn count(&self, outcome: Outcome, progressed: &mut bool) {
        match outcome {
            Outcome::Published { duplicate } => {
                if !*progressed {
                    *progressed = true;
                    self.counters.set_error(None);
                }
                Counters::add(&self.counters.published, 1);
                if duplicate {
                    Counters::add(&self.counters.duplicates, 1);
                }
            }
            Outcome::Skipped => Counters::add(&self.counters.skipped, 1),
        }
    }

    /// Queues one prepared event: skipped, or published with its ack
    /// awaited in order.
    async fn dispatch(
        &self,
        js: &Context,
        item: Prepared,
        pending: &mut FuturesOrdered<BoxFuture<'static, Done>>,
        previous_id: &mut Option<String>,
    ) -> Result<(), End> {
        let (position, event_id, out) = match item {
            Prepared::Skip(position) => {
                pending.push_back(
                    futures_util::future::ready((position, Ok(Outcome::Skipped))).boxed(),
                );
                return Ok(());
            }
            Prepared::Poison { position, message } => {
                return Err(End::Poisoned { position, message })
            }
            Prepared::Publish {
                position,
                event_id,
                out,
            } => (position, event_id, out),
        };
        let mut publish = PublishMessage::build()
            .payload(out.body)
            .headers(out.headers);
        if self.config.exclusive {
            if let Some(previous) = previous_id.as_deref() {
                publish = publish.expected_last_message_id(previous);
            }
            *previous_id = Some(event_id);
        }
        let ack = js.send_publish(out.subject, publish).await.map_err(|e| {
            End::Failed(RelayError::Publish {
                position,
                message: e.to_string(),
            })
        })?;
        pending.push_back(
            async move {
                let result = ack
                    .await
                    .map(|a| Outcome::Published {
                        duplicate: a.duplicate,
                    })
                    .map_err(|e| e.to_string());
                (position, result)
            }
            .boxed(),
        );
        Ok(())
    }
}

/// Batches the reader stage may run ahead of the publisher.
const PREPARED_BATCHES: usize = 4;

/// One event, ready for the publisher.
enum Prepared {
    /// Not published (tenant mode or recovery bound).
    Skip(u64),
    /// Published as `out`.
    Publish {
        position: u64,
        event_id: String,
        out: message::Outgoing,
    },
    /// Cannot be relayed: the session stops here.
    Poison { position: u64, message: String },
}

/// The reader stage: reads the log from `start` and turns each event into
/// a [`Prepared`], a batch at a time, until the receiver is dropped, the
/// log closes (the sender is dropped) or an event cannot be relayed (sent
/// last).
async fn prepare(
    log: EventLog,
    config: RelayConfig,
    start: u64,
    recovery_until: Option<u64>,
    tx: tokio::sync::mpsc::Sender<Result<Vec<Prepared>, eventlog::LogError>>,
) {
    let mut subscription = log.subscribe(start);
    loop {
        let batch = match subscription.next_batch(config.batch_size).await {
            Ok(batch) if batch.is_empty() => return,
            Ok(batch) => batch,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let mut prepared = Vec::with_capacity(batch.len());
        let mut poisoned = false;
        for record in batch {
            let position = record.position;
            let suppressed = recovery_until.is_some_and(|bound| position < bound);
            if suppressed
                || !config
                    .mode_for(&record.tenant_id)
                    .admits(&record.event_type)
            {
                prepared.push(Prepared::Skip(position));
                continue;
            }
            match message::build(&record, &config.subject_prefix) {
                Ok(out) => prepared.push(Prepared::Publish {
                    position,
                    event_id: record.event_id.to_string(),
                    out,
                }),
                Err(e) => {
                    prepared.push(Prepared::Poison {
                        position,
                        message: e.to_string(),
                    });
                    poisoned = true;
                    break;
                }
            }
        }
        if tx.send(Ok(prepared)).await.is_err() || poisoned {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(100, 350);
        let delays: Vec<Duration> = (0..4).map(|_| b.next()).collect();
        let ms = Duration::from_millis;
        assert_eq!(delays, [ms(100), ms(200), ms(350), ms(350)]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(100));
        assert_eq!(reconnect_delay(100, 10_000, 0), Duration::from_millis(100));
        assert_eq!(reconnect_delay(100, 10_000, 3), Duration::from_millis(800));
        assert_eq!(
            reconnect_delay(100, 10_000, usize::MAX),
            Duration::from_millis(10_000)
        );
    }
}
