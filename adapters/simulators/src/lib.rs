//! In-process simulators of the external systems: one axum server per
//! system on a loopback port, each with its own ledger of side effects per
//! idempotency key, scriptable per request, per key or by ratio.
//!
//! The simulators are honest external systems with one deliberate
//! weakness: inventory, provisioning, the notification provider and the
//! document service's renders by key do **not** deduplicate by key, so any
//! resend after the effect was applied shows up in the ledger as a doubled
//! effect (`effects > 1`; for the notification provider, an e-mail sent
//! twice; for the document service, a document stored twice). Billing detects duplicates
//! by key (same key and request: `DUPLICATE`; same key, other request: 409).
//!
//! With a callback target set ([`Simulators::set_callback_target`]) the
//! side-effect systems that call back (inventory, provisioning, billing)
//! answer "pending" and call back, signed with the tenant's secret, to
//! `<target>/callbacks/<system>`; without one, and always for the
//! notification provider, they answer with the final state at once.
//!
//! The CRM knows every customer id but those starting with `missing` (404);
//! one starting with `suspended` has status `SUSPENDED`, `closed` status
//! `CLOSED`, and `lapsing` is active at its first lookup and suspended
//! after; one starting with `ent` is in the enterprise segment, and one
//! starting with `drift` moves to the enterprise segment under a new record
//! after its first lookup (CRM drift).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use simulators::{Fault, FaultMix, Script, SimulatorOptions, Simulators};
//! use domain::idempotency::TargetSystem;
//!
//! let sims = Simulators::start(SimulatorOptions::default()).await?;
//! sims.script(TargetSystem::Billing, Script::Next(vec![Fault::ServerError]));
//! sims.script(
//!     TargetSystem::Inventory,
//!     Script::Mix(FaultMix::new().with(Fault::TimeoutAfterApply, 500)),
//! );
//! let _url = sims.base_url(TargetSystem::Inventory);
//! sims.shutdown().await;
//! # Ok(()) }
//! ```

mod dialect;
mod faults;
pub mod journal;
mod plan;

pub use faults::{Fault, FaultMix, FaultParseError, Script};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::idempotency::{Purpose, TargetSystem};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use dialect::ErrorKind;
use integration::config::{SystemConfig, SystemsConfig};
use integration::external::{billing, document, inventory, notification, provisioning};
use integration::signing;
use journal::{Journal, JournalLine};
use plan::plan;

/// Options of [`Simulators::start`].
#[derive(Clone, Debug)]
pub struct SimulatorOptions {
    /// Seed of the fault mix's random draws.
    pub seed: u64,
    /// How long a timeout fault holds its answer, in ms.
    pub hang_ms: u64,
    /// How late [`Fault::AnswerLate`] answers, in ms.
    pub late_ms: u64,
    /// Delay before a callback is sent, in ms.
    pub callback_delay_ms: u64,
    /// If set, requests without `Authorization: Bearer <token>` get 401.
    pub expected_token: Option<String>,
    /// If set, the directory of the durable journal ([`journal`]): ledgers
    /// are rebuilt from it at start and survive restarts.
    pub journal_dir: Option<PathBuf>,
    /// The fault mix every system starts with (none: every request succeeds).
    pub mix: Option<FaultMix>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            seed: 0x5eed,
            hang_ms: 3_000,
            late_ms: 200,
            callback_delay_ms: 2,
            expected_token: None,
            journal_dir: None,
            mix: None,
        }
    }
}

/// One idempotency key in a simulator's ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The key.
    pub key: String,
    /// The tenant (the key's first segment).
    pub tenant: String,
    /// The operation (`reserve`, `release`, `activate`, `cancel`, `activate_billing`).
    pub operation: String,
    /// sha256 hex of the first request body.
    pub request_hash: String,
    /// Execute requests received with this key.
    pub requests: u32,
    /// Times the side effect was applied (more than 1 is a doubled effect).
    pub effects: u32,
    /// The system's state for the key (`RECEIVED` until decided).
    pub state: String,
    /// Callbacks delivered (2xx answers).
    pub callbacks_delivered: u32,
}

/// Secrets the simulators sign callbacks with, by tenant and system.
#[derive(Clone, Debug, Default)]
pub struct SigningKeys {
    keys: BTreeMap<(String, TargetSystem), String>,
    default: Option<String>,
}

