//! The per-tenant table of external systems: configuration, not code.
//!
//! Each tenant lists the systems it integrates with (`inventory`,
//! `provisioning`, `billing`, `crm`), and for each one whether it is enabled,
//! where it lives, its connect and read timeouts, its retry profile (capped
//! backoff and circuit breaker), its SLA, the secrets that sign its callbacks
//! (current first, previous second while a rotation is under way) and the
//! token the adapter presents to it. [`SystemsConfig::validate`] names the
//! first bad key and what is wrong with it.
//!
//! ```
//! let json = r#"{
//!   "tenants": { "t1": { "systems": { "inventory": {
//!     "base_url": "http://127.0.0.1:9001",
//!     "callback_secrets": ["0123456789abcdef0123"]
//!   } } } },
//!   "reconciliation": { "interval_ms": 30000 }
//! }"#;
//! let config: integration::config::SystemsConfig = serde_json::from_str(json)?;
//! config.validate()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use domain::capability::{Capabilities, Capability};
use domain::handoff::RetryPolicy;
use domain::idempotency::TargetSystem;
use serde::Deserialize;

/// Every tenant's systems, plus the reconciliation schedule.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SystemsConfig {
    /// Systems by tenant id (ids of `domain::ids::validate_id`'s grammar;
    /// the server also refuses a tenant that has no credentials).
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSystems>,
    /// How often reconciliation runs.
    #[serde(default)]
    pub reconciliation: ReconciliationConfig,
}

/// The systems one tenant integrates with, by name (`inventory`,
/// `provisioning`, `billing`, `crm`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantSystems {
    /// System settings by lowercase system name.
    #[serde(default)]
    pub systems: BTreeMap<String, SystemConfig>,
    /// The tenant's capability registry, by capability code
    /// (`INVENTORY_RESERVE`, …): a capability not listed is enabled when
    /// its system is configured and enabled. See [`SystemsConfig::capabilities`].
    #[serde(default)]
    pub capabilities: BTreeMap<String, CapabilityConfig>,
}

/// One capability of one tenant: enabled or not, with its settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CapabilityConfig {
    /// False turns the capability off even though its system is enabled.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Free-form settings of the capability (a template, a product
    /// mapping), shown in the matrix; never secrets.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// Why a capability is, or is not, available to a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityState {
    /// Its system is configured and enabled, and the capability is not
    /// turned off.
    Enabled,
    /// Turned off in the tenant's capability registry.
    DisabledByConfiguration,
    /// Its system is configured but disabled.
    SystemDisabled,
    /// Its system is not configured for the tenant.
    SystemNotConfigured,
}

/// One row of a tenant's capability matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityEntry {
    /// The capability.
    pub capability: Capability,
    /// The system that offers it.
    pub system: TargetSystem,
    /// Whether it may be used, and why not.
    pub state: CapabilityState,
    /// Its configured settings.
    pub settings: BTreeMap<String, String>,
}

/// How to reach one system for one tenant.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// A disabled system is never called; its handoffs go to fallout
    /// (security/configuration) so operators see them.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `http://host:port` (or `https://`), optionally with a path prefix,
    /// without a trailing slash, user, password, query or fragment
    /// (credentials go in `outbound_token`, never in a URL that logs show).
    pub base_url: String,
    /// Connect timeout in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Read (whole-response) timeout in milliseconds. A request that timed
    /// out after it was sent is UNKNOWN, never a failure.
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Technical retries and the circuit breaker.
    #[serde(default)]
    pub retry: RetryProfile,
    /// How long a sent or accepted handoff may wait for its outcome before
    /// reconciliation queries the system's status. Timeouts, SLA and
    /// fallout delay are each at most [`MAX_DURATION_MS`] (366 days).
    #[serde(default = "default_sla_ms")]
    pub sla_ms: u64,
    /// If set, a handoff still pending (not UNKNOWN) this long after its
    /// last change is declared an SLA breach (fallout).
    #[serde(default)]
    pub fallout_after_ms: Option<u64>,
    /// Secrets that sign this system's callbacks: the current one first, the
    /// previous one second during a rotation. At most two.
    #[serde(default)]
    pub callback_secrets: Vec<String>,
    /// Bearer token the adapter presents to the system, if it wants one.
    #[serde(default)]
    pub outbound_token: Option<String>,
}

