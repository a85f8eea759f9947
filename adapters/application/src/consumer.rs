//! The one checkpointed consumer loop: read the log from a consumer's
//! checkpoint, hand each batch to the consumer, and move the checkpoint in
//! the same atomic batch as the consumer's rows.
//!
//! Every consumer of the log (the policy runner, the handoff index, the
//! dispatcher, the callback unparker, the JetStream relay) runs on
//! [`run`]; each writes only what it does with an event ([`Consumer`]).
//! The runner owns the rest, once:
//!
//! - **Checkpoint with the rows.** [`Consumer::handle`] returns the rows a
//!   batch leaves; they are committed with the checkpoint in one sled batch
//!   ([`ConsumerStore::commit`]), so a crash leaves both or neither.
//! - **Work that finishes later.** A consumer whose effect ends after
//!   `handle` returns (an external call, a publish awaiting its ack) spawns
//!   a job per event with [`Session::spawn`]. The checkpoint is then the
//!   lowest position whose job has not finished: a crash or a halt replays
//!   from there (events after it whose jobs finished are handed over again,
//!   so handling must be idempotent). A job that fails halts the session:
//!   the session's stop signal ([`Session::stop_signal`]) tells waiting
//!   jobs to give up, and the session restarts from the checkpoint after a
//!   backoff, so the checkpoint never passes an event whose work failed.
//! - **Recovery mode.** When an operator rewound a side-effecting consumer
//!   with a recovery bound ([`ConsumerStore::rewind_for_recovery`]), the
//!   session reports it ([`Session::suppressed`]) so the consumer makes no
//!   call below the bound; the bound is cleared in the batch whose
//!   checkpoint passes it.
//! - **Bounded backoff.** A read or commit that fails, a job that fails or
//!   a consumer asking to retry ([`Halt::Retry`]) restarts the session from
//!   the checkpoint after a doubling delay between
//!   [`ConsumerOptions::backoff_min`] and [`ConsumerOptions::backoff_max`]
//!   (reset by progress).
//! - **Poison.** An event the consumer can never handle ([`Halt::Poison`])
//!   stops it: what precedes is committed (with the rows the consumer left
//!   for it), the failure is recorded in the store (the `consumers` query
//!   and `oms-replay consumers` show it) and the consumer waits for
//!   shutdown.
//! - **Shutdown** is the stop channel turning true (or its sender being
//!   dropped); the rest of the session's jobs finish or give up first.
//! - **Status.** [`ConsumerProbe`] reports the state, work in flight,
//!   retries and last error for `/metrics` and the `consumers` query;
//!   [`ConsumerStatus`] joins it with the stored checkpoint.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventlog::{ConsumerBatch, ConsumerStore, EventLog, LogError, RecordedEvent};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// How a job spawned for one event ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// Its work is done: the checkpoint may pass its event.
    Done,
    /// Gave up when the session's stop signal turned true (shutdown or a
    /// halt): its event is handled again by the next session.
    Unfinished,
    /// Its work failed: the session halts and restarts from the
    /// checkpoint, which never passes this event meanwhile.
    Failed(String),
}

/// Why a consumer stops handling the current session.
#[derive(Debug)]
pub enum Halt {
    /// A passing failure (the log, a connection): the session restarts
    /// from the checkpoint after a backoff.
    Retry(String),
    /// The event at `position` can never be handled: everything before it
    /// is committed with `rows`, the failure recorded, and the consumer
    /// stops.
    Poison {
        /// The event's position.
        position: u64,
        /// Why it cannot be handled.
        message: String,
        /// The rows the batch's events before `position` leave.
        rows: ConsumerBatch,
    },
    /// Shutdown was asked while handling: nothing of the batch is
    /// committed.
    Stopped,
}

/// A consumer of the log, run by [`run`].
pub trait Consumer: Send + 'static {
    /// Called at the start of every session (the first one and each one
    /// after a halt) with the committed checkpoint; answers where to read
    /// from, never below the checkpoint (the default: the checkpoint). A
    /// position above it is committed as the new checkpoint.
    fn begin(&mut self, session: &Session) -> impl Future<Output = Result<u64, Halt>> + Send {
        let start = session.checkpoint();
        async move { Ok(start) }
    }

    /// Handles one batch of events (ascending positions) and answers the
    /// rows it leaves, committed with the checkpoint. Work that ends later
    /// is spawned with [`Session::spawn`]. [`Halt::Poison`] promises that
    /// every event of the batch before the poison was handled, and carries
    /// their rows.
    fn handle(
        &mut self,
        batch: Vec<RecordedEvent>,
        session: &mut Session,
    ) -> impl Future<Output = Result<ConsumerBatch, Halt>> + Send;
}