impl SigningKeys {
    /// One secret for every tenant and system.
    pub fn single(secret: impl Into<String>) -> Self {
        Self {
            keys: BTreeMap::new(),
            default: Some(secret.into()),
        }
    }

    /// The current (first) secret of every system of every tenant.
    pub fn from_config(config: &SystemsConfig) -> Self {
        let mut keys = BTreeMap::new();
        for (tenant, systems) in &config.tenants {
            for (name, c) in &systems.systems {
                if let (Some(system), Some(secret)) = (
                    integration::config::parse_system(name),
                    c.callback_secrets.first(),
                ) {
                    keys.insert((tenant.clone(), system), secret.clone());
                }
            }
        }
        Self {
            keys,
            default: None,
        }
    }

    /// Adds one secret.
    pub fn insert(mut self, tenant: &str, system: TargetSystem, secret: impl Into<String>) -> Self {
        self.keys.insert((tenant.to_owned(), system), secret.into());
        self
    }

    fn get(&self, tenant: &str, system: TargetSystem) -> Option<&str> {
        self.keys
            .get(&(tenant.to_owned(), system))
            .or(self.default.as_ref())
            .map(String::as_str)
    }
}

#[derive(Clone, Debug)]
struct CallbackTarget {
    url: String,
    keys: SigningKeys,
}

#[derive(Default)]
struct SimState {
    ledger: BTreeMap<String, LedgerEntry>,
    queue: VecDeque<Fault>,
    by_tenant: HashMap<String, VecDeque<Fault>>,
    by_key: HashMap<String, VecDeque<Fault>>,
    mix: Option<FaultMix>,
    injected: BTreeMap<Fault, u64>,
    requests: u64,
    /// CRM lookups per customer id (drift is played from the second one).
    lookups: HashMap<String, u64>,
}

impl SimState {
    /// The fault scripted for a request, taken from its queue: scripted
    /// for its key first, then for its tenant, then for anyone. A queue
    /// that does not answer keeps its faults.
    fn scripted(&mut self, key: &str, tenant: Option<&str>) -> Option<Fault> {
        if let Some(f) = self.by_key.get_mut(key).and_then(VecDeque::pop_front) {
            return Some(f);
        }
        if let Some(f) = tenant.and_then(|t| self.by_tenant.get_mut(t)?.pop_front()) {
            return Some(f);
        }
        self.queue.pop_front()
    }

    /// Applies one journal line to the ledger (rebuilding it at start).
    fn replay(&mut self, line: &JournalLine) {
        match line {
            JournalLine::Effect {
                key,
                tenant,
                operation,
                request_hash,
                state,
                ..
            }
            | JournalLine::State {
                key,
                tenant,
                operation,
                request_hash,
                state,
                ..
            } => {
                let entry = self
                    .ledger
                    .entry(key.clone())
                    .or_insert_with(|| LedgerEntry {
                        key: key.clone(),
                        tenant: tenant.clone(),
                        operation: operation.clone(),
                        request_hash: request_hash.clone(),
                        requests: 0,
                        effects: 0,
                        state: String::new(),
                        callbacks_delivered: 0,
                    });
                entry.state.clone_from(state);
                if matches!(line, JournalLine::Effect { .. }) {
                    entry.effects += 1;
                }
            }
            JournalLine::Callback { key, status, .. } => {
                if let Some(entry) = self.ledger.get_mut(key) {
                    if status.is_some_and(|s| (200..300).contains(&s)) {
                        entry.callbacks_delivered += 1;
                    }
                }
            }
        }
    }
}

struct Shared {
    options: SimulatorOptions,
    states: HashMap<TargetSystem, Mutex<SimState>>,
    callback: RwLock<Option<CallbackTarget>>,
    rng: Mutex<u64>,
    seq: std::sync::atomic::AtomicU64,
    /// Unique per start, so message ids never repeat across restarts.
    boot: String,
    journal: Option<Journal>,
    http: reqwest::Client,
    stop: watch::Receiver<bool>,
}

impl Shared {
    fn roll(&self) -> u32 {
        let Ok(mut x) = self.rng.lock() else {
            return u32::MAX;
        };
        // xorshift64*
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        u32::try_from((v >> 32) % 10_000).unwrap_or(0)
    }

