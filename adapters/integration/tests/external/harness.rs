//! A fulfillment process over a fresh log, the simulators, and a callback
//! server on a loopback port; plus quote acceptance and waiting helpers.

use std::time::{Duration, Instant};

use application::command::CommandPath;
use domain::handoff::{HandoffState, HandoffStatus, HandoffSubject};
use domain::idempotency::Purpose;
use domain::ids::{handoff_stream, order_stream, OrderId};
use domain::order::{LineProgress, OrderCommand, OrderState};
use domain::testing::fixtures::tenant;
use domain::{HandoffDecider, OrderDecider};
use eventlog::{Durability, EventLog, LogConfig};
use integration::callbacks;
use integration::config::SystemsConfig;
use integration::fulfillment::{Fulfillment, FulfillmentOptions};
use simulators::{SigningKeys, SimulatorOptions, Simulators};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "test-callback-secret-0001";
pub const OTHER_SECRET: &str = "other-tenant-secret-0002";

pub struct Options {
    pub callbacks: bool,
    pub reconciliation_loop: bool,
    pub interval_ms: u64,
    pub sla_ms: u64,
    pub read_timeout_ms: u64,
    pub hang_ms: u64,
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    pub circuit_threshold: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            callbacks: true,
            reconciliation_loop: false,
            interval_ms: 200,
            sla_ms: 1_500,
            read_timeout_ms: 1_000,
            hang_ms: 1_600,
            retry_base_ms: 50,
            max_attempts: 5,
            circuit_threshold: 50,
        }
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub path: CommandPath,
    pub sims: Simulators,
    pub fulfillment: Option<Fulfillment>,
    pub config: SystemsConfig,
    pub options: Options,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

pub fn config_for(sims: &Simulators, options: &Options) -> SystemsConfig {
    let mut config = sims.systems_config(&["t1"], SECRET);
    // A second tenant with its own secret (tenant mismatch tests).
    let other = sims.systems_config(&["t2"], OTHER_SECRET);
    config.tenants.extend(other.tenants);
    for systems in config.tenants.values_mut() {
        for system in systems.systems.values_mut() {
            system.connect_timeout_ms = 100;
            system.read_timeout_ms = options.read_timeout_ms;
            system.sla_ms = options.sla_ms;
            system.retry.base_ms = options.retry_base_ms;
            system.retry.max_ms = options.retry_base_ms * 8;
            system.retry.max_attempts = options.max_attempts;
            system.retry.circuit_failure_threshold = options.circuit_threshold;
            system.retry.circuit_open_ms = 300;
        }
    }
    config.reconciliation.interval_ms = options.interval_ms;
    config
}

