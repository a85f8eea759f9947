//! The server's configuration: a TOML file, then environment overrides,
//! then validation that names the offending key.
//!
//! Every field has an embedded default, so `oms-server serve` with no file
//! starts a self-contained platform in `./data` on loopback.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::Role;
use crate::graphql::limits::MAX_VISITS;

/// A configuration problem, naming the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file the server keeps in its data directory could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A key holds a value the server cannot use. Shown with every
    /// invisible character of the key and the problem as its escape: both
    /// come from the operator's file (U+202E turns a line around, a line
    /// break forges another log line), whoever built the error.
    #[error(
        "configuration key `{}`: {}",
        domain::text::escaped(key),
        domain::text::escaped(problem)
    )]
    Invalid {
        /// The dotted key, e.g. `tenants.acme.credentials[0].role`.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

impl ConfigError {
    /// The file `path` (whose text is `text`) does not parse: the parser's
    /// message and where, without the line it quotes, which may hold a
    /// secret (a callback secret given as a string instead of a list was
    /// printed whole).
    pub fn parse(path: &Path, text: &str, error: &toml::de::Error) -> Self {
        let at = error.span().map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            // The key the line sets, or the table it opens: never a value.
            let source = text.lines().nth(line - 1).unwrap_or("").trim();
            let key = match source.split_once('=') {
                Some((key, _)) => format!(" (`{}`)", key.trim()),
                None if source.starts_with('[') => format!(" (`{source}`)"),
                None => String::new(),
            };
            format!(
                "line {line}, column {column}{}: ",
                domain::text::escaped(&key)
            )
        });
        Self::Parse {
            path: path.to_owned(),
            message: format!(
                "{}{}",
                at.unwrap_or_default(),
                domain::text::parser_message(error.message().trim_end())
            ),
        }
    }

    /// A key's problem (shown escaped, see [`ConfigError::Invalid`]).
    pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Longest tenant id: the log's idempotency keys and correlation ids
/// hold it beside a `commandId` of up to 128 characters, within the log's
/// 256-byte field limit.
pub const MAX_TENANT_ID_LEN: usize = 64;

/// Longest credential name (it names the caller in logs, metrics and the
/// events of each repair).
pub const MAX_CREDENTIAL_NAME_LEN: usize = 64;

/// Each environment variable and the key it sets.
const ENV_KEYS: [(&str, &str); 12] = [
    ("OMS_LISTEN", "listen"),
    ("OMS_DATA_DIR", "data_dir"),
    ("OMS_LOG_FORMAT", "log_format"),
    ("OMS_SIMULATORS", "simulators"),
    ("OMS_SIMULATOR_MIX", "simulator.mix"),
    ("OMS_SIMULATOR_HANG_MS", "simulator.hang_ms"),
    ("OMS_SIMULATOR_SEED", "simulator.seed"),
    ("OMS_SIMULATOR_READ_TIMEOUT_MS", "simulator.read_timeout_ms"),
    ("OMS_SIMULATOR_SLA_MS", "simulator.sla_ms"),
    (
        "OMS_SIMULATOR_FALLOUT_AFTER_MS",
        "simulator.fallout_after_ms",
    ),
    ("OMS_QUOTE_EXPIRY_INTERVAL_MS", "quote_expiry_interval_ms"),
    (
        "OMS_RECONCILIATION_INTERVAL_MS",
        "reconciliation_interval_ms",
    ),
];

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where the server listens (default `127.0.0.1:8080`).
    pub listen: String,
    /// The data directory (default `./data`).
    pub data_dir: PathBuf,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Whether the external-system simulators run in-process and every
    /// tenant's systems point at them (the embedded default).
    pub simulators: bool,
    /// How the in-process simulators behave (`[simulator]`).
    pub simulator: SimulatorConfig,
    /// Reconciliation interval in milliseconds (100 to 86,400,000: a day).
    pub reconciliation_interval_ms: u64,
    /// How often quotes whose validity ended are expired, in milliseconds
    /// (10 to 86,400,000).
    pub quote_expiry_interval_ms: u64,
    /// Request timeout in milliseconds: a request's head must arrive, and
    /// the request be answered, within it; an idle keep-alive connection
    /// is closed after it (ADR 0050).
    pub request_timeout_ms: u64,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// How long a mutation waits, at most, for the read models to include
    /// its events before answering (read your writes); 0 answers at once.
    pub read_your_writes_ms: u64,
    /// GraphQL limits.
    pub graphql: GraphqlLimits,
    /// Tenants by id, with their credentials. Empty: a demo tenant is
    /// created on the first start and its credentials stored in the data
    /// directory.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// The price book the `priceQuote` mutation prices from.
    pub price_book: PriceBookConfig,
    /// The approval policy: the highest discount that needs no human
    /// approval, by customer segment.
    pub approval: ApprovalConfig,
    /// External systems per tenant (base URLs, timeouts, retry profiles,
    /// secrets). With `simulators = true`, tenants missing here are pointed
    /// at the in-process simulators.
    pub systems: integration::SystemsConfig,
    /// The JetStream relay (off by default): publishes committed events to
    /// NATS for consumers on other machines.
    pub relay: relay::RelayConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("data"),
            log_format: "text".to_owned(),
            simulators: true,
            simulator: SimulatorConfig::default(),
            reconciliation_interval_ms: 5_000,
            quote_expiry_interval_ms: 1_000,
            request_timeout_ms: 10_000,
            max_body_bytes: 256 * 1024,
            read_your_writes_ms: 2_000,
            graphql: GraphqlLimits::default(),
            tenants: BTreeMap::new(),
            price_book: PriceBookConfig::default(),
            approval: ApprovalConfig::default(),
            systems: integration::SystemsConfig::default(),
            relay: relay::RelayConfig::default(),
        }
    }
}

