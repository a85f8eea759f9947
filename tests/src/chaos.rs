//! The whole-platform chaos run (issue 12), shared by the short test
//! (`tests/tests/chaos.rs`, part of `cargo test --workspace`) and the long
//! example (`cargo run --release -p tests --example chaos -- --cycles 50`).
//!
//! It starts the real `oms-server` (embedded default: simulators on) on a
//! temporary data directory with the simulators' fault mix on
//! (`OMS_SIMULATOR_MIX`, `OMS_SIMULATOR_HANG_MS`) and a short
//! reconciliation interval, runs concurrent clients that drive quotes to
//! acceptance and retry every unanswered command with the same command id
//! until it is answered, and meanwhile stops the server at random moments,
//! alternately by SIGKILL and SIGTERM, and restarts it on the same data
//! directory and port. After the last restart it waits (bounded) until
//! every order is completed or has an open fallout case and no handoff is
//! pending, then measures:
//!
//! - `acked_lost`: acknowledged commands whose effect is not visible;
//! - `retry_refused`: acknowledged commands that, sent once more with the
//!   same command id and arguments, were not answered with their first
//!   outcome (`deduplicated: true`, same id and version);
//! - `duplicate_side_effects`: per (system, idempotency key), effects the
//!   simulators' durable journal recorded more than once, and of them
//!   `duplicate_notifications` (customer e-mails sent twice),
//!   `duplicate_documents` (order confirmations stored twice);
//! - `genuine_callbacks_refused`: simulator callbacks answered 4xx;
//! - `stuck`, `fallout` and `injected_rejections`;
//! - `verify_clean`: `oms-replay verify` on the stopped data directory
//!   (after every stop and at the end), and every read model's digest equal
//!   to the digest of its rebuild (`oms-replay consumers`, then
//!   `oms-replay rebuild --all`).
//!
//! [`run`] returns a [`ChaosReport`]; [`ChaosReport::failures`] names every
//! requirement that does not hold.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use graphql_client::GraphQLQuery;
use serde::Serialize;
use serde_json::Value;

use crate::ops;

/// The journal the embedded simulators keep, relative to the data directory.
pub const JOURNAL: &str = "simulators/journal.jsonl";

/// Most problem descriptions a report keeps.
const MAX_PROBLEMS: usize = 60;

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a SIGTERM may take before the server is killed.
const TERM_TIMEOUT: Duration = Duration::from_secs(30);

/// Most times one command is answered `INTERNAL` before the client gives up.
const MAX_INTERNAL: u32 = 40;

/// Concurrent requests when reading quotes and re-sending commands.
const RESEND_CONCURRENCY: usize = 32;

/// The systems whose business rejections become fallout cases.
const SIDE_EFFECT_SYSTEMS: [&str; 5] = [
    "inventory",
    "provisioning",
    "billing",
    "notification",
    "document",
];

/// How a chaos run is shaped.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// Server stops (and restarts), alternately SIGKILL and SIGTERM.
    pub cycles: u32,
    /// Concurrent clients.
    pub clients: usize,
    /// Most quotes one client drives (it stops earlier after the last
    /// restart).
    pub max_quotes_per_client: usize,
    /// A client's pause between two quotes, in ms (keeps the volume, and
    /// so the quiet period, short while traffic still spans every stop).
    pub pause_ms: u64,
    /// Shortest time the server runs between stops, in ms.
    pub up_min_ms: u64,
    /// Longest time the server runs between stops, in ms.
    pub up_max_ms: u64,
    /// Longest time the server stays down, in ms.
    pub down_max_ms: u64,
    /// How long clients keep starting quotes after the last restart, in ms.
    pub tail_ms: u64,
    /// How long one command may stay unanswered, retries included.
    pub command_deadline: Duration,
    /// How long the quiet period may last before the remaining orders
    /// count as stuck.
    pub settle_deadline: Duration,
    /// `OMS_SIMULATOR_MIX`: basis points per `Fault` variant.
    pub fault_mix: String,
    /// `OMS_SIMULATOR_HANG_MS`: how long a timeout fault holds its answer
    /// (unset: the server's default, one second past the longest read
    /// timeout, so that it really times out).
    pub hang_ms: Option<u64>,
    /// `OMS_RECONCILIATION_INTERVAL_MS`.
    pub reconciliation_interval_ms: u64,
    /// Extra environment for the server (after the above).
    pub server_env: Vec<(String, String)>,
    /// Seed of the stop schedule.
    pub seed: u64,
    /// The `oms-server` binary (default: [`crate::server_binary`]).
    pub server_binary: Option<PathBuf>,
    /// The `oms-replay` binary (default: [`replay_binary`]).
    pub replay_binary: Option<PathBuf>,
    /// `RUST_LOG` of the server.
    pub log: String,
    /// Keep the data directory when a requirement fails (its path is in
    /// the report).
    pub keep_on_failure: bool,
    /// Print progress lines on standard error.
    pub verbose: bool,
}

/// The fault mix of both modes: timeouts after the effect was applied,
/// doubled, stale and dropped callbacks, and business rejections.
pub const DEFAULT_MIX: &str =
    "TimeoutAfterApply=500,CallbackTwice=400,CallbackOutOfOrder=300,DropCallback=300,BusinessReject=300";

impl ChaosOptions {
    /// The short mode for `cargo test --workspace` (2 cores, a few
    /// minutes): 6 stops, 4 clients.
    pub fn ci() -> Self {
        Self {
            cycles: 6,
            clients: 4,
            max_quotes_per_client: 1_000,
            pause_ms: 2_000,
            up_min_ms: 1_500,
            up_max_ms: 4_000,
            down_max_ms: 500,
            tail_ms: 1_500,
            command_deadline: Duration::from_secs(120),
            settle_deadline: Duration::from_secs(150),
            fault_mix: DEFAULT_MIX.to_owned(),
            hang_ms: None,
            reconciliation_interval_ms: 300,
            // Short read timeout and SLA for the simulated systems, so
            // callbacks lost with a killed process (or dropped by the fault
            // mix) are reconciled within seconds rather than a minute.
            server_env: vec![
                ("OMS_SIMULATOR_READ_TIMEOUT_MS".to_owned(), "500".to_owned()),
                ("OMS_SIMULATOR_SLA_MS".to_owned(), "2000".to_owned()),
            ],
            seed: seed_from_clock(),
            server_binary: None,
            replay_binary: None,
            log: "warn".to_owned(),
            keep_on_failure: false,
            verbose: true,
        }
    }

    /// The long mode: `cycles` stops, 8 clients, longer up times.
    pub fn long(cycles: u32) -> Self {
        Self {
            cycles,
            clients: 8,
            pause_ms: 250,
            up_min_ms: 2_000,
            up_max_ms: 8_000,
            down_max_ms: 1_000,
            tail_ms: 3_000,
            settle_deadline: Duration::from_secs(300),
            keep_on_failure: true,
            ..Self::ci()
        }
    }
}

/// A seed from the clock (odd, never 0).
pub fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(7))
        .unwrap_or(7)
        | 1
}

