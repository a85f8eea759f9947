//! Quote expiry: durable timers, one per priced open quote, due when its
//! latest price stops being valid.
//!
//! The `quote-expiry` consumer keeps the timers as rows committed with its
//! checkpoint (so a restart resumes them, none lost, none doubled):
//! `quote/<stream>` holds the due time of the quote's timer and
//! `due/<due ms, big-endian><stream>` holds its tenant, in due order. A
//! `QuotePriced` sets or moves the timer; `QuoteAccepted`, `QuoteExpired`
//! and `QuoteWithdrawn` remove it.
//!
//! The ticker reads the rows that are due and issues `Expire` through the
//! command path with a key derived from the quote and the due time, so a
//! tick repeated after a crash meets its first outcome. The quote decides:
//! a quote re-priced meanwhile refuses (`quote_still_valid`), and its new
//! `QuotePriced` has already moved its timer.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::idempotency::CommandKey;
use domain::ids::{StreamKind, Timestamp};
use domain::quote::{QuoteCommand, QuoteEvent};
use domain::QuoteDecider;
use eventlog::{ConsumerBatch, ConsumerStore, EventLog, LogError, RecordedEvent};
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::command::{CommandContext, CommandError, CommandPath};
use crate::consumer::{self, Consumer, ConsumerOptions, ConsumerProbe, Halt, Session};
use crate::events::decode_any;

/// The consumer's name (its checkpoint and timers live in `consumer/<name>`).
pub const NAME: &str = "quote-expiry";

const QUOTE: &[u8] = b"quote/";
const DUE: &[u8] = b"due/";

fn quote_key(stream: &str) -> Vec<u8> {
    [QUOTE, stream.as_bytes()].concat()
}

fn due_key(due_ms: i64, stream: &str) -> Vec<u8> {
    [DUE, &due_ms.to_be_bytes()[..], stream.as_bytes()].concat()
}

/// A timer that is due: the quote's stream, its tenant and the due time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueQuote {
    /// The quote's stream.
    pub stream_id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// When its price stopped being valid (ms since the epoch).
    pub due_ms: i64,
}

/// The timers' consumer: its rows are committed with its checkpoint by the
/// one consumer loop.
struct Timers {
    store: ConsumerStore,
}

impl Consumer for Timers {
    fn handle(
        &mut self,
        batch: Vec<RecordedEvent>,
        _session: &mut Session,
    ) -> impl Future<Output = Result<ConsumerBatch, Halt>> + Send {
        let rows = self.rows(&batch);
        async move { rows }
    }
}

impl Timers {
    /// The row changes `batch` makes; a timer set and moved within one
    /// batch is tracked in `current`, so only its last due time stays.
    fn rows(&self, batch: &[RecordedEvent]) -> Result<ConsumerBatch, Halt> {
        let mut rows = ConsumerBatch::default();
        let mut current: std::collections::HashMap<String, Option<i64>> =
            std::collections::HashMap::new();
        for record in batch {
            if !matches!(
                StreamKind::split(&record.stream_id),
                Ok((StreamKind::Quote, _))
            ) {
                continue;
            }
            let event = match decode_any(record) {
                Ok(Some(domain::events::AnyEvent::Quote(event))) => event,
                Ok(_) => continue,
                Err(e) => {
                    return Err(Halt::Poison {
                        position: record.position,
                        message: e.to_string(),
                        rows,
                    })
                }
            };
            let next = match &event {
                QuoteEvent::QuotePriced { price, .. } => Some(price.valid_until.0),
                QuoteEvent::QuoteAccepted { .. }
                | QuoteEvent::QuoteExpired { .. }
                | QuoteEvent::QuoteWithdrawn { .. } => None,
                _ => continue,
            };
            let stream = record.stream_id.as_str();
            let previous = match current.get(stream) {
                Some(due) => *due,
                None => self
                    .due_of(stream)
                    .map_err(|e| Halt::Retry(e.to_string()))?,
            };
            if let Some(due) = previous {
                rows.remove(&due_key(due, stream));
            }
            match next {
                Some(due) => {
                    rows.insert(&quote_key(stream), due.to_be_bytes().to_vec());
                    rows.insert(&due_key(due, stream), record.tenant_id.as_bytes().to_vec());
                }
                None => rows.remove(&quote_key(stream)),
            }
            current.insert(stream.to_owned(), next);
        }
        Ok(rows)
    }

    fn due_of(&self, stream: &str) -> Result<Option<i64>, LogError> {
        Ok(self
            .store
            .get(&quote_key(stream))?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
            .map(i64::from_be_bytes))
    }
}

