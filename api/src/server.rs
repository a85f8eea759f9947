//! Start-up and shutdown: open the log, start the projectors and the
//! external-system runtime, serve until a signal, then drain and close.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use application::CommandPath;
use domain::ids::TenantId;
use eventlog::{EventLog, LogConfig, LogError};
use projections::Projections;

use crate::auth::Authenticator;
use crate::config::{ConfigError, ServerConfig};
use crate::credentials::{self, CredentialSource};
use crate::graphql;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::platform::Platform;
use crate::pricing;
use crate::runtime;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The log could not be opened (another process holds it, or I/O).
    #[error("cannot open the event log: {0}")]
    Log(#[from] LogError),
    /// The log is damaged: the server neither serves nor writes it (see
    /// docs/adr/0010-refuse-to-start-on-a-damaged-log.md).
    #[error(
        "refusing to start: the event log in {} is damaged ({source}); nothing was served or \
         written; run `oms-replay verify --data-dir {}` for details",
        .dir.display(),
        .dir.display()
    )]
    LogDamaged {
        /// The data directory.
        dir: std::path::PathBuf,
        /// The damage, naming the first bad position where there is one.
        source: LogError,
    },
    /// The projectors could not start.
    #[error("cannot start the projections: {0}")]
    Projections(#[from] projections::ProjectionError),
    /// The external-system runtime could not start.
    #[error("cannot start the external-system runtime: {0}")]
    Runtime(String),
    /// A socket or file problem.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Refuses to set up a new platform (a new log, new tokens) in a
/// directory that holds no event log but files of something else: a
/// mistyped `--data-dir` (a platform's `journal/` or `simulators/`, a home
/// directory) would otherwise serve an empty platform there and write
/// into it. And one that holds the files a platform writes only after its
/// log was made (stored credentials, the price-book record, the
/// simulators' journal) but no log: the log's files were lost, and a new
/// one would start over under the old tokens (a probe). A directory that
/// is new, empty, or holds only the log's own files (a start that stopped
/// while its log was made; the log's open judges them) is set up.
///
/// # Errors
/// A configuration error on `data_dir` naming a few of the other files;
/// [`ServerError::LogDamaged`] for a platform's files without its log.
fn refuse_a_new_platform_among_other_files(data_dir: &std::path::Path) -> Result<(), ServerError> {
    if let Some(log_dir) = eventlog::storage::log_holding(data_dir) {
        return Err(ConfigError::invalid(
            "data_dir",
            format!(
                "{} is a directory of the event log in {}, not a data directory; nothing was \
                 opened or written: pass --data-dir {}",
                data_dir.display(),
                log_dir.display(),
                log_dir.display()
            ),
        )
        .into());
    }
    if std::fs::symlink_metadata(data_dir.join("db")).is_ok() {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        // The log's open names what is wrong with the directory.
        return Ok(());
    };
    // The log's own entries are the log's open to judge; a file system's
    // own (`lost+found` where a volume is mounted) and hidden files are
    // nobody's data.
    let logs_own = |name: &str| {
        eventlog::storage::is_log_entry(name) || eventlog::storage::is_nobodys_entry(name)
    };
    let platforms_own = [
        credentials::CREDENTIALS_FILE,
        credentials::DEMO_TOKENS_FILE,
        crate::book_history::BOOK_HISTORY_FILE,
        runtime::SIMULATOR_JOURNAL_DIR,
    ];
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !logs_own(name))
        .collect();
    names.sort();
    let shown = |names: &[&String]| {
        let listed: Vec<String> = names
            .iter()
            .take(3)
            .map(|name| format!("`{}`", domain::text::escaped(name)))
            .collect();
        let more = if names.len() > 3 { ", ..." } else { "" };
        format!("{}{more}", listed.join(", "))
    };
    let others: Vec<&String> = names
        .iter()
        .filter(|name| !platforms_own.contains(&name.as_str()))
        .collect();
    if !others.is_empty() {
        return Err(ConfigError::invalid(
            "data_dir",
            format!(
                "{} holds no event log but other files ({}); nothing was written: a new \
                 platform is set up only in a new or empty directory: name a platform's data \
                 directory, or an empty one",
                data_dir.display(),
                shown(&others)
            ),
        )
        .into());
    }
    let platform: Vec<&String> = names.iter().collect();
    if platform.is_empty() {
        return Ok(());
    }
    Err(ServerError::LogDamaged {
        dir: data_dir.to_path_buf(),
        source: eventlog::LogError::DamagedStorage {
            path: data_dir.to_path_buf(),
            detail: format!(
                "the directory holds files a platform wrote after its event log was made ({}), \
                 but no log: the log's files were lost; nothing was opened or written: restore \
                 the directory from a backup, or import an export into a new one (`oms-replay \
                 import`); to set up a new platform here instead, move those files out first",
                shown(&platform)
            ),
        },
    })
}

