//! The external-system runtime as the server wires it: CRM lookups, the
//! fulfillment process (policy, dispatcher, parked callbacks,
//! reconciliation), the callback route and, on the embedded default, the
//! in-process simulators every tenant's systems point at.

use std::net::SocketAddr;
use std::sync::Arc;

use application::consumer::ConsumerStatus;
use application::metrics::encode_family;
use application::CommandPath;
use axum::Router;
use domain::ids::{CustomerId, TenantId};
use integration::{
    CrmError, CustomerDirectory, Fulfillment, FulfillmentOptions, HttpCustomerDirectory,
    SystemsConfig,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use rand::RngCore;
use relay::Relay;
use simulators::{Fault, Script, SigningKeys};
use simulators::{SimulatorOptions, Simulators};
use tokio::sync::{watch, Mutex};

use crate::config::ServerConfig;
use crate::graphql::error::{ApiError, ApiResult};
use crate::platform::{BoxFuture, ConsumerReport, ConsumerReset, FulfillmentControl};

/// The directory, in the data directory, where the in-process simulators
/// keep their journal of effects.
pub const SIMULATOR_JOURNAL_DIR: &str = "simulators";

/// The started runtime.
pub struct External {
    /// CRM lookups (customer validation at quote creation).
    pub customers: Arc<dyn CustomerDirectory>,
    /// Proposal rendering (`generateProposal`).
    pub documents: Arc<dyn integration::DocumentGenerator>,
    /// Operator controls.
    pub control: Arc<dyn FulfillmentControl>,
    /// The runtime's `/metrics` figures, read at each scrape.
    pub metrics: Arc<dyn Collector>,
    /// `POST /callbacks/{system}`.
    pub routes: Router,
    /// The systems table in force (configured and simulated), whose
    /// capability registry the quote flow decides with.
    pub systems: Arc<SystemsConfig>,
    inner: Arc<Inner>,
}

struct Inner {
    path: CommandPath,
    systems: SystemsConfig,
    options: FulfillmentOptions,
    /// Serialises stopping and restarting the process.
    lifecycle: Mutex<()>,
    /// The running process (`None` once shut down).
    current: std::sync::RwLock<Option<Arc<Fulfillment>>>,
    simulators: Mutex<Option<Simulators>>,
    relay: Option<Relay>,
    /// Stops the quote-expiry timers and their ticker.
    expiry: watch::Sender<bool>,
    expiry_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl External {
    /// Tells the simulators where to send signed callbacks.
    pub async fn listening(&self, address: SocketAddr) {
        if let Some(simulators) = self.inner.simulators.lock().await.as_ref() {
            simulators.set_callback_target(
                format!("http://{address}"),
                SigningKeys::from_config(&self.inner.systems),
            );
        }
    }

    /// Stops the fulfillment process after its in-flight calls, then the
    /// simulators.
    pub async fn shutdown(&self) {
        let _lifecycle = self.inner.lifecycle.lock().await;
        if let Some(fulfillment) = self.inner.take_current() {
            fulfillment.shutdown().await;
        }
        if let Some(relay) = &self.inner.relay {
            relay.shutdown().await;
        }
        let _ = self.inner.expiry.send(true);
        for task in std::mem::take(&mut *self.inner.expiry_tasks.lock().await) {
            let _ = task.await;
        }
        if let Some(simulators) = self.inner.simulators.lock().await.take() {
            simulators.shutdown().await;
        }
    }
}

/// The tenants the runtime serves: the configured ones, or the demo tenant.
fn tenant_ids(config: &ServerConfig) -> Vec<String> {
    if config.tenants.is_empty() {
        vec![crate::credentials::DEMO_TENANT.to_owned()]
    } else {
        config.tenants.keys().cloned().collect()
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Starts the runtime for `config`: the simulators when configured (and
/// every tenant without an explicit systems table pointed at them), the
/// CRM directory and the fulfillment process.
///
/// # Errors
/// A message naming what could not start.
pub async fn start(config: &ServerConfig, path: CommandPath) -> Result<External, String> {
    let mut systems = config.systems.clone();
    let simulators = if config.simulators {
        let options = simulator_options(config)?;
        let simulators = Simulators::start(options)
            .await
            .map_err(|e| format!("simulators: {e}"))?;
        let secret = random_secret();
        // A tenant whose table lists capabilities but no system still gets
        // the simulated systems.
        let missing: Vec<String> = tenant_ids(config)
            .into_iter()
            .filter(|t| systems.tenants.get(t).is_none_or(|s| s.systems.is_empty()))
            .collect();
        let refs: Vec<&str> = missing.iter().map(String::as_str).collect();
        let mut simulated = simulators.systems_config(&refs, &secret);
        for system in simulated
            .tenants
            .values_mut()
            .flat_map(|t| t.systems.values_mut())
        {
            config.simulator.apply(system);
        }
        for (tenant, simulated) in simulated.tenants {
            systems
                .tenants
                .entry(tenant)
                .or_default()
                .systems
                .extend(simulated.systems);
        }
        Some(simulators)
    } else {
        None
    };
    systems.reconciliation.interval_ms = config.reconciliation_interval_ms;
    systems
        .validate()
        .map_err(|e| format!("configuration key `systems`: {e}"))?;
    let options = FulfillmentOptions::default();
    let customers = HttpCustomerDirectory::from_config(&systems, options.clock.clone())
        .map_err(|e| format!("configuration key `systems`: {e}"))?;
    let documents = integration::HttpDocumentGenerator::from_config(&systems)
        .map_err(|e| format!("configuration key `systems`: {e}"))?;
    let fulfillment = Arc::new(
        Fulfillment::start(path.clone(), systems.clone(), options.clone())
            .map_err(|e| format!("fulfillment: {e}"))?,
    );
    let routes = integration::callbacks::router(fulfillment.callback_inbox());
    let relay = Relay::start_if_enabled(path.log().clone(), config.relay.clone())
        .await
        .map_err(|e| format!("relay: {e}"))?;
    let (expiry, expiry_rx) = watch::channel(false);
    let (_, expiry_tasks) = application::expiry::QuoteExpiry::spawn(
        path.log(),
        path.clone(),
        options.clock.clone(),
        &application::expiry::ExpiryOptions {
            interval_ms: config.quote_expiry_interval_ms,
            ..application::expiry::ExpiryOptions::default()
        },
        expiry_rx,
    )
    .map_err(|e| format!("quote expiry: {e}"))?;
    let table = Arc::new(systems.clone());
    let inner = Arc::new(Inner {
        path,
        systems,
        options,
        lifecycle: Mutex::new(()),
        current: std::sync::RwLock::new(Some(fulfillment)),
        simulators: Mutex::new(simulators),
        relay,
        expiry,
        expiry_tasks: Mutex::new(expiry_tasks),
    });
    Ok(External {
        customers: Arc::new(customers),
        documents: Arc::new(documents),
        control: Arc::new(Control {
            inner: inner.clone(),
        }),
        metrics: Arc::new(RuntimeMetrics {
            inner: inner.clone(),
        }),
        routes,
        systems: table,
        inner,
    })
}

impl Inner {
    /// Takes the running process out, so nothing new reaches it.
    fn take_current(&self) -> Option<Arc<Fulfillment>> {
        self.current.write().ok().and_then(|mut c| c.take())
    }
}

/// The runtime's figures, read at each scrape: the adapters' counters
/// (kept across restarts of the process), the relay's status, and the one
/// `oms_consumer_lag_events` family of every consumer (the relay's and the
/// fulfillment process's).
struct RuntimeMetrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RuntimeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeMetrics").finish_non_exhaustive()
    }
}

impl Collector for RuntimeMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.inner
            .options
            .metrics
            .snapshot()
            .encode_metrics(&mut encoder)?;
        let relay = self.inner.relay.as_ref().map(Relay::status);
        if let Some(status) = &relay {
            status.encode_metrics(&mut encoder)?;
        }
        let current = self.inner.current.read().ok().and_then(|c| c.clone());
        let consumers = current.map(|f| f.status().consumers).unwrap_or_default();
        let lags = relay
            .iter()
            .map(|r| (r.name.as_str(), r.lag))
            .chain(consumers.iter().map(|c| (c.name.as_str(), c.lag)))
            .map(|(name, lag)| ([("consumer", name)], ConstGauge::new(lag)));
        encode_family(
            &mut encoder,
            "oms_consumer_lag_events",
            "Events each consumer of the log is behind its head.",
            lags,
        )?;
        encode_consumer_status(&mut encoder, &consumers)
    }
}

/// The one consumer loop's live figures of the fulfillment process's
/// consumers: jobs in flight, sessions retried, and the state (one sample
/// per consumer, labelled with its state, value 1).
fn encode_consumer_status(
    encoder: &mut DescriptorEncoder<'_>,
    consumers: &[ConsumerStatus],
) -> Result<(), std::fmt::Error> {
    encode_family(
        encoder,
        "oms_consumer_in_flight",
        "Jobs each consumer spawned that have not finished.",
        consumers.iter().map(|c| {
            (
                [("consumer", c.name.as_str())],
                ConstGauge::new(c.in_flight),
            )
        }),
    )?;
    encode_family(
        encoder,
        "oms_consumer_retries",
        "Sessions each consumer restarted from its checkpoint after a failure.",
        consumers.iter().map(|c| {
            (
                [("consumer", c.name.as_str())],
                ConstCounter::new(c.retries),
            )
        }),
    )?;
    encode_family(
        encoder,
        "oms_consumer_state",
        "Each consumer's state (starting, running, recovering, retrying, poisoned, stopped).",
        consumers.iter().map(|c| {
            (
                [("consumer", c.name.as_str()), ("state", c.state.as_str())],
                ConstGauge::new(1u64),
            )
        }),
    )
}

struct Control {
    inner: Arc<Inner>,
}

impl Control {
    /// The running process, read without waiting (a status report).
    fn current(&self) -> Option<Arc<Fulfillment>> {
        self.inner.current.read().ok().and_then(|c| c.clone())
    }

    /// The running process once no stop or restart is under way: a
    /// request that arrives during a consumer reset waits for the restart
    /// rather than finding no process. A process that is not running after
    /// that (the server is shutting down, or a restart failed) is a
    /// retryable `UNAVAILABLE`, never `INTERNAL`: the caller did nothing
    /// wrong.
    async fn settled(&self) -> ApiResult<Arc<Fulfillment>> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        self.current().ok_or_else(not_running)
    }
}

