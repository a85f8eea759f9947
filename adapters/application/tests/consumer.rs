//! The one checkpointed consumer loop (`application::consumer::run`) over a
//! real log in a temporary directory, driven by small purpose-built
//! consumers (they never decode: payloads are arbitrary bytes). Each test
//! proves one guarantee of the loop: rows commit with the checkpoint, a
//! failed job holds the checkpoint below its event until it succeeds,
//! recovery mode suppresses side effects below its bound and then clears
//! it, a poison event stops the consumer exactly there, unfinished jobs are
//! replayed after a restart, and a start chosen by `begin` is committed.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use application::consumer::{
    self, Consumer, ConsumerOptions, ConsumerProbe, ConsumerState, Halt, JobEnd, Session,
};
use eventlog::{
    AppendRequest, ConsumerBatch, ConsumerStore, Durability, EventLog, ExpectedVersion, LogConfig,
    NewEvent, RecordedEvent,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a test waits for something before it fails as stuck.
const DEADLINE: Duration = Duration::from_secs(10);

/// A fresh log; keep the directory alive for the test's duration.
fn open() -> (tempfile::TempDir, EventLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(LogConfig::new(dir.path()).durability(Durability::Buffered)).unwrap();
    (dir, log)
}

/// Appends `n` events, ten per append, round robin on three streams.
async fn append(log: &EventLog, n: u64) {
    let first = log.next_position();
    for chunk in (first..first + n).collect::<Vec<_>>().chunks(10) {
        let events = chunk
            .iter()
            .map(|i| NewEvent::new("TestEvent", "tenant-a", "corr", i.to_be_bytes().to_vec()))
            .collect();
        let stream = format!("stream-{}", (chunk[0] / 10) % 3);
        let request = AppendRequest::new(stream, ExpectedVersion::Any, events);
        log.append(request).await.unwrap();
    }
}

/// Polls `done` until it holds; fails the test after [`DEADLINE`].
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Short delays, so retries and commits happen quickly.
fn options() -> ConsumerOptions {
    ConsumerOptions {
        batch_size: 32,
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        commit_every: Duration::from_millis(5),
        ..ConsumerOptions::default()
    }
}

/// A consumer running on the loop in its own task.
struct Running {
    log: EventLog,
    probe: ConsumerProbe,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs `c` with [`options`] on `log`, its checkpoint in `store`.
fn start(log: &EventLog, store: &ConsumerStore, c: impl Consumer) -> Running {
    start_with(log, store, c, options())
}

/// Runs `c` with options `o` on `log`, its checkpoint in `store`.
fn start_with(
    log: &EventLog,
    store: &ConsumerStore,
    c: impl Consumer,
    o: ConsumerOptions,
) -> Running {
    let (probe, log) = (ConsumerProbe::new(store.clone()), log.clone());
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(consumer::run(log.clone(), probe.clone(), c, o, rx));
    Running {
        log,
        probe,
        stop,
        task,
    }
}

impl Running {
    /// Waits until the checkpoint reaches the log's head.
    async fn drained(&self) {
        eventually("the checkpoint to reach the head", || {
            let status = self.probe.status(self.log.next_position());
            status.checkpoint == status.head
        })
        .await;
    }

    /// Asks the loop to stop and waits for its task to end.
    async fn stop(self) -> ConsumerProbe {
        self.stop.send_replace(true);
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the loop ends once stopped")
            .unwrap();
        self.probe
    }
}

/// The tag of the row written for `position`, if any.
fn row(store: &ConsumerStore, position: u64) -> Option<u8> {
    store.get(&position.to_be_bytes()).unwrap().map(|v| v[0])
}

/// Positions handled, in the order the consumer saw them.
type Seen = Arc<Mutex<Vec<u64>>>;

/// What `handle` answers.
type Rows = Result<ConsumerBatch, Halt>;

fn seen(list: &Seen) -> Vec<u64> {
    list.lock().unwrap().clone()
}

/// Writes one row per event (key: its position, value: the tag `.0`);
/// with a position in `.1`, the batch reaching it sets `.2`, waits for
/// shutdown and answers [`Halt::Stopped`].
struct RowWriter(u8, Option<u64>, Arc<AtomicBool>);

impl Consumer for RowWriter {
    async fn handle(&mut self, batch: Vec<RecordedEvent>, session: &mut Session) -> Rows {
        let last = batch.last().map_or(0, |r| r.position);
        if self.1.is_some_and(|hold| last >= hold) {
            self.2.store(true, Ordering::SeqCst);
            let mut stop = session.stop_signal();
            let _ = stop.wait_for(|s| *s).await;
            return Err(Halt::Stopped);
        }
        let mut rows = ConsumerBatch::default();
        for record in &batch {
            rows.insert(&record.position.to_be_bytes(), vec![self.0]);
        }
        Ok(rows)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_and_checkpoint_are_committed_together() {
    let (_dir, log) = open();
    let store = log.consumer("rows").unwrap();
    append(&log, 600).await;

    // Stopped in the middle of a batch: its rows are not written, and the
    // checkpoint stays where the committed rows end.
    let held = Arc::new(AtomicBool::new(false));
    let running = start(&log, &store, RowWriter(1, Some(300), held.clone()));
    eventually("the batch reaching 300", || held.load(Ordering::SeqCst)).await;
    running.stop().await;
    let stopped_at = store.checkpoint().unwrap();
    assert!((1..=300).contains(&stopped_at), "checkpoint {stopped_at}");
    for position in 0..600 {
        let expected = (position < stopped_at).then_some(1);
        assert_eq!(row(&store, position), expected, "row {position}");
    }

    // A restart writes the rest, live appends included, each row once.
    let running = start(&log, &store, RowWriter(2, None, held));
    append(&log, 200).await;
    running.drained().await;
    running.stop().await;
    assert_eq!(store.checkpoint().unwrap(), 800);
    for position in 0..800 {
        let expected = if position < stopped_at { 1 } else { 2 };
        assert_eq!(row(&store, position), Some(expected), "row {position}");
    }
    assert_eq!(row(&store, 800), None);
}

/// The event whose job fails its first three attempts.
const FAIL_AT: u64 = 137;

/// Spawns a job per event; the job for [`FAIL_AT`] fails its first three
/// attempts (counted in `.0`). Records the positions whose job is done in
/// `.1` and the checkpoint each session begins at in `.2`.
struct FlakyJobs(Arc<AtomicU32>, Arc<Mutex<BTreeSet<u64>>>, Seen);

impl Consumer for FlakyJobs {
    async fn begin(&mut self, session: &Session) -> Result<u64, Halt> {
        self.2.lock().unwrap().push(session.checkpoint());
        Ok(session.checkpoint())
    }

    async fn handle(&mut self, batch: Vec<RecordedEvent>, session: &mut Session) -> Rows {
        for record in batch {
            let position = record.position;
            let (attempts, done) = (self.0.clone(), self.1.clone());
            session.spawn(position, async move {
                if position == FAIL_AT && attempts.fetch_add(1, Ordering::SeqCst) < 3 {
                    return JobEnd::Failed("the service refused".into());
                }
                done.lock().unwrap().insert(position);
                JobEnd::Done
            });
        }
        Ok(ConsumerBatch::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_keeps_its_event_below_the_checkpoint_until_it_succeeds() {
    let (_dir, log) = open();
    let store = log.consumer("flaky").unwrap();
    append(&log, 400).await;
    let (attempts, done, begins) = (Arc::default(), Arc::default(), Seen::default());
    let consumer = FlakyJobs(Arc::clone(&attempts), Arc::clone(&done), begins.clone());
    let running = start(&log, &store, consumer);

    // Sample the checkpoint, then the attempts: a checkpoint read while no
    // attempt had succeeded yet must not pass the failing event.
    eventually("the checkpoint to reach the head", || {
        let checkpoint = store.checkpoint().unwrap();
        let failing = attempts.load(Ordering::SeqCst) <= 3;
        assert!(!failing || checkpoint <= FAIL_AT, "passed: {checkpoint}");
        checkpoint == 400
    })
    .await;
    let status = running.probe.status(log.next_position());
    running.stop().await;

    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(*done.lock().unwrap(), (0..400).collect::<BTreeSet<_>>());
    // The first session and one per failure, each from a checkpoint
    // at or below the failing event.
    let begins = seen(&begins);
    assert_eq!(begins.len(), 4, "sessions began at {begins:?}");
    assert!(begins.iter().all(|c| *c <= FAIL_AT), "{begins:?}");
    assert_eq!((status.checkpoint, status.lag), (400, 0));
    assert!(status.retries >= 3, "{status:?}");
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains(&format!("position {FAIL_AT}")), "{error}");
}

/// Records, per event, whether the session suppresses its side effect.
struct SideEffects(Arc<Mutex<Vec<(u64, bool)>>>);

impl Consumer for SideEffects {
    async fn handle(&mut self, batch: Vec<RecordedEvent>, session: &mut Session) -> Rows {
        for record in batch {
            let suppressed = session.suppressed(record.position);
            self.0.lock().unwrap().push((record.position, suppressed));
        }
        Ok(ConsumerBatch::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_mode_suppresses_side_effects_below_the_bound_then_clears_it() {
    let (_dir, log) = open();
    let store = log.consumer("notifier").unwrap();
    let mut side_effects = options();
    side_effects.side_effects = true;
    append(&log, 300).await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let running = start_with(
        &log,
        &store,
        SideEffects(calls.clone()),
        side_effects.clone(),
    );
    running.drained().await;
    running.stop().await;
    assert!(store.has_side_effects().unwrap());
    let first: Vec<(u64, bool)> = (0..300).map(|p| (p, false)).collect();
    assert_eq!(*calls.lock().unwrap(), first);

    // An operator replays everything: the events already acted on come
    // back without side effects, the new ones with.
    let rewind = store.rewind_for_recovery(0).unwrap();
    assert_eq!((rewind.checkpoint, rewind.recovery_until), (0, Some(300)));
    append(&log, 200).await;
    calls.lock().unwrap().clear();
    let running = start_with(&log, &store, SideEffects(calls.clone()), side_effects);
    running.drained().await;
    let probe = running.stop().await;
    let replayed: Vec<(u64, bool)> = (0..500).map(|p| (p, p < 300)).collect();
    assert_eq!(*calls.lock().unwrap(), replayed);
    assert_eq!(store.recovery_until().unwrap(), None);
    assert_eq!(probe.status(log.next_position()).recovery_until, None);
    assert_eq!(store.checkpoint().unwrap(), 500);
}

/// Handles every event (recorded in `.1`, with a row per position) but the
/// one at `.0`, which it can never handle.
struct Poisoned(u64, Seen);

impl Consumer for Poisoned {
    async fn handle(&mut self, batch: Vec<RecordedEvent>, _: &mut Session) -> Rows {
        let mut rows = ConsumerBatch::default();
        for record in batch {
            if record.position == self.0 {
                return Err(Halt::Poison {
                    position: record.position,
                    message: "cannot decode".into(),
                    rows,
                });
            }
            rows.insert(&record.position.to_be_bytes(), vec![1]);
            self.1.lock().unwrap().push(record.position);
        }
        Ok(rows)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_stops_the_consumer_after_committing_what_precedes_it() {
    // 150 is in the middle of a batch of 32 (128..160).
    const POISON: u64 = 150;
    let (_dir, log) = open();
    let store = log.consumer("poisoned").unwrap();
    append(&log, 400).await;
    let handled = Seen::default();
    let running = start(&log, &store, Poisoned(POISON, handled.clone()));
    let poisoned = || running.probe.state() == ConsumerState::Poisoned;
    eventually("the poisoned state", poisoned).await;

    assert_eq!(store.checkpoint().unwrap(), POISON);
    let failure = store.failure().unwrap().expect("a recorded failure");
    assert_eq!(failure.position, POISON);
    assert!(failure.message.contains("cannot decode"), "{failure:?}");
    let status = running.probe.status(log.next_position());
    assert_eq!(status.failure, Some(failure));
    assert_eq!(seen(&handled), (0..POISON).collect::<Vec<_>>());
    // The rows of the poisoned batch's earlier events came with it.
    for position in 0..400u64 {
        let row = store.get(&position.to_be_bytes()).unwrap();
        assert_eq!(row.is_some(), position < POISON, "row at {position}");
    }

    // It waits for shutdown, handling nothing more.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !running.task.is_finished(),
        "a poisoned consumer waits for stop"
    );
    assert!(poisoned());
    assert_eq!(seen(&handled).len(), 150);
    running.stop().await;
    assert_eq!(store.checkpoint().unwrap(), POISON);
}

/// Spawns a job per event (recorded in `.1`); with a position in `.0`, the
/// jobs of even positions from it on wait for shutdown and answer
/// [`JobEnd::Unfinished`].
struct Parking(Option<u64>, Seen);

impl Consumer for Parking {
    async fn handle(&mut self, batch: Vec<RecordedEvent>, session: &mut Session) -> Rows {
        for record in batch {
            let position = record.position;
            self.1.lock().unwrap().push(position);
            if self.0.is_some_and(|from| position >= from) && position % 2 == 0 {
                let mut stop = session.stop_signal();
                session.spawn(position, async move {
                    let _ = stop.wait_for(|s| *s).await;
                    JobEnd::Unfinished
                });
            } else {
                session.spawn(position, async { JobEnd::Done });
            }
        }
        Ok(ConsumerBatch::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_jobs_at_shutdown_are_replayed_after_a_restart() {
    const FROM: u64 = 250;
    let (_dir, log) = open();
    let store = log.consumer("parking").unwrap();
    append(&log, 400).await;
    let running = start(&log, &store, Parking(Some(FROM), Seen::default()));
    // Every event handled: the even jobs from 250 on (75 of them) park,
    // the odd ones after them are done.
    eventually("the parked jobs", || {
        let status = running.probe.status(log.next_position());
        status.in_flight == 75 && status.checkpoint == FROM
    })
    .await;
    let probe = running.stop().await;
    assert_eq!(store.checkpoint().unwrap(), FROM);
    assert_eq!(probe.status(log.next_position()).in_flight, 0);

    let handled = Seen::default();
    let running = start(&log, &store, Parking(None, handled.clone()));
    running.drained().await;
    running.stop().await;
    assert_eq!(seen(&handled), (FROM..400).collect::<Vec<_>>());
    assert_eq!(store.checkpoint().unwrap(), 400);
}

/// How far past its checkpoint [`Skipping`] begins.
const SKIP: u64 = 100;

/// Begins [`SKIP`] events past its checkpoint (kept in `.0`); records the
/// stored checkpoint when each batch arrives in `.1`, the positions handled
/// in `.2`.
struct Skipping(ConsumerStore, Seen, Seen);

impl Consumer for Skipping {
    async fn begin(&mut self, session: &Session) -> Result<u64, Halt> {
        Ok(session.checkpoint() + SKIP)
    }

    async fn handle(&mut self, batch: Vec<RecordedEvent>, _: &mut Session) -> Rows {
        self.1.lock().unwrap().push(self.0.checkpoint().unwrap());
        self.2
            .lock()
            .unwrap()
            .extend(batch.iter().map(|r| r.position));
        Ok(ConsumerBatch::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_begins_past_its_checkpoint_has_that_start_committed() {
    let (_dir, log) = open();
    let store = log.consumer("skipping").unwrap();
    append(&log, 300).await;
    let (checkpoints, handled) = (Seen::default(), Seen::default());
    let consumer = Skipping(store.clone(), checkpoints.clone(), handled.clone());
    let running = start(&log, &store, consumer);
    running.drained().await;
    running.stop().await;
    // The start was committed before the first batch was handed over.
    assert_eq!(seen(&checkpoints).first(), Some(&SKIP));
    assert_eq!(seen(&handled), (SKIP..300).collect::<Vec<_>>());
    assert_eq!(store.checkpoint().unwrap(), 300);
}

/// In its first session, parks the job of position 10 until the session's
/// stop signal and fails the job of position 20 once; every session's
/// starting checkpoint is recorded.
struct ParkAndFail(Seen);

impl Consumer for ParkAndFail {
    async fn begin(&mut self, session: &Session) -> Result<u64, Halt> {
        self.0.lock().unwrap().push(session.checkpoint());
        Ok(session.checkpoint())
    }

    async fn handle(&mut self, batch: Vec<RecordedEvent>, session: &mut Session) -> Rows {
        let first = self.0.lock().unwrap().len() == 1;
        for record in batch {
            let position = record.position;
            if first && position == 10 {
                let mut stop = session.stop_signal();
                session.spawn(position, async move {
                    let _ = stop.wait_for(|s| *s).await;
                    JobEnd::Unfinished
                });
            } else if first && position == 20 {
                session.spawn(position, async { JobEnd::Failed("once".into()) });
            } else {
                session.spawn(position, async { JobEnd::Done });
            }
        }
        Ok(ConsumerBatch::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_restarts_the_session_even_while_another_job_waits() {
    let (_dir, log) = open();
    let store = log.consumer("park-and-fail").unwrap();
    append(&log, 100).await;
    let begins = Seen::default();
    let running = start(&log, &store, ParkAndFail(begins.clone()));
    // The halt tells the parked job to give up, so a second session starts
    // at or below the parked event and finishes everything.
    eventually("a second session", || seen(&begins).len() >= 2).await;
    running.drained().await;
    let sessions = seen(&begins);
    assert!(sessions[1] <= 10, "{sessions:?}");
    let status = running.probe.status(log.next_position());
    assert!(status.retries >= 1, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("position 20")),
        "{status:?}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_true_on_the_stop_channel_stops_the_loop() {
    let (_dir, log) = open();
    let store = log.consumer("steady").unwrap();
    append(&log, 100).await;
    let handled = Seen::default();
    let running = start(&log, &store, Poisoned(u64::MAX, handled.clone()));
    running.drained().await;
    running.stop.send_replace(false);
    append(&log, 10).await;
    running.drained().await;
    assert!(!running.task.is_finished());
    assert_eq!(running.probe.state(), ConsumerState::Running);
    assert_eq!(seen(&handled), (0..110).collect::<Vec<_>>());
    running.stop().await;
}