    /// The fault for the next request of `system`: scripted for its key,
    /// then for its tenant, then for anyone, then drawn from the mix.
    fn next_fault(&self, system: TargetSystem, key: &str, tenant: Option<&str>) -> Fault {
        let roll = self.roll();
        let Some(state) = self.states.get(&system) else {
            return Fault::Succeed;
        };
        let Ok(mut s) = state.lock() else {
            return Fault::Succeed;
        };
        let fault = match s.scripted(key, tenant) {
            Some(f) => f,
            None => s.mix.as_ref().map_or(Fault::Succeed, |mix| mix.pick(roll)),
        };
        *s.injected.entry(fault).or_default() += 1;
        s.requests += 1;
        fault
    }

    fn message_id(&self, system: TargetSystem) -> String {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-msg-{}-{n}", system.as_str(), self.boot)
    }

    fn record(&self, line: &JournalLine) {
        if let Some(journal) = &self.journal {
            journal.append(line);
        }
    }
}

/// The running simulators.
pub struct Simulators {
    shared: Arc<Shared>,
    addrs: BTreeMap<TargetSystem, SocketAddr>,
    servers: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Simulators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulators")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

/// The simulated systems, in start order.
pub const SIMULATED: [TargetSystem; 6] = [
    TargetSystem::Inventory,
    TargetSystem::Provisioning,
    TargetSystem::Billing,
    TargetSystem::Crm,
    TargetSystem::Notification,
    TargetSystem::Document,
];

#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    system: TargetSystem,
}