/// The refusal of a request that needs the fulfillment process while it
/// is not running.
fn not_running() -> ApiError {
    ApiError::Unavailable {
        system: "fulfillment",
        detail: "the fulfillment process is not running".to_owned(),
    }
}

impl FulfillmentControl for Control {
    fn reconcile<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> BoxFuture<'a, ApiResult<integration::ReconciliationReport>> {
        Box::pin(async move {
            self.settled()
                .await?
                .trigger_reconciliation(tenant)
                .await
                .map_err(ApiError::internal)
        })
    }

    fn consumers(&self) -> ConsumerReport {
        ConsumerReport {
            fulfillment: self.current().map(|f| f.status()),
            relay: self.inner.relay.as_ref().map(Relay::status),
        }
    }

    fn script_simulator<'a>(
        &'a self,
        tenant: &'a TenantId,
        system: &'a str,
        faults: &'a [String],
    ) -> BoxFuture<'a, ApiResult<()>> {
        Box::pin(async move {
            let target = integration::config::parse_system(system)
                .ok_or_else(|| ApiError::validation("system", format!("no system `{system}`")))?;
            let faults = faults
                .iter()
                .map(|name| {
                    name.parse::<Fault>()
                        .map_err(|e| ApiError::validation("faults", e.to_string()))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            if let Some(fault) = faults.iter().find(|f| !f.plays_on(target)) {
                let plays: Vec<&str> = Fault::ALL
                    .iter()
                    .filter(|f| f.plays_on(target))
                    .map(|f| f.name())
                    .collect();
                return Err(ApiError::validation(
                    "faults",
                    format!(
                        "the {system} simulator cannot play `{fault}`; it plays {}",
                        plays.join(", ")
                    ),
                ));
            }
            let simulators = self.inner.simulators.lock().await;
            let simulators = simulators.as_ref().ok_or_else(|| {
                ApiError::validation(
                    "system",
                    "the simulators are not running (simulators = false)",
                )
            })?;
            simulators.script(
                target,
                Script::NextFor {
                    tenant: tenant.to_string(),
                    faults,
                },
            );
            Ok(())
        })
    }

    fn reset_consumer<'a>(
        &'a self,
        name: &'a str,
        to: u64,
        recovery: bool,
    ) -> BoxFuture<'a, Option<ApiResult<ConsumerReset>>> {
        Box::pin(async move {
            // Resets take their turns: one that arrives while another
            // restarts the process waits for it, and still finds its
            // consumer.
            let lifecycle = self.inner.lifecycle.lock().await;
            let Some(current) = self.current() else {
                return integration::fulfillment::CONSUMERS
                    .contains(&name)
                    .then(|| Err(not_running()));
            };
            if !current.status().consumers.iter().any(|c| c.name == name) {
                return None;
            }
            drop(current);
            Some(
                self.restart_with_reset(&lifecycle, name, to, recovery)
                    .await,
            )
        })
    }
}