impl fmt::Debug for SystemConfig {
    // Secrets and tokens never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemConfig")
            .field("enabled", &self.enabled)
            .field("base_url", &self.base_url)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("read_timeout_ms", &self.read_timeout_ms)
            .field("retry", &self.retry)
            .field("sla_ms", &self.sla_ms)
            .field("fallout_after_ms", &self.fallout_after_ms)
            .field(
                "callback_secrets",
                &format_args!("[{} redacted]", self.callback_secrets.len()),
            )
            .field(
                "outbound_token",
                &self.outbound_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl SystemConfig {
    /// A system at `base_url` with default timeouts, retries and SLA, and
    /// no secrets.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            enabled: true,
            base_url: base_url.into(),
            connect_timeout_ms: default_connect_timeout_ms(),
            read_timeout_ms: default_read_timeout_ms(),
            retry: RetryProfile::default(),
            sla_ms: default_sla_ms(),
            fallout_after_ms: None,
            callback_secrets: Vec::new(),
            outbound_token: None,
        }
    }
}

/// Capped exponential backoff for technical failures and the circuit
/// breaker that protects the system from being hammered.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryProfile {
    /// Delay before the first resend, in milliseconds.
    pub base_ms: u64,
    /// Largest delay, in milliseconds.
    pub max_ms: u64,
    /// Most sends one handoff may make (the first included) before it goes
    /// to fallout as "retries exhausted".
    pub max_attempts: u32,
    /// Consecutive technical failures that open the circuit.
    pub circuit_failure_threshold: u32,
    /// How long an open circuit fails fast before letting one probe through.
    pub circuit_open_ms: u64,
}

impl Default for RetryProfile {
    fn default() -> Self {
        Self {
            base_ms: 1_000,
            max_ms: 60_000,
            max_attempts: 5,
            circuit_failure_threshold: 5,
            circuit_open_ms: 10_000,
        }
    }
}

impl RetryProfile {
    /// The domain's retry policy for observations.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            base_ms: self.base_ms,
            max_ms: self.max_ms,
            max_attempts: self.max_attempts,
        }
    }
}

/// When reconciliation runs.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ReconciliationConfig {
    /// Milliseconds between scheduled runs (an operator can trigger one at
    /// any time).
    pub interval_ms: u64,
    /// Most handoffs one run checks; the rest wait for the next run.
    pub max_checks_per_run: usize,
    /// How long a parked callback (one whose handoff was not there or not
    /// sent yet) waits before it is given up: its handoff, if it exists,
    /// falls out as "local impossible" with the callback as evidence; a
    /// callback for a handoff that never appeared is dropped and counted.
    pub parked_callback_expiry_ms: u64,
}