impl Simulators {
    /// Starts inventory, provisioning, billing and CRM, each on
    /// `127.0.0.1:0`, on the current tokio runtime.
    ///
    /// # Errors
    /// An I/O error binding a port.
    pub async fn start(options: SimulatorOptions) -> std::io::Result<Simulators> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(std::io::Error::other)?;
        let (journal, history) = match &options.journal_dir {
            Some(dir) => {
                let (journal, lines) = Journal::open(dir)?;
                (Some(journal), lines)
            }
            None => (None, Vec::new()),
        };
        let mut states: HashMap<TargetSystem, SimState> = SIMULATED
            .iter()
            .map(|s| {
                let state = SimState {
                    mix: options.mix.clone(),
                    ..SimState::default()
                };
                (*s, state)
            })
            .collect();
        for line in &history {
            if let Some(state) =
                journal::system_named(line.system()).and_then(|s| states.get_mut(&s))
            {
                state.replay(line);
            }
        }
        let shared = Arc::new(Shared {
            rng: Mutex::new(options.seed | 1),
            options,
            states: states
                .into_iter()
                .map(|(system, state)| (system, Mutex::new(state)))
                .collect(),
            callback: RwLock::new(None),
            seq: std::sync::atomic::AtomicU64::new(0),
            boot: ulid::Ulid::new().to_string().to_lowercase(),
            journal,
            http,
            stop: stop_rx,
        });
        let mut addrs = BTreeMap::new();
        let mut servers = Vec::new();
        for system in SIMULATED {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addrs.insert(system, listener.local_addr()?);
            let app = router(Ctx {
                shared: shared.clone(),
                system,
            });
            let (tx, rx) = oneshot::channel::<()>();
            let handle = tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
            servers.push((tx, handle));
        }
        Ok(Simulators {
            shared,
            addrs,
            servers,
            stop: stop_tx,
        })
    }

    /// `http://127.0.0.1:<port>` of a system (empty for a system that is
    /// not simulated).
    pub fn base_url(&self, system: TargetSystem) -> String {
        self.addrs
            .get(&system)
            .map(|a| format!("http://{a}"))
            .unwrap_or_default()
    }

    /// A configuration pointing `tenants` at these simulators, with one
    /// callback secret for every system.
    pub fn systems_config(&self, tenants: &[&str], secret: &str) -> SystemsConfig {
        let mut config = SystemsConfig::default();
        for tenant in tenants {
            for system in SIMULATED {
                let mut c = SystemConfig::new(self.base_url(system));
                if integration::config::sends_callbacks(system) {
                    c.callback_secrets = vec![secret.to_owned()];
                }
                c.outbound_token = self.shared.options.expected_token.clone();
                config = config.with_system(tenant, system, c);
            }
        }
        config
    }

    /// Scripts one system.
    pub fn script(&self, system: TargetSystem, script: Script) {
        let Some(state) = self.shared.states.get(&system) else {
            return;
        };
        let Ok(mut s) = state.lock() else {
            return;
        };
        match script {
            Script::Next(faults) => s.queue.extend(faults),
            Script::NextFor { tenant, faults } => {
                s.by_tenant.entry(tenant).or_default().extend(faults);
            }
            Script::ForKey { key, faults } => s.by_key.entry(key).or_default().extend(faults),
            Script::Mix(mix) => s.mix = Some(mix),
            Script::Clear => {
                s.queue.clear();
                s.by_tenant.clear();
                s.by_key.clear();
                s.mix = None;
            }
        }
    }

    /// Sends callbacks to `<url>/callbacks/<system>`, signed with `keys`.
    pub fn set_callback_target(&self, url: impl Into<String>, keys: SigningKeys) {
        if let Ok(mut target) = self.shared.callback.write() {
            *target = Some(CallbackTarget {
                url: url.into().trim_end_matches('/').to_owned(),
                keys,
            });
        }
    }

    /// Stops calling back: side-effect systems answer synchronously again.
    pub fn clear_callback_target(&self) {
        if let Ok(mut target) = self.shared.callback.write() {
            *target = None;
        }
    }

    /// A snapshot of one system's ledger, in key order.
    pub fn ledger(&self, system: TargetSystem) -> Vec<LedgerEntry> {
        self.with_state(system, |s| s.ledger.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many requests of each fault one system played.
    pub fn injected(&self, system: TargetSystem) -> BTreeMap<Fault, u64> {
        self.with_state(system, |s| s.injected.clone())
            .unwrap_or_default()
    }

    /// Requests one system received (execute calls and CRM lookups; status
    /// queries are not counted).
    pub fn requests(&self, system: TargetSystem) -> u64 {
        self.with_state(system, |s| s.requests).unwrap_or(0)
    }

    /// Effects applied more than once for the same key, over every system.
    pub fn duplicate_side_effects(&self) -> u64 {
        SIMULATED
            .iter()
            .flat_map(|s| self.ledger(*s))
            .map(|e| u64::from(e.effects.saturating_sub(1)))
            .sum()
    }

    fn with_state<T>(&self, system: TargetSystem, f: impl FnOnce(&SimState) -> T) -> Option<T> {
        let state = self.shared.states.get(&system)?;
        let s = state.lock().ok()?;
        Some(f(&s))
    }

    /// Stops every server (waiting at most 2 s for answers in flight) and
    /// every pending callback.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for (tx, handle) in self.servers {
            let _ = tx.send(());
            let abort = handle.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), handle)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

fn router(ctx: Ctx) -> Router {
    let exec = |purpose: Purpose| {
        move |State(ctx): State<Ctx>, headers: HeaderMap, body: axum::body::Bytes| async move {
            execute(ctx, headers, body, purpose).await
        }
    };
    let router = match ctx.system {
        TargetSystem::Inventory => Router::new()
            .route(inventory::RESERVE_PATH, post(exec(Purpose::Reserve)))
            .route(inventory::RELEASE_PATH, post(exec(Purpose::Release)))
            .route(&format!("{}/{{key}}", inventory::STATUS_PATH), get(status)),
        TargetSystem::Provisioning => Router::new()
            .route(provisioning::ACTIVATE_PATH, post(exec(Purpose::Activate)))
            .route(provisioning::CANCEL_PATH, post(exec(Purpose::Cancel)))
            .route(
                &format!("{}/{{key}}", provisioning::STATUS_PATH),
                get(status),
            ),
        TargetSystem::Billing => Router::new()
            .route(billing::ACTIVATE_PATH, post(exec(Purpose::ActivateBilling)))
            .route(&format!("{}/{{key}}", billing::STATUS_PATH), get(status)),
        TargetSystem::Notification => Router::new()
            .route(notification::SEND_PATH, post(exec(Purpose::Notify)))
            .route(
                &format!("{}/{{key}}", notification::STATUS_PATH),
                get(status),
            ),
        TargetSystem::Document => Router::new()
            .route(integration::document::RENDER_PATH, post(render_document))
            .route(
                document::DOCUMENTS_PATH,
                post(exec(Purpose::GenerateDocument)),
            )
            .route(&format!("{}/{{key}}", document::STATUS_PATH), get(status)),
        _ => Router::new().route(
            &format!("{}/{{id}}", integration::crm::ACCOUNT_PATH),
            get(crm_lookup),
        ),
    };
    router.with_state(ctx)
}