/// Runs the platform until `shutdown` resolves, then stops taking
/// requests, lets in-flight ones finish, stops the consumers after their
/// current batch, drains the writer and closes the log.
///
/// `on_listening` is called once with the bound address.
///
/// # Errors
/// [`ServerError`] at start-up; serving errors after start.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> Result<(), ServerError> {
    // First: a listen address that is taken or refused stops the start
    // before anything is created, written or printed (a probe had a taken
    // port create the data directory and print new tokens first).
    let listener = tokio::net::TcpListener::bind(config.listen_addr()?)
        .await
        .map_err(|source| ServerError::Io {
            context: format!("cannot listen on {}", config.listen),
            source,
        })?;
    // The configured credentials are checked before anything is made: a
    // token given twice was found only after the log was set up.
    credentials::configured(&config)?;
    let data_dir = config.data_dir.clone();
    // A directory that cannot be made is the configuration's to fix (a
    // path through a file, a dangling link, no permission): exit 2 naming
    // the key, as a data directory that is a file is.
    eventlog::storage::create_private_dir(&data_dir).map_err(|source| {
        let dangling = data_dir.is_symlink() && !data_dir.exists();
        ConfigError::invalid(
            "data_dir",
            if dangling {
                format!(
                    "{} is a symbolic link to nothing (create its target, or set `data_dir`, \
                     `--data-dir` or OMS_DATA_DIR to a directory)",
                    data_dir.display()
                )
            } else {
                format!("{} cannot be created: {source}", data_dir.display())
            },
        )
    })?;
    refuse_a_new_platform_among_other_files(&data_dir)?;
    let log = EventLog::open(LogConfig::new(&data_dir)).map_err(|e| {
        if e.is_damage() {
            ServerError::LogDamaged {
                dir: data_dir.clone(),
                source: e,
            }
        } else {
            ServerError::Log(e)
        }
    })?;
    refuse_a_demo_beside_other_tenants(&config, &log, &data_dir)?;
    // Before the credentials: a start refused for its price book prints no
    // tokens and makes none.
    let price_book = pricing::price_book(&config.price_book)?;
    let approval = pricing::approval_policy(&config.approval, &price_book.version)?;
    let unrecorded_book = crate::book_history::check(&data_dir, &price_book, &approval)?;
    let (mut auth, source) = credentials::load(&config, &data_dir)?;
    let held = log
        .held_tenants(auth.tenants().map(TenantId::as_str))
        .map_err(ServerError::Log)?;
    auth.hold_tenants(held.into_iter().map(TenantId::new));
    config.check_relay_tenants(&|tenant| auth.holds(tenant))?;
    // Nothing left can refuse the configuration: the book is in force.
    unrecorded_book.record()?;
    announce_credentials(&source, &auth);
    announce_tenants_without_credentials(&auth);
    let projections = Arc::new(Projections::start_with(
        log.clone(),
        projections::ProjectionConfig {
            sla: runtime::sla_policy(&config),
            ..projections::ProjectionConfig::default()
        },
    )?);
    let commands = CommandPath::new(log.clone());
    let external = runtime::start(&config, commands.clone())
        .await
        .map_err(ServerError::Runtime)?;
    let metrics = Arc::new(Metrics::default());
    let platform = Arc::new(Platform {
        read: projections.read_models(),
        log: log.clone(),
        commands,
        projections: projections.clone(),
        metrics,
        price_book,
        approval,
        customers: external.customers.clone(),
        documents: external.documents.clone(),
        systems: external.systems.clone(),
        fulfillment: external.control.clone(),
        evidence: integration::evidence::EvidenceStore::open(&log).map_err(ServerError::Log)?,
        read_your_writes: Duration::from_millis(config.read_your_writes_ms),
        owners: Default::default(),
        read_slots: Default::default(),
    });
    let schema = graphql::limited(Some(platform.clone()), &config.graphql)
        .with_operation_timeout(Duration::from_millis(config.request_timeout_ms));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        // Closes every WebSocket (1012) before any subscription's stream
        // ends with the log, so clients reconnect instead of taking the
        // end for `complete`.
        stop.send_replace(true);
    };
    let state = AppState {
        schema,
        platform: platform.clone(),
        auth: Arc::new(auth),
        max_batch: config.graphql.max_batch,
        max_message_bytes: config.max_body_bytes,
        ws_init_wait: Duration::from_millis(config.graphql.ws_init_timeout_ms),
        ws_connections: crate::websocket::ConnectionCounts::new(
            config.graphql.ws_connections_per_credential,
        ),
        ready_max_lag: 10_000,
        extra_metrics: external.metrics.clone(),
        stopping,
    };
    let app = http::router(
        state,
        config.max_body_bytes,
        Duration::from_millis(config.request_timeout_ms),
        external.routes.clone(),
    );
    let address = listener.local_addr().map_err(|source| ServerError::Io {
        context: "cannot read the bound address".to_owned(),
        source,
    })?;
    external.listening(address).await;
    on_listening(address);
    tracing::info!(%address, "serving");
    let request_timeout = Duration::from_millis(config.request_timeout_ms);
    let limits = crate::connections::ConnectionLimits {
        header_read: request_timeout,
        drain: request_timeout + Duration::from_secs(5),
    };
    crate::connections::serve(listener, app, limits, shutdown).await;
    tracing::info!("stopping: draining consumers and the log");
    external.shutdown().await;
    projections.shutdown();
    drop(platform);
    log.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Says, once at start, which tenants the data directory holds that no
