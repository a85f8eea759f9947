//! The fulfillment process, wired: the policy consumer, the dispatcher,
//! the handoff index, the parked-callback applier and the reconciliation
//! loop, all on the current tokio runtime, all resuming from their
//! checkpoints after a restart.
//!
//! ```no_run
//! # async fn demo(path: application::CommandPath, config: integration::config::SystemsConfig, tenant: domain::ids::TenantId) -> Result<(), Box<dyn std::error::Error>> {
//! use integration::fulfillment::{Fulfillment, FulfillmentOptions};
//!
//! let fulfillment = Fulfillment::start(path, config, FulfillmentOptions::default())?;
//! let app = integration::callbacks::router(fulfillment.callback_inbox());
//! # let _ = app;
//! let report = fulfillment.trigger_reconciliation(&tenant).await?;
//! println!("checked {}", report.checked);
//! fulfillment.shutdown().await;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::ids::{HandoffId, StreamRef, TenantId};
use eventlog::{ConsumerBatch, EventLog, LogError, RecordedEvent};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::callbacks::CallbackInbox;
use crate::config::{ConfigError, SystemsConfig};
use crate::dispatcher::{DispatchShared, Dispatcher};
use crate::evidence::{EvidenceRecord, EvidenceStore};
use crate::external::{HandoffPort, HttpSystems};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::reconciliation::{
    run_loop, HandoffIndex, ReconcileError, Reconciler, ReconciliationReport, Scope, INDEX_NAME,
};
use application::clock::{system_clock, SharedClock};
use application::command::CommandPath;
use application::consumer::{
    self, Consumer, ConsumerOptions, ConsumerProbe, ConsumerStatus, Halt, Session,
};
use application::events::decode_handoff;
use application::process::ProcessManager;

/// Tuning of [`Fulfillment::start`].
#[derive(Clone)]
pub struct FulfillmentOptions {
    /// The clock (the system clock by default).
    pub clock: SharedClock,
    /// A port to use instead of HTTP clients built from the configuration
    /// (tests).
    pub port: Option<Arc<dyn HandoffPort>>,
    /// Concurrent external calls.
    pub dispatch_concurrency: usize,
    /// Concurrent streams the process manager writes to.
    pub process_concurrency: usize,
    /// Events read per batch.
    pub batch_size: usize,
    /// How often parked callbacks are retried, in ms.
    pub park_sweep_ms: u64,
    /// Run the scheduled reconciliation loop (operators can always trigger).
    pub reconciliation_loop: bool,
    /// The counters the process reports to. They belong to the caller, so a
    /// process stopped and started again with the same options (an operator
    /// resetting a consumer) keeps counting where it was.
    pub metrics: Arc<Metrics>,
}

impl Default for FulfillmentOptions {
    fn default() -> Self {
        Self {
            clock: system_clock(),
            port: None,
            dispatch_concurrency: 64,
            process_concurrency: 32,
            batch_size: 256,
            park_sweep_ms: 1_000,
            reconciliation_loop: true,
            metrics: Arc::new(Metrics::default()),
        }
    }
}

impl std::fmt::Debug for FulfillmentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FulfillmentOptions")
            .field("dispatch_concurrency", &self.dispatch_concurrency)
            .field("process_concurrency", &self.process_concurrency)
            .field("batch_size", &self.batch_size)
            .field("park_sweep_ms", &self.park_sweep_ms)
            .field("reconciliation_loop", &self.reconciliation_loop)
            .finish_non_exhaustive()
    }
}

/// Why the process could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FulfillmentError {
    /// The systems table is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The log's database could not be opened for the consumers.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The process's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FulfillmentStatus {
    /// Every consumer.
    pub consumers: Vec<ConsumerStatus>,
    /// Callbacks waiting for their handoff.
    pub parked_callbacks: usize,
    /// The same, by the tenant each is for.
    pub parked_by_tenant: std::collections::BTreeMap<String, usize>,
    /// False once shut down.
    pub running: bool,
}