impl Harness {
    pub async fn start(options: Options) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let log =
            EventLog::open(LogConfig::new(dir.path()).durability(Durability::Buffered)).unwrap();
        let path = CommandPath::new(log);
        let sims = Simulators::start(SimulatorOptions {
            hang_ms: options.hang_ms,
            ..SimulatorOptions::default()
        })
        .await
        .unwrap();
        let config = config_for(&sims, &options);
        let mut harness = Harness {
            dir,
            path,
            sims,
            fulfillment: None,
            config,
            options,
            server: None,
        };
        harness.start_fulfillment().await;
        harness
    }

    pub async fn start_fulfillment(&mut self) {
        let fulfillment = Fulfillment::start(
            self.path.clone(),
            self.config.clone(),
            FulfillmentOptions {
                reconciliation_loop: self.options.reconciliation_loop,
                park_sweep_ms: 100,
                ..FulfillmentOptions::default()
            },
        )
        .unwrap();
        if self.options.callbacks {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let app = callbacks::router(fulfillment.callback_inbox());
            let (tx, rx) = oneshot::channel::<()>();
            let handle = tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
            self.server = Some((tx, handle));
            self.sims
                .set_callback_target(url, SigningKeys::from_config(&self.config));
        }
        self.fulfillment = Some(fulfillment);
    }

    pub fn fulfillment(&self) -> &Fulfillment {
        self.fulfillment.as_ref().unwrap()
    }

    pub async fn stop_fulfillment(&mut self) {
        if let Some((tx, handle)) = self.server.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(3), handle).await;
        }
        if let Some(f) = self.fulfillment.take() {
            f.shutdown().await;
        }
    }

    pub async fn stop(mut self) {
        self.stop_fulfillment().await;
        self.sims.clear_callback_target();
        let Harness {
            sims, path, dir, ..
        } = self;
        sims.shutdown().await;
        path.log().close().await;
        drop(dir);
    }

    /// Drives quote `quote` with `lines` to acceptance; returns the order id
    /// the process will capture.
    pub async fn accept_quote(&self, quote: &str, lines: &[&str]) -> OrderId {
        accept_quote(&self.path, quote, lines).await
    }

    pub fn order(&self, order: &OrderId) -> OrderState {
        self.path
            .load::<OrderDecider>(&order_stream(order))
            .unwrap()
            .state
    }

    pub fn handoff(&self, subject: &HandoffSubject) -> HandoffState {
        self.path
            .load::<HandoffDecider>(&handoff_stream(&subject.handoff_id()))
            .unwrap()
            .state
    }

    /// Waits until `pred` holds for the order (or panics after `secs`).
    pub async fn wait_order(
        &self,
        order: &OrderId,
        secs: u64,
        what: &str,
        pred: impl Fn(&OrderState) -> bool,
    ) -> OrderState {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let state = self.order(order);
            if pred(&state) {
                return state;
            }
            if Instant::now() > deadline {
                panic!(
                    "order {order} never became {what}: {state:#?}\nstatus: {:#?}",
                    self.fulfillment().status()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn wait_handoff(
        &self,
        subject: &HandoffSubject,
        secs: u64,
        what: &str,
        pred: impl Fn(&HandoffState) -> bool,
    ) -> HandoffState {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let state = self.handoff(subject);
            if pred(&state) {
                return state;
            }
            if Instant::now() > deadline {
                panic!("handoff never became {what}: {state:#?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs an operator's `command` on `order` of tenant t1, keyed by
    /// `command_id`; panics when it is refused.
    pub async fn operate(&self, order: &OrderId, command: OrderCommand, command_id: &str) {
        self.path
            .execute::<OrderDecider>(
                &order_stream(order),
                &command,
                &application::CommandContext::new(
                    domain::idempotency::CommandKey::client(
                        &domain::ids::TenantId::new("t1"),
                        command_id,
                    ),
                    "t1",
                    "corr-ops",
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("{command:?}: {e:?}"));
    }

    pub async fn completed(&self, order: &OrderId, secs: u64) -> OrderState {
        self.wait_order(order, secs, "completed", |s| {
            matches!(s, OrderState::Completed(_))
        })
        .await
    }
}

pub fn subject(order: &OrderId, line: &str, purpose: Purpose, attempt: u32) -> HandoffSubject {
    HandoffSubject {
        tenant_id: tenant(),
        order_id: order.clone(),
        line_id: domain::ids::LineId::new(line),
        target: purpose.target(),
        purpose,
        attempt,
    }
}

/// The handoff's status, or `None` before it is requested.
pub fn status_of(state: &HandoffState) -> Option<HandoffStatus> {
    match state {
        HandoffState::Open(h) => Some(h.status.clone()),
        HandoffState::Empty => None,
    }
}

/// Whether the handoff succeeded.
pub fn succeeded(state: &HandoffState) -> bool {
    status_of(state) == Some(HandoffStatus::Succeeded)
}

impl Harness {
    /// Runs an operator's reconciliation and returns what it found for the
    /// handoff of `subject` (panics when the run did not check it).
    pub async fn reconcile(
        &self,
        subject: &HandoffSubject,
    ) -> integration::reconciliation::ReconciliationResult {
        let report = self
            .fulfillment()
            .trigger_reconciliation(&tenant())
            .await
            .unwrap();
        report
            .entries
            .iter()
            .find(|e| e.handoff_id == subject.handoff_id().as_str())
            .unwrap_or_else(|| panic!("{report:#?}"))
            .result
    }
}

pub fn line_in_fallout(state: &OrderState, line_id: &str) -> bool {
    match state {
        OrderState::Open(order) => order.lines.iter().any(|l| {
            l.line_id().as_str() == line_id && matches!(l.progress, LineProgress::Fallout { .. })
        }),
        _ => false,
    }
}

pub async fn accept_quote(path: &CommandPath, quote: &str, lines: &[&str]) -> OrderId {
    application::testing::accept_sample_quote(path, "t1", quote, lines)
        .await
        .unwrap()
}