/// Everything a chaos run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChaosReport {
    /// Seed of the stop schedule.
    pub seed: u64,
    /// Stops (each followed by a restart).
    pub cycles: u32,
    /// Stops by SIGTERM.
    pub kills_sigterm: u32,
    /// Stops by SIGKILL.
    pub kills_sigkill: u32,
    /// SIGTERM stops that did not exit 0 within the timeout.
    pub sigterm_unclean: u32,
    /// Restarts that could not bind the previous port (clients followed
    /// the new address).
    pub restarts_on_new_port: u32,
    /// Commands sent (each counted once, however many attempts).
    pub commands_sent: u64,
    /// Commands answered with success.
    pub commands_acked: u64,
    /// Commands that needed more than one attempt.
    pub commands_retried: u64,
    /// Attempts over every command.
    pub attempts: u64,
    /// Commands whose final answer was `deduplicated: true` during the run
    /// (a retry of a command the server had applied before it stopped).
    pub deduplicated_in_run: u64,
    /// Commands answered with an error (other than `INTERNAL`, retried).
    pub commands_refused: u64,
    /// Commands still unanswered at their deadline.
    pub commands_unanswered: u64,
    /// `INTERNAL` answers that were retried.
    pub internal_retries: u64,
    /// Quotes created (acknowledged).
    pub quotes: u64,
    /// Quotes accepted (acknowledged).
    pub quotes_accepted: u64,
    /// Orders in the read model.
    pub orders: u64,
    /// Orders completed.
    pub completed: u64,
    /// Orders with an open fallout case.
    pub orders_with_fallout: u64,
    /// Open fallout cases.
    pub fallout: u64,
    /// Distinct (system, key) the simulators rejected by business or
    /// validation rule.
    pub injected_rejections: u64,
    /// Effect lines in the simulators' journal.
    pub effects: u64,
    /// Callback lines in the simulators' journal.
    pub callbacks: u64,
    /// Journal lines that did not parse (torn by a kill).
    pub journal_torn_lines: u64,
    /// Callback messages delivered more than once (the same message id
    /// answered twice: `CallbackTwice`, or a redelivery).
    pub duplicate_callback_deliveries: u64,
    /// Events in the log at the end.
    pub events: u64,
    /// `HandoffOutcomeUnknown` events (calls that timed out).
    pub outcomes_unknown: u64,
    /// Acknowledged commands whose effect is not visible.
    pub acked_lost: u64,
    /// Accepted quotes without an order.
    pub orders_missing: u64,
    /// Re-sent acknowledged commands not answered with their first outcome.
    pub retry_refused: u64,
    /// Effects applied more than once for the same (system, key).
    pub duplicate_side_effects: u64,
    /// Customer notifications sent more than once for the same key (part
    /// of `duplicate_side_effects`, shown on its own).
    pub duplicate_notifications: u64,
    /// Order confirmations stored more than once for the same key (part of
    /// `duplicate_side_effects`, shown on its own).
    pub duplicate_documents: u64,
    /// Genuine simulator callbacks the server answered 4xx.
    pub genuine_callbacks_refused: u64,
    /// Orders neither completed nor with an open fallout case.
    pub stuck: u64,
    /// Handoffs still pending at the end of the quiet period.
    pub pending_handoffs: u64,
    /// `oms-replay verify` failures after a stop (before the restart).
    pub verify_failures_between_cycles: u64,
    /// `oms-replay verify` succeeded at the end and every read model's
    /// digest equals its rebuild's.
    pub verify_clean: bool,
    /// Every read model's digest equals the digest of its rebuild.
    pub read_models_equal_rebuild: bool,
    /// Read model digests before the rebuild, by projector.
    pub digests: BTreeMap<String, String>,
    /// How long the quiet period took, in ms.
    pub settle_ms: u64,
    /// The whole run, in seconds.
    pub elapsed_s: f64,
    /// Whether the simulators' journal existed.
    pub journal_present: bool,
    /// The data directory, when it was kept.
    pub data_dir: Option<String>,
    /// Details of what went wrong, at most a few dozen.
    pub problems: Vec<String>,
}

impl ChaosReport {
    /// Every requirement that does not hold, as a sentence.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.journal_present {
            out.push(format!(
                "the simulators' journal <data_dir>/{JOURNAL} does not exist: the server does not \
                 provide the durable simulator journal (and probably not OMS_SIMULATOR_MIX) yet"
            ));
        } else if self.effects == 0 {
            out.push("the simulators' journal records no effect at all".to_owned());
        }
        let zero = [
            ("acked_lost", self.acked_lost),
            ("orders_missing", self.orders_missing),
            ("retry_refused", self.retry_refused),
            ("duplicate_side_effects", self.duplicate_side_effects),
            ("duplicate_notifications", self.duplicate_notifications),
            ("duplicate_documents", self.duplicate_documents),
            ("genuine_callbacks_refused", self.genuine_callbacks_refused),
            ("stuck", self.stuck),
            ("pending_handoffs", self.pending_handoffs),
            ("commands_unanswered", self.commands_unanswered),
            ("commands_refused", self.commands_refused),
            ("sigterm_unclean", u64::from(self.sigterm_unclean)),
            (
                "verify_failures_between_cycles",
                self.verify_failures_between_cycles,
            ),
        ];
        for (name, value) in zero {
            if value != 0 {
                out.push(format!("{name} = {value} (must be 0)"));
            }
        }
        if self.fallout != self.injected_rejections {
            out.push(format!(
                "fallout = {} but injected_rejections = {} (must be equal)",
                self.fallout, self.injected_rejections
            ));
        }
        if !self.verify_clean {
            out.push("verify_clean = false (oms-replay verify, or a read model differs from its rebuild)".to_owned());
        }
        if self.kills_sigkill + self.kills_sigterm < self.cycles {
            out.push(format!(
                "only {} of {} stops happened",
                self.kills_sigkill + self.kills_sigterm,
                self.cycles
            ));
        }
        if self.quotes_accepted == 0 {
            out.push("no quote was accepted: the clients made no progress".to_owned());
        }
        if self.journal_present {
            let exercised = [
                (
                    "business rejections (injected_rejections)",
                    self.injected_rejections,
                ),
                ("timed-out calls (outcomes_unknown)", self.outcomes_unknown),
                (
                    "doubled callbacks (duplicate_callback_deliveries)",
                    self.duplicate_callback_deliveries,
                ),
            ];
            let missing: Vec<&str> = exercised
                .iter()
                .filter(|(_, n)| *n == 0)
                .map(|(what, _)| *what)
                .collect();
            if !missing.is_empty() {
                out.push(format!(
                    "the fault mix was not exercised; missing: {} (is OMS_SIMULATOR_MIX applied, and \
                     do the simulators draw a new fault sequence at every start?)",
                    missing.join(", ")
                ));
            }
        }
        out
    }

    /// The report as one JSON line.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    fn problem(&mut self, text: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text.into());
        }
    }
}