/// The in-process simulators' behaviour (embedded default only).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// The fault mix every simulated system starts with, as
    /// `Fault=basis_points,...` (e.g. `TimeoutAfterApply=500,DropCallback=300`;
    /// fault names as in `scriptSimulator`). Empty: every request succeeds.
    pub mix: String,
    /// How long a timeout fault holds its answer, in ms. Unset: one second
    /// past the longest configured read timeout, so a timeout fault always
    /// times out.
    pub hang_ms: Option<u64>,
    /// The seed of the fault mix's draws. Unset: a new random seed at every
    /// start, so a restarted server does not replay the same faults.
    pub seed: Option<u64>,
    /// Read timeout of the simulated systems, in ms (default: a system's
    /// default, 5 s).
    pub read_timeout_ms: Option<u64>,
    /// SLA of the simulated systems, in ms: when reconciliation asks about a
    /// pending handoff (default: a system's default, 60 s).
    pub sla_ms: Option<u64>,
    /// How long a handoff of a simulated system may stay pending before
    /// reconciliation declares an SLA breach (a fallout case), in ms; more
    /// than `sla_ms`. Unset: never (a step that never completes shows only
    /// as overdue).
    pub fallout_after_ms: Option<u64>,
}

impl SimulatorConfig {
    /// Sets this table's read timeout, SLA and fallout delay, where given,
    /// on `system`.
    pub fn apply(&self, system: &mut integration::SystemConfig) {
        if let Some(read_timeout_ms) = self.read_timeout_ms {
            system.read_timeout_ms = read_timeout_ms;
        }
        if let Some(sla_ms) = self.sla_ms {
            system.sla_ms = sla_ms;
        }
        if self.fallout_after_ms.is_some() {
            system.fallout_after_ms = self.fallout_after_ms;
        }
    }

    /// The parsed fault mix; `None` when empty.
    ///
    /// # Errors
    /// A fault name that does not exist, or a malformed weight.
    pub fn fault_mix(&self) -> Result<Option<simulators::FaultMix>, ConfigError> {
        if self.mix.trim().is_empty() {
            return Ok(None);
        }
        self.mix
            .parse()
            .map(Some)
            .map_err(|e: simulators::FaultParseError| {
                ConfigError::invalid("simulator.mix", e.to_string())
            })
    }
}

/// The longest background interval (reconciliation, quote expiry): a day.
/// Longer would in effect turn the work off without saying so.
const MAX_INTERVAL_MS: u64 = 86_400_000;

/// The longest price validity: ten years (a validity past year 9999 could
/// not be written as a date).
const MAX_VALIDITY_HOURS: u32 = 87_600;

/// Depth, complexity and batch limits of the GraphQL endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlLimits {
    /// Deepest accepted selection (2 to 1,000).
    pub max_depth: usize,
    /// Highest accepted complexity (one per field, a paginated list
    /// weighted by its page size; 2 to 50,000).
    pub max_complexity: usize,
    /// Most operations in one batched request (1 to 1,000).
    pub max_batch: usize,
    /// Most root mutation fields (aliases count) per operation, and per
    /// HTTP request in total over a batch (1 to 1,000).
    pub max_mutations: usize,
    /// How long a WebSocket may stay open before its `connection_init`
    /// (then it is closed with 4408), in ms.
    pub ws_init_timeout_ms: u64,
    /// Most WebSocket connections one credential keeps open at once (a
    /// `connection_init` beyond it is closed with 1013).
    pub ws_connections_per_credential: usize,
}

impl Default for GraphqlLimits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 10_000,
            max_batch: 8,
            max_mutations: 8,
            ws_init_timeout_ms: 10_000,
            ws_connections_per_credential: 64,
        }
    }
}

/// One tenant.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Bearer credentials of this tenant. Tokens are stored as sha256 hex.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
}

/// One bearer credential.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Who holds it (shown in logs and as the operator of fallout actions).
    pub name: String,
    /// `viewer`, `sales`, `operator`, `admin` or `platform` (an admin who
    /// may also verify the log, rebuild projections and reset consumers,
    /// which touch every tenant; on a server of one tenant its admin may).
    pub role: String,
    /// sha256 of the token, 64 hex digits (`oms-server hash-token`). A
    /// token names one credential: the same digest twice, in one tenant
    /// or two, stops start-up, as does the digest of the empty token.
    pub token_sha256: String,
}