impl Control {
    /// Stops the process, moves the consumer's checkpoint (with a recovery
    /// bound for a side-effect consumer), and starts the process again;
    /// the caller holds the lifecycle lock throughout.
    async fn restart_with_reset(
        &self,
        _lifecycle: &tokio::sync::MutexGuard<'_, ()>,
        name: &str,
        to: u64,
        recovery: bool,
    ) -> ApiResult<ConsumerReset> {
        let log = self.inner.path.log().clone();
        let store = log.consumer(name).map_err(ApiError::internal)?;
        let side_effects = store.has_side_effects().map_err(ApiError::internal)?;
        if side_effects && !recovery {
            return Err(ApiError::validation(
                "recovery",
                format!("`{name}` makes external calls: reset it with recovery: true so replayed events are re-observed, not sent again"),
            ));
        }
        if to > log.next_position() {
            return Err(ApiError::validation(
                "toPosition",
                "beyond the head of the log",
            ));
        }
        if let Some(running) = self.inner.take_current() {
            running.shutdown().await;
        }
        let rewound = if side_effects {
            store.rewind_for_recovery(to).map_err(ApiError::internal)?
        } else {
            let previous = store.checkpoint().map_err(ApiError::internal)?;
            store.reset_checkpoint(to).map_err(ApiError::internal)?;
            eventlog::RecoveryRewind {
                previous_checkpoint: previous,
                checkpoint: to,
                recovery_until: None,
            }
        };
        let restarted = Fulfillment::start(
            self.inner.path.clone(),
            self.inner.systems.clone(),
            self.inner.options.clone(),
        )
        .map(Arc::new)
        .map_err(ApiError::internal)?;
        if let Ok(mut current) = self.inner.current.write() {
            *current = Some(restarted);
        }
        Ok(ConsumerReset {
            consumer: name.to_owned(),
            previous_checkpoint: rewound.previous_checkpoint,
            checkpoint: rewound.checkpoint,
            recovery_until: rewound.recovery_until,
            side_effects,
        })
    }
}