fn authorized(ctx: &Ctx, headers: &HeaderMap) -> bool {
    match &ctx.shared.options.expected_token {
        None => true,
        Some(token) => headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {token}")),
    }
}

/// The tenant a request is made for, from its `x-tenant` header.
fn tenant_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-tenant").and_then(|v| v.to_str().ok())
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, Json(value)).into_response()
}

async fn execute(
    ctx: Ctx,
    headers: HeaderMap,
    body: axum::body::Bytes,
    purpose: Purpose,
) -> Response {
    let system = ctx.system;
    let Some(key) = headers
        .get(integration::external::IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return json(
            StatusCode::BAD_REQUEST,
            dialect::error(system, ErrorKind::Validation),
        );
    };
    let tenant = domain::idempotency::tenant_of_key(&key).to_owned();
    let fault = ctx.shared.next_fault(system, &key, Some(&tenant));
    if !authorized(&ctx, &headers) || fault == Fault::Unauthorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return json(
            StatusCode::BAD_REQUEST,
            dialect::error(system, ErrorKind::Validation),
        );
    }
    let hash = hex::encode(Sha256::digest(&body));
    // Only the systems that call back answer asynchronously.
    let async_mode = integration::config::sends_callbacks(system)
        && ctx
            .shared
            .callback
            .read()
            .map(|t| t.is_some())
            .unwrap_or(false);
    let plan = {
        let Some(state) = ctx.shared.states.get(&system) else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let Ok(mut s) = state.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let entry = s.ledger.entry(key.clone()).or_insert_with(|| LedgerEntry {
            key: key.clone(),
            tenant: tenant.clone(),
            operation: purpose.as_str().to_owned(),
            request_hash: hash.clone(),
            requests: 0,
            effects: 0,
            state: "RECEIVED".to_owned(),
            callbacks_delivered: 0,
        });
        entry.requests += 1;
        let before = (entry.effects, entry.state.clone());
        let plan = plan(&ctx, entry, fault, purpose, &hash, async_mode);
        // Journaled under the ledger's lock, before the answer goes out.
        if entry.effects != before.0 {
            ctx.shared.record(&JournalLine::Effect {
                system: system.as_str().to_owned(),
                key: entry.key.clone(),
                tenant: entry.tenant.clone(),
                operation: entry.operation.clone(),
                request_hash: entry.request_hash.clone(),
                state: entry.state.clone(),
            });
        } else if entry.state != before.1 {
            ctx.shared.record(&JournalLine::State {
                system: system.as_str().to_owned(),
                key: entry.key.clone(),
                tenant: entry.tenant.clone(),
                operation: entry.operation.clone(),
                request_hash: entry.request_hash.clone(),
                state: entry.state.clone(),
                fault: fault.name().to_owned(),
            });
        }
        plan
    };
    let callbacks = plan.callbacks.clone();
    if !callbacks.is_empty() {
        let task = deliver_all(ctx.clone(), tenant, key.clone(), callbacks, purpose);
        if plan.callback_first {
            task.await;
        } else {
            tokio::spawn(task);
        }
    }
    if plan.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(plan.delay_ms)).await;
    }
    match (plan.body, plan.raw_body) {
        (Some(body), _) => json(plan.status, body),
        (None, Some(raw)) => (plan.status, raw).into_response(),
        (None, None) => plan.status.into_response(),
    }
}