/// A price book: offering id to its charges.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriceBookConfig {
    /// The version stamped on every price.
    pub version: String,
    /// ISO currency of every charge.
    pub currency: String,
    /// How long a price stays valid, in hours (1 to 87,600: ten years).
    pub validity_hours: u32,
    /// Offerings by id.
    pub offerings: BTreeMap<String, OfferingPrice>,
}

impl Default for PriceBookConfig {
    fn default() -> Self {
        let offering = |one_time: &str, monthly: &str| OfferingPrice {
            one_time: one_time.to_owned(),
            monthly: monthly.to_owned(),
        };
        Self {
            version: "demo-2026.11".to_owned(),
            currency: "EUR".to_owned(),
            validity_hours: 24 * 30,
            offerings: BTreeMap::from([
                ("fiber-1g".to_owned(), offering("99.00", "49.90")),
                ("fiber-10g".to_owned(), offering("499.00", "249.00")),
                ("sdwan-edge".to_owned(), offering("250.00", "35.00")),
            ]),
        }
    }
}

/// The approval policy's thresholds, as percent text of the one decimal
/// grammar: a discount above the customer's segment's threshold (or the
/// default, for segments not listed) needs a human approval.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalConfig {
    /// The highest discount without approval, for segments not listed.
    pub default_max_discount: String,
    /// The highest discount without approval, by CRM segment.
    pub segments: BTreeMap<String, String>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            default_max_discount: "10".to_owned(),
            segments: BTreeMap::from([("smb".to_owned(), "15".to_owned())]),
        }
    }
}

/// The charges of one unit of an offering, as decimal text.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferingPrice {
    /// Installation, charged once.
    pub one_time: String,
    /// Recurring monthly charge.
    pub monthly: String,
}

/// The command line's overrides of the file and the environment.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
}