/// Tuning of [`run`].
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Events read per batch.
    pub batch_size: usize,
    /// Most jobs read ahead of the checkpoint: reading pauses there.
    pub max_in_flight: usize,
    /// The first delay after a failure.
    pub backoff_min: Duration,
    /// The longest delay between attempts.
    pub backoff_max: Duration,
    /// How often the checkpoint follows finished jobs.
    pub commit_every: Duration,
    /// True for a consumer that calls external systems: it is declared
    /// (so an operator can rewind it only with a recovery bound).
    pub side_effects: bool,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            max_in_flight: 8_192,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            commit_every: Duration::from_millis(100),
            side_effects: false,
        }
    }
}

/// Doubling delays between a floor and a cap, reset by progress.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Delays from `min`, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            current: min,
        }
    }

    /// The next delay (then doubles, up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let now = self.current;
        self.current = (self.current * 2).min(self.max);
        now
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

/// Where a consumer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerState {
    /// Not started yet.
    Starting,
    /// Reading and handling events.
    Running,
    /// Replaying below a recovery bound: no side effects there.
    Recovering,
    /// Waiting out a backoff after a failure.
    Retrying,
    /// Stopped at an event it cannot handle (see the recorded failure).
    Poisoned,
    /// Shut down, or the log closed.
    Stopped,
}

impl ConsumerState {
    const ALL: [Self; 6] = [
        Self::Starting,
        Self::Running,
        Self::Recovering,
        Self::Retrying,
        Self::Poisoned,
        Self::Stopped,
    ];

    fn code(self) -> u8 {
        Self::ALL
            .iter()
            .position(|s| *s == self)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(0)
    }

    fn of(code: u8) -> Self {
        Self::ALL
            .get(usize::from(code))
            .copied()
            .unwrap_or(Self::Starting)
    }

    /// The name reported to operators (`running`, `retrying`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Recovering => "recovering",
            Self::Retrying => "retrying",
            Self::Poisoned => "poisoned",
            Self::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Default)]
struct Live {
    state: AtomicU8,
    in_flight: AtomicU64,
    retries: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A live view of one running consumer, cheap to clone and read from any
/// task.
#[derive(Debug, Clone)]
pub struct ConsumerProbe {
    store: ConsumerStore,
    live: Arc<Live>,
}

impl ConsumerProbe {
    /// A probe of the consumer that keeps its checkpoint in `store`.
    pub fn new(store: ConsumerStore) -> Self {
        Self {
            store,
            live: Arc::new(Live::default()),
        }
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        self.store.name()
    }

    /// Its state now.
    pub fn state(&self) -> ConsumerState {
        ConsumerState::of(self.live.state.load(Ordering::Acquire))
    }

    fn set_state(&self, state: ConsumerState) {
        self.live.state.store(state.code(), Ordering::Release);
    }

    fn failed(&self, error: &str) {
        self.live.retries.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.live.last_error.lock() {
            *last = Some(error.to_owned());
        }
    }

    /// The consumer's status against the log's head `head`: the stored
    /// checkpoint, failure, recovery bound and suppressed calls, with the
    /// live state, jobs in flight, retries and last error.
    pub fn status(&self, head: u64) -> ConsumerStatus {
        let checkpoint = self.store.checkpoint().unwrap_or(0);
        ConsumerStatus {
            name: self.store.name().to_owned(),
            state: self.state(),
            checkpoint,
            head,
            lag: head.saturating_sub(checkpoint),
            in_flight: self.live.in_flight.load(Ordering::Relaxed),
            retries: self.live.retries.load(Ordering::Relaxed),
            last_error: self.live.last_error.lock().ok().and_then(|e| e.clone()),
            failure: self.store.failure().ok().flatten(),
            recovery_until: self.store.recovery_until().ok().flatten(),
            suppressed: self.store.suppressed().unwrap_or(0),
        }
    }
}

/// One consumer's progress, for `/metrics` and the `consumers` query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsumerStatus {
    /// The consumer.
    pub name: String,
    /// Where it stands.
    pub state: ConsumerState,
    /// The next position it will process.
    pub checkpoint: u64,
    /// The log's next position.
    pub head: u64,
    /// `head - checkpoint`.
    pub lag: u64,
    /// Jobs spawned and not finished.
    pub in_flight: u64,
    /// Sessions restarted after a failure, since the start.
    pub retries: u64,
    /// The last failure it retried after, if any.
    pub last_error: Option<String>,
    /// Where and why it stopped, if it did.
    pub failure: Option<eventlog::ConsumerFailure>,
    /// The recovery bound, for a side-effect consumer being replayed.
    pub recovery_until: Option<u64>,
    /// External calls suppressed during recovery so far.
    pub suppressed: u64,
}