/// credential belongs to: they keep the server one of several tenants, so
/// only a `platform` credential acts for every tenant (ADR 0045).
fn announce_tenants_without_credentials(auth: &Authenticator) {
    let orphans: Vec<&str> = auth
        .tenants_without_credentials()
        .map(TenantId::as_str)
        .collect();
    if !orphans.is_empty() {
        tracing::warn!(
            tenants = %orphans.join(", "),
            "the data directory holds tenants no credential belongs to (events, or an earlier \
             configuration): verifyLog, rebuildProjection, resetConsumer and /metrics need a \
             platform credential"
        );
    }
}

/// Whether the demo tokens file at `path` still holds a token `auth`
/// accepts (a `role=token` line), so pointing the operator at it helps.
fn holds_a_valid_token(path: &std::path::Path, auth: &Authenticator) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines()
            .filter_map(|line| line.split_once('='))
            .any(|(_, token)| auth.authenticate(token.trim()).is_some())
    })
}

fn announce_credentials(source: &CredentialSource, auth: &Authenticator) {
    match source {
        CredentialSource::Configuration => {
            tracing::info!(credentials = auth.len(), "credentials from configuration")
        }
        CredentialSource::StoredDemo(path) => {
            tracing::info!(
                file = %path.display(),
                "demo tenant credentials (tokens were printed on the first start)"
            );
            // Said on every start, to the operator's terminal: where the
            // tokens are, or how to get new ones once that file is gone.
            let tokens = path.with_file_name(crate::credentials::DEMO_TOKENS_FILE);
            if holds_a_valid_token(&tokens, auth) {
                crate::stdout_line!("Demo tenant `demo`: bearer tokens in {}", tokens.display());
            } else if tokens.exists() {
                crate::stdout_line!(
                    "Demo tenant `demo`: its tokens file {} holds none of the tokens the server knows (emptied, damaged or not a file); the server keeps only their digests and the tokens stay valid. For new ones, stop the server and remove {}: the next start creates and prints new tokens (the old ones stop working).",
                    tokens.display(),
                    path.display()
                );
            } else {
                crate::stdout_line!(
                    "Demo tenant `demo`: its tokens file {} is gone and the server keeps only their digests; the tokens stay valid. For new ones, stop the server and remove {}: the next start creates and prints new tokens (the old ones stop working).",
                    tokens.display(),
                    path.display()
                );
            }
        }
        CredentialSource::NewDemo { file, tokens } => {
            // Printed once, to the operator's terminal, never logged.
            crate::stdout_line!(
                "Created demo tenant `demo`. Bearer tokens (also in {}):",
                file.display()
            );
            for (role, token) in tokens {
                crate::stdout_line!("  {role:<8} {token}");
            }
        }
    }
}

/// A start without configured tenants creates the demo tenant only in a
/// directory that holds no other tenant: one that holds other tenants'
/// events (an import of a production export, a server started before
/// with `--config`) is refused, naming them, instead of minting demo
/// tokens (an admin's among them) into it and serving its data beside
/// them. A probe started an imported production directory without
/// `--config` and got a demo tenant.
fn refuse_a_demo_beside_other_tenants(
    config: &ServerConfig,
    log: &EventLog,
    data_dir: &std::path::Path,
) -> Result<(), ServerError> {
    if !config.tenants.is_empty() || data_dir.join(credentials::CREDENTIALS_FILE).exists() {
        return Ok(());
    }
    let others: Vec<String> = log
        .held_tenants(std::iter::empty())
        .map_err(ServerError::Log)?
        .into_iter()
        .filter(|tenant| tenant != credentials::DEMO_TENANT)
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(ConfigError::invalid(
        "tenants",
        format!(
            "the data directory {} holds tenants ({}) and the configuration names none: \
             start with `--config` naming them in `[tenants]`; a demo tenant is created only \
             in a directory that holds no other tenant",
            data_dir.display(),
            others.join(", ")
        ),
    )
    .into())
}