impl ServerConfig {
    /// Reads `file` (if given), applies `OMS_*` environment overrides, and
    /// validates the result.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or the key and the problem.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &Flags::default())
    }

    /// [`ServerConfig::load`] with the command line's `flags` applied over
    /// the file and the environment before the result is validated, so a
    /// flag replaces a bad value it overrides instead of being refused
    /// for it.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or the key and the problem.
    pub fn load_with(file: Option<&Path>, flags: &Flags) -> Result<Self, ConfigError> {
        Self::load_with_env(file, flags, |name| std::env::var_os(name))
    }

    /// [`ServerConfig::load_with`] with the environment read through `var`.
    ///
    /// # Errors
    /// As [`ServerConfig::load_with`]; a key set by an environment variable
    /// is refused naming the variable too.
    pub fn load_with_env(
        file: Option<&Path>,
        flags: &Flags,
        var: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<ServerConfig>(&text)
                    .map_err(|e| ConfigError::parse(path, &text, &e))?
            }
            None => ServerConfig::default(),
        };
        config.apply_env(&var)?;
        let mut set_by_env: Vec<_> = ENV_KEYS
            .iter()
            .filter(|(name, _)| var(name).is_some())
            .collect();
        if let Some(dir) = &flags.data_dir {
            config.data_dir = dir.clone();
            set_by_env.retain(|(_, key)| *key != "data_dir");
        }
        if let Some(listen) = &flags.listen {
            config.listen = listen.clone();
            set_by_env.retain(|(_, key)| *key != "listen");
        }
        config.validate().map_err(|error| match error {
            ConfigError::Invalid { key, problem } => {
                let by = set_by_env.iter().find(|(_, set)| *set == key);
                ConfigError::Invalid {
                    problem: match by {
                        Some((name, _)) if !problem.contains(name) => {
                            format!("{problem} (set by {name})")
                        }
                        _ => problem,
                    },
                    key,
                }
            }
            other => other,
        })?;
        Ok(config)
    }

    /// Applies overrides: `OMS_LISTEN`, `OMS_DATA_DIR`, `OMS_LOG_FORMAT`,
    /// `OMS_SIMULATORS`, `OMS_SIMULATOR_MIX`, `OMS_SIMULATOR_HANG_MS`,
    /// `OMS_SIMULATOR_SEED`, `OMS_SIMULATOR_READ_TIMEOUT_MS`, `OMS_SIMULATOR_SLA_MS`,
    /// `OMS_SIMULATOR_FALLOUT_AFTER_MS`,
    /// `OMS_RECONCILIATION_INTERVAL_MS`.
    ///
    /// # Errors
    /// An unparsable override, named by its variable.
    pub fn apply_env(
        &mut self,
        var_os: impl Fn(&str) -> Option<OsString>,
    ) -> Result<(), ConfigError> {
        // A path is taken as given; any other value must be text.
        if let Some(value) = var_os("OMS_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        let var = |name: &str| -> Result<Option<String>, ConfigError> {
            var_os(name)
                .map(|value| {
                    value
                        .into_string()
                        .map_err(|_| ConfigError::invalid(name, "is not valid UTF-8"))
                })
                .transpose()
        };
        if let Some(value) = var("OMS_LISTEN")? {
            self.listen = value;
        }
        if let Some(value) = var("OMS_LOG_FORMAT")? {
            self.log_format = value;
        }
        if let Some(value) = var("OMS_SIMULATORS")? {
            self.simulators = value
                .parse()
                .map_err(|_| ConfigError::invalid("OMS_SIMULATORS", "expected true or false"))?;
        }
        if let Some(value) = var("OMS_SIMULATOR_MIX")? {
            self.simulator.mix = value;
        }
        let number = |name: &str, value: String| {
            value
                .parse::<u64>()
                .map_err(|_| ConfigError::invalid(name, "expected a number"))
        };
        if let Some(value) = var("OMS_SIMULATOR_HANG_MS")? {
            self.simulator.hang_ms = Some(number("OMS_SIMULATOR_HANG_MS", value)?);
        }
        if let Some(value) = var("OMS_SIMULATOR_SEED")? {
            self.simulator.seed = Some(number("OMS_SIMULATOR_SEED", value)?);
        }
        if let Some(value) = var("OMS_SIMULATOR_READ_TIMEOUT_MS")? {
            self.simulator.read_timeout_ms = Some(number("OMS_SIMULATOR_READ_TIMEOUT_MS", value)?);
        }
        if let Some(value) = var("OMS_SIMULATOR_SLA_MS")? {
            self.simulator.sla_ms = Some(number("OMS_SIMULATOR_SLA_MS", value)?);
        }
        if let Some(value) = var("OMS_SIMULATOR_FALLOUT_AFTER_MS")? {
            self.simulator.fallout_after_ms =
                Some(number("OMS_SIMULATOR_FALLOUT_AFTER_MS", value)?);
        }
        if let Some(value) = var("OMS_QUOTE_EXPIRY_INTERVAL_MS")? {
            self.quote_expiry_interval_ms = number("OMS_QUOTE_EXPIRY_INTERVAL_MS", value)?;
        }
        if let Some(value) = var("OMS_RECONCILIATION_INTERVAL_MS")? {
            self.reconciliation_interval_ms = number("OMS_RECONCILIATION_INTERVAL_MS", value)?;
        }
        Ok(())
    }

    /// The listen address, parsed.
    ///
    /// # Errors
    /// `listen` is not `host:port`.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|e| {
            ConfigError::invalid(
                "listen",
                format!(
                    "`{}`: {e} (expected ip:port; set by `listen`, `--listen` or OMS_LISTEN)",
                    domain::text::bounded_evidence(&self.listen, 80)
                ),
            )
        })
    }

    /// Checks `[relay.tenants]` once the data directory is open: each names
    /// a tenant with credentials, or one the data directory holds (`held`:
    /// an offboarded tenant whose events stay in the log, which `"none"`
    /// keeps off the relay). A misspelt name would apply to no one, and
    /// the tenant meant would be published.
    ///
    /// # Errors
    /// The first tenant no one is, named by its key.
    pub fn check_relay_tenants(&self, held: &dyn Fn(&str) -> bool) -> Result<(), ConfigError> {
        for tenant in self.relay.tenants.keys() {
            let with_credentials = if self.tenants.is_empty() {
                tenant == crate::credentials::DEMO_TENANT
            } else {
                self.tenants.contains_key(tenant)
            };
            if !with_credentials && !held(tenant) {
                return Err(ConfigError::invalid(
                    format!("relay.tenants.{tenant}"),
                    format!(
                        "no tenant `{tenant}` has credentials or events in this data directory: \
                         its publish mode would apply to no one (is the name misspelt?)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks every key the server will rely on.
    ///
    /// # Errors
    /// The first invalid key and its problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.simulator.fault_mix()?;
        if self.simulators {
            // Every simulated system: a system's defaults with the
            // simulator table's read timeout and SLA.
            let mut simulated = integration::SystemConfig::new("");
            self.simulator.apply(&mut simulated);
            simulated
                .validate_timeouts("simulator")
                .map_err(|e| ConfigError::invalid(e.key, e.problem))?;
        }
        if self
            .simulator
            .hang_ms
            .is_some_and(|ms| ms > integration::config::MAX_DURATION_MS)
        {
            return Err(ConfigError::invalid(
                "simulator.hang_ms",
                "must be at most 31622400000 (366 days)",
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::invalid(
                "log_format",
                "expected `text` or `json`",
            ));
        }
        if self.quote_expiry_interval_ms < 10 {
            return Err(ConfigError::invalid(
                "quote_expiry_interval_ms",
                "must be at least 10",
            ));
        }
        if !(100..=MAX_INTERVAL_MS).contains(&self.reconciliation_interval_ms) {
            return Err(ConfigError::invalid(
                "reconciliation_interval_ms",
                "must be from 100 to 86400000 (a day)",
            ));
        }
        if self.quote_expiry_interval_ms > MAX_INTERVAL_MS {
            return Err(ConfigError::invalid(
                "quote_expiry_interval_ms",
                "must be at most 86400000 (a day)",
            ));
        }
        let mut systems = self.systems.clone();
        systems.reconciliation.interval_ms = self.reconciliation_interval_ms;
        systems
            .validate()
            .map_err(|e| ConfigError::invalid(format!("systems.{}", e.key), e.problem))?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "data_dir",
                "must not be empty (set by `data_dir`, `--data-dir` or OMS_DATA_DIR)",
            ));
        }
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(ConfigError::invalid(
                "data_dir",
                format!(
                    "{} is a file, not a directory (set by `data_dir`, `--data-dir` or OMS_DATA_DIR)",
                    self.data_dir.display()
                ),
            ));
        }
        if !(1..=MAX_VALIDITY_HOURS).contains(&self.price_book.validity_hours) {
            return Err(ConfigError::invalid(
                "price_book.validity_hours",
                "must be from 1 to 87600 (ten years)",
            ));
        }
        let g = &self.graphql;
        for (key, value, range) in [
            ("graphql.max_depth", g.max_depth, 2..=1_000),
            (
                "graphql.max_complexity",
                g.max_complexity,
                2..=MAX_VISITS / 2,
            ),
            ("graphql.max_batch", g.max_batch, 1..=1_000),
            ("graphql.max_mutations", g.max_mutations, 1..=1_000),
        ] {
            if !range.contains(&value) {
                return Err(ConfigError::invalid(
                    key,
                    format!("must be from {} to {}", range.start(), range.end()),
                ));
            }
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "request_timeout_ms",
                "must be positive",
            ));
        }
        if !(100..=600_000).contains(&self.graphql.ws_init_timeout_ms) {
            return Err(ConfigError::invalid(
                "graphql.ws_init_timeout_ms",
                "must be from 100 to 600000 (10 minutes)",
            ));
        }
        if !(1..=100_000).contains(&self.graphql.ws_connections_per_credential) {
            return Err(ConfigError::invalid(
                "graphql.ws_connections_per_credential",
                "must be from 1 to 100000",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::invalid(
                "max_body_bytes",
                "must be at least 1024",
            ));
        }
        validate_tenants(&self.tenants, "")?;
        // A tenant named in another section must be one that signs in: a
        // misspelt name would apply to no one, and the tenant meant would
        // get the defaults (its events published, its systems simulated).
        let unknown = |section: &str, tenant: &str, what: &str| {
            let known = if self.tenants.is_empty() {
                tenant == crate::credentials::DEMO_TENANT
            } else {
                self.tenants.contains_key(tenant)
            };
            (!known).then(|| {
                ConfigError::invalid(
                    format!("{section}.{tenant}"),
                    format!(
                        "no tenant `{tenant}` has credentials ({}): {what}",
                        if self.tenants.is_empty() {
                            "the demo tenant `demo` is the only one without [tenants]"
                        } else {
                            "see [tenants]"
                        }
                    ),
                )
            })
        };
        for tenant in self.systems.tenants.keys() {
            if let Some(error) =
                unknown("systems.tenants", tenant, "its systems would never be used")
            {
                return Err(error);
            }
        }
        if !self.simulators && self.systems.tenants.is_empty() {
            return Err(ConfigError::invalid(
                "systems",
                "with simulators off, every tenant's external systems must be configured",
            ));
        }
        self.systems
            .validate()
            .map_err(|e| ConfigError::invalid("systems", e.to_string()))?;
        self.relay
            .validate()
            .map_err(|e| ConfigError::invalid("relay", e.to_string()))?;
        // The price book and the approval policy as the server builds them
        // (currency, version and offering ids, every price, every
        // threshold), before anything is written.
        let price_book = crate::pricing::price_book(&self.price_book)?;
        crate::pricing::approval_policy(&self.approval, &price_book.version)?;
        Ok(())
    }
}