/// One session of a consumer: its checkpoint and recovery bound when it
/// began, and the jobs it spawned.
#[derive(Debug)]
pub struct Session {
    checkpoint: u64,
    recovery_until: Option<u64>,
    stop: watch::Receiver<bool>,
    jobs: JoinSet<(u64, JobEnd)>,
    in_flight: BTreeSet<u64>,
}

impl Session {
    /// The committed checkpoint when the session began.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// The recovery bound, if the consumer is replaying for recovery.
    pub fn recovery_until(&self) -> Option<u64> {
        self.recovery_until
    }

    /// True when the event at `position` is below the recovery bound: it
    /// must cause no side effect.
    pub fn suppressed(&self, position: u64) -> bool {
        self.recovery_until.is_some_and(|bound| position < bound)
    }

    /// The session's stop signal, for work that waits: it turns true on
    /// shutdown and when the session halts (a failed job, read or commit),
    /// so waiting jobs give up and the next session handles their events.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.clone()
    }

    /// True once the session is ending.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Runs `job` for the event at `position`; the checkpoint does not pass
    /// the event until the job answers [`JobEnd::Done`].
    pub fn spawn(&mut self, position: u64, job: impl Future<Output = JobEnd> + Send + 'static) {
        self.in_flight.insert(position);
        self.jobs.spawn(async move { (position, job.await) });
    }

    /// The lowest position not done when the reader has passed `next`.
    fn watermark(&self, next: u64) -> u64 {
        self.in_flight.first().copied().unwrap_or(next).min(next)
    }

    /// Takes a finished job; a failure message when it failed.
    fn finished(&mut self, done: Result<(u64, JobEnd), tokio::task::JoinError>) -> Option<String> {
        match done {
            Ok((position, JobEnd::Done)) => {
                self.in_flight.remove(&position);
                None
            }
            Ok((_, JobEnd::Unfinished)) => None,
            Ok((position, JobEnd::Failed(message))) => {
                Some(format!("work for position {position} failed: {message}"))
            }
            Err(e) => Some(format!("a job panicked: {e}")),
        }
    }
}

/// How a session ended.
enum End {
    Shutdown,
    Halted(String),
    Poisoned { position: u64, message: String },
}