impl Default for ReconciliationConfig {
    fn default() -> Self {
        Self {
            interval_ms: 30_000,
            max_checks_per_run: 1_000,
            parked_callback_expiry_ms: 10 * 60 * 1_000,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_connect_timeout_ms() -> u64 {
    1_000
}
fn default_read_timeout_ms() -> u64 {
    5_000
}
fn default_sla_ms() -> u64 {
    60_000
}

/// A configuration value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration at {key}: {problem}")]
pub struct ConfigError {
    /// The dotted key, e.g. `tenants.t1.systems.billing.read_timeout_ms`.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// The systems a tenant may configure (by their stable name,
/// [`TargetSystem::as_str`]).
pub const CONFIGURABLE_SYSTEMS: [TargetSystem; 6] = [
    TargetSystem::Inventory,
    TargetSystem::Provisioning,
    TargetSystem::Billing,
    TargetSystem::Crm,
    TargetSystem::Notification,
    TargetSystem::Document,
];

/// The configurable system a configuration or callback path name stands
/// for (parsed by [`TargetSystem`]'s `FromStr`); `None` for any other name,
/// including the systems that cannot be configured.
pub fn parse_system(name: &str) -> Option<TargetSystem> {
    name.parse()
        .ok()
        .filter(|system| CONFIGURABLE_SYSTEMS.contains(system))
}

/// True for the systems that answer asynchronously and sign callbacks.
pub fn sends_callbacks(system: TargetSystem) -> bool {
    matches!(
        system,
        TargetSystem::Inventory | TargetSystem::Provisioning | TargetSystem::Billing
    )
}

/// Shortest callback secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

impl SystemsConfig {
    /// The settings of `system` for `tenant`, if configured.
    pub fn system(&self, tenant: &str, system: TargetSystem) -> Option<&SystemConfig> {
        self.tenants
            .get(tenant)
            .and_then(|t| t.systems.get(system.as_str()))
    }

    /// Every `(tenant, settings)` pair that configures `system`.
    pub fn tenants_with(
        &self,
        system: TargetSystem,
    ) -> impl Iterator<Item = (&str, &SystemConfig)> + '_ {
        self.tenants.iter().filter_map(move |(tenant, systems)| {
            systems
                .systems
                .get(system.as_str())
                .map(|config| (tenant.as_str(), config))
        })
    }

    /// The registry's entry for `capability` of `tenant`, if listed.
    fn capability_config(&self, tenant: &str, capability: Capability) -> Option<&CapabilityConfig> {
        self.tenants
            .get(tenant)
            .and_then(|t| t.capabilities.get(capability.code()))
    }

    /// Whether `tenant` may use `capability`, and why not.
    pub fn capability_state(&self, tenant: &str, capability: Capability) -> CapabilityState {
        match self.system(tenant, capability.system()) {
            None => CapabilityState::SystemNotConfigured,
            Some(s) if !s.enabled => CapabilityState::SystemDisabled,
            Some(_)
                if self
                    .capability_config(tenant, capability)
                    .is_some_and(|c| !c.enabled) =>
            {
                CapabilityState::DisabledByConfiguration
            }
            Some(_) => CapabilityState::Enabled,
        }
    }

    /// The capability matrix of `tenant`, in [`Capability::ALL`] order.
    pub fn capability_matrix(&self, tenant: &str) -> Vec<CapabilityEntry> {
        Capability::ALL
            .into_iter()
            .map(|capability| CapabilityEntry {
                capability,
                system: capability.system(),
                state: self.capability_state(tenant, capability),
                settings: self
                    .capability_config(tenant, capability)
                    .map(|c| c.settings.clone())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// The capabilities `tenant` may use now: the input the quote flow and
    /// the fulfillment plan decide with.
    pub fn capabilities(&self, tenant: &str) -> Capabilities {
        Capabilities::of(
            Capability::ALL
                .into_iter()
                .filter(|c| self.capability_state(tenant, *c) == CapabilityState::Enabled),
        )
    }

    /// Adds (or replaces) one system of one tenant; for tests and embedded
    /// defaults.
    pub fn with_system(mut self, tenant: &str, system: TargetSystem, config: SystemConfig) -> Self {
        self.tenants
            .entry(tenant.to_owned())
            .or_default()
            .systems
            .insert(system.as_str().to_owned(), config);
        self
    }

    /// Checks every value.
    ///
    /// # Errors
    /// The first bad key and what is wrong with it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.reconciliation.interval_ms == 0 {
            return Err(ConfigError::new(
                "reconciliation.interval_ms",
                "must be positive",
            ));
        }
        if self.reconciliation.max_checks_per_run == 0 {
            return Err(ConfigError::new(
                "reconciliation.max_checks_per_run",
                "must be positive",
            ));
        }
        for (tenant, systems) in &self.tenants {
            if let Err(problem) = domain::ids::validate_id(tenant) {
                return Err(ConfigError::new(
                    format!("tenants.{tenant}"),
                    format!("a tenant id {problem} (the id grammar of domain::ids::validate_id)"),
                ));
            }
            for (name, config) in &systems.systems {
                let key = format!("tenants.{tenant}.systems.{name}");
                let system = parse_system(name).ok_or_else(|| {
                    ConfigError::new(
                        &key,
                        format!(
                            "unknown system (expected one of {})",
                            CONFIGURABLE_SYSTEMS.map(TargetSystem::as_str).join(", ")
                        ),
                    )
                })?;
                validate_system(&key, system, config)?;
            }
            for (code, config) in &systems.capabilities {
                let key = format!("tenants.{tenant}.capabilities.{code}");
                if Capability::from_code(code).is_none() {
                    return Err(ConfigError::new(
                        &key,
                        format!(
                            "unknown capability (expected one of {})",
                            Capability::ALL.map(Capability::code).join(", ")
                        ),
                    ));
                }
                for name in config.settings.keys() {
                    if name.is_empty() || name.len() > 64 {
                        return Err(ConfigError::new(
                            format!("{key}.settings"),
                            "setting names must be 1 to 64 bytes",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

impl SystemConfig {
    /// Checks the timeouts: connect and read positive, an SLA longer than a
    /// call can take (a call in flight is never reconciled), fallout after
    /// the SLA. `key` prefixes the field named in the error (the server
    /// checks its simulated systems' overrides under `simulator`).
    ///
    /// # Errors
    /// The first bad field and what is wrong with it.
    pub fn validate_timeouts(&self, key: &str) -> Result<(), ConfigError> {
        let at = |field: &str| format!("{key}.{field}");
        if self.connect_timeout_ms == 0 {
            return Err(ConfigError::new(
                at("connect_timeout_ms"),
                "must be positive",
            ));
        }
        if self.read_timeout_ms == 0 {
            return Err(ConfigError::new(at("read_timeout_ms"), "must be positive"));
        }
        for (field, ms) in [
            ("connect_timeout_ms", Some(self.connect_timeout_ms)),
            ("read_timeout_ms", Some(self.read_timeout_ms)),
            ("sla_ms", Some(self.sla_ms)),
            ("fallout_after_ms", self.fallout_after_ms),
        ] {
            if ms.is_some_and(|ms| ms > MAX_DURATION_MS) {
                return Err(ConfigError::new(
                    at(field),
                    "must be at most 31622400000 (366 days)",
                ));
            }
        }
        let call = self.connect_timeout_ms.saturating_add(self.read_timeout_ms);
        if self.sla_ms <= call {
            return Err(ConfigError::new(
                at("sla_ms"),
                format!(
                    "must exceed connect_timeout_ms + read_timeout_ms ({call} ms): a call in flight is never reconciled"
                ),
            ));
        }
        if let Some(after) = self.fallout_after_ms {
            if after <= self.sla_ms {
                return Err(ConfigError::new(
                    at("fallout_after_ms"),
                    "must exceed sla_ms",
                ));
            }
        }
        Ok(())
    }
}

/// The longest timeout, SLA or fallout delay a system may have: 366 days
/// (a due time computed from a longer one could pass what a date can
/// show).
pub const MAX_DURATION_MS: u64 = 366 * 86_400_000;

fn validate_system(key: &str, system: TargetSystem, c: &SystemConfig) -> Result<(), ConfigError> {
    let at = |field: &str| format!("{key}.{field}");
    crate::external::http::parse_base_url(key, &c.base_url)?;
    c.validate_timeouts(key)?;
    let r = &c.retry;
    if r.base_ms == 0 || r.max_ms < r.base_ms {
        return Err(ConfigError::new(
            at("retry.base_ms"),
            "must be positive and at most retry.max_ms",
        ));
    }
    if r.max_attempts == 0 {
        return Err(ConfigError::new(
            at("retry.max_attempts"),
            "must be at least 1",
        ));
    }
    if r.circuit_failure_threshold == 0 {
        return Err(ConfigError::new(
            at("retry.circuit_failure_threshold"),
            "must be at least 1",
        ));
    }
    if r.circuit_open_ms == 0 {
        return Err(ConfigError::new(
            at("retry.circuit_open_ms"),
            "must be positive",
        ));
    }
    if c.callback_secrets.len() > 2 {
        return Err(ConfigError::new(
            at("callback_secrets"),
            "at most two secrets (current, previous)",
        ));
    }
    if let Some(i) = c
        .callback_secrets
        .iter()
        .position(|s| s.len() < MIN_SECRET_BYTES)
    {
        return Err(ConfigError::new(
            format!("{key}.callback_secrets[{i}]"),
            format!("must be at least {MIN_SECRET_BYTES} bytes"),
        ));
    }
    if c.enabled && sends_callbacks(system) && c.callback_secrets.is_empty() {
        return Err(ConfigError::new(
            at("callback_secrets"),
            "an enabled system that calls back needs its current secret",
        ));
    }
    if c.outbound_token.as_deref().is_some_and(str::is_empty) {
        return Err(ConfigError::new(at("outbound_token"), "must not be empty"));
    }
    // Sent as `Authorization: Bearer <token>`: a value a header cannot
    // carry was never sent, and every call looked like a transport failure
    // of unknown outcome (a probe's token with a line break).
    if c.outbound_token
        .as_deref()
        .is_some_and(|token| !token.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ConfigError::new(
            at("outbound_token"),
            "must be printable ASCII without spaces: it is sent as a bearer token header",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> SystemsConfig {
        let mut inventory = SystemConfig::new("http://127.0.0.1:1");
        inventory.callback_secrets = vec!["0123456789abcdef".into()];
        SystemsConfig::default().with_system("t1", TargetSystem::Inventory, inventory)
    }

    #[test]
    fn a_valid_table_passes() {
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn the_capability_matrix_follows_systems_and_the_registry() {
        let mut provisioning = SystemConfig::new("http://127.0.0.1:2");
        provisioning.enabled = false;
        let mut config = valid().with_system("t1", TargetSystem::Provisioning, provisioning);
        if let Some(t) = config.tenants.get_mut("t1") {
            t.capabilities.insert(
                "INVENTORY_RELEASE".into(),
                CapabilityConfig {
                    enabled: false,
                    settings: BTreeMap::from([("pool".into(), "east".into())]),
                },
            );
        }
        assert_eq!(config.validate(), Ok(()));
        let matrix = config.capability_matrix("t1");
        let state = |c: Capability| {
            matrix
                .iter()
                .find(|e| e.capability == c)
                .map(|e| (e.state, e.settings.len()))
        };
        assert_eq!(matrix.len(), Capability::ALL.len());
        assert_eq!(
            state(Capability::InventoryReserve),
            Some((CapabilityState::Enabled, 0))
        );
        assert_eq!(
            state(Capability::InventoryRelease),
            Some((CapabilityState::DisabledByConfiguration, 1))
        );
        assert_eq!(
            state(Capability::ProvisioningActivateService),
            Some((CapabilityState::SystemDisabled, 0))
        );
        assert_eq!(
            state(Capability::BillingActivateSubscription),
            Some((CapabilityState::SystemNotConfigured, 0))
        );
        let enabled = config.capabilities("t1");
        assert!(enabled.enabled(Capability::InventoryReserve));
        assert!(!enabled.enabled(Capability::InventoryRelease));
        assert!(!enabled.enabled(Capability::ProvisioningActivateService));
        // A tenant with no table has nothing.
        assert_eq!(config.capabilities("nobody"), Capabilities::default());
    }

    #[test]
    fn an_unknown_capability_code_is_refused_by_its_key() {
        let mut config = valid();
        if let Some(t) = config.tenants.get_mut("t1") {
            t.capabilities
                .insert("inventory_reserve".into(), CapabilityConfig::default());
        }
        let error = config
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("tenants.t1.capabilities.inventory_reserve"),
            "{error}"
        );
    }

    #[test]
    fn errors_name_the_key_and_the_problem() {
        let mut config = valid();
        if let Some(t) = config.tenants.get_mut("t1") {
            if let Some(s) = t.systems.get_mut("inventory") {
                s.sla_ms = 10;
            }
        }
        let err = config.validate().err().map(|e| e.key);
        assert_eq!(err.as_deref(), Some("tenants.t1.systems.inventory.sla_ms"));

        let mut config = valid();
        if let Some(t) = config.tenants.get_mut("t1") {
            let s = SystemConfig::new("http://x");
            t.systems.insert("erp".into(), s);
        }
        let err = config.validate().err();
        assert_eq!(
            err.as_ref().map(|e| e.key.as_str()),
            Some("tenants.t1.systems.erp")
        );
        assert!(err.is_some_and(|e| e.problem.contains("unknown system")));
    }

    #[test]
    fn short_or_missing_secrets_are_refused() {
        let mut config = valid();
        if let Some(t) = config.tenants.get_mut("t1") {
            if let Some(s) = t.systems.get_mut("inventory") {
                s.callback_secrets = vec!["short".into()];
            }
        }
        assert_eq!(
            config.validate().err().map(|e| e.key).as_deref(),
            Some("tenants.t1.systems.inventory.callback_secrets[0]")
        );
    }

    /// What `validate` says of the valid configuration with its tenant
    /// `t1`'s inventory changed by `change`.
    fn refusal_of(change: impl FnOnce(&mut SystemConfig)) -> String {
        let mut config = valid();
        if let Some(s) = config
            .tenants
            .get_mut("t1")
            .and_then(|t| t.systems.get_mut("inventory"))
        {
            change(s);
        }
        config
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn an_outbound_token_a_header_cannot_carry_is_refused_without_showing_it() {
        for token in ["OUTBOUND\nSECRET", "two words", "caf\u{e9}", "tab\there"] {
            let error = refusal_of(|s| s.outbound_token = Some(token.into()));
            assert!(
                error.contains("tenants.t1.systems.inventory.outbound_token"),
                "{token:?}: {error}"
            );
            assert!(!error.contains(token), "{error}");
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let mut s = SystemConfig::new("http://127.0.0.1:1");
        s.callback_secrets = vec!["super-secret-value-1".into()];
        s.outbound_token = Some("token-value".into());
        let shown = format!("{s:?}");
        assert!(!shown.contains("super-secret") && !shown.contains("token-value"));
    }
}