/// The timers due at `now_ms`, in due order (at most `limit`).
///
/// # Errors
/// A storage error reading the rows.
pub fn due(store: &ConsumerStore, now_ms: i64, limit: usize) -> Result<Vec<DueQuote>, LogError> {
    let end = due_key(now_ms.saturating_add(1), "");
    let mut out = Vec::new();
    for row in store.range(DUE, &end).take(limit) {
        let (key, tenant) = row?;
        let Some(rest) = key.strip_prefix(DUE) else {
            continue;
        };
        let (Some(due), Some(stream)) = (rest.get(..8), rest.get(8..)) else {
            continue;
        };
        let Ok(due) = <[u8; 8]>::try_from(due) else {
            continue;
        };
        out.push(DueQuote {
            stream_id: String::from_utf8_lossy(stream).into_owned(),
            tenant_id: String::from_utf8_lossy(&tenant).into_owned(),
            due_ms: i64::from_be_bytes(due),
        });
    }
    Ok(out)
}

/// How the expiry runs.
#[derive(Clone, Debug)]
pub struct ExpiryOptions {
    /// How often due timers are looked for, in ms.
    pub interval_ms: u64,
    /// Timers fired per tick at most.
    pub per_tick: usize,
}

impl Default for ExpiryOptions {
    fn default() -> Self {
        Self {
            interval_ms: 1_000,
            per_tick: 256,
        }
    }
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Quotes expired.
    pub expired: u64,
    /// Timers whose quote refused (re-priced, accepted or withdrawn meanwhile).
    pub refused: u64,
}

/// The running expiry: the timers' consumer and the ticker.
pub struct QuoteExpiry {
    path: CommandPath,
    store: ConsumerStore,
    clock: SharedClock,
    per_tick: usize,
    /// Timers refused in this process, skipped until their row moves.
    refused: Arc<std::sync::Mutex<HashSet<(String, i64)>>>,
}

impl std::fmt::Debug for QuoteExpiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuoteExpiry").finish_non_exhaustive()
    }
}

impl QuoteExpiry {
    /// Opens the timers' store.
    ///
    /// # Errors
    /// A storage error opening the consumer's tree.
    pub fn new(path: CommandPath, clock: SharedClock, per_tick: usize) -> Result<Self, LogError> {
        let store = path.log().consumer(NAME)?;
        Ok(Self {
            path,
            store,
            clock,
            per_tick,
            refused: Arc::default(),
        })
    }

    /// Spawns the consumer and the ticker on the current runtime; both stop
    /// when `stop` turns true.
    ///
    /// # Errors
    /// A storage error opening the consumer.
    pub fn spawn(
        log: &EventLog,
        path: CommandPath,
        clock: SharedClock,
        options: &ExpiryOptions,
        stop: watch::Receiver<bool>,
    ) -> Result<(ConsumerProbe, Vec<tokio::task::JoinHandle<()>>), LogError> {
        let probe = ConsumerProbe::new(log.consumer(NAME)?);
        let consumer = tokio::spawn(consumer::run(
            log.clone(),
            probe.clone(),
            Timers {
                store: log.consumer(NAME)?,
            },
            ConsumerOptions::default(),
            stop.clone(),
        ));
        let expiry = Self::new(path, clock, options.per_tick)?;
        let interval = Duration::from_millis(options.interval_ms.max(10));
        let ticker = tokio::spawn(async move {
            let mut stop = stop;
            let mut tick = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tick.tick() => {
                        if let Err(e) = expiry.tick().await {
                            tracing::warn!(error = %e, "quote expiry tick failed");
                        }
                    }
                }
            }
        });
        Ok((probe, vec![consumer, ticker]))
    }

    /// Expires every quote whose timer is due now.
    ///
    /// # Errors
    /// A storage error reading the timers; a command that fails for
    /// another reason than a rule is left for the next tick.
    pub async fn tick(&self) -> Result<TickReport, LogError> {
        let now = self.clock.now_ms();
        let mut report = TickReport::default();
        let timers = due(&self.store, now, self.per_tick)?;
        // Forget refusals whose timer has moved or gone: the set stays
        // bounded by the timers due now.
        if let Ok(mut refused) = self.refused.lock() {
            refused.retain(|(stream, due_ms)| {
                timers
                    .iter()
                    .any(|t| &t.stream_id == stream && t.due_ms == *due_ms)
            });
        }
        for timer in timers {
            let id = (timer.stream_id.clone(), timer.due_ms);
            if self.refused.lock().is_ok_and(|r| r.contains(&id)) {
                continue;
            }
            let context = CommandContext::new(
                CommandKey::job(NAME, format!("expire:{}:{}", timer.stream_id, timer.due_ms)),
                timer.tenant_id.clone(),
                format!("{NAME}:{}", timer.stream_id),
            );
            let command = QuoteCommand::Expire { at: Timestamp(now) };
            match self
                .path
                .execute::<QuoteDecider>(&timer.stream_id, &command, &context)
                .await
            {
                Ok(_) => report.expired += 1,
                Err(CommandError::Rejected { source }) => {
                    tracing::debug!(
                        stream = timer.stream_id.as_str(),
                        rule = domain::RuleViolation::rule(&source),
                        "quote expiry refused"
                    );
                    report.refused += 1;
                    if let Ok(mut refused) = self.refused.lock() {
                        refused.insert(id);
                    }
                }
                Err(e) => {
                    tracing::warn!(stream = timer.stream_id.as_str(), error = %e, "quote expiry failed; retried next tick");
                }
            }
        }
        Ok(report)
    }
}