/// Runs `consumer` on `log` from the checkpoint in `probe`'s store until
/// `stop` turns true, the log closes, or an event poisons it (then it waits
/// for `stop`). See the module docs for the guarantees.
pub async fn run<C: Consumer>(
    log: EventLog,
    probe: ConsumerProbe,
    mut consumer: C,
    options: ConsumerOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(options.backoff_min, options.backoff_max);
    let store = probe.store.clone();
    let name = store.name().to_owned();
    if options.side_effects {
        if let Err(e) = store.declare_side_effects() {
            tracing::error!(consumer = %name, error = %e, "cannot declare side effects; not started");
            probe.set_state(ConsumerState::Stopped);
            return;
        }
    }
    let mut poisoned = false;
    loop {
        if *stop.borrow() {
            break;
        }
        let (end, progressed) = session(&log, &probe, &mut consumer, &options, &stop).await;
        if progressed {
            backoff.reset();
        }
        match end {
            End::Shutdown => break,
            End::Halted(message) => {
                tracing::warn!(consumer = %name, error = %message, "consumer halted; retrying from its checkpoint");
                probe.failed(&message);
                probe.set_state(ConsumerState::Retrying);
                tokio::select! {
                    () = stopped(&mut stop) => break,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
            End::Poisoned { position, message } => {
                tracing::error!(consumer = %name, position, error = %message, "consumer stopped at an event it cannot handle");
                if let Err(e) = store.record_failure(position, &message) {
                    tracing::error!(consumer = %name, error = %e, "cannot record the consumer's failure");
                }
                probe.set_state(ConsumerState::Poisoned);
                poisoned = true;
                stopped(&mut stop).await;
                break;
            }
        }
    }
    if !poisoned {
        probe.set_state(ConsumerState::Stopped);
    }
    let log = log.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || log.flush()).await {
        tracing::warn!(consumer = %name, error = %e, "flushing the checkpoint failed");
    }
}

/// Resolves once `stop` turns true or its sender is dropped (any other
/// change is not a shutdown).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Commits `rows` with the checkpoint `watermark` (clearing a recovery
/// bound it passes).
fn commit(
    store: &ConsumerStore,
    mut rows: ConsumerBatch,
    watermark: u64,
    bound: Option<u64>,
) -> Result<(), LogError> {
    if bound.is_some_and(|b| watermark >= b) {
        rows.clear_recovery();
    }
    store.commit(rows, watermark)
}

/// The state a session reports once its checkpoint is `committed`.
fn running_state(committed: u64, bound: Option<u64>) -> ConsumerState {
    if bound.is_some_and(|b| committed < b) {
        ConsumerState::Recovering
    } else {
        ConsumerState::Running
    }
}

/// Batches the reader may run ahead of the consumer.
const READ_AHEAD: usize = 2;

/// One session: from the checkpoint until shutdown, a halt or poison.
/// Answers how it ended and whether the checkpoint moved.
async fn session<C: Consumer>(
    log: &EventLog,
    probe: &ConsumerProbe,
    consumer: &mut C,
    options: &ConsumerOptions,
    stop: &watch::Receiver<bool>,
) -> (End, bool) {
    let store = &probe.store;
    let (checkpoint, recovery_until) = match (store.checkpoint(), store.recovery_until()) {
        (Ok(c), Ok(r)) => (c, r),
        (Err(e), _) | (_, Err(e)) => return (End::Halted(e.to_string()), false),
    };
    // The session's own stop signal: shutdown, forwarded, or a halt.
    let (ending, session_stop) = watch::channel(false);
    let ending = Arc::new(ending);
    let forward = {
        let ending = ending.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            stopped(&mut stop).await;
            let _ = ending.send(true);
        })
    };
    let mut session = Session {
        checkpoint,
        recovery_until,
        stop: session_stop,
        jobs: JoinSet::new(),
        in_flight: BTreeSet::new(),
    };
    let (end, committed) = drive(log, probe, consumer, options, stop, &mut session).await;
    // Waiting jobs give up; jobs in flight finish; a failure keeps its
    // event below the checkpoint.
    let _ = ending.send(true);
    forward.abort();
    let store = &probe.store;
    while let Some(done) = session.jobs.join_next().await {
        if let Some(message) = session.finished(done) {
            tracing::warn!(consumer = store.name(), error = %message, "a job failed while the session ended");
        }
        probe
            .live
            .in_flight
            .store(session.in_flight.len() as u64, Ordering::Relaxed);
    }
    // No job runs any more (those that gave up are replayed next session).
    probe.live.in_flight.store(0, Ordering::Relaxed);
    let (end, next, rows) = end;
    let mut watermark = session.watermark(next);
    if let End::Poisoned { position, .. } = &end {
        watermark = watermark.min(*position);
    }
    let mut committed = committed;
    if watermark > committed || matches!(end, End::Poisoned { .. }) {
        match commit(
            store,
            rows,
            watermark.max(committed),
            session.recovery_until,
        ) {
            Ok(()) => committed = watermark.max(committed),
            Err(e) => {
                tracing::error!(consumer = store.name(), error = %e, "cannot commit the checkpoint")
            }
        }
    }
    (end, committed > checkpoint)
}

/// What [`drive`] ends with: how the session ended, the position the
/// reader passed, and rows still to commit (a poisoned batch's).
type Driven = (End, u64, ConsumerBatch);