/// Checks every tenant and credential of `tenants` (from the configuration
/// file, or from a stored credentials file: `origin` prefixes each key, e.g.
/// the file's path): the tenant id grammar and length, at least one
/// credential per tenant, names, roles and digests.
///
/// # Errors
/// The first invalid key and its problem.
pub(crate) fn validate_tenants(
    tenants: &BTreeMap<String, TenantConfig>,
    origin: &str,
) -> Result<(), ConfigError> {
    for (tenant, config) in tenants {
        if let Err(problem) = domain::ids::validate_id(tenant) {
            return Err(ConfigError::invalid(
                format!("{origin}tenants.{tenant}"),
                format!("a tenant id {problem} (the id grammar of domain::ids::validate_id)"),
            ));
        }
        if tenant.len() > MAX_TENANT_ID_LEN {
            return Err(ConfigError::invalid(
                format!("{origin}tenants.{tenant}"),
                format!(
                    "a tenant id is at most {MAX_TENANT_ID_LEN} characters: the log's \
                     idempotency keys and correlation ids hold it beside a commandId of up to \
                     128 within their 256-byte limit"
                ),
            ));
        }
        if config.credentials.is_empty() {
            return Err(ConfigError::invalid(
                format!("{origin}tenants.{tenant}.credentials"),
                "a tenant needs at least one credential: no one could sign in to it",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, credential) in config.credentials.iter().enumerate() {
            let key = format!("{origin}tenants.{tenant}.credentials[{i}]");
            let name = credential.name.as_str();
            if name.is_empty()
                || name.len() > MAX_CREDENTIAL_NAME_LEN
                || name.trim() != name
                || name.chars().any(domain::text::is_invisible)
            {
                return Err(ConfigError::invalid(
                    format!("{key}.name"),
                    format!(
                        "1 to {MAX_CREDENTIAL_NAME_LEN} bytes of text without control \
                         or invisible formatting characters or white space at either end \
                         (it names the caller in logs, metrics and the operator of each \
                         repair)"
                    ),
                ));
            }
            if !names.insert(name) {
                return Err(ConfigError::invalid(
                    format!("{key}.name"),
                    format!("`{name}` names another credential of the tenant too"),
                ));
            }
            if credential.role.parse::<Role>().is_err() {
                return Err(ConfigError::invalid(
                    format!("{key}.role"),
                    format!(
                        "`{}` is not one of viewer, sales, operator, admin, platform",
                        credential.role
                    ),
                ));
            }
            let hash = &credential.token_sha256;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::invalid(
                    format!("{key}.token_sha256"),
                    "expected 64 hex digits (sha256 of the token)",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        let config: ServerConfig = toml::from_str(text)
            .map_err(|e| ConfigError::parse(Path::new("test.toml"), text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// A misspelt tenant would leave the meant one published; a tenant the
    /// data directory holds without credentials (offboarded) may be kept
    /// off the relay (a probe: `gamma = "none"` was refused as misspelt,
    /// and without it gamma's events were published).
    #[test]
    fn a_relay_tenant_must_have_credentials_or_events_here() {
        let config = parse("[relay.tenants]\ndemoo = \"none\"\n").expect("parses");
        let error = config.check_relay_tenants(&|_| false).err();
        assert!(
            matches!(&error, Some(ConfigError::Invalid { key, .. }) if key == "relay.tenants.demoo"),
            "{error:?}"
        );
        assert!(config.check_relay_tenants(&|t| t == "demoo").is_ok());
        let demo = parse("[relay.tenants]\ndemo = \"none\"\n").expect("parses");
        assert!(demo.check_relay_tenants(&|_| false).is_ok());
    }

    #[test]
    fn the_embedded_default_is_valid() {
        assert!(ServerConfig::default().validate().is_ok());
    }

    fn problem_of(text: &str) -> String {
        parse(text).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn values_that_would_break_the_server_after_start_are_refused_naming_the_key() {
        for (text, key) in [
            (
                "[price_book]\nvalidity_hours = 0\n",
                "price_book.validity_hours",
            ),
            (
                "[price_book]\nvalidity_hours = 70000000\n",
                "price_book.validity_hours",
            ),
            (
                "[simulator]\nsla_ms = 9223372036854775807\n",
                "simulator.sla_ms",
            ),
            ("[graphql]\nmax_depth = 0\n", "graphql.max_depth"),
            ("[graphql]\nmax_complexity = 0\n", "graphql.max_complexity"),
            ("[graphql]\nmax_mutations = 0\n", "graphql.max_mutations"),
            ("[graphql]\nmax_batch = 0\n", "graphql.max_batch"),
            (
                "reconciliation_interval_ms = 0\n",
                "reconciliation_interval_ms",
            ),
            (
                "reconciliation_interval_ms = 18446744073709551615\n",
                "reconciliation_interval_ms",
            ),
            (
                "quote_expiry_interval_ms = 999999999999\n",
                "quote_expiry_interval_ms",
            ),
            ("data_dir = \"\"\n", "data_dir"),
            ("[relay]\nurl = \"http://127.0.0.1:4222\"\n", "relay.url"),
        ] {
            let problem = problem_of(text);
            assert!(problem.contains(key), "{text:?}: {problem:?}");
        }
        assert_eq!(problem_of("[price_book]\nvalidity_hours = 87600\n"), "");
        assert_eq!(problem_of("[relay.tenants]\ndemo = \"none\"\n"), "");
    }

    #[test]
    fn simulated_system_timeouts_are_checked_before_start_naming_the_simulator_key() {
        let error = problem_of("[simulator]\nread_timeout_ms = 0\n");
        assert!(error.contains("simulator.read_timeout_ms"), "{error}");
        // An SLA that a call in flight could outlast (default read timeout 5 s).
        let error = problem_of("[simulator]\nsla_ms = 1000\n");
        assert!(error.contains("simulator.sla_ms"), "{error}");
        let error = problem_of("[simulator]\nread_timeout_ms = 200\nsla_ms = 3000\n");
        assert!(error.is_empty(), "{error}");
        // With simulators off, the simulator keys are not used (what is
        // refused is the missing systems table).
        let error = problem_of("simulators = false\n[simulator]\nread_timeout_ms = 0\n");
        assert!(!error.contains("simulator."), "{error}");
    }

    #[test]
    fn configured_systems_are_checked_before_start_naming_their_key() {
        let error = problem_of(
            "[systems.tenants.acme.systems.billing]\nbase_url = \"http://127.0.0.1:9\"\nread_timeout_ms = 0\n",
        );
        assert!(
            error.contains("systems.tenants.acme.systems.billing.read_timeout_ms"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_role_is_named_by_its_key() {
        let error = parse(
            r#"
            [tenants.acme]
            credentials = [{ name = "x", role = "boss", token_sha256 = "00" }]
            "#,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            error.contains("tenants.acme.credentials[0].role"),
            "{error}"
        );
    }

    /// A credential's name names one caller: not blank, not padded, once
    /// per tenant (empty and repeated names were accepted).
    #[test]
    fn credential_names_are_given_once_and_not_blank() {
        let credentials = |names: &[&str]| {
            let list: Vec<String> = names
                .iter()
                .map(|name| {
                    format!(
                        "{{ name = \"{name}\", role = \"sales\", token_sha256 = \"{}\" }}",
                        "0".repeat(64)
                    )
                })
                .collect();
            parse(&format!(
                "[tenants.acme]\ncredentials = [{}]\n",
                list.join(", ")
            ))
            .err()
            .map(|e| e.to_string())
        };
        assert_eq!(credentials(&["alice", "bob"]), None);
        for bad in [&[""][..], &[" alice"], &["alice", "alice"]] {
            let error = credentials(bad).unwrap_or_default();
            assert!(error.contains(".name"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn tenant_ids_follow_the_id_grammar() {
        let tenant = |id: &str| {
            parse(&format!(
                "[tenants.\"{id}\"]\ncredentials = [{{ name = \"x\", role = \"sales\", \
                 token_sha256 = \"{}\" }}]\n",
                "0".repeat(64)
            ))
            .err()
            .map(|e| e.to_string())
        };
        assert_eq!(tenant("acme-1"), None);
        assert_eq!(tenant(&"t".repeat(MAX_TENANT_ID_LEN)), None);
        let long = tenant(&"t".repeat(MAX_TENANT_ID_LEN + 1)).unwrap_or_default();
        assert!(long.contains("at most 64 characters"), "{long}");
        for bad in ["a:b", "a/b", "../x", "a b", ""] {
            let error = tenant(bad).unwrap_or_default();
            assert!(error.contains("a tenant id"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_tenant_of_no_credential_or_a_credential_name_with_hidden_characters_is_refused() {
        let error = |text: &str| parse(text).err().map(|e| e.to_string()).unwrap_or_default();
        for text in ["[tenants.acme]\ncredentials = []\n", "[tenants.acme]\n"] {
            let message = error(text);
            assert!(
                message.contains("tenants.acme.credentials") && message.contains("at least one"),
                "{text:?}: {message}"
            );
        }
        let named = |name: &str| {
            error(&format!(
                "[tenants.acme]\ncredentials = [{{ name = \"{name}\", role = \"sales\", \
                 token_sha256 = \"{}\" }}]\n",
                "0".repeat(64)
            ))
        };
        assert_eq!(named("ops-1"), "");
        for bad in ["a\\u202eb", "a\\u200bb", "a\\u0007b"] {
            let message = named(bad);
            assert!(message.contains(".name"), "{bad:?}: {message}");
        }
    }

    /// Found by starting with `[tenants."a\u202eb"]`: the refusal printed
    /// the key with the raw U+202E, which turns the rest of the line
    /// around on a terminal.
    /// The price book is checked whole before the server writes anything
    /// (a blank version, or an offering id outside the id grammar, was
    /// refused only after the demo tenant's tokens were created).
    #[test]
    fn the_price_book_is_checked_whole_before_start() {
        for (text, key) in [
            ("[price_book]\nversion = \"\"\n", "price_book.version"),
            (
                "[price_book.offerings.\"a b/c\"]\none_time = \"1\"\nmonthly = \"1\"\n",
                "price_book.offerings.a b/c",
            ),
        ] {
            match parse(text) {
                Err(ConfigError::Invalid { key: found, .. }) => assert_eq!(found, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_refused_key_shows_its_invisible_characters_escaped() {
        let message = parse("[tenants.\"a\\u202eb\"]\ncredentials = []\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("a\\u{202e}b"), "{message:?}");
        assert!(!message.contains('\u{202e}'), "{message:?}");
    }

    #[test]
    fn a_file_that_does_not_parse_is_named_by_line_without_its_values() {
        let text = "[systems.tenants.demo.systems.inventory]\n\
                    base_url = \"http://127.0.0.1:9000\"\n\
                    callback_secrets = \"inv-secret-0123456789abcdef\"\n";
        let message = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("expected a sequence"), "{message}");
        assert!(!message.contains("inv-secret"), "{message}");
    }

    #[test]
    fn systems_of_a_tenant_without_credentials_are_refused() {
        let systems = |tenant: &str| {
            format!(
                "[systems.tenants.{tenant}.systems.inventory]\n\
                 base_url = \"http://127.0.0.1:9000\"\n\
                 callback_secrets = [\"0123456789abcdef0123\"]\n"
            )
        };
        let tenants = format!(
            "[tenants.acme]\ncredentials = [{{ name = \"x\", role = \"sales\", token_sha256 = \"{}\" }}]\n",
            "0".repeat(64)
        );
        assert!(parse(&systems("demo")).is_ok());
        assert!(parse(&format!("{tenants}{}", systems("acme"))).is_ok());
        for text in [
            systems("acme"),
            format!("{tenants}{}", systems("acme-typo")),
        ] {
            let error = parse(&text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("systems.tenants."), "{text}: {error}");
            assert!(error.contains("no tenant"), "{text}: {error}");
        }
    }

    #[test]
    fn a_base_url_with_credentials_or_a_query_is_refused() {
        for url in [
            "http://user:secret@127.0.0.1:9000",
            "http://127.0.0.1:9000/api?key=x",
            "http://127.0.0.1:9000/api#x",
            "http://exa mple.com",
        ] {
            let text = format!(
                "[systems.tenants.demo.systems.inventory]\nbase_url = \"{url}\"\n\
                 callback_secrets = [\"0123456789abcdef0123\"]\n"
            );
            let error = parse(&text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("base_url"), "{url}: {error}");
            assert!(
                !error.contains("secret@"),
                "the error repeats the secret: {error}"
            );
        }
    }

    #[test]
    fn an_unknown_capability_is_refused_with_its_key_and_the_known_codes() {
        let error = parse(
            "[systems.tenants.demo.capabilities]\nINVENTORY_TELEPORT = { enabled = false }\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            error.contains("tenants.demo.capabilities.INVENTORY_TELEPORT")
                && error.contains("INVENTORY_RESERVE"),
            "{error}"
        );
        assert!(parse(
            "[systems.tenants.demo.capabilities]\nINVENTORY_RELEASE = { enabled = false, settings = { pool = \"east\" } }\n"
        )
        .is_ok());
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let error = parse("listen_port = 3").err().map(|e| e.to_string());
        assert!(error.unwrap_or_default().contains("listen_port"));
    }

    #[test]
    fn a_websocket_init_wait_out_of_range_is_refused_by_its_key() {
        for bad in ["0", "99", "600001"] {
            let error = parse(&format!("[graphql]\nws_init_timeout_ms = {bad}"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("graphql.ws_init_timeout_ms"),
                "{bad}: {error}"
            );
        }
        assert!(parse("[graphql]\nws_init_timeout_ms = 100").is_ok());
        let error = parse("[graphql]\nws_connections_per_credential = 0")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("graphql.ws_connections_per_credential"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_listen_address_is_refused() {
        let error = parse("listen = \"localhost\"").err().map(|e| e.to_string());
        assert!(error.unwrap_or_default().contains("`listen`"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut config = ServerConfig::default();
        config
            .apply_env(|key| (key == "OMS_LISTEN").then(|| "127.0.0.1:9999".into()))
            .ok();
        assert_eq!(config.listen, "127.0.0.1:9999");
        let error = config.apply_env(|key| (key == "OMS_SIMULATORS").then(|| "maybe".into()));
        assert!(error.is_err());
    }

    /// A variable whose value is not UTF-8 was read as unset: a probe's
    /// `OMS_DATA_DIR` of an imported log started a fresh `./data` with new
    /// tokens. A path is taken as given; any other value is refused naming
    /// the variable. A value out of its range names the variable that set
    /// it, not only the file's key.
    #[test]
    fn environment_values_are_taken_as_given_or_refused_naming_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let raw = || OsString::from_vec(b"restored\xff".to_vec());
        let flags = Flags::default();
        let config =
            ServerConfig::load_with_env(None, &flags, |key| (key == "OMS_DATA_DIR").then(raw));
        assert_eq!(config.map(|c| c.data_dir).ok(), Some(PathBuf::from(raw())));
        let error =
            ServerConfig::load_with_env(None, &flags, |key| (key == "OMS_LISTEN").then(raw))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(
            error.contains("OMS_LISTEN") && error.contains("UTF-8"),
            "{error}"
        );
        for (name, value) in [
            ("OMS_QUOTE_EXPIRY_INTERVAL_MS", "0"),
            ("OMS_RECONCILIATION_INTERVAL_MS", "0"),
            ("OMS_SIMULATOR_HANG_MS", "18446744073709551615"),
        ] {
            let error = ServerConfig::load_with_env(None, &flags, |key| {
                (key == name).then(|| value.into())
            })
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            assert!(error.contains(name), "{error}");
        }
    }
}