/// The embedded simulators' options: their journal in the data directory,
/// the configured fault mix, and a hang that outlasts every configured read
/// timeout (unless configured), so a timeout fault always times out.
///
/// # Errors
/// An invalid fault mix, named.
pub fn simulator_options(config: &ServerConfig) -> Result<SimulatorOptions, String> {
    let longest_read_timeout = config
        .systems
        .tenants
        .values()
        .flat_map(|t| t.systems.values())
        .map(|s| s.read_timeout_ms)
        .chain([config
            .simulator
            .read_timeout_ms
            .unwrap_or(integration::config::SystemConfig::new("").read_timeout_ms)])
        .max()
        .unwrap_or(0);
    Ok(SimulatorOptions {
        // A new draw sequence at every start unless configured: a restarted
        // server must not replay the same faults.
        seed: config.simulator.seed.unwrap_or_else(rand::random),
        hang_ms: config
            .simulator
            .hang_ms
            .unwrap_or(longest_read_timeout.saturating_add(1_000)),
        journal_dir: Some(config.data_dir.join(SIMULATOR_JOURNAL_DIR)),
        mix: config
            .simulator
            .fault_mix()
            .map_err(|e| format!("configuration: {e}"))?,
        ..SimulatorOptions::default()
    })
}

/// The service levels the read models flag overdue handoffs by: each
/// tenant's configured `sla_ms` per system, and for systems not configured
/// (the simulated ones) the same default SLA reconciliation and the
/// SLA-breach fallout use, so "overdue" and the breach agree.
pub fn sla_policy(config: &ServerConfig) -> projections::SlaPolicy {
    let by_tenant = config
        .systems
        .tenants
        .iter()
        .map(|(tenant, systems)| {
            let targets = systems
                .systems
                .iter()
                .filter_map(|(name, system)| {
                    integration::config::parse_system(name).map(|target| (target, system.sla_ms))
                })
                .collect();
            (tenant.clone(), targets)
        })
        .collect();
    projections::SlaPolicy {
        // Systems not configured are the simulated ones.
        default_ms: config
            .simulator
            .sla_ms
            .unwrap_or(integration::config::SystemConfig::new("").sla_ms),
        by_target: std::collections::BTreeMap::new(),
        by_tenant,
    }
}