/// The `oms-replay` binary next to the `oms-server` binary, or
/// `OMS_REPLAY_BIN`.
///
/// # Errors
/// When it does not exist, with how to build it.
pub fn replay_binary(server: &Path) -> Result<PathBuf, String> {
    let path = std::env::var_os("OMS_REPLAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| server.with_file_name("oms-replay"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the oms-replay binary {} does not exist: build it with `cargo build -p replay-tools` \
             (`--release` for a release run), or set OMS_REPLAY_BIN",
            path.display()
        ))
    }
}

// ---------------------------------------------------------------------------
// The server process.

/// How a server is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Term,
    Kill,
}

/// What a server is started with.
#[derive(Clone, Debug)]
struct Setup {
    binary: PathBuf,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
    log: String,
}

/// One `oms-server` process; SIGKILL by pid on drop.
struct Proc {
    child: Option<Child>,
    addr: SocketAddr,
    stderr: crate::StderrTail,
}

impl Proc {
    /// Starts the server on `127.0.0.1:port` (0: any).
    fn start(setup: &Setup, port: u16) -> Result<Proc, String> {
        let mut command = Command::new(&setup.binary);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&setup.data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("OMS_CONFIG")
            .env_remove("OMS_DATA_DIR")
            .env_remove("OMS_LISTEN")
            .env_remove("OMS_SIMULATORS")
            .env("RUST_LOG", &setup.log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &setup.env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", setup.binary.display()))?;
        let stderr = crate::StderrTail::follow(&mut child, 200);
        let (tx, rx) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix("oms-server: listening on http://") {
                        let _ = tx.send(rest.trim().to_owned());
                    }
                }
            });
        }
        let mut proc = Proc {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stderr,
        };
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(text) => {
                    proc.addr = text
                        .parse()
                        .map_err(|e| format!("bad listening address {text:?}: {e}"))?;
                    return Ok(proc);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(200));
                    let status = proc.wait_exit(Duration::from_secs(5));
                    return Err(format!(
                        "oms-server exited before listening ({status:?}); stderr:\n{}",
                        proc.stderr_tail()
                    ));
                }
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = proc.stop(Signal::Kill);
                return Err(format!(
                    "oms-server did not print `listening on` within {START_TIMEOUT:?}; stderr:\n{}",
                    proc.stderr_tail()
                ));
            }
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn stderr_tail(&self) -> String {
        self.stderr.last(40)
    }

    /// Waits for the process to exit on its own; `None` if it is still running.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if started.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the process; its exit status and whether SIGTERM had to be
    /// followed by SIGKILL.
    fn stop(&mut self, signal: Signal) -> Result<(ExitStatus, bool), String> {
        let Some(mut child) = self.child.take() else {
            return Err("the server is not running".to_owned());
        };
        match signal {
            Signal::Kill => {
                let _ = child.kill();
                let status = child
                    .wait()
                    .map_err(|e| format!("wait for the killed server: {e}"))?;
                Ok((status, false))
            }
            Signal::Term => {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
                let started = Instant::now();
                loop {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Ok((status, false));
                    }
                    if started.elapsed() > TERM_TIMEOUT {
                        let _ = child.kill();
                        let status = child
                            .wait()
                            .map_err(|e| format!("wait for the killed server: {e}"))?;
                        return Ok((status, true));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Kills the current server by pid if the run unwinds while the stopper
/// thread owns it, and tells the stopper not to restart it.
struct Guard {
    pid: Arc<Mutex<Option<u32>>>,
    abort: Arc<AtomicBool>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.abort.store(true, Ordering::SeqCst);
        if let Some(pid) = self.pid.lock().ok().and_then(|p| *p) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }
}

// ---------------------------------------------------------------------------
// The clients.

/// The quote-flow commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Create,
    AddLine,
    Price,
    Proposal,
    Signature,
    Accept,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Kind::Create => "createQuote",
            Kind::AddLine => "addQuoteLine",
            Kind::Price => "priceQuote",
            Kind::Proposal => "recordProposal",
            Kind::Signature => "recordSignature",
            Kind::Accept => "acceptQuote",
        }
    }
}

/// The `CommandResult` fields the clients read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    id: String,
    version: i64,
    deduplicated: bool,
}

/// An acknowledged command, kept for the checks after the run.
#[derive(Clone, Debug)]
struct Acked {
    kind: Kind,
    command_id: String,
    quote: String,
    /// The line id of an `addQuoteLine`.
    line: Option<String>,
    body: Value,
    outcome: Outcome,
}

/// How a command ended.
enum Answer {
    Ok(Outcome),
    Refused(String),
    Unanswered(String),
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    attempts: AtomicU64,
    retried: AtomicU64,
    acked: AtomicU64,
    deduplicated: AtomicU64,
    refused: AtomicU64,
    unanswered: AtomicU64,
    internal: AtomicU64,
}

struct Clients {
    http: reqwest::Client,
    addr: Arc<Mutex<SocketAddr>>,
    token: String,
    stop_new: AtomicBool,
    counters: Counters,
    acked: Mutex<Vec<Acked>>,
    problems: Mutex<Vec<String>>,
    command_deadline: Duration,
    run_id: String,
}

impl Clients {
    fn url(&self) -> String {
        let addr = self
            .addr
            .lock()
            .map(|a| *a)
            .unwrap_or_else(|e| *e.into_inner());
        format!("http://{addr}/graphql")
    }

    fn problem(&self, text: String) {
        if let Ok(mut problems) = self.problems.lock() {
            if problems.len() < MAX_PROBLEMS {
                problems.push(text);
            }
        }
    }