/// Reads and handles batches until the session ends; answers how, and the
/// checkpoint committed so far.
async fn drive<C: Consumer>(
    log: &EventLog,
    probe: &ConsumerProbe,
    consumer: &mut C,
    options: &ConsumerOptions,
    stop: &watch::Receiver<bool>,
    session: &mut Session,
) -> (Driven, u64) {
    let store = &probe.store;
    let (checkpoint, recovery_until) = (session.checkpoint, session.recovery_until);
    let start = match consumer.begin(session).await {
        Ok(start) => start.max(checkpoint),
        Err(halt) => {
            return (
                (ended(halt), checkpoint, ConsumerBatch::default()),
                checkpoint,
            )
        }
    };
    if let Some(bound) = recovery_until {
        tracing::warn!(
            consumer = store.name(),
            from = checkpoint,
            until = bound,
            "consumer starts in recovery mode: no side effects below the bound"
        );
    }
    let mut committed = checkpoint;
    if start > checkpoint {
        if let Err(e) = commit(store, ConsumerBatch::default(), start, recovery_until) {
            return (
                (
                    End::Halted(e.to_string()),
                    checkpoint,
                    ConsumerBatch::default(),
                ),
                checkpoint,
            );
        }
        committed = start;
    }
    probe.set_state(running_state(committed, recovery_until));
    let (tx, mut rx) = mpsc::channel(READ_AHEAD);
    let reader = tokio::spawn(read(log.clone(), start, options.batch_size.max(1), tx));
    let mut stop = stop.clone();
    let mut tick = tokio::time::interval(options.commit_every);
    let mut next = start;
    let mut reading = true;
    let mut end = None;
    let mut leftover = ConsumerBatch::default();
    while end.is_none() {
        tokio::select! {
            () = stopped(&mut stop) => end = Some(End::Shutdown),
            Some(done) = session.jobs.join_next(), if !session.jobs.is_empty() => {
                if let Some(message) = session.finished(done) {
                    end = Some(End::Halted(message));
                }
            }
            _ = tick.tick() => {
                let watermark = session.watermark(next);
                if watermark > committed {
                    match commit(store, ConsumerBatch::default(), watermark, recovery_until) {
                        Ok(()) => committed = watermark,
                        Err(e) => end = Some(End::Halted(e.to_string())),
                    }
                }
            }
            batch = rx.recv(), if reading && session.in_flight.len() < options.max_in_flight => {
                match batch {
                    None => reading = false,
                    Some(Err(e)) => end = Some(End::Halted(e.to_string())),
                    Some(Ok(batch)) => {
                        let Some(last) = batch.last().map(|r| r.position) else { continue };
                        match consumer.handle(batch, session).await {
                            Ok(rows) => {
                                next = last + 1;
                                let watermark = session.watermark(next);
                                match commit(store, rows, watermark.max(committed), recovery_until) {
                                    Ok(()) => committed = watermark.max(committed),
                                    Err(e) => end = Some(End::Halted(e.to_string())),
                                }
                            }
                            Err(Halt::Poison { position, message, rows }) => {
                                // Everything before the poison was handled.
                                next = next.max(position);
                                leftover = rows;
                                end = Some(End::Poisoned { position, message });
                            }
                            Err(halt) => end = Some(ended(halt)),
                        }
                    }
                }
            }
        }
        if end.is_none() {
            probe.set_state(running_state(committed, recovery_until));
        }
        if !reading && session.jobs.is_empty() && end.is_none() {
            // The log closed and every job is done.
            end = Some(End::Shutdown);
        }
        probe
            .live
            .in_flight
            .store(session.in_flight.len() as u64, Ordering::Relaxed);
    }
    reader.abort();
    ((end.unwrap_or(End::Shutdown), next, leftover), committed)
}

/// The end a halt outside a batch's handling means (`begin`'s).
fn ended(halt: Halt) -> End {
    match halt {
        Halt::Retry(message) => End::Halted(message),
        Halt::Poison {
            position, message, ..
        } => End::Poisoned { position, message },
        Halt::Stopped => End::Shutdown,
    }
}

/// The reader: batches from `start` until the log closes (the sender is
/// dropped), a read fails (sent last) or the session ends (the receiver is
/// dropped).
async fn read(
    log: EventLog,
    start: u64,
    batch_size: usize,
    tx: mpsc::Sender<Result<Vec<RecordedEvent>, LogError>>,
) {
    let mut subscription = log.subscribe(start);
    loop {
        match subscription.next_batch(batch_size).await {
            Ok(batch) if batch.is_empty() => return,
            Ok(batch) => {
                if tx.send(Ok(batch)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(350));
        let delays: Vec<Duration> = (0..4).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [ms(100), ms(200), ms(350), ms(350)]);
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
    }

    #[test]
    fn consumer_states_round_trip_through_their_codes() {
        for state in ConsumerState::ALL {
            assert_eq!(ConsumerState::of(state.code()), state);
        }
        assert_eq!(ConsumerState::of(200), ConsumerState::Starting);
    }
}