/// Maps a CRM refusal for the API, per the CRM failure policy (seed 001
/// §11.2): an unknown customer is `NOT_FOUND`; an ineligible one (closed)
/// a rule violation (a suspended one is no error: it is quoted with
/// approval); a CRM that does not answer now (timeout, 5xx,
/// 429) `UNAVAILABLE`, retryable with the same command id since nothing
/// was recorded; a CRM that answers something unusable (shape, unmapped
/// code, refused credentials, not configured) `UPSTREAM_ERROR`, for
/// operations. Never `INTERNAL`: none of these is the platform's fault.
pub fn crm_error(error: CrmError) -> ApiError {
    match error {
        CrmError::NotFound => ApiError::NotFound("customer".to_owned()),
        CrmError::NotEligible { .. } => ApiError::RuleViolation {
            rule: "customer_not_eligible",
            message: error.to_string(),
        },
        CrmError::Unavailable { ref raw_code, .. } => ApiError::Unavailable {
            system: "crm",
            detail: raw_code.clone(),
        },
        other => ApiError::Upstream {
            system: "crm",
            detail: other.to_string(),
        },
    }
}

/// Maps a document service failure for the API: a service that does not
/// answer now is `UNAVAILABLE` (retry the same command: the render is keyed
/// by its snapshot, so the retry renders the same artifact); anything else
/// it answers is `UPSTREAM_ERROR`. Never `INTERNAL`.
pub fn document_error(error: integration::DocumentError) -> ApiError {
    match error {
        integration::DocumentError::Unavailable { ref raw_code } => ApiError::Unavailable {
            system: "document",
            detail: raw_code.clone(),
        },
        other => ApiError::Upstream {
            system: "document",
            detail: other.to_string(),
        },
    }
}

/// Looks a customer up for `tenant`: its snapshot, and its suspension when
/// CRM says the account is suspended.
///
/// # Errors
/// See [`crm_error`].
pub async fn lookup_customer(
    directory: &dyn CustomerDirectory,
    tenant: &TenantId,
    customer: &CustomerId,
) -> ApiResult<integration::CustomerAccount> {
    directory.lookup(tenant, customer).await.map_err(crm_error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use domain::idempotency::TargetSystem;

    #[test]
    fn a_timeout_fault_outlasts_every_configured_read_timeout() {
        let default = simulator_options(&ServerConfig::default()).unwrap();
        assert!(default.hang_ms > integration::SystemConfig::new("").read_timeout_ms);
        let mut slow = integration::SystemConfig::new("http://127.0.0.1:9");
        slow.read_timeout_ms = 8_000;
        let config = ServerConfig {
            systems: SystemsConfig::default().with_system("t1", TargetSystem::Billing, slow),
            ..ServerConfig::default()
        };
        assert!(simulator_options(&config).unwrap().hang_ms > 8_000);
        let bad = ServerConfig {
            simulator: crate::config::SimulatorConfig {
                mix: "Explode=10".to_owned(),
                ..crate::config::SimulatorConfig::default()
            },
            ..ServerConfig::default()
        };
        assert!(simulator_options(&bad).unwrap_err().contains("Explode"));
    }

    #[test]
    fn a_restarted_server_draws_new_faults_unless_a_seed_is_configured() {
        let config = ServerConfig::default();
        let draws: std::collections::BTreeSet<u64> = (0..4)
            .map(|_| simulator_options(&config).unwrap().seed)
            .collect();
        assert!(draws.len() > 1, "{draws:?}");
        let seeded = ServerConfig {
            simulator: crate::config::SimulatorConfig {
                seed: Some(7),
                ..crate::config::SimulatorConfig::default()
            },
            ..ServerConfig::default()
        };
        assert_eq!(simulator_options(&seeded).unwrap().seed, 7);
    }

    #[test]
    fn overdue_follows_the_configured_sla_of_the_tenants_system() {
        let mut inventory = integration::SystemConfig::new("http://127.0.0.1:9");
        inventory.sla_ms = 2_500;
        let config = ServerConfig {
            systems: SystemsConfig::default().with_system("t1", TargetSystem::Inventory, inventory),
            ..ServerConfig::default()
        };
        let policy = sla_policy(&config);
        assert_eq!(policy.sla_ms("t1", TargetSystem::Inventory), 2_500);
        // Not configured: the default SLA that reconciliation's breach uses.
        let default = integration::SystemConfig::new("").sla_ms;
        assert_eq!(policy.sla_ms("t1", TargetSystem::Billing), default);
        assert_eq!(policy.sla_ms("demo", TargetSystem::Inventory), default);
    }
}