    /// One POST: the status and the JSON body, or a transport error.
    async fn post(&self, body: &Value) -> Result<(u16, Value), String> {
        let response = self
            .http
            .post(self.url())
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("transport (body): {e}"))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Sends a command until it is answered: transport failures and 5xx
    /// are retried with the same body (so the same command id); so are
    /// `INTERNAL` and the external-system failures (`UNAVAILABLE`,
    /// `UPSTREAM_ERROR`, e.g. CRM under the fault mix) during the run
    /// (`count`), never when re-sending.
    async fn send(&self, kind: Kind, body: &Value, count: bool) -> Answer {
        if count {
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut internal = 0u32;
        let mut backoff = Duration::from_millis(50);
        let answer = loop {
            attempts += 1;
            if count {
                self.counters.attempts.fetch_add(1, Ordering::Relaxed);
            }
            let last = match self.post(body).await {
                Err(e) => e,
                Ok((status, _)) if status >= 500 => format!("HTTP {status}"),
                Ok((status, json)) => match classify(kind, status, &json) {
                    Ok(outcome) => break Answer::Ok(outcome),
                    Err((code, message))
                        if count
                            && matches!(
                                code.as_str(),
                                "INTERNAL" | "UNAVAILABLE" | "UPSTREAM_ERROR"
                            )
                            && internal < MAX_INTERNAL =>
                    {
                        internal += 1;
                        if count {
                            self.counters.internal.fetch_add(1, Ordering::Relaxed);
                        }
                        format!("INTERNAL: {message}")
                    }
                    Err((code, message)) => {
                        break Answer::Refused(format!("HTTP {status} {code}: {message}"))
                    }
                },
            };
            if started.elapsed() > self.command_deadline {
                break Answer::Unanswered(format!(
                    "no answer after {attempts} attempts in {:?}; last: {last}",
                    started.elapsed()
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        };
        if count {
            if attempts > 1 {
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
            }
            match &answer {
                Answer::Ok(outcome) => {
                    self.counters.acked.fetch_add(1, Ordering::Relaxed);
                    if outcome.deduplicated {
                        self.counters.deduplicated.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Answer::Refused(_) => {
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                }
                Answer::Unanswered(_) => {
                    self.counters.unanswered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        answer
    }

    /// Sends a quote-flow command and records it when acknowledged.
    async fn step(
        &self,
        kind: Kind,
        command_id: &str,
        quote: &str,
        line: Option<&str>,
        body: Value,
    ) -> Result<Outcome, String> {
        match self.send(kind, &body, true).await {
            Answer::Ok(outcome) => {
                let quote = if kind == Kind::Create {
                    outcome.id.clone()
                } else {
                    quote.to_owned()
                };
                if let Ok(mut acked) = self.acked.lock() {
                    acked.push(Acked {
                        kind,
                        command_id: command_id.to_owned(),
                        quote,
                        line: line.map(str::to_owned),
                        body,
                        outcome: outcome.clone(),
                    });
                }
                Ok(outcome)
            }
            Answer::Refused(text) => Err(format!("{} {command_id} refused: {text}", kind.field())),
            Answer::Unanswered(text) => {
                Err(format!("{} {command_id} unanswered: {text}", kind.field()))
            }
        }
    }

    /// One quote from creation to acceptance.
    async fn quote_flow(&self, worker: usize, n: usize) -> Result<(), String> {
        let id = |step: &str| format!("{}-w{worker}-q{n}-{step}", self.run_id);
        let create = id("create");
        let quote = self
            .step(
                Kind::Create,
                &create,
                "",
                None,
                body::<ops::CreateQuote>(ops::create_quote::Variables {
                    command_id: create.clone(),
                    customer_id: format!("cust-chaos-{worker}"),
                    catalog_version: None,
                })?,
            )
            .await?
            .id;
        let offerings: &[&str] = if n % 2 == 0 {
            &["fiber-1g"]
        } else {
            &["fiber-10g", "sdwan-edge"]
        };
        for (i, offering) in offerings.iter().enumerate() {
            let line_id = format!("line-{}", i + 1);
            let command = id(&format!("add-{}", i + 1));
            self.step(
                Kind::AddLine,
                &command,
                &quote,
                Some(&line_id),
                body::<ops::AddQuoteLine>(ops::add_quote_line::Variables {
                    command_id: command.clone(),
                    quote_id: quote.clone(),
                    expected_version: None,
                    line: crate::line(&line_id, offering, 1),
                })?,
            )
            .await?;
        }
        let command = id("price");
        self.step(
            Kind::Price,
            &command,
            &quote,
            None,
            body::<ops::PriceQuote>(ops::price_quote::Variables {
                command_id: command.clone(),
                quote_id: quote.clone(),
                expected_version: None,
                discount_percent: Some("5".to_owned()),
            })?,
        )
        .await?;
        let hash = format!("sha256-{quote}-1");
        let command = id("proposal");
        self.step(
            Kind::Proposal,
            &command,
            &quote,
            None,
            body::<ops::RecordProposal>(ops::record_proposal::Variables {
                command_id: command.clone(),
                quote_id: quote.clone(),
                expected_version: None,
                revision: 1,
                artifact_id: format!("doc-{quote}-1"),
                artifact_hash: hash.clone(),
                template_version: "t-1".to_owned(),
            })?,
        )
        .await?;
        let command = id("signature");
        self.step(
            Kind::Signature,
            &command,
            &quote,
            None,
            body::<ops::RecordSignature>(ops::record_signature::Variables {
                command_id: command.clone(),
                quote_id: quote.clone(),
                expected_version: None,
                revision: 1,
                signer: "Jane Customer".to_owned(),
                provider_reference: format!("esign-{quote}"),
                artifact_hash: hash,
            })?,
        )
        .await?;
        let command = id("accept");
        self.step(
            Kind::Accept,
            &command,
            &quote,
            None,
            body::<ops::AcceptQuote>(ops::accept_quote::Variables {
                command_id: command.clone(),
                quote_id: quote.clone(),
                expected_version: None,
                billing_account: "ba-1".to_owned(),
            })?,
        )
        .await?;
        Ok(())
    }

    async fn worker(self: Arc<Self>, worker: usize, max_quotes: usize, pause: Duration) {
        for n in 0..max_quotes {
            if self.stop_new.load(Ordering::SeqCst) {
                break;
            }
            if let Err(problem) = self.quote_flow(worker, n).await {
                self.problem(problem);
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Runs a typed query against the current server (retrying transport
    /// failures for a few seconds).
    async fn query<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
    ) -> Result<Q::ResponseData, String> {
        let body = serde_json::to_value(Q::build_query(variables))
            .map_err(|e| format!("serialize a query: {e}"))?;
        let mut last = String::new();
        for _ in 0..50 {
            match self.post(&body).await {
                Ok((status, json)) => {
                    return crate::decode::<Q>(status, json)
                        .map_err(|e| format!("{} {}: {}", e.status, e.code(), e.message));
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last)
    }
}

/// A typed operation's request body.
fn body<Q: GraphQLQuery>(variables: Q::Variables) -> Result<Value, String> {
    serde_json::to_value(Q::build_query(variables)).map_err(|e| format!("serialize a command: {e}"))
}

/// A command's `CommandResult`, or its first error's code and message.
fn classify(kind: Kind, status: u16, json: &Value) -> Result<Outcome, (String, String)> {
    if let Some(error) = json
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        let code = error
            .pointer("/extensions/code")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned();
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        return Err((code, message));
    }
    let result = json.pointer(&format!("/data/{}", kind.field()));
    match result {
        Some(result) if status == 200 => {
            let id = result.get("id").and_then(Value::as_str);
            let version = result.get("version").and_then(Value::as_i64);
            let deduplicated = result.get("deduplicated").and_then(Value::as_bool);
            match (id, version, deduplicated) {
                (Some(id), Some(version), Some(deduplicated)) => Ok(Outcome {
                    id: id.to_owned(),
                    version,
                    deduplicated,
                }),
                _ => Err(("UNDECODABLE".to_owned(), result.to_string())),
            }
        }
        _ => Err((
            format!("HTTP_{status}"),
            format!("no data.{}: {json}", kind.field()),
        )),
    }
}

// ---------------------------------------------------------------------------
// The simulators' journal.

/// What the simulators' journal says.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    /// Effect lines per (system, key).
    pub effects: BTreeMap<(String, String), u64>,
    /// Distinct (system, key) rejected by a business or validation rule.
    pub rejections: BTreeSet<(String, String)>,
    /// Callback lines.
    pub callbacks: u64,
    /// Callback deliveries answered 4xx: (system, key, message id, status).
    pub refused_callbacks: Vec<(String, String, String, u64)>,
    /// Answered deliveries per (system, message id).
    pub deliveries: BTreeMap<(String, String), u64>,
    /// Lines that did not parse (a kill mid-write).
    pub torn_lines: u64,
}

impl Journal {
    /// Reads `path`; `None` when it does not exist. A line that does not
    /// parse is skipped (and counted); when a torn line was glued to the
    /// next one, the last complete object on it is still read.
    ///
    /// # Errors
    /// The file exists but cannot be read.
    pub fn read(path: &Path) -> Result<Option<Journal>, String> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("read {}: {e}", path.display())),
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut journal = Journal::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let parsed = serde_json::from_str::<Value>(line).ok().or_else(|| {
                journal.torn_lines += 1;
                // A torn fragment followed by a whole line: read the last object.
                line.rmatch_indices("{\"")
                    .find_map(|(at, _)| serde_json::from_str::<Value>(&line[at..]).ok())
            });
            if let Some(entry) = parsed {
                journal.add(&entry);
            }
        }
        Ok(Some(journal))
    }

    fn add(&mut self, entry: &Value) {
        let text = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (system, key) = (text("system"), text("key"));
        match entry.get("kind").and_then(Value::as_str) {
            Some("effect") => *self.effects.entry((system, key)).or_default() += 1,
            Some("reject") => {
                self.rejections.insert((system, key));
            }
            // A state change without an effect, caused by a rejection.
            Some("state")
                if matches!(
                    entry.get("fault").and_then(Value::as_str),
                    Some("BusinessReject" | "ValidationReject")
                ) =>
            {
                self.rejections.insert((system, key));
            }
            Some("callback") => {
                self.callbacks += 1;
                if let Some(status) = entry.get("status").and_then(Value::as_u64) {
                    *self
                        .deliveries
                        .entry((system.clone(), text("message_id")))
                        .or_default() += 1;
                    if (400..500).contains(&status) {
                        self.refused_callbacks
                            .push((system, key, text("message_id"), status));
                    }
                }
            }
            _ => {}
        }
    }

    /// Effects applied more than once, summed over (system, key).
    pub fn duplicate_side_effects(&self) -> u64 {
        self.effects.values().map(|n| n.saturating_sub(1)).sum()
    }

    /// Notifications sent more than once, summed over keys.
    pub fn duplicate_notifications(&self) -> u64 {
        self.duplicates_of("notification")
    }

    /// Documents stored more than once, summed over keys.
    pub fn duplicate_documents(&self) -> u64 {
        self.duplicates_of("document")
    }

    fn duplicates_of(&self, of: &str) -> u64 {
        self.effects
            .iter()
            .filter(|((system, _), _)| system == of)
            .map(|(_, n)| n.saturating_sub(1))
            .sum()
    }

    /// Messages delivered (answered) more than once.
    pub fn duplicate_deliveries(&self) -> u64 {
        count(self.deliveries.values().filter(|n| **n > 1))
    }

    /// Effect lines.
    pub fn effect_count(&self) -> u64 {
        self.effects.values().sum()
    }

    /// Rejections by the side-effect systems (those that open fallout).
    pub fn injected_rejections(&self) -> u64 {
        let count = self
            .rejections
            .iter()
            .filter(|(system, _)| SIDE_EFFECT_SYSTEMS.contains(&system.as_str()))
            .count();
        u64::try_from(count).unwrap_or(u64::MAX)
    }
}

// ---------------------------------------------------------------------------
// oms-replay.

/// Runs `oms-replay --data-dir DIR --json --quiet ARGS`: exit code and stdout.
fn replay(binary: &Path, data_dir: &Path, args: &[&str]) -> Result<(i32, String, String), String> {
    let output = Command::new(binary)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--json")
        .arg("--quiet")
        .args(args)
        .env_remove("OMS_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// `oms-replay verify`; `Err` with its output when it is not clean.
fn verify(binary: &Path, data_dir: &Path) -> Result<(), String> {
    let (code, stdout, stderr) = replay(binary, data_dir, &["verify"])?;
    if code == 0 {
        Ok(())
    } else {
        Err(format!(
            "oms-replay verify exited {code}: {} {}",
            stdout.trim(),
            stderr.trim()
        ))
    }
}

/// `oms-replay stats`: events in the log, and per event type.
fn event_counts(binary: &Path, data_dir: &Path) -> Result<(u64, BTreeMap<String, u64>), String> {
    let (code, stdout, stderr) = replay(binary, data_dir, &["stats"])?;
    if code != 0 {
        return Err(format!("oms-replay stats exited {code}: {stdout} {stderr}"));
    }
    let json: Value =
        serde_json::from_str(&stdout).map_err(|e| format!("oms-replay stats: {e}: {stdout}"))?;
    let per_type = json
        .get("per_type")
        .and_then(Value::as_object)
        .map(|types| {
            types
                .iter()
                .filter_map(|(name, n)| Some((name.clone(), n.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    Ok((
        json.get("events").and_then(Value::as_u64).unwrap_or(0),
        per_type,
    ))
}

/// Projector name to (digest, lag) from a `projectors` JSON array.
fn digests(json: &Value) -> BTreeMap<String, (String, u64)> {
    json.get("projectors")
        .and_then(Value::as_array)
        .map(|projectors| {
            projectors
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get("name")?.as_str()?.to_owned(),
                        (
                            p.get("digest")?.as_str()?.to_owned(),
                            p.get("lag").and_then(Value::as_u64).unwrap_or(0),
                        ),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Compares every read model with its rebuild: `consumers --json` (the
/// digests the server left), then `rebuild --all --json`.
fn compare_with_rebuild(
    binary: &Path,
    data_dir: &Path,
    report: &mut ChaosReport,
) -> Result<bool, String> {
    let (code, stdout, stderr) = replay(binary, data_dir, &["consumers"])?;
    if code != 0 {
        return Err(format!(
            "oms-replay consumers exited {code}: {stdout} {stderr}"
        ));
    }
    let before = digests(
        &serde_json::from_str(&stdout)
            .map_err(|e| format!("oms-replay consumers: {e}: {stdout}"))?,
    );
    let (code, stdout, stderr) = replay(binary, data_dir, &["rebuild", "--all"])?;
    if code != 0 {
        return Err(format!(
            "oms-replay rebuild --all exited {code}: {stdout} {stderr}"
        ));
    }
    let after = digests(
        &serde_json::from_str(&stdout).map_err(|e| format!("oms-replay rebuild: {e}: {stdout}"))?,
    );
    if before.is_empty() {
        return Err(format!(
            "oms-replay consumers reported no projector: {stdout}"
        ));
    }
    let mut equal = true;
    for (name, (digest, lag)) in &before {
        report.digests.insert(name.clone(), digest.clone());
        if *lag != 0 {
            equal = false;
            report.problem(format!(
                "read model {name} was {lag} events behind the log when the server stopped"
            ));
        }
        match after.get(name) {
            Some((rebuilt, _)) if rebuilt == digest => {}
            other => {
                equal = false;
                report.problem(format!(
                    "read model {name}: digest {digest}, its rebuild {:?}",
                    other.map(|(d, _)| d)
                ));
            }
        }
    }
    Ok(equal)
}

// ---------------------------------------------------------------------------
// The run.

/// xorshift64.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0 % n
        }
    }
}

/// What the stopper thread did.
#[derive(Default)]
struct Stops {
    sigterm: u32,
    sigkill: u32,
    sigterm_unclean: u32,
    new_port: u32,
    verify_failures: u64,
    problems: Vec<String>,
}

/// Stops the server `cycles` times and restarts it on the same data
/// directory and port; gives the last server back.
#[allow(clippy::too_many_arguments)]
fn stopper(
    mut server: Proc,
    setup: &Setup,
    replay_bin: &Path,
    options: &ChaosOptions,
    addr: &Mutex<SocketAddr>,
    pid: &Mutex<Option<u32>>,
    abort: &AtomicBool,
    stops: &mut Stops,
) -> Result<Proc, String> {
    let mut rng = Rng(options.seed);
    for cycle in 1..=options.cycles {
        let span = options.up_max_ms.saturating_sub(options.up_min_ms);
        let up = Duration::from_millis(options.up_min_ms + rng.below(span + 1));
        let until = Instant::now() + up;
        while Instant::now() < until {
            if abort.load(Ordering::SeqCst) {
                return Err("aborted".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let signal = if cycle % 2 == 1 {
            Signal::Kill
        } else {
            Signal::Term
        };
        let port = server.addr.port();
        if let Ok(mut pid) = pid.lock() {
            *pid = None;
        }
        let stopped = Instant::now();
        let (status, forced) = server.stop(signal)?;
        match signal {
            Signal::Kill => stops.sigkill += 1,
            Signal::Term => {
                stops.sigterm += 1;
                if forced || !status.success() {
                    stops.sigterm_unclean += 1;
                    stops.problems.push(format!(
                        "cycle {cycle}: SIGTERM stop ended {status} (forced: {forced}); stderr:\n{}",
                        server.stderr_tail()
                    ));
                }
            }
        }
        if let Err(e) = verify(replay_bin, &setup.data_dir) {
            stops.verify_failures += 1;
            stops
                .problems
                .push(format!("cycle {cycle} ({signal:?}): {e}"));
        }
        let down = rng.below(options.down_max_ms + 1);
        std::thread::sleep(Duration::from_millis(down));
        if abort.load(Ordering::SeqCst) {
            return Err("aborted".to_owned());
        }
        server = match Proc::start(setup, port) {
            Ok(server) => server,
            Err(first) => {
                let second = Proc::start(setup, 0).map_err(|e| {
                    format!("cycle {cycle}: restart failed on port {port} ({first}) and on a new port: {e}")
                })?;
                stops.new_port += 1;
                second
            }
        };
        if let Ok(mut pid) = pid.lock() {
            *pid = server.pid();
        }
        if let Ok(mut shared) = addr.lock() {
            *shared = server.addr;
        }
        if options.verbose {
            eprintln!(
                "chaos: cycle {cycle}/{}: {signal:?} after {up:?} (stop took {:?}), down {down} ms, back on {}",
                options.cycles,
                stopped.elapsed(),
                server.addr
            );
        }
    }
    Ok(server)
}

/// Runs the whole chaos scenario; `Err` only when it cannot run at all
/// (missing binary, a server that does not start).
///
/// # Errors
/// A message naming what could not be done.
pub fn run(options: &ChaosOptions) -> Result<ChaosReport, String> {
    let started = Instant::now();
    let binary = options
        .server_binary
        .clone()
        .unwrap_or_else(crate::server_binary);
    let replay_bin = match &options.replay_binary {
        Some(path) => path.clone(),
        None => replay_binary(&binary)?,
    };
    let temp = tempfile::tempdir().map_err(|e| format!("create a temporary directory: {e}"))?;
    let data_dir = temp.path().join("data");
    let mut env = vec![
        ("OMS_SIMULATOR_MIX".to_owned(), options.fault_mix.clone()),
        (
            "OMS_RECONCILIATION_INTERVAL_MS".to_owned(),
            options.reconciliation_interval_ms.to_string(),
        ),
    ];
    if let Some(hang) = options.hang_ms {
        env.push(("OMS_SIMULATOR_HANG_MS".to_owned(), hang.to_string()));
    }
    env.extend(options.server_env.iter().cloned());
    let setup = Setup {
        binary,
        data_dir: data_dir.clone(),
        env,
        log: options.log.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("build the tokio runtime: {e}"))?;

    let server = Proc::start(&setup, 0)?;
    let token = read_token(&data_dir, "admin")?;
    let shared_addr = Arc::new(Mutex::new(server.addr));
    let pid = Arc::new(Mutex::new(server.pid()));
    let abort = Arc::new(AtomicBool::new(false));
    let _guard = Guard {
        pid: pid.clone(),
        abort: abort.clone(),
    };
    if options.verbose {
        eprintln!(
            "chaos: seed {}, {} cycles, {} clients, data {}, server {}",
            options.seed,
            options.cycles,
            options.clients,
            data_dir.display(),
            server.addr
        );
    }
    let clients = Arc::new(Clients {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| format!("build the HTTP client: {e}"))?,
        addr: shared_addr.clone(),
        token,
        stop_new: AtomicBool::new(false),
        counters: Counters::default(),
        acked: Mutex::new(Vec::new()),
        problems: Mutex::new(Vec::new()),
        command_deadline: options.command_deadline,
        run_id: format!("chaos{:x}", options.seed & 0xffff_ffff),
    });

    // The stopper thread owns the server while the clients run.
    let stopper_thread = {
        let (setup, replay_bin, options) = (setup.clone(), replay_bin.clone(), options.clone());
        let (addr, pid, abort) = (shared_addr.clone(), pid.clone(), abort.clone());
        std::thread::spawn(move || {
            let mut stops = Stops::default();
            let result = stopper(
                server,
                &setup,
                &replay_bin,
                &options,
                &addr,
                &pid,
                &abort,
                &mut stops,
            );
            (result, stops)
        })
    };

    let mut report = ChaosReport {
        seed: options.seed,
        cycles: options.cycles,
        ..ChaosReport::default()
    };
    let tail = Duration::from_millis(options.tail_ms);
    let workers: Vec<_> = (0..options.clients)
        .map(|w| {
            runtime.spawn(clients.clone().worker(
                w,
                options.max_quotes_per_client,
                Duration::from_millis(options.pause_ms),
            ))
        })
        .collect();
    let (stopped, stops) = runtime.block_on(async {
        let waited = tokio::task::spawn_blocking(move || stopper_thread.join()).await;
        tokio::time::sleep(tail).await;
        clients.stop_new.store(true, Ordering::SeqCst);
        for worker in workers {
            let _ = worker.await;
        }
        match waited {
            Ok(Ok(done)) => done,
            _ => (
                Err("the stopper thread panicked".to_owned()),
                Stops::default(),
            ),
        }
    });
    report.kills_sigkill = stops.sigkill;
    report.kills_sigterm = stops.sigterm;
    report.sigterm_unclean = stops.sigterm_unclean;
    report.restarts_on_new_port = stops.new_port;
    report.verify_failures_between_cycles = stops.verify_failures;
    for problem in stops.problems {
        report.problem(problem);
    }
    let mut server = stopped?;
    if let Ok(mut pid) = pid.lock() {
        *pid = server.pid();
    }
    let c = &clients.counters;
    report.commands_sent = c.sent.load(Ordering::Relaxed);
    report.commands_acked = c.acked.load(Ordering::Relaxed);
    report.commands_retried = c.retried.load(Ordering::Relaxed);
    report.attempts = c.attempts.load(Ordering::Relaxed);
    report.deduplicated_in_run = c.deduplicated.load(Ordering::Relaxed);
    report.commands_refused = c.refused.load(Ordering::Relaxed);
    report.commands_unanswered = c.unanswered.load(Ordering::Relaxed);
    report.internal_retries = c.internal.load(Ordering::Relaxed);
    if let Ok(problems) = clients.problems.lock() {
        for problem in problems.iter() {
            report.problem(problem.clone());
        }
    }
    let acked = clients.acked.lock().map(|a| a.clone()).unwrap_or_default();
    report.quotes = count(acked.iter().filter(|a| a.kind == Kind::Create));
    report.quotes_accepted = count(acked.iter().filter(|a| a.kind == Kind::Accept));
    if options.verbose {
        eprintln!(
            "chaos: run phase over after {:.1?}: {} commands sent, {} acked, {} retried, {} quotes accepted; quiet period",
            started.elapsed(),
            report.commands_sent,
            report.commands_acked,
            report.commands_retried,
            report.quotes_accepted
        );
    }

    runtime.block_on(async {
        settle(&clients, &acked, options, &mut report).await;
        check_acked(&clients, &acked, &mut report).await;
        resend(&clients, &acked, &mut report).await;
    });

    // The final stop is graceful; then the journal and oms-replay.
    if let Ok(mut pid) = pid.lock() {
        *pid = None;
    }
    match server.stop(Signal::Term) {
        Ok((status, forced)) if status.success() && !forced => {}
        Ok((status, forced)) => {
            report.sigterm_unclean += 1;
            report.problem(format!(
                "final SIGTERM stop ended {status} (forced: {forced}); stderr:\n{}",
                server.stderr_tail()
            ));
        }
        Err(e) => report.problem(format!("final stop: {e}")),
    }
    drop(server);
    match Journal::read(&data_dir.join(JOURNAL))? {
        None => report.journal_present = false,
        Some(journal) => {
            report.journal_present = true;
            report.effects = journal.effect_count();
            report.callbacks = journal.callbacks;
            report.journal_torn_lines = journal.torn_lines;
            report.duplicate_side_effects = journal.duplicate_side_effects();
            report.duplicate_notifications = journal.duplicate_notifications();
            report.duplicate_documents = journal.duplicate_documents();
            report.injected_rejections = journal.injected_rejections();
            report.genuine_callbacks_refused = count(journal.refused_callbacks.iter());
            report.duplicate_callback_deliveries = journal.duplicate_deliveries();
            for ((system, key), n) in journal.effects.iter().filter(|(_, n)| **n > 1) {
                report.problem(format!("{system} applied key {key} {n} times"));
            }
            for (system, key, message, status) in journal.refused_callbacks.iter().take(10) {
                report.problem(format!(
                    "{system} callback {message} for key {key} answered {status}"
                ));
            }
        }
    }
    let verified = match verify(&replay_bin, &data_dir) {
        Ok(()) => true,
        Err(e) => {
            report.problem(format!("final {e}"));
            false
        }
    };
    match event_counts(&replay_bin, &data_dir) {
        Ok((events, per_type)) => {
            report.events = events;
            report.outcomes_unknown = per_type.get("HandoffOutcomeUnknown").copied().unwrap_or(0);
        }
        Err(e) => report.problem(e),
    }
    report.read_models_equal_rebuild =
        match compare_with_rebuild(&replay_bin, &data_dir, &mut report) {
            Ok(equal) => equal,
            Err(e) => {
                report.problem(e);
                false
            }
        };
    report.verify_clean = verified && report.read_models_equal_rebuild;
    report.elapsed_s = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    if options.keep_on_failure && !report.failures().is_empty() {
        let kept = temp.keep();
        report.data_dir = Some(kept.join("data").display().to_string());
    }
    Ok(report)
}

fn count<T>(items: impl Iterator<Item = T>) -> u64 {
    u64::try_from(items.count()).unwrap_or(u64::MAX)
}

/// The demo tenant's token of `role`, from `demo-tokens.txt`.
fn read_token(data_dir: &Path, role: &str) -> Result<String, String> {
    let path = data_dir.join("demo-tokens.txt");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(r, _)| r.trim() == role)
        .map(|(_, token)| token.trim().to_owned())
        .ok_or_else(|| format!("no {role} token in {}", path.display()))
}

/// One order as the list shows it.
struct OrderRow {
    status: ops::orders::OrderStatus,
    has_fallout: bool,
    quote: String,
}

async fn list_orders(clients: &Clients) -> Result<Vec<OrderRow>, String> {
    let mut rows = Vec::new();
    let mut after = None;
    for _ in 0..10_000 {
        let page = clients
            .query::<ops::Orders>(ops::orders::Variables {
                status: None,
                has_fallout: None,
                first: Some(200),
                after: after.clone(),
            })
            .await?
            .orders;
        for node in page.nodes {
            rows.push(OrderRow {
                status: node.status,
                has_fallout: node.has_fallout,
                quote: node.quote_id,
            });
        }
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(cursor)) => after = Some(cursor),
            _ => break,
        }
    }
    Ok(rows)
}

async fn open_fallout(clients: &Clients) -> Result<u64, String> {
    let mut total = 0u64;
    let mut after = None;
    for _ in 0..10_000 {
        let page = clients
            .query::<ops::Fallout>(ops::fallout::Variables {
                resolved: None,
                first: Some(200),
                after: after.clone(),
            })
            .await?
            .fallout;
        total += count(page.nodes.iter());
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(cursor)) => after = Some(cursor),
            _ => break,
        }
    }
    Ok(total)
}

/// Pending handoffs (at most 200): how many, and a short description of each.
async fn pending_handoffs(clients: &Clients) -> Result<(u64, Vec<String>), String> {
    let page = clients
        .query::<ops::Handoffs>(ops::handoffs::Variables {
            pending_only: Some(true),
            first: Some(200),
        })
        .await?
        .handoffs;
    let described = page
        .nodes
        .iter()
        .map(|h| {
            let mut text = format!("{h:?}");
            if text.len() > 400 {
                let mut end = 400;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            format!("pending handoff {} (age {} ms): {text}", h.id, h.age_ms)
        })
        .collect();
    Ok((count(page.nodes.iter()), described))
}

/// The quiet period: polls until every accepted quote has an order, every
/// order is completed or has an open fallout case, and no handoff is
/// pending; or until the deadline.
async fn settle(
    clients: &Clients,
    acked: &[Acked],
    options: &ChaosOptions,
    report: &mut ChaosReport,
) {
    let started = Instant::now();
    let accepted: BTreeSet<&str> = acked
        .iter()
        .filter(|a| a.kind == Kind::Accept)
        .map(|a| a.quote.as_str())
        .collect();
    let mut last_print = Instant::now();
    loop {
        let orders = list_orders(clients).await;
        let pending = pending_handoffs(clients).await.map(|(n, _)| n);
        let done = match (&orders, &pending) {
            (Ok(orders), Ok(pending)) => {
                let with_order: BTreeSet<&str> = orders.iter().map(|o| o.quote.as_str()).collect();
                let open = orders
                    .iter()
                    .filter(|o| o.status != ops::orders::OrderStatus::COMPLETED && !o.has_fallout)
                    .count();
                let missing = accepted.iter().filter(|q| !with_order.contains(*q)).count();
                if options.verbose && last_print.elapsed() > Duration::from_secs(10) {
                    last_print = Instant::now();
                    eprintln!(
                        "chaos: quiet period {:.0?}: {} orders, {open} in progress, {missing} missing, {pending} handoffs pending",
                        started.elapsed(),
                        orders.len()
                    );
                }
                open == 0 && missing == 0 && *pending == 0
            }
            _ => false,
        };
        if done || started.elapsed() > options.settle_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1_000)).await;
    }
    report.settle_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match list_orders(clients).await {
        Ok(orders) => {
            report.orders = count(orders.iter());
            report.completed = count(
                orders
                    .iter()
                    .filter(|o| o.status == ops::orders::OrderStatus::COMPLETED),
            );
            report.orders_with_fallout = count(orders.iter().filter(|o| o.has_fallout));
            let stuck: Vec<&OrderRow> = orders
                .iter()
                .filter(|o| o.status != ops::orders::OrderStatus::COMPLETED && !o.has_fallout)
                .collect();
            report.stuck = count(stuck.iter());
            for order in stuck.iter().take(10) {
                report.problem(format!(
                    "stuck order of quote {}: {:?}",
                    order.quote, order.status
                ));
            }
            let with_order: BTreeSet<&str> = orders.iter().map(|o| o.quote.as_str()).collect();
            let missing: Vec<&&str> = accepted
                .iter()
                .filter(|q| !with_order.contains(**q))
                .collect();
            report.orders_missing = count(missing.iter());
            for quote in missing.iter().take(10) {
                report.problem(format!("accepted quote {quote} has no order"));
            }
        }
        Err(e) => report.problem(format!("cannot list orders: {e}")),
    }
    match pending_handoffs(clients).await {
        Ok((n, described)) => {
            report.pending_handoffs = n;
            for text in described.into_iter().take(5) {
                report.problem(text);
            }
        }
        Err(e) => report.problem(format!("cannot list pending handoffs: {e}")),
    }
    match open_fallout(clients).await {
        Ok(n) => report.fallout = n,
        Err(e) => report.problem(format!("cannot list the fallout queue: {e}")),
    }
}

/// Every acknowledged command's effect must be visible in its quote.
async fn check_acked(clients: &Clients, acked: &[Acked], report: &mut ChaosReport) {
    let mut by_quote: BTreeMap<&str, Vec<&Acked>> = BTreeMap::new();
    for a in acked {
        by_quote.entry(a.quote.as_str()).or_default().push(a);
    }
    let mut reads = futures_util::stream::iter(by_quote)
        .map(|(quote, commands)| async move {
            let seen = clients
                .query::<ops::Quote>(ops::quote::Variables {
                    id: quote.to_owned(),
                })
                .await;
            (quote, commands, seen)
        })
        .buffer_unordered(RESEND_CONCURRENCY);
    while let Some((quote, commands, seen)) = reads.next().await {
        let detail = match seen {
            Ok(data) => data.quote,
            Err(e) => {
                report.acked_lost += count(commands.iter());
                report.problem(format!("quote {quote} cannot be read: {e}"));
                continue;
            }
        };
        for command in commands {
            let lost = match &detail {
                None => Some("the quote does not exist".to_owned()),
                Some(q) => {
                    let version = q.version;
                    let lines: Option<Vec<&str>> = q
                        .lines
                        .as_ref()
                        .map(|lines| lines.iter().map(|l| l.line_id.as_str()).collect());
                    if version < command.outcome.version {
                        Some(format!(
                            "the quote is at version {version:?}, the command was acked at {}",
                            command.outcome.version
                        ))
                    } else if command.kind == Kind::Accept
                        && !matches!(q.status, ops::quote::QuoteStatus::ACCEPTED)
                    {
                        Some(format!("the quote is {:?}", q.status))
                    } else if let Some(line) = &command.line {
                        let on_quote = lines
                            .as_ref()
                            .is_some_and(|lines| lines.contains(&line.as_str()));
                        (!on_quote).then(|| format!("line {line} is not on the quote"))
                    } else {
                        None
                    }
                }
            };
            if let Some(why) = lost {
                report.acked_lost += 1;
                report.problem(format!(
                    "acked {} {} on quote {quote} lost: {why}",
                    command.kind.field(),
                    command.command_id
                ));
            }
        }
    }
}

/// Sends every acknowledged command once more: each must be answered with
/// its first outcome (`deduplicated: true`, same id and version).
async fn resend(clients: &Clients, acked: &[Acked], report: &mut ChaosReport) {
    // (mutation, what went wrong) -> (count, an example command id)
    let mut grouped: BTreeMap<(&'static str, String), (u64, String)> = BTreeMap::new();
    // A pool of concurrent senders: a slow answer holds only its own slot.
    let mut answers = futures_util::stream::iter(acked)
        .map(|command| async move {
            let answer = clients.send(command.kind, &command.body, false).await;
            (command, answer)
        })
        .buffer_unordered(RESEND_CONCURRENCY);
    while let Some((command, answer)) = answers.next().await {
        let first = &command.outcome;
        let problem = match answer {
            Answer::Ok(again)
                if again.deduplicated && again.id == first.id && again.version == first.version =>
            {
                None
            }
            Answer::Ok(again) if again.deduplicated => Some(format!(
                "deduplicated with another outcome (id {}, version {}) than its first (id {}, version {})",
                again.id, again.version, first.id, first.version
            )),
            Answer::Ok(_) => Some("applied again (deduplicated: false)".to_owned()),
            Answer::Refused(e) => Some(format!("refused: {e}")),
            Answer::Unanswered(e) => Some(format!("unanswered: {e}")),
        };
        if let Some(problem) = problem {
            report.retry_refused += 1;
            grouped
                .entry((command.kind.field(), problem))
                .or_insert((0, command.command_id.clone()))
                .0 += 1;
        }
    }
    for ((field, problem), (n, example)) in grouped {
        report.problem(format!(
            "re-sent acknowledged {field} x{n} (e.g. command id {example}): {problem}"
        ));
    }
}