/// The running fulfillment process.
pub struct Fulfillment {
    path: CommandPath,
    metrics: Arc<Metrics>,
    inbox: CallbackInbox,
    reconciler: Reconciler,
    evidence: EvidenceStore,
    consumers: Vec<ConsumerProbe>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Fulfillment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fulfillment").finish_non_exhaustive()
    }
}

impl Fulfillment {
    /// Validates `config` and spawns every task on the current runtime.
    ///
    /// # Errors
    /// An invalid configuration, or a storage error opening the consumers.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn start(
        path: CommandPath,
        config: SystemsConfig,
        options: FulfillmentOptions,
    ) -> Result<Self, FulfillmentError> {
        config.validate()?;
        let config = Arc::new(config);
        let clock = options.clock.clone();
        let metrics = options.metrics.clone();
        let port: Arc<dyn HandoffPort> = match options.port.clone() {
            Some(port) => port,
            None => Arc::new(HttpSystems::from_config(&config, clock.clone())?),
        };
        let log = path.log().clone();
        let evidence = EvidenceStore::open(&log)?;
        let inbox =
            CallbackInbox::new(path.clone(), config.clone(), metrics.clone(), clock.clone())?;
        let reconciler = Reconciler::new(
            path.clone(),
            port.clone(),
            config.clone(),
            metrics.clone(),
            clock.clone(),
            evidence.clone(),
        )?;
        let process = ConsumerProbe::new(log.consumer(application::process::NAME)?);
        let dispatcher = ConsumerProbe::new(log.consumer(crate::dispatcher::NAME)?);
        let index = ConsumerProbe::new(log.consumer(INDEX_NAME)?);
        let unparker = ConsumerProbe::new(log.consumer(UNPARKER_NAME)?);
        log.consumer(crate::dispatcher::NAME)?
            .declare_side_effects()?;
        let (stop, stop_rx) = watch::channel(false);
        let batch = |batch_size| ConsumerOptions {
            batch_size,
            ..ConsumerOptions::default()
        };
        let mut tasks = vec![tokio::spawn(
            ProcessManager {
                path: path.clone(),
                counters: metrics.policy.clone(),
                batch_size: options.batch_size,
                concurrency: options.process_concurrency,
                capabilities: {
                    let config = config.clone();
                    Arc::new(move |tenant: &str| config.capabilities(tenant))
                },
            }
            .run(process.clone(), stop_rx.clone()),
        )];
        tasks.push(tokio::spawn(consumer::run(
            log.clone(),
            dispatcher.clone(),
            Dispatcher {
                shared: Arc::new(DispatchShared {
                    path: path.clone(),
                    port,
                    config: config.clone(),
                    metrics: metrics.clone(),
                    clock: clock.clone(),
                    evidence: evidence.clone(),
                }),
                store: log.consumer(crate::dispatcher::NAME)?,
                permits: Arc::new(Semaphore::new(options.dispatch_concurrency.max(1))),
            },
            crate::dispatcher::consumer_options(options.batch_size),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(consumer::run(
            log.clone(),
            index.clone(),
            HandoffIndex {
                store: log.consumer(INDEX_NAME)?,
            },
            batch(options.batch_size),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(consumer::run(
            log.clone(),
            unparker.clone(),
            Unparker {
                inbox: inbox.clone(),
                log: log.clone(),
            },
            batch(512),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(sweep_parked(
            inbox.clone(),
            options.park_sweep_ms,
            stop_rx.clone(),
        )));
        if options.reconciliation_loop {
            tasks.push(tokio::spawn(run_loop(
                reconciler.clone(),
                config.reconciliation.interval_ms,
                stop_rx,
            )));
        }
        Ok(Self {
            path,
            metrics,
            inbox,
            reconciler,
            evidence,
            consumers: vec![process, dispatcher, index, unparker],
            stop,
            tasks: Mutex::new(tasks),
        })
    }

    /// The callback inbox, for [`crate::callbacks::router`].
    pub fn callback_inbox(&self) -> CallbackInbox {
        self.inbox.clone()
    }

    /// The reconciler (to read stored runs).
    pub fn reconciler(&self) -> &Reconciler {
        &self.reconciler
    }

    /// Runs reconciliation now over `tenant`'s open handoffs (an
    /// operator's trigger; the operator's tenant comes from the
    /// credential): no other tenant's handoff is checked or reported.
    ///
    /// # Errors
    /// [`ReconcileError`] when the index cannot be read.
    pub async fn trigger_reconciliation(
        &self,
        tenant: &TenantId,
    ) -> Result<ReconciliationReport, ReconcileError> {
        self.reconciler
            .run("operator", Scope::Tenant(tenant.as_str()))
            .await
    }

    /// The counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// A labelled copy of the counters.
    pub fn metrics_snapshot(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Every call and status query made for one handoff, redacted.
    ///
    /// # Errors
    /// A storage error.
    pub fn evidence(&self, handoff_id: &HandoffId) -> Result<Vec<EvidenceRecord>, LogError> {
        self.evidence.for_handoff(handoff_id)
    }

    /// Each consumer's state, checkpoint, lag, work in flight and failure.
    pub fn status(&self) -> FulfillmentStatus {
        let head = self.path.log().next_position();
        FulfillmentStatus {
            consumers: self.consumers.iter().map(|c| c.status(head)).collect(),
            parked_callbacks: self.inbox.parked_count(),
            parked_by_tenant: self.inbox.parked_by_tenant(),
            running: !*self.stop.borrow(),
        }
    }

    /// Stops taking work, lets calls in flight finish, commits checkpoints
    /// and returns.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// The callback unparker's consumer name.
pub const UNPARKER_NAME: &str = "callback-unparker";

/// The names of the log consumers the fulfillment process runs: the
/// process manager, the dispatcher (side effects), the handoff index and
/// the callback unparker. A tool that writes a history the fulfillment
/// policy already reacted to (a seeded benchmark) moves these checkpoints
/// to the head so nothing is reacted to twice.
pub const CONSUMERS: [&str; 4] = [
    application::process::NAME,
    crate::dispatcher::NAME,
    INDEX_NAME,
    UNPARKER_NAME,
];

/// Applies parked callbacks when their handoff is sent. It needs no
/// history: each session starts at the log's head, after the sweep at
/// start ([`sweep_parked`]) applied what the past allows.
struct Unparker {
    inbox: CallbackInbox,
    log: EventLog,
}

impl Consumer for Unparker {
    fn begin(&mut self, session: &Session) -> impl Future<Output = Result<u64, Halt>> + Send {
        let head = self.log.next_position().max(session.checkpoint());
        async move { Ok(head) }
    }

    async fn handle(
        &mut self,
        batch: Vec<RecordedEvent>,
        _session: &mut Session,
    ) -> Result<ConsumerBatch, Halt> {
        let sent = batch.iter().any(|record| {
            record.event_type == "HandoffSent"
                && matches!(
                    StreamRef::parse(&record.stream_id),
                    Ok(StreamRef::Handoff(id)) if self.inbox.has_parked(&id)
                )
                && decode_handoff(record).is_ok()
        });
        if sent {
            if let Err(e) = self.inbox.apply_parked().await {
                tracing::warn!(error = %e, "applying parked callbacks failed");
            }
        }
        Ok(ConsumerBatch::default())
    }
}

/// Applies parked callbacks at start and sweeps them periodically
/// (covering a park that raced with the handoff's creation, and expiry).
async fn sweep_parked(inbox: CallbackInbox, sweep_ms: u64, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(sweep_ms.max(10)));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                if inbox.parked_count() > 0 {
                    if let Err(e) = inbox.apply_parked().await {
                        tracing::warn!(error = %e, "parked callbacks sweep failed");
                    }
                }
            }
        }
    }
}