/// Delivers callbacks in order, each retried while the receiver is down.
async fn deliver_all(
    ctx: Ctx,
    tenant: String,
    key: String,
    callbacks: Vec<(u64, String, String)>,
    _purpose: Purpose,
) {
    for (delay, message_id, state) in callbacks {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let reference = format!("{}-ref", ctx.system.as_str());
        let body = dialect::callback(ctx.system, &message_id, &tenant, &key, &state, &reference);
        let bytes = body.to_string().into_bytes();
        let status = deliver(&ctx, &tenant, &bytes).await;
        ctx.shared.record(&JournalLine::Callback {
            system: ctx.system.as_str().to_owned(),
            key: key.clone(),
            message_id: message_id.clone(),
            status,
        });
        if status.is_some_and(|s| (200..300).contains(&s)) {
            if let Some(state) = ctx.shared.states.get(&ctx.system) {
                if let Ok(mut s) = state.lock() {
                    if let Some(entry) = s.ledger.get_mut(&key) {
                        entry.callbacks_delivered += 1;
                    }
                }
            }
        }
    }
}

/// Posts one signed callback; retries (up to about a minute) while the
/// receiver is unreachable or answers 5xx, gives up on any other answer.
/// The receiver's last HTTP status, or `None` when it never answered.
async fn deliver(ctx: &Ctx, tenant: &str, body: &[u8]) -> Option<u16> {
    let mut backoff = 50u64;
    let mut last = None;
    for _ in 0..60 {
        if *ctx.shared.stop.borrow() {
            return last;
        }
        let target = ctx.shared.callback.read().ok().and_then(|t| t.clone());
        let Some(target) = target else {
            return last;
        };
        let Some(secret) = target.keys.get(tenant, ctx.system) else {
            return last;
        };
        let timestamp = (application::clock::Clock::now_ms(&application::clock::SystemClock)
            / 1_000)
            .to_string();
        let signature = signing::sign(secret.as_bytes(), &timestamp, body);
        let sent = ctx
            .shared
            .http
            .post(format!("{}/callbacks/{}", target.url, ctx.system.as_str()))
            .header(signing::TIMESTAMP_HEADER, &timestamp)
            .header(signing::SIGNATURE_HEADER, signature)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await;
        if let Ok(answer) = &sent {
            last = Some(answer.status().as_u16());
            if !answer.status().is_server_error() {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(backoff)).await;
        backoff = (backoff * 2).min(1_000);
    }
    last
}

async fn status(State(ctx): State<Ctx>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    if !authorized(&ctx, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let system = ctx.system;
    let entry = ctx
        .shared
        .states
        .get(&system)
        .and_then(|s| s.lock().ok().and_then(|s| s.ledger.get(&key).cloned()));
    match entry {
        Some(entry) if entry.state != "RECEIVED" => {
            let hash = &entry.request_hash;
            let reference = format!("{}-ref-{}", system.as_str(), &hash[..12.min(hash.len())]);
            json(
                StatusCode::OK,
                dialect::answer(system, &entry.state, &reference),
            )
        }
        _ => json(
            StatusCode::NOT_FOUND,
            dialect::error(system, ErrorKind::NotFound),
        ),
    }
}

/// Renders a document: the artifact's hash is a function of the snapshot
/// id, template and locale only, so the same snapshot always renders the
/// same artifact. Renders are idempotent by construction: each one is
/// counted as a request of its key, never as a side effect.
async fn render_document(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let key = headers
        .get(integration::external::IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let fault = ctx
        .shared
        .next_fault(TargetSystem::Document, &key, tenant_header(&headers));
    if !authorized(&ctx, &headers) || fault == Fault::Unauthorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match fault {
        Fault::TooManyRequests => return StatusCode::TOO_MANY_REQUESTS.into_response(),
        Fault::ServerError => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Fault::UnknownStatusCode => return StatusCode::IM_A_TEAPOT.into_response(),
        Fault::TimeoutBeforeApply => {
            tokio::time::sleep(Duration::from_millis(ctx.shared.options.hang_ms)).await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Fault::BusinessReject | Fault::ValidationReject => {
            return json(
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({ "errorCode": "DOC-TEMPLATE-REFUSED" }),
            )
        }
        Fault::MalformedBody => return (StatusCode::OK, "not json").into_response(),
        _ => {}
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let text = |name: &str| request[name].as_str().unwrap_or_default().to_owned();
    let identity = format!(
        "{}|{}|{}",
        text("snapshotId"),
        text("templateVersion"),
        text("locale")
    );
    let sha256 = hex::encode(Sha256::digest(identity.as_bytes()));
    if let Some(state) = ctx.shared.states.get(&TargetSystem::Document) {
        if let Ok(mut s) = state.lock() {
            let entry = s.ledger.entry(key.clone()).or_insert_with(|| LedgerEntry {
                key: key.clone(),
                tenant: domain::idempotency::tenant_of_key(&key).to_owned(),
                operation: "render".to_owned(),
                request_hash: sha256.clone(),
                requests: 0,
                effects: 0,
                state: "RENDERED".to_owned(),
                callbacks_delivered: 0,
            });
            entry.requests += 1;
        }
    }
    if matches!(fault, Fault::TimeoutAfterApply) {
        tokio::time::sleep(Duration::from_millis(ctx.shared.options.hang_ms)).await;
    }
    json(
        StatusCode::OK,
        serde_json::json!({
            "documentId": format!("doc-{}", &sha256[..16]),
            "sha256": sha256,
            "status": "RENDERED",
        }),
    )
}

async fn crm_lookup(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let fault = ctx
        .shared
        .next_fault(TargetSystem::Crm, &id, tenant_header(&headers));
    if !authorized(&ctx, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match fault {
        Fault::Unauthorized => return StatusCode::UNAUTHORIZED.into_response(),
        Fault::TooManyRequests => return StatusCode::TOO_MANY_REQUESTS.into_response(),
        Fault::ServerError => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Fault::UnknownStatusCode => return StatusCode::IM_A_TEAPOT.into_response(),
        Fault::TimeoutAfterApply | Fault::TimeoutBeforeApply => {
            tokio::time::sleep(Duration::from_millis(ctx.shared.options.hang_ms)).await;
        }
        Fault::AnswerLate => {
            tokio::time::sleep(Duration::from_millis(ctx.shared.options.late_ms)).await;
        }
        Fault::MalformedBody => return (StatusCode::OK, "not json").into_response(),
        _ => {}
    }
    if id.starts_with("missing") {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "errorCode": "ACCOUNT_NOT_FOUND" }),
        );
    }
    // Lookups so far of a customer whose answer changes after the first.
    let looked_up_before = (id.starts_with("drift") || id.starts_with("lapsing"))
        && ctx
            .shared
            .states
            .get(&TargetSystem::Crm)
            .and_then(|s| s.lock().ok())
            .is_some_and(|mut s| {
                let seen = s.lookups.entry(id.clone()).or_default();
                *seen += 1;
                *seen > 1
            });
    let status = if id.starts_with("suspended") || (id.starts_with("lapsing") && looked_up_before) {
        "SUSPENDED"
    } else if id.starts_with("closed") {
        "CLOSED"
    } else if fault == Fault::UnknownExternalStatus {
        "ZOMBIE"
    } else {
        "ACTIVE"
    };
    // A customer whose id starts with `drift` changes after its first
    // lookup: CRM moves it to the enterprise segment under a new record.
    let drifted = id.starts_with("drift") && looked_up_before;
    let segment = if id.starts_with("ent") || drifted {
        "enterprise"
    } else {
        "smb"
    };
    json(
        StatusCode::OK,
        serde_json::json!({
            "acctId": id,
            "acctName": format!("Customer {id}"),
            "seg": segment,
            "rev": if drifted { "crm-rev-2" } else { "crm-rev-1" },
            "status": status,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_for_a_key_comes_first_then_the_tenants_then_anyones() {
        let mut state = SimState::default();
        state.queue.push_back(Fault::ServerError);
        state
            .by_tenant
            .entry("acme".to_owned())
            .or_default()
            .push_back(Fault::BusinessReject);
        state
            .by_key
            .entry("acme:o1:l1".to_owned())
            .or_default()
            .push_back(Fault::TooManyRequests);
        // Another tenant never takes acme's script.
        assert_eq!(
            state.scripted("globex:o2:l1", Some("globex")),
            Some(Fault::ServerError)
        );
        // The key's script comes first, and leaves the tenant's in place.
        assert_eq!(
            state.scripted("acme:o1:l1", Some("acme")),
            Some(Fault::TooManyRequests)
        );
        assert_eq!(
            state.scripted("acme:o1:l1", Some("acme")),
            Some(Fault::BusinessReject)
        );
        assert_eq!(state.scripted("acme:o1:l1", Some("acme")), None);
    }
}
